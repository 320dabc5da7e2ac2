"""Where clips land: the output folder a DAW watches, optionally one subfolder per day.

Nothing a request says can place or read a file outside this folder: ``name`` becomes a safe
stem (see :func:`musicldm_core.wavfile.safe_stem`) and ``/musicldm/play`` paths are resolved and
checked to lie inside it. The folder is kept as an absolute path, so every path the daemon
sends, logs or records is absolute whatever folder it was started from.

At start (:meth:`Delivery.prepare`) the folder is created and checked writable, and hidden
temporary files left by a write that was killed half-way are removed: only names of the
writer's own pattern (``.<stem>.<8 hex digits>.partial``), only regular files, only ones last
modified before :data:`STALE_PARTIAL_SECONDS` before the start, in the folder and its day
folders. Nothing else is ever deleted.

Called from the start-up thread (prepare, finding files of an interrupted job), the worker
(folders) and the OSC thread (path checks).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from musicldm_core.errors import BadRequest, NotFound, OutputError

log = logging.getLogger(__name__)

STALE_PARTIAL_SECONDS = 60.0
"""A temporary file untouched this long before the start belongs to no running write (a write
takes well under a second): it is a leftover, and is removed."""

_PARTIAL = re.compile(r"\..+\.[0-9a-f]{8}\.partial")
"""The names :func:`musicldm_core.wavfile.write_wav_atomic` gives its temporary files."""

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

_SEEDED = re.compile(r"[^.].*_s(\d+)(?:-\d+)?\.wav")
"""The names :func:`musicldm_core.wavfile.clip_stem` gives clips: the seed comes last."""

__all__ = ["Delivery"]


class Delivery:
    """The output folder and its rules."""

    def __init__(self, out: Path, *, day_folders: bool = False) -> None:
        self.out = Path(os.path.abspath(Path(out).expanduser()))
        self.day_folders = day_folders

    def prepare(self, *, started: float | None = None) -> list[Path]:
        """Create and check the folder; remove stale temporary files; return what was removed.

        Raises :class:`OutputError` when the folder is a file or cannot be written.
        ``started``: the process's start (Unix time), now by default.
        """
        from musicldm_core.wavfile import ensure_writable

        if self.out.exists() and not self.out.is_dir():
            raise OutputError(
                f"the output folder {self.out} is a file, not a folder; choose another --out"
            )
        ensure_writable(self.out)
        return self.clean_partials(time.time() if started is None else started)

    def clean_partials(self, started: float) -> list[Path]:
        """Remove our temporary files modified before ``started - STALE_PARTIAL_SECONDS``."""
        before = started - STALE_PARTIAL_SECONDS
        folders = [self.out]
        try:
            folders += [p for p in self.out.iterdir() if _DAY.fullmatch(p.name) and p.is_dir()]
        except OSError:
            return []
        removed: list[Path] = []
        for entry in _entries(folders):
            if not _PARTIAL.fullmatch(entry.name):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime >= before:
                    continue  # maybe a write in progress (another daemon, `render`)
                os.unlink(entry.path)
            except OSError as exc:
                log.warning("could not remove the leftover %s: %s", entry.path, exc)
                continue
            removed.append(Path(entry.path))
        if removed:
            log.info(
                "removed %d leftover temporary file(s) of interrupted writes from %s",
                len(removed),
                self.out,
            )
        return removed

    def clips_by_seed(self, since: float) -> dict[int, list[Path]]:
        """WAV files modified at or after ``since`` (Unix time), by the seed their name ends
        with (``…_s<seed>.wav``, ``…_s<seed>-2.wav``, …), from the folders clips of that period
        went to. One scan for a whole recovery, however many jobs it has."""
        folders = [self.out]
        if self.day_folders:
            day = datetime.fromtimestamp(since).date()
            while day <= datetime.now().date():
                folders.append(self.out / day.strftime("%Y-%m-%d"))
                day += timedelta(days=1)
        found: dict[int, list[Path]] = {}
        for entry in _entries(folders):
            match = _SEEDED.fullmatch(entry.name)
            try:
                if (
                    match is None
                    or not entry.is_file(follow_symlinks=False)
                    or entry.stat().st_mtime < since
                ):
                    continue
            except OSError:
                continue
            found.setdefault(int(match.group(1)), []).append(Path(entry.path))
        for paths in found.values():
            paths.sort()
        return found

    def folder_for(self, when: datetime) -> Path:
        """The folder a clip finished at ``when`` goes to."""
        if self.day_folders:
            return self.out / when.strftime("%Y-%m-%d")
        return self.out

    def resolve_inside(self, text: str) -> Path:
        """The existing WAV file ``text`` names, relative to the output folder or absolute, if it
        lies inside the output folder; otherwise :class:`BadRequest` or :class:`NotFound`."""
        root = self.out.resolve()
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = root / candidate
        resolved = candidate.resolve()
        if not resolved.is_relative_to(root):
            raise BadRequest(
                f"path {text!r} lies outside the output folder {root}; only clips inside it "
                "can be played",
                key="path",
            )
        if not resolved.is_file():
            raise NotFound(f"no clip at {resolved}")
        return resolved


def _entries(folders: Iterable[Path]) -> Iterator[os.DirEntry[str]]:
    """The entries of each of ``folders``; one that cannot be listed (missing, unreadable) has
    none. Each folder is listed whole before its first entry is looked at."""
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        yield from entries
