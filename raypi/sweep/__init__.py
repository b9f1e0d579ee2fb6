"""Sweeps on Ray Tune: grid → trials, two stages (teachers once, then students), results.

Importing this package does not import Ray; ``run_sweep`` does when called.
"""

from raypi.sweep.config import load_spec, spec_from_dict, spec_to_dict
from raypi.sweep.grid import DataSource, Grid, SweepSpec, TrialConfig, expand, stages
from raypi.sweep.launch import LaunchOptions, SweepOutcome, results_dir, run_sweep
from raypi.sweep.results import collect, read_epochs, read_trials

__all__ = [
    "DataSource",
    "Grid",
    "LaunchOptions",
    "SweepOutcome",
    "SweepSpec",
    "TrialConfig",
    "collect",
    "expand",
    "load_spec",
    "read_epochs",
    "read_trials",
    "results_dir",
    "run_sweep",
    "spec_from_dict",
    "spec_to_dict",
    "stages",
]
