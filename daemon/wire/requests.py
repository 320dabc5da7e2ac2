"""Incoming OSC messages become typed, validated requests here: the daemon's edge.

:func:`parse` turns an OSC address and its arguments (as python-osc decodes them: ``int``,
``float``, ``str``, ``bool``) into one of the frozen request dataclasses below, or raises
:class:`~musicldm_core.errors.BadRequest` (a message naming the key and what is allowed) or
:class:`~daemon.errors.UnknownAddress`. Everything behind this module trusts the types it gets and
never re-checks a value. The tables it parses against (addresses, options, ranges) are data in
:mod:`daemon.wire.contract`; :data:`PARSERS` maps each of the contract's addresses to its parser.

Called from the OSC thread; pure functions, no I/O, no torch, safe from any thread.

Shapes worth knowing:

- Numbers may arrive as int or float (Pd sends every number as a float); an integer option given
  a non-integral float is refused, an integral one (``2.0``) is taken as ``2``. The transport
  marks doubles and int64s (:class:`~daemon.wire.contract.Double`,
  :class:`~daemon.wire.contract.Int64`, float and int subclasses); the checks return plain
  values, and only :class:`Ping` keeps them, so that the pong echoes each type.
- A prompt may arrive as several words: the leading text arguments up to the first option word
  are joined with single spaces. The option words are the option keys of *every* request address
  (:data:`~daemon.wire.contract.OPTION_WORDS`), not only this one's, so ``quantize`` ends a
  generate's prompt and is then refused as an unknown option there, rather than silently becoming
  prompt text. The free-text options ``negative`` and ``name`` take their words the same way, so
  Pd (which cannot send a symbol with spaces) can set them too.
- Options default to ``None`` ("not given"); the app merges ``/musicldm/set`` defaults, the
  config and the preset afterwards.
- A :class:`BadRequest` raised for ``/musicldm/generate`` or ``/musicldm/slot`` carries the
  request's ``id`` option, when one was readable, as the attribute ``job_id``, so the fail reply
  can name the job the client asked for: ``getattr(exc, "job_id", None)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from daemon.errors import UnknownAddress
from daemon.wire.contract import (
    ADDRESSES,
    GENERATE_OPTIONS,
    GETTABLE,
    MORPH_BARS,
    OPTION_WORDS,
    OPTIONS_OF,
    PLAYBACK_OPTIONS,
    PORT_LIMIT,
    PREFIX,
    QUANTIZE_CHOICES,
    SETTABLE,
    SLOT_OPTIONS,
    TRANSPORT_CHOICES,
    JobId,
    Option,
    _flag,
    _is_number,
    _word,
    normalize_id,
)
from musicldm_core.errors import BadRequest
from musicldm_core.spec import (
    DEFAULT_MAX_SECONDS,
    LIMITS,
    check_choice,
    check_int,
    check_number,
    check_prompt,
)

OPTION_FIELDS = {"from": "from_"}
"""Option keys whose :class:`GenerateOptions` field has another name: ``from`` is a Python
keyword. :meth:`GenerateOptions.given` and :meth:`GenerateOptions.get` speak the keys."""

_FIELD_KEYS = {name: key for key, name in OPTION_FIELDS.items()}


def _given(options: Any) -> dict[str, Any]:
    values = ((_FIELD_KEYS.get(f.name, f.name), getattr(options, f.name)) for f in fields(options))
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
    grid: str | None = None
    key: str | None = None
    retake: int | None = None
    name: str | None = None
    slot: int | None = None
    play: bool | None = None
    priority: str | None = None
    # audio in (contract.AUDIO_IN); ``from_`` is the option ``from`` (see OPTION_FIELDS)
    from_: str | None = None
    strength: float | None = None
    repaint: tuple[int, int] | None = None
    extend: int | None = None
    like: str | None = None
    like_weight: float | None = None
    blend: tuple[tuple[str, float], ...] | None = None
    morph_to: str | None = None
    morph: float | None = None
    morph_seed: int | None = None

    def given(self) -> dict[str, Any]:
        """The options the request set, by key."""
        return _given(self)

    def get(self, key: str) -> Any:
        """The value of option ``key`` (None: not given)."""
        return getattr(self, OPTION_FIELDS.get(key, key), None)


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
    evolve: float | None = None


@dataclass(frozen=True)
class Morph:
    """``/musicldm/morph from to bars [quantize q]``: morph slot ``source`` into slot
    ``target`` over ``bars`` bars (one rendered step a bar), launched at the quantize point
    (None: the default)."""

    source: int
    target: int
    bars: int
    quantize: str | None = None


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
    """``/musicldm/set key value``: change the default of a generate or playback option;
    ``value`` None (no value, or ``''``) forgets the default."""

    key: str
    value: Any


@dataclass(frozen=True)
class Get:
    """``/musicldm/get key``: ask for a default or a daemon value (``bpm``, ``version``, …)."""

    key: str


@dataclass(frozen=True)
class UnreadableArgument:
    """Stands for the arguments of a message whose ``position``-th argument (1-based) has an
    OSC type tag the transport cannot read (``c``, ``S``, ``I``, …): past it the argument
    bytes cannot be told apart, so the message carries only this, and :func:`parse` refuses
    it as a ``bad_request`` naming the tag."""

    position: int
    tag: str


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
    | Morph
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


_OPTION_WORDS = frozenset(OPTION_WORDS)

_QUOTE_HINT = (
    "to have the word in the text, send the text as one argument (in Max, put it in double "
    'quotes: "let it play"; in Pd, escape its spaces: let\\ it\\ play) or write the word '
    "otherwise (option keys are lower case: Play is a prompt word)"
)


def _take_words(args: Sequence[Any], start: int) -> int:
    """Index of the first argument at or after ``start`` that is not a text word of a run of
    words (a prompt, or a free-text option's value): a non-text value or an option word of any
    request (:data:`~daemon.wire.contract.OPTION_WORDS`)."""
    end = start
    while end < len(args) and isinstance(args[end], str) and args[end] not in _OPTION_WORDS:
        end += 1
    return end


def _unknown_option(address: str, key: str, allowed: str, *, ended_words: bool) -> BadRequest:
    """The error for ``key`` where an option of ``address`` belongs. ``ended_words``: the key
    came right after a run of words (a prompt), which it ended because it is an option word."""
    message = f"unknown option {key!r} for {address}; allowed: {allowed}"
    if key in _OPTION_WORDS:
        where = ", ".join(a for a, table in OPTIONS_OF.items() if key in table)
        message += f" ({key!r} is an option of {where}"
        if ended_words:
            message += f"; as an option word it ends the text before it: {_QUOTE_HINT}"
        message += ")"
    return BadRequest(message, key=key)


def _prompt(address: str, args: Sequence[Any], start: int) -> tuple[str, int]:
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
    if first in _OPTION_WORDS:
        raise BadRequest(
            f"prompt is missing: {address} got the option word {first!r} where the prompt "
            f"belongs ({_QUOTE_HINT})",
            key="prompt",
        )
    end = _take_words(args, start)
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
            ended_words = run is not None and run[1] == index
            raise _unknown_option(address, key, allowed, ended_words=ended_words)
        if key in values and not option.repeats:
            raise BadRequest(f"{key} is given twice in {address}", key=key)
        if index + 1 >= len(args):
            raise BadRequest(
                f"{key} has no value in {address} (an option key must be followed by its value; "
                f"a prompt word that is an option word ends the prompt: {_QUOTE_HINT})",
                key=key,
            )
        value = args[index + 1]
        index += 2
        run = None
        first = _word(value) if option.words else None
        if first is not None:
            # The first value is taken whatever it says; further words up to the next key join it.
            end = _take_words(args, index)
            value = " ".join([first, *args[index:end]])
            run = (index - 1, end)
            index = end
        checked = option.check(value, max_seconds=max_seconds)
        values[key] = (*values.get(key, ()), checked) if option.repeats else checked
    return values


def _readable_id(args: Sequence[Any], start: int, table: Mapping[str, Option]) -> JobId | None:
    """The request's ``id`` option if it can be read, walking the options the way
    :func:`_options` does but never raising: used to name the job in a fail reply."""
    index = _take_words(args, start)  # skip the prompt
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
            index = _take_words(args, index + 2)
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
    return GenerateOptions(
        **{OPTION_FIELDS.get(k, k): v for k, v in values.items() if k in GENERATE_OPTIONS}
    )


def _parse_generate(address: str, args: list[Any], max_seconds: float) -> Request:
    def body() -> Request:
        prompt, end = _prompt(address, args, 0)
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
        prompt, end = _prompt(address, args, 1)
        values = _options(address, args, end, SLOT_OPTIONS, max_seconds=max_seconds, words_from=1)
        ahead = values.pop("ahead", None)
        gate = values.pop("gate", None)
        evolve = values.pop("evolve", None)
        return Slot(index, prompt, _generate_options(values), ahead, gate, evolve)

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


def _parse_morph(address: str, args: list[Any], max_seconds: float) -> Request:
    usage = "from to bars, then optionally quantize (none, beat or bar)"
    if len(args) < 3 or any(isinstance(a, str) for a in args[:3]):
        raise BadRequest(f"{address} takes {usage}; got {', '.join(map(repr, args)) or 'nothing'}")
    source = check_int("from", args[0], LIMITS["index"])
    target = check_int("to", args[1], LIMITS["index"])
    if source == target:
        raise BadRequest(f"from and to must be two different slots, got {source} twice", key="to")
    bars = check_int("bars", args[2], MORPH_BARS)
    rest = args[3:]
    quantize = None
    if len(rest) == 1 and isinstance(rest[0], str) and rest[0].lower() in QUANTIZE_CHOICES:
        quantize = rest[0].lower()  # the bare shorthand, as for stop: /musicldm/morph 0 1 4 beat
    elif rest:
        table = OPTIONS_OF[address]
        quantize = _options(address, rest, 0, table, max_seconds=max_seconds).get("quantize")
    return Morph(source, target, bars, quantize)


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
    allowed = ", ".join(SETTABLE)
    if not args or not isinstance(args[0], str):
        raise BadRequest(f"{address} takes key value; keys: {allowed}")
    key = args[0]
    if key in SETTABLE and (len(args) == 1 or (len(args) == 2 and args[1] == "")):
        return Set(key, None)  # no value, or '': forget the default
    values = _options(address, args, 0, SETTABLE, max_seconds=max_seconds)
    if len(values) != 1:
        raise BadRequest(f"{address} sets one option at a time; got {', '.join(values)}")
    return Set(key, values[key])


def _parse_get(address: str, args: list[Any], max_seconds: float) -> Request:
    allowed = ", ".join(GETTABLE)
    if len(args) != 1 or not isinstance(args[0], str):
        raise BadRequest(f"{address} takes one key; keys: {allowed}")
    if args[0] not in GETTABLE:
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


Parser = Callable[[str, list[Any], float], Request]

PARSERS: dict[str, Parser] = {
    PREFIX + "generate": _parse_generate,
    PREFIX + "cancel": _parse_cancel,
    PREFIX + "slot": _parse_slot,
    PREFIX + "trigger": _parse_trigger,
    PREFIX + "play": _parse_play,
    PREFIX + "stop": _parse_stop,
    PREFIX + "morph": _parse_morph,
    PREFIX + "tempo": _parse_tempo,
    PREFIX + "transport": _parse_transport,
    PREFIX + "set": _parse_set,
    PREFIX + "get": _parse_get,
    PREFIX + "status": _parse_status,
    PREFIX + "ping": _parse_ping,
    PREFIX + "notify": _parse_notify,
}
"""The parser of every address in :data:`~daemon.wire.contract.ADDRESSES` (the same keys)."""


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
    parser = PARSERS.get(address)
    if parser is None:
        raise UnknownAddress(f"unknown address {address!r}; requests are: {', '.join(ADDRESSES)}")
    for arg in args:
        if isinstance(arg, UnreadableArgument):
            raise BadRequest(
                f"{address}: argument {arg.position} has the OSC type tag {arg.tag!r}, which the "
                "daemon does not read; send numbers as i, f, d or h, text as s, switches as "
                "i or T/F"
            )
    return parser(address, list(args), max_seconds)
