"""Beat math: exact sample counts and render plans."""

from __future__ import annotations

import pytest

from musicldm_core.beats import (
    beat_samples,
    clip_samples,
    frames_for_samples,
    plan_render,
    seconds_samples,
)


@pytest.mark.parametrize(
    ("bars", "beats", "bpm", "rate", "expected"),
    [
        (2, 4, 90, 44100, 235200),  # the README's first clip
        (1, 4, 120, 16000, 32000),
        (4, 4, 128, 48000, 360000),
        (1, 3, 140, 44100, round(3 * 60 / 140 * 44100)),
        (3, 7, 92.3, 44100, round(3 * 7 * 60 * 44100 * 10 / 923)),
    ],
)
def test_clip_samples_match_the_contract(bars, beats, bpm, rate, expected):
    assert clip_samples(bars=bars, beats_per_bar=beats, bpm=bpm, sample_rate=rate) == expected


def test_decimal_tempo_is_exact():
    # 92.3 is not exact in binary; the length must not depend on that noise.
    assert beat_samples(92.3, 44100) * 923 == 60 * 44100 * 10
    assert seconds_samples(2.005, 16000) == 32080


def test_frames_round_up_never_down():
    # Upstream truncates 2.005 s to 200 frames (32000 samples < 32080 asked for).
    frames = frames_for_samples(32080)
    assert frames * 160 >= 32080
    assert frames % 4 == 0
    assert frames_for_samples(32000) == 200
    assert frames_for_samples(10) == 32  # the floor keeps the UNet's downsampling sane


def test_loop_plan_renders_the_crossfade_and_a_margin():
    plan = plan_render(out_samples=88200, out_rate=44100, loop=True, crossfade_seconds=0.04)
    assert plan.crossfade_samples == 1764
    assert plan.needed_samples == 88200 + 1764
    rendered_at_out_rate = plan.frames * 160 * 44100 / 16000
    assert rendered_at_out_rate >= plan.needed_samples + plan.margin_samples


def test_short_loop_keeps_most_of_its_body():
    plan = plan_render(out_samples=4000, out_rate=44100, loop=True, crossfade_seconds=0.5)
    assert plan.crossfade_samples == 1000


def test_plain_cut_has_no_crossfade():
    plan = plan_render(out_samples=44100, out_rate=44100, loop=False)
    assert plan.crossfade_samples == 0
    assert plan.needed_samples == 44100


def test_empty_clip_is_refused():
    with pytest.raises(ValueError, match="at least one sample"):
        plan_render(out_samples=0, out_rate=44100, loop=True)
