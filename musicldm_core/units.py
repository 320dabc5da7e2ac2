"""Named unit types, so that a signature says what its numbers mean.

They are plain ``NewType`` aliases: free at run time, checked by mypy.
"""

from __future__ import annotations

from typing import NewType

__all__ = ["Bpm", "Frames", "SampleRate", "Samples", "Seconds"]

Seconds = NewType("Seconds", float)
"""A duration in seconds."""

Bpm = NewType("Bpm", float)
"""A tempo in beats (quarter notes, or the meter's beat) per minute."""

Samples = NewType("Samples", int)
"""A count of audio samples per channel, at some stated sample rate."""

Frames = NewType("Frames", int)
"""A count of mel-spectrogram frames (100 per second for MusicLDM: hop 160 at 16 kHz)."""

SampleRate = NewType("SampleRate", int)
"""Samples per second (Hz)."""
