"""Ablations of heads, temperature τ and teacher text encoder, and the λ search (Fig. 14–19).

python analysis/ablations.py results/ablations results/tune_lambda --out report/figures
python analysis/ablations.py --smoke-test
"""

from __future__ import annotations

import sys

from _figure_script import run


def main(argv: list[str] | None = None) -> int:
    """Render the ablation figures and the λ search (AUC and AUPRC).

    Args:
        argv: Command-line arguments without the program name.

    Returns:
        The exit code.
    """
    return run(__doc__.splitlines()[0], ("heads", "tau", "text_encoder", "lambda"), argv)


if __name__ == "__main__":
    sys.exit(main())
