"""The OSC contract as data: the one module both ends of the wire read.

Addresses and what they take (:data:`ADDRESSES`), the option tables with types, ranges and
defaults (:data:`GENERATE_OPTIONS`, :data:`PLAYBACK_OPTIONS`, :data:`SLOT_OPTIONS`), the stable
failure codes (:data:`FAIL_CODES`), every reply address with its arguments (:data:`REPLIES`) and
the builders of every reply (:func:`fail`, :func:`queued`, :func:`done`, …), and the typed
values (:class:`Double`, :class:`Int64`, :class:`Typed`) by which an argument keeps its OSC type
tag from the transport's decoder to its encoder (``/musicldm/ping`` echoes type for type). The
daemon's parser (:mod:`daemon.wire.requests`) and replies, the Python client
(:mod:`clients.client`), the docs check (``docs/osc.md`` against these tables, in the tests) and
any discovery namespace read it.

Pure data and pure functions: no torch, no threads, no sockets, importable in milliseconds. It
stands on :mod:`musicldm_core.spec` (the ranges a clip may have) and :mod:`musicldm_core.errors`
(the error tree whose codes are :data:`FAIL_CODES`) and on nothing else of the project.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from musicldm_core.errors import BadRequest, MusicLDMError
from musicldm_core.spec import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_PRESET,
    GRID_MODES,
    LIMITS,
    MAX_PROMPT_CHARS,
    SCHEDULER_NAMES,
    Limit,
    check_choice,
    check_int,
    check_key,
    check_number,
)

JobId = int | str
"""A job's id: an int the daemon assigns, or whatever int or text the client chose."""

PREFIX = "/musicldm/"
"""Every address of the contract starts with this."""


DEFAULT_HOST = "127.0.0.1"
"""Where the daemon listens by default (loopback only)."""

DEFAULT_PORT = 9000
"""The daemon's default UDP port."""

DEFAULT_REPLY_PORT = 9001
"""Where replies go by default besides the sender (Max ``[udpreceive 9001]``, Pd)."""

FAIL_CODES = (
    "bad_request",
    "unknown_address",
    "queue_full",
    "cancelled",
    "out_of_memory",
    "model_error",
    "io_error",
    "shutting_down",
    "not_found",
)
"""The stable failure codes of ``/musicldm/fail``; the message beside them is for humans."""

QUANTIZE_CHOICES = ("none", "beat", "bar")
"""Where a clip starts or stops: at once, on the next beat, or on the next bar line."""

PRIORITIES = ("live", "normal", "batch")
"""Queue priorities, highest first."""

TRANSPORT_CHOICES = ("start", "stop")
"""Arguments of ``/musicldm/transport`` (``1`` and ``0`` mean the same)."""

PORT_LIMIT = Limit(1, 65535, integer=True)
"""UDP ports a client may register with ``/musicldm/notify``."""

MAX_ID_CHARS = 256
"""The longest text id accepted; ids are echoed in every reply about their job."""

ID_MIN = -(2**31)
ID_MAX = 2**31 - 1
"""The int ids there are: what every OSC implementation carries as an int (``i``, 32 bits).
Max, Pd and liblo have no 64-bit ints, and an id must reach every client in every reply."""

_PRESET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


STATUS_KEYS = ("queued", "running", "device", "model", "bpm", "voices", "version")
"""Keys every ``/musicldm/status.reply`` carries at least."""


# -- value checks ----------------------------------------------------------------------------------


def normalize_id(value: Any) -> JobId:
    """Return a job id as the daemon keeps and echoes it.

    An int from :data:`ID_MIN` to :data:`ID_MAX` stays an int; an integral float in that range
    (Pd sends every number as a float) becomes an int; non-empty text is kept exactly as given.
    Anything else is a :class:`BadRequest`.
    """
    if isinstance(value, bool):
        raise BadRequest(f"id must be an integer or text, got {value!r}", key="id")
    if isinstance(value, int):
        number: float | int = value
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise BadRequest(f"id must be an integer or text, got {value!r}", key="id")
        number = int(value)
    elif isinstance(value, str):
        if not value.strip():
            raise BadRequest("id must be an integer or non-empty text, got ''", key="id")
        if len(value) > MAX_ID_CHARS:
            raise BadRequest(
                f"id is {len(value)} characters long; at most {MAX_ID_CHARS} are allowed", key="id"
            )
        return value
    else:
        raise BadRequest(f"id must be an integer or text, got {value!r}", key="id")
    if not ID_MIN <= number <= ID_MAX:  # every reply must carry it as an OSC int (32 bits)
        raise BadRequest(
            f"id must be text or an integer from {ID_MIN} to {ID_MAX} (what an OSC int "
            f"carries), got {value!r}",
            key="id",
        )
    return int(number)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flag(key: str, value: Any) -> bool:
    """0/1 (also 0.0/1.0, and OSC ``T``/``F``) as a bool."""
    if isinstance(value, bool):
        return value
    return bool(check_int(key, value, LIMITS[key] if key in LIMITS else LIMITS["loop"]))


def _text(key: str, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be text, got {value!r}", key=key)
    if not allow_empty and not value.strip():
        raise BadRequest(f"{key} must be non-empty text", key=key)
    if len(value) > MAX_PROMPT_CHARS:
        raise BadRequest(
            f"{key} is {len(value)} characters long; at most {MAX_PROMPT_CHARS} are allowed",
            key=key,
        )
    return value


def _word(value: Any) -> str | None:
    """A text option's word: text as is, an integral number as its digits (``808`` → "808")."""
    if isinstance(value, str):
        return value
    if _is_number(value) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return None


# -- the option tables -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One request option: how to check it and how ``docs/osc.md`` describes it.

    ``limit`` is the option's range (from :data:`LIMITS`) and ``choices`` its allowed words, when
    it has them; ``words`` marks free-text options whose value may span several text arguments.
    ``default`` is how the docs write the default; ``value`` is the built-in default itself, or
    None where it comes from elsewhere (the preset, the current tempo, the config, a random seed).
    """

    key: str
    type_name: str
    default: str
    meaning: str
    limit: Limit | None = None
    choices: tuple[str, ...] = ()
    words: bool = False
    value: Any = None
    repeats: bool = False
    """The option may be given more than once (``blend``); the request holds a tuple of them."""

    def check(self, value: Any, *, max_seconds: float = DEFAULT_MAX_SECONDS) -> Any:
        """Return ``value`` normalised for this option, or raise :class:`BadRequest`.

        ``max_seconds`` is the daemon's configured longest clip; it bounds ``seconds``.
        """
        key = self.key
        if key == "id":
            return normalize_id(value)
        if self.type_name == "0/1":
            return _flag(key, value)
        if self.limit is not None:
            limit = self.limit
            if key == "seconds":
                limit = replace(limit, hi=max_seconds)
            if limit.integer:
                return check_int(key, value, limit)
            return check_number(key, value, limit)
        if self.choices:
            return check_choice(key, value, self.choices)
        if key == "key":  # a key name; "" (no key) is None
            return check_key(_word(value) or value)
        if key == "preset":
            if not isinstance(value, str) or not _PRESET_NAME.fullmatch(value):
                raise BadRequest(
                    f"preset must be a preset name (letters, digits, _ and -), got {value!r}",
                    key=key,
                )
            return value
        word = _word(value) if self.words else None
        if key == "repaint":  # a number that is no bar (1.5, nan) gets the bars message too
            return bar_span(str(value) if word is None else word)
        text = _text(key, value if word is None else word, allow_empty=key == "negative")
        if key == "blend":
            return blend_pair(text)
        return text


_BAR_SPAN = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")


def _bar_number(digits: str) -> int:
    # a digit run too long to be a bar is out of range (and int() refuses > 4300 digits)
    return int(digits) if len(digits) <= 12 else 10**12


def bar_span(text: str, *, key: str = "repaint") -> tuple[int, int]:
    """``"A-B"`` (or one bar ``"A"``) as 1-based inclusive bars ``(A, B)``, A <= B, each
    within :data:`LIMITS` ``bars`` (the clip's own bars are checked with the spec)."""
    # ASCII digits only: int() would also take "1_0" (10) and other scripts' digits
    match = _BAR_SPAN.fullmatch(text)
    if match is None:
        raise BadRequest(
            f'{key} must be bars A-B (1-based, inclusive, e.g. "2-3") or one bar A, got {text!r}',
            key=key,
        )
    first, last = match.group(1), match.group(2) or match.group(1)
    span = (_bar_number(first), _bar_number(last))
    bars = LIMITS["bars"]
    for bar in span:
        if not bars.lo <= bar <= bars.hi:
            raise BadRequest(
                f"{key} bars must be from {int(bars.lo)} to {int(bars.hi)}, got {text!r}", key=key
            )
    if span[0] > span[1]:
        raise BadRequest(f"{key} must be bars A-B with A <= B, got {text!r}", key=key)
    return span


def blend_pair(text: str, *, key: str = "blend") -> tuple[str, float]:
    """``"prompt:weight"`` as ``(prompt, weight)``; the last ``:`` splits, so a prompt may hold
    one. The weight is a number within :data:`LIMITS` ``blend_weight``."""
    prompt, colon, weight_text = text.rpartition(":")
    limit = LIMITS["blend_weight"]
    try:
        weight = float(weight_text) if colon else math.nan
    except ValueError:
        weight = math.nan
    if not prompt.strip() or not math.isfinite(weight):
        raise BadRequest(
            f'{key} must be "prompt:weight" with a weight {limit.describe()} (e.g. '
            f'"warm pads:0.3"), got {text!r}',
            key=key,
        )
    weight = check_number(key, weight, limit)
    return " ".join(prompt.split()), weight


def _limited(key: str, type_name: str, default: str, meaning: str, value: Any = None) -> Option:
    return Option(key, type_name, default, meaning, limit=LIMITS[key], value=value)


GENERATE_OPTIONS: dict[str, Option] = {
    option.key: option
    for option in (
        Option("id", "int or string", "assigned (increasing int)", "echoed in every reply"),
        _limited("bars", "int", "1", "ignored when `seconds` is given", 1),
        _limited("beats", "int", "4", "beats per bar"),
        _limited("bpm", "number", "current tempo", "tempo of the clip"),
        _limited("seconds", "number", "–", "exact length instead of bars; up to the maximum"),
        _limited("steps", "int", "preset's", "sampler steps"),
        _limited("guidance", "number", "preset's", "how closely to follow the prompt"),
        _limited("seed", "int", "random", "the seed used is always reported"),
        Option("negative", "string", "preset's", "what to steer away from", words=True),
        _limited("takes", "int", "1", "candidates, ranked best-first against the prompt", 1),
        Option("scheduler", "string", "preset's", "sampler", choices=SCHEDULER_NAMES),
        Option(
            "preset",
            "string",
            DEFAULT_PRESET,
            "named settings bundle (`live`, `studio`, …)",
            value=DEFAULT_PRESET,
        ),
        Option(
            "loop",
            "0/1",
            "1",
            "1: seamless loop; 0: plain cut with fades",
            LIMITS["loop"],
            value=True,
        ),
        Option(
            "grid",
            "string",
            GRID_MODES[0],
            "put the music on the tempo grid: `stretch`, `check` (report only) or `off`",
            choices=GRID_MODES,
            value=GRID_MODES[0],
        ),
        Option(
            "key",
            "string",
            "–",
            "transpose tonal music to this key (`F#m`, `Bb`, `C major`, `A minor`; grid `stretch`)",
            words=True,
        ),
        _limited("retake", "int", "0", "render again (new seeds) when no take fits the grid", 0),
        Option("name", "string", "from prompt", "file name stem", words=True),
        _limited("slot", "int", "–", "load the result into this slot when done"),
        Option(
            "play", "0/1", "0", "1: play it at the next quantize point", LIMITS["play"], value=False
        ),
        Option(
            "priority",
            "string",
            "normal",
            "`live` > `normal` > `batch`",
            choices=PRIORITIES,
            value="normal",
        ),
        # Audio in (docs/clips.md "Audio in"): per request only, never a default (AUDIO_IN).
        Option("from", "clip id or path", "–", "input audio: a library clip or a file", words=True),
        _limited("strength", "number", "–", "variation: how far from the input (needs `from`)"),
        Option("repaint", "string or int", "–", "bars A-B of the input to regenerate", words=True),
        _limited("extend", "int", "–", "continue: this many new bars after the input"),
        Option("like", "clip id or path", "–", "reference clip to sound like", words=True),
        _limited("like_weight", "number", "0.5", "share of `like` in the conditioning", 0.5),
        Option("blend", "string", "–", "extra prompt `prompt:weight`", words=True, repeats=True),
        Option("morph_to", "string", "–", "second prompt to morph toward", words=True),
        _limited("morph", "number", "0", "position from the prompt (0) to `morph_to` (1)", 0.0),
        _limited("morph_seed", "int", "seed + 1", "seed of the noise morphed toward"),
    )
}
"""Options of ``/musicldm/generate`` (and ``/musicldm/slot``), in the contract's order."""

AUDIO_IN: tuple[str, ...] = (
    *("from", "strength", "repaint", "extend", "like", "like_weight"),
    *("blend", "morph_to", "morph", "morph_seed"),
)
"""The audio-in options: given per request only. They cannot be set as defaults
(``/musicldm/set``, ``[defaults]``, a MIDI CC): a default ``from`` or ``strength`` would turn
every later clip into a variation of one file, or make every plain generate fail."""

PLAYBACK_OPTIONS: dict[str, Option] = {
    option.key: option
    for option in (
        Option(
            "quantize",
            "string",
            "bar",
            "when to start or stop",
            choices=QUANTIZE_CHOICES,
            value="bar",
        ),
        Option("loop", "0/1", "1", "1: loop; 0: play once", LIMITS["loop"], value=True),
        _limited("gain", "number", "1", "linear gain", 1.0),
    )
}
"""Options of ``/musicldm/trigger`` and ``/musicldm/play``."""

SLOT_OPTIONS: dict[str, Option] = {
    **{k: o for k, o in GENERATE_OPTIONS.items() if k != "slot"},  # the index names the slot
    "ahead": _limited("ahead", "int", "1", "takes kept rendered ahead", 1),
    "gate": Option(
        "gate", "0/1", "0", "1: a MIDI note plays the slot only while held", LIMITS["gate"]
    ),
    "evolve": _limited(
        "evolve",
        "number",
        "0",
        "each new take is a variation of this strength of the take before it; 0: off",
        0.0,
    ),
}
"""Options of ``/musicldm/slot``: the generate options (but ``slot``), ``ahead``, ``gate`` and
``evolve`` (:mod:`daemon.live.slots`)."""

DAEMON_KEYS = ("bpm", "transport", "version")
"""Keys ``/musicldm/get`` answers besides the options."""

SETTABLE: dict[str, Option] = {
    # one id for every job is no id; audio in is per request only (AUDIO_IN)
    **{k: o for k, o in GENERATE_OPTIONS.items() if k != "id" and k not in AUDIO_IN},
    **PLAYBACK_OPTIONS,
    "evolve": SLOT_OPTIONS["evolve"],  # the default of the slots that set none (a MIDI CC)
}
GETTABLE: tuple[str, ...] = tuple(
    dict.fromkeys([*GENERATE_OPTIONS, *PLAYBACK_OPTIONS, "evolve", *DAEMON_KEYS])
)

OPTIONS_OF: dict[str, dict[str, Option]] = {
    PREFIX + "generate": GENERATE_OPTIONS,
    PREFIX + "slot": SLOT_OPTIONS,
    PREFIX + "trigger": PLAYBACK_OPTIONS,
    PREFIX + "play": PLAYBACK_OPTIONS,
    PREFIX + "stop": {"quantize": PLAYBACK_OPTIONS["quantize"]},
    PREFIX + "morph": {"quantize": PLAYBACK_OPTIONS["quantize"]},
    PREFIX + "set": SETTABLE,
}
"""The options each request address takes, by address."""

MORPH_BARS = Limit(1, 32, integer=True)
"""Bars (= rendered steps) a ``/musicldm/morph`` may take: each step is a take rendered ahead."""

OPTION_WORDS: tuple[str, ...] = tuple(dict.fromkeys(k for t in OPTIONS_OF.values() for k in t))
"""Every option key of any request address. A text argument that is exactly one of these words
ends a prompt given in several pieces (and the words of ``negative`` and ``name``), whatever the
address: so a prompt is read the same way everywhere, and a key sent to the wrong address is
refused instead of becoming prompt words. Any other word is a prompt word."""


def check_option(key: str, value: Any, *, max_seconds: float = DEFAULT_MAX_SECONDS) -> Any:
    """Validate one generate, slot or playback option value given outside a message (a config
    default, a CLI flag) by the same rules a request's option meets."""
    option = GENERATE_OPTIONS.get(key) or PLAYBACK_OPTIONS.get(key) or SLOT_OPTIONS.get(key)
    if option is None:
        raise BadRequest(f"unknown option {key!r}", key=key)
    return option.check(value, max_seconds=max_seconds)


# -- the tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One request address: its arguments as the docs write them and what it does."""

    arguments: str
    description: str


ADDRESSES: dict[str, Endpoint] = {
    PREFIX + "generate": Endpoint("prompt then options", "queue one clip (or `takes` clips)"),
    PREFIX + "cancel": Endpoint("[id]", "cancel that job (queued or running); no id: every job"),
    PREFIX + "slot": Endpoint(
        "index prompt then options", "define clip slot `index`; keeps `ahead` takes"
    ),
    PREFIX + "trigger": Endpoint(
        "index then playback options", "play the slot's next take, render another"
    ),
    PREFIX + "play": Endpoint("id-or-path then playback options", "play a finished clip"),
    PREFIX + "stop": Endpoint(
        "[index] then quantize", "stop one slot or everything at the quantize point"
    ),
    PREFIX + "morph": Endpoint(
        "from to bars then quantize",
        "morph slot `from` into slot `to` over `bars` bars, one rendered step a bar",
    ),
    PREFIX + "tempo": Endpoint("bpm", "set the internal clock's tempo"),
    PREFIX + "transport": Endpoint("start or stop", "start/stop the internal clock"),
    PREFIX + "set": Endpoint("key value", "change a default used by later requests"),
    PREFIX + "get": Endpoint("key", "reply /musicldm/value key value"),
    PREFIX + "status": Endpoint("–", "reply /musicldm/status.reply"),
    PREFIX + "ping": Endpoint("anything", "reply /musicldm/pong, same arguments"),
    PREFIX + "notify": Endpoint("1 or 0, [port]", "(un)register the sender for every event"),
}
"""Every request address: the one map the dispatcher and the docs are checked against."""


@dataclass(frozen=True)
class Reply:
    """One reply or event address: its argument names (repeating when ``repeats``) and when."""

    arguments: tuple[str, ...]
    description: str
    repeats: bool = False


REPLIES: dict[str, Reply] = {
    PREFIX + "queued": Reply(("id", "position"), "a generate was accepted (position 0 = next)"),
    PREFIX + "started": Reply(("id",), "its render began"),
    PREFIX + "progress": Reply(("id", "step", "total"), "during the render"),
    PREFIX + "done": Reply(
        (
            *("id", "path", "seconds", "bpm", "bars", "seed"),
            *("detected_bpm", "confidence", "ratio", "grid_error_ms", "key"),
        ),
        "the file is complete on disk; then the grid fit (arguments added at the end)",
    ),
    PREFIX + "fail": Reply(("id", "code", "message"), "the job or request failed"),
    PREFIX + "playing": Reply(("index", "path"), "a clip became audible"),
    PREFIX + "stopped": Reply(
        ("index",), "a slot or play voice fell silent, or a stop cancelled a waiting launch"
    ),
    PREFIX + "late": Reply(
        ("id",),
        "a clip was ready too late and launched at the next point, or a trigger found no take yet",
    ),
    PREFIX + "value": Reply(("key", "value"), "answer to /musicldm/get, set, tempo and notify"),
    PREFIX + "status.reply": Reply(("key", "value"), "answer to /musicldm/status", repeats=True),
    PREFIX + "pong": Reply(("arg",), "answer to /musicldm/ping", repeats=True),
}
"""Every address the daemon sends, with its arguments."""


# -- reply builders --------------------------------------------------------------------------------


class Message(NamedTuple):
    """One outgoing OSC message: its address and its arguments, ready for the transport."""

    address: str
    args: list[Any]


def fail(job_id_or_address: JobId, code: str, message: str) -> Message:
    """``/musicldm/fail``: the job id, or the request's address when there is no job; ``code``
    is one of :data:`FAIL_CODES`."""
    return Message(PREFIX + "fail", [job_id_or_address, code, message])


def fail_for(exc: MusicLDMError, address: str) -> Message:
    """``/musicldm/fail`` for an error raised while handling a request at ``address``: names the
    job when the error carries a ``job_id``, else the address."""
    job_id = getattr(exc, "job_id", None)
    return fail(job_id if job_id is not None else address, exc.code, exc.message)


def queued(job_id: JobId, position: int) -> Message:
    """``/musicldm/queued`` (position 0 = rendered next)."""
    return Message(PREFIX + "queued", [job_id, int(position)])


def started(job_id: JobId) -> Message:
    """``/musicldm/started``: the job's render began."""
    return Message(PREFIX + "started", [job_id])


def progress(job_id: JobId, step: int, total: int) -> Message:
    """``/musicldm/progress``: sampler step done out of ``total``."""
    return Message(PREFIX + "progress", [job_id, int(step), int(total)])


NO_GRID_ERROR_MS = -1.0
"""``grid_error_ms`` of ``/musicldm/done`` when the take was not put on the grid (OSC has no
None): kept unstretched, or ``grid`` ``check`` or ``off``."""


def done(
    job_id: JobId,
    path: object,
    *,
    seconds: float,
    bpm: float,
    bars: int,
    seed: int,
    grid: Mapping[str, Any] | None = None,
) -> Message:
    """``/musicldm/done``: file path, length in seconds, tempo in BPM, bars (0 when the clip was
    asked for in seconds) and the seed used; then the grid fit from ``grid`` (the clip's
    ``settings()["grid"]``, a conform report's ``as_dict()``): the detected tempo (0: none
    found, or ``grid off``), its confidence (0–1), the stretch ratio (1: unstretched), the
    remaining grid error in ms (:data:`NO_GRID_ERROR_MS` when not on the grid) and the detected
    key ("" when none). They come after the first six so that patches reading those still work.
    """
    grid = grid if isinstance(grid, Mapping) else {}  # a file's settings: anything may be there
    detected = grid.get("detected")
    detected = detected if isinstance(detected, Mapping) else {}
    error = grid.get("grid_error_ms")
    return Message(
        PREFIX + "done",
        [
            *(job_id, str(path), float(seconds), float(bpm), int(bars), int(seed)),
            float(detected.get("tempo_bpm") or 0.0),
            float(detected.get("confidence") or 0.0),
            float(grid.get("ratio") or 1.0),
            NO_GRID_ERROR_MS if error is None else float(error),
            str(detected.get("key") or ""),
        ],
    )


def playing(index: int, path: object) -> Message:
    """``/musicldm/playing``: a clip became audible in slot (or play voice) ``index``."""
    return Message(PREFIX + "playing", [int(index), str(path)])


def stopped(index: int) -> Message:
    """``/musicldm/stopped``: slot (or play voice) ``index`` fell silent."""
    return Message(PREFIX + "stopped", [int(index)])


def late(job_id: JobId) -> Message:
    """``/musicldm/late``: a clip meant for a quantize point launched at a later one."""
    return Message(PREFIX + "late", [job_id])


def value(key: str, current: Any) -> Message:
    """``/musicldm/value key value``: the answer to get, set, tempo and notify."""
    return Message(PREFIX + "value", [key, current])


def status_reply(pairs: dict[str, Any]) -> Message:
    """``/musicldm/status.reply key value …`` from a mapping (at least :data:`STATUS_KEYS`)."""
    args: list[Any] = []
    for key, current in pairs.items():
        args += [key, current]
    return Message(PREFIX + "status.reply", args)


def pong(args: tuple[Any, ...] | list[Any]) -> Message:
    """``/musicldm/pong`` with the ping's arguments, each with the type tag it came with."""
    return Message(PREFIX + "pong", [typed(arg) for arg in args])


# -- typed arguments: what an argument was on the wire -----------------------------------------


class Double(float):
    """A number that arrived as an OSC double (``d``), so that an echo sends a double back."""


class Int64(int):
    """An integer that arrived as an OSC int64 (``h``), so that an echo sends an int64 back."""


class Rgba(int):
    """An OSC colour (``r``): 32 bits, red in the top byte."""


class Typed(NamedTuple):
    """An argument with the OSC type tag it must be sent with: a letter, or for an array
    (``[…]``) the list of its elements' tags. The transport writes it as is."""

    value: Any
    tag: str | list[Any]


def typed(value: Any) -> Typed:
    """``value`` with the tag it arrived with (see :class:`Double`, :class:`Int64`,
    :class:`Rgba`): ``T``/``F`` for a bool, ``N`` for None, ``b`` for bytes, ``m`` for a MIDI
    message (4 ints), arrays element by element. What OSC cannot write back (a time tag) is
    sent as its text."""
    if isinstance(value, bool):
        return Typed(value, "T" if value else "F")
    if value is None:
        return Typed(None, "N")
    if isinstance(value, Double):
        return Typed(float(value), "d")
    if isinstance(value, Rgba):
        return Typed(int(value), "r")
    if isinstance(value, Int64):
        return Typed(int(value), "h")
    if isinstance(value, int):
        return Typed(value, "i" if -(2**31) <= value < 2**31 else "h")
    if isinstance(value, float):
        return Typed(value, "f")
    if isinstance(value, str):
        return Typed(value, "s")
    if isinstance(value, bytes):
        return Typed(value, "b")
    if isinstance(value, tuple) and len(value) == 4 and all(isinstance(v, int) for v in value):
        return Typed(value, "m")
    if isinstance(value, list):
        items = [typed(item) for item in value]
        return Typed([item.value for item in items], [item.tag for item in items])
    return Typed(str(value), "s")
