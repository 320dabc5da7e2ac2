"""Ableton Link (optional): follow a Link session's tempo and bar phase.

:class:`LinkFollower` drives the same :class:`~daemon.live.midi.MidiActions` as the MIDI
front-end (``set_tempo``, ``align_phase``, ``tempo_source_external``). It polls Link's session
from its own thread and calls the actions from there; :meth:`LinkFollower.beat_at` may be called
from any thread. Needs the ``aalink`` package (``pip install "musicldm-daemon[link]"``); without
it :meth:`LinkFollower.start` raises :class:`~daemon.live.midi.MidiUnavailable` with
:func:`link_probe`'s reason, and the daemon says once that Link is off.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from daemon.live.midi import MidiActions, MidiUnavailable
from musicldm_core.units import Bpm, Seconds

__all__ = ["LinkFollower", "link_available", "link_probe"]

log = logging.getLogger(__name__)


def link_probe() -> str | None:
    """None if Ableton Link can be used (the ``aalink`` package imports), else why not."""
    try:
        import aalink  # noqa: F401
    except Exception as exc:
        return (
            f"Ableton Link is not available (aalink: {exc}); "
            'install it with: pip install "musicldm-daemon[link]"'
        )
    return None


def link_available() -> bool:
    """Whether Ableton Link can be used here; :func:`link_probe` says why not."""
    return link_probe() is None


class LinkFollower:
    """Follows an Ableton Link session: its tempo goes to ``set_tempo``, its beat to ``beat_at``.

    Needs the optional ``aalink`` package (``pip install "musicldm-daemon[link]"``); without it
    :meth:`start` raises :class:`MidiUnavailable` with :func:`link_probe`'s reason. A thread
    reads Link's tempo and beat every ``poll_seconds``, calls ``set_tempo`` when the tempo
    moved by more than ``min_tempo_change`` BPM, and ``align_phase`` (where the actions have
    it) with the bar phase and the time it was read. While running, the tempo is external
    (``tempo_source_external(True)``). ``bpm`` is the tempo the daemon starts the session
    with when it is alone in it.

    Only the "not installed" path and the polling logic (with a stand-in ``link`` object that
    has ``tempo``, ``beat``, ``quantum``, ``enabled`` and ``num_peers``) are tested here; a real
    session needs the network and another Link peer.
    """

    def __init__(
        self,
        actions: MidiActions,
        *,
        bpm: float = 120.0,
        quantum_beats: float = 4.0,
        poll_seconds: float = 0.05,
        min_tempo_change: float = 0.05,
        link: Any = None,
    ) -> None:
        self.actions = actions
        self.initial_bpm = bpm
        self.quantum_beats = quantum_beats
        self.poll_seconds = Seconds(poll_seconds)
        self.min_tempo_change = min_tempo_change
        self._link = link
        self._loop: Any = None
        self._lock = threading.Lock()
        self._reading: tuple[float, float, float] | None = None  # (monotonic, beat, bpm)
        self._sent_bpm: float | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False

    def start(self) -> None:
        """Join the Link session and start following it. Raises :class:`MidiUnavailable`."""
        if self._link is None:
            reason = link_probe()
            if reason is not None:
                raise MidiUnavailable(reason)
            import asyncio

            import aalink

            # aalink wants an event loop for sync() futures and callbacks; polling needs neither.
            self._loop = asyncio.new_event_loop()
            self._link = aalink.Link(self.initial_bpm, self._loop)
        self._link.quantum = self.quantum_beats
        self._link.enabled = True
        self._started = True
        self.actions.tempo_source_external(True)
        self.poll()
        self._thread = threading.Thread(target=self._run, name="link-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Leave the session; the tempo is the daemon's own again."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        if self._started:
            self._started = False
            with contextlib.suppress(Exception):
                self._link.enabled = False
            self.actions.tempo_source_external(False)
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def poll(self, now: float | None = None) -> None:
        """Read Link's tempo and beat once (the follower's thread does this every poll)."""
        now = time.monotonic() if now is None else now
        bpm = float(self._link.tempo)
        beat = float(self._link.beat)
        with self._lock:
            self._reading = (now, beat, bpm)
        if self._sent_bpm is None or abs(bpm - self._sent_bpm) > self.min_tempo_change:
            self._sent_bpm = bpm
            try:
                self.actions.set_tempo(round(bpm, 2))
            except Exception:
                log.exception("Link: set_tempo(%s) failed", bpm)
        align = getattr(self.actions, "align_phase", None)
        if align is not None:
            try:
                align(beat % self.quantum_beats, now)
            except Exception:
                log.exception("Link: aligning the phase failed")

    @property
    def bpm(self) -> Bpm | None:
        """The session's tempo at the last reading, or None before :meth:`start`."""
        with self._lock:
            return None if self._reading is None else Bpm(self._reading[2])

    @property
    def peers(self) -> int:
        """How many other Link peers are in the session."""
        return int(getattr(self._link, "num_peers", 0)) if self._link is not None else 0

    def beat_at(self, now: float) -> float | None:
        """The session's beat position at ``now`` (``time.monotonic()`` seconds), or None.

        Extrapolated from the last reading at its tempo; any thread may call it.
        """
        with self._lock:
            reading = self._reading
        if reading is None:
            return None
        read_at, beat, bpm = reading
        return beat + (now - read_at) * bpm / 60.0

    def phase_at(self, now: float) -> float | None:
        """Beats since the last bar line (0 ≤ phase < ``quantum_beats``) at ``now``, or None."""
        beat = self.beat_at(now)
        return None if beat is None else beat % self.quantum_beats

    def _run(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:
                log.exception("Link: reading the session failed; Link following stops")
                return
