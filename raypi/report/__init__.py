"""Figures, tables and the HTML report of the study, built from sweep results Parquet."""

from raypi.report.build import build_report
from raypi.report.figures import FIGURES, render_figures
from raypi.report.load import Results, load_results
from raypi.report.stats import PairedTest, mean_ci, paired_test, summarize

__all__ = [
    "FIGURES",
    "PairedTest",
    "Results",
    "build_report",
    "load_results",
    "mean_ci",
    "paired_test",
    "render_figures",
    "summarize",
]
