"""Post-processing: pure functions on mono float32 arrays (resampling, loops, fades, level).

Used by :mod:`musicldm_core.render` on the engine's thread to turn the model's 16 kHz waveform
into the exact clip, by :mod:`musicldm_core.wavfile` (dither before 16-bit quantisation), and by
tests to prove that loops are seamless (:func:`seam_jump`, :func:`step_percentile`).

Every function takes 1-D arrays of samples (full scale is ±1.0) and returns new float32 arrays;
none of them keeps state or touches files. Bad arguments raise :class:`ValueError` naming the
argument, since they are programming errors: requests are validated earlier, in :mod:`.spec`.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

__all__ = [
    "cut_with_fades",
    "integrated_loudness",
    "make_loop",
    "normalize_loudness",
    "peak_dbfs",
    "protect_peak",
    "resample",
    "seam_jump",
    "step_percentile",
    "tpdf_dither",
]

LOUDNESS_BLOCK_SECONDS = 0.4
"""BS.1770's gating block: pyloudnorm cannot measure anything shorter."""

LOUDNESS_LOOP_SECONDS = 3.0
"""Loops shorter than this are measured repeated to at least this long, as they will be heard."""


def _mono(audio: np.ndarray, name: str = "audio") -> np.ndarray:
    """``audio`` as a 1-D float32 array (no copy when it already is one)."""
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"{name} must be mono (a 1-D array), got shape {array.shape}")
    return array


def _check_rate(name: str, rate: int) -> None:
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
        raise ValueError(f"{name} must be a positive whole number of Hz, got {rate!r}")


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``audio`` sampled at ``from_rate`` Hz, resampled to ``to_rate`` Hz.

    Uses soxr's high-quality filter; the result holds ``round(len(audio) * to_rate / from_rate)``
    samples (float32). Equal rates give a copy, never the input itself.
    """
    _check_rate("from_rate", from_rate)
    _check_rate("to_rate", to_rate)
    audio = _mono(audio)
    if from_rate == to_rate:
        return audio.copy()
    out = soxr.resample(np.ascontiguousarray(audio), int(from_rate), int(to_rate), quality="HQ")
    return np.asarray(out, dtype=np.float32)


def _equal_power(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(fade_in, fade_out) of ``samples`` samples with fade_in² + fade_out² = 1.

    fade_in starts at exactly 0 and fade_out at exactly 1; the phase stops one step short of a
    quarter turn, so the sample right after the fade (gain exactly 1) continues the curve.
    """
    phase = np.arange(samples, dtype=np.float64) * (math.pi / 2 / samples)
    return np.sin(phase).astype(np.float32), np.cos(phase).astype(np.float32)


def make_loop(audio: np.ndarray, loop_samples: int, crossfade_samples: int) -> np.ndarray:
    """Exactly ``loop_samples`` samples that play seamlessly in a loop.

    ``audio`` must hold at least ``loop_samples + crossfade_samples`` samples of continuous
    music, rendered past the loop's end. The continuation ``audio[N:N+X]`` (N = loop_samples,
    X = crossfade_samples) is crossfaded with equal power into the head ``audio[:X]``: the
    continuation fades out from gain 1 (so ``out[0] == audio[N]``) while the head fades in. The
    rest is ``audio[X:N]`` unchanged, so when the loop wraps, its last sample ``audio[N-1]`` is
    followed by ``audio[N]``, exactly as in the rendered music. ``crossfade_samples`` 0 is a
    plain cut.
    """
    audio = _mono(audio)
    if loop_samples <= 0:
        raise ValueError(f"loop_samples must be at least 1, got {loop_samples}")
    if crossfade_samples < 0:
        raise ValueError(f"crossfade_samples must be 0 or more, got {crossfade_samples}")
    if crossfade_samples > loop_samples:
        raise ValueError(
            f"crossfade_samples ({crossfade_samples}) must not exceed loop_samples ({loop_samples})"
        )
    needed = loop_samples + crossfade_samples
    if len(audio) < needed:
        raise ValueError(
            f"a loop of {loop_samples} samples with a {crossfade_samples}-sample crossfade needs "
            f"{needed} samples of audio, got {len(audio)}"
        )
    out = audio[:loop_samples].copy()
    if crossfade_samples:
        fade_in, fade_out = _equal_power(crossfade_samples)
        tail = audio[loop_samples:needed]
        out[:crossfade_samples] = out[:crossfade_samples] * fade_in + tail * fade_out
    return out


def cut_with_fades(audio: np.ndarray, samples: int, fade_samples: int) -> np.ndarray:
    """The first ``samples`` samples of ``audio``, faded in and out (for clips that don't loop).

    Raised-cosine fades of ``fade_samples`` samples (at most half the clip each) start at exactly
    0 and end at exactly 0, so the clip neither clicks on when triggered nor off when it ends.
    """
    audio = _mono(audio)
    if samples <= 0:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if fade_samples < 0:
        raise ValueError(f"fade_samples must be 0 or more, got {fade_samples}")
    if len(audio) < samples:
        raise ValueError(f"cutting {samples} samples needs at least that many, got {len(audio)}")
    out = audio[:samples].copy()
    n = min(fade_samples, samples // 2)
    if n:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, n))).astype(np.float32)
        out[:n] *= ramp
        out[-n:] *= ramp[::-1]
    return out


def peak_dbfs(audio: np.ndarray) -> float:
    """The sample peak of ``audio`` in dBFS (0 dBFS = 1.0); ``-inf`` for silence or no samples."""
    array = np.asarray(audio)
    peak = float(np.max(np.abs(array))) if array.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0.0 else -math.inf


def protect_peak(audio: np.ndarray, ceiling_dbfs: float = -1.0) -> tuple[np.ndarray, float]:
    """Turn ``audio`` down so its sample peak is at most ``ceiling_dbfs`` dBFS; never up.

    Returns (audio as float32, gain applied in dB): the gain is negative, or 0.0 when the peak
    was already at or under the ceiling (then the audio is returned unchanged). ``audio`` is
    mono 1-D or ``(samples, channels)``: one gain for every channel (``conform`` keeps stereo).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be 1-D or (samples, channels), got shape {audio.shape}")
    peak = peak_dbfs(audio)
    if peak <= ceiling_dbfs:
        return audio, 0.0
    gain_db = ceiling_dbfs - peak
    scaled = (audio.astype(np.float64) * 10.0 ** (gain_db / 20.0)).astype(np.float32)
    return scaled, gain_db


def integrated_loudness(audio: np.ndarray, sample_rate: int, *, loop: bool = True) -> float:
    """The integrated loudness (ITU-R BS.1770, via pyloudnorm) of ``audio`` in LUFS, as heard.

    A loop shorter than 3 s is measured repeated to at least 3 s, as it will be heard; a one-shot
    shorter than BS.1770's 0.4 s block is measured zero-padded to one block (so a short hit counts
    as quieter than a sustained sound of the same level). Silence measures ``-inf``.
    """
    import pyloudnorm  # imports scipy: load it only when loudness is asked for

    audio = _mono(audio)
    _check_rate("sample_rate", sample_rate)
    if not len(audio):
        raise ValueError("audio has no samples to measure")
    measured = audio.astype(np.float64)
    if loop and len(measured) < LOUDNESS_LOOP_SECONDS * sample_rate:
        repeats = math.ceil(LOUDNESS_LOOP_SECONDS * sample_rate / len(measured))
        measured = np.tile(measured, repeats)
    block = math.ceil(LOUDNESS_BLOCK_SECONDS * sample_rate)
    if len(measured) < block:
        measured = np.pad(measured, (0, block - len(measured)))
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(measured))


def normalize_loudness(
    audio: np.ndarray,
    sample_rate: int,
    target_lufs: float,
    *,
    ceiling_dbfs: float = -1.0,
    loop: bool = True,
) -> tuple[np.ndarray, float]:
    """Set the integrated loudness (:func:`integrated_loudness`) to ``target_lufs`` LUFS.

    ``audio`` is at ``sample_rate`` Hz. Silence (``-inf`` LUFS) gets no gain. After the gain the
    peak is kept at or under ``ceiling_dbfs`` dBFS (:func:`protect_peak`), which may leave the
    clip under the target: measure the result to know what was reached.

    Returns (audio as float32, loudness measured before any gain, in LUFS).
    """
    audio = _mono(audio)
    if not math.isfinite(target_lufs):
        raise ValueError(f"target_lufs must be a finite number of LUFS, got {target_lufs!r}")
    loudness = integrated_loudness(audio, sample_rate, loop=loop)
    if not math.isfinite(loudness):
        return audio, loudness
    gain = 10.0 ** ((target_lufs - loudness) / 20.0)
    gained = (audio.astype(np.float64) * gain).astype(np.float32)
    return protect_peak(gained, ceiling_dbfs)[0], loudness


def seam_jump(audio: np.ndarray) -> float:
    """|audio[0] − audio[-1]|: the step a looping player makes where the loop wraps (full
    scale 1.0)."""
    audio = _mono(audio)
    if not len(audio):
        raise ValueError("audio has no samples")
    return abs(float(audio[0]) - float(audio[-1]))


def step_percentile(audio: np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0–100) of the sample-to-sample change |x[n+1] − x[n]|: how big
    the clip's own steps typically are, to compare a seam's jump with."""
    audio = _mono(audio)
    if len(audio) < 2:
        raise ValueError(f"audio needs at least 2 samples to have steps, got {len(audio)}")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be a percentile from 0 to 100, got {q!r}")
    return float(np.percentile(np.abs(np.diff(audio.astype(np.float64))), q))


def tpdf_dither(audio: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus triangular (TPDF) dither spanning ±1 LSB of a ``bits``-bit integer format.

    One LSB is ``2 ** -(bits - 1)`` of full scale. Add it just before rounding to ``bits`` bits
    so the rounding error becomes benign noise instead of distortion that follows the signal.
    Works on any array shape; pass a seeded ``rng`` for reproducible files.
    """
    if not 2 <= bits <= 32:
        raise ValueError(f"bits must be from 2 to 32, got {bits!r}")
    array = np.asarray(audio, dtype=np.float32)
    lsb = 2.0 ** -(bits - 1)
    noise = (rng.random(array.shape) - rng.random(array.shape)) * lsb
    return (array + noise).astype(np.float32)
