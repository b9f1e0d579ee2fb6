"""Sample-efficiency curves (study Fig. 2 and 5) from sweep results.

python analysis/sample_efficiency.py results/sample_efficiency --out report/figures
python analysis/sample_efficiency.py --smoke-test
"""

from __future__ import annotations

import sys

from _figure_script import run


def main(argv: list[str] | None = None) -> int:
    """Render the sample-efficiency figure (AUC and AUPRC) and print its paths.

    Args:
        argv: Command-line arguments without the program name.

    Returns:
        The exit code.
    """
    return run(__doc__.splitlines()[0], ("sample_efficiency",), argv)


if __name__ == "__main__":
    sys.exit(main())
