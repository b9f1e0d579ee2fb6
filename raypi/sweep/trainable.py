"""The Tune function: one trial, or one pack of trials that share their features.

Tune's config holds only ``trial_key`` (one trial), ``pack`` (a pack of members, see
``raypi.sweep.packs``) or a searched ``point``; full configs arrive through
``tune.with_parameters`` (a ``TrialPlan``), so nothing big travels in the config. A stage-1
model stores its training-row logits for its students; a student turns its teacher's logits
into soft targets at its own τ — in a pack from memory, else from the stored outputs. Every
member writes its own result files as it finishes, so they survive a killed driver, and a pack
rerun trains only the members not recorded ok. Epochs reach Tune as they happen. Exceptions
propagate, so Tune's ``FailureConfig`` retries; the driver records the trial (or the pack's
unfinished members) once it has failed for good.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field, replace

import torch

from raypi.sweep import _inputs, results, teachers
from raypi.sweep.grid import TrialConfig
from raypi.sweep.resources import threads_for


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


def train_trial(config: dict, *, plan: TrialPlan) -> None:
    """Run one trial or one pack (the function handed to ``tune.Tuner``).

    Args:
        config: Tune's config: ``{"trial_key": …}``, ``{"pack": …}`` or a searched point.
        plan: The experiment's shared plan.
    """
    torch.set_num_threads(threads_for(plan.cpus))
    device, gpu_ids = _device()
    if "pack" in config:
        _train_pack(config["pack"], plan, device, gpu_ids)
        return
    from raypi.features.reader import bytes_served

    trial, started, before = resolve_trial(config, plan), results.now(), bytes_served()
    probs = None
    if trial.is_student:
        train_ids = _inputs.training_rows(trial).train_ids
        probs = teachers.teacher_probs(plan.results, trial.teacher_key, train_ids, trial.tau)
    data, train_ids = _inputs.fit_data(trial, probs)
    reporter = Reporter(plan.epoch_reports, members=1)
    _fit_and_record(trial, data, train_ids, plan, (device, gpu_ids), reporter, started,
                    extra={"bytes_read": bytes_served() - before})  # fmt: skip
    reporter.finish()


def _train_pack(key: str, plan: TrialPlan, device: str, gpu_ids: list[str]) -> None:
    """Train a pack's unrecorded members on one working set, stage-1 models first."""
    from raypi.sweep._memory import MemoryBudget
    from raypi.sweep.packs import load_working_set, member_data
    from raypi.train import fit  # noqa: F401 - imported before the pack's memory is counted

    members = [TrialConfig.from_dict(plan.trials[k]) for k in plan.packs[key]]
    recorded = results.statuses(plan.results)
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
    for index, trial in enumerate(todo):
        probs = _pack_teacher_probs(trial, outputs, plan.results)
        data, train_ids = member_data(working, trial, probs)
        first = {"bytes_read": working.bytes_read} if index == 0 else {"bytes_read": 0}
        result = _fit_and_record(trial, data, train_ids, plan, (device, gpu_ids), reporter,
                                 started if index == 0 else results.now(),
                                 extra={**first, "pack_key": key})  # fmt: skip
        if result.train_logits_best is not None and not trial.is_student:
            outputs[trial.trial_key] = (train_ids, result.train_logits_best)
        reporter.member_done()
    reporter.finish()


def _pack_teacher_probs(trial: TrialConfig, outputs: dict, results_dir: str):
    """A student's soft targets: from its teacher in this pack, else from the stored outputs."""
    from raypi.train.objectives import teacher_targets

    if not trial.is_student:
        return None
    train_ids = _inputs.training_rows(trial).train_ids
    ids, logits = outputs.get(trial.teacher_key, (None, None))
    if ids == train_ids:
        return teacher_targets(logits, trial.tau)
    return teachers.teacher_probs(results_dir, trial.teacher_key, train_ids, trial.tau)


def _fit_and_record(trial, data, train_ids, plan, placement, reporter, started, extra):
    """Fit one trial, reporting epochs live, then write its outputs, row and epochs."""
    from raypi.train import fit

    _write_resolved_config(trial, plan.results)
    device, gpu_ids = placement
    settings = fit_config_of(trial, device)
    with _member_board(plan.results, trial.trial_key) as board:
        on_epoch = reporter.epoch(trial.epochs, board)
        clock, reporting = time.perf_counter(), reporter.seconds
        result = fit(data, settings, on_epoch=on_epoch)
        # The fit's own time: what handing epochs to Tune and TensorBoard took is not counted.
        seconds = time.perf_counter() - clock - (reporter.seconds - reporting)
    if result.train_logits_best is not None and not trial.is_student:
        teachers.write_teacher_outputs(
            plan.results, trial.trial_key, train_ids, result.train_logits_best
        )
    row = results.trial_row(
        plan.sweep, trial.to_dict(), results.OK,
        auc_final=_float(result.final_val_auc), auprc_final=_float(result.final_val_auprc),
        auc_best=_float(result.best_val_auc), auprc_best=_float(result.best_val_auprc),
        select_auc_best=_float(result.best_select_auc), best_epoch=int(result.best_epoch),
        train_seconds=seconds, **_placement(device, gpu_ids), started_at=started,
        finished_at=results.now(), **extra,
    )  # fmt: skip
    results.write_trial(plan.results, row, result.history)
    return result


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

    extra = {"lam": trial.lam, "tau": trial.tau} if trial.is_student else {}
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


REPORT_EVERY_S = 2.0
"""Least seconds between two results sent to Tune from one trial or pack: each result costs
Tune tens of milliseconds, which tiny members would otherwise spend many times per second."""


class Reporter:
    """Sends members' epochs to Tune as they happen (its table, schedulers).

    At most one result every ``REPORT_EVERY_S`` goes to Tune, and every epoch to the member's
    TensorBoard.
    """

    def __init__(
        self, limit: int | None, members: int, every_s: float = REPORT_EVERY_S, budget=None
    ) -> None:
        self.limit, self.members, self.done, self.every_s = limit, members, 0, every_s
        self.budget = budget  # a pack's MemoryBudget, checked after every epoch
        self.best = {"val_auc": float("-inf"), "select_auc": float("-inf")}
        self.last, self.pending, self.seconds = float("-inf"), None, 0.0

    def member_done(self) -> None:
        """Count a finished member."""
        self.done += 1

    def finish(self) -> None:
        """Send the latest result not sent yet (every trial ends with its final state)."""
        from ray import tune

        if self.pending is not None:
            tune.report(self.pending)
            self.pending = None

    def epoch(self, epochs: int, board=None):
        """Return the ``on_epoch`` callback of a member that trains ``epochs`` epochs.

        Args:
            epochs: The member's epochs (``limit`` of them, evenly spaced, may be sent).
            board: A TensorBoard writer of the member: every epoch is written to it.

        Returns:
            The callback; the time it spends is counted in ``seconds``.
        """
        from ray import tune

        shown = set(range(1, epochs + 1))
        if self.limit is not None and self.limit < epochs:
            shown = {epochs - round(i * (epochs - 1) / max(1, self.limit - 1)) for i in
                     range(self.limit)} if self.limit > 1 else {epochs}  # fmt: skip

        def report(row: dict) -> None:
            started = time.perf_counter()
            if board is not None:
                for name in ("loss", "ce_loss", "kd_loss", "val_auc", "val_auprc", "select_auc"):
                    value = _float(row.get(name))
                    if value == value:  # NaN (e.g. kd_loss of a non-student) is not a point
                        board.add_scalar(name, value, int(row["epoch"]))
            for name in self.best:
                value = _float(row.get(name))
                self.best[name] = max(self.best[name], value) if value == value else self.best[name]
            if int(row["epoch"]) in shown:
                self.pending = self._result(row)
                if started - self.last >= self.every_s:
                    tune.report(self.pending)
                    self.pending, self.last = None, time.perf_counter()
            self.seconds += time.perf_counter() - started

        return report if self.budget is None else self.budget.watching(report)

    def _result(self, row: dict) -> dict:
        best = {f"best_{k}": v if v > float("-inf") else float("nan") for k, v in self.best.items()}
        return {"epoch": int(row["epoch"]), "loss": _float(row.get("loss")),
                "val_auc": _float(row.get("val_auc")), "val_auprc": _float(row.get("val_auprc")),
                "members_done": self.done, "members": self.members, **best}  # fmt: skip


@contextlib.contextmanager
def _member_board(results_dir: str, key: str):
    """A TensorBoard writer for one trial at ``<results>/tensorboard/<trial_key>``."""
    from raypi import io

    try:
        from tensorboardX import SummaryWriter

        board = SummaryWriter(io.join(results_dir, "tensorboard", key))
    except Exception as error:  # noqa: BLE001 - curves are a convenience, never a failure
        warnings.warn(f"no TensorBoard curves for {key}: {error}", RuntimeWarning, stacklevel=2)
        board = None
    try:
        yield board
    finally:
        if board is not None:
            board.close()


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
