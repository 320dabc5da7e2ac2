"""Live playback through the daemon, heard through ``--audio-file``: quantized launches, seamless
loops, stops on the bar, never-silent slots, and the MIDI bridge."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from daemon.app.daemon import Daemon
from daemon.live.audio_out import NullOutput
from daemon.live.player import Mixer
from daemon.live.session import Session
from daemon.live.slots import PLAY_SLOTS, SETTLE_SECONDS, SLOTS, Live, MidiBridge
from musicldm_core.dsp import step_percentile
from musicldm_core.spec import ClipSpec
from tests.support import LIVE_BPM, RawOsc, daemon_config, running_daemon

BPM = LIVE_BPM  # one 4/4 bar = 1 s = 44100 samples: short tests
BAR = 44100
BEAT = BAR // 4
ORIGIN = (("127.0.0.1", 1),)


def _heard(daemon: Daemon) -> np.ndarray:
    daemon.stop()  # closes the recording
    audio, rate = sf.read(str(daemon.config.audio_file), dtype="float64", always_2d=True)
    assert rate == 44100
    return audio[:, 0]


def _onset(heard: np.ndarray, clip: np.ndarray, start: int = 0) -> int:
    """Where ``clip`` begins in ``heard`` (exact match of its first samples)."""
    head = clip[:64]
    for i in np.flatnonzero(np.abs(heard[start:] - head[0]) < 1e-6) + start:
        if np.allclose(heard[i : i + 64], head, atol=1e-6):
            return int(i)
    raise AssertionError("the clip was never heard")


def _clip(path: str) -> np.ndarray:
    audio, _ = sf.read(path, dtype="float64")
    return audio


@pytest.mark.parametrize(("quantize", "grid"), [("bar", BAR), ("beat", BEAT)])
def test_trigger_lands_on_the_grid_and_loops_seamlessly(live_daemon, quantize, grid):
    osc = RawOsc(live_daemon.address)
    try:
        osc.send("/musicldm/slot", 0, "warm pads", "bars", 1, "steps", 3, "seed", 5)
        done = osc.wait_for("/musicldm/done", 60)
        osc.send("/musicldm/trigger", 0, "quantize", quantize)
        playing = osc.wait_for("/musicldm/playing", 10)
        assert playing == [0, done[1]]
        # let it loop twice and a bit, then stop at the next bar line
        launch = live_daemon.live.mixer.position
        while live_daemon.live.mixer.position < launch + 2 * BAR + BAR // 2:
            osc.replies(0.05)
        osc.send("/musicldm/stop", 0, "quantize", "bar")
        assert osc.wait_for("/musicldm/stopped", 10) == [0]
    finally:
        osc.close()
    heard = _heard(live_daemon)
    clip = _clip(done[1])
    n = len(clip)
    assert n == BAR
    onset = _onset(heard, clip)
    assert onset % grid == 0  # exactly on a beat or bar line: within one sample
    first = heard[onset : onset + n]
    second = heard[onset + n : onset + 2 * n]
    assert np.allclose(first, clip, atol=1e-6)
    assert np.array_equal(first, second)  # the loop's second pass equals its first
    # the stop lands at a bar line: silence from there on
    tail = np.flatnonzero(np.abs(heard) > 0)[-1] + 1
    assert tail % BAR == 0 and tail > onset + 2 * n


class BusyGate:
    """The tiny engine, held inside any render of the prompt "busy" until ``release`` is set:
    the worker stays busy exactly as long as a test needs, however fast the machine."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def generate(self, items: Any, **kwargs: Any) -> Any:
        if any(item.prompt == "busy" for item in items) and not self.release.wait(60):
            raise TimeoutError("the test never released the busy render")
        return self._engine.generate(items, **kwargs)


def test_retrigger_never_goes_silent_and_replacement_crossfades(tiny_engine, tmp_path):
    gate = BusyGate(tiny_engine)
    with running_daemon(
        gate, tmp_path, audio=True, audio_file=tmp_path / "heard.wav", audio_rate=44100, tempo=BPM
    ) as live_daemon:
        _retrigger(live_daemon, gate)


def _retrigger(live_daemon: Daemon, gate: BusyGate) -> None:
    osc = RawOsc(live_daemon.address)
    try:
        osc.send("/musicldm/slot", 1, "drums", "bars", 1, "steps", 3, "seed", 1, "ahead", 1)
        first = osc.wait_for("/musicldm/done", 60)
        # keep the worker busy with live work, so the slot's replacement (normal priority)
        # cannot be ready by the next bar line
        osc.send("/musicldm/generate", "busy", "bars", 1, "steps", 3, "priority", "live")
        osc.wait_for("/musicldm/started", 10)
        osc.send("/musicldm/trigger", 1)
        assert osc.wait_for("/musicldm/playing", 10)[1] == first[1]
        # at once again: the replacement is still waiting, so the last take plays again
        osc.send("/musicldm/trigger", 1)
        events: list = [("/musicldm/playing", osc.wait_for("/musicldm/playing", 10))]
        gate.release.set()  # now the replacement renders, too late for that bar line
        deadline = time.monotonic() + 60
        while not any(a == "/musicldm/late" for a, _ in events):
            assert time.monotonic() < deadline, f"no /musicldm/late; heard {events}"
            events += osc.replies(0.2)
        playing = [args for a, args in events if a == "/musicldm/playing"]
        dones = [args for a, args in events if a == "/musicldm/done" and "slot1" in str(args[0])]
        late = [args for a, args in events if a == "/musicldm/late"]
        assert playing[0][1] == first[1]  # replayed: never silence
        fresh = dones[0][1]
        assert fresh != first[1]
        assert [p[1] for p in playing][-1] == fresh  # then the fresh take, on a later line
        assert late[0][0] == dones[0][0]
        switch = live_daemon.live.mixer.position
        while live_daemon.live.mixer.position < switch + BAR:
            osc.replies(0.05)
    finally:
        osc.close()
    heard = _heard(live_daemon)
    old, new = _clip(first[1]), _clip(fresh)
    start_new = _onset(heard, new[64:], 0) - 64  # the new clip's body, past the crossfade
    assert start_new % BAR == 0
    # no click where one take replaces the other
    window = heard[start_new - 64 : start_new + 64]
    jump = np.max(np.abs(np.diff(window)))
    assert jump <= max(step_percentile(old, 99.9), step_percentile(new, 99.9)) * 1.5


def test_playback_requests_without_audio_say_why(tiny_engine, tmp_path):
    config = daemon_config(tmp_path)
    d = Daemon(config, engine=tiny_engine)
    d.start()
    osc = RawOsc(d.address)
    try:
        osc.send("/musicldm/trigger", 0)
        fail = osc.wait_for("/musicldm/fail", 5)
        assert fail[:2] == ["/musicldm/trigger", "not_found"] and "audio" in fail[2]
        assert d.status()["audio"].startswith("off")
        assert d.status()["midi"].startswith("off")
    finally:
        osc.close()
        d.stop()


def test_no_sound_card_keeps_the_daemon_serving(tiny_engine, tmp_path):
    """On this machine PortAudio sees no device: the daemon says so and serves files."""
    from daemon.live.audio_out import probe

    if probe() is None:
        pytest.skip("this machine has a sound card")
    config = daemon_config(tmp_path, audio=True)  # the default: open the sound card
    d = Daemon(config, engine=tiny_engine)
    d.start()
    try:
        assert d.live is None
        assert "no audio output device" in d.status()["audio"]
    finally:
        d.stop()


def _bridge(daemon: Daemon) -> MidiBridge:
    """What the daemon gives its MIDI input and Link (see ``Daemon._start_midi``)."""
    return MidiBridge(daemon.session, daemon.live, set_default=daemon.set_default)


class _Heard:
    """A session listener that queues every transport change, to wait for one."""

    def __init__(self) -> None:
        self.transport: queue.Queue[bool] = queue.Queue()

    def tempo_changed(self, bpm: float) -> None:
        pass

    def transport_changed(self, running: bool, resume: bool) -> None:
        self.transport.put(running)


def test_midi_bridge_drives_the_daemon(live_daemon):
    import mido

    from daemon.live.midi import CCMapping, MidiControl

    heard = _Heard()
    live_daemon.session.listen(heard)
    control = MidiControl(_bridge(live_daemon), cc_map={1: CCMapping("guidance", 1, 8)})
    control.handle(mido.Message("control_change", control=1, value=127))
    assert live_daemon.handlers.value_of("guidance") == pytest.approx(8.0)
    _bridge(live_daemon).set_tempo(100.0)
    assert live_daemon.session.state.bpm == pytest.approx(100.0)
    assert live_daemon.build_spec("x", None).bpm == pytest.approx(100.0)
    osc = RawOsc(live_daemon.address)
    try:
        control.handle(mido.Message("stop"))
        assert heard.transport.get(timeout=5) is False
        osc.send("/musicldm/get", "transport")
        assert osc.wait_for("/musicldm/value", 5) == ["transport", "stop"]
        control.handle(mido.Message("start"))
        assert heard.transport.get(timeout=5) is True
        osc.send("/musicldm/get", "transport")
        assert osc.wait_for("/musicldm/value", 5) == ["transport", "start"]
    finally:
        osc.close()


@pytest.mark.parametrize("audio", [True, False], ids=["audio", "no-audio"])
def test_after_a_midi_stop_get_transport_says_stop(tiny_engine, tmp_path, monkeypatch, audio):
    """The daemon's own MIDI input (a fake port in place of rtmidi's) stops the one clock
    that ``/musicldm/get transport`` and ``/musicldm/status`` read, with or without audio."""
    import mido

    from daemon.live import midi
    from tests.test_midi import CallbackPort

    port = CallbackPort()
    monkeypatch.setattr(midi, "open_input", lambda name, *, virtual=False, callback=None: port)
    extra = {"audio": True, "audio_file": tmp_path / "heard.wav", "audio_rate": 44100}
    config = daemon_config(tmp_path, midi_port="fake pads", **(extra if audio else {}))
    d = Daemon(config, engine=tiny_engine)
    d.start()
    heard = _Heard()
    d.session.listen(heard)
    osc = RawOsc(d.address)
    try:
        assert (d.live is not None) == audio
        port.send_from_backend([mido.Message("stop")])
        assert heard.transport.get(timeout=10) is False
        osc.send("/musicldm/get", "transport")
        assert osc.wait_for("/musicldm/value", 10) == ["transport", "stop"]
        assert d.status()["transport"] == "stop"
        port.send_from_backend([mido.Message("start")])
        assert heard.transport.get(timeout=10) is True
        osc.send("/musicldm/get", "transport")
        assert osc.wait_for("/musicldm/value", 10) == ["transport", "start"]
    finally:
        osc.close()
        d.stop()


def test_gate_slots_stop_on_note_off_and_others_play_on(live_daemon):
    import mido

    from daemon.live.midi import MidiControl

    control = MidiControl(_bridge(live_daemon), base_note=36)
    osc = RawOsc(live_daemon.address)
    try:
        osc.send("/musicldm/slot", 2, "gated", "bars", 1, "steps", 3, "gate", 1)
        osc.send("/musicldm/slot", 3, "held", "bars", 1, "steps", 3)
        osc.wait_for("/musicldm/done", 60)
        osc.wait_for("/musicldm/done", 60)
        control.handle(mido.Message("note_on", note=38, velocity=100))
        control.handle(mido.Message("note_on", note=39, velocity=100))
        got = {osc.wait_for("/musicldm/playing", 10)[0], osc.wait_for("/musicldm/playing", 10)[0]}
        assert got == {2, 3}
        control.handle(mido.Message("note_off", note=38))
        control.handle(mido.Message("note_on", note=39, velocity=0))  # a note-off too
        assert osc.wait_for("/musicldm/stopped", 10) == [2]
        # Slot 2 stopped at a bar line; slot 3 is not gated: it still sounds after that line
        # (a wrong stop would have ended it on the same line, in the same buffer).
        osc.send("/musicldm/status")
        status = osc.wait_for("/musicldm/status.reply", 10)
        assert dict(zip(status[::2], status[1::2], strict=True))["voices"] == 1
        assert live_daemon.live.release(3) is False
    finally:
        osc.close()


def test_link_without_its_package_says_so_and_serves(tiny_engine, tmp_path):
    from daemon.live.link import link_probe

    if link_probe() is None:
        pytest.skip("aalink is installed here")
    config = daemon_config(tmp_path, link=True)
    d = Daemon(config, engine=tiny_engine)
    d.start()
    try:
        status = d.status()
        assert status["link"].startswith("off (Ableton Link is not available")
        assert "pip install" in status["link"]
    finally:
        d.stop()


def _until(osc: RawOsc, done: Callable[[list], bool], seconds: float = 60) -> list:
    """Every reply until ``done(replies so far)`` holds."""
    events: list = []
    deadline = time.monotonic() + seconds
    while not done(events):
        assert time.monotonic() < deadline, f"gave up waiting; heard {events}"
        events += osc.replies(0.1)
    return events


def test_a_tempo_change_renders_fresh_takes_and_the_playing_slot_follows(live_daemon):
    def dones(events: list) -> list:
        return [args for a, args in events if a == "/musicldm/done"]

    def playing(events: list) -> list:
        return [args for a, args in events if a == "/musicldm/playing"]

    osc = RawOsc(live_daemon.address)
    try:
        osc.send("/musicldm/slot", 4, "follow me", "bars", 1, "steps", 3, "seed", 2)
        first = osc.wait_for("/musicldm/done", 60)
        assert first[3] == pytest.approx(BPM)
        osc.send("/musicldm/trigger", 4)
        # it plays, and the take rendered to stay one ahead arrives (in either order)
        events = _until(osc, lambda e: playing(e) and dones(e))
        assert playing(events)[0] == [4, first[1]]
        assert dones(events)[0][3] == pytest.approx(BPM)
        osc.send("/musicldm/tempo", 200.0)
        # the ready take no longer fits: a fresh one at 200 BPM, which the playing slot swaps
        # in by itself at the next bar line
        events = _until(osc, playing)
        fresh = [d for d in dones(events) if d[3] == pytest.approx(200.0)]
        assert fresh and "200bpm" in fresh[0][1]
        assert playing(events)[0] == [4, fresh[0][1]]
        # a trigger plays a take at the clock's tempo (a fresh one, or the last one again),
        # never the stale one still kept as a fallback
        osc.send("/musicldm/trigger", 4)
        events = _until(osc, playing)
        assert playing(events)[0][0] == 4 and "200bpm" in playing(events)[0][1]
    finally:
        osc.close()


def test_a_slot_defined_right_after_a_tempo_change_renders_at_the_new_tempo(live_daemon):
    # Its first take was rendered at the old tempo and cancelled (or dropped) half a second
    # later when the new one held: a wasted render exactly when a performer moves on.
    osc = RawOsc(live_daemon.address)
    try:
        osc.send("/musicldm/tempo", 200.0)
        assert osc.wait_for("/musicldm/value", 10) == ["bpm", pytest.approx(200.0)]
        osc.send("/musicldm/slot", 5, "right away", "bars", 1, "steps", 3, "seed", 3)
        take = osc.wait_for("/musicldm/queued", 10)[0]
        events = _until(osc, lambda e: any(a in ("/musicldm/done", "/musicldm/fail") for a, _ in e))
        first = next((a, args) for a, args in events if a in ("/musicldm/done", "/musicldm/fail"))
        assert first[0] == "/musicldm/done" and first[1][0] == take, first
        assert first[1][3] == pytest.approx(200.0)
    finally:
        osc.close()


def test_a_slot_with_a_seed_renders_new_takes_and_a_new_prompt_drops_the_old_work(live_daemon):
    osc = RawOsc(live_daemon.address)
    try:
        osc.send("/musicldm/slot", 5, "seeded", "bars", 1, "steps", 3, "seed", 40, "ahead", 2)
        events = _until(osc, lambda e: len([a for a, _ in e if a == "/musicldm/done"]) >= 2)
        seeds = sorted(args[5] for a, args in events if a == "/musicldm/done")
        assert seeds == [40, 41]  # take n of a seeded slot uses seed + n: new audio each time
        # keep the worker busy, redefine the slot while its replacement waits in the queue
        osc.send("/musicldm/generate", "busy", "bars", 4, "steps", 60, "priority", "live")
        osc.wait_for("/musicldm/started", 10)
        osc.send("/musicldm/trigger", 5)
        osc.send("/musicldm/slot", 5, "something else", "bars", 1, "steps", 3, "seed", 7)
        events = _until(
            osc, lambda e: any(a == "/musicldm/done" and "something" in args[1] for a, args in e)
        )
        fails = [args for a, args in events if a == "/musicldm/fail"]
        assert fails and all(f[1] == "cancelled" for f in fails)  # the old prompt's queued take
        slot = live_daemon.live.slots[5]
        assert all("something" in t.path for t in slot.ready)
    finally:
        osc.close()


def _clip_handled(daemon: Daemon, matches: Callable[[Any], bool]) -> threading.Event:
    """Set once the worker handed a clip of a job ``matches`` picks to every clip listener
    (the live code's included: this one runs after it)."""
    handled = threading.Event()

    def listener(job: Any, clip: Any) -> None:
        if matches(job):
            handled.set()

    daemon.worker.clip_listeners.append(listener)
    return handled


def test_a_stop_cancels_a_trigger_still_waiting_for_its_first_take(live_daemon):
    live = live_daemon.live
    handled = _clip_handled(live_daemon, lambda job: job.slot == 6)
    osc = RawOsc(live_daemon.address)
    try:
        # keep the worker busy, so the slot's first take is still to come when it is triggered
        osc.send("/musicldm/generate", "busy", "bars", 4, "steps", 60, "priority", "live")
        osc.wait_for("/musicldm/started", 10)
        osc.send("/musicldm/slot", 6, "waiting", "bars", 1, "steps", 3)
        take_id = osc.wait_for("/musicldm/queued", 10)[0]
        osc.send("/musicldm/trigger", 6)
        # answered at once: the take it waits for is late
        assert osc.wait_for("/musicldm/late", 10) == [take_id]
        osc.send("/musicldm/stop", 6, "none")
        assert osc.wait_for("/musicldm/stopped", 10) == [6]  # the stop is answered too
        assert handled.wait(120)
        # the take arrived after the stop: parked in its slot, not launched
        assert len(live.slots[6].ready) == 1 and live.slots[6].wait is None
        assert not live._launches.get(6)
        osc.send("/musicldm/trigger", 6)  # and it plays when asked again
        assert osc.wait_for("/musicldm/playing", 10) == [6, live.slots[6].last.path]
    finally:
        osc.close()


def test_a_stop_cancels_a_play_still_waiting_for_its_render(live_daemon):
    live = live_daemon.live
    osc = RawOsc(live_daemon.address)
    try:
        osc.send("/musicldm/generate", "busy", "bars", 4, "steps", 60, "priority", "live")
        osc.wait_for("/musicldm/started", 10)
        osc.send("/musicldm/generate", "later", "bars", 1, "steps", 3, "play", 1, "id", "p1")
        osc.wait_for("/musicldm/queued", 10)
        handled = _clip_handled(live_daemon, lambda job: job.job_id == "p1")
        osc.send("/musicldm/stop", "none")
        events = _until(osc, lambda e: any(a == "/musicldm/done" and x[0] == "p1" for a, x in e))
        (done,) = [x for a, x in events if a == "/musicldm/done" and x[0] == "p1"]  # delivered
        assert handled.wait(30)
        assert not any(live._launches.values())  # but not played
        osc.send("/musicldm/play", "p1")  # it plays when asked
        assert osc.wait_for("/musicldm/playing", 10)[1] == done[1]
    finally:
        osc.close()


def test_playing_and_stopped_reach_the_senders_who_asked(live_daemon):
    asker, stopper = RawOsc(live_daemon.address), RawOsc(live_daemon.address)
    try:
        asker.send("/musicldm/generate", "glassy arp", "bars", 1, "steps", 3, "play", 1)
        done = asker.wait_for("/musicldm/done", 60)
        voice, path = asker.wait_for("/musicldm/playing", 10)
        assert voice >= 128 and path == done[1]
        stopper.send("/musicldm/stop", "none")
        assert stopper.wait_for("/musicldm/stopped", 10) == [voice]
        assert asker.wait_for("/musicldm/stopped", 10) == [voice]
    finally:
        asker.close()
        stopper.close()


def test_a_midi_clock_tempo_ramp_renders_a_bounded_number_of_takes(live_daemon):
    osc = RawOsc(live_daemon.address)
    try:
        osc.send("/musicldm/slot", 0, "ramp", "bars", 1, "steps", 3, "seed", 3)
        assert osc.wait_for("/musicldm/done", 60)[3] == pytest.approx(BPM)
        bridge = _bridge(live_daemon)
        bridge.tempo_source_external(True)
        for step in range(1, 201):  # 200 changes, as a DAW's ramp through MIDI clock sends
            bridge.set_tempo(BPM + step * 0.1)
        final = BPM + 20.0

        def queued(events: list) -> list:
            return [args[0] for a, args in events if a == "/musicldm/queued"]

        def settled(events: list) -> bool:
            ended = {args[0] for a, args in events if a in ("/musicldm/done", "/musicldm/fail")}
            dones = [args for a, args in events if a == "/musicldm/done"]
            fresh = any(d[3] == pytest.approx(final) for d in dones)
            return fresh and set(queued(events)) <= ended  # and every take ended once

        events = _until(osc, settled)
        # one take for the tempo that holds (one more per bar if the ramp outlasted one)
        assert 1 <= len(queued(events)) <= 3, queued(events)
        assert live_daemon.live.render_bpm == pytest.approx(final)
    finally:
        osc.close()


# -- Live with injected fakes: the job system, the event sink, a fake clock ----------------------


class FakeJobs:
    """A :class:`daemon.live.jobsystem.JobSystem` that records submits and cancels."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.submitted: list[tuple[Any, float]] = []  # (job id, bpm)
        self.cancelled: list[Any] = []
        self.outstanding: dict[Any, float] = {}  # submitted, neither cancelled nor rendered

    def build_spec(self, prompt: str, options: Any, *, tempo: float | None = None) -> ClipSpec:
        bpm = (options or {}).get("bpm") or (self.session.state.bpm if tempo is None else tempo)
        return ClipSpec(prompt=prompt, bpm=bpm, steps=3, seed=1).validated()

    def submit(self, job_id: Any, spec: ClipSpec, **_: Any) -> None:
        self.submitted.append((job_id, spec.bpm))
        self.outstanding[job_id] = spec.bpm

    def cancel_jobs(self, matches: Callable[[Any], bool]) -> int:
        found = [j for j in self.outstanding if matches(SimpleNamespace(job_id=j))]
        for job_id in found:
            del self.outstanding[job_id]
            self.cancelled.append(job_id)
        return len(found)


class FakeEvents:
    """A :class:`daemon.live.jobsystem.EventSink` that records what was sent, and to whom."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list, tuple]] = []

    def send(self, message: Any, to: Any = ()) -> None:
        self.sent.append((message.address, list(message.args), tuple(to)))


def _fake_live(now: list[float]) -> tuple[Live, FakeJobs, FakeEvents, Session]:
    session = Session(120.0, clock=lambda: now[0])
    mixer = Mixer(44100, slots=SLOTS + PLAY_SLOTS)
    jobs, events = FakeJobs(session), FakeEvents()
    live = Live(jobs, events, session, mixer, NullOutput(mixer), device_rate=44100)
    return live, jobs, events, session


@pytest.mark.parametrize(
    ("spacing", "most_retempos"),
    [
        (0.001, 1),  # a burst (a jittery clock, a fader): renders once, for where it ends
        (0.1, 12),  # MidiControl's ten changes a second for 20 s: at most once a bar
    ],
)
def test_a_tempo_ramp_renders_a_bounded_number_of_takes_and_cancels_superseded_ones(
    spacing: float, most_retempos: int
) -> None:
    now = [0.0]
    live, jobs, _, session = _fake_live(now)
    bridge = MidiBridge(session, live, set_default=lambda key, value: None)
    live.define_slot(0, "drums", None, 2, ORIGIN)
    live.define_slot(1, "pads", None, 1, ORIGIN)
    assert len(jobs.submitted) == 3
    # A DAW's tempo ramp from 120 to 140 BPM through MIDI clock: 200 changes.
    for step in range(1, 201):
        now[0] += spacing
        bridge.set_tempo(120.0 + 20.0 * step / 200)
        live.settle()
        assert len(jobs.outstanding) <= 3  # never more queued than `ahead` per slot
    now[0] += SETTLE_SECONDS
    live.settle()
    assert session.state.bpm == pytest.approx(140.0)
    assert live.render_bpm == pytest.approx(140.0)
    assert 1 <= live.retempos <= most_retempos
    # a retempo renders at most `ahead` takes per slot, and cancels every one it supersedes
    assert len(jobs.submitted) <= 3 * (1 + live.retempos)
    assert sorted(jobs.cancelled) == sorted(j for j, _ in jobs.submitted[:-3])
    assert all(abs(bpm - 140.0) <= 0.1 for bpm in jobs.outstanding.values())
    assert len(jobs.outstanding) == 3
    # the clock itself followed every change at once
    assert live.mixer.grid.bpm == 120.0  # nothing pulled the callback yet: commands wait
    tempo_commands = [c for c in live.mixer._commands if c[0] == "tempo"]
    assert len(tempo_commands) == 200 and tempo_commands[-1][1] == pytest.approx(140.0)


def test_a_tempo_that_has_not_settled_renders_nothing_new() -> None:
    now = [0.0]
    live, jobs, _, session = _fake_live(now)
    live.define_slot(0, "drums", None, 1, ORIGIN)
    session.set_tempo(130.0)
    now[0] += SETTLE_SECONDS / 2
    assert not live.settle()
    live.trigger(0, origin=ORIGIN)  # a trigger meanwhile asks for takes at the old tempo
    assert [bpm for _, bpm in jobs.submitted] == [120.0]
    now[0] += SETTLE_SECONDS
    assert live.settle()
    assert [bpm for _, bpm in jobs.submitted] == [120.0, 130.0]
    assert jobs.cancelled == [jobs.submitted[0][0]]


def test_a_slot_defined_before_a_tempo_holds_renders_at_it_and_the_others_wait() -> None:
    now = [0.0]
    live, jobs, _, session = _fake_live(now)
    live.define_slot(0, "drums", None, 1, ORIGIN)
    session.set_tempo(130.0)
    live.define_slot(1, "pads", None, 1, ORIGIN)  # nothing at 120 to keep: 130 at once
    assert [bpm for _, bpm in jobs.submitted] == [120.0, 130.0]
    now[0] += SETTLE_SECONDS
    assert live.settle()  # slot 0 follows now; slot 1's take fits and goes on rendering
    assert [bpm for _, bpm in jobs.submitted] == [120.0, 130.0, 130.0]
    assert jobs.cancelled == [jobs.submitted[0][0]]
    # a slot defined while the tempo moves, which then goes back: it renders where it holds
    session.set_tempo(140.0)
    live.define_slot(2, "keys", None, 1, ORIGIN)
    session.set_tempo(130.0)
    assert not live.settle()
    assert [bpm for _, bpm in jobs.submitted[-2:]] == [140.0, 130.0]
    assert jobs.cancelled[-1] == jobs.submitted[-2][0]


def test_the_session_ignores_osc_tempo_while_an_outside_clock_leads() -> None:
    now = [0.0]
    session = Session(120.0, clock=lambda: now[0])
    session.follow_external(True)
    assert session.set_tempo(100.0) is False and session.state.bpm == 120.0
    now[0] = 1.0
    assert session.set_tempo(126.5, external=True) is True
    assert session.state.tempo_changed_at == 1.0 and session.state.tempo_changes == 1
    session.follow_external(False)
    assert session.set_tempo(100.0) is True and session.state.bpm == 100.0


def test_set_bpm_and_tempo_move_one_clock_that_new_clips_follow(tiny_engine, tmp_path):
    d = Daemon(daemon_config(tmp_path), engine=tiny_engine)  # no audio: the session still rules
    d.start()
    osc = RawOsc(d.address)
    try:
        osc.send("/musicldm/set", "bpm", 128.0)
        assert osc.wait_for("/musicldm/value", 10) == ["bpm", pytest.approx(128.0)]
        osc.send("/musicldm/tempo", 100.0)
        assert osc.wait_for("/musicldm/value", 10) == ["bpm", pytest.approx(100.0)]
        osc.send("/musicldm/generate", "follow the clock", "steps", 2)
        assert osc.wait_for("/musicldm/done", 60)[3] == pytest.approx(100.0)
    finally:
        osc.close()
        d.stop()


def test_a_midi_note_without_audio_output_says_once_why_it_plays_nothing(caplog):
    bridge = MidiBridge(Session(120.0), None, set_default=lambda key, value: None)
    with caplog.at_level("WARNING", logger="daemon.live.slots"):
        bridge.trigger(3, 1.0)
        bridge.trigger(4, 1.0)
    said = [r.getMessage() for r in caplog.records if "no audio output" in r.getMessage()]
    assert said == ["MIDI note for slot 3: no audio output, notes play nothing"]
