"""Failure codes that only the daemon raises; the rest live in :mod:`musicldm_core.errors`.

::

    MusicLDMError (musicldm_core.errors)
    ├── QueueFull          queue_full        the job queue is at its bound
    ├── ShuttingDown       shutting_down     the daemon is stopping and takes no new work
    └── UnknownAddress     unknown_address   no such OSC address
"""

from __future__ import annotations

from musicldm_core.errors import MusicLDMError

__all__ = ["QueueFull", "ShuttingDown", "UnknownAddress"]


class QueueFull(MusicLDMError):
    code = "queue_full"


class ShuttingDown(MusicLDMError):
    code = "shutting_down"


class UnknownAddress(MusicLDMError):
    code = "unknown_address"
