"""Put a clip's music on the grid it claims: stretch to the tempo, start on the bar line.

The model plays at a tempo of its own. :func:`conform` takes the model's raw, longer audio and
the :class:`~.spec.ClipSpec`, finds the music's grid (:func:`.grid.analyse`), time-stretches the
audio so that its beats fall on the target tempo's grid (Signalsmith Stretch, via
``python-stretch``: MIT, transient-preserving), starts the clip on the first bar line, and then
cuts the exact length and makes the loop seam exactly as :func:`.render.finish` does today
(:func:`.dsp.make_loop`, or :func:`.dsp.cut_with_fades` for one-shots). Levels are left to the
caller (``finish`` sets them after the cut).

Modes (:data:`GRID_MODES`): ``stretch`` (the default), ``check`` (analyse and report, cut as
today), ``off`` (no analysis: exactly today's cut, bit for bit). A stretch outside
:data:`MIN_RATIO`–:data:`MAX_RATIO` (after the tempo octave is chosen), a beat found with too
little confidence, a clip asked for in seconds, or too little audio after the bar line keep the
clip unstretched, cut as today, and the report says why.

Runs on the engine's thread (pure functions on arrays, a few tens of milliseconds per clip:
benchmarks/conform_cost.py). The model's audio is analysed and stretched at its own rate
(16 kHz), and only the stretched clip's window is resampled to the output rate: stretching
after resampling to 44.1 kHz cost nearly three times as much for the same music.
:func:`input_samples` says how much audio the engine must render for a clip to be conformable.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import soxr

from .beats import RenderPlan
from .dsp import cut_with_fades, make_loop, resample
from .grid import ANALYSIS_RATE, CLEAR_BEAT, KEY_NAMES, GridReport, analyse, parse_key
from .spec import GRID_MODES, ClipSpec

__all__ = [
    "GRID_MODES",
    "MAX_RATIO",
    "MIN_CONFIDENCE",
    "MIN_RATIO",
    "MIN_TONALITY",
    "ConformReport",
    "Conformed",
    "check_key_name",
    "conform",
    "cut_as_today",
    "input_samples",
    "key_shift_semitones",
    "stretch",
    "warm_up",
]

log = logging.getLogger(__name__)

MIN_RATIO = 0.8
MAX_RATIO = 1.25
"""Bounds of the tempo ratio (target ÷ detected tempo, after the tempo octave is chosen)
within which a clip is stretched; beyond them the stretch would be heard, so it is kept."""

MIN_CONFIDENCE = CLEAR_BEAT
"""Beats found with less confidence than this are not trusted to stretch to."""

NEGLIGIBLE_DRIFT_S = 0.0005
"""A stretch that would move the clip's last beat by less than this is not worth its
artefacts: the audio is only moved to start on the bar line."""

CONTEXT_S = 0.1
"""Audio kept before the bar line and after the clip's end when stretching, so that the
stretcher's window has real music (not an edge) around every kept sample."""

MIN_ANALYSIS_S = 3.0
"""The tempo of a short clip is measured on at least this much audio (a few beats)."""

LEAD_S = 0.25
"""Allowance for silence before the music's first beat, in :func:`input_samples`."""

STRETCH_BLOCK_S = 0.046
"""The stretcher's analysis block (rounded to a power of two: 2048 samples at 44.1 kHz), hop a
quarter of it. Signalsmith's default preset (120 ms blocks) smears a snare's attack up to 20 ms
early (pre-echo), measured on the test grooves; 46 ms blocks keep attacks within 3 ms, at the
price of coarser frequency resolution for low, sustained notes."""

MIN_KEY_CONFIDENCE = 0.1
"""Music whose key is less certain than this is not transposed to a ``key``."""

MIN_TONALITY = 0.2
"""Music with less of its energy in partials than this (:attr:`.grid.GridReport.tonality`:
drums, noise, hats measure under 0.1; chords over 0.9; a drum groove with a bass line about
0.3) is not transposed to a ``key``: it has no key to move, only a timbre to spoil."""

MAX_KEY_SHIFT = 6
"""Transpositions are chosen within ±6 semitones (the nearer way round)."""

TONAL_BLOCK_S = 0.186
"""The stretcher's block (8192 samples at 44.1 kHz) for music that is mostly notes
(tonality at least :data:`TONAL_BLOCKS_FROM`): 46 ms blocks blur the partials of low harmonic
notes (55–110 Hz) by up to 1–2 semitones whenever the time changes; 186 ms blocks keep them
within 0.1 cent (measured on test tones), and such music has few attacks to smear."""

TONAL_BLOCKS_FROM = 0.6
"""Tonality from which :data:`TONAL_BLOCK_S` is used (chords and pads measure over 0.9, a drum
groove with bass and chords about 0.4)."""

EDGE_FADE_SECONDS = 0.005
"""Fade in and out of a clip cut plainly (``loop`` off): as :data:`.render.EDGE_FADE_SECONDS`."""


@dataclass(frozen=True)
class ConformReport:
    """What :func:`conform` did to one clip, for the WAV's INFO, the library and ``/done``.

    ``ratio`` is target ÷ detected tempo: above 1 the music was sped up (1.0 when unstretched).
    ``start_s`` is where the clip starts in the model's audio (the bar line; 0.0 when cut as
    today). ``grid_error_ms`` is the remaining RMS distance of the beats from the target grid
    as the fit measured it (None when not stretched to the grid). ``note`` says why a clip was
    not stretched, or anything else worth knowing; ``transpose_semitones`` the key shift made.
    """

    mode: str
    stretched: bool
    ratio: float = 1.0
    start_s: float = 0.0
    grid_error_ms: float | None = None
    transpose_semitones: float = 0.0
    note: str | None = None
    grid: GridReport | None = None
    target_key: str | None = None
    """The ``key`` asked for (None: none asked)."""
    key_note: str | None = None
    """Why the music was not transposed to ``target_key``, when it was not."""

    @property
    def key(self) -> str | None:
        """The key of the clip as delivered, where it is clear: the detected key moved by
        ``transpose_semitones``; None when no key was found with :data:`MIN_KEY_CONFIDENCE` or
        the music is not tonal (:data:`MIN_TONALITY`: drums, noise), or it was not analysed."""
        found = self.grid
        if found is None or found.key is None:
            return None
        if found.key_confidence < MIN_KEY_CONFIDENCE or found.tonality < MIN_TONALITY:
            return None
        tonic, minor = parse_key(found.key)
        return KEY_NAMES[(tonic + round(self.transpose_semitones)) % 12 + 12 * minor]

    @property
    def root_note(self) -> int | None:
        """The MIDI note of :attr:`key`'s tonic from C4 (60–71) for the WAV's ``acid`` root
        note, or None without a clear key: then a DAW leaves the loop untransposed."""
        key = self.key
        return None if key is None else 60 + parse_key(key)[0]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary: the conform's own fields, and the grid's under ``detected``."""
        out: dict[str, object] = {
            "grid": self.mode,
            "stretched": self.stretched,
            "ratio": round(self.ratio, 5),
            "start_s": round(self.start_s, 5),
            "grid_error_ms": None if self.grid_error_ms is None else round(self.grid_error_ms, 2),
            "transpose_semitones": self.transpose_semitones,
            "note": self.note,
            "target_key": self.target_key,
            "key_note": self.key_note,
        }
        if self.grid is not None:
            out["detected"] = self.grid.as_dict()
        return out

    def describe(self) -> str:
        """One line for people, e.g. "detected 103.7 BPM (confidence 0.91), stretched ×1.157,
        first bar line at 0.370 s, grid error 1.2 ms, key Am"."""
        if self.mode == "off":
            return "grid off: cut as rendered, not analysed"
        found = self.grid
        parts = []
        if found is not None and found.tempo_bpm is not None:
            parts.append(f"detected {found.tempo_bpm:.1f} BPM (confidence {found.confidence:.2f})")
        if self.stretched:
            parts.append(f"stretched ×{self.ratio:.3f}")
        if self.grid_error_ms is not None:
            parts.append(f"first bar line at {self.start_s:.3f} s")
            parts.append(f"grid error {self.grid_error_ms:.1f} ms")
        if self.note:
            parts.append(self.note)
        elif not parts:
            parts.append("no beat found")
        if self.transpose_semitones:
            parts.append(f"transposed {self.transpose_semitones:+g} semitones to {self.target_key}")
        elif self.key_note:
            parts.append(self.key_note)
        if found is not None and found.key is not None:
            parts.append(f"key {found.key} (confidence {found.key_confidence:.2f})")
        return ", ".join(parts)


@dataclass(frozen=True)
class Conformed:
    """The exact clip (``plan.out_samples`` at ``plan.out_rate``, loop made) and its report."""

    audio: np.ndarray
    report: ConformReport


def stretch(
    audio: np.ndarray,
    sample_rate: int,
    ratio: float,
    *,
    transpose_semitones: float = 0.0,
    block_s: float = STRETCH_BLOCK_S,
    out_rate: int | None = None,
) -> np.ndarray:
    """``audio`` played ``ratio`` times as fast (same pitch), optionally transposed.

    Signalsmith Stretch with blocks of ``block_s`` (default :data:`STRETCH_BLOCK_S`, short;
    :data:`TONAL_BLOCK_S` for music of notes; :func:`_block_samples`). The output holds
    ``round(len / ratio)`` frames and an event at input time t lands at t / ratio (the
    wrapper compensates the stretcher's latency). Takes 1-D or (frames, channels) float
    arrays (mono or stereo) and returns the same layout.

    ``out_rate`` (default ``sample_rate``) is the rate of the result (then
    ``round(len / ratio × out_rate / sample_rate)`` frames): the stretch runs at the input's
    own rate and only its result is resampled (soxr), so the model's 16 kHz audio is
    stretched at 16 kHz, a third of the work of stretching it at 44.1 kHz, for the same
    music (the model's audio holds nothing above 8 kHz to stretch).

    A transposition by f = 2^(semitones/12) is made as a stretch to ``ratio / f`` followed by
    resampling by f (soxr), not by the stretcher's own transposition: with short blocks that
    lands pure tones up to 50 cents off (measured: +2 semitones of a 110 Hz tone came out
    54 cents sharp, of 440 Hz 13 cents; its error depends on where a partial falls between
    FFT bins), while its time-stretch keeps pitch to 0.01 cents and resampling is exact.
    Formants move with the pitch (python-stretch 0.3 exposes no formant control).
    """
    import python_stretch  # lazy: a compiled extension, loaded when first needed

    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio must be a positive number, got {ratio!r}")
    if not math.isfinite(transpose_semitones) or abs(transpose_semitones) > 24:
        raise ValueError(f"transpose_semitones must be within ±24, got {transpose_semitones!r}")
    array = np.asarray(audio, dtype=np.float32)
    planar = array[None, :] if array.ndim == 1 else array.T
    if planar.shape[0] > 2:
        raise ValueError(f"stretch takes mono or stereo audio, got {planar.shape[0]} channels")
    out_rate = sample_rate if out_rate is None else out_rate
    factor = 2.0 ** (transpose_semitones / 12.0)
    stretcher = python_stretch.Signalsmith.Stretch(0)  # seeded: the same clip every time
    block = _block_samples(block_s, sample_rate)
    stretcher.configure(planar.shape[0], block, block // 4)
    stretcher.timeFactor = float(ratio / factor)
    out = np.asarray(stretcher.process(np.ascontiguousarray(planar)), dtype=np.float32)
    if transpose_semitones or out_rate != sample_rate:
        # the stretched audio, f times longer, played f times as fast: every pitch × f; one
        # resampling pass makes both the transposition and the output rate
        out = (
            np.asarray(
                soxr.resample(
                    np.ascontiguousarray(out.T),
                    sample_rate * factor,
                    out_rate,
                    "VHQ" if transpose_semitones else "HQ",  # HQ: as dsp.resample
                ),
                dtype=np.float32,
            )
            .reshape(-1, planar.shape[0])
            .T
        )
        frames = round(planar.shape[1] / ratio * out_rate / sample_rate)
        if out.shape[1] < frames:  # a sample short from the rounding: repeat the last one
            out = np.concatenate([out, np.repeat(out[:, -1:], frames - out.shape[1], axis=1)], 1)
        out = out[:, :frames]
    return out[0].copy() if array.ndim == 1 else np.ascontiguousarray(out.T)


def _block_samples(block_s: float, sample_rate: int) -> int:
    """The stretcher's block for ``block_s`` seconds at ``sample_rate``: the nearest (in ratio)
    of 2^n and 3·2^n samples, sizes its FFT computes fast. At 44.1 kHz that is 2048 for
    :data:`STRETCH_BLOCK_S` and 8192 for :data:`TONAL_BLOCK_S` (powers of two, as tuned);
    at 16 kHz 768 and 3072 (48 and 192 ms: as long as the tuned blocks, where powers of two
    would be 64 and 256 ms)."""
    wanted = block_s * sample_rate
    power = 2 ** round(math.log2(wanted))
    sizes = [power // 2, power, 3 * power // 4, 3 * power // 2]
    return min((size for size in sizes if size >= 16), key=lambda n: abs(math.log(n / wanted)))


def _per_channel(fn, audio: np.ndarray, *args: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Apply a mono :mod:`.dsp` function to each channel of (frames, channels) audio."""
    if audio.ndim == 1:
        return fn(audio, *args)
    return np.stack([fn(audio[:, c], *args) for c in range(audio.shape[1])], axis=1)


def _resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    array = np.asarray(wave, dtype=np.float32)
    if array.ndim == 1:
        return resample(array, from_rate, to_rate)
    return np.stack(
        [resample(array[:, c], from_rate, to_rate) for c in range(array.shape[1])], axis=1
    )


def cut_as_today(audio: np.ndarray, plan: RenderPlan) -> np.ndarray:
    """The exact clip from audio at ``plan.out_rate``, as :func:`.render.finish` cuts it:
    the loop made from the start (:func:`.dsp.make_loop`), or a plain cut with edge fades."""
    if len(audio) < plan.needed_samples:
        raise ValueError(
            f"got {len(audio)} samples at {plan.out_rate} Hz, {plan.needed_samples} needed"
        )
    if plan.loop:
        return _per_channel(make_loop, audio, plan.out_samples, plan.crossfade_samples)
    fade = min(round(EDGE_FADE_SECONDS * plan.out_rate), plan.out_samples // 8)
    return _per_channel(cut_with_fades, audio, plan.out_samples, fade)


def input_samples(plan: RenderPlan, spec: ClipSpec, *, max_ratio: float = MAX_RATIO) -> int:
    """Samples at ``plan.out_rate`` the engine must render for ``spec`` to be conformable.

    The slowest music still stretched plays ``max_ratio`` times slower than the target, so the
    clip (and its crossfade) takes up to ``max_ratio`` × as much audio; the first bar line may
    come up to a bar (at that tempo) after the music starts, which may itself start a little
    late; and the stretcher wants :data:`CONTEXT_S` of music either side. At least
    :data:`MIN_ANALYSIS_S`, so that even a one-beat clip's tempo is measured on a few beats.
    """
    bar_samples = spec.beats_per_bar * 60.0 / spec.bpm * plan.out_rate
    lead = (LEAD_S + 2 * CONTEXT_S) * plan.out_rate
    samples = math.ceil(max_ratio * (plan.needed_samples + bar_samples) + lead)
    return max(samples, math.ceil(MIN_ANALYSIS_S * plan.out_rate))


def key_shift_semitones(detected: str, target: str) -> int:
    """Semitones (−6…+6, the nearer way) that move music in ``detected`` key to ``target``.

    Keys are compared through their relative majors, so a minor/major mismatch moves to the
    relative key instead of changing mode ("Am" to "C" is 0; "C" to "F#m" is −3).
    """

    def relative_major(key: str) -> int:
        tonic, minor = parse_key(key)
        return (tonic + 3) % 12 if minor else tonic

    shift = (relative_major(target) - relative_major(detected)) % 12
    return shift - 12 if shift > MAX_KEY_SHIFT else shift


def conform(
    wave: np.ndarray,
    wave_rate: int,
    spec: ClipSpec,
    plan: RenderPlan,
    *,
    mode: str = "stretch",
    key: str | None = None,
) -> Conformed:
    """The exact clip of ``spec`` from the model's raw audio ``wave`` (at ``wave_rate`` Hz).

    ``wave`` is 1-D (mono) or (frames, channels); it should hold :func:`input_samples` samples
    (at ``plan.out_rate``; fewer only limits where the clip can start). ``plan`` is the clip's
    :func:`.render.plan_clip`. ``key`` (e.g. "F#m") transposes tonal material found in another
    key, within ±6 semitones, when stretching. Raises ValueError for an unknown mode or key, or
    when ``wave`` is shorter than the clip needs even as today.
    """
    if mode not in GRID_MODES:
        raise ValueError(f"grid must be one of {', '.join(GRID_MODES)}, got {mode!r}")
    if key is not None:
        key = check_key_name(key)  # refuse a bad key before any work
    rate = plan.out_rate
    wave = np.asarray(wave, dtype=np.float32)
    out_length = len(wave) if wave_rate == rate else round(len(wave) * rate / wave_rate)
    if out_length < plan.needed_samples:  # what cut_as_today would say, before any work
        raise ValueError(f"got {out_length} samples at {rate} Hz, {plan.needed_samples} needed")
    # The whole take at the output rate is only needed when it is cut as today (grid off, or
    # kept unstretched): a stretched clip is analysed and stretched at the wave's own rate
    # and only its window is resampled.
    resampled: list[np.ndarray] = []

    def audio_at_out_rate() -> np.ndarray:
        if not resampled:
            resampled.append(_resample(wave, wave_rate, rate))
        return resampled[0]

    if mode == "off":
        return Conformed(cut_as_today(audio_at_out_rate(), plan), ConformReport(mode, False))
    found = analyse(wave, wave_rate, target_bpm=spec.bpm, beats_per_bar=spec.beats_per_bar)

    shift, key_note = _key_shift(found, key, mode)
    block_s = TONAL_BLOCK_S if found.tonality >= TONAL_BLOCKS_FROM else STRETCH_BLOCK_S

    def unstretched(note: str | None) -> Conformed:
        if note is not None and mode == "stretch":
            log.info("clip %r kept unstretched: %s", spec.prompt[:60], note)
        if shift:  # the key is still worth having when the tempo is not
            moved = stretch(
                wave, wave_rate, 1.0, transpose_semitones=shift, block_s=block_s, out_rate=rate
            )
            clip = cut_as_today(moved, plan)
        else:
            clip = cut_as_today(audio_at_out_rate(), plan)
        report = ConformReport(
            mode,
            stretched=False,
            transpose_semitones=float(shift),
            note=note,
            grid=found,
            target_key=key,
            key_note=key_note,
        )
        return Conformed(clip, report)

    if mode == "check":
        return unstretched(found.note)
    if spec.seconds is not None:
        return unstretched("asked for in seconds, not bars: no grid to conform to")
    if found.tempo_bpm is None or found.downbeat_s is None:
        return unstretched(f"{found.note or 'no beat found'}: kept unstretched")
    if found.confidence < MIN_CONFIDENCE:
        return unstretched(
            f"beat unclear (confidence {found.confidence:.2f} < {MIN_CONFIDENCE:.2f}): "
            "kept unstretched"
        )
    ratio = spec.bpm / found.tempo_bpm
    if not MIN_RATIO <= ratio <= MAX_RATIO:
        return unstretched(
            f"detected {found.tempo_bpm:.1f} BPM is ×{ratio:.3f} from {spec.bpm:g} BPM, beyond "
            f"the {MIN_RATIO:g}–{MAX_RATIO:g} stretch limit: kept unstretched"
        )
    # where the clip's audio must come from: a bar line with enough music after it
    needed_in = plan.needed_samples * ratio
    starts = [d for d in found.downbeats_s if d * rate + needed_in + 1 <= out_length]
    if not starts:
        return unstretched(
            f"not enough audio after the first bar line at {found.downbeat_s:.3f} s "
            f"({out_length} samples, {math.ceil(found.downbeat_s * rate + needed_in)} needed): "
            "kept unstretched"
        )
    start_s = starts[0]
    drift_s = abs(1.0 - 1.0 / ratio) * plan.needed_samples / rate
    if drift_s < NEGLIGIBLE_DRIFT_S and shift == 0:
        first = round(start_s * rate)
        window = audio_at_out_rate()[first : first + plan.needed_samples]
        used_ratio = 1.0
    else:
        # cut at the wave's rate (fractional start: the stretch places it to well under an
        # output sample), with CONTEXT_S either side, stretched and resampled to the clip's
        start = start_s * wave_rate
        context = round(CONTEXT_S * wave_rate)
        lo = max(0, math.floor(start) - context)
        hi = min(len(wave), math.ceil(start + needed_in * wave_rate / rate) + context)
        stretched = stretch(
            wave[lo:hi], wave_rate, ratio, transpose_semitones=shift, block_s=block_s,
            out_rate=rate,
        )  # fmt: skip
        first = round((start - lo) * rate / wave_rate / ratio)
        window = stretched[first : first + plan.needed_samples]
        if len(window) < plan.needed_samples:  # rounding at the very end: repeat the last sample
            pad = plan.needed_samples - len(window)
            window = np.concatenate([window, np.repeat(window[-1:], pad, axis=0)], axis=0)
        used_ratio = ratio
    clip = cut_as_today(np.ascontiguousarray(window), plan)
    error = None if found.fit_error_ms is None else found.fit_error_ms / used_ratio
    return Conformed(
        np.ascontiguousarray(clip, dtype=np.float32),
        ConformReport(
            mode,
            stretched=used_ratio != 1.0,
            ratio=used_ratio,
            start_s=start_s,
            grid_error_ms=error,
            transpose_semitones=float(shift),
            note=None,
            grid=found,
            target_key=key,
            key_note=key_note,
        ),
    )


def check_key_name(key: str) -> str:
    """``key`` as the name the reports use ("Bb minor" → "A#m"); ValueError if it is none."""
    tonic, minor = parse_key(key)
    return KEY_NAMES[tonic + 12 * minor]


def _key_shift(found: GridReport, key: str | None, mode: str) -> tuple[int, str | None]:
    """(semitones to transpose, why not when 0) for music ``found`` asked to be in ``key``.

    Only tonal music (:data:`MIN_TONALITY`) whose key was found with some confidence
    (:data:`MIN_KEY_CONFIDENCE`) is moved, and only with grid ``stretch``.
    """
    if key is None:
        return 0, None
    if mode != "stretch":
        return 0, f"not transposed to {key}: grid {mode} leaves the audio as rendered"
    if found.key is None or found.tonality < MIN_TONALITY:
        return 0, f"not transposed to {key}: not tonal (tonality {found.tonality:.2f})"
    if found.key_confidence < MIN_KEY_CONFIDENCE:
        return 0, (
            f"not transposed to {key}: key unclear ({found.key}, confidence "
            f"{found.key_confidence:.2f} < {MIN_KEY_CONFIDENCE:g})"
        )
    shift = key_shift_semitones(found.key, key)
    if shift == 0:
        return 0, f"already in {key} (found {found.key})"
    return shift, None


def warm_up() -> float:
    """Run the analysis (and the stretcher) once on a short click track; returns seconds taken.

    librosa compiles numba code on first use; the daemon calls this at start so that the first
    request does not pay for it.
    """
    started = time.perf_counter()
    rate = ANALYSIS_RATE
    clicks = np.zeros(3 * rate, dtype=np.float32)
    rng = np.random.default_rng(0)
    for beat in range(6):
        at = round(beat * 0.5 * rate)
        clicks[at : at + 500] += (rng.standard_normal(500) * np.exp(-np.arange(500) / 80)).astype(
            np.float32
        )
    analyse(clicks, rate, target_bpm=120.0)
    stretch(clicks, rate, 1.1)
    seconds = time.perf_counter() - started
    log.info("grid analysis warmed up in %.2f s", seconds)
    return seconds
