"""Search the imitation weight λ (and τ) of distilled students with Optuna on Ray Tune.

One Optuna search per grid point (task × encoder × size × seed); teachers are trained once
first. With no arguments it runs on the built-in demo on a local Ray; `--config
sweeps/configs/tune_lambda.yaml` searches the study's tasks on real data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from raypi.commands.sweep import run_search_from_args, sweep_parser

DEMO_CONFIG = str(Path(__file__).resolve().parent / "configs" / "tune_lambda_demo.yaml")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the search; return the exit code."""
    parser = sweep_parser(__doc__, DEMO_CONFIG)
    parser.add_argument("--samples", type=int, default=8, help="students per grid point")
    return run_search_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
