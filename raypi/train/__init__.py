"""Heads, objectives and the fit loop on frozen tokens: no Ray, no files.

Names load on first use, so ``raypi.train.config`` (the method table, read by the sweep and the
report) can be imported without torch.
"""

from __future__ import annotations

from raypi._lazy import exports

_EXPORTS = {
    "DEFAULT_LAMBDA": "config",
    "METHODS": "config",
    "METHOD_TABLE": "config",
    "FitConfig": "config",
    "FitData": "data",
    "FitResult": "data",
    "fit": "loop",
    "fit_stack": "stack",
}
__all__ = sorted(_EXPORTS)


__getattr__ = exports("raypi.train", _EXPORTS)
