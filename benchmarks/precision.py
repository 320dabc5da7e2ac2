"""VAE decode and vocoder in half precision against float32: error and time (issue 13, item 4).

    python -m benchmarks.precision                       # tiny on the CPU (a smoke figure)
    python -m benchmarks.precision --model full-random --device cuda

The VAE's config asks for ``force_upcast`` (decode in float32), which only diffusers' pipelines
honour; the engine decodes in the model's dtype. This measures what that costs or saves: the same
latents (from a real 2-step render, so they have a latent's statistics) decoded by float32 copies
of the VAE and vocoder and by float16 and bfloat16 copies, each stage fed the float32 input, and
reports the largest and RMS difference (mel in the VAE's units, waveform in full scale) and the
median time, plus whether every output was finite (a NaN or infinity is a failure, never a file:
the engine's ``_check_finite``). CPU figures are not GPU figures: a CPU has no fast half-precision
convolutions, so the times there say nothing about a GPU; the errors do carry over roughly.
Results: ``benchmarks/results/precision-<model>-<device>.json``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import torch

from benchmarks.common import write_results

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn: Any, device: torch.device, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(max(1, repeats)):
        _sync(device)
        started = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


@torch.inference_mode()
def measure(engine: Any, *, repeats: int = 3, frames: int = 1024) -> dict[str, Any]:
    """Error and time of each half dtype against float32, VAE and vocoder, on ``engine``'s
    device (latents of ``frames`` mel frames; 1024 is about 10 s)."""
    from musicldm_core.engine import RenderItem

    device = engine.device
    frames = engine.render_frames(frames) if hasattr(engine, "render_frames") else frames
    # realistic latents: the engine's own, stopped before the VAE
    captured: dict[str, torch.Tensor] = {}
    decode = engine.decode_latents

    def grab(latents: torch.Tensor, **kw: Any) -> torch.Tensor:
        captured["latents"] = latents.detach().clone()
        return decode(latents, **kw)

    engine.decode_latents = grab
    try:
        engine.generate(
            [RenderItem("precision", "", 2.0, (0,))],
            frames=frames,
            steps=2,
            scheduler="ddim",
            rank=False,
        )
    finally:
        del engine.decode_latents  # back to the class's method
    latents = captured["latents"].float()
    scale = 1 / engine.vae.config.scaling_factor
    vae32 = copy.deepcopy(engine.vae).to(device, torch.float32)
    voc32 = copy.deepcopy(engine.vocoder).to(device, torch.float32)
    t_vae32, mel32 = _time(lambda: vae32.decode(latents * scale).sample, device, repeats)
    mel32 = mel32.squeeze(1)
    t_voc32, wave32 = _time(lambda: voc32(mel32), device, repeats)
    result: dict[str, Any] = {
        "device": str(device),
        "frames": frames,
        "float32": {"vae_s": t_vae32, "vocoder_s": t_voc32},
        "note": "CPU times are not GPU times" if device.type != "cuda" else "",
    }
    for name in ("float16", "bfloat16"):
        dtype = DTYPES[name]
        entry: dict[str, Any] = {}
        try:
            vae = copy.deepcopy(vae32).to(dtype)
            voc = copy.deepcopy(voc32).to(dtype)
            lat = (latents * scale).to(dtype)
            t_vae, mel = _time(lambda vae=vae, lat=lat: vae.decode(lat).sample, device, repeats)
            mel = mel.squeeze(1)
            mel_in = mel32.to(dtype)  # the vocoder's own error, not the VAE's carried on
            t_voc, wave = _time(lambda voc=voc, mel_in=mel_in: voc(mel_in), device, repeats)
            mel_err = (mel.float() - mel32).abs()
            wave_err = (wave.float() - wave32).abs()
            entry = {
                "vae_s": t_vae,
                "vocoder_s": t_voc,
                "vae_speedup": t_vae32 / t_vae,
                "vocoder_speedup": t_voc32 / t_voc,
                "vae_finite": bool(torch.isfinite(mel).all()),
                "vocoder_finite": bool(torch.isfinite(wave).all()),
                "mel_max_abs_error": float(mel_err.max()),
                "mel_rms_error": float(mel_err.square().mean().sqrt()),
                "mel_range": [float(mel32.min()), float(mel32.max())],
                "wave_max_abs_error": float(wave_err.max()),
                "wave_rms_error": float(wave_err.square().mean().sqrt()),
                "wave_rms": float(wave32.square().mean().sqrt()),
            }
        except (RuntimeError, NotImplementedError) as exc:  # a dtype this device lacks
            entry = {"unsupported": f"{type(exc).__name__}: {str(exc)[:300]}"}
        result[name] = entry
    return result


def main(argv: list[str] | None = None) -> int:
    from musicldm_core.engine import Engine
    from musicldm_core.loading import quiet_libraries

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    quiet_libraries()
    engine = Engine.load(args.model, device=args.device)
    report = measure(engine, repeats=args.repeats, frames=args.frames)
    report["model"] = args.model
    write_results(f"precision-{args.model}-{args.device}", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
