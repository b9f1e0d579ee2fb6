"""Optuna search over a student's λ and τ, one search per grid point, through Ray Tune.

The grid (task × encoder × text encoder × size × seed × head × method) stays outside the
searcher: each point gets its own Optuna search over λ ∈ [0, 1] and τ (log-uniform), after
stage 1 has trained the teachers once. All points search in one Tune experiment
(``_points.PointSearchers``), so they run concurrently. Every sampled student is an ordinary
trial with its own ``trial_key`` and row in ``trials.parquet``; the searched metric is the
selection-split AUC (the validation split only under the study's protocol). A rerun hands the
students already recorded for a point to Optuna as evaluated points and samples only the rest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import pandas as pd

from raypi import cluster
from raypi.sweep import _demo, launch, results
from raypi.sweep._inputs import check_features, random_encoders
from raypi.sweep._tune import METRIC, run_packs
from raypi.sweep.config import spec_to_dict
from raypi.sweep.grid import SweepSpec, TrialConfig, expand, stages
from raypi.sweep.lock import DriverLock


@dataclass(frozen=True)
class SearchSpace:
    """What the searcher samples per grid point."""

    samples: int = 8
    """Students trained per grid point (recorded ones included)."""
    lam: tuple[float, float] = (0.0, 1.0)
    """Range of λ (uniform)."""
    tau: tuple[float, float] = (0.1, 5.0)
    """Range of τ (log-uniform)."""
    seed: int = 0
    """Seed of Optuna's sampler."""


def search_points(students: list[TrialConfig]) -> list[TrialConfig]:
    """Return the distinct grid points of ``students``: the students with λ and τ unset."""
    points = {}
    for student in students:
        point = replace(student, lam=None, tau=None)
        points.setdefault(point.trial_key, point)
    return list(points.values())


def run_lambda_search(
    spec: SweepSpec,
    *,
    space: SearchSpace | None = None,
    storage: str | None = None,
    address: str | None = None,
    smoke_test: bool = False,
    options: launch.LaunchOptions | None = None,
    prepare_demo: bool = True,
    dashboard: bool = True,
) -> launch.SweepOutcome:
    """Train the sweep's teachers, then search λ and τ of its students per grid point.

    Args:
        spec: The sweep; its students' grid points are searched (their λ/τ lists are ignored).
        space: Search settings; defaults when None (2 samples in a smoke test).
        storage: Results folder or ``s3://`` prefix (default ``./results``).
        address: Ray cluster address; a local Ray when None.
        smoke_test: Search the smallest sweep of the same shape.
        options: How to run.
        prepare_demo: Build the demo data and features when missing.
        dashboard: Start the dashboard (127.0.0.1) with a local Ray.

    Returns:
        The outcome.
    """
    space = space or SearchSpace()
    if smoke_test:
        spec, space = spec.smoke(), replace(space, samples=2)
    options = options or launch.LaunchOptions()
    out = launch.results_dir(spec.name, storage)
    with DriverLock(out):  # before anything starts: a second driver stops here
        if prepare_demo:
            _demo.ensure_demo_data(spec)
        cluster.connect(address, dashboard=dashboard)
        launch.check_cluster()
        options, decision = launch.resolve_gpu(options)
        if prepare_demo:
            _demo.ensure_demo_inputs(spec)
        trials = expand(spec)
        check_features(trials, spec.random_weights)  # random features stop here too
        first, students = stages(trials)
        resolved = {"sweep": spec_to_dict(spec), "launch": vars(options), "search": asdict(space),
                    "gpu": decision.record()}  # fmt: skip
        results.write_sweep_yaml(out, {**resolved, "random_features": random_encoders(trials)})
        outcome = launch.SweepOutcome(spec.name, out, total=len(first))
        try:
            done = launch.done_keys(out, options)
            todo = [t for t in first if t.trial_key not in done]
            outcome.ran["stage1"] = len(todo)
            run_packs(spec, "stage1", todo, out, options, together=False)
            recorded = results.statuses(out)
            points = [
                p for p in search_points(students) if recorded.get(p.teacher_key) == results.OK
            ]
            outcome.ran["stage2"] = _search(spec, points, space, out, options)
        finally:
            table, _ = results.collect(out)
            outcome.total = len(table)
            outcome.ok = int((table["status"] == results.OK).sum())
            outcome.failed = int((table["status"] == results.FAILED).sum())
    return outcome


def _search(spec, points: list[TrialConfig], space: SearchSpace, out: str, options) -> int:
    """Search every point's λ/τ in one Tune experiment; return the students launched."""
    from raypi.sweep._points import PointSearchers

    searchers, budgets = {}, {}
    for point in points:
        previous = _recorded(out, point)
        budgets[point.trial_key] = space.samples - len(previous)
        searchers[point.trial_key] = _optuna(space, previous)
    total = sum(max(0, n) for n in budgets.values())
    if total == 0:
        return 0
    searcher = PointSearchers(searchers, budgets)
    run_packs(spec, "search", points, out, options, together=False, search=(searcher, total))
    return total


def _optuna(space: SearchSpace, previous: list[tuple[float, float, float]]):
    """One point's Optuna search over λ (uniform) and τ (log-uniform), told what it has seen."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(
        space={"lam": tune.uniform(*space.lam), "tau": tune.loguniform(*space.tau)},
        metric=METRIC,
        mode="max",
        seed=space.seed,
        points_to_evaluate=[{"lam": lam, "tau": tau} for lam, tau, _ in previous] or None,
        evaluated_rewards=[auc for _, _, auc in previous] or None,
    )


def _recorded(out: str, point: TrialConfig) -> list[tuple[float, float, float]]:
    """Return ``(λ, τ, best AUC)`` of the students of ``point`` recorded ok so far."""
    from raypi import io

    if not io.exists(io.join(out, "parts", "trials")):
        return []
    table = results.collect(out)[0]
    same = table["status"] == results.OK
    # A sampled student is its point with λ and τ set: compare the rest of its settings.
    unset = [
        results.config_key_of({**row, "lam": None, "tau": None}) == point.config_key
        for row in table.to_dict("records")
    ]
    same &= pd.Series(unset, index=table.index, dtype=bool)
    rows = table[same & table["seed"].eq(point.seed) & table["teacher_key"].eq(point.teacher_key)]
    return [(float(r.lam), float(r.tau), float(r.select_auc_best)) for r in rows.itertuples()]
