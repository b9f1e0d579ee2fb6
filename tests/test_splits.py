import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from raypi.splits import (
    _patient_table,
    find_leaks,
    nested_order,
    split_frames,
    split_task,
    stable_seed,
    training_subset,
)
from raypi.tasks import get_task


def _task_table(patients=400, seed=0):
    """Patients with 1-4 images each; three classes with shares ~0.6/0.3/0.1."""
    rng = np.random.default_rng(seed)
    rows = []
    for patient in range(patients):
        label = int(rng.choice(3, p=[0.6, 0.3, 0.1]))
        for image in range(int(rng.integers(1, 5))):
            # Most images of a patient share its label; some differ.
            image_label = label if rng.random() < 0.8 else int(rng.integers(3))
            rows.append((f"img-{patient:04d}-{image}", f"pat-{patient:04d}", image_label))
    frame = pd.DataFrame(rows, columns=["image_id", "patient_id", "label"])
    # Shuffle the rows: splits must not depend on row order.
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def table():
    return _task_table()


@pytest.mark.parametrize("task", ["demo_auxiliary", "readmission", "age"])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_is_patient_disjoint_and_complete(table, task, seed):
    spec = get_task(task)
    frame = table.assign(label=table["label"] % spec.num_classes)
    split = split_task(frame, spec, seed)
    train, val = split_frames(frame, split)
    assert find_leaks(train, val) == []
    assert sorted(split.train_ids + split.val_ids) == sorted(frame["image_id"])
    assert list(split.train_ids) == sorted(split.train_ids)
    assert len(split.val_ids) == pytest.approx(spec.val_share * len(frame), rel=0.12)


def test_split_is_stratified(table):
    split = split_task(table, get_task("demo_auxiliary"), seed=3)
    overall = np.bincount(table["label"], minlength=3) / len(table)
    val = np.bincount(split.val_labels, minlength=3) / len(split.val_ids)
    train = np.bincount(split.train_labels, minlength=3) / len(split.train_ids)
    assert np.abs(val - overall).max() < 0.04
    assert np.abs(train - overall).max() < 0.02


def test_split_depends_on_seed_not_row_order(table):
    spec = get_task("demo_prognostic")
    frame = table.assign(label=table["label"] % 2)
    first = split_task(frame, spec, 5)
    assert split_task(frame.iloc[::-1], spec, 5) == first
    other = split_task(frame, spec, 6)
    assert set(other.val_ids) != set(first.val_ids)


_CHILD = """
import json, sys
import pandas as pd
from raypi.splits import split_task, training_subset
from raypi.tasks import get_task
frame = pd.read_json(sys.argv[1], orient="records")
frame["image_id"] = frame["image_id"].astype(str)
frame["patient_id"] = frame["patient_id"].astype(str)
split = split_task(frame, get_task("readmission"), 4)
print(json.dumps([split.val_ids, training_subset(split, 50, 4)]))
"""


def test_split_is_identical_across_processes(table, tmp_path):
    frame = table.assign(label=table["label"] % 2)
    path = tmp_path / "task.json"
    frame.to_json(path, orient="records")
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outputs.append(json.loads(run.stdout))
    split = split_task(frame, get_task("readmission"), 4)
    here = [list(split.val_ids), training_subset(split, 50, 4)]
    assert outputs[0] == outputs[1] == here


def test_stable_seed_is_pinned():
    # A pinned value: changing the derivation would silently change every published split.
    assert stable_seed("readmission", 0, "split") == 1537596616277559168
    assert stable_seed("a", 1) != stable_seed("a", 2)


def test_split_and_subset_are_pinned():
    # Hard-coded outputs: any change to the derivation would silently change published splits.
    rows = [(f"i{k}", f"p{k // 2}", k % 2) for k in range(24)]
    frame = pd.DataFrame(rows, columns=["image_id", "patient_id", "label"])
    split = split_task(frame, get_task("readmission"), 0)
    assert split.val_ids == ("i12", "i13", "i6", "i7", "i8", "i9")
    assert training_subset(split, 6, 0) == ["i2", "i21", "i10", "i17", "i0", "i3"]


def test_patient_stratum_ties_go_to_smallest_label():
    frame = pd.DataFrame(
        {"image_id": ["a", "b", "c"], "patient_id": ["p", "p", "q"], "label": [1, 0, 1]}
    )
    assert _patient_table(frame)["stratum"].to_dict() == {"p": 0, "q": 1}
    assert _patient_table(frame.iloc[::-1])["stratum"].to_dict() == {"p": 0, "q": 1}


def test_subsets_are_nested_and_stratified(table):
    split = split_task(table, get_task("demo_auxiliary"), seed=0)
    labels = dict(zip(split.train_ids, split.train_labels))
    pool = np.bincount(split.train_labels, minlength=3) / len(split.train_ids)
    previous: set[str] = set()
    for size in (20, 50, 100, 200, 400):
        subset = training_subset(split, size, seed=2)
        assert len(subset) == len(set(subset)) == size
        assert previous <= set(subset)
        previous = set(subset)
        shares = np.bincount([labels[i] for i in subset], minlength=3) / size
        assert np.abs(shares - pool).max() <= 1.5 / size + 0.01
    assert set(training_subset(split, 100, seed=3)) != set(training_subset(split, 100, seed=2))


def test_subset_from_dataframe_matches_split(table):
    spec = get_task("demo_auxiliary")
    split = split_task(table, spec, seed=0)
    train, _ = split_frames(table, split)
    assert nested_order(train.iloc[::-1], 9) == nested_order(split, 9)
    assert training_subset(train, 30, 9) == training_subset(split, 30, 9)


def test_subset_larger_than_pool_raises(table):
    split = split_task(table, get_task("demo_auxiliary"), seed=0)
    with pytest.raises(ValueError, match="training pool"):
        training_subset(split, len(split.train_ids) + 1, seed=0)


def _mimic_table(with_split):
    rows = []
    for label in range(5):
        for index in range(12):
            split = "val" if index < 2 else "train"
            rows.append((f"m{label}-{index:02d}", f"p{label}-{index:02d}", label, split))
    frame = pd.DataFrame(rows, columns=["image_id", "patient_id", "label", "split"])
    return frame if with_split else frame.drop(columns="split")


def test_fixed_split_column_is_used_for_every_seed():
    spec = get_task("mimic_5x1200")
    frame = _mimic_table(with_split=True)
    expected = tuple(sorted(frame.loc[frame["split"] == "val", "image_id"]))
    for seed in (0, 1, 2):
        split = split_task(frame, spec, seed)
        assert split.val_ids == expected
        assert np.bincount(split.val_labels).tolist() == [2] * 5
        assert np.bincount(split.train_labels).tolist() == [10] * 5


def test_fixed_split_without_column_is_seed_independent():
    spec = get_task("mimic_5x1200")
    # 1,200 images per class as in the study: 200 per class must go to validation.
    rows = [(f"i{c}-{k}", f"p{c}-{k}", c) for c in range(5) for k in range(1200)]
    frame = pd.DataFrame(rows, columns=["image_id", "patient_id", "label"])
    first = split_task(frame, spec, 0)
    assert split_task(frame, spec, 1).val_ids == first.val_ids
    assert np.bincount(first.val_labels).tolist() == [200] * 5


def test_bad_split_column_raises():
    frame = _mimic_table(with_split=True)
    frame.loc[3, "split"] = "test"
    with pytest.raises(ValueError, match="'train' or 'val'"):
        split_task(frame, get_task("mimic_5x1200"), 0)


def test_find_leaks_names_shared_patients():
    train = pd.DataFrame({"image_id": ["a", "b", "c"], "patient_id": ["p1", "p2", "p3"]})
    val = pd.DataFrame({"image_id": ["d", "e", "f"], "patient_id": ["p3", "p4", "p1"]})
    assert find_leaks(train, val) == ["p1", "p3"]
    assert find_leaks(train, val.iloc[1:2]) == []


def test_leaky_fixed_split_is_refused():
    frame = _mimic_table(with_split=True)
    frame.loc[frame["image_id"] == "m0-05", "patient_id"] = "p0-00"  # p0-00 is in val
    with pytest.raises(ValueError, match="1 patients on both sides"):
        split_task(frame, get_task("mimic_5x1200"), 0)


def test_missing_columns_raise():
    with pytest.raises(ValueError, match="patient_id"):
        split_task(pd.DataFrame({"image_id": ["a"], "label": [0]}), get_task("age"), 0)


def _pool_table(patients=120, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(patients):
        label = int(rng.integers(0, 3))
        for image in range(int(rng.integers(1, 4))):
            rows.append({"image_id": f"p{p}-{image}", "patient_id": f"p{p}", "label": label})
    return pd.DataFrame(rows)


def test_inner_pool_is_patient_grouped_stratified_deterministic_and_nested():
    from raypi.splits import inner_pool

    train = _pool_table()
    pool = inner_pool(train, 0.25, "demo_diagnostic", 3)
    assert pool == inner_pool(train.sample(frac=1, random_state=1), 0.25, "demo_diagnostic", 3)
    assert pool != inner_pool(train, 0.25, "demo_diagnostic", 4)
    held = train[train["image_id"].isin(pool)]
    assert not set(held["patient_id"]) & set(train.loc[~train["image_id"].isin(pool), "patient_id"])
    for _, group in train.groupby("label"):
        share = group["image_id"].isin(pool).mean()
        assert 0.15 < share < 0.35, share
    subsets = [set(training_subset(train, size, 3)) & pool for size in (40, 80, 160)]
    assert subsets[0] <= subsets[1] <= subsets[2]
    with pytest.raises(ValueError, match="inner share"):
        inner_pool(train, 1.0, "demo_diagnostic", 3)
