"""Provenance: every trial row and sweep.yaml name the code and software that made them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import ray
import torch
import yaml

from raypi import __version__, provenance
from raypi.sweep import results
from raypi.sweep.grid import TrialConfig

REPO = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return TrialConfig(
        task="demo_prognostic", dataset="demo", encoder="tiny_vit", text_encoder=None,
        method="image", head="attention", size=20, seed=0, lam=None, tau=None, lr=1e-3,
        batch_size=16, epochs=1, views=None, dtype="fp32", dataset_root="/d", features="/f",
    ).to_dict()  # fmt: skip


def test_trial_rows_carry_versions_commit_and_device(monkeypatch):
    monkeypatch.setenv(provenance.COMMIT_ENV, "abc123")
    provenance.git_commit.cache_clear()
    provenance.software.cache_clear()
    try:
        ran = results.trial_row("s", _config(), results.OK, device="cpu")
        refused = results.trial_row("s", _config(), results.FAILED, error="teacher failed")
    finally:
        provenance.git_commit.cache_clear()
        provenance.software.cache_clear()
    assert ran["raypi_version"] == __version__ and ran["raypi_commit"] == "abc123"
    assert ran["ray_version"] == ray.__version__ and ran["torch_version"] == torch.__version__
    assert ran["cuda_version"] == (torch.version.cuda or "none (CPU build)")
    assert ran["device_name"] == provenance.cpu_name() and ran["device_name"]
    assert refused["device_name"] is None and refused["ray_version"] == ray.__version__
    table = pa.Table.from_pylist([ran], results.TRIALS_SCHEMA)  # the row fits the schema
    assert table.column("raypi_commit").to_pylist() == ["abc123"]


def test_commit_of_a_checkout_and_of_a_copy_outside_one(tmp_path):
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    provenance.git_commit.cache_clear()
    assert provenance.git_commit() in (head, f"{head}-dirty")
    shutil.copytree(REPO / "raypi", tmp_path / "raypi", ignore=shutil.ignore_patterns("*.pyc"))
    copy = subprocess.run(
        [sys.executable, "-c", "from raypi import provenance; print(provenance.git_commit())"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert copy.stdout.strip() == provenance.NOT_A_CHECKOUT


def test_old_trial_files_read_with_empty_provenance(tmp_path):
    old_schema = pa.schema(
        [f for f in results.TRIALS_SCHEMA if f.name not in results.PROVENANCE_COLUMNS]
    )
    row = {k: v for k, v in results.trial_row("s", _config(), results.OK).items()}
    old = pa.Table.from_pylist([row], old_schema)
    parts = tmp_path / "parts" / "trials"
    parts.mkdir(parents=True)
    pq.write_table(old, parts / f"{row['trial_key']}.parquet")
    new = results.trial_row("s", {**_config(), "seed": 1, "trial_key": "other"}, results.OK)
    results.write_trial(str(tmp_path), new)
    trials, _ = results.collect(str(tmp_path))
    by_key = trials.set_index("trial_key")
    assert pd.isna(by_key.loc[row["trial_key"], "raypi_version"])
    assert by_key.loc["other", "raypi_version"] == __version__
    pq.write_table(old, tmp_path / "trials.parquet")  # a consolidated file of an old raypi
    assert results.read_trials(str(tmp_path))["torch_version"].isna().all()


def test_sweep_yaml_records_the_drivers_provenance(tmp_path):
    results.write_sweep_yaml(str(tmp_path), {"sweep": {"name": "s"}})
    written = yaml.safe_load((tmp_path / "sweep.yaml").read_text())
    assert written["sweep"] == {"name": "s"}
    assert written["provenance"]["raypi_version"] == __version__
    assert written["provenance"]["torch_version"] == torch.__version__
    assert written["provenance"]["raypi_commit"] == provenance.git_commit()
    assert written["provenance"]["device_name"]
