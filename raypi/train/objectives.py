"""Training objectives: cross-entropy and generalized distillation, each a dict of loss parts."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from raypi.train.config import DEFAULT_LAMBDA


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plain cross-entropy with hard labels.

    Args:
        logits: Model outputs [B, C] (any float dtype; computed in fp32).
        labels: Class indices [B].

    Returns:
        ``loss`` and ``ce_loss`` (the same tensor).
    """
    ce = F.cross_entropy(logits.float(), labels)
    return {"loss": ce, "ce_loss": ce}


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with soft targets, mean over the batch: -Σ_c p_c log softmax(f)_c.

    Args:
        logits: Model outputs [B, C].
        target_probs: Target distributions [B, C] (rows sum to 1).

    Returns:
        The scalar loss.
    """
    log_probs = F.log_softmax(logits.float(), dim=1)
    return -(target_probs.float() * log_probs).sum(dim=1).mean()


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
    ce = F.cross_entropy(logits.float(), labels)
    kd = soft_cross_entropy(logits, teacher_probs)
    return {"loss": (1.0 - lam) * ce + lam * kd, "ce_loss": ce, "kd_loss": kd}


def teacher_targets(teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Soft targets softmax(g/τ) from a teacher's logits.

    Args:
        teacher_logits: Teacher outputs [N, C].
        tau: Temperature τ > 0 (< 1 sharpens, > 1 softens).

    Returns:
        Probabilities [N, C] in fp32.
    """
    return torch.softmax(teacher_logits.float() / tau, dim=1)
