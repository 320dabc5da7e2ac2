"""What the benchmark scripts share: where their results go, a throw-away daemon on loopback
and the sequential-against-concurrent request measure."""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, report: dict[str, Any]) -> Path:
    """Write ``report`` as ``benchmarks/results/<name>.json``, say so, and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return path


@contextlib.contextmanager
def scratch_daemon(engine: Any, **config: Any) -> Iterator[Any]:
    """A daemon over ``engine`` on a free loopback port, without audio or warm-up, its output
    and state in a temporary folder removed afterwards; ``config`` overrides those values."""
    from daemon.app.daemon import Daemon
    from daemon.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        values = {
            "port": 0,
            "reply_to": (),
            "out": Path(tmp) / "out",
            "state": Path(tmp) / "state",
            "warmup": False,
            "audio": False,
            **config,
        }
        daemon = Daemon(load_config(None, values), engine=engine)
        daemon.start()
        try:
            yield daemon
        finally:
            daemon.stop()


def sequential_vs_concurrent(
    client: Any, prompt: str, options: dict[str, Any], requests: int
) -> tuple[float, float]:
    """(seconds for ``requests`` jobs one after the other, seconds for as many sent at once),
    each with its own seeds so no result is reused."""
    started = time.perf_counter()
    for i in range(requests):
        client.generate(prompt, **{**options, "seed": 10 + i}).wait()
    sequential_s = time.perf_counter() - started
    started = time.perf_counter()
    jobs = [client.generate(prompt, **{**options, "seed": 100 + i}) for i in range(requests)]
    for job in jobs:
        job.wait()
    return sequential_s, time.perf_counter() - started
