"""The transport's beat grid: quantize points, exactness over a long set, tempo changes."""

from __future__ import annotations

import random
import re
from fractions import Fraction
from pathlib import Path

import pytest

from daemon.live.transport import Transport
from musicldm_core.beats import beat_samples


def test_beat_and_bar_boundaries_at_120_bpm_44100() -> None:
    transport = Transport(44100, 120.0, 4)
    assert transport.grid.samples_per_beat == 22050
    assert transport.next_boundary(0, "bar") == 0
    assert transport.next_boundary(1, "bar") == 88200
    assert transport.next_boundary(88199, "bar") == 88200
    assert transport.next_boundary(88200, "bar") == 88200
    assert transport.next_boundary(88201, "bar") == 176400
    assert transport.next_boundary(1, "beat") == 22050
    assert transport.next_boundary(22050, "beat") == 22050
    assert transport.next_boundary(22051, "beat") == 44100
    assert transport.next_boundary(50000, "beat") == 66150
    assert transport.beat_at(66150) == pytest.approx(3.0)
    assert transport.sample_at_beat(8) == 176400


def test_none_quantize_is_the_sample_itself() -> None:
    transport = Transport(48000, 93.0)
    for sample in (0, 1, 12345, 10**9 + 7):
        assert transport.next_boundary(sample, "none") == sample


def test_unknown_quantize_is_refused() -> None:
    with pytest.raises(ValueError, match="quantize"):
        Transport(48000).next_boundary(0, "bars")


@pytest.mark.parametrize(("bpm", "rate"), [(93.0, 48000), (92.3, 44100), (127.0, 44100)])
def test_beats_land_on_rounded_exact_positions_without_drift(bpm: float, rate: int) -> None:
    transport = Transport(rate, bpm, 4)
    exact = beat_samples(bpm, rate)
    assert exact.denominator != 1  # a tempo whose beat is not a whole number of samples
    for n in [*range(0, 200), *range(9_900, 10_001)]:
        sample = round(n * exact)
        assert transport.sample_at_beat(n) == sample
        assert transport.next_boundary(sample, "beat") == sample
        assert transport.next_boundary(sample - 1, "beat") == sample
        assert transport.next_boundary(sample + 1, "beat") == round((n + 1) * exact)
        assert transport.beat_at(sample) == pytest.approx(n, abs=1 / float(exact))
    # Bar lines after 10000 beats (2500 bars), still exact.
    bar = round(10_000 * exact)
    assert transport.next_boundary(round(9_997 * exact), "bar") == bar
    assert transport.next_boundary(bar + 1, "bar") == round(10_004 * exact)


def test_next_boundary_is_the_first_grid_point_at_or_after() -> None:
    transport = Transport(48000, 93.0, 3)
    exact = beat_samples(93.0, 48000)
    rng = random.Random(5)
    for _ in range(2000):
        sample = rng.randrange(0, 48000 * 3600)
        for quantize, unit in (("beat", 1), ("bar", 3)):
            boundary = transport.next_boundary(sample, quantize)
            assert boundary >= sample
            # It is a grid point, and the grid point before it lies before `sample`.
            n = round(Fraction(boundary) / exact / unit) * unit
            assert round(n * exact) == boundary
            assert round((n - unit) * exact) < sample


def test_tempo_change_keeps_the_beat_phase() -> None:
    transport = Transport(44100, 120.0, 4)
    change = 30_000  # beat 1.3605…
    before = transport.beat_at(change)
    transport.set_tempo(90.0, change)
    assert transport.grid.bpm == 90.0
    assert transport.beat_at(change) == pytest.approx(before, abs=1e-12)
    assert transport.beat_at(change + 1) - transport.beat_at(change) == pytest.approx(
        90 / 60 / 44100
    )
    # Beat 2 falls where the rest of beat 1 takes at the new tempo (29400 samples per beat).
    expected = change + round((2 - Fraction(change, 22050)) * 29400)
    assert transport.next_boundary(change, "beat") == expected
    # Bar lines stay every 4 beats from beat 0: the next one is beat 4.
    assert transport.next_boundary(change, "bar") == change + round(
        (4 - Fraction(change, 22050)) * 29400
    )


def test_many_tempo_changes_stay_exact_and_keep_the_anchor_small() -> None:
    transport = Transport(48000, 120.0, 4)
    rng = random.Random(1)
    sample = 0
    for _ in range(2000):
        sample += rng.randrange(1, 48000)
        before = transport.beat_at(sample)
        transport.set_tempo(rng.uniform(60.0, 180.0), sample)
        assert transport.beat_at(sample) == pytest.approx(before, rel=1e-12)
        boundary = transport.next_boundary(sample, "bar")
        assert boundary >= sample
        # A bar line, rounded to the nearest sample (half a sample is 0.5 / samples_per_beat).
        beat = transport.beat_at(boundary)
        assert round(beat) % 4 == 0
        assert beat == pytest.approx(
            round(beat), abs=0.5 / float(transport.grid.samples_per_beat) + 1e-9
        )
    # what keeps it fast: the exact anchor's denominator stays bounded however long the set
    assert transport.grid.anchor_beat.denominator <= 1 << 40


def test_start_stop_and_meter() -> None:
    transport = Transport(44100, 120.0, 4)
    transport.stop(10_000)
    assert not transport.grid.running
    assert transport.beat_at(99_999) == pytest.approx(10_000 / 22050)
    assert transport.next_boundary(12_345, "bar") == 12_345  # no grid while stopped
    transport.start(50_000)
    assert transport.grid.running
    assert transport.beat_at(50_000) == 0.0
    assert transport.next_boundary(50_001, "bar") == 50_000 + 88200
    transport.beats_per_bar = 3
    assert transport.next_boundary(50_001, "bar") == 50_000 + 66150
    with pytest.raises(ValueError, match="beats_per_bar"):
        transport.beats_per_bar = 0
    with pytest.raises(ValueError, match="bpm"):
        transport.set_tempo(0.0, 0)


def test_grid_snapshot_is_immutable_and_replaced_whole() -> None:
    transport = Transport(44100)
    snapshot = transport.grid
    transport.set_tempo(140.0, 1000)
    assert snapshot.bpm == 120.0  # an old snapshot keeps computing on the old grid
    assert snapshot.next_boundary(1, "bar") == 88200
    assert transport.grid is not snapshot


def test_resume_continues_from_the_beat_where_it_stopped() -> None:
    transport = Transport(44100, 120.0, 4)
    transport.stop(30_000)  # beat 1.36…
    transport.resume(100_000)
    assert transport.grid.running
    assert transport.beat_at(100_000) == pytest.approx(30_000 / 22050)
    assert transport.next_boundary(100_000, "beat") == 100_000 + (44100 - 30_000)
    transport.resume(200_000)  # already running: unchanged
    assert transport.beat_at(100_000) == pytest.approx(30_000 / 22050)


def test_bars_are_numbered_from_one_and_bar_one_begins_where_the_transport_started() -> None:
    transport = Transport(44100, 120.0, 4)
    grid = transport.grid
    assert grid.sample_at_bar(1) == 0
    assert grid.sample_at_bar(3) == 176400  # two bars of 2 s after bar 1
    assert transport.next_boundary(1, "bar") == grid.sample_at_bar(2)
    transport.start(1000)  # "bar 1 starts now"
    assert transport.grid.sample_at_bar(1) == 1000
    assert transport.next_boundary(1001, "bar") == transport.grid.sample_at_bar(2) == 1000 + 88200
    with pytest.raises(ValueError, match="bar must be a whole number of at least 1"):
        grid.sample_at_bar(0)


def test_the_docs_number_bars_as_the_clock_does() -> None:
    """Every "bar N at T BPM starts at exactly sample S" in docs/live.md agrees with the clock."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "live.md").read_text()
    sentence = r"bar\s+(\d+)\s+at\s+(\d+)\s+BPM\s+starts\s+at\s+exactly\s+sample\s+"
    claims = re.findall(sentence + r"(?:[^=]*=\s*)?(\d+)", text)
    assert claims, "docs/live.md no longer gives a bar's sample"
    for bar, bpm, sample in claims:
        assert Transport(44100, float(bpm), 4).grid.sample_at_bar(int(bar)) == int(sample)
