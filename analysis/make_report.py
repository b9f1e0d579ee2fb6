"""Make the whole report (figures, tables, index.html) from one or more sweep results folders.

python analysis/make_report.py results/distill_grid results/sample_efficiency --out report
python analysis/make_report.py --smoke-test
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from raypi.report import build_report


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the report, print the path of its index.html.

    Args:
        argv: Command-line arguments without the program name.

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", help="results folders (local or s3://)")
    parser.add_argument("--out", default=None, help="output folder (default: ./report)")
    parser.add_argument("--ci", choices=("t", "bootstrap"), default="t", help="interval method")
    parser.add_argument("--smoke-test", action="store_true", help="render synthetic results")
    args = parser.parse_args(argv)
    results = args.results
    if args.smoke_test:
        from _smoke import smoke_results

        results = [smoke_results()]
    if not results:
        parser.error("give at least one results folder (or --smoke-test)")
    out = args.out or (tempfile.mkdtemp(prefix="raypi-report-") if args.smoke_test else "report")
    print(build_report(results, out, ci_method=args.ci))
    return 0


if __name__ == "__main__":
    sys.exit(main())
