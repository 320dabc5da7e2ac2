"""Post-processing: pure functions on mono float32 arrays (resampling, loops, fades, level).

Used by :mod:`musicldm_core.render` on the engine's thread, and by tests to measure seams.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

__all__ = [
    "cut_with_fades",
    "make_loop",
    "normalize_loudness",
    "peak_dbfs",
    "protect_peak",
    "resample",
    "seam_jump",
    "step_percentile",
    "tpdf_dither",
]


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``audio`` at ``from_rate`` Hz resampled to ``to_rate`` Hz with soxr (high quality)."""
    audio = np.asarray(audio, dtype=np.float32)
    if from_rate == to_rate:
        return audio.copy()
    return np.asarray(soxr.resample(audio, from_rate, to_rate, quality="HQ"), dtype=np.float32)


def _equal_power(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fade_in, fade_out) of ``n`` samples with fade_in² + fade_out² = 1."""
    phase = (np.arange(n, dtype=np.float64) / n) * (math.pi / 2)
    return np.sin(phase).astype(np.float32), np.cos(phase).astype(np.float32)


def make_loop(audio: np.ndarray, loop_samples: int, crossfade_samples: int) -> np.ndarray:
    """Exactly ``loop_samples`` samples that loop seamlessly.

    ``audio`` must hold at least ``loop_samples + crossfade_samples`` samples of continuous
    music. The continuation ``audio[N:N+X]`` is crossfaded (equal power) into the head, so the
    sample after the loop's last one (``audio[N-1]``) is, as in the rendered music, ``audio[N]``.
    """
    if loop_samples <= 0 or crossfade_samples < 0:
        raise ValueError(
            f"loop_samples must be > 0 and crossfade_samples >= 0, got {loop_samples}, "
            f"{crossfade_samples}"
        )
    if len(audio) < loop_samples + crossfade_samples:
        raise ValueError(
            f"a loop of {loop_samples} samples with a {crossfade_samples}-sample crossfade needs "
            f"{loop_samples + crossfade_samples} samples, got {len(audio)}"
        )
    out = np.array(audio[:loop_samples], dtype=np.float32)
    if crossfade_samples:
        fade_in, fade_out = _equal_power(crossfade_samples)
        tail = audio[loop_samples : loop_samples + crossfade_samples]
        out[:crossfade_samples] = out[:crossfade_samples] * fade_in + tail * fade_out
    return out


def cut_with_fades(audio: np.ndarray, samples: int, fade_samples: int) -> np.ndarray:
    """The first ``samples`` samples with raised-cosine fades in and out (ending at exactly 0)."""
    if samples <= 0 or fade_samples < 0:
        raise ValueError(
            f"samples must be > 0 and fade_samples >= 0, got {samples}, {fade_samples}"
        )
    if len(audio) < samples:
        raise ValueError(f"need {samples} samples, got {len(audio)}")
    out = np.array(audio[:samples], dtype=np.float32)
    n = min(fade_samples, samples // 2)
    if n:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, n))).astype(np.float32)
        out[:n] *= ramp  # from exactly 0
        out[-n:] *= ramp[::-1]  # to exactly 0
    return out


def peak_dbfs(audio: np.ndarray) -> float:
    """The sample peak in dBFS (-inf for silence)."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def protect_peak(audio: np.ndarray, ceiling_dbfs: float = -1.0) -> tuple[np.ndarray, float]:
    """Turn ``audio`` down so its peak is at most ``ceiling_dbfs``; never up. Returns the gain."""
    peak = peak_dbfs(audio)
    if peak <= ceiling_dbfs:
        return audio, 0.0
    gain_db = ceiling_dbfs - peak
    return (audio * np.float32(10 ** (gain_db / 20))).astype(np.float32), gain_db


def normalize_loudness(
    audio: np.ndarray,
    sample_rate: int,
    target_lufs: float,
    *,
    ceiling_dbfs: float = -1.0,
    loop: bool = True,
) -> tuple[np.ndarray, float]:
    """Set integrated loudness (ITU-R BS.1770, pyloudnorm) to ``target_lufs``, then keep the
    peak under ``ceiling_dbfs``. Short clips are measured tiled (loops) or zero-padded to 3 s.
    Returns (audio, loudness measured before)."""
    import pyloudnorm

    measured_audio = np.asarray(audio, dtype=np.float64)
    minimum = 3 * sample_rate
    if len(measured_audio) < minimum:
        if loop and len(measured_audio):
            measured_audio = np.tile(measured_audio, math.ceil(minimum / len(measured_audio)))
        else:
            measured_audio = np.pad(measured_audio, (0, minimum - len(measured_audio)))
    loudness = float(pyloudnorm.Meter(sample_rate).integrated_loudness(measured_audio))
    if not math.isfinite(loudness):
        return audio, loudness
    gained = (audio * np.float32(10 ** ((target_lufs - loudness) / 20))).astype(np.float32)
    return protect_peak(gained, ceiling_dbfs)[0], loudness


def seam_jump(audio: np.ndarray) -> float:
    """|first − last|: the step a looping player makes at the seam."""
    return float(abs(float(audio[0]) - float(audio[-1])))


def step_percentile(audio: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of the sample-to-sample change |x[n+1] − x[n]|."""
    return float(np.percentile(np.abs(np.diff(np.asarray(audio, dtype=np.float64))), q))


def tpdf_dither(audio: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus triangular dither of ±1 LSB at ``bits`` bits (before quantising)."""
    lsb = 1.0 / (2 ** (bits - 1))
    noise = (rng.random(len(audio)) - rng.random(len(audio))) * lsb
    return (audio + noise).astype(np.float32)
