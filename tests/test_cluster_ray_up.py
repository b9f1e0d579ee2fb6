"""``ray up`` itself, on Ray's local (SSH) provider, against an sshd on 127.0.0.1.

The cluster file is ``cluster.yaml`` with only its provider and auth sections replaced (local
provider, head 127.0.0.1, a login made for this test) and its AWS node types dropped (the local
provider brings its own); everything else — file mounts, rsync excludes, setup and start
commands — is taken from it unchanged, so the two cannot drift. The test then follows the
README's "On a cluster" commands: ``ray get-auth-token --generate``, ``ray up``,
``ray dashboard``, a Ray Job of a smoke sweep from the repository root, ``raypi status``,
``ray down``.

Stand-ins, each for something only a cloud account has:

- The node is this machine: a throwaway login (``useradd``, home in a temp folder, so nothing
  is written into ``/root``) behind the test's own sshd on a free port; Ray's auth section has
  no port field, so ``ssh_proxy_command`` relays to that port. The login's ``TMPDIR`` (sshd's
  ``SetEnv``) gives its Ray its own temp folder, as a node has its own ``/tmp``.
- The node's disk kept its venv: ``~/venv`` exists before ``ray up`` and sees every locked
  package (a ``.pth`` naming this test's site-packages, which ``make install`` filled from the
  same constraints.txt, plus the console scripts pip would have written). The setup commands
  run unchanged: ``pip install -c constraints.txt -e ~/raypi`` finds every requirement
  satisfied at its locked version and installs raypi from the synced tree (its build backend,
  setuptools, still comes from the package index pip is configured with, as on a node). A
  fresh node downloads CUDA torch there instead (minutes), which is why the suite does not.
- cluster.yaml's head start commands begin with ``ray stop``; run as the throwaway login it
  stops only that login's Ray (signalling another user's processes is refused): a decoy
  process named ``raylet`` owned by root must survive ``ray up``.

sshd needs its privilege-separation folder ``/run/sshd``: created if absent (and left).
Everything the test started is ended by its PIDs (the login's processes, sshd, the SSH
masters of its key, ``ray dashboard``): ``ray down`` on the local provider leaves the head's
processes running (FACTS.md), and ``ray stop`` here would end every Ray on the machine.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml
from test_cluster_autoscaler import JOB_EXCLUDES, _free_port, job_repository

from raypi.sweep import read_trials

REPO = Path(__file__).resolve().parents[1]
CLUSTER_YAML = REPO / "cluster.yaml"
NODE_PYTHON = "/usr/bin/python3.11"  # what cluster.yaml's first setup command looks for
BIN = Path(sys.executable).parent
TOOLS = ("/usr/sbin/sshd", "/usr/sbin/useradd", "/usr/sbin/userdel")
pytestmark = [pytest.mark.slow, pytest.mark.fixed_ports]

RELAY = """import os, socket, sys, threading
link = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def up():
    while data := os.read(0, 65536):
        link.sendall(data)
    link.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := link.recv(65536):
    os.write(1, data)
"""
"""The ssh ProxyCommand: stdin/stdout to the test's sshd port."""


def local_cluster_file(cluster_file: Path, user: str, key: Path, proxy: str) -> dict:
    """Return ``cluster_file`` with a local provider on 127.0.0.1 and an SSH login instead."""
    spec = yaml.safe_load(cluster_file.read_text())
    for provider_specific in ("provider", "auth", "available_node_types", "head_node_type"):
        spec.pop(provider_specific)
    spec["provider"] = {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}
    spec["auth"] = {"ssh_user": user, "ssh_private_key": str(key), "ssh_proxy_command": proxy}
    return spec


def _missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "needs root (to add a throwaway login and run sshd)"
    missing = [tool for tool in TOOLS + (NODE_PYTHON,) if not os.access(tool, os.X_OK)]
    missing += [tool for tool in ("ssh", "ssh-keygen", "rsync") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (`make sysdeps` installs openssh-server and rsync)"
    if shutil.which("ray", path=str(BIN)) is None:
        return "the ray command is not installed beside this Python"
    return None


def _as_user(user: str, *command: str) -> None:
    subprocess.run(["runuser", "-u", user, "--", *command], check=True, capture_output=True)


def _seed_venv(user: str, home: Path) -> None:
    """Give the login a ``~/venv`` that sees every package of this test's venv (see top)."""
    import importlib.metadata
    import sysconfig

    _as_user(user, NODE_PYTHON, "-m", "venv", "--without-pip", str(home / "venv"))
    locked = sysconfig.get_paths()["purelib"]
    site = home / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "node_venv_kept.pth").write_text(locked + "\n")
    for dist in importlib.metadata.distributions(path=[locked]):
        for point in dist.entry_points.select(group="console_scripts"):
            script = home / "venv" / "bin" / point.name
            if script.exists() or dist.metadata["Name"] == "raypi":
                continue
            top = point.attr.split(".")[0]
            script.write_text(f"#!{home}/venv/bin/python\nimport sys\n"
                              f"from {point.module} import {top}\n"
                              f"sys.exit({point.attr}())\n")  # fmt: skip
            script.chmod(0o755)
    subprocess.run(["chown", "-R", f"{user}:{user}", str(home / "venv")], check=True)


def _start_sshd(folder: Path, user: str, home: Path, port: int) -> subprocess.Popen:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host")],
                   check=True)  # fmt: skip
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host'}",
        f"PidFile {folder / 'sshd.pid'}", "AuthorizedKeysFile .ssh/authorized_keys",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        f"AllowUsers {user}", f"SetEnv TMPDIR={home / 'tmp'}", "MaxStartups 100",
        "MaxSessions 100", "",
    ]))  # fmt: skip
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    log = open(folder / "sshd.log", "w")  # noqa: SIM115 - kept open for the daemon's life
    return subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=log,
                            start_new_session=True)  # fmt: skip


def _pids_where(test) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if test(entry):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _end(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def node():
    """A login on this machine behind a fresh sshd on 127.0.0.1; the cluster file for it."""
    reason = _missing_tools()
    if reason:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="rpup"))
    folder.chmod(0o755)
    user, home, port = f"rpup{uuid.uuid4().hex[:8]}", folder / "home", _free_port()
    subprocess.run(["/usr/sbin/useradd", "-M", "-d", str(home), "-s", "/bin/bash", "-p", "*",
                    user], check=True)  # fmt: skip
    uid, started = pwd.getpwnam(user).pw_uid, []
    try:
        (home / ".ssh").mkdir(parents=True)
        (home / "tmp").mkdir()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "key")],
                       check=True)  # fmt: skip
        shutil.copy(folder / "key.pub", home / ".ssh" / "authorized_keys")
        subprocess.run(["chown", "-R", f"{user}:{user}", str(home)], check=True)
        (home / ".ssh").chmod(0o700)
        _seed_venv(user, home)
        started.append(_start_sshd(folder, user, home, port))
        (folder / "relay.py").write_text(RELAY)
        proxy = f"{sys.executable} {folder / 'relay.py'} {port}"
        spec = local_cluster_file(CLUSTER_YAML, user, folder / "key", proxy)
        (folder / "cluster.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        laptop = folder / "laptop"  # the user's machine: its HOME and TMPDIR
        (laptop / "tmp").mkdir(parents=True)
        path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
        env = {**os.environ, "HOME": str(laptop), "TMPDIR": str(laptop / "tmp"), "PATH": path,
               "RAY_AUTH_MODE": "token"}  # fmt: skip
        yield {"folder": folder, "home": home, "user": user, "env": env, "started": started,
               "file": folder / "cluster.yaml"}  # fmt: skip
    finally:
        for _ in range(3):  # the login's processes, then SSH masters of this test's key
            _end(_pids_where(lambda entry: entry.stat().st_uid == uid))
            _end(
                _pids_where(lambda e: str(folder / "key").encode() in (e / "cmdline").read_bytes())
            )
            time.sleep(1)
        for process in started:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        subprocess.run(["/usr/sbin/userdel", user], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _run(node, *command: str, cwd: Path | None = None, timeout: int = 600) -> str:
    done = subprocess.run(list(command), cwd=cwd, env=node["env"], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, f"{command[:3]}: {done.stdout[-4000:]}{done.stderr[-4000:]}"
    return done.stdout + done.stderr


def _locked(name: str) -> str:
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1]
    raise AssertionError(f"constraints.txt locks no {name}")


def _decoy_raylet(folder: Path) -> subprocess.Popen:
    """A root-owned process named ``raylet`` (a copy of sleep), for ``ray stop`` to miss."""
    (folder / "decoy").mkdir()
    shutil.copy(shutil.which("sleep"), folder / "decoy" / "raylet")
    return subprocess.Popen([str(folder / "decoy" / "raylet"), "900"], start_new_session=True)


def test_ray_up_installs_the_synced_tree_runs_a_job_and_goes_down(node):
    """The README's "On a cluster" commands against the local provider (see the top)."""
    ray, folder, home = str(BIN / "ray"), node["folder"], node["home"]
    repo = job_repository(folder)  # the study under folder: readable by the node's login
    decoy = _decoy_raylet(folder)
    node["started"].append(decoy)

    _run(node, ray, "get-auth-token", "--generate", cwd=repo)
    _run(node, ray, "up", "-y", str(node["file"]), cwd=repo)
    assert decoy.poll() is None, "cluster.yaml's `ray stop` ended another user's process"
    assert (home / ".ray" / "auth_token").read_text() == (
        folder / "laptop" / ".ray" / "auth_token"
    ).read_text()
    code = (
        "import json, raypi, ray, torch; print('VERSIONS', "
        "json.dumps([raypi.__file__, ray.__version__, torch.__version__]))"
    )
    # -P: not the home folder first on sys.path (its ~/raypi is the synced repository root).
    out = _run(node, ray, "exec", str(node["file"]), f"~/venv/bin/python -P -c {json.dumps(code)}")
    line = next(line for line in out.splitlines() if line.startswith("VERSIONS "))
    where, ray_version, torch_version = json.loads(line.split(" ", 1)[1])
    assert where == str(home / "raypi" / "raypi" / "__init__.py")  # the synced tree, editable
    assert ray_version == _locked("ray")
    assert torch_version.split("+")[0] == _locked("torch")  # +cu130: the wheel's local label

    _await_no_ssh_master(folder / "key")
    port = _free_port()
    forward = subprocess.Popen([ray, "dashboard", "-p", str(port), str(node["file"])],
                               env=node["env"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    node["started"].append(forward)
    storage = home / "results"
    _submit_smoke_sweep(node, repo, f"http://127.0.0.1:{port}", storage)
    assert forward.poll() is None, "ray dashboard stopped forwarding"
    _run(node, ray, "down", "-y", str(node["file"]), cwd=repo)


def _await_no_ssh_master(key: Path) -> None:
    """Wait until the SSH master of the last ``ray`` command has gone (``ControlPersist=10s``).

    ``ray dashboard`` run while such a master lives hands its ``-L`` forward to that master and
    reports "Failed to forward dashboard" (ray-project/ray#18873); seen here: nothing was
    forwarded within 60 s. Started after it has gone, its ssh is the master and forwards.
    """
    deadline = time.monotonic() + 60
    while _pids_where(lambda entry: str(key).encode() in (entry / "cmdline").read_bytes()):
        assert time.monotonic() < deadline, "an SSH master of this test's key outlived 60 s"
        time.sleep(1)


def _submit_smoke_sweep(node, repo: Path, dashboard: str, storage: Path) -> None:
    ray = str(BIN / "ray")
    deadline = time.monotonic() + 60
    listing = [ray, "job", "list", "--address", dashboard]
    while subprocess.run(listing, env=node["env"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "ray dashboard forwarded nothing within 60 s"
        time.sleep(1)
    out = _run(node, ray, "job", "submit", "--address", dashboard, "--working-dir", ".",
               "--runtime-env-json", json.dumps({"excludes": JOB_EXCLUDES}), "--",
               "python", "sweeps/distill_grid.py", "--config", "sweeps/configs/job.yaml",
               "--smoke-test", "--address", "auto", "--storage", str(storage),
               "--pack-memory-gb", "0", cwd=repo)  # fmt: skip
    assert "succeeded" in out, out[-3000:]
    job = next(w for w in out.split() if w.strip("'\".,").startswith("raysubmit_"))
    logs = _run(node, ray, "job", "logs", "--address", dashboard, job.strip("'\".,"))
    assert "sweep job_smoke: 1/1 trials ok" in logs, logs[-3000:]
    trials = read_trials(str(storage / "job_smoke"))
    assert (trials["status"] == "ok").all() and len(trials) == 1
    status = _run(node, sys.executable, "-m", "raypi.cli", "status", str(storage / "job_smoke"))
    assert "demo_prognostic" in status, status
