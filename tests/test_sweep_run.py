"""Sweeps on one real local Ray: teacher reuse, resume after a killed driver, failures, S3."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from raypi import io
from raypi.sweep import (
    Grid,
    LaunchOptions,
    SweepSpec,
    expand,
    load_spec,
    read_epochs,
    read_trials,
    run_sweep,
    spec_to_dict,
    stages,
)
from raypi.sweep import results as sweep_results
from raypi.sweep import teachers as sweep_teachers
from raypi.sweep.synthetic import make_synthetic_study

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[1]
QUIET = LaunchOptions(max_failures=1, verbose=0, stack=True)  # stacks on the CPU too, to test them


@pytest.fixture(scope="module")
def cluster(s3_server, tmp_path_factory):
    """One local Ray for the module, started after the S3 server so workers see its endpoint."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_synthetic_study(
        str(tmp_path_factory.mktemp("study")),
        tasks=("demo_prognostic", "demo_diagnostic", "demo_auxiliary"),
        image_encoders=("tiny_vit", "tiny_resnet", "demo_vit_ssl", "demo_vit_clip"),
        text_encoders=("tiny_bert", "demo_bert"),
    )


def grid(**changes) -> Grid:
    values = dict(
        tasks=("demo_prognostic",),
        encoders=("tiny_vit",),
        text_encoders=("tiny_bert",),
        seeds=(0, 1),
        sizes=(40,),
        epochs=2,
        lams=(0.3, 0.7),
        taus=(0.5, 2.0),
    )
    return Grid(**{**values, **changes})


def spec(study, name="sweep", **changes) -> SweepSpec:
    return SweepSpec(name=name, grids=(grid(**changes),), data={"demo": study})


@pytest.fixture(scope="module")
def full_run(cluster, study, tmp_path_factory):
    storage = str(tmp_path_factory.mktemp("full"))
    outcome = run_sweep(spec(study), storage=storage, options=QUIET)
    return outcome, storage


def test_each_teacher_is_trained_once_for_all_its_students(full_run, study):
    outcome, _ = full_run
    first, second = stages(expand(spec(study)))
    teacher_keys = {t.teacher_key for t in second}
    # 2 seeds × (teacher, image): 4 teachers serve 2 seeds × 2 methods × 2 λ × 2 τ = 16 students.
    assert len(teacher_keys) == 4 and len(second) == 16
    assert outcome.ran == {"stage1": len(first), "stage2": 16}
    assert len(first) == 4
    trials = read_trials(outcome.results)
    assert trials["trial_key"].is_unique and len(trials) == 20
    assert (trials["status"] == "ok").all(), trials["error"].dropna().tolist()
    assert set(trials.loc[trials["method"].isin(["distill", "self_distill"]), "teacher_key"]) == (
        teacher_keys
    )
    stored = io.listdir(io.join(outcome.results, "teachers"))
    assert sorted(stored) == sorted(f"{key}.parquet" for key in teacher_keys)


def test_results_hold_configs_metrics_and_epochs(full_run):
    outcome, _ = full_run
    trials, epochs = read_trials(outcome.results), read_epochs(outcome.results)
    assert list(trials.columns) == sweep_results.TRIALS_SCHEMA.names
    assert trials["auc_best"].between(0, 1).all() and (trials["best_epoch"] >= 1).all()
    assert len(epochs) == 2 * len(trials)
    assert set(epochs["trial_key"]) == set(trials["trial_key"])
    students = trials[trials["method"] == "distill"]
    assert set(students["tau"]) == {0.5, 2.0} and set(students["lam"]) == {0.3, 0.7}
    assert trials.loc[trials["method"] == "teacher", "lam"].isna().all()
    boards = Path(outcome.results, "tensorboard")
    assert len(list(boards.rglob("events.out.tfevents*"))) == 20  # TensorBoard, per member
    assert {p.parent.name for p in boards.rglob("events*")} == set(trials["trial_key"])
    assert len(io.listdir(io.join(outcome.results, "configs"))) == 20  # resolved configs
    resolved = yaml.safe_load(io.read_bytes(io.join(outcome.results, "sweep.yaml")))
    assert resolved["sweep"]["grids"][0]["lams"] == [0.3, 0.7]


def test_teacher_probabilities_follow_each_students_tau(full_run):
    outcome, _ = full_run
    trials = read_trials(outcome.results)
    key = trials.loc[trials["method"] == "teacher", "trial_key"].iloc[0]
    ids = io.read_parquet(sweep_teachers.teacher_path(outcome.results, key))["image_id"]
    ids = ids.to_pylist()[:5]
    sharp = sweep_teachers.teacher_probs(outcome.results, key, ids, 0.25)
    soft = sweep_teachers.teacher_probs(outcome.results, key, ids, 4.0)
    assert sharp.shape == (5, 2)
    assert (sharp.max(1).values >= soft.max(1).values).all()


def test_rerun_trains_nothing_and_keeps_rows(full_run, study):
    outcome, storage = full_run
    before = read_trials(outcome.results)
    again = run_sweep(spec(study), storage=storage, options=QUIET)
    assert again.ran == {"stage1": 0, "stage2": 0} and again.skipped == 20
    after = read_trials(outcome.results)
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize("packs", [True, False], ids=["packs", "alone"])
def test_failing_trial_is_retried_then_recorded(cluster, study, tmp_path, packs):
    # tiny_vit's shards are truncated behind an intact manifest: the sweep's input check passes
    # and every attempt to read them raises.
    import shutil

    store = tmp_path / "features"
    shutil.copytree(study.features, store)
    for shard in (store / "tiny_vit").glob("part-*.parquet"):
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
    broken = SweepSpec(
        name="broken",
        grids=(
            grid(
                methods=("image", "self_distill"),
                seeds=(0,),
                lams=(0.5,),
                taus=(1.0,),
            ),
        ),
        data={"demo": replace(study, features=str(store))},
    )
    outcome = run_sweep(broken, storage=str(tmp_path), options=replace(QUIET, packs=packs))
    trials = read_trials(outcome.results).set_index("method")
    assert (trials["status"] == "failed").all() and len(trials) == 2
    error = trials.loc["image", "error"]
    assert error.startswith("ShardError: "), error
    summary = outcome.summary()  # the reasons of failed trials, counted
    assert "failed trials:" in summary and f"1 × {error}" in summary
    assert error.endswith("(2 attempts)")  # max_failures=1: one retry
    assert "failed; student not trained" in trials.loc["self_distill", "error"]
    # A pack launches its student with its teacher; alone, the student never starts.
    assert outcome.ran == {"stage1": 1, "stage2": 1 if packs else 0}
    assert read_epochs(outcome.results).empty


def _parts(results: str) -> int:
    names = io.listdir(io.join(results, "parts", "trials"))
    return sum(name.endswith(".parquet") for name in names)  # not temporaries being written


def test_resume_after_killing_the_driver(cluster, study, full_run, tmp_path):
    """A driver killed mid-sweep, then rerun, gives the uninterrupted run's rows, none twice."""
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(spec_to_dict(spec(study))))  # same keys as full_run
    killed = str(tmp_path / "killed")
    command = [sys.executable, str(REPO / "sweeps" / "distill_grid.py"), "--config", str(config)]
    command += ["--address", cluster, "--max-failures", "1"]
    driver = subprocess.Popen(
        command + ["--storage", killed], start_new_session=True, stdout=subprocess.DEVNULL
    )
    results = io.join(killed, "sweep")
    deadline = time.monotonic() + 180
    # Killed as soon as the first member is recorded: its pack (10 members) is cut short.
    while _parts(results) < 1 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    finished = sweep_results.statuses(results)
    assert 0 < len(finished) < 20, "the driver should die mid-sweep"
    first_rows = sweep_results.read_parts(results)  # a killed write leaves a temporary
    per_pack = first_rows.groupby("pack_key").size()
    assert (per_pack < 10).any(), "a pack (10 members) should be cut short"

    resumed = run_sweep(load_spec(str(config)), storage=killed, options=QUIET)
    assert resumed.skipped >= len(finished)
    a, b = read_trials(resumed.results), read_trials(full_run[0].results)
    assert a["trial_key"].is_unique and len(a) == len(b) == 20
    assert list(a["trial_key"]) == list(b["trial_key"])
    assert (a["status"] == "ok").all()
    pd.testing.assert_series_equal(a["auc_best"], b["auc_best"], atol=1e-6)
    # Trials finished before the kill were not trained again.
    kept = a.set_index("trial_key").loc[first_rows["trial_key"], "finished_at"]
    assert (kept.to_numpy() == first_rows["finished_at"].to_numpy()).all()
    epochs = read_epochs(resumed.results)
    assert not epochs.duplicated(["trial_key", "epoch"]).any() and len(epochs) == 40


@pytest.mark.parametrize(
    "script", ["distill_grid", "sample_efficiency", "ablations", "tune_lambda"]
)
def test_sweep_script_smoke_test(cluster, study, tmp_path, script):
    """Each script runs its demo config's smoke test (here on the synthetic study's data)."""
    config = yaml.safe_load((REPO / "sweeps" / "configs" / f"{script}_demo.yaml").read_text())
    config["data"] = {"demo": {"root": study.root, "features": study.features}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    module = runpy.run_path(str(REPO / "sweeps" / f"{script}.py"))
    argv = ["--smoke-test", "--config", str(tmp_path / "config.yaml")]
    assert module["main"](argv + ["--storage", str(tmp_path)]) == 0
    trials = read_trials(str(tmp_path / f"{config['name']}_smoke"))
    assert len(trials) >= 1 and (trials["status"] == "ok").all()
    assert trials["epochs"].eq(2).all() and trials["seed"].nunique() == 1


def test_s3_storage_and_s3_data(cluster, s3_server):
    bucket = "s3://raypi-test/sweep-test"
    remote = make_synthetic_study(f"{bucket}/study", images=120)
    remote_spec = SweepSpec(
        name="on_s3",
        grids=(grid(seeds=(0,), lams=(0.5,), taus=(1.0,), methods=("image", "self_distill")),),
        data={"demo": remote},
    )
    outcome = run_sweep(remote_spec, storage=f"{bucket}/results", options=QUIET)
    assert outcome.results == f"{bucket}/results/on_s3"
    trials = read_trials(outcome.results)
    assert list(trials["status"]) == ["ok", "ok"]
    assert io.exists(f"{outcome.results}/tune") or io.listdir(f"{outcome.results}/tune")
    assert len(io.listdir(f"{outcome.results}/teachers")) == 1


def test_inner_protocol_chooses_on_held_out_training_rows(cluster, study, tmp_path):
    """Under ``inner`` each member fits and selects on rows taken from its pack's prefix.

    The same members as packs of one (``--no-packs``) give exactly the rows of one pack of
    many: under ``inner`` sizes never stack together, so every stack here is one member.
    """
    from raypi.splits import training_subset
    from raypi.sweep import _inputs

    inner = spec(study, name="inner", seeds=(0,), lams=(0.5,), taus=(1.0,), sizes=(40, 60),
                 methods=("image", "teacher", "distill"), selection_split="inner")  # fmt: skip
    outcome = run_sweep(inner, storage=str(tmp_path / "pack"), options=QUIET)
    trials = read_trials(outcome.results)
    assert (trials["status"] == "ok").all(), trials["error"].dropna().tolist()
    assert set(trials["selection_split"]) == {"inner"} and set(trials["inner_share"]) == {0.2}
    assert set(trials["teacher_selection"]) == {"auc"} and set(trials["dtype"]) == {"fp32"}
    assert trials["select_auc_best"].notna().all() and trials["config_key"].notna().all()
    teacher = next(t for t in expand(inner) if t.method == "teacher" and t.size == 60)
    split = _inputs.read_split(teacher.dataset_root, teacher.task, teacher.seed)
    rows = _inputs.subset_rows(teacher, split, training_subset(split, 60, teacher.seed))
    assert len(rows.train_ids) + len(rows.select_ids) == 60
    assert not set(rows.select_ids) & (set(rows.train_ids) | set(rows.val_ids))
    stored = io.read_parquet(sweep_teachers.teacher_path(outcome.results, teacher.trial_key))
    assert stored.column("image_id").to_pylist() == rows.train_ids  # fitted rows only
    epochs = read_epochs(outcome.results)
    assert (epochs["select_auc"] != epochs["val_auc"]).any()
    alone = run_sweep(inner, storage=str(tmp_path / "alone"), options=replace(QUIET, packs=False))
    ones = read_trials(alone.results)
    assert trials["pack_key"].nunique() == 1 and ones["pack_key"].isna().all()
    assert list(ones["trial_key"]) == list(trials["trial_key"]) and len(trials) == 6
    for column in ("auc_final", "auc_best", "auprc_best", "select_auc_best", "best_epoch"):
        pd.testing.assert_series_equal(ones[column], trials[column], check_exact=True)
    pd.testing.assert_frame_equal(read_epochs(alone.results).drop(columns="seconds"),
                                  epochs.drop(columns="seconds"))  # fmt: skip


def test_status_of_a_half_finished_sweep(full_run, tmp_path, capsys):
    import shutil

    from raypi.cli import main as raypi_main

    outcome, _ = full_run
    half = tmp_path / "half"
    shutil.copytree(outcome.results, half)
    parts = sorted((half / "parts" / "trials").glob("*.parquet"))
    students = [
        p for p in parts if p.stem in {t.trial_key for t in stages(expand(spec_from(half)))[1]}
    ]
    for path in students[:5]:
        path.unlink()
    first = stages(expand(spec_from(half)))[0][0]  # an ok stage-1 model, now failed
    failed = sweep_results.trial_row(
        "sweep", first.to_dict(), "failed", error="RuntimeError: out of memory (1 attempt)"
    )
    sweep_results.write_trial(str(half), failed)
    assert raypi_main(["status", str(half)]) == 0
    out = capsys.readouterr().out
    assert "14 ok, 1 failed, 5 not started" in out
    assert "RuntimeError: out of memory" in out and "compute spent" in out


def spec_from(folder):
    from raypi.sweep.config import spec_from_dict

    return spec_from_dict(yaml.safe_load((Path(folder) / "sweep.yaml").read_text())["sweep"])


def test_lambda_search_runs_every_point_in_one_experiment(cluster, study, tmp_path):
    from raypi.sweep import SearchSpace, run_lambda_search

    searched = spec(study, name="search", seeds=(0, 1), methods=("distill",), lams=(0.5,),
                    taus=(1.0,))  # fmt: skip
    outcome = run_lambda_search(searched, space=SearchSpace(samples=3), storage=str(tmp_path),
                                options=QUIET)  # fmt: skip
    trials = read_trials(outcome.results)
    students = trials[trials["method"] == "distill"]
    assert (trials["status"] == "ok").all() and len(students) == 6  # 2 points × 3 samples
    assert students.groupby("seed")[["lam", "tau"]].nunique().min().min() == 3
    experiments = [p.name for p in (Path(outcome.results) / "tune").iterdir() if p.is_dir()]
    assert sum(name.startswith("search-") for name in experiments) == 1
    spans = students.groupby("seed").agg(start=("started_at", "min"), end=("finished_at", "max"))
    assert spans["start"].max() < spans["end"].min()  # the two points' searches overlapped


def test_stack_auto_stacks_on_gpus_only(cluster, capsys):
    from raypi.sweep.launch import resolve_gpu

    decided, gpu = resolve_gpu(LaunchOptions())  # this cluster has no GPU and no autoscaler
    assert (gpu.use_gpu, decided.use_gpu, decided.stack) == (False, False, False)
    assert (
        "--stack auto: a pack's members of one head train one at a time" in capsys.readouterr().out
    )
    assert resolve_gpu(LaunchOptions(stack=True))[0].stack is True


def test_packs_give_the_rows_of_one_trial_per_tune_trial(cluster, study, full_run, tmp_path):
    """Each member of a pack equals the same trial run alone.

    One member at a time (``stack=False``) gives exactly the rows of one Tune trial per trial
    on the CPU. Stacked members (``QUIET`` forces them) compute the same fits in fp32 with other
    summation orders, so they agree to rounding: AUCs to 1e-5 (``tests/test_train_stack.py``
    checks stacked = alone to 1e-9 in float64), kept epochs exactly.
    """
    options = replace(QUIET, packs=False)
    alone = run_sweep(spec(study), storage=str(tmp_path / "alone"), options=options)
    single = run_sweep(spec(study), storage=str(tmp_path / "single"),
                       options=replace(QUIET, stack=False))  # fmt: skip
    a, b = read_trials(full_run[0].results), read_trials(alone.results)
    c = read_trials(single.results)
    assert list(a["trial_key"]) == list(b["trial_key"]) == list(c["trial_key"])
    assert (b["status"] == "ok").all() and (c["status"] == "ok").all()
    for column in ("auc_final", "auc_best", "auprc_best", "select_auc_best", "best_epoch"):
        pd.testing.assert_series_equal(c[column], b[column], check_exact=True)
        pd.testing.assert_series_equal(a[column], b[column], check_exact=False, atol=1e-5)
    ea, eb = read_epochs(full_run[0].results), read_epochs(alone.results)
    ec = read_epochs(single.results)
    pd.testing.assert_frame_equal(ec.drop(columns="seconds"), eb.drop(columns="seconds"))
    pd.testing.assert_frame_equal(ea.drop(columns="seconds"), eb.drop(columns="seconds"),
                                  check_exact=False, atol=1e-5)  # fmt: skip
    # Per pack (one seed): the image model and the teacher alone (other heads), 8 students.
    students = a["method"].isin(["distill", "self_distill"])
    assert (a.loc[students, "stack_size"] == 8).all() and (
        a.loc[~students, "stack_size"] == 1
    ).all()
    assert (b["stack_size"] == 1).all()
    assert (c["stack_size"] == 1).all()
    assert a["pack_key"].nunique() == 2 and b["pack_key"].isna().all()
    # Each pack read its features once; alone, every trial read its own.
    assert a["bytes_read"].sum() < b["bytes_read"].sum()
    assert (a["bytes_read"] > 0).sum() == 2
