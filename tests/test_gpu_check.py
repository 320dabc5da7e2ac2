"""The prepared GPU run rehearsed on the CPU: ``benchmarks/gpu_check.sh --dry-run``.

The same code as on the GPU (tiny model, 2 steps, 1 bar, Dynamo's ``eager`` backend instead of
Inductor), so the script cannot rot between GPU runs. About 45 s on 2 cores: marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_dry_run_writes_every_section(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    report = json.loads((tmp_path / "gpu-check-dry-run.json").read_text())
    assert report["dry_run"] is True
    sections = ("reference", "osc_live", "concurrent", "overlap", "precision", "tuning", "compile")
    for name in (*sections, "sync_debug"):
        assert "error" not in report[name], report[name].get("trace")
    assert report["reference"]["1_bars"]["reference_default_s"] > 0
    assert report["osc_live"]["1_bars_request_to_file_s"] > 0
    assert report["concurrent"]["requests"] == 3
    assert report["overlap"]["takes_4"]["series_s"] > 0
    assert report["overlap"]["pays"] is False  # no streams on the CPU: never "pays" there
    assert report["precision"]["float16"]["vae_finite"] in (True, False)
    assert report["tuning"]["both"]["median_s"] > 0
    compiled = report["compile"]
    assert compiled["renders_after_warmup"] > 0
    # the promise checked on every run: no compile after warm-up for warmed batches and tempi
    assert compiled["compiles_after_warmup"] == {"graphs": 0, "frames_ok": 0, "recompiles": 0}
    assert compiled["eager_fallback_shapes"] == []


def test_gpu_check_refuses_to_run_without_cuda_unless_dry(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here")
    from benchmarks.gpu_check import main

    assert main(["--out", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())
