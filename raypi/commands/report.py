"""``raypi report RESULTS... --out DIR``: the study's figures and tables as a static HTML page."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand.

    Args:
        subparsers: The ``raypi`` command's subparsers.
    """
    parser = subparsers.add_parser(
        "report",
        help="render figures, tables and index.html from sweep results",
        description="Read the trials/epochs Parquet of one or more sweeps (local or s3://) and "
        "write the study's figures (sample efficiency, distillation, paired differences, "
        "ablations, λ search; AUC and AUPRC), tables and an offline index.html.",
    )
    parser.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="results folder with trials.parquet (or a folder of such folders), local or s3://",
    )
    parser.add_argument("--out", default="report", help="output folder (default: ./report)")
    parser.add_argument(
        "--ci",
        choices=("t", "bootstrap"),
        default="t",
        help="confidence intervals across seeds: Student t (default) or percentile bootstrap",
    )
    parser.add_argument(
        "--selection",
        choices=("study", "final", "best"),
        default="study",
        help="reported epoch: study (last epoch; teachers their best validation epoch), "
        "final, or best",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the report and print the path of its index.html.

    Args:
        args: Parsed arguments (``results``, ``out``, ``ci``, ``selection``).

    Returns:
        0 on success, 1 when a results folder cannot be read.
    """
    from raypi.report import build_report

    try:
        index = build_report(args.results, args.out, ci_method=args.ci, selection=args.selection)
    except FileNotFoundError as error:
        print(f"raypi report: {error}", file=sys.stderr)
        return 1
    print(index)
    return 0
