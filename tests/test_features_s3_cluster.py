"""Data every node reads: a 2-node cluster extracts from S3 images and weights into S3 features.

The head has no CPUs, so every task and actor runs on the worker node, whose raypi home (and
weights cache) is its own: nothing it reads can come from the driver's local files. A smoke
sweep then trains on the S3 features, and its rows and sweep.yaml say what made them.
"""

from __future__ import annotations

import io as _io
import uuid
from pathlib import Path

import pytest
import torch
import yaml

from raypi import io, provenance
from raypi.commands import extract as extract_command
from raypi.data import images, tables
from raypi.data.demo import build_demo
from raypi.encoders import get_encoder
from raypi.features import load, read_manifest
from raypi.report import build_report
from raypi.sweep import Grid, LaunchOptions, SweepSpec, read_trials, run_sweep
from raypi.sweep.grid import DataSource

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bucket(s3_server):
    from conftest import S3_BUCKET

    return f"s3://{S3_BUCKET}/cluster-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def nodes(s3_server, tmp_path_factory):
    """A CPU-less head and one worker node with its own RAYPI_HOME (started after S3)."""
    worker_home = tmp_path_factory.mktemp("worker_home")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=2, env_vars={"RAYPI_HOME": str(worker_home)})
    yield cluster, worker_home
    ray.shutdown()
    cluster.shutdown()


def _upload(local: Path, remote: str) -> None:
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        io.write_bytes(io.join(remote, path.relative_to(local).as_posix()), path.read_bytes())


@pytest.fixture(scope="module")
def s3_data(bucket, tmp_path_factory):
    """Tables at one S3 prefix, images at another, and tiny_vit weights (not its init)."""
    local = tmp_path_factory.mktemp("demo")
    build_demo(local, n=40, seed=0)
    images = local / "images"
    _upload(images, f"{bucket}/jpg/images")
    for path in sorted(local.rglob("*")):
        if path.is_file() and images not in path.parents:
            io.write_bytes(
                io.join(f"{bucket}/dataset", str(path.relative_to(local))), path.read_bytes()
            )
    module = get_encoder("tiny_vit").build()
    state = {name: value * 0.5 for name, value in module.model.state_dict().items()}
    buffer = _io.BytesIO()
    torch.save({"model": state, "epoch": 3}, buffer)
    io.write_bytes(f"{bucket}/weights/tiny_vit.pth", buffer.getvalue())
    return f"{bucket}/dataset", f"{bucket}/jpg", f"{bucket}/weights/tiny_vit.pth"


def _extract(argv) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    extract_command.register(parser.add_subparsers())
    args = parser.parse_args(["extract", *argv])
    return args.func(args)


def test_extract_on_two_nodes_from_s3_and_sweep_on_it(
    nodes, s3_data, bucket, tmp_path, capsys, monkeypatch
):
    cluster, worker_home = nodes
    monkeypatch.setenv("RAYPI_HOME", str(tmp_path / "driver_home"))  # the driver's own cache
    dataset, image_root, weights = s3_data
    features = f"{bucket}/features"
    common = ["--dataset", dataset, "--out", features, "--address", cluster.address]
    # The table's relative paths do not resolve at the dataset root: the images are elsewhere.
    assert images.check_images(dataset, tables.read_dataset(dataset).head(2), decode=False)
    code = _extract([*common, "--encoders", "tiny_vit,tiny_resnet", "--image-root", image_root,
                     "--weights", f"tiny_vit={weights}"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    manifest = read_manifest(features, "tiny_vit")
    assert manifest["weights"] == weights and not manifest["random_weights"]
    assert manifest["rows"] == 40 and not manifest["skipped"]
    random_init = get_encoder("tiny_vit").build()
    from raypi.features._identity import weights_fingerprint

    assert manifest["weights_fingerprint"] != weights_fingerprint(random_init)
    cached = list((worker_home / "cache" / "weights").glob("*/tiny_vit.pth"))
    assert len(cached) == 1 and (cached[0].parent / "source.json").is_file()  # the worker's copy
    assert read_manifest(features, "tiny_resnet")["random_weights"]  # random by design

    spec = SweepSpec(
        "s3study",
        (
            Grid(
                tasks=("demo_prognostic",),
                encoders=("tiny_vit", "tiny_resnet"),
                methods=("image",),
                seeds=(0,),
                sizes=(10,),
                epochs=1,
            ),
        ),  # fmt: skip
        {"demo": DataSource(dataset, features)},
    )
    outcome = run_sweep(spec, storage=str(tmp_path), options=LaunchOptions(verbose=0))
    assert outcome.ok == 2 and outcome.failed == 0, outcome.summary()
    trials = read_trials(outcome.results)
    assert (trials["device_name"] == provenance.cpu_name()).all()
    assert (trials["raypi_commit"] == provenance.git_commit()).all()
    assert (trials["ray_version"] == ray.__version__).all()
    recorded = yaml.safe_load((Path(outcome.results) / "sweep.yaml").read_text())
    assert recorded["random_features"] == {"tiny_resnet": "no published weights"}
    assert recorded["provenance"]["raypi_commit"] == provenance.git_commit()
    page = Path(build_report([outcome.results], str(tmp_path / "report"), figures=()))
    assert "Random weights in s3study: tiny_resnet (no published weights)." in page.read_text()
    tokens = load(features, "tiny_vit", ["demo-00000"], views=0)
    assert tokens.shape[0] == 1
