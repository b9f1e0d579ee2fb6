"""Tune's scheduling overhead for 200 tiny trials, against plain sequential ``fit`` calls.

Runs an image-only sweep of 200 trials — 2 synthetic encoders × 10 seeds × 10 training sizes
(10, 20, …, 100 rows), so that each (encoder, seed) is one pack of 10 members — on a local Ray
with ``--cpus`` CPUs, one CPU per trial (or pack). The reference is the same 200 members fitted
one after another with ``raypi.train.fit`` in this process, without Ray (data loading not
counted). With ``slots`` trials at once a perfect scheduler would finish in ``Σ fit / slots``;
the overhead is ``(wall × slots − Σ fit) / Σ fit``.

    python benchmarks/tune_overhead.py --epochs 40 --cpus 2 [--no-packs] [--epoch-reports 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time


def _plain_fit_seconds(configs) -> float:
    """Σ seconds of ``fit`` over the members, one after another, no Ray (loading excluded)."""
    import torch

    from raypi.sweep.trainable import fit_config_of
    from raypi.sweep.working_set import fit_data
    from raypi.train import fit

    torch.set_num_threads(1)
    # Warm up once (the first optimizer of a process imports torch's compiler stack, ~1 s).
    data, _ = fit_data(configs[0])
    fit(data, fit_config_of(configs[0], "cpu"))
    total = 0.0
    for trial in configs:
        data, _ = fit_data(trial)
        start = time.perf_counter()
        fit(data, fit_config_of(trial, "cpu"))
        total += time.perf_counter() - start
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=40, help="epochs per trial")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--no-packs", action="store_true", help="one Tune trial per trial")
    parser.add_argument(
        "--epoch-reports", type=int, default=None, help="per-epoch results per trial (all)"
    )
    parser.add_argument("--smoke-test", action="store_true", help="20 trials, 2 epochs")
    args = parser.parse_args(argv)

    import ray

    from raypi.sweep import Grid, LaunchOptions, SweepSpec, expand, read_trials, run_sweep
    from raypi.sweep.synthetic import make_synthetic_study

    seeds, epochs = (1, 2) if args.smoke_test else (10, args.epochs)
    work = tempfile.mkdtemp(prefix="tune_overhead_")
    encoders = ("tiny_vit", "tiny_resnet")
    study = make_synthetic_study(f"{work}/study", image_encoders=encoders, images=400)
    sizes = tuple(range(10, 101, 10))
    grid = Grid(tasks=("demo_prognostic",), encoders=encoders, methods=("image",),
                seeds=tuple(range(seeds)), sizes=sizes, epochs=epochs)  # fmt: skip
    spec = SweepSpec(name="tune_overhead", grids=(grid,), data={"demo": study})
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    options = LaunchOptions(verbose=0, epoch_reports=args.epoch_reports, packs=not args.no_packs)
    start = time.perf_counter()
    outcome = run_sweep(spec, storage=f"{work}/results", options=options)
    wall = time.perf_counter() - start
    ray.shutdown()
    trials = read_trials(outcome.results)
    plain = _plain_fit_seconds(expand(spec))
    tune_trials = trials["pack_key"].nunique() if not args.no_packs else len(trials)
    share = (wall * args.cpus - plain) / plain
    print(f"trials ok: {outcome.ok}/{len(trials)} in {tune_trials} Tune trials  "
          f"wall: {wall:.1f} s  slots: {args.cpus}  packs: {not args.no_packs}")  # fmt: skip
    print(f"feature bytes read: {int(trials['bytes_read'].sum()):,}")
    in_trial = trials["train_seconds"].sum()
    print(f"plain sequential fits: {plain:.1f} s (the same fits in trials: {in_trial:.1f} s)")
    print(f"scheduling overhead: {share:.0%} of plain fits")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
