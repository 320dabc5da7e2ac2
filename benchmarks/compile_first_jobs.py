"""With ``--compile``, does any job after start-up wait on a compile? (issue 13, CPU target)

    python -m benchmarks.compile_first_jobs            # tiny on the CPU: minutes (Inductor)

Starts a daemon with ``compile`` on (the worker compiles and warms the shapes of
``compile_batches`` at 1, 2 and 4 bars before its first job), waits until that is done, then
times over real OSC the first job of each kind -- a 1-take guided job, the first 2-take job,
the first unguided job, a new tempo in the same length bucket -- and the same job again (warm).
Before this change the first 2-take job waited 24.0 s and the first unguided 22.2 s against
0.60 s warm (issue 13). Results: ``benchmarks/results/compile-first-jobs-<model>.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_results

PROMPT = "dark techno, 909 drums"

JOBS: list[tuple[str, dict[str, Any]]] = [
    ("1 take, guided", {"takes": 1}),
    ("2 takes, guided", {"takes": 2}),
    ("1 take, unguided", {"takes": 1, "guidance": 1.0}),
    ("2 takes, unguided", {"takes": 2, "guidance": 1.0}),
    ("1 take, 123 BPM (same bucket)", {"takes": 1, "bpm": 123}),
]


def main(argv: list[str] | None = None) -> int:
    from torch._dynamo.utils import counters

    from clients.client import Client
    from daemon.app.daemon import Daemon
    from daemon.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--batches", default="1,2", help="compile_batches (default 1,2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            None,
            {
                "model": args.model,
                "port": 0,
                "reply_to": (),
                "out": Path(tmp) / "out",
                "state": Path(tmp) / "state",
                "audio": False,
                "compile": True,
                "compile_batches": args.batches,
            },
        )
        daemon = Daemon(config)
        started = time.perf_counter()
        daemon.start()
        try:
            daemon.worker.warmed.wait()
            warm_up_s = time.perf_counter() - started
            graphs_after_warmup = int(counters["stats"].get("unique_graphs", 0))
            rows = []
            with Client(*daemon.address, timeout=900) as client:
                for name, options in JOBS:
                    job = {"bars": 1, "bpm": 120, "seed": 7, **options}
                    times = []
                    for _ in range(2):  # first, then warm
                        t0 = time.perf_counter()
                        client.generate(PROMPT, **job).wait_all()
                        times.append(time.perf_counter() - t0)
                    rows.append({"job": name, "first_s": times[0], "warm_s": times[1]})
                    print(f"{name:32} first {times[0]:6.2f} s  warm {times[1]:6.2f} s")
            graphs_after_jobs = int(counters["stats"].get("unique_graphs", 0))
        finally:
            daemon.stop()
    write_results(
        f"compile-first-jobs-{args.model}",
        {
            "model": args.model,
            "compile_batches": args.batches,
            "start_to_warm_s": warm_up_s,
            "jobs": rows,
            "graphs_compiled_after_warmup": graphs_after_jobs - graphs_after_warmup,
            "note": "tiny on 2 shared CPU cores; through the daemon over OSC",
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
