"""The report never averages trials of different settings, and reads older trials files."""

import argparse

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raypi.commands import report as report_command
from raypi.report import build_report
from raypi.report._select import with_value
from raypi.report._settings import PooledSettingsError, variants, where
from raypi.report.distillation import comparison_rows
from raypi.report.load import load_results
from raypi.report.synthetic import synthetic_trials, write_synthetic_results
from raypi.sweep import results as sweep_results

TASKS = {"readmission": (211, 2119)}


def _two_sweeps(root, setting="lr", value=1e-3, shift=0.1):
    """Two folders of the same grid that differ only in ``setting`` (and in their AUCs)."""
    first = write_synthetic_results(str(root / "a"), tasks=TASKS, seeds=3, failures=0, sweep="a")
    second = root / "b"
    write_synthetic_results(str(second), tasks=TASKS, seeds=3, failures=0, sweep="b")
    path = second / "trials.parquet"
    table = pq.read_table(path).to_pandas()
    table[setting] = value
    table["trial_key"] = table["trial_key"] + "-b"
    for column in ("auc_final", "auc_best"):
        table[column] = (table[column] - shift).clip(0, 1)
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path)
    return first, str(second)


def test_figure_builders_refuse_to_pool_two_settings(tmp_path):
    paths = _two_sweeps(tmp_path)
    trials = load_results(list(paths)).trials
    with pytest.raises(PooledSettingsError, match=r"lr.*--where lr="):
        with_value(trials, "auc")
    assert len(with_value(where(trials, ["lr=1e-4"]), "auc")) == len(with_value(
        load_results([paths[0]]).trials, "auc"))  # fmt: skip


def test_report_draws_each_setting_apart_and_no_mean_mixes_them(tmp_path):
    paths = _two_sweeps(tmp_path)
    index = build_report(list(paths), str(tmp_path / "out"), figures=("distillation",))
    text = open(index, encoding="utf-8").read()
    assert "Distillation — lr = 0.0001" in text and "Distillation — lr = 0.001" in text
    per_sweep = {}
    for label, folder in (("lr-0.0001", paths[0]), ("lr-0.001", paths[1])):
        csv = tmp_path / "out" / "figures" / label / "distillation_auc.csv"
        summary = pd.read_csv(csv)
        assert (summary["n"] == 3).all()  # 3 seeds per cell, never 3 + 3
        rows = comparison_rows(with_value(load_results([folder]).trials, "auc"))
        expected = rows.groupby(["size", "encoder", "method"])["value"].mean()
        got = summary.set_index(["size", "encoder", "method"])["mean"]
        pd.testing.assert_series_equal(got.sort_index(), expected.loc[got.index].sort_index(),
                                       check_names=False)  # fmt: skip
        per_sweep[label] = got
    assert (per_sweep["lr-0.0001"] - per_sweep["lr-0.001"]).abs().min() > 0.05


def test_report_where_keeps_one_setting_and_says_so(tmp_path):
    paths = _two_sweeps(tmp_path, setting="selection_split", value="inner")
    out = tmp_path / "out"
    index = build_report(list(paths), str(out), figures=("distillation",),
                         where=("selection_split=inner",))  # fmt: skip
    text = open(index, encoding="utf-8").read()
    assert "Only trials with selection_split=inner" in text
    assert "Protocol of b: kept epochs and searched λ/τ chosen on an inner" in text
    assert (out / "figures" / "distillation_auc.csv").is_file()  # one setting: no variants


def test_bad_where_exits_2_and_names_the_column(tmp_path, capsys):
    paths = _two_sweeps(tmp_path)
    args = argparse.Namespace(
        results=list(paths), out=str(tmp_path / "o"), ci="t", selection="study",
        figures=["distillation"], where=["learning=1"], equivalence_margin=0.01,
    )  # fmt: skip
    assert report_command.run(args) == 2
    assert "no column 'learning'" in capsys.readouterr().err


def test_variants_label_only_the_settings_that_differ():
    one = synthetic_trials(tasks=TASKS, seeds=2, failures=0)
    two = one.assign(epochs=100, trial_key=one["trial_key"] + "-x")
    groups = variants(pd.concat([one, two], ignore_index=True))
    assert [label for label, _ in groups] == ["epochs = 100", "epochs = 50"]
    assert variants(one)[0][0] == ""


def test_protocols_are_titled_in_words_the_studys_first():
    study = synthetic_trials(tasks=TASKS, seeds=2, failures=0).assign(
        selection_split="val", inner_share=None
    )
    inner = study.assign(
        selection_split="inner", inner_share=0.2, trial_key=study["trial_key"] + "-i"
    )
    labels = [label for label, _ in variants(pd.concat([inner, study], ignore_index=True))]
    assert labels == [
        "choices on the validation split (the study's protocol)",
        "epochs chosen on an inner 20 % split of the training patients",
    ]


def test_older_trials_files_read_their_defaults_and_get_a_config_key(tmp_path):
    trials = synthetic_trials(tasks=TASKS, seeds=2, failures=0)
    old = trials.drop(columns=[c for c in ("dtype", "config_key") if c in trials])
    path = tmp_path / "old" / "trials.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pandas(old, preserve_index=False), path)
    loaded = load_results([str(path.parent)]).trials
    assert list(loaded.columns[: len(sweep_results.TRIALS_SCHEMA)]) == (
        sweep_results.TRIALS_SCHEMA.names
    )
    assert set(loaded["dtype"]) == {"fp32"} and set(loaded["selection_split"]) == {"val"}
    assert set(loaded["teacher_selection"]) == {"auc-first-tie"}
    same_config = loaded.groupby("config_key")["seed"].nunique()
    assert (same_config == 2).all()  # seeds share a config key, nothing else does
