import argparse
import json

import pytest

from raypi.commands import tasks as tasks_command
from raypi.tasks import TASKS, TaskSpec, TrainingSize, _register, get_task, list_tasks

# The study's numbers, copied by hand from PAPER.md (its Tasks table and Tables 2-6).
PAPER = {
    "mimic_5x1200": dict(
        dataset="mimic",
        kind="diagnostic",
        classes=5,
        images=6000,
        val=None,
        sizes=[(100, 100), (200, 100), (400, 100), (1000, 50), (2000, 50), (4000, 50)],
        tau=2.5,
    ),
    "age": dict(
        dataset="mimic",
        kind="auxiliary",
        classes=5,
        images=35242,
        val=0.10,
        sizes=[(317, 100), (792, 100), (1585, 100), (3171, 50)],
        fractions=[0.01, 0.025, 0.05, 0.10],
        tau=0.25,
    ),
    "discharge_3day": dict(
        dataset="mimic",
        kind="prognostic",
        classes=2,
        images=18490,
        val=0.10,
        sizes=[(82, 100), (165, 100), (416, 100), (829, 50), (1662, 50), (4145, 50)],
        fractions=[0.005, 0.01, 0.025, 0.05, 0.10, 0.25],
        tau=0.25,
    ),
    "ph_12month": dict(
        dataset="inspect",
        kind="prognostic",
        classes=2,
        images=5449,
        val=0.25,
        sizes=[(204, 100), (408, 100), (715, 100), (1022, 100), (2044, 50)],
        fractions=[0.05, 0.10, 0.175, 0.25, 0.50],
        tau=0.25,
    ),
    "readmission": dict(
        dataset="inspect",
        kind="prognostic",
        classes=2,
        images=5651,
        val=0.25,
        sizes=[(211, 100), (423, 100), (741, 100), (1059, 100), (2119, 50)],
        fractions=[0.05, 0.10, 0.175, 0.25, 0.50],
        tau=0.25,
        seeds=10,
    ),
    "pulmonary_embolism": dict(
        dataset="inspect",
        kind="diagnostic",
        classes=2,
        images=9375,
        val=0.25,
        sizes=[(351, 100), (3515, 50)],
        fractions=[0.05, 0.50],
        tau=0.25,
    ),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_study_task_equals_paper(name):
    spec, paper = get_task(name), PAPER[name]
    assert (spec.dataset, spec.kind, spec.num_classes) == (
        paper["dataset"],
        paper["kind"],
        paper["classes"],
    )
    assert spec.images == paper["images"]
    assert spec.val_share == paper["val"]
    assert [(size.samples, size.epochs) for size in spec.sizes] == paper["sizes"]
    if "fractions" in paper:
        assert [size.fraction for size in spec.sizes] == paper["fractions"]
    assert spec.tau == paper["tau"]
    assert spec.seeds == paper.get("seeds", 5)


def test_registry_holds_study_and_demo_tasks():
    assert set(TASKS) == set(PAPER) | {"demo_diagnostic", "demo_auxiliary", "demo_prognostic"}
    assert [spec.kind for spec in list_tasks("demo")] == ["diagnostic", "auxiliary", "prognostic"]
    mimic = get_task("mimic_5x1200")
    assert mimic.fixed_split == {"train_per_class": 1000, "val_per_class": 200}
    assert mimic.classes == (
        "Atelectasis",
        "Cardiomegaly",
        "Edema",
        "Pleural Effusion",
        "Consolidation",
    )
    # 1000 train + 200 validation per class: 6,000 images.
    assert (1000 + 200) * mimic.num_classes == mimic.images


def test_fraction_sizes_match_study_counts_on_study_pools():
    # The study's pools: 90% (MIMIC) or 75% (INSPECT) of the task's images.
    for name in ("age", "readmission", "ph_12month", "pulmonary_embolism"):
        spec = get_task(name)
        pool = int(spec.images * (1 - spec.val_share))
        sizes = spec.training_sizes(pool, mode="fraction")
        for derived, study in zip(sizes, spec.sizes):
            assert abs(derived.samples - study.samples) <= 2, (name, derived, study)
            assert derived.epochs == study.epochs


def test_unknown_task_lists_known_names():
    with pytest.raises(KeyError, match="readmission"):
        get_task("nope")


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="duplicate"):
        _register((get_task("age"), get_task("age")))


def test_epochs_for_listed_between_and_below():
    spec = get_task("readmission")
    assert spec.epochs_for(211) == 100
    assert spec.epochs_for(TrainingSize(2119, 0)) == 50
    assert spec.epochs_for(1500) == 100
    assert spec.epochs_for(5000) == 50
    assert spec.epochs_for(10) == 100


def test_training_sizes_study_mode_keeps_what_fits():
    spec = get_task("mimic_5x1200")
    assert [size.samples for size in spec.training_sizes(5000)] == [100, 200, 400, 1000, 2000, 4000]
    assert [size.samples for size in spec.training_sizes(1500)] == [100, 200, 400, 1000]
    assert spec.training_sizes(50) == ()


def test_training_sizes_fraction_mode_scales_with_pool():
    spec = get_task("readmission")
    sizes = spec.training_sizes(1000, mode="fraction")
    assert [(size.samples, size.epochs) for size in sizes] == [
        (50, 100),
        (100, 100),
        (175, 100),
        (250, 100),
        (500, 50),
    ]
    with pytest.raises(ValueError, match="mode"):
        spec.training_sizes(1000, mode="percent")
    with pytest.raises(ValueError, match="no fractions"):
        get_task("demo_diagnostic").training_sizes(900, mode="fraction")


def test_demo_sizes_fit_default_pool():
    for spec in list_tasks("demo"):
        assert [size.samples for size in spec.training_sizes(900)] == [100, 200, 400]
        assert spec.val_share == 0.25


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(kind="other"), "kind"),
        (dict(classes=("one",)), "two classes"),
        (dict(fixed_split={"train_per_class": 1, "val_per_class": 1}), "exactly one"),
        (dict(sizes=(TrainingSize(200, 1), TrainingSize(100, 1))), "increasing"),
    ],
)
def test_spec_rejects_inconsistent_fields(change, message):
    fields = dict(
        name="t",
        title="T",
        dataset="demo",
        kind="diagnostic",
        classes=("a", "b"),
        val_share=0.25,
        fixed_split=None,
        sizes=(TrainingSize(100, 10),),
        tau=1.0,
    )
    with pytest.raises(ValueError, match=message):
        TaskSpec(**{**fields, **change})


def _run_tasks_command(argv, capsys):
    parser = argparse.ArgumentParser()
    tasks_command.register(parser.add_subparsers())
    args = parser.parse_args(["tasks", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_tasks_command_prints_table(capsys):
    out = _run_tasks_command([], capsys)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["name", "dataset", "kind"]
    assert len(lines) == 1 + len(TASKS)
    readmission = next(line for line in lines if line.startswith("readmission"))
    assert "25%" in readmission and "211→100" in readmission and "2119→50" in readmission


def test_tasks_command_json_for_one_dataset(capsys):
    rows = json.loads(_run_tasks_command(["--dataset", "inspect", "--json"], capsys))
    assert [row["name"] for row in rows] == ["ph_12month", "readmission", "pulmonary_embolism"]
    assert rows[0]["tau"] == "0.25"


def test_raypi_tasks_via_cli(capsys):
    from raypi.cli import main

    assert main(["tasks", "--dataset", "demo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == ["demo_diagnostic", "demo_auxiliary", "demo_prognostic"]
    assert rows[0]["sizes (samples→epochs)"] == "100→60, 200→45, 400→30"
