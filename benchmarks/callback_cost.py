"""What the audio callback costs: time per buffer as a share of the buffer's duration.

    python benchmarks/callback_cost.py

Drives :meth:`daemon.live.player.Mixer.callback` directly (as PortAudio's thread would) at 48 kHz
stereo with 1, 8 and 32 looping voices, at 512- and 128-frame buffers. Every 100 buffers all
the slots get a new clip (quantize ``none``), so the figures include crossfades (twice the voices
for 10 ms) and the limiter riding a loud mix. Each figure is the callback's own
``time.perf_counter`` measurement (``Mixer.last_callback_seconds``), given as
a percentage of the buffer's duration: what is left for everything else before an underrun.
Prints a table and writes ``benchmarks/results/callback_cost.json``. Runs in a few seconds.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_results
from daemon.live.player import Mixer

RATE = 48000
CHANNELS = 2
VOICES = (1, 8, 32)
BLOCKS = (512, 128)
BUFFERS = 1500
WARMUP = 50
REPLACE_EVERY = 100


def measure(voices: int, frames: int, rng: np.random.Generator) -> dict[str, float | int]:
    """Callback seconds per buffer for ``voices`` looping voices and ``frames``-frame buffers."""
    mixer = Mixer(RATE, voices=2 * voices, fade_samples=round(0.01 * RATE))
    clips = [(rng.uniform(-0.25, 0.25, 2 * RATE)).astype(np.float32) for _ in range(2 * voices)]
    outdata = np.zeros((frames, CHANNELS), dtype=np.float32)
    for slot in range(voices):
        mixer.play(slot, clips[slot], quantize="none")
    seconds = []
    for index in range(WARMUP + BUFFERS):
        if index % REPLACE_EVERY == REPLACE_EVERY - 1:
            for slot in range(voices):
                mixer.play(slot, clips[(slot + index) % len(clips)], quantize="none")
        mixer.callback(outdata, frames, None, None)
        if index >= WARMUP:
            seconds.append(mixer.last_callback_seconds)
        mixer.drain_events()
    budget = frames / RATE
    seconds.sort()
    p99 = seconds[min(len(seconds) - 1, round(0.99 * (len(seconds) - 1)))]
    return {
        "voices": voices,
        "frames": frames,
        "budget_ms": budget * 1e3,
        "buffers": len(seconds),
        "mean_us": statistics.fmean(seconds) * 1e6,
        "p99_us": p99 * 1e6,
        "max_us": seconds[-1] * 1e6,
        "mean_pct": 100 * statistics.fmean(seconds) / budget,
        "p99_pct": 100 * p99 / budget,
        "max_pct": 100 * seconds[-1] / budget,
    }


def main() -> None:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    rows = [measure(voices, frames, rng) for frames in BLOCKS for voices in VOICES]
    print(
        f"audio callback cost, {RATE} Hz stereo ({BUFFERS} buffers each, all slots replaced "
        f"every {REPLACE_EVERY})"
    )
    for row in rows:
        print(
            f"{row['voices']:>2} voices, {row['frames']:>3} frames: "
            f"{row['mean_pct']:5.1f} % of the {row['budget_ms']:.2f} ms budget "
            f"(p99 {row['p99_pct']:.1f} %, max {row['max_pct']:.1f} %; "
            f"mean {row['mean_us']:.0f} µs, p99 {row['p99_us']:.0f} µs, max {row['max_us']:.0f} µs)"
        )
    report = {
        "benchmark": "callback_cost",
        "sample_rate": RATE,
        "channels": CHANNELS,
        "replace_every_buffers": REPLACE_EVERY,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": time.perf_counter() - started,
        "results": rows,
    }
    write_results("callback_cost", report)


if __name__ == "__main__":
    main()
