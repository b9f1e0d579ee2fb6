"""The study's distillation experiment (Fig. 3, 6-10) and its text-only models (Table 7).

Image-only, teacher, distilled and self-distilled models (and the report-only model) per task,
backbone, size and seed.

With no arguments it runs on the built-in demo (building its data and tiny-encoder features
first when missing) on a local Ray; `--config sweeps/configs/distill_grid.yaml --address auto
--storage s3://…` runs the study on a cluster.
"""

from __future__ import annotations

import sys
from pathlib import Path

from raypi.commands.sweep import run_from_args, sweep_parser

DEMO_CONFIG = str(Path(__file__).resolve().parent / "configs" / "distill_grid_demo.yaml")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the sweep; return the exit code."""
    return run_from_args(sweep_parser(__doc__, DEMO_CONFIG).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
