"""Ray Data extraction on a tiny dataset: rows, values, bad images, kill + resume, S3, refusal."""

import argparse
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import ray
import torch
from PIL import Image

from raypi.commands import extract as extract_command
from raypi.data.tables import write_dataset
from raypi.encoders import get_encoder
from raypi.features import StoreError, extract, load, load_text, read_manifest, store

IMAGES = 12
VIEWS = 2  # augmented views: rows per image = VIEWS + 1
BAD = {"bad_corrupt", "bad_missing"}


@pytest.fixture(scope="module")
def cluster(s3_server):
    # The S3 endpoint is in the environment before Ray starts, so workers inherit it.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """12 random PNG/JPEG images (gray and RGB, varied sizes), one corrupt, one missing."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(IMAGES):
        shape = (70 + 5 * i, 90) if i % 2 else (90, 64 + 4 * i, 3)
        name = f"images/img{i:02d}.{'jpg' if i % 3 == 0 else 'png'}"
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / name)
        rows.append(
            {
                "image_id": f"img{i:02d}",
                "image_path": name,
                "report": None if i == 4 else f"report {i}",
            }
        )
    (root / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    rows.append({"image_id": "bad_corrupt", "image_path": "images/corrupt.png", "report": "r"})
    rows.append({"image_id": "bad_missing", "image_path": "images/nowhere.png", "report": "r"})
    frame = pd.DataFrame(rows).assign(patient_id=lambda f: "p-" + f["image_id"])
    write_dataset(root, frame)
    return str(root)


@pytest.fixture(scope="module")
def reference(cluster, dataset, tmp_path_factory):
    """A store of both tiny image encoders with K=2 views, extracted once."""
    out = str(tmp_path_factory.mktemp("reference"))
    summaries = extract(dataset, ["tiny_vit", "tiny_resnet"], out, views=VIEWS)
    return out, summaries


def good_ids():
    return [f"img{i:02d}" for i in range(IMAGES)]


def test_one_row_per_image_view_matching_the_dataset(reference, dataset):
    out, summaries = reference
    for summary, name in zip(summaries, ["tiny_vit", "tiny_resnet"]):
        spec = get_encoder(name)
        manifest = read_manifest(out, name)
        assert summary.rows_written == manifest["rows"] == IMAGES * (VIEWS + 1)
        assert manifest["views"] == [0, 1, 2] and manifest["complete"]
        index = store.read_index(out, name, ("image_id", "view"))
        assert not index.duplicated(["image_id", "view"]).any()
        assert set(index["image_id"]) == set(good_ids())
        tokens = load(out, name, good_ids())
        assert tokens.shape == (IMAGES, VIEWS + 1, *spec.token_shape)
        assert tokens.dtype == torch.float16
        # View 0 is the plain preprocessing through the encoder, stored in fp16.
        image = np.asarray(Image.open(f"{dataset}/images/img01.png"))
        with torch.inference_mode():
            direct = spec.build()(spec.preprocess(image)[None])[0]
        torch.testing.assert_close(
            tokens[1, 0].float(), direct.half().float(), atol=2e-3, rtol=2e-3
        )
        assert not torch.equal(tokens[1, 1], tokens[1, 0])
        assert not torch.equal(tokens[1, 1], tokens[1, 2])


def test_bad_images_are_reported_not_fatal(reference):
    out, summaries = reference
    manifest = read_manifest(out, "tiny_vit")
    reasons = {entry["image_id"]: entry["reason"] for entry in manifest["skipped"]}
    assert set(reasons) == BAD
    assert "undecodable" in reasons["bad_corrupt"] and "corrupt.png" in reasons["bad_corrupt"]
    assert "nowhere.png" in reasons["bad_missing"]
    assert summaries[0].rows_skipped == len(BAD) * (VIEWS + 1)
    with pytest.raises(StoreError, match=r"bad_corrupt \(undecodable"):
        load(out, "tiny_vit", ["img00", "bad_corrupt"])


def test_rerun_extracts_only_what_is_missing(reference, dataset):
    out, _ = reference
    before = load(out, "tiny_resnet", good_ids())
    (summary,) = extract(dataset, ["tiny_resnet"], out, views=1)
    assert summary.rows_written == 0 and summary.bytes_written == 0
    assert read_manifest(out, "tiny_resnet")["views"] == [0, 1, 2]  # views never shrink
    assert torch.equal(load(out, "tiny_resnet", good_ids()), before)


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    extract_command.register(parser.add_subparsers())
    args = parser.parse_args(["extract", *argv])
    return args.func(args)


def test_other_identity_refused_unless_overwritten(cluster, dataset, tmp_path, capsys):
    out = str(tmp_path)
    common = ["--dataset", dataset, "--encoders", "tiny_vit", "--out", out]
    assert run_cli(*common, "--tokens", "cls", "--dtype", "fp32") == 0
    assert "tiny_vit: 12 rows written" in capsys.readouterr().out
    assert load(out, "tiny_vit", good_ids(), views=0).shape == (IMAGES, 1, 64)
    assert run_cli(*common, "--pool", "2", "--dtype", "fp32") == 2
    assert "tokens: store has 'cls', run asks 'all'" in capsys.readouterr().err
    with pytest.raises(StoreError, match="--overwrite"):
        extract(dataset, ["tiny_vit"], out, pool=2, dtype="fp32")
    extract(dataset, ["tiny_vit"], out, pool=2, dtype="bf16", overwrite=True)
    pooled = load(out, "tiny_vit", good_ids(), views=0)
    assert pooled.shape == (IMAGES, 1 + 2 * 2, 64) and pooled.dtype == torch.bfloat16
    assert read_manifest(out, "tiny_vit")["rows"] == IMAGES


SLOW_RUN = """
import sys, time, dataclasses, ray
from raypi.encoders import get_encoder
from raypi.features import extract

def slow_factory():
    module = get_encoder("tiny_vit").factory()
    module.register_forward_pre_hook(lambda *_: time.sleep(0.5))
    return module

ray.init(address=sys.argv[3])
spec = dataclasses.replace(get_encoder("tiny_vit"), factory=slow_factory)
extract(sys.argv[1], [spec], sys.argv[2], views=2, batch_size=3)
"""


def wait_until_stable(out, seconds=3.0):
    """Wait until no shard appears for ``seconds`` (workers of the killed run are gone)."""
    shards, since = store.list_shards(out, "tiny_vit"), time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.2)
        now = store.list_shards(out, "tiny_vit")
        if now != shards:
            shards, since = now, time.monotonic()
    return shards


def test_killed_run_resumes_to_identical_rows(reference, dataset, tmp_path):
    out = str(tmp_path / "store")
    script = tmp_path / "slow_run.py"
    script.write_text(SLOW_RUN)
    address = ray.get_runtime_context().gcs_address
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(script), dataset, out, address],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        deadline = time.monotonic() + 120
        while not store.list_shards(out, "tiny_vit") and proc.poll() is None:
            assert time.monotonic() < deadline, "no shard appeared"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # a real kill of the driver, mid-run
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()[-2000:]
    shards = wait_until_stable(out)
    assert 1 <= len(shards) < IMAGES * (VIEWS + 1) / 3
    assert read_manifest(out, "tiny_vit")["complete"] is False
    with pytest.raises(StoreError, match="no completed extraction"):
        load(out, "tiny_vit", good_ids())
    survived = len(store.read_index(out, "tiny_vit", ("image_id", "view")))
    (summary,) = extract(dataset, ["tiny_vit"], out, views=VIEWS)
    assert summary.rows_written == IMAGES * (VIEWS + 1) - survived
    index = store.read_index(out, "tiny_vit", ("image_id", "view"))
    assert len(index) == IMAGES * (VIEWS + 1) and not index.duplicated(["image_id", "view"]).any()
    resumed = load(out, "tiny_vit", good_ids())
    assert torch.equal(resumed, load(reference[0], "tiny_vit", good_ids()))


def test_s3_store_round_trip(reference, dataset, s3_server):
    out = "s3://raypi-test/features-roundtrip"
    (summary,) = extract(dataset, ["tiny_resnet"], out)
    assert summary.rows_written == IMAGES and summary.bytes_written > 0
    assert read_manifest(out, "tiny_resnet")["rows"] == IMAGES
    remote = load(out, "tiny_resnet", good_ids()[::-1], views=0)
    local = load(reference[0], "tiny_resnet", good_ids()[::-1], views=0)
    assert torch.equal(remote, local)


def test_reports_through_a_text_encoder(cluster, dataset, tmp_path):
    out = str(tmp_path)
    (summary,) = extract(dataset, ["tiny_bert"], out, max_text_length=8)
    manifest = read_manifest(out, "tiny_bert")
    assert summary.rows_written == manifest["rows"] == IMAGES + len(BAD) - 1
    assert [entry["image_id"] for entry in manifest["skipped"]] == ["img04"]
    tokens, lengths = load_text(out, "tiny_bert", ["img00", "img04"], allow_missing=True)
    assert tokens.shape[:2] == (2, 8) and lengths[1] == 0 and 0 < lengths[0] <= 8
    assert not tokens[0, lengths[0] :].any() and tokens[0, : lengths[0]].any()


def test_extract_with_weights_in_c2l_layout_stores_that_models_tokens(cluster, dataset, tmp_path):
    """`raypi extract --weights NAME=PATH` on a file in C2L's own layout (see
    test_encoders_upstream.py): the stored tokens are the forward of the file's weights."""
    import argparse as _argparse

    import torch

    from raypi.encoders import get_encoder

    spec = get_encoder("tiny_resnet")
    reference = spec.build()
    with torch.no_grad():
        for tensor in reference.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.1)
    state = {f"encoder.module.{k}": v for k, v in reference.model.state_dict().items()}
    path = tmp_path / "current.pth"
    torch.save({"opt": _argparse.Namespace(c2l=True), "model": state, "epoch": 1}, path)
    out = str(tmp_path / "store")
    argv = ["--dataset", dataset, "--encoders", "tiny_resnet", "--out", out, "--dtype", "fp32"]
    assert run_cli(*argv, "--weights", f"tiny_resnet={path}") == 0
    stored = load(out, "tiny_resnet", ["img01"], views=0)[0]
    image = np.asarray(Image.open(f"{dataset}/images/img01.png"))
    reference.eval()
    with torch.inference_mode():
        expected = reference(spec.preprocess(image)[None])[0]
    torch.testing.assert_close(stored.float(), expected, rtol=1e-4, atol=1e-4)


def test_extract_joins_a_running_cluster_by_address(cluster, dataset, tmp_path):
    """`raypi extract --address` from another process runs on this module's Ray cluster."""
    address = ray.get_runtime_context().gcs_address
    out = tmp_path / "joined"
    command = [sys.executable, "-m", "raypi.cli", "extract", "--dataset", dataset,
               "--encoders", "tiny_resnet", "--out", str(out), "--address", address]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Started a local Ray instance" not in done.stderr
    assert "Connecting to existing Ray cluster" in done.stderr
    assert load(str(out), "tiny_resnet", good_ids(), views=0).shape[0] == IMAGES
