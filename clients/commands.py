"""Every command of the OSC contract, defined once for both faces of the client.

Each command is one method of :class:`Commands` that says what the request sends (its address
from :data:`daemon.wire.contract.ADDRESSES` and its arguments) and what answers it: a reply of
its own (``ping``, ``status``, ``get``) or, for the requests that have none, the ``ping`` that
confirms them (a refusal arrives before the pong). The method returns a :data:`~.core.Flow`;
:class:`flow_method` turns it into a method of the face that inherits it: blocking on
:class:`~clients.client.Client`, awaitable on :class:`~clients.aio.AsyncClient`. So is each
way of waiting for a job (:class:`JobHandle`). ``generate`` is one function too
(:func:`queue_job`); each face only picks its kind of job handle.

Used by :mod:`clients.client` and :mod:`clients.aio`; it starts no thread and imports no
asyncio.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from daemon.wire.contract import JobId, normalize_id
from musicldm_core.errors import BadRequest

from .core import (
    DEFAULT_TIMEOUT,
    Deadlines,
    Flow,
    JobRecord,
    Route,
    Session,
    Signal,
    finite,
    first_arg_is,
    wait_until,
)
from .messages import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ClientError,
    DaemonNotAnswering,
    Done,
    Progress,
    Queued,
    Reply,
    RequestFailed,
    Started,
    option_args,
    parse_status,
    reply_address,
    request_address,
)

T = TypeVar("T")
P = ParamSpec("P")

Progressing = Queued | Started | Progress
"""The replies a job's ``progress()`` yields."""


class _Blocking(Protocol):
    def _run(self, flow: Flow[T]) -> T: ...


class _Awaiting(Protocol):
    def _run(self, flow: Flow[T]) -> Coroutine[Any, Any, T]: ...


class flow_method(Generic[P, T]):  # noqa: N801 (a decorator, named like one)
    """Decorator: a method that returns a :data:`~.core.Flow` becomes, on a face, a method that
    runs it with the face's ``_run``: ``T`` on a blocking face, an awaitable of ``T`` on an
    asyncio one. The docstring and the arguments are the flow method's."""

    def __init__(self, define: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        self._define = define
        self.__doc__ = define.__doc__
        self.__name__ = define.__name__
        self.__qualname__ = define.__qualname__
        signature = inspect.signature(define)
        parameters = list(signature.parameters.values())[1:]  # without self
        self._signature = signature.replace(
            parameters=parameters, return_annotation=inspect.Signature.empty
        )
        self.__signature__ = signature.replace(return_annotation=inspect.Signature.empty)

    def __call__(self, face: Any, /, *args: P.args, **kwargs: P.kwargs) -> Any:
        """``Client.tempo(client, 120)``: as ``client.tempo(120)``."""
        return face._run(self._define(face, *args, **kwargs))

    @overload
    def __get__(self, face: None, owner: type) -> flow_method[P, T]: ...
    @overload
    def __get__(self, face: _Awaiting, owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, face: _Blocking, owner: type) -> Callable[P, T]: ...
    def __get__(self, face: Any, owner: type) -> Any:
        if face is None:
            return self
        define = self._define

        def bound(*args: Any, **kwargs: Any) -> Any:
            return face._run(define(face, *args, **kwargs))

        bound.__name__, bound.__qualname__ = self.__name__, self.__qualname__
        bound.__doc__ = self.__doc__
        bound.__signature__ = self._signature  # type: ignore[attr-defined]  # help() shows it
        return bound


class Commands:
    """The contract's requests as methods, each defined here once. A face subclasses it with
    ``_make_signal`` (how its flows wait), ``_run`` (how it drives a flow) and ``_start`` (what
    it opens at once).

    ``timeout`` is how long, in seconds, to wait for the daemon's first answer to a request
    before raising :class:`DaemonNotAnswering`. The socket binds ``bind_host:bind_port``
    (default: an ephemeral port on loopback when the daemon is on loopback, else on every
    interface).
    """

    _make_signal: ClassVar[type[Signal]]

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        bind_host: str | None = None,
        bind_port: int = 0,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            # nan would make every wait endless, 0 or less every request fail at once
            raise ClientError(f"timeout must be a number of seconds above 0, got {timeout!r}")
        self.host = host
        """The daemon's host, as given."""
        self.port = port
        """The daemon's UDP port."""
        self.timeout = timeout
        """Seconds to wait for the daemon's first answer to a request."""
        self._session = Session(
            host,
            port,
            timeout=timeout,
            bind_host=bind_host,
            bind_port=bind_port,
            make_signal=self._make_signal,
        )
        self._start()

    def _start(self) -> None:
        """Open what the face needs at once (the threaded face: its socket and reader)."""

    def send(self, address: str, *args: Any) -> None:
        """Send one OSC message to the daemon and return at once (no answer is awaited).

        Python ints travel as OSC ints, floats as floats, text as strings.
        """
        self._session.send(address, args)

    @flow_method
    def ping(self, timeout: float | None = None) -> Flow[float]:
        """Round trip to the daemon in seconds; raises :class:`DaemonNotAnswering`."""
        return self._session.ping(timeout)

    @flow_method
    def status(self, timeout: float | None = None) -> Flow[dict[str, Any]]:
        """The daemon's ``/musicldm/status.reply`` as a dict (at least ``queued running
        device model bpm voices version``)."""
        reply = yield from self._session.request(
            request_address("status"), [], reply_address("status.reply"), None, timeout
        )
        return parse_status(reply.args)

    @flow_method
    def get(self, key: str, timeout: float | None = None) -> Flow[Any]:
        """The value a later request would use for option ``key`` (or ``bpm``, ``version``)."""
        reply = yield from self._session.request(
            request_address("get"), [key], reply_address("value"), first_arg_is(key), timeout
        )
        return reply.args[1] if len(reply.args) > 1 else None

    @flow_method
    def set(self, key: str, value: Any, *, confirm: bool = True) -> Flow[None]:
        """Change the default of option ``key`` for later requests."""
        return self._session.confirmed(request_address("set"), [key, value], confirm)

    @flow_method
    def cancel(self, job_id: JobId | None = None, *, confirm: bool = True) -> Flow[None]:
        """Cancel job ``job_id`` (queued or running), or every job; with ``confirm``, raises
        :class:`RequestFailed` (``not_found``) when no such job is queued or running."""
        args = [] if job_id is None else [job_id]
        return self._session.confirmed(request_address("cancel"), args, confirm)

    @flow_method
    def notify(
        self, on: bool = True, port: int | None = None, *, confirm: bool = True
    ) -> Flow[None]:
        """(Un)register this client (or ``port`` on its host) for every event of the daemon."""
        args = [int(on)] + ([] if port is None else [port])
        return self._session.confirmed(request_address("notify"), args, confirm)

    @flow_method
    def slot(self, index: int, prompt: str, *, confirm: bool = True, **options: Any) -> Flow[None]:
        """Define clip slot ``index`` (0-127) with a prompt and generate options (plus
        ``ahead``, the takes kept ready, ``gate``, and ``evolve``: each new take a variation
        of this strength, 0-1, of the one before)."""
        args = [index, prompt, *option_args(options)]
        return self._session.confirmed(request_address("slot"), args, confirm)

    @flow_method
    def trigger(self, index: int, *, confirm: bool = True, **playback: Any) -> Flow[None]:
        """Play slot ``index``'s next ready take at the next quantize point; ``playback``:
        ``quantize`` (none/beat/bar), ``loop`` (bool), ``gain`` (0-2, linear)."""
        args = [index, *option_args(playback)]
        return self._session.confirmed(request_address("trigger"), args, confirm)

    @flow_method
    def play(
        self, id_or_path: JobId | os.PathLike[str], *, confirm: bool = True, **playback: Any
    ) -> Flow[None]:
        """Play a finished clip by job id or by path inside the output folder; ``playback`` as
        :meth:`trigger`."""
        args = [id_or_path, *option_args(playback)]
        return self._session.confirmed(request_address("play"), args, confirm)

    @flow_method
    def stop(
        self, index: int | None = None, quantize: str | None = None, *, confirm: bool = True
    ) -> Flow[None]:
        """Stop slot ``index`` (None: everything) at the ``quantize`` point (none/beat/bar)."""
        args: list[Any] = [] if index is None else [index]
        args += option_args({"quantize": quantize})
        return self._session.confirmed(request_address("stop"), args, confirm)

    @flow_method
    def morph(
        self,
        from_slot: int,
        to_slot: int,
        bars: int,
        quantize: str | None = None,
        *,
        confirm: bool = True,
    ) -> Flow[None]:
        """Morph slot ``from_slot`` into slot ``to_slot`` over ``bars`` bars (1-32), one
        rendered step a bar, starting at the ``quantize`` point (none/beat/bar); both slots must
        be defined. The steps play in ``to_slot``, which keeps the last one."""
        args: list[Any] = [from_slot, to_slot, bars, *option_args({"quantize": quantize})]
        return self._session.confirmed(request_address("morph"), args, confirm)

    @flow_method
    def tempo(self, bpm: float, *, confirm: bool = True) -> Flow[None]:
        """Set the internal clock's tempo in BPM (20-400)."""
        return self._session.confirmed(request_address("tempo"), [float(bpm)], confirm)

    @flow_method
    def transport(self, start: bool, *, confirm: bool = True) -> Flow[None]:
        """Start (True) or stop (False) the internal clock."""
        args = ["start" if start else "stop"]
        return self._session.confirmed(request_address("transport"), args, confirm)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port}>"


# -- jobs ------------------------------------------------------------------------------------------


class JobHandle:
    """A handle on one ``/musicldm/generate``: wait for it, follow it, cancel it.

    The client's reading side records the replies as they come, so a job may be waited for at
    any time, more than once. A face subclasses it with its ``_run`` and ``progress()``.
    """

    def __init__(self, session: Session, job_id: JobId, takes: int, sent_at: float) -> None:
        self._session = session
        self._record = JobRecord(job_id, takes)
        self._signal = session.make_signal()
        self._sent_at = sent_at
        self.id: JobId = self._record.job_id
        """The job's id, as every reply about it carries it."""
        self.takes: int = self._record.takes
        """How many ``/musicldm/done`` replies the job ends with."""

    @property
    def position(self) -> int | None:
        """The queue position ``/musicldm/queued`` reported (0 = next), or None so far."""
        return self._record.position

    @property
    def finished(self) -> bool:
        """True once every take is done or the job failed."""
        return self._record.finished

    def deliver(self, reply: Reply) -> bool:
        """Reading side: record one reply about the job."""
        ended = self._record.add(reply)
        self._signal.notify()
        return ended

    def close(self) -> None:
        self._record.closed = True
        self._signal.notify()

    def _until(self, ready: Callable[[], bool], limits: Deadlines) -> Flow[None]:
        """Wait until ``ready()`` or a limit passes (which raises), or the client closes.

        Once the daemon has answered, a job may rightly stay silent for long (queued behind
        others, or a slow render), but a daemon that died sends nothing ever again: so after
        the client's ``timeout`` without a reply about the job, a ping checks that the daemon
        is still there, and :class:`DaemonNotAnswering` (naming the job) ends the wait if not.
        """
        record = self._record
        silence = finite(self._session.timeout)
        heard, heard_at = len(record.history), time.monotonic()

        def news() -> bool:
            return ready() or len(record.history) != heard

        def left() -> float | None:
            if record.closed:
                raise_closed(self.id)
            remaining = limits.remaining()
            if silence is None or not record.answered:
                return remaining  # before the first answer, the queue timeout rules
            check_in = heard_at + silence - time.monotonic()
            return check_in if remaining is None else min(remaining, check_in)

        while not ready():
            if (yield from wait_until(self._signal, news, left)):
                heard, heard_at = len(record.history), time.monotonic()
                continue
            yield from self._check_alive(limits)
            heard_at = time.monotonic()

    def _check_alive(self, limits: Deadlines) -> Flow[None]:
        """Ping the daemon after a silence; raise :class:`DaemonNotAnswering` if it is gone."""
        seconds = self._session.timeout
        remaining = limits.remaining()
        if remaining is not None:
            seconds = min(seconds, remaining)  # the caller's own limit still comes first
        try:
            yield from self._session.ping(seconds)
        except ClientError as exc:
            if self._record.closed:
                raise_closed(self.id)
            if not isinstance(exc, DaemonNotAnswering):
                raise
            limits.remaining()  # raises the caller's JobTimeout if that limit passed first
            if self._record.finished:
                return  # the job's last reply came while the ping waited
            raise self._session.not_answering(seconds, self.id) from None

    def _limits(self, timeout: float | None, queue_timeout: float | None) -> Deadlines:
        return Deadlines(
            self._record,
            self._session.not_answering,
            self._sent_at,
            self._session.timeout if queue_timeout is None else queue_timeout,
            timeout,
        )

    @flow_method
    def wait(
        self, timeout: float | None = None, *, queue_timeout: float | None = None
    ) -> Flow[Done]:
        """Wait until the job's first take is done, and return it.

        ``timeout`` bounds the whole wait in seconds (None: no limit) and raises
        :class:`JobTimeout` once the daemon had answered; ``queue_timeout`` (default: the
        client's timeout) bounds the wait for the daemon's first answer after sending, and
        raises :class:`DaemonNotAnswering`. Raises :class:`JobFailed` on ``/musicldm/fail``.
        """
        record = self._record
        limits = self._limits(timeout, queue_timeout)
        yield from self._until(lambda: bool(record.dones) or record.failure is not None, limits)
        if record.dones:
            return record.dones[0]
        raise record.error()  # type: ignore[misc]

    @flow_method
    def wait_all(
        self, timeout: float | None = None, *, queue_timeout: float | None = None
    ) -> Flow[list[Done]]:
        """Wait until all ``takes`` are done and return them in order of arrival (the daemon
        ranks them best first); limits and errors as :meth:`wait`, raising at the first fail."""
        record = self._record
        yield from self._until(lambda: record.finished, self._limits(timeout, queue_timeout))
        error = record.error()
        if error is not None:
            raise error
        return list(record.dones)

    def _follow(
        self, timeout: float | None, queue_timeout: float | None
    ) -> Callable[[], Flow[list[Progressing] | None]]:
        """For ``progress()``: a flow maker whose each flow returns the job's next
        :class:`Queued`, :class:`Started` and :class:`Progress` replies (maybe none), None
        once every take is done; raises :class:`JobFailed` after the last batch if it failed."""
        record = self._record
        limits = self._limits(timeout, queue_timeout)
        seen = 0
        ended = False

        def next_batch() -> Flow[list[Progressing] | None]:
            nonlocal seen, ended
            if ended:
                error = record.error()
                if error is not None:
                    raise error
                return None
            yield from self._until(lambda: seen < len(record.history) or record.finished, limits)
            fresh = record.history[seen:]
            seen += len(fresh)
            ended = record.finished and seen >= len(record.history)
            return [r for r in fresh if isinstance(r, (Queued, Started, Progress))]

        return next_batch

    @flow_method
    def cancel(self) -> Flow[None]:
        """Ask the daemon to cancel the job; a job that already ended is left alone.

        The job then fails with code ``cancelled`` (unless it finished first).
        """
        try:
            yield from self._session.confirmed(request_address("cancel"), [self.id], True)
        except RequestFailed as exc:
            if exc.code != "not_found":
                raise

    def __repr__(self) -> str:
        record = self._record
        state = "failed" if record.failure else f"{len(record.dones)}/{record.takes} done"
        return f"<{type(self).__name__} {self.id!r} {state}>"


def raise_closed(job_id: JobId) -> None:
    """The error of a job wait that the client's closing ended."""
    raise ClientError(f"the client was closed while job {job_id!r} ran")


J = TypeVar("J", bound=JobHandle)


def queue_job(
    session: Session,
    make: Callable[[Session, JobId, int, float], J],
    prompt: str,
    job_id: JobId | float | None,
    options: Mapping[str, Any],
) -> J:
    """Send ``/musicldm/generate`` and return its job handle (made by ``make``) at once.

    Without ``job_id`` the client picks a unique text id; the handle expects the id as the
    daemon will echo it (:func:`daemon.wire.contract.normalize_id`: 7.0 comes back as 7).
    ``options`` are the contract's generate options; ``None`` values are left out.
    """
    address = request_address("generate")
    sent_id: JobId | float = session.new_id() if job_id is None else job_id
    try:
        echoed = normalize_id(sent_id)
    except BadRequest as exc:
        raise RequestFailed(address, exc.code, exc.message) from exc
    takes = options.get("takes")
    job = make(session, echoed, 1 if takes is None else int(takes), time.monotonic())
    args = [prompt, "id", sent_id, *option_args(options)]
    route = Route(job, job_id=echoed, request_address=address)
    try:
        with session.ordered():  # see Session.ordered: a refusal may name only the address
            session.router.add(route)
            session.send(address, args)
    except BaseException:
        session.router.remove(route)
        raise
    return job
