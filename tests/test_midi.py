"""The MIDI front-end through in-memory ports and a recording MidiActions; no MIDI system needed."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mido
import pytest

from daemon.live.link import LinkFollower, link_available, link_probe
from daemon.live.midi import (
    TICKS_PER_BEAT,
    CCMapping,
    ClockFollower,
    MidiControl,
    MidiInput,
    MidiUnavailable,
    PortNotFound,
    list_inputs,
    match_port,
    open_input,
    parse_cc_map,
    probe,
)

WAIT_SECONDS = 10.0


class RecordingActions:
    """A MidiActions that records every call; ``wait_for`` blocks until a matching call arrives."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._changed = threading.Condition()

    def _record(self, *call: Any) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def trigger(self, index: int, gain: float) -> None:
        self._record("trigger", index, gain)

    def release(self, index: int) -> None:
        self._record("release", index)

    def set_default(self, key: str, value: float) -> None:
        self._record("set_default", key, value)

    def set_tempo(self, bpm: float) -> None:
        self._record("set_tempo", bpm)

    def transport(self, command: str) -> None:
        self._record("transport", command)

    def tempo_source_external(self, active: bool) -> None:
        self._record("tempo_source_external", active)

    def align_phase(self, phase: float, read_at: float) -> None:
        """Not recorded (MIDI never calls it); :class:`PhaseActions` records it for Link."""

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]

    def wait_for(self, predicate: Callable[[list[tuple[Any, ...]]], bool]) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.calls), WAIT_SECONDS)


@pytest.fixture
def actions() -> RecordingActions:
    return RecordingActions()


def note_on(note: int, velocity: int = 127, channel: int = 0) -> mido.Message:
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def clock_times(
    bpm: float, ticks: int, *, start: float = 1000.0, jitter: float = 0.001, seed: int = 0
) -> list[float]:
    """Tick timestamps (s) of a steady clock with uniform ±``jitter`` s of delivery jitter."""
    rng = random.Random(seed)
    interval = 60.0 / (bpm * TICKS_PER_BEAT)
    return [start + i * interval + rng.uniform(-jitter, jitter) for i in range(ticks)]


# --- notes, channels, CCs ----------------------------------------------------------------------


def test_notes_trigger_slots_with_velocity_as_gain(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    control.handle(note_on(36, 127))
    control.handle(note_on(40, 64))
    control.handle(note_on(30, 127))  # below the base note: not a slot
    assert actions.calls[0] == ("trigger", 0, 1.0)
    assert actions.calls[1][:2] == ("trigger", 4)
    assert actions.calls[1][2] == pytest.approx(0.5, abs=0.01)
    assert len(actions.calls) == 2


def test_note_off_and_zero_velocity_release(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    control.handle(mido.Message("note_off", note=37, velocity=64))
    control.handle(note_on(38, 0))
    control.handle(mido.Message("note_off", note=35))  # below the base note
    assert actions.calls == [("release", 1), ("release", 2)]


def test_base_note_moves_the_slot_map(actions: RecordingActions) -> None:
    control = MidiControl(actions, base_note=60)
    control.handle(note_on(60))
    control.handle(note_on(59))
    control.handle(note_on(127))
    assert actions.calls == [("trigger", 0, 1.0), ("trigger", 67, 1.0)]


def test_channel_filter_counts_channels_from_one(actions: RecordingActions) -> None:
    control = MidiControl(actions, channel=10, cc_map={1: CCMapping("guidance", 1, 8)})
    control.handle(note_on(36, channel=9))  # mido's channel 9 is MIDI channel 10
    control.handle(note_on(37, channel=0))
    control.handle(mido.Message("note_off", note=36, channel=3))
    control.handle(mido.Message("control_change", control=1, value=127, channel=0))
    control.handle(mido.Message("start"))  # channel-less messages always pass
    assert actions.calls == [("trigger", 0, 1.0), ("transport", "start")]


def test_omni_takes_every_channel(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    for channel in range(16):
        control.handle(note_on(36, channel=channel))
    assert len(actions.named("trigger")) == 16


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"channel": 0}, "channel must be in range 1..16"),
        ({"channel": 17}, "channel must be in range 1..16"),
        ({"base_note": 128}, "base_note must be in range 0..127"),
        ({"cc_map": {128: CCMapping("steps", 1, 50)}}, "controller must be in range 0..127"),
    ],
)
def test_bad_settings_name_the_field(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        MidiControl(RecordingActions(), **arguments)


def test_mapped_cc_sets_a_default(actions: RecordingActions) -> None:
    control = MidiControl(actions, cc_map={1: CCMapping("guidance", 1.0, 8.0)})
    for value in (0, 127, 64):
        control.handle(mido.Message("control_change", control=1, value=value))
    control.handle(mido.Message("control_change", control=2, value=100))  # unmapped
    values = [call[2] for call in actions.named("set_default")]
    assert [call[1] for call in actions.named("set_default")] == ["guidance"] * 3
    assert values[0] == 1.0
    assert values[1] == 8.0
    assert values[2] == pytest.approx(4.53, abs=0.005)
    assert len(actions.calls) == 3


def test_integer_and_inverted_cc_mappings() -> None:
    steps = CCMapping("steps", 10, 50, integer=True)
    assert steps.value(0) == 10
    assert steps.value(127) == 50
    assert steps.value(64) == 30 and isinstance(steps.value(64), int)
    inverted = CCMapping("guidance", 8, 1)
    assert inverted.value(0) == 8.0 and inverted.value(127) == 1.0


@pytest.mark.parametrize(
    ("key", "lo", "hi"),
    [("seconds", 0.3, 0.04), ("evolve", 0.9, 0.1), ("evolve", 0.2, 0.9), ("gain", 0.7, 0.15)],
)
def test_cc_ends_land_exactly_on_min_and_max(key: str, lo: float, hi: float) -> None:
    # lo + 1.0 * (hi - lo) misses hi by a rounding error: 0.0399... for seconds, which the
    # option's range (from 0.04) refuses, so the knob's end did nothing
    from daemon.wire.contract import check_option

    mapping = CCMapping(key, lo, hi)
    assert mapping.value(0) == lo and mapping.value(127) == hi
    assert check_option(key, mapping.value(127)) == hi
    assert all(min(lo, hi) <= mapping.value(v) <= max(lo, hi) for v in range(128))


def test_cc_map_from_config() -> None:
    cc_map = parse_cc_map(
        {"1": {"key": "guidance", "min": 1, "max": 8}, 74: {"key": "steps", "min": 5, "max": 40}}
    )
    assert cc_map == {
        1: CCMapping("guidance", 1, 8, integer=False),
        74: CCMapping("steps", 5, 40, integer=True),  # integer options round by default
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"200": {"key": "guidance", "min": 1, "max": 8}}, r"controller must be in range 0\.\.127"),
        ({"x": {"key": "guidance", "min": 1, "max": 8}}, r"controller must be in range 0\.\.127"),
        ({"1": {"key": "guidance", "min": 1}}, "midi.cc.1 is missing max"),
        ({"1": {"key": "guidance", "min": 1, "max": 8, "curve": 2}}, "unknown field"),
        ({"1": {"key": "guidance", "min": "low", "max": 8}}, "lo must be a number"),
        ({"1": {"key": "", "min": 1, "max": 8}}, "key must be a non-empty"),
        ({"1": 5}, "must be a table"),
    ],
)
def test_bad_cc_config_is_named(table: dict[Any, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cc_map(table)


def test_odd_messages_are_ignored_without_raising(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    odd: list[Any] = [
        mido.Message("sysex", data=[0x7E, 0x7F, 0x06, 0x01]),
        mido.Message("pitchwheel", pitch=8191),
        mido.Message("aftertouch", value=100),
        mido.Message("polytouch", note=36, value=100),
        mido.Message("program_change", program=5),
        mido.Message("songpos", pos=128),
        mido.Message("active_sensing"),
        mido.Message("reset"),
        mido.MetaMessage("set_tempo", tempo=500000),
        "not a message",
        None,
        object(),
    ]
    for message in odd:
        control.handle(message)
    assert actions.calls == []


def test_malformed_message_objects_are_logged_not_raised(
    actions: RecordingActions, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        type = "note_on"  # looks like a note but has no note or velocity

    MidiControl(actions).handle(Broken())
    assert actions.calls == []
    assert "could not handle" in caplog.text


def test_a_failing_action_does_not_escape(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(RecordingActions):
        def trigger(self, index: int, gain: float) -> None:
            raise RuntimeError("slot 0 is not defined")

    failing = Failing()
    control = MidiControl(failing)
    control.handle(note_on(36))
    control.handle(mido.Message("stop"))
    assert failing.calls == [("transport", "stop")]
    assert "slot 0 is not defined" in caplog.text


# --- transport --------------------------------------------------------------------------------


def test_start_stop_continue_drive_the_transport(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    for kind in ("start", "stop", "continue"):
        control.handle(mido.Message(kind))
    assert actions.calls == [
        ("transport", "start"),
        ("transport", "stop"),
        ("transport", "continue"),
    ]


def test_start_and_stop_restart_the_tempo_estimate(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    for timestamp in clock_times(120, 30):
        control.handle(mido.Message("clock"), timestamp)
    assert control.follower.bpm is not None
    control.handle(mido.Message("continue"))
    assert control.follower.bpm is not None
    control.handle(mido.Message("start"))
    assert control.follower.bpm is None
    for timestamp in clock_times(120, 30, start=1001.0):
        control.handle(mido.Message("clock"), timestamp)
    control.handle(mido.Message("stop"))
    assert control.follower.bpm is None


def test_stop_with_the_clock_still_running_keeps_following_it(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    times = clock_times(120, 4 * TICKS_PER_BEAT, seed=10)
    for timestamp in times[:48]:
        control.handle(mido.Message("clock"), timestamp)
    control.handle(mido.Message("stop"), times[47] + 0.001)
    for timestamp in times[48:]:  # a DAW goes on sending clock while stopped
        control.handle(mido.Message("clock"), timestamp)
        control.check(timestamp)
    assert control.following_clock
    assert actions.named("tempo_source_external") == [("tempo_source_external", True)]
    control.check(times[-1] + 2.5)  # and when it stops sending, the tempo comes back
    assert actions.calls[-1] == ("tempo_source_external", False)


# --- MIDI clock -------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [120.0, 93.7, 60.0, 174.0])
@pytest.mark.parametrize("seed", range(20))
def test_clock_tempo_within_half_a_bpm_after_one_beat(bpm: float, seed: int) -> None:
    follower = ClockFollower()
    times = clock_times(bpm, TICKS_PER_BEAT, seed=seed)
    for timestamp in times[:-1]:
        assert follower.tick(timestamp) is None  # not before a beat of ticks
    estimate = follower.tick(times[-1])
    assert estimate is not None
    assert abs(estimate - bpm) < 0.5


def test_clock_tempo_steadies_with_more_ticks() -> None:
    follower = ClockFollower()
    for timestamp in clock_times(93.7, 8 * TICKS_PER_BEAT, seed=1):
        follower.tick(timestamp)
    assert follower.bpm == pytest.approx(93.7, abs=0.1)


def test_clock_follows_a_tempo_change_within_three_beats() -> None:
    follower = ClockFollower()
    before = clock_times(120, 4 * TICKS_PER_BEAT, seed=2)
    for timestamp in before:
        follower.tick(timestamp)
    assert follower.bpm == pytest.approx(120, abs=0.5)
    after = clock_times(140, 3 * TICKS_PER_BEAT, start=before[-1] + 60 / (140 * 24), seed=3)
    settled_at = None
    for count, timestamp in enumerate(after, start=1):
        estimate = follower.tick(timestamp)
        assert estimate is not None
        close = abs(estimate - 140) < 0.5
        settled_at = (settled_at or count) if close else None
    assert settled_at is not None, f"still at {follower.bpm:.2f} BPM after 3 beats"
    assert settled_at <= 3 * TICKS_PER_BEAT


def test_control_sends_tempo_rate_limited_and_only_on_change(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    steady = clock_times(120, 16 * TICKS_PER_BEAT, seed=4)  # 8 s of 120 BPM
    for timestamp in steady:
        control.handle(mido.Message("clock"), timestamp)
    assert actions.calls[0] == ("tempo_source_external", True)
    tempos = [call[1] for call in actions.named("set_tempo")]
    assert tempos and all(abs(bpm - 120) < 0.5 for bpm in tempos)
    assert len(tempos) <= 3  # jitter alone hardly moves the estimate past 0.05 BPM

    # A tempo ramp 120 → 180 BPM over about 20 s, then steady: never more than 10 updates a
    # second, and the tempo ends where the DAW does.
    sent_at: list[float] = []
    original = actions.set_tempo
    now = steady[-1]

    def set_tempo(bpm: float) -> None:
        sent_at.append(now)
        original(bpm)

    actions.set_tempo = set_tempo  # type: ignore[method-assign]
    bpm = 120.0
    for _ in range(1200 + 3 * TICKS_PER_BEAT):
        now += 60 / (bpm * TICKS_PER_BEAT)
        control.handle(mido.Message("clock"), now)
        bpm = min(bpm + 0.05, 180.0)
    assert len(sent_at) > 20
    assert all(later - earlier >= 0.1 - 1e-9 for earlier, later in itertools.pairwise(sent_at))
    assert actions.named("set_tempo")[-1][1] == pytest.approx(180, abs=0.5)


def test_control_follows_a_daw_tempo_change(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    before = clock_times(120, 4 * TICKS_PER_BEAT, seed=5)
    after = clock_times(140, 3 * TICKS_PER_BEAT, start=before[-1] + 60 / (140 * 24), seed=6)
    for timestamp in before + after:
        control.handle(mido.Message("clock"), timestamp)
    assert actions.named("set_tempo")[-1][1] == pytest.approx(140, abs=0.5)


def test_clock_loss_hands_the_tempo_back(actions: RecordingActions) -> None:
    control = MidiControl(actions)
    times = clock_times(120, 2 * TICKS_PER_BEAT, seed=7)
    for timestamp in times:
        control.handle(mido.Message("clock"), timestamp)
    assert control.following_clock
    control.check(times[-1] + 1.9)
    assert ("tempo_source_external", False) not in actions.calls
    control.check(times[-1] + 2.1)
    assert actions.calls[-1] == ("tempo_source_external", False)
    assert not control.following_clock
    control.check(times[-1] + 5)  # said once
    assert actions.named("tempo_source_external") == [
        ("tempo_source_external", True),
        ("tempo_source_external", False),
    ]
    # The clock comes back: external again, and a fresh estimate (no stale ticks from before).
    for timestamp in clock_times(100, TICKS_PER_BEAT, start=times[-1] + 10, seed=8):
        control.handle(mido.Message("clock"), timestamp)
    assert actions.named("tempo_source_external")[-1] == ("tempo_source_external", True)
    assert actions.named("set_tempo")[-1][1] == pytest.approx(100, abs=0.5)


def test_a_long_gap_between_ticks_restarts_the_estimate() -> None:
    follower = ClockFollower()
    times = clock_times(120, TICKS_PER_BEAT, seed=9)
    for timestamp in times:
        follower.tick(timestamp)
    assert follower.bpm is not None
    assert follower.tick(times[-1] + 3.0) is None
    assert not follower.check(times[-1] + 5.5)


def test_a_clock_outside_the_tempo_range_is_named_once(
    actions: RecordingActions, caplog: pytest.LogCaptureFixture
) -> None:
    control = MidiControl(actions)
    for timestamp in clock_times(480, 4 * TICKS_PER_BEAT, jitter=0):  # 96 PPQN at 120 BPM
        control.handle(mido.Message("clock"), timestamp)
    assert actions.named("set_tempo") == []
    warnings = [r.getMessage() for r in caplog.records if "outside" in r.getMessage()]
    assert len(warnings) == 1 and "about 480 BPM is outside 20..400 BPM" in warnings[0]
    for timestamp in clock_times(120, 2 * TICKS_PER_BEAT, start=1003.0, jitter=0):
        control.handle(mido.Message("clock"), timestamp)
    assert actions.named("set_tempo")[-1][1] == pytest.approx(120)


def test_clock_off_ignores_ticks(actions: RecordingActions) -> None:
    control = MidiControl(actions, clock=False)
    for timestamp in clock_times(120, 3 * TICKS_PER_BEAT):
        control.handle(mido.Message("clock"), timestamp)
    assert actions.calls == []


# --- MidiInput: ports, queue, threads ---------------------------------------------------------


class CallbackPort:
    """Stands in for mido's rtmidi port: the backend's thread calls ``callback(message)``."""

    name = "Fake Pads MIDI 1"

    def __init__(self) -> None:
        self.callback: Callable[[Any], None] | None = None
        self.closed = False

    def send_from_backend(self, messages: list[Any]) -> None:
        """Deliver ``messages`` from a separate thread, as rtmidi does; returns when delivered."""

        def deliver() -> None:
            for message in messages:
                assert self.callback is not None
                self.callback(message)

        thread = threading.Thread(target=deliver)
        thread.start()
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive(), "the backend thread was blocked"

    def close(self) -> None:
        self.closed = True


class ListInput(mido.ports.BaseInput):
    """An in-memory mido input port without a callback, fed by ``feed`` from any thread."""

    def __init__(self, messages: list[mido.Message] = ()) -> None:  # type: ignore[assignment]
        super().__init__("list input")
        self.pending: deque[mido.Message] = deque(messages)

    def feed(self, message: mido.Message) -> None:
        self.pending.append(message)

    def _receive(self, block: bool = True) -> mido.Message | None:
        return self.pending.popleft() if self.pending else None


StartInput = Callable[[MidiControl, Any], MidiInput]


@pytest.fixture
def start_input() -> Iterator[StartInput]:
    """Starts a MidiInput reading ``port`` into ``control``; every one started is stopped at the
    end of the test, even when it fails."""
    inputs: list[MidiInput] = []

    def start(control: MidiControl, port: Any) -> MidiInput:
        midi_input = MidiInput(control, port)
        inputs.append(midi_input)
        midi_input.start()
        return midi_input

    yield start
    for midi_input in reversed(inputs):
        midi_input.stop()


def test_input_with_callback_port_delivers_through_the_queue(
    actions: RecordingActions, start_input: StartInput
) -> None:
    port = CallbackPort()
    midi_input = start_input(MidiControl(actions), port)
    assert port.callback == midi_input.enqueue
    port.send_from_backend([note_on(36), mido.Message("note_off", note=36), mido.Message("start")])
    assert actions.wait_for(lambda calls: ("transport", "start") in calls)
    assert actions.calls == [("trigger", 0, 1.0), ("release", 0), ("transport", "start")]
    assert "Fake Pads MIDI 1" in midi_input.describe()
    midi_input.stop()
    assert port.closed and port.callback is None


def test_a_slow_action_never_blocks_the_backend_thread(start_input: StartInput) -> None:
    release_action = threading.Event()

    class Slow(RecordingActions):
        def trigger(self, index: int, gain: float) -> None:
            release_action.wait(WAIT_SECONDS)
            super().trigger(index, gain)

    slow = Slow()
    port = CallbackPort()
    midi_input = start_input(MidiControl(slow), port)
    # The worker is stuck in trigger(0), yet the backend hands over 50 more messages at once.
    port.send_from_backend([note_on(36 + i % 16) for i in range(51)])
    assert slow.calls == []
    release_action.set()
    assert slow.wait_for(lambda calls: len(calls) == 51)
    assert midi_input.dropped == 0


def test_input_polls_a_port_without_callback(
    actions: RecordingActions, start_input: StartInput
) -> None:
    port = ListInput([note_on(37, 127)])
    midi_input = start_input(MidiControl(actions, cc_map={7: CCMapping("gain", 0, 2)}), port)
    assert actions.wait_for(lambda calls: ("trigger", 1, 1.0) in calls)
    port.feed(mido.Message("control_change", control=7, value=127))
    assert actions.wait_for(lambda calls: ("set_default", "gain", 2.0) in calls)
    midi_input.stop()
    assert port.closed


def test_clock_through_the_input_reaches_set_tempo(
    actions: RecordingActions, start_input: StartInput
) -> None:
    port = CallbackPort()
    midi_input = start_input(MidiControl(actions), port)
    port.send_from_backend([mido.Message("clock")] * TICKS_PER_BEAT)
    # Timestamps are taken on arrival; delivered in a burst, so only their arrival matters here.
    assert actions.wait_for(lambda calls: ("tempo_source_external", True) in calls)
    midi_input.stop()  # stopping hands the tempo back
    assert actions.calls[-1] == ("tempo_source_external", False)


class FailingInput(ListInput):
    """A polled port that raises once its messages are read, as mido does for an unplugged
    device."""

    def _receive(self, block: bool = True) -> mido.Message | None:
        if self.pending:
            return self.pending.popleft()
        raise OSError("device unplugged")


def test_a_port_that_fails_says_so_and_hands_the_tempo_back(
    actions: RecordingActions, start_input: StartInput, caplog: pytest.LogCaptureFixture
) -> None:
    port = FailingInput([mido.Message("clock")] * 3 + [note_on(36)])
    midi_input = start_input(MidiControl(actions), port)
    # the messages before the failure still arrive; then the tempo is handed back at once
    assert actions.wait_for(lambda calls: ("tempo_source_external", False) in calls)
    assert ("trigger", 0, 1.0) in actions.calls
    assert midi_input.describe().startswith("off (MIDI input 'list input' stopped working")
    assert "OSError: device unplugged" in midi_input.describe()
    assert "MIDI control is off" in caplog.text


def test_input_lifecycle_refuses_misuse(actions: RecordingActions) -> None:
    midi_input = MidiInput(MidiControl(actions), CallbackPort())
    midi_input.start()
    with pytest.raises(RuntimeError, match="cannot start"):
        midi_input.start()
    midi_input.stop()
    midi_input.stop()  # twice is fine
    with pytest.raises(RuntimeError, match="cannot start"):
        midi_input.start()


def test_a_full_queue_drops_and_counts(actions: RecordingActions) -> None:
    midi_input = MidiInput(MidiControl(actions), CallbackPort(), queue_size=2)
    for _ in range(5):  # not started: nothing drains the queue
        midi_input.enqueue(note_on(36))
    assert midi_input.dropped == 3
    midi_input.stop()


# --- port discovery and the machine without MIDI ----------------------------------------------


def test_match_port_by_case_insensitive_substring() -> None:
    ports = ["Midi Through:Midi Through Port-0 14:0", "nanoKONTROL2:nanoKONTROL2 _ CTRL 20:0"]
    assert match_port("nanokontrol", ports) == ports[1]
    assert match_port("MIDI THROUGH:Midi Through Port-0 14:0", ports) == ports[0]
    assert match_port(None, ports) == ports[0]
    assert match_port("port", ["Port A", "port"]) == "port"  # an exact name wins


def test_match_port_errors_list_the_ports() -> None:
    with pytest.raises(PortNotFound, match=r"no MIDI input port matches 'launchpad'.*'IAC Bus 1'"):
        match_port("launchpad", ["IAC Bus 1"])
    with pytest.raises(PortNotFound, match="no MIDI input ports found"):
        match_port("anything", [])
    assert issubclass(PortNotFound, MidiUnavailable)


def _no_alsa(*args: Any, **kwargs: Any) -> list[str]:
    import rtmidi

    raise rtmidi.SystemError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")


def test_without_a_midi_system_everything_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mido, "get_input_names", _no_alsa)
    monkeypatch.setattr(mido, "open_input", _no_alsa)
    assert list_inputs() == []
    reason = probe()
    assert reason is not None and "ALSA sequencer missing" in reason
    with pytest.raises(MidiUnavailable, match=r"no MIDI system available.*MIDI control is off"):
        open_input("nanoKONTROL", callback=None)
    with pytest.raises(MidiUnavailable, match="ALSA sequencer missing"):
        open_input(None, virtual=True, callback=None)
    with pytest.raises(MidiUnavailable):
        MidiInput.open(MidiControl(RecordingActions()), "pads")


@pytest.mark.skipif(probe() is None, reason="this machine has a MIDI system")
def test_the_real_failure_path_on_a_machine_without_midi() -> None:
    assert list_inputs() == []
    with pytest.raises(MidiUnavailable) as raised:
        open_input("anything", callback=lambda message: None)
    assert "no MIDI system available" in str(raised.value)
    assert "MIDI control is off" in str(raised.value)
    with pytest.raises(MidiUnavailable):
        open_input(None, virtual=True, callback=lambda message: None)


def test_open_input_picks_the_matching_port(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(mido, "get_input_names", lambda: ["IAC Driver Bus 1", "Pads MIDI 1"])

    def fake_open(name: str, **kwargs: Any) -> CallbackPort:
        opened.append((name, kwargs))
        return CallbackPort()

    monkeypatch.setattr(mido, "open_input", fake_open)

    def callback(message: Any) -> None:
        pass

    open_input("pads", callback=callback)
    open_input(None, virtual=True, callback=callback)
    assert opened == [
        ("Pads MIDI 1", {"callback": callback}),
        ("musicldm", {"virtual": True, "callback": callback}),
    ]


def test_virtual_port_unsupported_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import rtmidi

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise rtmidi.UnsupportedOperationError(
            "Virtual ports are not supported by the Windows MM API."
        )

    monkeypatch.setattr(mido, "open_input", refuse)
    with pytest.raises(MidiUnavailable, match=r"cannot create virtual ports.*loopMIDI"):
        open_input(None, virtual=True, callback=None)


# --- through a running daemon (tiny model, injected ports) ------------------------------------


@pytest.fixture
def injected_ports(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """mido sees two input ports; opening "Pads" gives a CallbackPort, "Poll" a FailingInput
    holding one clock tick. The ports opened, in order."""
    opened: list[Any] = []
    monkeypatch.setattr(mido, "get_input_names", lambda: ["Pads MIDI 1", "Poll Port"])

    def fake_open(name: str, **kwargs: Any) -> Any:
        port = FailingInput([mido.Message("clock")]) if name == "Poll Port" else CallbackPort()
        opened.append(port)
        return port

    monkeypatch.setattr(mido, "open_input", fake_open)
    return opened


def test_cc_ends_and_the_integer_flag_reach_the_daemon(
    tiny_engine: Any, tmp_path: Path, injected_ports: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from daemon.app.daemon import Daemon
    from tests.support import RawOsc, running_daemon

    done = RecordingActions()  # records each set_default the MIDI bridge makes, even a refused one
    original = Daemon.set_default

    def set_default(self: Daemon, key: str, value: Any) -> None:
        try:
            original(self, key, value)
        finally:
            done.set_default(key, value)

    monkeypatch.setattr(Daemon, "set_default", set_default)
    cc = {
        1: {"key": "seconds", "min": 0.3, "max": 0.04},  # a knob turning the other way
        2: {"key": "guidance", "min": 1, "max": 8, "integer": True},  # whole steps
    }
    with running_daemon(tiny_engine, tmp_path, midi_port="pads", midi_cc=cc) as daemon:
        port = injected_ports[0]
        port.send_from_backend(
            [mido.Message("control_change", control=n, value=v) for n, v in ((1, 127), (2, 64))]
        )
        assert done.wait_for(lambda calls: len(calls) == 2)
        with RawOsc(daemon.address) as osc:
            osc.send("/musicldm/get", "seconds")
            assert osc.wait_for("/musicldm/value", 10) == ["seconds", pytest.approx(0.04)]
            osc.send("/musicldm/get", "guidance")
            assert osc.wait_for("/musicldm/value", 10) == ["guidance", 5]  # 4.53 rounded


def _until(predicate: Callable[[], bool]) -> bool:
    """Whether ``predicate`` became true within WAIT_SECONDS (checked every 10 ms)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.01)
    return True


def test_a_daw_start_begins_bar_one_even_while_the_clock_runs(
    tiny_engine: Any, tmp_path: Path, injected_ports: list[Any]
) -> None:
    # The daemon's clock runs from start-up, so a DAW's first Start always finds it running;
    # it used to be ignored then, leaving the daemon's bar lines wherever start-up put them.
    from tests.support import LIVE_BPM, running_daemon

    heard = tmp_path / "heard.wav"
    config = {"audio": True, "audio_file": heard, "audio_rate": 44100, "tempo": LIVE_BPM}
    with running_daemon(tiny_engine, tmp_path, midi_port="pads", **config) as daemon:
        mixer = daemon.live.mixer
        assert mixer.grid.running and mixer.grid.anchor_sample == 0
        assert _until(lambda: mixer.position > 0)
        injected_ports[0].send_from_backend([mido.Message("start")])
        assert _until(lambda: mixer.grid.anchor_sample > 0)  # beat 0 moved to the Start
        assert mixer.grid.anchor_beat == 0 and mixer.grid.running


def test_a_port_that_fails_while_serving_shows_in_the_status(
    tiny_engine: Any, tmp_path: Path, injected_ports: list[Any]
) -> None:
    from tests.support import RawOsc, running_daemon

    with running_daemon(tiny_engine, tmp_path, midi_port="poll") as daemon:
        assert isinstance(injected_ports[0], FailingInput)
        # the port's one tick makes the clock "arriving"; then it fails and the worker ends
        daemon.midi_input._threads[0].join(WAIT_SECONDS)
        with RawOsc(daemon.address) as osc:
            osc.send("/musicldm/status")
            reply = osc.wait_for("/musicldm/status.reply", 10)
        status = dict(zip(reply[::2], reply[1::2], strict=True))
        assert status["midi"].startswith("off (MIDI input 'list input' stopped working")
        assert not daemon.session.state.external


# --- Ableton Link (optional) ------------------------------------------------------------------


def test_link_without_aalink_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aalink", None)  # import fails as if not installed
    assert not link_available()
    reason = link_probe()
    assert reason is not None and "musicldm-daemon[link]" in reason
    follower = LinkFollower(RecordingActions())
    with pytest.raises(MidiUnavailable, match="Ableton Link is not available"):
        follower.start()
    follower.stop()  # harmless after a failed start


class FakeLink:
    """The part of ``aalink.Link`` that LinkFollower reads."""

    def __init__(self, tempo: float) -> None:
        self.tempo = tempo
        self.beat = 0.0
        self.quantum = 1.0
        self.enabled = False
        self.num_peers = 1


def test_link_follower_polls_tempo_and_beat(actions: RecordingActions) -> None:
    link = FakeLink(128.0)
    follower = LinkFollower(actions, link=link, poll_seconds=60)  # no thread polls during the test
    follower.start()
    try:
        assert link.enabled and link.quantum == 4.0
        assert actions.calls == [("tempo_source_external", True), ("set_tempo", 128.0)]
        link.tempo, link.beat = 128.02, 10.0
        follower.poll(now=500.0)  # moved less than 0.05 BPM: not sent
        assert actions.named("set_tempo") == [("set_tempo", 128.0)]
        assert follower.beat_at(500.0 + 60 / 128.02) == pytest.approx(11.0)
        assert follower.phase_at(500.0 + 3 * 60 / 128.02) == pytest.approx(1.0)
        link.tempo = 90.0
        follower.poll(now=501.0)
        assert actions.named("set_tempo")[-1] == ("set_tempo", 90.0)
        assert follower.bpm == 90.0 and follower.peers == 1
    finally:
        follower.stop()
    assert not link.enabled
    assert actions.calls[-1] == ("tempo_source_external", False)


class PhaseActions(RecordingActions):
    def align_phase(self, phase: float, read_at: float) -> None:
        self._record("align_phase", phase, read_at)


def test_link_follower_sends_the_bar_phase_with_its_reading_time() -> None:
    actions = PhaseActions()
    link = FakeLink(120.0)
    link.beat = 9.5
    follower = LinkFollower(actions, link=link, poll_seconds=60, quantum_beats=4)
    follower.start()
    try:
        link.beat = 14.25
        follower.poll(now=1000.0)
        assert actions.named("align_phase")[-1] == ("align_phase", 2.25, 1000.0)
    finally:
        follower.stop()
    assert actions.named("align_phase")[0][1] == pytest.approx(1.5)


def test_module_imports_fast_without_torch_or_numpy() -> None:
    code = "import sys, daemon.live.midi; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
