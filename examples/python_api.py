"""Use raypi from Python: dataset → features → sweep → results → report, without the CLI.

Run ``python examples/python_api.py --smoke-test`` (the test suite does) or without the flag
for a larger run. Everything is written under ``--out`` (default ``./raypi_example``).
"""

from __future__ import annotations

import argparse
import os

from raypi.data.demo import build_demo
from raypi.features import extract
from raypi.report import build_report, load_results
from raypi.sweep import LaunchOptions, read_trials, run_sweep, spec_from_dict


def main(argv: list[str] | None = None) -> int:
    """Run the whole flow on the built-in demo and print where its outputs are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="raypi_example", help="folder for everything written")
    parser.add_argument("--smoke-test", action="store_true", help="tiny sizes, two epochs")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    images, seeds = (80, [0]) if args.smoke_test else (400, [0, 1, 2])

    # 1. A dataset folder: dataset.parquet, tasks/<task>.parquet and the images.
    dataset = os.path.join(out, "demo")
    build_demo(dataset, n=images, seed=0)

    # 2. Frozen encoders → token features, once (tiny ones need no weights file).
    features = os.path.join(out, "features")
    for summary in extract(dataset, ["tiny_vit", "tiny_bert"], features, views=0):
        print(f"features: {summary}")

    # 3. A sweep, as its YAML config would say it: image-only, teacher and its students.
    spec = spec_from_dict({
        "name": "python_api",
        "data": {"demo": {"root": dataset, "features": features}},
        "defaults": {"encoders": ["tiny_vit"], "text_encoders": ["tiny_bert"], "seeds": seeds,
                     "sizes": [30], "epochs": 2 if args.smoke_test else 10, "lr": 1e-3},
        "grids": [{"tasks": ["demo_prognostic"], "methods": ["image", "teacher", "distill"],
                   "lams": [0.5], "taus": [2.0]}],
    })  # fmt: skip
    outcome = run_sweep(spec, storage=os.path.join(out, "results"),
                        options=LaunchOptions(max_failures=1))  # fmt: skip
    print(outcome.summary())

    # 4. One row per trained model, with its settings and metrics.
    trials = read_trials(outcome.results)
    print(trials[["method", "seed", "size", "auc_final", "best_epoch"]].to_string(index=False))

    # 5. The study's tables, statistics and figures, and the HTML report.
    results = load_results([outcome.results])
    print(f"loaded {len(results.trials)} trials for the report")
    index = build_report([outcome.results], os.path.join(out, "report"))
    print(f"report: {index}")
    return 0 if outcome.failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
