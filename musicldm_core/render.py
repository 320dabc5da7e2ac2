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
from collections.abc import Callable, Mapping, Sequence
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
    from .audio_in import Prepared
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
    "set_level",
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
    render_round: int = 0
    """The render round that made this take: 0, or the retake (``spec.retake``) it came from."""
    retakes: int = 0
    """How many retake rounds its job's spec used (0: the first render had a take on the grid,
    or no retakes were allowed)."""

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
            "retake": spec.retake,
            "retakes": self.retakes,
            "round": self.render_round,
            # the grid mode, what the analysis found (tempo, confidence, key) and what was done
            "grid": {"grid": spec.grid} if self.grid is None else self.grid.as_dict(),
            # where the clip started from (audio in), None for a clip from the prompt alone
            "audio_in": _audio_in_settings(spec),
            "software": SOFTWARE,
        }

    @property
    def fits_grid(self) -> bool:
        """True when the conform put this take's beats on the target grid (stretched, or found
        on tempo and started on the bar line): what :func:`rank_takes` prefers."""
        return self.grid is not None and self.grid.grid_error_ms is not None


def _audio_in_settings(spec: ClipSpec) -> dict[str, Any] | None:
    """The audio-in part of a clip's settings: its mode and input, and the conditioning mix
    (``like``, ``blend``, ``morph``) where one was asked; None when there is neither."""
    mixed = spec.like is not None or bool(spec.blend) or spec.morph_to is not None
    if spec.audio_mode == "text" and not mixed:
        return None

    def shown(value: float | None) -> float | None:
        # OSC floats are float32: 0.3 arrives as 0.30000001192..., shown as asked
        return None if value is None else round(value, 6)

    return {
        "mode": spec.audio_mode,
        "source": spec.source,
        "strength": shown(spec.strength),
        "repaint": list(spec.repaint) if spec.repaint is not None else None,
        "extend": spec.extend,
        "like": spec.like,
        "like_weight": shown(spec.like_weight) if spec.like is not None else None,
        "blend": [[prompt, shown(weight)] for prompt, weight in spec.blend],
        "morph_to": spec.morph_to,
        "morph": shown(spec.morph) if spec.morph_to is not None else None,
        "morph_seed": spec.morph_seed_used if spec.morph_to is not None else None,
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
    """Exact output length and render length for ``spec`` (already validated).

    With ``spec.grid`` other than ``off`` the render is lengthened to the conform's headroom
    (:func:`.conform.input_samples`, at most :data:`GRID_RENDER_CAP_SECONDS` unless the clip
    needs more); the cut (``out_samples``, ``crossfade_samples``) is the same either way.

    Audio in (:mod:`.audio_in`): a ``variation`` or ``repaint`` renders exactly the source's
    window (the clip, its loop continuation and margin): the source is conformed to the grid
    *before* encoding, so the take is already on it and gets no grid headroom. A ``continue``
    renders the source's last bars (:func:`.audio_in.context_samples`) before the new bars'
    plain render; the cut is the new bars'.
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
    if spec.audio_mode == "continue":
        from .audio_in import continue_plan

        return continue_plan(
            plan, spec, model_rate=model_rate, hop=hop, frame_multiple=frame_multiple
        )
    if spec.grid == "off" or spec.audio_mode != "text":
        # variation and repaint: the window is the source's, already conformed to the grid
        # (:func:`.audio_in.source_window`), so the take keeps its bar lines and needs no headroom
        return plan  # exactly today's render
    cap = max(round(GRID_RENDER_CAP_SECONDS * plan.out_rate), plan.needed_samples)
    wanted = min(input_samples(plan, spec), cap) + plan.margin_samples
    model_samples = Samples(math.ceil(wanted * model_rate / plan.out_rate))
    if model_samples <= plan.model_samples:
        return plan
    frames = frames_for_samples(model_samples, hop=hop, multiple=frame_multiple)
    return replace(plan, model_samples=model_samples, frames=frames)


def batch_key(
    spec: ClipSpec, plan: RenderPlan, *, bucket: int | None = None
) -> tuple[int, int, str, bool, str, float | None]:
    """Specs with equal keys can share one batch through the UNet.

    ``bucket`` (a compiled engine's :attr:`~.engine.Engine.frame_bucket`) rounds the frames up
    to the length actually rendered, so clips of nearby tempi share a batch and a compiled shape.
    """
    frames = plan.frames if bucket is None else -(-plan.frames // bucket) * bucket
    # audio modes start from their own latents (a variation from part-way down the schedule):
    # only specs of one mode and strength share the sampler's timesteps
    return (frames, spec.steps, spec.scheduler, spec.guidance > 1.0, spec.audio_mode, spec.strength)


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
    conformed = conform(wave, model_rate, spec, plan, mode=spec.grid, key=spec.key)
    return set_level(conformed.audio, plan, spec, conformed.report)


def set_level(
    audio: np.ndarray, plan: RenderPlan, spec: ClipSpec, report: ConformReport | None
) -> Finished:
    """The exact clip ``audio`` (at ``plan.out_rate``) at its level: ``spec.loudness_lufs``
    under the peak ceiling (saying why, when the target is not reached), or only kept under
    the ceiling. Every finished clip's level is set here (:func:`finish`, and a ``continue``
    clip, which is cut by :func:`.audio_in.cut_continuation` instead of the conform)."""
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
    return Finished(np.ascontiguousarray(audio, dtype=np.float32), gain_db, reached, note, report)


def _finish_take(
    wave: np.ndarray, plan: RenderPlan, spec: ClipSpec, prepared: Prepared | None, model_rate: int
) -> Finished:
    """:func:`finish` for every audio mode: a take from audio comes back at the source's level;
    a variation or repaint is cut on the source's grid (analysed with ``grid`` on, not
    stretched again: the source was conformed before encoding); a ``continue`` clip is the new
    bars flowing from the source's end (:func:`.audio_in.cut_continuation`)."""
    from .audio_in import cut_continuation, level_of, splice_repaint

    if spec.audio_mode == "text":
        return finish(wave, plan, spec, model_rate=model_rate)
    assert prepared is not None
    wave = wave * np.float32(level_of(prepared, spec))
    if spec.audio_mode == "repaint":
        wave = splice_repaint(wave, prepared)
    if spec.audio_mode != "continue":
        on_source_grid = replace(spec, grid="off" if spec.grid == "off" else "check")
        done = finish(wave, plan, on_source_grid, model_rate=model_rate)
        fit = prepared.source_grid
        if fit is not None and done.grid is not None:  # the stretch that was made is the source's
            said = f"source: {fit.describe()}"
            note = said if done.grid.note is None else f"{done.grid.note}; {said}"
            done = done._replace(grid=replace(done.grid, note=note))
        return done
    if not np.isfinite(wave).all():
        raise ModelError("non-finite samples (NaN or infinity) in the rendered waveform")
    audio = cut_continuation(wave, plan, prepared, model_rate=model_rate)
    report = ConformReport(spec.grid, stretched=False, note="continues the source on its grid")
    return set_level(audio, plan, spec, report)


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
    """Render validated, seeded specs sharing a :func:`batch_key`; each spec's clips best first.

    A spec with ``retake`` > 0 (and grid ``stretch``) none of whose takes fits the grid
    (:attr:`Clip.fits_grid`) is rendered again with new seeds — round k uses seed + takes·k —
    up to ``retake`` times, stopping at the first round with a take on the grid; its takes of
    all rounds are ranked together (:func:`rank_takes`) and the best ``takes`` kept, each
    saying how many retakes were used (:attr:`Clip.retakes`). Progress counts on over the
    rounds (steps of round k come after k × steps); ``is_cancelled`` is asked in every round.
    """
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
    # compiled, every spec renders into the same bucket and is trimmed to its own frames after
    bucket = getattr(engine, "frame_bucket", None)
    keys = {batch_key(s, p, bucket=bucket) for s, p in zip(specs, plans, strict=True)}
    if len(keys) != 1:
        raise ValueError(f"specs of one batch must share frames, steps and scheduler, got {keys}")
    frames = keys.pop()[0]
    if any(spec.seed is None for spec in specs):
        raise ValueError("render_batch needs seeded specs (see resolve_seed)")
    from .audio_in import prepare

    # sources read and encoded once, before any UNet step (retake rounds reuse them)
    sources = {id(s): prepare(engine, s, p) for s, p in zip(specs, plans, strict=True)}
    clips = _render_round(
        engine,
        specs,
        plans,
        frames=frames,
        round_=0,
        on_step=on_step,
        is_cancelled=is_cancelled,
        sources=sources,
    )
    # Retakes: a spec none of whose takes fits the grid renders again with new seeds (round k:
    # seed + takes·k), up to spec.retake rounds; all rounds' takes are ranked together.
    rounds = [0] * len(specs)
    for k in range(1, max(s.retake for s in specs) + 1):
        again = [
            i
            for i, spec in enumerate(specs)
            if spec.retake >= k
            and spec.grid == "stretch"
            and spec.audio_mode == "text"  # audio modes keep the source's grid
            and not any(c.fits_grid for c in clips[i])
        ]
        if not again:
            break
        steps_before = k * specs[0].steps

        def shifted(step: int, total: int, before: int = steps_before) -> None:
            if on_step is not None:  # steps keep counting up over the rounds
                on_step(before + step, before + total)

        log.info("no take fits the grid: retake %d of specs %s", k, again)
        more = _render_round(
            engine,
            [specs[i] for i in again],
            [plans[i] for i in again],
            frames=frames,
            round_=k,
            on_step=shifted,
            is_cancelled=is_cancelled,
            sources=sources,
        )
        for i, extra in zip(again, more, strict=True):
            clips[i] = clips[i] + extra
            rounds[i] = k
    out = []
    for spec, per_spec, used in zip(specs, clips, rounds, strict=True):
        ranked = rank_takes(per_spec)[: spec.takes]
        for clip in ranked:
            clip.retakes = used
            if used:  # delivered takes are numbered 0… (a restart renders missing numbers)
                clip.take = clip.rank
        out.append(ranked)
    return out


def _render_round(
    engine: Engine,
    specs: Sequence[ClipSpec],
    plans: Sequence[RenderPlan],
    *,
    frames: int,
    round_: int,
    on_step: StepCallback | None,
    is_cancelled: Callable[[], bool] | None,
    sources: Mapping[int, Prepared | None] | None = None,
) -> list[list[Clip]]:
    """One engine pass over ``specs`` (round 0, or retake ``round_``: seeds moved on by
    ``takes × round_``), each spec's takes finished, in the engine's order (CLAP score first).
    ``sources``: each spec's :func:`.audio_in.prepare` by ``id(spec)``."""
    from .audio_in import item_for
    from .engine import SEED_MODULUS, RenderItem

    sources = sources or {}
    items = []
    for spec in specs:
        first = (int(spec.seed or 0) + spec.takes * round_) % SEED_MODULUS
        morph_first = (int(spec.morph_seed_used or 0) + spec.takes * round_) % SEED_MODULUS
        items.append(
            item_for(
                spec,
                RenderItem.seeds_for(first, spec.takes),
                RenderItem.seeds_for(morph_first, spec.takes),
                sources.get(id(spec)),
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
        for order, take in enumerate(takes):  # the engine's order: best CLAP score first
            started = time.perf_counter()
            rank = order + spec.takes * round_  # a later round's take ranks after earlier ones
            wave = take.waveform[: plan.frames * engine.hop]  # a bucket's extra frames go
            done = _finish_take(wave, plan, spec, sources.get(id(spec)), engine.model_rate)
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
                    render_round=round_,
                )
            )
        clips.append(per_spec)
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
        # a DAW may transpose the loop to its project key from this; without a clear key
        # (drums, noise) the root note stays unset, so it is never transposed
        root_note=None if clip.grid is None else clip.grid.root_note,
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
