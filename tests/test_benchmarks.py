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
    sections = [row["section"] for row in lines]
    assert lines[0]["device"] == "cpu"
    order = ["matmul", "gemm", "fit", "stacked_step", "pack", "equality", "shared_gpu"]
    assert sections == sorted(sections, key=[*order, "projection"].index)
    steps = [row for row in lines if row["section"] == "stacked_step"]
    assert {(r["members"], r["mode"]) for r in steps} >= {
        (1, "eager"),
        (2, "captured"),
        (4, "eager"),
    }
    assert all("error" not in r and r["tflop_per_s"] > 0 for r in steps), steps
    (equal,) = [row for row in lines if row["section"] == "equality"]
    assert equal["val_auc"] <= 1e-5 and equal["kept_epoch_differs"] == 0
    projected = [row for row in lines if row["section"] == "projection"]
    assert {r["dtype"] for r in projected} == {"fp32", "bf16"}
    assert all(r["gpu_hours"] > 0 and r["grid_executed_pflop"] > 1000 for r in projected)


def test_stack_benchmark_smoke_test_times_both_ways():
    lines = [json.loads(line) for line in _run("stack.py").splitlines()]
    assert lines[0]["machine"]["cores"] >= 1
    (pack,) = lines[1:]
    assert pack["members"] == 8 and pack["stacks"] == [2, 2, 4]
    assert pack["stacked_s"] > 0 and pack["one_at_a_time_s"] > 0


@pytest.mark.slow
def test_tune_overhead_smoke_test_prints_its_last_line():
    out = _run("tune_overhead.py").strip().splitlines()
    assert out[-1].startswith("scheduling overhead: ") and out[-1].endswith("% of plain fits")
