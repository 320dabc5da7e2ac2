"""``manifest.csv`` and ``manifest.json``: what a sample manager reads about a pack's clips.

One row per clip file, in the pack's order, built from the plan (prompt, tags, take) and from
the settings the clip's file carries in its INFO comment (tempo, length, seed, CLAP score, grid
fit, duration): the same dict whether the clip was just rendered or found from an earlier run,
so a re-run rebuilds exactly the rows of the files there are. Both files are rewritten whole
and atomically (:func:`daemon.pack.output.write_atomic`) as clips arrive, so they never list a
file that does not exist, and a run killed between a clip's file and its row gets the row back
on the next run. Columns: docs/packs.md, "Manifest".
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon.pack.output import write_atomic
from daemon.pack.plan import ClipJob, PackPlan

__all__ = ["COLUMNS", "Manifest", "manifest_row"]

COLUMNS = (
    "id",
    "path",
    "prompt",
    "tags",
    "bpm",
    "bars",
    "seconds",
    "seed",
    "take",
    "score",
    "grid_fit",
    "grid_error_ms",
    "detected_bpm",
    "duration",
    "samples",
    "sample_rate",
    "settings",
)
"""The manifest's columns, in order. ``seconds`` is the length asked for (empty for a clip in
bars); ``duration`` is the file's; ``grid_fit`` is 1 when the conform put the beats on the
grid; ``settings`` is every setting that made the clip (JSON)."""


def manifest_row(job: ClipJob, path: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest row of ``job``'s clip at ``path`` (relative to the pack folder)."""
    grid = settings.get("grid") or {}
    detected = grid.get("detected") or {}
    error = grid.get("grid_error_ms")
    return {
        "id": job.clip_id,
        "path": path,
        "prompt": job.spec.prompt,
        "tags": list(job.tags),
        "bpm": job.spec.bpm,
        "bars": job.spec.grid_bars,
        "seconds": job.spec.seconds,
        "seed": settings.get("seed", job.spec.seed),
        "take": job.take,
        "score": settings.get("score"),
        "grid_fit": error is not None,
        "grid_error_ms": error,
        "detected_bpm": detected.get("tempo_bpm"),
        "duration": settings.get("seconds"),
        "samples": settings.get("samples"),
        "sample_rate": settings.get("sample_rate"),
        "settings": dict(settings),
    }


def _csv_value(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "tags":
        return ";".join(value)
    if key == "settings":
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}" if key == "bpm" else repr(value)
    return str(value)


class Manifest:
    """The rows of a pack's clips, kept in the plan's order, written on :meth:`write`."""

    def __init__(self, plan: PackPlan, folder: Path) -> None:
        self.plan = plan
        self.folder = folder
        self._order = {job.clip_id: n for n, job in enumerate(plan.jobs)}
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, job: ClipJob, path: str, settings: Mapping[str, Any]) -> None:
        self.rows[job.clip_id] = manifest_row(job, path, settings)

    def ordered(self) -> list[dict[str, Any]]:
        return sorted(self.rows.values(), key=lambda row: self._order[row["id"]])

    def write(self) -> None:
        """Rewrite ``manifest.csv`` and ``manifest.json`` (each atomically)."""
        rows = self.ordered()
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_csv_value(key, row[key]) for key in COLUMNS])
        write_atomic(self.folder / "manifest.csv", text.getvalue().encode("utf-8"))
        document = {
            "pack": self.plan.name,
            "model": self.plan.model,
            "planned": len(self.plan.jobs),
            "clips": rows,
        }
        blob = json.dumps(document, indent=1, sort_keys=False).encode("utf-8")
        write_atomic(self.folder / "manifest.json", blob)
