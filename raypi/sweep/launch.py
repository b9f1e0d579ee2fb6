"""Run a sweep on Ray Tune, resuming from the trials already recorded.

Stage-1 models (teachers, image-only and text-only models) are trained once per distinct key;
students train from their teachers' logits. Before the run the results folder is read: trials
recorded ``ok`` are skipped, so rerunning a killed sweep continues it (failed ones are retried
unless ``retry_failed=False``), and students whose teacher has no result and will not train
are recorded failed. The rest run as packs (``sweep.packs``; students with their teachers), or
as packs of one with ``--no-packs`` (students suggested once their teacher has finished,
``sweep._staged``), through the one way into Tune (``sweep._tune``). Whatever happens, the part
files are consolidated into ``trials.parquet`` and ``epochs.parquet`` at the end.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

from raypi import cluster, io, paths
from raypi.sweep import _demo, results
from raypi.sweep._tune import run_packs
from raypi.sweep.config import spec_to_dict
from raypi.sweep.grid import SweepSpec, TrialConfig, expand, stages
from raypi.sweep.lock import DriverLock
from raypi.sweep.node_versions import check_cluster
from raypi.sweep.outcome import SweepOutcome, failure_reasons, summary_table

log = logging.getLogger(__name__)


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
    stack: bool | None = None
    """Within a pack, train members of one head, shape and stage as one stacked model
    (``raypi.train.stack``); False trains one member at a time; None = ``--stack auto``:
    stacked where trials run on GPUs, one at a time on CPUs, where stacking was measured
    slower (0.6-0.9×, BENCHMARKS.md). Results are the same either way."""
    trackers: tuple[str, ...] = ()
    """Trackers that get one run per member: ``mlflow[=URI]``, ``wandb[=PROJECT]``
    (``sweep.trackers``)."""


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


_SETTING = {None: "auto", True: "yes", False: "no"}
"""``--gpu`` and ``--stack`` as given: None is ``auto``."""


def resolve_gpu(options: LaunchOptions) -> tuple[LaunchOptions, cluster.GpuDecision]:
    """Decide ``options.use_gpu`` on the connected cluster by raypi's one rule; print it once.

    ``--stack auto`` follows it: stacked members on GPUs, one at a time on CPUs (printed too).

    Returns:
        The options with ``use_gpu`` and ``stack`` decided, and the GPU decision (both are
        recorded in ``sweep.yaml``).
    """
    setting = _SETTING[options.use_gpu]
    decision = cluster.gpu_decision(setting, options.cluster_file)
    print(decision.line(), flush=True)
    stack = decision.use_gpu if options.stack is None else options.stack
    how = "as one stacked model" if stack else "one at a time"
    said = f"--stack {_SETTING[options.stack]}"
    print(f"raypi: {said}: a pack's members of one head train {how}", flush=True)
    return replace(options, use_gpu=decision.use_gpu, stack=stack), decision


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
        run_packs(spec, "sweep", todo, out, options)
        outcome.ran = {"stage1": len(first), "stage2": len(second)}
        return
    searcher = _staged_searcher(spec.name, out, first, second, recorded)
    run_packs(spec, "sweep", todo, out, options, together=False, search=(searcher, len(todo)))
    outcome.ran = {"stage1": len(first), "stage2": len(second) - searcher.orphans}


def _staged_searcher(sweep: str, out: str, first, second, recorded):
    """Suggest packs of one: stage-1 trials first, each student once its teacher is done."""
    from raypi.sweep._staged import StagedSearcher

    waiting = {t.trial_key: t for t in second}

    def orphan(student_key: str, teacher_key: str) -> None:
        record_orphan(sweep, out, waiting[student_key], results.FAILED)

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
