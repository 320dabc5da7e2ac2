"""The worker thread: the one owner of the engine (and so of the GPU).

It takes the most urgent job from the job queue, gathers queued jobs it can
render in the same UNet batch (same length, steps, sampler and guidance mode, same priority),
renders them, writes each take into the output folder, records it in the library and reports
through :class:`JobEvents` — ``started``, ``progress`` (throttled), then one ``done`` or
``fail`` per take.

Cancelling a job sets a flag the engine checks between steps; the whole batch stops early only if
every job in it is cancelled (the others' work is kept). On shutdown the running batch gets a
grace period; if it is still running after that it is abandoned between steps and its jobs stay
in the journal, to be rendered on the next start — they are not failed, so each take still ends
exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from daemon.jobs.queue import Job, JobQueue
from musicldm_core.errors import Cancelled, ModelError, MusicLDMError
from musicldm_core.render import Clip, batch_key, plan_clip, render_batch, save_clip

if TYPE_CHECKING:
    from daemon.jobs.delivery import Delivery
    from daemon.jobs.journal import Journal
    from musicldm_core.engine import Engine

__all__ = ["JobEvents", "Worker"]

log = logging.getLogger(__name__)


class JobEvents(Protocol):
    """What the worker reports; the server turns these into OSC replies."""

    def started(self, job: Job) -> None: ...
    def progress(self, job: Job, step: int, total: int) -> None: ...
    def done(self, job: Job, clip: Clip) -> None: ...
    def failed(self, job: Job, code: str, message: str, takes: int) -> None: ...


class Worker:
    """Runs jobs from ``queue`` on ``engine`` in its own thread."""

    def __init__(
        self,
        engine: Engine,
        queue: JobQueue,
        *,
        journal: Journal,
        delivery: Delivery,
        events: JobEvents,
        max_batch_takes: int = 4,
        progress_rate_hz: float = 20.0,
        clip_listeners: Sequence[Callable[[Job, Clip], None]] = (),
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.journal = journal
        self.delivery = delivery
        self.events = events
        self.max_batch_takes = max(1, max_batch_takes)
        self.progress_interval = 1.0 / progress_rate_hz if progress_rate_hz > 0 else 0.0
        self.clip_listeners = list(clip_listeners)
        self.running: list[Job] = []
        self.rendered = 0
        self.failed = 0
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)

    # -- lifecycle (called from the main thread) -------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace_seconds: float = 3.0) -> bool:
        """Stop taking jobs; let the running batch finish within ``grace_seconds``, else abandon
        it between steps. Returns True if the thread ended."""
        self._stopping.set()
        self._thread.join(timeout=grace_seconds)
        if self._thread.is_alive():
            log.info("abandoning the running job; it stays in the journal for the next start")
            self._abort.set()
            self._thread.join(timeout=30.0)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------------

    def _key(self, job: Job) -> tuple[int, int, str, bool]:
        plan = plan_clip(
            job.spec,
            model_rate=self.engine.model_rate,
            hop=self.engine.hop,
            frame_multiple=self.engine.vae_factor,
        )
        return batch_key(job.spec, plan)

    def _run(self) -> None:
        while not self._stopping.is_set():
            job = self.queue.get(timeout=0.1)
            if job is None:
                continue
            if job.finished:  # cancelled while queued
                continue
            batch = [job]
            room = self.max_batch_takes - job.takes
            if room > 0:
                batch += self.queue.take_compatible(
                    self._key, self._key(job), priority=job.priority, max_takes=room
                )
            batch = [j for j in batch if not j.finished]
            try:
                self._render(batch)
            except Exception:  # never let one batch kill the worker
                log.exception("unexpected error in the worker")
                for j in batch:
                    self._fail(j, "model_error", "unexpected error in the worker; see the log")

    def _render(self, batch: list[Job]) -> None:
        self.running = batch
        started = time.perf_counter()
        last_sent = dict.fromkeys((id(j) for j in batch), 0.0)
        for job in batch:
            self.journal.mark_running(job.seq)
            self.events.started(job)

        def on_step(step: int, total: int) -> None:
            now = time.monotonic()
            for job in batch:
                if job.finished or job.cancel_requested.is_set():
                    continue
                if step == total or now - last_sent[id(job)] >= self.progress_interval:
                    last_sent[id(job)] = now
                    self.events.progress(job, step, total)

        def is_cancelled() -> bool:
            return self._abort.is_set() or all(j.cancel_requested.is_set() for j in batch)

        try:
            results = render_batch(
                self.engine, [j.spec for j in batch], on_step=on_step, is_cancelled=is_cancelled
            )
        except Cancelled:
            if self._abort.is_set():
                return  # left in the journal as unfinished: rendered again on the next start
            for job in batch:
                self._fail(job, "cancelled", "cancelled while rendering")
            return
        except MusicLDMError as exc:
            log.warning("jobs %s failed: %s", ", ".join(str(j.job_id) for j in batch), exc)
            for job in batch:
                self._fail(job, exc.code, exc.message)
            return
        except Exception as exc:
            log.exception("the model failed on jobs %s", ", ".join(str(j.job_id) for j in batch))
            err = ModelError(f"the model failed: {type(exc).__name__}: {exc}")
            for job in batch:
                self._fail(job, err.code, err.message)
            return
        finally:
            self.running = []
        render_seconds = time.perf_counter() - started
        for job, clips in zip(batch, results, strict=True):
            self._deliver(job, clips, render_seconds)

    def _deliver(self, job: Job, clips: list[Clip], render_seconds: float) -> None:
        if job.cancel_requested.is_set():
            self._fail(job, "cancelled", "cancelled while rendering")
            return
        when = datetime.now()
        folder = self.delivery.folder_for(when)
        for delivered, clip in enumerate(clips):
            try:
                path = save_clip(clip, folder, when=when)
            except MusicLDMError as exc:
                log.error("job %s: could not write its clip: %s", job.job_id, exc)
                self._fail(job, exc.code, exc.message, takes=len(clips) - delivered)
                return
            self.journal.add_clip(_record(job, clip, render_seconds))
            self.journal.mark_take_done(job.seq)
            log.info(
                "job %s: %r, %.3f s at %g BPM, seed %s, rendered in %.2f s -> %s",
                job.job_id,
                job.spec.prompt,
                clip.seconds,
                job.spec.bpm,
                clip.seed,
                render_seconds,
                path,
            )
            self.events.done(job, clip)
            for listener in self.clip_listeners:
                try:
                    listener(job, clip)
                except Exception:
                    log.exception("a clip listener failed")
        if job.finish():
            self.journal.mark_finished(job.seq, "done")
        self.rendered += 1

    def _fail(self, job: Job, code: str, message: str, *, takes: int | None = None) -> None:
        if not job.finish():
            return
        state = "cancelled" if code == "cancelled" else "failed"
        self.journal.mark_finished(job.seq, state, code, message)
        self.failed += 1
        self.events.failed(job, code, message, takes if takes is not None else job.takes)


def _record(job: Job, clip: Clip, render_seconds: float) -> ClipRecord:
    from daemon.jobs.journal import ClipRecord

    spec = clip.spec
    return ClipRecord(
        job_id=job.job_id,
        path=str(clip.path),
        prompt=spec.prompt,
        seconds=clip.seconds,
        bpm=spec.bpm,
        bars=None if spec.seconds is not None else spec.bars,
        beats_per_bar=spec.beats_per_bar,
        seed=clip.seed,
        take=clip.take,
        score=clip.score,
        settings=clip.settings(),
        created=time.time(),
        render_seconds=render_seconds,
    )


if TYPE_CHECKING:
    from daemon.jobs.journal import ClipRecord
