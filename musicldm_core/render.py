"""From a :class:`~.spec.ClipSpec` to finished clips on disk: plan, render, loop, level, write.

This is the path both the ``render`` CLI and the daemon's worker take:

1. :func:`plan_clip` turns the musical length into exact sample counts (:mod:`.beats`) and the
   number of mel frames to render, including the continuation a seamless loop needs and, with
   ``grid`` on, the headroom the conform needs (:func:`.conform.input_samples`, capped at
   :data:`GRID_RENDER_CAP_SECONDS`);
2. :func:`render_batch` runs the engine once for several compatible specs (same frames, steps,
   scheduler and guidance mode — see :func:`batch_key`), and ranks each spec's takes by grid fit
   and CLAP score (:func:`rank_takes`);
3. :func:`finish` conforms the take to the tempo grid (:func:`.conform.conform`: resample, stretch
   onto the grid from the first bar line, then the loop or a plain cut with fades) and sets the
   level (:mod:`.dsp`); ``grid off`` is exactly the plain resample-and-cut;
4. :func:`save_clip` writes the WAV with its ACID, ``smpl`` and LIST/INFO chunks, atomically
   (:mod:`.wavfile`).

Runs on the thread that owns the engine.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import __version__
from .beats import RenderPlan, clip_samples, frames_for_samples, plan_render, seconds_samples
from .conform import ConformReport, conform, input_samples
from .dsp import integrated_loudness, normalize_loudness, protect_peak
from .errors import ModelError
from .spec import ClipSpec
from .units import Samples
from .wavfile import ClipTags, clip_stem, encode_wav, write_wav_atomic

if TYPE_CHECKING:
    from .engine import Engine, StepCallback

__all__ = [
    "SOFTWARE",
    "Clip",
    "Finished",
    "acid_tempo",
    "batch_key",
    "finish",
    "plan_clip",
    "rank_takes",
    "render_batch",
    "resolve_seed",
    "save_clip",
]

log = logging.getLogger(__name__)

SOFTWARE = f"musicldm-daemon {__version__}"

CROSSFADE_SECONDS = 0.04
"""Length of the equal-power crossfade that joins a loop's end to its start."""

EDGE_FADE_SECONDS = 0.005
"""Fade in and out of a clip that is cut plainly (``loop`` off)."""

GRID_RENDER_CAP_SECONDS = 15.0
"""With ``grid`` on, the engine renders the conform's headroom (:func:`.conform.input_samples`:
the slowest stretch, a bar to find the first bar line, some lead) but never more than this
many seconds, unless the clip itself needs more. MusicLDM was trained on 10.24 s excerpts and
costs time in proportion to the length rendered: 15 s covers 4 bars at 120 BPM (13 s) and
anything shorter in full; a longer clip gets less headroom (down to none beyond 15 s), so only
music at or faster than the target, with a bar line early enough, is stretched; the rest is
kept unstretched and its report says why."""

PEAK_CEILING_DBFS = -1.0
"""No clip is written louder than this peak."""

LOUDNESS_TOLERANCE_LU = 0.1
"""A clip within this of its loudness target has reached it (the gain itself is exact)."""


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
    loudness_lufs: float | None = None
    loudness_note: str | None = None
    grid: ConformReport | None = None
    """What the conform found and did (None only for a clip made without :func:`finish`)."""

    @property
    def seconds(self) -> float:
        return self.plan.out_samples / self.plan.out_rate

    def settings(self) -> dict[str, Any]:
        """Every setting that made this clip, for the file's ICMT and the library."""
        spec = self.spec
        acid_bpm, acid_beats = acid_tempo(self)
        return {
            "prompt": spec.prompt,
            "negative_prompt": spec.negative_prompt,
            "seed": self.seed,
            "steps": spec.steps,
            "guidance": spec.guidance,
            "scheduler": spec.scheduler,
            "model": self.model,
            "bars": spec.grid_bars,
            "beats_per_bar": spec.beats_per_bar,
            "bpm": spec.bpm,
            "seconds": round(self.seconds, 6),
            "acid_bpm": round(acid_bpm, 6),
            "acid_beats": acid_beats,
            "samples": self.plan.out_samples,
            "sample_rate": self.plan.out_rate,
            "format": spec.sample_format,
            "loop": spec.loop,
            "crossfade_samples": self.plan.crossfade_samples,
            # what the file measures, next to what was asked, and why they differ if they do
            "loudness_lufs": None if self.loudness_lufs is None else round(self.loudness_lufs, 2),
            "loudness_target_lufs": spec.loudness_lufs,
            "loudness_note": self.loudness_note,
            "gain_db": round(self.gain_db, 3),
            "takes": spec.takes,
            "take": self.take,
            "rank": self.rank,
            "score": None if self.score is None else round(self.score, 5),
            # the grid mode, what the analysis found (tempo, confidence, key) and what was done
            "grid": {"grid": spec.grid} if self.grid is None else self.grid.as_dict(),
            "software": SOFTWARE,
        }

    @property
    def fits_grid(self) -> bool:
        """True when the conform put this take's beats on the target grid (stretched, or found
        on tempo and started on the bar line): what :func:`rank_takes` prefers."""
        return self.grid is not None and self.grid.grid_error_ms is not None


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
    """Exact output length and render length for ``spec`` (already validated).

    With ``spec.grid`` other than ``off`` the render is lengthened to the conform's headroom
    (:func:`.conform.input_samples`, at most :data:`GRID_RENDER_CAP_SECONDS` unless the clip
    needs more); the cut (``out_samples``, ``crossfade_samples``) is the same either way.
    """
    if spec.seconds is not None:
        out_samples = seconds_samples(spec.seconds, spec.sample_rate)
    else:
        out_samples = clip_samples(
            bars=spec.bars,
            beats_per_bar=spec.beats_per_bar,
            bpm=spec.bpm,
            sample_rate=spec.sample_rate,
        )
    plan = plan_render(
        out_samples=out_samples,
        out_rate=spec.sample_rate,
        loop=spec.loop,
        crossfade_seconds=crossfade_seconds,
        model_rate=model_rate,
        hop=hop,
        frame_multiple=frame_multiple,
    )
    if spec.grid == "off":
        return plan  # exactly today's render
    cap = max(round(GRID_RENDER_CAP_SECONDS * plan.out_rate), plan.needed_samples)
    wanted = min(input_samples(plan, spec), cap) + plan.margin_samples
    model_samples = Samples(math.ceil(wanted * model_rate / plan.out_rate))
    if model_samples <= plan.model_samples:
        return plan
    frames = frames_for_samples(model_samples, hop=hop, multiple=frame_multiple)
    return replace(plan, model_samples=model_samples, frames=frames)


def batch_key(spec: ClipSpec, plan: RenderPlan) -> tuple[int, int, str, bool]:
    """Specs with equal keys can share one batch through the UNet."""
    return (plan.frames, spec.steps, spec.scheduler, spec.guidance > 1.0)


class Finished(NamedTuple):
    """What :func:`finish` made: the exact clip and how its level was set."""

    audio: np.ndarray
    gain_db: float
    loudness_lufs: float | None = None
    """The loudness the clip measures (only when a target was asked; None for silence)."""
    loudness_note: str | None = None
    """Why the loudness target was not reached, when it was not."""
    grid: ConformReport | None = None
    """What the conform found and did (:func:`.conform.conform`)."""


def finish(
    wave: np.ndarray, plan: RenderPlan, spec: ClipSpec, *, model_rate: int = 16000
) -> Finished:
    """The rendered waveform (model rate) made into the exact clip, with its level set.

    The clip is conformed to the tempo grid as ``spec.grid`` says (:func:`.conform.conform`;
    ``off`` is the plain resample, loop or cut with fades), then its level is set.
    """
    if not np.isfinite(wave).all():
        # the engine checks its own output; this guards any other source of a waveform
        raise ModelError("non-finite samples (NaN or infinity) in the rendered waveform")
    conformed = conform(wave, model_rate, spec, plan, mode=spec.grid)
    audio = conformed.audio
    before = audio
    reached: float | None = None
    note: str | None = None
    if spec.loudness_lufs is not None:
        target = spec.loudness_lufs
        audio, _measured = normalize_loudness(
            audio, plan.out_rate, target, ceiling_dbfs=PEAK_CEILING_DBFS, loop=plan.loop
        )
        reached = integrated_loudness(audio, plan.out_rate, loop=plan.loop)
        if not math.isfinite(reached):
            reached = None
            note = f"target {target:g} LUFS not reached: the clip is silent"
        elif reached < target - LOUDNESS_TOLERANCE_LU:
            # normalize_loudness applies the exact gain, so only the ceiling can fall short
            note = (
                f"target {target:g} LUFS not reached: limited by the "
                f"{PEAK_CEILING_DBFS:g} dBFS peak ceiling"
            )
        if note is not None:
            shown = "silence" if reached is None else f"{reached:.2f} LUFS"
            log.warning("clip %r measures %s: %s", spec.prompt[:60], shown, note)
    else:
        audio, _gain = protect_peak(audio, PEAK_CEILING_DBFS)
    gain_db = _gain_db(before, audio)
    return Finished(
        np.ascontiguousarray(audio, dtype=np.float32), gain_db, reached, note, conformed.report
    )


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
        for rank, take in enumerate(takes):  # the engine's order: best CLAP score first
            started = time.perf_counter()
            done = finish(take.waveform, plan, spec, model_rate=engine.model_rate)
            timings = dict(take.timings)
            timings["post"] = time.perf_counter() - started
            per_spec.append(
                Clip(
                    spec=spec,
                    plan=plan,
                    audio=done.audio,
                    seed=take.seed,
                    take=take.index,
                    rank=rank,
                    score=take.score,
                    model=model,
                    gain_db=done.gain_db,
                    timings=timings,
                    loudness_lufs=done.loudness_lufs,
                    loudness_note=done.loudness_note,
                    grid=done.grid,
                )
            )
        clips.append(rank_takes(per_spec))
    return clips


def rank_takes(clips: Sequence[Clip]) -> list[Clip]:
    """``clips`` (one spec's takes, best CLAP score first) ranked best first, ``rank`` renumbered.

    The rule (docs/clips.md): a take whose beats the conform put on the grid
    (:attr:`Clip.fits_grid`) comes before one it could not; among equals the CLAP score's
    order stays. With ``grid`` ``check`` or ``off`` no take is put on the grid, so the score
    alone ranks them.
    """
    ordered = sorted(clips, key=lambda clip: (not clip.fits_grid, clip.rank))
    for rank, clip in enumerate(ordered):
        clip.rank = rank
    return ordered


def acid_tempo(clip: Clip) -> tuple[float, int]:
    """The (tempo, beats) the ``acid`` chunk gives ``clip``: they always multiply to its length.

    A DAW reads a loop's length in beats from these tags and stretches it to the session tempo,
    so ``beats × 60 / tempo`` must be the file's length. A ``bars`` clip is whole beats at the
    tempo asked. A ``seconds`` clip usually is not (3 s at 124 BPM is 6.2 beats) and ACID counts
    whole beats, so it is tagged as the nearest whole number of beats (at least 1) at the tempo
    that makes them last exactly the file's samples (6 beats at 120 BPM).
    """
    spec = clip.spec
    if spec.seconds is None:
        return spec.bpm, round(spec.total_beats)
    beats = max(1, round(clip.seconds * spec.bpm / 60.0))
    return beats * 60.0 / clip.seconds, beats


def clip_tags(clip: Clip, *, when: datetime) -> ClipTags:
    """The WAV tags of ``clip``: tempo and beats for ACID, the prompt and settings for INFO."""
    spec = clip.spec
    bpm, beats = acid_tempo(clip)
    return ClipTags(
        title=spec.prompt,
        software=SOFTWARE,
        comment=json.dumps(clip.settings(), sort_keys=True),
        created=when.strftime("%Y-%m-%d"),
        bpm=bpm,
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
        bars=spec.grid_bars,
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
