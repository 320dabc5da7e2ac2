"""The one prepared GPU run (issue 13): every figure the GPU path's targets need, in one JSON.

    python -m benchmarks.gpu_check --out DIR            # on a CUDA machine: full-random, fp16
    python -m benchmarks.gpu_check --dry-run --out DIR  # the same code on the CPU, tiny sizes

``benchmarks/gpu_check.sh`` installs the dependencies from carried wheels and runs this. Each
section runs on its own (a failing one records its error and the rest still run) and only while
the time budget (``--budget-s``, 420 s by default, inside the 8 minutes asked) leaves room; a
section skipped for time says so. Sections:

- ``reference``: the eager engine (fp16 on CUDA) at the ``live`` preset against diffusers'
  ``MusicLDMPipeline`` at its defaults (200 DDIM steps, guidance 2), 1 and 4 bars;
- ``osc_live``: a ``live`` 1-bar (and 4-bar) request over OSC to a running daemon until the
  file is on disk;
- ``concurrent``: 8 concurrent 1-bar requests against 8 sequential ones;
- ``sync_debug``: renders with ``torch.cuda.set_sync_debug_mode("error")`` on inside the step
  loop (from the end of step 1 to the end of the last step): the live text render, a repaint
  and a morph with the live sampler, and the text render with every other sampler; any
  host-device sync there fails that render and is recorded (diffusers' UniPC is expected to:
  its ``step`` copies sigmas to the device);
- ``overlap``: one batch's decode and vocoder on a side CUDA stream while the next batch
  denoises, against the two in series (1 and 4 takes): whether overlapping would pay;
- ``compile``: compile + warm-up time for batches 1, 2, 4, 8 (guided and not) at 1, 2 and 4
  bars, the compiled speed-up, and the compiles counted (torch._dynamo counters) while then
  rendering batches 1-8 at tempi 60-180 BPM: the target is none;
- ``precision``: fp16 against fp32 VAE decode and vocoder, error and time
  (:mod:`benchmarks.precision`);
- ``tuning``: cuDNN's autotuner and channels-last UNet weights, each against the engine as it
  is (neither is on by default);
- ``memory``: peak GPU memory over the whole run.

The dry run uses the tiny model, 2 steps, 1 bar and a few tempi, so it finishes in well under a
minute on 2 CPU cores; it is a test (tests/test_gpu_check.py), so the GPU run cannot rot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import scratch_daemon, sequential_vs_concurrent

PROMPT = "dark techno, 909 drums"


@dataclass(frozen=True)
class Sizes:
    """What one run measures: the full GPU run or the CPU dry run."""

    model: str
    device: str
    dtype: str
    bars: tuple[int, ...]
    reference_steps: int | None  # None: the pipeline's own default (200)
    live_steps: int | None  # None: the live preset's
    repeats: int
    concurrent: int
    batches: tuple[int, ...]
    tempi: tuple[float, ...]
    compile_bars: tuple[int, ...]
    compile_backend: str | None  # None: Inductor; the dry run only traces ("eager")


GPU = Sizes(
    model="full-random",
    device="cuda",
    dtype="float16",
    bars=(1, 4),
    reference_steps=None,
    live_steps=None,
    repeats=5,
    concurrent=8,
    batches=(1, 2, 4, 8),
    tempi=(60.0, 75.0, 90.0, 105.0, 120.0, 135.0, 150.0, 165.0, 180.0),
    compile_bars=(1, 2, 4),
    compile_backend=None,
)
DRY = Sizes(
    model="tiny",
    device="cpu",
    dtype="float32",
    bars=(1,),
    reference_steps=2,
    live_steps=2,
    repeats=1,
    concurrent=3,
    batches=(1, 2),
    tempi=(118.0, 122.0),
    compile_bars=(1,),
    compile_backend="eager",  # Inductor on 2 CPU cores takes minutes; the counting is the same
)


class Budget:
    """Seconds left of the run's budget; sections ask before they start."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    started = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - started


def _median(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    return statistics.median(_timed(fn, device) for _ in range(max(1, repeats)))


def _live_spec(sizes: Sizes, bars: int, bpm: float = 120.0, **changes: Any) -> Any:
    from musicldm_core.spec import PRESETS, ClipSpec

    spec = ClipSpec(PROMPT, bars=bars, bpm=bpm, seed=1).with_preset(PRESETS["live"])
    if sizes.live_steps is not None:
        spec = replace(spec, steps=sizes.live_steps)
    return replace(spec, **changes).validated()


# -- sections ----------------------------------------------------------------------------------


def reference(engine: Any, sizes: Sizes) -> dict[str, Any]:
    """The engine at ``live`` against the reference pipeline at its defaults."""
    from musicldm_core.render import plan_clip, render_batch

    pipe = engine.reference_pipeline("ddim")
    if pipe is None:
        return {"skipped": "this diffusers no longer ships MusicLDMPipeline"}
    out: dict[str, Any] = {}
    positive, negative = engine.encode_text([PROMPT]), engine.encode_text([""])
    for bars in sizes.bars:
        spec = _live_spec(sizes, bars)
        seconds = plan_clip(spec).seconds
        kwargs: dict[str, Any] = (
            {} if sizes.reference_steps is None else {"num_inference_steps": sizes.reference_steps}
        )

        def run_reference(seconds: float = seconds, kwargs: dict[str, Any] = kwargs) -> None:
            pipe(
                prompt_embeds=positive,
                negative_prompt_embeds=negative,
                audio_length_in_s=seconds,
                generator=[torch.Generator("cpu").manual_seed(0)],
                **kwargs,
            )

        def run_engine(spec: Any = spec) -> None:
            render_batch(engine, [spec])

        run_engine()  # warm
        ours = _median(run_engine, engine.device, sizes.repeats)
        theirs = _timed(run_reference, engine.device)  # 200 steps: once is enough
        out[f"{bars}_bars"] = {
            "engine_live_s": ours,
            "reference_default_s": theirs,
            "speedup": theirs / ours,
            "reference_steps": sizes.reference_steps or 200,
            "engine_steps": spec.steps,
        }
    return out


def osc_live(engine: Any, sizes: Sizes) -> dict[str, Any]:
    """``live`` requests over OSC, timed from the send until the file is on disk."""
    from clients.client import Client

    out: dict[str, Any] = {}
    with scratch_daemon(engine) as daemon, Client(*daemon.address, timeout=600) as client:
        for bars in sizes.bars:
            options: dict[str, Any] = {"bars": bars, "bpm": 120, "preset": "live", "seed": 3}
            if sizes.live_steps is not None:
                options["steps"] = sizes.live_steps
            client.generate(PROMPT, **options).wait()  # warm
            times = []
            for i in range(max(3, sizes.repeats)):
                started = time.perf_counter()
                done = client.generate(PROMPT, **{**options, "seed": 10 + i}).wait()
                if not Path(done.path).is_file():
                    raise RuntimeError(f"/done named {done.path} but no file is there")
                times.append(time.perf_counter() - started)
            out[f"{bars}_bars_request_to_file_s"] = statistics.median(times)
    return out


def concurrent(engine: Any, sizes: Sizes) -> dict[str, Any]:
    """``concurrent`` 1-bar ``live`` requests at once against the same number one by one."""
    from clients.client import Client

    n = sizes.concurrent
    with scratch_daemon(engine) as daemon, Client(*daemon.address, timeout=600) as client:
        options: dict[str, Any] = {"bars": 1, "bpm": 120, "preset": "live"}
        if sizes.live_steps is not None:
            options["steps"] = sizes.live_steps
        client.generate(PROMPT, **options, seed=1).wait()  # warm
        sequential_s, concurrent_s = sequential_vs_concurrent(client, PROMPT, options, n)
    return {
        "requests": n,
        "sequential_s": sequential_s,
        "concurrent_s": concurrent_s,
        "throughput_ratio": sequential_s / concurrent_s,
    }


def sync_debug(engine: Any, sizes: Sizes) -> dict[str, Any]:
    """Renders with CUDA's sync debug mode at ``error`` inside the step loop: the ``live`` text
    render, a repaint and a morph (the paths that noise known latents or slerp each step or
    before the loop), with the live sampler, and the text render with every other sampler.

    tests/test_gpu_path_cpu.py proves the same on the meta device; this is the CUDA truth."""
    from musicldm_core.engine import RenderItem
    from musicldm_core.render import plan_clip
    from musicldm_core.spec import SCHEDULER_NAMES

    if engine.device.type != "cuda":
        return {"skipped": "no CUDA device: sync debug mode exists only there"}
    spec = _live_spec(sizes, 1)
    frames = engine.render_frames(plan_clip(spec).frames)
    shape = engine.latent_shape(frames)
    known = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(shape[2])
    mask[: shape[2] // 2] = 0.0
    text = RenderItem(PROMPT, spec.negative_prompt, spec.guidance, (0,))
    cases: list[tuple[str, str, RenderItem]] = [
        ("text", spec.scheduler, text),
        ("repaint", spec.scheduler, replace(text, start=known, mask=mask)),
        (
            "morph",
            spec.scheduler,
            replace(text, morph_to="ambient pads", morph=0.5, morph_seeds=(7,)),
        ),
    ]
    cases += [("text", name, text) for name in SCHEDULER_NAMES if name != spec.scheduler]
    results: dict[str, Any] = {}
    for kind, scheduler, item in cases:

        def on_step(step: int, total: int) -> None:
            # on from the end of step 1 (after the one copy of the timesteps) to the end of the
            # last; what follows the loop (the finite check, the copy to the host) syncs by design
            torch.cuda.set_sync_debug_mode("error" if step < total else 0)

        name = f"{kind} {scheduler}"
        try:
            engine.generate(
                [item], frames=frames, steps=spec.steps, scheduler=scheduler, on_step=on_step
            )
            results[name] = {"syncs_in_step_loop": False}
        except Exception as exc:
            results[name] = {"syncs_in_step_loop": True, "error": str(exc)[:1000]}
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return {
        "steps": spec.steps,
        "cases": results,
        "syncs_in_step_loop": sorted(n for n, r in results.items() if r["syncs_in_step_loop"]),
    }


@torch.inference_mode()
def overlap(engine: Any, sizes: Sizes) -> dict[str, Any]:
    """Would overlapping pay? One batch's VAE decode and vocoder on a side CUDA stream while
    the next batch denoises on the default one, against the two in series, for batches of 1
    and 4 takes of 1 bar at ``live``. The engine does not overlap (issue 13: keep only what
    pays); ``pays`` says whether this GPU shows a gain of 10 % or more. On the CPU (the dry
    run) there are no streams: both run in series, so only the code is exercised."""
    side = torch.cuda.Stream() if engine.device.type == "cuda" else None
    results: dict[str, Any] = {"streams": side is not None}
    gains = []
    for takes in (1, 4):
        case = _overlap_case(engine, sizes, takes, side)
        results[f"takes_{takes}"] = case
        gains.append(case["gain"])
    results["pays"] = side is not None and min(gains) >= 1.1
    return results


def _overlap_case(engine: Any, sizes: Sizes, takes: int, side: Any) -> dict[str, float]:
    from musicldm_core.engine import RenderItem
    from musicldm_core.render import plan_clip

    device = engine.device
    spec = _live_spec(sizes, 1)
    frames = engine.render_frames(plan_clip(spec).frames)
    batches = [
        [RenderItem(PROMPT, spec.negative_prompt, spec.guidance, tuple(range(b, b + takes)))]
        for b in (0, takes)
    ]

    def loop(k: int) -> torch.Tensor:
        return engine.denoise(batches[k], frames=frames, steps=spec.steps, scheduler=spec.scheduler)

    def tail(latents: torch.Tensor) -> torch.Tensor:
        return engine.vocoder(engine.decode_latents(latents))

    first = loop(0)

    def in_series() -> None:
        tail(first)
        loop(1)

    def overlapped() -> None:
        if side is None:
            in_series()
            return
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            tail(first)
        loop(1)
        torch.cuda.current_stream().wait_stream(side)

    overlapped()  # warm: the side stream's first use allocates from its own pool
    series_s = _median(in_series, device, sizes.repeats)
    overlapped_s = _median(overlapped, device, sizes.repeats)
    return {
        "loop_s": _median(lambda: loop(1), device, sizes.repeats),
        "tail_s": _median(lambda: tail(first), device, sizes.repeats),
        "series_s": series_s,
        "overlapped_s": overlapped_s,
        "gain": series_s / overlapped_s,
    }


def tuning(engine: Any, sizes: Sizes) -> dict[str, Any]:
    """Two knobs a GPU may want, each against the engine as it is (eager, 1 bar at ``live``,
    one take): cuDNN's autotuner (``torch.backends.cudnn.benchmark``: it times the convolution
    algorithms once per new input shape, so ``first_s`` shows what a new tempo would cost) and
    channels-last UNet weights (the layout Tensor Cores read fastest in fp16). Neither is on
    by default; the engine is left as it was."""
    from musicldm_core.engine import RenderItem
    from musicldm_core.render import plan_clip

    device = engine.device
    spec = _live_spec(sizes, 1)
    frames = engine.render_frames(plan_clip(spec).frames)
    item = RenderItem(PROMPT, spec.negative_prompt, spec.guidance, (0,))

    def render() -> None:
        engine.generate([item], frames=frames, steps=spec.steps, scheduler=spec.scheduler)

    render()  # warm
    baseline = _median(render, device, sizes.repeats)
    out: dict[str, Any] = {"baseline_s": baseline}
    unet = engine.components.unet
    autotune = torch.backends.cudnn.benchmark
    variants = {
        "cudnn_benchmark": (True, False),
        "channels_last": (False, True),
        "both": (True, True),
    }
    try:
        for name, (benchmark, channels_last) in variants.items():
            torch.backends.cudnn.benchmark = benchmark
            if channels_last:
                unet.to(memory_format=torch.channels_last)
            first = _timed(render, device)
            median = _median(render, device, sizes.repeats)
            out[name] = {"first_s": first, "median_s": median, "speedup": baseline / median}
            torch.backends.cudnn.benchmark = autotune
            unet.to(memory_format=torch.contiguous_format)
    finally:
        torch.backends.cudnn.benchmark = autotune
        unet.to(memory_format=torch.contiguous_format)
    return out


def _compile_counts() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return {
        "graphs": int(counters["stats"].get("unique_graphs", 0)),
        "frames_ok": int(counters["frames"].get("ok", 0)),
        "recompiles": sum(int(v) for v in counters["recompiles"].values()),
    }


def compile_section(engine: Any, sizes: Sizes) -> dict[str, Any]:
    """Compile and warm (as the daemon's worker does), the speed-up, then count compiles."""
    from musicldm_core.render import plan_clip, render_batch

    spec = _live_spec(sizes, 1)
    eager_s = _median(lambda: render_batch(engine, [spec]), engine.device, sizes.repeats)
    shapes = [(b, guided) for b in sizes.batches for guided in (True, False)]
    frames = [plan_clip(_live_spec(sizes, bars)).frames for bars in sizes.compile_bars]
    started = time.perf_counter()
    engine.compile(backend=sizes.compile_backend)
    engine.warmup(frames=frames, steps=min(spec.steps, 3), scheduler=spec.scheduler, shapes=shapes)
    compile_s = time.perf_counter() - started
    compiled_s = _median(lambda: render_batch(engine, [spec]), engine.device, sizes.repeats)
    before = _compile_counts()
    rendered = 0
    for bpm in sizes.tempi:
        for takes in sizes.batches:
            for guidance in (spec.guidance, 1.0):
                render_batch(
                    engine, [_live_spec(sizes, 1, bpm=bpm, takes=takes, guidance=guidance)]
                )
                rendered += 1
    after = _compile_counts()
    result = {
        "mode": engine.compiled,
        "frame_bucket": engine.frame_bucket,
        "compile_and_warmup_s": compile_s,
        "eager_live_1_bar_s": eager_s,
        "compiled_live_1_bar_s": compiled_s,
        "speedup": eager_s / compiled_s,
        "warmed_shapes": [list(s) for s in shapes],
        "renders_after_warmup": rendered,
        "tempi": list(sizes.tempi),
        "counts_after_warmup": before,
        "counts_after_renders": after,
        "compiles_after_warmup": {k: after[k] - before[k] for k in after},
        "eager_fallback_shapes": sorted("x".join(map(str, s)) for s in engine._eager_shapes),
    }
    engine.decompile()
    return result


def precision(engine: Any, sizes: Sizes) -> dict[str, Any]:
    from benchmarks.precision import measure

    return measure(engine, repeats=sizes.repeats, frames=128 if sizes is DRY else 1024)


def environment(sizes: Sizes) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "model": sizes.model,
        "device": sizes.device,
        "dtype": sizes.dtype,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    with contextlib.suppress(Exception):
        import diffusers
        import transformers

        info["diffusers"] = diffusers.__version__
        info["transformers"] = transformers.__version__
    return info


SECTIONS: list[tuple[str, Callable[[Any, Sizes], dict[str, Any]], float]] = [
    # name, function, seconds it needs at least on the GPU (skipped with less left)
    ("reference", reference, 60.0),
    ("sync_debug", sync_debug, 10.0),
    ("osc_live", osc_live, 15.0),
    ("concurrent", concurrent, 15.0),
    ("overlap", overlap, 15.0),
    ("precision", precision, 15.0),
    ("tuning", tuning, 20.0),
    ("compile", compile_section, 150.0),  # last: the slowest, and it changes the engine
]


def run(sizes: Sizes, out_dir: Path, budget_s: float, *, dry_run: bool) -> Path:
    """Every section that fits the budget; the JSON's path."""
    from musicldm_core.engine import Engine
    from musicldm_core.loading import quiet_libraries

    budget = Budget(budget_s)
    quiet_libraries()
    report: dict[str, Any] = {"dry_run": dry_run, "environment": environment(sizes)}
    device = torch.device(sizes.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    engine = Engine.load(sizes.model, device=sizes.device, dtype=sizes.dtype)
    report["load_s"] = time.perf_counter() - started
    for name, section, needs in SECTIONS:
        if not dry_run and budget.left() < needs:
            report[name] = {"skipped": f"{budget.left():.0f} s left of the budget, needs {needs}"}
            continue
        started = time.perf_counter()
        try:
            report[name] = section(engine, sizes)
        except Exception as exc:
            report[name] = {
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(),
            }
        report[name]["section_s"] = time.perf_counter() - started
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    if device.type == "cuda":
        report["memory"] = {
            "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
        }
    else:
        report["memory"] = {"skipped": "no CUDA device"}
    report["total_s"] = budget_s - budget.left()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("gpu-check-dry-run.json" if dry_run else "gpu-check.json")
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny model, tiny sizes")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--budget-s", type=float, default=420.0)
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device here: use --dry-run for the CPU rehearsal", file=sys.stderr)
        return 2
    run(DRY if args.dry_run else GPU, args.out, args.budget_s, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
