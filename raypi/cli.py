"""The ``raypi`` command: one subcommand per module of ``raypi.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys

from raypi import __version__

# Order shown in --help: data → features → training sweeps → analysis.
COMMANDS = (
    "tasks",
    "demo_data",
    "pretrain",
    "build",
    "encoders",
    "extract",
    "sweep",
    "status",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="raypi",
        description="When are radiology reports useful for training medical image "
        "classifiers? Build datasets, extract frozen features, run sweeps, report.",
    )
    parser.add_argument("--version", action="version", version=f"raypi {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"raypi.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``raypi`` command.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit code.
    """
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
