"""Beat math: from bars, beats and tempo to exact sample and mel-frame counts.

Pure functions on numbers, used by the render pipeline (how much to render, where to cut) and by
the daemon's transport (where the next beat or bar falls). Exact arithmetic (``fractions``) is used
where a length is decided, so the same request always gives the same sample count on every
machine: ``round(bars * beats * 60 / bpm * rate)`` computed without float error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .units import Frames, SampleRate, Samples, Seconds

__all__ = [
    "MODEL_HOP",
    "MODEL_RATE",
    "RenderPlan",
    "beat_samples",
    "clip_samples",
    "frames_for_samples",
    "plan_render",
    "seconds_samples",
]

MODEL_RATE = SampleRate(16000)
"""MusicLDM's own sample rate (Hz)."""

MODEL_HOP = 160
"""Vocoder samples per mel frame at :data:`MODEL_RATE` (100 frames per second)."""


def _exact(value: float) -> Fraction:
    # Fraction(float) is exact; limit_denominator undoes the binary noise of decimal tempos such
    # as 92.3 so that 92.3 BPM means 923/10 and not 92.299999999999997.
    return Fraction(value).limit_denominator(1_000_000)


def clip_samples(*, bars: int, beats_per_bar: int, bpm: float, sample_rate: int) -> Samples:
    """Samples in ``bars`` bars of ``beats_per_bar`` beats at ``bpm``, at ``sample_rate`` Hz.

    ``round(bars * beats_per_bar * 60 / bpm * sample_rate)`` in exact arithmetic (ties to even,
    as Python's ``round``).
    """
    return Samples(round(Fraction(bars * beats_per_bar * 60 * sample_rate) / _exact(bpm)))


def seconds_samples(seconds: float, sample_rate: int) -> Samples:
    """Samples in ``seconds`` at ``sample_rate`` Hz: ``round(seconds * sample_rate)``."""
    return Samples(round(_exact(seconds) * sample_rate))


def beat_samples(bpm: float, sample_rate: int) -> Fraction:
    """The exact (fractional) number of samples in one beat; the transport keeps it fractional
    so that beat n falls at ``round(n * beat_samples)`` without drift over a long set."""
    return Fraction(60 * sample_rate) / _exact(bpm)


def frames_for_samples(
    samples: int, *, hop: int = MODEL_HOP, multiple: int = 4, min_frames: int = 32
) -> Frames:
    """Mel frames the model must render to cover ``samples`` samples at its own rate.

    ``ceil(samples / hop)`` rounded up to a multiple of the VAE's factor (upstream truncates
    instead, and so can return fewer samples than asked), and at least ``min_frames`` so the
    UNet's downsampling always has something to work on; the result is trimmed afterwards.
    """
    frames = max(math.ceil(samples / hop), min_frames)
    return Frames(math.ceil(frames / multiple) * multiple)


@dataclass(frozen=True)
class RenderPlan:
    """How much to render for one clip and how to cut it.

    ``out_samples`` is the clip's exact length at ``out_rate``. For a loop the model renders
    ``crossfade_samples`` more (the music's continuation past the loop end, crossfaded into the
    head), plus ``margin_samples`` so the resampler never sees the end of the rendered audio
    inside the part that is kept.
    """

    out_samples: Samples
    out_rate: SampleRate
    crossfade_samples: Samples
    margin_samples: Samples
    model_samples: Samples
    frames: Frames
    loop: bool

    @property
    def seconds(self) -> Seconds:
        return Seconds(self.out_samples / self.out_rate)

    @property
    def needed_samples(self) -> Samples:
        """Samples at ``out_rate`` the post-processing needs before cutting."""
        tail = self.crossfade_samples if self.loop else 0
        return Samples(self.out_samples + tail)


def plan_render(
    *,
    out_samples: int,
    out_rate: int,
    loop: bool,
    crossfade_seconds: float = 0.04,
    margin_seconds: float = 0.05,
    model_rate: int = MODEL_RATE,
    hop: int = MODEL_HOP,
    frame_multiple: int = 4,
    min_frames: int = 32,
) -> RenderPlan:
    """Plan the render of a clip of exactly ``out_samples`` samples at ``out_rate`` Hz.

    The crossfade is at most a quarter of the clip, so very short loops keep most of their body.
    """
    if out_samples <= 0:
        raise ValueError(f"a clip needs at least one sample, got {out_samples}")
    crossfade = min(round(crossfade_seconds * out_rate), out_samples // 4) if loop else 0
    margin = round(margin_seconds * out_rate)
    needed_out = out_samples + crossfade + margin
    model_samples = math.ceil(Fraction(needed_out * model_rate, out_rate))
    frames = frames_for_samples(
        model_samples, hop=hop, multiple=frame_multiple, min_frames=min_frames
    )
    return RenderPlan(
        out_samples=Samples(out_samples),
        out_rate=SampleRate(out_rate),
        crossfade_samples=Samples(crossfade),
        margin_samples=Samples(margin),
        model_samples=Samples(model_samples),
        frames=frames,
        loop=loop,
    )
