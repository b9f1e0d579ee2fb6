"""The demo probe: linear read-outs of the known causes from features, grouped by patient."""

import numpy as np
import pandas as pd
import pytest

from raypi.report.probe import COLUMNS, _scores, probe_lines, probe_table
from raypi.report.synthetic import synthetic_trials


def _frame(n=300, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "patient_id": [f"p{i // 2}" for i in range(n)],
        "gt_hidden": rng.poisson(0.5, n),
        "gt_age": rng.uniform(20, 90, n),
    })  # fmt: skip


def test_features_holding_the_causes_score_high_and_noise_scores_nothing():
    frame = _frame()
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(len(frame), 8))
    holding = np.column_stack([frame["gt_hidden"], frame["gt_age"] / 20]) + 0.1 * noise[:, :2]
    seen = _scores(np.column_stack([holding, noise]), frame)
    blind = _scores(noise, frame)
    assert seen["Hidden groups: R²"] > 0.9 and seen["Age: R²"] > 0.9
    assert seen["Any hidden group: AUC"] > 0.95
    assert blind["Hidden groups: R²"] < 0.05 and blind["Age: R²"] < 0.05
    assert blind["Any hidden group: AUC"] == pytest.approx(0.5, abs=0.1)


def test_results_without_demo_trials_have_no_probe():
    trials = synthetic_trials(tasks={"readmission": (211,)}, seeds=2, failures=0)
    table = probe_table(trials)
    assert table.empty and list(table.columns) == COLUMNS
    assert probe_lines(table) == []
