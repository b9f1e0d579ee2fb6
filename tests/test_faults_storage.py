"""Results storage that gives out: S3 away and back, S3 away for good, a full local volume."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from _proxy import TcpProxy

from raypi import io
from raypi.sweep import (
    Grid,
    LaunchOptions,
    SweepSpec,
    read_epochs,
    read_trials,
    run_sweep,
    spec_to_dict,
)
from raypi.sweep.synthetic import make_synthetic_study

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[1]
BUCKET = "raypi-test"
QUIET = LaunchOptions(max_failures=1, verbose=0)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(s3_server):
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def proxy(s3_server):
    """The S3 endpoint the drivers under test see: moto behind a forwarder that can go down."""
    forwarder = TcpProxy(int(s3_server.rsplit(":", 1)[1]))
    forwarder.start()
    yield forwarder
    forwarder.stop()


@pytest.fixture(scope="module")
def sweep_config(tmp_path_factory):
    study = make_synthetic_study(str(tmp_path_factory.mktemp("study")), images=120)
    grid = Grid(tasks=("demo_prognostic",), encoders=("tiny_vit",), text_encoders=("tiny_bert",),
                seeds=(0, 1, 2), sizes=(40,), epochs=3, lams=(0.5,), taus=(1.0,))  # fmt: skip
    spec = SweepSpec(name="faults", grids=(grid,), data={"demo": study})
    path = tmp_path_factory.mktemp("config") / "faults.yaml"
    path.write_text(yaml.safe_dump(spec_to_dict(spec)))
    return spec, str(path)


@pytest.fixture(scope="module")
def reference(cluster, sweep_config, tmp_path_factory):
    """The same sweep, undisturbed, on a local folder."""
    outcome = run_sweep(sweep_config[0], storage=str(tmp_path_factory.mktemp("ref")), options=QUIET)
    return read_trials(outcome.results)


def _driver(config: str, address: str, storage: str, env: dict) -> subprocess.Popen:
    command = [sys.executable, str(REPO / "sweeps" / "distill_grid.py"), "--config", config,
               "--address", address, "--storage", storage, "--max-failures", "1"]  # fmt: skip
    return subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


class Watcher:
    """Reads every Parquet object under a prefix straight from moto, as often as it can."""

    def __init__(self, endpoint: str, prefix: str) -> None:
        import boto3

        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.prefix, self.seen, self.unreadable = prefix, {}, []

    def parts(self) -> int:
        return sum(key.startswith(f"{self.prefix}/parts/trials/") for key in self._keys())

    def _keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=self.prefix
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def check(self) -> None:
        for item in self._keys():
            if not item.endswith(".parquet"):
                continue
            body = self.client.get_object(Bucket=BUCKET, Key=item)["Body"].read()
            try:
                pq.read_table(pa.BufferReader(body))
                self.seen[item] = self.seen.get(item, 0) + 1
            except Exception as error:  # noqa: BLE001 - every unreadable file is a finding
                self.unreadable.append((item, str(error)[:200]))


def _wait_for_parts(watcher: Watcher, driver: subprocess.Popen, count: int = 1) -> None:
    deadline = time.monotonic() + 240
    while watcher.parts() < count and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert driver.poll() is None, "the sweep ended before the outage: " + driver.stderr.read()


def _same_rows(results: str, reference: pd.DataFrame) -> None:
    trials = read_trials(results)
    assert trials["trial_key"].is_unique and (trials["status"] == "ok").all()
    assert list(trials["trial_key"]) == list(reference["trial_key"])
    pd.testing.assert_series_equal(trials["auc_best"], reference["auc_best"], atol=1e-6)
    epochs = read_epochs(results)
    assert not epochs.duplicated(["trial_key", "epoch"]).any()
    assert len(epochs) == 3 * len(trials)


def test_a_write_waits_for_the_store_to_come_back(proxy, monkeypatch):
    monkeypatch.setenv("RAYPI_S3_ENDPOINT", proxy.endpoint)
    path = f"s3://{BUCKET}/outage-{uuid.uuid4().hex}/row.json"
    proxy.stop()
    threading.Timer(2.0, proxy.start).start()
    started = time.monotonic()
    io.write_json(path, {"trial": 1})
    assert time.monotonic() - started >= 1.5
    assert io.read_json(path) == {"trial": 1}


def test_a_store_away_past_the_budget_is_one_clear_error(proxy, monkeypatch):
    monkeypatch.setenv("RAYPI_S3_ENDPOINT", proxy.endpoint)
    monkeypatch.setenv(io.RETRY_ENV, "2")
    path = f"s3://{BUCKET}/outage-{uuid.uuid4().hex}/part.parquet"
    proxy.stop()
    try:
        with pytest.raises(io.StorageUnavailableError, match="did not answer.*rerun the same"):
            io.write_parquet(pa.table({"a": [1]}), path)
    finally:
        proxy.start()
    assert not io.exists(path)


def test_a_sweep_outlives_an_s3_outage(cluster, proxy, s3_server, sweep_config, reference):
    """S3 stops answering for 8 s mid-sweep: writes wait, the sweep completes, nothing partial."""
    storage = f"s3://{BUCKET}/outage-sweep"
    watcher = Watcher(s3_server, "outage-sweep/faults")
    driver = _driver(sweep_config[1], cluster, storage, {"RAYPI_S3_ENDPOINT": proxy.endpoint})
    _wait_for_parts(watcher, driver)
    proxy.stop()
    down_until = time.monotonic() + 8
    while time.monotonic() < down_until:
        watcher.check()
        time.sleep(0.5)
    proxy.start()
    while driver.poll() is None:
        watcher.check()
        time.sleep(0.5)
    out, err = driver.communicate()
    assert driver.returncode == 0, err[-2000:]
    assert "object store unreachable, retrying" in err, "the outage was never felt"
    watcher.check()
    assert not watcher.unreadable and len(watcher.seen) >= 2 * len(reference)
    _same_rows(f"{storage}/faults", reference)


def test_s3_away_for_good_stops_the_sweep_and_a_rerun_continues(
    cluster, proxy, s3_server, sweep_config, reference
):
    storage = f"s3://{BUCKET}/outage-long"
    watcher = Watcher(s3_server, "outage-long/faults")
    env = {"RAYPI_S3_ENDPOINT": proxy.endpoint, io.RETRY_ENV: "3"}
    driver = _driver(sweep_config[1], cluster, storage, env)
    _wait_for_parts(watcher, driver)
    proxy.stop()
    try:
        _, err = driver.communicate(timeout=300)
    finally:
        proxy.start()
    assert driver.returncode == 1, err[-2000:]
    # One error of raypi's, naming the store and saying a rerun continues (Ray's and Tune's
    # own logs of the stopped trials may stand above it).
    lines = [line for line in err.splitlines() if line.startswith("raypi sweep:")]
    assert len(lines) == 1 and "stopped:" in lines[0] and "did not answer" in lines[0], err[-2000:]
    assert "rerun the same command" in lines[0]
    watcher.check()
    assert not watcher.unreadable
    rerun = _driver(sweep_config[1], cluster, storage, {"RAYPI_S3_ENDPOINT": proxy.endpoint})
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    assert "already done" in out
    _same_rows(f"{storage}/faults", reference)


@pytest.fixture
def small_volume(tmp_path):
    """A 24 MB tmpfs (needs root and mount); skipped with the reason elsewhere."""
    mount = tmp_path / "volume"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(volume: Path) -> Path:
    """Fill ``volume`` to the last byte with one ballast file (the sweep writes meanwhile)."""
    ballast = volume / "ballast"
    chunk = b"\0" * (1 << 20)
    with open(ballast, "wb", buffering=0) as handle:
        while True:
            try:
                handle.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                break
    for size in (4096, 512, 1):  # the tail a whole chunk did not fit in
        with open(ballast, "ab", buffering=0) as handle, contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * size)
    return ballast


def test_a_full_volume_is_one_clear_error_and_a_rerun_continues(
    cluster, small_volume, sweep_config, reference
):
    storage = small_volume / "results"
    first = _driver(sweep_config[1], cluster, str(storage), {})
    deadline = time.monotonic() + 240
    parts = storage / "faults" / "parts" / "trials"
    while first.poll() is None and time.monotonic() < deadline:
        if parts.is_dir() and any(p.suffix == ".parquet" for p in parts.iterdir()):
            break
        time.sleep(0.05)
    ballast = _fill(small_volume)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 1, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("raypi sweep:")]
    assert len(lines) == 1 and "stopped: no space left" in lines[0], err[-2000:]
    assert "rerun the same command" in lines[0]
    written = list((storage / "faults" / "parts").rglob("*"))
    assert not [p for p in written if ".tmp-" in p.name], "a temporary was left behind"
    for part in (p for p in written if p.suffix == ".parquet"):
        pq.read_table(part)  # every part visible is whole
    ballast.unlink()
    rerun = _driver(sweep_config[1], cluster, str(storage), {})
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    _same_rows(str(storage / "faults"), reference)
