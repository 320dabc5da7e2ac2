"""Where input audio may come from: the sandbox of the ``from`` and ``like`` options.

A request names input audio (the clip to vary, repaint or continue; the reference clip of
``like``) by a clip id from the library, or by a file path. :class:`InputSandbox` turns that into
the absolute path of an audio file the daemon may read, or refuses it with ``bad_request``
naming the value and the folders that are allowed:

- a clip id (an int, or text with no ``/`` and no file suffix, as ``/musicldm/play`` reads its
  target): the library's newest clip with that job id;
- a path, absolute or relative: the file must lie inside the output folder or inside one of
  the folders the user allowed (``--input-dir``, ``[input] folders``) *after* symlinks and
  ``..`` are resolved, so a link or an escape pointing elsewhere is refused. A relative path is
  looked for in the output folder first, then in each input folder in order.

Nothing is opened before the containment check passes; then ``soundfile.info`` reads the file's
header to refuse what is not audio. The daemon calls :meth:`InputSandbox.resolve` while it
builds a spec, before the job is journaled, so the journal (and recovery after a restart)
holds the resolved absolute path and :mod:`musicldm_core` only ever gets checked paths.

The ``render`` CLI reads whatever file the user names on its command line (the user typed it);
it uses this sandbox only when given ``--input-dir`` (see :mod:`daemon.cli`).

Called from the OSC and live threads; holds no state but the folders; thread-safe.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from musicldm_core.errors import BadRequest

__all__ = ["InputSandbox", "file_problem", "looks_like_path"]


class _Clip(Protocol):
    @property
    def path(self) -> str: ...


ClipFinder = Callable[[int | str], _Clip | None]
"""The library's newest clip of a job id (:meth:`daemon.jobs.journal.Journal.find_clip`)."""


def looks_like_path(text: str) -> bool:
    """Whether a text ``from``/``like`` value names a file rather than a clip id: it has a
    ``/`` or a file suffix with a letter (``.wav``, ``.mp3``; not the ``.1`` of a slot take's
    id ``slot3.1``), as ``/musicldm/play`` reads its target."""
    suffix = Path(text).suffix
    return "/" in text or "\\" in text or text.startswith("~") or any(c.isalpha() for c in suffix)


class InputSandbox:
    """The folders input audio may be read from, and the library to look clip ids up in."""

    def __init__(
        self,
        out: Path,
        input_dirs: Sequence[Path] = (),
        clips: ClipFinder | None = None,
        *,
        anywhere: bool = False,
        base: Path | None = None,
    ) -> None:
        """``anywhere``: any file path is allowed (the ``render`` CLI without ``--input-dir``:
        the user typed the path); clip ids and the audio check stay the same. ``base``: where
        a relative path starts with ``anywhere`` (default the current folder; a pack file's
        folder for ``pack``)."""
        # resolved once: the containment check compares resolved paths with resolved roots
        self.roots = tuple(
            dict.fromkeys(Path(p).expanduser().resolve() for p in (out, *input_dirs))
        )
        self._clips = clips
        self.anywhere = anywhere
        self.base = base

    def describe(self) -> str:
        """The allowed sources, for error messages."""
        if self.anywhere:
            return "input audio must be a clip id from the library or an audio file"
        out, *dirs = self.roots
        where = f"the output folder {out}"
        if dirs:
            where += " or an input folder (" + ", ".join(str(d) for d in dirs) + ")"
        else:
            where += " (start the daemon with --input-dir FOLDER to allow another folder)"
        return f"input audio must be a clip id from the library or a file inside {where}"

    def _refuse(self, key: str, value: Any, problem: str) -> BadRequest:
        return BadRequest(f"{key} {value!r}: {problem}; {self.describe()}", key=key)

    def resolve(self, key: str, value: Any) -> str:
        """The absolute path of the audio file ``value`` names (a clip id or a path), or
        :class:`BadRequest` naming ``key``, the value and the allowed sources."""
        try:
            return self._resolve(key, value)
        except (OSError, RuntimeError) as exc:
            # a name longer than the file system allows, a symlink loop (RuntimeError before
            # Python 3.13): no file to read, and the request's fault, not the daemon's
            problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise self._refuse(key, value, f"is no readable path ({problem})") from None

    def _resolve(self, key: str, value: Any) -> str:
        if isinstance(value, bool):
            raise self._refuse(key, value, "is neither a clip id nor a file path")
        if isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                raise self._refuse(key, value, "is neither a clip id nor a file path")
            value = int(value)
        if isinstance(value, int):
            return str(self._clip(key, value))
        if not isinstance(value, str) or not value.strip():
            raise self._refuse(key, value, "is neither a clip id nor a file path")
        text = value.strip()
        if not looks_like_path(text):
            clip_id: int | str = int(text) if _is_int_text(text) else text
            return str(self._clip(key, clip_id, given=value))
        return str(self._file(key, text, given=value))

    def _clip(self, key: str, clip_id: int | str, *, given: Any = None) -> Path:
        given = clip_id if given is None else given
        record = self._clips(clip_id) if self._clips is not None else None
        if record is None:
            raise self._refuse(key, given, f"no clip in the library has id {clip_id!r}")
        recorded = Path(record.path)
        resolved = recorded.resolve()
        # A library clip is where the daemon (or `render`) wrote it; if the file there has
        # since become a link to somewhere else, only the allowed folders may hold its target.
        if resolved != recorded and not (self.anywhere or self._inside(resolved)):
            raise self._refuse(key, given, f"the clip's file {recorded} links outside")
        return self._audio(key, given, resolved)

    def _file(self, key: str, text: str, *, given: Any) -> Path:
        path = Path(text).expanduser()
        if self.anywhere:
            if self.base is not None and not path.is_absolute():
                path = self.base / path
            return self._audio(key, given, Path(os.path.abspath(path)).resolve())
        candidates = [path] if path.is_absolute() else [root / path for root in self.roots]
        inside = [c.resolve() for c in candidates if self._inside(c.resolve())]
        if not inside:
            raise self._refuse(key, given, "lies outside the allowed folders")
        for resolved in inside:
            if resolved.is_file():
                return self._audio(key, given, resolved)
        raise self._refuse(key, given, file_problem(inside[0]) or f"no such file ({inside[0]})")

    def _inside(self, resolved: Path) -> bool:
        return any(resolved.is_relative_to(root) for root in self.roots)

    def _audio(self, key: str, given: Any, resolved: Path) -> Path:
        import soundfile  # here: the daemon's import stays light

        problem = file_problem(resolved)
        if problem is not None:
            raise self._refuse(key, given, problem)
        try:
            info = soundfile.info(str(resolved))
        except (OSError, RuntimeError, soundfile.SoundFileError) as exc:
            raise self._refuse(key, given, f"{resolved} is not an audio file ({exc})") from None
        if info.frames <= 0:
            raise self._refuse(key, given, f"{resolved} holds no audio")
        return resolved


def file_problem(path: Path) -> str | None:
    """Why ``path`` is no regular file to read (None: it is one), found without opening it: a
    FIFO or a device would block the reader. A name the system refuses (too long, a symlink
    loop) is a problem too, not an exception."""
    try:
        if path.is_file():
            return None
        if path.is_dir():
            return f"{path} is a folder"
        if path.exists():
            return f"{path} is not a regular file (a FIFO, socket or device)"
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop before Python 3.13
        return f"{path} is no readable path ({getattr(exc, 'strerror', None) or exc})"
    return f"no such file ({path})"


def _is_int_text(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isdigit()
