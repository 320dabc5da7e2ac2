"""Clips per second of ``musicldm-daemon pack``: locally vs on a local Ray runtime with 2 actors.

What it says is Ray's overhead on one machine (scheduling, moving each clip's WAV bytes back to
the driver, one engine per actor): the same short pack is rendered once locally (one engine,
torch on one thread, as a Ray CPU actor runs it) and once on 2 Ray CPU actors. Engine loading is
timed apart (``--warm`` groups first) so the figures are the steady per-clip cost. On 2 CPU
cores the 2 actors share the cores the local run has alone; on a GPU cluster each actor has
its own GPU (docs/performance.md, "Sample packs").

    python -m benchmarks.pack_throughput [--model tiny] [--clips 16] [--steps 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_results


def _pack_text(clips: int, steps: int) -> str:
    takes = max(1, clips // 4)
    return (
        'name = "bench"\nbpm = [120]\nbars = [1]\n'
        f"takes = {takes}\nseed = 1\nsteps = {steps}\n"
        '[[prompt]]\ntext = "dusty breakbeat"\n[[prompt]]\ntext = "warm rhodes"\n'
        '[[prompt]]\ntext = "deep bass"\n[[prompt]]\ntext = "bright pads"\n'
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from daemon.pack.plan import load_pack
    from daemon.pack.run import LocalBackend, run_pack
    from musicldm_core.engine import Engine
    from musicldm_core.loading import quiet_libraries

    quiet_libraries()
    work = Path(tempfile.mkdtemp(prefix="pack-bench-"))
    pack = work / "PACK.toml"
    pack.write_text(_pack_text(args.clips, args.steps), encoding="utf-8")
    plan = load_pack(pack, model=args.model)
    rows: dict[str, Any] = {}

    torch.set_num_threads(1)
    started = time.perf_counter()
    engine = Engine.load(args.model, device="cpu")
    load_s = time.perf_counter() - started
    backend = LocalBackend(args.model, engine=engine)
    run_pack(plan, work / "warm", backend, progress=False)  # first renders: warm-up, not timed
    summary = run_pack(plan, work / "local", backend, progress=False)
    rows["local"] = {
        "workers": 1,
        "engine_load_s": round(load_s, 2),
        "clips": summary.rendered,
        "seconds": round(summary.seconds, 2),
        "clips_per_s": round(summary.rendered / summary.seconds, 3),
        "s_per_clip": round(summary.seconds / summary.rendered, 3),
    }
    print("local", rows["local"], file=sys.stderr)

    import ray

    from daemon.pack.ray_backend import RayBackend

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - started
    ray_backend = RayBackend(args.model, workers=args.workers)
    started = time.perf_counter()
    run_pack(plan, work / "ray-warm", ray_backend, progress=False)  # actors load + warm up
    first_s = time.perf_counter() - started
    ray_backend = RayBackend(args.model, workers=args.workers)  # fresh actors: the real cost
    started = time.perf_counter()
    summary = run_pack(plan, work / "ray", ray_backend, progress=False)
    total_s = time.perf_counter() - started
    ray.shutdown()
    rows["ray"] = {
        "workers": args.workers,
        "ray_init_s": round(init_s, 2),
        "first_run_s": round(first_s, 2),
        "clips": summary.rendered,
        "seconds": round(total_s, 2),
        "clips_per_s": round(summary.rendered / total_s, 3),
        "s_per_clip": round(total_s / summary.rendered, 3),
        "note": "seconds include starting the actors and loading one engine in each",
    }
    print("ray", rows["ray"], file=sys.stderr)
    report = {
        "benchmark": "pack_throughput",
        "machine": {"processor": platform.machine(), "cpus": os.cpu_count()},
        "python": platform.python_version(),
        "model": args.model,
        "steps": args.steps,
        "pack_clips": len(plan.jobs),
        "rows": rows,
    }
    write_results(f"pack_throughput-{args.model}", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
