"""The OSC contract as code: every incoming message becomes one typed, validated request here.

This is the daemon's edge. :func:`parse` turns an OSC address and its arguments (as python-osc
decodes them: ``int``, ``float``, ``str``, ``bool``) into one of the frozen request dataclasses
below, or raises :class:`~musicldm_core.errors.BadRequest` (a message naming the key and what is
allowed) or :class:`~daemon.errors.UnknownAddress`. Everything behind this module trusts the
types it gets and never re-checks a value. Ranges come from :data:`musicldm_core.spec.LIMITS`;
the contract itself is ``docs/osc.md``, and the tables here (:data:`ADDRESSES`, :data:`REPLIES`,
:data:`GENERATE_OPTIONS`, :data:`PLAYBACK_OPTIONS`, :data:`FAIL_CODES`) are what the tests check
that page against.

Called from the OSC thread (:meth:`daemon.app.daemon.Daemon.handle`); pure functions, no I/O, no
torch, safe from any thread.

Shapes worth knowing:

- Numbers may arrive as int or float (Pd sends every number as a float); an integer option given
  a non-integral float is refused, an integral one (``2.0``) is taken as ``2``.
- A prompt may arrive as several words: the leading text arguments up to the first option key are
  joined with single spaces. The free-text options ``negative`` and ``name`` take their words the
  same way, so Pd (which cannot send a symbol with spaces) can set them too.
- Options default to ``None`` ("not given"); the server merges ``/musicldm/set`` defaults, the
  config and the preset afterwards.
- A :class:`BadRequest` raised for ``/musicldm/generate`` or ``/musicldm/slot`` carries the
  request's ``id`` option, when one was readable, as the attribute ``job_id``, so the fail reply
  can name the job the client asked for: ``getattr(exc, "job_id", None)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from clients.client import FAIL_CODES  # one list for both ends of the wire
from daemon.errors import UnknownAddress
from musicldm_core.errors import BadRequest, MusicLDMError
from musicldm_core.spec import (
    DEFAULT_MAX_SECONDS,
    LIMITS,
    MAX_PROMPT_CHARS,
    SCHEDULER_NAMES,
    Limit,
    check_choice,
    check_int,
    check_number,
    check_prompt,
)

__all__ = [
    "ADDRESSES",
    "DAEMON_KEYS",
    "FAIL_CODES",
    "GENERATE_OPTIONS",
    "MAX_ID_CHARS",
    "PLAYBACK_OPTIONS",
    "PORT_LIMIT",
    "PRIORITIES",
    "QUANTIZE_CHOICES",
    "REPLIES",
    "SLOT_OPTIONS",
    "STATUS_KEYS",
    "TRANSPORT_CHOICES",
    "Cancel",
    "Endpoint",
    "Generate",
    "GenerateOptions",
    "Get",
    "JobId",
    "Notify",
    "Option",
    "Ping",
    "Play",
    "PlaybackOptions",
    "Reply",
    "Request",
    "Set",
    "Slot",
    "Status",
    "Stop",
    "Tempo",
    "Transport",
    "Trigger",
    "check_option",
    "done_args",
    "fail_args",
    "fail_args_for",
    "normalize_id",
    "parse",
    "progress_args",
    "queued_args",
]

JobId = int | str
"""A job's id: an int the daemon assigns, or whatever int or text the client chose."""

PREFIX = "/musicldm/"

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

_PRESET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


STATUS_KEYS = ("queued", "running", "device", "model", "bpm", "voices", "version")
"""Keys every ``/musicldm/status.reply`` carries at least."""


# -- value checks ----------------------------------------------------------------------------------


def normalize_id(value: Any) -> JobId:
    """Return a job id as the daemon keeps and echoes it.

    An int stays an int; an integral float (Pd sends every number as a float) becomes an int;
    non-empty text is kept exactly as given. Anything else is a :class:`BadRequest`.
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
    if not -(2**63) <= number < 2**63:  # every reply must be able to carry it as an OSC int64
        raise BadRequest(f"id must fit in a 64-bit integer, got {value!r}", key="id")
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
    """

    key: str
    type_name: str
    default: str
    meaning: str
    limit: Limit | None = None
    choices: tuple[str, ...] = ()
    words: bool = False

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
        if key == "preset":
            if not isinstance(value, str) or not _PRESET_NAME.fullmatch(value):
                raise BadRequest(
                    f"preset must be a preset name (letters, digits, _ and -), got {value!r}",
                    key=key,
                )
            return value
        word = _word(value) if self.words else None
        return _text(key, value if word is None else word, allow_empty=key == "negative")


def _limited(key: str, type_name: str, default: str, meaning: str) -> Option:
    return Option(key, type_name, default, meaning, limit=LIMITS[key])


GENERATE_OPTIONS: dict[str, Option] = {
    option.key: option
    for option in (
        Option("id", "int or string", "assigned (increasing int)", "echoed in every reply"),
        _limited("bars", "int", "1", "ignored when `seconds` is given"),
        _limited("beats", "int", "4", "beats per bar"),
        _limited("bpm", "number", "current tempo", "tempo of the clip"),
        _limited("seconds", "number", "–", "exact length instead of bars; up to the maximum"),
        _limited("steps", "int", "preset's", "sampler steps"),
        _limited("guidance", "number", "preset's", "how closely to follow the prompt"),
        _limited("seed", "int", "random", "the seed used is always reported"),
        Option("negative", "string", "preset's", "what to steer away from", words=True),
        _limited("takes", "int", "1", "candidates, ranked best-first against the prompt"),
        Option("scheduler", "string", "preset's", "sampler", choices=SCHEDULER_NAMES),
        Option("preset", "string", "live", "named settings bundle (`live`, `studio`, …)"),
        Option("loop", "0/1", "1", "1: seamless loop; 0: plain cut with fades", LIMITS["loop"]),
        Option("name", "string", "from prompt", "file name stem", words=True),
        _limited("slot", "int", "–", "load the result into this slot when done"),
        Option("play", "0/1", "0", "1: play it at the next quantize point", LIMITS["play"]),
        Option("priority", "string", "normal", "`live` > `normal` > `batch`", choices=PRIORITIES),
    )
}
"""Options of ``/musicldm/generate`` (and ``/musicldm/slot``), in the contract's order."""

PLAYBACK_OPTIONS: dict[str, Option] = {
    option.key: option
    for option in (
        Option("quantize", "string", "bar", "when to start or stop", choices=QUANTIZE_CHOICES),
        Option("loop", "0/1", "1", "1: loop; 0: play once", LIMITS["loop"]),
        _limited("gain", "number", "1", "linear gain"),
    )
}
"""Options of ``/musicldm/trigger`` and ``/musicldm/play``."""

SLOT_OPTIONS: dict[str, Option] = {
    **{k: o for k, o in GENERATE_OPTIONS.items() if k != "slot"},  # the index names the slot
    "ahead": _limited("ahead", "int", "1", "takes kept rendered ahead"),
    "gate": Option(
        "gate", "0/1", "0", "1: a MIDI note plays the slot only while held", LIMITS["gate"]
    ),
}
"""Options of ``/musicldm/slot``: the generate options (but ``slot``) and ``ahead``."""

DAEMON_KEYS = ("bpm", "transport", "version")
"""Keys ``/musicldm/get`` answers besides the options."""

_SETTABLE: dict[str, Option] = {
    **{k: o for k, o in GENERATE_OPTIONS.items() if k != "id"},  # one id for every job: no
    **PLAYBACK_OPTIONS,
}
_GETTABLE: tuple[str, ...] = tuple(
    dict.fromkeys([*GENERATE_OPTIONS, *PLAYBACK_OPTIONS, *DAEMON_KEYS])
)


def check_option(key: str, value: Any, *, max_seconds: float = DEFAULT_MAX_SECONDS) -> Any:
    """Validate one generate, slot or playback option value given outside a message (a config
    default, a CLI flag) by the same rules a request's option meets."""
    option = GENERATE_OPTIONS.get(key) or PLAYBACK_OPTIONS.get(key) or SLOT_OPTIONS.get(key)
    if option is None:
        raise BadRequest(f"unknown option {key!r}", key=key)
    return option.check(value, max_seconds=max_seconds)


def _given(options: Any) -> dict[str, Any]:
    values = ((f.name, getattr(options, f.name)) for f in fields(options))
    return {key: value for key, value in values if value is not None}


# -- requests --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateOptions:
    """The options of one generate or slot request; ``None`` means "not given"."""

    id: JobId | None = None
    bars: int | None = None
    beats: int | None = None
    bpm: float | None = None
    seconds: float | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    negative: str | None = None
    takes: int | None = None
    scheduler: str | None = None
    preset: str | None = None
    loop: bool | None = None
    name: str | None = None
    slot: int | None = None
    play: bool | None = None
    priority: str | None = None

    def given(self) -> dict[str, Any]:
        """The options the request set, by key."""
        return _given(self)


@dataclass(frozen=True)
class PlaybackOptions:
    """How to play a clip; ``None`` means "not given" (defaults: bar, loop, gain 1)."""

    quantize: str | None = None
    loop: bool | None = None
    gain: float | None = None

    def given(self) -> dict[str, Any]:
        """The options the request set, by key."""
        return _given(self)


@dataclass(frozen=True)
class Generate:
    """``/musicldm/generate prompt [key value]…``: queue one clip (or ``takes`` clips)."""

    prompt: str
    options: GenerateOptions = GenerateOptions()


@dataclass(frozen=True)
class Cancel:
    """``/musicldm/cancel [id]``: cancel that job, or every job when ``job_id`` is None."""

    job_id: JobId | None = None


@dataclass(frozen=True)
class Slot:
    """``/musicldm/slot index prompt [key value]…``: define clip slot ``index`` (0–127)."""

    index: int
    prompt: str
    options: GenerateOptions = GenerateOptions()
    ahead: int | None = None
    gate: bool | None = None


@dataclass(frozen=True)
class Trigger:
    """``/musicldm/trigger index [key value]…``: play the slot's next take, render a new one."""

    index: int
    playback: PlaybackOptions = PlaybackOptions()


@dataclass(frozen=True)
class Play:
    """``/musicldm/play id-or-path [key value]…``: play a finished clip.

    ``target`` is a job id when ``is_path`` is false, else the path as given (the server checks
    that it lies inside the output folder).
    """

    target: JobId
    is_path: bool
    playback: PlaybackOptions = PlaybackOptions()


@dataclass(frozen=True)
class Stop:
    """``/musicldm/stop [index] [quantize q]``: stop one slot, or everything when ``index`` is
    None, at the quantize point (None: the default)."""

    index: int | None = None
    quantize: str | None = None


@dataclass(frozen=True)
class Tempo:
    """``/musicldm/tempo bpm``: set the internal clock's tempo."""

    bpm: float


@dataclass(frozen=True)
class Transport:
    """``/musicldm/transport start|stop`` (or ``1``/``0``): start or stop the internal clock."""

    running: bool


@dataclass(frozen=True)
class Set:
    """``/musicldm/set key value``: change the default of a generate or playback option."""

    key: str
    value: Any


@dataclass(frozen=True)
class Get:
    """``/musicldm/get key``: ask for a default or a daemon value (``bpm``, ``version``, …)."""

    key: str


@dataclass(frozen=True)
class Status:
    """``/musicldm/status``: ask for ``/musicldm/status.reply``."""


@dataclass(frozen=True)
class Ping:
    """``/musicldm/ping …``: ask for ``/musicldm/pong`` with the same arguments."""

    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Notify:
    """``/musicldm/notify 1|0 [port]``: (un)register the sender, at ``port`` or its source port."""

    on: bool
    port: int | None = None


Request = (
    Generate
    | Cancel
    | Slot
    | Trigger
    | Play
    | Stop
    | Tempo
    | Transport
    | Set
    | Get
    | Status
    | Ping
    | Notify
)
"""Any request :func:`parse` returns."""


# -- parsing ---------------------------------------------------------------------------------------


def _take_words(args: Sequence[Any], start: int, keys: Mapping[str, Any]) -> int:
    """Index of the first argument at or after ``start`` that is not a text word of a run of
    words (a prompt, or a free-text option's value): a non-text value or an option key."""
    end = start
    while end < len(args) and isinstance(args[end], str) and args[end] not in keys:
        end += 1
    return end


def _prompt(
    address: str, args: Sequence[Any], start: int, keys: Mapping[str, Any]
) -> tuple[str, int]:
    """The prompt at ``args[start:]`` and the index after it."""
    if start >= len(args):
        raise BadRequest(
            f"prompt is missing: {address} needs the music to make as text first", key="prompt"
        )
    first = args[start]
    if not isinstance(first, str):
        raise BadRequest(
            f"prompt must be text, got {first!r}; a number cannot start the prompt "
            "(quote the whole prompt in Max, or write it inside a word in Pd)",
            key="prompt",
        )
    if first in keys:
        raise BadRequest(
            f"prompt is missing: {address} got the option key {first!r} where the prompt "
            "belongs (quote a prompt that starts with an option key's word)",
            key="prompt",
        )
    end = _take_words(args, start, keys)
    return check_prompt(" ".join(args[start:end])), end


def _options(
    address: str,
    args: Sequence[Any],
    start: int,
    table: Mapping[str, Option],
    *,
    max_seconds: float,
    words_from: int | None = None,
) -> dict[str, Any]:
    """Parse ``key value`` pairs from ``args[start:]`` against ``table``.

    ``words_from`` is where the run of words (the prompt) that ends at ``start`` began. Such a
    run takes every text argument up to a known key, so an unknown key written after the prompt
    lands at its end: when a value follows a run of two or more words, the run's last word is
    reported as the unknown option (with a hint, in case it was a prompt word).
    """
    allowed = ", ".join(table)
    values: dict[str, Any] = {}
    run = (words_from, start) if words_from is not None else None
    index = start
    while index < len(args):
        key = args[index]
        if not isinstance(key, str):
            if run is not None and run[1] == index and run[1] - run[0] >= 2:
                word = args[index - 1]
                raise BadRequest(
                    f"unknown option {word!r} for {address}; allowed: {allowed} (if {word!r} "
                    "belongs to the text before it, quote that text: a number cannot follow "
                    "unquoted words)",
                    key=word,
                )
            raise BadRequest(
                f"expected an option key at argument {index + 1} of {address}, got {key!r}; "
                f"options are key value pairs; allowed: {allowed}"
            )
        option = table.get(key)
        if option is None:
            raise BadRequest(f"unknown option {key!r} for {address}; allowed: {allowed}", key=key)
        if key in values:
            raise BadRequest(f"{key} is given twice in {address}", key=key)
        if index + 1 >= len(args):
            raise BadRequest(
                f"{key} has no value in {address} (an option key must be followed by its value; "
                "a prompt word that equals an option key ends the prompt)",
                key=key,
            )
        value = args[index + 1]
        index += 2
        run = None
        first = _word(value) if option.words else None
        if first is not None:
            # The first value is taken whatever it says; further words up to the next key join it.
            end = _take_words(args, index, table)
            value = " ".join([first, *args[index:end]])
            run = (index - 1, end)
            index = end
        values[key] = option.check(value, max_seconds=max_seconds)
    return values


def _readable_id(args: Sequence[Any], start: int, table: Mapping[str, Option]) -> JobId | None:
    """The request's ``id`` option if it can be read, walking the options the way
    :func:`_options` does but never raising: used to name the job in a fail reply."""
    index = _take_words(args, start, table)  # skip the prompt
    while index + 1 < len(args):
        key = args[index]
        if not isinstance(key, str):
            return None
        if key == "id":
            try:
                return normalize_id(args[index + 1])
            except BadRequest:
                return None
        option = table.get(key)
        if option is not None and option.words and _word(args[index + 1]) is not None:
            index = _take_words(args, index + 2, table)
        else:
            index += 2
    return None


def _with_job_id(
    parse_body: Callable[[], Request], args: Sequence[Any], start: int, table: Mapping[str, Option]
) -> Request:
    try:
        return parse_body()
    except BadRequest as exc:
        job_id = _readable_id(args, start, table)
        if job_id is not None:
            exc.job_id = job_id  # type: ignore[attr-defined]
        raise


def _generate_options(values: Mapping[str, Any]) -> GenerateOptions:
    return GenerateOptions(**{k: v for k, v in values.items() if k in GENERATE_OPTIONS})


def _parse_generate(address: str, args: list[Any], max_seconds: float) -> Request:
    def body() -> Request:
        prompt, end = _prompt(address, args, 0, GENERATE_OPTIONS)
        values = _options(
            address, args, end, GENERATE_OPTIONS, max_seconds=max_seconds, words_from=0
        )
        return Generate(prompt, _generate_options(values))

    return _with_job_id(body, args, 0, GENERATE_OPTIONS)


def _index(address: str, args: Sequence[Any]) -> int:
    if not args:
        raise BadRequest(f"index is missing: {address} needs a slot index first", key="index")
    return check_int("index", args[0])


def _parse_slot(address: str, args: list[Any], max_seconds: float) -> Request:
    def body() -> Request:
        index = _index(address, args)
        prompt, end = _prompt(address, args, 1, SLOT_OPTIONS)
        values = _options(address, args, end, SLOT_OPTIONS, max_seconds=max_seconds, words_from=1)
        ahead = values.pop("ahead", None)
        gate = values.pop("gate", None)
        return Slot(index, prompt, _generate_options(values), ahead, gate)

    return _with_job_id(body, args, 1, SLOT_OPTIONS)


def _playback(address: str, args: Sequence[Any], start: int) -> PlaybackOptions:
    values = _options(address, args, start, PLAYBACK_OPTIONS, max_seconds=DEFAULT_MAX_SECONDS)
    return PlaybackOptions(**values)


def _no_more(address: str, args: Sequence[Any], count: int, usage: str) -> None:
    if len(args) > count:
        raise BadRequest(
            f"{address} takes {usage}; got {len(args)} arguments: "
            f"{', '.join(repr(a) for a in args)}"
        )


def _parse_cancel(address: str, args: list[Any], max_seconds: float) -> Request:
    _no_more(address, args, 1, "at most one argument (a job id)")
    return Cancel(normalize_id(args[0]) if args else None)


def _parse_trigger(address: str, args: list[Any], max_seconds: float) -> Request:
    return Trigger(_index(address, args), _playback(address, args, 1))


def _parse_play(address: str, args: list[Any], max_seconds: float) -> Request:
    if not args:
        raise BadRequest(f"{address} needs a clip: a job id or a file path", key="target")
    target = args[0]
    if isinstance(target, str) and ("/" in target or target.lower().endswith(".wav")):
        return Play(target, True, _playback(address, args, 1))
    return Play(normalize_id(target), False, _playback(address, args, 1))


def _parse_stop(address: str, args: list[Any], max_seconds: float) -> Request:
    rest = list(args)
    index = None
    if rest and not isinstance(rest[0], str):
        index = check_int("index", rest.pop(0))
    quantize = None
    if len(rest) == 1 and isinstance(rest[0], str) and rest[0].lower() in QUANTIZE_CHOICES:
        quantize = rest[0].lower()  # the bare shorthand: /musicldm/stop 3 beat
    elif rest:
        table = {"quantize": PLAYBACK_OPTIONS["quantize"]}
        quantize = _options(address, rest, 0, table, max_seconds=max_seconds).get("quantize")
    return Stop(index, quantize)


def _parse_tempo(address: str, args: list[Any], max_seconds: float) -> Request:
    if not args:
        raise BadRequest(f"bpm is missing: {address} needs {LIMITS['bpm'].describe()}", key="bpm")
    _no_more(address, args, 1, "one argument (bpm)")
    return Tempo(check_number("bpm", args[0]))


def _parse_transport(address: str, args: list[Any], max_seconds: float) -> Request:
    if len(args) != 1:
        raise BadRequest(
            f"{address} takes one argument: start or stop (or 1 or 0)", key="transport"
        )
    value = args[0]
    if isinstance(value, str):
        return Transport(check_choice("transport", value, TRANSPORT_CHOICES) == "start")
    if isinstance(value, bool) or (_is_number(value) and value in (0, 1)):
        return Transport(bool(value))
    raise BadRequest(f"transport must be start or stop (or 1 or 0), got {value!r}", key="transport")


def _parse_set(address: str, args: list[Any], max_seconds: float) -> Request:
    allowed = ", ".join(_SETTABLE)
    if not args or not isinstance(args[0], str):
        raise BadRequest(f"{address} takes key value; keys: {allowed}")
    key = args[0]
    values = _options(address, args, 0, _SETTABLE, max_seconds=max_seconds)
    if len(values) != 1:
        raise BadRequest(f"{address} sets one option at a time; got {', '.join(values)}")
    return Set(key, values[key])


def _parse_get(address: str, args: list[Any], max_seconds: float) -> Request:
    allowed = ", ".join(_GETTABLE)
    if len(args) != 1 or not isinstance(args[0], str):
        raise BadRequest(f"{address} takes one key; keys: {allowed}")
    if args[0] not in _GETTABLE:
        raise BadRequest(f"unknown key {args[0]!r} for {address}; allowed: {allowed}", key=args[0])
    return Get(args[0])


def _parse_status(address: str, args: list[Any], max_seconds: float) -> Request:
    _no_more(address, args, 0, "no arguments")
    return Status()


def _parse_ping(address: str, args: list[Any], max_seconds: float) -> Request:
    return Ping(tuple(args))


def _parse_notify(address: str, args: list[Any], max_seconds: float) -> Request:
    if not args:
        raise BadRequest(f"{address} takes 1 or 0, then optionally a port", key="notify")
    _no_more(address, args, 2, "1 or 0, then optionally a port")
    on = _flag("notify", args[0])
    port = check_int("port", args[1], PORT_LIMIT) if len(args) > 1 else None
    return Notify(on, port)


# -- the tables ------------------------------------------------------------------------------------

Parser = Callable[[str, list[Any], float], Request]


@dataclass(frozen=True)
class Endpoint:
    """One request address: its parser, its arguments as the docs write them, what it does."""

    parser: Parser
    arguments: str
    description: str


ADDRESSES: dict[str, Endpoint] = {
    PREFIX + "generate": Endpoint(
        _parse_generate, "prompt then options", "queue one clip (or `takes` clips)"
    ),
    PREFIX + "cancel": Endpoint(
        _parse_cancel, "[id]", "cancel that job (queued or running); no id: every job"
    ),
    PREFIX + "slot": Endpoint(
        _parse_slot, "index prompt then options", "define clip slot `index`; keeps `ahead` takes"
    ),
    PREFIX + "trigger": Endpoint(
        _parse_trigger, "index then playback options", "play the slot's next take, render another"
    ),
    PREFIX + "play": Endpoint(
        _parse_play, "id-or-path then playback options", "play a finished clip"
    ),
    PREFIX + "stop": Endpoint(
        _parse_stop, "[index] then quantize", "stop one slot or everything at the quantize point"
    ),
    PREFIX + "tempo": Endpoint(_parse_tempo, "bpm", "set the internal clock's tempo"),
    PREFIX + "transport": Endpoint(
        _parse_transport, "start or stop", "start/stop the internal clock"
    ),
    PREFIX + "set": Endpoint(_parse_set, "key value", "change a default used by later requests"),
    PREFIX + "get": Endpoint(_parse_get, "key", "reply /musicldm/value key value"),
    PREFIX + "status": Endpoint(_parse_status, "–", "reply /musicldm/status.reply"),
    PREFIX + "ping": Endpoint(_parse_ping, "anything", "reply /musicldm/pong, same arguments"),
    PREFIX + "notify": Endpoint(
        _parse_notify, "1 or 0, [port]", "(un)register the sender for every event"
    ),
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
        ("id", "path", "seconds", "bpm", "bars", "seed"), "the file is complete on disk"
    ),
    PREFIX + "fail": Reply(("id", "code", "message"), "the job or request failed"),
    PREFIX + "playing": Reply(("index", "path"), "a clip became audible"),
    PREFIX + "stopped": Reply(("index",), "a slot fell silent"),
    PREFIX + "late": Reply(("id",), "a clip was ready too late and launched at the next point"),
    PREFIX + "value": Reply(("key", "value"), "answer to /musicldm/get and /musicldm/set"),
    PREFIX + "status.reply": Reply(("key", "value"), "answer to /musicldm/status", repeats=True),
    PREFIX + "pong": Reply(("arg",), "answer to /musicldm/ping", repeats=True),
}
"""Every address the daemon sends, with its arguments."""


def parse(
    address: str, args: Sequence[Any], *, max_seconds: float = DEFAULT_MAX_SECONDS
) -> Request:
    """Turn one OSC message into a validated request.

    ``args`` are the message's arguments as python-osc decodes them. ``max_seconds`` is the
    configured longest clip (it bounds the ``seconds`` option). Raises :class:`UnknownAddress` for
    an address not in :data:`ADDRESSES`, and :class:`BadRequest` naming the key and what is
    allowed for anything else wrong; for generate and slot requests the exception carries the
    request's ``id`` as ``job_id`` when it was readable.
    """
    endpoint = ADDRESSES.get(address)
    if endpoint is None:
        raise UnknownAddress(f"unknown address {address!r}; requests are: {', '.join(ADDRESSES)}")
    return endpoint.parser(address, list(args), max_seconds)


# -- replies ---------------------------------------------------------------------------------------


def fail_args(job_id_or_address: JobId, code: str, message: str) -> list[Any]:
    """Arguments of ``/musicldm/fail``: the job id, or the request's address when there is no job;
    ``code`` is one of :data:`FAIL_CODES`."""
    return [job_id_or_address, code, message]


def fail_args_for(exc: MusicLDMError, address: str) -> list[Any]:
    """Arguments of ``/musicldm/fail`` for an error raised while handling a request at
    ``address``: names the job when the error carries a ``job_id``, else the address."""
    job_id = getattr(exc, "job_id", None)
    return fail_args(job_id if job_id is not None else address, exc.code, exc.message)


def queued_args(job_id: JobId, position: int) -> list[Any]:
    """Arguments of ``/musicldm/queued`` (position 0 = rendered next)."""
    return [job_id, int(position)]


def progress_args(job_id: JobId, step: int, total: int) -> list[Any]:
    """Arguments of ``/musicldm/progress``: sampler step done out of ``total``."""
    return [job_id, int(step), int(total)]


def done_args(
    job_id: JobId, path: object, *, seconds: float, bpm: float, bars: int, seed: int
) -> list[Any]:
    """Arguments of ``/musicldm/done``: file path, length in seconds, tempo in BPM, bars (0 when
    the clip was asked for in seconds) and the seed used."""
    return [job_id, str(path), float(seconds), float(bpm), int(bars), int(seed)]
