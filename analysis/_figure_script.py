"""Shared command line of the single-figure analysis scripts."""

from __future__ import annotations

import argparse
import tempfile

from raypi.report import render_figures


def run(description: str, names: tuple[str, ...], argv: list[str] | None) -> int:
    """Parse ``RESULTS... --out DIR [--metric] [--smoke-test]``, render ``names``, print paths.

    Args:
        description: Help text of the script.
        names: Figure names (keys of ``raypi.report.FIGURES``).
        argv: Command-line arguments without the program name.

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("results", nargs="*", help="results folders (local or s3://)")
    parser.add_argument("--out", default=None, help="output folder (default: ./report/figures)")
    parser.add_argument("--metric", choices=("auc", "auprc", "both"), default="both")
    parser.add_argument("--ci", choices=("t", "bootstrap"), default="t", help="interval method")
    parser.add_argument("--smoke-test", action="store_true", help="render synthetic results")
    args = parser.parse_args(argv)
    results = args.results
    if args.smoke_test:
        from _smoke import smoke_results

        results = [smoke_results()]
    if not results:
        parser.error("give at least one results folder (or --smoke-test)")
    out = args.out or (
        tempfile.mkdtemp(prefix="raypi-fig-") if args.smoke_test else "report/figures"
    )
    metrics = ("auc", "auprc") if args.metric == "both" else (args.metric,)
    for figure in render_figures(results, out, names, metrics, ci_method=args.ci):
        print(figure.path or f"{figure.name}: not rendered")
        for note in figure.missing:
            print(f"  missing: {note}")
    return 0
