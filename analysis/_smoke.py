"""Shared --smoke-test input of the analysis scripts: a small synthetic results folder."""

from __future__ import annotations

import tempfile

from raypi.report.synthetic import write_synthetic_results


def smoke_results() -> str:
    """Write a small synthetic sweep (1 task, 2 sizes, 2 encoders, 3 seeds, cells missing)."""
    folder = tempfile.mkdtemp(prefix="raypi-smoke-")
    return write_synthetic_results(
        f"{folder}/results",
        tasks={"readmission": (211, 2119)},
        encoders=("rad_dino", "mrm"),
        seeds=3,
        drop=0.05,
    )
