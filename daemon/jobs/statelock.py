"""One daemon per state folder: an exclusive lock on ``<state>/daemon.lock``, held for the
daemon's life.

Two daemons on one state folder would hand out the same job ids and both render the jobs the
journal holds unfinished, so the second one must refuse to start. The lock is an OS file lock
(``flock`` on POSIX, ``msvcrt.locking`` on Windows): the OS drops it when the process ends, however
it ends (``kill -9`` included), so a stale lock file never blocks a restart. The file holds the
owner's process id, for the refusal's message; it is never deleted (deleting a lock file races
with the next daemon opening it).

Taken and released on the start-up thread (:class:`daemon.app.daemon.Daemon`); ``musicldm-daemon
clips`` and ``render`` read and write the journal without it (SQLite guards the file itself).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from musicldm_core.errors import OutputError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

__all__ = ["LOCK_NAME", "StateLock"]

LOCK_NAME = "daemon.lock"


class StateLock:
    """The lock of the state folder ``folder``; :meth:`acquire` raises if another process has
    it."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our pid, or raise :class:`OutputError` naming the holder."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(
                f"cannot open the lock file {self.path}: {exc.strerror or exc}"
            ) from exc
        try:
            _lock(fd)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise OutputError(
                f"the state folder {self.path.parent} is in use by another musicldm-daemon "
                f"({who}, see {self.path}); stop it first, or give this one its own --state"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is only for the message; the lock is what counts
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the OS also drops it when the process ends). Harmless twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # lock one byte far past the pid, so others can still read the pid
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        os.lseek(fd, 0, os.SEEK_SET)


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
