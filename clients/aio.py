"""The asyncio face of the Python client: :class:`AsyncClient`, :class:`AsyncJob`,
:class:`AsyncEventStream`.

The same commands, replies and errors as the threaded :class:`~clients.client.Client` (they are
defined once, in :mod:`clients.commands` and :mod:`clients.core`); here every command is a
coroutine, a job's ``progress()`` an async iterator, and the socket is read by the event loop
through a datagram endpoint. Use a client from the event loop that opened it. Importing
:mod:`clients.client` does not import this module (nor asyncio) until one of these names is
first used; ``from clients.client import AsyncClient`` and ``from clients.aio import
AsyncClient`` are the same class.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

from .commands import Commands, JobHandle, Progressing, queue_job
from .core import Address, Flow, Router, StreamBuffer, T
from .messages import ClientError, JobId, Reply

__all__ = ["AsyncClient", "AsyncEventStream", "AsyncJob"]

log = logging.getLogger(__name__)


class _LoopSignal:
    """The asyncio face's :class:`~clients.core.Signal`: futures resolved on the event loop."""

    def __init__(self) -> None:
        self.version = 0
        self._futures: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        self.version += 1
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)

    async def until(self, version: int, seconds: float | None) -> None:
        """Return once the version moved past ``version``, or after ``seconds``."""
        if self.version != version:
            return
        future = asyncio.get_running_loop().create_future()
        self._futures.append(future)
        try:
            await asyncio.wait_for(future, seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            if future in self._futures:
                self._futures.remove(future)


async def run_awaiting(flow: Flow[T]) -> T:
    """Drive ``flow`` on the running loop, awaiting at each wait; return what it returns."""
    try:
        wait = next(flow)
        while True:
            await cast(_LoopSignal, wait.signal).until(wait.version, wait.seconds)
            wait = flow.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    finally:
        flow.close()  # a cancelled wait still removes the flow's routes


class AsyncEventStream(StreamBuffer):
    """:class:`~clients.client.EventStream` for asyncio: ``async for reply in stream``;
    ``close()`` ends it."""

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Reply:
        reply = await run_awaiting(self._next())
        if reply is None:
            raise StopAsyncIteration
        return reply

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AsyncJob(JobHandle):
    """:class:`~clients.client.Job` for asyncio: ``await job.wait()``, ``await
    job.wait_all()``, ``await job.cancel()``, ``async for p in job.progress()``."""

    async def _run(self, flow: Flow[T]) -> T:
        return await run_awaiting(flow)

    async def progress(
        self, timeout: float | None = None, *, queue_timeout: float | None = None
    ) -> AsyncIterator[Progressing]:
        """Queued/Started/Progress replies as they come; as :meth:`Job.progress`."""
        next_batch = self._follow(timeout, queue_timeout)
        while (batch := await run_awaiting(next_batch())) is not None:
            for reply in batch:
                yield reply


class _DatagramReader(asyncio.DatagramProtocol):
    """Every datagram's replies go to the router (on the event loop)."""

    def __init__(self, router: Router) -> None:
        self._router = router

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._router.route_datagram(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("receive failed: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._router.close()


class AsyncClient(Commands):
    """:class:`~clients.client.Client` for asyncio, on one datagram endpoint; use it from its
    event loop::

        async with AsyncClient() as client:
            job = await client.generate("dark techno", bars=4, bpm=128)
            async for progress in job.progress():
                ...
            done = await job.wait()

    Same arguments and commands as the threaded client, each a coroutine; the socket is bound
    by :meth:`open` (or ``async with``).
    """

    _make_signal = _LoopSignal

    def _start(self) -> None:
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def local_address(self) -> Address:
        """The (host, port) this client sends from and listens on (once open)."""
        if self._transport is None:
            raise ClientError("the client is not open")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    async def _run(self, flow: Flow[T]) -> T:
        return await run_awaiting(flow)

    def _transmit(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ClientError("the client is not open")
        self._transport.sendto(data, self._session.remote)

    async def open(self) -> AsyncClient:
        """Bind the socket and start reading it on the running loop."""
        if self._transport is None:
            loop = asyncio.get_running_loop()
            sock = self._session.open_socket()
            router = self._session.router
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _DatagramReader(router), sock=sock
            )
            self._transport = transport
            self._session.transmit = self._transmit
        return self

    def close(self) -> None:
        """Close the endpoint; waiting calls raise ClientError and event streams end."""
        if self._transport is not None:
            self._transport.close()
        self._session.router.close()

    async def __aenter__(self) -> AsyncClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def generate(self, prompt: str, *, id: JobId | None = None, **options: Any) -> AsyncJob:
        """Queue a clip and return its :class:`AsyncJob`; as :meth:`Client.generate`."""
        return queue_job(self._session, AsyncJob, prompt, id, options)

    def events(self, duration: float | None = None) -> AsyncEventStream:
        """Every reply from now on; as :meth:`Client.events`. Call it on the event loop."""
        return AsyncEventStream(self._session, duration)
