"""Noise for the sampling loop: seeded draws, their slerp, and a scheduler's noise levels.

Pure tensor functions used by :mod:`.engine`, kept on the CPU on purpose: the draws come from
CPU generators (take k of seed s is the same on every device), the slerp reads its angle back
(a sync on a GPU, so it runs before the one copy to the device), and the noise levels of
``scheduler.add_noise`` are CPU scalars that multiply device tensors without a copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["draws", "noise_levels", "slerp"]


def noise_levels(scheduler: Any, timestep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(signal, spread): ``scheduler.add_noise(x, n, timestep) == signal * x + spread * n``, as
    CPU scalars, for a CPU ``timestep`` of one element.

    Every diffusers scheduler's ``add_noise`` is linear in the sample and the noise, so it is
    evaluated here on CPU ones and zeros. Called on device latents it copies its tables and the
    timestep to the device on each call (a host-device sync each on a GPU, every step of a
    repaint); CPU scalars times device tensors need no copy. The result is the same arithmetic:
    bit for bit on the CPU in float32.
    """
    one, zero = torch.ones(1), torch.zeros(1)
    signal = scheduler.add_noise(one, zero, timestep).reshape(())
    spread = scheduler.add_noise(zero, one, timestep).reshape(())
    return signal, spread


def draws(seeds: Sequence[int], shape: Sequence[int]) -> torch.Tensor:
    """One standard normal draw of ``shape`` per seed, from its own CPU generator, float32."""
    return torch.cat(
        [
            torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s), dtype=torch.float32)
            for s in seeds
        ]
    )


def slerp(a: torch.Tensor, b: torch.Tensor, position: float) -> torch.Tensor:
    """Spherical interpolation from ``a`` (``position`` 0, returned as is) to ``b`` (1): keeps
    Gaussian noise at its norm, where a straight mix of two draws would be quieter noise."""
    if position <= 0.0:
        return a
    if position >= 1.0:
        return b
    a32, b32 = a.float(), b.float()
    cos = torch.sum(a32 * b32) / (a32.norm() * b32.norm())
    angle = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(angle) < 1e-4:  # (nearly) the same draw: a straight mix is as good
        out = (1.0 - position) * a32 + position * b32
    else:
        sin = torch.sin(angle)
        out = (torch.sin((1.0 - position) * angle) * a32 + torch.sin(position * angle) * b32) / sin
    return out.to(a.dtype)
