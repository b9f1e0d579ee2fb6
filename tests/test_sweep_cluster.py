"""Placement on a two-node-type cluster (ray.cluster_utils, fake GPUs, the big_gpu resource)."""

from __future__ import annotations

import pytest

from raypi.sweep import Grid, LaunchOptions, SweepSpec, read_trials, run_sweep
from raypi.sweep.resources import BIG_GPU_RESOURCE, trial_resources
from raypi.sweep.synthetic import make_synthetic_study

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402
from ray.util.placement_group import (  # noqa: E402
    placement_group,
    placement_group_table,
    remove_placement_group,
)

SMALL = trial_resources((8, 16), False, use_gpu=True)  # tiny ViT tokens: 1/8 GPU
BIG = trial_resources((1370, 768), True, use_gpu=True)  # RAD-DINO tokens on a big GPU


@pytest.fixture(scope="module")
def nodes():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=8, num_gpus=1)  # 16 GB class
    cluster.add_node(num_cpus=4, num_gpus=1, resources={BIG_GPU_RESOURCE: 1})  # 40 GB+ class
    ray.init(address=cluster.address, log_to_driver=False)
    by_kind = {}
    for node in ray.nodes():
        resources = node["Resources"]
        kind = "big" if BIG_GPU_RESOURCE in resources else "small" if "GPU" in resources else "head"
        by_kind[kind] = node["NodeID"]
    yield by_kind
    ray.shutdown()
    cluster.shutdown()


def _node_of(group) -> str:
    return placement_group_table(group)["bundles_to_node_id"][0]


def test_requests_follow_the_token_count():
    assert SMALL.gpus == 0.125 and SMALL.big_gpu == 0
    assert BIG.gpus == BIG.big_gpu == 0.25
    assert trial_resources((8, 16), False, use_gpu=False).bundle() == {"CPU": 1.0, "GPU": 0.0}
    pinned = trial_resources((8, 16), False, use_gpu=True, ordinary_gpu_resource="gpu_16gb")
    assert pinned.bundle() == {"CPU": 1.0, "GPU": 0.125, "gpu_16gb": 0.125}
    big = trial_resources((1370, 768), True, use_gpu=True, ordinary_gpu_resource="gpu_16gb")
    assert "gpu_16gb" not in big.bundle() and big.bundle()[BIG_GPU_RESOURCE] == 0.25


def test_big_trials_only_on_big_node_and_fractions_pack_onto_one_gpu(nodes):
    big = [placement_group([BIG.bundle()]) for _ in range(4)]  # fill the big node's GPU
    ray.get([group.ready() for group in big], timeout=60)
    assert {_node_of(group) for group in big} == {nodes["big"]}
    small = [placement_group([{**SMALL.bundle(), "CPU": 0.5}]) for _ in range(8)]
    ray.get([group.ready() for group in small], timeout=60)
    # Eight 1/8-GPU trials share the one GPU left: the small node's.
    assert {_node_of(group) for group in small} == {nodes["small"]}
    extra = placement_group([SMALL.bundle()])
    ready, _ = ray.wait([extra.ready()], timeout=2)
    assert not ready, "a ninth 1/8 share must not fit on a full GPU"
    for group in big + small + [extra]:
        remove_placement_group(group)


def test_sweep_places_big_memory_trials_on_the_big_node(nodes, tmp_path):
    study = make_synthetic_study(
        str(tmp_path / "study"), image_encoders=("tiny_vit", "tiny_resnet")
    )
    spec = SweepSpec(
        name="placed",
        grids=(
            Grid(
                tasks=("demo_prognostic",),
                encoders=("tiny_vit", "tiny_resnet"),
                methods=("image",),
                seeds=(0, 1),
                sizes=(40,),
                epochs=1,
            ),
        ),
        data={"demo": study},
        resource_overrides={"tiny_resnet": {"needs_big_gpu": True, "gpu_share": 0.5}},
    )
    outcome = run_sweep(spec, storage=str(tmp_path), options=LaunchOptions(verbose=0))
    trials = read_trials(outcome.results)
    assert (trials["status"] == "ok").all() and len(trials) == 4
    big = trials[trials["encoder"] == "tiny_resnet"]
    assert set(big["node_id"]) == {nodes["big"]}
    assert (trials["gpu_ids"] == "0").all()  # each trial holds a share of one GPU
    assert (trials["device"] == "cpu").all()  # fake GPUs: torch sees no CUDA
