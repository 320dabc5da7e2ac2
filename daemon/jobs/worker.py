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
exactly once. A job resumed after a restart (:attr:`Job.done_takes`) renders only its missing
takes, each with its own seed (``seed + k``), so no delivered take is made again.

Faults: a journal that cannot be written (a full disk) fails the job's takes with ``io_error``;
the ``/musicldm/fail`` goes out even when the journal cannot record the end
(:meth:`Journal.end_job` keeps it for later). A clip whose library row cannot be written is
removed again, so no file is left that the library does not know. Nothing a batch raises stops
the thread; if it stops anyway, :attr:`Worker.dead` says why and the daemon refuses new jobs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from daemon.jobs.journal import ClipRecord
from daemon.jobs.queue import Job, JobQueue
from daemon.logtext import printable
from musicldm_core.errors import Cancelled, ModelError, MusicLDMError
from musicldm_core.render import Clip, batch_key, plan_clip, render_batch, save_clip
from musicldm_core.spec import ClipSpec

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
        warm_up: Callable[[], object] | None = None,
    ) -> None:
        self.engine = engine
        self.warm_up = warm_up
        """Run once on the thread before the first job (the engine's compile and warm-up
        renders, the grid analysis' JIT compile), so that no request pays for them and the
        compiled code and CUDA graphs belong to the thread that renders; None skips it."""
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
        self.dead: str | None = None
        """Why the thread stopped on its own (None while it runs, or after a normal stop)."""
        self.warmed = threading.Event()
        """Set once :attr:`warm_up` has run (or failed, or there was none): from then on no job
        waits on a compile for the warmed shapes (benchmarks wait on it)."""
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
        if self._thread.ident is None:
            return True  # never started (the daemon failed to start)
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

    def _key(self, job: Job) -> tuple[object, ...]:
        plan = plan_clip(
            job.spec,
            model_rate=self.engine.model_rate,
            hop=self.engine.hop,
            frame_multiple=self.engine.vae_factor,
        )
        # a compiled engine renders lengths in buckets: nearby tempi share a batch
        return batch_key(job.spec, plan, bucket=getattr(self.engine, "frame_bucket", None))

    def _run(self) -> None:
        if self.warm_up is not None:
            try:
                self.warm_up()
            except Exception:  # only slower first renders: never a reason to stop rendering
                log.warning("warming up failed; the first renders may be slower", exc_info=True)
        self.warmed.set()
        try:
            while not self._stopping.is_set():
                self._one_batch()
        except BaseException:  # only what _one_batch cannot handle; it said why (self.dead)
            log.critical(
                "the worker thread stopped (%s): nothing is rendered until the daemon restarts; "
                "accepted jobs stay in the journal",
                self.dead,
                exc_info=True,
            )  # and the thread ends here; the daemon refuses new jobs (Daemon.worker_dead)

    def _one_batch(self) -> None:
        job = self.queue.get(timeout=0.1)
        if job is None or job.finished:  # timeout, close, or cancelled while queued
            return
        batch = [job]
        try:
            room = self.max_batch_takes - job.takes
            if room > 0:
                batch += self.queue.take_compatible(
                    self._key, self._key(job), priority=job.priority, max_takes=room
                )
            batch = [j for j in batch if not j.finished]
            self._render(batch)
        except MusicLDMError as exc:  # a journal or output error outside the render itself
            log.error("jobs %s failed: %s", _ids(batch), exc)
            for j in batch:
                self._fail(j, exc.code, exc.message)
        except Exception:  # never let one batch kill the worker
            log.exception("unexpected error in the worker")
            for j in batch:
                self._fail(j, "model_error", "unexpected error in the worker; see the log")
        except BaseException as exc:  # the thread ends: say why first, then end the batch
            self.dead = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            for j in batch:
                self._fail(j, "model_error", f"the worker thread stopped ({self.dead})")
            raise
        finally:
            self.running = []

    def _render(self, batch: list[Job]) -> None:
        self.running = batch
        started = time.perf_counter()
        last_sent = dict.fromkeys((id(j) for j in batch), 0.0)
        for job in batch:
            # A journal that cannot say the job runs cannot record its clips either: fail it
            # now (io_error) instead of rendering files nothing knows about.
            self.journal.mark_running(job.seq)
        for job in batch:
            log.debug("job %s: started (%d takes)", printable(job.job_id), job.takes)
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

        specs = [_specs_to_render(j) for j in batch]
        try:
            flat = render_batch(
                self.engine,
                [s for per_job in specs for s in per_job],
                on_step=on_step,
                is_cancelled=is_cancelled,
            )
        except Cancelled:
            if self._abort.is_set():
                return  # left in the journal as unfinished: rendered again on the next start
            for job in batch:
                self._fail(job, "cancelled", "cancelled while rendering")
            return
        except MusicLDMError as exc:
            log.warning("jobs %s failed: %s", _ids(batch), exc)
            for job in batch:
                self._fail(job, exc.code, exc.message)
            return
        except Exception as exc:
            log.exception("the model failed on jobs %s", _ids(batch))
            err = ModelError(f"the model failed: {type(exc).__name__}: {exc}")
            for job in batch:
                self._fail(job, err.code, err.message)
            return
        self.running = []  # rendered: a cancel from now on finds nothing to stop
        render_seconds = time.perf_counter() - started
        for job, per_job in zip(batch, specs, strict=True):
            results, flat = flat[: len(per_job)], flat[len(per_job) :]
            clips = _resumed(job, [r[0] for r in results]) if job.done_takes else results[0]
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
                log.error("job %s: could not write its clip: %s", printable(job.job_id), exc)
                self._fail(job, exc.code, exc.message, takes=len(clips) - delivered)
                return
            try:
                # the row and the job's count in one transaction; a crash between the file's
                # rename and this commit leaves a file the next start adopts (Daemon._recover)
                record = ClipRecord.of(clip, job.job_id, render_seconds)
                self.journal.add_clip(record, job_seq=job.seq)
            except MusicLDMError as exc:
                _remove(path)  # a file the library cannot know would be delivered twice
                log.error("job %s: could not record its clip: %s", printable(job.job_id), exc)
                self._fail(job, exc.code, exc.message, takes=len(clips) - delivered)
                return
            log.info(
                "job %s: %r, %.3f s at %g BPM, seed %s, rendered in %.2f s -> %s",
                printable(job.job_id),
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
            self.journal.end_job(job.seq, "done")
            log.debug("job %s: done", printable(job.job_id))
        self.rendered += 1

    def _fail(self, job: Job, code: str, message: str, *, takes: int | None = None) -> None:
        """End ``job``'s remaining takes with one ``/fail`` each; never raises, so the thread
        lives on and the client hears even when the journal cannot record it."""
        if not job.finish():
            return
        state = "cancelled" if code == "cancelled" else "failed"
        self.failed += 1
        try:
            self.journal.end_job(job.seq, state, code, message)
        except Exception:  # end_job keeps journal errors; anything else must not stop the fail
            log.exception("job %s: could not record its end", printable(job.job_id))
        log.debug("job %s: %s (%s: %s)", printable(job.job_id), state, code, message)
        try:
            self.events.failed(job, code, message, takes if takes is not None else job.takes)
        except Exception:
            log.exception("job %s: could not send its fail", printable(job.job_id))


def _ids(batch: Sequence[Job]) -> str:
    return ", ".join(printable(j.job_id) for j in batch)


def _specs_to_render(job: Job) -> list[ClipSpec]:
    """The spec(s) to render for ``job``: its own, or for a resumed job one one-take spec per
    missing take, seeded as that take was (``seed + k``), without retakes (their seeds would
    be other takes' seeds)."""
    if not job.done_takes:
        return [job.spec]
    from musicldm_core.engine import SEED_MODULUS  # the engine's rule: take k has seed s + k

    seed = int(job.spec.seed or 0)
    return [
        dataclasses.replace(job.spec, seed=(seed + k) % SEED_MODULUS, takes=1, retake=0)
        for k in job.remaining_takes
    ]


def _resumed(job: Job, clips: list[Clip]) -> list[Clip]:
    """Clips of a resumed job's missing takes, numbered as the takes they replace. They are not
    ranked against the takes delivered before the restart; their rank follows those."""
    first = len(job.done_takes)
    for n, (k, clip) in enumerate(zip(job.remaining_takes, clips, strict=True)):
        clip.spec, clip.take, clip.rank = job.spec, k, first + n
    return clips


def _remove(path: object) -> None:
    try:
        os.unlink(str(path))
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)
