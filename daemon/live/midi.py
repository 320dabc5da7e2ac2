"""The MIDI front-end: notes trigger slots, CCs set defaults, MIDI clock sets the tempo.

MIDI maps onto the same actions as OSC (see ``docs/osc.md``): trigger a slot, set a default,
set the tempo, start and stop the transport. Like the OSC front-end, it only translates
messages and hands them to the daemon through :class:`MidiActions`; it never waits on the model.

Threads, and who calls what:

- **The MIDI backend's thread** (rtmidi's callback thread, or :class:`MidiInput`'s reader thread
  for a port that can only be polled) runs :meth:`MidiInput.enqueue` only: it stamps the message
  with ``time.monotonic()`` and puts it on a bounded queue. Nothing there can block on the
  daemon, so a slow action never delays the next message's timestamp.
- **The MIDI worker thread** (one per :class:`MidiInput`) takes messages off that queue and calls
  :meth:`MidiControl.handle`, and :meth:`MidiControl.check` every quarter second to notice a lost
  clock. Every :class:`MidiActions` method is called from this thread, one call at a time, so
  :class:`MidiControl` and :class:`ClockFollower` need no locks. The actions must return quickly
  (enqueue, set a value): they run between MIDI messages.
- **Ableton Link** lives in :mod:`daemon.live.link` (same actions, its own polling thread).
- The daemon's start-up thread calls :func:`list_inputs`, :func:`probe`, :func:`open_input`,
  :meth:`MidiInput.open`, :meth:`MidiInput.start` and :meth:`MidiInput.stop`.

Errors::

    Exception
    └── MidiUnavailable    no MIDI system (no ALSA sequencer, no backend), or no port to open;
        └── PortNotFound   no input port matches the name given (the message lists them)

Both mean "MIDI control is off"; the daemon says so once and keeps serving OSC.
:meth:`daemon.live.link.LinkFollower.start` raises :class:`MidiUnavailable` too, when ``aalink``
is missing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from daemon.wire.contract import GENERATE_OPTIONS
from musicldm_core.spec import LIMITS
from musicldm_core.units import Bpm, Seconds

__all__ = [
    "INTEGER_KEYS",
    "TICKS_PER_BEAT",
    "VIRTUAL_PORT_NAME",
    "CCMapping",
    "ClockFollower",
    "MidiActions",
    "MidiControl",
    "MidiInput",
    "MidiUnavailable",
    "PortNotFound",
    "list_inputs",
    "match_port",
    "open_input",
    "parse_cc_map",
    "probe",
]

log = logging.getLogger(__name__)

TICKS_PER_BEAT = 24
"""MIDI clock resolution: timing clock messages per quarter note."""

VIRTUAL_PORT_NAME = "musicldm"
"""The name of the virtual input port that ``--midi-virtual`` creates."""

TRANSPORT_COMMANDS = ("start", "stop", "continue")

INTEGER_KEYS = frozenset(
    key for key, option in GENERATE_OPTIONS.items() if option.type_name in ("int", "0/1")
)
"""Options the OSC contract types as int: a CC mapped onto one of them is rounded by default."""

TEMPO_RANGE = LIMITS["bpm"]
"""Tempi the clock follower reports (the contract's ``bpm`` range); others are noise."""


# --- errors -------------------------------------------------------------------------------------


class MidiUnavailable(Exception):
    """MIDI control cannot run here; the message says why, for a human."""


class PortNotFound(MidiUnavailable):
    """No MIDI input port matches the requested name; the message lists the available ones."""


# --- what MIDI can do ---------------------------------------------------------------------------


class MidiActions(Protocol):
    """What the MIDI front-end asks of the daemon; :class:`daemon.live.slots.MidiBridge`
    implements it (tempo and transport go to the one :class:`daemon.live.session.Session`).

    Called from the MIDI worker thread (and, for Link, from :class:`LinkFollower`'s thread),
    while the OSC thread calls the daemon too: every method must be safe to call from another
    thread and return quickly.
    """

    def trigger(self, index: int, gain: float) -> None:
        """Trigger slot ``index`` (0–127) at linear ``gain`` (0–1 from velocity; 1 = unity)."""

    def release(self, index: int) -> None:
        """Note-off for slot ``index``; the daemon acts on it only for slots in gate mode."""

    def set_default(self, key: str, value: float) -> None:
        """Change a default used by later requests, as ``/musicldm/set key value``."""

    def set_tempo(self, bpm: float) -> None:
        """Set the tempo in BPM from MIDI clock or Link; applies even while OSC tempo is ignored."""

    def transport(self, command: str) -> None:
        """``'start'``, ``'stop'`` or ``'continue'`` the internal clock."""

    def tempo_source_external(self, active: bool) -> None:
        """True: MIDI clock is arriving, ignore ``/musicldm/tempo``; False: the clock stopped."""

    def align_phase(self, phase: float, read_at: float) -> None:
        """Ableton Link: ``phase`` beats past the session's last bar line at
        ``time.monotonic()`` == ``read_at``; line the daemon's bars up with it."""


@dataclass(frozen=True)
class CCMapping:
    """One control change mapped onto a default: CC value 0–127 goes linearly onto ``lo``..``hi``.

    ``lo`` may exceed ``hi`` (a knob that turns the other way). With ``integer`` the mapped value
    is rounded to the nearest int, for options such as ``steps`` or ``bars``.
    """

    key: str
    lo: float
    hi: float
    integer: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"CC mapping key must be a non-empty option name, got {self.key!r}")
        for name in ("lo", "hi"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"CC mapping {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"CC mapping {name} must be finite, got {value!r}")

    def value(self, cc_value: int) -> float:
        """The option value for a CC value (clamped to 0–127): exactly ``lo`` at 0 and ``hi``
        at 127, never outside them."""
        fraction = min(max(cc_value, 0), 127) / 127
        # lo + fraction * (hi - lo) misses hi: 0.3 + (0.04 - 0.3) is 0.0399..., which the
        # option's range refuses. Weighting both ends is exact there; the clamp, in between.
        mapped = self.lo * (1 - fraction) + self.hi * fraction
        mapped = min(max(mapped, min(self.lo, self.hi)), max(self.lo, self.hi))
        return round(mapped) if self.integer else mapped


def parse_cc_map(table: Mapping[Any, Any]) -> dict[int, CCMapping]:
    """Build a CC map from the config's ``[midi.cc]`` table.

    ``table`` maps a controller number (0–127, as an int or a numeric string, as TOML table names
    are strings) to ``{"key": str, "min": number, "max": number, "integer": bool}``; ``integer``
    defaults to true for the contract's integer options (:data:`INTEGER_KEYS`). Raises
    :class:`ValueError` naming the field and its allowed range.
    """
    result: dict[int, CCMapping] = {}
    for raw_number, entry in table.items():
        try:
            number = int(raw_number)
        except (TypeError, ValueError):
            number = -1
        if not 0 <= number <= 127:
            raise ValueError(f"midi.cc controller must be in range 0..127, got {raw_number!r}")
        if not isinstance(entry, Mapping):
            raise ValueError(f"midi.cc.{number} must be a table with key, min and max")
        unknown = set(entry) - {"key", "min", "max", "integer"}
        if unknown:
            raise ValueError(
                f"midi.cc.{number} has unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                "allowed: key, min, max, integer"
            )
        missing = [name for name in ("key", "min", "max") if name not in entry]
        if missing:
            raise ValueError(f"midi.cc.{number} is missing {', '.join(missing)}")
        key = entry["key"]
        integer = entry.get("integer", key in INTEGER_KEYS)
        if not isinstance(integer, bool):
            raise ValueError(f"midi.cc.{number}.integer must be true or false, got {integer!r}")
        try:
            result[number] = CCMapping(key, entry["min"], entry["max"], integer)
        except ValueError as exc:
            raise ValueError(f"midi.cc.{number}: {exc}") from None
    return result


# --- MIDI clock ---------------------------------------------------------------------------------


class ClockFollower:
    """Estimates the tempo of an incoming MIDI clock (24 ticks per quarter note).

    The estimate is the least-squares line through tick time against tick number over the last
    ``window_ticks`` ticks (96 = four beats by default); its slope is the seconds per tick.
    Fitting a line, rather than averaging single intervals, lets the timing jitter of USB and
    the OS scheduler average out: with ±1 ms jitter, one beat of ticks gives the tempo to about
    ±0.1 BPM at 120 BPM, and a full window to about ±0.015 BPM.

    A long window alone would follow a tempo change slowly, so each tick is also compared with
    the line's prediction: when ``change_ticks`` ticks in a row land on the same side of it by
    more than ``change_sigmas`` times the fit's residual spread (and at least 1 ms), the tempo
    has changed. The old ticks are then dropped, and the previous estimate is held until
    ``min_ticks`` new ticks give a fresh one: a DAW's tempo step is followed after about one
    beat, a change of 1% after about two, and a single late tick changes nothing.

    Dropped clock messages are not detected (each tick counts as one); a gap longer than
    ``loss_seconds`` starts afresh. Not thread-safe: one thread feeds it.
    """

    def __init__(
        self,
        *,
        window_ticks: int = 4 * TICKS_PER_BEAT,
        min_ticks: int = TICKS_PER_BEAT,
        change_ticks: int = 4,
        change_sigmas: float = 4.0,
        loss_seconds: float = 2.0,
    ) -> None:
        if not 3 <= min_ticks <= window_ticks:
            raise ValueError(
                f"min_ticks must be in range 3..window_ticks ({window_ticks}), got {min_ticks}"
            )
        if not 2 <= change_ticks <= min_ticks:
            raise ValueError(
                f"change_ticks must be in range 2..min_ticks ({min_ticks}), got {change_ticks}"
            )
        if not loss_seconds > 0:
            raise ValueError(f"loss_seconds must be > 0, got {loss_seconds}")
        self.window_ticks = window_ticks
        self.min_ticks = min_ticks
        self.change_ticks = change_ticks
        self.change_sigmas = change_sigmas
        self.loss_seconds = Seconds(loss_seconds)
        self._times: deque[float] = deque(maxlen=window_ticks)
        self._fit: _Line | None = None
        self._sides: deque[int] = deque(maxlen=change_ticks)
        self._bpm: Bpm | None = None
        self._uncertainty: Bpm | None = None
        self._last_tick: float | None = None
        self.changes = 0
        """How many tempo changes were detected (for the log and tests)."""

    @property
    def bpm(self) -> Bpm | None:
        """The current tempo estimate in BPM, or None until ``min_ticks`` ticks have arrived."""
        return self._bpm

    @property
    def uncertainty(self) -> Bpm | None:
        """The estimate's standard error in BPM (from the fit's residuals), or None."""
        return self._uncertainty

    @property
    def last_tick(self) -> Seconds | None:
        """Timestamp (seconds, the caller's clock) of the latest tick, or None."""
        return None if self._last_tick is None else Seconds(self._last_tick)

    def reset(self) -> None:
        """Forget the ticks and the estimate (on Start/Stop, or when the clock was lost).

        The time of the last tick is kept, so :meth:`check` still tells a running clock
        (DAWs go on sending clock while stopped) from a lost one.
        """
        self._times.clear()
        self._sides.clear()
        self._fit = None
        self._bpm = None
        self._uncertainty = None

    def tick(self, timestamp: float) -> Bpm | None:
        """Record one clock tick received at ``timestamp`` seconds; return the tempo estimate.

        Timestamps must come from one monotonic clock (``time.monotonic()`` in the daemon).
        A tick after more than ``loss_seconds`` of silence, or one earlier than the previous
        tick, starts a fresh estimate.
        """
        last = self._last_tick
        if last is not None and (timestamp < last or timestamp - last > self.loss_seconds):
            self.reset()
        self._last_tick = timestamp
        if self._fit is not None and self._changed(self._fit, timestamp):
            self.changes += 1
            keep = list(self._times)[-(self.change_ticks - 1) :]
            self._times.clear()
            self._times.extend(keep)
            self._sides.clear()
            self._fit = None  # hold the old estimate until min_ticks new ticks are in
        self._times.append(timestamp)
        if len(self._times) >= self.min_ticks:
            line = _fit_line(self._times)
            if line.seconds_per_tick > 0:
                self._fit = line
                self._bpm = Bpm(60.0 / (line.seconds_per_tick * TICKS_PER_BEAT))
                self._uncertainty = Bpm(self._bpm * line.slope_error / line.seconds_per_tick)
        return self._bpm

    def check(self, now: float) -> bool:
        """True while the clock is running: a tick arrived within ``loss_seconds`` of ``now``."""
        return self._last_tick is not None and now - self._last_tick <= self.loss_seconds

    def _changed(self, line: _Line, timestamp: float) -> bool:
        """Whether this tick completes a run of ticks off the line on one side: a new tempo."""
        error = timestamp - line.at(len(self._times))
        limit = max(self.change_sigmas * line.residual_spread, 0.001)
        self._sides.append(0 if abs(error) <= limit else (1 if error > 0 else -1))
        return len(self._sides) == self.change_ticks and abs(sum(self._sides)) == self.change_ticks


@dataclass(frozen=True)
class _Line:
    """A least-squares line through tick times: ``time = start + seconds_per_tick * index``."""

    start: float
    seconds_per_tick: float
    residual_spread: float  # standard deviation of the ticks around the line, seconds
    slope_error: float  # standard error of seconds_per_tick

    def at(self, index: float) -> float:
        return self.start + self.seconds_per_tick * index


def _fit_line(times: Iterable[float]) -> _Line:
    """Least-squares fit of ``times`` against tick numbers 0, 1, 2, …"""
    values = list(times)
    count = len(values)
    origin = values[0]  # fit offsets: monotonic clocks can be large numbers
    offsets = [value - origin for value in values]
    x_mean = (count - 1) / 2
    y_mean = sum(offsets) / count
    x_spread = count * (count * count - 1) / 12  # sum of (i - x_mean)^2
    slope = sum((i - x_mean) * (y - y_mean) for i, y in enumerate(offsets)) / x_spread
    intercept = y_mean - slope * x_mean
    squares = sum((y - intercept - slope * i) ** 2 for i, y in enumerate(offsets))
    spread = math.sqrt(squares / (count - 2)) if count > 2 else 0.0
    return _Line(origin + intercept, slope, spread, spread / math.sqrt(x_spread))


# --- messages to actions ------------------------------------------------------------------------


class MidiControl:
    """Translates MIDI messages into :class:`MidiActions` calls.

    - note on (velocity > 0) of note ``n >= base_note``: ``trigger(n - base_note, velocity/127)``
      (full velocity is unity gain); notes below ``base_note`` are ignored;
    - note off, or note on with velocity 0: ``release(n - base_note)``;
    - control change of a mapped controller: ``set_default(key, value)``;
    - clock (when ``clock`` is true): tempo estimate (:class:`ClockFollower`), ``set_tempo``
      (rounded to 0.01 BPM) when it moved by more than ``min_tempo_change`` BPM and by more
      than three times its own uncertainty, at most ``max_tempo_updates`` times per second;
      ``tempo_source_external(True)`` at the first tick, ``(False)`` after ``loss_seconds``
      without one (noticed by :meth:`check`);
    - start, stop, continue: ``transport(...)``; start and stop also restart the estimate;
    - everything else (song position, sysex, pitch bend, aftertouch, …) is ignored.

    ``channel`` is the MIDI channel as users number them, 1–16; None listens on all (omni).
    Channel-less messages (clock, transport) are always taken. Called from the MIDI worker
    thread only; never raises, not even when an action does (that is logged).
    """

    def __init__(
        self,
        actions: MidiActions,
        *,
        base_note: int = 36,
        channel: int | None = None,
        cc_map: Mapping[int, CCMapping] | None = None,
        clock: bool = True,
        min_tempo_change: float = 0.05,
        max_tempo_updates: float = 10.0,
        loss_seconds: float = 2.0,
    ) -> None:
        if (
            isinstance(base_note, bool)
            or not isinstance(base_note, int)
            or not 0 <= base_note <= 127
        ):
            raise ValueError(f"base_note must be in range 0..127, got {base_note!r}")
        if channel is not None and (
            isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16
        ):
            raise ValueError(f"channel must be in range 1..16 (or None for omni), got {channel!r}")
        for number in cc_map or {}:
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 127:
                raise ValueError(f"cc_map controller must be in range 0..127, got {number!r}")
        if not min_tempo_change >= 0:
            raise ValueError(f"min_tempo_change must be >= 0 BPM, got {min_tempo_change}")
        if not max_tempo_updates > 0:
            raise ValueError(f"max_tempo_updates must be > 0 per second, got {max_tempo_updates}")
        self.actions = actions
        self.base_note = base_note
        self.channel = channel
        self.cc_map: dict[int, CCMapping] = dict(cc_map or {})
        self.clock = clock
        self.min_tempo_change = min_tempo_change
        self.min_tempo_interval = Seconds(1.0 / max_tempo_updates)
        self.follower = ClockFollower(loss_seconds=loss_seconds)
        self._external = False
        self._sent_bpm: float | None = None
        self._sent_at: float | None = None
        self._out_of_range = False  # warned of a clock out of range (until one in range)

    @property
    def following_clock(self) -> bool:
        """Whether MIDI clock is arriving (the daemon's tempo comes from it)."""
        return self._external

    def describe(self) -> str:
        """One line for the log: channel, note range and what is mapped."""
        channel = "omni" if self.channel is None else f"channel {self.channel}"
        ccs = ", ".join(f"CC{n}→{m.key}" for n, m in sorted(self.cc_map.items())) or "no CCs"
        clock = "follows clock" if self.clock else "ignores clock"
        return f"{channel}, notes from {self.base_note} → slot 0, {ccs}, {clock}"

    def handle(self, message: Any, timestamp: float | None = None) -> None:
        """Translate one message received at ``timestamp`` (seconds, ``time.monotonic()`` clock).

        ``timestamp`` matters for clock ticks only; None means now. Messages of other types
        are ignored (logged at debug level); an object that is not a well-formed message, or an
        action that raises, is logged with its traceback and ignored.
        """
        kind = getattr(message, "type", None)
        try:
            if kind in ("note_on", "note_off", "control_change"):
                if self.channel is not None and message.channel + 1 != self.channel:
                    return
                if kind == "control_change":
                    self._control_change(message.control, message.value)
                elif kind == "note_on" and message.velocity > 0:
                    self._note(message.note, message.velocity)
                else:
                    self._note(message.note, 0)
            elif kind == "clock":
                if self.clock:
                    self._tick(time.monotonic() if timestamp is None else timestamp)
            elif kind in TRANSPORT_COMMANDS:
                if kind != "continue":
                    self.follower.reset()
                self._call("transport", kind)
            else:
                log.debug("MIDI: ignoring %s", kind or type(message).__name__)
        except Exception:
            # A malformed object (not a mido message) or a bug here must not stop the input.
            log.exception("MIDI: could not handle %r", message)

    def check(self, now: float | None = None) -> None:
        """Notice a lost clock: no tick for ``loss_seconds`` at ``now`` (``time.monotonic()``).

        The MIDI worker calls it a few times a second.
        """
        if not self._external:
            return
        if not self.follower.check(time.monotonic() if now is None else now):
            log.info("MIDI clock stopped; tempo is the daemon's own again")
            self._lose_clock()

    def detach(self) -> None:
        """The input is going away: hand the tempo back if it was following the clock."""
        if self._external:
            self._lose_clock()

    def _lose_clock(self) -> None:
        self._external = False
        self.follower.reset()
        self._sent_bpm = None
        self._sent_at = None
        self._call("tempo_source_external", False)

    def _note(self, note: int, velocity: int) -> None:
        index = note - self.base_note
        if index < 0:
            return
        if velocity > 0:
            self._call("trigger", index, velocity / 127)
        else:
            self._call("release", index)

    def _control_change(self, control: int, value: int) -> None:
        mapping = self.cc_map.get(control)
        if mapping is not None:
            self._call("set_default", mapping.key, mapping.value(value))

    def _tick(self, timestamp: float) -> None:
        if not self._external:
            self._external = True
            log.info("MIDI clock arriving; following its tempo")
            self._call("tempo_source_external", True)
        bpm = self.follower.tick(timestamp)
        if bpm is None:
            return
        if not TEMPO_RANGE.lo <= bpm <= TEMPO_RANGE.hi:
            # not followed (96 ticks a beat, say), yet OSC tempo is ignored: say why, once
            if not self._out_of_range:
                self._out_of_range = True
                log.warning(
                    "MIDI clock at about %.0f BPM is outside %g..%g BPM; not followed (and "
                    "/musicldm/tempo is ignored while it arrives)",
                    *(bpm, TEMPO_RANGE.lo, TEMPO_RANGE.hi),
                )
            return
        self._out_of_range = False
        # Jitter moves the estimate by about its uncertainty; only a larger move is news.
        threshold = max(self.min_tempo_change, 3 * (self.follower.uncertainty or 0.0))
        if self._sent_bpm is not None and abs(bpm - self._sent_bpm) <= threshold:
            return
        if self._sent_at is not None and timestamp - self._sent_at < self.min_tempo_interval:
            return
        self._sent_bpm = bpm
        self._sent_at = timestamp
        self._call("set_tempo", round(bpm, 2))

    def _call(self, name: str, *args: Any) -> None:
        try:
            getattr(self.actions, name)(*args)
        except Exception:
            log.exception("MIDI: %s%r failed", name, args)


# --- ports --------------------------------------------------------------------------------------


def _unavailable_reason(exc: BaseException) -> str:
    """A human sentence for a backend failure (rtmidi's SystemError, OSError, ImportError)."""
    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, ImportError):
        return f"no MIDI system available (python-rtmidi is not installed: {detail})"
    if "alsa" in detail.lower():
        return f"no MIDI system available (ALSA sequencer missing: {detail})"
    return f"no MIDI system available ({type(exc).__name__}: {detail})"


def _input_names() -> list[str]:
    """The backend's input port names; raises :class:`MidiUnavailable`."""
    try:
        import mido

        return list(mido.get_input_names())
    except Exception as exc:
        raise MidiUnavailable(f"{_unavailable_reason(exc)}; MIDI control is off") from exc


def list_inputs() -> list[str]:
    """Names of the MIDI input ports; [] when there are none or there is no MIDI system."""
    try:
        return _input_names()
    except MidiUnavailable:
        return []


def probe() -> str | None:
    """None if a MIDI system is usable here (even with no ports), else why not, for a human."""
    try:
        _input_names()
    except MidiUnavailable as exc:
        return str(exc)
    return None


def match_port(name: str | None, available: Iterable[str]) -> str:
    """The port to open for ``name``: an exact (case-insensitive) match, else the first port
    whose name contains it; with None, the first port. Raises :class:`PortNotFound`.
    """
    names = list(available)
    if not names:
        raise PortNotFound(
            "no MIDI input ports found; connect a controller, or use --midi-virtual; "
            "MIDI control is off"
        )
    if name is None:
        return names[0]
    wanted = name.casefold()
    for candidate in names:
        if candidate.casefold() == wanted:
            return candidate
    matches = [candidate for candidate in names if wanted in candidate.casefold()]
    if not matches:
        listing = "; ".join(repr(candidate) for candidate in names)
        raise PortNotFound(
            f"no MIDI input port matches {name!r}; available: {listing}; MIDI control is off"
        )
    if len(matches) > 1:
        log.warning("MIDI port %r matches %s; using the first", name, matches)
    return matches[0]


def open_input(
    name: str | None,
    *,
    virtual: bool = False,
    callback: Callable[[Any], None] | None,
) -> Any:
    """Open a MIDI input port whose backend thread calls ``callback(message)`` for each message.

    ``name`` picks a port by case-insensitive substring (see :func:`match_port`); None takes the
    first. With ``virtual``, create an input port named :data:`VIRTUAL_PORT_NAME` that other
    programs can send to (ALSA and CoreMIDI; not Windows, where loopMIDI does the job).
    Raises :class:`MidiUnavailable` (or :class:`PortNotFound`) with a message for humans.
    """
    if virtual:
        try:
            import mido

            return mido.open_input(VIRTUAL_PORT_NAME, virtual=True, callback=callback)
        except Exception as exc:
            kind = type(exc).__name__.lower()
            if "unsupported" in kind or "notimplemented" in kind:
                raise MidiUnavailable(
                    f"this MIDI backend cannot create virtual ports ({exc}); use a loopback "
                    "driver (loopMIDI on Windows) and --midi-port; MIDI control is off"
                ) from exc
            raise MidiUnavailable(f"{_unavailable_reason(exc)}; MIDI control is off") from exc
    port_name = match_port(name, _input_names())
    try:
        import mido

        return mido.open_input(port_name, callback=callback)
    except Exception as exc:
        raise MidiUnavailable(
            f"could not open MIDI input {port_name!r} ({type(exc).__name__}: {exc}); "
            "MIDI control is off"
        ) from exc


class MidiInput:
    """Owns one MIDI input port and the worker thread that feeds its messages to a MidiControl.

    ``port`` is an open mido input port or a stand-in: with a ``callback`` attribute (mido's
    rtmidi ports), the backend's thread calls :meth:`enqueue`; otherwise a reader thread drains
    ``iter_pending()`` every ``poll_seconds``. Either way messages go through a bounded queue
    to the worker thread, which calls :meth:`MidiControl.handle` and, every ``check_seconds``,
    :meth:`MidiControl.check`. :meth:`stop` closes the port. Not restartable.
    """

    def __init__(
        self,
        control: MidiControl,
        port: Any,
        *,
        queue_size: int = 1024,
        check_seconds: float = 0.25,
        poll_seconds: float = 0.001,
    ) -> None:
        self.control = control
        self.port = port
        self.check_seconds = Seconds(check_seconds)
        self.poll_seconds = Seconds(poll_seconds)
        self.dropped = 0
        """Messages lost because the queue was full (the worker fell behind)."""
        self.failure: str | None = None
        """Why the port stopped delivering (it raised: unplugged, say), or None."""
        self._queue: queue.Queue[tuple[Any, float] | None] = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._state = "new"
        self._lock = threading.Lock()

    @classmethod
    def open(cls, control: MidiControl, name: str | None, *, virtual: bool = False) -> MidiInput:
        """Open a port with :func:`open_input`, its callback already on the queue; not started.

        Raises :class:`MidiUnavailable`.
        """
        midi_input = cls(control, None)
        midi_input.port = open_input(name, virtual=virtual, callback=midi_input.enqueue)
        return midi_input

    @property
    def name(self) -> str:
        """The port's name (the virtual port's name with ``--midi-virtual``)."""
        return str(getattr(self.port, "name", None) or type(self.port).__name__)

    def describe(self) -> str:
        """One line for the log and status: port and mapping; ``off (why)`` once it failed."""
        if self.failure is not None:
            return f"off ({self.failure})"
        return f"MIDI input {self.name!r}: {self.control.describe()}"

    def enqueue(self, message: Any) -> None:
        """Stamp ``message`` with ``time.monotonic()`` and queue it; never blocks.

        Runs on the backend's thread; a message that finds the queue full is dropped and counted.
        """
        try:
            self._queue.put_nowait((message, time.monotonic()))
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        """Start the worker (and, for a port without a callback, the reader) thread."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"MidiInput cannot start: it is {self._state}")
            self._state = "running"
        worker = threading.Thread(target=self._work, name="midi-worker", daemon=True)
        self._threads.append(worker)
        worker.start()
        if hasattr(self.port, "callback"):
            if self.port.callback != self.enqueue:
                self.port.callback = self.enqueue
        else:
            reader = threading.Thread(target=self._read, name="midi-reader", daemon=True)
            self._threads.append(reader)
            reader.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking messages, let the worker finish what is queued, close the port.

        Waits up to ``timeout`` seconds for the threads. Safe to call more than once.
        """
        with self._lock:
            if self._state == "stopped":
                return
            was_running = self._state == "running"
            self._state = "stopped"
        self._stopping.set()
        if hasattr(self.port, "callback"):
            with contextlib.suppress(Exception):
                self.port.callback = None
        if was_running:
            self._put_sentinel()
        for thread in self._threads:
            thread.join(timeout)
        close = getattr(self.port, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("MIDI: closing %s failed", self.name)

    def _put_sentinel(self) -> None:
        """Queue the worker's stop sign; it must get in, even behind a full queue."""
        while True:
            try:
                self._queue.put(None, timeout=0.1)
                return
            except queue.Full:
                if not any(thread.is_alive() for thread in self._threads):
                    return

    def _read(self) -> None:
        """Reader thread, for ports without a callback: drain ``iter_pending()`` regularly."""
        while not self._stopping.is_set():
            try:
                for message in self.port.iter_pending():
                    self.enqueue(message)
            except Exception as exc:
                # The device went away (mido raises on an unplugged port): say so plainly; the
                # worker ends after what came before, handing the tempo back now, not in 2 s.
                self.failure = (
                    f"MIDI input {self.name!r} stopped working ({type(exc).__name__}: {exc}); "
                    "MIDI control is off until the daemon restarts"
                )
                log.error("%s", self.failure)
                self._put_sentinel()
                return
            self._stopping.wait(self.poll_seconds)

    def _work(self) -> None:
        """Worker thread: hand queued messages to the control; check for a lost clock."""
        next_check = time.monotonic() + self.check_seconds
        reported_dropped = 0
        while True:
            try:
                item = self._queue.get(timeout=self.check_seconds)
            except queue.Empty:
                pass
            else:
                if item is None:
                    break
                message, timestamp = item
                self.control.handle(message, timestamp)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self.check_seconds
                self.control.check(now)
                if self.dropped != reported_dropped:
                    log.warning(
                        "MIDI: %d messages dropped (the daemon fell behind)",
                        self.dropped - reported_dropped,
                    )
                    reported_dropped = self.dropped
        self.control.detach()
