"""What travels between the client and the daemon: the error tree, typed replies, encode/decode.

The typed replies (:class:`Queued`, :class:`Started`, :class:`Progress`, :class:`Done`,
:class:`Failed`) are dataclasses whose fields are the arguments that the contract's
:data:`daemon.wire.contract.REPLIES` names, in its order (``id`` is ``job_id``);
:func:`parse_reply` reads them by those names, and anything else is a generic :class:`Event`.
Addresses come from the contract too (:func:`request_address`, :func:`reply_address` refuse a
name it does not have). Part of the client's core (see :mod:`clients.core`); pure functions and
data, no sockets, no threads.

Errors::

    ClientError             anything the client raises on purpose
    ├── DaemonNotAnswering  nothing came back in time: is the daemon running? Also when it
    │                       stops answering while a job is waited for (a TimeoutError)
    ├── JobTimeout          the daemon took the job but it did not end in time (a TimeoutError)
    └── RequestFailed       the daemon answered /musicldm/fail (.address .code .message)
        └── JobFailed       ... about a job: refused, cancelled or failed to render (.job_id)
"""

from __future__ import annotations

import keyword
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.osc_packet import OscPacket, ParseError

from daemon.wire.contract import (
    ADDRESSES,
    DEFAULT_HOST,
    DEFAULT_PORT,
    FAIL_CODES,
    OPTIONS_OF,
    PREFIX,
    REPLIES,
    JobId,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "FAIL_CODES",
    "PREFIX",
    "ClientError",
    "DaemonNotAnswering",
    "Done",
    "Event",
    "Failed",
    "JobFailed",
    "JobId",
    "JobTimeout",
    "Progress",
    "Queued",
    "Reply",
    "RequestFailed",
    "Started",
    "decode_packet",
    "encode_message",
    "parse_reply",
    "parse_status",
]

log = logging.getLogger(__name__)


def request_address(name: str) -> str:
    """The contract's address of request ``name`` (``"tempo"`` → ``"/musicldm/tempo"``)."""
    address = PREFIX + name
    if address not in ADDRESSES:
        raise KeyError(f"{address} is not a request address of the contract")
    return address


def reply_address(name: str) -> str:
    """The contract's address of reply ``name`` (``"pong"`` → ``"/musicldm/pong"``)."""
    address = PREFIX + name
    if address not in REPLIES:
        raise KeyError(f"{address} is not a reply address of the contract")
    return address


# -- errors ----------------------------------------------------------------------------------------


class ClientError(Exception):
    """Base of every error this client raises on purpose."""


class DaemonNotAnswering(ClientError, TimeoutError):
    """Nothing came back from ``host:port`` within ``timeout`` seconds.

    ``job_id`` is set when the daemon had taken that job and then stopped answering (it was
    stopped or died while the job was queued or rendering); else None.
    """

    def __init__(self, host: str, port: int, timeout: float, job_id: JobId | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.job_id = job_id
        start = "musicldm-daemon"
        if host not in (DEFAULT_HOST, "localhost"):
            start += f" --host {host}"
        if port != DEFAULT_PORT:
            start += f" --port {port}"
        if job_id is None:
            what = f"no answer from the musicldm daemon at {host}:{port} within {timeout:g} s"
            question = "is it running?"
        else:
            what = (
                f"the musicldm daemon at {host}:{port} stopped answering while job {job_id!r} "
                f"was waiting for it (no answer within {timeout:g} s)"
            )
            question = "did it stop? Once restarted, it resumes the jobs it had accepted."
        super().__init__(f"{what}; {question} Start it with `{start}`")


class JobTimeout(ClientError, TimeoutError):
    """The daemon accepted job ``job_id``, but it did not finish within ``timeout`` seconds."""

    def __init__(self, job_id: JobId, timeout: float) -> None:
        self.job_id = job_id
        self.timeout = timeout
        super().__init__(f"job {job_id!r} did not finish within {timeout:g} s")


class RequestFailed(ClientError):
    """The daemon refused or failed the request sent to ``address``.

    ``code`` is one of :data:`FAIL_CODES`; ``message`` is for people.
    """

    def __init__(self, address: str, code: str, message: str) -> None:
        self.address = address
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class JobFailed(RequestFailed):
    """Job ``job_id`` ended in ``/musicldm/fail`` (refused, cancelled, or failed to render)."""

    def __init__(self, job_id: JobId, code: str, message: str) -> None:
        self.job_id = job_id
        super().__init__(request_address("generate"), code, message)


# -- replies ---------------------------------------------------------------------------------------


class _Typed:
    """A reply of the contract as a dataclass whose fields are its arguments, in order (``id``
    is ``job_id``): :data:`daemon.wire.contract.REPLIES` names them, :func:`parse_reply` reads
    them by those names."""

    address: ClassVar[str]

    @property
    def args(self) -> tuple[Any, ...]:
        """The OSC arguments, as on the wire."""
        return tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Queued(_Typed):
    """``/musicldm/queued``: the daemon accepted the job; ``position`` 0 renders next."""

    address: ClassVar[str] = reply_address("queued")
    job_id: JobId
    position: int


@dataclass(frozen=True)
class Started(_Typed):
    """``/musicldm/started``: the job's render began."""

    address: ClassVar[str] = reply_address("started")
    job_id: JobId


@dataclass(frozen=True)
class Progress(_Typed):
    """``/musicldm/progress``: sampler ``step`` of ``total`` is done."""

    address: ClassVar[str] = reply_address("progress")
    job_id: JobId
    step: int
    total: int


@dataclass(frozen=True)
class Done(_Typed):
    """``/musicldm/done``: one take is complete on disk at ``path``.

    ``seconds`` is the clip's length, ``bpm`` its tempo, ``bars`` its length in bars (0 for a
    clip asked for in seconds) and ``seed`` the seed used. Then the grid fit (docs/osc.md):
    ``detected_bpm`` the music's tempo as found (0: none), ``confidence`` its confidence (0–1),
    ``ratio`` the stretch made (1: none), ``grid_error_ms`` the remaining error on the grid (-1:
    not put on the grid) and ``key`` the detected key ("" when none). A daemon older than
    these arguments sends only the first six; the rest then keep these defaults.
    """

    address: ClassVar[str] = reply_address("done")
    job_id: JobId
    path: str
    seconds: float
    bpm: float
    bars: int
    seed: int
    detected_bpm: float = 0.0
    confidence: float = 0.0
    ratio: float = 1.0
    grid_error_ms: float = -1.0
    key: str = ""


@dataclass(frozen=True)
class Failed(_Typed):
    """``/musicldm/fail``: a job or request failed.

    ``job_id`` is the job's id, or the request's address (``"/musicldm/set"``) when the failure
    is not about a job; ``code`` is one of :data:`FAIL_CODES`.
    """

    address: ClassVar[str] = reply_address("fail")
    job_id: JobId
    code: str
    message: str = ""

    @property
    def is_request_failure(self) -> bool:
        """True when the failure names a request's address rather than a job."""
        return isinstance(self.job_id, str) and self.job_id.startswith("/")


@dataclass(frozen=True)
class Event:
    """Any other reply or event of :data:`daemon.wire.contract.REPLIES` (``playing``,
    ``stopped``, ``late``, ``value``, ``status.reply``, ``pong``), or a typed one whose arguments
    did not fit."""

    address: str
    args: tuple[Any, ...]


Reply = Queued | Started | Progress | Done | Failed | Event
"""One message from the daemon, typed."""

JobReply = Queued | Started | Progress | Done | Failed
JOB_REPLIES = (Queued, Started, Progress, Done, Failed)


def _job_id(value: Any) -> JobId:
    if isinstance(value, str):
        return value
    return _int(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {value!r}")


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


ARGUMENT_TYPES: dict[str, Callable[[Any], Any]] = {
    "id": _job_id,
    "position": _int,
    "step": _int,
    "total": _int,
    "path": _text,
    "seconds": _float,
    "bpm": _float,
    "bars": _int,
    "seed": _int,
    "detected_bpm": _float,
    "confidence": _float,
    "ratio": _float,
    "grid_error_ms": _float,
    "key": _text,
    "code": _text,
    "message": _text,
}
"""How to read each argument name of :data:`daemon.wire.contract.REPLIES` that a typed reply
carries."""


@dataclass(frozen=True)
class _Shape:
    kind: type[JobReply]
    readers: tuple[Callable[[Any], Any], ...]
    required: int


def _shape(kind: type[JobReply]) -> _Shape:
    names = REPLIES[kind.address].arguments
    required = sum(f.default is MISSING for f in fields(kind))
    return _Shape(kind, tuple(ARGUMENT_TYPES[name] for name in names), required)


_SHAPES: dict[str, _Shape] = {kind.address: _shape(kind) for kind in JOB_REPLIES}


def parse_reply(address: str, args: Sequence[Any]) -> Reply:
    """Type one OSC message from the daemon; anything unexpected becomes an :class:`Event`.

    The typed replies' arguments are read in the order and by the names the contract's
    :data:`~daemon.wire.contract.REPLIES` gives them; arguments beyond those are ignored.
    """
    values = tuple(args)
    shape = _SHAPES.get(address)
    if shape is not None and len(values) >= shape.required:
        try:
            return shape.kind(*(read(v) for read, v in zip(shape.readers, values, strict=False)))
        except (TypeError, ValueError) as exc:
            log.debug("reply %s %r does not fit the contract: %s", address, values, exc)
    return Event(address, values)


def decode_packet(data: bytes) -> list[Reply]:
    """Every message of one datagram (a message or a bundle), typed; [] if it is not OSC.

    Bundle time tags are ignored: the daemon's replies are meant to be read at once.
    """
    try:
        packet = OscPacket(data)
    except (ParseError, ValueError, IndexError, TypeError, OverflowError) as exc:
        log.debug("ignored a datagram that is not OSC (%d bytes): %s", len(data), exc)
        return []
    return [parse_reply(timed.message.address, timed.message.params) for timed in packet.messages]


def parse_status(args: Sequence[Any]) -> dict[str, Any]:
    """The ``key value`` pairs of ``/musicldm/status.reply`` as a dict."""
    return {str(args[i]): args[i + 1] for i in range(0, len(args) - 1, 2)}


def encode_message(address: str, args: Iterable[Any]) -> bytes:
    """One OSC message: ints as ``i`` (``h`` beyond 32 bits), floats as ``f``, text as ``s``,
    bytes as a blob; ``True``/``False`` as ``1``/``0`` and paths as text."""
    builder = OscMessageBuilder(address=address)
    for arg in args:
        if isinstance(arg, bool):
            builder.add_arg(int(arg), OscMessageBuilder.ARG_TYPE_INT)
        elif isinstance(arg, int):
            small = -(2**31) <= arg < 2**31
            kind = OscMessageBuilder.ARG_TYPE_INT if small else OscMessageBuilder.ARG_TYPE_INT64
            builder.add_arg(arg, kind)
        elif isinstance(arg, float):
            builder.add_arg(arg, OscMessageBuilder.ARG_TYPE_FLOAT)
        elif isinstance(arg, str):
            builder.add_arg(arg, OscMessageBuilder.ARG_TYPE_STRING)
        elif isinstance(arg, os.PathLike):
            builder.add_arg(os.fspath(arg), OscMessageBuilder.ARG_TYPE_STRING)
        elif isinstance(arg, (bytes, bytearray)):
            builder.add_arg(bytes(arg), OscMessageBuilder.ARG_TYPE_BLOB)
        else:
            raise TypeError(f"cannot send {arg!r} ({type(arg).__name__}) as an OSC argument")
    try:
        return builder.build().dgram
    except BuildError as exc:
        raise ClientError(f"cannot encode {address} {list(args)!r}: {exc}") from exc


REPEATING: frozenset[str] = frozenset(
    key for table in OPTIONS_OF.values() for key, option in table.items() if option.repeats
)
"""The options the contract lets a request give more than once (``blend``)."""


def wire_key(key: str) -> str:
    """An option's wire word from a Python keyword argument: a trailing ``_`` escapes a
    Python keyword (``from_`` → ``from``, since ``from=`` cannot be written in a call)."""
    if key.endswith("_") and keyword.iskeyword(key[:-1]):
        return key[:-1]
    return key


def _pair_text(value: Any) -> Any:
    """A ``(prompt, weight)`` pair as the wire writes it (``"warm pads:0.3"``); else as is."""
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], (int, float))
        and not isinstance(value[1], bool)
    ):
        return f"{value[0]}:{value[1]:g}"
    return value


def option_args(options: Mapping[str, Any]) -> list[Any]:
    """``key value`` pairs for the wire, in the given order; ``None`` values are left out.

    A key ending in ``_`` that escapes a Python keyword loses it (``from_`` → ``from``). A
    list or tuple given to an option that repeats (:data:`REPEATING`: ``blend``) goes out as
    one ``key value`` pair per item, in order; an item (or the value itself) that is a
    ``(prompt, weight)`` tuple is written ``"prompt:weight"``. A list or tuple for any other
    option raises :class:`ClientError`: the daemon takes one value per key there.
    """
    pairs: list[Any] = []
    for given, raw in options.items():
        if raw is None:
            continue
        key = wire_key(given)
        value = _pair_text(raw) if key in REPEATING else raw
        if not isinstance(value, (list, tuple)):
            pairs += [key, value]
        elif key in REPEATING:
            for item in value:
                pairs += [key, _pair_text(item)]
        else:
            allowed = ", ".join(sorted(REPEATING)) or "none"
            raise ClientError(
                f"{key} takes one value, got {value!r}; only these options may be given "
                f"several values (a list): {allowed}"
            )
    return pairs
