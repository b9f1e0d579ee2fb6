"""Sample efficiency of frozen backbones (Fig. 2, 5): image-only heads across sizes.

Encoders × tasks × training sizes × seeds.

With no arguments it runs on the built-in demo on a local Ray; `--config
sweeps/configs/sample_efficiency.yaml` runs the study's grid on real data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from raypi.commands.sweep import run_from_args, sweep_parser

DEMO_CONFIG = str(Path(__file__).resolve().parent / "configs" / "sample_efficiency_demo.yaml")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the sweep; return the exit code."""
    return run_from_args(sweep_parser(__doc__, DEMO_CONFIG).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
