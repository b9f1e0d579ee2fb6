"""``raypi sweep --config FILE.yaml``: run (or resume) a sweep on Ray Tune."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand.

    Args:
        subparsers: The ``raypi`` command's subparsers.
    """
    from raypi.sweep.script import add_sweep_arguments

    parser = subparsers.add_parser(
        "sweep",
        help="run or resume a sweep (teachers once, then students) on Ray Tune",
        description="Run the sweep a YAML config describes (see sweeps/configs/) on a local Ray "
        "or a cluster (--address); rerunning it skips the trials already recorded. Results go "
        "to <storage>/<sweep name>/trials.parquet and epochs.parquet.",
    )
    add_sweep_arguments(parser, default_config=None)
    parser.add_argument(
        "--search",
        action="store_true",
        help="search λ and τ of the students with Optuna instead of running the grid",
    )
    parser.add_argument(
        "--samples", type=int, default=8, help="students per grid point with --search"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep; return the exit code (1 when some trials failed)."""
    from raypi.sweep.script import run_from_args, run_search_from_args

    return run_search_from_args(args) if args.search else run_from_args(args)
