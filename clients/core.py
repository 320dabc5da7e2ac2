"""The client's core, shared by its two faces: waits, routing, job records, deadlines, session.

Layout of the client (each command of the contract is defined once, in :mod:`.commands`)::

    daemon.wire.contract   the OSC contract as data (addresses, replies, fail codes, ids)
          ▲
    clients.messages       the error tree, typed replies, encode/decode
          ▲
    clients.core           this module: waits and flows, the router, job records and
          ▲                deadlines, event buffers, the Session (socket, ids, sending)
    clients.commands       every command once, as a flow; the Commands and JobHandle bases
          ▲
    clients.client         the threaded face: Client, Job, EventStream (and every re-export)
    clients.aio            the asyncio face: AsyncClient, AsyncJob, AsyncEventStream

A *flow* is a generator that does everything a request involves (register a route, send, check
what came back, raise) and yields a :class:`Wait` whenever it needs a reply that has not come
yet. A face only says how to wait: the threaded face blocks on a condition variable, the asyncio
face awaits a future. What the faces share is therefore written once, and they cannot drift
apart. A face hands the :class:`Session` a :data:`SignalFactory` (its waiting primitive) and a
``transmit`` function (its socket); the reading side (a reader thread, or the event loop)
passes every datagram to :meth:`Router.route_datagram`.

Importing this module starts no thread and imports neither torch nor asyncio: it stands on the
standard library, python-osc, :mod:`daemon.wire.contract` and :mod:`daemon.wire.addresses`
(both pure data and functions, importable in milliseconds).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from daemon.wire.addresses import is_loopback
from daemon.wire.contract import JobId

from .messages import (
    JOB_REPLIES,
    ClientError,
    DaemonNotAnswering,
    Done,
    Event,
    Failed,
    JobFailed,
    JobReply,
    JobTimeout,
    Queued,
    Reply,
    RequestFailed,
    decode_packet,
    encode_message,
    reply_address,
    request_address,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

Address = tuple[str, int]

DEFAULT_TIMEOUT = 10.0
"""Seconds to wait for the daemon's first answer to a request."""

MAX_DATAGRAM = 65536
EVENT_BUFFER = 10_000
"""Replies an event stream holds for a slow reader before dropping new ones."""


def finite(seconds: float | None) -> float | None:
    """``seconds``, or None for no limit (None or infinity)."""
    return None if seconds is None or math.isinf(seconds) else seconds


# -- waiting: what a face provides -----------------------------------------------------------------


class Signal(Protocol):
    """A face's way to wake a waiting flow. The reading side calls :meth:`notify` after it
    changed what the flow looks at; ``version`` counts the calls, so that a flow that read the
    version before looking cannot miss a change made in between."""

    version: int

    def notify(self) -> None:
        """Wake whoever waits on this signal. Must not block (the reading side calls it)."""
        ...


SignalFactory = Callable[[], Signal]


@dataclass(frozen=True)
class Wait:
    """What a flow yields: resume me once ``signal.version`` is past ``version``, or after
    ``seconds`` (None: no limit), whichever comes first."""

    signal: Signal
    version: int
    seconds: float | None


Flow = Generator[Wait, None, T]
"""A request, a job wait or a stream read, written once; a face drives it (see the module
docstring). Its return value is the call's result; its exceptions are the call's errors."""


def wait_until(
    signal: Signal, ready: Callable[[], bool], left: Callable[[], float | None]
) -> Flow[bool]:
    """Wait until ``ready()``; return True, or False once ``left()`` (seconds still allowed,
    None: no limit) reaches 0. ``left`` may raise instead, to end the wait with an error."""
    while True:
        version = signal.version  # read before looking: a change in between wakes at once
        if ready():
            return True
        seconds = left()
        if seconds is not None and seconds <= 0:
            return False
        yield Wait(signal, version, seconds)


def time_left(seconds: float | None) -> Callable[[], float | None]:
    """A ``left`` for :func:`wait_until`: seconds left of ``seconds`` from now (None: no end)."""
    limit = finite(seconds)
    if limit is None:
        return lambda: None
    end = time.monotonic() + limit
    return lambda: end - time.monotonic()


# -- routing ---------------------------------------------------------------------------------------


class Box(Protocol):
    """Something that takes replies: a request's answer, a job or an event stream."""

    def deliver(self, reply: Reply) -> bool:
        """Take one reply; return True when no more are wanted. Must not block."""
        ...

    def close(self) -> None:
        """The client closed: wake whoever waits."""
        ...


class Answer:
    """The one reply a request waits for (a :class:`Box`). ``then`` runs on the reading side
    as the reply is taken, before any later reply is routed."""

    def __init__(self, signal: Signal, then: Callable[[], None] | None = None) -> None:
        self.signal = signal
        self.reply: Reply | None = None
        self.closed = False
        self._then = then

    def deliver(self, reply: Reply) -> bool:
        if self.reply is None:
            self.reply = reply
            if self._then is not None:
                self._then()
            self.signal.notify()
        return True

    def close(self) -> None:
        self.closed = True
        self.signal.notify()

    @property
    def settled(self) -> bool:
        """True once the reply came or the client closed."""
        return self.reply is not None or self.closed


@dataclass(eq=False)
class Route:
    """What one box wants: replies about ``job_id``, replies at ``reply_address`` that pass
    ``match``, and the ``/musicldm/fail <request_address>`` of its still-pending request."""

    box: Box
    job_id: JobId | None = None
    reply_address: str | None = None
    match: Callable[[Reply], bool] | None = None
    request_address: str | None = None


def _same_id(a: JobId, b: JobId) -> bool:
    return type(a) is type(b) and a == b


class Router:
    """Hands each reply to the boxes waiting for it, then to every event stream.

    ``route`` is called by the reading side only (the client's reader thread, or the event
    loop); ``add``/``remove`` from any thread. Boxes are called outside the lock.
    """

    def __init__(self, own_pings: str) -> None:
        """``own_pings``: the start of this client's ping tokens (see :meth:`route`)."""
        self._lock = threading.Lock()
        self._routes: list[Route] = []
        self._streams: list[Box] = []
        self._own_pings = own_pings
        self._closed = False

    def add(self, route: Route) -> Route:
        """Deliver the replies ``route`` wants to its box from now on."""
        self._join(self._routes, route)
        return route

    def remove(self, route: Route) -> None:
        self._leave(self._routes, route)

    def listen(self, stream: Box) -> None:
        """Deliver every reply to ``stream`` from now on."""
        self._join(self._streams, stream)

    def unlisten(self, stream: Box) -> None:
        self._leave(self._streams, stream)

    def _join(self, members: list[Any], member: Any) -> None:
        with self._lock:
            if self._closed:
                raise ClientError("the client is closed")
            members.append(member)

    def _leave(self, members: list[Any], member: Any) -> None:
        with self._lock:
            if member in members:
                members.remove(member)

    def route(self, reply: Reply) -> None:
        """Deliver ``reply`` to the routes that want it and to every event stream."""
        with self._lock:
            targets = self._targets(reply)
            streams = list(self._streams)
            if isinstance(reply, Event) and reply.address == _PONG and reply.args:
                token = reply.args[0]
                # every pong of this client's own pings, also a late one or a copy, stays out
                if isinstance(token, str) and token.startswith(self._own_pings):
                    streams = []
        for route in targets:
            if route.box.deliver(reply):
                self.remove(route)
        for stream in streams:
            stream.deliver(reply)

    def route_datagram(self, data: bytes) -> None:
        """Reading side: decode one datagram and route each of its replies."""
        for reply in decode_packet(data):
            try:
                self.route(reply)
            except Exception:  # a reply must never stop the reading side
                log.exception("error routing %r", reply)

    def _targets(self, reply: Reply) -> list[Route]:
        if isinstance(reply, Failed) and reply.is_request_failure:
            # A refusal that names only the address: the daemon handles one socket's messages
            # in order, so it is about the oldest request to that address still unsettled (a
            # route stops waiting for a refusal once its request was accepted: a job's first
            # reply, a confirming ping's pong, both taken here on the reading side, in order).
            for route in self._routes:
                if route.request_address == reply.job_id:
                    route.request_address = None
                    return [route]
            return []
        if isinstance(reply, JOB_REPLIES):
            found = [
                r for r in self._routes if r.job_id is not None and _same_id(r.job_id, reply.job_id)
            ]
            for route in found:
                route.request_address = None  # the daemon took the job: no refusal can follow
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


_PONG = reply_address("pong")


# -- jobs ------------------------------------------------------------------------------------------


class JobRecord:
    """What the client has heard about one job; the state behind :class:`~clients.client.Job`
    and :class:`~clients.aio.AsyncJob`.

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
        self._take_replies: set[JobReply] = set()

    def add(self, reply: Reply) -> bool:
        """Record one reply; return True once the job has ended.

        UDP may deliver a datagram twice: a ``done`` equal to one already heard (same take,
        same path), and a reply equal to one heard since the last ``done`` (the next take's
        progress may repeat the steps of the one before), are copies and left out; so a copied
        ``done`` never counts as another take, nor a copied step as the next take's.
        """
        if isinstance(reply, JOB_REPLIES) and not self.finished:
            if reply in self.dones or reply in self._take_replies:
                return self.finished
            self._take_replies.add(reply)
            self.history.append(reply)
            if isinstance(reply, Queued):
                self.position = reply.position
            elif isinstance(reply, Done):
                self.dones.append(reply)
                self._take_replies.clear()
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


class Deadlines:
    """The two limits of a job wait: an answer within ``queue_timeout`` of sending, and the
    end within ``timeout`` of starting to wait (``None``: no limit)."""

    def __init__(
        self,
        record: JobRecord,
        not_answering: Callable[[float], DaemonNotAnswering],
        sent_at: float,
        queue_timeout: float | None,
        timeout: float | None,
    ) -> None:
        self._record = record
        self._not_answering = not_answering
        self._queue_timeout = finite(queue_timeout)
        self._timeout = finite(timeout)
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


# -- event streams ---------------------------------------------------------------------------------


class StreamBuffer:
    """Every reply the client receives from its creation on, in order of arrival; the state
    behind :class:`~clients.client.EventStream` and :class:`~clients.aio.AsyncEventStream`.

    Reading ends when ``duration`` seconds have passed since creation, or when the stream or
    the client is closed (after what was buffered before). Replies are buffered for a slow
    reader up to :data:`EVENT_BUFFER`; ``dropped`` counts those that did not fit. Pongs
    answering this client's own pings are left out.
    """

    def __init__(self, session: Session, duration: float | None) -> None:
        self._router = session.router
        self._signal = session.make_signal()
        self._items: deque[Reply] = deque()
        self._left = time_left(duration)
        self._closed = False
        self.dropped = 0
        self._router.listen(self)

    def deliver(self, reply: Reply) -> bool:
        """Reading side: buffer one reply, or count it dropped when the buffer is full."""
        if len(self._items) >= EVENT_BUFFER:
            self.dropped += 1
        else:
            self._items.append(reply)
            self._signal.notify()
        return False

    def close(self) -> None:
        """Stop receiving; a waiting read ends."""
        self._router.unlisten(self)
        self._closed = True
        self._signal.notify()

    def _next(self) -> Flow[Reply | None]:
        """The next reply, or None once the stream has ended."""
        yield from wait_until(self._signal, lambda: bool(self._items) or self._closed, self._left)
        if self._items:
            return self._items.popleft()
        self.close()
        return None


# -- the session -----------------------------------------------------------------------------------


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, Address]:
    """The daemon's socket address, IPv4 first (the daemon listens on 127.0.0.1 by default)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ClientError(f"cannot resolve the daemon's host {host!r}: {exc}") from exc
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


Prelude = tuple[Route, str, Sequence[Any]]
"""A route to add and the request (address, arguments) to send just before another one."""


def _closed_transmit(data: bytes) -> None:
    raise ClientError("the client is not open")


class Session:
    """What one client keeps, whatever its face: where the daemon is, the socket to bind, ids,
    the router, and how to wait (``make_signal``) and send (``transmit``, set by the face once
    its socket is open)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        bind_host: str | None,
        bind_port: int,
        make_signal: SignalFactory,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.make_signal = make_signal
        self.family, self.remote = _resolve(host, port)
        ipv6 = self.family == socket.AF_INET6
        if bind_host is None:
            if is_loopback(self.remote[0]):
                bind_host = "::1" if ipv6 else "127.0.0.1"
            else:
                bind_host = "::" if ipv6 else "0.0.0.0"  # replies come from afar
        self.bind = (bind_host, bind_port)
        self._prefix = os.urandom(3).hex()
        self.router = Router(own_pings=f"{self._prefix}-ping-")
        self._order = threading.Lock()
        self.transmit: Callable[[bytes], None] = _closed_transmit
        self._job_numbers = itertools.count(1)
        self._ping_numbers = itertools.count(1)

    def open_socket(self) -> socket.socket:
        """A UDP socket bound where replies should come back."""
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.bind(self.bind)
        except OSError as exc:
            sock.close()
            raise ClientError(f"cannot bind udp {self.bind[0]}:{self.bind[1]}: {exc}") from exc
        return sock

    def ordered(self) -> threading.Lock:
        """Hold it to add routes and send their requests with no other thread in between: a
        refusal that names only an address goes to the oldest route waiting for one
        (:meth:`Router._targets`), which must then be the request the daemon got first."""
        return self._order

    def send(self, address: str, args: Sequence[Any]) -> None:
        """Encode one message and hand it to the face's socket."""
        data = encode_message(address, args)
        try:
            self.transmit(data)
        except OSError as exc:
            raise ClientError(f"cannot send to {self.host}:{self.port}: {exc}") from exc

    def new_id(self) -> str:
        """A job id no other client picks: this client's random prefix and a count."""
        return f"{self._prefix}-{next(self._job_numbers)}"

    def ping_token(self) -> str:
        """A fresh ping argument, whose pong stays out of the event streams."""
        return f"{self._prefix}-ping-{next(self._ping_numbers)}"

    def not_answering(self, timeout: float, job_id: JobId | None = None) -> DaemonNotAnswering:
        return DaemonNotAnswering(self.host, self.port, timeout, job_id)

    # -- the two kinds of request: with an answer of their own, and confirmed by a ping --------

    def request(
        self,
        address: str,
        args: Sequence[Any],
        answer_at: str,
        match: Callable[[Reply], bool] | None,
        timeout: float | None,
        *,
        then: Callable[[], None] | None = None,
        before: Prelude | None = None,
    ) -> Flow[Reply]:
        """Send, then wait for the reply at ``answer_at`` passing ``match``; raise
        :class:`RequestFailed` on a fail naming ``address``, :class:`DaemonNotAnswering` after
        ``timeout`` seconds (default: the client's). ``then``: see :class:`Answer`. ``before``:
        a route to add and a message to send first, in the same breath (see :meth:`ordered`);
        the caller removes that route."""
        seconds = self.timeout if timeout is None else timeout
        answer = Answer(self.make_signal(), then)
        route = Route(answer, None, answer_at, match, address)
        try:
            with self.ordered():
                if before is not None:
                    self.router.add(before[0])
                self.router.add(route)
                if before is not None:
                    self.send(before[1], before[2])
                self.send(address, args)
            yield from wait_until(answer.signal, lambda: answer.settled, time_left(seconds))
        finally:
            self.router.remove(route)
        reply = answer.reply
        if reply is None:
            if answer.closed:
                raise ClientError("the client was closed while waiting")
            raise self.not_answering(seconds)
        if isinstance(reply, Failed):
            raise RequestFailed(address, reply.code, reply.message)
        return reply

    def ping(
        self,
        timeout: float | None = None,
        then: Callable[[], None] | None = None,
        before: Prelude | None = None,
    ) -> Flow[float]:
        """Round trip to the daemon in seconds; raises :class:`DaemonNotAnswering`. ``then``
        and ``before``: see :meth:`request`."""
        token = self.ping_token()
        started = time.perf_counter()
        yield from self.request(
            request_address("ping"),
            [token],
            _PONG,
            first_arg_is(token),
            timeout,
            then=then,
            before=before,
        )
        return time.perf_counter() - started

    def confirmed(self, address: str, args: Sequence[Any], confirm: bool) -> Flow[None]:
        """Send a request that has no answer of its own. With ``confirm``, ping right after it
        and raise :class:`RequestFailed` if the daemon refused it: the daemon handles one
        socket's messages in order, so its fail comes before the pong."""
        if not confirm:
            self.send(address, args)
            return
        refusal = Answer(self.make_signal())
        route = Route(refusal, request_address=address)

        def accepted() -> None:
            # The pong came: the request was taken. Stop waiting for its refusal before the
            # reading side routes anything else, so a later request's refusal is not taken.
            route.request_address = None

        try:
            # The request and its ping leave together: another thread's request to the same
            # address between them would be answered before this one's pong.
            yield from self.ping(then=accepted, before=(route, address, args))
        finally:
            self.router.remove(route)
        if isinstance(refusal.reply, Failed):
            raise RequestFailed(address, refusal.reply.code, refusal.reply.message)


def first_arg_is(value: Any) -> Callable[[Reply], bool]:
    """A ``match``: replies whose first argument is ``value`` (``/value key …``, a pong)."""
    return lambda reply: bool(reply.args) and reply.args[0] == value
