"""Live playback: clip slots that never go silent, quantized triggers, ``/play``, ``/stop``,
tempo and transport, and the ``/playing``, ``/stopped`` and ``/late`` events they raise.

Threads:

* the OSC thread and the MIDI thread call :meth:`Live.define_slot`, :meth:`~Live.trigger`,
  :meth:`~Live.play_file`, :meth:`~Live.stop`, :meth:`~Live.set_tempo`,
  :meth:`~Live.transport` — they only enqueue mixer commands and jobs, never wait on the model;
* the worker thread calls :meth:`Live.on_clip` when a take is written: the clip is resampled to
  the device rate there, off the audio thread, and parked in its slot;
* one event thread of this module drains the mixer's events and sends the replies;
* the audio callback (:class:`daemon.live.player.Mixer`) only mixes.

A slot keeps ``ahead`` takes rendered (at ``normal`` priority, below ``live`` work). A trigger
launches the next ready take at the quantize point and asks for a replacement; with none ready,
the last take plays again, so the slot never goes silent, and the fresh take follows at the
next quantize point once it is ready — reported with ``/musicldm/late id``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musicldm_core.dsp import resample
from musicldm_core.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from daemon.app.daemon import Daemon
    from daemon.jobs.queue import Job
    from daemon.live.audio_out import AudioOutput
    from daemon.live.player import Mixer
    from musicldm_core.render import Clip

__all__ = ["PLAY_SLOTS", "Live", "MidiBridge"]

log = logging.getLogger(__name__)

SLOTS = 128
"""User slots 0–127 (the contract's range)."""

PLAY_SLOTS = 16
"""Extra mixer slots 128–143 carry ``/play`` and ``generate … play 1`` clips without a slot."""

TEMPO_TOLERANCE = 0.1
"""A take rendered within this many BPM of the clock's tempo still fits; beyond, the slot renders
fresh takes at the new tempo (and plays the old ones only until those are ready)."""


@dataclass(eq=False)  # compared by identity: removing one from a deque must not compare audio
class Take:
    """A finished clip, ready to sound: mono float32 at the device rate."""

    audio: np.ndarray
    path: str
    job_id: int | str
    bpm: float | None = None
    """The tempo it was rendered at (None: a length in seconds, fits any tempo)."""


@dataclass
class SlotState:
    """What one slot plays and what it has ready."""

    prompt: str | None = None
    options: Any = None
    ahead: int = 1
    ready: deque[Take] = field(default_factory=deque)
    last: Take | None = None
    pending: dict[int | str, float | None] = field(default_factory=dict)
    """Job id → tempo of each take being rendered for this slot."""
    made: int = 0
    """Takes asked for so far: with a fixed ``seed``, take n uses seed + n (a new take each
    time, the same sequence every set)."""
    late_due: int | None = None
    quantize: str = "bar"
    loop: bool = True
    gain: float = 1.0
    gate: bool = False
    follow: bool = False
    """Playing a take at an old tempo: swap in the first fresh take at the next quantize point."""
    origin: tuple[tuple[str, int], ...] = ()


class Live:
    """Slots, triggers and playback events on top of a :class:`~daemon.live.player.Mixer`."""

    def __init__(
        self, daemon: Daemon, mixer: Mixer, output: AudioOutput, *, device_rate: int
    ) -> None:
        self.daemon = daemon
        self.mixer = mixer
        self.output = output
        self.device_rate = device_rate
        self.slots: dict[int, SlotState] = {}
        self._lock = threading.RLock()
        self._play_slots = itertools.cycle(range(SLOTS, SLOTS + PLAY_SLOTS))
        self._job_numbers = itertools.count(1)
        self._expect_late: dict[object, int] = {}
        self.external_tempo = False
        self._origins: dict[int, tuple[tuple[str, int], ...]] = {}
        self._slot_jobs: set[int | str] = set()  # every job id this module asked for
        self._sounding: set[int] = set()  # slots the mixer reported playing (event thread)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="live-events", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.output.start()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.output.stop()

    def describe(self) -> str:
        return self.output.describe()

    # -- requests (OSC / MIDI threads) -----------------------------------------------------------

    def _slot(self, index: int) -> SlotState:
        if not 0 <= index < SLOTS:
            raise BadRequest(f"index must be an integer from 0 to {SLOTS - 1}, got {index}")
        return self.slots.setdefault(index, SlotState())

    def define_slot(
        self,
        index: int,
        prompt: str,
        options: Any,
        ahead: int | None,
        origin: tuple,
        *,
        gate: bool | None = None,
    ) -> None:
        """Say what slot ``index`` plays; renders ``ahead`` takes in the background."""
        self.daemon.build_spec(prompt, options)  # validate now, so errors reach the sender
        with self._lock:
            slot = self._slot(index)
            changed = slot.prompt != prompt or slot.options != options
            slot.prompt, slot.options, slot.origin = prompt, options, origin
            self._origins[index] = origin
            slot.ahead = ahead or slot.ahead or 1
            if gate is not None:
                slot.gate = bool(gate)
            if changed:
                slot.ready.clear()  # old prompt's takes no longer belong here
                slot.made = 0
                outdated = set(slot.pending)
                slot.pending.clear()
                if outdated:
                    self.daemon.cancel_jobs(lambda job: job.job_id in outdated)
            self._refill(index, slot)

    def _target_bpm(self, slot: SlotState) -> float | None:
        """The tempo the slot's takes are rendered at now (None: a length in seconds)."""
        if slot.prompt is None:
            return None
        spec = self.daemon.build_spec(slot.prompt, slot.options)
        return None if spec.seconds is not None else spec.bpm

    @staticmethod
    def _fits(bpm: float | None, target: float | None) -> bool:
        return bpm is None or target is None or abs(bpm - target) <= TEMPO_TOLERANCE

    def _refill(self, index: int, slot: SlotState) -> None:
        """Render takes until ``ahead`` of them, at the current tempo, are ready or coming.

        Ready takes at another tempo stay as a fallback (at most one); they do not count."""
        if slot.prompt is None:
            return
        target = self._target_bpm(slot)
        stale = [t for t in slot.ready if not self._fits(t.bpm, target)]
        for take in stale[:-1]:  # keep the newest stale take only
            slot.ready.remove(take)
        fresh = sum(self._fits(t.bpm, target) for t in slot.ready)
        coming = sum(self._fits(bpm, target) for bpm in slot.pending.values())
        while fresh + coming < slot.ahead:
            job_id = f"slot{index}.{next(self._job_numbers)}"
            spec = self.daemon.build_spec(slot.prompt, slot.options)
            # a fixed seed gives seed, seed + 1, ... (random seeds stay random)
            spec = replace(spec, seed=(int(spec.seed or 0) + slot.made) % 2**31)
            self.daemon.submit(job_id, spec, priority="normal", origin=slot.origin, slot=index)
            self._slot_jobs.add(job_id)
            slot.made += 1
            slot.pending[job_id] = None if spec.seconds is not None else spec.bpm
            coming += 1

    def trigger(
        self,
        index: int,
        *,
        quantize: str | None = None,
        loop: bool | None = None,
        gain: float | None = None,
        origin: tuple[tuple[str, int], ...] = (),
    ) -> None:
        """Launch slot ``index``'s next ready take at the quantize point (or its last take again
        if none is ready), and start rendering a replacement."""
        with self._lock:
            slot = self._slot(index)
            if origin:
                self._origins[index] = origin
            if quantize is not None:
                slot.quantize = quantize
            if loop is not None:
                slot.loop = loop
            if gain is not None:
                slot.gain = gain
            target = self._target_bpm(slot)
            fitting = [t for t in slot.ready if self._fits(t.bpm, target)]
            if fitting:
                take = fitting[0]
                slot.ready.remove(take)
                slot.last = take
                slot.late_due = None
                self._launch(index, take, slot)
            elif slot.last is not None and self._fits(slot.last.bpm, target):
                self._launch(index, slot.last, slot)  # never silence
                slot.late_due = self.mixer.launch_point(slot.quantize)
            elif slot.ready:  # only takes at an old tempo: play one until a fresh one is ready
                take = slot.ready.pop()
                slot.last = take
                self._launch(index, take, slot)
                slot.late_due = self.mixer.launch_point(slot.quantize)
            elif slot.last is not None:
                self._launch(index, slot.last, slot)  # never silence
                slot.late_due = self.mixer.launch_point(slot.quantize)
            elif slot.prompt is None:
                raise NotFound(
                    f"slot {index} has nothing to play: define it with /musicldm/slot {index} "
                    "prompt, or generate with slot "
                    f"{index}"
                )
            else:
                slot.late_due = self.mixer.launch_point(slot.quantize)
            self._refill(index, slot)

    def _launch(self, index: int, take: Take, slot: SlotState) -> None:
        tag = (index, take.path, take.job_id)
        self.mixer.play(
            index, take.audio, quantize=slot.quantize, loop=slot.loop, gain=slot.gain, tag=tag
        )

    def play_file(
        self,
        path: Path,
        job_id: int | str | None = None,
        *,
        quantize: str | None = None,
        loop: bool | None = None,
        gain: float | None = None,
        origin: tuple[tuple[str, int], ...] = (),
    ) -> int:
        """Play a finished clip file on a free play voice; returns the mixer slot used."""
        import soundfile as sf

        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise NotFound(f"cannot read {path}: {exc}") from exc
        mono = np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32)
        samples = resample(mono, rate, self.device_rate)
        voice = next(self._play_slots)
        self._origins[voice] = origin
        self.mixer.play(
            voice,
            samples,
            quantize=quantize or "bar",
            loop=True if loop is None else loop,
            gain=1.0 if gain is None else gain,
            tag=(voice, str(path), job_id),
        )
        return voice

    def stop(
        self,
        index: int | None,
        *,
        quantize: str | None = None,
        origin: tuple[tuple[str, int], ...] = (),
    ) -> None:
        """Stop one slot or everything at the quantize point."""
        if index is not None:
            self._slot(index)
            if origin:
                self._origins[index] = origin
        self.mixer.stop(index, quantize=quantize or "bar")

    def release(self, index: int) -> bool:
        """A MIDI note-off: a slot in gate mode stops at its quantize point; others play on.

        Returns whether the slot was stopped."""
        with self._lock:
            slot = self.slots.get(index)
            if slot is None or not slot.gate:
                return False
            quantize = slot.quantize
        self.mixer.stop(index, quantize=quantize)
        return True

    def set_tempo(self, bpm: float, *, external: bool = False) -> bool:
        """Set the clock's tempo; OSC tempo is ignored while following MIDI clock."""
        if self.external_tempo and not external:
            return False
        self.mixer.set_tempo(bpm)
        self.daemon.tempo = float(bpm)
        self._retempo()
        return True

    def _retempo(self) -> None:
        """After a tempo change: slots whose takes no longer fit render fresh ones."""
        sounding = set(self._sounding)
        with self._lock:
            for index, slot in self.slots.items():
                if index in sounding and slot.last is not None:
                    slot.follow = not self._fits(slot.last.bpm, self._target_bpm(slot))
                try:
                    self._refill(index, slot)
                except Exception as exc:  # a full queue, say: the next trigger tries again
                    log.warning("slot %s: cannot render at the new tempo: %s", index, exc)

    def transport(self, running: bool, *, resume: bool = False) -> None:
        self.mixer.transport(running, resume=resume)
        if not running:
            self.mixer.stop(None, quantize="none")

    # -- the worker's clips (worker thread) ------------------------------------------------------

    def on_clip(self, job: Job, clip: Clip) -> None:
        """A take was written: park it in its slot, or play it, as the job asked."""
        if job.slot is None and not job.play:
            return
        audio = resample(clip.audio, clip.plan.out_rate, self.device_rate)
        bpm = None if clip.spec.seconds is not None else float(clip.spec.bpm)
        take = Take(np.ascontiguousarray(audio, dtype=np.float32), str(clip.path), job.job_id, bpm)
        if job.slot is None:
            self._play_take(take)
            return
        with self._lock:
            slot = self._slot(job.slot)
            if job.job_id in self._slot_jobs and job.job_id not in slot.pending:
                return  # rendered for a prompt the slot no longer has
            if clip.rank == 0:
                slot.pending.pop(job.job_id, None)
            waiting = (slot.late_due is not None or slot.follow) and self._fits(
                bpm, self._target_bpm(slot)
            )
            if waiting or job.play:
                slot.follow = False
                # a trigger is waiting for a fresh take: it goes at the next quantize point
                slot.last = take
                if slot.late_due is not None:
                    self._expect_late[(job.slot, take.path, take.job_id)] = slot.late_due
                slot.late_due = None
                self._launch(job.slot, take, slot)
            else:
                slot.ready.append(take)
            self._refill(job.slot, slot)

    def _play_take(self, take: Take) -> None:
        voice = next(self._play_slots)
        self.mixer.play(
            voice,
            take.audio,
            quantize="bar",
            loop=True,
            gain=1.0,
            tag=(voice, take.path, take.job_id),
        )

    # -- events (event thread) -------------------------------------------------------------------

    def _pump(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self._send_events()
            except Exception:
                log.exception("playback events failed")
        self._send_events()

    def _send_events(self) -> None:
        replier = self.daemon.osc.replier if self.daemon.osc is not None else None
        for kind, slot, tag, sample in self.mixer.drain_events():
            if kind == "playing":
                self._sounding.add(slot)
            elif kind == "stopped":
                self._sounding.discard(slot)
            if replier is None:
                continue
            to = self._origins.get(slot, ())
            if kind == "playing":
                path = tag[1] if isinstance(tag, tuple) else ""
                replier.send("/musicldm/playing", [slot, path], to=to)
                due = self._expect_late.pop(tag, None) if isinstance(tag, tuple) else None
                if due is not None and sample > due:
                    replier.send("/musicldm/late", [tag[2]], to=to)
            elif kind == "stopped":
                replier.send("/musicldm/stopped", [slot], to=to)
        if self.mixer.last_error is not None and self.mixer.callback_errors:
            log.error("audio callback error: %s", self.mixer.last_error)


class MidiBridge:
    """What MIDI does (see :class:`daemon.live.midi.MidiActions`), on top of :class:`Live`."""

    def __init__(self, daemon: Daemon, live: Live | None) -> None:
        self.daemon = daemon
        self.live = live

    def trigger(self, index: int, gain: float) -> None:
        if self.live is None:
            return
        try:
            self.live.trigger(index, gain=min(max(gain, 0.0), 2.0))
        except Exception as exc:
            log.warning("MIDI trigger of slot %s: %s", index, exc)

    def release(self, index: int) -> None:
        """Note-off: stops the slot if it is in gate mode (``/musicldm/slot … gate 1``)."""
        if self.live is not None:
            self.live.release(index)

    def set_default(self, key: str, value: float) -> None:
        try:
            self.daemon.set_default(key, value)
        except Exception as exc:
            log.warning("MIDI control of %s: %s", key, exc)

    def set_tempo(self, bpm: float) -> None:
        if self.live is not None:
            self.live.set_tempo(bpm, external=True)
        else:
            self.daemon.tempo = float(bpm)

    def transport(self, command: str) -> None:
        if self.live is not None:
            self.live.transport(command != "stop", resume=command == "continue")

    def align_phase(self, phase: float, read_at: float) -> None:
        """Ableton Link's bar phase: line the daemon's bar lines up with the session's, as
        heard (the output's latency taken into account)."""
        if self.live is not None:
            latency = float(getattr(self.live.output, "latency_seconds", 0.0) or 0.0)
            self.live.mixer.align_phase(phase, read_at - latency)

    def tempo_source_external(self, active: bool) -> None:
        if self.live is not None:
            self.live.external_tempo = active
        log.info("tempo %s MIDI clock", "follows" if active else "no longer follows")
