"""Where the music's own grid is: tempo, beats, bar lines and key, found in the audio.

MusicLDM has no tempo input, so a clip asked for at 120 BPM is played at whatever tempo the
model likes. :func:`analyse` measures what it actually played, so that :mod:`.conform` can put
it on the grid the clip claims. Pure functions on numpy arrays (mono or stereo, any rate), no
state, nothing downloaded; called on the engine's thread after a render, or by a CLI.

How it works:

1. **Onset envelopes** (librosa's mel spectral flux, 5.8 ms frames at 22.05 kHz): one broadband
   and one for the low end (kick and bass, under 200 Hz).
2. **Tempo**: librosa's tempogram estimate, then the *tempo octave* is chosen: a groove read at
   180 BPM may be the 90 BPM groove it is in half time, so readings ×½, ×2 (and ×¼, ×4) are
   candidates, and the one nearest the target tempo wins when a target is given.
3. **Grid fit**: the envelope is folded at periods within ±4 % of that tempo and the sharpest
   fold gives period and phase; then each beat's own onset peak (sub-frame, parabolic) is found
   and a weighted line through them fixes period and phase to about a millisecond. Off-beats
   (swing, pickups) are not beats and do not pull the fit: only peaks near the beats count.
4. **Bar line**: each beat is scored by its low-end onset, its broadband onset and the change of
   harmony (chroma) across it; the beat position within the bar that scores highest is the
   downbeat. The first bar line is the first such beat where the music plays, wherever the file
   starts (silence and pickups before it are skipped).
5. **Key**: the chroma profile of the whole clip against the Krumhansl–Kessler major and minor
   profiles in all 12 keys.

librosa's first call compiles numba code (tens of seconds in a fresh environment, a few seconds
from numba's on-disk cache): call :func:`.conform.warm_up` at start, not on the first request.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, replace

import numpy as np
import soxr

from .spec import KEY_NAMES
from .spec import parse_key as _parse_key

__all__ = [
    "ANALYSIS_RATE",
    "CLEAR_BEAT",
    "KEY_NAMES",
    "GridReport",
    "analyse",
    "detect_key",
    "parse_key",
    "to_mono",
]

log = logging.getLogger(__name__)

ANALYSIS_RATE = 22050
"""Audio is analysed at this rate (Hz), whatever rate it comes at."""

HOP = 128
"""Onset-envelope hop at :data:`ANALYSIS_RATE`: 5.8 ms frames."""

N_FFT = 512
"""Onset-envelope window (23 ms): short, so an onset is placed to a few milliseconds."""

CHROMA_N_FFT = 4096
CHROMA_HOP = 1024

LOW_END_HZ = 200.0
"""Mel bands under this make the low-end (kick, bass) envelope."""

MIN_BPM = 40.0
MAX_BPM = 240.0
"""Tempo octaves are resolved into this range."""

PULSE_SCORE_CLEAR = 0.3
"""A pulse score (autocorrelation at 1–4 beats) this high counts as a fully clear beat."""

CLEAR_BEAT = 0.35
"""Below this confidence the report's ``note`` says the beat is unclear (its numbers are kept:
they are the best guess, for a report; :mod:`.conform` does not stretch to them)."""

SILENCE_RMS = 1e-4
"""Audio quieter than this (-80 dBFS RMS) has no beat to find."""


# Krumhansl & Kessler (1982) probe-tone profiles, tonic first
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class GridReport:
    """What :func:`analyse` found. Times are seconds from the start of the analysed audio.

    ``tempo_bpm`` is None (and ``confidence`` near 0) when no steady beat was found; ``note``
    then says why. ``confidence`` (0–1) is how clearly the onsets fall on one steady grid.
    ``raw_tempo_bpm`` is the tempogram's reading before the tempo octave was chosen and
    ``octave`` the factor applied to it (0.5: the reading was double time). ``beats_s`` is the
    fitted grid over the span where music plays; ``phase_s`` is where that grid crosses the
    start (0 ≤ phase_s < one beat); ``downbeat_s`` is the first bar line, ``downbeats_s`` all of
    them. ``fit_error_ms`` is the RMS distance of the beats' onsets from the fitted grid.
    ``swing`` is where the off-beat eighth falls in the beat (0.5 straight, 0.67 triplet swing),
    None when there are no off-beats to tell. ``key`` and ``key_confidence`` (0–1) are the
    chroma profile's key; ``tonality`` (0–1) the share of the energy in partials (notes), near
    0 for drums and noise: only tonal music is transposed to a ``key``.
    """

    duration_s: float
    tempo_bpm: float | None
    confidence: float
    beats_s: tuple[float, ...] = ()
    phase_s: float | None = None
    downbeat_s: float | None = None
    downbeats_s: tuple[float, ...] = ()
    downbeat_confidence: float = 0.0
    beats_per_bar: int = 4
    raw_tempo_bpm: float | None = None
    octave: float = 1.0
    fit_error_ms: float | None = None
    swing: float | None = None
    key: str | None = None
    key_confidence: float = 0.0
    tonality: float = 0.0
    note: str | None = None

    @property
    def beat_s(self) -> float | None:
        """One beat of the detected tempo, in seconds."""
        return None if self.tempo_bpm is None else 60.0 / self.tempo_bpm

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready numbers (rounded; beat lists left out: they are long)."""

        def r(value: float | None, digits: int = 4) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "tempo_bpm": r(self.tempo_bpm, 3),
            "confidence": r(self.confidence, 3),
            "raw_tempo_bpm": r(self.raw_tempo_bpm, 3),
            "octave": self.octave,
            "phase_s": r(self.phase_s),
            "downbeat_s": r(self.downbeat_s),
            "downbeat_confidence": r(self.downbeat_confidence, 3),
            "beats": len(self.beats_s),
            "beats_per_bar": self.beats_per_bar,
            "fit_error_ms": r(self.fit_error_ms, 2),
            "swing": r(self.swing, 3),
            "key": self.key,
            "key_confidence": r(self.key_confidence, 3),
            "tonality": r(self.tonality, 3),
            "note": self.note,
        }


def to_mono(audio: np.ndarray) -> np.ndarray:
    """``audio`` as one float32 channel: 1-D as is, 2-D (frames, channels) averaged.

    A 2-D array with more than 8 columns and at most 8 rows is taken as (channels, frames).
    """
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise ValueError(f"audio must be 1-D or 2-D (frames, channels), got shape {array.shape}")
    if array.shape[1] > 8 >= array.shape[0]:
        array = array.T
    return array.mean(axis=1, dtype=np.float32)


def _prepare(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    mono = to_mono(audio)
    if not len(mono):
        raise ValueError("audio has no samples to analyse")
    if not np.isfinite(mono).all():
        raise ValueError("audio holds non-finite samples (NaN or infinity)")
    if sample_rate != ANALYSIS_RATE:
        mono = np.asarray(
            soxr.resample(np.ascontiguousarray(mono), int(sample_rate), ANALYSIS_RATE, "HQ"),
            dtype=np.float32,
        )
    return mono


@dataclass(frozen=True)
class _Envelopes:
    broad: np.ndarray
    low: np.ndarray
    frame_s: float

    def time(self, frames: np.ndarray | float) -> np.ndarray | float:
        return np.asarray(frames) * self.frame_s


@functools.cache
def _mel_filters() -> tuple[np.ndarray, int]:
    """(64 × bins mel filter bank, number of bands under :data:`LOW_END_HZ`), built once."""
    import librosa  # lazy: its submodules load on first use

    bank = librosa.filters.mel(sr=ANALYSIS_RATE, n_fft=N_FFT, n_mels=64, fmax=11025.0)
    freqs = librosa.mel_frequencies(n_mels=64, fmax=11025.0)
    return bank.astype(np.float32), max(1, int(np.searchsorted(freqs, LOW_END_HZ)))


def _envelopes(y: np.ndarray) -> _Envelopes:
    import librosa

    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True)) ** 2
    bank, low_bands = _mel_filters()
    mel = bank @ power  # a plain BLAS product: several times faster than librosa's einsum
    mel_db = librosa.power_to_db(mel, ref=float(np.max(mel)) if mel.size else 1.0, top_db=80.0)
    # channels: [low end, everything else]; librosa's flux is centred on the frame (center=True)
    flux = librosa.onset.onset_strength_multi(
        S=mel_db,
        sr=ANALYSIS_RATE,
        hop_length=HOP,
        n_fft=N_FFT,
        channels=[0, low_bands, mel_db.shape[0]],
    )
    bands = mel_db.shape[0]
    broad = (flux[0] * low_bands + flux[1] * (bands - low_bands)) / bands  # mean of all bands
    return _Envelopes(
        broad=broad.astype(np.float64), low=flux[0].astype(np.float64), frame_s=HOP / ANALYSIS_RATE
    )


def _tempo_reading(env: _Envelopes, start_bpm: float) -> float:
    """librosa's tempogram reading of the broadband envelope (its prior centred on
    ``start_bpm``). The envelope is max-pooled to 4× longer frames first: the tempogram costs
    frames × window, and the reading only picks the octave and seeds the fine fit."""
    import librosa

    pool = 4
    frames = len(env.broad) // pool * pool
    pooled = env.broad[:frames].reshape(-1, pool).max(axis=1) if frames else env.broad
    tempo = librosa.feature.tempo(
        onset_envelope=pooled.astype(np.float32),
        sr=ANALYSIS_RATE,
        hop_length=HOP * pool,
        start_bpm=start_bpm,
        max_tempo=MAX_BPM * 2,
    )
    return float(np.asarray(tempo).ravel()[0])


def _resolve_octave(raw_bpm: float, target_bpm: float | None) -> float:
    """The octave factor (¼ … 4) that brings ``raw_bpm`` nearest ``target_bpm`` in range."""
    factors = [f for f in (0.25, 0.5, 1.0, 2.0, 4.0) if MIN_BPM <= raw_bpm * f <= MAX_BPM]
    if not factors:
        return 1.0
    if target_bpm is None:
        return 1.0 if 1.0 in factors else min(factors, key=lambda f: abs(math.log2(f)))
    return min(factors, key=lambda f: abs(math.log2(raw_bpm * f / target_bpm)))


def _fold(env: np.ndarray, frame_s: float, period_s: float, bins: int) -> np.ndarray:
    """The envelope folded at ``period_s``: mean onset strength by phase (``bins`` bins)."""
    index = ((np.arange(len(env)) * (frame_s / period_s)) % 1.0 * bins).astype(int) % bins
    counts = np.bincount(index, minlength=bins)
    return np.bincount(index, env, bins) / np.maximum(counts, 1)


def _coarse_grid(pulse: np.ndarray, frame_s: float, period_s: float) -> tuple[float, float, float]:
    """(period_s, phase_s, contrast): the sharpest fold of ``pulse`` within ±1 % of
    ``period_s``. Contrast (0–1) is how far the fold's peak stands above its mean."""
    best = (period_s, 0.0, -1.0)
    bins = max(16, round(period_s / frame_s))
    for scale in np.linspace(0.99, 1.01, 11):
        candidate = period_s * scale
        folded = _fold(pulse, frame_s, candidate, bins)
        # a little circular smoothing, so one lucky bin does not win
        smooth = (np.roll(folded, 1) + 2 * folded + np.roll(folded, -1)) / 4
        peak = int(np.argmax(smooth))
        contrast = (smooth[peak] - smooth.mean()) / (smooth[peak] + 1e-12)
        if contrast > best[2]:
            best = (candidate, (peak + 0.5) / bins * candidate, float(contrast))
    return best


def _autocorrelation(pulse: np.ndarray) -> np.ndarray:
    """The normalised autocorrelation of ``pulse`` (mean removed): 1.0 at lag 0."""
    centred = pulse - pulse.mean()
    spectrum = np.fft.rfft(centred, 2 * len(centred))
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: len(centred)]
    return acf / acf[0] if acf[0] > 0 else np.zeros_like(acf)


COMB_LAGS = 4
"""Beat periods the pulse score looks at: a steady beat repeats at 1, 2, 3 and 4 beats."""


def _combs(acf: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Pulse score of each of ``periods`` (frames): the mean autocorrelation at 1…4 periods
    (those it can measure, within 3/4 of its length; 0 when none), in one interpolation."""
    usable = 0.75 * len(acf)
    lags = periods[:, None] * np.arange(1, COMB_LAGS + 1)  # periods × multiples
    measurable = lags < usable
    values = np.interp(np.where(measurable, lags, 0.0), np.arange(len(acf)), acf)
    counts = measurable.sum(axis=1)
    sums = np.where(measurable, values, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def _refine_period(
    acf: np.ndarray, period_frames: float, span: float = 0.04
) -> tuple[float, float]:
    """(period in frames, pulse score) of the best comb within ±``span`` of ``period_frames``."""
    scales = np.linspace(1 - span, 1 + span, 41)
    scores = _combs(acf, period_frames * scales)
    best = int(np.argmax(scores))
    return period_frames * scales[best], float(scores[best])


def _choose_tempo(
    pulse: np.ndarray, frame_s: float, raw_bpm: float, target_bpm: float | None
) -> tuple[float, float, float, float]:
    """(factor from the reading, period_s, phase_s, pulse score) of the tempo of the music.

    The tempogram's reading may be a triplet relation off (2/3 or 3/2 of the beat, common when
    the pattern is syncopated): of the reading and those two, the one whose beat repeats best
    (autocorrelation at 1–4 beats) wins. Its tempo octave is then chosen toward
    ``target_bpm`` (:func:`_resolve_octave`), and the phase found by folding the pulse.
    """
    acf = _autocorrelation(pulse)
    reading = 60.0 / raw_bpm / frame_s
    best_relation, (best_period, best_score) = 1.0, _refine_period(acf, reading)
    for relation in (2 / 3, 3 / 2):
        period, score = _refine_period(acf, reading / relation)
        if score > best_score + 0.03:  # the reading wins near-ties: its prior preferred it
            best_relation, best_period, best_score = relation, period, score
    octave = _resolve_octave(60.0 / (best_period * frame_s), target_bpm)
    if octave != 1.0:
        best_period, best_score = _refine_period(acf, best_period / octave, span=0.01)
    period_s, phase_s, _contrast = _coarse_grid(pulse, frame_s, best_period * frame_s)
    return best_relation * octave, period_s, phase_s, best_score


def _peak_near(env: np.ndarray, frame: float, radius: int) -> tuple[float, float]:
    """(frame, height) of the envelope's highest point within ``radius`` frames of ``frame``,
    refined between frames by a parabola through the peak and its neighbours."""
    centre = round(frame)
    lo, hi = max(1, centre - radius), min(len(env) - 1, centre + radius + 1)
    if hi <= lo:
        return frame, 0.0
    index = lo + int(np.argmax(env[lo:hi]))
    a, b, c = env[index - 1], env[index], env[index + 1] if index + 1 < len(env) else env[index]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return index + float(np.clip(shift, -0.5, 0.5)), float(b)


@dataclass(frozen=True)
class _Fit:
    period_s: float
    phase_s: float
    indices: np.ndarray  # beat numbers k of grid beats with music: t_k = phase + k·period
    heights: np.ndarray  # onset strength at each of those beats
    residual_ms: float
    on_beat: float  # share of beats with a clear onset on the grid


def _fine_grid(
    env: _Envelopes, period_s: float, phase_s: float, music: tuple[float, float]
) -> _Fit | None:
    """The grid through the beats' own onset peaks, from a coarse period and phase.

    Each grid beat where music plays looks for its envelope peak nearby (15 %, then 8 % of a
    beat: off-beats are further away); a weighted line through those peaks (weight: the
    peak's height over the envelope's median, squared, so rests barely count) gives period
    and phase. None when fewer than two beats have an onset.
    """
    duration = len(env.broad) * env.frame_s
    baseline = float(np.median(env.broad))
    spread = float(np.percentile(env.broad, 95) - baseline) + 1e-12
    fit = None
    for radius_share in (0.15, 0.08):
        first = math.ceil((music[0] - phase_s) / period_s - 0.25)
        last = math.floor((min(music[1], duration) - phase_s) / period_s)
        ks = np.arange(max(first, -math.floor(phase_s / period_s)), last + 1)
        if len(ks) < 2:
            return None
        radius = max(2, round(radius_share * period_s / env.frame_s))
        found = [_peak_near(env.broad, (phase_s + k * period_s) / env.frame_s, radius) for k in ks]
        frames = np.array([f for f, _ in found])
        heights = np.array([h for _, h in found])
        weights = np.clip((heights - baseline) / spread, 0.0, None) ** 2
        if np.count_nonzero(weights > 0.05) < 2:
            return None
        times = frames * env.frame_s
        slope, intercept = np.polyfit(ks, times, 1, w=np.sqrt(weights))
        period_s, phase_s = float(slope), float(intercept)
        residual = times - (phase_s + ks * period_s)
        strong = weights > 0.05
        rms = float(np.sqrt(np.average(residual[strong] ** 2, weights=weights[strong])))
        clear = (np.abs(residual) < 0.02) & (heights - baseline > 0.25 * spread)
        fit = _Fit(period_s, phase_s, ks, heights, rms * 1e3, float(np.mean(clear)))
    return fit


@functools.cache
def _envelope_latency_s() -> float:
    """How late the broadband envelope peaks after an ideal onset (seconds), measured once.

    Spectral flux peaks a few milliseconds after the attack it reacts to (the window must fill
    first). The fitted grid is moved earlier by this much, so that beats mean attacks.
    """
    rate = ANALYSIS_RATE
    t = np.arange(round(0.3 * rate)) / rate
    rng = np.random.default_rng(0)
    hit = (np.sin(2 * math.pi * 60.0 * t) + 0.5 * rng.standard_normal(len(t))) * np.exp(-t / 0.05)
    y = np.zeros(rate * 2, dtype=np.float32)
    onset = rate  # at 1.0 s
    y[onset : onset + len(hit)] = hit
    env = _envelopes(y)
    frame, _height = _peak_near(env.broad, 1.0 / env.frame_s, round(0.05 / env.frame_s))
    return frame * env.frame_s - 1.0


def _music_span(y: np.ndarray) -> tuple[float, float]:
    """(start, end) in seconds of where the audio is within 40 dB of its loudest 10 ms."""
    block = ANALYSIS_RATE // 100
    blocks = len(y) // block
    if blocks == 0:
        return 0.0, len(y) / ANALYSIS_RATE
    rms = np.sqrt(np.mean(y[: blocks * block].reshape(blocks, block) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 0.01)
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def _chroma(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(12 × frames chroma energy, frame seconds, tonality) of ``y``, ignoring the top and the
    sub-bass. Tonality: see :func:`_tonality`."""
    import librosa

    power = np.abs(librosa.stft(y, n_fft=CHROMA_N_FFT, hop_length=CHROMA_HOP)) ** 2
    bank, inside = _chroma_filters()
    tonality = _tonality(power[inside])
    # as librosa.feature.chroma_stft(norm=None, tuning=0) of the power with the bins outside
    # zeroed, without building its filter bank on every call
    return bank @ power, CHROMA_HOP / ANALYSIS_RATE, tonality


@functools.cache
def _chroma_filters() -> tuple[np.ndarray, np.ndarray]:
    """(12 × bins chroma filter bank, mask of the bins it uses), built once: librosa's bank
    (tuning 0) with the bins under 60 Hz and over 5 kHz zeroed (drums' noise above, rumble
    below)."""
    import librosa

    freqs = librosa.fft_frequencies(sr=ANALYSIS_RATE, n_fft=CHROMA_N_FFT)
    inside = (freqs >= 60.0) & (freqs <= 5000.0)
    bank = librosa.filters.chroma(sr=ANALYSIS_RATE, n_fft=CHROMA_N_FFT, tuning=0.0, n_chroma=12)
    bank[:, ~inside] = 0.0
    return bank, inside


TONAL_PEAK = 10.0
"""A spectrum bin this many times its neighbourhood's (geometric) mean level is a partial."""


def _tonality(power: np.ndarray) -> float:
    """Share (0–1) of the energy in spectral peaks: bins :data:`TONAL_PEAK` × above the
    geometric mean of the ±15 bins (±80 Hz) around them. Notes and chords put nearly all their
    energy in partials (0.9 and more on the test chords); noise, hats and snares almost none
    (under 0.1, where a bin's chance of standing that high is e^−5.6); a groove with a bass
    line sits between. The key's correlation alone cannot tell noise from a minor key: this can.
    """
    from scipy.ndimage import uniform_filter1d

    total = float(power.sum())
    if power.size == 0 or total <= 0.0:
        return 0.0
    level = np.log(power + total * 1e-12 / power.size)
    local = uniform_filter1d(level, size=31, axis=0, mode="nearest")
    peaks = level > local + math.log(TONAL_PEAK)
    return float(np.clip(power[peaks].sum() / total, 0.0, 1.0))


def detect_key(chroma: np.ndarray) -> tuple[str | None, float]:
    """(key name, confidence 0–1) of a 12 × frames chroma matrix (pitch class C first).

    Pearson correlation of the summed chroma with the Krumhansl–Kessler profiles in all 24
    keys. Confidence is the best correlation times how far it stands above the runner-up of
    a different key (relative major/minor included): near 0 for drums or noise.
    """
    profile = np.asarray(chroma, dtype=np.float64).sum(axis=1)
    if profile.shape != (12,) or not np.isfinite(profile).all() or profile.max() <= 0:
        return None, 0.0
    scores = (_key_templates() @ _standardised(profile)).tolist()  # Pearson r of all 24 keys
    order = np.argsort(scores)[::-1]
    best, second = scores[order[0]], scores[order[1]]
    if not math.isfinite(best):
        return None, 0.0
    confidence = max(0.0, best) * min(1.0, max(0.0, best - second) / 0.15)
    return KEY_NAMES[int(order[0])], float(np.clip(confidence, 0.0, 1.0))


def _standardised(values: np.ndarray) -> np.ndarray:
    """``values`` less their mean, over their norm: the dot product of two is their Pearson
    correlation (NaN for constant values, as np.corrcoef)."""
    centred = values - values.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred / np.linalg.norm(centred, axis=-1, keepdims=True)


@functools.cache
def _key_templates() -> np.ndarray:
    """24 × 12 standardised key profiles: the major keys from C, then the minor keys."""
    rows = [np.roll(p, tonic) for p in (_MAJOR_PROFILE, _MINOR_PROFILE) for tonic in range(12)]
    return _standardised(np.array(rows))


def parse_key(key: str) -> tuple[int, bool]:
    """(tonic pitch class 0–11 from C, minor?) of a key name: "F#m", "Bb", "c#m", "Ebm",
    "C major", "A minor" (:func:`.spec.parse_key`; ValueError naming the allowed forms)."""
    return _parse_key(key)


def _downbeat(
    beats: np.ndarray,
    env: _Envelopes,
    chroma: np.ndarray,
    chroma_frame_s: float,
    beats_per_bar: int,
) -> tuple[int, float]:
    """(index into ``beats`` of the first bar line, confidence 0–1)."""
    if beats_per_bar <= 1 or len(beats) < 2:
        return 0, 1.0
    period = float(np.median(np.diff(beats)))
    radius = max(1, round(0.025 / env.frame_s))
    low = np.array([_peak_near(env.low, t / env.frame_s, radius)[1] for t in beats])
    broad = np.array([_peak_near(env.broad, t / env.frame_s, radius)[1] for t in beats])
    # harmony changes at bar lines: compare the bar before each beat with the bar after it
    # (a beat mid-bar has half of the same bar on both sides, so it changes less)
    harm = np.zeros(len(beats))
    norm = chroma / (np.linalg.norm(chroma, axis=0, keepdims=True) + 1e-12)
    bar = beats_per_bar * period
    for i, t in enumerate(beats):
        b = round(t / chroma_frame_s)
        span = round(min(bar, t, norm.shape[1] * chroma_frame_s - t) / chroma_frame_s)
        if span < max(1, round(period / chroma_frame_s)):
            continue
        before, after = norm[:, b - span : b].mean(axis=1), norm[:, b : b + span].mean(axis=1)
        cos = float(before @ after / (np.linalg.norm(before) * np.linalg.norm(after) + 1e-12))
        harm[i] = 1.0 - cos
    accents = np.zeros(len(beats))
    for values, weight in ((low, 1.0), (broad, 0.5), (harm, 1.0)):
        mean = values.mean()
        if mean > 1e-9:
            accents += weight * values / mean
    scores = np.array(
        [
            accents[j::beats_per_bar].mean() if len(accents[j::beats_per_bar]) else 0.0
            for j in range(beats_per_bar)
        ]
    )
    order = np.argsort(scores)[::-1]
    best, second = scores[order[0]], scores[order[1]]
    confidence = float((best - second) / best) if best > 0 else 0.0
    return int(order[0]), float(np.clip(confidence, 0.0, 1.0))


def _swing(env: _Envelopes, period_s: float, phase_s: float) -> float | None:
    """Where the off-beat falls in the beat (0.3–0.8), from the envelope folded at one beat."""
    bins = max(16, round(period_s / env.frame_s))
    folded = _fold(env.broad, env.frame_s, period_s, bins)
    folded = np.roll(folded, -round(phase_s / period_s * bins) % bins)  # the beat at bin 0
    baseline = float(np.median(folded))
    lo, hi = round(0.3 * bins), round(0.8 * bins)
    index = lo + int(np.argmax(folded[lo:hi]))
    if folded[index] - baseline < 0.2 * (folded[0] - baseline) or folded[0] <= baseline:
        return None
    a, b, c = folded[index - 1], folded[index], folded[(index + 1) % bins]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float((index + np.clip(shift, -0.5, 0.5)) / bins)


def analyse(
    audio: np.ndarray,
    sample_rate: int,
    *,
    target_bpm: float | None = None,
    beats_per_bar: int = 4,
) -> GridReport:
    """Tempo, beats, bar lines and key of ``audio`` (mono, or 2-D (frames, channels)).

    ``target_bpm``, when given, decides the tempo octave (the reading ×½, ×1, ×2 … nearest it)
    and centres the tempo search; ``beats_per_bar`` is the meter's beats, for the bar line.
    Never raises for musical reasons (silence, no beat): the report says so instead. Raises
    ValueError for bad arguments (empty or non-finite audio, a bad rate).
    """
    if beats_per_bar < 1:
        raise ValueError(f"beats_per_bar must be at least 1, got {beats_per_bar!r}")
    if target_bpm is not None and not (math.isfinite(target_bpm) and target_bpm > 0):
        raise ValueError(f"target_bpm must be a positive number of BPM, got {target_bpm!r}")
    y = _prepare(audio, sample_rate)
    duration = len(y) / ANALYSIS_RATE
    if float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) < SILENCE_RMS:
        return GridReport(duration, None, 0.0, beats_per_bar=beats_per_bar, note="silent")
    chroma, chroma_frame_s, tonality = _chroma(y)
    key, key_confidence = detect_key(chroma)
    unclear = GridReport(
        duration, None, 0.0, beats_per_bar=beats_per_bar, key=key,
        key_confidence=key_confidence, tonality=tonality, note="no steady beat found",
    )  # fmt: skip
    if duration < 0.5:
        return replace(unclear, note="too short to find a beat (< 0.5 s)")
    env = _envelopes(y)
    raw_bpm = _tempo_reading(env, start_bpm=target_bpm or 120.0)
    if not (math.isfinite(raw_bpm) and raw_bpm > 0):
        return unclear
    # kicks and bass weigh as much as the rest: a half-time reading then sits on the kicks
    pulse = env.broad / (env.broad.mean() + 1e-12) + env.low / (env.low.mean() + 1e-12)
    octave, period, phase, pulse_score = _choose_tempo(pulse, env.frame_s, raw_bpm, target_bpm)
    music = _music_span(y)
    fit = _fine_grid(env, period, phase, music)
    if fit is None:
        return replace(unclear, raw_tempo_bpm=raw_bpm, octave=octave)
    # steady, clear onsets on the grid: both the fold's contrast and the beats' own peaks
    tightness = max(0.0, 1.0 - fit.residual_ms / (0.05 * fit.period_s * 1e3))
    confidence = float(np.clip(pulse_score / PULSE_SCORE_CLEAR, 0.0, 1.0) * fit.on_beat * tightness)
    phase = fit.phase_s - _envelope_latency_s()
    beats = phase + fit.indices * fit.period_s
    beats = beats[beats >= -1e-3]
    # the first beat is where the music starts: skip grid beats in leading silence
    while len(beats) > 1 and beats[0] < music[0] - 0.25 * fit.period_s:
        beats = beats[1:]
    bar_index, downbeat_confidence = _downbeat(beats, env, chroma, chroma_frame_s, beats_per_bar)
    downbeats = beats[bar_index::beats_per_bar]
    return GridReport(
        duration_s=duration,
        tempo_bpm=60.0 / fit.period_s,
        confidence=confidence,
        beats_s=tuple(float(b) for b in beats),
        phase_s=float(phase % fit.period_s),
        downbeat_s=float(downbeats[0]) if len(downbeats) else None,
        downbeats_s=tuple(float(b) for b in downbeats),
        downbeat_confidence=downbeat_confidence,
        beats_per_bar=beats_per_bar,
        raw_tempo_bpm=raw_bpm,
        octave=octave,
        fit_error_ms=fit.residual_ms,
        swing=_swing(env, fit.period_s, fit.phase_s),
        key=key,
        key_confidence=key_confidence,
        tonality=tonality,
        note=None if confidence >= CLEAR_BEAT else f"no clear beat (confidence {confidence:.2f})",
    )
