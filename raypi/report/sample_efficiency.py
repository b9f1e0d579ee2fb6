"""Sample-efficiency curves (study Fig. 2 and 5): metric against training size per task."""

from __future__ import annotations

import pandas as pd

from raypi.report import _columns as col
from raypi.report import _labels, _notes, _plot, _select
from raypi.report.stats import CURVE_LEVEL, summarize


def _panel(ax, task: str, summary: pd.DataFrame, encoders: list[str], metric: str) -> list[str]:
    title = _labels.task_title(task)
    if summary.empty:
        _plot.missing_panel(ax, title, "no image-only trials\nfor this task")
        return [f"{title}: no image-only trials"]
    for encoder in _labels.encoder_order(summary[col.ENCODER]):
        rows = summary[summary[col.ENCODER] == encoder]
        _plot.line_with_band(
            ax, rows, col.SIZE, _labels.encoder_title(encoder), _labels.encoder_color(encoder)
        )
    _plot.log_size_axis(ax, summary[col.SIZE])
    ax.set_title(title, fontsize=_plot.TITLE_SIZE)
    ax.set_xlabel("Training images (log scale)", fontsize=_plot.LABEL_SIZE)
    ax.set_ylabel(f"Validation {_labels.metric_title(metric)}", fontsize=_plot.LABEL_SIZE)
    ax.grid(alpha=0.3)
    notes = _notes.lacks(
        title,
        "image-only trials",
        _notes.absent_values(summary, col.ENCODER, encoders, _labels.encoder_title),
    )
    return notes + _notes.single_seed(
        summary, title, lambda r: f"{_labels.encoder_title(r[col.ENCODER])} at {int(r[col.SIZE]):,}"
    )


def sample_efficiency(
    trials: pd.DataFrame,
    metric: str,
    out_dir: str,
    ci_method: str = "t",
    selection: str = "study",
) -> _plot.Figure:
    """Render metric against training size, one panel per task and one line per encoder.

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Folder for ``sample_efficiency_<metric>.png`` and its CSV.
        ci_method: ``"t"`` or ``"bootstrap"`` (90% interval across seeds).
        selection: Which epoch's metric to report (see ``_select.SELECTIONS``).

    Returns:
        The figure record; tasks without image-only trials show a note instead of a curve.
    """
    name = f"sample_efficiency_{metric}"
    rows = _select.with_value(trials, metric, selection)
    image = _select.main_rows(rows, ("image",))
    summary = summarize(
        image, [col.TASK, col.SIZE, col.ENCODER], level=CURVE_LEVEL, method=ci_method
    )
    tasks = sorted(rows[col.TASK].dropna().unique(), key=_labels.task_rank)
    encoders = _labels.encoder_order(image[col.ENCODER].dropna())
    panels = [(task, summary[summary[col.TASK] == task]) for task in tasks]
    metric_name = _labels.metric_title(metric)
    caption = (
        f"Validation {metric_name} of image-only models against training-set size "
        f"(attention head unless absent); mean over {_notes.seed_phrase(summary)}, "
        f"shaded: {CURVE_LEVEL:.0%} CI ({ci_method})."
    )
    return _plot.panel_figure(
        name, f"Sample efficiency ({metric_name})", caption, panels,
        lambda ax, task, rows: _panel(ax, task, rows, encoders, metric), out_dir, summary,
        empty=_plot.Empty("Sample efficiency", "no finished trials",
                          "no finished trials in the results"),
    )  # fmt: skip
