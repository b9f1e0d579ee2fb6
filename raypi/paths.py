"""Default locations of raypi's data, features and results."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Return raypi's data home: ``$RAYPI_HOME`` or ``./raypi_data``.

    Returns:
        The folder where built datasets and feature stores go by default.
    """
    return Path(os.environ.get("RAYPI_HOME", "raypi_data")).absolute()


def demo_dataset() -> Path:
    """Return the default folder of the built-in demo dataset."""
    return home() / "datasets" / "demo"


def demo_features() -> Path:
    """Return the default feature store of the built-in demo dataset."""
    return home() / "features" / "demo"


def results(sweep_name: str) -> Path:
    """Return the default results folder of a sweep: ``./results/<sweep_name>``.

    Args:
        sweep_name: Name of the sweep.

    Returns:
        Absolute path of the sweep's results folder.
    """
    return Path("results", sweep_name).absolute()
