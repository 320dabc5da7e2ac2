"""The live mixer: voices launched on the beat grid, mixed in the audio callback.

Threads:

* **Any thread** (the OSC handlers, the slot logic) calls :meth:`Mixer.play`, :meth:`~Mixer.stop`,
  :meth:`~Mixer.set_tempo`, :meth:`~Mixer.transport`, :meth:`~Mixer.set_master_gain` and
  :meth:`~Mixer.set_slot_gain`. They validate their arguments in that thread and append one
  command tuple to a ``deque``; they never wait for the audio thread.
* **The audio callback thread** (PortAudio's, or a :class:`daemon.live.audio_out.FileOutput` thread)
  calls :meth:`Mixer.callback`. Only it touches voice state and the :class:`Transport`. At the
  start of each buffer it applies the pending commands, computing each quantize point from the
  transport as the next beat or bar line at or after the buffer's first sample, so a launch or
  stop lands on its exact sample even in the middle of a buffer.
* **One consumer thread** calls :meth:`Mixer.drain_events` for what became audible or fell
  silent, and reads the counters (:attr:`~Mixer.position`, :attr:`~Mixer.voices_active`,
  :attr:`~Mixer.last_callback_seconds`, …) and :attr:`~Mixer.grid` for status.

The callback follows the house rule "the audio callback is sacred": every buffer it uses is
allocated in :meth:`Mixer.__init__`; it works with in-place numpy operations (``out=``), takes no
lock, does no I/O and no logging. It also never hands the GIL away in the middle of a buffer:
NumPy releases the GIL inside any ufunc loop over more than 500 elements, and a thread that gives
the GIL away waits up to the interpreter's switch interval (5 ms) to get it back whenever another
thread is busy in Python. So the callback renders in pieces of at most :data:`GIL_SAFE_FRAMES`
frames and writes each output channel separately.

How clips start and end (all positions are output samples since the stream started):

* A launch into a silent slot plays the clip's first sample, unfaded, at the launch sample (the
  render pipeline gives clips their own fades or seamless loop points).
* A launch into a sounding slot crossfades with equal power over ``fade_samples`` starting at the
  launch sample: the old clip from gain 1, the new one from gain 0.
* A stop fades out over up to ``fade_samples`` ending at the boundary, so the slot is silent
  from the bar or beat line on; ``quantize="none"`` (or a stopped clock) fades from the next
  buffer's first sample.
* A looping clip wraps sample-exactly; a non-looping one ends after its last sample.
* Launches and stops waiting for their line follow the grid: after a tempo change they land on
  the same beat number of the new grid; a transport start moves them to the first line from the
  new beat 0.

Finished clips are not freed in the callback (freeing megabytes can mean an ``munmap`` system
call): their arrays wait in a small queue that :meth:`Mixer.drain_events` empties.
"""

from __future__ import annotations

import math
import time
from collections import deque
from fractions import Fraction
from typing import Any

import numpy as np

from daemon.live.transport import QUANTIZE_MODES, TempoGrid, Transport

__all__ = [
    "GIL_SAFE_FRAMES",
    "MAX_GAIN",
    "Event",
    "Mixer",
]

GIL_SAFE_FRAMES = 256
"""Frames rendered per piece: NumPy keeps the GIL in ufunc loops of at most 500 elements."""

MAX_GAIN = 2.0
"""Largest per-voice, per-slot or master gain (the OSC playback option ``gain`` is 0–2)."""

MAX_COMMANDS_PER_BUFFER = 64
"""Commands applied at the start of one buffer; the rest wait for the next (bounds its cost)."""

EVENT_QUEUE_LENGTH = 4096
"""Events kept for :meth:`Mixer.drain_events`; when nobody drains, the oldest are lost."""

Event = tuple[str, int, Any, int]
"""``(kind, slot, tag, sample)``: kind is ``"playing"``, ``"stopped"`` or ``"dropped"``; sample is
the output-stream sample (since the stream started) where it happens."""

_NEVER = 1 << 62
"""A sample position later than any stream will reach."""

_FREE, _PENDING, _SOUNDING = 0, 1, 2


class _Voice:
    """One playing (or scheduled) clip. Only the audio callback reads or writes it."""

    __slots__ = (
        "applied_gain",
        "crossfade",
        "end",
        "fade_end",
        "fade_start",
        "gain",
        "index",
        "launch_beat",
        "launch_quantize",
        "length",
        "loop",
        "report_stop",
        "samples",
        "slot",
        "start",
        "state",
        "stop_beat",
        "stop_quantize",
        "tag",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.state = _FREE
        self.slot = -1
        self.tag: object = None
        self.samples: np.ndarray | None = None
        self.length = 0
        self.loop = True
        self.gain = 1.0
        self.applied_gain = 1.0  # gain × slot gain used at the end of the last buffer
        self.start = 0  # output sample of the clip's sample 0
        self.crossfade = False  # fades in over fade_samples from `start` (replaced a voice)
        self.fade_start = _NEVER  # fade-out window [fade_start, fade_end), output samples
        self.fade_end = _NEVER
        self.end = _NEVER  # first silent output sample
        self.report_stop = True  # whether its end leaves the slot silent
        # The grid lines a pending launch and a pending stop wait for, so that a tempo change
        # or a transport start can move them onto the new grid (None: no grid, keep the sample).
        self.launch_quantize = "none"
        self.launch_beat: int | None = None
        self.stop_quantize = "none"
        self.stop_beat: int | None = None

    def set_fade(self, fade_start: int, fade_end: int) -> None:
        self.fade_start = fade_start
        self.fade_end = fade_end
        natural = _NEVER if self.loop else self.start + self.length
        self.end = min(natural, fade_end)


def _check_gain(name: str, gain: float) -> float:
    gain = float(gain)
    if not (0.0 <= gain <= MAX_GAIN):  # also refuses NaN
        raise ValueError(f"{name} must be between 0 and {MAX_GAIN:g}, got {gain!r}")
    return gain


def _check_quantize(quantize: str) -> str:
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of none, beat, bar; got {quantize!r}")
    return quantize


class Mixer:
    """Voices in clip slots, launched and stopped on the beat grid, mixed to the output.

    Args:
        device_rate: the output stream's rate in Hz; every clip must already be at this rate.
        max_block: the largest buffer expected, in frames (larger ones are still rendered, in
            pieces); internal buffers hold ``min(max_block, GIL_SAFE_FRAMES)`` frames.
        voices: voices that can sound or wait for their launch at once (a slot being replaced
            uses two for ``fade_samples``, plus one for a launch waiting for its quantize point).
        slots: clip slots, numbered ``0 .. slots - 1`` (the OSC protocol has 0–127).
        fade_samples: length of the crossfade when a clip replaces another in its slot and of
            the fade-out of a stop, in output samples; default 10 ms.
        limiter_threshold: the safety limiter keeps the master's sample peak at or below this
            (full scale is 1.0).
        limiter_release_seconds: time constant of the limiter's release, in seconds.
        bpm: the transport's initial tempo in beats per minute.
        beats_per_bar: the transport's initial meter.

    The transport runs from the start, with beat 0 (a bar line) at output sample 0.
    """

    def __init__(
        self,
        device_rate: int,
        *,
        max_block: int = 4096,
        voices: int = 32,
        slots: int = 128,
        fade_samples: int | None = None,
        limiter_threshold: float = 0.98,
        limiter_release_seconds: float = 0.05,
        bpm: float = 120.0,
        beats_per_bar: int = 4,
    ) -> None:
        if max_block < 1 or voices < 1 or slots < 1:
            raise ValueError("max_block, voices and slots must each be at least 1")
        if not 0.0 < limiter_threshold <= 1.0:
            raise ValueError(f"limiter_threshold must be in (0, 1], got {limiter_threshold!r}")
        if limiter_release_seconds <= 0.0:
            raise ValueError("limiter_release_seconds must be positive")
        self._transport = Transport(device_rate, bpm, beats_per_bar)
        self.device_rate = device_rate
        """Output stream rate in Hz."""
        self.slots = slots
        """Number of clip slots (valid slot numbers are ``0 .. slots - 1``)."""
        if fade_samples is None:
            fade_samples = round(0.010 * device_rate)
        if fade_samples < 1:
            raise ValueError(f"fade_samples must be at least 1, got {fade_samples}")
        self.fade_samples = int(fade_samples)
        """Crossfade and stop fade length in output samples."""
        self._min_fade = max(1, self.fade_samples // 4)
        self.limiter_threshold = float(limiter_threshold)

        chunk = min(max_block, GIL_SAFE_FRAMES)
        self._chunk = chunk
        self._mix = np.zeros(chunk, dtype=np.float32)
        self._tmp = np.zeros(chunk, dtype=np.float32)
        self._curve = np.zeros(chunk, dtype=np.float32)
        self._lim = np.zeros(chunk, dtype=np.float32)
        self._lim_index = np.zeros(chunk, dtype=np.float32)
        self._index = np.arange(chunk, dtype=np.float32)  # 0, 1, 2, … for ramps and curves
        # Equal-power crossfade curves (fade_in² + fade_out² = 1): the new voice starts at exactly
        # 0 and the old one at exactly 1, so the sample at the switch continues the old clip.
        phase = np.arange(self.fade_samples, dtype=np.float64) * (math.pi / 2 / self.fade_samples)
        self._fade_in = np.sin(phase).astype(np.float32)
        self._fade_out = np.cos(phase).astype(np.float32)
        self._voices = [_Voice(i) for i in range(voices)]
        self._free = list(range(voices - 1, -1, -1))  # free voice numbers, popped from the end
        self._current = [-1] * slots  # voice sounding in each slot (the latest launched)
        self._pending = [-1] * slots  # voice waiting for its launch point in each slot
        self._slot_gain = [1.0] * slots
        self._master_target = 1.0
        self._master_applied = 1.0
        # Limiter: peak envelope with instant attack and exponential release, computed in the
        # log domain so a running maximum (ufunc.accumulate) does the per-sample recursion.
        self._lim_log_release = -1.0 / (limiter_release_seconds * device_rate)  # log r per sample
        self._lim_log_threshold = math.log(self.limiter_threshold)
        self._lim_envelope = 0.0
        np.multiply(self._index, self._lim_log_release, out=self._lim_index)

        self._commands: deque[tuple[Any, ...]] = deque()
        self._events: deque[Event] = deque(maxlen=EVENT_QUEUE_LENGTH)
        self._retired: deque[np.ndarray] = deque(maxlen=1024)

        self.position = 0
        """Output samples rendered since the stream started (the next buffer's first sample)."""
        self.voices_active = 0
        """Voices audible at the end of the last buffer (fading ones included)."""
        self.last_callback_seconds = 0.0
        """Wall time the last :meth:`callback` took, in seconds (``time.perf_counter``)."""
        self.max_callback_seconds = 0.0
        """Longest :meth:`callback` so far, in seconds."""
        self.total_callback_seconds = 0.0
        """Sum of all :meth:`callback` times, in seconds (mean = total / :attr:`callbacks`)."""
        self.callbacks = 0
        self.phase_corrections = 0
        """How often :meth:`align_phase` moved the grid."""
        """Buffers rendered."""
        self.underruns = 0
        """Callbacks whose ``status`` reported a problem (e.g. PortAudio output underflow)."""
        self.events_lost = 0
        """Events pushed out of the event queue because nobody drained it in time."""
        self.callback_errors = 0
        """Callbacks that raised (a bug): they played silence instead; see :attr:`last_error`."""
        self.last_error: BaseException | None = None
        """The last exception a callback caught, for the status thread to log."""

    # -- any thread ----------------------------------------------------------------------------

    @property
    def grid(self) -> TempoGrid:
        """An immutable snapshot of the transport (tempo, meter, anchor); safe from any thread."""
        return self._transport.grid

    def launch_point(self, quantize: str = "bar") -> int:
        """The output sample where a :meth:`play` sent now would launch, if the next buffer
        starts at :attr:`position` (it may start later if the callback runs first). Any thread.

        The slot logic can remember it when a trigger arrives and compare the ``playing`` event's
        sample with it: a later sample means the clip launched late.
        """
        return self.grid.next_boundary(self.position, _check_quantize(quantize))

    def play(
        self,
        slot: int,
        samples: np.ndarray,
        *,
        quantize: str = "bar",
        loop: bool = True,
        gain: float = 1.0,
        tag: object = None,
        at_cycle_end: bool = False,
    ) -> None:
        """Launch ``samples`` in ``slot`` at the next ``quantize`` point (none, beat or bar).

        ``samples`` is mono (1-D), float32, C-contiguous, at :attr:`device_rate`, finite; the
        mixer keeps a reference, so don't modify it afterwards. A clip already sounding in the
        slot crossfades into the new one over :attr:`fade_samples` from the launch point; a
        launch still waiting in the slot is replaced (reported ``dropped``). ``gain`` (0–2)
        multiplies the slot's gain and the master gain. ``tag`` comes back in the events.
        Validates here, in the calling thread; raises ``ValueError`` naming the bad argument.

        With ``at_cycle_end`` the launch waits instead for the end of the current loop cycle of
        the clip sounding in the slot: the sample where it wraps to its start, so a clip of
        several bars is replaced at its phrase boundary, not mid-loop. That point is in samples
        of the sounding clip (a tempo change or a transport start does not move it). When
        nothing loops in the slot (silent, not looping, or already fading out), ``quantize``
        decides as usual. An internal option of the slot logic (evolving slots), not of OSC.
        """
        self._check_slot(slot)
        if not isinstance(samples, np.ndarray):
            raise ValueError(f"samples must be a numpy array, got {type(samples).__name__}")
        if samples.dtype != np.float32 or samples.ndim != 1 or not samples.flags.c_contiguous:
            raise ValueError(
                "samples must be a 1-D, C-contiguous float32 array at the device rate; got "
                f"dtype {samples.dtype}, shape {samples.shape}, "
                f"contiguous={samples.flags.c_contiguous}"
            )
        if samples.size == 0:
            raise ValueError("samples must hold at least one sample")
        if not np.isfinite(samples).all():
            raise ValueError("samples must be finite (no NaN or infinity)")
        self._commands.append(
            (
                "play",
                slot,
                samples,
                _check_quantize(quantize),
                bool(loop),
                _check_gain("gain", gain),
                tag,
                bool(at_cycle_end),
            )
        )

    def stop(self, slot: int | None = None, *, quantize: str = "bar") -> None:
        """Silence ``slot`` (``None``: every slot) by the next ``quantize`` point.

        The fade-out (up to :attr:`fade_samples`) ends at the boundary, so the slot is silent
        from the boundary's sample on; with ``none`` it starts at the next buffer. A launch still
        waiting in the slot is cancelled (reported ``dropped``). Any thread.
        """
        if slot is not None:
            self._check_slot(slot)
        self._commands.append(("stop", slot, _check_quantize(quantize)))

    def set_tempo(self, bpm: float) -> None:
        """Set the transport's tempo (beats per minute) from the next buffer on, keeping the beat
        phase; launches and stops waiting for a line move with it. Any thread."""
        bpm = float(bpm)
        if not (math.isfinite(bpm) and bpm > 0.0):
            raise ValueError(f"bpm must be a positive number, got {bpm!r}")
        self._commands.append(("tempo", bpm))

    def transport(self, running: bool, *, resume: bool = False) -> None:
        """Start (beat 0 at the next buffer's first sample) or stop the clock; with ``resume``,
        start from the beat where it stopped instead (MIDI "continue"). Starting a running clock
        or stopping a stopped one does nothing. While stopped, every launch and stop is
        immediate (there is no grid); on start, launches still waiting move to the first line
        of the new grid. Voices keep playing either way. Any thread."""
        self._commands.append(("transport", bool(running), bool(resume)))

    def align_phase(
        self, phase: float, read_at: float, *, tolerance_seconds: float = 0.002
    ) -> None:
        """Line the bars up with an outside clock (Ableton Link): ``phase`` beats past its last
        bar line at ``time.monotonic()`` == ``read_at`` (subtract the output latency from
        ``read_at`` so that what is *heard* lines up). Applied at the next buffer, extrapolated
        to its first sample at the current tempo; the grid moves only when it is off by more
        than ``tolerance_seconds``, by the shortest way (at most half a bar). Waiting launches
        keep their beat; sounding clips play on. Any thread."""
        self._commands.append(("phase", float(phase), float(read_at), float(tolerance_seconds)))

    def set_master_gain(self, gain: float) -> None:
        """Set the master gain (0–2), ramped over one piece (≤ 256 frames). Any thread."""
        self._commands.append(("master", _check_gain("master gain", gain)))

    def set_slot_gain(self, slot: int, gain: float) -> None:
        """Set ``slot``'s gain (0–2), ramped over one piece (≤ 256 frames); it multiplies the
        gain each clip was launched with, now and for later launches. Any thread."""
        self._check_slot(slot)
        self._commands.append(("slot_gain", slot, _check_gain("slot gain", gain)))

    def drain_events(self) -> list[Event]:
        """Every event since the last call, oldest first, as ``(kind, slot, tag, sample)``.

        Also frees the arrays of clips that finished (kept out of the callback). Call it from
        one consumer thread, regularly (e.g. every 10–50 ms).
        """
        events: list[Event] = []
        pop = self._events.popleft
        while True:
            try:
                events.append(pop())
            except IndexError:
                break
        while True:
            try:
                self._retired.popleft()
            except IndexError:
                break
        return events

    def _check_slot(self, slot: int) -> None:
        if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)):
            raise ValueError(f"slot must be a whole number, got {slot!r}")
        if not 0 <= slot < self.slots:
            raise ValueError(f"slot must be in range 0..{self.slots - 1}, got {slot}")

    # -- audio callback thread -----------------------------------------------------------------

    def callback(
        self, outdata: np.ndarray, frames: int, time_info: object = None, status: object = None
    ) -> None:
        """Render the next ``frames`` frames into ``outdata`` (shape ``(frames, channels)``,
        float32), with sounddevice's callback signature. Audio callback thread only.

        Applies pending commands, mixes the voices with their gains, applies the master gain and
        the safety limiter, copies the mono mix to every channel, and advances :attr:`position`.
        """
        started = time.perf_counter()
        if status:
            self.underruns += 1
        t0 = self.position
        try:
            commands = self._commands
            for _ in range(MAX_COMMANDS_PER_BUFFER):
                try:
                    command = commands.popleft()
                except IndexError:
                    break
                self._apply(command, t0)
            done = 0
            while done < frames:
                n = min(frames - done, self._chunk)
                self._render(outdata, done, n)
                done += n
        except Exception as error:
            # A bug here must not kill the stream for the rest of the set: play silence, keep
            # the clock, and leave the error for the status thread to report.
            outdata[:frames] = 0.0
            self.position = t0 + frames
            self.callback_errors += 1
            self.last_error = error
        active = 0
        for voice in self._voices:
            if voice.state == _SOUNDING:
                active += 1
        self.voices_active = active
        elapsed = time.perf_counter() - started
        self.last_callback_seconds = elapsed
        self.total_callback_seconds += elapsed
        self.callbacks += 1
        self.max_callback_seconds = max(self.max_callback_seconds, elapsed)

    def _emit(self, kind: str, slot: int, tag: object, sample: int) -> None:
        if len(self._events) == EVENT_QUEUE_LENGTH:
            self.events_lost += 1
        self._events.append((kind, slot, tag, sample))

    def _release(self, voice: _Voice) -> None:
        if voice.samples is not None:
            self._retired.append(voice.samples)
        voice.samples = None
        voice.tag = None
        voice.state = _FREE
        self._free.append(voice.index)
        slot = voice.slot
        if self._current[slot] == voice.index:
            self._current[slot] = -1
        if self._pending[slot] == voice.index:
            self._pending[slot] = -1

    def _drop_pending(self, slot: int, sample: int) -> None:
        index = self._pending[slot]
        if index >= 0:
            voice = self._voices[index]
            self._emit("dropped", slot, voice.tag, sample)
            self._release(voice)

    def _apply(self, command: tuple[Any, ...], t0: int) -> None:
        kind = command[0]
        if kind == "play":
            self._apply_play(command, t0)
        elif kind == "stop":
            _, slot, quantize = command
            self._apply_stop(slot, quantize, t0)
        elif kind == "tempo":
            self._transport.set_tempo(command[1], t0)
            self._requantize(t0, restart=False)
        elif kind == "transport":
            if command[1] and not self._transport.grid.running:
                if command[2]:
                    self._transport.resume(t0)
                else:
                    self._transport.start(t0)
                self._requantize(t0, restart=True)
            elif not command[1] and self._transport.grid.running:
                self._transport.stop(t0)
        elif kind == "phase":
            self._apply_phase(command, t0)
        elif kind == "master":
            self._master_target = command[1]
        elif kind == "slot_gain":
            self._slot_gain[command[1]] = command[2]

    def _apply_play(self, command: tuple[Any, ...], t0: int) -> None:
        _, slot, samples, quantize, loop, gain, tag, at_cycle_end = command
        grid = self._transport.grid
        beat = grid.next_boundary_beat(t0, quantize)
        launch = t0 if beat is None else grid.sample_at_beat(beat)
        self._drop_pending(slot, t0)
        if not self._free:  # every voice busy: refuse this launch rather than cut another
            self._emit("dropped", slot, tag, t0)
            self._retired.append(samples)
            return
        voice = self._voices[self._free.pop()]
        current = self._current[slot]
        if current >= 0:
            sounding = self._voices[current]
            if sounding.fade_start >= t0 and sounding.fade_start != _NEVER:
                # A stop that has not begun yet: this later play overrides it.
                sounding.set_fade(_NEVER, _NEVER)
                sounding.stop_quantize = "none"
                sounding.stop_beat = None
            if at_cycle_end and sounding.loop and sounding.end == _NEVER:
                # The first sample at or after t0 where the sounding clip wraps to its start;
                # no grid line: the clip's own length decides, and a tempo change keeps it.
                cycles = -((sounding.start - t0) // sounding.length)  # ceil((t0 - start) / len)
                launch = sounding.start + max(cycles, 1) * sounding.length
                quantize, beat = "none", None
        voice.slot = slot
        voice.tag = tag
        voice.samples = samples
        voice.length = samples.shape[0]
        voice.loop = loop
        voice.gain = gain
        voice.applied_gain = gain * self._slot_gain[slot]
        voice.start = launch
        voice.launch_quantize = quantize
        voice.launch_beat = beat
        voice.stop_quantize = "none"
        voice.stop_beat = None
        voice.crossfade = False
        voice.report_stop = True
        voice.set_fade(_NEVER, _NEVER)
        voice.state = _PENDING
        self._pending[slot] = voice.index

    def _stop_window(self, beat: int | None, t0: int) -> tuple[int, int]:
        """The fade-out ``(start, end)`` of a stop at grid ``beat`` (``None``: now), decided at
        the buffer starting at ``t0``: it ends on the boundary, at least ``fade_samples // 4``
        after ``t0``, and lasts at most ``fade_samples``."""
        if beat is None:
            return t0, t0 + self.fade_samples
        fade_end = max(self._transport.grid.sample_at_beat(beat), t0 + self._min_fade)
        return max(t0, fade_end - self.fade_samples), fade_end

    def _apply_stop(self, slot: int | None, quantize: str, t0: int) -> None:
        beat = self._transport.grid.next_boundary_beat(t0, quantize)
        fade_start, fade_end = self._stop_window(beat, t0)
        for voice in self._voices:
            if slot is not None and voice.slot != slot:
                continue
            if voice.state == _PENDING:
                self._drop_pending(voice.slot, t0)
            elif (
                voice.state == _SOUNDING
                and self._current[voice.slot] == voice.index
                and fade_end < voice.fade_end
            ):
                voice.set_fade(fade_start, fade_end)
                voice.stop_quantize = quantize
                voice.stop_beat = beat

    def _apply_phase(self, command: tuple[Any, ...], t0: int) -> None:
        _, phase, read_at, tolerance = command
        grid = self._transport.grid
        if not grid.running:
            return
        bar = grid.beats_per_bar
        # commands are applied first thing in the callback: now is the buffer's start
        wanted = phase + (time.monotonic() - read_at) * grid.bpm / 60.0
        current = grid.exact_beat_at(t0)
        shift = (wanted - float(current)) % bar
        if shift > bar / 2:
            shift -= bar
        if abs(shift) * 60.0 / grid.bpm <= tolerance:
            return
        self._transport.shift(t0, Fraction(shift).limit_denominator(1 << 20))
        self.phase_corrections += 1
        self._requantize(t0, restart=False)

    def _requantize(self, t0: int, *, restart: bool) -> None:
        """Move waiting launches and stops onto the grid after a tempo change (same beat
        number) or a transport start (the first line of their quantize on the new grid)."""
        grid = self._transport.grid
        for voice in self._voices:
            if voice.state == _PENDING and voice.launch_quantize != "none":
                beat = voice.launch_beat
                if restart:
                    beat = grid.next_boundary_beat(t0, voice.launch_quantize)
                if beat is not None:
                    voice.launch_beat = beat
                    voice.start = max(t0, grid.sample_at_beat(beat))
                    voice.set_fade(voice.fade_start, voice.fade_end)  # its natural end moved
            elif (
                voice.state == _SOUNDING
                and voice.stop_quantize != "none"
                and t0 <= voice.fade_start < _NEVER
                and self._current[voice.slot] == voice.index
            ):
                beat = voice.stop_beat
                if restart:
                    beat = grid.next_boundary_beat(t0, voice.stop_quantize)
                if beat is not None:
                    voice.stop_beat = beat
                    voice.set_fade(*self._stop_window(beat, t0))

    def _activate(self, voice: _Voice) -> None:
        """The pending ``voice`` launches in the piece being rendered: take over its slot."""
        slot, launch = voice.slot, voice.start
        voice.crossfade = False
        previous = self._current[slot]
        if previous >= 0:
            old = self._voices[previous]
            if old.end <= launch:  # the slot falls silent before the new clip starts
                if old.report_stop:
                    self._emit("stopped", slot, old.tag, old.end)
                old.report_stop = False
            else:
                if old.fade_end > launch + self.fade_samples:
                    old.set_fade(launch, launch + self.fade_samples)
                old.report_stop = False
                voice.crossfade = True
        self._current[slot] = voice.index
        self._pending[slot] = -1
        voice.state = _SOUNDING
        self._emit("playing", slot, voice.tag, launch)

    def _render(self, outdata: np.ndarray, offset: int, frames: int) -> None:
        """Mix ``frames`` (≤ the piece size) frames into ``outdata[offset:offset + frames]``."""
        t0 = self.position
        t1 = t0 + frames
        mix = self._mix[:frames]
        mix.fill(0.0)
        voices = self._voices
        for voice in voices:
            if voice.state == _PENDING and voice.start < t1:
                self._activate(voice)
        for voice in voices:
            if voice.state != _SOUNDING:
                continue
            first = max(t0, voice.start)
            last = min(t1, voice.end)
            if first < last:
                self._mix_voice(voice, first, last, t0, frames)
            if voice.end <= t1:
                if voice.report_stop:
                    self._emit("stopped", voice.slot, voice.tag, voice.end)
                self._release(voice)
        # Master gain, ramped when it changed.
        target = self._master_target
        if target != self._master_applied:
            curve = self._curve[:frames]
            step = (target - self._master_applied) / frames
            np.multiply(self._index[:frames], step, out=curve)
            np.add(curve, self._master_applied + step, out=curve)
            np.multiply(mix, curve, out=mix)
            self._master_applied = target
        elif target != 1.0:
            np.multiply(mix, target, out=mix)
        self._limit(mix)
        block = outdata[offset : offset + frames]
        for channel in range(block.shape[1]):
            block[:, channel] = mix
        self.position = t1

    def _mix_voice(self, voice: _Voice, first: int, last: int, t0: int, frames: int) -> None:
        """Add ``voice``'s output samples ``first .. last - 1`` (within the piece starting at
        output sample ``t0``, ``frames`` long) into the mix buffer."""
        samples = voice.samples
        assert samples is not None
        count = last - first
        at = first - t0
        length = voice.length
        position = first - voice.start
        if voice.loop:
            position %= length
        tmp = self._tmp
        previous = voice.applied_gain
        target = voice.gain * self._slot_gain[voice.slot]
        ramping = target != previous
        fade_samples = self.fade_samples
        fading_in = voice.crossfade and first < voice.start + fade_samples
        fading_out = voice.fade_start < last and voice.fade_end > first
        if target == 1.0 and not (ramping or fading_in or fading_out):
            # The common case (unity gain, no fade): add the clip straight into the mix.
            mix = self._mix
            done = at
            end = at + count
            while done < end:
                n = min(end - done, length - position)
                np.add(
                    mix[done : done + n], samples[position : position + n], out=mix[done : done + n]
                )
                done += n
                position = 0
            return
        # The clip's samples (wrapping when it loops) times the gain, into tmp[:count].
        scale = 1.0 if ramping else target
        done = 0
        while done < count:
            n = min(count - done, length - position)
            np.multiply(samples[position : position + n], scale, out=tmp[done : done + n])
            done += n
            position = 0
        if ramping:  # a gain change: ramp linearly across the piece from the old gain
            step = (target - previous) / frames
            ramp = self._curve[:count]
            np.multiply(self._index[:count], step, out=ramp)
            np.add(ramp, previous + step * (at + 1), out=ramp)
            np.multiply(tmp[:count], ramp, out=tmp[:count])
            voice.applied_gain = target
        if fading_in:
            # Fading in from 0 while the voice it replaces fades out from 1.
            lo = first - voice.start
            hi = min(last, voice.start + fade_samples) - voice.start
            segment = tmp[: hi - lo]
            np.multiply(segment, self._fade_in[lo:hi], out=segment)
        if fading_out:
            # Fading out: cos from 1 at fade_start, reaching 0 at fade_end.
            lo = max(first, voice.fade_start)
            hi = min(last, voice.fade_end)
            segment = tmp[lo - first : hi - first]
            span = voice.fade_end - voice.fade_start
            if span == fade_samples:
                offset = lo - voice.fade_start
                np.multiply(segment, self._fade_out[offset : offset + hi - lo], out=segment)
            else:  # a stop's fade shortened to end on its boundary
                curve = self._curve[: hi - lo]
                np.add(self._index[: hi - lo], lo - voice.fade_start, out=curve)
                np.multiply(curve, math.pi / 2 / span, out=curve)
                np.cos(curve, out=curve)
                np.multiply(segment, curve, out=segment)
        np.add(self._mix[at : at + count], tmp[:count], out=self._mix[at : at + count])

    def _limit(self, mix: np.ndarray) -> None:
        """Safety limiter, in place: gain = min(1, threshold / envelope), where the envelope
        follows each peak at once (instant attack) and decays exponentially (smooth release)."""
        n = mix.shape[0]
        level = self._lim[:n]
        np.abs(mix, out=level)
        peak = float(level.max())
        threshold = self.limiter_threshold
        if peak <= threshold and self._lim_envelope <= threshold:
            # Gain stays 1 and the envelope cannot rise above the threshold from here.
            self._lim_envelope = 0.0
            return
        # log envelope[k] = k·lr + max(log e_prev + lr, max_{i≤k} (log|x_i| − i·lr)),
        # with lr = log(release factor per sample) < 0.
        index_lr = self._lim_index[:n]
        np.maximum(level, 1e-30, out=level)
        np.log(level, out=level)
        np.subtract(level, index_lr, out=level)
        if self._lim_envelope > 0.0:
            carried = math.log(self._lim_envelope) + self._lim_log_release
            level[0] = max(float(level[0]), carried)
        np.maximum.accumulate(level, out=level)
        np.add(level, index_lr, out=level)
        self._lim_envelope = math.exp(float(level[n - 1]))
        np.subtract(self._lim_log_threshold, level, out=level)
        np.minimum(level, 0.0, out=level)
        np.exp(level, out=level)
        np.multiply(mix, level, out=mix)
