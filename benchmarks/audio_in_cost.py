"""What each audio-in mode (issue 12) adds to a plain render of the same length.

    python benchmarks/audio_in_cost.py [--models tiny full-random] [--steps N] [--repeats N]

For each model (``tiny`` by default; ``full-random`` is the real geometry with random
weights, minutes on a CPU), on the CPU, a 4-bar clip at 240 BPM (4 s, so the tiny model's
runs stay short) rendered end to end through :func:`musicldm_core.render.render_batch`:

- ``plain``: the text render every ratio is against, in the same process;
- ``variation``: strength 0.5 (half the steps, plus reading and encoding the source);
- ``repaint``: bar 2 of 4 (all steps, the source encoded and its round trip decoded);
- ``continue``: 2 new bars after the source (the render covers the source's last bars as
  context as well: :func:`musicldm_core.audio_in.context_samples`), against a plain 2-bar
  render;
- ``like``: the plain render conditioned on a reference clip's CLAP audio embedding;
- ``morph``: halfway to a second prompt (a second text embedding and a second noise).

The source is a render of the model itself, ``grid`` is ``off`` (so the conform's own cost,
measured in benchmarks/conform_cost.py, is not counted), one take, on one torch thread
(``--threads``). Each mode runs N times in alternation with its plain baseline, after one
warm-up of both. The ratio is fastest against fastest: on a machine loaded by other work a run
is only slowed down (here by up to ten times), so the fastest of N is closest to the code's
own cost; the medians and the median of the pairs' ratios are recorded too.
``prepare_best_s`` is :func:`musicldm_core.audio_in.prepare` alone (read, encode, embed).
Prints a table and writes ``benchmarks/results/audio_in_cost.json``.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import soundfile as sf
import torch

from benchmarks.common import write_results
from musicldm_core import audio_in
from musicldm_core.engine import Engine
from musicldm_core.loading import quiet_libraries
from musicldm_core.render import plan_clip, render_batch
from musicldm_core.spec import ClipSpec

RATE = 16000
BPM = 240.0
BARS = 4


def _paired_s(mode: Callable[[], Any], plain: Callable[[], Any], repeats: int) -> dict[str, float]:
    """``mode`` and ``plain`` run in alternation ``repeats`` times each, after one warm-up of
    both: the fastest and the median seconds of each, and the median of the per-pair ratios.

    On a machine loaded by other work a run is only ever slowed down, and by up to ten times,
    so the fastest of N is the figure closest to the code's own cost; the pairs' ratio shows
    the same under load (the load moves less within a pair than between pairs)."""
    mode(), plain()  # warm-up: first-call allocations and caches
    ours, theirs, ratios = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        mode()
        middle = time.perf_counter()
        plain()
        ended = time.perf_counter()
        ours.append(middle - started)
        theirs.append(ended - middle)
        ratios.append((middle - started) / (ended - middle))
    return {
        "best_s": min(ours),
        "plain_best_s": min(theirs),
        "ratio": min(ours) / min(theirs),
        "median_s": statistics.median(ours),
        "plain_median_s": statistics.median(theirs),
        "pair_ratio_median": statistics.median(ratios),
    }


def _times(fn: Callable[[], Any], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def _spec(steps: int, **kwargs: Any) -> ClipSpec:
    base: dict[str, Any] = {
        "prompt": "warm lofi piano, soft drums",
        "bars": BARS,
        "bpm": BPM,
        "steps": steps,
        "seed": 5,
        "grid": "off",
        "sample_rate": RATE,
    }
    return ClipSpec(**{**base, **kwargs}).validated()


def measure(model: str, steps: int, repeats: int, cache: Path) -> dict[str, Any]:
    """Every mode's median seconds, its plain baseline and the ratio, for ``model``."""
    quiet_libraries()
    engine = Engine.load(model, device="cpu", cache_dir=cache)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "source.wav"
        first = render_batch(engine, [_spec(steps, seed=11)])[0][0]
        sf.write(source, first.audio, RATE, subtype="FLOAT")
        src = str(source)
        modes: dict[str, tuple[ClipSpec, ClipSpec]] = {
            "variation 0.5": (_spec(steps, source=src, strength=0.5), _spec(steps)),
            "repaint bar 2 of 4": (_spec(steps, source=src, repaint=(2, 2)), _spec(steps)),
            "continue 2 bars": (
                _spec(steps, source=src, extend=2, bars=1),
                _spec(steps, bars=2),
            ),
            "like 0.5": (_spec(steps, like=src, like_weight=0.5), _spec(steps)),
            "morph 0.5": (
                _spec(steps, morph_to="fast techno drums", morph=0.5),
                _spec(steps),
            ),
        }
        rows: dict[str, Any] = {}
        for name, (spec, plain) in modes.items():
            timing = _paired_s(
                functools.partial(render_batch, engine, [spec]),
                functools.partial(render_batch, engine, [plain]),
                repeats,
            )
            plan = plan_clip(spec, model_rate=engine.model_rate, hop=engine.hop)
            prepare_s = min(
                _times(functools.partial(audio_in.prepare, engine, spec, plan), repeats)
            )
            rows[name] = {key: round(value, 4) for key, value in timing.items()}
            rows[name].update(
                prepare_best_s=round(prepare_s, 4),
                rendered_s=round(plan.frames * engine.hop / engine.model_rate, 3),
                clip_s=round(plan.out_samples / plan.out_rate, 3),
            )
            print(
                f"{model:12} {name:20} best {timing['best_s']:7.3f} s  plain "
                f"{timing['plain_best_s']:7.3f} s  ×{timing['ratio']:.2f}  (pairs' median "
                f"×{timing['pair_ratio_median']:.2f}; prepare {prepare_s:.3f} s)"
            )
    return {"model": model, "steps": steps, "repeats": repeats, "modes": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny"], choices=["tiny", "full-random"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: steadier when loaded)"
    )
    parser.add_argument("--cache", type=Path, default=None, help="model cache folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cache = args.cache or Path(tempfile.gettempdir()) / "musicldm-bench-models"
    results = [measure(model, args.steps, args.repeats, cache) for model in args.models]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    write_results(
        "audio_in_cost",
        {
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "load_average": None if load is None else [round(x, 2) for x in load],
                "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            },
            "clip": {"bars": BARS, "bpm": BPM, "sample_rate": RATE, "grid": "off", "takes": 1},
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
