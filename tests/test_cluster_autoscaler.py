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

import contextlib
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
pytestmark = [pytest.mark.slow, pytest.mark.fixed_ports]


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
    # The head's PATH leads to this venv, as cluster.yaml's start command activates its venv:
    # a Ray Job's entrypoint runs with the head's PATH (FACTS.md).
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "RAYPI_TEST_CLUSTER": marker, "PATH": path}
    # Its own agent and metrics ports: another Ray on this machine would take the defaults.
    agents = [f"--dashboard-agent-listen-port={_free_port()}",
              f"--dashboard-agent-grpc-port={_free_port()}",
              f"--metrics-export-port={_free_port()}",
              f"--runtime-env-agent-port={_free_port()}"]  # fmt: skip
    command = [os.path.join(os.path.dirname(sys.executable), "ray"), "start", "--head",
               f"--port={GCS_PORT}", f"--autoscaling-config={config}", "--num-cpus=0",
               f"--dashboard-host={head_flag(CLUSTER_YAML, '--dashboard-host')}",
               f"--dashboard-port={dashboard_port}", "--include-dashboard=true",
               f"--temp-dir={folder / 'ray'}", *agents]  # fmt: skip
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


def _sweep_command(head, tmp_path, name: str, encoders: tuple[str, ...], study) -> list[str]:
    """The command of a 4-trial sweep with ``--gpu auto`` (the default, given to be seen)."""
    grid = Grid(tasks=("demo_prognostic",), encoders=encoders, text_encoders=("tiny_bert",),
                methods=("image",), seeds=(0, 1, 2, 3), sizes=(40,), epochs=30)  # fmt: skip
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(spec_to_dict(SweepSpec(name, (grid,), {"demo": study}))))
    return [sys.executable, str(REPO / "sweeps" / "distill_grid.py"), "--config",
            str(config), "--address", head["address"], "--storage", str(tmp_path),
            "--gpu", "auto", "--pack-memory-gb", "0",
            "--ordinary-gpu-resource", ORDINARY_GPU_RESOURCE]  # fmt: skip


def _run(command: list[str]) -> str:
    done = subprocess.run(command, env=_driver_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _sweep(head, tmp_path, name: str, encoders: tuple[str, ...], study) -> pd.DataFrame:
    _run(_sweep_command(head, tmp_path, name, encoders, study))
    return read_trials(str(tmp_path / name))


def _decision_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("raypi: --gpu "))


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


def test_gpu_auto_asks_for_the_gpus_the_autoscaler_can_launch_as_the_dry_run_says(head, tmp_path):
    """No GPU node is up: ``--gpu auto`` reads the autoscaler's node types on the head."""
    assert not [n for n in _nodes(head["address"]) if n["alive"] and "GPU" in n["resources"]]
    study = make_synthetic_study(str(tmp_path / "study"), image_encoders=("tiny_vit",))
    command = _sweep_command(head, tmp_path, "auto", ("tiny_vit",), study)
    planned = _run(command + ["--dry-run"])
    assert "GPU 0.125, gpu_16gb 0.125" in planned  # the request of every tiny_vit trial
    ran = _run(command)
    decided = _decision_line(ran)
    assert decided == _decision_line(planned)
    assert "work runs on GPUs (0 GPUs up; GPU node types gpu_16gb, gpu_40gb in" in decided
    assert decided.endswith(f"{head['folder'] / 'autoscaling.yaml'})")
    recorded = yaml.safe_load((tmp_path / "auto" / "sweep.yaml").read_text())
    assert recorded["gpu"]["use_gpu"] and recorded["gpu"]["gpus_present"] == 0
    assert recorded["gpu"]["launchable"] == ["gpu_16gb", "gpu_40gb"]
    trials = read_trials(str(tmp_path / "auto"))
    kinds = {node["id"]: _kind(node["resources"]) for node in _nodes(head["address"])}
    assert (trials["status"] == "ok").all() and (trials["gpu_ids"] == "0").all()
    assert {kinds[node] for node in trials["node_id"]} == {"gpu_16gb"}


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


JOB_EXCLUDES = [".venv", "raypi_data", "results", ".git"]
"""What the README's ``ray job submit`` leaves out of the uploaded working directory."""


def job_repository(folder: Path) -> Path:
    """Return a copy of the repository under ``folder`` with ``sweeps/configs/job.yaml``.

    The config is a sweep ``job`` (one task, tiny_vit, two seeds) on a synthetic study written
    to ``folder/study``; the job runs it with ``--smoke-test`` (one trial, ``job_smoke``).
    """
    repo = _repository_copy(folder / "repo")
    study = make_synthetic_study(str(folder / "study"), image_encoders=("tiny_vit",))
    grid = Grid(tasks=("demo_prognostic",), encoders=("tiny_vit",), text_encoders=("tiny_bert",),
                methods=("image",), seeds=(0, 1), sizes=(40,), epochs=3)  # fmt: skip
    config = repo / "sweeps" / "configs" / "job.yaml"
    config.write_text(yaml.safe_dump(spec_to_dict(SweepSpec("job", (grid,), {"demo": study}))))
    return repo


def _repository_copy(target: Path) -> Path:
    """Copy the repository's files (tracked and untracked, not ignored) to ``target``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True)  # fmt: skip
    for name in listed.stdout.splitlines():
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def test_a_ray_job_from_the_repository_root_runs_a_smoke_sweep(head, tmp_path):
    """The README's job command, from a copy of the repository root, with a relative config.

    The job's driver runs on the head; its trial runs on a ``gpu_16gb`` node the autoscaler
    launched, in the job's working directory unpacked there (see ``_node_held`` for why that
    node sees the package before the job starts).
    """
    repo = job_repository(tmp_path)
    storage = tmp_path / "results"
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    with _node_held(head, repo) as package:
        _submit_and_check(head, repo, storage, ray, package)


@contextlib.contextmanager
def _node_held(head, repo: Path):
    """Keep one ``gpu_16gb`` node up, its runtime-env agent holding the job's package.

    A driver this test starts holds a placement group on a ``gpu_16gb`` node and runs one task
    there with the job's working directory (``repo``, the job's excludes), so that node's
    runtime-env agent unpacks the package before the job starts. Why: the fake provider's nodes
    share the head's session folder (``runtime_resources/working_dir_files``) on this one
    machine, and a runtime-env agent that first sees a package unpacks it with
    ``overwrite=True`` (Ray 2.60, ``WorkingDirPlugin.create``), deleting the folder first. The
    first trial on a fresh fake node thus deleted the folder the job's driver runs in (seen:
    ``FileNotFoundError`` from ``os.getcwd`` in Tune). On real machines every node unpacks on
    its own disk. Yields the package's name (``_ray_pkg_<hash>``), which the job must share.
    """
    env = {"working_dir": str(repo), "excludes": JOB_EXCLUDES}
    code = (
        "import os, time, ray\n"
        "from ray.util.placement_group import placement_group\n"
        "from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy\n"
        f"ray.init(address={head['address']!r}, log_to_driver=False, runtime_env={env!r})\n"
        f"bundle = {{'CPU': 1, 'GPU': 0.125, {ORDINARY_GPU_RESOURCE!r}: 0.125}}\n"
        "group = placement_group([bundle])\n"
        "ray.get(group.ready(), timeout=180)\n"
        "where = ray.remote(lambda: os.getcwd()).options(num_cpus=1, num_gpus=0.125,\n"
        f"    resources={{{ORDINARY_GPU_RESOURCE!r}: 0.125}},\n"
        "    scheduling_strategy=PlacementGroupSchedulingStrategy(group))\n"
        "print('HELD', os.path.basename(ray.get(where.remote())), flush=True)\n"
        "time.sleep(900)\n"
    )
    errors = tempfile.TemporaryFile(mode="w+")
    holder = subprocess.Popen([sys.executable, "-c", code], env=_driver_env(), text=True,
                              stdout=subprocess.PIPE, stderr=errors)  # fmt: skip
    try:
        held = holder.stdout.readline().split()
        errors.seek(0)
        assert held[:1] == ["HELD"] and held[1].startswith("_ray_pkg_"), errors.read()[-3000:]
        package = held[1]
        yield package
    finally:
        holder.kill()
        holder.wait()
        errors.close()


def _submit_and_check(head, repo: Path, storage: Path, ray: str, package: str) -> None:
    dashboard = f"http://127.0.0.1:{head['dashboard_port']}"
    submit = [ray, "job", "submit", "--address", dashboard, "--working-dir", ".",
              "--runtime-env-json", json.dumps({"excludes": JOB_EXCLUDES}), "--",
              "python", "sweeps/distill_grid.py", "--config", "sweeps/configs/job.yaml",
              "--smoke-test", "--address", "auto", "--storage", str(storage), "--pack-memory-gb",
              "0", "--ordinary-gpu-resource", ORDINARY_GPU_RESOURCE]  # fmt: skip
    done = subprocess.run(submit, cwd=repo, env=_driver_env(), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in done.stdout
    assert f"gcs://{package}.zip" in done.stdout + done.stderr  # the package the node holds
    job = next(w for line in done.stdout.splitlines() for w in line.split() if "raysubmit_" in w)
    job = job.strip("'\".,")
    logs = subprocess.run([ray, "job", "logs", "--address", dashboard, job], env=_driver_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert logs.returncode == 0, logs.stderr
    assert "sweep job_smoke: 1/1 trials ok" in logs.stdout, logs.stdout[-3000:]
    # The README: results under <--storage>/<sweep name>/ (a smoke run's name ends in _smoke).
    results = storage / "job_smoke"
    assert {"trials.parquet", "sweep.yaml"} <= {p.name for p in results.iterdir()}
    trials = read_trials(str(results))
    kinds = {node["id"]: _kind(node["resources"]) for node in _nodes(head["address"])}
    assert (trials["status"] == "ok").all() and len(trials) == 1
    assert {kinds[node] for node in trials["node_id"]} == {"gpu_16gb"}
    status = subprocess.run([sys.executable, "-m", "raypi.cli", "status", str(results)],
                            env=_driver_env(), capture_output=True, text=True)  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "demo_prognostic" in status.stdout, status.stdout
