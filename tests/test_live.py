"""Live playback through the daemon, heard through ``--audio-file``: quantized launches, seamless
loops, stops on the bar, never-silent slots, and the MIDI bridge."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import soundfile as sf

from daemon.app.daemon import Daemon
from musicldm_core.dsp import step_percentile
from tests.support import daemon_config
from tests.test_daemon import RawOsc

BPM = 240.0  # one 4/4 bar = 1 s = 44100 samples: short tests
BAR = 44100
BEAT = BAR // 4


@pytest.fixture
def live_daemon(tiny_engine, tmp_path) -> Iterator[Daemon]:
    config = daemon_config(
        tmp_path, audio=True, audio_file=tmp_path / "heard.wav", audio_rate=44100, tempo=BPM
    )
    d = Daemon(config, engine=tiny_engine)
    d.start()
    try:
        yield d
    finally:
        d.stop()


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


def test_retrigger_never_goes_silent_and_replacement_crossfades(live_daemon):
    osc = RawOsc(live_daemon.address)
    try:
        osc.send("/musicldm/slot", 1, "drums", "bars", 1, "steps", 3, "seed", 1, "ahead", 1)
        first = osc.wait_for("/musicldm/done", 60)
        # keep the worker busy with live work, so the slot's replacement (normal priority)
        # cannot be ready by the next bar line
        osc.send("/musicldm/generate", "busy", "bars", 4, "steps", 120, "priority", "live")
        osc.wait_for("/musicldm/started", 10)
        osc.send("/musicldm/trigger", 1)
        assert osc.wait_for("/musicldm/playing", 10)[1] == first[1]
        # at once again: the replacement is still rendering, so the last take plays again
        osc.send("/musicldm/trigger", 1)
        events: list = []
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


def test_midi_bridge_drives_the_daemon(live_daemon):
    import mido

    from daemon.live.midi import CCMapping, MidiControl
    from daemon.live.slots import MidiBridge

    control = MidiControl(
        MidiBridge(live_daemon, live_daemon.live), cc_map={1: CCMapping("guidance", 1, 8)}
    )
    control.handle(mido.Message("control_change", control=1, value=127))
    assert live_daemon.value_of("guidance") == pytest.approx(8.0)
    MidiBridge(live_daemon, live_daemon.live).set_tempo(100.0)
    assert live_daemon.tempo == pytest.approx(100.0)
    control.handle(mido.Message("stop"))
    deadline = time.monotonic() + 5
    while live_daemon.live.mixer.grid.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not live_daemon.live.mixer.grid.running
    control.handle(mido.Message("start"))
    while not live_daemon.live.mixer.grid.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live_daemon.live.mixer.grid.running


def test_gate_slots_stop_on_note_off_and_others_play_on(live_daemon):
    import mido

    from daemon.live.midi import MidiControl
    from daemon.live.slots import MidiBridge

    control = MidiControl(MidiBridge(live_daemon, live_daemon.live), base_note=36)
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
        with pytest.raises(AssertionError):
            osc.wait_for("/musicldm/stopped", 2.5)  # slot 3 is not gated: it plays on
    finally:
        osc.close()


def test_link_without_its_package_says_so_and_serves(tiny_engine, tmp_path):
    from daemon.live.midi import link_probe

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
