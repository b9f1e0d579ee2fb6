import numpy as np
import pandas as pd
import pytest
from PIL import Image

from raypi import io
from raypi.data import images, tables
from raypi.data.tables import TableError
from raypi.tasks import get_task

SECRET = "SECRET REPORT TEXT 1234"  # must never show up in an error message
SPEC = get_task("demo_auxiliary")  # three classes


def _dataset(n=6):
    return pd.DataFrame(
        {
            "image_id": [f"img{i}" for i in range(n)],
            "patient_id": [f"pat{i // 2}" for i in range(n)],
            "image_path": [f"images/img{i}.png" for i in range(n)],
            "report": [SECRET] * (n - 1) + [None],
            "age": np.arange(n, dtype=float),
        }
    )


def _task(dataset):
    return dataset[["image_id", "patient_id"]].assign(label=np.arange(len(dataset)) % 3)


@pytest.fixture()
def root(tmp_path):
    dataset = _dataset()
    for path in dataset["image_path"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / path)
    tables.write_dataset(str(tmp_path), dataset)
    tables.write_task(str(tmp_path), SPEC, _task(dataset), dataset)
    tables.write_meta(str(tmp_path), {"name": "t", "tasks": [SPEC.name]})
    return tmp_path


def _write_raw(path, frame):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def _error(call) -> str:
    with pytest.raises(TableError) as info:
        call()
    message = str(info.value)
    assert SECRET not in message
    return message


def test_round_trip(root):
    dataset = tables.read_dataset(root)
    assert dataset["image_id"].tolist() == [f"img{i}" for i in range(6)]
    assert dataset["report"].isna().tolist() == [False] * 5 + [True]
    task = tables.read_task(root, SPEC.name)
    assert task["label"].dtype == np.int64
    assert task["label"].tolist() == [0, 1, 2, 0, 1, 2]
    assert tables.read_meta(root)["tasks"] == [SPEC.name]
    assert images.check_images(root, dataset) == []
    assert tables.read_image(root, dataset["image_path"][0]).shape == (8, 8)


def test_missing_column_names_file_and_column(root):
    _write_raw(root / "dataset.parquet", _dataset().drop(columns="patient_id"))
    message = _error(lambda: tables.read_dataset(root))
    assert "dataset.parquet" in message and "missing columns ['patient_id']" in message


def test_duplicate_image_id_names_rows(root):
    frame = _dataset()
    frame.loc[4, "image_id"] = "img1"
    _write_raw(root / "dataset.parquet", frame)
    message = _error(lambda: tables.read_dataset(root))
    assert "unique" in message and "2 rows: 1 (image_id='img1'), 4 (image_id='img1')" in message


def test_null_patient_id_names_rows(root):
    frame = _dataset()
    frame.loc[3, "patient_id"] = None
    _write_raw(root / "dataset.parquet", frame)
    message = _error(lambda: tables.read_dataset(root))
    assert "null or empty patient_id" in message and "3 (image_id='img3')" in message


def test_non_text_report_is_refused(root):
    frame = _dataset()
    frame["report"] = [1, 2, 3, 4, 5, 6]
    _write_raw(root / "dataset.parquet", frame)
    message = _error(lambda: tables.read_dataset(root))
    assert "report must be text or null" in message


def test_label_outside_classes_names_rows(root):
    task = _task(_dataset())
    task.loc[2, "label"] = 3
    task.loc[5, "label"] = -1
    _write_raw(root / "tasks" / f"{SPEC.name}.parquet", task)
    message = _error(lambda: tables.read_task(root, SPEC.name))
    assert f"tasks/{SPEC.name}.parquet" in message
    assert (
        "0..2" in message and "2 (image_id='img2')" in message and "5 (image_id='img5')" in message
    )


def test_task_image_not_in_dataset(root):
    task = _task(_dataset())
    task.loc[1, "image_id"] = "ghost"
    _write_raw(root / "tasks" / f"{SPEC.name}.parquet", task)
    message = _error(lambda: tables.read_task(root, SPEC.name))
    assert "not in dataset.parquet" in message and "'ghost'" in message


def test_task_patient_must_match_dataset(root):
    task = _task(_dataset())
    task.loc[0, "patient_id"] = "someone-else"
    _write_raw(root / "tasks" / f"{SPEC.name}.parquet", task)
    message = _error(lambda: tables.read_task(root, SPEC.name))
    assert "patient_id differs" in message and "img0" in message


def test_bad_split_value(root):
    task = _task(_dataset()).assign(split=["train", "val", "train", "test", "train", "val"])
    _write_raw(root / "tasks" / f"{SPEC.name}.parquet", task)
    assert "split must be one of" in _error(lambda: tables.read_task(root, SPEC.name))


def test_missing_and_unreadable_files(root):
    assert "file not found" in _error(lambda: tables.read_task(root, "demo_diagnostic"))
    (root / "dataset.parquet").write_bytes(b"not parquet")
    assert "not a readable Parquet file" in _error(lambda: tables.read_dataset(root))
    (root / "meta.json").unlink()
    assert "meta.json" in _error(lambda: tables.read_meta(root))


def test_writer_refuses_bad_table(tmp_path):
    frame = _dataset()
    frame.loc[0, "image_id"] = "img1"
    _error(lambda: tables.write_dataset(str(tmp_path), frame))
    assert not (tmp_path / "dataset.parquet").exists()


def test_check_images_finds_missing_and_undecodable(root):
    (root / "images" / "img2.png").unlink()
    (root / "images" / "img4.png").write_bytes(b"\x89PNG broken")
    dataset = tables.read_dataset(root)
    bad = images.check_images(root, dataset)
    assert [row["image_id"] for row in bad] == ["img2", "img4"]
    assert "missing file images/img2.png" in bad[0]["reason"]
    assert "undecodable" in bad[1]["reason"]
    # Existence only: the broken file is not opened.
    assert [row["image_id"] for row in images.check_images(root, dataset, decode=False)] == ["img2"]
    message = _error(lambda: images.require_images(root, dataset))
    assert "2 bad images" in message and "img4" in message


def test_tables_on_s3(s3_server, root):
    remote = "s3://raypi-test/tables-test"
    dataset = tables.read_dataset(root)
    tables.write_dataset(remote, dataset)
    tables.write_task(remote, SPEC, tables.read_task(root, SPEC.name), dataset)
    io.write_bytes(f"{remote}/images/img0.png", (root / "images" / "img0.png").read_bytes())
    assert tables.read_dataset(remote)["image_id"].tolist() == dataset["image_id"].tolist()
    assert tables.read_task(remote, SPEC.name)["label"].tolist() == [0, 1, 2, 0, 1, 2]
    bad = images.check_images(remote, dataset)
    assert [row["image_id"] for row in bad] == [f"img{i}" for i in range(1, 6)]
