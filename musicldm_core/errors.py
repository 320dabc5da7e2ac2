"""The error tree shared by the engine and the daemon.

Every failure a user can see carries a stable ``code`` (the OSC contract's failure codes) and a
human message that names what was wrong and what is allowed. Exactly one place in the daemon
turns these into ``/musicldm/fail id code message``; the CLI turns them into an exit status.

::

    MusicLDMError                 (code "error")
    ├── BadRequest                bad_request      a value out of range, wrong type, unknown key
    ├── NotFound                  not_found        no such job, clip or file
    ├── Cancelled                 cancelled        the job was cancelled before it finished
    ├── OutOfMemory               out_of_memory    the device ran out of memory for this job
    ├── ModelError                model_error      the model failed to load or to run
    │   └── WeightsNotFound       model_error      weights missing and the hub unreachable
    └── OutputError               io_error         the clip could not be written

The daemon adds ``queue_full``, ``shutting_down`` and ``unknown_address`` in ``daemon.errors``.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Cancelled",
    "ModelError",
    "MusicLDMError",
    "NotFound",
    "OutOfMemory",
    "OutputError",
    "WeightsNotFound",
]


class MusicLDMError(Exception):
    """Base of every error with a stable failure code."""

    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequest(MusicLDMError):
    """A request or setting is invalid. ``key`` names the offending option, when there is one."""

    code = "bad_request"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class NotFound(MusicLDMError):
    code = "not_found"


class Cancelled(MusicLDMError):
    code = "cancelled"

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


class OutOfMemory(MusicLDMError):
    code = "out_of_memory"


class ModelError(MusicLDMError):
    code = "model_error"


class WeightsNotFound(ModelError):
    """The model weights are not on disk and could not be downloaded."""


class OutputError(MusicLDMError):
    code = "io_error"
