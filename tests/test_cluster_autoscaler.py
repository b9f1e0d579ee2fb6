"""Ray's own autoscaler on the node types of cluster.yaml (fake nodes, fake GPUs).

The head is started as ``cluster.yaml`` starts it (its dashboard flags), with an autoscaling
config whose node types, resources and worker limits are read from ``cluster.yaml`` itself, so
the file and this test cannot drift apart. Only the idle timeout is shortened (10 minutes in
the file) so that idle workers are seen to go, and packs ask for no host ``memory``: the fake
provider cannot give its nodes that resource (it rejects ``memory`` among a node type's
resources, where Ray's AWS provider fills it in from the instance type). See FACTS.md for why
the config is written here rather than through ``ray.cluster_utils.AutoscalingCluster``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from raypi.cluster import ORDINARY_GPU_RESOURCE
from raypi.sweep import Grid, SweepSpec, read_trials, spec_to_dict
from raypi.sweep.resources import BIG_GPU_RESOURCE
from raypi.sweep.synthetic import make_synthetic_study

pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[1]
CLUSTER_YAML = REPO / "cluster.yaml"
IDLE_MINUTES = 0.25
GCS_PORT = 6379  # the fake nodes join the head there (FACTS.md)
pytestmark = pytest.mark.slow


def autoscaling_config(cluster_file: Path, idle_minutes: float) -> dict:
    """Return a fake-provider autoscaling config with ``cluster_file``'s node types."""
    spec = yaml.safe_load(cluster_file.read_text())
    types = spec["available_node_types"]
    head = types[spec["head_node_type"]]
    workers = {
        name: {"resources": kind["resources"], "min_workers": kind.get("min_workers", 0),
               "max_workers": kind["max_workers"], "node_config": {}}
        for name, kind in types.items() if name != spec["head_node_type"]
    }  # fmt: skip
    workers["ray.head.default"] = {"resources": head["resources"], "node_config": {},
                                   "max_workers": 0}  # fmt: skip
    empty = ("initialization_commands", "setup_commands", "head_setup_commands",
             "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands",
             "cluster_synced_files", "rsync_exclude", "rsync_filter")  # fmt: skip
    return {
        "cluster_name": spec["cluster_name"],
        "max_workers": spec["max_workers"],
        "upscaling_speed": spec["upscaling_speed"],
        "idle_timeout_minutes": idle_minutes,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True},
        "auth": {"ssh_user": "ubuntu"},
        "available_node_types": workers,
        "head_node_type": "ray.head.default",
        "file_mounts": {},
        "file_mounts_sync_continuously": False,
        **{key: [] for key in empty},
    }  # fmt: skip


def head_flag(cluster_file: Path, flag: str) -> str:
    """Return the value of ``--flag=value`` in ``cluster_file``'s head start command."""
    commands = " ".join(yaml.safe_load(cluster_file.read_text())["head_start_ray_commands"])
    for word in shlex.split(commands):
        if word.startswith(f"{flag}="):
            return word.split("=", 1)[1]
    raise AssertionError(f"cluster.yaml starts the head without {flag}")


def _listening(port: int) -> set[str]:
    """Return the local IPv4 addresses listening on TCP ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _processes_of(marker: str, folder: Path) -> list[int]:
    """Return the processes of the test cluster: started with ``marker`` in their environment,
    or holding a file under its ``folder`` (Ray's agents rename themselves, hiding both)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if f"RAYPI_TEST_CLUSTER={marker}".encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
                continue
            links = (os.readlink(fd) for fd in (entry / "fd").iterdir())
            if any(link.startswith(str(folder)) for link in links):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def head():
    if shutil.which("ray", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("the ray command is not installed beside this Python")
    folder = Path(tempfile.mkdtemp(prefix="rp"))  # short: Ray's socket paths must fit
    config = folder / "autoscaling.yaml"
    config.write_text(yaml.safe_dump(autoscaling_config(CLUSTER_YAML, IDLE_MINUTES)))
    marker, dashboard_port = uuid.uuid4().hex, _free_port()
    env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "RAYPI_TEST_CLUSTER": marker}
    command = [os.path.join(os.path.dirname(sys.executable), "ray"), "start", "--head",
               f"--port={GCS_PORT}", f"--autoscaling-config={config}", "--num-cpus=0",
               f"--dashboard-host={head_flag(CLUSTER_YAML, '--dashboard-host')}",
               f"--dashboard-port={dashboard_port}", "--include-dashboard=true",
               f"--temp-dir={folder / 'ray'}"]  # fmt: skip
    started = subprocess.run(command, env=env, capture_output=True, text=True)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        address = (folder / "ray" / "ray_current_cluster").read_text().strip()
        yield {"address": address, "dashboard_port": dashboard_port, "folder": folder}
    finally:
        # Never `ray stop`: it would end every Ray on the machine (FACTS.md).
        for _ in range(3):  # a dying raylet's children may outlive the first sweep
            for pid in _processes_of(marker, folder):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(1)
        shutil.rmtree(folder, ignore_errors=True)


def _driver_env() -> dict:
    return {**os.environ, "RAY_AUTH_MODE": "token"}


def _nodes(address: str) -> list[dict]:
    """Every node the cluster has had: id, alive, resources (read by a separate driver)."""
    code = (
        "import json, ray\n"
        f"ray.init(address={address!r}, log_to_driver=False)\n"
        "print(json.dumps([{'id': n['NodeID'], 'alive': n['Alive'], 'resources': n['Resources']}"
        " for n in ray.nodes()]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=_driver_env(), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _kind(resources: dict) -> str:
    if BIG_GPU_RESOURCE in resources:
        return "gpu_40gb"
    return "gpu_16gb" if ORDINARY_GPU_RESOURCE in resources else "head"


def _sweep(head, tmp_path, name: str, encoders: tuple[str, ...], study) -> pd.DataFrame:
    grid = Grid(tasks=("demo_prognostic",), encoders=encoders, text_encoders=("tiny_bert",),
                methods=("image",), seeds=(0, 1, 2, 3), sizes=(40,), epochs=30)  # fmt: skip
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(spec_to_dict(SweepSpec(name, (grid,), {"demo": study}))))
    command = [sys.executable, str(REPO / "sweeps" / "distill_grid.py"), "--config",
               str(config), "--address", head["address"], "--storage", str(tmp_path),
               "--gpu", "yes", "--pack-memory-gb", "0",
               "--ordinary-gpu-resource", ORDINARY_GPU_RESOURCE]  # fmt: skip
    done = subprocess.run(command, env=_driver_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return read_trials(str(tmp_path / name))


def _overlap(rows: pd.DataFrame) -> int:
    """Return the most trials of ``rows`` running at one moment."""
    moments = pd.concat([rows["started_at"], rows["finished_at"]])
    return max(((rows["started_at"] <= t) & (rows["finished_at"] > t)).sum() for t in moments)


def test_dashboard_on_loopback_with_token_authentication(head):
    assert _listening(head["dashboard_port"]) == {"127.0.0.1"}
    url = f"http://127.0.0.1:{head['dashboard_port']}/nodes?view=summary"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)
    assert refused.value.code == 401
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def test_autoscaler_launches_big_gpus_only_for_big_trials_and_removes_idle_nodes(head, tmp_path):
    study = make_synthetic_study(str(tmp_path / "study"), image_encoders=("tiny_vit", "rad_dino"))
    small = _sweep(head, tmp_path, "small", ("tiny_vit",), study)
    kinds = {node["id"]: _kind(node["resources"]) for node in _nodes(head["address"])}
    assert (small["status"] == "ok").all() and len(small) == 4
    assert "gpu_40gb" not in kinds.values(), "small trials launched a big-GPU node"
    assert {kinds[node] for node in small["node_id"]} == {"gpu_16gb"}
    # Fractional trials share one GPU: several 1/8-GPU trials ran at once on one node.
    assert (small["gpu_ids"] == "0").all() and _overlap(small) >= 2

    big = _sweep(head, tmp_path, "big", ("rad_dino",), study)
    kinds = {node["id"]: _kind(node["resources"]) for node in _nodes(head["address"])}
    assert (big["status"] == "ok").all() and len(big) == 4
    assert {kinds[node] for node in big["node_id"]} == {"gpu_40gb"}
    assert list(kinds.values()).count("gpu_40gb") == 1  # four 1/8 shares fit on one big GPU

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        nodes = _nodes(head["address"])
        alive = [n for n in nodes if n["alive"] and _kind(n["resources"]) != "head"]
        if not alive:
            break
        time.sleep(5)
    assert not alive, f"idle workers still up after {IDLE_MINUTES} min idle timeout: {alive}"


def test_cluster_yaml_declares_the_resources_raypi_asks_for():
    types = yaml.safe_load(CLUSTER_YAML.read_text())["available_node_types"]
    declared = [set(kind["resources"]) for kind in types.values()]
    assert any(ORDINARY_GPU_RESOURCE in names and "GPU" in names for names in declared)
    assert any(BIG_GPU_RESOURCE in names and "GPU" in names for names in declared)
    assert f"--ordinary-gpu-resource {ORDINARY_GPU_RESOURCE}" in CLUSTER_YAML.read_text()
