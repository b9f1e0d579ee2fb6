"""A worker node dies mid-sweep (ray.cluster_utils.Cluster): its packs finish on the others."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from raypi.sweep import (
    Grid,
    LaunchOptions,
    SweepSpec,
    read_epochs,
    read_trials,
    run_sweep,
    spec_to_dict,
)
from raypi.sweep.results import read_parts
from raypi.sweep.synthetic import make_synthetic_study

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
EPOCHS = 150  # ~1 s a member: the victim's pack is still running when its node goes


@pytest.fixture(scope="module")
def nodes():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    study = make_synthetic_study(str(tmp_path_factory.mktemp("study")), images=120)
    grid = Grid(tasks=("demo_prognostic",), encoders=("tiny_vit",), text_encoders=("tiny_bert",),
                seeds=(0, 1, 2, 3), sizes=(40,), epochs=EPOCHS, lams=(0.5,),
                taus=(1.0,))  # fmt: skip
    spec = SweepSpec(name="nodes", grids=(grid,), data={"demo": study})
    path = tmp_path_factory.mktemp("config") / "nodes.yaml"
    path.write_text(yaml.safe_dump(spec_to_dict(spec)))
    return spec, str(path)


def test_a_dead_worker_nodes_trials_finish_on_the_other(nodes, sweep, tmp_path):
    cluster, workers = nodes
    reference = read_trials(
        run_sweep(
            sweep[0], storage=str(tmp_path / "undisturbed"), options=LaunchOptions(verbose=0)
        ).results  # fmt: skip
    )
    results = tmp_path / "disturbed" / "nodes"
    command = [sys.executable, str(REPO / "sweeps" / "distill_grid.py"), "--config", sweep[1],
               "--address", cluster.address, "--storage", str(tmp_path / "disturbed")]  # fmt: skip
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = workers[1]
    deadline = time.monotonic() + 240
    while driver.poll() is None and time.monotonic() < deadline:
        parts = read_parts(str(results)) if (results / "parts").is_dir() else pd.DataFrame()
        if len(parts) and (parts["node_id"] == victim.node_id).any():
            break  # a pack on the victim has recorded a member and goes on with the next
        time.sleep(0.1)
    before = read_parts(str(results))
    on_victim = before[before["node_id"] == victim.node_id]
    assert driver.poll() is None and len(on_victim), "no pack ran on the victim node"
    cluster.remove_node(victim, allow_graceful=False)
    out, err = driver.communicate(timeout=400)
    assert driver.returncode == 0, err[-3000:]

    trials = read_trials(str(results))
    assert trials["trial_key"].is_unique and (trials["status"] == "ok").all()
    assert list(trials["trial_key"]) == list(reference["trial_key"])
    pd.testing.assert_series_equal(trials["auc_best"], reference["auc_best"], atol=1e-6)
    pd.testing.assert_series_equal(trials["auc_final"], reference["auc_final"], atol=1e-6)
    # The victim's unfinished packs were finished on the surviving node; what it recorded stays.
    assert set(trials["node_id"]) <= {victim.node_id, workers[0].node_id}
    victim_packs = trials[trials["pack_key"].isin(set(on_victim["pack_key"]))]
    assert (victim_packs["node_id"] == workers[0].node_id).any(), "nothing was retried"
    kept = trials.set_index("trial_key").loc[on_victim["trial_key"], "finished_at"]
    assert (kept.to_numpy() == on_victim["finished_at"].to_numpy()).all()
    epochs = read_epochs(str(results))
    assert not epochs.duplicated(["trial_key", "epoch"]).any()
    assert len(epochs) == EPOCHS * len(trials)
