"""Host memory: packs ask Ray for their working set, so a small node is never overcommitted."""

from __future__ import annotations

import pandas as pd
import pytest

from raypi.sweep import Grid, LaunchOptions, SweepSpec, read_trials, run_sweep
from raypi.sweep.grid import expand
from raypi.sweep.packs import make_packs, working_set_bytes
from raypi.sweep.synthetic import make_synthetic_study

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

GB = 1e9
PACK_GB = 0.8


@pytest.fixture(scope="module")
def nodes():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    small = cluster.add_node(num_cpus=3, memory=int(1.0 * GB))  # room for one pack
    cluster.add_node(num_cpus=3, memory=int(1.7 * GB))  # room for two
    ray.init(address=cluster.address, log_to_driver=False)
    by_memory = {node["NodeID"]: node["Resources"].get("memory", 0) for node in ray.nodes()}
    yield {"small": small.node_id, "memory": by_memory}
    ray.shutdown()
    cluster.shutdown()


def _spec(study) -> SweepSpec:
    grid = Grid(tasks=("demo_prognostic",), encoders=("tiny_vit",), methods=("image",),
                seeds=(0, 1, 2, 3, 4, 5), sizes=(40,), epochs=3)  # fmt: skip
    return SweepSpec(name="memory", grids=(grid,), data={"demo": study})


def test_packs_never_exceed_a_nodes_memory(nodes, tmp_path):
    study = make_synthetic_study(str(tmp_path / "study"), image_encoders=("tiny_vit",))
    options = LaunchOptions(verbose=0, pack_memory_gb=PACK_GB)
    outcome = run_sweep(_spec(study), storage=str(tmp_path), options=options)
    trials = read_trials(outcome.results)
    assert (trials["status"] == "ok").all() and trials["pack_key"].nunique() == 6
    spans = trials.groupby("pack_key").agg(
        node=("node_id", "first"), start=("started_at", "min"), end=("finished_at", "max")
    )
    assert nodes["small"] in set(spans["node"]), "the small node should have run a pack"
    for node, rows in spans.groupby("node"):
        capacity = int(nodes["memory"][node] // (PACK_GB * GB))
        moments = pd.concat([rows["start"], rows["end"]]).sort_values()
        most = max(((rows["start"] <= t) & (rows["end"] > t)).sum() for t in moments)
        assert most <= capacity, (node, most, capacity)


def test_a_working_set_over_budget_is_split_by_size(tmp_path):
    study = make_synthetic_study(str(tmp_path / "study"), image_encoders=("tiny_vit",))
    grid = Grid(tasks=("demo_prognostic",), encoders=("tiny_vit",), seeds=(0,),
                sizes=(20, 40, 80), lams=(0.5,), taus=(1.0,))  # fmt: skip
    trials = expand(SweepSpec(name="s", grids=(grid,), data={"demo": study}))
    whole = make_packs(trials)
    assert len(whole) == 1
    members = next(iter(whole.values()))
    budget = working_set_bytes([t for t in members if t.size <= 40])
    split = make_packs(trials, budget)
    assert len(split) == 2
    sizes = [sorted({t.size for t in part}) for part in split.values()]
    assert sorted(sizes) == [[20, 40], [80]]
    for part in split.values():  # each student sits with its teacher
        keys = {t.trial_key for t in part}
        assert all(t.teacher_key in keys for t in part if t.is_student)
    assert sum(len(p) for p in split.values()) == len(trials)


def test_a_pack_over_its_memory_fails_with_the_reason_and_the_sweep_goes_on(nodes, tmp_path):
    """A pack is held to the host memory it asked for: over it, its trials fail, saying so."""
    encoders = ("tiny_vit", "tiny_resnet")
    study = make_synthetic_study(str(tmp_path / "study"), image_encoders=encoders,
                                 token_shape=(256, 128))  # fmt: skip
    grid = Grid(tasks=("demo_prognostic",), encoders=("tiny_vit", "tiny_resnet"),
                text_encoders=("tiny_bert",), methods=("image", "teacher"), seeds=(0,),
                sizes=(40,), epochs=2)  # fmt: skip
    spec = SweepSpec(name="over", grids=(grid,), data={"demo": study},
                     resource_overrides={"tiny_resnet": {"host_memory_gb": 0.002}})  # fmt: skip
    options = LaunchOptions(verbose=0, max_failures=0, pack_memory_gb=PACK_GB)
    trials = read_trials(run_sweep(spec, storage=str(tmp_path), options=options).results)
    over, within = (
        trials[trials["encoder"] == "tiny_resnet"],
        trials[trials["encoder"] == "tiny_vit"],
    )
    assert len(over) == len(within) == 2
    assert (within["status"] == "ok").all()
    assert (over["status"] == "failed").all()
    reason = (
        "PackMemoryError: pack .* holds .* GB of host memory, over the 0.002 GB it asked Ray for"
    )
    assert over["error"].str.contains(reason).all(), over["error"].tolist()
