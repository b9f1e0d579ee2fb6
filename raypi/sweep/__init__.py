"""Sweeps on Ray Tune: grid → trials, two stages (teachers once, then students), results.

Names load on first use, so ``import raypi.sweep`` (and ``raypi --help``) stays light;
Ray is imported only when a sweep runs.
"""

from __future__ import annotations

from raypi._lazy import exports

_EXPORTS = {
    "DataSource": "grid",
    "Grid": "grid",
    "SweepSpec": "grid",
    "TrialConfig": "trial",
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


__getattr__ = exports("raypi.sweep", _EXPORTS)
