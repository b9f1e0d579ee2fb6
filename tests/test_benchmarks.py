"""The benchmark scripts run (their --smoke-test): they are not tests of speed, only of running."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, timeout: int = 300) -> str:
    command = [sys.executable, str(REPO / "benchmarks" / script), "--smoke-test", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_metrics_benchmark_finds_raypi_equal_to_sklearn():
    rows = [json.loads(line) for line in _run("metrics.py").splitlines()[1:]]
    assert len(rows) == 4 and all(row["max_abs_difference"] < 1e-12 for row in rows)


@pytest.mark.slow
def test_gpu_benchmark_smoke_test_runs_on_the_cpu():
    lines = [json.loads(line) for line in _run("gpu.py").splitlines() if line.startswith("{")]
    assert lines[0]["device"] == "cpu" and "shared_gpu" in lines[-1]
    assert {row["dtype"] for row in lines[1:-1]} == {"bf16", "fp32"}


@pytest.mark.slow
def test_tune_overhead_smoke_test_prints_its_last_line():
    out = _run("tune_overhead.py").strip().splitlines()
    assert out[-1].startswith("scheduling overhead: ") and out[-1].endswith("% of plain fits")
