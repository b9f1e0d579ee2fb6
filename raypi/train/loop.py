"""Fit one head on in-memory tokens: the function every trial calls."""

from __future__ import annotations

from raypi.train.config import FitConfig
from raypi.train.data import FitData, FitResult


def fit(data: FitData, config: FitConfig) -> FitResult:
    """Fit one model on in-memory tensors (work in progress: the API is fixed).

    Args:
        data: Training and validation tensors.
        config: Settings of the fit.

    Returns:
        The per-epoch history, best epoch and predictions.
    """
    raise NotImplementedError("raypi.train.fit is being written")
