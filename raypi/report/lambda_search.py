"""The λ search: distilled students against the imitation weight λ, per task and size."""

from __future__ import annotations

import pandas as pd
from matplotlib.lines import Line2D

from raypi.report import _columns as col
from raypi.report import _labels, _notes, _plot, _select
from raypi.report.distillation import PANEL, panel_title
from raypi.report.stats import CURVE_LEVEL, summarize


def _panel(ax, curves: pd.DataFrame, baselines: pd.DataFrame, metric: str) -> None:
    for encoder in _labels.encoder_order(curves[col.ENCODER]):
        color = _labels.encoder_color(encoder)
        _plot.line_with_band(
            ax,
            curves[curves[col.ENCODER] == encoder],
            col.LAM,
            _labels.encoder_title(encoder),
            color,
        )
        base = baselines[baselines[col.ENCODER] == encoder]["mean"]
        if not base.empty:
            ax.axhline(float(base.iloc[0]), color=color, linestyle=":", linewidth=1)
    ax.set_xlabel("Imitation weight λ", fontsize=_plot.LABEL_SIZE)
    ax.set_ylabel(f"Validation {_labels.metric_title(metric)}", fontsize=_plot.LABEL_SIZE)
    ax.grid(alpha=0.3)


def lambda_search(
    trials: pd.DataFrame, metric: str, out_dir: str, ci_method: str = "t", selection: str = "study"
) -> _plot.Figure:
    """Render the distilled students' metric against λ, one line per encoder.

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Output folder.
        ci_method: ``"t"`` or ``"bootstrap"`` (90% interval).
        selection: Which epoch's metric to report.

    Returns:
        The figure record; one panel per (task, size) with several λ.
    """
    name, metric_name = f"lambda_search_{metric}", _labels.metric_title(metric)
    rows = _select.main_rows(
        _select.with_value(trials, metric, selection), ("image", "distill"), col.LAM
    )
    distilled = rows[rows[col.METHOD] == "distill"]
    curves = summarize(
        distilled, [col.TASK, col.SIZE, col.ENCODER, col.LAM], level=CURVE_LEVEL, method=ci_method
    )
    image = summarize(rows[rows[col.METHOD] == "image"], [col.TASK, col.SIZE, col.ENCODER])
    grouped = curves.groupby([col.TASK, col.SIZE])
    panels = _labels.ordered_panels([(k, g) for k, g in grouped if g[col.LAM].nunique() > 1])
    baseline = Line2D([], [], color="#555555", linestyle=":", linewidth=1)

    def draw(ax, key, group) -> list[str]:
        task, size = key
        here = image[(image[col.TASK] == task) & (image[col.SIZE] == size)]
        _panel(ax, group, here, metric)
        ax.set_title(panel_title(task, size), fontsize=_plot.TITLE_SIZE)
        return [f"{panel_title(task, size)}: no image-only baseline"] if here.empty else []

    caption = (
        f"Distilled students against the imitation weight λ; mean over "
        f"{_notes.seed_phrase(curves)}, shaded: {CURVE_LEVEL:.0%} CI ({ci_method}); dotted: "
        "image-only model of the same encoder."
    )
    return _plot.panel_figure(
        name, f"λ search ({metric_name})", caption, panels, draw, out_dir, curves,
        empty=_plot.Empty("λ search", "no distillation trials\nwith several λ",
                          "no distillation trials with several λ"),
        layout=_plot.Layout(ncols=2, width=PANEL[0], height=PANEL[1]),
        legend_extra=[(baseline, "Image-only (same encoder)")],
    )  # fmt: skip
