"""``raypi demo-data``: build the built-in demo dataset and print its summary."""

from __future__ import annotations

import argparse
import json

from raypi import paths
from raypi.data.demo import DEFAULT_N


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo-data`` subcommand.

    Args:
        subparsers: The ``raypi`` command's subparsers.
    """
    parser = subparsers.add_parser(
        "demo-data",
        help="build the built-in demo dataset (real IU reports, synthetic radiographs)",
        description="Build the demo dataset: dataset table, three task tables, PNG images.",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="dataset root to write (local or s3://); default: $RAYPI_HOME/datasets/demo",
    )
    parser.add_argument(
        "--n", type=int, default=DEFAULT_N, help=f"number of images (default {DEFAULT_N})"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the dataset (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the demo dataset and print its summary as JSON.

    Args:
        args: Parsed arguments (``out``, ``n``, ``seed``).

    Returns:
        Exit code 0.
    """
    from raypi.data.demo import build_demo

    out = args.out or str(paths.demo_dataset())
    print(json.dumps(build_demo(out, n=args.n, seed=args.seed), indent=2))
    return 0
