"""Tune's scheduling overhead for 200 tiny trials, as a share of their summed compute time.

Runs an image-only sweep of 200 trials (2 synthetic encoders × 100 seeds) on a local Ray with
``--cpus`` CPUs, one CPU per trial. Compute is each trial's own time inside the trainable
(started_at → finished_at: reading its rows, fitting, writing results). With ``slots`` trials
running at once, a perfect scheduler would finish in ``compute / slots``; the overhead share is
``(wall × slots − compute) / compute``.

    python benchmarks/tune_overhead.py --trials 200 --epochs 40 --cpus 2
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=200, help="number of trials (even)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs per trial")
    parser.add_argument("--size", type=int, default=100, help="training rows per trial")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument(
        "--epoch-reports", type=int, default=None, help="per-epoch results per trial (all)"
    )
    args = parser.parse_args(argv)

    import ray

    from raypi.sweep import Grid, LaunchOptions, SweepSpec, read_trials, run_sweep
    from raypi.sweep.synthetic import make_synthetic_study

    work = tempfile.mkdtemp(prefix="tune_overhead_")
    encoders = ("tiny_vit", "tiny_resnet")
    study = make_synthetic_study(f"{work}/study", image_encoders=encoders, images=400)
    spec = SweepSpec(
        name="tune_overhead",
        grids=(
            Grid(
                tasks=("demo_prognostic",),
                encoders=encoders,
                methods=("image",),
                seeds=tuple(range(args.trials // 2)),
                sizes=(args.size,),
                epochs=args.epochs,
            ),
        ),
        data={"demo": study},
    )
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    outcome = run_sweep(
        spec,
        storage=f"{work}/results",
        options=LaunchOptions(verbose=0, epoch_reports=args.epoch_reports),
    )
    wall = time.perf_counter() - start
    trials = read_trials(outcome.results)
    compute = (trials["finished_at"] - trials["started_at"]).dt.total_seconds().sum()
    fit = trials["train_seconds"].sum()
    slots = args.cpus
    share = (wall * slots - compute) / compute
    print(f"trials ok: {outcome.ok}/{len(trials)}  wall: {wall:.1f} s  slots: {slots}")
    print(f"summed trial compute: {compute:.1f} s (of which fit: {fit:.1f} s)")
    print(f"scheduling overhead: {share:.1%} of summed compute")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
