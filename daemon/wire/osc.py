"""The OSC front-end over UDP: one socket, a reader, a handler and a sender thread.

:class:`OscServer` owns the socket. Its **reader** thread only reads datagrams, drops those from
outside the allow-list (counted in ``dropped``) and queues the rest in a bounded inbox; when
the inbox is full a datagram is dropped and counted (``overflowed``), so the reader never
waits and a burst cannot overflow the kernel's receive buffer while Python parses (the buffer
itself is enlarged to :data:`RECEIVE_BUFFER_BYTES` where the OS allows). Its **handler** thread
parses each datagram (messages, and bundles nested at most :data:`MAX_BUNDLE_DEPTH` deep, in the
order they appear; time tags are ignored) and hands every message to the handler; a message
with a type tag it cannot read reaches the handler as one
:class:`~daemon.wire.requests.UnreadableArgument`, so that it fails clearly. Nothing a
client sends can stop either loop: unparsable packets are counted in ``malformed`` and logged at
most once a second, and a handler's exception is logged the same way, never raised. Handlers
only validate and enqueue; they never wait on the model.

:class:`Replier` sends every reply to the request's sender, to every address registered with
``/musicldm/notify`` and to the configured reply targets, each endpoint once, from the same
socket the daemon listens on (so clients that listen on their sending port, like python-osc
scripts and SuperCollider, hear back). :meth:`Replier.send` never blocks for long: it puts the
datagrams on one ordered outbox, in call order, under one lock, and one **sender** thread sends
them. So every recipient gets the replies in the order they were produced, whichever threads
produced them. Registrations are bounded (:data:`NOTIFY_PER_HOST`, :data:`NOTIFY_TOTAL`) and
expire :data:`NOTIFY_EXPIRY_SECONDS` after the registrant's host was last heard from: any
datagram from that host (a trigger, a ping, notify 1 again) renews them, so a patch in use never
goes deaf, while one that is gone frees its places.

Threads: any thread may call :meth:`Replier.send`, :meth:`Replier.register` and the counters;
:meth:`OscServer.start`, :meth:`~OscServer.stop` and :meth:`~OscServer.close` belong to the thread
that runs the daemon's lifecycle.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.parsing import osc_types

from daemon.logtext import printable
from daemon.wire.addresses import AllowList, Network, endpoint_key, parse_ip
from daemon.wire.contract import Double, Int64, Rgba, Typed
from daemon.wire.requests import UnreadableArgument
from musicldm_core.errors import BadRequest

__all__ = [
    "INBOX_DATAGRAMS",
    "MAX_BUNDLE_DEPTH",
    "NOTIFY_EXPIRY_SECONDS",
    "NOTIFY_PER_HOST",
    "NOTIFY_TOTAL",
    "OUTBOX_DATAGRAMS",
    "RECEIVE_BUFFER_BYTES",
    "Address",
    "NotifyLimit",
    "OscServer",
    "Replier",
    "build_message",
]

log = logging.getLogger(__name__)

Address = tuple[str, int]
Handler = Callable[[str, list[Any], Address], None]

RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
"""The socket receive buffer asked for (SO_RCVBUF); the OS may grant less (Linux caps it at
``net.core.rmem_max``). What was granted is logged at start and kept in
:attr:`OscServer.receive_buffer_bytes`."""

INBOX_DATAGRAMS = 4096
INBOX_BYTES = 16 * 1024 * 1024
"""Datagrams read but not yet parsed, at most this many and this many bytes; beyond, the reader
drops the datagram (``overflowed``) rather than wait."""

MAX_BUNDLE_DEPTH = 8
"""Bundles nested deeper than this are malformed (Max, Pd and liblo nest one or two deep)."""

OUTBOX_DATAGRAMS = 8192
"""Reply datagrams waiting to be sent. Beyond half of it ``/musicldm/progress`` is dropped (a
later one says the same, only newer); beyond all of it any reply is dropped, counted in
:attr:`Replier.overflowed` and logged. The sender empties it at socket speed, so this is only
reached if sending stalls."""

NOTIFY_PER_HOST = 8
NOTIFY_TOTAL = 64
NOTIFY_EXPIRY_SECONDS = 3600.0
"""``/musicldm/notify`` bounds: at most 8 registered ports per host and 64 in all; a
registration lapses 10 minutes after it was last made (``/musicldm/notify 1`` again renews)."""

_DROPPABLE = frozenset({"/musicldm/progress"})
_BUNDLE = b"#bundle\x00"
_BUNDLE_HEADER = 16  # "#bundle\0" and the 8-byte time tag
_SEND_TIMEOUT = 0.2  # seconds the sender waits on one full socket buffer before it moves on
_ALLOW_CACHE = 1024  # sender hosts whose allow-list answer is remembered


def build_message(address: str, args: Sequence[Any]) -> bytes:
    """Encode one OSC message; ints as ``i``, floats as ``f``, text as ``s``; a
    :class:`~daemon.wire.contract.Typed` argument with its own tag (the echo of a ping)."""
    builder = OscMessageBuilder(address=address)
    for arg in args:
        if isinstance(arg, Typed):
            builder.add_arg(arg.value, arg.tag)
        elif isinstance(arg, bool):
            builder.add_arg(int(arg), OscMessageBuilder.ARG_TYPE_INT)
        elif isinstance(arg, int):
            kind = (
                OscMessageBuilder.ARG_TYPE_INT
                if -(2**31) <= arg < 2**31
                else OscMessageBuilder.ARG_TYPE_INT64
            )
            builder.add_arg(arg, kind)
        elif isinstance(arg, float):
            builder.add_arg(arg, OscMessageBuilder.ARG_TYPE_FLOAT)
        else:
            builder.add_arg(str(arg), OscMessageBuilder.ARG_TYPE_STRING)
    return builder.build().dgram


class NotifyLimit(BadRequest):
    """A ``/musicldm/notify 1`` beyond :data:`NOTIFY_PER_HOST` or :data:`NOTIFY_TOTAL`."""


class _RateLimitedLog:
    """Log a repeating problem at most once per ``interval`` seconds, counting the rest."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last = -float("inf")
        self._suppressed = 0
        self._lock = threading.Lock()

    def _due(self) -> int | None:
        """How many were suppressed since the last line, or None while it is too soon."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                self._suppressed += 1
                return None
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
            return suppressed

    def warning(self, message: str, *args: Any) -> None:
        self._log(log.warning, message, args)

    def exception(self, message: str, *args: Any) -> None:
        """Like :meth:`warning`, at error level with the traceback being handled."""
        self._log(log.exception, message, args)

    def _log(self, emit: Callable[..., None], message: str, args: tuple[Any, ...]) -> None:
        suppressed = self._due()
        if suppressed is None:
            return
        if suppressed:
            message += f" ({suppressed} more like it not logged)"
        emit(message, *args)


class Replier:
    """Routes replies and events in order, through one sender thread; safe from any thread.

    ``clock`` (seconds, monotonic) is for tests of registration expiry.
    """

    def __init__(
        self,
        sock: socket.socket,
        targets: Iterable[Address] = (),
        *,
        capacity: int = OUTBOX_DATAGRAMS,
        notify_per_host: int = NOTIFY_PER_HOST,
        notify_total: int = NOTIFY_TOTAL,
        notify_expiry_seconds: float = NOTIFY_EXPIRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sock = sock
        self._ipv6 = sock.family == socket.AF_INET6
        self.targets: tuple[Address, ...] = tuple(dict.fromkeys(endpoint_key(t) for t in targets))
        self.capacity = capacity
        self.notify_per_host = notify_per_host
        self.notify_total = notify_total
        self.notify_expiry_seconds = notify_expiry_seconds
        self._clock = clock
        self._notify: dict[Address, float] = {}  # endpoint → when it lapses (clock seconds)
        # _order: held while recipients are chosen and datagrams queued, so the outbox is in
        # call order; ordered() lets a caller hold it across "make visible, then announce".
        self._order = threading.RLock()
        # _ready guards the outbox and the sender's state (taken inside _order, never around it)
        self._ready = threading.Condition(threading.Lock())
        self._outbox: deque[tuple[bytes, Address, str]] = deque()
        self._busy = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._overflow_log = _RateLimitedLog()
        self.sent = 0
        """Datagrams handed to the socket."""
        self.overflowed = 0
        """Datagrams dropped because the outbox was full (or closed)."""

    # -- registrations -----------------------------------------------------------------------

    def register(self, address: Address) -> None:
        """Send every later reply and event to ``address`` too, for the next
        ``notify_expiry_seconds``; registering again renews. Raises :class:`NotifyLimit`
        (``bad_request``) when ``address``'s host has ``notify_per_host`` registrations already,
        or when ``notify_total`` are registered."""
        key = endpoint_key(address)
        with self._order:
            now = self._clock()
            self._expire(now)
            if key not in self._notify:
                host = key[0]
                from_host = sum(1 for other, _ in self._notify if other == host)
                bounds = (
                    f"at most {self.notify_per_host} per host and {self.notify_total} in all; "
                    "unregister one with /musicldm/notify 0 PORT, or wait until one lapses "
                    f"({self.notify_expiry_seconds:g} s after its host was last heard from)"
                )
                if from_host >= self.notify_per_host:
                    raise NotifyLimit(
                        f"/musicldm/notify: {host} has {from_host} ports registered already, "
                        f"{bounds}",
                        key="notify",
                    )
                if len(self._notify) >= self.notify_total:
                    raise NotifyLimit(
                        f"/musicldm/notify: {len(self._notify)} ports are registered already, "
                        f"{bounds}",
                        key="notify",
                    )
            self._notify[key] = now + self.notify_expiry_seconds

    def heard_from(self, host: str) -> None:
        """A datagram came from ``host``: its registrations stay for another
        ``notify_expiry_seconds``."""
        key_host = endpoint_key((host, 0))[0]
        with self._order:
            if not self._notify:
                return
            until = self._clock() + self.notify_expiry_seconds
            for key in self._notify:
                if key[0] == key_host:
                    self._notify[key] = until

    def unregister(self, address: Address) -> None:
        with self._order:
            self._notify.pop(endpoint_key(address), None)

    @property
    def registered(self) -> tuple[Address, ...]:
        """The registrations that have not lapsed, sorted."""
        with self._order:
            self._expire(self._clock())
            return tuple(sorted(self._notify))

    def _expire(self, now: float) -> None:
        lapsed = [key for key, until in self._notify.items() if until <= now]
        for key in lapsed:
            del self._notify[key]
            log.info("notify registration of %s:%s lapsed (not renewed)", *key)

    # -- sending -----------------------------------------------------------------------------

    def recipients(self, to: Iterable[Address] = ()) -> list[Address]:
        """``to`` plus registrants plus reply targets, each endpoint once, in that order.

        ``to`` may hold several origins (the sender of a request, the client that defined a
        slot, …) and repeat endpoints, in any spelling (``::ffff:127.0.0.1`` is
        ``127.0.0.1``): each gets the reply once. The addresses are spelled for this socket.
        """
        with self._order:
            self._expire(self._clock())
            everyone = [*(endpoint_key(a) for a in to), *sorted(self._notify), *self.targets]
        return [self._spelled(key) for key in dict.fromkeys(everyone)]

    def _spelled(self, key: Address) -> Address:
        """An IPv4 endpoint as an IPv6 socket must be given it (``::ffff:a.b.c.d``)."""
        host, port = key
        if self._ipv6 and "%" not in host and ":" not in host and parse_ip(host) is not None:
            return f"::ffff:{host}", port
        return key

    def send(self, address: str, args: Sequence[Any], *, to: Iterable[Address] = ()) -> None:
        """Queue ``address args`` for ``to``, the registrants and the reply targets.

        Returns at once; the sender thread sends in the order of the calls. Datagrams that do
        not fit in the outbox are dropped, counted and logged (see :data:`OUTBOX_DATAGRAMS`).
        """
        try:
            data = build_message(address, args)
        except (BuildError, ValueError, TypeError, OverflowError):
            log.exception("could not encode reply %s %s", printable(address), printable(args))
            return
        limit = self.capacity // 2 if address in _DROPPABLE else self.capacity
        lost = 0
        with self._order:
            recipients = self.recipients(to)
            with self._ready:
                if self._closing:
                    lost = len(recipients)
                else:
                    for recipient in recipients:
                        if len(self._outbox) >= limit:
                            lost += 1
                        else:
                            self._outbox.append((data, recipient, address))
                    self._ready.notify()
                    if self._thread is None:
                        self._thread = threading.Thread(
                            target=self._run, name="osc-send", daemon=True
                        )
                        self._thread.start()
                self.overflowed += lost
        if lost:
            self._overflow_log.warning(
                "reply %s not sent to %d recipients: %s",
                printable(address),
                lost,
                "the daemon is closing" if self._closing else "too many replies waiting",
            )

    @contextlib.contextmanager
    def ordered(self) -> Iterator[None]:
        """Hold back every other thread's :meth:`send` while the block runs.

        For "make work visible to another thread, then announce it": inside the block, the
        announcement is queued before anything the other thread sends about that work. Keep the
        block short (no I/O): other threads' sends wait for it.
        """
        with self._order:
            yield

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until everything queued so far is sent; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while self._outbox or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._ready.wait(remaining)
        return True

    def close(self, timeout: float = 2.0) -> bool:
        """Send what is queued (waiting up to ``timeout``), then stop the sender; later sends
        are dropped. True if everything queued was sent."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._ready:
            left = len(self._outbox)
            self._outbox.clear()
            self.overflowed += left
        if left:
            log.warning("%d replies were not sent before the socket closed", left)
        return left == 0 and (thread is None or not thread.is_alive())

    def _run(self) -> None:
        while True:
            with self._ready:
                self._busy = False
                self._ready.notify_all()  # flush() waits for an empty outbox and no batch
                while not self._outbox and not self._closing:
                    self._ready.wait()
                if not self._outbox:
                    return  # closing, and everything was sent
                batch = list(self._outbox)
                self._outbox.clear()
                self._busy = True
            for data, recipient, address in batch:
                try:
                    self._sock.sendto(data, recipient)
                    self.sent += 1
                except OSError as exc:  # nobody listening there, the network is gone, closed
                    log.debug("reply %s to %s:%s not sent: %s", address, *recipient, exc)


class OscServer:
    """Listens on UDP ``host:port`` and dispatches every OSC message to ``handler``.

    ``handler(address, args, sender)`` runs on the handler thread, one message at a time, in
    arrival order; ``allow`` holds client networks (CIDR texts) accepted besides loopback.
    """

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        allow: Sequence[str] = (),
        reply_targets: Iterable[Address] = (),
        receive_buffer_bytes: int = RECEIVE_BUFFER_BYTES,
        inbox_datagrams: int = INBOX_DATAGRAMS,
        replier_options: dict[str, Any] | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6 and parse_ip(host) == parse_ip("::"):
                # the IPv6 wildcard takes IPv4 clients too (as ::ffff:a.b.c.d), on every OS
                with contextlib.suppress(OSError, AttributeError):
                    self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.receive_buffer_bytes = self._enlarge_receive_buffer(receive_buffer_bytes)
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise OSError(
                exc.errno, f"cannot listen on udp {host}:{port}: {exc.strerror or exc}"
            ) from exc
        self.sock.settimeout(_SEND_TIMEOUT)  # also how often the reader looks at its stop flag
        self.host, self.port = self.sock.getsockname()[:2]
        self.handler = handler
        self.allow_list = AllowList(allow)
        self.replier = Replier(self.sock, reply_targets, **(replier_options or {}))
        self.received = 0
        """Datagrams read from the socket."""
        self.dropped = 0
        """Datagrams from hosts outside the allow-list."""
        self.overflowed = 0
        """Datagrams dropped because the inbox was full."""
        self.malformed = 0
        """Datagrams that were not OSC (or nested bundles too deep)."""
        self.inbox_datagrams = inbox_datagrams
        self._inbox: deque[tuple[bytes, Address]] = deque()
        self._inbox_bytes = 0
        self._inbox_ready = threading.Condition(threading.Lock())
        self._allowed_hosts: dict[str, bool] = {}
        self._dropped_log = _RateLimitedLog()
        self._overflow_log = _RateLimitedLog()
        self._malformed_log = _RateLimitedLog()
        self._error_log = _RateLimitedLog()
        self._stop = threading.Event()
        self._stop_handling = False
        self._reader = threading.Thread(target=self._read, name="osc-recv", daemon=True)
        self._handler_thread = threading.Thread(target=self._handle, name="osc", daemon=True)

    @property
    def allow(self) -> tuple[Network, ...]:
        return self.allow_list.networks

    def _enlarge_receive_buffer(self, wanted: int) -> int:
        """Ask for a ``wanted``-byte receive buffer; log and return what the OS granted."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
        granted = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if granted < wanted:
            log.info(
                "UDP receive buffer: %d KiB (asked for %d KiB; the OS caps it, e.g. Linux's "
                "net.core.rmem_max); a burst of requests beyond it is lost",
                granted // 1024,
                wanted // 1024,
            )
        else:
            log.debug("UDP receive buffer: %d KiB", granted // 1024)
        return granted

    def start(self) -> None:
        self._handler_thread.start()
        self._reader.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading; handle what was already read (up to ``timeout``), then stop handling.

        The socket stays open for replies until :meth:`close`.
        """
        self._stop.set()
        me = threading.current_thread()
        if self._reader.is_alive() and me is not self._reader:
            self._reader.join(timeout)
        with self._inbox_ready:
            self._stop_handling = True
            self._inbox_ready.notify_all()
        if self._handler_thread.is_alive() and me is not self._handler_thread:
            self._handler_thread.join(timeout)
            if self._handler_thread.is_alive():
                log.warning("the OSC handler did not finish within %.1f s", timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Stop, send the replies still queued (up to ``timeout``), close the socket."""
        self.stop(timeout)
        self.replier.close(timeout)
        self.sock.close()

    def allowed(self, host: str) -> bool:
        """Loopback always; other senders only from the allow-list's networks."""
        return self.allow_list.allows(host)

    # -- the reader: read, check the sender, queue; nothing slow --------------------------------

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                # e.g. an ICMP "port unreachable" for an earlier reply on some systems
                log.debug("receive failed: %s", exc)
                continue
            self.received += 1
            host = sender[0]
            allowed = self._allowed_hosts.get(host)
            if allowed is None:
                if len(self._allowed_hosts) >= _ALLOW_CACHE:
                    self._allowed_hosts.clear()
                allowed = self._allowed_hosts[host] = self.allow_list.allows(host)
            if not allowed:
                self.dropped += 1
                self._dropped_log.warning("dropped a packet from %s (not in --allow)", host)
                continue
            with self._inbox_ready:
                full = (
                    len(self._inbox) >= self.inbox_datagrams
                    or self._inbox_bytes + len(data) > INBOX_BYTES
                )
                if not full:
                    self._inbox.append((data, (host, sender[1])))
                    self._inbox_bytes += len(data)
                    self._inbox_ready.notify()
            if full:
                self.overflowed += 1
                self._overflow_log.warning(
                    "dropped a packet from %s:%s: %d packets are waiting to be handled",
                    host,
                    sender[1],
                    len(self._inbox),
                )

    # -- the handler: parse and dispatch, one datagram at a time --------------------------------

    def _handle(self) -> None:
        while True:
            with self._inbox_ready:
                while not self._inbox and not self._stop_handling:
                    self._inbox_ready.wait()
                if not self._inbox:
                    return  # stopped, and everything read was handled
                data, sender = self._inbox.popleft()
                self._inbox_bytes -= len(data)
            try:
                self._datagram(data, sender)
            except Exception:  # the loop must survive anything a packet can cause
                self._error_log.exception("unexpected error handling a packet from %s:%s", *sender)

    def _datagram(self, data: bytes, sender: Address) -> None:
        self.replier.heard_from(sender[0])
        try:
            messages = _messages(data)
        except Exception as exc:  # anything the parser raises means "not OSC"
            self.malformed += 1
            self._malformed_log.warning(
                "ignored a malformed OSC packet (%d bytes) from %s:%s: %s",
                len(data),
                *sender,
                printable(str(exc) or type(exc).__name__),
            )
            return
        for address, args in messages:
            try:
                self.handler(address, args, sender)
            except Exception:
                self._error_log.exception(
                    "error handling %s from %s:%s", printable(address), *sender
                )


class _Malformed(ValueError):
    """A datagram that is not an OSC message or bundle we accept."""


def _messages(data: bytes, depth: int = 0) -> list[tuple[str, list[Any]]]:
    """The messages of one packet as ``(address, arguments)``, bundles unpacked in order, at
    most :data:`MAX_BUNDLE_DEPTH` bundles deep. Raises on anything that is not OSC.

    A message with a type tag python-osc has no reader for (``c``, ``S``, ``I``, a typo) keeps
    its address and gets one :class:`~daemon.wire.requests.UnreadableArgument` as its
    arguments, so the request fails with a ``bad_request`` naming the tag. python-osc itself
    would skip such a tag without skipping its bytes and so misread every argument after it
    (``,ci`` 'A' 7 arrives as 65), and log a line per packet past our rate limit.
    """
    if data.startswith(b"/"):
        unreadable = _unreadable(data)
        if unreadable is not None:
            return [unreadable]
        message = OscMessage(data)
        return [(message.address, _arguments(message))]
    if not data.startswith(_BUNDLE):
        raise _Malformed("neither an OSC message (starts with /) nor a bundle (#bundle)")
    if depth >= MAX_BUNDLE_DEPTH:
        raise _Malformed(f"bundles nested more than {MAX_BUNDLE_DEPTH} deep")
    if len(data) < _BUNDLE_HEADER:
        raise _Malformed("a bundle shorter than its header")
    messages: list[tuple[str, list[Any]]] = []
    index = _BUNDLE_HEADER
    while index < len(data):
        size = int.from_bytes(data[index : index + 4], "big", signed=True)
        index += 4
        if size <= 0 or index + size > len(data):
            raise _Malformed(f"a bundle element of {size} bytes where {len(data) - index} remain")
        messages += _messages(data[index : index + size], depth + 1)
        index += size
    return messages


_READ_TAGS = frozenset("ihfdsbrmtTFN")  # the type tags python-osc reads a value for
_READABLE_TAGS = _READ_TAGS | frozenset("[]")


def _unreadable(data: bytes) -> tuple[str, list[Any]] | None:
    """``(address, [UnreadableArgument])`` when the message has a type tag outside
    :data:`_READABLE_TAGS`; None when it has none (or is malformed, which python-osc then
    reports)."""
    try:
        address, index = osc_types.get_string(data, 0)
        if index >= len(data):
            return None
        tags, _ = osc_types.get_string(data, index)
    except osc_types.ParseError:
        return None
    if not tags.startswith(","):
        return None
    position = 0
    for tag in tags[1:]:
        if tag not in _READABLE_TAGS:
            return address, [UnreadableArgument(position + 1, tag)]
        if tag not in "[]":
            position += 1
    return None


_RETAGGED = {"d": Double, "h": Int64, "r": Rgba}


def _arguments(message: OscMessage) -> list[Any]:
    """The message's arguments as python-osc reads them, plus what its Python types lose: a
    double (``d``) is a :class:`~daemon.wire.contract.Double`, an int64 (``h``) an
    :class:`~daemon.wire.contract.Int64`, a colour (``r``) an
    :class:`~daemon.wire.contract.Rgba`. They behave as float and int everywhere; an echo
    (``/musicldm/ping``) sends each back with its own tag."""
    params = list(message.params)
    data = message.dgram
    try:
        _, index = osc_types.get_string(data, 0)
        if index >= len(data):
            return params  # no type tags: no arguments
        tags, _ = osc_types.get_string(data, index)
        return _retag(tags[1:], params)
    except (osc_types.ParseError, StopIteration, TypeError):
        return params  # python-osc read it; keep what it read


def _retag(tags: str, params: list[Any]) -> list[Any]:
    """``params`` (python-osc's values, arrays as lists) with the tags of :data:`_RETAGGED`
    applied; tags python-osc skips (``c``, ``I``, …) have no value and are skipped here too."""
    sources = [iter(params)]
    results: list[list[Any]] = [[]]
    for tag in tags:
        if tag == "[":
            sources.append(iter(next(sources[-1])))
            results.append([])
        elif tag == "]":
            sources.pop()
            array = results.pop()
            results[-1].append(array)
        elif tag in _READ_TAGS:
            value = next(sources[-1])
            kind = _RETAGGED.get(tag)
            results[-1].append(kind(value) if kind is not None else value)
    return results[0]
