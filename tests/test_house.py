"""The house rules: Ray only where distribution happens, one method table, flags from settings."""

import argparse
import ast
import io as text_io
import subprocess
import sys
import types
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from raypi.methods import METHOD_TABLE, METHODS, method

PACKAGE = Path(__file__).resolve().parents[1] / "raypi"
RAY_ALLOWED = ("features", "sweep", "commands", "cluster/", "cli.py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_ray_is_imported_only_where_design_allows():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(RAY_ALLOWED):
            continue
        if any(name == "ray" or name.startswith("ray.") for name in _imports(path)):
            offenders.append(relative)
    assert offenders == []


def test_features_never_import_sweep_and_library_never_imports_scripts():
    for path in PACKAGE.rglob("*.py"):
        names = _imports(path)
        assert not any(n.startswith(("sweeps", "analysis")) for n in names), path
        if path.parent.name == "features":
            assert not any(n.startswith("raypi.sweep") for n in names), path


def test_data_never_imports_features():
    for path in (PACKAGE / "data").rglob("*.py"):
        assert not any(n.startswith("raypi.features") for n in _imports(path)), path


def test_head_table_is_read_without_torch():
    code = (
        "import sys\n"
        "from raypi.heads import HEAD_TABLE\n"
        "from raypi.report._labels import HEAD_TITLES\n"
        "from raypi.sweep.config import spec_from_dict\n"
        "from raypi.train._flops import batch_flops\n"
        "assert HEAD_TITLES == {'attention': 'Attention head', 'mean_lp': 'Mean-LP',\n"
        "                       'cls_lp': 'CLS-LP'}\n"
        "assert batch_flops('mean_lp', 4, 8, 2) == 2 * 8 * 4 * 8\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_report_never_imports_train_or_encoders():
    for path in (PACKAGE / "report").rglob("*.py"):
        names = _imports(path)
        assert not any(n.startswith(("raypi.train", "raypi.encoders")) for n in names), path


def test_report_reads_results_without_torch(tmp_path):
    code = (
        "import sys\n"
        "from raypi.report.synthetic import write_synthetic_results\n"
        "from raypi.report.load import load_results\n"
        "from raypi.report._select import with_value\n"
        f"write_synthetic_results({str(tmp_path)!r}, seeds=2, failures=0)\n"
        f"with_value(load_results([{str(tmp_path)!r}]).trials, 'auc')\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_method_table_is_the_one_source_of_method_facts():
    from raypi.sweep import grid

    assert METHODS == ("image", "teacher", "distill", "self_distill", "text")
    assert grid.METHODS is METHODS
    assert grid.STUDENT_METHODS == ("distill", "self_distill")
    assert grid.TEXT_METHODS == ("teacher", "distill", "text")
    assert [m.name for m in METHOD_TABLE.values() if m.can_teach] == ["image", "teacher", "text"]
    assert method("distill").teacher == "teacher" and method("self_distill").teacher == "image"
    with pytest.raises(ValueError, match="known: image, teacher"):
        method("student")


def test_extract_flags_are_made_from_extract_options():
    import argparse

    from raypi.commands import extract as extract_command
    from raypi.commands._options import field_docs
    from raypi.features.extract import ExtractOptions

    parser = argparse.ArgumentParser()
    extract_command.register(parser.add_subparsers())
    sub = parser._subparsers._group_actions[0].choices["extract"]
    flags = {action.dest: action for action in sub._actions}
    docs = field_docs(ExtractOptions)
    for item in fields(ExtractOptions):
        assert item.name in flags, item.name
        assert flags[item.name].default == item.default
        assert docs[item.name].split()[0] in flags[item.name].help
    assert flags["dtype"].choices == ("fp16", "bf16", "fp32")
    args = parser.parse_args(["extract", "--encoders", "tiny_vit", "--pool", "2", "--overwrite"])
    assert (args.pool, args.overwrite, args.address) == (2, True, None)


def test_sweep_flags_are_made_from_launch_options():
    from raypi.commands import sweep as sweep_command
    from raypi.commands._options import field_docs
    from raypi.sweep.launch import LaunchOptions

    parser = sweep_command.sweep_parser("", "demo.yaml")
    flags = {action.dest: action for action in parser._actions}
    docs = field_docs(LaunchOptions)
    for item in fields(LaunchOptions):
        assert item.name in flags, item.name
        assert docs[item.name].split()[0] in flags[item.name].help
    assert sweep_command.launch_options(parser.parse_args([])) == LaunchOptions()
    argv = ["--gpu", "no", "--no-packs", "--stack", "no", "-vv", "--max-failures", "0",
            "--cpus-per-trial", "0.5", "--max-pack-gb", "1.5", "--pack-memory-gb", "0",
            "--cluster-file", "c.yaml", "--ordinary-gpu-resource", "gpu_16gb",
            "--gpu-memory-gb", "24", "--no-retry-failed", "--epoch-reports", "3"]  # fmt: skip
    options = sweep_command.launch_options(parser.parse_args(argv))
    assert (options.use_gpu, options.packs, options.stack, options.verbose) == (False,) * 3 + (2,)
    assert (options.max_failures, options.cpus_per_trial, options.max_pack_gb) == (0, 0.5, 1.5)
    assert (options.pack_memory_gb, options.cluster_file, options.gpu_memory_gb) == (
        0,
        "c.yaml",
        24,
    )
    assert options.ordinary_gpu_resource == "gpu_16gb" and options.epoch_reports == 3
    assert options.retry_failed is False and options.trackers == ()
    yes = sweep_command.launch_options(parser.parse_args(["--gpu", "yes"]))
    assert yes.use_gpu is True and parser.parse_args([]).config == "demo.yaml"


def test_a_flag_of_an_unknown_type_must_be_given():
    import argparse

    from raypi.commands._options import add_arguments

    with pytest.raises(TypeError, match=r"Settings\.names: no flag is made for type"):
        add_arguments(argparse.ArgumentParser(), _Settings)


@dataclass(frozen=True)
class _Settings:
    names: tuple[str, ...] = ()
    """Names."""


def test_progress_line_counts_models_students_and_failures(monkeypatch):
    from raypi.sweep._callbacks import ProgressLine
    from raypi.sweep.trainable import TrialPlan

    plan = TrialPlan("s", "/r", {"a": {"method": "image"}, "b": {"method": "distill"}})
    import raypi.sweep.trainable as trainable

    stream = text_io.StringIO()
    line = ProgressLine(plan, total=3, stream=stream)
    kinds = {"a": False, "b": True, "c": False}
    monkeypatch.setattr(
        trainable,
        "resolve_trial",
        lambda config, plan: types.SimpleNamespace(is_student=kinds[config["trial_key"]]),
    )
    for key in ("a", "b", "c"):
        trial = types.SimpleNamespace(trial_id=key, config={"trial_key": key})
        line.on_trial_start(0, [], trial)
        line.on_trial_result(0, [], trial, {"best_val_auc": 0.7 + 0.1 * (key == "b")})
        if key == "c":
            line.on_trial_error(0, [], trial)
        else:
            line.on_trial_complete(0, [], trial)
    line.on_experiment_end([])
    last = stream.getvalue().strip().splitlines()[-1]
    assert "3/3 trials (1 stage-1 models, 1 students)" in last
    assert "0 running · 1 failed" in last and "best val AUC 0.800" in last
    assert len(stream.getvalue().strip().splitlines()) <= 5  # not a line per event


def test_sweep_summary_never_averages_across_configurations():
    import pandas as pd

    from raypi.sweep.launch import summary_table

    rows = [{"task": "t", "method": "image", "status": "ok", "config_key": key, "auc_final": auc}
            for key, auc in (("a", 0.6), ("a", 0.6), ("b", 0.8), ("b", 0.9))]  # fmt: skip
    rows.append({"task": "t", "method": "image", "status": "failed", "config_key": "b",
                 "auc_final": None})  # fmt: skip
    line = summary_table(pd.DataFrame(rows)).splitlines()[1].split()
    # 4 ok, 1 failed, 2 configurations; the best configuration's mean (0.85), not 0.725.
    assert line == ["t", "image", "4", "1", "2", "0.85"]


def test_address_means_the_same_on_every_command():
    from raypi.cli import build_parser

    def address_help(parser) -> str:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from address_help(sub)
            elif "--address" in action.option_strings:
                yield action.help

    helps = list(address_help(build_parser()))
    assert len(helps) >= 3  # raypi extract, raypi build inspect, raypi sweep
    assert all("default: a fresh local Ray (or RAY_ADDRESS" in text for text in helps), helps
