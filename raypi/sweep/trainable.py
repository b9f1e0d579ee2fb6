"""The Tune function of one trial: load its rows' features, fit, store its results.

Tune's config holds only ``trial_key``; the trial's full config arrives through
``tune.with_parameters`` (a ``TrialPlan``), so the progress table stays readable and nothing
big travels in the config. A stage-1 model stores its training-row logits for its students;
a student turns its teacher's logits into ``softmax(logits / τ)`` at its own τ. The trial
writes its own result files before it returns, so they survive a killed driver. Exceptions
propagate, so Tune's ``FailureConfig`` retries the trial; the driver records it once it has
failed for good.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from raypi.sweep import _inputs, results, teachers
from raypi.sweep.grid import TrialConfig
from raypi.sweep.resources import threads_for


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of one stage shares (sent once through Ray's object store)."""

    sweep: str
    """Sweep name (the ``sweep`` column)."""
    results: str
    """Results folder, local (shared) or ``s3://``."""
    trials: dict[str, dict]
    """``trial_key`` → the trial's config dict."""
    cpus: float = 1.0
    """CPUs reserved per trial (its torch threads)."""
    epoch_reports: int | None = None
    """Per-epoch results sent to Tune (evenly spaced, last included); None = every epoch.
    ``epochs.parquet`` always holds every epoch."""


def train_trial(config: dict, *, plan: TrialPlan) -> None:
    """Run one trial (the function handed to ``tune.Tuner``).

    Args:
        config: Tune's config: ``{"trial_key": …}``.
        plan: The stage's shared plan.
    """
    from ray import tune

    started = results.now()
    trial = resolve_trial(config, plan)
    torch.set_num_threads(threads_for(plan.cpus))
    device, gpu_ids = _device()
    _write_resolved_config(trial, plan.results)
    fit_result, train_ids, seconds = _fit(trial, plan.results, device)
    if fit_result.train_logits_best is not None and not trial.is_student:
        teachers.write_teacher_outputs(
            plan.results, trial.trial_key, train_ids, fit_result.train_logits_best
        )
    row = results.trial_row(
        plan.sweep,
        trial.to_dict(),
        results.OK,
        auc_final=_float(fit_result.final_val_auc),
        auprc_final=_float(fit_result.final_val_auprc),
        auc_best=_float(fit_result.best_val_auc),
        auprc_best=_float(fit_result.best_val_auprc),
        select_auc_best=_float(fit_result.best_select_auc),
        best_epoch=int(fit_result.best_epoch),
        train_seconds=seconds,
        **_placement(device, gpu_ids),
        started_at=started,
        finished_at=results.now(),
    )
    results.write_trial(plan.results, row, fit_result.history)
    _report_epochs(tune, fit_result.history, plan.epoch_reports)


def resolve_trial(config: dict, plan: TrialPlan) -> TrialConfig:
    """Return the trial a Tune config stands for.

    Grid trials carry ``trial_key``; searched students carry ``point`` (the key of a student
    whose λ and τ are unset) and the sampled ``lam`` and ``tau``, rounded to 3 decimals so
    equal values give equal keys.

    Args:
        config: Tune's config of the trial.
        plan: The stage's plan.

    Returns:
        The trial's config.
    """
    if "trial_key" in config:
        return TrialConfig.from_dict(plan.trials[config["trial_key"]])
    point = TrialConfig.from_dict(plan.trials[config["point"]])
    return replace(point, lam=round(float(config["lam"]), 3), tau=round(float(config["tau"]), 3))


def _fit(trial: TrialConfig, results_dir: str, device: str):
    from raypi.tasks import get_task
    from raypi.train import FitConfig, fit

    probs = None
    if trial.is_student:
        train_ids = _inputs.training_rows(trial).train_ids
        probs = teachers.teacher_probs(results_dir, trial.teacher_key, train_ids, trial.tau)
    data, train_ids = _inputs.fit_data(trial, probs)
    extra = {"lam": trial.lam, "tau": trial.tau} if trial.is_student else {}
    fit_config = FitConfig(
        head=trial.head,
        method=trial.method,
        num_classes=get_task(trial.task).num_classes,
        lr=trial.lr,
        batch_size=trial.batch_size,
        epochs=trial.epochs,
        seed=trial.seed,
        device=device,
        dtype=trial.dtype,
        selection=trial.teacher_selection,
        has_cls_token=_inputs.has_cls_token(trial),
        context=f"{trial.task}/{trial.encoder}/{trial.method}/seed{trial.seed}/{trial.trial_key}",
        **extra,
    )
    start = time.perf_counter()
    fit_result = fit(data, fit_config)
    return fit_result, train_ids, time.perf_counter() - start


def _device() -> tuple[str, list[str]]:
    """Return the torch device and the GPU ids Ray gave this trial ("cpu" for fake GPUs)."""
    import ray

    gpu_ids = [str(i) for i in ray.get_gpu_ids()]
    return ("cuda" if gpu_ids and torch.cuda.is_available() else "cpu"), gpu_ids


def _placement(device: str, gpu_ids: list[str]) -> dict:
    import ray

    context = ray.get_runtime_context()
    return {
        "device": device,
        "node_ip": ray.util.get_node_ip_address(),
        "node_id": context.get_node_id(),
        "gpu_ids": ",".join(gpu_ids),
    }


def _write_resolved_config(trial: TrialConfig, results_dir: str) -> None:
    """Write the trial's full config beside its results (``configs/<trial_key>.json``)."""
    from raypi import io

    io.write_json(io.join(results_dir, "configs", f"{trial.trial_key}.json"), trial.to_dict())


def _report_epochs(tune, history: list[dict], limit: int | None) -> None:
    """Report epochs to Tune: its progress table and TensorBoard files show the curves."""
    count = len(history)
    shown = set(range(count))
    if limit is not None and limit < count:
        shown = {count - 1 - round(i * (count - 1) / max(1, limit - 1)) for i in range(limit)}
        shown = shown if limit > 1 else {count - 1}
    best = {"val_auc": float("-inf"), "select_auc": float("-inf")}
    for index, epoch in enumerate(history):
        for name in best:
            value = _float(epoch.get(name))
            best[name] = max(best[name], value) if value == value else best[name]
        if index not in shown:
            continue
        tune.report(
            {
                "epoch": int(epoch["epoch"]),
                "loss": _float(epoch.get("loss")),
                "val_auc": _float(epoch.get("val_auc")),
                "val_auprc": _float(epoch.get("val_auprc")),
                **{f"best_{k}": v if v > float("-inf") else float("nan") for k, v in best.items()},
            }
        )


def _float(value) -> float:
    return float("nan") if value is None else float(value)
