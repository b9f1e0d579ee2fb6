"""Deviations from the study, named and switchable: the self-distillation teacher, the store's
settings on every trial row (never pooled by the report), and ``cls_lp`` refused on encoders
without a CLS token before anything runs."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raypi.features.store import write_manifest
from raypi.report import build_report
from raypi.report._settings import SETTINGS, arms, variants
from raypi.report.load import load_results
from raypi.report.synthetic import write_synthetic_results
from raypi.sweep import DataSource, Grid, SweepSpec, expand, spec_from_dict, stages
from raypi.sweep import results as sweep_results
from raypi.sweep.config import ConfigError
from raypi.sweep.store_settings import STORE_COLUMNS
from raypi.sweep.trainable import fit_config_of
from raypi.sweep.trial import INDEPENDENT_SEED_OFFSET

DEMO = DataSource("/data/demo", "/features/demo")


def _spec(store: str = "/features/demo", **changes) -> SweepSpec:
    grid = Grid(
        tasks=("demo_prognostic",),
        encoders=("tiny_vit",),
        methods=("image", "self_distill"),
        seeds=(0, 1),
        sizes=(100,),
        text_encoders=("tiny_bert",),
    )
    return SweepSpec("s", (replace(grid, **changes),), {"demo": DataSource("/data/demo", store)})


def test_same_seed_teacher_is_the_image_arm_and_keeps_older_keys():
    trials = expand(_spec())
    first, second = stages(trials)
    images = {t.seed: t for t in first}
    assert len(first) == 2  # the image-only arm teaches: no extra model
    for student in second:
        assert student.self_distill_teacher == "same_seed"
        assert student.teacher_key == images[student.seed].trial_key
        # Recording the default does not change the key results were stored under.
        assert student.trial_key == replace(student, self_distill_teacher=None).trial_key


def test_independent_teacher_is_another_image_model_with_its_own_seed(tmp_path):
    store = str(tmp_path / "features")
    write_manifest(store, "tiny_vit", {"has_cls": True})
    trials = expand(_spec(store, self_distill_teacher="independent"))
    first, second = stages(trials)
    by_key = {t.trial_key: t for t in first}
    arms_ = [t for t in first if t.init_seed is None]
    assert len(first) == 4 and len(arms_) == 2  # image arm + independent teacher per seed
    for student in second:
        teacher = by_key[student.teacher_key]
        assert student.self_distill_teacher == teacher.self_distill_teacher == "independent"
        assert teacher.method == "image" and teacher.seed == student.seed  # same split/subset
        assert teacher.init_seed == student.seed + INDEPENDENT_SEED_OFFSET
        assert fit_config_of(teacher, "cpu").seed == teacher.init_seed  # its own initialisation
        assert fit_config_of(student, "cpu").seed == student.seed
        same = next(t for t in arms_ if t.seed == student.seed)
        assert teacher.trial_key != same.trial_key
    assert len({t.trial_key for t in second}) == 2


def test_self_distill_teacher_in_yaml_and_bad_values_refused():
    values = {
        "name": "s",
        "defaults": {"encoders": ["tiny_vit"], "seeds": [0]},
        "grids": [{"tasks": ["demo_prognostic"], "self_distill_teacher": "independent"}],
    }
    assert spec_from_dict(values).grids[0].self_distill_teacher == "independent"
    values["grids"][0]["self_distill_teacher"] = "other_seed"
    with pytest.raises(ConfigError, match="self_distill_teacher.*same_seed"):
        spec_from_dict(values)


def test_cls_lp_is_refused_on_encoders_without_cls_before_anything_runs():
    values = {
        "name": "s",
        "grids": [{"tasks": ["demo_prognostic"], "encoders": ["tiny_vit", "tiny_resnet"],
                   "heads": ["attention", "cls_lp"]}],
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"grids\[0\]\.heads: .*cls_lp.*tiny_resnet") as error:
        spec_from_dict(values)
    assert "tiny_vit" not in str(error.value)
    with pytest.raises(ValueError, match="tiny_resnet"):
        expand(_spec(encoders=("tiny_resnet",), heads=("cls_lp",)))
    assert expand(_spec(heads=("cls_lp",)))  # a ViT has one


def test_store_settings_are_on_every_trial_row(tmp_path):
    store = str(tmp_path / "features")
    write_manifest(store, "tiny_vit", {"views": [0, 1, 2], "tokens": "all", "pool": 1,
                                       "weights_fingerprint": "abc123"})  # fmt: skip
    write_manifest(store, "tiny_bert", {"max_length": 64, "weights_fingerprint": "def456"})
    trials = expand(_spec(store, methods=("image", "teacher", "text")))
    rows = {t.method: sweep_results.trial_row("s", t.to_dict(), "ok") for t in trials}
    assert set(STORE_COLUMNS) <= set(sweep_results.TRIALS_SCHEMA.names)
    assert rows["image"]["store_views"] == 3 and rows["image"]["image_weights"] == "abc123"
    assert rows["image"]["text_max_length"] is None  # it reads no report
    assert rows["teacher"]["text_max_length"] == 64 and rows["teacher"]["image_tokens"] == "all"
    assert rows["text"]["image_weights"] is None and rows["text"]["text_weights"] == "def456"
    for row in rows.values():
        assert row["views"] is None and "self_distill_teacher" in row


@pytest.mark.parametrize(
    ("column", "value"),
    [("image_weights", "other"), ("store_views", 9), ("self_distill_teacher", "independent")],
)
def test_report_never_pools_trials_of_different_store_or_teacher(tmp_path, column, value):
    assert column in SETTINGS
    first = write_synthetic_results(str(tmp_path / "a"), tasks={"readmission": (211,)}, seeds=3,
                                    failures=0, sweep="a")  # fmt: skip
    second = tmp_path / "b" / "trials.parquet"
    write_synthetic_results(str(second.parent), tasks={"readmission": (211,)}, seeds=3,
                            failures=0, sweep="b")  # fmt: skip
    table = pq.read_table(second).to_pandas()
    table[column] = value
    table["trial_key"] = table["trial_key"] + "-b"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), second)
    trials = load_results([first, str(second.parent)]).trials
    labels = [label for label, _ in variants(trials)]
    assert len(set(labels)) == 2  # drawn apart, each labelled by its value
    index = build_report([first, str(second.parent)], str(tmp_path / "out"),
                         figures=("distillation",))  # fmt: skip
    text = open(index, encoding="utf-8").read()
    assert all(f"Distillation — {label}" in text for label in labels)


def test_independent_teachers_are_no_arm_of_the_report(tmp_path):
    folder = write_synthetic_results(str(tmp_path / "a"), tasks={"readmission": (211,)},
                                     seeds=2, failures=0)  # fmt: skip
    trials = load_results([folder]).trials
    helper = trials.iloc[[0]].assign(init_seed=1000, trial_key="helper")
    both = pd.concat([trials, helper], ignore_index=True)
    assert len(arms(both)) == len(trials)
