"""The daemon: wires config, journal, engine, worker, live playback and the OSC front-end.

:class:`Daemon` starts its parts in one place, in order (state folder and journal → engine →
worker → live playback and MIDI → recovery of journaled jobs → OSC), and stops them in the
opposite order in a ``finally``. Requests are answered by :class:`daemon.app.handlers.Handlers`
(on the OSC transport's thread) through the narrow :class:`~daemon.app.handlers.App` surface
this class offers; every reply leaves through :class:`daemon.app.replies.Replies`.

Threads: the OSC transport's threads call the handlers; the worker thread owns the engine; the
audio callback owns the mixer; the MIDI and Link threads call :class:`daemon.live.slots.MidiBridge`.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.app.defaults import Defaults
from daemon.app.handlers import Handlers
from daemon.app.inputs import InputSandbox
from daemon.app.replies import Replies
from daemon.config import DaemonConfig
from daemon.errors import QueueFull, ShuttingDown
from daemon.jobs.delivery import Delivery
from daemon.jobs.journal import ClipRecord, Journal, JournalJob
from daemon.jobs.queue import Job, JobQueue
from daemon.jobs.statelock import StateLock
from daemon.live.session import Session
from daemon.logtext import printable
from daemon.wire import contract
from daemon.wire.contract import ID_MAX, JobId
from daemon.wire.osc import Address, OscServer
from daemon.wire.requests import GenerateOptions
from musicldm_core.errors import BadRequest, ModelError, MusicLDMError, NotFound, OutputError
from musicldm_core.spec import ClipSpec

__all__ = ["Daemon", "spec_from_dict", "spec_to_dict"]

log = logging.getLogger("daemon")

_SPEC_FIELDS = {f.name for f in dataclasses.fields(ClipSpec)} - {"extra"}


def spec_to_dict(spec: ClipSpec) -> dict[str, Any]:
    """A spec as the journal stores it (JSON-ready)."""
    return {name: getattr(spec, name) for name in _SPEC_FIELDS}


def spec_from_dict(data: dict[str, Any]) -> ClipSpec:
    """The spec a journal entry stored (unknown keys from other versions are ignored; JSON's
    lists become the tuples the spec holds: ``repaint``, ``blend``)."""
    return ClipSpec(**{k: _tuples(v) for k, v in data.items() if k in _SPEC_FIELDS})


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _warm_grid() -> None:
    """Compile (or load from numba's cache) the grid analysis' code: on the worker thread."""
    from musicldm_core.conform import warm_up

    warm_up()


def _numba_cache_dir() -> None:
    """Give numba a cache folder the user can write when librosa's own is not (a system-wide
    install): its compiled analysis code is then kept between starts instead of compiled again
    each time (tens of seconds). An explicit ``NUMBA_CACHE_DIR`` is left alone."""
    import importlib.util

    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    found = importlib.util.find_spec("librosa")
    if found is None or found.origin is None:
        return
    if os.access(Path(found.origin).parent, os.W_OK):
        return  # numba caches beside librosa's sources
    from platformdirs import user_cache_dir

    folder = Path(user_cache_dir("musicldm-daemon")) / "numba"
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    log.info("numba's cache: %s (librosa's folder is not writable)", folder)


class Daemon:
    """The long-running process's parts, their order of start and stop, and the job system's
    front door (:meth:`submit`, :meth:`cancel_jobs`)."""

    def __init__(
        self, config: DaemonConfig, *, engine: Any = None, audio_off: str | None = None
    ) -> None:
        # Absolute from here on: every path the daemon sends, logs or records must work for a
        # client that does not know the folder the daemon was started from.
        config = dataclasses.replace(
            config,
            out=Path(os.path.abspath(config.out)),
            state=Path(os.path.abspath(config.state)),
        )
        self.config = config
        self.engine = engine
        self._warm_engine = False  # True once start() loaded the engine itself: warm it then
        self.delivery = Delivery(config.out, day_folders=config.day_folders)
        self.queue = JobQueue(config.queue_size)
        self.journal: Journal | None = None
        self.worker: Any = None
        self.osc: OscServer | None = None
        self.session = Session(config.tempo)  # the one owner of the live tempo and transport
        self.defaults = Defaults(
            config,
            lambda: self.session.state.bpm,
            # `from`/`like`: library clips (once the journal is open), the output folder and
            # the --input-dir folders
            InputSandbox(
                config.out,
                config.input_dirs,
                lambda clip_id: self.journal.find_clip(clip_id) if self.journal else None,
            ),
        )
        self.replies = Replies()
        self.handlers = Handlers(self)
        self.max_seconds = config.max_seconds
        self.started_at = time.time()
        self._next_id = 1
        self._id_lock = threading.Lock()
        self._submit_lock = threading.Lock()
        self._open_jobs: dict[tuple[str, JobId], Job] = {}
        """Accepted jobs by (id type, id), for refusing an id an unfinished job still has."""
        self.state_lock = StateLock(config.state)
        self._accepting = False
        self._stopped = threading.Event()
        self.live: Any = None
        self.midi_input: Any = None
        # why there is no audio when config.audio is off: the CLI knows whether the flag or
        # the config file said so
        self.audio_status = f"off ({audio_off or 'audio disabled'})"
        self.midi_status = "off"
        self.link: Any = None
        self.link_status = "off"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every part, in order. On failure, whatever started is stopped again."""
        from daemon.jobs.worker import Worker

        try:
            _numba_cache_dir()
            self._open_state()
            self.delivery.prepare(started=self.started_at)
            if self.engine is None:
                self.engine = self._load_engine()
            assert self.journal is not None  # opened by _open_state
            self.worker = Worker(
                self.engine,
                self.queue,
                journal=self.journal,
                delivery=self.delivery,
                events=self.replies,
                max_batch_takes=self._max_batch(),
                progress_rate_hz=self.config.progress_rate_hz,
                warm_up=self._warm_up if self.config.warmup or self.config.compile else None,
            )
            self.osc = self._open_osc()
            self.replies.replier = self.osc.replier
            self._start_live()
            self._start_midi()
            self._recover()
            self.worker.start()
            self._accepting = True
            self.osc.start()
        except BaseException:
            self.stop()
            raise
        info = self.engine.describe()
        log.info(
            "musicldm-daemon %s listening on udp %s:%s; model %s on %s (%s); replies to %s; "
            "clips into %s",
            __version__,
            self.osc.host,
            self.osc.port,
            info["model"],
            info["device"],
            info["dtype"],
            ", ".join(f"{h}:{p}" for h, p in self.config.reply_to) or "senders only",
            self.config.out,
        )
        log.info("audio: %s", self.audio_status)
        log.info("MIDI: %s", self.midi_status)
        if self.config.link:
            log.info("Ableton Link: %s", self.link_status)

    def _open_state(self) -> None:
        """The state folder, its lock (one daemon per folder) and the journal in it."""
        state = self.config.state
        if state.exists() and not state.is_dir():
            raise OutputError(
                f"the state folder {state} is a file, not a folder; choose another --state"
            )
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the state folder {state}: {exc.strerror or exc}"
            ) from exc
        self.state_lock.acquire()
        self.journal = Journal(state / "journal.sqlite3")
        self._next_id = max(1, self.journal.largest_int_id(at_most=ID_MAX) + 1)

    def _open_osc(self) -> OscServer:
        try:
            return OscServer(
                self.config.host,
                self.config.port,
                self.handle,
                allow=self.config.allow,
                reply_targets=self.config.reply_to,
            )
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                hint = " (another daemon or program has it; choose another with --port)"
            raise MusicLDMError(f"{exc.strerror or exc}{hint}") from exc

    def _start_live(self) -> None:
        """Open the audio output and the mixer; without one, say why once and serve files."""
        from daemon.live.audio_out import (
            AudioUnavailable,
            FileOutput,
            SoundDeviceOutput,
            device_rate,
        )
        from daemon.live.player import Mixer
        from daemon.live.slots import PLAY_SLOTS, SLOTS, Live

        config = self.config
        if not config.audio and config.audio_file is None:
            return
        try:
            if config.audio_file is not None:
                rate = config.audio_rate or config.sample_rate
            else:
                rate = config.audio_rate or device_rate(config.audio_device)
            mixer = Mixer(
                rate,
                slots=SLOTS + PLAY_SLOTS,
                bpm=self.tempo,
                beats_per_bar=config.beats_per_bar,
            )
            output: Any
            if config.audio_file is not None:
                output = FileOutput(config.audio_file, mixer, block=config.audio_buffer)
            else:
                output = SoundDeviceOutput(
                    mixer, device=config.audio_device, block=config.audio_buffer
                )
        except AudioUnavailable as exc:
            self.audio_status = f"off ({exc}); clips still go to the output folder"
            log.warning("audio output unavailable: %s", exc)
            return
        self.live = Live(
            self,
            self.replies,
            self.session,
            mixer,
            output,
            device_rate=rate,
            evolve_default=lambda: float(self.defaults.resolve(None, "evolve")),
        )
        self.worker.clip_listeners.append(self.live.on_clip)
        self.live.start()
        self.audio_status = self.live.describe()
        sys.setswitchinterval(0.001)  # the audio callback must get the GIL back quickly

    def _start_midi(self) -> None:
        from daemon.live.link import LinkFollower
        from daemon.live.midi import MidiControl, MidiInput, MidiUnavailable, probe
        from daemon.live.slots import MidiBridge

        config = self.config
        if config.link:
            link = LinkFollower(
                MidiBridge(self.session, self.live, set_default=self.set_default),
                bpm=self.tempo,
                quantum_beats=config.beats_per_bar,
            )
            try:
                link.start()
            except MidiUnavailable as exc:
                self.link_status = f"off ({exc})"
                log.warning("%s", exc)
            else:
                self.link = link
                self.link_status = "following the Link session's tempo and bar phase"
        if config.midi_port is None and not config.midi_virtual:
            reason = probe()
            self.midi_status = (
                f"off ({reason})" if reason else "off (choose a port with --midi-port NAME)"
            )
            return
        control = MidiControl(
            MidiBridge(self.session, self.live, set_default=self.set_default),
            base_note=config.midi_base_note,
            channel=config.midi_channel,
            cc_map={n: _midi_cc(m) for n, m in config.midi_cc.items()},
            clock=config.midi_clock and not config.link,
        )
        try:
            self.midi_input = MidiInput.open(control, config.midi_port, virtual=config.midi_virtual)
        except MidiUnavailable as exc:
            self.midi_status = f"off ({exc})"
            log.warning("MIDI unavailable: %s", exc)
            return
        self.midi_input.start()
        self.midi_status = self.midi_input.describe()

    def _load_engine(self) -> Any:
        from musicldm_core.engine import Engine
        from musicldm_core.loading import quiet_libraries

        quiet_libraries()
        log.info("loading model %s ...", self.config.model)
        started = time.perf_counter()
        engine = Engine.load(self.config.model, device=self.config.device, dtype=self.config.dtype)
        log.info("model loaded in %.1f s", time.perf_counter() - started)
        self._warm_engine = True  # compiled and warmed on the worker thread (_warm_up)
        return engine

    def _warm_up(self) -> None:
        """On the worker thread, before its first job: compile and warm the engine (a loaded
        one, or any with ``compile``), then the grid analysis. Compiled code and CUDA graphs are
        per thread, so they are made on the thread that renders."""
        engine = self.engine
        if self.config.compile:
            engine.compile()
            self._compile_warmup(engine)
        elif self.config.warmup and self._warm_engine:
            log.info("warm-up render took %.2f s", engine.warmup())
        if self.config.warmup:
            _warm_grid()

    def compile_shapes(self) -> list[tuple[int, bool]]:
        """The (takes, guided) batches compiled at start: ``compile_batches`` (or the device's
        default), each guided and not, none larger than a batch can be."""
        batches = self.config.compile_batches
        if batches is None:
            device = getattr(self.engine, "device", None)
            batches = (1, 2, 4, 8) if device is not None and device.type == "cuda" else (1, 2)
        most = self._max_batch()
        sizes = sorted({min(b, most) for b in batches})
        return [(b, guided) for b in sizes for guided in (True, False)]

    def _compile_warmup(self, engine: Any) -> None:
        """Compile for the shapes a set will use: 1, 2 and 4 bars at the start tempo (in the
        engine's length buckets, so nearby tempi reuse them), with the default preset's steps and
        sampler, for each batch of :meth:`compile_shapes`, so no request waits for the compiler.
        A shape that fails to compile runs eager (the engine logs it once)."""
        from musicldm_core.render import plan_clip

        started = time.perf_counter()
        shapes = self.compile_shapes()
        log.info(
            "compiling the UNet for 1, 2 and 4 bars, batches %s (minutes on a CPU) ...",
            ", ".join(f"{n}{'' if guided else ' unguided'}" for n, guided in shapes),
        )
        try:
            spec = self.build_spec("warm up", GenerateOptions(bars=1, seed=0))
            frames = [
                plan_clip(self.build_spec("warm up", GenerateOptions(bars=bars, seed=0))).frames
                for bars in (1, 2, 4)
            ]
            engine.warmup(
                frames=frames, steps=min(spec.steps, 3), scheduler=spec.scheduler, shapes=shapes
            )
        except Exception as exc:
            engine.decompile()
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            log.warning("compiling the UNet failed (%s); rendering without it", first_line)
            return
        log.info(
            "compiled the UNet (%s) for 1, 2 and 4 bars at %g BPM in %.1f s",
            engine.compiled,
            self.tempo,
            time.perf_counter() - started,
        )

    def _max_batch(self) -> int:
        if self.config.max_batch is not None:
            return self.config.max_batch
        device = getattr(self.engine, "device", None)
        return 8 if device is not None and device.type in ("cuda", "mps") else 4

    def _recover(self) -> None:
        """Queue the jobs the journal holds unfinished from the last run.

        Runs after the OSC transport exists (its replies can go out) and before the worker
        starts. Takes delivered before the restart are not rendered again: a job resumes with its
        missing takes, and a clip file written just before a crash but not yet recorded is found
        in the output folder and adopted (recorded and announced with ``/musicldm/done``).
        Stale ``live`` jobs are ended with one ``/musicldm/fail … cancelled`` per take.
        """
        assert self.journal is not None
        now = time.time()
        recovered = 0
        unfinished = self.journal.unfinished()
        on_disk = (
            self.delivery.clips_by_seed(min(e.created for e in unfinished) - 1.0)
            if unfinished
            else {}
        )
        for entry in unfinished:
            request = entry.request
            spec = spec_from_dict(request["spec"])
            job = Job(
                seq=entry.seq,
                job_id=entry.job_id,
                spec=spec,
                priority=entry.priority,
                created=entry.created,
                origin=tuple(tuple(a) for a in entry.reply_to),  # type: ignore[misc]
                slot=request.get("slot"),
                play=bool(request.get("play")),
                done_takes=self.journal.delivered_takes(entry.seq),
            )
            if job.priority == "live" and now - entry.created > self.config.stale_live_seconds:
                job.finish()
                message = (
                    f"stale live job from the last run (older than "
                    f"{self.config.stale_live_seconds:g} s), not rendered"
                )
                self.journal.end_job(entry.seq, "cancelled", "cancelled", message)
                self.replies.job_failed(job.job_id, "cancelled", message, job.takes, job.origin)
                log.info("job %s: %s", printable(job.job_id), message)
                continue
            job = self._adopt(job, entry, on_disk)
            if job.takes == 0:  # every take is on disk and in the library now
                job.finish()
                self.journal.end_job(entry.seq, "done")
                continue
            if job.done_takes:
                log.info(
                    "job %s: resuming with takes %s (%d delivered before the restart)",
                    printable(job.job_id),
                    ", ".join(map(str, job.remaining_takes)),
                    len(job.done_takes),
                )
            # Not entered in _open_jobs: ids are checked against this run's jobs only, so the
            # live code's slotN.M numbering, which starts again each run, never clashes with a
            # slot take recovered from the last run.
            self.queue.put(job, force=True)
            recovered += 1
        if recovered:
            log.info("recovered %d unfinished jobs from the journal", recovered)

    def _adopt(self, job: Job, entry: JournalJob, on_disk: dict[int, list[Path]]) -> Job:
        """``job`` with the takes whose files are in the output folder but not in the library
        (written, then killed before the commit) recorded, announced and counted as done.
        ``on_disk``: the output folder's recent clips by seed."""
        from musicldm_core.engine import SEED_MODULUS
        from musicldm_core.wavfile import read_clip_info

        assert self.journal is not None
        spec = job.spec
        done = set(job.done_takes)
        for take in job.remaining_takes:
            seed = (int(spec.seed or 0) + take) % SEED_MODULUS
            for path in on_disk.get(seed, ()):
                if self.journal.clip_by_path(str(path)) is not None:
                    continue  # a recorded clip: this job's delivered take, or another job's
                try:
                    info = read_clip_info(path)
                    settings = json.loads(info["info"].get("comment") or "{}")
                    mtime = path.stat().st_mtime
                except (OSError, ValueError):
                    continue
                if not isinstance(settings, dict) or mtime < entry.created - 1.0:
                    continue  # not our metadata, or made before this job was accepted
                made = (settings.get(k) for k in ("prompt", "seed", "take", "steps", "bpm"))
                if tuple(made) != (spec.prompt, seed, take, spec.steps, spec.bpm):
                    continue
                bars = None if spec.seconds is not None else spec.bars
                record = ClipRecord(
                    job_id=job.job_id,
                    path=str(path),
                    prompt=spec.prompt,
                    seconds=float(info["seconds"]),
                    bpm=spec.bpm,
                    bars=bars,
                    beats_per_bar=spec.beats_per_bar,
                    seed=seed,
                    take=take,
                    score=settings.get("score"),
                    settings=settings,
                    created=mtime,
                )
                self.journal.add_clip(record, job_seq=job.seq)
                done.add(take)
                log.info(
                    "job %s: take %d was written before the restart but not recorded: adopted %s",
                    printable(job.job_id),
                    take,
                    path,
                )
                self.replies.send(
                    contract.done(
                        job.job_id,
                        path,
                        seconds=record.seconds,
                        bpm=spec.bpm,
                        bars=0 if bars is None else bars,
                        seed=seed,
                        grid=settings.get("grid"),
                    ),
                    job.origin,
                )
                break
        return dataclasses.replace(job, done_takes=frozenset(done))

    def stop(self, grace_seconds: float = 3.0) -> None:
        """Stop taking work, let the running job finish or abandon it, close everything."""
        self._accepting = False
        if self.osc is not None:
            self.osc.stop()
        if self.midi_input is not None:
            self.midi_input.stop()
        if self.link is not None:
            self.link.stop()
        if self.live is not None:
            self.live.close()
        self.queue.close()
        if self.worker is not None:
            self.worker.stop(grace_seconds)
        if self.osc is not None:
            self.osc.close()
        if self.journal is not None:
            self.journal.close()
        self.state_lock.release()  # last: nothing of ours touches the state folder any more
        self._stopped.set()

    @property
    def address(self) -> Address:
        """Where the OSC transport listens (host, port): the port is known after start."""
        assert self.osc is not None
        return (self.osc.host, self.osc.port)

    def handle(self, address: str, args: list[Any], sender: Address) -> None:
        """Answer one OSC message (what the transport calls). Never raises."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request %s %s from %s:%s", printable(address), printable(args), *sender[:2])
        self.handlers.handle(address, args, sender)

    # -- the job system's front door (OSC thread, live code) -------------------------------------

    def new_id(self) -> int:
        """An id no other job of this state folder has: above every int id seen so far.

        Never above :data:`~daemon.wire.contract.ID_MAX`, so every reply can carry it: when a
        client took the top id, numbering starts again from 1 (with a warning)."""
        with self._id_lock:
            value = self._next_id
            if value > ID_MAX:
                log.warning("job ids reached %d (an OSC int's largest); numbering from 1", ID_MAX)
                value = 1
            self._next_id = value + 1
            return value

    def _saw_id(self, job_id: JobId) -> None:
        """A client chose ``job_id``: the daemon's own ids go above it from now on."""
        if isinstance(job_id, int) and not isinstance(job_id, bool) and job_id <= ID_MAX:
            with self._id_lock:
                self._next_id = max(self._next_id, job_id + 1)

    def build_spec(
        self, prompt: str, options: GenerateOptions | None, *, tempo: float | None = None
    ) -> ClipSpec:
        """A validated, seeded spec (see :meth:`daemon.app.defaults.Defaults.build_spec`);
        ``tempo`` replaces the session's where no option or default gives a ``bpm``."""
        return self.defaults.build_spec(prompt, options, tempo=tempo)

    def set_default(self, key: str, value: Any) -> None:
        """Change a default for later requests (``/musicldm/set``, a MIDI CC); ``None`` forgets
        it. ``bpm`` is the session's tempo, not a default of its own."""
        if key == "bpm" and value is not None:
            self.set_tempo(float(value))
        self.defaults.set(key, value)

    def submit(
        self,
        job_id: JobId,
        spec: ClipSpec,
        *,
        priority: str = "normal",
        origin: tuple[Address, ...] = (),
        slot: int | None = None,
        play: bool = False,
    ) -> Job:
        """Journal and queue a job, then send ``/queued``.

        Raises shutting_down, queue_full, model_error (the worker thread has stopped: nothing
        would render it), bad_request (an unfinished job has this id already) and io_error
        (the journal cannot record it).
        """
        if not self._accepting:
            raise ShuttingDown("the daemon is shutting down and takes no new jobs")
        dead = self.worker_dead()
        if dead is not None:
            raise ModelError(
                f"nothing can be rendered: the worker thread stopped ({dead}); restart the "
                "daemon (accepted jobs stay in the journal and render after the restart)"
            )
        if len(self.queue) >= self.queue.maxsize:  # checked again, under its lock, by put()
            raise QueueFull(
                f"the queue holds {self.queue.maxsize} jobs already; wait or cancel some"
            )
        assert self.journal is not None
        key = _id_key(job_id)
        with self._submit_lock:  # the check and the registration of the id are one step
            other = self._open_jobs.get(key)
            if other is not None and not other.finished:
                raise BadRequest(
                    f"id {job_id!r} is taken by a job that is still queued or running; "
                    "choose another id, or leave id out and the daemon picks a free one",
                    key="id",
                )
            request = {"spec": spec_to_dict(spec), "slot": slot, "play": play}
            seq = self.journal.add(job_id, request, priority, reply_to=origin)
            self._saw_id(job_id)
            job = Job(
                seq=seq,
                job_id=job_id,
                spec=spec,
                priority=priority,
                origin=origin,
                slot=slot,
                play=play,
            )
            if len(self._open_jobs) >= 2 * self.queue.maxsize:
                self._open_jobs = {k: j for k, j in self._open_jobs.items() if not j.finished}
            self._open_jobs[key] = job
        try:
            with self.replies.ordered():  # /queued goes out before the worker's /started
                position = self.queue.put(job)
                self.replies.queued(job, position)
        except MusicLDMError as exc:
            job.finish()
            self.journal.end_job(seq, "failed", exc.code, exc.message)
            raise
        log.debug(
            "job %s: queued at %d (%s, %d takes, priority %s)",
            printable(job_id),
            position,
            printable(spec.prompt),
            spec.takes,
            priority,
        )
        return job

    def worker_dead(self) -> str | None:
        """Why the worker thread stopped on its own, or None while it runs (or before start)."""
        worker = self.worker
        if worker is None or not self._accepting:
            return None
        if worker.dead is not None:
            return str(worker.dead)
        if not worker.alive:
            return "it ended unexpectedly; see the log"
        return None

    def _worker_state(self) -> str:
        """``ok``; ``warming`` while the worker compiles and warms up before its first job
        (jobs wait meanwhile: a performer sees why); ``dead (why)`` when it has stopped."""
        dead = self.worker_dead()
        if dead is not None:
            return f"dead ({dead})"
        worker = self.worker
        if worker is not None and worker.alive and not worker.warmed.is_set():
            return "warming"
        return "ok"

    def cancel_jobs(self, matches: Callable[[Job], bool]) -> int:
        """Cancel the queued and running jobs ``matches`` picks; each take ends in one
        ``/fail … cancelled``. Returns how many were found."""
        assert self.journal is not None
        removed = self.queue.remove(matches)
        for job in removed:
            if job.finish():
                self.journal.end_job(job.seq, "cancelled", "cancelled", "cancelled")
                self.replies.job_failed(
                    job.job_id, "cancelled", "cancelled while queued", job.takes, job.origin
                )
        running = [j for j in (self.worker.running if self.worker else []) if matches(j)]
        for job in running:
            job.cancel_requested.set()  # the worker sends the fail when the engine stops
        return len(removed) + len(running)

    # -- what the handlers ask of the rest (daemon.app.handlers.App) -----------------------------

    def live_missing(self) -> str | None:
        """Why there is no live playback (the audio status), or None when there is."""
        return None if self.live is not None else self.audio_status

    def live_or_refuse(self, what: str) -> Any:
        """The live playback, or ``not_found`` saying that ``what`` needs audio output."""
        if self.live is None:
            raise NotFound(f"{what} needs audio output, which is {self.audio_status}")
        return self.live

    def clip_path(self, target: JobId) -> tuple[Path, JobId]:
        """The file of the library's clip with job id ``target``; ``not_found`` if none."""
        assert self.journal is not None
        record = self.journal.find_clip(target)
        if record is None:
            raise NotFound(f"no clip in the library has id {target!r}")
        return Path(record.path), record.job_id

    def path_inside_output(self, path: str) -> Path:
        """``path`` resolved, when it lies inside the output folder; else ``bad_request``."""
        return self.delivery.resolve_inside(path)

    @property
    def tempo(self) -> float:
        """The session's tempo: what new clips get by default."""
        return self.session.state.bpm

    def set_tempo(self, bpm: float) -> bool:
        """Set the tempo; False when an external clock (MIDI clock, Link) owns it."""
        return self.session.set_tempo(bpm)

    def set_transport(self, running: bool) -> None:
        """Start or stop the internal clock (needs live playback)."""
        self.live_or_refuse("/musicldm/transport")
        self.session.set_running(running)

    def transport_running(self) -> bool:
        """Whether the clock runs."""
        return self.session.state.running

    def register(self, target: Address, on: bool) -> None:
        """(Un)register ``target`` for every event (``/musicldm/notify``)."""
        assert self.osc is not None
        if on:
            self.osc.replier.register(target)
        else:
            self.osc.replier.unregister(target)

    def status(self) -> dict[str, Any]:
        """The ``/musicldm/status.reply`` pairs (at least the contract's STATUS_KEYS)."""
        info = self.engine.describe() if self.engine is not None else {}
        running = self.worker.running if self.worker is not None else []
        osc = self.osc
        return {
            "queued": len(self.queue),
            "running": len(running),
            "device": info.get("device", "none"),
            "model": info.get("model", self.config.model),
            "bpm": self.tempo,
            "voices": self.live.mixer.voices_active if self.live is not None else 0,
            "version": __version__,
            "audio": self.audio_status,
            "midi": self.midi_input.describe() if self.midi_input else self.midi_status,
            "link": self.link_status,
            "transport": "start" if self.session.state.running else "stop",
            "done": self.worker.rendered if self.worker is not None else 0,
            "failed": self.worker.failed if self.worker is not None else 0,
            "dropped": osc.dropped if osc is not None else 0,
            "malformed": osc.malformed if osc is not None else 0,
            "overflowed": osc.overflowed if osc is not None else 0,
            "replies_dropped": osc.replier.overflowed if osc is not None else 0,
            "uptime": round(time.time() - self.started_at, 1),
            "out": str(self.config.out),
            "worker": self._worker_state(),
        }

    # -- running -----------------------------------------------------------------------------------

    def wait(self) -> None:
        """Block until :meth:`stop` has run (from a signal handler or another thread)."""
        self._stopped.wait()


def _id_key(job_id: JobId) -> tuple[str, JobId]:
    """Ids are equal when their type and value are: ``7`` and ``"7"`` are two ids."""
    return (type(job_id).__name__, job_id)


def _midi_cc(mapping: Any) -> Any:
    from daemon.live.midi import INTEGER_KEYS, CCMapping

    integer = mapping.integer or mapping.key in INTEGER_KEYS  # `integer = true` rounds any
    return CCMapping(mapping.key, mapping.lo, mapping.hi, integer=integer)
