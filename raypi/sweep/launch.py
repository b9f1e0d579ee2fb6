"""Run a sweep on Ray Tune in two stages, resuming from the trials already recorded.

Stage 1 trains every teacher, image-only and text-only model once (one trial per distinct
key); stage 2 trains the students from their teachers' stored logits. Before each stage the
results folder is read: trials recorded ``ok`` are skipped, so rerunning a killed sweep
continues it (failed ones are retried unless ``retry_failed=False``). Whatever happens, the
part files are consolidated into ``trials.parquet`` and ``epochs.parquet`` at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field, replace

from raypi import cluster, io, paths
from raypi.sweep import _demo, results
from raypi.sweep.config import spec_to_dict
from raypi.sweep.grid import SweepSpec, TrialConfig, expand, stages
from raypi.sweep.lock import DriverLock
from raypi.sweep.node_versions import NodeVersionGuard, check_cluster, versions
from raypi.sweep.resources import encoder_profile, trial_resources
from raypi.sweep.trainable import TrialPlan, train_trial

log = logging.getLogger(__name__)
METRIC = "best_select_auc"
"""Tune's metric: the best AUC so far on the selection split (the validation split under the
study's protocol, the trial's held-out training rows under ``inner``), so that a search never
chooses on the reported split unless the sweep asks for the study's protocol."""


@dataclass(frozen=True)
class LaunchOptions:
    """How to run a sweep (not what it trains)."""

    max_failures: int = 2
    """Retries of a failing trial before it is recorded as failed."""
    use_gpu: bool | None = None
    """Ask for GPUs; None = ``--gpu auto``: when the cluster has GPUs or its autoscaler may
    launch GPU nodes (``raypi.cluster.gpu_decision``)."""
    cluster_file: str | None = None
    """Cluster file whose node types ``--gpu auto`` reads instead of the autoscaler's own
    config on the head."""
    cpus_per_trial: float = 1.0
    """CPUs reserved per trial."""
    gpu_memory_gb: float = 16.0
    """Memory of the ordinary GPUs (for GPU fractions)."""
    big_gpu_memory_gb: float = 40.0
    """Memory of the big GPUs (nodes with the ``big_gpu`` resource)."""
    ordinary_gpu_resource: str | None = None
    """Custom resource of the ordinary GPU node type (``cluster.yaml``: ``gpu_16gb``) that
    ordinary GPU trials also ask for, so they never take, or make the autoscaler launch, a
    big-GPU node; None on clusters without such a resource."""
    retry_failed: bool = True
    """Rerun trials recorded as failed by an earlier run."""
    max_concurrent_trials: int | None = None
    """Cap on trials running at once (None = as resources allow)."""
    verbose: int = 0
    """Tune's own console output: 0 none (raypi prints one live progress line and a summary;
    Tune's logs stay in its folders), 1 its status tables, 2 also every trial's boxes."""
    epoch_reports: int | None = None
    """Per-epoch results each trial sends to Tune (progress table, TensorBoard); None = all.
    Fewer reports cut Tune's per-trial overhead for very short trials."""
    packs: bool = True
    """Run every trial sharing one feature working set as one Tune trial (``sweep.packs``):
    its features are read once; False runs one Tune trial per trial (for comparison)."""
    pack_memory_gb: float | None = None
    """Host memory each pack asks Ray for, and is held to (a pack that needs more fails with
    the reason); None = twice its working set plus 1.5 GB; 0 = ask for none and hold to none
    (for node types that declare no ``memory``, e.g. Ray's fake autoscaler provider)."""
    max_pack_gb: float | None = None
    """A pack whose working set exceeds this is split by size; None = never split."""
    stack: bool = True
    """Within a pack, train members of one head, shape and stage as one stacked model
    (``raypi.train.stack``); False trains one member at a time (for comparison)."""
    trackers: tuple[str, ...] = ()
    """Trackers that get one run per member: ``mlflow[=URI]``, ``wandb[=PROJECT]``
    (``sweep.trackers``)."""


@dataclass
class SweepOutcome:
    """What a run of a sweep did."""

    name: str
    """Sweep name."""
    results: str
    """Results folder."""
    total: int = 0
    """Trials in the sweep."""
    skipped: int = 0
    """Trials already recorded ok before this run."""
    ran: dict[str, int] = field(default_factory=dict)
    """Trials launched per stage in this run."""
    ok: int = 0
    """Trials recorded ok after this run."""
    failed: int = 0
    """Trials recorded failed after this run."""
    table: str = ""
    """Per task × method: trials ok and failed, configurations, and the best configuration's
    seed-mean validation AUC (last epoch) — never a mean across configurations."""
    errors: str = ""
    """The distinct reasons of failed trials, with their counts (the commonest five)."""

    def summary(self) -> str:
        """Return a short human summary with where the results are."""
        return (
            (self.table + "\n" if self.table else "")
            + (self.errors + "\n" if self.errors else "")
            + f"sweep {self.name}: {self.ok}/{self.total} trials ok, {self.failed} failed "
            f"(this run: {self.ran.get('stage1', 0)} stage-1 models, "
            f"{self.ran.get('stage2', 0)} students; {self.skipped} already done)\n"
            f"results: {results.trials_path(self.results)}\n"
            f"         {results.epochs_path(self.results)}"
        )


def results_dir(name: str, storage: str | None = None) -> str:
    """Return the results folder of sweep ``name`` under ``storage`` (default ``./results``)."""
    if storage is None:
        return str(paths.results(name))
    return io.join(storage if io.is_remote(storage) else os.path.abspath(storage), name)


def run_sweep(
    spec: SweepSpec,
    *,
    storage: str | None = None,
    address: str | None = None,
    smoke_test: bool = False,
    options: LaunchOptions | None = None,
    prepare_demo: bool = True,
    dashboard: bool = True,
) -> SweepOutcome:
    """Run (or resume) a sweep and write its results.

    Args:
        spec: The sweep.
        storage: Folder or ``s3://`` prefix for results, teacher outputs and Tune's storage
            (``<storage>/<sweep name>``); ``./results`` when None.
        address: Ray cluster address (e.g. ``auto``); a local Ray is started when None.
        smoke_test: Run the smallest sweep of the same shape instead (``spec.smoke()``).
        options: How to run; defaults when None.
        prepare_demo: Build the demo dataset and features when the sweep uses them and they
            are missing.
        dashboard: Start the Ray dashboard (bound to 127.0.0.1) with a local Ray.

    Returns:
        The outcome, with where the results are.
    """
    spec = spec.smoke() if smoke_test else spec
    options = options or LaunchOptions()
    out = results_dir(spec.name, storage)
    from raypi.sweep._inputs import check_features, random_encoders

    with DriverLock(out):  # before anything starts: a second driver stops here
        trials = expand(spec)
        builds_demo = prepare_demo and _demo.builds_demo(spec)
        if builds_demo:  # the demo's data and weights first: CPU-bound, and Ray is not needed
            _demo.ensure_demo_data(spec)
        else:  # features that cannot serve the trials stop the sweep before Ray starts
            check_features(trials, spec.random_weights)
        cluster.connect(address, dashboard=dashboard)
        check_cluster()  # every node runs the driver's software, or nothing trains
        options, decision = resolve_gpu(options)
        if builds_demo:
            _demo.ensure_demo_inputs(spec)
            check_features(trials, spec.random_weights)  # before anything is written
        resolved = {"sweep": spec_to_dict(spec), "launch": vars(options), "gpu": decision.record()}
        results.write_sweep_yaml(out, {**resolved, "random_features": random_encoders(trials)})
        outcome = SweepOutcome(spec.name, out, total=len(trials))
        try:
            _run_stages(spec, trials, out, options, outcome)
        finally:
            table, _ = results.collect(out)
            outcome.ok = int((table["status"] == results.OK).sum())
            outcome.failed = int((table["status"] == results.FAILED).sum())
            outcome.table = summary_table(table)
            outcome.errors = failure_reasons(table)
    return outcome


def resolve_gpu(options: LaunchOptions) -> tuple[LaunchOptions, cluster.GpuDecision]:
    """Decide ``options.use_gpu`` on the connected cluster by raypi's one rule; print it once.

    Returns:
        The options with ``use_gpu`` decided, and the decision (recorded in ``sweep.yaml``).
    """
    setting = {None: "auto", True: "yes", False: "no"}[options.use_gpu]
    decision = cluster.gpu_decision(setting, options.cluster_file)
    print(decision.line(), flush=True)
    return replace(options, use_gpu=decision.use_gpu), decision


def summary_table(trials) -> str:
    """Return per task × method: trials ok and failed, configurations, best seed-mean AUC.

    The AUC is the last-epoch validation AUC averaged over the seeds of one configuration
    (``config_key``) only, then the best configuration's: never a mean across settings.
    """
    if trials.empty:
        return ""
    ok = trials[trials["status"] == results.OK]
    means = ok.groupby(["task", "method", "config_key"])["auc_final"].mean()
    best = means.groupby(["task", "method"]).max().rename("best_config_val_auc")
    configs = ok.groupby(["task", "method"])["config_key"].nunique().rename("configs")
    counts = trials.assign(ok=trials["status"] == results.OK,
                           failed=trials["status"] == results.FAILED)  # fmt: skip
    table = counts.groupby(["task", "method"])[["ok", "failed"]].sum().join(configs).join(best)
    return table.fillna({"configs": 0}).round(3).reset_index().to_string(index=False)


def failure_reasons(trials, most: int = 5) -> str:
    """Return the commonest reasons of failed trials, one line each with its count."""
    failed = trials.loc[trials["status"] == results.FAILED, "error"].fillna("unknown error")
    if failed.empty:
        return ""
    counts = failed.value_counts()
    lines = [f"  {count} × {reason}" for reason, count in counts.head(most).items()]
    more = len(counts) - most
    return "\n".join(["failed trials:", *lines] + ([f"  … and {more} more"] if more > 0 else []))


def _run_stages(spec, trials, out, options, outcome) -> None:
    first, second = stages(trials)
    done = done_keys(out, options)
    outcome.skipped = sum(t.trial_key in done for t in trials)
    first = [t for t in first if t.trial_key not in done]
    second = [t for t in second if t.trial_key not in done]
    recorded = results.statuses(out)
    coming = {t.trial_key for t in first}
    orphans = [
        s
        for s in second
        if recorded.get(s.teacher_key) != results.OK and s.teacher_key not in coming
    ]
    for student in orphans:
        record_orphan(spec.name, out, student, recorded.get(student.teacher_key))
    second = [t for t in second if t not in orphans]
    todo = first + second
    if not todo:
        outcome.ran = {"stage1": 0, "stage2": 0}
        return
    if options.packs:
        _run_packs(spec, todo, out, options)
        outcome.ran = {"stage1": len(first), "stage2": len(second)}
        return
    plan = make_plan(spec, todo, out, options)
    searcher = _staged_searcher(spec, plan, first, second, recorded)
    run_tuner(
        spec, "sweep", plan, {}, bundles_for(spec, todo, options), options, (searcher, len(todo))
    )
    outcome.ran = {"stage1": len(first), "stage2": len(second) - searcher.orphans}


def _run_packs(spec, todo: list[TrialConfig], out: str, options) -> None:
    """Run ``todo`` as packs, one Tune trial each (students with their teachers)."""
    from ray import tune

    from raypi.sweep.packs import make_packs

    limit = None if options.max_pack_gb is None else options.max_pack_gb * 1e9
    packs = make_packs(todo, limit)
    bundles = bundles_for(spec, todo, options)
    pack_bundles = {
        key: pack_bundle([bundles[t.trial_key] for t in members], members, options,
                         spec.resource_overrides)
        for key, members in packs.items()
    }  # fmt: skip
    plan = make_plan(spec, todo, out, options, packs={k: [t.trial_key for t in m]
                                                       for k, m in packs.items()},
                     pack_memory={k: b.get("memory") for k, b in pack_bundles.items()})  # fmt: skip
    # Largest first: with few packs per slot, the last long pack would otherwise run alone.
    order = sorted(packs, key=lambda key: -_pack_flop(spec, packs[key], options))
    param_space = {"pack": tune.grid_search(order)}
    run_tuner(spec, "sweep", plan, param_space, pack_bundles, options)


def _pack_flop(spec, members: list[TrialConfig], options) -> float:
    from raypi.sweep.cost import trial_cost

    return sum(trial_cost(t, spec, False, options).flop for t in members)


def pack_bundle(
    bundles: list[dict], members: list[TrialConfig], options, overrides: dict | None = None
) -> dict:
    """Return a pack's request: its largest member's, plus host memory for its working set.

    The host memory is, first found: the encoder's ``host_memory_gb`` in the sweep's
    ``resource_overrides``, ``options.pack_memory_gb``, or twice the working set plus 1.5 GB.
    The pack is held to it (``sweep._memory``).

    Args:
        bundles: The members' own bundles.
        members: The members.
        options: Launch options (``pack_memory_gb``).
        overrides: The sweep's ``resource_overrides``.

    Returns:
        The bundle, with ``memory`` in bytes.
    """
    from raypi.sweep.cost import working_set_bytes

    merged: dict[str, float] = {}
    for bundle in bundles:
        for name, value in bundle.items():
            merged[name] = max(merged.get(name, 0.0), value)
    own = [(overrides or {}).get(t.encoder or "", {}).get("host_memory_gb") for t in members]
    own = [float(gb) for gb in own if gb is not None]
    if own:
        merged["memory"] = max(own) * 1e9
    elif options.pack_memory_gb == 0:
        return merged
    elif options.pack_memory_gb is not None:
        merged["memory"] = options.pack_memory_gb * 1e9
    else:
        merged["memory"] = 2 * working_set_bytes(members) + 1.5e9
    return merged


def _staged_searcher(spec, plan, first, second, recorded):
    from raypi.sweep._staged import StagedSearcher

    def orphan(student_key: str, teacher_key: str) -> None:
        student = TrialConfig.from_dict(plan.trials[student_key])
        record_orphan(spec.name, plan.results, student, results.FAILED)

    ready = {key for key, status in recorded.items() if status == results.OK}
    students = {t.trial_key: t.teacher_key for t in second}
    return StagedSearcher([t.trial_key for t in first], students, ready, orphan)


def done_keys(out: str, options: LaunchOptions) -> set[str]:
    """Return the keys of trials a rerun skips (ok ones; failed too without retry_failed)."""
    keep = {results.OK} if options.retry_failed else {results.OK, results.FAILED}
    return {key for key, status in results.statuses(out).items() if status in keep}


def record_orphan(sweep: str, out: str, student: TrialConfig, teacher_status) -> None:
    """Record a student whose teacher has no ok result as failed, without training it."""
    reason = "failed" if teacher_status == results.FAILED else "has no result"
    row = results.trial_row(
        sweep,
        student.to_dict(),
        results.FAILED,
        error=f"teacher {student.teacher_key} {reason}; student not trained",
        finished_at=results.now(),
    )
    results.write_trial(out, row)


def run_stage(spec: SweepSpec, stage: str, todo: list[TrialConfig], out, options) -> None:
    """Run ``todo`` (trials needing no teacher) as one Tune grid experiment named ``stage``."""
    if not todo:
        return
    from ray import tune

    run_tuner(
        spec,
        stage,
        make_plan(spec, todo, out, options),
        {"trial_key": tune.grid_search([t.trial_key for t in todo])},
        bundles_for(spec, todo, options),
        options,
    )


def make_plan(
    spec: SweepSpec,
    todo: list[TrialConfig],
    out: str,
    options,
    packs: dict | None = None,
    pack_memory: dict | None = None,
) -> TrialPlan:
    """Return the plan shared by the trials (or packs) of one Tune run."""
    from raypi.sweep.trackers import resolve

    trials = {t.trial_key: t.to_dict() for t in todo}
    return TrialPlan(
        spec.name, out, trials, options.cpus_per_trial, options.epoch_reports, packs or {},
        pack_memory or {}, options.stack, resolve(options.trackers, spec.name, out),
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


def _run_config(
    spec, stage, out: str, options: LaunchOptions, plan: TrialPlan, total, guard, stopper
):
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


def bundles_for(spec: SweepSpec, todo: list[TrialConfig], options: LaunchOptions) -> dict:
    """Return the resource bundle of each trial key (GPU shares when ``options.use_gpu``).

    An undecided ``use_gpu`` (None) is decided on the connected cluster by raypi's one rule
    (``resolve_gpu``), as ``run_sweep`` does before it.
    """
    use_gpu = options.use_gpu
    if use_gpu is None:
        use_gpu = resolve_gpu(options)[1].use_gpu
    profiles: dict = {}
    bundles = {}
    for trial in todo:
        name = trial.encoder
        if (name, trial.features) not in profiles:
            profiles[name, trial.features] = encoder_profile(
                name, trial.features, spec.resource_overrides
            )
        shape, big, share = profiles[name, trial.features]
        bundles[trial.trial_key] = trial_resources(
            shape,
            big,
            use_gpu=use_gpu,
            cpus=options.cpus_per_trial,
            batch_size=trial.batch_size,
            gpu_memory_gb=options.gpu_memory_gb,
            big_gpu_memory_gb=options.big_gpu_memory_gb,
            share=share,
            ordinary_gpu_resource=options.ordinary_gpu_resource,
        ).bundle()
    return bundles


class _Resources:
    """Picklable ``config → PlacementGroupFactory`` lookup for ``tune.with_resources``."""

    def __init__(self, bundles: dict[str, dict]) -> None:
        self.bundles = bundles

    def __call__(self, config: dict):
        from ray import tune

        key = config.get("pack") or config.get("trial_key") or config["point"]
        return tune.PlacementGroupFactory([self.bundles[key]])
