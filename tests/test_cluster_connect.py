"""Where raypi's Ray comes from: no address = a fresh local Ray; a dead address fails fast.

Each case runs in a fresh Python process whose ``RAY_TMPDIR`` is the test's own folder, so
the stray ``ray_current_cluster`` file planted there (as ``ray start`` leaves it, pointing at a
cluster that is gone) is this test's alone and no other Ray on the machine is touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from raypi import cluster

pytest.importorskip("ray")
# "auto" must find no cluster: never beside a module that starts a Ray head on 6379.
pytestmark = pytest.mark.fixed_ports
REPO = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket closes


@pytest.fixture
def stray(tmp_path_factory):
    """A Ray temp folder whose ``ray_current_cluster`` names a cluster that is gone."""
    folder = Path(tempfile.mkdtemp(prefix="rp"))  # short: Ray's socket paths must fit
    address = f"127.0.0.1:{_closed_port()}"
    (folder / "ray").mkdir()  # Ray's default temp folder under RAY_TMPDIR
    (folder / "ray" / "ray_current_cluster").write_text(address + "\n")
    yield folder, address
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def _connect(folder: Path, address: str | None, timeout: float = 120):
    code = (
        "import sys, time, ray\n"
        "from raypi import cluster\n"
        "start = time.monotonic()\n"
        f"try:\n    cluster.connect({address!r}, quiet=True)\n"
        "except cluster.ClusterUnreachableError as error:\n"
        "    print(f'REFUSED {time.monotonic() - start:.1f} {error}'); sys.exit(3)\n"
        "print('JOINED', ray.get_runtime_context().gcs_address, cluster.resources().get('CPU'))\n"
    )
    env = {**os.environ, "RAY_TMPDIR": str(folder), "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def test_no_address_starts_a_local_ray_despite_a_stray_cluster_file(stray):
    folder, address = stray
    probe = "from ray._private.services import find_bootstrap_address as f; print(f(None))"
    env = {**os.environ, "RAY_TMPDIR": str(folder)}
    seen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert seen.stdout.strip() == address  # what Ray's own address=None would join
    done = _connect(folder, None)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    joined = done.stdout.split("JOINED", 1)[1].split()
    assert joined[0] != address and float(joined[1]) >= 1  # its own GCS, this machine's CPUs


@pytest.mark.parametrize("given", ["auto", "stale", "ray://stale"])
def test_a_dead_address_fails_within_seconds_naming_it(stray, given):
    folder, address = stray
    asked = {"auto": "auto", "stale": address, "ray://stale": f"ray://{address}"}[given]
    started = time.monotonic()
    done = _connect(folder, asked, timeout=60)
    assert done.returncode == 3, done.stdout + done.stderr[-3000:]
    assert time.monotonic() - started < 30  # the interpreter and imports included
    seconds, message = done.stdout.split("REFUSED ", 1)[1].split(" ", 1)
    assert float(seconds) < 6 and "no Ray cluster answers" in message
    # Ray resolves 127.0.0.1 to this machine's address: the port names the stale cluster.
    assert f"at {asked} " in message and f":{address.rpartition(':')[2]}" in message


def test_auto_without_any_cluster_file_says_none_was_found(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="rp"))
    done = _connect(folder, "auto", timeout=60)
    assert done.returncode == 3 and "--address auto" in done.stdout, done.stderr[-2000:]


def test_an_unroutable_address_gives_up_after_its_wait():
    started = time.monotonic()
    with pytest.raises(cluster.ClusterUnreachableError, match="10.255.255.1:6379"):
        cluster.check_reachable("10.255.255.1:6379", wait_s=1.0)
    assert time.monotonic() - started < 5


def test_gpu_auto_counts_the_gpu_node_types_a_cluster_file_may_launch():
    config = cluster.read_cluster_file(str(REPO / "cluster.yaml"))
    decided = cluster.decide_gpu("auto", 0.0, config, "cluster.yaml")
    assert decided.use_gpu and decided.launchable == ("gpu_16gb", "gpu_40gb")
    assert decided.launch_node(big=True)["big_gpu"] == 1
    assert "gpu_16gb, gpu_40gb in cluster.yaml" in decided.line()
    capped = {**config, "available_node_types": {
        name: {**kind, "max_workers": 0} for name, kind in config["available_node_types"].items()
    }}  # fmt: skip
    assert not cluster.decide_gpu("auto", 0.0, capped).use_gpu  # no GPU node may start
    assert cluster.decide_gpu("auto", 1.0, None).use_gpu  # GPUs up now
    assert not cluster.decide_gpu("no", 8.0, config).use_gpu
    assert cluster.decide_gpu("yes", 0.0, None).use_gpu
    with pytest.raises(ValueError, match="--gpu"):
        cluster.decide_gpu("maybe", 0.0, None)


def test_a_file_without_node_types_is_refused_naming_it(tmp_path):
    bad = tmp_path / "cluster.yaml"
    bad.write_text(yaml.safe_dump({"cluster_name": "x"}))
    with pytest.raises(ValueError, match=str(bad)):
        cluster.read_cluster_file(str(bad))


def test_dry_run_decides_gpus_by_the_runs_rule(capsys):
    from raypi.commands.sweep import print_dry_run, sweep_parser

    config = str(REPO / "sweeps" / "configs" / "distill_grid_demo.yaml")
    parser = sweep_parser("", config)
    from raypi.sweep.config import load_spec

    spec = load_spec(config)
    expected = cluster.local_gpu_decision("auto")  # this machine, as a local Ray would see it
    assert print_dry_run(parser.parse_args(["--dry-run"]), spec) == 0
    assert expected.line() in capsys.readouterr().out
    file = str(REPO / "cluster.yaml")
    assert print_dry_run(parser.parse_args(["--dry-run", "--cluster-file", file]), spec) == 0
    out = capsys.readouterr().out
    assert "work runs on GPUs" in out and "GPU 0.125" in out
