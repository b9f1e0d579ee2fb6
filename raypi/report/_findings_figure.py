"""The findings figure: each tested claim's paired differences per seed, mean and 95 % CI."""

from __future__ import annotations

import pandas as pd

from raypi.report.findings import ALPHA, COLUMNS, FAILS, HOLDS
from raypi.report.stats import DEFAULT_MARGIN


def findings_figure(tested: pd.DataFrame, path: str, margin: float = DEFAULT_MARGIN):
    """Draw each tested claim as its paired differences (seeds) with the mean and 95 % CI.

    Args:
        tested: Output of ``check_claims`` (non-empty).
        path: Destination PNG (local or ``s3://``).
        margin: The equivalence margin the claims were tested with (shaded).

    Returns:
        The ``raypi.report._plot.Figure`` (its table is ``tested`` without helper columns).
    """
    import matplotlib.pyplot as plt

    from raypi.report import _plot

    height = 0.55 * len(tested) + 1.2
    fig, ax = plt.subplots(figsize=(10.5, height))
    labels = []
    for y, (_, row) in enumerate(tested.iloc[::-1].iterrows()):
        color = {HOLDS: "#2ca02c", FAILS: "#d62728"}.get(row["verdict"], "#7f7f7f")
        diffs = [100 * d for d in row["diffs"]]
        ax.scatter(diffs, [y] * len(diffs), s=14, color=color, alpha=0.55, zorder=3)
        mean, low, high = (100 * row[key] for key in ("mean_diff", "low", "high"))
        ax.errorbar(
            mean,
            y,
            xerr=[[mean - low], [high - mean]],
            fmt="D",
            color=color,
            capsize=3,
            zorder=4,
        )
        labels.append(
            f"{row['Finding']}. {row['Task']}, n={row['Training images']}: {row['Comparison']}"
            f"  ({row['Verdict']})"
        )
    ax.axvline(0, color="#444", linewidth=0.8)
    ax.axvspan(-100 * margin, 100 * margin, color="#bbbbbb", alpha=0.3, zorder=1)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("paired difference, treatment − baseline (AUC points; dots: seeds)")
    ax.grid(axis="x", alpha=0.3)
    _plot.save(fig, path, tight=True)  # the long claim labels set the figure's width
    table = tested[COLUMNS]
    caption = (
        "The study's findings tested on these results: per claim and training size, the "
        "paired difference of the two arms per seed (dots), their mean with a 95% t "
        "interval (diamond); green holds, red does not hold, grey is inconclusive. A claim "
        "of a gain holds on a one-sided paired t-test; a claim of no gain holds only when a "
        f"paired equivalence test (TOST) shows the difference inside ±{100 * margin:g} AUC "
        f"points (shaded); α = {ALPHA}."
    )
    name = path.rsplit("/", 1)[-1].removesuffix(".png")
    return _plot.Figure(name, "Findings", caption, path, table)
