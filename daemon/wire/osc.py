"""The OSC front-end over UDP: one socket, one listening thread, replies routed per the contract.

:class:`OscServer` receives datagrams, drops those from outside the allow-list (counted), parses
OSC messages and bundles with python-osc, and hands each message to a handler. Nothing a client
sends can stop the loop: unparsable packets are counted and logged at most once a second, and
a handler's exception is logged, never raised. Handlers only validate and enqueue; they never
wait on the model.

:class:`Replier` sends every reply to the request's sender, to every address registered with
``/musicldm/notify`` and to the configured reply targets, each address once, from the same
socket the daemon listens on (so clients that listen on their sending port, like python-osc
scripts and SuperCollider, hear back).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.osc_packet import OscPacket, ParseError

__all__ = ["Address", "OscServer", "Replier", "build_message"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
Handler = Callable[[str, list[Any], Address], None]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def build_message(address: str, args: Sequence[Any]) -> bytes:
    """Encode one OSC message; ints as ``i``, floats as ``f``, text as ``s``."""
    builder = OscMessageBuilder(address=address)
    for arg in args:
        if isinstance(arg, bool):
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


class _RateLimitedLog:
    """Log a repeating problem at most once per ``interval`` seconds, counting the rest."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        if suppressed:
            message += f" ({suppressed} more like it not logged)"
        log.warning(message, *args)


class Replier:
    """Routes replies and events; safe to call from any thread."""

    def __init__(self, sock: socket.socket, targets: Iterable[Address] = ()) -> None:
        self._sock = sock
        self.targets: tuple[Address, ...] = tuple(targets)
        self._notify: set[Address] = set()
        self._lock = threading.Lock()
        self.sent = 0

    def register(self, address: Address) -> None:
        with self._lock:
            self._notify.add(address)

    def unregister(self, address: Address) -> None:
        with self._lock:
            self._notify.discard(address)

    @property
    def registered(self) -> tuple[Address, ...]:
        with self._lock:
            return tuple(sorted(self._notify))

    def recipients(self, to: Iterable[Address] = ()) -> list[Address]:
        """``to`` plus registrants plus reply targets, each once, in that order."""
        with self._lock:
            everyone = [*to, *sorted(self._notify), *self.targets]
        return list(dict.fromkeys(everyone))

    def send(self, address: str, args: Sequence[Any], *, to: Iterable[Address] = ()) -> None:
        """Send ``address args`` to ``to``, the registrants and the reply targets."""
        try:
            data = build_message(address, args)
        except (BuildError, ValueError, TypeError):
            log.exception("could not encode reply %s %r", address, args)
            return
        for recipient in self.recipients(to):
            try:
                self._sock.sendto(data, recipient)
                self.sent += 1
            except OSError as exc:  # nobody listening there, or the network is gone: go on
                log.debug("reply %s to %s:%s not sent: %s", address, *recipient, exc)


class OscServer:
    """Listens on UDP ``host:port`` in a background thread and dispatches every OSC message."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        allow: Sequence[str] = (),
        reply_targets: Iterable[Address] = (),
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise OSError(
                exc.errno, f"cannot listen on udp {host}:{port}: {exc.strerror or exc}"
            ) from exc
        self.sock.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()[:2]
        self.handler = handler
        self.allow: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in allow
        )
        self.replier = Replier(self.sock, reply_targets)
        self.received = 0
        self.dropped = 0
        self.malformed = 0
        self._bad_packets = _RateLimitedLog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="osc", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; the socket stays open for replies until :meth:`close`."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)

    def close(self) -> None:
        self.stop()
        self.sock.close()

    def allowed(self, host: str) -> bool:
        """Loopback always; other senders only from the allow-list's networks."""
        try:
            ip = ipaddress.ip_address(host.split("%", maxsplit=1)[0])
        except ValueError:
            return False
        if ip.is_loopback:
            return True
        return any(ip in network for network in self.allow)

    def _run(self) -> None:
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
            try:
                self._datagram(data, (sender[0], sender[1]))
            except Exception:  # the loop must survive anything a packet can cause
                log.exception("unexpected error handling a packet from %s:%s", *sender[:2])

    def _datagram(self, data: bytes, sender: Address) -> None:
        self.received += 1
        if not self.allowed(sender[0]):
            self.dropped += 1
            self._bad_packets.warning("dropped a packet from %s (not in --allow)", sender[0])
            return
        try:
            packet = OscPacket(data)
        except (ParseError, ValueError, IndexError, TypeError, OverflowError) as exc:
            self.malformed += 1
            self._bad_packets.warning(
                "ignored a malformed OSC packet (%d bytes) from %s:%s: %s", len(data), *sender, exc
            )
            return
        for timed in packet.messages:
            message = timed.message
            self.handler(message.address, list(message.params), sender)
