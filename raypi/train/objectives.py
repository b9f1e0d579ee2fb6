"""Training objectives: cross-entropy and generalized distillation, each a dict of loss parts."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from raypi.methods import DEFAULT_LAMBDA


def full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` in fp32, or as it is when it is fp32 or wider (float64 checks)."""
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plain cross-entropy with hard labels.

    Args:
        logits: Model outputs [B, C] (any float dtype; computed in fp32).
        labels: Class indices [B].

    Returns:
        ``loss`` and ``ce_loss`` (the same tensor).
    """
    ce = F.cross_entropy(full_precision(logits), labels)
    return {"loss": ce, "ce_loss": ce}


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with soft targets, mean over the batch: -Σ_c p_c log softmax(f)_c.

    Args:
        logits: Model outputs [B, C].
        target_probs: Target distributions [B, C] (rows sum to 1).

    Returns:
        The scalar loss.
    """
    log_probs = F.log_softmax(full_precision(logits), dim=1)
    return -(full_precision(target_probs) * log_probs).sum(dim=1).mean()


def distillation(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_probs: torch.Tensor,
    lam: float = DEFAULT_LAMBDA,
) -> dict[str, torch.Tensor]:
    """Generalized distillation: (1-λ)·CE(f, y) + λ·CE(f, softmax(g/τ)).

    The student's logits enter both terms at temperature 1 (the study's Eq. 1); τ is already
    applied to ``teacher_probs`` (see ``teacher_targets``). Self-distillation is the same loss
    with an image-only teacher's probabilities.

    Args:
        logits: Student outputs [B, C].
        labels: Class indices [B].
        teacher_probs: softmax(g/τ) of the teacher on the same rows, [B, C].
        lam: Imitation weight λ in [0, 1]; 0 is plain training.

    Returns:
        ``loss``, ``ce_loss`` (hard-label term) and ``kd_loss`` (imitation term), unweighted
        parts.
    """
    ce = F.cross_entropy(full_precision(logits), labels)
    kd = soft_cross_entropy(logits, teacher_probs)
    return {"loss": (1.0 - lam) * ce + lam * kd, "ce_loss": ce, "kd_loss": kd}


def teacher_targets(teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Soft targets softmax(g/τ) from a teacher's logits: the one place τ acts.

    There is no default τ here: a student's τ is its trial's (the task's τ unless a sweep
    names others, ``raypi.sweep.grid``).

    Args:
        teacher_logits: Teacher outputs [N, C].
        tau: Temperature τ > 0 (< 1 sharpens, > 1 softens).

    Returns:
        Probabilities [N, C] in fp32 (float64 for float64 logits).
    """
    if not tau > 0:
        raise ValueError(f"the temperature τ must be > 0, got {tau}")
    return torch.softmax(full_precision(teacher_logits) / tau, dim=1)


def stacked_losses(
    logits: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor,
    teacher_probs: torch.Tensor | None = None,
    lams: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Each stacked member's own objective on its own (padded) batch, as one tensor op.

    Member m's loss is the mean over its valid rows, so its gradient is that of its own
    ``cross_entropy`` or ``distillation``; padded rows weigh nothing.

    Args:
        logits: Outputs [M, B, C].
        labels: Class indices [M, B].
        valid: Which rows are real, [M, B] bool.
        teacher_probs: softmax(g/τ) per member and row, [M, B, C] (students), or None.
        lams: Imitation weight λ per member, [M] (students).

    Returns:
        ``loss``, ``ce_loss`` and (students) ``kd_loss``, each [M].
    """
    logits = full_precision(logits)
    weight = valid.to(logits.dtype)
    count = weight.sum(dim=1)
    ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
    ce = (ce.view_as(weight) * weight).sum(dim=1) / count
    if teacher_probs is None:
        return {"loss": ce, "ce_loss": ce}
    kd = -(full_precision(teacher_probs) * F.log_softmax(logits, dim=2)).sum(dim=2)
    kd = (kd * weight).sum(dim=1) / count
    return {"loss": (1.0 - lams) * ce + lams * kd, "ce_loss": ce, "kd_loss": kd}
