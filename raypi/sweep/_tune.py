"""The one way into Ray Tune: a run of packs (of many members, or of one trial each).

``run_packs`` plans the trials (``sweep.packs``), builds the plan every Tune trial shares
(``trainable.TrialPlan``) and runs one Tune experiment of ``trainable.train_trial`` over the
packs: as a grid (packs largest first, or packs of one in the trials' order) or through a
searcher that suggests them (``_staged``: students after their teachers; ``_points``: sampled
students of a λ/τ search).
"""

from __future__ import annotations

import contextlib
import os
import time

from raypi import io
from raypi.sweep.grid import SweepSpec, TrialConfig
from raypi.sweep.node_versions import NodeVersionGuard, versions
from raypi.sweep.packs import PackPlan, plan_packs
from raypi.sweep.trainable import TrialPlan, train_trial

METRIC = "best_select_auc"
"""Tune's metric: the best AUC so far on the selection split (the validation split under the
study's protocol, the trial's held-out training rows under ``inner``), so that a search never
chooses on the reported split unless the sweep asks for the study's protocol."""


def run_packs(
    spec: SweepSpec,
    stage: str,
    todo: list[TrialConfig],
    out: str,
    options,
    together: bool = True,
    search=None,
) -> None:
    """Run ``todo`` as one Tune experiment of packs.

    Args:
        spec: The sweep.
        stage: Experiment name prefix (``sweep``, ``stage1``, ``search``).
        todo: The trials (a search's grid points: each sampled student is its point's trial).
        out: Results folder.
        options: ``LaunchOptions`` (``use_gpu`` decided).
        together: Pack the trials that share a working set; False: packs of one.
        search: ``(search_alg, num_samples)`` suggesting ``{"trial_key": …}`` or ``{"point":
            …}`` configs; None: a grid over the packs (``{"pack": …}`` or, alone,
            ``{"trial_key": …}``).
    """
    from ray import tune

    if not todo:
        return
    packs = plan_packs(spec, todo, options, together)
    plan = make_plan(spec, todo, out, options, packs)
    param_space = {}
    if search is None:
        param_space = {("pack" if together else "trial_key"): tune.grid_search(packs.order)}
    run_tuner(spec, stage, plan, param_space, packs.bundles, options, search)


def make_plan(
    spec: SweepSpec, todo: list[TrialConfig], out: str, options, packs: PackPlan | None = None
) -> TrialPlan:
    """Return the plan shared by the Tune trials of one run (packs' members and memory)."""
    from raypi.sweep.trackers import resolve

    trials = {t.trial_key: t.to_dict() for t in todo}
    together = packs is not None and packs.together
    return TrialPlan(
        spec.name, out, trials, options.cpus_per_trial, options.epoch_reports,
        packs.keys if together else {}, packs.memory if together else {}, options.stack,
        resolve(options.trackers, spec.name, out),
    )  # fmt: skip


def run_tuner(spec, stage: str, plan, param_space: dict, bundles: dict, options, search=None):
    """Run one Tune experiment of ``train_trial`` over ``param_space``.

    Args:
        spec: The sweep.
        stage: Experiment name prefix (``stage1``, ``stage2``, ``search``).
        plan: The trials' shared plan.
        param_space: Tune's parameter space (a grid of keys, or a searched space).
        bundles: Resource bundle per trial key (or search point key).
        options: Launch options.
        search: ``(search_alg, num_samples)`` for a searched space; None for a grid.
    """
    from ray import tune

    from raypi.sweep._callbacks import StorageGuard

    trainable = tune.with_resources(
        tune.with_parameters(train_trial, plan=plan), _Resources(bundles)
    )
    search_alg, samples = search or (None, 1)
    guard = StorageGuard()
    nodes = NodeVersionGuard(versions())  # nodes that join mid-sweep are checked too
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=search_alg,
            num_samples=samples,
            max_concurrent_trials=options.max_concurrent_trials,
            # A fresh process per trial would re-import torch for seconds of head training.
            reuse_actors=True,
        ),
        run_config=_run_config(
            spec,
            stage,
            plan.results,
            options,
            plan,
            samples if search else len(plan.trials),
            guard,
            tune.stopper.CombinedStopper(guard, nodes),
        ),
    )
    # Quiet by default: each failed attempt's traceback stays in Tune's folder (error.txt) and
    # the failed trials' reasons are in trials.parquet and the summary.
    quiet = {"TUNE_PRINT_ALL_TRIAL_ERRORS": "0"} if options.verbose == 0 else {}
    with _environment(quiet):
        tuner.fit()
    guard.raise_if_stopped()
    nodes.raise_if_refused()


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables for the block (those already set by the user are kept)."""
    added = {name: value for name, value in values.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _run_config(spec, stage, out: str, options, plan: TrialPlan, total, guard, stopper):
    from ray import tune

    from raypi.sweep._callbacks import FailureRecorder, ProgressLine

    storage, filesystem = io.join(out, "tune"), None
    if io.is_remote(storage):
        filesystem, storage = io.filesystem(storage)
    return tune.RunConfig(
        name=f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}",
        storage_path=storage,
        storage_filesystem=filesystem,
        failure_config=tune.FailureConfig(max_failures=options.max_failures),
        stop=stopper,
        callbacks=[FailureRecorder(plan), guard, ProgressLine(plan, total)],
        verbose=options.verbose,
    )


class _Resources:
    """Picklable ``config → PlacementGroupFactory`` lookup for ``tune.with_resources``."""

    def __init__(self, bundles: dict[str, dict]) -> None:
        self.bundles = bundles

    def __call__(self, config: dict):
        from ray import tune

        key = config.get("pack") or config.get("trial_key") or config["point"]
        return tune.PlacementGroupFactory([self.bundles[key]])
