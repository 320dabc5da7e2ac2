"""One run of a pack: find what exists, render what is missing, keep the manifest in step.

The driver of ``musicldm-daemon pack`` (:mod:`daemon.cli`). It takes the pack folder's lock,
removes what a killed run left half-written, counts the clips already there (their ids are in
their names: :mod:`daemon.pack.output`) and rebuilds the manifest from them, then hands the
missing clips, in batch groups (:func:`daemon.pack.local.group_jobs`), to a backend: the local
one (:class:`LocalBackend`, one engine in this process) or Ray
(:class:`daemon.pack.ray_backend.RayBackend`). Each finished clip is written (unless the backend
wrote it into a shared folder) and its manifest row added as it arrives, so a run stopped at any
point is resumed by running it again: exactly the missing clips are made, never a second file.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from daemon.pack.local import Rendered, batch_size_for, group_jobs, render_group
from daemon.pack.manifest import Manifest
from daemon.pack.output import existing_clips, pack_lock, remove_partials, write_atomic
from daemon.pack.plan import ClipJob, PackPlan

__all__ = ["Backend", "LocalBackend", "Summary", "run_pack"]

log = logging.getLogger(__name__)

Deliver = Callable[[ClipJob, Rendered], None]
Fail = Callable[[ClipJob, str], None]


class Backend(Protocol):
    """Renders groups of clips and hands each finished one to ``deliver`` (or a failure)."""

    max_batch: int

    def run(
        self, groups: Sequence[Sequence[ClipJob]], deliver: Deliver, fail: Fail, when: datetime
    ) -> None: ...


class LocalBackend:
    """One engine in this process, loaded on first use (not at all when nothing is missing)."""

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        dtype: str | None = None,
        engine: Any = None,
    ) -> None:
        """``engine``: one already loaded (of ``model``) to use instead of loading it."""
        self.model = model
        self.device = device
        self.dtype = dtype
        self._engine: Any = engine
        gpu = (device or "").startswith("cuda") if engine is None else engine.device.type == "cuda"
        self.max_batch = batch_size_for(gpu=gpu)

    def engine(self) -> Any:
        if self._engine is None:
            from musicldm_core.engine import Engine
            from musicldm_core.loading import quiet_libraries

            quiet_libraries()
            self._engine = Engine.load(self.model, device=self.device, dtype=self.dtype)
            self.max_batch = batch_size_for(gpu=self._engine.device.type == "cuda")
        return self._engine

    def run(
        self, groups: Sequence[Sequence[ClipJob]], deliver: Deliver, fail: Fail, when: datetime
    ) -> None:
        from musicldm_core.errors import BadRequest, ModelError

        engine = self.engine()
        for group in groups:
            try:
                rendered = render_group(engine, group, when=when)
            except (BadRequest, ModelError) as exc:  # this group's clips, not the whole run
                for job in group:
                    fail(job, str(exc))
                continue
            by_id = {job.clip_id: job for job in group}
            for result in rendered:
                deliver(by_id[result.clip_id], result)


@dataclass
class Summary:
    """What a run did."""

    folder: Path
    planned: int
    skipped: int = 0
    rendered: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    stray: int = 0
    """Clip files in the folder that this pack file does not make (left alone)."""
    partials: int = 0

    def lines(self) -> list[str]:
        rate = self.rendered / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"{self.folder}: {self.planned} clips planned, {self.rendered} rendered "
            f"({self.seconds:.1f} s, {rate:.2f} clips/s), {self.skipped} already there",
        ]
        if self.partials:
            out.append(f"removed {self.partials} partial files a stopped run left")
        if self.stray:
            out.append(
                f"{self.stray} clip files in the folder are not in this pack (left alone, "
                "not in the manifest)"
            )
        for clip_id, message in self.failed:
            out.append(f"failed {clip_id}: {message}")
        if self.failed:
            out.append(f"{len(self.failed)} clips failed; run the pack again to retry them")
        return out


def _file_settings(path: Path) -> dict[str, Any] | None:
    """The settings a clip file carries (its INFO comment), or None if it cannot be read."""
    from musicldm_core.wavfile import read_clip_info

    try:
        comment = read_clip_info(path)["info"].get("comment")
        settings = json.loads(comment) if comment else None
    except (OSError, ValueError):
        return None
    return settings if isinstance(settings, dict) else None


def run_pack(
    plan: PackPlan,
    out_dir: Path,
    backend: Backend,
    *,
    progress: bool = True,
    report: Callable[[str], None] = lambda line: None,
    after_clip: Callable[[int], None] | None = None,
) -> Summary:
    """Make the clips of ``plan`` missing from ``out_dir/<pack slug>``; returns the summary.

    ``report`` gets the lines a user should read (what was skipped, the summary);
    ``after_clip(n)`` is called after the n-th clip of this run is written (tests).
    """
    folder = Path(out_dir) / plan.slug
    summary = Summary(folder=folder, planned=len(plan.jobs))
    with pack_lock(folder):
        summary.partials = remove_partials(folder)
        manifest = Manifest(plan, folder)
        found = existing_clips(folder)
        planned_ids = {job.clip_id for job in plan.jobs}
        summary.stray = len(set(found) - planned_ids)
        todo: list[ClipJob] = []
        for job in plan.jobs:
            path = found.get(job.clip_id)
            settings = None if path is None else _file_settings(path)
            if path is None or settings is None:
                todo.append(job)
                continue
            manifest.add(job, path.relative_to(folder).as_posix(), settings)
        summary.skipped = len(plan.jobs) - len(todo)
        manifest.write()
        if summary.skipped:
            report(f"skipping {summary.skipped} clips already in {folder}")
        if not todo:
            report(f"nothing to render: all {summary.planned} clips are there")
            return summary
        bar = _progress(progress, len(todo))
        started = time.perf_counter()

        def deliver(job: ClipJob, result: Rendered) -> None:
            target = folder / job.relative_path
            if result.data is not None:
                write_atomic(target, result.data)
            manifest.add(job, job.relative_path.as_posix(), result.settings)
            manifest.write()
            summary.rendered += 1
            if bar is not None:
                bar.update(1)
            if after_clip is not None:
                after_clip(summary.rendered)

        def fail(job: ClipJob, message: str) -> None:
            log.warning("clip %s (%r) failed: %s", job.clip_id, job.spec.prompt, message)
            summary.failed.append((job.clip_id, message))
            if bar is not None:
                bar.update(1)

        groups = group_jobs(todo, backend.max_batch)
        when = datetime.now()
        try:
            backend.run(groups, deliver, fail, when)
        except BaseException:
            summary.seconds = time.perf_counter() - started
            if bar is not None:
                bar.close()
            left = summary.planned - summary.skipped - summary.rendered
            report(f"stopped with {left} clips to go; run the same command again to resume")
            raise
        summary.seconds = time.perf_counter() - started
        if bar is not None:
            bar.close()
    return summary


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="pack", unit="clip", file=sys.stderr, dynamic_ncols=True)
