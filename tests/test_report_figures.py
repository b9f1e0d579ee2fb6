import pandas as pd
import pyarrow as pa
import pytest

from raypi import io
from raypi.report import FIGURES, load_results
from raypi.report.figures import render_one
from raypi.report.synthetic import synthetic_trials

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def holey_trials():
    """Synthetic trials with whole combinations removed."""
    trials = synthetic_trials(
        tasks={"readmission": (211, 741, 2119), "mimic_5x1200": (100, 400)},
        encoders=("rad_dino", "mrm"),
        seeds=3,
        failures=3,
    )
    gone = (
        # MRM has no teacher at all, RAD-DINO lacks the middle size of Readmission.
        ((trials["encoder"] == "mrm") & (trials["method"] == "teacher"))
        | ((trials["encoder"] == "rad_dino") & (trials["size"] == 741))
        # MIMIC has no distillation runs with other τ, λ or text encoders.
        | ((trials["task"] == "mimic_5x1200") & (trials["method"] != "image"))
    )
    # A single-seed cell: no interval can be computed there.
    single = (trials["encoder"] == "mrm") & (trials["size"] == 100) & (trials["seed"] > 0)
    return trials[~gone & ~single].reset_index(drop=True)


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_renders_with_missing_combinations(holey_trials, tmp_path, name):
    figure = render_one(name, holey_trials, "auc", str(tmp_path), "t", "study")
    assert figure.path is not None, figure.missing
    with open(figure.path, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC
    assert not any("could not be rendered" in note for note in figure.missing)
    assert figure.table is not None and not figure.table.empty


def test_missing_cells_are_named(holey_trials, tmp_path):
    distill = render_one("distillation", holey_trials, "auc", str(tmp_path), "t", "study")
    assert any("Teacher" in note and "MRM" in note for note in distill.missing), distill.missing
    curves = render_one("sample_efficiency", holey_trials, "auprc", str(tmp_path), "t", "study")
    assert any("single seed" in note and "MRM at 100" in note for note in curves.missing)
    assert "AUPRC" in curves.title


@pytest.mark.parametrize("name", list(FIGURES))
def test_figures_without_any_data_say_so(tmp_path, name):
    trials = synthetic_trials(tasks={"readmission": (211,)}, encoders=("mrm",), seeds=1)
    trials["status"] = "failed"
    figure = render_one(name, trials, "auc", str(tmp_path), "t", "study")
    assert figure.path is not None and figure.missing
    assert figure.table is None or figure.table.empty


def test_bootstrap_intervals_render(holey_trials, tmp_path):
    figure = render_one(
        "sample_efficiency", holey_trials, "auc", str(tmp_path), "bootstrap", "best"
    )
    assert "bootstrap" in figure.caption and figure.path


def test_loader_tolerates_missing_columns_and_dedupes(tmp_path):
    trials = synthetic_trials(tasks={"readmission": (211,)}, encoders=("mrm",), seeds=2, failures=0)
    partial = trials.drop(columns=["auprc_best", "tau", "sweep", "finished_at"])
    for name in ("one", "two"):  # the same trials twice: counted once
        io.write_parquet(pa.Table.from_pandas(partial), str(tmp_path / name / "trials.parquet"))
    results = load_results([str(tmp_path)])
    assert len(results.trials) == len(trials) and results.duplicates == len(trials)
    assert results.trials["auprc_best"].isna().all()
    assert {s.name for s in results.sweeps} == {"one", "two"}
    assert results.epochs.empty and results.sweeps[0].config_text is None


def test_loader_names_the_folder_without_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="trials.parquet"):
        load_results([str(tmp_path)])


def test_loader_prefers_finished_rows(tmp_path):
    trials = synthetic_trials(tasks={"readmission": (211,)}, encoders=("mrm",), seeds=1, failures=0)
    retried = trials.iloc[:1].assign(status="failed", auc_final=None)
    frame = pd.concat([trials, retried], ignore_index=True)
    io.write_parquet(pa.Table.from_pandas(frame), str(tmp_path / "trials.parquet"))
    loaded = load_results([str(tmp_path)]).trials
    assert (loaded["status"] == "ok").all() and len(loaded) == len(trials)
