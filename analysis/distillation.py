"""Distillation comparison and per-seed paired differences (study Fig. 3, 6, 11–13).

python analysis/distillation.py results/distill_grid --out report/figures
python analysis/distillation.py --smoke-test
"""

from __future__ import annotations

import sys

from _figure_script import run


def main(argv: list[str] | None = None) -> int:
    """Render the distillation bars and the paired differences (AUC and AUPRC).

    Args:
        argv: Command-line arguments without the program name.

    Returns:
        The exit code.
    """
    return run(__doc__.splitlines()[0], ("distillation", "paired"), argv)


if __name__ == "__main__":
    sys.exit(main())
