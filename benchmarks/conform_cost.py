"""What conforming a clip to the grid costs: analysis + stretch of a 1-bar and a 4-bar clip.

    python benchmarks/conform_cost.py [--repeats N]

Synthetic grooves (tests/grooves.py) played at 108 BPM are conformed to 120 BPM, 4/4, into a
44.1 kHz clip, from as much audio as :func:`musicldm_core.conform.input_samples` asks the
engine to render, from two sources: the model's audio at 16 kHz (MusicLDM's rate: what every
render's :func:`musicldm_core.render.finish` hands the conform; this is the figure the target
is for) and a 44.1 kHz file (``musicldm-daemon conform`` of a user's file). Timed after
:func:`musicldm_core.conform.warm_up`, on one thread (BLAS and FFT pools are limited to one
before numpy loads), as the median of N runs, in wall-clock and in the process's CPU time
(on a loaded machine the wall time includes waiting for a core): the analysis alone
(:func:`~musicldm_core.grid.analyse`), the stretch alone (of the clip's window, to 44.1 kHz),
and the whole :func:`conform` (which also makes the loop), without and with a ``key``. The
machine's load average (``uptime``) before and after is recorded with the figures. Prints a
table and writes ``benchmarks/results/conform_cost.json``. Runs in well under a minute.
"""

from __future__ import annotations

import os

# one core, as the target says: the thread pools read these when numpy (BLAS) and numba load
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("TORCH_NUM_THREADS", "1")  # not used by the conform; kept equal

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_results
from musicldm_core.conform import conform, input_samples, stretch, warm_up
from musicldm_core.grid import analyse
from musicldm_core.render import plan_clip
from musicldm_core.spec import ClipSpec
from tests.grooves import groove

RATE = 44100
MODEL_RATE = 16000
"""MusicLDM's own rate: the engine's audio reaches the conform at this rate."""
SOURCES = {"model": MODEL_RATE, "file": RATE}
TARGET_BPM = 120.0
PLAYED_BPM = 108.0
TARGET_MS = {1: 50.0, 4: 150.0}


def _median_ms(fn, repeats: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall, CPU) milliseconds of ``fn``, each the median of ``repeats`` runs. On a loaded
    machine the wall time includes waiting for a core; the process's CPU time does not."""
    walls, cpus = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - started_cpu)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3


def measure(bars: int, source: str, repeats: int) -> dict[str, float | int | bool | str]:
    rate = SOURCES[source]
    spec = ClipSpec(prompt="groove", bars=bars, bpm=TARGET_BPM, sample_rate=RATE)
    plan = plan_clip(spec)
    samples = input_samples(plan, spec)  # at the clip's rate
    played_bars = int(samples / RATE / (4 * 60 / PLAYED_BPM)) + 2
    audio, _ = groove(
        bpm=PLAYED_BPM, bars=played_bars, start_s=0.2, swing=0.6, chords=True, rate=rate
    )
    audio = audio[: round(samples * rate / RATE)]
    ratio = TARGET_BPM / PLAYED_BPM
    window = audio[: round(plan.needed_samples * ratio * rate / RATE)]
    done = conform(audio, rate, spec, plan)
    assert done.report.stretched, done.report.note
    analysis = _median_ms(lambda: analyse(audio, rate, target_bpm=TARGET_BPM), repeats)
    stretching = _median_ms(lambda: stretch(window, rate, ratio, out_rate=RATE), repeats)
    total = _median_ms(lambda: conform(audio, rate, spec, plan), repeats)
    keyed = _median_ms(lambda: conform(audio, rate, spec, plan, key="D"), repeats)
    return {
        "bars": bars,
        "source": source,
        "source_rate": rate,
        "clip_s": plan.out_samples / RATE,
        "input_s": round(samples / RATE, 3),
        "analysis_ms": round(analysis[0], 2),
        "stretch_ms": round(stretching[0], 2),
        "conform_ms": round(total[0], 2),
        "conform_with_key_ms": round(keyed[0], 2),
        "analysis_cpu_ms": round(analysis[1], 2),
        "stretch_cpu_ms": round(stretching[1], 2),
        "conform_cpu_ms": round(total[1], 2),
        "conform_with_key_cpu_ms": round(keyed[1], 2),
        "target_ms": TARGET_MS[bars],
        "within_target": total[0] <= TARGET_MS[bars],
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs per figure (median)")
    args = parser.parse_args()
    warm_s = warm_up()  # librosa's numba code: compiled, or loaded from its cache
    warm_again_s = warm_up()
    load_before = os.getloadavg()
    rows = [measure(bars, source, args.repeats) for source in SOURCES for bars in (1, 4)]
    load_after = os.getloadavg()
    print(f"conform cost into {RATE} Hz clips, {PLAYED_BPM:g} -> {TARGET_BPM:g} BPM, one thread")
    print(f"warm-up {warm_s:.2f} s (then {warm_again_s * 1e3:.0f} ms)")
    print(f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("wall ms (CPU ms), median of each")
    heads = ("analysis", "stretch", "conform", "with key")
    print("source  bars  clip s  input s" + "".join(f"  {h:<12}" for h in heads) + "  target")
    for row in rows:
        print(
            f"{row['source']:>6}  {row['bars']:>4}  {row['clip_s']:>6.2f}  {row['input_s']:>7.2f}"
            + "".join(
                f"  {row[name + '_ms']:>5.1f} ({row[name + '_cpu_ms']:>5.1f})"
                for name in ("analysis", "stretch", "conform", "conform_with_key")
            )
            + f"  {row['target_ms']:>6.0f}"
        )
    out = {
        "benchmark": "conform_cost",
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "python": platform.python_version(),
        "threads": 1,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "sample_rate": RATE,
        "model_rate": MODEL_RATE,
        "played_bpm": PLAYED_BPM,
        "target_bpm": TARGET_BPM,
        "warm_up_s": round(warm_s, 3),
        "warm_up_again_ms": round(warm_again_s * 1e3, 1),
        "rows": rows,
    }
    write_results("conform_cost", out)


if __name__ == "__main__":
    main()
