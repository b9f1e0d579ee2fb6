"""Bad input, generated as a table of mutations of valid inputs: each is refused clearly.

Sweep configs go through the sweep scripts' command line (exit code 2, a message naming the
file, the block and the field, nothing written, Ray never started); dataset tables through
``raypi extract`` (exit code 2 before Ray starts); task tables through ``tables.read_task``
(the error names the file and the rows).
"""

import copy
import runpy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from raypi.cli import main as raypi_main
from raypi.data import tables
from raypi.data.demo import build_demo
from raypi.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
BASE_CONFIG = yaml.safe_load((REPO / "sweeps/configs/distill_grid_demo.yaml").read_text())


def _set(path: str, value):
    """Return a mutation that sets ``path`` (dots, [i] for list items) to ``value``."""

    def mutate(config):
        keys = path.replace("]", "").replace("[", ".").split(".")
        node = config
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        last = keys[-1]
        node[int(last) if last.isdigit() else last] = value
        return config

    return mutate


CONFIG_MUTATIONS = [
    ("unknown top-level key", _set("grid", []), "unknown sweep config keys ['grid']"),
    ("unknown grid field", _set("grids[0].learning_rate", 0.1), "unknown grid fields"),
    ("unknown task", _set("grids[0].tasks", ["demo_prognosis"]), "unknown task 'demo_prognosis'"),
    ("unknown image encoder", _set("defaults.encoders", ["rad_dino2"]), "known image encoder"),
    ("text encoder as image", _set("defaults.encoders", ["demo_bert"]), "known image encoder"),
    ("image encoder as text", _set("defaults.text_encoders", ["tiny_vit"]), "known text encoder"),
    ("unknown method", _set("grids[0].methods", ["distil"]), "unknown methods"),
    ("unknown head", _set("defaults.heads", ["atention"]), "heads: 'atention' is not an image"),
    ("unknown size mode", _set("grids[0].size_mode", "fractions"), "size_mode must be one of"),
    ("size pick not in task", _set("defaults.size_picks", [0, 7]), "size_picks: [7] not among"),
    ("seed of wrong type", _set("defaults.seeds", [0, "one"]), "seeds: expected a list of int"),
    ("lambda above 1", _set("defaults.lams", [1.5]), "lams: [1.5] outside [0.0, 1.0]"),
    ("lambda below 0", _set("defaults.lams", [-0.1]), "outside [0.0, 1.0]"),
    ("tau not positive", _set("defaults.taus", [0.0]), "taus: [0.0] must be > 0"),
    ("lr of wrong type", _set("defaults.lr", "fast"), "lr: expected float"),
    ("batch size zero", _set("grids[1].batch_size", 0), "batch_size: 0 must be > 0"),
    ("epochs as float", _set("grids[0].epochs", 2.5), "epochs: expected int"),
    ("views negative", _set("defaults.views", -1), "views: -1 must be >= 0"),
    ("unknown protocol", _set("grids[0].selection_split", "test"), "selection_split must be"),
    ("unknown teacher rule", _set("grids[0].teacher_selection", "best"), "teacher_selection"),
    ("inner share 1.5", _set("grids[0].inner_share", 1.5), "inner_share: 1.5 outside"),
    ("bool as seed", _set("defaults.seeds", [True]), "seeds: expected a list of int"),
    ("grids not a list", _set("grids", {"tasks": ["demo_auxiliary"]}), "grids: expected a list"),
    ("no name", _set("name", ""), "needs a name"),
]


def _run_script(config_path: Path, storage: Path, capsys) -> tuple[int, str]:
    module = runpy.run_path(str(REPO / "sweeps" / "distill_grid.py"))
    code = module["main"](["--config", str(config_path), "--storage", str(storage)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), CONFIG_MUTATIONS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_bad_sweep_config_exits_2_naming_the_field(case, mutate, expected, tmp_path, capsys):
    import ray

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(mutate(copy.deepcopy(BASE_CONFIG))))
    code, err = _run_script(path, tmp_path / "results", capsys)
    assert code == 2, err
    assert str(path) in err and expected in err, err
    assert not (tmp_path / "results").exists() and not ray.is_initialized()


@pytest.mark.parametrize("text", ["name: [unclosed", "- just\n- a list\n"])
def test_config_that_is_not_a_sweep_mapping_exits_2(text, tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    code, err = _run_script(path, tmp_path / "results", capsys)
    assert code == 2 and str(path) in err and "Traceback" not in err


def test_the_unmutated_config_passes_the_same_checks(tmp_path):
    from raypi.sweep.config import load_spec

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(BASE_CONFIG))
    assert load_spec(str(path)).name == BASE_CONFIG["name"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad") / "demo"
    build_demo(root, n=40, seed=2)
    return root


def _dataset_mutations():
    def drop(column):
        return lambda frame: frame.drop(columns=[column])

    def blank(column, row=3):
        def mutate(frame):
            frame.loc[row, column] = None
            return frame

        return mutate

    def duplicate(frame):
        frame.loc[5, "image_id"] = frame.loc[4, "image_id"]
        return frame

    def numeric_report(frame):
        frame["report"] = range(len(frame))  # a column of numbers where text belongs
        return frame

    return [
        ("no image_id column", drop("image_id"), "missing columns ['image_id']"),
        ("no patient_id column", drop("patient_id"), "missing columns ['patient_id']"),
        ("no report column", drop("report"), "missing columns ['report']"),
        ("null patient_id", blank("patient_id"), "null or empty patient_id in 1 rows: 3"),
        ("null image_path", blank("image_path"), "null or empty image_path in 1 rows: 3"),
        ("duplicate image_id", duplicate, "image_id must be unique; duplicates in 2 rows: 4"),
        ("report not text", numeric_report, "report must be text or null"),
    ]


DATASET_MUTATIONS = _dataset_mutations()


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), DATASET_MUTATIONS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_bad_dataset_table_is_refused_by_extract(case, mutate, expected, demo, tmp_path, capsys):
    import ray

    root = tmp_path / "demo"
    root.mkdir()
    (root / "tasks").mkdir()
    frame = mutate(pd.read_parquet(demo / "dataset.parquet"))
    frame.to_parquet(root / "dataset.parquet")
    out = tmp_path / "store"
    code = raypi_main(
        ["extract", "--dataset", str(root), "--encoders", "tiny_vit", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "dataset.parquet" in err and expected in err, err
    assert not out.exists() and not ray.is_initialized()


def _task_mutations():
    def set_label(value, row=1):
        def mutate(frame):
            kind = str if isinstance(value, str) else float
            frame["label"] = frame["label"].astype(kind)  # one Parquet type per column
            frame.loc[row, "label"] = value
            return frame

        return mutate

    def foreign_image(frame):
        frame.loc[0, "image_id"] = "not-in-the-dataset"
        return frame

    def other_patient(frame):
        frame.loc[0, "patient_id"] = "someone-else"
        return frame

    def duplicate(frame):
        frame.loc[2, "image_id"] = frame.loc[1, "image_id"]
        return frame

    def bad_split(frame):
        frame["split"] = "train"
        frame.loc[3, "split"] = "test"
        return frame

    def straddling_patient(frame):
        frame["split"] = "train"
        first = frame["patient_id"].value_counts().index[0]  # a patient with several images
        frame.loc[frame.index[frame["patient_id"] == first][0], "split"] = "val"
        return frame

    return [
        ("label NaN", set_label(float("nan")), "bad labels in 1 rows: 1"),
        ("label out of range", set_label(5), "label must be a class index 0..1"),
        ("label negative", set_label(-1), "bad labels in 1 rows: 1"),
        ("label not integer", set_label(0.5), "bad labels in 1 rows: 1"),
        ("label text", set_label("yes"), "bad labels in 1 rows: 1"),
        ("no label column", lambda f: f.drop(columns=["label"]), "missing columns ['label']"),
        ("image not in dataset", foreign_image, "image_id not in dataset.parquet"),
        ("patient differs from dataset", other_patient, "patient_id differs from dataset"),
        ("duplicate image_id", duplicate, "image_id must be unique"),
        ("unknown split value", bad_split, "split must be one of"),
        ("patient on both sides of the split", straddling_patient, "patients are on both"),
    ]


TASK_MUTATIONS = _task_mutations()


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), TASK_MUTATIONS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_bad_task_table_names_the_file_and_rows(case, mutate, expected, demo, tmp_path):
    task = "demo_diagnostic"
    source = tables.task_file(str(demo), task)
    frame = mutate(pd.read_parquet(source))
    root = tmp_path / "demo"
    (root / "tasks").mkdir(parents=True)
    (root / "dataset.parquet").write_bytes((demo / "dataset.parquet").read_bytes())
    frame.to_parquet(tables.task_file(str(root), task))
    with pytest.raises(tables.TableError) as error:
        tables.read_task(str(root), get_task(task))
    assert f"tasks/{task}.parquet" in str(error.value) and expected in str(error.value)


def _weights_mutations():
    """Wrong files given as ``--weights tiny_vit=…``: (case, make the file, expected words)."""

    def missing(folder):
        return folder / "missing.pth"

    def text(folder):
        (folder / "notes.txt").write_text("not a checkpoint")
        return folder / "notes.txt"

    def other_model(folder):
        import torch

        from raypi.encoders import get_encoder

        torch.save(get_encoder("tiny_resnet").build(None).state_dict(), folder / "resnet.pth")
        return folder / "resnet.pth"

    def empty_folder(folder):
        (folder / "empty").mkdir()
        return folder / "empty"

    return [
        ("no such file", missing, "weights not found at"),
        ("not a checkpoint", text, "not a readable torch checkpoint"),
        ("another model's checkpoint", other_model, "does not fit the architecture"),
        ("an empty folder", empty_folder, "expected one .pth/.pt/.bin/.ckpt/.tar file, found []"),
    ]


WEIGHTS_MUTATIONS = _weights_mutations()


@pytest.mark.parametrize(
    ("case", "make", "expected"), WEIGHTS_MUTATIONS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_wrong_weights_file_is_refused_by_extract(case, make, expected, demo, tmp_path, capsys):
    import ray

    weights = make(tmp_path)
    out = tmp_path / "store"
    code = raypi_main(["extract", "--dataset", str(demo), "--encoders", "tiny_vit",
                       "--weights", f"tiny_vit={weights}", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and weights.name in err and expected in err, err
    assert not out.exists() and not ray.is_initialized()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from raypi.sweep.synthetic import make_synthetic_study

    folder = tmp_path_factory.mktemp("stores")
    return make_synthetic_study(str(folder), image_encoders=("tiny_vit", "tiny_resnet"), views=1)


def _store_mutations():
    """Feature stores that cannot serve a sweep of tiny_vit + tiny_bert teachers."""
    import json
    import shutil

    def remove(store):
        shutil.rmtree(store / "tiny_vit")

    def other_encoder(store):
        shutil.rmtree(store / "tiny_vit")
        shutil.copytree(store / "tiny_resnet", store / "tiny_vit")

    def text_for_image(store):
        shutil.rmtree(store / "tiny_vit")
        shutil.copytree(store / "tiny_bert", store / "tiny_vit")

    def manifest(change):
        def mutate(store):
            path = store / "tiny_vit" / "manifest.json"
            path.write_text(json.dumps(change(json.loads(path.read_text()))))

        return mutate

    return [
        ("encoder missing", remove, "no features of encoder 'tiny_vit'"),
        ("another encoder's store", other_encoder, "manifest names encoder 'tiny_resnet'"),
        ("text features for images", text_for_image, "holds text features; asked for image"),
        ("unfinished extraction", manifest(lambda m: {**m, "views": []}), "no completed"),
        ("too few views", manifest(lambda m: {**m, "views": [0]}), "view"),
        ("another store format", manifest(lambda m: {**m, "format": 99}), "store format 99"),
        ("text encoder missing", lambda store: shutil.rmtree(store / "tiny_bert"),
         "no features of encoder 'tiny_bert'"),
    ]  # fmt: skip


STORE_MUTATIONS = _store_mutations()


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), STORE_MUTATIONS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_features_that_cannot_serve_a_sweep_exit_2_before_ray(
    case, mutate, expected, study, tmp_path, capsys
):
    import shutil

    import ray

    store = tmp_path / "features"
    shutil.copytree(study.features, store)
    mutate(store)
    config = {"name": "stores", "data": {"demo": {"root": study.root, "features": str(store)}},
              "defaults": {"encoders": ["tiny_vit"], "text_encoders": ["tiny_bert"], "views": 1,
                           "seeds": [0], "sizes": [40]},
              "grids": [{"tasks": ["demo_prognostic"],
                         "methods": ["image", "teacher"]}]}  # fmt: skip
    path = tmp_path / "stores.yaml"
    path.write_text(yaml.safe_dump(config))
    code, err = _run_script(path, tmp_path / "results", capsys)
    assert code == 2 and "cannot serve its trials" in err and str(store) in err, err
    assert expected in err, err
    assert not ray.is_initialized()
    written = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert written == [], written
