"""The live session's shared state, with one owner: tempo, transport, and who sets the tempo.

Every front-end writes through one :class:`Session`: the OSC handlers (``/musicldm/tempo``,
``/musicldm/set bpm``, ``/musicldm/transport``), the MIDI bridge (clock, Start, Stop, Continue)
and Ableton Link. Everyone reads from it: the default ``bpm`` of a new clip, ``/musicldm/get bpm``
and ``transport``, ``/musicldm/status``, with or without audio output. Listeners (the live slots,
:class:`daemon.live.slots.Live`) hear each change, so the mixer's clock follows at once.

Threads: any thread may call any method. One lock guards the state; a second one serialises
the listener calls, so that two changes from two threads reach every listener in the order they
took effect. Listeners run on the thread that made the change, must return quickly (enqueue a
mixer command, note a time) and must not call the setters of this session.

While the tempo follows an outside clock (MIDI clock or Link: :meth:`Session.follow_external`),
only external tempo changes apply; ``/musicldm/tempo`` and ``/musicldm/set bpm`` are ignored
and :meth:`Session.set_tempo` says so by returning False.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from musicldm_core.units import Bpm, Seconds

__all__ = ["Session", "SessionListener", "SessionState"]


@dataclass(frozen=True)
class SessionState:
    """A consistent snapshot of the session."""

    bpm: Bpm
    """The tempo, beats per minute."""
    running: bool
    """Whether the transport runs (a stopped clock launches at once: there is no grid)."""
    external: bool
    """Whether the tempo follows MIDI clock or Ableton Link (OSC tempo is ignored then)."""
    tempo_changed_at: Seconds
    """When the tempo last changed, on the session's clock (``time.monotonic()`` by default)."""
    tempo_changes: int
    """How many times the tempo changed since the start."""


class SessionListener(Protocol):
    """What hears the session's changes (called on the changing thread, one call at a time)."""

    def tempo_changed(self, bpm: float) -> None:
        """The tempo is now ``bpm``."""

    def transport_changed(self, running: bool, resume: bool) -> None:
        """The transport started (``resume``: continue from where it stopped) or stopped."""


def _check_bpm(bpm: float) -> float:
    bpm = float(bpm)
    if not math.isfinite(bpm) or bpm <= 0.0:
        raise ValueError(f"bpm must be a positive finite number, got {bpm!r}")
    return bpm


class Session:
    """The one owner of the live tempo and transport.

    Args:
        bpm: the tempo at start (the config's ``tempo``).
        running: whether the transport runs from the start (it does in the daemon).
        clock: the clock :attr:`SessionState.tempo_changed_at` is read from, in seconds; tests
            pass a fake one.
    """

    def __init__(
        self,
        bpm: float = 120.0,
        *,
        running: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._notify = threading.Lock()
        self._listeners: list[SessionListener] = []
        self._state = SessionState(
            bpm=Bpm(_check_bpm(bpm)),
            running=bool(running),
            external=False,
            tempo_changed_at=Seconds(clock()),
            tempo_changes=0,
        )

    # -- reading (any thread) ----------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """A snapshot of everything at once."""
        with self._lock:
            return self._state

    def listen(self, listener: SessionListener) -> None:
        """Tell ``listener`` about every later change."""
        with self._notify:
            self._listeners.append(listener)

    # -- changing (any thread) ---------------------------------------------------------------------

    def set_tempo(self, bpm: float, *, external: bool = False) -> bool:
        """Set the tempo (beats per minute, positive); ``external`` for MIDI clock and Link.

        Returns False when it was ignored: an OSC tempo while the tempo follows an outside
        clock. Raises ``ValueError`` for a tempo that is not a positive finite number.
        """
        bpm = _check_bpm(bpm)
        with self._notify:
            with self._lock:
                state = self._state
                if state.external and not external:
                    return False
                if bpm == state.bpm:
                    return True
                self._state = replace(
                    state,
                    bpm=Bpm(bpm),
                    tempo_changed_at=Seconds(self.clock()),
                    tempo_changes=state.tempo_changes + 1,
                )
            for listener in self._listeners:
                listener.tempo_changed(bpm)
        return True

    def set_running(self, running: bool, *, resume: bool = False) -> None:
        """Start (bar 1 begins now; with ``resume``, go on from the beat where it stopped) or
        stop the transport. Listeners hear every call, even one that changes nothing, since a
        stop also silences what plays."""
        with self._notify:
            with self._lock:
                self._state = replace(self._state, running=bool(running))
            for listener in self._listeners:
                listener.transport_changed(bool(running), bool(resume))

    def follow_external(self, active: bool) -> None:
        """True: an outside clock (MIDI clock, Link) sets the tempo from now on; False: it
        stopped, and the tempo is the daemon's own again (at the last tempo followed)."""
        with self._lock:
            self._state = replace(self._state, external=bool(active))
