"""Live playback: clip slots that never go silent, quantized triggers, ``/play``, ``/stop``, and
the ``/playing``, ``/stopped`` and ``/late`` events they raise.

``live`` talks to the rest of the daemon only through the narrow interface of
:mod:`daemon.live.jobsystem` (submit, cancel and build takes; send events) and reads and follows
the tempo and transport of one :class:`daemon.live.session.Session`, their only owner.

Threads:

* the OSC thread and the MIDI thread call :meth:`Live.define_slot`, :meth:`~Live.trigger`,
  :meth:`~Live.play_file`, :meth:`~Live.stop` and :meth:`~Live.release` — they only enqueue
  mixer commands and jobs, never wait on the model; any thread that changes the session calls
  :meth:`Live.tempo_changed` and :meth:`Live.transport_changed` (as its listener);
* the worker thread calls :meth:`Live.on_clip` when a take is written: the clip is resampled to
  the device rate there, off the audio thread, and parked in its slot;
* one event thread of this module drains the mixer's events, sends the replies and, every
  20 ms, :meth:`Live.settle`\\ s the tempo the slots render for;
* the audio callback (:class:`daemon.live.player.Mixer`) only mixes.

A slot keeps ``ahead`` takes rendered (at ``normal`` priority, below ``live`` work). A trigger
launches the next ready take at the quantize point and asks for a replacement; with none ready,
the last take plays again, so the slot never goes silent, and the fresh take follows at the
next quantize point once it is ready — reported with ``/musicldm/late id``. A trigger on a slot
that has no take at all yet is answered ``/musicldm/late id`` at once (``id``: the take it waits
for), and the slot starts when that take is ready. A stop cancels every launch of the slot that
is still waiting: for a take (a trigger, ``generate … play 1``) or for its quantize point.

Tempo changes are coalesced: the mixer's clock follows every change at once, but the slots
render for the tempo that holds — one that has not moved for :data:`SETTLE_SECONDS`, or, during
a long ramp, the tempo of the moment at most once a bar — and cancel their takes still queued or
rendering for a tempo that no longer holds. A ramp of any number of tempo changes so renders at
most ``ahead`` takes per slot per bar, and the queue never holds more than ``ahead`` of them per
slot.

A slot with ``evolve X`` (or, when it sets none, the ``evolve`` default: ``/musicldm/set``, a MIDI
CC) changes gradually instead of jumping: each new take is a variation of strength ``X`` of the
newest take the slot has (the one playing, or queued to play next) — its file in the output folder
is the ``source`` — and while the slot sounds, each such take launches once it is ready where the
take playing ends its loop (its phrase boundary: every 4 bars for ``bars 4``), so the chain goes on
take after take, each one close to the one before. ``/musicldm/morph from to bars`` renders ``bars``
one-bar steps ahead along a morph from slot ``from``'s prompt and seed to slot ``to``'s (positions
1/bars … 1) and plays them in slot ``to``, one a bar, each on the bar line after the one before
became audible; slot ``from`` stops on the line where the first step starts, and slot ``to`` keeps
the last step (its own prompt and seed) as its take.

Every event goes to who asked for it (the sender of the trigger, ``/play``, ``generate … play 1``
or ``/stop``; for a launch nobody asked for directly, the slot's last definer or triggerer),
besides the notify and reply targets. A launch replaced before it sounded (a morph's first step
takes over a waiting trigger) hands its sender on to the one replacing it.

Why this module is long: slots, triggers, evolving slots and morphs share one lock and one
picture of what each mixer slot plays and has waiting; split over modules, every launch
decision would have to reassemble it.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daemon.live.jobsystem import EventSink, JobId, JobInfo, JobSystem, Origin
from daemon.live.session import Session
from daemon.wire import contract
from daemon.wire.contract import PLAYBACK_OPTIONS
from daemon.wire.requests import PlaybackOptions
from musicldm_core.dsp import resample
from musicldm_core.errors import BadRequest, NotFound
from musicldm_core.spec import DEFAULT_MAX_SECONDS

if TYPE_CHECKING:
    from daemon.live.audio_out import AudioOutput
    from daemon.live.player import Mixer
    from musicldm_core.render import Clip

__all__ = ["PLAY_SLOTS", "SETTLE_SECONDS", "SLOTS", "Live", "MidiBridge"]

log = logging.getLogger(__name__)

SLOTS = 128
"""User slots 0–127 (the contract's range)."""

PLAY_SLOTS = 16
"""Extra mixer slots 128–143 carry ``/play`` and ``generate … play 1`` clips without a slot."""

TEMPO_TOLERANCE = 0.1
"""A take rendered within this many BPM of the tempo the slots render for still fits; beyond,
the slot renders fresh takes at the new tempo (and plays the old ones only until those are
ready)."""

SETTLE_SECONDS = 0.5
"""A tempo change is rendered for once the tempo has held this long (a DAW's ramp through MIDI
clock sends up to ten changes a second); during a longer ramp, at most once a bar."""

EVENT_SECONDS = 0.02
"""How often the event thread drains the mixer's events and checks the tempo."""


@dataclass(eq=False)  # compared by identity: removing one from a deque must not compare audio
class Take:
    """A finished clip, ready to sound: mono float32 at the device rate."""

    audio: np.ndarray
    path: str
    job_id: JobId
    bpm: float | None = None
    """The tempo it was rendered at (None: a length in seconds, fits any tempo)."""
    seed: int | None = None
    """The seed it was rendered with (a morph starts from the seed of the take playing)."""


@dataclass(eq=False)  # the mixer's tag for one launch: compared and hashed by identity
class _Launch:
    """One clip handed to the mixer, and who its events go to."""

    slot: int
    path: str
    job_id: JobId | None
    origin: Origin
    late_due: int | None = None
    """The output sample of the quantize point it was meant for: sounding later is ``/late``."""
    stop_origin: Origin | None = None
    """Who asked to stop it (``()``: MIDI or the transport); None: nobody yet."""


@dataclass
class _Wait:
    """A trigger waiting for a fresh take of its slot."""

    due: int
    """The output sample of the quantize point the trigger asked for."""
    origin: Origin
    announced: bool
    """Whether ``/late`` was sent at the trigger already (the slot had no take at all)."""


@dataclass
class SlotState:
    """What one slot plays and what it has ready."""

    prompt: str | None = None
    options: Any = None
    ahead: int = 1
    ready: deque[Take] = field(default_factory=deque)
    last: Take | None = None
    pending: dict[JobId, float | None] = field(default_factory=dict)
    """Job id → tempo of each take being rendered for this slot."""
    made: int = 0
    """Takes asked for so far: with a fixed ``seed``, take n uses seed + n (a new take each
    time, the same sequence every set)."""
    wait: _Wait | None = None
    quantize: str = PLAYBACK_OPTIONS["quantize"].value
    loop: bool = PLAYBACK_OPTIONS["loop"].value
    gain: float = PLAYBACK_OPTIONS["gain"].value
    gate: bool = False
    follow: bool = False
    """Playing a take at an old tempo: swap in the first fresh take at the next quantize point."""
    origin: Origin = ()
    """Who defined or last triggered the slot: its takes' replies go there."""
    evolve: float | None = None
    """The slot's own ``evolve`` (None: the default's); above 0 each take varies the one before."""
    tempo: float | None = None
    """Defined anew while a tempo change had not held yet: it renders at that tempo, not at the
    one the other slots keep until it holds (it has no takes there to keep). None: theirs."""


@dataclass
class _Morph:
    """A ``/musicldm/morph`` on its way: steps rendered ahead and launched one a bar."""

    source: int
    jobs: list[JobId]
    """The steps' job ids, in the order they play (the last one is position 1)."""
    quantize: str
    origin: Origin
    ready: dict[JobId, Take] = field(default_factory=dict)
    launched: int = 0
    """Steps handed to the mixer so far."""
    heard: int = 0
    """Steps the mixer reported audible so far: the next one goes once all launched are."""
    heirs: Origin = ()
    """Who was waiting for slot ``to`` when the morph took it over (a trigger waiting for its
    take): they hear the first step's ``/playing``, or ``/stopped`` if it never plays."""


_AS_BEFORE = PlaybackOptions()
"""No playback option given."""


def _given_or_default(playback: PlaybackOptions, key: str) -> Any:
    """The playback option ``key`` as given, else the contract's default."""
    value = getattr(playback, key)
    return PLAYBACK_OPTIONS[key].value if value is None else value


def _union(*origins: Origin | None) -> Origin:
    """Every address in ``origins``, each once, in order."""
    return tuple(dict.fromkeys(a for origin in origins if origin for a in origin))


class Live:
    """Slots, triggers and playback events on top of a :class:`~daemon.live.player.Mixer`.

    Args:
        jobs: renders and cancels takes (:class:`~daemon.live.jobsystem.JobSystem`).
        events: sends the playback events (:class:`~daemon.live.jobsystem.EventSink`).
        session: the tempo and transport; this object listens to it and follows it.
        mixer: the mixer the output's audio callback pulls.
        output: the audio output, started and stopped with this object.
        device_rate: the output's rate in Hz (takes are resampled to it).
        settle_seconds: how long a tempo must hold before the slots render for it.
        clock: the clock :meth:`settle` reads (the session's by default), in seconds.
        evolve_default: the ``evolve`` of slots that set none (``/musicldm/set evolve``, a MIDI
            CC); 0 (off) when not given.
    """

    def __init__(
        self,
        jobs: JobSystem,
        events: EventSink,
        session: Session,
        mixer: Mixer,
        output: AudioOutput,
        *,
        device_rate: int,
        settle_seconds: float = SETTLE_SECONDS,
        clock: Callable[[], float] | None = None,
        evolve_default: Callable[[], float] | None = None,
    ) -> None:
        self.jobs = jobs
        self.events = events
        self.session = session
        self.mixer = mixer
        self.output = output
        self.device_rate = device_rate
        self.settle_seconds = settle_seconds
        self._clock = clock or session.clock
        self._evolve_default = evolve_default or (lambda: 0.0)
        self._morphs: dict[int, _Morph] = {}  # by the target slot
        self.slots: dict[int, SlotState] = {}
        self._lock = threading.RLock()
        self._play_slots = itertools.cycle(range(SLOTS, SLOTS + PLAY_SLOTS))
        self._job_numbers = itertools.count(1)
        self._slot_jobs: set[JobId] = set()  # every job id this module asked for
        self._launches: dict[int, list[_Launch]] = {}  # handed to the mixer, not yet ended
        self._sounding: set[int] = set()  # mixer slots the mixer reported playing
        # slots stopped since their last launch: still sounding up to the stop's line, they
        # must not move on (evolve) to a take delivered meanwhile
        self._halted: set[int] = set()
        self._stopped_at: dict[int | None, float] = {}  # time.time() of the last stop (None: all)
        state = session.state
        self._render_bpm = float(state.bpm)  # the tempo the slots render for
        self._unsettled_since: float | None = None
        self.retempos = 0
        """How many times the slots moved to a new tempo (for the log and tests)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="live-events", daemon=True)
        session.listen(self)
        if mixer.grid.bpm != state.bpm:  # the session may have moved before the mixer was made
            mixer.set_tempo(state.bpm)
        if not state.running:
            mixer.transport(False)

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

    @property
    def render_bpm(self) -> float:
        """The tempo the slots render for now (the session's, once it has settled)."""
        return self._render_bpm

    # -- requests (OSC / MIDI threads) -----------------------------------------------------------

    def _slot(self, index: int) -> SlotState:
        if not 0 <= index < SLOTS:
            raise BadRequest(f"index must be an integer from 0 to {SLOTS - 1}, got {index}")
        return self.slots.setdefault(index, SlotState())

    def _build(self, prompt: str, options: Any, slot: SlotState | None = None) -> Any:
        tempo = slot.tempo if slot is not None and slot.tempo is not None else self._render_bpm
        return self.jobs.build_spec(prompt, options, tempo=tempo)

    def define_slot(
        self,
        index: int,
        prompt: str,
        options: Any,
        ahead: int | None,
        origin: Origin,
        *,
        gate: bool | None = None,
        evolve: float | None = None,
    ) -> None:
        """Say what slot ``index`` plays; renders ``ahead`` takes in the background. ``gate``
        and ``evolve`` given stay the slot's from now on; None keeps the slot's."""
        self._build(prompt, options)  # validate now, so errors reach the sender
        with self._lock:
            slot = self._slot(index)
            changed = slot.prompt != prompt or slot.options != options
            slot.prompt, slot.options, slot.origin = prompt, options, origin
            slot.ahead = ahead or slot.ahead or 1
            if gate is not None:
                slot.gate = bool(gate)
            if evolve is not None:
                slot.evolve = float(evolve)
            if changed:
                bpm = float(self.session.state.bpm)
                slot.tempo = None if bpm == self._render_bpm else bpm
                slot.ready.clear()  # old prompt's takes no longer belong here
                slot.made = 0
                outdated = set(slot.pending)
                slot.pending.clear()
                if outdated:
                    self.jobs.cancel_jobs(lambda job: job.job_id in outdated)
            self._refill(index, slot)

    def _target_bpm(self, slot: SlotState) -> float | None:
        """The tempo the slot's takes are rendered at now (None: a length in seconds)."""
        if slot.prompt is None:
            return None
        spec = self._build(slot.prompt, slot.options, slot)
        return None if spec.seconds is not None else spec.bpm

    @staticmethod
    def _fits(bpm: float | None, target: float | None) -> bool:
        return bpm is None or target is None or abs(bpm - target) <= TEMPO_TOLERANCE

    def _refill(self, index: int, slot: SlotState) -> None:
        """Render takes until ``ahead`` of them, at the tempo the slots render for, are ready or
        coming. Ready takes at another tempo stay as a fallback (at most one); they do not count.
        """
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
            spec = self._build(slot.prompt, slot.options, slot)
            # a fixed seed gives seed, seed + 1, ... (random seeds stay random)
            spec = replace(spec, seed=(int(spec.seed or 0) + slot.made) % 2**31)
            spec = self._evolved(slot, spec, target)
            self.jobs.submit(job_id, spec, priority="normal", origin=slot.origin, slot=index)
            self._slot_jobs.add(job_id)
            slot.made += 1
            slot.pending[job_id] = None if spec.seconds is not None else spec.bpm
            coming += 1

    def evolve_of(self, slot: SlotState) -> float:
        """The slot's ``evolve``: its own, else the default's (0: off)."""
        if slot.evolve is not None:
            return slot.evolve
        try:
            return min(max(float(self._evolve_default()), 0.0), 1.0)
        except Exception as exc:  # a default that cannot be read never stops a refill
            log.warning("evolve default unreadable: %s", exc)
            return 0.0

    def _evolved(self, slot: SlotState, spec: Any, target: float | None) -> Any:
        """``spec`` as a variation of the slot's newest take when the slot evolves: that take
        (the one playing, or the one queued after it) is the source, ``evolve`` the strength.
        Without a take at the slot's tempo (the first take, after a tempo change) it stays a
        take from the prompt."""
        strength = self.evolve_of(slot)
        if strength <= 0:
            return spec
        fitting = [t for t in slot.ready if self._fits(t.bpm, target)]
        newest = fitting[-1] if fitting else slot.last
        if newest is None or not self._fits(newest.bpm, target) or not Path(newest.path).is_file():
            return spec
        # the slot's own audio mode (from/repaint/extend) gives way: evolving varies its takes
        return replace(spec, source=newest.path, strength=strength, repaint=None, extend=None)

    def _advance(self, index: int, slot: SlotState) -> None:
        """An evolving slot that sounds, with nothing waiting for its next line, launches its
        next fresh take at its quantize point (lock held)."""
        if index in self._morphs or index not in self._sounding or slot.prompt is None:
            return
        if index in self._halted:
            return
        if len(self._launches.get(index, [])) > 1 or self.evolve_of(slot) <= 0:
            return  # a launch is waiting already: the next one follows it
        target = self._target_bpm(slot)
        fitting = [t for t in slot.ready if self._fits(t.bpm, target)]
        if not fitting:
            return
        take = fitting[0]
        slot.ready.remove(take)
        # The take playing ends its loop where the next one starts (a 4-bar phrase changes at
        # its 4th bar line, not mid-phrase); one at an old tempo no longer fits the bars, so
        # the quantize point is the better place then.
        phrase = slot.last is not None and self._fits(slot.last.bpm, target)
        slot.last = take
        self._launch(index, take, slot, slot.origin, at_cycle_end=phrase)
        self._refill(index, slot)

    def morph(
        self,
        source: int,
        target: int,
        bars: int,
        *,
        quantize: str | None = None,
        origin: Origin = (),
    ) -> list[JobId]:
        """Morph slot ``source`` into slot ``target`` over ``bars`` bars: render one one-bar
        step per bar (morph positions 1/bars … 1: ``source``'s prompt and seed toward
        ``target``'s) and play them in slot ``target``, the first at the ``quantize`` point once
        it is ready (``source`` stops there), each next one on the line after the one before
        became audible. A step not ready in time leaves the one before looping: never silent.
        Returns the steps' job ids."""
        with self._lock:
            slots = {source: self._slot(source), target: self._slot(target)}
            for index, slot in slots.items():
                if slot.prompt is None:
                    raise NotFound(
                        f"slot {index} has no prompt to morph: define it with /musicldm/slot "
                        f"{index} prompt first"
                    )
            start, end = slots[source], slots[target]
            from_spec = self._build(start.prompt or "", start.options, start)
            to_spec = self._build(end.prompt or "", end.options, end)
            from_seed = self._seed_of(start, from_spec)
            to_seed = self._seed_of(end, to_spec)
            # one bar is never longer than the slot's takes were allowed to be, unless they were
            # given in seconds: let it be as long as a bar is
            bar_seconds = from_spec.beats_per_bar * 60.0 / from_spec.bpm
            # every step's spec first: a bad one refuses the morph before anything is queued
            specs = [
                replace(
                    from_spec,
                    bars=1,  # one step a bar
                    seconds=None,
                    takes=1,
                    seed=from_seed,
                    morph_to=end.prompt,
                    morph=step / bars,
                    morph_seed=to_seed,
                    source=None,  # a morph goes from prompt to prompt
                    strength=None,
                    repaint=None,
                    extend=None,
                ).validated(max_seconds=max(DEFAULT_MAX_SECONDS, bar_seconds))
                for step in range(1, bars + 1)
            ]
            # the morph's steps are what slot ``to`` plays: who waited for it hears them
            waited = end.wait.origin if end.wait is not None else ()
            heirs = _union(self._end_morph(target, answer=False), waited)
            end.wait, end.follow = None, False
            jobs: list[JobId] = [f"morph{target}.{next(self._job_numbers)}" for _ in specs]
            quantize = quantize or PLAYBACK_OPTIONS["quantize"].value
            morph = _Morph(source, jobs, quantize, origin, heirs=heirs)
            self._morphs[target] = morph
            for job_id, spec in zip(jobs, specs, strict=True):
                self._slot_jobs.add(job_id)
                try:
                    self.jobs.submit(job_id, spec, priority="live", origin=origin, slot=target)
                except Exception:
                    self._end_morph(target)  # a full queue: no half morph
                    raise
            log.info("morph slot %s → %s over %s bars: %s", source, target, bars, jobs)
            return jobs

    @staticmethod
    def _seed_of(slot: SlotState, spec: Any) -> int:
        """The seed a morph starts from (or goes to) for this slot: the seed of its take playing
        (or ready), else the seed its next take would get."""
        take = slot.last or (slot.ready[0] if slot.ready else None)
        if take is not None and take.seed is not None:
            return take.seed
        return (int(spec.seed or 0) + slot.made) % 2**31

    def _end_morph(self, target: int, *, answer: bool = True) -> Origin:
        """Drop the morph into ``target`` (if any) and cancel its steps still to render.
        Returns its heirs when no step was launched; with ``answer``, they hear ``/stopped``
        then if the slot is silent (nothing else will answer them)."""
        morph = self._morphs.pop(target, None)
        if morph is None:
            return ()
        left = set(morph.jobs) - set(morph.ready)
        if left:
            self.jobs.cancel_jobs(lambda job: job.job_id in left)
        heirs = () if morph.launched else morph.heirs
        silent = not self._launches.get(target) and target not in self._sounding
        if heirs and answer and silent:
            self.events.send(contract.stopped(target), heirs)
        return heirs

    def _morph_step(self, target: int) -> None:
        """Launch the morph's next step if it is ready and every step before is audible."""
        morph = self._morphs.get(target)
        if morph is None or morph.launched >= len(morph.jobs) or morph.heard < morph.launched:
            return
        take = morph.ready.get(morph.jobs[morph.launched])
        if take is None:
            return
        slot = self._slot(target)
        quantize = morph.quantize if morph.launched == 0 else "bar"
        origin = morph.origin if morph.launched else _union(morph.origin, morph.heirs)
        # each step loops until the next one is ready: never silent
        self._launch(target, take, slot, origin, quantize=quantize, loop=True)
        if morph.launched == 0:  # hand over on the same line
            source, launches = self.slots[morph.source], self._launches.get(morph.source, [])
            if morph.source not in self._sounding:  # no stopped event: what waited answers
                for launch in launches:
                    launch.stop_origin = _union(launch.stop_origin)
                if source.wait is not None and not launches:
                    self.events.send(contract.stopped(morph.source), source.wait.origin)
            self.mixer.stop(morph.source, quantize=quantize)
            source.wait = None
            self._sounding.discard(morph.source)  # stopping: it must not evolve on meanwhile
        morph.launched += 1
        if morph.launched == len(morph.jobs):  # the last step is slot ``target``'s own take now
            slot.last = take
            slot.wait = None
            del self._morphs[target]

    def trigger(
        self, index: int, playback: PlaybackOptions = _AS_BEFORE, *, origin: Origin = ()
    ) -> None:
        """Launch slot ``index``'s next ready take at the quantize point (or its last take again
        if none is ready), and start rendering a replacement. A slot without any take yet waits
        for its first one and says so with ``/musicldm/late id`` at once. ``playback``'s options
        that are given stay the slot's from now on; the others keep the slot's."""
        announce: JobId | None = None
        with self._lock:
            slot = self._slot(index)
            self._end_morph(index)  # the performer takes the slot over
            if origin:
                slot.origin = origin
            asked = origin or slot.origin
            # a trigger still waiting for a fresh take (another client's, say) keeps waiting
            # with this one: both hear the take that answers them
            waiting = _union(slot.wait.origin if slot.wait is not None else (), asked)
            if playback.quantize is not None:
                slot.quantize = playback.quantize
            if playback.loop is not None:
                slot.loop = playback.loop
            if playback.gain is not None:
                slot.gain = playback.gain
            target = self._target_bpm(slot)
            fitting = [t for t in slot.ready if self._fits(t.bpm, target)]
            if fitting:
                take = fitting[0]
                slot.ready.remove(take)
                slot.last = take
                slot.wait = None
                self._launch(index, take, slot, waiting)
            elif slot.last is not None and self._fits(slot.last.bpm, target):
                self._launch(index, slot.last, slot, asked)  # never silence
                slot.wait = _Wait(self.mixer.launch_point(slot.quantize), waiting, announced=False)
            elif slot.ready:  # only takes at an old tempo: play one until a fresh one is ready
                take = slot.ready.pop()
                slot.last = take
                self._launch(index, take, slot, asked)
                slot.wait = _Wait(self.mixer.launch_point(slot.quantize), waiting, announced=False)
            elif slot.last is not None:
                self._launch(index, slot.last, slot, asked)  # never silence
                slot.wait = _Wait(self.mixer.launch_point(slot.quantize), waiting, announced=False)
            elif slot.prompt is None:
                raise NotFound(
                    f"slot {index} has nothing to play: define it with /musicldm/slot {index} "
                    f"prompt, or generate with slot {index}"
                )
            else:  # nothing rendered yet: the first fresh take starts the slot
                self._refill(index, slot)
                slot.wait = _Wait(self.mixer.launch_point(slot.quantize), waiting, announced=True)
                announce = next(
                    (j for j, bpm in slot.pending.items() if self._fits(bpm, target)), None
                )
            self._refill(index, slot)
        if announce is not None:
            self.events.send(contract.late(announce), asked)

    def _launch(
        self,
        index: int,
        take: Take,
        slot: SlotState,
        origin: Origin,
        late_due: int | None = None,
        *,
        quantize: str | None = None,
        loop: bool | None = None,
        at_cycle_end: bool = False,
    ) -> None:
        """Hand ``take`` to the mixer in slot ``index`` at the slot's quantize point, with the
        slot's loop and gain (``quantize`` and ``loop`` given override the slot's); with
        ``at_cycle_end``, where the take sounding in the slot ends its loop instead (the
        quantize point when nothing loops there)."""
        launch = _Launch(index, take.path, take.job_id, origin, late_due)
        with self._lock:
            self._halted.discard(index)  # launched again (a trigger, a morph): it may move on
            self._launches.setdefault(index, []).append(launch)
        self.mixer.play(
            index,
            take.audio,
            quantize=slot.quantize if quantize is None else quantize,
            loop=slot.loop if loop is None else loop,
            gain=slot.gain,
            tag=launch,
            at_cycle_end=at_cycle_end,
        )

    def _play_voice(
        self,
        samples: np.ndarray,
        path: str,
        job_id: JobId | None,
        origin: Origin,
        playback: PlaybackOptions = _AS_BEFORE,
    ) -> int:
        quantize, loop, gain = (_given_or_default(playback, k) for k in PLAYBACK_OPTIONS)
        with self._lock:
            voice = next(self._play_slots)
            launch = _Launch(voice, path, job_id, origin)
            self._launches.setdefault(voice, []).append(launch)
        self.mixer.play(voice, samples, quantize=quantize, loop=loop, gain=gain, tag=launch)
        return voice

    def play_file(
        self,
        path: Path,
        job_id: JobId | None = None,
        playback: PlaybackOptions = _AS_BEFORE,
        *,
        origin: Origin = (),
    ) -> int:
        """Play a finished clip file on a free play voice; returns the mixer slot used.
        ``playback``'s options not given take the contract's defaults (bar, loop, gain 1)."""
        import soundfile as sf

        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise NotFound(f"cannot read {path}: {exc}") from exc
        mono = np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32)
        return self._play_voice(
            resample(mono, rate, self.device_rate),
            str(path),
            job_id,
            origin,
            playback,
        )

    def stop(
        self,
        index: int | None,
        *,
        quantize: str | None = None,
        origin: Origin = (),
    ) -> None:
        """Stop one slot or everything at the quantize point, and cancel its launches still
        waiting: a trigger waiting for a fresh take, a ``generate … play 1`` accepted before
        (its clip is still rendered and delivered; it is not played), a launch waiting for its
        quantize point. The stop's sender hears ``/musicldm/stopped`` too; so does it when the
        slot was silent but had a launch waiting."""
        if index is not None:
            self._slot(index)
        answers: list[tuple[int, Origin]] = []
        with self._lock:
            self._stopped_at[index] = time.time()
            for target, morph in list(self._morphs.items()):
                if index is None or index in (target, morph.source):
                    self._end_morph(target)
            for slot_index, launches in self._launches.items():
                if index is None or slot_index == index:
                    for launch in launches:  # their stopped (or dropped) events answer the stop
                        launch.stop_origin = _union(launch.stop_origin, origin)
            for slot_index, slot in self.slots.items():
                if index is None or slot_index == index:
                    slot.follow = False
                    self._halted.add(slot_index)
                    waiting, slot.wait = slot.wait, None
                    silent = not self._launches.get(slot_index) and slot_index not in self._sounding
                    if waiting is not None and silent:  # no mixer event will answer this stop
                        answers.append((slot_index, _union(origin, waiting.origin)))
        self.mixer.stop(index, quantize=quantize or PLAYBACK_OPTIONS["quantize"].value)
        for slot_index, to in answers:
            self.events.send(contract.stopped(slot_index), to)

    def release(self, index: int) -> bool:
        """A MIDI note-off: a slot in gate mode stops at its quantize point; others play on.

        Returns whether the slot was stopped."""
        with self._lock:
            slot = self.slots.get(index)
            if slot is None or not slot.gate:
                return False
            quantize = slot.quantize
        self.stop(index, quantize=quantize)
        return True

    # -- the session (any thread that changes it) ------------------------------------------------

    def tempo_changed(self, bpm: float) -> None:
        """The session's tempo moved: the clock follows from the next buffer. The slots render
        for it once it has settled (:meth:`settle`)."""
        self.mixer.set_tempo(bpm)

    def transport_changed(self, running: bool, resume: bool) -> None:
        """The session's transport started or stopped; a stop silences everything at once and
        cancels the launches still waiting. A start begins bar 1 even on a running clock."""
        if running and not resume:
            # The mixer ignores a start of a running clock, but a DAW's Start (or OSC `start`)
            # means "bar 1 now"; the daemon's clock runs from start-up, so the first Start of a
            # set always finds it running. Stopping the grid first keeps what sounds playing.
            self.mixer.transport(False)
        self.mixer.transport(running, resume=resume)
        if not running:
            self.stop(None, quantize="none")

    def settle(self, now: float | None = None) -> bool:
        """Move the slots to the session's tempo if it has held for ``settle_seconds``, or if
        it has kept moving for a bar since it first differed; returns whether they moved.

        Called by the event thread every :data:`EVENT_SECONDS`; tests call it with a fake
        ``now`` (seconds on the session's clock)."""
        state = self.session.state
        now = self._clock() if now is None else now
        with self._lock:
            if state.bpm == self._render_bpm:
                self._unsettled_since = None
                if any(slot.tempo is not None for slot in self.slots.values()):
                    self._retempo()  # back before it held: slots defined meanwhile follow
                return False
            if self._unsettled_since is None:
                self._unsettled_since = now
            bar_seconds = self.mixer.grid.beats_per_bar * 60.0 / state.bpm
            steady = now - state.tempo_changed_at >= self.settle_seconds
            overdue = now - self._unsettled_since >= max(self.settle_seconds, bar_seconds)
            if not (steady or overdue):
                return False
            self._render_bpm = float(state.bpm)
            self._unsettled_since = None
            self.retempos += 1
            self._retempo()
        log.debug("slots render at %.2f BPM now", state.bpm)
        return True

    def _retempo(self) -> None:
        """After the tempo moved: takes still coming for an old tempo are cancelled, slots whose
        takes no longer fit render fresh ones, and playing slots swap them in when ready."""
        sounding = set(self._sounding)
        superseded: set[JobId] = set()
        for index, slot in self.slots.items():
            slot.tempo = None  # every slot renders for the tempo that holds now
            target = self._target_bpm(slot)
            if index in sounding and slot.last is not None:
                slot.follow = not self._fits(slot.last.bpm, target)
            stale = [job_id for job_id, bpm in slot.pending.items() if not self._fits(bpm, target)]
            for job_id in stale:
                del slot.pending[job_id]
            superseded.update(stale)
        if superseded:
            self.jobs.cancel_jobs(lambda job: job.job_id in superseded)
        for index, slot in self.slots.items():
            try:
                self._refill(index, slot)
            except Exception as exc:  # a full queue, say: the next trigger tries again
                log.warning("slot %s: cannot render at the new tempo: %s", index, exc)

    # -- the worker's clips (worker thread) ------------------------------------------------------

    def _play_cancelled(self, job: JobInfo) -> bool:
        """Whether a stop of its slot (or of everything) came after ``job`` was accepted."""
        stopped = self._stopped_at.get(None, -math.inf)
        if job.slot is not None:
            stopped = max(stopped, self._stopped_at.get(job.slot, -math.inf))
        return job.created <= stopped

    def on_clip(self, job: JobInfo, clip: Clip) -> None:
        """A take was written: park it in its slot, or play it, as the job asked."""
        if job.slot is None and not job.play:
            return
        audio = resample(clip.audio, clip.plan.out_rate, self.device_rate)
        bpm = None if clip.spec.seconds is not None else float(clip.spec.bpm)
        take = Take(
            np.ascontiguousarray(audio, dtype=np.float32),
            str(clip.path),
            job.job_id,
            bpm,
            clip.seed,
        )
        if job.slot is None:
            with self._lock:
                if self._play_cancelled(job):
                    return
            self._play_voice(take.audio, take.path, take.job_id, job.origin)
            return
        with self._lock:
            slot = self._slot(job.slot)
            morph = self._morphs.get(job.slot)
            if morph is not None and job.job_id in morph.jobs:
                morph.ready[job.job_id] = take
                self._morph_step(job.slot)
                return
            if job.job_id in self._slot_jobs and job.job_id not in slot.pending:
                return  # rendered for a prompt or a tempo the slot no longer has
            if clip.rank == 0:
                slot.pending.pop(job.job_id, None)
            play = job.play and not self._play_cancelled(job)
            waiting = (
                (slot.wait is not None or slot.follow)
                and self._fits(bpm, self._target_bpm(slot))
                and job.slot not in self._morphs  # a morph's steps play there now
            )
            if waiting or play:
                # a trigger (or the tempo) is waiting for a fresh take: it goes at the next
                # quantize point
                wait, slot.wait, slot.follow = slot.wait, None, False
                slot.last = take
                if wait is not None:  # the trigger's sender (and the generate's, if it asked)
                    origin = _union(wait.origin, job.origin if play else ())
                elif play:
                    origin = job.origin
                else:  # swapped in after a tempo change: nobody asked, tell the slot's owner
                    origin = slot.origin
                due = wait.due if wait is not None and not wait.announced else None
                self._launch(job.slot, take, slot, origin, late_due=due)
            else:
                slot.ready.append(take)
                self._advance(job.slot, slot)
            self._refill(job.slot, slot)

    # -- events (event thread) -------------------------------------------------------------------

    def _pump(self) -> None:
        while not self._stop.wait(EVENT_SECONDS):
            try:
                self._send_events()
                self.settle()
            except Exception:
                log.exception("playback events failed")
        self._send_events()

    def _heard(self, index: int, launch: _Launch) -> None:
        """A launch became audible (lock held): a morph's next step, or an evolving slot's next
        take, may go on the next line now."""
        morph = self._morphs.get(index)
        if morph is not None:
            if launch.job_id in morph.jobs:
                morph.heard += 1
                self._morph_step(index)
            return
        slot = self.slots.get(index)
        if slot is not None:
            try:
                self._advance(index, slot)
            except Exception as exc:  # a full queue, say: the next take tries again
                log.warning("slot %s: cannot evolve: %s", index, exc)

    def _send_events(self) -> None:
        for kind, slot, tag, sample in self.mixer.drain_events():
            if not isinstance(tag, _Launch):
                continue
            with self._lock:
                launches = self._launches.get(slot, [])
                if kind == "playing":
                    self._sounding.add(slot)
                    if tag in launches:  # the launches before it were replaced or dropped
                        del launches[: launches.index(tag)]
                    self._heard(slot, tag)
                else:
                    if kind == "stopped":
                        self._sounding.discard(slot)
                    if tag in launches:
                        later = launches[launches.index(tag) + 1 :]
                        if kind == "dropped" and tag.stop_origin is None and later:
                            # replaced before it sounded: its sender hears the one replacing it
                            later[0].origin = _union(later[0].origin, tag.origin)
                        launches.remove(tag)
                silent = slot not in self._sounding
            if kind == "playing":
                self.events.send(contract.playing(slot, tag.path), tag.origin)
                if tag.late_due is not None and sample > tag.late_due and tag.job_id is not None:
                    self.events.send(contract.late(tag.job_id), tag.origin)
            elif kind == "stopped" or (tag.stop_origin is not None and silent):
                # a stop that cancelled a launch still waiting for its line answers too
                self.events.send(contract.stopped(slot), _union(tag.origin, tag.stop_origin))
        if self.mixer.last_error is not None and self.mixer.callback_errors:
            log.error("audio callback error: %s", self.mixer.last_error)


class MidiBridge:
    """What MIDI and Link do (see :class:`daemon.live.midi.MidiActions`): slots through
    :class:`Live` (when there is audio output), tempo and transport through the
    :class:`~daemon.live.session.Session`, knobs through ``set_default``.

    Args:
        session: the one owner of tempo and transport.
        live: the slots, or None without audio output (then notes do nothing).
        set_default: ``set_default(key, value)`` as ``/musicldm/set key value``.
    """

    def __init__(
        self,
        session: Session,
        live: Live | None,
        *,
        set_default: Callable[[str, Any], None],
    ) -> None:
        self.session = session
        self.live = live
        self._set_default = set_default
        self._said_silent = False

    def trigger(self, index: int, gain: float) -> None:
        if self.live is None:
            if not self._said_silent:  # once: a performer hitting pads must learn why
                self._said_silent = True
                log.warning("MIDI note for slot %s: no audio output, notes play nothing", index)
            return
        try:
            self.live.trigger(index, PlaybackOptions(gain=min(max(gain, 0.0), 2.0)))
        except Exception as exc:
            log.warning("MIDI trigger of slot %s: %s", index, exc)

    def release(self, index: int) -> None:
        """Note-off: stops the slot if it is in gate mode (``/musicldm/slot … gate 1``)."""
        if self.live is not None:
            self.live.release(index)

    def set_default(self, key: str, value: float) -> None:
        try:
            self._set_default(key, value)
        except Exception as exc:
            log.warning("MIDI control of %s: %s", key, exc)

    def set_tempo(self, bpm: float) -> None:
        self.session.set_tempo(bpm, external=True)

    def transport(self, command: str) -> None:
        self.session.set_running(command != "stop", resume=command == "continue")

    def align_phase(self, phase: float, read_at: float) -> None:
        """Ableton Link's bar phase: line the daemon's bar lines up with the session's, as
        heard (the output's latency taken into account)."""
        if self.live is not None:
            latency = float(getattr(self.live.output, "latency_seconds", 0.0) or 0.0)
            self.live.mixer.align_phase(phase, read_at - latency)

    def tempo_source_external(self, active: bool) -> None:
        self.session.follow_external(active)
        log.info("tempo %s MIDI clock", "follows" if active else "no longer follows")
