"""Sweep definitions, keys, results files and cluster.yaml — no Ray cluster needed."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from raypi.sweep import (
    DataSource,
    Grid,
    SweepSpec,
    TrialConfig,
    expand,
    load_spec,
    spec_from_dict,
    spec_to_dict,
    stages,
)
from raypi.sweep import results as sweep_results
from raypi.sweep import teachers as sweep_teachers
from raypi.sweep._callbacks import error_text
from raypi.sweep.config import ConfigError
from raypi.sweep.resources import gpu_share, head_memory_gb

REPO = Path(__file__).resolve().parents[1]
DEMO = DataSource("/data/demo", "/features/demo")
KNOWN_KEY = "2d6f37b24d194dba"  # KEY_VERSION 2: later-epoch ties, protocol fields


def spec(**changes) -> SweepSpec:
    grid = Grid(
        tasks=("demo_prognostic", "demo_diagnostic"),
        encoders=("tiny_vit", "tiny_resnet"),
        methods=("image", "teacher", "distill", "self_distill", "text"),
        seeds=(0, 1, 2),
        sizes=(100, 200),
        lams=(0.2, 0.5, 0.8),
        taus=(0.5, 2.0),
        text_encoders=("tiny_bert",),
    )
    return SweepSpec(name="s", grids=(replace(grid, **changes),), data={"demo": DEMO})


def test_students_share_teachers_and_teachers_appear_once():
    trials = expand(spec())
    first, second = stages(trials)
    assert len({t.trial_key for t in trials}) == len(trials)
    points = 2 * 2 * 3 * 2  # tasks × encoders × seeds × sizes
    # teacher + image per point; the text-only model once per task × seed × size (no encoder).
    assert len(first) == 2 * points + 2 * 3 * 2
    assert len(second) == points * 2 * 3 * 2  # 2 student methods × 3 λ × 2 τ
    teachers = {t.teacher_key for t in second}
    assert len(teachers) == 2 * points
    assert teachers <= {t.trial_key for t in first}
    by_key = {t.trial_key: t for t in first}
    for student in second:
        teacher = by_key[student.teacher_key]
        assert teacher.method == ("teacher" if student.method == "distill" else "image")
        assert (teacher.task, teacher.encoder, teacher.seed, teacher.size) == (
            student.task,
            student.encoder,
            student.seed,
            student.size,
        )


def test_keys_ignore_paths_and_names_but_not_settings():
    a = expand(spec())
    moved = SweepSpec(
        name="other", grids=spec().grids, data={"demo": DataSource("s3://b/d", "s3://b/f")}
    )
    assert [t.trial_key for t in a] == [t.trial_key for t in expand(moved)]
    changed = expand(spec(epochs=3))
    assert not {t.trial_key for t in a} & {t.trial_key for t in changed}


def test_key_is_stable_across_releases():
    trial = TrialConfig(
        task="demo_prognostic",
        dataset="demo",
        encoder="tiny_vit",
        text_encoder=None,
        method="image",
        head="attention",
        size=100,
        seed=0,
        lam=None,
        tau=None,
        lr=1e-4,
        batch_size=64,
        epochs=60,
        views=None,
        dtype="fp32",
    )
    # Recorded once: a changed key would silently orphan every stored result.
    assert trial.trial_key == KNOWN_KEY
    assert TrialConfig.from_dict(trial.to_dict()) == trial
    with pytest.raises(ValueError, match="does not match its key"):
        TrialConfig.from_dict({**trial.to_dict(), "seed": 1})


def test_task_sizes_epochs_and_lr_defaults():
    trials = expand(spec(sizes=(), size_picks=(0, -1), heads=("attention", "mean_lp")))
    sizes = {(t.size, t.epochs) for t in trials}
    assert sizes == {(100, 60), (400, 30)}  # the demo tasks' smallest and largest sizes
    assert {t.lr for t in trials if t.head == "mean_lp"} == {1e-3}
    assert {t.tau for t in trials if t.method == "distill"} == {0.5, 2.0}
    default_tau = expand(spec(taus=(), tasks=("demo_diagnostic",)))
    assert {t.tau for t in default_tau if t.is_student} == {2.5}


def test_smoke_spec_is_one_of_everything():
    smoke = spec().smoke()
    trials = expand(smoke)
    assert smoke.name == "s_smoke"
    assert {t.method for t in trials} == {"image", "teacher", "distill", "self_distill", "text"}
    assert len(trials) == 5 and {t.epochs for t in trials} == {2}


def test_yaml_round_trip_and_errors(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec_to_dict(spec())))
    assert [t.trial_key for t in expand(load_spec(str(path)))] == [
        t.trial_key for t in expand(spec())
    ]
    with pytest.raises(ValueError, match="unknown grid fields"):
        spec_from_dict({"name": "x", "grids": [{"tasks": ["age"], "encoders": ["c2l"], "x": 1}]})
    with pytest.raises(ValueError, match="unknown methods"):
        Grid(tasks=("age",), encoders=("c2l",), methods=("magic",))
    with pytest.raises(ValueError, match="size_mode must be one of"):
        Grid(tasks=("age",), encoders=("c2l",), size_mode="fractions")


@pytest.mark.parametrize("head", ["atention", "teacher"])
def test_config_refuses_unknown_heads_before_ray_starts(head):
    values = {"name": "x", "grids": [{"tasks": ["demo_prognostic"], "encoders": ["tiny_vit"],
                                      "heads": ["attention", head]}]}  # fmt: skip
    expected = rf"grids\[0\]\.heads: '{head}' is not an image head; image heads: attention, "
    with pytest.raises(ConfigError, match=expected + "mean_lp, cls_lp"):
        spec_from_dict(values)
    with pytest.raises(ValueError, match=f"'{head}' is not an image head"):
        expand(spec(heads=("attention", head)))  # the Python API refuses it as well


@pytest.fixture
def data_store(monkeypatch):
    """The study configs' data paths start at ${RAYPI_DATA}."""
    monkeypatch.setenv("RAYPI_DATA", "s3://raypi-test/raypi")


@pytest.mark.parametrize("path", sorted((REPO / "sweeps" / "configs").glob("*.yaml")))
def test_shipped_configs_expand(path, data_store):
    trials = expand(load_spec(str(path)))
    assert trials and len({t.trial_key for t in trials}) == len(trials)


def test_study_distill_grid_matches_the_paper(data_store):
    trials = expand(load_spec(str(REPO / "sweeps" / "configs" / "distill_grid.yaml")))
    readmission = [t for t in trials if t.task == "readmission" and t.method != "text"]
    assert {t.size for t in readmission} == {211, 2119}
    assert {t.seed for t in readmission} == set(range(5))
    assert len({t.encoder for t in readmission}) == 7
    mimic = {t.tau for t in trials if t.task == "mimic_5x1200" and t.is_student}
    assert mimic == {2.5}


def test_results_parts_are_one_row_per_key(tmp_path):
    out = str(tmp_path)
    trial = expand(spec())[0].to_dict()
    epochs = [{"epoch": 1, "loss": 0.7, "val_auc": 0.6}, {"epoch": 2, "loss": 0.5, "val_auc": 0.7}]
    sweep_results.write_trial(out, sweep_results.trial_row("s", trial, "failed", error="E: x"))
    row = sweep_results.trial_row("s", trial, "ok", auc_best=0.7, finished_at=sweep_results.now())
    sweep_results.write_trial(out, row, epochs)
    trials, epoch_rows = sweep_results.collect(out)
    assert len(trials) == 1 and trials.loc[0, "status"] == "ok" and len(epoch_rows) == 2
    assert list(trials.columns) == sweep_results.TRIALS_SCHEMA.names
    with pytest.raises(KeyError, match="not trials columns"):
        sweep_results.trial_row("s", trial, "ok", report="text")


def test_teacher_logits_give_probabilities_at_any_tau(tmp_path):
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    sweep_teachers.write_teacher_outputs(str(tmp_path), "k", ["a", "b"], logits)
    probs = sweep_teachers.teacher_probs(str(tmp_path), "k", ["b", "a"], 2.0)
    assert torch.allclose(probs, torch.softmax(logits[[1, 0]] / 2.0, dim=-1))
    with pytest.raises(ValueError, match="lack 1 training rows"):
        sweep_teachers.teacher_probs(str(tmp_path), "k", ["a", "c"], 1.0)


def test_error_text_is_short_and_names_the_type():
    text = error_text(ValueError("bad rows\nline two"), 3)
    assert text == "ValueError: bad rows (3 attempts)"
    assert len(error_text(RuntimeError("x" * 2000), 1)) < 520


def test_gpu_shares_from_token_counts():
    assert gpu_share(head_memory_gb((197, 768)), 16) == 0.125  # ViT-B/16
    assert gpu_share(head_memory_gb((1370, 768)), 16) == 1.0  # RAD-DINO on a 16 GB GPU
    assert gpu_share(head_memory_gb((1370, 768)), 40) == 0.25


def test_cluster_yaml_passes_rays_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    validate_config(prepare_config(config))
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"].get("GPU", 0) == 0
    big = [name for name, t in types.items() if t["resources"].get("big_gpu")]
    small = [name for name, t in types.items() if t["resources"].get("GPU") and name not in big]
    assert big and small
    assert any(
        "pip install" in command and "raypi" in command for command in config["setup_commands"]
    )


def test_sweep_command_parses_its_options():
    import argparse

    from raypi.commands import sweep as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["sweep", "--config", "x.yaml", "--smoke-test", "--search"])
    assert args.func is command.run and args.smoke_test and args.search and args.samples == 8
    with pytest.raises(SystemExit):
        parser.parse_args(["sweep"])  # --config is required for the command


def test_dry_run_of_the_study_grid_counts_the_expanded_trials(capsys, data_store):
    from raypi.commands.sweep import print_dry_run, sweep_parser

    config = str(REPO / "sweeps" / "configs" / "distill_grid.yaml")
    cluster_file = str(REPO / "cluster.yaml")  # its GPU node types: --gpu auto means GPUs
    args = sweep_parser("", config).parse_args(["--dry-run", "--cluster-file", cluster_file])
    assert print_dry_run(args, load_spec(config)) == 0
    out = capsys.readouterr().out
    trials = expand(load_spec(config))
    assert f"{len(trials)} trials (nothing was started)" in out
    first, second = stages(trials)
    for method in ("image", "teacher", "text", "distill", "self_distill"):
        count = sum(t.method == method for t in trials)
        row = next(line for line in out.splitlines() if f" {method} " in f" {line} ")
        assert f" {count} " in f" {row} ", (method, row)
    assert "big_gpu" in out and "GPU-hours" in out and "GB read" in out
    assert len(first) + len(second) == len(trials)
    args = sweep_parser("", config).parse_args(["--dry-run", "--gpu-tflops", "fp32=10,bf16=40"])
    assert print_dry_run(args, load_spec(config)) == 0
    hours = re.search(
        r"per precision \(fp32: ~([\d.]+), bf16: ~([\d.]+)\)", capsys.readouterr().out
    )
    assert float(hours[1]) == pytest.approx(4 * float(hours[2]), rel=1e-3)
    with pytest.raises(SystemExit):
        sweep_parser("", config).parse_args(["--gpu-tflops", "fp16=10"])


def test_study_configs_take_their_data_from_the_command_line_or_environment(monkeypatch, capsys):
    from raypi.commands.sweep import checked_spec, sweep_parser

    config = str(REPO / "sweeps" / "configs" / "distill_grid.yaml")
    parser = sweep_parser("", config)
    monkeypatch.delenv("RAYPI_DATA", raising=False)
    assert checked_spec(config, parser.parse_args([])) is None
    assert "${RAYPI_DATA} is not set; give --data-store URI" in capsys.readouterr().err
    given = checked_spec(config, parser.parse_args(["--data-store", "s3://b/raypi/"]))
    assert given.data["mimic"].root == "s3://b/raypi/datasets/mimic"
    assert given.data["inspect"].features == "s3://b/raypi/features/inspect"
    monkeypatch.setenv("RAYPI_DATA", "s3://env/raypi")
    from_env = checked_spec(config, parser.parse_args([]))
    assert from_env.data["mimic"].features == "s3://env/raypi/features/mimic"
    args = parser.parse_args(["--data", "inspect=s3://x/ds,s3://x/ft"])
    replaced = checked_spec(config, args)
    assert replaced.data["inspect"].root == "s3://x/ds"
    assert replaced.data["mimic"].root == "s3://env/raypi/datasets/mimic"  # the others stay
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "inspect=s3://x/ds"])


def test_precision_and_validate_every_are_recorded_settings():
    trials = expand(spec(dtype="tf32", validate_every=3, teacher_selection="last"))
    assert {(t.dtype, t.validate_every) for t in trials} == {("tf32", 3)}
    row = sweep_results.trial_row("s", trials[0].to_dict(), "ok", stack_size=4)
    assert (row["dtype"], row["validate_every"], row["stack_size"]) == ("tf32", 3, 4)
    # validate_every 1 (the default) leaves keys as they were before the field existed.
    plain = expand(spec())
    assert {t.validate_every for t in plain} == {1}
    every = {t.trial_key for t in expand(spec(teacher_selection="last"))}
    assert not every & {t.trial_key for t in trials}
    with pytest.raises(ValueError, match="teacher_selection 'last'"):
        spec(validate_every=2)
    with pytest.raises(ValueError, match="dtype"):
        spec(dtype="fp16")
    loaded = spec_from_dict({"name": "s", "grids": [{"tasks": ["demo_prognostic"],
                             "encoders": ["tiny_vit"], "validate_every": 2,
                             "teacher_selection": "last", "dtype": "bf16"}]})  # fmt: skip
    assert loaded.grids[0].validate_every == 2 and loaded.grids[0].dtype == "bf16"
