"""The musical clock of live playback: beats and bars counted in samples of the output stream.

A :class:`Transport` maps output-stream sample positions (samples since the stream started, at
the device rate) to beats and back, and finds the next beat or bar line at which a clip may
launch. The audio callback owns it: :class:`daemon.live.player.Mixer` applies tempo and transport
commands to it at the start of a buffer, inside the callback, and asks it for quantize points
there. Nothing else calls its mutating methods.

The whole clock state is one immutable :class:`TempoGrid` that :meth:`Transport.set_tempo`,
:meth:`~Transport.start` and :meth:`~Transport.stop` replace by a single attribute rebind, so
another thread may read ``transport.grid`` (or ``Mixer.grid``) at any time and get a consistent
snapshot to compute with, e.g. where a trigger that arrives now ought to launch.

Numbering: beats are counted from 0 (a position), bars from 1 (a name, as in a DAW). Beat 0 is
where the transport started, and it begins bar 1; bar ``n`` begins at beat
``(n - 1) * beats_per_bar`` (:meth:`TempoGrid.sample_at_bar`). At 120 BPM in 4/4 and 44.1 kHz,
bar 1 begins at sample 0 and bar 3 at sample 176400. Docs, replies and logs use the same
numbering.

Beat positions are exact: the grid keeps its anchor and its samples-per-beat as ``Fraction``s
(:func:`musicldm_core.beats.beat_samples`), so with the anchor at beat 0, beat ``n`` falls at
exactly ``round(n * samples_per_beat)`` however long the set runs. A tempo change re-anchors the
grid at the sample where it takes effect, keeping the beat phase continuous there.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal, NamedTuple

from musicldm_core.beats import beat_samples

__all__ = ["QUANTIZE_MODES", "Quantize", "TempoGrid", "Transport"]

Quantize = Literal["none", "beat", "bar"]
"""Where a launch or stop may happen: at once, on the next beat, or on the next bar line."""

QUANTIZE_MODES: tuple[str, ...] = ("none", "beat", "bar")

_MAX_ANCHOR_DENOMINATOR = 1 << 40
"""Repeated tempo changes multiply the anchor beat's denominator; past this it is rounded to
the nearest fraction with a smaller one (an error below 1e-12 beat, far under a sample)."""


def _check_bpm(bpm: float) -> float:
    bpm = float(bpm)
    if not math.isfinite(bpm) or bpm <= 0.0:
        raise ValueError(f"bpm must be a positive finite number, got {bpm!r}")
    return bpm


def _check_beats_per_bar(beats_per_bar: int) -> int:
    if isinstance(beats_per_bar, bool) or not isinstance(beats_per_bar, int) or beats_per_bar < 1:
        raise ValueError(
            f"beats_per_bar must be a whole number of at least 1, got {beats_per_bar!r}"
        )
    return beats_per_bar


class TempoGrid(NamedTuple):
    """An immutable snapshot of the clock: the beat grid from one anchor on.

    ``beat(sample) = anchor_beat + (sample - anchor_sample) / samples_per_beat`` while
    ``running``; while stopped the beat stays at ``anchor_beat``. Positions are output samples
    since the stream started, at ``sample_rate`` Hz. Safe to use from any thread.
    """

    sample_rate: int
    """Output samples per second (Hz)."""
    bpm: float
    """Tempo in beats per minute."""
    beats_per_bar: int
    """Beats in one bar; bar lines fall on every ``beats_per_bar``-th beat counted from beat 0."""
    running: bool
    """Whether the clock moves; a stopped clock has no beat grid to quantize to."""
    anchor_sample: int
    """Output sample (samples since the stream started) where ``anchor_beat`` falls."""
    anchor_beat: Fraction
    """Beat at ``anchor_sample`` (exact)."""
    samples_per_beat: Fraction
    """Exact samples in one beat at ``bpm`` and ``sample_rate``."""
    anchor_beat_float: float
    """``anchor_beat`` as a float, for the fast :meth:`beat_at`."""
    beats_per_sample_float: float
    """``1 / samples_per_beat`` as a float, for the fast :meth:`beat_at`."""

    @classmethod
    def make(
        cls,
        *,
        sample_rate: int,
        bpm: float,
        beats_per_bar: int,
        running: bool,
        anchor_sample: int,
        anchor_beat: Fraction,
    ) -> TempoGrid:
        """A grid with its derived fields filled in (``bpm`` > 0, ``beats_per_bar`` ≥ 1)."""
        if anchor_beat.denominator > _MAX_ANCHOR_DENOMINATOR:
            anchor_beat = anchor_beat.limit_denominator(_MAX_ANCHOR_DENOMINATOR)
        per_beat = beat_samples(bpm, sample_rate)
        return cls(
            sample_rate,
            bpm,
            beats_per_bar,
            running,
            int(anchor_sample),
            anchor_beat,
            per_beat,
            float(anchor_beat),
            float(1 / per_beat),
        )

    def exact_beat_at(self, sample: int) -> Fraction:
        """The exact beat (a ``Fraction``) at output sample ``sample``; frozen while stopped."""
        if not self.running:
            return self.anchor_beat
        return self.anchor_beat + (sample - self.anchor_sample) / self.samples_per_beat

    def beat_at(self, sample: int) -> float:
        """The beat (0.0 = first beat after start) at output sample ``sample``, as a float.

        While stopped: the beat at which the clock stopped.
        """
        if not self.running:
            return self.anchor_beat_float
        return self.anchor_beat_float + (sample - self.anchor_sample) * self.beats_per_sample_float

    def sample_at_beat(self, beat: float | Fraction) -> int:
        """The output sample where beat ``beat`` falls: ``anchor_sample +
        round((beat - anchor_beat) * samples_per_beat)``, exact for int or ``Fraction`` beats.

        Beats before the last tempo change are extrapolated at the current tempo; while
        stopped, the grid is extrapolated as if the clock were running from its anchor.
        """
        offset = (Fraction(beat) - self.anchor_beat) * self.samples_per_beat
        return self.anchor_sample + round(offset)

    def sample_at_bar(self, bar: int) -> int:
        """The output sample where bar ``bar`` begins; bars are numbered from 1, and bar 1
        begins at beat 0 (where the transport started), so bar ``n`` begins at beat
        ``(n - 1) * beats_per_bar``."""
        if isinstance(bar, bool) or not isinstance(bar, int) or bar < 1:
            raise ValueError(f"bar must be a whole number of at least 1, got {bar!r}")
        return self.sample_at_beat((bar - 1) * self.beats_per_bar)

    def next_boundary_beat(self, sample: int, quantize: str) -> int | None:
        """The number of the first beat (``"beat"``) or bar line (``"bar"``, a multiple of
        ``beats_per_bar``) whose sample is at or after output sample ``sample``; ``None`` for
        ``"none"`` or a stopped clock. Its sample is :meth:`sample_at_beat` of it."""
        if quantize == "none" or not self.running:
            return None
        if quantize == "beat":
            unit = 1
        elif quantize == "bar":
            unit = self.beats_per_bar
        else:
            raise ValueError(f"quantize must be one of none, beat, bar; got {quantize!r}")
        # The exact beat at `sample` rounded up to the grid gives a boundary at or after it; the
        # one before may still round onto `sample` (it lies at most half a sample earlier).
        multiple = math.ceil(self.exact_beat_at(sample) / unit) * unit
        if self.sample_at_beat(multiple - unit) >= sample:
            return multiple - unit
        return multiple

    def next_boundary(self, sample: int, quantize: str) -> int:
        """The first beat (``"beat"``) or bar line (``"bar"``) at or after output sample
        ``sample``; ``"none"``, or a stopped clock, gives ``sample`` itself.

        The boundary of beat ``n`` is :meth:`sample_at_beat` (``n``), i.e. the exact beat
        position rounded to the nearest sample.
        """
        beat = self.next_boundary_beat(sample, quantize)
        return sample if beat is None else self.sample_at_beat(beat)


class Transport:
    """The clock of the output stream: tempo, meter, start/stop, quantize points.

    Owned by the audio callback thread (the ``Mixer`` applies commands to it
    inside its callback); other threads read only :attr:`grid`, an immutable snapshot.

    Args:
        sample_rate: output stream rate in Hz (positions are samples at this rate).
        bpm: initial tempo in beats per minute.
        beats_per_bar: beats in one bar.
        running: whether the clock runs from the start, with beat 0 at sample 0.
    """

    __slots__ = ("grid",)

    grid: TempoGrid

    def __init__(
        self, sample_rate: int, bpm: float = 120.0, beats_per_bar: int = 4, *, running: bool = True
    ) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(
                f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}"
            )
        self.grid = TempoGrid.make(
            sample_rate=sample_rate,
            bpm=_check_bpm(bpm),
            beats_per_bar=_check_beats_per_bar(beats_per_bar),
            running=running,
            anchor_sample=0,
            anchor_beat=Fraction(0),
        )

    # -- reading -------------------------------------------------------------------------------

    @property
    def beats_per_bar(self) -> int:
        """Beats in one bar; bar lines stay on multiples of it counted from beat 0."""
        return self.grid.beats_per_bar

    @beats_per_bar.setter
    def beats_per_bar(self, beats_per_bar: int) -> None:
        self.grid = self.grid._replace(beats_per_bar=_check_beats_per_bar(beats_per_bar))

    def beat_at(self, sample: int) -> float:
        """The beat at output sample ``sample`` (see :meth:`TempoGrid.beat_at`)."""
        return self.grid.beat_at(sample)

    def sample_at_beat(self, beat: float | Fraction) -> int:
        """The output sample of beat ``beat`` (see :meth:`TempoGrid.sample_at_beat`)."""
        return self.grid.sample_at_beat(beat)

    def next_boundary(self, sample: int, quantize: str) -> int:
        """The first output sample at or after ``sample`` on the ``quantize`` grid (``"none"``,
        ``"beat"`` or ``"bar"``); see :meth:`TempoGrid.next_boundary`."""
        return self.grid.next_boundary(sample, quantize)

    # -- changing (audio callback thread only) ------------------------------------------------

    def set_tempo(self, bpm: float, at_sample: int) -> None:
        """Change the tempo to ``bpm`` beats per minute from output sample ``at_sample`` on.

        The beat at ``at_sample`` stays where it was (the phase is continuous); beats after it
        follow the new tempo. While stopped, only the tempo changes.
        """
        grid = self.grid
        anchor_sample, anchor_beat = grid.anchor_sample, grid.anchor_beat
        if grid.running:
            anchor_sample, anchor_beat = at_sample, grid.exact_beat_at(at_sample)
        self.grid = TempoGrid.make(
            sample_rate=grid.sample_rate,
            bpm=_check_bpm(bpm),
            beats_per_bar=grid.beats_per_bar,
            running=grid.running,
            anchor_sample=anchor_sample,
            anchor_beat=anchor_beat,
        )

    def shift(self, at_sample: int, beats: Fraction) -> None:
        """Move the grid by ``beats`` from output sample ``at_sample`` on (phase alignment with
        an outside clock): the beat there becomes ``beat + beats``; the tempo stays."""
        grid = self.grid
        if not grid.running:
            return
        self.grid = TempoGrid.make(
            sample_rate=grid.sample_rate,
            bpm=grid.bpm,
            beats_per_bar=grid.beats_per_bar,
            running=True,
            anchor_sample=at_sample,
            anchor_beat=grid.exact_beat_at(at_sample) + beats,
        )

    def start(self, at_sample: int) -> None:
        """Run the clock with beat 0 (where bar 1 begins) at output sample ``at_sample``."""
        self.grid = self.grid._replace(
            running=True,
            anchor_sample=int(at_sample),
            anchor_beat=Fraction(0),
            anchor_beat_float=0.0,
        )

    def resume(self, at_sample: int) -> None:
        """Run the clock again from the beat where it stopped, at output sample ``at_sample``
        (MIDI "continue"); a running clock is left as it is."""
        grid = self.grid
        if grid.running:
            return
        self.grid = grid._replace(running=True, anchor_sample=int(at_sample))

    def stop(self, at_sample: int | None = None) -> None:
        """Stop the clock; the beat freezes where it was at output sample ``at_sample`` (or at
        the last anchor when not given). A stopped clock quantizes nothing: every boundary is
        "now"."""
        grid = self.grid
        if not grid.running:
            return
        beat = grid.anchor_beat if at_sample is None else grid.exact_beat_at(at_sample)
        self.grid = TempoGrid.make(
            sample_rate=grid.sample_rate,
            bpm=grid.bpm,
            beats_per_bar=grid.beats_per_bar,
            running=False,
            anchor_sample=grid.anchor_sample if at_sample is None else at_sample,
            anchor_beat=beat,
        )
