"""Heads, objectives and the fit loop on frozen tokens: no Ray, no files.

Names load on first use, so ``raypi.train.config`` (the method table, read by the sweep and the
report) can be imported without torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DEFAULT_LAMBDA": "config",
    "DEFAULT_TAU": "config",
    "METHODS": "config",
    "METHOD_TABLE": "config",
    "FitConfig": "config",
    "FitData": "data",
    "FitResult": "data",
    "fit": "loop",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'raypi.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"raypi.train.{_EXPORTS[name]}"), name)
