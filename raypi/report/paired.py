"""Per-seed paired differences of students against image-only models, with paired tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.transforms import blended_transform_factory

from raypi.report import _columns as col
from raypi.report import _labels, _plot, _select
from raypi.report.distillation import BARS, comparison_rows, panel_title
from raypi.report.stats import BAR_LEVEL, paired_frame, paired_test

ARMS = ("distill", "self_distill")
"""Students compared against the image-only model of the same seed."""

TEST_COLUMNS = [
    col.TASK,
    col.SIZE,
    col.ENCODER,
    "comparison",
    "n",
    "mean_diff",
    "low",
    "high",
    "t_pvalue",
    "wilcoxon_pvalue",
]


def paired_differences(rows: pd.DataFrame) -> pd.DataFrame:
    """Return per-seed differences ``student − image-only`` for both students.

    Args:
        rows: Main-configuration trials with a ``value`` column (``comparison_rows``).

    Returns:
        Columns task, size, encoder, seed, treatment, baseline, diff and ``arm``.
    """
    group = [col.TASK, col.SIZE, col.ENCODER]
    frames = [
        paired_frame(rows, group, col.SEED, col.METHOD, arm, "image").assign(arm=arm)
        for arm in ARMS
    ]
    return pd.concat(frames, ignore_index=True)


def paired_tests(differences: pd.DataFrame) -> pd.DataFrame:
    """Return one paired t-test and Wilcoxon test per (task, size, encoder, student).

    Args:
        differences: Output of ``paired_differences``.

    Returns:
        Columns ``TEST_COLUMNS``; ``comparison`` reads like ``Distilled − Image-only``.
    """
    rows = []
    for (task, size, encoder, arm), group in differences.groupby(
        [col.TASK, col.SIZE, col.ENCODER, "arm"], sort=True
    ):
        test = paired_test(group["treatment"], group["baseline"], level=BAR_LEVEL)
        comparison = f"{_labels.method_title(arm)} − {_labels.method_title('image')}"
        rows.append(
            (
                task,
                size,
                encoder,
                comparison,
                test.n,
                test.mean_diff,
                test.low,
                test.high,
                test.t_pvalue,
                test.wilcoxon_pvalue,
            )
        )
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def p_text(pvalue: float) -> str:
    """Return a compact p-value: ``p=.31``, ``p=.004``, ``p<.001``."""
    if pvalue < 0.001:
        return "p<.001"
    digits = 3 if pvalue < 0.01 else 2
    return "p=" + f"{pvalue:.{digits}f}".lstrip("0")


def _arm_points(
    ax, diffs: pd.DataFrame, tests: pd.DataFrame, encoders: list[str], arm: str, offset: float
):
    color, label = _labels.METHOD_COLORS[arm], f"{_labels.method_title(arm)} − image-only"
    rng = np.random.default_rng(0)
    for index, encoder in enumerate(encoders):
        points = diffs[(diffs[col.ENCODER] == encoder) & (diffs["arm"] == arm)]["diff"]
        jitter = rng.uniform(-0.05, 0.05, len(points))
        ax.scatter(
            index + offset + jitter,
            points,
            s=12,
            color=color,
            alpha=0.55,
            linewidths=0,
            label=label if index == 0 else None,
        )
        test = tests[
            (tests[col.ENCODER] == encoder)
            & tests["comparison"].str.startswith(_labels.method_title(arm))
        ]
        if test.empty or not np.isfinite(test["mean_diff"].iloc[0]):
            continue
        row = test.iloc[0]
        yerr = [[row["mean_diff"] - row["low"]], [row["high"] - row["mean_diff"]]]
        ax.errorbar(
            index + offset,
            row["mean_diff"],
            yerr=np.nan_to_num(yerr),
            fmt="D",
            color=color,
            markersize=4,
            capsize=3,
            elinewidth=1,
        )
        if np.isfinite(row["t_pvalue"]):
            # One row per student at the top of the panel (kept free by the caller), centred on
            # the encoder, so p-values neither cover points nor run into each other.
            top = blended_transform_factory(ax.transData, ax.transAxes)
            ax.text(
                index,
                0.98 - 0.075 * ARMS.index(arm),
                p_text(row["t_pvalue"]),
                transform=top,
                ha="center",
                va="top",
                fontsize=8,
                color=color,
            )


def paired_figure(
    trials: pd.DataFrame, metric: str, out_dir: str, ci_method: str = "t", selection: str = "study"
) -> _plot.Figure:
    """Render per-seed differences student − image-only, one panel per (task, size).

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Folder for ``paired_<metric>.png`` and its CSV.
        ci_method: Unused (the mean difference always gets a t interval, as the paired t-test).
        selection: Which epoch's metric to report.

    Returns:
        The figure record; its table holds the paired tests (``TEST_COLUMNS``).
    """
    name = f"paired_{metric}"
    differences = paired_differences(comparison_rows(_select.with_value(trials, metric, selection)))
    tests = paired_tests(differences)
    panels = _labels.ordered_panels(list(differences.groupby([col.TASK, col.SIZE])))
    metric_name = _labels.metric_title(metric)

    def draw(ax, key, diffs) -> list[str]:
        task, size = key
        encoders = _labels.encoder_order(diffs[col.ENCODER])
        here = tests[(tests[col.TASK] == task) & (tests[col.SIZE] == size)]
        for arm, offset in zip(ARMS, (-0.17, 0.17)):
            _arm_points(ax, diffs, here, encoders, arm, offset)
        ax.axhline(0, color="#333333", linewidth=0.8)
        _plot.category_axis(ax, [_labels.encoder_title(e) for e in encoders])
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.25 * (high - low))
        ax.set_title(panel_title(task, size), fontsize=_plot.TITLE_SIZE)
        ax.set_ylabel(f"Δ {metric_name} vs image-only", fontsize=_plot.LABEL_SIZE)
        ax.grid(axis="y", alpha=0.3)
        return []

    caption = (
        f"Per-seed paired difference in validation {metric_name}, student − image-only "
        f"model of the same seed and training subset. Diamonds: mean with {BAR_LEVEL:.0%} "
        "t-CI. Top of each panel: two-sided paired t-test p, first row distilled, second row "
        "self-distilled (Wilcoxon signed-rank in the table below)."
    )
    return _plot.panel_figure(
        name, f"Paired differences ({metric_name})", caption, panels, draw, out_dir, tests,
        empty=_plot.Empty("Paired differences", "no seed with both a student\nand an image-only "
                          "model", "no seed has both a student and an image-only model"),
        layout=BARS,
    )  # fmt: skip
