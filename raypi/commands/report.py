"""``raypi report RESULTS... --out DIR``: the study's figures and tables as a static HTML page."""

from __future__ import annotations

import argparse
import sys

# Kept here so that `raypi --help` does not import matplotlib; a test checks it matches.
FIGURE_NAMES = ("sample_efficiency", "distillation", "paired", "teacher_student", "per_seed",
                "heads", "tau", "text_encoder", "lambda")  # fmt: skip


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
    parser.add_argument(
        "--figures",
        nargs="+",
        metavar="NAME",
        choices=FIGURE_NAMES,
        help=f"only these figures (default: all): {', '.join(FIGURE_NAMES)}",
    )
    parser.add_argument(
        "--where",
        nargs="+",
        default=(),
        metavar="KEY=VALUE",
        help="only trials whose column KEY equals VALUE (e.g. lr=1e-4 selection_split=inner); "
        "trials that differ in another setting than the seed are drawn apart, never averaged",
    )
    parser.add_argument(
        "--equivalence-margin",
        type=float,
        default=0.01,
        metavar="AUC",
        help="margin of the findings' 'no gain' claims, tested by a paired equivalence test "
        "(TOST), in AUC units (default: 0.01 = 1 AUC point)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the report and print the path of its index.html.

    Args:
        args: Parsed arguments (``results``, ``out``, ``ci``, ``selection``, ``figures``).

    Returns:
        0 on success, 1 when a results folder cannot be read, 2 for a bad ``--where``.
    """
    from raypi.report import build_report

    try:
        index = build_report(
            args.results,
            args.out,
            args.ci,
            args.selection,
            figures=args.figures,
            where=tuple(args.where),
            margin=args.equivalence_margin,
        )
    except FileNotFoundError as error:
        print(f"raypi report: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # a bad --where (figures turn their own errors into notes)
        print(f"raypi report: {error}", file=sys.stderr)
        return 2
    from raypi import io

    findings = io.join(str(args.out), "findings.json")
    lines = io.read_json(findings) if io.exists(findings) else {}
    for line in [*lines.get("findings", []), *lines.get("probe", [])]:
        print(line)
    print(index)
    return 0
