"""What conforming a clip to the grid costs: analysis + stretch of a 1-bar and a 4-bar clip.

    python benchmarks/conform_cost.py [--repeats N]

Synthetic grooves (tests/grooves.py) played at 108 BPM are conformed to 120 BPM, 4/4, at
44.1 kHz, from as much audio as :func:`musicldm_core.conform.input_samples` asks the engine to
render. Timed after :func:`musicldm_core.conform.warm_up`, on one thread (BLAS and FFT pools are
limited to one before numpy loads), as the median of N runs: the analysis alone
(:func:`~musicldm_core.grid.analyse`), the stretch alone, and the whole :func:`conform` (which
also resamples and makes the loop). Prints a table and writes
``benchmarks/results/conform_cost.json``. Runs in well under a minute.
"""

from __future__ import annotations

import os

# one core, as the target says: the thread pools read these when numpy (BLAS) and numba load
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

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
TARGET_BPM = 120.0
PLAYED_BPM = 108.0
TARGET_MS = {1: 50.0, 4: 150.0}


def _median_ms(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def measure(bars: int, repeats: int) -> dict[str, float | int | bool]:
    spec = ClipSpec(prompt="groove", bars=bars, bpm=TARGET_BPM, sample_rate=RATE)
    plan = plan_clip(spec)
    samples = input_samples(plan, spec)
    played_bars = int(samples / RATE / (4 * 60 / PLAYED_BPM)) + 2
    audio, _ = groove(bpm=PLAYED_BPM, bars=played_bars, start_s=0.2, swing=0.6, chords=True)
    audio = audio[:samples]
    ratio = TARGET_BPM / PLAYED_BPM
    window = audio[: round(plan.needed_samples * ratio)]
    done = conform(audio, RATE, spec, plan)
    assert done.report.stretched, done.report.note
    analysis = _median_ms(lambda: analyse(audio, RATE, target_bpm=TARGET_BPM), repeats)
    stretching = _median_ms(lambda: stretch(window, RATE, ratio), repeats)
    total = _median_ms(lambda: conform(audio, RATE, spec, plan), repeats)
    return {
        "bars": bars,
        "clip_s": plan.out_samples / RATE,
        "input_s": round(samples / RATE, 3),
        "analysis_ms": round(analysis, 2),
        "stretch_ms": round(stretching, 2),
        "conform_ms": round(total, 2),
        "target_ms": TARGET_MS[bars],
        "within_target": total <= TARGET_MS[bars],
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs per figure (median)")
    args = parser.parse_args()
    warm_s = warm_up()  # librosa's numba code: compiled, or loaded from its cache
    warm_again_s = warm_up()
    rows = [measure(bars, args.repeats) for bars in (1, 4)]
    print(f"conform cost at {RATE} Hz, {PLAYED_BPM:g} -> {TARGET_BPM:g} BPM, one thread")
    print(f"warm-up {warm_s:.2f} s (then {warm_again_s * 1e3:.0f} ms)")
    print("bars  clip s  input s  analysis ms  stretch ms  conform ms  target ms")
    for row in rows:
        print(
            f"{row['bars']:>4}  {row['clip_s']:>6.2f}  {row['input_s']:>7.2f}  "
            f"{row['analysis_ms']:>11.1f}  {row['stretch_ms']:>10.1f}  {row['conform_ms']:>10.1f}"
            f"  {row['target_ms']:>9.0f}"
        )
    out = {
        "benchmark": "conform_cost",
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "python": platform.python_version(),
        "threads": 1,
        "sample_rate": RATE,
        "played_bpm": PLAYED_BPM,
        "target_bpm": TARGET_BPM,
        "warm_up_s": round(warm_s, 3),
        "warm_up_again_ms": round(warm_again_s * 1e3, 1),
        "rows": rows,
    }
    write_results("conform_cost", out)


if __name__ == "__main__":
    main()
