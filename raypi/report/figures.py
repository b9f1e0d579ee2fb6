"""Registry of the report's figures, and rendering them safely from a trials table."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from raypi import io
from raypi.report._plot import Figure
from raypi.report.ablations import heads, temperatures, text_encoders
from raypi.report.distillation import distillation
from raypi.report.lambda_search import lambda_search
from raypi.report.load import load_results
from raypi.report.paired import paired_figure
from raypi.report.sample_efficiency import sample_efficiency
from raypi.report.seeds import per_seed, teacher_student

METRICS = ("auc", "auprc")


@dataclass(frozen=True)
class FigureKind:
    """One figure of the study, rendered once per metric."""

    title: str
    """Section heading."""
    make: Callable[..., Figure]
    """Builder ``(trials, metric, out_dir, ci_method, selection) -> Figure``."""


FIGURES: dict[str, FigureKind] = {
    "sample_efficiency": FigureKind("Sample efficiency", sample_efficiency),
    "distillation": FigureKind("Distillation", distillation),
    "paired": FigureKind("Paired differences", paired_figure),
    "teacher_student": FigureKind("Teacher vs student per seed (Fig. 11)", teacher_student),
    "per_seed": FigureKind(
        "Per-seed AUCs with and without distillation (Figs. 12–13)", per_seed
    ),  # fmt: skip
    "heads": FigureKind("Ablation: heads", heads),
    "tau": FigureKind("Ablation: temperature τ", temperatures),
    "text_encoder": FigureKind("Ablation: teacher text encoder", text_encoders),
    "lambda": FigureKind("λ search", lambda_search),
}
"""Every figure by name, in the order of the report."""


def render_one(
    name: str, trials: pd.DataFrame, metric: str, out_dir: str, ci_method: str, selection: str
) -> Figure:
    """Render one figure; a failure becomes a note on the figure instead of an exception.

    Args:
        name: Key of ``FIGURES``.
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        out_dir: Folder for the PNG.
        ci_method: ``"t"`` or ``"bootstrap"``.
        selection: Reported epoch (see ``raypi.report._select.SELECTIONS``).

    Returns:
        The figure record (without a path when it failed).
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    try:
        return FIGURES[name].make(trials, metric, out_dir, ci_method, selection)
    except Exception as error:  # noqa: BLE001 - one broken figure must not cost the others
        print(f"raypi report: {name} ({metric}) could not be rendered: {error!r}", file=sys.stderr)
        note = f"could not be rendered: {type(error).__name__}: {error}"
        return Figure(
            f"{name}_{metric}", f"{FIGURES[name].title} ({metric})", "", None, None, [note]
        )


def render_figures(
    results: list[str],
    out_dir: str,
    names: tuple[str, ...] = tuple(FIGURES),
    metrics: tuple[str, ...] = METRICS,
    ci_method: str = "t",
    selection: str = "study",
) -> list[Figure]:
    """Read sweep results and render the named figures for each metric (PNG + CSV).

    Args:
        results: Result folders (local or ``s3://``).
        out_dir: Folder for ``<figure>_<metric>.png`` and ``.csv``.
        names: Keys of ``FIGURES``.
        metrics: Metrics to plot.
        ci_method: ``"t"`` or ``"bootstrap"``.
        selection: Reported epoch.

    Returns:
        The figure records, figure by figure, metric by metric.
    """
    trials = load_results([str(path) for path in results]).trials
    figures = [render_one(name, trials, m, out_dir, ci_method, selection)
               for name in names for m in metrics]  # fmt: skip
    for figure in figures:
        if figure.table is not None and not figure.table.empty:
            write_table(figure, out_dir)
    return figures


def write_table(figure: Figure, out_dir: str) -> str:
    """Write a figure's numbers beside it as ``<name>.csv`` and return the path."""
    path = io.join(out_dir, f"{figure.name}.csv")
    io.write_bytes(path, figure.table.to_csv(index=False).encode())
    return path
