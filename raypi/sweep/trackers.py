"""Per-member experiment tracking: one MLflow or W&B run per trial, fed epoch by epoch.

Tune sees one trial per pack; a researcher wants one run per model. Each member (trial) gets
its own run, named by its trial key: MLflow's experiment is the sweep (tags name the pack,
stage, method and teacher), W&B's group is the sweep. Every ``TrialConfig`` field is a
parameter; every epoch's metrics arrive through the same epoch callback that reports to Tune
(``trainable.Reporter``); the kept epoch and final metrics close the run. Members recorded ok
are never trained again, so a resumed sweep logs none of them twice, and a retried member
replaces the run of its unfinished attempt. Runs carry configs and metrics only: trials never
read report text (``raypi.sweep._inputs``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

KINDS = ("mlflow", "wandb")
"""The trackers ``--tracker`` accepts."""
FLUSH_EVERY_S = 1.0
"""Least seconds between two batches of epoch metrics sent to MLflow by one member."""
_WANDB_ENV = {"mode": "WANDB_MODE", "entity": "WANDB_ENTITY", "dir": "WANDB_DIR"}


class TrackerError(ValueError):
    """A ``--tracker`` that cannot be used (unknown, duplicated, missing package or URI)."""


@dataclass(frozen=True)
class TrackerSpec:
    """A tracker resolved on the driver, as every trial's worker uses it."""

    kind: str
    """``mlflow`` or ``wandb``."""
    target: str
    """MLflow: its tracking URI. W&B: its project."""
    experiment_id: str = ""
    """MLflow: the id of the sweep's experiment (created once, by the driver)."""
    settings: tuple[tuple[str, str], ...] = ()
    """W&B: ``mode``, ``entity`` and ``dir`` as the driver has them, for workers elsewhere."""


def tracker_arg(text: str) -> str:
    """Check one ``--tracker`` value (``mlflow[=URI]`` or ``wandb[=PROJECT]``) for argparse.

    Args:
        text: The value given on the command line.

    Returns:
        The value, unchanged.

    Raises:
        argparse.ArgumentTypeError: The tracker is unknown, its package is not installed, or
            MLflow has no URI (neither ``mlflow=URI`` nor ``MLFLOW_TRACKING_URI``).
    """
    try:
        _parse(text)
        _module(text.partition("=")[0])
    except TrackerError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _parse(text: str) -> tuple[str, str]:
    kind, _, value = text.partition("=")
    if kind not in KINDS:
        raise TrackerError(f"unknown tracker {text!r}: expected mlflow[=URI] or wandb[=PROJECT]")
    if kind == "mlflow" and not (value or os.environ.get("MLFLOW_TRACKING_URI")):
        raise TrackerError(
            "--tracker mlflow needs a tracking URI: mlflow=URI, or MLFLOW_TRACKING_URI set"
        )
    return kind, value


def _module(kind: str):
    try:
        if kind == "mlflow":
            from mlflow.tracking import MlflowClient

            return MlflowClient
        import wandb

        return wandb
    except ImportError as error:
        raise TrackerError(
            f"--tracker {kind} needs the {error.name} package: pip install 'raypi[tracking]'"
        ) from None


def resolve(names: tuple[str, ...], sweep: str, results_dir: str) -> tuple[TrackerSpec, ...]:
    """Resolve ``--tracker`` values on the driver (MLflow's experiment is created here).

    Args:
        names: The ``--tracker`` values (``LaunchOptions.trackers``).
        sweep: The sweep's name (MLflow experiment, W&B group).
        results_dir: The sweep's results folder (W&B's files go under it when it is local
            and ``WANDB_DIR`` is unset).

    Returns:
        One spec per tracker.

    Raises:
        TrackerError: A tracker is unknown, given twice, or its package is missing.
    """
    kinds = [_parse(name)[0] for name in names]
    if len(set(kinds)) != len(kinds):
        raise TrackerError(f"each tracker may be given once, got {list(names)}")
    specs = []
    for name in names:
        kind, value = _parse(name)
        if kind == "mlflow":
            uri = value or os.environ["MLFLOW_TRACKING_URI"]
            _check_server(uri)
            client = _module(kind)(tracking_uri=uri)
            found = client.get_experiment_by_name(sweep)
            experiment = found.experiment_id if found else client.create_experiment(sweep)
            specs.append(TrackerSpec(kind, uri, experiment_id=experiment))
        else:
            _module(kind)
            specs.append(_wandb_spec(value, results_dir))
    return tuple(specs)


def _check_server(uri: str, wait_s: float = 5.0) -> None:
    """Fail within ``wait_s`` when an ``http(s)://`` tracking server does not answer.

    MLflow's client retries a dead server with back-off for minutes before it gives up.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=wait_s):
            pass
    except OSError as error:
        raise TrackerError(
            f"no MLflow server answers at {uri} within {wait_s:g} s: {error}. Start it "
            "(`mlflow server`), or give the URI of a running one"
        ) from None


def _wandb_spec(project: str, results_dir: str) -> TrackerSpec:
    from raypi import io

    settings = {key: os.environ[env] for key, env in _WANDB_ENV.items() if env in os.environ}
    if "dir" not in settings and not io.is_remote(results_dir):
        settings["dir"] = io.join(results_dir, "wandb")
    if "dir" in settings:
        settings["dir"] = os.path.abspath(settings["dir"])
    project = project or os.environ.get("WANDB_PROJECT", "raypi")
    return TrackerSpec("wandb", project, settings=tuple(sorted(settings.items())))


def final_metrics(result, seconds: float) -> dict[str, float]:
    """Return a member's kept epoch and final metrics, named as in ``trials.parquet``.

    Args:
        result: The member's ``FitResult``.
        seconds: Its training time.

    Returns:
        ``auc_final``, ``auprc_final``, ``auc_best``, ``auprc_best``, ``select_auc_best``,
        ``best_epoch`` and ``train_seconds`` (NaN ones left out).
    """
    values = {
        "auc_final": result.final_val_auc, "auprc_final": result.final_val_auprc,
        "auc_best": result.best_val_auc, "auprc_best": result.best_val_auprc,
        "select_auc_best": result.best_select_auc, "best_epoch": result.best_epoch,
        "train_seconds": seconds,
    }  # fmt: skip
    return {k: float(v) for k, v in values.items() if v is not None and float(v) == float(v)}


class MemberLog:
    """Where one member's epochs go: its TensorBoard and its tracker runs."""

    def __init__(self, sinks: list) -> None:
        self.sinks = sinks

    def add_scalar(self, name: str, value: float, step: int) -> None:
        """Send one metric of one epoch to every sink."""
        for sink in self.sinks:
            sink.add_scalar(name, value, step)

    def finish(self, result, seconds: float) -> None:
        """Send the kept epoch and final metrics (see ``final_metrics``)."""
        metrics = final_metrics(result, seconds)
        for sink in self.sinks:
            sink.finish(metrics)


@contextlib.contextmanager
def member_log(plan, trial, pack: str | None = None):
    """Open a member's TensorBoard and tracker runs for its training; close them after.

    Args:
        plan: The experiment's ``TrialPlan`` (results folder, sweep, trackers).
        trial: The member's ``TrialConfig``.
        pack: The key of the member's pack, if it trains in one.

    Yields:
        The member's ``MemberLog``; its runs end finished, or failed if the block raises.
    """
    from raypi.sweep._board import MemberBoard

    sinks: list = []
    try:
        sinks.append(MemberBoard(plan.results, trial.trial_key))
        for spec in getattr(plan, "trackers", ()):
            opener = MlflowRun if spec.kind == "mlflow" else WandbRun
            sinks.append(opener(spec, plan.sweep, trial, pack))
        yield MemberLog(sinks)
    except BaseException:
        for sink in sinks:
            with contextlib.suppress(Exception):  # the training's own error is the one raised
                sink.close(ok=False)
        raise
    for sink in sinks:
        sink.close(ok=True)


def _tags(sweep: str, trial, pack: str | None) -> dict[str, str]:
    tags = {"sweep": sweep, "trial_key": trial.trial_key, "method": trial.method,
            "stage": "stage2" if trial.is_student else "stage1"}  # fmt: skip
    if pack:
        tags["pack"] = pack
    if trial.teacher_key:
        tags["teacher_key"] = trial.teacher_key
    return tags


class MlflowRun:
    """One member's MLflow run (tags ``raypi.*``; epochs sent at most once a second)."""

    def __init__(self, spec: TrackerSpec, sweep: str, trial, pack: str | None) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        # MLflow prints each ended run's URL to stdout: one line per member in Ray's logs.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        self.client = MlflowClient(tracking_uri=spec.target)
        earlier = self.client.search_runs(
            [spec.experiment_id], filter_string=f"tags.`raypi.trial_key` = '{trial.trial_key}'"
        )
        for run in earlier:  # an attempt never recorded ok: the member trains again
            self.client.delete_run(run.info.run_id)
        tags = {f"raypi.{k}": v for k, v in _tags(sweep, trial, pack).items()}
        run = self.client.create_run(spec.experiment_id, run_name=trial.trial_key, tags=tags)
        self.run_id, self.pending, self.sent = run.info.run_id, [], time.monotonic()
        params = [Param(k, str(v)) for k, v in sorted(trial.to_dict().items())]
        self.client.log_batch(self.run_id, params=params)

    def add_scalar(self, name: str, value: float, step: int) -> None:
        """Queue one epoch metric; send the queue when a second has passed."""
        from mlflow.entities import Metric

        self.pending.append(Metric(name, float(value), int(time.time() * 1000), int(step)))
        if time.monotonic() - self.sent >= FLUSH_EVERY_S:
            self._flush()

    def _flush(self) -> None:
        for start in range(0, len(self.pending), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=self.pending[start : start + 1000])
        self.pending, self.sent = [], time.monotonic()

    def finish(self, metrics: dict[str, float]) -> None:
        """Send the queued epochs and the final metrics."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(k, v, now, 0) for k, v in metrics.items()]
        self._flush()

    def close(self, ok: bool) -> None:
        """End the run, ``FINISHED`` or ``FAILED``."""
        if ok:
            self._flush()
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")


def wandb_id(sweep: str, trial_key: str) -> str:
    """Return the W&B run id of a member: the sweep and trial key, in W&B's characters."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{sweep}-{trial_key}")[-64:]


class WandbRun:
    """One member's W&B run (group: the sweep; id: ``wandb_id``; console and stats off)."""

    def __init__(self, spec: TrackerSpec, sweep: str, trial, pack: str | None) -> None:
        import wandb

        settings = dict(spec.settings)
        run_id = wandb_id(sweep, trial.trial_key)
        if "dir" in settings:
            os.makedirs(settings["dir"], exist_ok=True)
            _drop_offline(settings["dir"], run_id)
        tags = _tags(sweep, trial, pack)
        self.run = wandb.init(
            project=spec.target, entity=settings.get("entity"), group=sweep,
            job_type=tags["stage"], name=trial.trial_key, id=run_id, resume="allow",
            config={**trial.to_dict(), "pack": pack}, dir=settings.get("dir"),
            tags=[f"{k}:{tags[k]}" for k in ("method", "teacher_key") if k in tags],
            mode=settings.get("mode", "online"), reinit="create_new",
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )  # fmt: skip

    def add_scalar(self, name: str, value: float, step: int) -> None:
        """Log one epoch metric at step = epoch (W&B never takes a step twice)."""
        self.run.log({name: float(value)}, step=int(step))

    def finish(self, metrics: dict[str, float]) -> None:
        """Put the final metrics in the run's summary."""
        self.run.summary.update(metrics)

    def close(self, ok: bool) -> None:
        """Finish the run (exit code 1 when the member failed)."""
        self.run.finish(exit_code=0 if ok else 1)


def _drop_offline(folder: str, run_id: str) -> None:
    """Remove offline files of an earlier, unfinished attempt of the run (never synced twice)."""
    import glob
    import shutil

    for path in glob.glob(os.path.join(folder, "wandb", f"offline-run-*-{run_id}")):
        shutil.rmtree(path, ignore_errors=True)
