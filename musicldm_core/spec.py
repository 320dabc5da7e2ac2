"""What a clip is asked to be: the validated request the engine and the daemon share.

This module is torch-free so the daemon's OSC front-end and the CLI can validate requests without
loading the model. ``LIMITS`` is the one table of allowed ranges; the OSC protocol module and the
CLI both check values through :func:`check_int` / :func:`check_number`, so every error message
names the key and its allowed range the same way.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import BadRequest

__all__ = [
    "AUDIO_MODES",
    "DEFAULT_MAX_SECONDS",
    "DEFAULT_MODEL",
    "DEFAULT_NEGATIVE_PROMPT",
    "DEFAULT_PRESET",
    "GRID_MODES",
    "KEY_FORMS",
    "KEY_NAMES",
    "LIMITS",
    "MAX_BLENDS",
    "MAX_PROMPT_CHARS",
    "MIN_SECONDS",
    "PRESETS",
    "SAMPLE_FORMATS",
    "SAMPLE_RATES",
    "SCHEDULER_NAMES",
    "ClipSpec",
    "Limit",
    "Preset",
    "check_choice",
    "check_int",
    "check_key",
    "check_number",
    "check_prompt",
    "parse_key",
]

DEFAULT_MODEL = "ucsd-reach/musicldm"
"""The hub id loaded when no model is named (the MusicLDM checkpoint)."""

DEFAULT_NEGATIVE_PROMPT = "low quality, average quality"
"""The negative prompt MusicLDM's authors recommend."""

MIN_SECONDS = 0.04
"""The shortest clip the model can make: 4 mel frames of 10 ms."""

DEFAULT_MAX_SECONDS = 30.0
"""The default longest clip; the daemon's config can change it."""

MAX_PROMPT_CHARS = 1000
"""Longer prompts are refused (the tokenizer keeps 512 tokens anyway)."""

SCHEDULER_NAMES = ("ddim", "dpm++", "dpm++-karras", "unipc", "euler", "heun")
"""Sampler names accepted by ``scheduler``; ``ddim`` is what the checkpoint ships with."""

SAMPLE_RATES = (16000, 44100, 48000)
"""Output sample rates a clip may be written at (Hz). 16000 is the model's own rate."""

SAMPLE_FORMATS = ("pcm16", "pcm24", "float32")
"""WAV sample formats."""

GRID_MODES = ("stretch", "check", "off")
"""``grid`` option values (:mod:`.conform`): stretch the music onto the tempo grid and start it
on the bar line, only analyse and report, or neither (exactly the plain cut)."""


@dataclass(frozen=True)
class Limit:
    """An allowed closed range for one option. ``integer`` options refuse non-integral values."""

    lo: float
    hi: float
    integer: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        lo = int(self.lo) if self.integer else self.lo
        hi = int(self.hi) if self.integer else self.hi
        return f"{kind} from {lo} to {hi}"


LIMITS: dict[str, Limit] = {
    "bars": Limit(1, 64, integer=True),
    "beats": Limit(1, 16, integer=True),
    "bpm": Limit(20, 400),
    "seconds": Limit(MIN_SECONDS, DEFAULT_MAX_SECONDS),
    "steps": Limit(1, 1000, integer=True),
    "guidance": Limit(0, 30),
    "seed": Limit(0, 2**31 - 1, integer=True),
    "takes": Limit(1, 8, integer=True),
    "loop": Limit(0, 1, integer=True),
    "gain": Limit(0, 2),
    "slot": Limit(0, 127, integer=True),
    "index": Limit(0, 127, integer=True),
    "play": Limit(0, 1, integer=True),
    "ahead": Limit(1, 8, integer=True),
    "gate": Limit(0, 1, integer=True),
    "loudness": Limit(-60, 0),
    "retake": Limit(0, 3, integer=True),
    # Audio in (:mod:`.audio_in`): SDEdit strength, new bars after a source, the share of the
    # reference clip's CLAP audio embedding, a blend prompt's weight and the morph position.
    "strength": Limit(0, 1),
    "extend": Limit(1, 64, integer=True),
    "like_weight": Limit(0, 1),
    "blend_weight": Limit(0, 10),
    "morph": Limit(0, 1),
    "morph_seed": Limit(0, 2**31 - 1, integer=True),
    # Live (daemon.live.slots): the strength of each new take of an evolving slot.
    "evolve": Limit(0, 1),
}

MAX_BLENDS = 8
"""At most this many extra ``blend`` prompts per clip."""

AUDIO_MODES = ("text", "variation", "repaint", "continue")
"""What a clip starts from (:attr:`ClipSpec.audio_mode`): noise, or the ``source`` audio noised
to ``strength``, or the source with bars ``repaint`` regenerated, or ``extend`` new bars after
it."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(key: str, value: Any, limit: Limit | None = None) -> float:
    """Return ``value`` as a float if it is a finite number within ``key``'s range.

    Raises :class:`BadRequest` naming the key and the allowed range otherwise.
    """
    limit = limit or LIMITS[key]
    if not _is_number(value) or not math.isfinite(float(value)):
        raise BadRequest(f"{key} must be {limit.describe()}, got {value!r}", key=key)
    number = float(value)
    if not limit.lo <= number <= limit.hi:
        # An OSC float (f) has 32 bits: seconds 0.04 arrives as 0.03999999910593033. A value
        # that rounds to the same 32-bit float as a bound is that bound (integers are exact).
        bound = limit.lo if number < limit.lo else limit.hi
        if limit.integer or _float32(number) != _float32(bound):
            raise BadRequest(f"{key} must be {limit.describe()}, got {value!r}", key=key)
        number = float(bound)
    return number


def _float32(number: float) -> float:
    """``number`` rounded to the nearest 32-bit float (what an OSC ``f`` carries)."""
    try:
        return struct.unpack("<f", struct.pack("<f", number))[0]
    except OverflowError:  # beyond float32's range: no bound is near it
        return math.copysign(math.inf, number)


def check_int(key: str, value: Any, limit: Limit | None = None) -> int:
    """Return ``value`` as an int if it is integral (an integral float is fine) and in range."""
    limit = limit or LIMITS[key]
    number = check_number(key, value, limit)
    if not number.is_integer():
        raise BadRequest(f"{key} must be {limit.describe()}, got {value!r}", key=key)
    return int(number)


def check_choice(key: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (case-insensitive for strings)."""
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    raise BadRequest(f"{key} must be one of {', '.join(choices)}, got {value!r}", key=key)


def check_prompt(prompt: Any, *, key: str = "prompt") -> str:
    """Return the prompt stripped of outer whitespace, refusing empty or over-long prompts."""
    if not isinstance(prompt, str):
        raise BadRequest(f"{key} must be text, got {prompt!r}", key=key)
    text = " ".join(prompt.split())
    if not text:
        raise BadRequest(f"{key} is missing or empty: describe the music to make", key=key)
    if len(text) > MAX_PROMPT_CHARS:
        raise BadRequest(
            f"{key} is {len(text)} characters long; at most {MAX_PROMPT_CHARS} are allowed", key=key
        )
    return text


NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
KEY_NAMES = tuple(NOTE_NAMES) + tuple(f"{n}m" for n in NOTE_NAMES)
"""The 24 keys as the reports name them: "C" … "B" major, "Cm" … "Bm" minor (sharps)."""

_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KEY_TEXT = re.compile(r"\s*([A-Ga-g])\s*([#b♯♭]?)\s*([A-Za-z]*)\s*")
_MINOR_WORDS = ("m", "min", "minor")
_MAJOR_WORDS = ("", "maj", "major")
KEY_FORMS = "a note A-G, optional # or b, then m or minor for minor (F#m, Bb, C major, A minor)"
"""How a ``key`` may be written, for error messages and help texts."""


def parse_key(text: str) -> tuple[int, bool]:
    """(tonic pitch class 0–11 from C, minor?) of a key name: "F#m", "Bb", "c#m", "Ebm",
    "C major", "A minor", "Gmin", "DM" (capital M: major). Raises ValueError otherwise."""
    match = _KEY_TEXT.fullmatch(text) if isinstance(text, str) else None
    mode = match.group(3) if match else ""
    if match is None or (mode != "M" and mode.lower() not in _MINOR_WORDS + _MAJOR_WORDS):
        raise ValueError(f"key must be {KEY_FORMS}, got {text!r}")
    shift = {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}[match.group(2)]
    tonic = (_LETTERS[match.group(1).upper()] + shift) % 12
    return tonic, mode != "M" and mode.lower() in _MINOR_WORDS


def check_key(value: Any) -> str | None:
    """``value`` (None, or a key :func:`parse_key` reads) as its :data:`KEY_NAMES` name, e.g.
    "Bb minor" → "A#m"; raises :class:`BadRequest` naming the forms allowed. "" means none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        tonic, minor = parse_key(value)
    except ValueError as exc:
        raise BadRequest(str(exc), key="key") from None
    return KEY_NAMES[tonic + 12 * minor]


@dataclass(frozen=True)
class Preset:
    """A named bundle of sampler settings (``live`` fast, ``studio`` close to upstream)."""

    name: str
    steps: int
    guidance: float
    scheduler: str
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT


DEFAULT_PRESET = "live"
"""The preset a clip uses when none is named: the fast one."""

PRESETS: dict[str, Preset] = {
    # DPM-Solver++(2M) reaches the quality of hundreds of DDIM steps in about 20 (see
    # docs/performance.md for the sources); guidance as the checkpoint's authors use it.
    "live": Preset("live", steps=20, guidance=2.0, scheduler="dpm++"),
    # Upstream defaults: 200 DDIM steps, guidance 2.0.
    "studio": Preset("studio", steps=200, guidance=2.0, scheduler="ddim"),
}


@dataclass(frozen=True)
class ClipSpec:
    """One clip to render: what, how long, and with which sampler settings.

    Length is ``bars`` × ``beats_per_bar`` beats at ``bpm``, or exactly ``seconds`` when given.
    ``seed`` None means "pick one"; the one used is always reported. ``takes`` > 1 renders that
    many candidates (take k uses seed + k) and ranks them best-first against the prompt and by
    their grid fit. ``grid`` (:data:`GRID_MODES`) says whether the music is conformed to the
    tempo grid (:func:`.conform.conform`).
    """

    prompt: str
    bars: int = 1
    beats_per_bar: int = 4
    bpm: float = 120.0
    seconds: float | None = None
    seed: int | None = None
    steps: int = PRESETS[DEFAULT_PRESET].steps
    guidance: float = PRESETS[DEFAULT_PRESET].guidance
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    scheduler: str = PRESETS[DEFAULT_PRESET].scheduler
    takes: int = 1
    loop: bool = True
    sample_rate: int = 44100
    sample_format: str = "pcm24"
    loudness_lufs: float | None = None
    name: str | None = None
    grid: str = GRID_MODES[0]
    key: str | None = None
    """Transpose tonal music to this key (:func:`check_key` form, e.g. "F#m"), grid ``stretch``."""
    retake: int = 0
    """Render again with new seeds, up to this many times, when no take fits the grid."""
    # Audio in (issue 12; :mod:`.audio_in`). ``source``/``like`` are absolute paths the daemon or
    # CLI has already sandbox-checked: musicldm_core only reads them.
    source: str | None = None
    strength: float | None = None
    repaint: tuple[int, int] | None = None
    extend: int | None = None
    like: str | None = None
    like_weight: float = 0.5
    blend: tuple[tuple[str, float], ...] = ()
    morph_to: str | None = None
    morph: float = 0.0
    morph_seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def audio_mode(self) -> str:
        """One of :data:`AUDIO_MODES`: ``continue`` with ``extend``, ``repaint`` with
        ``repaint``, ``variation`` with ``strength``, else ``text``."""
        if self.extend is not None:
            return "continue"
        if self.repaint is not None:
            return "repaint"
        if self.strength is not None:
            return "variation"
        return "text"

    @property
    def morph_seed_used(self) -> int | None:
        """The seed the noise is slerped toward when morphing: ``morph_seed``, or seed + 1."""
        if self.morph_seed is not None:
            return self.morph_seed
        return None if self.seed is None else (self.seed + 1) % 2**31

    @property
    def grid_bars(self) -> int | None:
        """The bars the clip was asked for, or None when it was asked for in ``seconds``
        (then ``bars`` is meaningless and replies say 0)."""
        return None if self.seconds is not None else self.bars

    @property
    def duration_seconds(self) -> float:
        """The clip's exact length in seconds."""
        if self.seconds is not None:
            return self.seconds
        return self.bars * self.beats_per_bar * 60.0 / self.bpm

    @property
    def total_beats(self) -> float:
        """How many beats the clip spans at its tempo (fractional when ``seconds`` is given)."""
        return self.duration_seconds * self.bpm / 60.0

    def with_preset(self, preset: Preset) -> ClipSpec:
        return replace(
            self,
            steps=preset.steps,
            guidance=preset.guidance,
            scheduler=preset.scheduler,
            negative_prompt=preset.negative_prompt,
        )

    def validated(self, *, max_seconds: float = DEFAULT_MAX_SECONDS) -> ClipSpec:
        """Return a normalised copy, or raise :class:`BadRequest` naming the first bad value."""
        prompt = check_prompt(self.prompt)
        bars = check_int("bars", self.bars)
        beats = check_int("beats", self.beats_per_bar)
        bpm = check_number("bpm", self.bpm)
        seconds = None
        if self.seconds is not None:
            seconds = check_number("seconds", self.seconds, Limit(MIN_SECONDS, max_seconds))
        steps = check_int("steps", self.steps)
        guidance = check_number("guidance", self.guidance)
        seed = None if self.seed is None else check_int("seed", self.seed)
        takes = check_int("takes", self.takes)
        scheduler = check_choice("scheduler", self.scheduler, SCHEDULER_NAMES)
        if self.sample_rate not in SAMPLE_RATES:
            raise BadRequest(
                f"rate must be one of {', '.join(map(str, SAMPLE_RATES))} Hz, "
                f"got {self.sample_rate!r}",
                key="rate",
            )
        sample_format = check_choice("format", self.sample_format, SAMPLE_FORMATS)
        grid = check_choice("grid", self.grid, GRID_MODES)
        key = check_key(self.key)
        retake = check_int("retake", self.retake)
        loudness = None
        if self.loudness_lufs is not None:
            loudness = check_number("loudness", self.loudness_lufs)
        negative = self.negative_prompt
        if not isinstance(negative, str) or len(negative) > MAX_PROMPT_CHARS:
            raise BadRequest(
                f"negative must be text of at most {MAX_PROMPT_CHARS} characters", key="negative"
            )
        audio = self._validated_audio(bars, seconds)
        if self.extend is not None:
            bars = audio["extend"]  # the clip IS the new bars
        spec = replace(
            self,
            **audio,
            prompt=prompt,
            bars=bars,
            beats_per_bar=beats,
            bpm=bpm,
            seconds=seconds,
            steps=steps,
            guidance=guidance,
            seed=seed,
            takes=takes,
            scheduler=scheduler,
            sample_format=sample_format,
            grid=grid,
            key=key,
            retake=retake,
            loudness_lufs=loudness,
            negative_prompt=" ".join(self.negative_prompt.split()),
        )
        if seconds is None and not MIN_SECONDS <= spec.duration_seconds <= max_seconds:
            raise BadRequest(
                f"{bars} bars of {beats} beats at {bpm:g} BPM last {spec.duration_seconds:.3f} s; "
                f"clips must last from {MIN_SECONDS} to {max_seconds:g} s",
                key="bars",
            )
        return spec

    def _validated_audio(self, bars: int, seconds: float | None) -> dict[str, Any]:
        """The audio-in fields normalised (see :data:`AUDIO_MODES`); raises :class:`BadRequest`."""
        modes = [
            key
            for key, value in (
                ("strength", self.strength),
                ("repaint", self.repaint),
                ("extend", self.extend),
            )
            if value is not None
        ]
        if len(modes) > 1:
            raise BadRequest(
                f"{' and '.join(modes)} cannot be combined: choose one of strength (variation), "
                "repaint or extend (continue)",
                key=modes[1],
            )
        source = _check_path("from", self.source)
        if modes and source is None:
            raise BadRequest(
                f"{modes[0]} needs input audio: give from (a clip id or file)", key="from"
            )
        if source is not None and not modes:
            raise BadRequest(
                "from needs strength (a variation), repaint (bars to regenerate) or extend "
                "(new bars after it)",
                key="from",
            )
        strength = None if self.strength is None else check_number("strength", self.strength)
        repaint = None
        if self.repaint is not None:
            if seconds is not None:
                raise BadRequest("repaint counts bars: give bars, not seconds", key="repaint")
            repaint = _check_bar_span(self.repaint, bars)
        extend = None
        if self.extend is not None:
            if seconds is not None:
                raise BadRequest("extend counts bars: give bars, not seconds", key="extend")
            extend = check_int("extend", self.extend)
        if not isinstance(self.blend, (tuple, list)):
            raise BadRequest(f"blend must be prompt:weight pairs, got {self.blend!r}", key="blend")
        if len(self.blend) > MAX_BLENDS:  # the count, not the pairs: the error stays one line
            raise BadRequest(
                f"blend takes at most {MAX_BLENDS} prompt:weight pairs, got {len(self.blend)}",
                key="blend",
            )
        blend: list[tuple[str, float]] = []
        for item in self.blend:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise BadRequest(f"blend must be prompt:weight pairs, got {item!r}", key="blend")
            weight = check_number("blend", item[1], LIMITS["blend_weight"])
            blend.append((check_prompt(item[0], key="blend"), weight))
        morph_to = None if self.morph_to is None else check_prompt(self.morph_to, key="morph_to")
        morph = check_number("morph", self.morph)
        if morph > 0 and morph_to is None:
            raise BadRequest("morph needs morph_to: the prompt to morph toward", key="morph")
        morph_seed = None
        if self.morph_seed is not None:
            morph_seed = check_int("morph_seed", self.morph_seed)
        return {
            "source": source,
            "strength": strength,
            "repaint": repaint,
            "extend": extend,
            "like": _check_path("like", self.like),
            "like_weight": check_number("like_weight", self.like_weight),
            "blend": tuple(blend),
            "morph_to": morph_to,
            "morph": morph,
            "morph_seed": morph_seed,
        }


def _check_path(key: str, value: Any) -> str | None:
    """``value`` as a non-empty path string (or None); the daemon has already sandboxed it."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{key} must be a clip id or a file path, got {value!r}", key=key)
    return value


def _check_bar_span(value: Any, bars: int) -> tuple[int, int]:
    """``repaint`` as (first, last) 1-based inclusive bars within the clip's ``bars``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise BadRequest(f"repaint must be bars A-B (1-based), got {value!r}", key="repaint")
    first, last = (check_int("repaint", v, LIMITS["bars"]) for v in value)
    if last > bars:  # say the span and the clip's bars, not one number
        raise BadRequest(
            f"repaint {first}-{last} lies outside the clip's bars: "
            f"bars are 1 to {bars} (1-based, inclusive)",
            key="repaint",
        )
    if first > last:
        raise BadRequest(f"repaint must be bars A-B with A <= B, got {first}-{last}", key="repaint")
    return first, last
