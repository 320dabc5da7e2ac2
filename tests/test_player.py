"""The mixer driven through its callback, as a sound card or the file output would drive it.

Most tests call ``mixer.callback`` directly with an odd block size (333 frames), so launches
fall in the middle of buffers; some go through :class:`FileOutput` and read the WAV back. The
sound-card path is tested for what happens here, where there is no sound card, and through a
fake ``sounddevice`` module that pulls the callback the way PortAudio would.
"""

from __future__ import annotations

import math
import threading
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile

from daemon.live import audio_out
from daemon.live.audio_out import (
    AudioUnavailable,
    FileOutput,
    NullOutput,
    SoundDeviceOutput,
    list_devices,
    open_output,
    probe,
)
from daemon.live.player import GIL_SAFE_FRAMES, Mixer
from musicldm_core.dsp import step_percentile

RATE = 44100
BAR = 88200  # 4 beats at 120 BPM, 44100 Hz
BEAT = 22050
BLOCK = 333


def render(mixer: Mixer, samples: int, block: int = BLOCK, channels: int = 2) -> np.ndarray:
    """Pull ``samples`` frames (in ``block``-frame buffers) and return channel 0, checking that
    every channel carries the same mix."""
    out = np.empty((samples, channels), dtype=np.float32)
    done = 0
    buffer = np.zeros((block, channels), dtype=np.float32)
    while done < samples:
        n = min(block, samples - done)
        mixer.callback(buffer[:n], n, None, None)
        out[done : done + n] = buffer[:n]
        done += n
    for channel in range(1, channels):
        np.testing.assert_array_equal(out[:, channel], out[:, 0])
    return out[:, 0]


def ramp(samples: int, first: float = 0.25, last: float = 0.75) -> np.ndarray:
    """A clip whose every sample is distinctive (and none is 0)."""
    return np.linspace(first, last, samples, dtype=np.float32)


def tone(samples: int, period: int, amplitude: float = 0.8, phase: float = 0.0) -> np.ndarray:
    """A cosine of ``period`` samples; loops seamlessly when ``samples`` is a multiple of it."""
    t = np.arange(samples, dtype=np.float64)
    return (amplitude * np.cos(2 * math.pi * t / period + phase)).astype(np.float32)


# -- launches on the grid -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantize", "expected"), [("bar", BAR), ("beat", 3 * BEAT), ("none", 50_283)]
)
def test_launch_lands_on_its_exact_sample(quantize: str, expected: int) -> None:
    mixer = Mixer(RATE)
    head = render(mixer, 50_283)  # 151 buffers of 333: the next buffer starts at 50283
    clip = ramp(30_000)
    mixer.play(3, clip, quantize=quantize, loop=False, tag="take-1")
    out = np.concatenate([head, render(mixer, BAR + 40_000 - 50_283)])
    first = int(np.flatnonzero(out)[0])
    assert first == expected
    np.testing.assert_array_equal(out[expected : expected + 30_000], clip)
    assert not out[expected + 30_000 :].any()
    assert mixer.drain_events() == [
        ("playing", 3, "take-1", expected),
        ("stopped", 3, "take-1", expected + 30_000),
    ]


def test_launch_on_a_tempo_whose_beat_is_not_a_whole_number_of_samples() -> None:
    mixer = Mixer(48000, bpm=93.0)
    exact = mixer.grid.samples_per_beat
    render(mixer, round(400 * exact) + 5)  # just past the bar line of beat 400
    mixer.play(0, ramp(1000), quantize="bar", loop=False)
    out = render(mixer, round(405 * exact) - mixer.position)
    start = round(404 * exact)
    offset = start - (round(400 * exact) + 5)
    assert int(np.flatnonzero(out)[0]) == offset
    assert mixer.drain_events()[0] == ("playing", 0, None, start)


def test_tempo_change_moves_the_grid_from_the_next_buffer() -> None:
    mixer = Mixer(RATE)
    render(mixer, 30_000)
    mixer.set_tempo(90.0)
    mixer.play(1, ramp(100), quantize="beat", loop=False)
    render(mixer, 40_000)
    expected = 30_000 + round((2 - np.float64(30_000) / BEAT) * 29400)
    assert mixer.drain_events()[0] == ("playing", 1, None, expected)
    assert mixer.grid.bpm == 90.0


def test_transport_stop_makes_launches_immediate_and_start_resets_beat_zero() -> None:
    mixer = Mixer(RATE)
    render(mixer, 1000)
    mixer.transport(False)
    render(mixer, 1000)
    assert not mixer.grid.running
    mixer.play(0, ramp(10), quantize="bar", loop=False)
    render(mixer, 1000)
    assert mixer.drain_events()[0] == ("playing", 0, None, 2000)
    mixer.transport(True)
    render(mixer, 1000)  # this buffer starts at 3000: beat 0
    assert mixer.grid.running
    assert mixer.launch_point("bar") == 3000 + BAR
    mixer.play(0, ramp(10), quantize="bar", loop=False)
    render(mixer, BAR)
    assert [e[3] for e in mixer.drain_events() if e[0] == "playing"] == [3000 + BAR]


# -- loops, stops, replacement ------------------------------------------------------------------


def test_looping_clip_repeats_sample_for_sample() -> None:
    mixer = Mixer(RATE)
    clip = (np.sin(np.arange(10_007) * 0.05) * 0.5 + 0.1).astype(np.float32)
    mixer.play(0, clip, quantize="bar", loop=True)
    out = render(mixer, 3 * 10_007 + 500)
    first, second, third = (out[k * 10_007 : (k + 1) * 10_007] for k in range(3))
    np.testing.assert_array_equal(first, clip)
    np.testing.assert_array_equal(second, first)
    np.testing.assert_array_equal(third, first)
    assert mixer.voices_active == 1


def test_stop_at_bar_falls_to_zero_at_the_bar_line() -> None:
    mixer = Mixer(RATE)
    clip = tone(BAR, 200, amplitude=0.5)
    mixer.play(2, clip, quantize="bar", tag="drums")
    render(mixer, 100_000)
    mixer.stop(2, quantize="bar")
    out = render(mixer, 2 * BAR - 100_000 + 5000)
    boundary = 2 * BAR - 100_000  # index of output sample 176400 in `out`
    fade = mixer.fade_samples
    assert not out[boundary:].any()  # silent from the bar line on
    # Untouched until the fade, then a fade to (almost) 0 just before the line.
    source = np.tile(clip, 3)[100_000 : 100_000 + boundary]
    np.testing.assert_array_equal(out[: boundary - fade], source[: boundary - fade])
    assert np.all(
        np.abs(out[boundary - fade : boundary]) <= np.abs(source[boundary - fade :]) + 1e-7
    )
    assert abs(out[boundary - 1]) < 0.5 * math.sin(math.pi / 2 / fade) + 1e-6
    assert mixer.drain_events() == [
        ("playing", 2, "drums", 0),
        ("stopped", 2, "drums", 2 * BAR),
    ]
    assert mixer.voices_active == 0


def test_stop_now_fades_out_within_fade_samples_and_stop_all() -> None:
    mixer = Mixer(RATE)
    mixer.play(0, tone(BAR, 200, 0.3), quantize="none")
    mixer.play(1, tone(BAR, 300, 0.3), quantize="none")
    render(mixer, 1000)
    mixer.stop(None, quantize="none")
    out = render(mixer, 2000)
    assert out[: mixer.fade_samples].any()
    assert not out[mixer.fade_samples :].any()
    events = mixer.drain_events()
    assert sorted(e[:2] for e in events if e[0] == "stopped") == [("stopped", 0), ("stopped", 1)]
    assert all(e[3] == 1000 + mixer.fade_samples for e in events if e[0] == "stopped")


def test_replacing_a_clip_crossfades_without_a_click() -> None:
    mixer = Mixer(RATE)
    old = tone(BAR, 200, 0.8)  # a whole number of periods: loops seamlessly
    new = tone(BAR, 200, 0.8, phase=math.pi)  # the same tone, opposite phase
    mixer.play(5, old, quantize="bar", tag="old")
    render(mixer, 50_000)
    mixer.play(5, new, quantize="bar", tag="new")
    out = render(mixer, 2 * BAR - 50_000)
    switch = BAR - 50_000
    normal_step = max(step_percentile(old, 99), step_percentile(new, 99))
    jump = abs(float(out[switch]) - float(out[switch - 1]))
    assert jump <= normal_step
    # Through the whole crossfade the steps stay those of the music (plus the fade's own slope).
    fade = mixer.fade_samples
    steps = np.abs(np.diff(out[switch - 10 : switch + fade + 10].astype(np.float64)))
    assert steps.max() <= 1.25 * normal_step
    # After it, only the new clip; a hard cut of the same clips would jump by 1.6.
    np.testing.assert_array_equal(out[switch + fade :], new[fade:BAR])
    hard_cut = abs(float(new[0]) - float(old[-1]))
    assert hard_cut > 50 * normal_step
    # The old voice never "stops" (its slot stays audible); the new one plays at the line.
    assert mixer.drain_events() == [("playing", 5, "old", 0), ("playing", 5, "new", BAR)]


def test_a_launch_at_cycle_end_waits_for_the_sounding_loop_to_wrap() -> None:
    mixer = Mixer(RATE)
    phrase = 2 * BAR + 1000  # not a whole number of bars: the clip's own length decides
    old = tone(phrase, 200, 0.8)  # 441 periods: loops seamlessly
    new = tone(BAR, 200, 0.8, phase=math.pi)
    mixer.play(5, old, quantize="bar", tag="old")
    render(mixer, phrase + BAR + 500)  # into its second cycle, past a bar line
    mixer.play(5, new, quantize="bar", tag="new", at_cycle_end=True)
    # a tempo change meanwhile does not move it: the sounding clip wraps where it did
    mixer.set_tempo(100.0)
    out = render(mixer, 2 * phrase + 2 * BAR - (phrase + BAR + 500))
    switch = 2 * phrase - (phrase + BAR + 500)  # the second wrap, in `out`
    assert mixer.drain_events() == [("playing", 5, "old", 0), ("playing", 5, "new", 2 * phrase)]
    # until the wrap only the old clip; the same crossfade as on a bar line, then the new one
    np.testing.assert_array_equal(out[:switch], np.tile(old, 2)[phrase + BAR + 500 : 2 * phrase])
    normal_step = step_percentile(old, 99)
    fade = mixer.fade_samples
    steps = np.abs(np.diff(out[switch - 10 : switch + fade + 10].astype(np.float64)))
    assert steps.max() <= 1.25 * normal_step
    np.testing.assert_array_equal(out[switch + fade :], np.tile(new, 3)[fade : len(out) - switch])


@pytest.mark.parametrize("sounding", ["silent", "one shot", "stopping"])
def test_a_launch_at_cycle_end_falls_back_to_quantize_without_a_loop(sounding: str) -> None:
    mixer = Mixer(RATE)
    if sounding != "silent":
        mixer.play(1, ramp(3 * BAR), quantize="none", loop=sounding != "one shot", tag="old")
    render(mixer, 10_000)
    if sounding == "stopping":
        mixer.stop(1, quantize="none")
        render(mixer, BLOCK)
    mixer.play(1, ramp(BAR), quantize="bar", tag="new", at_cycle_end=True)
    render(mixer, 2 * BAR)
    launches = [e for e in mixer.drain_events() if e[2] == "new"]
    assert launches == [("playing", 1, "new", BAR)]


def test_play_overrides_a_pending_stop_and_replaces_a_pending_launch() -> None:
    mixer = Mixer(RATE)
    mixer.play(0, tone(BAR, 200, 0.5), quantize="none", tag="a")
    render(mixer, 10_000)
    mixer.stop(0, quantize="bar")
    mixer.play(0, tone(BAR, 200, 0.5), quantize="bar", tag="b")
    mixer.play(0, tone(BAR, 200, 0.5), quantize="bar", tag="c")
    out = render(mixer, BAR)
    assert np.abs(out[BAR - 10_000 - 1000 : BAR - 10_000]).min() > 0.0  # no stop fade
    assert mixer.drain_events() == [
        ("playing", 0, "a", 0),
        ("dropped", 0, "b", 10_000),
        ("playing", 0, "c", BAR),
    ]


def test_stop_cancels_a_launch_that_has_not_sounded() -> None:
    mixer = Mixer(RATE)
    render(mixer, 1000)
    mixer.play(4, ramp(100), quantize="bar", tag="late-take")
    mixer.stop(4, quantize="bar")
    out = render(mixer, BAR + 1000)
    assert not out.any()
    assert mixer.drain_events() == [("dropped", 4, "late-take", 1000)]


def test_running_out_of_voices_drops_the_launch() -> None:
    mixer = Mixer(RATE, voices=2)
    for slot in range(3):
        mixer.play(slot, ramp(100), quantize="none", tag=slot)
    render(mixer, 333)
    assert mixer.drain_events() == [
        ("dropped", 2, 2, 0),
        ("playing", 0, 0, 0),
        ("playing", 1, 1, 0),
    ]


# -- levels -------------------------------------------------------------------------------------


def test_limiter_keeps_eight_loud_voices_within_full_scale() -> None:
    mixer = Mixer(RATE)
    rng = np.random.default_rng(3)
    for slot in range(8):
        loud = rng.uniform(-1.0, 1.0, RATE).astype(np.float32)
        mixer.play(slot, loud, quantize="none", gain=2.0)
    out = render(mixer, 3 * RATE)
    assert np.abs(out).max() <= mixer.limiter_threshold + 1e-6
    assert np.abs(out).max() > 0.9  # limited, not silenced


def test_quiet_material_passes_the_limiter_untouched_and_recovers_after_a_peak() -> None:
    mixer = Mixer(RATE, limiter_release_seconds=0.01)
    quiet = tone(BAR, 200, 0.4)
    mixer.play(0, quiet, quantize="none")
    out = render(mixer, 20_000)
    np.testing.assert_array_equal(out, quiet[:20_000])
    peak = np.zeros(100, dtype=np.float32)
    peak[0] = 1.0
    mixer.play(1, peak, quantize="none", loop=False, gain=2.0)
    out = render(mixer, 40_000)
    assert abs(out[0]) <= mixer.limiter_threshold + 1e-6
    # Gain rides back to 1 (release 10 ms): long after the peak the tone is untouched again.
    np.testing.assert_allclose(out[30_000:], quiet[50_000:60_000], atol=1e-6)


def test_voice_slot_and_master_gain() -> None:
    mixer = Mixer(RATE)
    clip = tone(BAR, 200, 0.4)
    mixer.play(0, clip, quantize="none", gain=0.5)
    out = render(mixer, 1000)
    np.testing.assert_array_equal(out, clip[:1000] * np.float32(0.5))
    mixer.set_master_gain(1.5)
    mixer.set_slot_gain(0, 0.5)
    out = render(mixer, 3000)
    # Ramped over the first piece (≤ 256 frames), then exactly 0.5 × 0.5 × 1.5.
    steps = np.abs(np.diff(out[:300].astype(np.float64)))
    assert steps.max() <= step_percentile(clip, 100) * 1.1
    np.testing.assert_allclose(out[300:], clip[1300:4000] * 0.375, atol=1e-6)
    with pytest.raises(ValueError, match="gain"):
        mixer.set_master_gain(2.5)
    with pytest.raises(ValueError, match="gain"):
        mixer.play(0, clip, gain=-1)


def test_play_validates_in_the_calling_thread() -> None:
    mixer = Mixer(RATE)
    good = ramp(10)
    with pytest.raises(ValueError, match="float32"):
        mixer.play(0, good.astype(np.float64))
    with pytest.raises(ValueError, match="1-D"):
        mixer.play(0, np.zeros((10, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        mixer.play(0, ramp(20)[::2])
    with pytest.raises(ValueError, match="finite"):
        mixer.play(0, np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match=r"slot must be in range 0\.\.127"):
        mixer.play(128, good)
    with pytest.raises(ValueError, match="quantize"):
        mixer.play(0, good, quantize="bars")
    with pytest.raises(ValueError, match="quantize"):
        mixer.stop(0, quantize="later")
    assert mixer.drain_events() == []


# -- threads ------------------------------------------------------------------------------------


def _loaded_mixer(rate: int) -> Mixer:
    mixer = Mixer(rate)
    rng = np.random.default_rng(0)
    for slot in range(8):
        mixer.play(slot, rng.uniform(-0.3, 0.3, rate).astype(np.float32), quantize="none")
    return mixer


def _lock_attributes(owner: object) -> list[str]:
    """Names of ``owner``'s attributes that are locks, conditions, semaphores or events."""
    kinds = (
        type(threading.Lock()),
        type(threading.RLock()),
        threading.Condition,
        threading.Semaphore,
        threading.Event,
    )
    names = getattr(owner, "__slots__", None) or list(vars(owner))
    return [name for name in names if isinstance(getattr(owner, name, None), kinds)]


def test_the_callback_has_no_lock_to_wait_for() -> None:
    # "No lock that another thread may hold": the mixer and its transport hold none at all, so
    # the callback cannot wait for a thread holding one. Commands come through a deque, whose
    # append and popleft are atomic; a lock added later fails this test and needs a review.
    mixer = _loaded_mixer(48000)
    assert _lock_attributes(mixer) == []
    assert _lock_attributes(mixer._transport) == []
    # and the check itself finds a lock where there is one
    assert _lock_attributes(SimpleNamespace(guard=threading.Lock())) == ["guard"]


class _SizeRecorder:
    """Wraps a NumPy ufunc (and its methods, e.g. ``accumulate``): notes the largest array
    it is handed, then calls it."""

    def __init__(self, function: Any, largest: list[int]) -> None:
        self._function = function
        self._largest = largest

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        arrays = [a for a in (*args, kwargs.get("out")) if isinstance(a, np.ndarray)]
        self._largest[0] = max([self._largest[0], *(a.size for a in arrays)])
        return self._function(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._function, name)
        return _SizeRecorder(attribute, self._largest) if callable(attribute) else attribute


class _RecordingNumpy:
    """``numpy`` with every ufunc wrapped in a :class:`_SizeRecorder`."""

    def __init__(self) -> None:
        self.largest = [0]

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(np, name)
        if isinstance(attribute, np.ufunc):
            return _SizeRecorder(attribute, self.largest)
        return attribute


def test_callback_keeps_the_gil_numpy_works_on_at_most_500_elements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # NumPy releases the GIL inside a ufunc loop over more than 500 elements, and a callback
    # that gives the GIL away waits up to the switch interval to get it back while another
    # thread runs Python. So every ufunc the callback calls must see at most 500 elements,
    # even for a buffer far larger than that, with crossfades, fades, gain ramps and the
    # limiter all at work.
    from daemon.live import player

    recording = _RecordingNumpy()
    mixer = _loaded_mixer(48000)
    for slot in range(4):  # loud: the limiter works
        mixer.play(slot, tone(48000, 300 + slot, 0.9), quantize="none")
    block = 4096
    buffer = np.zeros((block, 2), dtype=np.float32)

    def pull(buffers: int) -> None:  # only the callback's NumPy calls are recorded
        with monkeypatch.context() as patch:
            patch.setattr(player, "np", recording)
            for _ in range(buffers):
                mixer.callback(buffer, block, None, None)

    pull(1)
    mixer.set_master_gain(0.5)
    mixer.set_slot_gain(1, 1.5)
    mixer.play(2, tone(48000, 500, 0.5), quantize="none")  # a crossfade
    mixer.stop(3, quantize="none")  # a fade-out
    pull(4)
    assert mixer.callback_errors == 0 and buffer.any()
    assert recording.largest[0] == GIL_SAFE_FRAMES <= 500  # it saw the pieces, all small


# -- outputs ------------------------------------------------------------------------------------


def test_file_output_records_the_transport_from_sample_zero(tmp_path: Path) -> None:
    mixer = Mixer(RATE)
    clip = ramp(5000)
    mixer.play(7, clip, quantize="bar", loop=False, tag="x")
    path = tmp_path / "set.wav"
    with FileOutput(path, mixer, BLOCK, 2, realtime=False, max_samples=BAR + 10_000) as output:
        assert output.wait(30.0)
        mixer.play(7, clip, quantize="bar", loop=False, tag="too-late")  # never applied
    assert output.error is None
    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    assert rate == RATE
    assert data.shape == (BAR + 10_000, 2)
    np.testing.assert_array_equal(data[:, 0], data[:, 1])
    np.testing.assert_array_equal(data[:5000, 0], clip)
    assert not data[5000:, 0].any()
    assert mixer.drain_events() == [("playing", 7, "x", 0), ("stopped", 7, "x", 5000)]


def test_file_output_launches_on_the_bar_while_it_runs(tmp_path: Path) -> None:
    mixer = Mixer(RATE)
    path = tmp_path / "live.wav"
    output = FileOutput(path, mixer, 512, 1, realtime=False, max_samples=4 * BAR)
    output.start()
    deadline = time.monotonic() + 30
    while mixer.position < 1000:  # wait until the output is running mid-stream
        assert time.monotonic() < deadline, "the file output pulled nothing"
        time.sleep(0.001)
    clip = ramp(BAR)
    mixer.play(0, clip, quantize="bar", tag="live")
    assert output.wait(30.0)
    output.stop()
    (event,) = [e for e in mixer.drain_events() if e[0] == "playing"]
    launch = event[3]
    assert launch % BAR == 0 and launch > 0
    data, _ = soundfile.read(path, dtype="float32", always_2d=True)
    assert int(np.flatnonzero(data[:, 0])[0]) == launch
    np.testing.assert_array_equal(data[launch : launch + 1000, 0], clip[:1000])


def test_file_output_keeps_real_time_pace(tmp_path: Path) -> None:
    mixer = Mixer(RATE)
    output = FileOutput(tmp_path / "paced.wav", mixer, 441, 2, realtime=True, max_samples=RATE // 4)
    started = time.perf_counter()
    output.start()
    assert output.wait(10.0)
    elapsed = time.perf_counter() - started
    output.stop()
    assert elapsed >= 0.24 - 0.01  # 25 buffers of 10 ms, the first one at once
    assert soundfile.info(str(tmp_path / "paced.wav")).frames == RATE // 4
    assert "real time" in output.describe()


def test_file_output_stop_leaves_a_readable_file(tmp_path: Path) -> None:
    mixer = Mixer(RATE)
    mixer.play(0, tone(BAR, 200, 0.5), quantize="none")
    path = tmp_path / "open-ended.wav"
    output = open_output("file", mixer, path=path, block=256)
    output.start()
    deadline = time.monotonic() + 30
    while output.samples_written < 2048:  # the output's own progress is the event waited for
        assert time.monotonic() < deadline, "the file output pulled nothing"
        time.sleep(0.005)
    output.stop()
    output.stop()  # idempotent
    with pytest.raises(RuntimeError):
        output.start()
    frames = soundfile.info(str(path)).frames
    assert frames == output.samples_written >= 2048


def test_null_output_pulls_nothing() -> None:
    mixer = Mixer(RATE)
    with open_output("null", mixer) as output:
        assert isinstance(output, NullOutput)
        mixer.play(0, ramp(10), quantize="none")
        assert "no audio" in output.describe()
    assert mixer.position == 0
    assert mixer.drain_events() == []


def test_sound_device_output_without_a_sound_card_says_what_to_do() -> None:
    if list_devices():
        pytest.skip("this machine has an audio output device")
    mixer = Mixer(RATE)
    with pytest.raises(AudioUnavailable, match=r"no audio output device.*--no-audio"):
        SoundDeviceOutput(mixer)
    with pytest.raises(AudioUnavailable, match="--audio-file"):
        open_output("sounddevice", mixer, device="USB")
    reason = probe()
    assert reason is not None and "no audio output device" in reason


class FakeStream:
    """Stands in for ``sounddevice.OutputStream``: pulls the callback like PortAudio would."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        if settings["samplerate"] == 12345:
            raise ValueError("Invalid sample rate")
        self.latency = 0.005
        self.started = False
        self.closed = False

    def start(self) -> None:
        self.started = True
        block, channels = self.settings["blocksize"], self.settings["channels"]
        buffer = np.zeros((block, channels), dtype=np.float32)
        for _ in range(4):
            self.settings["callback"](buffer, block, None, None)

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


def fake_sounddevice() -> SimpleNamespace:
    devices = [
        {
            "name": "Built-in Mic",
            "max_output_channels": 0,
            "hostapi": 0,
            "default_samplerate": 44100.0,
        },
        {
            "name": "Built-in Output",
            "max_output_channels": 2,
            "hostapi": 0,
            "default_samplerate": 44100.0,
        },
        {
            "name": "USB Audio CODEC",
            "max_output_channels": 2,
            "hostapi": 0,
            "default_samplerate": 48000.0,
        },
    ]
    return SimpleNamespace(
        query_devices=lambda: devices,
        query_hostapis=lambda: [{"name": "ALSA"}],
        default=SimpleNamespace(device=[-1, 1]),
        OutputStream=FakeStream,
        check_output_settings=lambda **kwargs: None,
    )


def test_sound_device_output_through_a_fake_portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_out, "_import_sounddevice", fake_sounddevice)
    assert list_devices() == [
        "1: Built-in Output (ALSA, 2 out, 44100 Hz)",
        "2: USB Audio CODEC (ALSA, 2 out, 48000 Hz)",
    ]
    assert audio_out.device_rate("usb") == 48000
    assert probe() is None
    mixer = Mixer(48000)
    mixer.play(0, ramp(10), quantize="none", tag="t")
    with SoundDeviceOutput(mixer, device="usb", block=128) as output:
        stream = output._stream
        assert stream.started and stream.settings["device"] == 2
        assert stream.settings["callback"] == mixer.callback
        assert "USB Audio CODEC" in output.describe()
    assert stream.closed
    assert mixer.position == 4 * 128
    assert mixer.drain_events()[0] == ("playing", 0, "t", 0)
    assert SoundDeviceOutput(mixer)._stream.settings["device"] == 1  # the default output
    with pytest.raises(AudioUnavailable, match=r"no audio output device matches 'Focusrite'"):
        SoundDeviceOutput(mixer, device="Focusrite")
    with pytest.raises(AudioUnavailable, match="not an output device"):
        SoundDeviceOutput(mixer, device=0)
    with pytest.raises(AudioUnavailable, match=r"cannot open audio output .* 12345 Hz"):
        SoundDeviceOutput(Mixer(12345))


def test_a_failing_callback_plays_silence_and_keeps_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mixer = Mixer(RATE)
    mixer.play(0, tone(BAR, 200, 0.5), quantize="none")

    def broken(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(mixer, "_render", broken)
    buffer = np.ones((BLOCK, 2), dtype=np.float32)
    mixer.callback(buffer, BLOCK, None, None)
    assert not buffer.any()
    assert mixer.position == BLOCK
    assert mixer.callback_errors == 1 and isinstance(mixer.last_error, RuntimeError)
    monkeypatch.undo()
    assert render(mixer, BLOCK).any()  # and it plays on


def test_stop_while_the_clock_is_stopped_fades_at_once() -> None:
    mixer = Mixer(RATE)
    mixer.play(0, tone(BAR, 200, 0.5), quantize="none", tag="t")
    mixer.transport(False)
    render(mixer, 1000)
    mixer.stop(0, quantize="bar")
    render(mixer, 2000)
    assert mixer.drain_events()[-1] == ("stopped", 0, "t", 1000 + mixer.fade_samples)


def test_a_tempo_change_moves_waiting_launches_and_stops_onto_the_new_grid() -> None:
    mixer = Mixer(RATE)
    mixer.play(0, tone(BAR, 200, 0.5), quantize="none", tag="playing")
    render(mixer, 30_000)
    mixer.stop(0, quantize="bar")  # bar line of beat 4: sample 88200 at 120 BPM
    mixer.play(1, ramp(100), quantize="bar", tag="waiting")  # also beat 4
    render(mixer, 333)
    mixer.set_tempo(90.0)  # from sample 30333 on, 29400 samples per beat
    render(mixer, 2 * BAR)
    beat_4 = 30_333 + round((4 - Fraction(30_333, BEAT)) * 29400)
    assert mixer.grid.sample_at_beat(4) == beat_4 != BAR
    events = mixer.drain_events()
    assert ("stopped", 0, "playing", beat_4) in events
    assert ("playing", 1, "waiting", beat_4) in events


def test_transport_start_launches_waiting_clips_on_the_new_beat_zero() -> None:
    mixer = Mixer(RATE)
    render(mixer, 1000)
    mixer.play(0, ramp(100), quantize="bar", tag="queued")  # waits for sample 88200
    mixer.transport(False)
    render(mixer, 1000)
    mixer.transport(True)  # beat 0 at 2000: a bar line
    render(mixer, 1000)
    assert mixer.drain_events() == [("playing", 0, "queued", 2000)]


def test_file_output_without_a_path_is_a_clock() -> None:
    mixer = Mixer(RATE)
    mixer.play(0, ramp(10), quantize="none", loop=False, tag="heard-by-nobody")
    output = FileOutput(None, mixer, 512, 2, realtime=False, max_samples=2048)
    with output:
        assert output.wait(10.0)
    assert mixer.position == 2048
    assert [e[0] for e in mixer.drain_events()] == ["playing", "stopped"]
    assert "clock only" in output.describe()


def test_transport_continue_resumes_the_beat() -> None:
    mixer = Mixer(RATE)
    render(mixer, 30_000)
    mixer.transport(False)
    render(mixer, 1000)  # stopped at beat 30000 / 22050
    mixer.transport(True, resume=True)
    render(mixer, 1000)  # runs again from 31000, same beat
    mixer.play(0, ramp(10), quantize="beat", tag="on-beat-2")
    render(mixer, BEAT)
    assert mixer.drain_events()[0] == ("playing", 0, "on-beat-2", 31_000 + (2 * BEAT - 30_000))


# -- phase alignment with an outside clock (Ableton Link) ----------------------------------------


def test_align_phase_moves_the_bar_lines_onto_the_outside_clock() -> None:
    mixer = Mixer(RATE)  # 120 BPM: a beat is 22050 samples
    render(mixer, 10_000)  # the grid's beat at sample 10000 is 10000 / 22050
    # the outside clock is 1.5 beats past its bar line "now"
    mixer.align_phase(1.5, time.monotonic())
    t0 = mixer.position
    render(mixer, BLOCK)
    grid = mixer.grid
    assert grid.beat_at(t0) % 4 == pytest.approx(1.5, abs=1e-3)
    assert mixer.phase_corrections == 1
    # a launch on the next bar lands 2.5 beats after t0: the outside clock's next bar line
    mixer.play(0, ramp(1000), quantize="bar", loop=False, tag="t")
    out = render(mixer, 3 * BEAT)
    first = t0 + BLOCK + int(np.flatnonzero(out)[0])
    assert abs(first - (t0 + 2.5 * BEAT)) <= 2 * 1e-3 * BEAT  # within the extrapolation error
    # already in line (within the tolerance): the grid stays put
    beat_now = mixer.grid.beat_at(mixer.position)
    mixer.align_phase(beat_now % 4, time.monotonic())
    render(mixer, BLOCK)
    assert mixer.phase_corrections == 1


def test_align_phase_takes_the_shortest_way_and_keeps_waiting_launches_on_their_beat() -> None:
    mixer = Mixer(RATE)
    render(mixer, BLOCK)
    mixer.play(1, ramp(500), quantize="bar", loop=False, tag="t")
    render(mixer, BLOCK)  # waiting for beat 4 (sample 88200)
    before = mixer.grid.beat_at(mixer.position)
    mixer.align_phase((before - 0.25) % 4, time.monotonic())  # a quarter beat behind
    t0 = mixer.position
    render(mixer, BLOCK)
    assert mixer.grid.beat_at(t0) == pytest.approx(before - 0.25, abs=1e-3)  # moved back
    out = render(mixer, BAR + BEAT)
    first = t0 + BLOCK + int(np.flatnonzero(out)[0])
    assert first == mixer.grid.sample_at_beat(4)  # the launch kept its beat, on the new grid
    assert abs(first - (BAR + BEAT // 4)) <= 50
