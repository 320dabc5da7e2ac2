"""A pack's folder on disk: which clips exist, writing one atomically, one run at a time.

The files are the truth. A clip exists when its finished WAV is in the pack's folder under the
name :attr:`daemon.pack.plan.ClipJob.relative_path` gives it (the clip's stable id is the last
part of the name); a file appears only complete (written under a hidden ``.partial`` name,
flushed, then renamed into place with ``os.replace``), so a run killed at any moment leaves
either the whole clip or a ``.partial`` file that is never counted and is removed by the next
run. Writing a clip whose file exists replaces it with the same clip: never a second file.

A lock file (``.pack.lock``, ``flock``) keeps two runs of one pack from working at once.
Used by :mod:`daemon.pack.run` (and by Ray actors writing into a shared folder).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from musicldm_core.errors import OutputError

__all__ = ["existing_clips", "pack_lock", "remove_partials", "write_atomic"]

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
LOCK_NAME = ".pack.lock"


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that it appears complete or not at all; returns ``path``.

    The folder is created if needed. :class:`OutputError` names the file and the system's
    reason (a full disk, say); the partial file is removed then.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        reason = error.strerror or str(error)
        raise OutputError(f"cannot write {path}: {reason}") from error
    return path


def clip_id_of(path: Path) -> str | None:
    """The clip id a pack file's name carries (the part after the last ``_``), or None."""
    if path.name.startswith(".") or path.suffix != ".wav":
        return None
    _, sep, tail = path.stem.rpartition("_")
    return tail if sep and tail else None


def existing_clips(folder: Path) -> dict[str, Path]:
    """Clip id -> file for every finished clip file under the pack ``folder``."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*.wav")):
        clip = clip_id_of(path)
        if clip is not None and path.is_file():
            found[clip] = path
    return found


def remove_partials(folder: Path) -> int:
    """Remove what killed runs left half-written under ``folder``; returns how many."""
    removed = 0
    if not folder.is_dir():
        return removed
    for path in folder.rglob(f".*{PARTIAL_SUFFIX}"):
        try:
            path.unlink()
            removed += 1
        except OSError as error:
            log.warning("could not remove the partial file %s: %s", path, error)
    return removed


@contextlib.contextmanager
def pack_lock(folder: Path) -> Iterator[None]:
    """Hold the pack folder's lock for a run; :class:`OutputError` when another run holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one run at a time is the user's to keep
        yield
        return
    with open(folder / LOCK_NAME, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(
                f"another `musicldm-daemon pack` run is writing {folder}; wait for it to end"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
