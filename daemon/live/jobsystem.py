"""What live playback needs from the rest of the daemon: the narrow interface ``live`` depends on.

:class:`daemon.live.slots.Live` renders takes, cancels stale ones and sends playback events
through these protocols only, never through the app object's internals; the app
(:mod:`daemon.app`) implements them and hands them over at start-up::

    Live(<JobSystem>, <EventSink>, <Session>, mixer, output, device_rate=...)
    MidiBridge(session, live_or_None, set_default=<callable>)

* :class:`JobSystem` — build a validated spec, submit a take, cancel takes. ``submit`` journals
  and queues the job and sends ``/musicldm/queued`` to ``origin``; ``cancel_jobs`` ends each
  match in exactly one ``/musicldm/fail … cancelled``.
* :class:`EventSink` — sends one contract message (:mod:`daemon.wire.contract` builds it) to
  ``to`` plus the registered notify targets and the configured reply targets, each address once
  (:class:`daemon.app.replies.Replies` is one).
* :class:`JobInfo` — what ``live`` reads of a finished job handed to
  :meth:`~daemon.live.slots.Live.on_clip` (:class:`daemon.jobs.queue.Job` has it).

Every method may be called from the OSC, MIDI, Link, worker or live event thread; they must be
thread-safe and must not call back into ``live``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from daemon.wire.contract import Message
    from musicldm_core.spec import ClipSpec

__all__ = ["Address", "EventSink", "JobId", "JobInfo", "JobSystem", "Origin"]

Address = tuple[str, int]
"""A UDP address, ``(host, port)``."""

Origin = tuple[Address, ...]
"""Who asked: the senders a reply or event goes to (besides notify and reply targets)."""

JobId = int | str


class JobInfo(Protocol):
    """The parts of a job that ``live`` reads."""

    @property
    def job_id(self) -> JobId: ...

    @property
    def slot(self) -> int | None:
        """The slot its takes go to (``generate … slot N``, or a slot's own take), or None."""

    @property
    def play(self) -> bool:
        """Whether its take plays as soon as it is ready (``generate … play 1``)."""

    @property
    def origin(self) -> Origin:
        """Who asked for it."""

    @property
    def created(self) -> float:
        """When it was accepted, ``time.time()`` seconds (a stop cancels the ``play 1`` of the
        jobs accepted before it)."""


class JobSystem(Protocol):
    """The job system as ``live`` uses it."""

    def build_spec(self, prompt: str, options: Any, *, tempo: float | None = None) -> ClipSpec:
        """A validated, seeded spec from a prompt and request options (with ``/set`` defaults,
        config and preset filled in). ``tempo``: the clock tempo (BPM) to render at where the
        options and defaults give no ``bpm``; None: the session's tempo now. Raises
        :class:`musicldm_core.errors.BadRequest` naming the bad option."""

    def submit(
        self,
        job_id: JobId,
        spec: ClipSpec,
        *,
        priority: str = "normal",
        origin: Origin = (),
        slot: int | None = None,
        play: bool = False,
    ) -> object:
        """Journal and queue one job and send ``/musicldm/queued`` to ``origin``.

        Raises ``queue_full`` or ``shutting_down`` (:class:`musicldm_core.errors.MusicLDMError`)."""

    def cancel_jobs(self, matches: Callable[[Any], bool]) -> int:
        """Cancel the queued and running jobs for which ``matches(job)`` is true (``job`` has
        at least :class:`JobInfo`'s fields); each ends in one ``/musicldm/fail … cancelled``.
        Returns how many were found."""


class EventSink(Protocol):
    """Where playback events go (:class:`daemon.app.replies.Replies` is one)."""

    def send(self, message: Message, to: Iterable[Address] = ()) -> None:
        """Send ``message`` (built by :mod:`daemon.wire.contract`) to ``to`` and every
        registered and configured target, each once; never raises for a recipient that is not
        listening."""
