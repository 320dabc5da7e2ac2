"""Rendering a pack's clips with one loaded engine: what a local run and every Ray actor do.

The same engine and batching as the daemon's worker: clips whose settings share a
:func:`musicldm_core.render.batch_key` (frames, steps, scheduler, guidance mode) go through the
UNet together, at most ``max_batch`` at a time (the daemon's rule: 8 on a GPU, 4 on the CPU);
each is finished (grid-conformed, looped, levelled) by :func:`musicldm_core.render.render_batch`
and tagged as the daemon tags its clips (ACID tempo, ``smpl`` loop, INFO with every setting).
Each clip is one take (its own seed), so it is also scored against its prompt with CLAP here:
the manifest's ``score``.

:func:`render_group` returns the finished files as bytes; the caller writes them (the driver
locally or when the output folder is not shared, the actor itself when it is).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from daemon.pack.plan import ClipJob

if TYPE_CHECKING:
    from musicldm_core.engine import Engine

__all__ = ["Rendered", "batch_size_for", "group_jobs", "render_group"]

log = logging.getLogger(__name__)

GPU_BATCH = 8
CPU_BATCH = 4
"""Clips per UNet batch, as the daemon's ``[model] max_batch`` default."""


@dataclass(frozen=True)
class Rendered:
    """One finished clip: its id, the WAV file's bytes and the settings its file carries."""

    clip_id: str
    data: bytes | None
    """None when the worker wrote the file itself (into a shared output folder)."""
    settings: dict[str, Any]


def batch_size_for(gpu: bool) -> int:
    return GPU_BATCH if gpu else CPU_BATCH


def _driver_key(job: ClipJob) -> tuple[Any, ...]:
    """A batch key the driver can compute without a model (the real model's frame layout);
    :func:`render_group` splits a group again by the engine's own :func:`batch_key`."""
    from musicldm_core.render import batch_key, plan_clip

    return batch_key(job.spec, plan_clip(job.spec))


def group_jobs(jobs: Sequence[ClipJob], max_batch: int) -> list[list[ClipJob]]:
    """``jobs`` in groups of at most ``max_batch`` that can share a UNet batch, plan order kept
    within each group; groups in the order of their first job."""
    by_key: dict[tuple[Any, ...], list[ClipJob]] = {}
    for job in jobs:
        by_key.setdefault(_driver_key(job), []).append(job)
    groups = []
    for members in by_key.values():
        for start in range(0, len(members), max(1, max_batch)):
            groups.append(members[start : start + max_batch])
    first = {job.clip_id: n for n, job in enumerate(jobs)}
    return sorted(groups, key=lambda group: first[group[0].clip_id])


def _engine_batches(engine: Engine, jobs: Sequence[ClipJob]) -> Iterator[list[ClipJob]]:
    from musicldm_core.render import batch_key, plan_clip

    by_key: dict[tuple[Any, ...], list[ClipJob]] = {}
    for job in jobs:
        plan = plan_clip(
            job.spec, model_rate=engine.model_rate, hop=engine.hop, frame_multiple=engine.vae_factor
        )
        by_key.setdefault(batch_key(job.spec, plan), []).append(job)
    yield from by_key.values()


def render_group(engine: Engine, jobs: Sequence[ClipJob], *, when: datetime) -> list[Rendered]:
    """Render ``jobs`` (one :func:`group_jobs` group) and return their finished files.

    ``when`` dates the files' INFO tags (the pack run's day), so the same clip made by another
    process the same day has the same bytes.
    """
    from musicldm_core.dsp import resample
    from musicldm_core.render import clip_tags, render_batch
    from musicldm_core.wavfile import encode_wav

    out: list[Rendered] = []
    for batch in _engine_batches(engine, jobs):
        results = render_batch(engine, [job.spec for job in batch])
        for job, clips in zip(batch, results, strict=True):
            clip = clips[0]  # one take per clip: the pack's takes are clips of their own
            wave = resample(clip.audio, clip.plan.out_rate, engine.model_rate)
            score = engine.score(job.spec.prompt, [wave])[0]
            clip.score = score if math.isfinite(score) else None
            data = encode_wav(
                clip.audio, clip.plan.out_rate, job.spec.sample_format, clip_tags(clip, when=when)
            )
            # through JSON, as a later run reads it back from the file's INFO comment
            settings = json.loads(json.dumps(clip.settings(), sort_keys=True))
            out.append(Rendered(job.clip_id, data, settings))
    return out
