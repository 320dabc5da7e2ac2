"""``musicldm-daemon pack``: the command's work once :mod:`daemon.cli` has parsed it.

Checks the whole pack file and the output folder before any model loads, prints the plan for
``--dry-run``, then runs it (:func:`daemon.pack.run.run_pack`) here or on Ray, with a progress
bar on stderr and a summary at the end. Exit status: 0 when every clip is there, 1 when some
failed (run again to retry them), and the CLI's codes for bad input (2), model (3) and output
(4) trouble.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from daemon.config import default_out_dir
from daemon.pack.plan import PackPlan, load_pack
from musicldm_core.errors import BadRequest
from musicldm_core.spec import DEFAULT_MODEL

__all__ = ["dry_run_lines", "pack_main"]


def dry_run_lines(plan: PackPlan, folder: Path) -> list[str]:
    """The plan, for people: clips per prompt, tempo and length, and the total."""
    lines = [f"pack {plan.name!r} -> {folder}"]
    for prompt, bpm, length, count in plan.counts():
        lines.append(f"  {count:4d} × {prompt!r} at {bpm} BPM, {length}")
    lines.append(f"{len(plan.jobs)} clips")
    return lines


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def pack_main(args: argparse.Namespace) -> int:
    """Run ``musicldm-daemon pack`` with parsed ``args``; returns the exit status."""
    from daemon.pack.run import Backend, LocalBackend, run_pack
    from musicldm_core.wavfile import ensure_writable

    model = args.model or DEFAULT_MODEL
    plan = load_pack(args.pack_file, model=model, max_seconds=args.max_seconds)
    out_dir = Path(os.path.abspath((args.out or default_out_dir()).expanduser()))
    folder = out_dir / plan.slug
    if args.dry_run:
        for line in dry_run_lines(plan, folder):
            print(line)
        return 0
    if args.workers is not None and args.workers < 1:
        raise BadRequest(f"--workers must be at least 1, got {args.workers}", key="workers")
    if args.shared_out and args.ray is None:
        raise BadRequest("--shared-out is for --ray runs", key="shared-out")
    ensure_writable(folder)  # a wrong --out fails now, not after the model loads
    backend: Backend
    if args.ray is None:
        backend = LocalBackend(model, device=args.device, dtype=args.dtype)
    else:
        from daemon.pack.ray_backend import RayBackend

        backend = RayBackend(
            model,
            address=args.ray or None,
            workers=args.workers,
            device=args.device,
            dtype=args.dtype,
            shared_folder=folder if args.shared_out else None,
        )
    summary = run_pack(plan, out_dir, backend, progress=not args.quiet, report=_say)
    for line in summary.lines():
        _say(line)
    return 1 if summary.failed else 0
