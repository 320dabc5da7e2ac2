"""Python client of the musicldm daemon: OSC over UDP, the standard library and python-osc only.

Used by ``musicldm-send`` (:mod:`clients.cli`), by scripts that drive the daemon, and by the
integration tests. It must import in milliseconds, so it never imports torch, numpy, the
``daemon`` package or ``musicldm_core``, and ``asyncio`` only when :class:`AsyncClient` opens.

The daemon answers every request at the address the request came from, so a client sends from
the one UDP socket it listens on. :class:`Client` reads that socket in a background thread;
:class:`AsyncClient` reads it through asyncio's datagram endpoint. Both turn each datagram
(a message or a bundle) into typed replies (:class:`Queued`, :class:`Started`,
:class:`Progress`, :class:`Done`, :class:`Failed`, or a generic :class:`Event`) and hand them to
one :class:`_Router`, which passes each reply to whoever waits for it: a job by its id, a
request by its reply address, and every :meth:`Client.events` stream.

Errors::

    ClientError             anything this module raises on purpose
    ├── DaemonNotAnswering  nothing came back in time: is the daemon running? (a TimeoutError)
    ├── JobTimeout          the daemon took the job but it did not end in time (a TimeoutError)
    └── RequestFailed       the daemon answered /musicldm/fail (.address .code .message)
        └── JobFailed       ... about a job: refused, cancelled or failed to render (.job_id)

Commands that have no answer of their own (``tempo``, ``trigger``, ``stop``, ...) are confirmed
by default: the client sends a ``/musicldm/ping`` right after them, and since the daemon handles
one socket's messages in order, a refusal (``/musicldm/fail <address> code message``) arrives
before the pong. Pass ``confirm=False`` (or use :meth:`Client.send`) for fire-and-forget.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import math
import os
import queue
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.osc_packet import OscPacket, ParseError

if TYPE_CHECKING:
    import asyncio
    from types import TracebackType

__all__ = [
    "FAIL_CODES",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncJob",
    "Client",
    "ClientError",
    "DaemonNotAnswering",
    "Done",
    "Event",
    "EventStream",
    "Failed",
    "Job",
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
]

log = logging.getLogger(__name__)

JobId = int | str
"""A job id as the daemon echoes it: an int, or text exactly as sent."""

Address = tuple[str, int]

PREFIX = "/musicldm/"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
DEFAULT_TIMEOUT = 10.0
"""Seconds to wait for the daemon's first answer to a request."""

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
"""The stable failure codes of ``/musicldm/fail`` (the contract's list)."""

_MAX_DATAGRAM = 65536
_EVENT_BUFFER = 10_000
"""Replies an :meth:`Client.events` stream holds for a slow reader before dropping new ones."""


# -- errors ----------------------------------------------------------------------------------------


class ClientError(Exception):
    """Base of every error this client raises on purpose."""


class DaemonNotAnswering(ClientError, TimeoutError):
    """Nothing came back from ``host:port`` within ``timeout`` seconds."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        start = "musicldm-daemon"
        if host not in (DEFAULT_HOST, "localhost"):
            start += f" --host {host}"
        if port != DEFAULT_PORT:
            start += f" --port {port}"
        super().__init__(
            f"no answer from the musicldm daemon at {host}:{port} within {timeout:g} s; "
            f"is it running? Start it with `{start}`"
        )


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
        super().__init__(PREFIX + "generate", code, message)


# -- replies ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    """``/musicldm/queued``: the daemon accepted the job; ``position`` 0 renders next."""

    job_id: JobId
    position: int
    address: ClassVar[str] = PREFIX + "queued"

    @property
    def args(self) -> tuple[Any, ...]:
        """The OSC arguments, as on the wire."""
        return (self.job_id, self.position)


@dataclass(frozen=True)
class Started:
    """``/musicldm/started``: the job's render began."""

    job_id: JobId
    address: ClassVar[str] = PREFIX + "started"

    @property
    def args(self) -> tuple[Any, ...]:
        """The OSC arguments, as on the wire."""
        return (self.job_id,)


@dataclass(frozen=True)
class Progress:
    """``/musicldm/progress``: sampler ``step`` of ``total`` is done."""

    job_id: JobId
    step: int
    total: int
    address: ClassVar[str] = PREFIX + "progress"

    @property
    def args(self) -> tuple[Any, ...]:
        """The OSC arguments, as on the wire."""
        return (self.job_id, self.step, self.total)


@dataclass(frozen=True)
class Done:
    """``/musicldm/done``: one take is complete on disk at ``path``.

    ``seconds`` is the clip's length, ``bpm`` its tempo, ``bars`` its length in bars (0 for a
    clip asked for in seconds) and ``seed`` the seed used.
    """

    job_id: JobId
    path: str
    seconds: float
    bpm: float
    bars: int
    seed: int
    address: ClassVar[str] = PREFIX + "done"

    @property
    def args(self) -> tuple[Any, ...]:
        """The OSC arguments, as on the wire."""
        return (self.job_id, self.path, self.seconds, self.bpm, self.bars, self.seed)


@dataclass(frozen=True)
class Failed:
    """``/musicldm/fail``: a job or request failed.

    ``job_id`` is the job's id, or the request's address (``"/musicldm/set"``) when the failure
    is not about a job; ``code`` is one of :data:`FAIL_CODES`.
    """

    job_id: JobId
    code: str
    message: str
    address: ClassVar[str] = PREFIX + "fail"

    @property
    def args(self) -> tuple[Any, ...]:
        """The OSC arguments, as on the wire."""
        return (self.job_id, self.code, self.message)

    @property
    def is_request_failure(self) -> bool:
        """True when the failure names a request's address rather than a job."""
        return isinstance(self.job_id, str) and self.job_id.startswith("/")


@dataclass(frozen=True)
class Event:
    """Any other reply or event (``/musicldm/playing``, ``stopped``, ``late``, ``value``,
    ``status.reply``, ``pong``), or one of the above whose arguments did not fit."""

    address: str
    args: tuple[Any, ...]


Reply = Queued | Started | Progress | Done | Failed | Event
"""One message from the daemon, typed."""

JobReply = Queued | Started | Progress | Done | Failed
_JOB_REPLIES = (Queued, Started, Progress, Done, Failed)


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


_PARSERS: dict[str, Callable[[tuple[Any, ...]], Reply]] = {
    Queued.address: lambda a: Queued(_job_id(a[0]), _int(a[1])),
    Started.address: lambda a: Started(_job_id(a[0])),
    Progress.address: lambda a: Progress(_job_id(a[0]), _int(a[1]), _int(a[2])),
    Done.address: lambda a: Done(
        _job_id(a[0]), _text(a[1]), _float(a[2]), _float(a[3]), _int(a[4]), _int(a[5])
    ),
    Failed.address: lambda a: Failed(_job_id(a[0]), _text(a[1]), _text(a[2]) if len(a) > 2 else ""),
}


def parse_reply(address: str, args: Sequence[Any]) -> Reply:
    """Type one OSC message from the daemon; anything unexpected becomes an :class:`Event`."""
    values = tuple(args)
    make = _PARSERS.get(address)
    if make is not None:
        try:
            return make(values)
        except (IndexError, TypeError, ValueError) as exc:
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


def _stop_args(index: int | None, quantize: str | None) -> list[Any]:
    """``/musicldm/stop`` arguments: ``[index] [quantize q]``."""
    args: list[Any] = [] if index is None else [index]
    if quantize is not None:
        args += ["quantize", quantize]
    return args


def _option_args(options: Mapping[str, Any]) -> list[Any]:
    """``key value`` pairs for the wire, in the given order; ``None`` values are left out."""
    pairs: list[Any] = []
    for key, value in options.items():
        if value is not None:
            pairs += [key, value]
    return pairs


def _same_id(a: JobId, b: JobId) -> bool:
    return type(a) is type(b) and a == b


def _normalize_id(value: JobId | float) -> JobId:
    """The id as the daemon will echo it (an integral float comes back as an int)."""
    if isinstance(value, float):
        return _int(value)
    return value


def _finite(seconds: float | None) -> float | None:
    return None if seconds is None or math.isinf(seconds) else seconds


# -- routing (shared by Client and AsyncClient) ----------------------------------------------------


class _Box(Protocol):
    """Something that takes replies: a waiter, a job or an event stream."""

    def deliver(self, reply: Reply) -> bool:
        """Take one reply; return True when no more are wanted. Must not block."""
        ...

    def close(self) -> None:
        """The client closed: wake whoever waits."""
        ...


@dataclass(eq=False)
class _Route:
    """What one box wants: replies about ``job_id``, replies at ``reply_address`` that pass
    ``match``, and the ``/musicldm/fail <request_address>`` of its still-pending request."""

    box: _Box
    job_id: JobId | None = None
    reply_address: str | None = None
    match: Callable[[Reply], bool] | None = None
    request_address: str | None = None


class _Router:
    """Hands each reply to the boxes waiting for it, then to every event stream.

    ``route`` is called by the reading side only (the client's reader thread, or the event
    loop); ``add``/``remove`` from any thread. Boxes are called outside the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: list[_Route] = []
        self._streams: list[_Box] = []
        self._own_tokens: set[str] = set()
        self._closed = False

    def add(self, route: _Route) -> _Route:
        with self._lock:
            if self._closed:
                raise ClientError("the client is closed")
            self._routes.append(route)
        return route

    def remove(self, route: _Route) -> None:
        with self._lock:
            if route in self._routes:
                self._routes.remove(route)

    def listen(self, stream: _Box) -> None:
        with self._lock:
            if self._closed:
                raise ClientError("the client is closed")
            self._streams.append(stream)

    def unlisten(self, stream: _Box) -> None:
        with self._lock:
            if stream in self._streams:
                self._streams.remove(stream)

    def hide(self, token: str) -> None:
        """Keep the pong answering this client's ping ``token`` out of the event streams."""
        with self._lock:
            self._own_tokens.add(token)

    def unhide(self, token: str) -> None:
        with self._lock:
            self._own_tokens.discard(token)

    def route(self, reply: Reply) -> None:
        """Deliver ``reply`` to the routes that want it and to every event stream."""
        with self._lock:
            targets = self._targets(reply)
            streams = list(self._streams)
            if isinstance(reply, Event) and reply.address == PREFIX + "pong" and reply.args:
                token = reply.args[0]
                if isinstance(token, str) and token in self._own_tokens:
                    self._own_tokens.discard(token)
                    streams = []
        for route in targets:
            if route.box.deliver(reply):
                self.remove(route)
        for stream in streams:
            stream.deliver(reply)

    def _targets(self, reply: Reply) -> list[_Route]:
        if isinstance(reply, Failed) and reply.is_request_failure:
            # A refusal before any job existed: the most recent sender of that address gets it.
            for route in reversed(self._routes):
                if route.request_address == reply.job_id:
                    route.request_address = None
                    return [route]
            return []
        if isinstance(reply, _JOB_REPLIES):
            found = [
                r for r in self._routes if r.job_id is not None and _same_id(r.job_id, reply.job_id)
            ]
            if isinstance(reply, Queued):
                for route in found:
                    route.request_address = None  # accepted: no refusal can follow
            return found
        return [
            r
            for r in self._routes
            if r.reply_address == reply.address and (r.match is None or r.match(reply))
        ]

    def close(self) -> None:
        """Wake every waiter and end every stream; later ``add`` calls raise ClientError."""
        with self._lock:
            self._closed = True
            boxes = [r.box for r in self._routes] + self._streams
            self._routes.clear()
            self._streams.clear()
        for box in boxes:
            box.close()


class _JobRecord:
    """What the client has heard about one job; shared by :class:`Job` and :class:`AsyncJob`.

    A job ends at its first ``/musicldm/fail``, or once ``takes`` ``/musicldm/done`` arrived.
    """

    def __init__(self, job_id: JobId, takes: int) -> None:
        self.job_id = job_id
        self.takes = max(1, takes)
        self.history: list[JobReply] = []
        self.dones: list[Done] = []
        self.failure: Failed | None = None
        self.position: int | None = None
        self.closed = False

    def add(self, reply: Reply) -> bool:
        """Record one reply; return True once the job has ended."""
        if isinstance(reply, _JOB_REPLIES) and not self.finished:
            self.history.append(reply)
            if isinstance(reply, Queued):
                self.position = reply.position
            elif isinstance(reply, Done):
                self.dones.append(reply)
            elif isinstance(reply, Failed):
                self.failure = reply
        return self.finished

    @property
    def answered(self) -> bool:
        """True once the daemon said anything about the job."""
        return bool(self.history)

    @property
    def finished(self) -> bool:
        return self.failure is not None or len(self.dones) >= self.takes

    def error(self) -> JobFailed | None:
        if self.failure is None:
            return None
        return JobFailed(self.job_id, self.failure.code, self.failure.message)


class _Deadlines:
    """The two limits of a job wait: an answer within ``queue_timeout`` of sending, and the
    end within ``timeout`` of starting to wait (``None``: no limit)."""

    def __init__(
        self,
        record: _JobRecord,
        not_answering: Callable[[float], DaemonNotAnswering],
        sent_at: float,
        queue_timeout: float | None,
        timeout: float | None,
    ) -> None:
        self._record = record
        self._not_answering = not_answering
        self._queue_timeout = _finite(queue_timeout)
        self._timeout = _finite(timeout)
        now = time.monotonic()
        self._queue_at = None if self._queue_timeout is None else sent_at + self._queue_timeout
        self._end_at = None if self._timeout is None else now + self._timeout

    def remaining(self) -> float | None:
        """Seconds until the next limit (None: none); raises the error of a limit passed."""
        now = time.monotonic()
        waits: list[float] = []
        if not self._record.answered and self._queue_at is not None:
            if now >= self._queue_at:
                raise self._not_answering(self._queue_timeout or 0.0)
            waits.append(self._queue_at - now)
        if self._end_at is not None:
            if now >= self._end_at:
                if not self._record.answered:
                    raise self._not_answering(self._timeout or 0.0)
                raise JobTimeout(self._record.job_id, self._timeout or 0.0)
            waits.append(self._end_at - now)
        return min(waits) if waits else None


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, Address]:
    """The daemon's socket address, IPv4 first (the daemon listens on 127.0.0.1 by default)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ClientError(f"cannot resolve the daemon's host {host!r}: {exc}") from exc
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


class _Core:
    """What the threaded and the asyncio client share: addresses, ids, messages, errors."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        bind_host: str | None,
        bind_port: int,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._family, self._remote = _resolve(host, port)
        ipv6 = self._family == socket.AF_INET6
        if bind_host is None:
            if _is_loopback(self._remote[0]):
                bind_host = "::1" if ipv6 else "127.0.0.1"
            else:
                bind_host = "::" if ipv6 else "0.0.0.0"  # replies come from afar
        self._bind = (bind_host, bind_port)
        self._router = _Router()
        self._prefix = os.urandom(3).hex()
        self._job_numbers = itertools.count(1)
        self._ping_numbers = itertools.count(1)

    def _open_socket(self) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.bind(self._bind)
        except OSError as exc:
            sock.close()
            raise ClientError(f"cannot bind udp {self._bind[0]}:{self._bind[1]}: {exc}") from exc
        return sock

    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._job_numbers)}"

    def _not_answering(self, timeout: float) -> DaemonNotAnswering:
        return DaemonNotAnswering(self.host, self.port, timeout)

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def _generate_request(
        self, prompt: str, job_id: JobId | float | None, options: Mapping[str, Any]
    ) -> tuple[JobId, int, list[Any]]:
        """(id the replies will carry, takes expected, arguments of /musicldm/generate)."""
        sent_id: JobId | float = self._new_id() if job_id is None else job_id
        takes = options.get("takes")
        return (
            _normalize_id(sent_id),
            1 if takes is None else int(takes),
            [prompt, "id", sent_id, *_option_args(options)],
        )

    def _answer(self, address: str, reply: Reply | None, closed: bool, timeout: float) -> Reply:
        """The reply a request waited for, or the error it stands for."""
        if reply is None:
            if closed:
                raise ClientError("the client was closed while waiting")
            raise self._not_answering(timeout)
        if isinstance(reply, Failed):
            raise RequestFailed(address, reply.code, reply.message)
        return reply

    @staticmethod
    def _value_of(key: str) -> Callable[[Reply], bool]:
        return lambda reply: bool(reply.args) and reply.args[0] == key

    def _ping_token(self) -> tuple[str, Callable[[Reply], bool]]:
        token = f"{self._prefix}-ping-{next(self._ping_numbers)}"
        self._router.hide(token)
        return token, self._value_of(token)


# -- the threaded client ---------------------------------------------------------------------------


class _Waiter:
    """One answer, waited for by one thread (delivered by the reader thread)."""

    def __init__(self) -> None:
        self.reply: Reply | None = None
        self.closed = False
        self._event = threading.Event()

    def deliver(self, reply: Reply) -> bool:
        self.reply = reply
        self._event.set()
        return True

    def close(self) -> None:
        self.closed = True
        self._event.set()

    def wait(self, timeout: float | None) -> Reply | None:
        self._event.wait(_finite(timeout))
        return self.reply


_END = object()


class EventStream:
    """Every reply the client receives from its creation on, in order of arrival.

    Iterate it (each item is a :data:`Reply`); iteration ends when ``duration`` seconds have
    passed since creation, when the stream or the client is closed. Replies are buffered for a
    slow reader up to a limit; ``dropped`` counts those that did not fit. Pongs answering this
    client's own pings are left out.
    """

    def __init__(self, router: _Router, duration: float | None) -> None:
        self._router = router
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_EVENT_BUFFER)
        self._end_at = None if _finite(duration) is None else time.monotonic() + (duration or 0)
        self._ended = False
        self.dropped = 0
        router.listen(self)

    def deliver(self, reply: Reply) -> bool:
        """Reader thread: buffer one reply, or count it dropped when the buffer is full."""
        try:
            self._queue.put_nowait(reply)
        except queue.Full:
            self.dropped += 1
        return False

    def close(self) -> None:
        """Stop receiving; a waiting iteration ends."""
        self._router.unlisten(self)
        try:
            self._queue.put_nowait(_END)
        except queue.Full:
            self._ended = True

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Reply:
        if self._ended:
            raise StopIteration
        remaining = None
        if self._end_at is not None:
            remaining = max(0.0, self._end_at - time.monotonic())
        try:
            item = self._queue.get(timeout=remaining)
        except queue.Empty:
            item = _END
        if item is _END:
            self._ended = True
            self._router.unlisten(self)
            raise StopIteration
        return item  # type: ignore[no-any-return]

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Job:
    """A handle on one ``/musicldm/generate``: wait for it, follow it, cancel it.

    Replies are recorded by the client's reader thread as they come, so the job may be waited
    for at any time, from any thread, more than once.
    """

    def __init__(self, client: Client, job_id: JobId, takes: int, sent_at: float) -> None:
        self._client = client
        self._record = _JobRecord(job_id, takes)
        self._sent_at = sent_at
        self._changed = threading.Condition()

    @property
    def id(self) -> JobId:
        """The job's id, as every reply about it carries it."""
        return self._record.job_id

    @property
    def takes(self) -> int:
        """How many ``/musicldm/done`` replies the job ends with."""
        return self._record.takes

    @property
    def position(self) -> int | None:
        """The queue position ``/musicldm/queued`` reported (0 = next), or None so far."""
        return self._record.position

    @property
    def finished(self) -> bool:
        """True once every take is done or the job failed."""
        return self._record.finished

    def deliver(self, reply: Reply) -> bool:
        """Reader thread: record one reply about the job."""
        with self._changed:
            ended = self._record.add(reply)
            self._changed.notify_all()
        return ended

    def close(self) -> None:
        with self._changed:
            self._record.closed = True
            self._changed.notify_all()

    def _until(
        self, ready: Callable[[], bool], timeout: float | None, queue_timeout: float | None
    ) -> None:
        """Block until ``ready()`` (called under the lock) or a limit passes (which raises)."""
        limits = _Deadlines(
            self._record,
            self._client._not_answering,
            self._sent_at,
            self._client.timeout if queue_timeout is None else queue_timeout,
            timeout,
        )
        with self._changed:
            while not ready():
                if self._record.closed:
                    raise ClientError(f"the client was closed while job {self.id!r} ran")
                self._changed.wait(limits.remaining())

    def wait(self, timeout: float | None = None, *, queue_timeout: float | None = None) -> Done:
        """Block until the job's first take is done, and return it.

        ``timeout`` bounds the whole wait in seconds (None: no limit) and raises
        :class:`JobTimeout` once the daemon had answered; ``queue_timeout`` (default: the
        client's timeout) bounds the wait for the daemon's first answer after sending, and
        raises :class:`DaemonNotAnswering`. Raises :class:`JobFailed` on ``/musicldm/fail``.
        """
        record = self._record
        self._until(
            lambda: bool(record.dones) or record.failure is not None, timeout, queue_timeout
        )
        if record.dones:
            return record.dones[0]
        raise record.error()  # type: ignore[misc]

    def wait_all(
        self, timeout: float | None = None, *, queue_timeout: float | None = None
    ) -> list[Done]:
        """Block until all ``takes`` are done and return them in order of arrival (the daemon
        ranks them best first); limits and errors as :meth:`wait`, raising at the first fail."""
        self._until(lambda: self._record.finished, timeout, queue_timeout)
        error = self._record.error()
        if error is not None:
            raise error
        return list(self._record.dones)

    def progress(
        self, timeout: float | None = None, *, queue_timeout: float | None = None
    ) -> Iterator[Queued | Started | Progress]:
        """Yield the job's :class:`Queued`, :class:`Started` and :class:`Progress` replies as
        they come, from the first; end when every take is done (then :meth:`wait_all` returns
        at once), raise :class:`JobFailed` if it fails. Limits as :meth:`wait`."""
        limits = _Deadlines(
            self._record,
            self._client._not_answering,
            self._sent_at,
            self._client.timeout if queue_timeout is None else queue_timeout,
            timeout,
        )
        seen = 0
        while True:
            with self._changed:
                while seen >= len(self._record.history) and not self._record.finished:
                    if self._record.closed:
                        raise ClientError(f"the client was closed while job {self.id!r} ran")
                    self._changed.wait(limits.remaining())
                fresh = self._record.history[seen:]
                seen += len(fresh)
                finished = self._record.finished
            for reply in fresh:
                if isinstance(reply, (Queued, Started, Progress)):
                    yield reply
            if finished:
                error = self._record.error()
                if error is not None:
                    raise error
                return

    def cancel(self) -> None:
        """Ask the daemon to cancel the job; a job that already ended is left alone.

        The job then fails with code ``cancelled`` (unless it finished first).
        """
        try:
            self._client.cancel(self.id)
        except RequestFailed as exc:
            if exc.code != "not_found":
                raise

    def __repr__(self) -> str:
        record = self._record
        state = "failed" if record.failure else f"{len(record.dones)}/{record.takes} done"
        return f"<Job {self.id!r} {state}>"


class Client:
    """Talks to the daemon at ``host:port`` from one UDP socket, and hears its replies there.

    ``timeout`` is how long, in seconds, to wait for the daemon's first answer to a request
    before raising :class:`DaemonNotAnswering`. The socket binds ``bind_host:bind_port``
    (default: an ephemeral port on loopback when the daemon is on loopback, else on every
    interface). A background thread reads it until :meth:`close`; the client is thread-safe.
    Use it as a context manager::

        with Client() as client:
            print(client.generate("warm lofi piano", bars=2, bpm=90).wait().path)
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        bind_host: str | None = None,
        bind_port: int = 0,
    ) -> None:
        self._core = _Core(host, port, timeout, bind_host, bind_port)
        self._router = self._core._router
        self._sock = self._core._open_socket()
        self._sock.settimeout(1.0)  # a backstop: close() wakes the reader with a datagram
        self._closing = threading.Event()
        self._reader = threading.Thread(
            target=self._read, name=f"musicldm-client-{self.local_address[1]}", daemon=True
        )
        self._reader.start()

    @property
    def host(self) -> str:
        """The daemon's host, as given."""
        return self._core.host

    @property
    def port(self) -> int:
        """The daemon's UDP port."""
        return self._core.port

    @property
    def timeout(self) -> float:
        """Seconds to wait for the daemon's first answer to a request."""
        return self._core.timeout

    @property
    def local_address(self) -> Address:
        """The (host, port) this client sends from and listens on."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    # -- plumbing ----------------------------------------------------------------------------------

    def _read(self) -> None:
        """Reader thread: parse every datagram and route its replies until :meth:`close`."""
        while not self._closing.is_set():
            try:
                data, _sender = self._sock.recvfrom(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError as exc:
                if self._closing.is_set():
                    return
                # e.g. Windows reports an ICMP "port unreachable" for an earlier send here
                log.debug("receive failed: %s", exc)
                continue
            if self._closing.is_set():
                return
            for reply in decode_packet(data):
                try:
                    self._router.route(reply)
                except Exception:  # a reply must never stop the reader
                    log.exception("error routing %r", reply)

    def _not_answering(self, timeout: float) -> DaemonNotAnswering:
        return self._core._not_answering(timeout)

    def send(self, address: str, *args: Any) -> None:
        """Send one OSC message to the daemon and return at once (no answer is awaited).

        Python ints travel as OSC ints, floats as floats, text as strings.
        """
        if self._closing.is_set():
            raise ClientError("the client is closed")
        data = encode_message(address, args)
        try:
            self._sock.sendto(data, self._core._remote)
        except OSError as exc:
            raise ClientError(f"cannot send to {self.host}:{self.port}: {exc}") from exc

    def _request(
        self,
        address: str,
        args: Sequence[Any],
        reply_address: str,
        match: Callable[[Reply], bool] | None,
        timeout: float | None,
    ) -> Reply:
        """Send, then wait for the reply at ``reply_address`` passing ``match`` (or a fail)."""
        seconds = self._core._timeout(timeout)
        waiter = _Waiter()
        route = self._router.add(_Route(waiter, None, reply_address, match, address))
        try:
            self.send(address, *args)
            reply = waiter.wait(seconds)
        finally:
            self._router.remove(route)
        return self._core._answer(address, reply, waiter.closed, seconds)

    def _command(self, address: str, args: Sequence[Any], confirm: bool) -> None:
        """Send a request that has no answer of its own; when ``confirm``, ping after it and
        raise :class:`RequestFailed` if the daemon refused it (its fail precedes the pong)."""
        if not confirm:
            self.send(address, *args)
            return
        waiter = _Waiter()
        route = self._router.add(_Route(waiter, request_address=address))
        try:
            self.send(address, *args)
            self.ping()
        finally:
            self._router.remove(route)
        if isinstance(waiter.reply, Failed):
            raise RequestFailed(address, waiter.reply.code, waiter.reply.message)

    # -- requests ----------------------------------------------------------------------------------

    def ping(self, timeout: float | None = None) -> float:
        """Round trip to the daemon in seconds; raises :class:`DaemonNotAnswering`."""
        token, match = self._core._ping_token()
        started = time.perf_counter()
        try:
            self._request(PREFIX + "ping", [token], PREFIX + "pong", match, timeout)
        except ClientError:
            self._router.unhide(token)
            raise
        return time.perf_counter() - started

    def status(self, timeout: float | None = None) -> dict[str, Any]:
        """The daemon's ``/musicldm/status.reply`` as a dict (at least ``queued running
        device model bpm voices version``)."""
        reply = self._request(PREFIX + "status", [], PREFIX + "status.reply", None, timeout)
        return parse_status(reply.args)

    def get(self, key: str, timeout: float | None = None) -> Any:
        """The value a later request would use for option ``key`` (or ``bpm``, ``version``)."""
        reply = self._request(
            PREFIX + "get", [key], PREFIX + "value", self._core._value_of(key), timeout
        )
        return reply.args[1] if len(reply.args) > 1 else None

    def set(self, key: str, value: Any, *, confirm: bool = True) -> None:
        """Change the default of option ``key`` for later requests."""
        self._command(PREFIX + "set", [key, value], confirm)

    def generate(self, prompt: str, *, id: JobId | None = None, **options: Any) -> Job:
        """Queue a clip and return its :class:`Job` at once.

        ``options`` are the contract's generate options (``bars``, ``beats``, ``bpm``,
        ``seconds``, ``seed``, ``steps``, ``guidance``, ``negative``, ``takes``, ``scheduler``,
        ``preset``, ``loop``, ``name``, ``slot``, ``play``, ``priority``); ``None`` values are
        left out, ``True``/``False`` travel as 1/0. Without ``id`` the client picks a unique
        text id. The daemon validates everything; a refusal surfaces as :class:`JobFailed`.
        """
        job_id, takes, args = self._core._generate_request(prompt, id, options)
        job = Job(self, job_id, takes, time.monotonic())
        route = self._router.add(_Route(job, job_id=job_id, request_address=PREFIX + "generate"))
        try:
            self.send(PREFIX + "generate", *args)
        except BaseException:
            self._router.remove(route)
            raise
        return job

    def cancel(self, job_id: JobId | None = None, *, confirm: bool = True) -> None:
        """Cancel job ``job_id`` (queued or running), or every job; with ``confirm``, raises
        :class:`RequestFailed` (``not_found``) when no such job is queued or running."""
        self._command(PREFIX + "cancel", [] if job_id is None else [job_id], confirm)

    def notify(self, on: bool = True, port: int | None = None, *, confirm: bool = True) -> None:
        """(Un)register this client (or ``port`` on its host) for every event of the daemon."""
        self._command(PREFIX + "notify", [int(on)] + ([] if port is None else [port]), confirm)

    def events(self, duration: float | None = None) -> EventStream:
        """A stream of every reply from now on (see :class:`EventStream`), for ``duration``
        seconds or until closed. Combine with :meth:`notify` to hear other clients' jobs."""
        return EventStream(self._router, duration)

    def slot(self, index: int, prompt: str, *, confirm: bool = True, **options: Any) -> None:
        """Define clip slot ``index`` (0-127) with a prompt and generate options (plus
        ``ahead``, the takes kept ready)."""
        self._command(PREFIX + "slot", [index, prompt, *_option_args(options)], confirm)

    def trigger(self, index: int, *, confirm: bool = True, **playback: Any) -> None:
        """Play slot ``index``'s next ready take at the next quantize point; ``playback``:
        ``quantize`` (none/beat/bar), ``loop`` (bool), ``gain`` (0-2, linear)."""
        self._command(PREFIX + "trigger", [index, *_option_args(playback)], confirm)

    def play(
        self, id_or_path: JobId | os.PathLike[str], *, confirm: bool = True, **playback: Any
    ) -> None:
        """Play a finished clip by job id or by path inside the output folder; ``playback`` as
        :meth:`trigger`."""
        self._command(PREFIX + "play", [id_or_path, *_option_args(playback)], confirm)

    def stop(
        self, index: int | None = None, quantize: str | None = None, *, confirm: bool = True
    ) -> None:
        """Stop slot ``index`` (None: everything) at the ``quantize`` point (none/beat/bar)."""
        self._command(PREFIX + "stop", _stop_args(index, quantize), confirm)

    def tempo(self, bpm: float, *, confirm: bool = True) -> None:
        """Set the internal clock's tempo in BPM (20-400)."""
        self._command(PREFIX + "tempo", [float(bpm)], confirm)

    def transport(self, start: bool, *, confirm: bool = True) -> None:
        """Start (True) or stop (False) the internal clock."""
        self._command(PREFIX + "transport", ["start" if start else "stop"], confirm)

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the reader thread and close the socket; waiting calls raise ClientError and
        event streams end. Safe to call twice."""
        if self._closing.is_set():
            return
        self._closing.set()
        host, port = self.local_address
        if host in ("0.0.0.0", "::"):
            host = "::1" if self._core._family == socket.AF_INET6 else "127.0.0.1"
        with contextlib.suppress(OSError):
            self._sock.sendto(b"", (host, port))  # wake the reader at once
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=2.0)
        self._sock.close()
        self._router.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.host}:{self.port}>"


# -- the asyncio client ----------------------------------------------------------------------------


class _AsyncWaiter:
    """One answer as a future, resolved on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[Reply | None] = loop.create_future()
        self.closed = False

    def deliver(self, reply: Reply) -> bool:
        if not self.future.done():
            self.future.set_result(reply)
        return True

    def close(self) -> None:
        self.closed = True
        if not self.future.done():
            self.future.set_result(None)

    async def wait(self, timeout: float | None) -> Reply | None:
        import asyncio

        try:
            return await asyncio.wait_for(asyncio.shield(self.future), _finite(timeout))
        except asyncio.TimeoutError:
            return None


class AsyncEventStream:
    """:class:`EventStream` for asyncio: ``async for reply in stream``; ``close()`` ends it."""

    def __init__(self, router: _Router, duration: float | None) -> None:
        import asyncio

        self._router = router
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=_EVENT_BUFFER)
        self._end_at = None if _finite(duration) is None else time.monotonic() + (duration or 0)
        self._ended = False
        self.dropped = 0
        router.listen(self)

    def deliver(self, reply: Reply) -> bool:
        """Event loop: buffer one reply, or count it dropped when the buffer is full."""
        import asyncio

        try:
            self._queue.put_nowait(reply)
        except asyncio.QueueFull:
            self.dropped += 1
        return False

    def close(self) -> None:
        """Stop receiving; a waiting iteration ends."""
        import asyncio

        self._router.unlisten(self)
        try:
            self._queue.put_nowait(_END)
        except asyncio.QueueFull:
            self._ended = True

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Reply:
        import asyncio

        if self._ended:
            raise StopAsyncIteration
        remaining = None
        if self._end_at is not None:
            remaining = max(0.0, self._end_at - time.monotonic())
        try:
            item = await asyncio.wait_for(self._queue.get(), remaining)
        except asyncio.TimeoutError:
            item = _END
        if item is _END:
            self._ended = True
            self._router.unlisten(self)
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AsyncJob:
    """:class:`Job` for asyncio: ``await job.wait()``, ``async for p in job.progress()``."""

    def __init__(self, client: AsyncClient, job_id: JobId, takes: int, sent_at: float) -> None:
        self._client = client
        self._record = _JobRecord(job_id, takes)
        self._sent_at = sent_at
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def id(self) -> JobId:
        """The job's id, as every reply about it carries it."""
        return self._record.job_id

    @property
    def takes(self) -> int:
        """How many ``/musicldm/done`` replies the job ends with."""
        return self._record.takes

    @property
    def position(self) -> int | None:
        """The queue position ``/musicldm/queued`` reported (0 = next), or None so far."""
        return self._record.position

    @property
    def finished(self) -> bool:
        """True once every take is done or the job failed."""
        return self._record.finished

    def deliver(self, reply: Reply) -> bool:
        """Event loop: record one reply about the job and wake its waiters."""
        ended = self._record.add(reply)
        self._wake()
        return ended

    def close(self) -> None:
        self._record.closed = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def _limits(self, timeout: float | None, queue_timeout: float | None) -> _Deadlines:
        return _Deadlines(
            self._record,
            self._client._core._not_answering,
            self._sent_at,
            self._client.timeout if queue_timeout is None else queue_timeout,
            timeout,
        )

    async def _changed(self, limits: _Deadlines) -> None:
        """Wait for the next reply about the job, or until a limit (then raise it)."""
        import asyncio

        if self._record.closed:
            raise ClientError(f"the client was closed while job {self.id!r} ran")
        remaining = limits.remaining()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await asyncio.wait_for(future, remaining)
        except asyncio.TimeoutError:
            limits.remaining()  # raises when the limit has passed; else wait again

    async def wait(
        self, timeout: float | None = None, *, queue_timeout: float | None = None
    ) -> Done:
        """The job's first done take; limits and errors as :meth:`Job.wait`."""
        limits = self._limits(timeout, queue_timeout)
        record = self._record
        while not record.dones and record.failure is None:
            await self._changed(limits)
        if record.dones:
            return record.dones[0]
        raise record.error()  # type: ignore[misc]

    async def wait_all(
        self, timeout: float | None = None, *, queue_timeout: float | None = None
    ) -> list[Done]:
        """All ``takes`` done replies; limits and errors as :meth:`Job.wait_all`."""
        limits = self._limits(timeout, queue_timeout)
        while not self._record.finished:
            await self._changed(limits)
        error = self._record.error()
        if error is not None:
            raise error
        return list(self._record.dones)

    async def progress(
        self, timeout: float | None = None, *, queue_timeout: float | None = None
    ) -> AsyncIterator[Queued | Started | Progress]:
        """Queued/Started/Progress replies as they come; as :meth:`Job.progress`."""
        limits = self._limits(timeout, queue_timeout)
        seen = 0
        while True:
            while seen >= len(self._record.history) and not self._record.finished:
                await self._changed(limits)
            fresh = self._record.history[seen:]
            seen += len(fresh)
            finished = self._record.finished
            for reply in fresh:
                if isinstance(reply, (Queued, Started, Progress)):
                    yield reply
            if finished:
                error = self._record.error()
                if error is not None:
                    raise error
                return

    async def cancel(self) -> None:
        """Ask the daemon to cancel the job; a job that already ended is left alone."""
        try:
            await self._client.cancel(self.id)
        except RequestFailed as exc:
            if exc.code != "not_found":
                raise

    def __repr__(self) -> str:
        record = self._record
        state = "failed" if record.failure else f"{len(record.dones)}/{record.takes} done"
        return f"<AsyncJob {self.id!r} {state}>"


class _DatagramReader:
    """asyncio datagram protocol: every datagram's replies go to the router (event loop)."""

    def __init__(self, router: _Router) -> None:
        self._router = router

    def connection_made(self, transport: object) -> None:
        pass

    def datagram_received(self, data: bytes, addr: Any) -> None:
        for reply in decode_packet(data):
            try:
                self._router.route(reply)
            except Exception:  # a reply must never stop the endpoint
                log.exception("error routing %r", reply)

    def error_received(self, exc: Exception) -> None:
        log.debug("receive failed: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._router.close()


class AsyncClient:
    """:class:`Client` for asyncio, on one datagram endpoint; use it from its event loop::

        async with AsyncClient() as client:
            job = await client.generate("dark techno", bars=4, bpm=128)
            async for progress in job.progress():
                ...
            done = await job.wait()

    Same arguments as :class:`Client`; the socket is bound by :meth:`open` (or ``async with``).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        bind_host: str | None = None,
        bind_port: int = 0,
    ) -> None:
        self._core = _Core(host, port, timeout, bind_host, bind_port)
        self._router = self._core._router
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def host(self) -> str:
        """The daemon's host, as given."""
        return self._core.host

    @property
    def port(self) -> int:
        """The daemon's UDP port."""
        return self._core.port

    @property
    def timeout(self) -> float:
        """Seconds to wait for the daemon's first answer to a request."""
        return self._core.timeout

    @property
    def local_address(self) -> Address:
        """The (host, port) this client sends from and listens on (once open)."""
        if self._transport is None:
            raise ClientError("the client is not open")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    async def open(self) -> AsyncClient:
        """Bind the socket and start reading it on the running loop."""
        import asyncio

        if self._transport is None:
            loop = asyncio.get_running_loop()
            sock = self._core._open_socket()
            # _DatagramReader is an asyncio.DatagramProtocol by duck typing, so that importing
            # this module does not import asyncio (tens of milliseconds).
            transport, _ = await loop.create_datagram_endpoint(  # type: ignore[type-var]
                lambda: _DatagramReader(self._router), sock=sock
            )
            self._transport = transport
        return self

    def close(self) -> None:
        """Close the endpoint; waiting calls raise ClientError and event streams end."""
        if self._transport is not None:
            self._transport.close()
        self._router.close()

    async def __aenter__(self) -> AsyncClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def send(self, address: str, *args: Any) -> None:
        """Send one OSC message to the daemon (fire-and-forget); as :meth:`Client.send`."""
        if self._transport is None or self._transport.is_closing():
            raise ClientError("the client is not open")
        self._transport.sendto(encode_message(address, args), self._core._remote)

    async def _request(
        self,
        address: str,
        args: Sequence[Any],
        reply_address: str,
        match: Callable[[Reply], bool] | None,
        timeout: float | None,
    ) -> Reply:
        import asyncio

        seconds = self._core._timeout(timeout)
        waiter = _AsyncWaiter(asyncio.get_running_loop())
        route = self._router.add(_Route(waiter, None, reply_address, match, address))
        try:
            self.send(address, *args)
            reply = await waiter.wait(seconds)
        finally:
            self._router.remove(route)
        return self._core._answer(address, reply, waiter.closed, seconds)

    async def _command(self, address: str, args: Sequence[Any], confirm: bool) -> None:
        import asyncio

        if not confirm:
            self.send(address, *args)
            return
        waiter = _AsyncWaiter(asyncio.get_running_loop())
        route = self._router.add(_Route(waiter, request_address=address))
        try:
            self.send(address, *args)
            await self.ping()
        finally:
            self._router.remove(route)
        failure = waiter.future.result() if waiter.future.done() else None
        if isinstance(failure, Failed):
            raise RequestFailed(address, failure.code, failure.message)

    async def ping(self, timeout: float | None = None) -> float:
        """Round trip to the daemon in seconds; raises :class:`DaemonNotAnswering`."""
        token, match = self._core._ping_token()
        started = time.perf_counter()
        try:
            await self._request(PREFIX + "ping", [token], PREFIX + "pong", match, timeout)
        except ClientError:
            self._router.unhide(token)
            raise
        return time.perf_counter() - started

    async def status(self, timeout: float | None = None) -> dict[str, Any]:
        """The daemon's status as a dict; as :meth:`Client.status`."""
        reply = await self._request(PREFIX + "status", [], PREFIX + "status.reply", None, timeout)
        return parse_status(reply.args)

    async def get(self, key: str, timeout: float | None = None) -> Any:
        """The value a later request would use for ``key``; as :meth:`Client.get`."""
        reply = await self._request(
            PREFIX + "get", [key], PREFIX + "value", self._core._value_of(key), timeout
        )
        return reply.args[1] if len(reply.args) > 1 else None

    async def set(self, key: str, value: Any, *, confirm: bool = True) -> None:
        """Change the default of option ``key``; as :meth:`Client.set`."""
        await self._command(PREFIX + "set", [key, value], confirm)

    async def generate(
        self,
        prompt: str,
        *,
        id: JobId | None = None,
        **options: Any,
    ) -> AsyncJob:
        """Queue a clip and return its :class:`AsyncJob`; as :meth:`Client.generate`."""
        job_id, takes, args = self._core._generate_request(prompt, id, options)
        job = AsyncJob(self, job_id, takes, time.monotonic())
        route = self._router.add(_Route(job, job_id=job_id, request_address=PREFIX + "generate"))
        try:
            self.send(PREFIX + "generate", *args)
        except BaseException:
            self._router.remove(route)
            raise
        return job

    async def cancel(self, job_id: JobId | None = None, *, confirm: bool = True) -> None:
        """Cancel one job or every job; as :meth:`Client.cancel`."""
        await self._command(PREFIX + "cancel", [] if job_id is None else [job_id], confirm)

    async def notify(
        self, on: bool = True, port: int | None = None, *, confirm: bool = True
    ) -> None:
        """(Un)register for every event; as :meth:`Client.notify`."""
        args = [int(on)] + ([] if port is None else [port])
        await self._command(PREFIX + "notify", args, confirm)

    async def slot(self, index: int, prompt: str, *, confirm: bool = True, **options: Any) -> None:
        """Define clip slot ``index``; as :meth:`Client.slot`."""
        await self._command(PREFIX + "slot", [index, prompt, *_option_args(options)], confirm)

    async def trigger(self, index: int, *, confirm: bool = True, **playback: Any) -> None:
        """Play slot ``index``'s next take at the quantize point; as :meth:`Client.trigger`."""
        await self._command(PREFIX + "trigger", [index, *_option_args(playback)], confirm)

    async def play(
        self, id_or_path: JobId | os.PathLike[str], *, confirm: bool = True, **playback: Any
    ) -> None:
        """Play a finished clip by job id or path; as :meth:`Client.play`."""
        await self._command(PREFIX + "play", [id_or_path, *_option_args(playback)], confirm)

    async def stop(
        self, index: int | None = None, quantize: str | None = None, *, confirm: bool = True
    ) -> None:
        """Stop one slot or everything; as :meth:`Client.stop`."""
        await self._command(PREFIX + "stop", _stop_args(index, quantize), confirm)

    async def tempo(self, bpm: float, *, confirm: bool = True) -> None:
        """Set the internal clock's tempo; as :meth:`Client.tempo`."""
        await self._command(PREFIX + "tempo", [float(bpm)], confirm)

    async def transport(self, start: bool, *, confirm: bool = True) -> None:
        """Start or stop the internal clock; as :meth:`Client.transport`."""
        await self._command(PREFIX + "transport", ["start" if start else "stop"], confirm)

    def events(self, duration: float | None = None) -> AsyncEventStream:
        """Every reply from now on; as :meth:`Client.events`. Call it on the event loop."""
        return AsyncEventStream(self._router, duration)

    def __repr__(self) -> str:
        return f"<AsyncClient {self.host}:{self.port}>"
