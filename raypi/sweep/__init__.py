"""Sweeps on Ray Tune: grid → trials, two stages (teachers once, then students), results.

Names load on first use, so ``import raypi.sweep`` (and ``raypi --help``) stays light;
Ray is imported only when a sweep runs.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DataSource": "grid",
    "Grid": "grid",
    "SweepSpec": "grid",
    "TrialConfig": "grid",
    "expand": "grid",
    "stages": "grid",
    "load_spec": "config",
    "spec_from_dict": "config",
    "spec_to_dict": "config",
    "LaunchOptions": "launch",
    "SweepOutcome": "launch",
    "results_dir": "launch",
    "run_sweep": "launch",
    "SearchSpace": "search",
    "run_lambda_search": "search",
    "collect": "results",
    "read_epochs": "results",
    "read_trials": "results",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'raypi.sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(f"raypi.sweep.{_EXPORTS[name]}"), name)
