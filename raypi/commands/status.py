"""``raypi status RESULTS``: per task × method, done / failed / not started, and time left."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``status`` subcommand.

    Args:
        subparsers: The ``raypi`` command's subparsers.
    """
    parser = subparsers.add_parser(
        "status",
        help="where a sweep stands: done / failed / not started, failures, time left",
        description="Read a sweep's results folder (local or s3://; running or finished) and "
        "print, per task and method, the trials done, failed and not started, the failures "
        "with their errors, the compute spent and the time left at the current rate.",
    )
    parser.add_argument("results", metavar="RESULTS", help="a sweep's results folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the status; 1 when the folder holds no sweep results.

    Args:
        args: Parsed arguments (``results``).

    Returns:
        The exit code.
    """
    from raypi import io
    from raypi.sweep.status import format_status, sweep_status

    if not io.exists(io.join(args.results, "parts", "trials")) and not io.exists(
        io.join(args.results, "sweep.yaml")
    ):
        print(f"raypi status: {args.results} holds no sweep results", file=sys.stderr)
        return 1
    print(format_status(args.results, sweep_status(args.results)))
    return 0
