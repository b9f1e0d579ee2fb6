"""Ablations of Appendix C: heads (Fig. 14-15), temperature (Fig. 16-17), text encoder (18-19).

With no arguments it runs on the built-in demo on a local Ray; `--config
sweeps/configs/ablations.yaml` runs the study's ablations on real data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from raypi.commands.sweep import run_from_args, sweep_parser

DEMO_CONFIG = str(Path(__file__).resolve().parent / "configs" / "ablations_demo.yaml")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the sweep; return the exit code."""
    return run_from_args(sweep_parser(__doc__, DEMO_CONFIG).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
