"""AUC and AUPRC as the study defines them, equal to scikit-learn's, in torch on any device.

Binary: the score is the positive-class probability. Multiclass: one-vs-rest with micro
averaging, i.e. the binary metric over all (row, class) pairs of the one-hot labels and the
probabilities — ``roc_auc_score(label_binarize(y), p, average="micro")`` and
``average_precision_score(label_binarize(y), p, average="micro")``. With one class present the
metric is undefined: NaN, with a warning that names the context (e.g. task/seed).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


def auc(labels, probs, context: str = "", warn: bool = True) -> float:
    """Area under the ROC curve (ties count one half, as in scikit-learn).

    Args:
        labels: Class indices [M] (array-like or tensor).
        probs: Scores [M] (binary) or probabilities [M, C].
        context: Label of the caller for the warning, e.g. ``"age/seed=3"``.
        warn: Whether to warn when only one class is present.

    Returns:
        The AUC, or NaN when only one class is present.
    """
    targets, scores = _binary_view(labels, probs)
    n_pos = int(targets.sum())
    n_neg = targets.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return _undefined("AUC", context, warn)
    ranks = _midranks(scores)
    rank_sum = ranks[targets].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auprc(labels, probs, context: str = "", warn: bool = True) -> float:
    """Area under the precision-recall curve as average precision (scikit-learn's definition).

    Args:
        labels: Class indices [M] (array-like or tensor).
        probs: Scores [M] (binary) or probabilities [M, C].
        context: Label of the caller for the warning.
        warn: Whether to warn when only one class is present.

    Returns:
        The average precision, or NaN when only one class is present.
    """
    targets, scores = _binary_view(labels, probs)
    n_pos = int(targets.sum())
    if n_pos == 0 or n_pos == targets.numel():
        return _undefined("AUPRC", context, warn)
    order = torch.argsort(scores, descending=True, stable=True)
    sorted_scores, sorted_targets = scores[order], targets[order].to(torch.float64)
    # The last position of every group of tied scores is a threshold of the curve.
    last_of_group = torch.ones_like(sorted_targets, dtype=torch.bool)
    last_of_group[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    true_pos = torch.cumsum(sorted_targets, 0)[last_of_group]
    seen = torch.nonzero(last_of_group).squeeze(1).to(torch.float64) + 1
    precision = true_pos / seen
    recall_step = torch.diff(true_pos, prepend=true_pos.new_zeros(1)) / n_pos
    return float((recall_step * precision).sum())


def warn_if_one_class(labels, context: str = "") -> bool:
    """Warn (naming ``context``) when fewer than two classes occur in ``labels``.

    Args:
        labels: Class indices.
        context: Label of the caller, e.g. ``"age/seed=3"``.

    Returns:
        Whether only one class (or none) is present.
    """
    if len(torch.unique(_tensor(labels))) >= 2:
        return False
    _undefined("AUC and AUPRC", context, warn=True)
    return True


def _binary_view(labels, probs) -> tuple[torch.Tensor, torch.Tensor]:
    probs = _tensor(probs)
    labels = _tensor(labels).long().reshape(-1).to(probs.device)
    probs = probs.to(torch.float32 if probs.device.type == "mps" else torch.float64)
    if probs.ndim == 1:
        return labels == 1, probs
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(
            f"probs must be [M] or [M, C] with M={labels.shape[0]}, got {tuple(probs.shape)}"
        )
    if probs.shape[1] == 2:
        return labels == 1, probs[:, 1]
    one_hot = torch.nn.functional.one_hot(labels, probs.shape[1]).bool()
    return one_hot.reshape(-1), probs.reshape(-1)


def _midranks(scores: torch.Tensor) -> torch.Tensor:
    """1-based ranks of ``scores`` with ties given their average rank."""
    order = torch.argsort(scores, stable=True)
    sorted_scores = scores[order]
    _, inverse, counts = torch.unique_consecutive(
        sorted_scores, return_inverse=True, return_counts=True
    )
    ends = torch.cumsum(counts, 0).to(scores.dtype)
    average = ends - (counts.to(scores.dtype) - 1) / 2.0
    ranks = torch.empty_like(scores)
    ranks[order] = average[inverse]
    return ranks


def _tensor(values) -> torch.Tensor:
    if torch.is_tensor(values):
        return values.detach()
    return torch.as_tensor(np.asarray(values))


def _undefined(metric: str, context: str, warn: bool) -> float:
    if warn:
        where = f" ({context})" if context else ""
        warnings.warn(
            f"{metric} is undefined{where}: the validation labels hold only one class; "
            "returning NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    return float("nan")
