"""Python client of the musicldm daemon: OSC over UDP, the standard library and python-osc only.

Used by ``musicldm-send`` (:mod:`clients.cli`), by scripts that drive the daemon, and by the
integration tests. It must import in milliseconds: it never imports torch or numpy, starts no
thread until a :class:`Client` is made, and imports ``asyncio`` only when :class:`AsyncClient`
(and its kin) is first used. Of the daemon's package it reads only the wire contract
(:mod:`daemon.wire.contract`, pure data).

This module is the threaded face, and the one import path for everything public::

    from clients.client import Client, AsyncClient, Job, AsyncJob, Done, JobFailed, ...

:class:`Client` reads its UDP socket in a background thread; :class:`~clients.aio.AsyncClient`
reads it through asyncio's datagram endpoint. The daemon answers every request at the address
the request came from, so a client sends from the one socket it listens on. What the two faces
share (typed replies, routing, job records, deadlines, and every command, defined once) lives in
:mod:`clients.core` and :mod:`clients.commands`; the faces differ only in how they wait. The
error tree is drawn in :mod:`clients.core`.

Commands that have no answer of their own (``tempo``, ``trigger``, ``stop``, ...) are confirmed
by default: the client sends a ``/musicldm/ping`` right after them, and since the daemon handles
one socket's messages in order, a refusal (``/musicldm/fail <address> code message``) arrives
before the pong. Pass ``confirm=False`` (or use :meth:`Client.send`) for fire-and-forget.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from . import messages
from .commands import Commands, JobHandle, Progressing, queue_job
from .core import DEFAULT_TIMEOUT, MAX_DATAGRAM, Address, Flow, StreamBuffer, T
from .messages import *  # noqa: F403  (re-exported: this module is the client's import path)
from .messages import ClientError, JobId, Reply

if TYPE_CHECKING:
    from .aio import AsyncClient, AsyncEventStream, AsyncJob

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncJob",
    "Client",
    "EventStream",
    "Job",
]
__all__ += messages.__all__

log = logging.getLogger(__name__)

_ASYNC_NAMES = ("AsyncClient", "AsyncEventStream", "AsyncJob")


def __getattr__(name: str) -> Any:
    """The asyncio face, imported on first use (importing asyncio costs tens of ms)."""
    if name in _ASYNC_NAMES:
        from . import aio

        return getattr(aio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ThreadSignal:
    """The threaded face's :class:`~clients.core.Signal`: a condition variable and a count."""

    def __init__(self) -> None:
        self.version = 0
        self._changed = threading.Condition()

    def notify(self) -> None:
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def block(self, version: int, seconds: float | None) -> None:
        """Return once the version moved past ``version``, or after ``seconds``."""
        with self._changed:
            if self.version == version:
                self._changed.wait(seconds)


def run_blocking(flow: Flow[T]) -> T:
    """Drive ``flow`` in the calling thread, blocking at each wait; return what it returns."""
    with contextlib.closing(flow):  # an interrupted wait still removes the flow's routes
        try:
            wait = next(flow)
            while True:
                cast(_ThreadSignal, wait.signal).block(wait.version, wait.seconds)
                wait = flow.send(None)
        except StopIteration as finished:
            return finished.value  # type: ignore[no-any-return]


class EventStream(StreamBuffer):
    """Every reply the client receives from its creation on, in order of arrival.

    Iterate it (each item is a :data:`Reply`); iteration ends when ``duration`` seconds have
    passed since creation, when the stream or the client is closed. Replies are buffered for a
    slow reader up to a limit; ``dropped`` counts those that did not fit. Pongs answering this
    client's own pings are left out.
    """

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Reply:
        reply = run_blocking(self._next())
        if reply is None:
            raise StopIteration
        return reply

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Job(JobHandle):
    """A handle on one ``/musicldm/generate``: ``wait()``, ``wait_all()``, ``progress()``,
    ``cancel()``; each blocks the calling thread. Replies are recorded by the client's reader
    thread as they come, so the job may be waited for at any time, from any thread, more than
    once."""

    def _run(self, flow: Flow[T]) -> T:
        return run_blocking(flow)

    def progress(
        self, timeout: float | None = None, *, queue_timeout: float | None = None
    ) -> Iterator[Progressing]:
        """Yield the job's :class:`Queued`, :class:`Started` and :class:`Progress` replies as
        they come, from the first; end when every take is done (then :meth:`wait_all` returns
        at once), raise :class:`JobFailed` if it fails. Limits as :meth:`wait`."""
        next_batch = self._follow(timeout, queue_timeout)
        while (batch := run_blocking(next_batch())) is not None:
            yield from batch


class Client(Commands):
    """Talks to the daemon at ``host:port`` from one UDP socket, and hears its replies there.

    ``Client(host, port, *, timeout, bind_host, bind_port)``: see
    :class:`~clients.commands.Commands` for the arguments. A background thread reads the
    socket until :meth:`close`; the client is thread-safe.
    Every command (``ping``, ``status``, ``get``, ``set``, ``cancel``, ``notify``, ``slot``,
    ``trigger``, ``play``, ``stop``, ``morph``, ``tempo``, ``transport``) blocks until it is
    answered or confirmed; see :class:`~clients.commands.Commands`. Use it as a context manager::

        with Client() as client:
            print(client.generate("warm lofi piano", bars=2, bpm=90).wait().path)
    """

    _make_signal = _ThreadSignal

    def _start(self) -> None:
        self._sock = self._session.open_socket()
        self._sock.settimeout(1.0)  # a backstop: close() wakes the reader with a datagram
        self._closing = threading.Event()
        self._session.transmit = self._transmit
        self._reader = threading.Thread(
            target=self._read, name=f"musicldm-client-{self.local_address[1]}", daemon=True
        )
        self._reader.start()

    @property
    def local_address(self) -> Address:
        """The (host, port) this client sends from and listens on."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def _run(self, flow: Flow[T]) -> T:
        return run_blocking(flow)

    def _transmit(self, data: bytes) -> None:
        if self._closing.is_set():
            raise ClientError("the client is closed")
        self._sock.sendto(data, self._session.remote)

    def _read(self) -> None:
        """Reader thread: parse every datagram and route its replies until :meth:`close`."""
        while not self._closing.is_set():
            data = self._receive()
            if data is not None and not self._closing.is_set():
                self._session.router.route_datagram(data)

    def _receive(self) -> bytes | None:
        """Reader thread: one datagram, or None after the backstop timeout or a failure."""
        try:
            return self._sock.recv(MAX_DATAGRAM)
        except TimeoutError:
            return None
        except OSError as exc:
            if not self._closing.is_set():
                # e.g. Windows reports an ICMP "port unreachable" for an earlier send here
                log.debug("receive failed: %s", exc)
            return None

    def generate(self, prompt: str, *, id: JobId | None = None, **options: Any) -> Job:
        """Queue a clip and return its :class:`Job` at once.

        ``options`` are the contract's generate options (``bars``, ``beats``, ``bpm``,
        ``seconds``, ``seed``, ``steps``, ``guidance``, ``negative``, ``takes``, ``scheduler``,
        ``preset``, ``loop``, ``grid``, ``key``, ``retake``, ``name``, ``slot``, ``play``,
        ``priority``, and audio in: ``from_`` (``from`` on the wire), ``strength``,
        ``repaint``, ``extend``, ``like``, ``like_weight``, ``blend``, ``morph_to``,
        ``morph``, ``morph_seed``); ``None`` values are left out, ``True``/``False`` travel
        as 1/0, and a list for ``blend`` (``["warm pads:0.3", ("vinyl hiss", 0.2)]``) goes
        out as one ``blend`` pair per item. Without ``id`` the client picks a unique text id.
        The daemon validates everything; a refusal surfaces as :class:`JobFailed`.
        """
        return queue_job(self._session, Job, prompt, id, options)

    def events(self, duration: float | None = None) -> EventStream:
        """A stream of every reply from now on (see :class:`EventStream`), for ``duration``
        seconds or until closed. Combine with :meth:`notify` to hear other clients' jobs."""
        return EventStream(self._session, duration)

    def close(self) -> None:
        """Stop the reader thread and close the socket; waiting calls raise ClientError and
        event streams end. Safe to call twice."""
        if self._closing.is_set():
            return
        self._closing.set()
        host, port = self.local_address
        if host in ("0.0.0.0", "::"):
            host = "::1" if self._session.family == socket.AF_INET6 else "127.0.0.1"
        with contextlib.suppress(OSError):
            self._sock.sendto(b"", (host, port))  # wake the reader at once
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=2.0)
        self._sock.close()
        self._session.router.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
