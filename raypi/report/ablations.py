"""Ablations (study Fig. 14–19): heads, temperature τ, teacher text encoder; and the λ search."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from raypi.report import _columns as col
from raypi.report import _labels, _notes, _plot, _select
from raypi.report.distillation import BARS, panel_title
from raypi.report.stats import BAR_LEVEL, CURVE_LEVEL, summarize

IMAGE = "Image-only"


def heads(
    trials: pd.DataFrame, metric: str, out_dir: str, ci_method: str = "t", selection: str = "study"
) -> _plot.Figure:
    """Render image-only models with different heads against training size (Fig. 14–15).

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Output folder.
        ci_method: ``"t"`` or ``"bootstrap"`` (90% interval).
        selection: Which epoch's metric to report.

    Returns:
        The figure record; one panel per (task, encoder) that has more than one head.
    """
    name, metric_name = f"ablation_heads_{metric}", _labels.metric_title(metric)
    rows = _select.main_rows(_select.with_value(trials, metric, selection), ("image",), col.HEAD)
    summary = summarize(
        rows, [col.TASK, col.ENCODER, col.HEAD, col.SIZE], level=CURVE_LEVEL, method=ci_method
    )
    grouped = summary.groupby([col.TASK, col.ENCODER])
    panels = _labels.ordered_panels([(k, g) for k, g in grouped if g[col.HEAD].nunique() > 1])
    known = list(_labels.HEAD_TITLES)
    heads_seen = sorted(
        summary[col.HEAD].dropna().unique(),
        key=lambda h: (known.index(h) if h in known else len(known), h),
    )
    colors = _labels.series_colors(heads_seen)

    def draw(ax, key, group) -> list[str]:
        task, encoder = key
        for head in heads_seen:
            rows_head = group[group[col.HEAD] == head]
            if not rows_head.empty:
                _plot.line_with_band(
                    ax, rows_head, col.SIZE, _labels.head_title(head), colors[head]
                )
        _plot.log_size_axis(ax, group[col.SIZE])
        ax.set_title(
            f"{_labels.task_title(task)} · {_labels.encoder_title(encoder)}",
            fontsize=_plot.TITLE_SIZE,
        )
        ax.set_xlabel("Training images (log scale)", fontsize=_plot.LABEL_SIZE)
        ax.set_ylabel(f"Validation {metric_name}", fontsize=_plot.LABEL_SIZE)
        ax.grid(alpha=0.3)
        return []

    caption = (
        f"Image-only models with different heads; mean over {_notes.seed_phrase(summary)}, "
        f"shaded: {CURVE_LEVEL:.0%} CI ({ci_method})."
    )
    return _plot.panel_figure(
        name, f"Head ablation ({metric_name})", caption, panels, draw, out_dir, summary,
        empty=_plot.Empty("Head ablation", "no image-only trials\nwith several heads",
                          "no task and encoder with image-only trials of several heads"),
        legend_order=[_labels.head_title(head) for head in heads_seen],
    )  # fmt: skip


def _variant_bars(
    trials, metric, out_dir, vary, label: Callable[[object], str], what, ci_method, selection
) -> _plot.Figure:
    """Render image-only vs students distilled with each value of ``vary``, per (task, size)."""
    name, metric_name = f"ablation_{vary}_{metric}", _labels.metric_title(metric)
    rows = _select.main_rows(
        _select.with_value(trials, metric, selection), ("image", "distill"), vary
    )
    is_image = rows[col.METHOD] == "image"
    rows = rows.assign(
        variant=[IMAGE if image else label(value) for image, value in zip(is_image, rows[vary])]
    )
    varied = rows[~is_image].groupby([col.TASK, col.SIZE])[vary].nunique()
    keep = varied[varied > 1].index
    rows = rows[rows.set_index([col.TASK, col.SIZE]).index.isin(keep)]
    summary = summarize(
        rows, [col.TASK, col.SIZE, col.ENCODER, "variant"], level=BAR_LEVEL, method=ci_method
    )
    panels = _labels.ordered_panels(list(summary.groupby([col.TASK, col.SIZE])))
    values = rows.loc[rows["variant"] != IMAGE, vary].dropna().unique()
    values = _labels.encoder_order(values) if vary == col.TEXT_ENCODER else sorted(values)
    variants = [IMAGE] + [label(v) for v in values]
    colors = {IMAGE: _labels.METHOD_COLORS["image"]}
    colors |= {label(v): c for v, c in _labels.series_colors(values).items()}

    def draw(ax, key, group) -> list[str]:
        encoders = _labels.encoder_order(group[col.ENCODER])
        shown = [v for v in variants if v in set(group["variant"])]
        _plot.grouped_bars(
            ax, group, col.ENCODER, "variant", encoders, shown, colors, {v: v for v in shown}
        )
        _plot.category_axis(ax, [_labels.encoder_title(e) for e in encoders])
        ax.set_title(panel_title(*key), fontsize=_plot.TITLE_SIZE)
        ax.set_ylabel(f"Validation {metric_name}", fontsize=_plot.LABEL_SIZE)
        ax.grid(axis="y", alpha=0.3)
        return []

    caption = (
        f"Image-only models and students distilled with different {what}; mean over "
        f"{_notes.seed_phrase(summary)}, error bars: {BAR_LEVEL:.0%} CI ({ci_method})."
    )
    title = f"{what.capitalize()} ablation ({metric_name})"
    empty = _plot.Empty(f"{what.capitalize()} ablation", f"no distillation trials\nwith several "
                        f"{what}", f"no distillation trials with several {what}")  # fmt: skip
    return _plot.panel_figure(
        name,
        title,
        caption,
        panels,
        draw,
        out_dir,
        summary,
        empty=empty,
        layout=BARS,
        legend_order=variants,
    )


def temperatures(
    trials: pd.DataFrame, metric: str, out_dir: str, ci_method: str = "t", selection: str = "study"
) -> _plot.Figure:
    """Render distillation with different temperatures τ against image-only (Fig. 16–17).

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Output folder.
        ci_method: ``"t"`` or ``"bootstrap"`` (95% interval).
        selection: Which epoch's metric to report.

    Returns:
        The figure record; one panel per (task, size) with several τ.
    """
    return _variant_bars(
        trials,
        metric,
        out_dir,
        col.TAU,
        lambda t: f"Distilled · τ = {t:g}",
        "temperatures τ",
        ci_method,
        selection,
    )


def text_encoders(
    trials: pd.DataFrame, metric: str, out_dir: str, ci_method: str = "t", selection: str = "study"
) -> _plot.Figure:
    """Render students of teachers with different text encoders against image-only (Fig. 18–19).

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Output folder.
        ci_method: ``"t"`` or ``"bootstrap"`` (95% interval).
        selection: Which epoch's metric to report.

    Returns:
        The figure record; one panel per (task, size) with several text encoders.
    """
    return _variant_bars(
        trials,
        metric,
        out_dir,
        col.TEXT_ENCODER,
        lambda name: f"Distilled · {_labels.encoder_title(name)}",
        "teacher text encoders",
        ci_method,
        selection,
    )
