"""Runs ``raypi`` in-process for the build tests, even while sibling commands are missing."""

from __future__ import annotations

import argparse

from raypi import cli


def run_raypi(argv: list[str]) -> int:
    """``raypi.cli.main(argv)``; while other command modules are missing, ``build`` alone."""
    try:
        cli.build_parser()
    except ModuleNotFoundError as error:
        if "raypi.commands." not in str(error):
            raise
        from raypi.commands import build

        parser = argparse.ArgumentParser(prog="raypi")
        build.register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    return cli.main(argv)
