"""Every reply and event the daemon sends leaves through :class:`Replies`.

It builds messages only with :mod:`daemon.wire.contract`'s builders and hands them to the OSC
transport's replier, which adds the registered ``/musicldm/notify`` targets and the configured
reply targets and never sends one address the same datagram twice. This is the one place that
turns an error into ``/musicldm/fail``: :meth:`Replies.request_failed` for a request that was
refused, :meth:`Replies.job_failed` for each take of an accepted job that ended without a file.

Called from the OSC thread (request answers), the worker thread (job events: it implements
:class:`daemon.jobs.worker.JobEvents`) and the live code's event pump; the replier is
thread-safe. Before the OSC transport exists (start-up) and after it closed, messages are dropped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from daemon.wire import contract
from daemon.wire.contract import JobId, Message
from musicldm_core.errors import MusicLDMError

if TYPE_CHECKING:
    from daemon.jobs.queue import Job
    from daemon.wire.osc import Replier
    from musicldm_core.render import Clip

__all__ = ["Replies"]

log = logging.getLogger(__name__)

Address = tuple[str, int]


class Replies:
    """Sends contract messages to the sender(s) that asked, plus the notify and reply targets."""

    def __init__(self) -> None:
        self.replier: Replier | None = None

    def send(self, message: Message, to: Iterable[Address] = ()) -> None:
        """Send ``message`` to ``to`` and every registered and configured target."""
        replier = self.replier
        if replier is not None:
            replier.send(message.address, message.args, to=tuple(to))

    @contextlib.contextmanager
    def ordered(self) -> Iterator[None]:
        """Hold other threads' replies back while the block runs: for "make a job visible to
        the worker, then announce it", so ``/queued`` always precedes ``/started``."""
        replier = self.replier
        if replier is None:
            yield
            return
        with replier.ordered():
            yield

    # -- failures: the one place ------------------------------------------------------------------

    def request_failed(self, exc: MusicLDMError, address: str, sender: Address) -> None:
        """A request at ``address`` was refused: ``/musicldm/fail`` naming its job id when the
        error carries one (``exc.job_id``), else the address."""
        self.send(contract.fail_for(exc, address), (sender,))

    def internal_error(self, address: str, sender: Address) -> None:
        """A handler raised something unexpected (already logged with its traceback)."""
        self.send(contract.fail(address, "model_error", "internal error; see the log"), (sender,))

    def job_failed(
        self, job_id: JobId, code: str, message: str, takes: int, origin: Iterable[Address]
    ) -> None:
        """``takes`` takes of job ``job_id`` ended without a file: one ``/musicldm/fail`` each,
        so every accepted take is answered exactly once."""
        origin = tuple(origin)
        for _ in range(max(takes, 1)):
            self.send(contract.fail(job_id, code, message), origin)

    # -- the worker's job events (daemon.jobs.worker.JobEvents) ------------------------------------

    def queued(self, job: Job, position: int) -> None:
        self.send(contract.queued(job.job_id, position), job.origin)

    def started(self, job: Job) -> None:
        self.send(contract.started(job.job_id), job.origin)

    def progress(self, job: Job, step: int, total: int) -> None:
        self.send(contract.progress(job.job_id, step, total), job.origin)

    def done(self, job: Job, clip: Clip) -> None:
        spec = clip.spec
        bars = spec.grid_bars or 0  # 0: asked for in seconds
        self.send(
            contract.done(
                job.job_id,
                clip.path,
                seconds=clip.seconds,
                bpm=spec.bpm,
                bars=bars,
                seed=clip.seed,
                grid=clip.settings()["grid"],
            ),
            job.origin,
        )

    def failed(self, job: Job, code: str, message: str, takes: int) -> None:
        self.job_failed(job.job_id, code, message, takes, job.origin)
