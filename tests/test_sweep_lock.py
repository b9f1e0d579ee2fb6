"""Two drivers on one results folder: the second refuses, naming the first; stale locks go."""

import json
import socket
import subprocess
import sys
import time

import pytest

from raypi.sweep.lock import LOCK_FILE, STALE_S, DriverLock, SweepLockedError


def _write_lock(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    record = {"host": socket.gethostname(), "pid": 1, "started_at": time.time(),
              "heartbeat_at": time.time(), "token": "other"} | fields  # fmt: skip
    (folder / LOCK_FILE).write_text(json.dumps(record))


def test_second_driver_refuses_naming_the_first(tmp_path):
    with DriverLock(str(tmp_path)):
        held = json.loads((tmp_path / LOCK_FILE).read_text())
        with pytest.raises(SweepLockedError) as error:
            DriverLock(str(tmp_path)).acquire()
        message = str(error.value)
        assert f"pid {held['pid']} on {held['host']}" in message and "heartbeat" in message
        assert str(tmp_path / LOCK_FILE) in message
    assert not (tmp_path / LOCK_FILE).exists()  # released


def test_lock_of_a_dead_local_process_is_taken_over(tmp_path, caplog):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _write_lock(tmp_path, pid=gone.pid)
    with DriverLock(str(tmp_path)) as lock:
        assert json.loads((tmp_path / LOCK_FILE).read_text())["token"] == lock.token
    assert "process is gone" in caplog.text


def test_lock_without_heartbeat_is_stale_even_from_another_host(tmp_path):
    old = time.time() - STALE_S - 5
    _write_lock(tmp_path, host="another-host", pid=4242, heartbeat_at=old, started_at=old)
    with DriverLock(str(tmp_path)):
        pass
    _write_lock(tmp_path, host="another-host", pid=4242)  # a live driver elsewhere
    with pytest.raises(SweepLockedError, match="another-host"):
        DriverLock(str(tmp_path)).acquire()


def test_locked_folder_makes_the_sweep_script_exit_2_without_writing(tmp_path, capsys):
    import runpy
    from pathlib import Path

    import yaml

    repo = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((repo / "sweeps/configs/distill_grid_demo.yaml").read_text())
    config["data"] = {"demo": {"root": str(tmp_path / "none"), "features": str(tmp_path / "f")}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    results = tmp_path / "results" / config["name"]
    with DriverLock(str(results)):
        module = runpy.run_path(str(repo / "sweeps" / "distill_grid.py"))
        argv = ["--config", str(tmp_path / "sweep.yaml"), "--storage", str(tmp_path / "results")]
        assert module["main"](argv) == 2
    err = capsys.readouterr().err
    assert "being written by another sweep driver" in err
    assert sorted(p.name for p in results.iterdir()) == []
