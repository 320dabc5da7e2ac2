"""Samplers by name, built from the checkpoint's own scheduler config, valid for 1..1000 steps.

Used by :mod:`.engine`: a fresh scheduler per batch (multistep solvers keep state between steps).
The names are listed, torch-free, in :data:`musicldm_core.spec.SCHEDULER_NAMES`.

Timesteps. Every sampler follows the checkpoint's schedule (``leading`` spacing with
``steps_offset`` 1, what diffusers' pipelines and the upstream MusicLDM pipeline use) wherever that
schedule is sound: every timestep inside the training range 0..999 and, for the samplers that step
from timestep to timestep, no timestep visited twice. Near the top of the documented range it is
not: at 1000 steps ``leading`` puts the first DDIM/Euler/Heun timestep at 1000 (one past the
training schedule, an IndexError in DDIM); for DPM-Solver++ and UniPC (spacing ``1000 // (steps +
1)``) 999 steps start at 1000, whose noise level is clamped to 999's, so the solver takes a step
of zero length and divides by it (NaN), and 1000 steps put every timestep at 1. There the
``trailing`` spacing is used instead, which at 999 and 1000 steps visits 999, 998, ... down to 1
or 0: each training timestep at most once, from the top. :func:`prepare_scheduler` checks the
schedule it built and refuses one that is still unsound instead of sampling garbage.

Karras sigmas are spaced by their own rule whatever the spacing, so at high step counts several
sigmas round to one integer timestep; diffusers would then look the first one up at its second
occurrence and step off the end of its table. Setting the begin index to 0 (what a pipeline that
starts from pure noise does) makes it walk the schedule in order instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    UniPCMultistepScheduler,
)

from .errors import BadRequest, ModelError
from .spec import SCHEDULER_NAMES

__all__ = ["make_scheduler", "prepare_scheduler", "schedule_problem"]

log = logging.getLogger(__name__)

_BUILDERS: dict[str, tuple[Any, dict[str, Any]]] = {
    "ddim": (DDIMScheduler, {}),
    "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpm++-karras": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "unipc": (UniPCMultistepScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "heun": (HeunDiscreteScheduler, {}),
}
assert tuple(_BUILDERS) == SCHEDULER_NAMES  # the torch-free list and this table stay in step

_FALLBACK_SPACING = {"timestep_spacing": "trailing", "steps_offset": 0}


def make_scheduler(
    name: str, base_config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> Any:
    """A new scheduler of kind ``name`` with the checkpoint's noise schedule (``base_config``)."""
    try:
        cls, extra = _BUILDERS[name]
    except KeyError:
        raise BadRequest(
            f"scheduler must be one of {', '.join(SCHEDULER_NAMES)}, got {name!r}", key="scheduler"
        ) from None
    config = {k: v for k, v in base_config.items() if not k.startswith("_")}
    # from_config logs every DDIM-only key the other solvers ignore; that is expected here.
    logger = logging.getLogger("diffusers.configuration_utils")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return cls.from_config({**config, **extra, **(overrides or {})})
    finally:
        logger.setLevel(level)


def schedule_problem(name: str, scheduler: Any, steps: int) -> str | None:
    """What is wrong with ``scheduler``'s timesteps for ``steps`` steps, or None when sound."""
    timesteps = [int(t) for t in scheduler.timesteps.tolist()]
    top = int(scheduler.config.num_train_timesteps) - 1
    if not timesteps:
        return "no timesteps"
    if min(timesteps) < 0 or max(timesteps) > top:
        return f"timesteps {max(timesteps)}..{min(timesteps)} leave the training range {top}..0"
    # Karras sigmas may share a rounded timestep (handled by the begin index); the others step
    # from timestep to timestep, and Heun visits each twice by design.
    if name != "dpm++-karras" and len(set(timesteps)) != steps:
        return f"{len(set(timesteps))} distinct timesteps for {steps} steps"
    return None


def prepare_scheduler(
    name: str, base_config: Mapping[str, Any], steps: int, *, device: Any = None
) -> Any:
    """A fresh scheduler ``name`` with its timesteps set for ``steps`` steps (see module doc)."""
    scheduler = make_scheduler(name, base_config)
    scheduler.set_timesteps(steps, device=device)
    problem = schedule_problem(name, scheduler, steps)
    if problem is not None:
        log.debug("%s at %d steps: %s; using trailing spacing", name, steps, problem)
        scheduler = make_scheduler(name, base_config, _FALLBACK_SPACING)
        scheduler.set_timesteps(steps, device=device)
        problem = schedule_problem(name, scheduler, steps)
        if problem is not None:
            raise ModelError(
                f"the {name} sampler cannot make a schedule of {steps} steps: {problem}"
            )
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(0)
    return scheduler
