"""Fit one head on in-memory tokens: the function every trial calls.

Reads top to bottom: place the tensors on the device once, build the head, then per epoch
shuffle, sample one cached view per training image, step Adam over index-sliced batches,
validate on view 0 and keep the epoch that ``FitConfig.selection`` picks on the selection
split (the validation rows unless a separate selection split is given; highest AUC, the later
epoch on ties, by default). A model that can teach returns its kept epoch's outputs on the
training rows for students to distill from.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch

from raypi.train import metrics, objectives
from raypi.train._flops import batch_flops
from raypi.train._placement import Placed, place
from raypi.train.config import FitConfig
from raypi.train.data import FitData, FitResult, check_fit_data
from raypi.train.heads import HeadShape, build_head


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
        that can teach, best-epoch logits and τ-probabilities on the training rows (view 0).
    """
    check_fit_data(data, config)
    metrics.warn_if_one_class(data.val_labels, config.context)
    device = torch.device(config.device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), _threads(data, config, device):
        torch.manual_seed(config.seed)
        placed = place(data, config, device)
        model = build_head(config.head_name, _shape(data, config)).to(device)
        return _train(model, placed, config, on_epoch)


SMALL_BATCH_FLOPS = 2e8
"""Below this forward cost per batch a CPU fit runs on one thread by default."""


@contextlib.contextmanager
def _threads(data: FitData, config: FitConfig, device: torch.device):
    """Set torch's CPU threads for the fit and restore them afterwards."""
    threads = config.threads
    if threads is None and device.type == "cpu":
        cost = 0
        if config.spec.reads_image:
            shape = data.train_tokens.shape
            cost += batch_flops(config.head, shape[-2], shape[-1], config.batch_size)
        if config.spec.reads_report:
            shape = data.train_text.shape
            cost += batch_flops("text", shape[-2], shape[-1], config.batch_size)
        threads = 1 if cost < SMALL_BATCH_FLOPS else None
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _shape(data: FitData, config: FitConfig) -> HeadShape:
    return HeadShape(
        image_dim=None if data.train_tokens is None else data.train_tokens.shape[-1],
        num_classes=config.num_classes,
        text_dim=None if data.train_text is None else data.train_text.shape[-1],
        qkv_dim=config.qkv_dim,
        text_qkv_dim=config.text_qkv_dim,
        dropout=config.dropout,
        image_pool=config.head,
        has_cls_token=config.has_cls_token,
    )


def _train(model: torch.nn.Module, placed: Placed, config: FitConfig, on_epoch) -> FitResult:
    optimizer = _adam(model, config.lr)
    step_model = torch.compile(model) if config.compile else model
    generator = torch.Generator().manual_seed(config.seed)  # batch order + views, on the CPU
    result = FitResult()
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        losses = _train_epoch(step_model, optimizer, placed, config, generator)
        val_probs = torch.softmax(_predict(model, placed, "val", config), dim=1)
        row = {"epoch": epoch, **losses, **_scores("val", placed.val_labels, val_probs)}
        if placed.select is None:
            row.update({f"select_{k[4:]}": v for k, v in row.items() if k.startswith("val_")})
        else:
            select_probs = torch.softmax(_predict(model, placed, "select", config), dim=1)
            row.update(_scores("select", placed.select.labels, select_probs))
        row["seconds"] = time.perf_counter() - started
        result.history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if epoch == 1 or _improves(row, result.history[result.best_epoch - 1], config.selection):
            result.best_epoch, result.best_val_auc = epoch, row["val_auc"]
            result.best_val_auprc, result.best_select_auc = row["val_auprc"], row["select_auc"]
            result.val_probs_best = val_probs
            result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    result.val_probs_final = val_probs
    _finish(model, placed, config, result)
    return result


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


def _train_epoch(model, optimizer, placed: Placed, config: FitConfig, generator) -> dict:
    """One pass over the training rows in a fresh order; returns the mean loss parts."""
    n, views = placed.num_train, placed.views
    order = torch.randperm(n, generator=generator)
    view = _sample_views(n, views, config.train_views, generator)
    device = placed.train_labels.device
    index = order.to(device, non_blocking=True)
    rows = (order * views + view).to(device, non_blocking=True)
    totals = torch.zeros(3, device=device)
    model.train()
    for start in range(0, n, config.batch_size):
        batch_index = index[start : start + config.batch_size]
        inputs = placed.train_batch(rows[start : start + config.batch_size], batch_index)
        with _autocast(config, device):
            logits = model(**inputs)
        parts = _loss(logits, placed, batch_index, config)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
        kd = parts.get("kd_loss", parts["loss"].new_tensor(math.nan))
        totals += torch.stack([parts["loss"], parts["ce_loss"], kd]).detach() * len(batch_index)
    loss, ce_loss, kd_loss = (totals / n).tolist()
    return {"loss": loss, "ce_loss": ce_loss, "kd_loss": kd_loss}


def _sample_views(n: int, views: int, mode: str, generator: torch.Generator) -> torch.Tensor:
    """One cached view per training row: augmented views 1..V-1 (or all, by ``mode``)."""
    if views == 1:
        return torch.zeros(n, dtype=torch.long)
    low = 1 if mode == "augmented" else 0
    return torch.randint(low, views, (n,), generator=generator)


def _loss(logits, placed: Placed, index: torch.Tensor, config: FitConfig) -> dict:
    labels = placed.train_labels.index_select(0, index)
    if not config.distills:
        return objectives.cross_entropy(logits, labels)
    teacher = placed.teacher_probs.index_select(0, index)
    return objectives.distillation(logits, labels, teacher, config.lam)


@torch.no_grad()
def _predict(model: torch.nn.Module, placed: Placed, split: str, config: FitConfig):
    """Logits [rows, C] in fp32 of ``split`` on view 0, in evaluation mode."""
    model.eval()
    rows = {"train": placed.num_train, "val": len(placed.val_labels)}.get(split)
    rows = len(placed.select.labels) if split == "select" else rows
    device = placed.train_labels.device
    chunks = []
    for start in range(0, rows, config.eval_batch_size):
        inputs = placed.eval_batch(split, start, min(start + config.eval_batch_size, rows))
        with _autocast(config, device):
            chunks.append(model(**inputs).float())
    return torch.cat(chunks)


def _scores(split: str, labels: torch.Tensor, probs: torch.Tensor) -> dict:
    """AUC, AUPRC and mean cross-entropy of ``probs`` against ``labels``, named by split."""
    picked = probs.gather(1, labels.view(-1, 1)).clamp_min(1e-12)
    return {
        f"{split}_auc": metrics.auc(labels, probs, warn=False),
        f"{split}_auprc": metrics.auprc(labels, probs, warn=False),
        f"{split}_loss": float(-picked.log().mean()),
    }


def _finish(model, placed: Placed, config: FitConfig, result: FitResult) -> None:
    """Move outputs to the CPU and, for models that can teach, add best-epoch train outputs."""
    if config.returns_train_outputs:
        model.load_state_dict(result.best_state)
        logits = _predict(model, placed, "train", config)
        result.train_logits_best = logits.cpu()
        result.train_probs_tau_best = objectives.teacher_targets(logits, config.tau).cpu()
    result.val_probs_best = result.val_probs_best.cpu()
    result.val_probs_final = result.val_probs_final.cpu()
    result.best_state = {k: v.cpu() for k, v in result.best_state.items()}


def _autocast(config: FitConfig, device: torch.device):
    if config.dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _adam(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):  # fused Adam is missing for some devices
        return torch.optim.Adam(model.parameters(), lr=lr)
