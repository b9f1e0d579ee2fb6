"""The Tune function: one pack — of the trials that share their features, or of one trial.

Tune's config holds only ``pack`` (a pack of members, see ``raypi.sweep.packs``),
``trial_key`` (a pack of one: ``--no-packs``, the search's stage 1) or a searched ``point`` (a
pack of one sampled student); full configs arrive through ``tune.with_parameters`` (a
``TrialPlan``), so nothing big travels in the config. All three train the same way: the working
set is loaded once (``sweep.working_set``), members train in stacks, stage-1 stacks first. A
stage-1 model stores its training-row logits for its students; a student turns its teacher's
logits into soft targets at its own τ — from memory when its teacher trained in its pack, else
from the stored outputs. Every member writes its own result files as it finishes, so they
survive a killed driver, and a pack rerun trains only the members not recorded ok. Epochs reach
Tune as they happen. Exceptions propagate, so Tune's ``FailureConfig`` retries; the driver
records the trial (or the pack's unfinished members) once it has failed for good.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace

import torch

from raypi.sweep import _inputs, results, teachers
from raypi.sweep._reporter import Reporter
from raypi.sweep.grid import TrialConfig
from raypi.sweep.resources import threads_for
from raypi.sweep.trackers import member_log


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of one Tune experiment shares (sent once through Ray's object store)."""

    sweep: str
    """Sweep name (the ``sweep`` column)."""
    results: str
    """Results folder, local (shared) or ``s3://``."""
    trials: dict[str, dict]
    """``trial_key`` → the trial's config dict."""
    cpus: float = 1.0
    """CPUs reserved per trial (its torch threads)."""
    epoch_reports: int | None = None
    """Per-epoch results sent to Tune per member (evenly spaced, last included); None = every
    epoch. ``epochs.parquet`` always holds every epoch."""
    packs: dict[str, list[str]] = field(default_factory=dict)
    """Pack key → its members' trial keys, in training order (stage-1 models first)."""
    pack_memory: dict[str, float] = field(default_factory=dict)
    """Pack key → the host memory in bytes it asked Ray for, and may use (``sweep._memory``)."""
    stack: bool = True
    """Train a pack's members of one head, shape and stage as one stacked model
    (``packs.plan_stacks``); False: one member at a time."""
    trackers: tuple = ()
    """Where members' runs are also logged (``sweep.trackers.TrackerSpec``: MLflow, W&B)."""


def train_trial(config: dict, *, plan: TrialPlan) -> None:
    """Run one pack — of many members, or of one trial (the function handed to ``tune.Tuner``).

    Args:
        config: Tune's config: ``{"pack": …}``, ``{"trial_key": …}`` or a searched point.
        plan: The experiment's shared plan.
    """
    torch.set_num_threads(threads_for(plan.cpus))
    device, gpu_ids = _device()
    key, members = pack_of(config, plan)
    _train_pack(key, members, plan, device, gpu_ids)


def pack_of(config: dict, plan: TrialPlan) -> tuple[str | None, list[TrialConfig]]:
    """Return the pack a Tune config stands for: its key (None for a pack of one) and members.

    Args:
        config: Tune's config of the trial.
        plan: The experiment's plan.

    Returns:
        ``(pack key or None, members in training order)``.
    """
    key = config.get("pack")
    if key is None:
        return None, [resolve_trial(config, plan)]
    return key, [TrialConfig.from_dict(plan.trials[member]) for member in plan.packs[key]]


def _train_pack(key, members, plan: TrialPlan, device: str, gpu_ids) -> None:
    """Train a pack's members on one working set, stage-1 stacks first.

    A pack (re)run trains only its members not recorded ok. A pack of one always trains: the
    driver suggests only unrecorded trials, a searched sample is new, and reading every
    recorded row in each of thousands of one-trial packs would cost more than its fit.

    Args:
        key: The pack's key (``pack_key`` column, memory budget); None for a pack of one.
        members: Its members, stage-1 models first.
        plan: The experiment's plan.
        device: Torch device.
        gpu_ids: The GPU ids Ray gave it.
    """
    from raypi.sweep._memory import MemoryBudget
    from raypi.sweep.packs import plan_stacks
    from raypi.sweep.working_set import load_working_set, member_data
    from raypi.train import fit, fit_stack  # noqa: F401 - imported before memory is counted

    recorded = results.statuses(plan.results) if key is not None else {}
    todo = [m for m in members if recorded.get(m.trial_key) != results.OK]
    if not todo:
        return
    if device == "cuda":  # the CUDA context's host memory is not the pack's
        torch.zeros(1, device=device)
    budget = MemoryBudget(plan.pack_memory.get(key), f"pack {key}")
    started = results.now()
    working = load_working_set(todo)
    budget.check(working.nbytes)
    reporter = Reporter(plan.epoch_reports, members=len(todo), budget=budget)
    outputs: dict[str, tuple[list[str], torch.Tensor]] = {}
    bytes_read = working.bytes_read  # on the pack's first member, so the column sums
    for group in plan_stacks(todo, stack=plan.stack):
        inputs = [member_data(working, trial) for trial in group]
        for trial, (data, train_ids) in zip(group, inputs):
            data.teacher_probs = _teacher_probs(trial, train_ids, outputs, plan.results)
        extras = [{"bytes_read": 0, "pack_key": key} for _ in group]
        extras[0]["bytes_read"], bytes_read = bytes_read, 0
        fitted = _fit_and_record(group, inputs, plan, (device, gpu_ids), reporter, started,
                                 extras=extras)  # fmt: skip
        for trial, (_, train_ids), result in zip(group, inputs, fitted):
            if result.train_logits_best is not None and not trial.is_student:
                outputs[trial.trial_key] = (train_ids, result.train_logits_best)
            reporter.member_done()
        started = results.now()
    reporter.finish()


def _teacher_probs(trial: TrialConfig, train_ids: list[str], outputs: dict, results_dir: str):
    """A student's soft targets: from its teacher in this pack, else from the stored outputs."""
    from raypi.train.objectives import teacher_targets

    if not trial.is_student:
        return None
    ids, logits = outputs.get(trial.teacher_key, (None, None))
    if ids == train_ids:
        return teacher_targets(logits, trial.tau)
    return teachers.teacher_probs(results_dir, trial.teacher_key, train_ids, trial.tau)


def _fit_and_record(trials, inputs, plan, placement, reporter, started, extras):
    """Fit one trial (or a stack of them), reporting epochs live, then record each one.

    A stack's wall time is shared equally by its members' ``train_seconds`` (so the column
    sums to the time spent); every member records the stack's size.

    Returns:
        The members' ``FitResult``s.
    """
    from raypi.train import fit, fit_stack

    device, _ = placement
    settings = [fit_config_of(trial, device) for trial in trials]
    for trial in trials:
        _write_resolved_config(trial, plan.results)
    with contextlib.ExitStack() as opened:
        logs = [opened.enter_context(member_log(plan, t, extra.get("pack_key")))
                for t, extra in zip(trials, extras)]  # fmt: skip
        callbacks = [reporter.epoch(t.epochs, log) for t, log in zip(trials, logs)]
        clock, reporting = time.perf_counter(), reporter.seconds
        if len(trials) == 1:
            fitted = [fit(inputs[0][0], settings[0], on_epoch=callbacks[0])]
        else:
            fitted = fit_stack([data for data, _ in inputs], settings, on_epoch=callbacks)
        # The fit's own time: what handing epochs to Tune and the trackers took is not counted.
        seconds = (time.perf_counter() - clock - (reporter.seconds - reporting)) / len(trials)
        for log, result in zip(logs, fitted):
            log.finish(result, seconds)
    for trial, (_, train_ids), result, extra in zip(trials, inputs, fitted, extras):
        extra = {**extra, "stack_size": len(trials), "train_seconds": seconds}
        _record(trial, train_ids, result, plan, placement, started, extra)
    return fitted


def _record(trial, train_ids, result, plan, placement, started, extra) -> None:
    """Write a fitted trial's teacher outputs (stage-1 models), row and epochs."""
    if result.train_logits_best is not None and not trial.is_student:
        teachers.write_teacher_outputs(
            plan.results, trial.trial_key, train_ids, result.train_logits_best
        )
    row = results.trial_row(
        plan.sweep, trial.to_dict(), results.OK,
        auc_final=_float(result.final_val_auc), auprc_final=_float(result.final_val_auprc),
        auc_best=_float(result.best_val_auc), auprc_best=_float(result.best_val_auprc),
        select_auc_best=_float(result.best_select_auc), best_epoch=int(result.best_epoch),
        **_placement(*placement), started_at=started, finished_at=results.now(), **extra,
    )  # fmt: skip
    results.write_trial(plan.results, row, result.history)


def fit_config_of(trial: TrialConfig, device: str):
    """Return the ``FitConfig`` of a trial on ``device`` (the one place a trial becomes one).

    Args:
        trial: The trial.
        device: Torch device.

    Returns:
        The fit's settings.
    """
    from raypi.tasks import get_task
    from raypi.train import FitConfig

    extra = {"lam": trial.lam} if trial.is_student else {}
    return FitConfig(
        head=trial.head,
        method=trial.method,
        num_classes=get_task(trial.task).num_classes,
        lr=trial.lr,
        batch_size=trial.batch_size,
        epochs=trial.epochs,
        seed=trial.fit_seed,
        device=device,
        dtype=trial.dtype,
        validate_every=trial.validate_every,
        selection=trial.teacher_selection,
        has_cls_token=_inputs.has_cls_token(trial),
        context=f"{trial.task}/{trial.encoder}/{trial.method}/seed{trial.seed}/{trial.trial_key}",
        **extra,
    )


def resolve_trial(config: dict, plan: TrialPlan) -> TrialConfig:
    """Return the trial a Tune config stands for (a pack's first member for a pack).

    Grid trials carry ``trial_key``; searched students carry ``point`` (the key of a student
    whose λ and τ are unset) and the sampled ``lam`` and ``tau``, rounded to 3 decimals so
    equal values give equal keys.

    Args:
        config: Tune's config of the trial.
        plan: The experiment's plan.

    Returns:
        The trial's config.
    """
    if "pack" in config:
        return TrialConfig.from_dict(plan.trials[plan.packs[config["pack"]][0]])
    if "trial_key" in config:
        return TrialConfig.from_dict(plan.trials[config["trial_key"]])
    point = TrialConfig.from_dict(plan.trials[config["point"]])
    return replace(point, lam=round(float(config["lam"]), 3), tau=round(float(config["tau"]), 3))


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


def _float(value) -> float:
    return float("nan") if value is None else float(value)
