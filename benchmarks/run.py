"""One benchmark run: the engine against the reference pipeline, presets, daemon overhead,
throughput and memory, for the ``tiny`` and ``full-random`` models, on the CPU and (when
present) CUDA.

    python -m benchmarks.run                       # everything, prints a table, writes JSON
    python -m benchmarks.run --models tiny --quick # a fast smoke run

Every figure is a ratio against a baseline measured in the same process, so runs on different
machines compare by ratio, not by seconds. Results go to ``benchmarks/results/bench-*.json``.
See docs/performance.md for what was measured where.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import RESULTS, scratch_daemon, sequential_vs_concurrent
from musicldm_core.engine import Engine, RenderItem
from musicldm_core.loading import quiet_libraries
from musicldm_core.render import plan_clip, render_batch, resolve_seed, save_clip
from musicldm_core.spec import PRESETS, ClipSpec

PROMPT = "dark techno, 909 drums"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls (after the caller's warm-up), and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        result = fn()
        _sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


UPSTREAM_STEPS = 200
"""The reference pipeline's default number of steps, which the preset speed-ups are against."""


class UNetClock:
    """Total wall time spent inside a module's forward calls, while installed (a context).

    A render costs a fixed part (text, VAE decode, vocoder, the pipeline's own work) plus a
    part per UNet step; timing the UNet calls inside the very run that is timed as a whole
    splits the two without a second run under different machine load.
    """

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.module = module
        self.device = device
        self.seconds = 0.0
        self.calls = 0
        self._started = 0.0
        self._handles: list[Any] = []

    def _pre(self, *_: Any, **__: Any) -> None:
        _sync(self.device)
        self._started = time.perf_counter()

    def _post(self, *_: Any, **__: Any) -> None:
        _sync(self.device)
        self.seconds += time.perf_counter() - self._started
        self.calls += 1

    def __enter__(self) -> UNetClock:
        self._handles = [
            self.module.register_forward_pre_hook(self._pre),
            self.module.register_forward_hook(self._post),
        ]
        return self

    def __exit__(self, *_: Any) -> None:
        for handle in self._handles:
            handle.remove()


def reference_vs_engine(engine: Engine, *, bars: int, steps: int, repeats: int) -> dict[str, Any]:
    """(a) diffusers' MusicLDMPipeline fed precomputed embeddings vs the engine, same settings.

    When ``steps`` is not upstream's 200, each run's time at 200 steps is also given as
    ``fixed + 200 × per_step``, from the UNet time measured inside that run: the fixed part
    (VAE, vocoder, text) is counted once, not multiplied with the steps.
    """
    pipe = engine.reference_pipeline("ddim")
    if pipe is None:
        return {"skipped": "diffusers no longer ships MusicLDMPipeline"}
    seconds = bars * 4 * 60 / 120
    frames = plan_clip(ClipSpec(PROMPT, bars=bars, loop=False, sample_rate=16000)).frames
    positive = engine.encode_text([PROMPT])
    negative = engine.encode_text([""])

    def reference() -> float:
        """Seconds inside the UNet during one reference run."""
        with UNetClock(pipe.unet, engine.device) as clock:
            pipe(
                prompt_embeds=positive,
                negative_prompt_embeds=negative,
                audio_length_in_s=seconds,
                num_inference_steps=steps,
                guidance_scale=2.0,
                generator=[torch.Generator("cpu").manual_seed(0)],
            )
        return clock.seconds

    def ours() -> float:
        """Seconds inside the UNet during one engine run."""
        with UNetClock(engine.unet, engine.device) as clock:
            engine.generate(
                [RenderItem(PROMPT, "", 2.0, (0,))], frames=frames, steps=steps, scheduler="ddim"
            )
        return clock.seconds

    ours()  # warm both paths once
    # interleaved, so that drifts in machine load hit both alike
    runs: dict[str, list[tuple[float, float]]] = {"reference": [], "engine": []}
    for _ in range(repeats):
        runs["reference"].append(timed(reference, engine.device, 1))
        runs["engine"].append(timed(ours, engine.device, 1))
    out: dict[str, Any] = {"steps": steps}
    for name, measured in runs.items():
        # the run of median total time, with its own UNet time
        total, unet = sorted(measured)[(len(measured) - 1) // 2]
        per_step = unet / steps
        out[f"{name}_s"] = total
        out[f"{name}_fixed_s"] = total - unet
        out[f"{name}_per_step_s"] = per_step
        out[f"{name}_200_s"] = total - unet + UPSTREAM_STEPS * per_step
    out["engine_over_reference"] = out["engine_s"] / out["reference_s"]
    out["extrapolated"] = steps != UPSTREAM_STEPS
    return out


def presets(
    engine: Engine,
    *,
    bars: int,
    reference_s: float | None,
    repeats: int,
    names: tuple[str, ...] = ("live", "studio"),
) -> dict:
    """(b) the presets ``names``, with per-stage times; speed-up against ``reference_s``, the
    reference pipeline at upstream's 200 steps."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            spec = resolve_seed(
                ClipSpec(PROMPT, bars=bars, bpm=120, seed=1).with_preset(PRESETS[name]).validated()
            )
            stages: list[dict[str, float]] = []

            def run(spec: ClipSpec = spec, stages: list = stages) -> None:
                clip = render_batch(engine, [spec])[0][0]
                save_clip(clip, Path(folder))
                stages.append(clip.timings)

            seconds, _ = timed(run, engine.device, repeats)
            last = stages[-1]
            out[name] = {
                "steps": spec.steps,
                "scheduler": spec.scheduler,
                "total_s": seconds,
                "stages_s": {k: round(v, 5) for k, v in last.items()},
                "speedup_vs_reference": (reference_s / seconds) if reference_s else None,
            }
    return out


def daemon_overhead(
    engine: Engine, *, bars: int, concurrent: int, steps: int, repeats: int
) -> dict:
    """(c) OSC request → /done vs the engine's own render time; (d) throughput concurrent vs
    sequential, through a real daemon on loopback."""
    from clients.client import Client
    from daemon.wire.requests import GenerateOptions

    with (
        scratch_daemon(engine) as daemon,
        Client(*daemon.address, timeout=600) as client,
        tempfile.TemporaryDirectory() as folder,
    ):
        options = {"bars": bars, "bpm": 120, "steps": steps, "seed": 3}
        client.generate(PROMPT, **options).wait()  # warm
        # the engine alone, same job
        spec = daemon.build_spec(PROMPT, GenerateOptions(**options))

        def engine_only() -> None:  # the same job without the daemon: render + write
            save_clip(render_batch(engine, [spec])[0][0], Path(folder))

        def through_daemon() -> None:
            client.generate(PROMPT, **options).wait()

        # interleaved, so that drifts in machine load hit both alike
        render_times, request_times = [], []
        for _ in range(max(3, repeats)):
            render_times.append(timed(engine_only, engine.device, 1)[0])
            request_times.append(timed(through_daemon, engine.device, 1)[0])
        render_s = statistics.median(render_times)
        request_s = statistics.median(request_times)
        # sequential vs concurrent 1-bar requests
        sequential_s, concurrent_s = sequential_vs_concurrent(client, PROMPT, options, concurrent)
    return {
        "engine_render_s": render_s,
        "osc_request_to_done_s": request_s,
        "overhead_fraction": (request_s - render_s) / render_s,
        "concurrent": concurrent,
        "sequential_clips_per_s": concurrent / sequential_s,
        "concurrent_clips_per_s": concurrent / concurrent_s,
        "throughput_ratio": sequential_s / concurrent_s,
    }


def compiled_vs_eager(engine: Engine, *, bars: int, repeats: int) -> dict[str, Any]:
    """(f) the optional ``torch.compile`` path (``--compile``) against the eager UNet, live
    preset; also the largest difference between the two waveforms."""
    live = PRESETS["live"]
    frames = plan_clip(ClipSpec(PROMPT, bars=bars, bpm=120).validated()).frames
    items = [RenderItem(PROMPT, live.negative_prompt, live.guidance, (0,))]

    def run() -> Any:
        return engine.generate(
            items, frames=frames, steps=live.steps, scheduler=live.scheduler, rank=False
        )

    run()
    eager_s, eager = timed(run, engine.device, repeats)
    started = time.perf_counter()
    engine.compile()
    run()
    compile_s = time.perf_counter() - started
    compiled_s, compiled = timed(run, engine.device, repeats)
    engine.decompile()
    diff = float(abs(eager[0][0].waveform - compiled[0][0].waveform).max())
    return {
        "mode": "reduce-overhead" if engine.device.type == "cuda" else "default",
        "compile_s": compile_s,
        "eager_s": eager_s,
        "compiled_s": compiled_s,
        "speedup": eager_s / compiled_s,
        "max_abs_diff": diff,
    }


def memory(device: torch.device) -> dict[str, Any]:
    """(e) peak GPU memory and the process's peak resident set."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out: dict[str, Any] = {"peak_rss_mib": round(rss_kib / 1024, 1)}
    if device.type == "cuda":
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def run_model(model: str, device: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = Engine.load(model, device=device)
    if engine.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    engine.warmup()
    result: dict[str, Any] = {"model": model, **engine.describe(), "bars": {}}
    for bars in args.bars:
        print(f"  {model} on {engine.device}, {bars} bar(s) ...", file=sys.stderr, flush=True)
        entry: dict[str, Any] = {}
        ref_steps = args.ref_steps or (
            200 if engine.device.type != "cpu" or model == "tiny" else 25
        )
        entry["reference"] = reference_vs_engine(
            engine, bars=bars, steps=ref_steps, repeats=args.repeats
        )
        # measured at 200 steps, or extrapolated with its fixed part counted once
        ref_200 = entry["reference"].get("reference_200_s")
        entry["presets"] = presets(
            engine,
            bars=bars,
            reference_s=ref_200,
            repeats=args.repeats,
            names=tuple(args.presets),
        )
        result["bars"][str(bars)] = entry
    if not args.no_daemon:
        result["daemon"] = daemon_overhead(
            engine,
            bars=1,
            concurrent=args.concurrent,
            steps=PRESETS["live"].steps,
            repeats=args.repeats,
        )
    if args.compile:
        result["compile"] = compiled_vs_eager(engine, bars=args.bars[0], repeats=args.repeats)
    result["memory"] = memory(engine.device)
    del engine
    gc.collect()
    return result


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        f"{'model':<12} {'device':<7} {'bars':>4}  {'ref s':>8} {'engine s':>8} {'ratio':>6}"
        f"  {'live s':>7} {'x ref':>6}  {'studio s':>8} {'x ref':>6}"
    )
    none = {"total_s": None, "speedup_vs_reference": None}
    for r in results:
        for bars, entry in r["bars"].items():
            ref = entry["reference"]
            live = entry["presets"].get("live", none)
            studio = entry["presets"].get("studio", none)

            def fmt(x: float | None, spec: str = ".2f") -> str:
                return "-" if x is None else format(x, spec)

            print(
                f"{r['model']:<12} {r['device']:<7} {bars:>4}  {fmt(ref.get('reference_s')):>8} "
                f"{fmt(ref.get('engine_s')):>8} {fmt(ref.get('engine_over_reference')):>6}  "
                f"{fmt(live['total_s']):>7} {fmt(live['speedup_vs_reference'], '.1f'):>6}  "
                f"{fmt(studio['total_s']):>8} {fmt(studio['speedup_vs_reference'], '.1f'):>6}"
            )
            if ref.get("extrapolated"):
                print(
                    f"  reference at 200 steps: {ref['reference_200_s']:.2f} s = fixed "
                    f"{ref['reference_fixed_s']:.2f} s + 200 × {ref['reference_per_step_s']:.3f} s"
                    f" (UNet timed within the {ref['steps']}-step run); engine at 200: "
                    f"{ref['engine_200_s']:.2f} s"
                )
        if "daemon" in r:
            d = r["daemon"]
            print(
                f"  daemon: request→done {d['osc_request_to_done_s']:.3f} s vs render "
                f"{d['engine_render_s']:.3f} s (overhead {100 * d['overhead_fraction']:+.1f} %); "
                f"{d['concurrent']} concurrent: {d['concurrent_clips_per_s']:.2f} clips/s vs "
                f"sequential {d['sequential_clips_per_s']:.2f} ({d['throughput_ratio']:.2f}×)"
            )
        if "compile" in r:
            c = r["compile"]
            print(
                f"  torch.compile ({c['mode']}): {c['compiled_s']:.3f} s vs eager "
                f"{c['eager_s']:.3f} s ({c['speedup']:.2f}×), compiling took "
                f"{c['compile_s']:.0f} s, max |diff| {c['max_abs_diff']:.1e}"
            )
        print(f"  memory: {r['memory']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "full-random"])
    parser.add_argument("--bars", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--devices", nargs="+", help="default: cpu, plus cuda when present")
    parser.add_argument(
        "--ref-steps",
        type=int,
        help="reference steps (default 200; 25 for "
        "full-random on CPU, where 200 take minutes — ratios are per run)",
    )
    parser.add_argument("--presets", nargs="+", default=["live", "studio"], choices=sorted(PRESETS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--no-daemon", action="store_true", help="skip (c) and (d)")
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile against eager (slow)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny only, 1 bar, 20 ref steps")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.bars, args.ref_steps = ["tiny"], [1], args.ref_steps or 20
    quiet_libraries()
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    results = []
    for device in devices:
        for model in args.models:
            results.append(run_model(model, device, args))
    machine = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print_table(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
