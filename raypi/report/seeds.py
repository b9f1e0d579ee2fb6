"""Per-seed views of the distillation experiment (study Fig. 11–13).

Fig. 11 sets the teacher against its distilled student seed by seed (the study: "in the case
of RAD-DINO, the student consistently outperforms the teacher"); Figs. 12–13 show the
image-only model and both students per seed. One panel per (task, size, image backbone): the
seeds a bar of ``distillation`` averages, drawn one by one, so a mean carried by one seed shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raypi.report import _columns as col
from raypi.report import _labels, _plot, _select
from raypi.report.distillation import comparison_rows, panel_title

SEEDS = _plot.Layout(ncols=3, width=4.2, height=3.3, bottom=0.75)
"""Panels of the per-seed figures: two-line titles (task and size, backbone) above them."""
OFFSETS = {"image": -0.15, "teacher": -0.05, "distill": 0.05, "self_distill": 0.15}


def _per_seed(rows: pd.DataFrame, methods: tuple[str, ...]) -> pd.DataFrame:
    keys = [col.TASK, col.SIZE, col.ENCODER, col.METHOD, col.SEED]
    kept = rows[rows[col.METHOD].isin(methods) & rows[col.ENCODER].notna()]
    return kept.groupby(keys, as_index=False)["value"].mean()


def _draw(ax, key, rows: pd.DataFrame, methods: tuple[str, ...], metric: str) -> list[str]:
    task, size, encoder = key
    seeds = sorted(int(seed) for seed in rows[col.SEED].unique())
    position = {seed: index for index, seed in enumerate(seeds)}
    for method in (m for m in methods if m in set(rows[col.METHOD])):
        mine = rows[rows[col.METHOD] == method].sort_values(col.SEED)
        xs = np.array([position[int(s)] for s in mine[col.SEED]]) + OFFSETS[method]
        ax.plot(
            xs,
            mine["value"],
            marker="o",
            markersize=4,
            linewidth=0.8,
            alpha=0.9,
            color=_labels.METHOD_COLORS[method],
            label=_labels.method_title(method),
        )
    ax.set_xticks(range(len(seeds)), [str(seed) for seed in seeds], fontsize=_plot.TICK_SIZE)
    ax.set_xlabel("seed", fontsize=_plot.LABEL_SIZE)
    ax.set_ylabel(f"validation {_labels.metric_title(metric)}", fontsize=_plot.LABEL_SIZE)
    ax.set_title(f"{panel_title(task, size)}\n{_labels.encoder_title(encoder)}",
                 fontsize=_plot.TITLE_SIZE - 1)  # fmt: skip
    ax.grid(axis="y", alpha=0.3)
    absent = [m for m in methods if m not in set(rows[col.METHOD])]
    return [f"{panel_title(task, size)}, {encoder}: no {', '.join(absent)}"] if absent else []


def _figure(trials, metric, out_dir, selection, kind: str, methods, caption: str):
    name = f"{kind}_{metric}"
    table = _per_seed(comparison_rows(_select.with_value(trials, metric, selection)), methods)
    groups = table.groupby([col.TASK, col.SIZE, col.ENCODER]) if not table.empty else []
    panels = _labels.ordered_panels(list(groups))
    title = {"teacher_student": "Teacher vs student", "per_seed": "Per-seed AUCs"}[kind]
    return _plot.panel_figure(
        name, f"{title} ({_labels.metric_title(metric)})", caption, panels,
        lambda ax, key, rows: _draw(ax, key, rows, methods, metric), out_dir, table,
        empty=_plot.Empty(title, "no seeds with these methods", f"no {' or '.join(methods)} "
                          "trials in the results"),
        layout=SEEDS, legend_order=[_labels.method_title(m) for m in methods],
    )  # fmt: skip


def teacher_student(
    trials: pd.DataFrame, metric: str, out_dir: str, ci_method: str = "t", selection: str = "study"
) -> _plot.Figure:
    """Render the teacher's and the distilled student's value per seed (study Fig. 11).

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Folder for ``teacher_student_<metric>.png`` and its CSV.
        ci_method: Unused (single seeds have no interval).
        selection: Which epoch's metric to report (teachers: their kept epoch).

    Returns:
        The figure record; its table has one row per task, size, backbone, method and seed.
    """
    caption = (
        f"Validation {_labels.metric_title(metric)} of the teacher (image + report) and of its "
        "distilled student, seed by seed (study Fig. 11): a student above its own teacher has "
        "learned more than the teacher's image branch."
    )
    return _figure(trials, metric, out_dir, selection, "teacher_student",
                   ("teacher", "distill"), caption)  # fmt: skip


def per_seed(
    trials: pd.DataFrame, metric: str, out_dir: str, ci_method: str = "t", selection: str = "study"
) -> _plot.Figure:
    """Render the image-only model and both students per seed (study Figs. 12–13).

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Folder for ``per_seed_<metric>.png`` and its CSV.
        ci_method: Unused (single seeds have no interval).
        selection: Which epoch's metric to report.

    Returns:
        The figure record; its table has one row per task, size, backbone, method and seed.
    """
    caption = (
        f"Validation {_labels.metric_title(metric)} of image-only models trained with and "
        "without distillation, seed by seed (study Figs. 12–13); the same seed shares its "
        "split and training subset across the three."
    )
    return _figure(trials, metric, out_dir, selection, "per_seed",
                   ("image", "distill", "self_distill"), caption)  # fmt: skip
