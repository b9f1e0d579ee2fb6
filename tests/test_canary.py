"""Report text never leaves the dataset: a canary in every report is found nowhere downstream.

A demo dataset whose every report carries a canary token goes through the whole pipeline as
a user runs it — ``raypi extract``, ``raypi sweep`` (teachers, students, text-only model),
``raypi report`` — each a separate process. Then every byte it produced is scanned: the
commands' stdout and stderr, the feature store, the results (Tune's folders, TensorBoard
event files, teacher outputs, configs, Parquet), the trackers' stores (an MLflow SQLite
database, W&B's offline files), the HTML report, and the logs of the Ray sessions the commands
started.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from raypi.data.demo import build_demo

CANARY = "Zq7CanaryXv"
RAY_SESSIONS = Path("/tmp/ray")


def _raypi(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "raypi.cli", *args], capture_output=True, text=True, timeout=600,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip


def _hits(folder: Path) -> list[str]:
    needles = (CANARY.encode(), CANARY.lower().encode(), CANARY.upper().encode())
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(needle in data for needle in needles):
                found.append(str(path))
    return found


def test_canary_in_every_report_appears_nowhere_downstream(tmp_path):
    root = tmp_path / "demo"
    build_demo(root, n=80, seed=5)
    dataset = pd.read_parquet(root / "dataset.parquet")
    dataset["report"] = [f"{CANARY} {text} {CANARY}" for text in dataset["report"]]
    dataset.to_parquet(root / "dataset.parquet")
    store, results, report = tmp_path / "features", tmp_path / "results", tmp_path / "report"
    started = time.time()
    runs = [_raypi("extract", "--dataset", str(root), "--encoders", "tiny_vit,tiny_bert",
                   "--out", str(store), "--views", "1")]  # fmt: skip
    assert runs[-1].returncode == 0, runs[-1].stderr[-2000:]
    config = {
        "name": "canary",
        "data": {"demo": {"root": str(root), "features": str(store)}},
        "defaults": {
            "encoders": ["tiny_vit"],
            "text_encoders": ["tiny_bert"],
            "seeds": [0],
            "sizes": [30],
            "epochs": 2,
            "lr": 1e-3,
            "views": 1,
        },  # fmt: skip
        "grids": [
            {
                "tasks": ["demo_prognostic"],
                "methods": ["image", "teacher", "distill", "self_distill", "text"],
            }
        ],  # fmt: skip
    }
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(config))
    trackers = tmp_path / "trackers"
    tracking = ("--tracker", f"mlflow=sqlite:///{trackers / 'mlflow.db'}", "--tracker", "wandb")
    runs.append(
        _raypi("sweep", "--config", str(tmp_path / "canary.yaml"), "--storage", str(results),
               *tracking, env={"WANDB_MODE": "offline", "WANDB_DIR": str(trackers / "wandb")})
    )  # fmt: skip
    assert runs[-1].returncode == 0, runs[-1].stderr[-2000:]
    runs.append(_raypi("report", str(results / "canary"), "--out", str(report)))
    assert runs[-1].returncode == 0, runs[-1].stderr[-2000:]

    trials = pd.read_parquet(results / "canary" / "trials.parquet")
    assert set(trials["method"]) == {"image", "teacher", "distill", "self_distill", "text"}
    assert any((results / "canary").rglob("events.out.tfevents*"))  # TensorBoard was written
    for run in runs:
        assert CANARY.lower() not in (run.stdout + run.stderr).lower()
    assert len(list((trackers / "wandb" / "wandb").glob("offline-run-*"))) == len(trials)
    assert (trackers / "mlflow.db").stat().st_size > 0
    assert _hits(store) == [] and _hits(results) == [] and _hits(report) == []
    assert _hits(trackers) == []
    sessions = [s for s in RAY_SESSIONS.glob("session_2*") if s.stat().st_mtime >= started - 1]
    assert sessions, "the commands' Ray sessions (their logs) were not found"
    for session in sessions:
        assert _hits(session) == []
