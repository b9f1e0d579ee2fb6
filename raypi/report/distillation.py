"""Distillation comparison (study Fig. 3 and 6): image-only, teacher, distilled, self-distilled."""

from __future__ import annotations

import pandas as pd

from raypi.report import _columns as col
from raypi.report import _labels, _notes, _plot, _select
from raypi.report.stats import BAR_LEVEL, summarize

PANEL = (5.6, 3.6)
BARS = _plot.Layout(ncols=2, width=PANEL[0], height=PANEL[1], bottom=_plot.CATEGORY_BOTTOM)
"""Layout of the bar figures: two wide panels a row, category axes."""


def comparison_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Return main-configuration trials of every (task, size) that has teachers or students.

    Args:
        rows: Finished trials with a ``value`` column.

    Returns:
        Rows of the four methods of the comparison, with a ``config`` column describing the
        main configuration of their task.
    """
    parts = []
    for task, task_rows in rows.groupby(col.TASK, sort=True):
        config = _select.main_config(task_rows, str(task))
        chosen = _select.select(task_rows, config)
        chosen = chosen[chosen[col.METHOD].isin(_labels.METHOD_ORDER)]
        distilled_sizes = chosen.loc[chosen[col.METHOD] != "image", col.SIZE].unique()
        described = f"{_labels.task_title(str(task))}: {config.describe()}"
        parts.append(chosen[chosen[col.SIZE].isin(distilled_sizes)].assign(config=described))
    return pd.concat(parts, ignore_index=True) if parts else rows.iloc[:0].assign(config="")


def panel_title(task: object, size: object) -> str:
    """Return ``"<task title>, n = 1,000"``."""
    return f"{_labels.task_title(str(task))}, n = {int(size):,}"


def _panel(ax, summary: pd.DataFrame, title: str, metric: str) -> list[str]:
    encoders = _labels.encoder_order(summary[col.ENCODER])
    methods = [m for m in _labels.METHOD_ORDER if m in set(summary[col.METHOD])]
    labels = {m: _labels.method_title(m) for m in methods}
    _plot.grouped_bars(
        ax, summary, col.ENCODER, col.METHOD, encoders, methods, _labels.METHOD_COLORS, labels
    )
    _plot.category_axis(ax, [_labels.encoder_title(e) for e in encoders])
    ax.set_title(title, fontsize=_plot.TITLE_SIZE)
    ax.set_ylabel(f"Validation {_labels.metric_title(metric)}", fontsize=_plot.LABEL_SIZE)
    ax.grid(axis="y", alpha=0.3)
    notes = []
    for method in _labels.METHOD_ORDER:
        lacking = _notes.absent_values(
            summary[summary[col.METHOD] == method], col.ENCODER, encoders, _labels.encoder_title
        )
        notes += _notes.lacks(title, f"{_labels.method_title(method)} trials", lacking)
    return notes


def distillation(
    trials: pd.DataFrame,
    metric: str,
    out_dir: str,
    ci_method: str = "t",
    selection: str = "study",
) -> _plot.Figure:
    """Render per-encoder bars of the four methods, one panel per (task, size).

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Folder for ``distillation_<metric>.png`` and its CSV.
        ci_method: ``"t"`` or ``"bootstrap"`` (95% interval across seeds).
        selection: Which epoch's metric to report.

    Returns:
        The figure record.
    """
    name = f"distillation_{metric}"
    rows = comparison_rows(_select.with_value(trials, metric, selection))
    by = [col.TASK, col.SIZE, col.ENCODER, col.METHOD]
    summary = summarize(rows, by, level=BAR_LEVEL, method=ci_method)
    panels = _labels.ordered_panels(list(summary.groupby([col.TASK, col.SIZE])))
    configs = "; ".join(sorted(set(rows["config"]))) if not rows.empty else "none"
    metric_name = _labels.metric_title(metric)
    caption = (
        f"Validation {metric_name} per image backbone: image-only, teacher (image + report), "
        f"distilled and self-distilled students; mean over {_notes.seed_phrase(summary)}, "
        f"error bars: {BAR_LEVEL:.0%} CI ({ci_method}). Configuration: {configs}."
    )
    return _plot.panel_figure(
        name, f"Distillation ({metric_name})", caption, panels,
        lambda ax, key, group: _panel(ax, group, panel_title(*key), metric), out_dir, summary,
        empty=_plot.Empty("Distillation", "no teacher or distillation trials",
                          "no teacher or distillation trials in the results"),
        layout=BARS,
    )  # fmt: skip
