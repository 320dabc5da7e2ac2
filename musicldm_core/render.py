"""From a :class:`~.spec.ClipSpec` to finished clips on disk: plan, render, loop, level, write.

This is the path both the ``render`` CLI and the daemon's worker take:

1. :func:`plan_clip` turns the musical length into exact sample counts (:mod:`.beats`) and the
   number of mel frames to render, including the continuation a seamless loop needs;
2. :func:`render_batch` runs the engine once for several compatible specs (same frames, steps,
   scheduler and guidance mode — see :func:`batch_key`);
3. :func:`finish` resamples to the output rate, makes the loop (or a plain cut with fades) and
   sets the level (:mod:`.dsp`);
4. :func:`save_clip` writes the WAV with its ACID, ``smpl`` and LIST/INFO chunks, atomically
   (:mod:`.wavfile`).

Runs on the thread that owns the engine.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .beats import RenderPlan, clip_samples, plan_render, seconds_samples
from .dsp import cut_with_fades, make_loop, normalize_loudness, protect_peak, resample
from .spec import ClipSpec
from .wavfile import ClipTags, clip_stem, encode_wav, write_wav_atomic

if TYPE_CHECKING:
    from .engine import Engine, StepCallback

__all__ = [
    "SOFTWARE",
    "Clip",
    "batch_key",
    "finish",
    "plan_clip",
    "render_batch",
    "resolve_seed",
    "save_clip",
]

SOFTWARE = f"musicldm-daemon {__version__}"

CROSSFADE_SECONDS = 0.04
"""Length of the equal-power crossfade that joins a loop's end to its start."""

EDGE_FADE_SECONDS = 0.005
"""Fade in and out of a clip that is cut plainly (``loop`` off)."""

PEAK_CEILING_DBFS = -1.0
"""No clip is written louder than this peak."""


@dataclass
class Clip:
    """One finished take: exact-length float32 audio at ``plan.out_rate`` and how it was made."""

    spec: ClipSpec
    plan: RenderPlan
    audio: np.ndarray
    seed: int
    take: int
    rank: int
    score: float | None
    model: str
    gain_db: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    path: Path | None = None

    @property
    def seconds(self) -> float:
        return self.plan.out_samples / self.plan.out_rate

    def settings(self) -> dict[str, Any]:
        """Every setting that made this clip, for the file's ICMT and the library."""
        spec = self.spec
        return {
            "prompt": spec.prompt,
            "negative_prompt": spec.negative_prompt,
            "seed": self.seed,
            "steps": spec.steps,
            "guidance": spec.guidance,
            "scheduler": spec.scheduler,
            "model": self.model,
            "bars": None if spec.seconds is not None else spec.bars,
            "beats_per_bar": spec.beats_per_bar,
            "bpm": spec.bpm,
            "seconds": round(self.seconds, 6),
            "samples": self.plan.out_samples,
            "sample_rate": self.plan.out_rate,
            "format": spec.sample_format,
            "loop": spec.loop,
            "crossfade_samples": self.plan.crossfade_samples,
            "loudness_lufs": spec.loudness_lufs,
            "gain_db": round(self.gain_db, 3),
            "takes": spec.takes,
            "take": self.take,
            "rank": self.rank,
            "score": None if self.score is None else round(self.score, 5),
            "software": SOFTWARE,
        }


def resolve_seed(spec: ClipSpec) -> ClipSpec:
    """``spec`` with a concrete seed: the one asked for, or a fresh random one."""
    if spec.seed is not None:
        return spec
    return replace(spec, seed=secrets.randbelow(2**31))


def plan_clip(
    spec: ClipSpec,
    *,
    model_rate: int = 16000,
    hop: int = 160,
    frame_multiple: int = 4,
    crossfade_seconds: float = CROSSFADE_SECONDS,
) -> RenderPlan:
    """Exact output length and render length for ``spec`` (already validated)."""
    if spec.seconds is not None:
        out_samples = seconds_samples(spec.seconds, spec.sample_rate)
    else:
        out_samples = clip_samples(
            bars=spec.bars,
            beats_per_bar=spec.beats_per_bar,
            bpm=spec.bpm,
            sample_rate=spec.sample_rate,
        )
    return plan_render(
        out_samples=out_samples,
        out_rate=spec.sample_rate,
        loop=spec.loop,
        crossfade_seconds=crossfade_seconds,
        model_rate=model_rate,
        hop=hop,
        frame_multiple=frame_multiple,
    )


def batch_key(spec: ClipSpec, plan: RenderPlan) -> tuple[int, int, str, bool]:
    """Specs with equal keys can share one batch through the UNet."""
    return (plan.frames, spec.steps, spec.scheduler, spec.guidance > 1.0)


def finish(
    wave: np.ndarray, plan: RenderPlan, spec: ClipSpec, *, model_rate: int = 16000
) -> tuple[np.ndarray, float]:
    """The rendered waveform (model rate) made into the exact clip; returns (audio, gain dB)."""
    audio = resample(wave, model_rate, plan.out_rate)
    if len(audio) < plan.needed_samples:
        raise ValueError(
            f"rendered {len(audio)} samples at {plan.out_rate} Hz, {plan.needed_samples} needed"
        )
    if plan.loop:
        audio = make_loop(audio, plan.out_samples, plan.crossfade_samples)
    else:
        fade = min(round(EDGE_FADE_SECONDS * plan.out_rate), plan.out_samples // 8)
        audio = cut_with_fades(audio, plan.out_samples, fade)
    before = audio
    if spec.loudness_lufs is not None:
        audio, _measured = normalize_loudness(
            audio, plan.out_rate, spec.loudness_lufs, ceiling_dbfs=PEAK_CEILING_DBFS, loop=plan.loop
        )
    else:
        audio, _gain = protect_peak(audio, PEAK_CEILING_DBFS)
    gain_db = _gain_db(before, audio)
    return np.ascontiguousarray(audio, dtype=np.float32), gain_db


def _gain_db(before: np.ndarray, after: np.ndarray) -> float:
    peak_before = float(np.max(np.abs(before))) if len(before) else 0.0
    peak_after = float(np.max(np.abs(after))) if len(after) else 0.0
    if peak_before <= 0.0 or peak_after <= 0.0:
        return 0.0
    return 20.0 * float(np.log10(peak_after / peak_before))


def render_batch(
    engine: Engine,
    specs: Sequence[ClipSpec],
    *,
    on_step: StepCallback | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    crossfade_seconds: float = CROSSFADE_SECONDS,
) -> list[list[Clip]]:
    """Render validated, seeded specs sharing a :func:`batch_key`; each spec's clips best first."""
    from .engine import RenderItem

    if not specs:
        return []
    plans = [
        plan_clip(
            s,
            model_rate=engine.model_rate,
            hop=engine.hop,
            frame_multiple=engine.vae_factor,
            crossfade_seconds=crossfade_seconds,
        )
        for s in specs
    ]
    keys = {batch_key(s, p) for s, p in zip(specs, plans, strict=True)}
    if len(keys) != 1:
        raise ValueError(f"specs of one batch must share frames, steps and scheduler, got {keys}")
    frames = plans[0].frames
    items = []
    for spec in specs:
        if spec.seed is None:
            raise ValueError("render_batch needs seeded specs (see resolve_seed)")
        items.append(
            RenderItem(
                prompt=spec.prompt,
                negative_prompt=spec.negative_prompt,
                guidance=spec.guidance,
                seeds=RenderItem.seeds_for(spec.seed, spec.takes),
            )
        )
    results = engine.generate(
        items,
        frames=frames,
        steps=specs[0].steps,
        scheduler=specs[0].scheduler,
        on_step=on_step,
        is_cancelled=is_cancelled,
    )
    clips: list[list[Clip]] = []
    model = engine.components.source
    for spec, plan, takes in zip(specs, plans, results, strict=True):
        per_spec = []
        for rank, take in enumerate(takes):
            started = time.perf_counter()
            audio, gain_db = finish(take.waveform, plan, spec, model_rate=engine.model_rate)
            timings = dict(take.timings)
            timings["post"] = time.perf_counter() - started
            per_spec.append(
                Clip(
                    spec=spec,
                    plan=plan,
                    audio=audio,
                    seed=take.seed,
                    take=take.index,
                    rank=rank,
                    score=take.score,
                    model=model,
                    gain_db=gain_db,
                    timings=timings,
                )
            )
        clips.append(per_spec)
    return clips


def clip_tags(clip: Clip, *, when: datetime) -> ClipTags:
    """The WAV tags of ``clip``: tempo and beats for ACID, the prompt and settings for INFO."""
    spec = clip.spec
    beats = round(spec.total_beats) if spec.seconds is None else max(1, round(spec.total_beats))
    return ClipTags(
        title=spec.prompt,
        software=SOFTWARE,
        comment=json.dumps(clip.settings(), sort_keys=True),
        created=when.strftime("%Y-%m-%d"),
        bpm=spec.bpm,
        beats=beats,
        meter_numerator=spec.beats_per_bar,
        meter_denominator=4,
        loop=spec.loop,
    )


def save_clip(clip: Clip, folder: Path, *, when: datetime | None = None) -> Path:
    """Write ``clip`` into ``folder`` under a fresh name (never overwriting); returns the path.

    The file appears only when complete (hidden temporary name, then renamed into place).
    """
    when = when or datetime.now()
    spec = clip.spec
    stem = clip_stem(
        spec.prompt,
        bpm=spec.bpm,
        bars=None if spec.seconds is not None else spec.bars,
        seed=clip.seed,
        when=when,
        name=spec.name,
        seconds=spec.seconds,
    )
    started = time.perf_counter()
    data = encode_wav(
        clip.audio, clip.plan.out_rate, spec.sample_format, clip_tags(clip, when=when)
    )
    path = write_wav_atomic(Path(folder), stem, data)
    clip.timings["write"] = time.perf_counter() - started
    clip.path = path
    return path
