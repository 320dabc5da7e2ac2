"""Samplers by name, built from the checkpoint's own scheduler config.

Used by :mod:`.engine`: a fresh scheduler per batch (multistep solvers keep state between steps).
The names are listed, torch-free, in :data:`musicldm_core.spec.SCHEDULER_NAMES`.
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

from .errors import BadRequest
from .spec import SCHEDULER_NAMES

__all__ = ["make_scheduler"]

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


def make_scheduler(name: str, base_config: Mapping[str, Any]) -> Any:
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
        return cls.from_config({**config, **extra})
    finally:
        logger.setLevel(level)
