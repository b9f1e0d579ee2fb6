"""In-memory inputs and outputs of one fit: FitData and FitResult."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from raypi.train.config import FitConfig


@dataclass
class FitData:
    """Tensors of one trial; token tensors may be fp16 (they are cast per batch)."""

    train_tokens: torch.Tensor | None
    """Image tokens of the training rows, [N, V, T, D] (V cached views, view 0 = evaluation
    view) or [N, T, D]. May be None for the text-only method."""
    train_labels: torch.Tensor
    """Class indices of the training rows, [N] integer."""
    val_tokens: torch.Tensor | None
    """Image tokens of the validation rows, [M, T, D] or [M, V, T, D] (only view 0 is used)."""
    val_labels: torch.Tensor
    """Class indices of the validation rows, [M] integer."""
    train_text: torch.Tensor | None = None
    """Report tokens of the training rows, [N, L, D_text] (teacher and text methods)."""
    train_text_lengths: torch.Tensor | None = None
    """Number of valid report tokens per training row, [N]; tokens past it are padding."""
    val_text: torch.Tensor | None = None
    """Report tokens of the validation rows, [M, L, D_text]."""
    val_text_lengths: torch.Tensor | None = None
    """Number of valid report tokens per validation row, [M]."""
    teacher_probs: torch.Tensor | None = None
    """Teacher probabilities on the training rows at temperature τ, [N, C] (students only)."""
    select_tokens: torch.Tensor | None = None
    """Image tokens of a separate selection split, [S, (V,) T, D]: the kept epoch is chosen on
    it instead of on the validation rows (the honest protocol). None = select on validation
    (the study's protocol)."""
    select_labels: torch.Tensor | None = None
    """Class indices of the selection rows, [S]."""
    select_text: torch.Tensor | None = None
    """Report tokens of the selection rows, [S, L, D_text] (teacher and text methods)."""
    select_text_lengths: torch.Tensor | None = None
    """Valid report tokens per selection row, [S]."""

    @property
    def has_selection_split(self) -> bool:
        """Whether the kept epoch is chosen on a selection split other than validation."""
        return self.select_labels is not None


@dataclass
class FitResult:
    """Outcome of one fit; epochs are numbered from 1, tensors are fp32 on the CPU."""

    history: list[dict] = field(default_factory=list)
    """Per epoch: epoch, loss, ce_loss, kd_loss (NaN when not distilling), val_auc,
    val_auprc, val_loss, select_auc, select_auprc, select_loss (the selection split's; equal
    to the validation ones when there is no separate selection split), seconds."""
    best_epoch: int = 0
    """The kept epoch, chosen on the selection split by ``FitConfig.selection`` (highest AUC,
    the later on ties, by default; the last epoch while every AUC is NaN)."""
    best_val_auc: float = float("nan")
    """Validation AUC at ``best_epoch``."""
    best_select_auc: float = float("nan")
    """Selection-split AUC at ``best_epoch`` (the validation AUC without a selection split)."""
    best_val_auprc: float = float("nan")
    """Validation AUPRC at ``best_epoch``."""
    val_probs_final: torch.Tensor | None = None
    """Validation probabilities after the last epoch, [M, C]."""
    val_probs_best: torch.Tensor | None = None
    """Validation probabilities at ``best_epoch``, [M, C]."""
    train_logits_best: torch.Tensor | None = None
    """Best-epoch logits on the training rows (view 0), [N, C]; None for students. A student
    distills from ``objectives.teacher_targets`` of them at its τ."""
    best_state: dict[str, torch.Tensor] | None = None
    """The head's parameters at ``best_epoch`` (CPU copies), for checkpoints and checks."""

    @property
    def final_val_auc(self) -> float:
        """Validation AUC after the last epoch."""
        return self.history[-1]["val_auc"] if self.history else float("nan")

    @property
    def final_val_auprc(self) -> float:
        """Validation AUPRC after the last epoch."""
        return self.history[-1]["val_auprc"] if self.history else float("nan")


def check_fit_data(data: FitData, config: FitConfig) -> None:
    """Raise a ValueError naming the field when ``data`` does not fit ``config``.

    Args:
        data: Tensors of the trial.
        config: Settings of the fit.
    """
    n_train, n_val = len(data.train_labels), len(data.val_labels)
    if config.spec.reads_image:
        _check_tokens("train_tokens", data.train_tokens, n_train, (3, 4))
        _check_tokens("val_tokens", data.val_tokens, n_val, (3, 4))
    if config.spec.reads_report:
        _check_text(data, n_train, n_val)
    if config.distills:
        probs = data.teacher_probs
        if probs is None or tuple(probs.shape) != (n_train, config.num_classes):
            shape = None if probs is None else tuple(probs.shape)
            raise ValueError(
                f"method {config.method!r} needs teacher_probs of shape "
                f"{(n_train, config.num_classes)}, got {shape}"
            )
    named = [("train_labels", data.train_labels), ("val_labels", data.val_labels)]
    if data.has_selection_split:
        named.append(("select_labels", data.select_labels))
    for name, labels in named:
        if labels.dtype.is_floating_point or labels.ndim != 1:
            raise ValueError(
                f"{name} must be a 1-d integer tensor, got {labels.dtype} {labels.ndim}-d"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= config.num_classes):
            raise ValueError(f"{name} must lie in [0, {config.num_classes}), got values outside")
    _check_selection(data, config)
    if n_train == 0 or n_val == 0:
        raise ValueError(f"need training and validation rows, got {n_train} and {n_val}")


def _check_selection(data: FitData, config: FitConfig) -> None:
    if not data.has_selection_split:
        return
    rows = len(data.select_labels)
    if rows == 0:
        raise ValueError("select_labels is empty: a selection split needs rows")
    if config.spec.reads_image:
        _check_tokens("select_tokens", data.select_tokens, rows, (3, 4))
    if config.spec.reads_report:
        _check_tokens("select_text", data.select_text, rows, (3,))
        lengths = data.select_text_lengths
        if lengths is None or tuple(lengths.shape) != (rows,):
            raise ValueError(f"select_text_lengths must be [{rows}] for report tokens")


def _check_tokens(name: str, tokens: torch.Tensor | None, rows: int, ndims: tuple) -> None:
    if tokens is None:
        raise ValueError(f"{name} is required for this method")
    if tokens.ndim not in ndims or tokens.shape[0] != rows:
        raise ValueError(
            f"{name} must be [{rows}, (V,) T, D] to match its labels, got {tuple(tokens.shape)}"
        )


def _check_text(data: FitData, n_train: int, n_val: int) -> None:
    pairs = (
        ("train", data.train_text, data.train_text_lengths, n_train),
        ("val", data.val_text, data.val_text_lengths, n_val),
    )
    for split, text, lengths, rows in pairs:
        _check_tokens(f"{split}_text", text, rows, (3,))
        if lengths is None or tuple(lengths.shape) != (rows,):
            raise ValueError(f"{split}_text_lengths must be [{rows}] for report tokens")
        if len(lengths) and (lengths.min() < 0 or lengths.max() > text.shape[1]):
            raise ValueError(f"{split}_text_lengths must lie in [0, {text.shape[1]}]")
