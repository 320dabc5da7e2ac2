"""Post-processing (musicldm_core.dsp): resampling, seamless loops, fades, peak and loudness."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest

from musicldm_core.dsp import (
    cut_with_fades,
    integrated_loudness,
    make_loop,
    normalize_loudness,
    peak_dbfs,
    protect_peak,
    resample,
    seam_jump,
    step_percentile,
    tpdf_dither,
)

RATE = 16000


def _sine(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _music_like(samples: int, rate: int = RATE, seed: int = 1) -> np.ndarray:
    """A continuous signal with no short period: sines at unrelated frequencies plus a chirp."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    out = np.zeros(samples)
    for freq in (55.0, 97.3, 211.9, 443.1, 1013.7):
        out += 0.12 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    out += 0.1 * np.sin(2 * np.pi * (150 * t + 200 * t**2))
    return out.astype(np.float32)


def _peak_frequency(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(spectrum)])


def _lufs(audio: np.ndarray, rate: int) -> float:
    return float(pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64)))


# --- resample ------------------------------------------------------------------------------------


@pytest.mark.parametrize("to_rate", [44100, 48000])
def test_resample_gives_the_length_of_the_same_duration(to_rate):
    out = resample(np.zeros(RATE, np.float32), RATE, to_rate)
    assert out.dtype == np.float32
    assert len(out) == to_rate


def test_resample_at_the_same_rate_is_a_copy():
    audio = _sine(440, 0.1, RATE)
    out = resample(audio, RATE, RATE)
    np.testing.assert_array_equal(out, audio)
    out[0] = 9.0
    assert audio[0] != 9.0


@pytest.mark.parametrize("to_rate", [44100, 48000])
def test_a_sine_stays_the_same_sine_at_the_new_rate(to_rate):
    out = resample(_sine(1000.0, 1.0, RATE), RATE, to_rate)
    assert _peak_frequency(out, to_rate) == pytest.approx(1000.0, abs=1.0)
    middle = out[to_rate // 10 : -to_rate // 10]  # away from the filter's edges
    assert np.sqrt(np.mean(middle.astype(np.float64) ** 2)) == pytest.approx(
        0.5 / math.sqrt(2), rel=0.01
    )


@pytest.mark.parametrize("rates", [(0, 44100), (16000, -1), (16000.0, 44100)])
def test_resample_refuses_bad_rates(rates):
    with pytest.raises(ValueError, match="rate"):
        resample(np.zeros(10, np.float32), *rates)


# --- make_loop -----------------------------------------------------------------------------------

LOOP = 12_345  # no period of the test signal divides this
CROSSFADE = 640


def test_loop_has_the_exact_length_and_keeps_the_body():
    audio = _music_like(LOOP + CROSSFADE + 500)
    loop = make_loop(audio, LOOP, CROSSFADE)
    assert loop.dtype == np.float32
    assert len(loop) == LOOP
    np.testing.assert_array_equal(loop[CROSSFADE:], audio[CROSSFADE:LOOP])
    assert loop[0] == audio[LOOP]  # starts with the music's continuation...
    # ...so the wrap from the last sample to the first is the music's own step there.
    assert seam_jump(loop) == pytest.approx(abs(float(audio[LOOP]) - float(audio[LOOP - 1])))


def test_loop_seam_is_no_bigger_than_the_music_steps_while_a_naive_cut_clicks():
    audio = _music_like(LOOP + CROSSFADE)
    naive = audio[:LOOP]
    loop = make_loop(audio, LOOP, CROSSFADE)
    # The check catches a bad loop: the plain cut jumps far more than the signal ever steps.
    assert seam_jump(naive) > 3 * step_percentile(naive, 99)
    assert seam_jump(loop) <= step_percentile(loop, 99)
    # No click inside the crossfade either: played twice, the loop's biggest step stays near the
    # music's (equal power may add a little level mid-fade; a click would be several times more).
    biggest_step = np.max(np.abs(np.diff(audio)))
    assert np.max(np.abs(np.diff(np.concatenate([loop, loop])))) <= 1.5 * biggest_step
    assert np.max(np.abs(np.diff(np.concatenate([naive, naive])))) > 3 * biggest_step


def test_loop_crossfade_has_equal_power_gains():
    # Head of ones and continuation of zeros shows fade_in; the other way round, fade_out.
    ones, zeros = np.ones(CROSSFADE, np.float32), np.zeros(CROSSFADE, np.float32)
    body = np.zeros(LOOP - CROSSFADE, np.float32)
    fade_in = make_loop(np.concatenate([ones, body, zeros]), LOOP, CROSSFADE)[:CROSSFADE]
    fade_out = make_loop(np.concatenate([zeros, body, ones]), LOOP, CROSSFADE)[:CROSSFADE]
    np.testing.assert_allclose(fade_in**2 + fade_out**2, 1.0, atol=1e-6)
    assert fade_in[0] == 0.0 and fade_out[0] == 1.0
    assert np.all(np.diff(fade_in) > 0) and np.all(np.diff(fade_out) < 0)
    assert fade_in[-1] > 0.99  # the next sample (gain exactly 1) continues the curve


def test_loop_without_crossfade_is_a_plain_cut():
    audio = _music_like(LOOP)
    np.testing.assert_array_equal(make_loop(audio, LOOP, 0), audio)


@pytest.mark.parametrize(
    ("samples", "loop", "crossfade", "message"),
    [
        (LOOP + CROSSFADE - 1, LOOP, CROSSFADE, "needs"),
        (LOOP, 0, 0, "loop_samples"),
        (LOOP, -5, 0, "loop_samples"),
        (LOOP, LOOP // 2, -1, "crossfade_samples"),
        (LOOP, 100, 200, "exceed"),
    ],
)
def test_make_loop_refuses_bad_arguments(samples, loop, crossfade, message):
    with pytest.raises(ValueError, match=message):
        make_loop(np.zeros(samples, np.float32), loop, crossfade)


def test_dsp_refuses_stereo_arrays():
    with pytest.raises(ValueError, match="mono"):
        make_loop(np.zeros((LOOP, 2), np.float32), 100, 10)


# --- cut_with_fades ------------------------------------------------------------------------------


def test_cut_with_fades_has_exact_length_and_fades_to_exactly_zero():
    audio = np.ones(10_000, np.float32)
    out = cut_with_fades(audio, 8000, 80)
    assert len(out) == 8000 and out.dtype == np.float32
    assert out[0] == 0.0 and out[-1] == 0.0
    np.testing.assert_array_equal(out[80:-80], 1.0)
    assert np.all(np.diff(out[:80]) > 0) and np.all(np.diff(out[-80:]) < 0)


def test_cut_with_fades_on_a_tiny_clip_keeps_fades_within_it():
    out = cut_with_fades(np.ones(10, np.float32), 6, 100)
    assert len(out) == 6 and out[0] == 0.0 and out[-1] == 0.0


def test_cut_with_fades_refuses_short_audio_and_negative_fades():
    with pytest.raises(ValueError, match="needs"):
        cut_with_fades(np.ones(100, np.float32), 101, 10)
    with pytest.raises(ValueError, match="fade_samples"):
        cut_with_fades(np.ones(100, np.float32), 50, -1)


# --- peak ----------------------------------------------------------------------------------------


def test_peak_dbfs():
    assert peak_dbfs(np.array([0.0, -0.5, 0.25], np.float32)) == pytest.approx(-6.0206, abs=1e-3)
    assert peak_dbfs(np.zeros(10, np.float32)) == -math.inf


def test_protect_peak_turns_loud_audio_down_to_the_ceiling():
    audio = _sine(440, 0.1, RATE, amplitude=2.0)
    out, gain_db = protect_peak(audio, -1.0)
    assert peak_dbfs(out) == pytest.approx(-1.0, abs=1e-4)
    assert gain_db == pytest.approx(-1.0 - peak_dbfs(audio))
    assert gain_db < -6


@pytest.mark.parametrize("amplitude", [0.0, 0.01, 0.5, 0.89, 1.0, 3.0])
@pytest.mark.parametrize("ceiling", [-6.0, -1.0, 0.0])
def test_protect_peak_never_raises_the_level(amplitude, ceiling):
    audio = _sine(440, 0.05, RATE, amplitude=amplitude)
    out, gain_db = protect_peak(audio, ceiling)
    assert gain_db <= 0.0
    assert peak_dbfs(out) <= max(peak_dbfs(audio), -math.inf)
    assert peak_dbfs(out) <= ceiling + 1e-4
    if peak_dbfs(audio) <= ceiling:
        assert gain_db == 0.0
        np.testing.assert_array_equal(out, audio)


# --- loudness ------------------------------------------------------------------------------------


def test_normalize_loudness_hits_the_target_for_a_2s_clip():
    rate = 44100
    noise = (0.02 * np.random.default_rng(3).standard_normal(2 * rate)).astype(np.float32)
    out, before = normalize_loudness(noise, rate, -20.0, loop=False)
    assert before == pytest.approx(_lufs(noise, rate), abs=0.01)
    assert before < -25  # so the test sees a real change
    assert _lufs(out, rate) == pytest.approx(-20.0, abs=0.5)
    assert peak_dbfs(out) <= -1.0 + 1e-4


def test_normalize_loudness_keeps_the_peak_under_the_ceiling():
    rate = 44100
    noise = (0.05 * np.random.default_rng(4).standard_normal(2 * rate)).astype(np.float32)
    out, _ = normalize_loudness(noise, rate, -3.0, ceiling_dbfs=-1.0)
    assert peak_dbfs(out) == pytest.approx(-1.0, abs=1e-3)
    assert _lufs(out, rate) < -3.0  # the ceiling wins over the target


def test_normalize_loudness_works_for_a_short_loop_and_one_shot():
    rate = 48000
    short = (0.05 * np.random.default_rng(5).standard_normal(round(0.2 * rate))).astype(np.float32)
    looped, before_loop = normalize_loudness(short, rate, -20.0, loop=True)
    assert len(looped) == len(short)
    assert math.isfinite(before_loop)
    # Heard as a loop, it now plays at the target.
    assert _lufs(np.tile(looped, 20), rate) == pytest.approx(-20.0, abs=0.5)

    one_shot, before_one_shot = normalize_loudness(short, rate, -20.0, loop=False)
    assert len(one_shot) == len(short)
    # Padded with silence to one 0.4 s block, the 0.2 s hit measures about 3 dB quieter.
    assert before_one_shot == pytest.approx(before_loop - 3.0, abs=0.5)


def test_integrated_loudness_measures_what_normalize_loudness_sets():
    rate = 44100
    noise = (0.03 * np.random.default_rng(6).standard_normal(2 * rate)).astype(np.float32)
    assert integrated_loudness(noise, rate, loop=False) == pytest.approx(_lufs(noise, rate))
    out, before = normalize_loudness(noise, rate, -23.0, loop=False)
    assert before == integrated_loudness(noise, rate, loop=False)
    assert integrated_loudness(out, rate, loop=False) == pytest.approx(-23.0, abs=0.01)
    assert integrated_loudness(np.zeros(rate, np.float32), rate) == -math.inf


def test_normalize_loudness_leaves_silence_alone():
    silence = np.zeros(44100, np.float32)
    out, before = normalize_loudness(silence, 44100, -14.0)
    assert before == -math.inf
    np.testing.assert_array_equal(out, silence)


def test_normalize_loudness_refuses_bad_arguments():
    audio = np.zeros(44100, np.float32)
    with pytest.raises(ValueError, match="target_lufs"):
        normalize_loudness(audio, 44100, math.nan)
    with pytest.raises(ValueError, match="sample_rate"):
        normalize_loudness(audio, 0, -14.0)
    with pytest.raises(ValueError, match="no samples"):
        normalize_loudness(np.zeros(0, np.float32), 44100, -14.0)


# --- seam measures and dither --------------------------------------------------------------------


def test_seam_jump_and_step_percentile():
    audio = np.array([0.5, 0.4, 0.1, -0.2], np.float32)
    assert seam_jump(audio) == pytest.approx(0.7)
    assert step_percentile(audio, 100) == pytest.approx(0.3)
    assert step_percentile(audio, 0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="percentile"):
        step_percentile(audio, 101)


def test_tpdf_dither_is_triangular_within_one_lsb_and_reproducible():
    lsb = 2.0**-15
    audio = np.zeros(200_000, np.float32)
    noise = tpdf_dither(audio, 16, np.random.default_rng(7)).astype(np.float64)
    assert np.max(np.abs(noise)) <= lsb
    assert abs(np.mean(noise)) < 0.01 * lsb
    assert np.var(noise) == pytest.approx(lsb**2 / 6, rel=0.02)  # triangular, not uniform (1/3)
    again = tpdf_dither(audio, 16, np.random.default_rng(7))
    np.testing.assert_array_equal(noise, again)
    with pytest.raises(ValueError, match="bits"):
        tpdf_dither(audio, 1, np.random.default_rng(7))
