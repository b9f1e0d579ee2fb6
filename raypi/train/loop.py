"""Fit one head on in-memory tokens: the function every trial calls.

Reads top to bottom: place the tensors on the device once, build the head, then per epoch
shuffle, sample one cached view per training image, step Adam over index-sliced batches,
validate on view 0 and keep the epoch that ``FitConfig.selection`` picks on the selection
split (the validation rows unless a separate selection split is given; highest AUC, the later
epoch on ties, by default). A model that can teach returns its kept epoch's logits on the
training rows for students to distill from. ``raypi.train.stack`` trains several members as
one stacked model and reuses the pieces here, so each member equals its own ``fit``.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch

from raypi.train import metrics, objectives
from raypi.train._flops import batch_flops
from raypi.train._member import (
    Member,
    autocast,
    build_member,
    dropout_masks,
    epoch_order,
    precision,
)
from raypi.train._placement import Placed
from raypi.train.config import FitConfig
from raypi.train.data import FitData, FitResult, check_fit_data


def fit(data: FitData, config: FitConfig, on_epoch=None) -> FitResult:
    """Fit one model on in-memory tensors; the same config and seed give the same history.

    Args:
        data: Training and validation tensors (and report tokens or teacher probabilities
            where the method needs them).
        config: Settings of the fit.
        on_epoch: Called with each epoch's history row as soon as it is measured (live
            progress for a scheduler); it must not touch the tensors.

    Returns:
        Per-epoch history, best epoch, final and best validation probabilities and, for models
        that can teach, best-epoch logits on the training rows (view 0).
    """
    check_fit_data(data, config)
    metrics.warn_if_one_class(data.val_labels, config.context)
    device = torch.device(config.device)
    with _threads(data, config, device), precision(config.dtype, device):
        return _train(build_member(data, config, device), on_epoch)


SMALL_BATCH_FLOPS = 2e8
"""Below this forward cost per batch a CPU fit runs on one thread by default."""


@contextlib.contextmanager
def _threads(data: FitData, config: FitConfig, device: torch.device, members: int = 1):
    """Set torch's CPU threads for the fit (of ``members`` stacked) and restore them after."""
    threads = config.threads
    if threads is None and device.type == "cpu":
        cost = 0
        if config.spec.reads_image:
            shape = data.train_tokens.shape
            cost += batch_flops(config.head, shape[-2], shape[-1], config.batch_size)
        if config.spec.reads_report:
            shape = data.train_text.shape
            cost += batch_flops("text", shape[-2], shape[-1], config.batch_size)
        threads = 1 if cost * members < SMALL_BATCH_FLOPS else None
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(member: Member, on_epoch) -> FitResult:
    model, placed, config = member.model, member.placed, member.config
    optimizer = _adam(model, config.lr)
    step_model = torch.compile(model) if config.compile else model
    result, val_probs = FitResult(), None
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        losses = _train_epoch(member, step_model, optimizer)
        row = {"epoch": epoch, **losses}
        if validates(config, epoch):
            logits = {
                split: _predict(model, placed, split, config) for split in eval_splits(placed)
            }
            row.update(evaluation_scores(placed, logits))
            val_probs = torch.softmax(logits["val"], dim=1)
        else:
            row.update(skipped_scores())
        row["seconds"] = time.perf_counter() - started
        keep_epoch(result, row, config, on_epoch, val_probs, model.state_dict())
    result.val_probs_final = val_probs
    finish(model, placed, config, result)
    return result


def validates(config: FitConfig, epoch: int) -> bool:
    """Whether a fit validates after ``epoch`` (every ``validate_every`` epochs and the last)."""
    return epoch % config.validate_every == 0 or epoch == config.epochs


def eval_splits(placed: Placed) -> tuple[str, ...]:
    """The splits validated after an epoch: validation, and the selection split if separate."""
    return ("val",) if placed.select is None else ("val", "select")


def evaluation_scores(placed: Placed, logits: dict) -> dict:
    """An epoch's validation (and selection) scores from the logits of ``eval_splits``."""
    row = _scores("val", placed.val_labels, torch.softmax(logits["val"], dim=1))
    if placed.select is None:
        row.update({f"select_{k[4:]}": v for k, v in row.items() if k.startswith("val_")})
    else:
        probs = torch.softmax(logits["select"], dim=1)
        row.update(_scores("select", placed.select.labels, probs))
    return row


def skipped_scores() -> dict:
    """The scores of an epoch that was not validated (``validate_every``): NaN."""
    names = [f"{split}_{name}" for split in ("val", "select") for name in ("auc", "auprc", "loss")]
    return dict.fromkeys(names, math.nan)


def keep_epoch(result: FitResult, row: dict, config: FitConfig, on_epoch, val_probs, state):
    """Append an epoch's row, report it, and keep the epoch if the selection rule picks it."""
    result.history.append(row)
    if on_epoch is not None:
        on_epoch(row)
    epoch = row["epoch"]
    if epoch == 1 or _improves(row, result.history[result.best_epoch - 1], config.selection):
        result.best_epoch, result.best_val_auc = epoch, row["val_auc"]
        result.best_val_auprc, result.best_select_auc = row["val_auprc"], row["select_auc"]
        result.val_probs_best = val_probs
        result.best_state = {k: v.detach().clone() for k, v in state.items()}


def _improves(row: dict, kept: dict, selection: str) -> bool:
    """Whether epoch ``row`` replaces the kept epoch under ``selection``.

    Ties go to the later epoch: a model whose selection AUC is at its plateau from epoch 1
    (a privileged signal that ranks every row from the start) would otherwise be kept with
    near-zero logits, and teach near-uniform soft labels. NaN never beats a number; while
    every value is NaN the latest epoch is kept.
    """
    if selection == "last":
        return True
    if selection == "loss":
        new, old = -row["select_loss"], -kept["select_loss"]
    else:
        new, old = row["select_auc"], kept["select_auc"]
    if math.isnan(new):
        return math.isnan(old)
    return math.isnan(old) or new >= old


def _train_epoch(member: Member, model, optimizer) -> dict:
    """One pass over the training rows in a fresh order; returns the mean loss parts."""
    placed, config = member.placed, member.config
    index, rows = epoch_order(member)
    totals = torch.zeros(3, device=index.device, dtype=torch.get_default_dtype())
    model.train()
    for start in range(0, placed.num_train, config.batch_size):
        batch_index = index[start : start + config.batch_size]
        inputs = placed.train_batch(rows[start : start + config.batch_size], batch_index)
        masks = dropout_masks(member, inputs)
        with autocast(config.dtype, index.device):
            logits = model(**inputs, masks=masks)
        parts = _loss(logits, placed, batch_index, config)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
        kd = parts.get("kd_loss", parts["loss"].new_tensor(math.nan))
        totals += torch.stack([parts["loss"], parts["ce_loss"], kd]).detach() * len(batch_index)
    loss, ce_loss, kd_loss = (totals / placed.num_train).tolist()
    return {"loss": loss, "ce_loss": ce_loss, "kd_loss": kd_loss}


def _loss(logits, placed: Placed, index: torch.Tensor, config: FitConfig) -> dict:
    labels = placed.train_labels.index_select(0, index)
    if not config.distills:
        return objectives.cross_entropy(logits, labels)
    teacher = placed.teacher_probs.index_select(0, index)
    return objectives.distillation(logits, labels, teacher, config.lam)


@torch.no_grad()
def _predict(model: torch.nn.Module, placed: Placed, split: str, config: FitConfig):
    """Logits [rows, C] (fp32 or wider) of ``split`` on view 0, in evaluation mode."""
    model.eval()
    rows = {"train": placed.num_train, "val": len(placed.val_labels)}.get(split)
    rows = len(placed.select.labels) if split == "select" else rows
    device = placed.train_labels.device
    chunks = []
    for start in range(0, rows, config.eval_batch_size):
        inputs = placed.eval_batch(split, start, min(start + config.eval_batch_size, rows))
        with autocast(config.dtype, device):
            chunks.append(objectives.full_precision(model(**inputs)))
    return torch.cat(chunks)


def _scores(split: str, labels: torch.Tensor, probs: torch.Tensor) -> dict:
    """AUC, AUPRC and mean cross-entropy of ``probs`` against ``labels``, named by split."""
    picked = probs.gather(1, labels.view(-1, 1)).clamp_min(1e-12)
    return {
        f"{split}_auc": metrics.auc(labels, probs, warn=False),
        f"{split}_auprc": metrics.auprc(labels, probs, warn=False),
        f"{split}_loss": float(-picked.log().mean()),
    }


def finish(model, placed: Placed, config: FitConfig, result: FitResult) -> None:
    """Move outputs to the CPU and, for models that can teach, add best-epoch train logits."""
    if config.returns_train_outputs:
        model.load_state_dict(result.best_state)
        result.train_logits_best = _predict(model, placed, "train", config).cpu()
    result.val_probs_best = result.val_probs_best.cpu()
    result.val_probs_final = result.val_probs_final.cpu()
    result.best_state = {k: v.cpu() for k, v in result.best_state.items()}


def _adam(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):  # fused Adam is missing for some devices
        return torch.optim.Adam(model.parameters(), lr=lr)
