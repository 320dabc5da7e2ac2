"""Where clips land: the output folder a DAW watches, optionally one subfolder per day.

Nothing a request says can place or read a file outside this folder: ``name`` becomes a safe
stem (see :func:`musicldm_core.wavfile.safe_stem`) and ``/musicldm/play`` paths are resolved and
checked to lie inside it. Called from the worker (folders) and the OSC thread (path checks).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from musicldm_core.errors import BadRequest, NotFound

__all__ = ["Delivery"]


class Delivery:
    """The output folder and its rules."""

    def __init__(self, out: Path, *, day_folders: bool = False) -> None:
        self.out = Path(out).expanduser()
        self.day_folders = day_folders

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
