"""Helpers shared by the tests that run a real daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.config import DaemonConfig, load_config


def daemon_config(tmp_path: Path, **overrides: Any) -> DaemonConfig:
    """A daemon config for tests: a free UDP port, replies only to senders, output and state
    in ``tmp_path``, no warm-up and no audio, unless ``overrides`` say otherwise."""
    values: dict[str, Any] = {
        "port": 0,
        "reply_to": (),
        "out": tmp_path / "out",
        "state": tmp_path / "state",
        "warmup": False,
        "audio": False,
    }
    values.update(overrides)
    return load_config(None, values)
