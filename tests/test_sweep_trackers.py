"""Per-member tracking on real components: an MLflow server (SQLite) and W&B offline.

One small sweep runs on a local Ray with ``--tracker``-equivalent options; its MLflow runs are
read back through MLflow's client from a ``mlflow server`` on 127.0.0.1, its W&B runs from the
offline files. A second run of the finished sweep must log nothing again. TensorBoard's own
reader loads the per-member event files, locally (the README's ``tensorboard --logdir``
folder) and on S3 (moto).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from raypi import io
from raypi.sweep import (
    Grid,
    LaunchOptions,
    SweepSpec,
    read_epochs,
    read_trials,
    run_sweep,
    trackers,
)
from raypi.sweep.synthetic import make_synthetic_study

ray = pytest.importorskip("ray")
mlflow = pytest.importorskip("mlflow")
pytest.importorskip("wandb")
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on 127.0.0.1 with a SQLite backend store."""
    folder, port = tmp_path_factory.mktemp("mlflow"), _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--default-artifact-root", str(folder / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        # Without MLflow's own job runner (about ten huey worker processes raypi never uses).
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "no MLflow server"
            time.sleep(0.5)
    yield uri
    os.killpg(server.pid, 15)
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(s3_server, tmp_path_factory):
    """One local Ray, started after the S3 server and with W&B offline, so workers see both."""
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    os.environ.pop("WANDB_MODE")
    os.environ.pop("WANDB_SILENT")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_synthetic_study(
        str(tmp_path_factory.mktemp("study")),
        tasks=("demo_prognostic",),
        image_encoders=("tiny_vit",),
        text_encoders=("tiny_bert",),
    )


def spec(study, name: str) -> SweepSpec:
    grid = Grid(tasks=("demo_prognostic",), encoders=("tiny_vit",), text_encoders=("tiny_bert",),
                seeds=(0,), sizes=(40,), epochs=3, lams=(0.5,), taus=(2.0,),
                methods=("image", "teacher", "distill"))  # fmt: skip
    return SweepSpec(name=name, grids=(grid,), data={"demo": study})


@pytest.fixture(scope="module")
def tracked(cluster, study, mlflow_server, tmp_path_factory):
    storage = str(tmp_path_factory.mktemp("tracked"))
    options = LaunchOptions(
        max_failures=0, trackers=(f"mlflow={mlflow_server}", "wandb=raypi-test")
    )
    outcome = run_sweep(spec(study, "tracked"), storage=storage, options=options)
    return outcome, options


def _runs(uri: str, sweep: str):
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(sweep)
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


@pytest.mark.slow  # the tracked sweep (MLflow server, Ray, W&B): ~40-120 s
def test_mlflow_gets_one_run_per_member_with_params_and_epochs(tracked, mlflow_server):
    outcome, _ = tracked
    trials, epochs = read_trials(outcome.results), read_epochs(outcome.results)
    assert (trials["status"] == "ok").all() and len(trials) == 3
    client, runs = _runs(mlflow_server, "tracked")
    by_name = {run.info.run_name: run for run in runs}
    assert len(runs) == 3 and set(by_name) == set(trials["trial_key"])
    for row in trials.itertuples():
        run = by_name[row.trial_key]
        assert run.info.status == "FINISHED"
        config = io.read_json(io.join(outcome.results, "configs", f"{row.trial_key}.json"))
        assert run.data.params == {k: str(v) for k, v in config.items()}
        assert run.data.tags["raypi.sweep"] == "tracked"
        assert run.data.tags["raypi.pack"] == row.pack_key
        assert run.data.tags.get("raypi.teacher_key") == config["teacher_key"]
        history = client.get_metric_history(run.info.run_id, "val_auc")
        member = epochs[epochs["trial_key"] == row.trial_key].sort_values("epoch")
        assert [m.step for m in history] == [1, 2, 3] == member["epoch"].tolist()
        assert [m.value for m in history] == pytest.approx(member["val_auc"].tolist())
        assert run.data.metrics["auc_final"] == pytest.approx(row.auc_final)
        assert run.data.metrics["best_epoch"] == row.best_epoch
    student = trials.loc[trials["method"] == "distill"].iloc[0]
    assert student.teacher_key in set(trials["trial_key"])
    history = client.get_metric_history(by_name[student.trial_key].info.run_id, "kd_loss")
    assert len(history) == 3  # a student's distillation loss, per epoch


@pytest.mark.slow  # the tracked sweep (MLflow server, Ray, W&B): ~40-120 s
def test_wandb_offline_gets_one_run_per_member(tracked):
    outcome, _ = tracked
    trials = read_trials(outcome.results)
    folders = sorted(Path(outcome.results, "wandb", "wandb").glob("offline-run-*"))
    ids = {folder.name.split("-", 3)[3] for folder in folders}  # offline-run-<time>-<id>
    assert len(folders) == 3
    assert ids == {trackers.wandb_id("tracked", key) for key in trials["trial_key"]}
    for folder in folders:
        logs = list(folder.glob("*.wandb"))
        assert len(logs) == 1 and logs[0].stat().st_size > 0
        key = folder.name.rsplit("-", 1)[-1]
        data = logs[0].read_bytes()
        assert key.encode() in data and b"val_auc" in data and b"auc_final" in data


@pytest.mark.slow  # the tracked sweep (MLflow server, Ray, W&B): ~40-120 s
def test_a_resumed_sweep_logs_no_member_twice(tracked, study, mlflow_server):
    outcome, options = tracked
    again = run_sweep(spec(study, "tracked"), storage=str(Path(outcome.results).parent),
                      options=options)  # fmt: skip
    assert again.ran == {"stage1": 0, "stage2": 0} and again.ok == 3
    _, runs = _runs(mlflow_server, "tracked")
    assert len(runs) == 3
    assert len(list(Path(outcome.results, "wandb", "wandb").glob("offline-run-*"))) == 3


def test_a_retried_member_replaces_its_unfinished_run(mlflow_server, study, tmp_path):
    from raypi.sweep.grid import expand
    from raypi.sweep.trainable import TrialPlan

    trial = expand(spec(study, "retried"))[0]
    specs = trackers.resolve((f"mlflow={mlflow_server}",), "retried", str(tmp_path))
    plan = TrialPlan("retried", str(tmp_path), {}, trackers=specs)
    with pytest.raises(RuntimeError, match="attempt 1"):
        with trackers.member_log(plan, trial) as log:
            log.add_scalar("val_auc", 0.5, 1)
            raise RuntimeError("attempt 1")
    with trackers.member_log(plan, trial) as log:
        log.add_scalar("val_auc", 0.7, 1)
    _, runs = _runs(mlflow_server, "retried")
    assert [(r.info.status, r.data.metrics["val_auc"]) for r in runs] == [("FINISHED", 0.7)]
    assert len(list((tmp_path / "tensorboard" / trial.trial_key).iterdir())) == 1


def test_tracker_values_are_checked_on_the_command_line(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert trackers.tracker_arg("mlflow=http://127.0.0.1:1") == "mlflow=http://127.0.0.1:1"
    with pytest.raises(argparse.ArgumentTypeError, match="needs a tracking URI"):
        trackers.tracker_arg("mlflow")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown tracker 'comet'"):
        trackers.tracker_arg("comet")
    with pytest.raises(trackers.TrackerError, match="once"):
        trackers.resolve(("wandb", "wandb=x"), "s", "results")


def test_a_dead_mlflow_server_is_refused_within_seconds():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(trackers.TrackerError, match=f"no MLflow server answers at {dead}"):
        trackers.resolve((f"mlflow={dead}",), "s", "results")
    assert time.monotonic() - started < 6


def _readme_logdir(results: str) -> str:
    """The README's ``tensorboard --logdir`` folder, for this sweep's results."""
    line = next(
        line for line in (REPO / "README.md").read_text().splitlines()
        if line.strip().startswith("tensorboard --logdir")
    )  # fmt: skip
    folder = line.split("--logdir", 1)[1].split()[0]
    return re.sub(r"^results/[^/]+", results, folder)


@pytest.mark.slow  # the tracked sweep (MLflow server, Ray, W&B): ~40-120 s
def test_readme_tensorboard_line_reads_a_finished_sweep(tracked):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    outcome, _ = tracked
    logdir = _readme_logdir(outcome.results)
    multiplexer = EventMultiplexer().AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    trials = read_trials(outcome.results)
    assert set(multiplexer.Runs()) == set(trials["trial_key"])
    for key in trials["trial_key"]:
        assert [e.step for e in multiplexer.Scalars(key, "val_auc")] == [1, 2, 3]


def test_tensorboard_event_files_land_on_s3(cluster, study):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    outcome = run_sweep(spec(study, "boards"), storage="s3://raypi-test/boards",
                        options=LaunchOptions(max_failures=0))  # fmt: skip
    trials = read_trials(outcome.results)
    assert (trials["status"] == "ok").all()
    for key in trials["trial_key"]:
        names = io.listdir(io.join(outcome.results, "tensorboard", key))
        assert len(names) == 1 and names[0].startswith("events.out.tfevents")
    # TensorBoard reads them where they are (boto3, honouring AWS_ENDPOINT_URL).
    multiplexer = EventMultiplexer().AddRunsFromDirectory(_readme_logdir(outcome.results))
    multiplexer.Reload()
    assert set(multiplexer.Runs()) == set(trials["trial_key"])
    for key in trials["trial_key"]:
        assert [e.step for e in multiplexer.Scalars(key, "val_auc")] == [1, 2, 3]
