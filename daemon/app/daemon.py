"""The daemon: wires config, journal, engine, worker and the OSC front-end, and runs them.

:class:`Daemon` starts its parts in one place, in order (journal → engine → worker → recovery of
journaled jobs → OSC), and stops them in the opposite order in a ``finally``. Its request
handlers run on the OSC thread: they turn a typed request (:mod:`daemon.wire.requests`) into a job
or an answer, and never wait on the model. Every :class:`~musicldm_core.errors.MusicLDMError` a
handler raises becomes exactly one ``/musicldm/fail id code message`` here, and nowhere else.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.cli_options import add_model_options
from daemon.config import DaemonConfig, load_config
from daemon.errors import QueueFull, ShuttingDown
from daemon.jobs.delivery import Delivery
from daemon.jobs.journal import Journal
from daemon.jobs.queue import Job, JobQueue
from daemon.wire import requests as protocol
from daemon.wire.osc import Address, OscServer
from musicldm_core.errors import BadRequest, MusicLDMError, NotFound
from musicldm_core.render import Clip, resolve_seed
from musicldm_core.spec import ClipSpec

__all__ = ["Daemon", "clips_main", "midi_ports_main", "serve_main"]

log = logging.getLogger("daemon")

_SPEC_FIELDS = {f.name for f in dataclasses.fields(ClipSpec)} - {"extra"}


class OptionValues:
    """Request options from a dict (attribute access, None when absent)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, key: str) -> Any:
        return self._values.get(key)


def spec_to_dict(spec: ClipSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in _SPEC_FIELDS}


def spec_from_dict(data: dict[str, Any]) -> ClipSpec:
    return ClipSpec(**{k: v for k, v in data.items() if k in _SPEC_FIELDS})


class _Events:
    """Turns the worker's reports into OSC replies (see :class:`daemon.jobs.worker.JobEvents`)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def _send(self, job: Job, address: str, args: list[Any]) -> None:
        if self.daemon.osc is not None:
            self.daemon.osc.replier.send(address, args, to=job.origin)

    def started(self, job: Job) -> None:
        self._send(job, "/musicldm/started", [job.job_id])

    def progress(self, job: Job, step: int, total: int) -> None:
        self._send(job, "/musicldm/progress", [job.job_id, step, total])

    def done(self, job: Job, clip: Clip) -> None:
        spec = clip.spec
        bars = 0 if spec.seconds is not None else spec.bars
        self._send(
            job,
            "/musicldm/done",
            [job.job_id, str(clip.path), float(clip.seconds), float(spec.bpm), bars, clip.seed],
        )

    def failed(self, job: Job, code: str, message: str, takes: int) -> None:
        for _ in range(max(takes, 1)):
            self._send(job, "/musicldm/fail", [job.job_id, code, message])


class Daemon:
    """The long-running process's parts and their request handlers."""

    def __init__(self, config: DaemonConfig, *, engine: Any = None) -> None:
        self.config = config
        self.engine = engine
        self.delivery = Delivery(config.out, day_folders=config.day_folders)
        self.queue = JobQueue(config.queue_size)
        self.journal: Journal | None = None
        self.worker: Any = None
        self.osc: OscServer | None = None
        self.tempo = float(config.tempo)
        self.defaults: dict[str, Any] = {}
        self.started_at = time.time()
        self._next_id = 1
        self._id_lock = threading.Lock()
        self._accepting = False
        self._stopped = threading.Event()
        self.live: Any = None
        self.midi_input: Any = None
        self.audio_status = "off (--no-audio)"
        self.transport_running = True
        self.midi_status = "off"
        self.link: Any = None
        self.link_status = "off"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every part, in order. On failure, whatever started is stopped again."""
        from daemon.jobs.worker import Worker

        try:
            self.config.state.mkdir(parents=True, exist_ok=True)
            self.journal = Journal(self.config.state / "journal.sqlite3")
            self._next_id = self.journal.largest_int_id() + 1
            if self.engine is None:
                self.engine = self._load_engine()
            self.worker = Worker(
                self.engine,
                self.queue,
                journal=self.journal,
                delivery=self.delivery,
                events=_Events(self),
                max_batch_takes=self._max_batch(),
                progress_rate_hz=self.config.progress_rate_hz,
            )
            self.osc = OscServer(
                self.config.host,
                self.config.port,
                self.handle,
                allow=self.config.allow,
                reply_targets=self.config.reply_to,
            )
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
        self.live = Live(self, mixer, output, device_rate=rate)
        self.worker.clip_listeners.append(self.live.on_clip)
        self.live.start()
        self.audio_status = self.live.describe()
        sys.setswitchinterval(0.001)  # the audio callback must get the GIL back quickly

    def _start_midi(self) -> None:
        from daemon.live.midi import LinkFollower, MidiControl, MidiInput, MidiUnavailable, probe
        from daemon.live.slots import MidiBridge

        config = self.config
        if config.link:
            link = LinkFollower(
                MidiBridge(self, self.live), bpm=self.tempo, quantum_beats=config.beats_per_bar
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
            MidiBridge(self, self.live),
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
        if self.config.compile:
            engine.compile()
            self._compile_warmup(engine)
        elif self.config.warmup:
            log.info("warm-up render took %.2f s", engine.warmup())
        return engine

    def _compile_warmup(self, engine: Any) -> None:
        """Compile for the lengths a set will use: 1, 2 and 4 bars at the start tempo, with the
        default preset's steps and sampler, so the first requests do not wait for the compiler."""
        from musicldm_core.render import plan_clip

        started = time.perf_counter()
        log.info("compiling the UNet for 1, 2 and 4 bars (minutes on a CPU) ...")
        try:
            for bars in (1, 2, 4):
                spec = self.build_spec("warm up", OptionValues({"bars": bars, "seed": 0}))
                frames = plan_clip(spec).frames
                engine.warmup(frames=frames, steps=min(spec.steps, 3), scheduler=spec.scheduler)
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
        """Queue the jobs the journal holds unfinished from the last run."""
        assert self.journal is not None
        now = time.time()
        recovered = 0
        for entry in self.journal.unfinished():
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
            )
            if job.priority == "live" and now - entry.created > self.config.stale_live_seconds:
                job.finish()
                self.journal.mark_finished(entry.seq, "cancelled", "cancelled", "stale live job")
                log.info("job %s: stale live job from the last run, not rendered", job.job_id)
                continue
            self.queue.put(job, force=True)
            recovered += 1
        if recovered:
            log.info("recovered %d unfinished jobs from the journal", recovered)

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
        self._stopped.set()

    @property
    def address(self) -> Address:
        assert self.osc is not None
        return (self.osc.host, self.osc.port)

    # -- requests (OSC thread) ---------------------------------------------------------------------

    def handle(self, address: str, args: list[Any], sender: Address) -> None:
        """Answer one OSC message. Never raises."""
        try:
            request = protocol.parse(address, args, max_seconds=self.config.max_seconds)
            self._dispatch(request, address, sender)
        except MusicLDMError as exc:
            job_id = getattr(exc, "job_id", None)
            self._reply(
                "/musicldm/fail",
                [job_id if job_id is not None else address, exc.code, exc.message],
                sender,
            )
        except Exception:
            log.exception("error handling %s %r", address, args)
            self._reply(
                "/musicldm/fail", [address, "model_error", "internal error; see the log"], sender
            )

    def _reply(self, address: str, args: list[Any], sender: Address) -> None:
        if self.osc is not None:
            self.osc.replier.send(address, args, to=[sender])

    def _dispatch(self, request: Any, address: str, sender: Address) -> None:
        handler = getattr(self, "_on_" + type(request).__name__.lower(), None)
        if handler is None:
            raise NotFound(
                f"{address} needs audio playback, which this daemon does not offer yet "
                "(files only); the clip files are in the output folder"
            )
        handler(request, sender)

    def _new_id(self) -> int:
        """An id no other job of this state folder has: above every int id seen so far."""
        with self._id_lock:
            value = self._next_id
            self._next_id += 1
            return value

    def _saw_id(self, job_id: int | str) -> None:
        """A client chose ``job_id``: the daemon's own ids go above it from now on."""
        if isinstance(job_id, int) and not isinstance(job_id, bool):
            with self._id_lock:
                self._next_id = max(self._next_id, job_id + 1)

    def _option(self, options: Any, key: str) -> Any:
        value = getattr(options, key, None)
        if value is None:
            value = self.defaults.get(key, self.config.defaults.get(key))
        return value

    def build_spec(self, prompt: str, options: Any) -> ClipSpec:
        """A validated, seeded spec from request options, /set defaults, config and preset."""
        preset_name = self._option(options, "preset") or "live"
        preset = self.config.presets.get(preset_name)
        if preset is None:
            raise BadRequest(
                f"preset must be one of {', '.join(sorted(self.config.presets))}, "
                f"got {preset_name!r}",
                key="preset",
            )

        def pick(key: str, fallback: Any) -> Any:
            value = self._option(options, key)
            return fallback if value is None else value

        spec = ClipSpec(
            prompt=prompt,
            bars=pick("bars", 1),
            beats_per_bar=pick("beats", self.config.beats_per_bar),
            bpm=pick("bpm", self.tempo),
            seconds=self._option(options, "seconds"),
            seed=self._option(options, "seed"),
            steps=pick("steps", preset.steps),
            guidance=pick("guidance", preset.guidance),
            negative_prompt=pick("negative", preset.negative_prompt),
            scheduler=pick("scheduler", preset.scheduler),
            takes=pick("takes", 1),
            loop=bool(pick("loop", True)),
            sample_rate=self.config.sample_rate,
            sample_format=self.config.sample_format,
            loudness_lufs=self.config.loudness_lufs,
            name=getattr(options, "name", None),
        )
        return resolve_seed(spec.validated(max_seconds=self.config.max_seconds))

    def _on_generate(self, request: Any, sender: Address) -> None:
        options = request.options
        job_id = options.id if options.id is not None else self._new_id()
        try:
            spec = self.build_spec(request.prompt, options)
        except BadRequest as exc:
            exc.job_id = job_id  # type: ignore[attr-defined]
            raise
        slot = self._option(options, "slot")
        play = bool(self._option(options, "play"))
        if self.live is None and (slot is not None or play):
            asked = f"slot {slot}" if slot is not None else "play 1"
            refusal = NotFound(
                f"{asked} needs audio output, which is {self.audio_status}; leave it out to "
                "only render the file"
            )
            refusal.job_id = job_id  # type: ignore[attr-defined]
            raise refusal
        self.submit(
            job_id,
            spec,
            priority=self._option(options, "priority") or "normal",
            origin=(sender,),
            slot=slot,
            play=play,
        )

    def submit(
        self,
        job_id: int | str,
        spec: ClipSpec,
        *,
        priority: str = "normal",
        origin: tuple[Address, ...] = (),
        slot: int | None = None,
        play: bool = False,
    ) -> Job:
        """Journal and queue a job, then send ``/queued``. Raises queue_full / shutting_down."""
        if not self._accepting:
            raise ShuttingDown("the daemon is shutting down and takes no new jobs")
        if len(self.queue) >= self.queue.maxsize:  # checked again, under its lock, by put()
            raise QueueFull(
                f"the queue holds {self.queue.maxsize} jobs already; wait or cancel some"
            )
        assert self.journal is not None
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
        try:
            position = self.queue.put(job)
        except MusicLDMError as exc:
            job.finish()
            self.journal.mark_finished(seq, "failed", exc.code, exc.message)
            raise
        if self.osc is not None:
            self.osc.replier.send("/musicldm/queued", [job_id, position], to=origin)
        return job

    def _on_cancel(self, request: Any, sender: Address) -> None:
        target = request.job_id

        def matches(job: Job) -> bool:
            return target is None or job.job_id == target

        if not self.cancel_jobs(matches) and target is not None:
            raise NotFound(f"no queued or running job has id {target!r}")

    def cancel_jobs(self, matches: Callable[[Job], bool]) -> int:
        """Cancel the queued and running jobs ``matches`` picks; each ends in one
        ``/fail … cancelled``. Returns how many were found."""
        assert self.journal is not None
        removed = self.queue.remove(matches)
        for job in removed:
            if job.finish():
                self.journal.mark_finished(job.seq, "cancelled", "cancelled", "cancelled")
                for _ in range(job.takes):
                    self.osc.replier.send(  # type: ignore[union-attr]
                        "/musicldm/fail",
                        [job.job_id, "cancelled", "cancelled while queued"],
                        to=job.origin,
                    )
        running = [j for j in (self.worker.running if self.worker else []) if matches(j)]
        for job in running:
            job.cancel_requested.set()  # the worker sends the fail when the engine stops
        return len(removed) + len(running)

    def _need_live(self, address: str) -> Any:
        if self.live is None:
            raise NotFound(f"{address} needs audio output, which is {self.audio_status}")
        return self.live

    def _on_play(self, request: Any, sender: Address) -> None:
        job_id = None
        if request.is_path:
            path = self.delivery.resolve_inside(str(request.target))
        else:
            assert self.journal is not None
            record = self.journal.find_clip(request.target)
            if record is None:
                raise NotFound(f"no clip in the library has id {request.target!r}")
            path, job_id = Path(record.path), record.job_id
        live = self._need_live("/musicldm/play")
        pb = request.playback
        live.play_file(
            path, job_id, quantize=pb.quantize, loop=pb.loop, gain=pb.gain, origin=(sender,)
        )

    def _on_slot(self, request: Any, sender: Address) -> None:
        self._need_live("/musicldm/slot").define_slot(
            request.index,
            request.prompt,
            request.options,
            request.ahead,
            (sender,),
            gate=request.gate,
        )

    def _on_trigger(self, request: Any, sender: Address) -> None:
        pb = request.playback
        self._need_live("/musicldm/trigger").trigger(
            request.index,
            quantize=pb.quantize or self._option(None, "quantize"),
            loop=pb.loop,
            gain=pb.gain if pb.gain is not None else self._option(None, "gain"),
            origin=(sender,),
        )

    def _on_stop(self, request: Any, sender: Address) -> None:
        self._need_live("/musicldm/stop").stop(
            request.index,
            quantize=request.quantize or self._option(None, "quantize"),
            origin=(sender,),
        )

    def _on_tempo(self, request: Any, sender: Address) -> None:
        if self.live is not None:
            if not self.live.set_tempo(request.bpm):
                log.info("ignored /musicldm/tempo %s: following MIDI clock", request.bpm)
        else:
            self.tempo = float(request.bpm)
        self._reply("/musicldm/value", ["bpm", self.tempo], sender)

    def _on_transport(self, request: Any, sender: Address) -> None:
        self._need_live("/musicldm/transport").transport(request.running)
        self.transport_running = request.running

    def set_default(self, key: str, value: Any) -> None:
        """Change a default for later requests (``/musicldm/set``, MIDI CC)."""
        value = protocol.check_option(key, value, max_seconds=self.config.max_seconds)
        if key == "bpm":
            if self.live is not None:
                self.live.set_tempo(float(value))
            self.tempo = float(value)
        self.defaults[key] = value

    def _on_set(self, request: Any, sender: Address) -> None:
        self.set_default(request.key, request.value)
        self._reply("/musicldm/value", [request.key, request.value], sender)

    def _on_get(self, request: Any, sender: Address) -> None:
        self._reply("/musicldm/value", [request.key, self.value_of(request.key)], sender)

    def value_of(self, key: str) -> Any:
        """The value a later request would use for ``key``."""
        if key == "bpm":
            return self.tempo
        if key == "version":
            return __version__
        if key == "transport":
            return "start" if self.transport_running else "stop"
        value = self._option(None, key)
        if value is not None:
            return value
        preset = self.config.presets.get(self._option(None, "preset") or "live")
        preset_keys = {"steps": "steps", "guidance": "guidance", "scheduler": "scheduler"}
        if preset is not None and key in preset_keys:
            return getattr(preset, preset_keys[key])
        if preset is not None and key == "negative":
            return preset.negative_prompt
        builtin = {
            "bars": 1,
            "beats": self.config.beats_per_bar,
            "takes": 1,
            "loop": 1,
            "preset": "live",
            "priority": "normal",
            "play": 0,
            "quantize": "bar",
            "gain": 1.0,
        }
        if key in builtin:
            return builtin[key]
        return ""

    def status(self) -> dict[str, Any]:
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
            "midi": self.midi_status,
            "link": self.link_status,
            "transport": "start" if self.transport_running else "stop",
            "done": self.worker.rendered if self.worker is not None else 0,
            "failed": self.worker.failed if self.worker is not None else 0,
            "dropped": osc.dropped if osc is not None else 0,
            "malformed": osc.malformed if osc is not None else 0,
            "uptime": round(time.time() - self.started_at, 1),
            "out": str(self.config.out),
        }

    def _on_status(self, request: Any, sender: Address) -> None:
        pairs: list[Any] = []
        for key, value in self.status().items():
            pairs += [key, value]
        self._reply("/musicldm/status.reply", pairs, sender)

    def _on_ping(self, request: Any, sender: Address) -> None:
        self._reply("/musicldm/pong", list(request.args), sender)

    def _on_notify(self, request: Any, sender: Address) -> None:
        assert self.osc is not None
        target = (sender[0], request.port or sender[1])
        if request.on:
            self.osc.replier.register(target)
        else:
            self.osc.replier.unregister(target)
        self._reply("/musicldm/value", ["notify", int(request.on)], sender)

    # -- running -----------------------------------------------------------------------------------

    def wait(self) -> None:
        """Block until :meth:`stop` has run (from a signal handler or another thread)."""
        self._stopped.wait()


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musicldm-daemon serve", description="Run the daemon.")
    parser.add_argument(
        "--config", type=Path, help="TOML config file (every setting: docs/config.example.toml)"
    )
    add_model_options(parser)
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="UDP port (default 9000; 0 picks a free one)")
    parser.add_argument(
        "--reply-to",
        action="append",
        metavar="HOST:PORT",
        help="also send every reply here (repeatable; default 127.0.0.1:9001)",
    )
    parser.add_argument(
        "--allow",
        action="append",
        metavar="CIDR",
        help="accept packets from this network (repeatable; needed to bind a non-loopback host)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: Music/MusicLDM)")
    parser.add_argument("--state", type=Path, help="journal and library folder")
    parser.add_argument("--tempo", type=float, help="initial tempo in BPM (default 120)")
    parser.add_argument(
        "--day-folders",
        action="store_true",
        default=None,
        help="one subfolder per day in the output folder",
    )
    parser.add_argument("--max-batch", type=int, help="takes rendered together (default: auto)")
    parser.add_argument("--no-audio", action="store_true", help="run without playback")
    parser.add_argument(
        "--audio-file",
        type=Path,
        metavar="PATH",
        help="no sound card: write what would be heard to this WAV, in real time",
    )
    parser.add_argument("--audio-device", help="output device (name substring or index)")
    parser.add_argument("--audio-rate", type=int, help="output sample rate (default: device's)")
    parser.add_argument("--buffer", type=int, help="audio buffer in frames (default 512)")
    parser.add_argument("--midi-port", help="MIDI input port (name substring)")
    parser.add_argument(
        "--midi-virtual",
        action="store_true",
        default=None,
        help="open a virtual MIDI input named musicldm (where the system allows)",
    )
    parser.add_argument(
        "--link",
        action="store_true",
        default=None,
        help="follow an Ableton Link session's tempo (needs the [link] extra)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the UNet at start (slow start, faster renders; CUDA graphs on a GPU)",
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up render")
    parser.add_argument("--log-level", help="debug, info, warning or error")
    return parser


def config_from_args(args: argparse.Namespace) -> DaemonConfig:
    from daemon.config import parse_host_port

    overrides: dict[str, Any] = {
        "model": args.model,
        "device": args.device,
        "dtype": args.dtype,
        "host": args.host,
        "port": args.port,
        "out": args.out,
        "state": args.state,
        "tempo": args.tempo,
        "day_folders": args.day_folders,
        "max_batch": args.max_batch,
        "log_level": args.log_level,
    }
    if args.reply_to:
        overrides["reply_to"] = tuple(parse_host_port(t) for t in args.reply_to)
    if args.allow:
        overrides["allow"] = tuple(args.allow)
    overrides.update(
        audio_file=args.audio_file,
        audio_device=args.audio_device,
        audio_rate=args.audio_rate,
        audio_buffer=args.buffer,
        midi_port=args.midi_port,
        midi_virtual=args.midi_virtual,
        link=args.link,
        compile=args.compile,
    )
    if args.no_audio:
        overrides["audio"] = False
    if args.no_warmup:
        overrides["warmup"] = False
    return load_config(args.config, overrides)


def serve_main(argv: Sequence[str]) -> int:
    """``musicldm-daemon serve``: run until SIGINT or SIGTERM."""
    args = _serve_parser().parse_args(list(argv))
    config = config_from_args(args)
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    daemon = Daemon(config)
    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        daemon.start()
        while not stop_requested.wait(0.5):
            pass
    finally:
        daemon.stop()
        log.info("musicldm-daemon stopped")
    return 0


def clips_main(args: argparse.Namespace) -> int:
    """``musicldm-daemon clips``: the most recent clips in the library."""
    overrides = {"state": args.state}
    config = load_config(args.config, overrides)
    path = config.state / "journal.sqlite3"
    if not path.exists():
        print(f"no library yet at {path}", file=sys.stderr)
        return 0
    with Journal(path) as journal:
        for record in journal.recent_clips(args.limit):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
            bars = f"{record.bars} bars" if record.bars else f"{record.seconds:.2f} s"
            print(f"{when}  {record.bpm:g} BPM  {bars}  seed {record.seed}  {record.prompt!r}")
            print(f"    {record.path}")
    return 0


def _midi_cc(mapping: Any) -> Any:
    from daemon.live.midi import INTEGER_KEYS, CCMapping

    return CCMapping(mapping.key, mapping.lo, mapping.hi, integer=mapping.key in INTEGER_KEYS)


def midi_ports_main() -> int:
    """``musicldm-daemon midi-ports``: list MIDI input ports, or say why there are none."""
    from daemon.live.midi import list_inputs, probe

    reason = probe()
    if reason:
        print(f"MIDI is not available here: {reason}", file=sys.stderr)
        return 1
    names = list_inputs()
    if not names:
        print("no MIDI input ports found", file=sys.stderr)
    for name in names:
        print(name)
    return 0


def audio_devices_main() -> int:
    """``musicldm-daemon audio-devices``: list audio outputs, or say why there are none."""
    from daemon.live.audio_out import list_devices, probe

    reason = probe()
    if reason:
        print(f"audio output is not available here: {reason}", file=sys.stderr)
    for line in list_devices():
        print(line)
    return 0 if reason is None else 1
