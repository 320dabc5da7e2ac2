"""Synthetic test material for the grid tests and the conform benchmark: no downloads.

Drum-and-bass grooves (kick, snare, hi-hat, bass and an optional chord pad, all from numpy:
decaying sines and noise bursts) of known tempo, swing, start offset and pickup, and tonal
material (chord progressions) in known keys. Everything is seeded, so a groove is the same
array on every run.

The groove's bar line is unambiguous as a listener hears it: the kick plays beats 1 and 3 and
the "and" of 3, the snare 2 and 4, and the bass (and pad) change chord at every bar line.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NOTE_NAMES", "Groove", "chord_progression", "groove", "pad"]

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# bass roots of a four-bar progression, in semitones above A1 (55 Hz): Am, F, C, G
_PROGRESSION = (0, 8, 3, 10)
_PROGRESSION_MINOR_THIRD = (True, False, False, False)


class Groove:
    """Where each drum of a groove was placed (seconds from the array's start)."""

    def __init__(self) -> None:
        self.kicks: list[float] = []
        self.snares: list[float] = []
        self.hats: list[float] = []
        self.bass: list[float] = []

    @property
    def all_onsets(self) -> list[float]:
        return sorted(self.kicks + self.snares + self.hats + self.bass)


def _add(out: np.ndarray, start_s: float, sound: np.ndarray, rate: int) -> None:
    begin = round(start_s * rate)
    if begin >= len(out) or begin + len(sound) <= 0:
        return
    lo = max(0, -begin)
    hi = min(len(sound), len(out) - begin)
    out[begin + lo : begin + hi] += sound[lo:hi]


def _kick(rate: int) -> np.ndarray:
    t = np.arange(round(0.25 * rate)) / rate
    freq = 50.0 + 100.0 * np.exp(-t / 0.03)
    phase = 2 * math.pi * np.cumsum(freq) / rate
    return (0.8 * np.sin(phase) * np.exp(-t / 0.12)).astype(np.float32)


def _snare(rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(round(0.18 * rate)) / rate
    noise = rng.standard_normal(len(t)) * np.exp(-t / 0.05)
    tone = np.sin(2 * math.pi * 190.0 * t) * np.exp(-t / 0.04)
    return (0.3 * noise + 0.3 * tone).astype(np.float32)


def _hat(rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(round(0.05 * rate)) / rate
    noise = np.diff(rng.standard_normal(len(t) + 1))  # first difference: a crude high-pass
    return (0.08 * noise * np.exp(-t / 0.012)).astype(np.float32)


def _tone(freq: float, seconds: float, rate: int, *, decay_s: float, harmonics: int = 4):
    t = np.arange(round(seconds * rate)) / rate
    wave = sum(np.sin(2 * math.pi * freq * h * t) / h for h in range(1, harmonics + 1))
    attack = np.minimum(1.0, t / 0.004)  # 4 ms attack: no click, still a clear onset
    return (wave * attack * np.exp(-t / decay_s)).astype(np.float32)


def groove(
    *,
    bpm: float,
    bars: int,
    beats_per_bar: int = 4,
    rate: int = 44100,
    swing: float = 0.5,
    start_s: float = 0.0,
    pickup: bool = False,
    tail_s: float = 0.0,
    chords: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, Groove]:
    """A mono float32 groove of ``bars`` bars at ``bpm``, its first bar line at ``start_s``.

    ``swing`` is where the off-beat eighth falls within the beat (0.5 straight, 2/3 triplet
    swing). ``pickup`` adds a snare and a bass note on the last beat before the first bar line
    (inside ``start_s``, which must then hold at least one beat). ``tail_s`` of silence follow
    the last bar. ``chords`` adds a sustained chord pad (harmonic change at each bar line).
    """
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    total = start_s + bars * beats_per_bar * beat + tail_s
    out = np.zeros(round(total * rate), dtype=np.float32)
    kick, hat = _kick(rate), _hat(rate, rng)
    placed = Groove()
    for bar in range(bars):
        root = _PROGRESSION[bar % len(_PROGRESSION)]
        bass_freq = 55.0 * 2 ** (root / 12)
        bar_s = start_s + bar * beats_per_bar * beat
        for index in range(beats_per_bar):
            at = bar_s + index * beat
            if index % 2 == 0:
                _add(out, at, kick, rate)
                placed.kicks.append(at)
            elif beats_per_bar > 1:
                _add(out, at, _snare(rate, rng), rate)
                placed.snares.append(at)
            if index == 2:
                _add(out, at + beat / 2, kick, rate)
                placed.kicks.append(at + beat / 2)
            for offset in (0.0, swing):
                _add(out, at + offset * beat, hat, rate)
                placed.hats.append(at + offset * beat)
        # bass: the bar's root on 1 (long), and its fifth on the "and" of 3
        _add(out, bar_s, 0.35 * _tone(bass_freq, 2 * beat, rate, decay_s=0.5), rate)
        placed.bass.append(bar_s)
        if beats_per_bar >= 4:
            fifth = bass_freq * 2 ** (7 / 12)
            _add(out, bar_s + 2.5 * beat, 0.25 * _tone(fifth, beat, rate, decay_s=0.3), rate)
            placed.bass.append(bar_s + 2.5 * beat)
        if chords:
            minor = _PROGRESSION_MINOR_THIRD[bar % len(_PROGRESSION)]
            triad = (0, 3 if minor else 4, 7)
            bar_len = beats_per_bar * beat
            for step in triad:
                freq = 220.0 * 2 ** ((root + step) / 12)
                _add(out, bar_s, 0.06 * _tone(freq, bar_len, rate, decay_s=2.0), rate)
    if pickup:
        if start_s < beat:
            raise ValueError("a pickup needs start_s of at least one beat")
        _add(out, start_s - beat, _snare(rate, rng), rate)
        placed.snares.append(start_s - beat)
        _add(out, start_s - beat, 0.3 * _tone(82.4, beat, rate, decay_s=0.3), rate)
        placed.bass.append(start_s - beat)
    return out, placed


def chord_progression(
    key: str, *, seconds: float = 6.0, rate: int = 22050, seed: int = 0
) -> np.ndarray:
    """Tonal material in ``key`` ("C", "F#m", ...): I–IV–V–I (major) or i–iv–V–i (minor).

    Each chord is a triad of harmonic-rich tones with the root doubled an octave down, so the
    key is what a listener would name, not just which notes occur.
    """
    minor = key.endswith("m")
    tonic = NOTE_NAMES.index(key[:-1] if minor else key)
    third = 3 if minor else 4
    # (root offset, third of the chord): i/I, iv/IV, V, i/I
    chords = ((0, third), (5, third), (7, 4), (0, third))
    rng = np.random.default_rng(seed)
    chord_s = seconds / len(chords)
    out = np.zeros(round(seconds * rate), dtype=np.float32)
    for index, (root, chord_third) in enumerate(chords):
        base = 130.81 * 2 ** (((tonic + root) % 12) / 12)  # from C3 up
        at = index * chord_s
        for step in (0, chord_third, 7):
            _add(out, at, 0.12 * _tone(base * 2 ** (step / 12), chord_s, rate, decay_s=3.0), rate)
        _add(out, at, 0.15 * _tone(base / 2, chord_s, rate, decay_s=3.0), rate)
    out += (1e-4 * rng.standard_normal(len(out))).astype(np.float32)
    return out


def pad(*, seconds: float, rate: int = 44100, seed: int = 0) -> np.ndarray:
    """A beatless pad: slowly swelling detuned tones and soft noise, no onsets."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    wave = np.zeros(len(t))
    for freq in (220.0, 220.7, 277.2, 329.6, 330.4):
        wave += np.sin(2 * math.pi * freq * t + rng.uniform(0, 2 * math.pi))
    swell = 0.6 + 0.4 * np.sin(2 * math.pi * 0.13 * t)
    noise = np.convolve(rng.standard_normal(len(t)), np.ones(64) / 64, mode="same")
    return (0.05 * wave * swell + 0.02 * noise).astype(np.float32)
