"""Audio in: from a sound file to the model's latents, and back (issue 12).

The inverse of the engine's decode path, used by :func:`.render.render_batch` for clips that
start from audio (:attr:`.spec.ClipSpec.audio_mode` ``variation``, ``repaint``, ``continue``)
and for the ``like`` reference clip:

1. :func:`read_audio`: any file soundfile reads (WAV, FLAC, AIFF, OGG, …) as mono float32 at
   its own rate; anything else is a :class:`BadRequest` naming the file;
2. :func:`source_window`: the source fitted to a clip's window at the model's rate: conformed
   to the clip's tempo grid first (:func:`.conform.conform`, when the clip has bars and ``grid``
   ``stretch``), cut to the clip's length, and continued past it by repeating its start (a loop
   continues into its own head), or a :class:`BadRequest` when it is too short;
3. :func:`log_mel`: the log-mel spectrogram the checkpoint was trained on (AudioLDM's
   ``TacotronSTFT``: 16 kHz, n_fft 1024, Hann window 1024, hop 160, 64 slaney mel bands
   0–8000 Hz, log of the magnitude clamped at 1e-5), computed in torch;
4. :func:`encode`: the VAE posterior's mean times the VAE's ``scaling_factor``: latents
   ``(1, C, frames / 4, mel_bins / 4)``, the same scale the UNet samples in. Audio is first
   normalised as in training (mean removed, peak 0.5); the gain is kept so that
   :func:`decode` (the round trip) and the renders built on the latents come back at the
   source's own level;
5. :func:`audio_embedding`: CLAP's audio embedding (unit norm, the space the text embeddings
   that condition MusicLDM live in) for ``like``.

Runs on the thread that owns the engine (it uses the engine's VAE, vocoder and CLAP).
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .beats import RenderPlan, clip_samples, frames_for_samples, plan_render, seconds_samples
from .conform import ConformReport, conform
from .dsp import resample
from .errors import BadRequest
from .spec import ClipSpec
from .units import Samples

if TYPE_CHECKING:
    from .engine import Engine, RenderItem

__all__ = [
    "CONTEXT_WINDOW_SECONDS",
    "DECLICK_SECONDS",
    "EDGE_LATENT_FRAMES",
    "MEL_FMAX",
    "MEL_FMIN",
    "N_FFT",
    "SHORTFALL_SECONDS",
    "TRAINING_PEAK",
    "Encoded",
    "Prepared",
    "audio_embedding",
    "clip_model_samples",
    "context_samples",
    "continue_plan",
    "cut_continuation",
    "decode",
    "encode",
    "item_for",
    "level_of",
    "like_embedding",
    "log_mel",
    "prepare",
    "read_audio",
    "round_trip",
    "source_window",
    "splice_repaint",
]

log = logging.getLogger(__name__)

N_FFT = 1024
"""STFT size and Hann window length of the checkpoint's mel (AudioLDM's ``filter_length``)."""

MEL_FMIN = 0.0
MEL_FMAX = 8000.0
"""The mel bands span 0 Hz to the model's Nyquist frequency."""

LOG_FLOOR = 1e-5
"""Mel magnitudes are clamped here before the log (AudioLDM's dynamic range compression)."""

TRAINING_PEAK = 0.5
"""AudioLDM normalises every training clip to this peak (after removing its mean)."""

SHORTFALL_SECONDS = 0.01
"""A source at most this much shorter than the clip is taken as the clip's length (rounding
between sample rates); it is padded by repeating its start."""

CLAP_SECONDS = 10.0
"""CLAP's audio branch looks at 10 s: a longer reference clip is embedded from its start."""


def read_audio(path: str | Path, *, key: str = "from") -> tuple[np.ndarray, int]:
    """The file at ``path`` as mono float32 samples and its sample rate (Hz).

    Channels are averaged. Raises :class:`BadRequest` (``key`` names the option it came from)
    for a missing file, a file soundfile cannot read as audio, or one with no samples, and for
    a link (callers pass resolved paths, so a link is a file swapped since it was checked).
    """
    import soundfile

    where = Path(path)
    if where.is_symlink():
        # the daemon checked and resolved this path when it took the request: a file that has
        # become a link since may point anywhere, and is not followed
        raise BadRequest(f"{key}: {where} has become a link since it was checked", key=key)
    if not where.is_file():
        raise BadRequest(f"{key}: no audio file at {where}", key=key)
    try:
        data, rate = soundfile.read(str(where), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise BadRequest(
            f"{key}: {where.name} is not an audio file this can read "
            f"(WAV, FLAC, AIFF, OGG and the other formats libsndfile reads): {exc}",
            key=key,
        ) from None
    if data.size == 0:
        raise BadRequest(f"{key}: {where.name} holds no audio samples", key=key)
    mono = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
    if not np.isfinite(mono).all():
        raise BadRequest(f"{key}: {where.name} holds non-finite samples (NaN or infinity)", key=key)
    return mono, int(rate)


def clip_model_samples(spec: ClipSpec, model_rate: int) -> int:
    """The clip's exact length at the model's rate (bars at bpm, or seconds)."""
    if spec.seconds is not None:
        return seconds_samples(spec.seconds, model_rate)
    return clip_samples(
        bars=spec.bars, beats_per_bar=spec.beats_per_bar, bpm=spec.bpm, sample_rate=model_rate
    )


def _too_short(name: str, have: float, need: float, key: str) -> BadRequest:
    return BadRequest(
        f"{key}: {name} lasts {have:.3f} s; this request needs at least {need:.3f} s of it",
        key=key,
    )


def source_window(
    audio: np.ndarray,
    rate: int,
    spec: ClipSpec,
    *,
    samples: int,
    model_rate: int = 16000,
    name: str = "the source",
    key: str = "from",
) -> tuple[np.ndarray, ConformReport | None]:
    """The source fitted to a variation's or repaint's window: ``samples`` float32 samples at
    ``model_rate``, whose first :func:`clip_model_samples` are the clip's length of the source,
    and what the conform found and did (None when it was not asked: ``grid`` off, a clip in
    seconds, or a source no longer than the clip, which has no room to be stretched from).

    With bars and ``grid`` ``stretch`` the source is first conformed to the clip's tempo grid
    (:func:`.conform.conform`: stretched onto the grid from its first bar line) when the
    analysis finds a clear beat within the stretch limits; otherwise it is cut from its start
    (the report says why). The window past the clip's end (the loop crossfade and the
    resampler's margin) repeats the source's start: a loop continues into its own head. Raises
    :class:`BadRequest` when the source is shorter than the clip (by more than
    :data:`SHORTFALL_SECONDS`).
    """
    need = clip_model_samples(spec, model_rate)
    model_audio = resample(audio, rate, model_rate)
    have = len(model_audio)
    if have < need - round(SHORTFALL_SECONDS * model_rate):
        raise _too_short(name, have / model_rate, need / model_rate, key)
    clip = model_audio[:need]
    report = None
    if spec.grid == "stretch" and spec.seconds is None and have >= need:
        plan = plan_render(out_samples=need, out_rate=model_rate, loop=False, margin_seconds=0.0)
        conformed = conform(model_audio, model_rate, spec, plan, mode="stretch")
        report = conformed.report
        if report.grid_error_ms is not None:  # put on the grid: use it
            clip = conformed.audio
        log.info("source %s: %s", name, report.describe())
    return np.ascontiguousarray(np.resize(clip, samples), dtype=np.float32), report


@functools.lru_cache(maxsize=4)
def _mel_basis(model_rate: int, mel_bins: int) -> torch.Tensor:
    import librosa  # lazy: only audio in needs it here

    basis = librosa.filters.mel(
        sr=model_rate, n_fft=N_FFT, n_mels=mel_bins, fmin=MEL_FMIN, fmax=MEL_FMAX
    )  # slaney scale and norm: librosa's defaults, and what AudioLDM's STFT uses
    return torch.from_numpy(np.asarray(basis, dtype=np.float32))


def log_mel(
    wave: np.ndarray | torch.Tensor,
    *,
    frames: int,
    hop: int = 160,
    model_rate: int = 16000,
    mel_bins: int = 64,
) -> torch.Tensor:
    """The checkpoint's log-mel of ``wave`` (mono, at ``model_rate``): ``(1, frames, mel_bins)``
    float32 on the CPU; frame i is centred on sample ``i * hop`` (reflect-padded edges)."""
    signal = torch.as_tensor(np.asarray(wave, dtype=np.float32)).flatten()
    wanted = frames * hop
    if len(signal) < wanted:
        signal = torch.nn.functional.pad(signal, (0, wanted - len(signal)))
    signal = signal[:wanted]
    spectrum = torch.stft(
        signal,
        n_fft=N_FFT,
        hop_length=hop,
        win_length=N_FFT,
        window=torch.hann_window(N_FFT),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    ).abs()
    mel = _mel_basis(model_rate, mel_bins) @ spectrum
    return torch.log(torch.clamp(mel, min=LOG_FLOOR)).T[:frames].unsqueeze(0)


@dataclass(frozen=True)
class Encoded:
    """Latents of a piece of audio, and the gain that brought it to the training level."""

    latents: torch.Tensor
    """``(1, C, frames / vae_factor, mel_bins / vae_factor)`` in the engine's dtype and device."""
    gain: float
    """The audio was multiplied by this before encoding; divide decoded audio by it."""


def training_gain(wave: np.ndarray) -> float:
    """The gain that brings ``wave`` (mean removed) to :data:`TRAINING_PEAK` (1.0 for silence)."""
    centred = wave.astype(np.float64) - float(np.mean(wave)) if len(wave) else wave
    peak = float(np.max(np.abs(centred))) if len(wave) else 0.0
    return TRAINING_PEAK / peak if peak > 1e-6 else 1.0


@torch.inference_mode()
def encode(engine: Engine, wave: np.ndarray, *, frames: int) -> Encoded:
    """VAE latents of ``wave`` (mono float32 at the model's rate; padded or cut to ``frames``
    mel frames): the posterior's mean times ``scaling_factor``."""
    engine.check_frames(frames)
    gain = training_gain(wave)
    centred = (wave.astype(np.float32) - np.float32(np.mean(wave))) * np.float32(gain)
    mel = log_mel(
        centred,
        frames=frames,
        hop=engine.hop,
        model_rate=engine.model_rate,
        mel_bins=engine.mel_bins,
    )

    def posterior_mean() -> torch.Tensor:
        image = mel.unsqueeze(1).to(engine.device, engine.component_dtype("vae"))  # (1, 1, T, F)
        return engine.vae.encode(image).latent_dist.mean

    mean = engine.run_stage("vae", posterior_mean, "the VAE encoder (the source audio)")
    latents = mean * engine.vae.config.scaling_factor
    return Encoded(latents.to(engine.dtype), gain)


@torch.inference_mode()
def decode(engine: Engine, encoded: Encoded, *, samples: int) -> np.ndarray:
    """``samples`` float32 samples at the model's rate from ``encoded``, at the source's level."""
    mel = engine.decode_latents(encoded.latents)
    wave = engine.vocode(mel, samples=samples)[0]
    return np.ascontiguousarray(wave / np.float32(encoded.gain), dtype=np.float32)


def round_trip(engine: Engine, wave: np.ndarray, *, frames: int) -> np.ndarray:
    """``wave`` through the VAE and vocoder (what strength 0 gives): ``frames * hop`` samples."""
    return decode(engine, encode(engine, wave, frames=frames), samples=frames * engine.hop)


@torch.inference_mode()
def audio_embedding(engine: Engine, wave: np.ndarray, rate: int) -> torch.Tensor:
    """CLAP's unit-norm audio embedding ``(projection_dim,)`` of ``wave`` (mono at ``rate``),
    from its first :data:`CLAP_SECONDS` (shorter audio is repeated to fill, as CLAP does)."""
    return engine.embed_audio([wave[: int(CLAP_SECONDS * rate)]], rate)[0]


LIKE_CACHE_SIZE = 16
"""Reference clips whose embeddings an engine keeps (an evolving set reuses a few ``like``s)."""

_like_cache: weakref.WeakKeyDictionary[Engine, OrderedDict[tuple[str, int, int], torch.Tensor]]
_like_cache = weakref.WeakKeyDictionary()


def like_embedding(engine: Engine, path: str) -> torch.Tensor:
    """:func:`audio_embedding` of the file at ``path``, read once: kept per engine by path,
    modification time and size, so a changed file is read again."""
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None  # read_audio says what is wrong with it
    cache = _like_cache.setdefault(engine, OrderedDict())
    if key is not None and key in cache:
        cache.move_to_end(key)
        return cache[key]
    wave, rate = read_audio(path, key="like")
    embedding = audio_embedding(engine, wave, rate)
    if key is not None:
        cache[key] = embedding
        while len(cache) > LIKE_CACHE_SIZE:
            cache.popitem(last=False)
    return embedding


# -- what render_batch needs: plans, prepared sources, items, the continuation's cut ------------

EDGE_LATENT_FRAMES = 2
"""The soft edge of a repaint or continue mask, in latent frames (4 mel frames = 40 ms each):
the weight ramps from kept to regenerated over this many frames outside the region, so the
new music grows out of the held music instead of starting at a hard latent boundary."""

CONTEXT_WINDOW_SECONDS = 10.24
"""``continue`` fills the model's training window (10.24 s) with the source's last whole bars
and the new bars (at least one bar of context, however long the new bars are)."""

DECLICK_SECONDS = 0.01
"""A continuation's head is offset-matched to the source's last sample over this long (and,
for a loop, its tail too), so the step from the source into it is the model's own step."""


def context_samples(spec: ClipSpec, model_rate: int) -> int:
    """Samples (model rate) of the source a ``continue`` clip is rendered after: its last whole
    bars, as many as fit :data:`CONTEXT_WINDOW_SECONDS` with the new bars, at least one. A
    shorter source is repeated back in time to fill them (a loop plays so anyway)."""
    bar = clip_samples(
        bars=1, beats_per_bar=spec.beats_per_bar, bpm=spec.bpm, sample_rate=model_rate
    )
    new = clip_model_samples(spec, model_rate)
    bars = max(1, int((CONTEXT_WINDOW_SECONDS * model_rate - new) // bar))
    return clip_samples(
        bars=bars, beats_per_bar=spec.beats_per_bar, bpm=spec.bpm, sample_rate=model_rate
    )


def continue_plan(
    plan: RenderPlan, spec: ClipSpec, *, model_rate: int, hop: int, frame_multiple: int
) -> RenderPlan:
    """``plan`` (the new bars' exact cut) with the render lengthened by the context before them:
    ``model_samples`` and ``frames`` cover context + new bars + the loop's continuation."""
    model_samples = Samples(context_samples(spec, model_rate) + plan.model_samples)
    frames = frames_for_samples(model_samples, hop=hop, multiple=frame_multiple)
    return replace(plan, model_samples=model_samples, frames=frames)


@dataclass(frozen=True)
class Prepared:
    """A spec's audio, read and encoded once per batch (retake rounds reuse it)."""

    encoded: Encoded | None = None
    """The window's latents (variation, repaint: the source fitted to the clip; continue: the
    context then silence), None in text mode."""
    mask: torch.Tensor | None = None
    """(latent frames,) 1 = regenerate, 0 = hold ``encoded`` (repaint, continue)."""
    like: torch.Tensor | None = None
    """The reference clip's CLAP audio embedding."""
    context: int = 0
    """Continue: samples (model rate) of context before the new bars."""
    source_end: float = 0.0
    """Continue: the source's last sample, at the clip's output rate (for the declick)."""
    held_audio: np.ndarray | None = None
    """Repaint: the window's round trip (model rate, the source's level). The VAE decoder's
    attention reaches across the whole clip, so held latents alone do not keep the other bars
    bit for bit: :func:`splice_repaint` takes them from this, crossfading over the mask's
    soft edge."""
    span: int = 640
    """Samples (model rate) per latent frame."""
    source_grid: ConformReport | None = None
    """Variation, repaint: how the source was conformed to the clip's grid before encoding
    (:func:`source_window`; None when it was not asked)."""


def _mask(frames: int, vae_factor: int, hop: int, first: int, last: int) -> torch.Tensor:
    """Latent-frame weights: 1 on latent frames touching samples [first, last), ramping to 0
    over :data:`EDGE_LATENT_FRAMES` on each side."""
    span = vae_factor * hop  # samples per latent frame
    count = frames // vae_factor
    lo, hi = first // span, min(count, -(-last // span))
    mask = torch.zeros(count, dtype=torch.float32)
    mask[lo:hi] = 1.0
    for k in range(1, EDGE_LATENT_FRAMES + 1):
        weight = 1.0 - k / (EDGE_LATENT_FRAMES + 1)
        if lo - k >= 0:
            mask[lo - k] = weight
        if hi - 1 + k < count:
            mask[hi - 1 + k] = weight
    return mask


def prepare(engine: Engine, spec: ClipSpec, plan: RenderPlan) -> Prepared | None:
    """Read and encode what ``spec`` starts from (``source``, ``like``); None for a text clip
    without ``like``. Raises :class:`BadRequest` naming the file for unreadable or too short
    audio."""
    mode = spec.audio_mode
    like = None
    if spec.like is not None and spec.like_weight > 0:
        like = like_embedding(engine, spec.like)
    if mode == "text":
        return None if like is None else Prepared(like=like)
    assert spec.source is not None  # validated: every audio mode has a source
    audio, rate = read_audio(spec.source, key="from")
    name = Path(spec.source).name
    window = plan.frames * engine.hop
    rate_m = engine.model_rate
    if mode in ("variation", "repaint"):
        fitted, fit = source_window(audio, rate, spec, samples=window, model_rate=rate_m, name=name)
        encoded = encode(engine, fitted, frames=plan.frames)
        mask = None
        if mode == "repaint":
            assert spec.repaint is not None
            first_bar, last_bar = spec.repaint
            meter, bpm = spec.beats_per_bar, spec.bpm
            first = clip_samples(
                bars=first_bar - 1, beats_per_bar=meter, bpm=bpm, sample_rate=rate_m
            )
            last = clip_samples(bars=last_bar, beats_per_bar=meter, bpm=bpm, sample_rate=rate_m)
            mask = _mask(plan.frames, engine.vae_factor, engine.hop, first, last)
            held = decode(engine, encoded, samples=window)
            span = engine.vae_factor * engine.hop
            return Prepared(
                encoded=encoded, mask=mask, like=like, held_audio=held, span=span, source_grid=fit
            )
        return Prepared(encoded=encoded, mask=mask, like=like, source_grid=fit)
    # continue: the source's last bars, then the new bars (held nowhere)
    beat = rate * 60.0 / spec.bpm
    if len(audio) < beat:
        raise _too_short(name, len(audio) / rate, beat / rate, "from")
    context = context_samples(spec, rate_m)
    model_audio = resample(audio, rate, rate_m)
    tiled = np.resize(model_audio[::-1], context)[::-1]  # ends exactly at the source's end
    wave = np.zeros(window, dtype=np.float32)
    wave[:context] = tiled
    encoded = encode(engine, wave, frames=plan.frames)
    mask = _mask(plan.frames, engine.vae_factor, engine.hop, context, window)
    end = audio if rate == plan.out_rate else resample(audio, rate, plan.out_rate)
    return Prepared(
        encoded=encoded, mask=mask, like=like, context=context, source_end=float(end[-1])
    )


def item_for(
    spec: ClipSpec, seeds: tuple[int, ...], morph_seeds: tuple[int, ...], prepared: Prepared | None
) -> RenderItem:
    """The engine's :class:`~.engine.RenderItem` for ``spec`` with its audio and mixes."""
    from .engine import RenderItem

    return RenderItem(
        prompt=spec.prompt,
        negative_prompt=spec.negative_prompt,
        guidance=spec.guidance,
        seeds=seeds,
        start=None if prepared is None or prepared.encoded is None else prepared.encoded.latents,
        strength=spec.strength,
        mask=None if prepared is None else prepared.mask,
        blend=spec.blend,
        like=None if prepared is None else prepared.like,
        like_weight=spec.like_weight,
        morph_to=spec.morph_to,
        morph=spec.morph,
        morph_seeds=morph_seeds if spec.morph_to is not None else None,
    )


def level_of(prepared: Prepared | None, spec: ClipSpec | None = None) -> float:
    """The factor a take of ``prepared`` is multiplied by to come back at the source's level
    (1 for a text clip, and for strength 1: a fresh render that never saw the source)."""
    if prepared is None or prepared.encoded is None:
        return 1.0
    if spec is not None and spec.strength is not None and spec.strength >= 1.0:
        return 1.0
    return 1.0 / prepared.encoded.gain


def cut_continuation(
    wave: np.ndarray, plan: RenderPlan, prepared: Prepared, *, model_rate: int
) -> np.ndarray:
    """The new bars of a ``continue`` render (``wave``: the whole window at the model's rate,
    at the source's level) as exactly ``plan.out_samples`` at ``plan.out_rate``.

    The clip starts where the source ends and is not faded in: its head is offset-matched to
    the source's last sample over :data:`DECLICK_SECONDS`. A loop is closed at its tail: the
    crossfade blends the end into the music just before the head (the window's own audio,
    continuous with it), so it wraps as smoothly as it follows the source; a one-shot fades
    out at its end only.
    """
    audio = resample(wave, model_rate, plan.out_rate)
    head = round(prepared.context * plan.out_rate / model_rate)
    n, x = plan.out_samples, plan.crossfade_samples if plan.loop else 0
    if head < max(x, 1) or len(audio) < head + n:
        raise ValueError(f"a continuation window of {len(audio)} samples cannot give {n}")
    out = audio[head : head + n].astype(np.float32).copy()
    if x:
        phase = np.arange(x, dtype=np.float64) * (np.pi / 2 / x)
        fade_in, fade_out = np.sin(phase + np.pi / 2 / x), np.cos(phase + np.pi / 2 / x)
        out[n - x :] = out[n - x :] * fade_out + audio[head - x : head] * fade_in
    offset = prepared.source_end - float(audio[head - 1])
    span = min(round(DECLICK_SECONDS * plan.out_rate), n // 4)
    if span:
        ramp = 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, span))  # 1 → 0
        out[:span] += np.float32(offset) * ramp.astype(np.float32)
        if plan.loop:
            out[n - span :] += np.float32(offset) * ramp[::-1].astype(np.float32)
    if not plan.loop:
        fade = min(round(0.005 * plan.out_rate), n // 8)
        if fade:
            out[n - fade :] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))).astype(
                np.float32
            )
    return np.ascontiguousarray(out, dtype=np.float32)


def splice_repaint(wave: np.ndarray, prepared: Prepared) -> np.ndarray:
    """A repaint's take (model rate, the source's level) with the held bars taken from the
    source's round trip, crossfaded with the new bars over the mask's soft edge."""
    if prepared.held_audio is None or prepared.mask is None:
        return wave
    span = prepared.span
    weights = prepared.mask.numpy().astype(np.float64)
    # per-sample weight: linear between latent-frame centres, so the crossfade has no steps
    centres = (np.arange(len(weights)) + 0.5) * span
    per_sample = np.interp(np.arange(len(wave)), centres, weights).astype(np.float32)
    held = prepared.held_audio[: len(wave)]
    return np.ascontiguousarray(held + per_sample * (wave - held), dtype=np.float32)
