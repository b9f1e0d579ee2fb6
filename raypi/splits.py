"""Seeded, patient-grouped train/validation splits, nested training subsets, and a leak check.

Randomness here is SHA-256 of (purpose, task, seed, id): every patient or image gets a fixed
pseudo-random key and orders are sorts by key. No ``hash()``, no global or library RNG state,
no dependence on row order: a split is the same in every process, on every machine, under any
Python or NumPy version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from raypi.tasks import TaskSpec

REQUIRED_COLUMNS = ("image_id", "patient_id", "label")


@dataclass(frozen=True)
class Split:
    """A train/validation split of one task table."""

    task: str
    """Task name the split was made for."""
    seed: int
    """Seed the split was made with (the same split for every seed under a fixed split)."""
    train_ids: tuple[str, ...]
    """Training image ids, sorted."""
    val_ids: tuple[str, ...]
    """Validation image ids, sorted."""
    train_labels: tuple[int, ...]
    """Labels of ``train_ids``, in the same order."""
    val_labels: tuple[int, ...]
    """Labels of ``val_ids``, in the same order."""


def stable_seed(*parts: str | int) -> int:
    """Return a 64-bit integer derived from ``parts`` that is the same everywhere.

    Args:
        *parts: Strings and integers, e.g. ``("readmission", 3, "split")``.

    Returns:
        An integer usable as a ``SeedSequence`` entropy.
    """
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def hash_unit(*parts: str | int) -> float:
    """Return a number in [0, 1) fixed by ``parts`` (SHA-256; the same everywhere).

    Args:
        *parts: Strings and integers, e.g. ``("split", "readmission", 3, "patient-17")``.

    Returns:
        The pseudo-random number.
    """
    return (stable_seed(*parts) >> 11) / float(1 << 53)  # 53 bits: exact in a float, < 1


def _keys(ids, *parts: str | int) -> np.ndarray:
    return np.array([hash_unit(*parts, str(item)) for item in ids])


def rng_for(*parts: str | int) -> np.random.Generator:
    """Return a generator seeded only by ``parts`` (no global state).

    Args:
        *parts: Strings and integers naming what the randomness is for.

    Returns:
        A fresh ``numpy`` generator.
    """
    return np.random.default_rng(np.random.SeedSequence(stable_seed(*parts)))


def _check_columns(task_df: pd.DataFrame) -> None:
    missing = [column for column in REQUIRED_COLUMNS if column not in task_df.columns]
    if missing:
        raise ValueError(f"task table lacks columns {missing}; expected {list(REQUIRED_COLUMNS)}")
    if task_df["image_id"].duplicated().any():
        raise ValueError("task table has duplicate image_id values")


def _patient_table(task_df: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: image count and stratum (the patient's most common label)."""
    pairs = task_df.groupby(["patient_id", "label"]).size().rename("n").reset_index()
    # Ties go to the smallest label, so the stratum never depends on row order.
    pairs = pairs.sort_values(["patient_id", "n", "label"], ascending=[True, False, True])
    stratum = pairs.drop_duplicates("patient_id").set_index("patient_id")["label"]
    images = task_df.groupby("patient_id").size()
    return pd.DataFrame({"images": images, "stratum": stratum.loc[images.index]}).sort_index()


def _grouped_val_patients(task_df: pd.DataFrame, val_share: float, *key: str | int) -> set[str]:
    """Pick validation patients stratum by stratum until each holds ``val_share`` of its images."""
    patients = _patient_table(task_df)
    chosen: set[str] = set()
    for _, group in patients.groupby("stratum", sort=True):
        order = np.argsort(_keys(group.index, *key), kind="stable")
        counts = group["images"].to_numpy()[order]
        target = val_share * counts.sum()
        before = np.cumsum(counts) - counts
        # A patient joins validation while the images already chosen fall short of the target.
        take = before + counts / 2 <= target
        chosen.update(group.index.to_numpy()[order][take])
    return chosen


def _fixed_val_patients(task_df: pd.DataFrame, spec: TaskSpec) -> set[str]:
    """Validation patients of a fixed per-class split without a ``split`` column."""
    per_class = spec.fixed_split["val_per_class"]
    total = task_df.groupby("label").size()
    share = float(min(1.0, per_class * len(total) / max(1, total.sum())))
    return _grouped_val_patients(task_df, share, "fixed-split", spec.name)


def _split_from_column(task_df: pd.DataFrame, spec: TaskSpec) -> pd.Series:
    values = set(task_df["split"].dropna().unique())
    if task_df["split"].isna().any() or not values <= {"train", "val"}:
        raise ValueError(f"task {spec.name!r}: 'split' must be 'train' or 'val' on every row")
    return task_df["split"] == "val"


def split_task(task_df: pd.DataFrame, spec: TaskSpec, seed: int) -> Split:
    """Split a task table into training and validation images.

    Patients never straddle the split. With ``spec.val_share`` each stratum (a patient's most
    common label) gives that share of its images to validation, drawn anew per seed. With
    ``spec.fixed_split`` the table's ``split`` column is used when present; otherwise a
    seed-independent grouped split of the same per-class validation size is drawn.

    Args:
        task_df: Task table with ``image_id``, ``patient_id``, ``label`` (and maybe ``split``).
        spec: The task's spec.
        seed: Seed; the same seed always gives the same split.

    Returns:
        The split, with ids sorted.
    """
    _check_columns(task_df)
    frame = task_df.sort_values("image_id", kind="stable").reset_index(drop=True)
    if spec.fixed_split is not None and "split" in frame.columns:
        is_val = _split_from_column(frame, spec)
    else:
        if spec.fixed_split is not None:
            val_patients = _fixed_val_patients(frame, spec)
        else:
            val_patients = _grouped_val_patients(
                frame, spec.val_share, "split", spec.name, int(seed)
            )
        is_val = frame["patient_id"].isin(val_patients)
    train, val = frame[~is_val], frame[is_val]
    leaks = find_leaks(train, val)
    if leaks:
        raise ValueError(f"task {spec.name!r}: {len(leaks)} patients on both sides of the split")
    return Split(
        task=spec.name,
        seed=int(seed),
        train_ids=tuple(train["image_id"].astype(str)),
        val_ids=tuple(val["image_id"].astype(str)),
        train_labels=tuple(int(label) for label in train["label"]),
        val_labels=tuple(int(label) for label in val["label"]),
    )


def _pool(split_or_train_df: Split | pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(split_or_train_df, Split):
        return np.asarray(split_or_train_df.train_ids), np.asarray(split_or_train_df.train_labels)
    frame = split_or_train_df.sort_values("image_id", kind="stable")
    labels = frame["label"].to_numpy() if "label" in frame.columns else None
    return frame["image_id"].astype(str).to_numpy(), labels


def nested_order(split_or_train_df: Split | pd.DataFrame, seed: int) -> list[str]:
    """Return the training pool in the seed's order; every prefix is a training subset.

    Classes are interleaved so that every prefix holds each class in about its share of
    the pool (a stratified subset at every size).

    Args:
        split_or_train_df: A ``Split`` or a training table (``image_id``, optional ``label``).
        seed: Seed of the subsets.

    Returns:
        All training image ids, ordered.
    """
    ids, labels = _pool(split_or_train_df)
    order_keys = _keys(ids, "subset", int(seed))
    if labels is None:
        return [str(i) for i in ids[np.argsort(order_keys, kind="stable")]]
    jitter = _keys(ids, "subset-jitter", int(seed))
    keys = np.empty(len(ids))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        ranks = np.argsort(np.argsort(order_keys[members], kind="stable"), kind="stable")
        # Each class's i-th pick sits at (i + jitter) / class size on a shared [0, 1) axis.
        keys[members] = (ranks + jitter[members]) / len(members)
    return [str(i) for i in ids[np.lexsort((ids, keys))]]


def training_subset(split_or_train_df: Split | pd.DataFrame, size: int, seed: int) -> list[str]:
    """Return ``size`` training image ids; for one seed a smaller size is inside a larger one.

    Args:
        split_or_train_df: A ``Split`` or a training table (``image_id``, optional ``label``).
        size: Number of images wanted.
        seed: Seed of the subset.

    Returns:
        The chosen image ids (the first ``size`` of ``nested_order``).

    Raises:
        ValueError: If ``size`` exceeds the training pool.
    """
    order = nested_order(split_or_train_df, seed)
    if not 0 < size <= len(order):
        raise ValueError(f"training size {size} is outside 1..{len(order)} (the training pool)")
    return order[:size]


def inner_pool(train_df: pd.DataFrame, share: float, task: str, seed: int) -> frozenset[str]:
    """Return the training images held out for choices under the honest protocol.

    Patients of the training pool are drawn stratum by stratum (as validation patients are)
    with a key of their own, so the held-out images are patient-grouped and stratified, the
    same in every process, and nested across sizes: a trial's selection rows are its training
    subset's images inside this pool, so a smaller subset's are inside a larger one's.

    Args:
        train_df: Training rows of the split (``image_id``, ``patient_id``, ``label``).
        share: Share of the pool's images per stratum to hold out, in (0, 1).
        task: Task name (part of the key).
        seed: Seed of the split (part of the key).

    Returns:
        Image ids of the held-out pool.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"inner share must lie in (0, 1), got {share}")
    patients = _grouped_val_patients(train_df, share, "inner", task, int(seed))
    held = train_df["patient_id"].isin(patients)
    return frozenset(train_df.loc[held, "image_id"].astype(str))


def split_frames(task_df: pd.DataFrame, split: Split) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the training and validation rows of ``task_df`` in the split's order.

    Args:
        task_df: The task table the split was made from.
        split: The split.

    Returns:
        ``(train_df, val_df)``.
    """
    frame = task_df.set_index("image_id", drop=False)
    return frame.loc[list(split.train_ids)].reset_index(drop=True), frame.loc[
        list(split.val_ids)
    ].reset_index(drop=True)


def find_leaks(train_df: pd.DataFrame, val_df: pd.DataFrame) -> list[str]:
    """Return the patients that have images on both sides of a split.

    Args:
        train_df: Training rows with a ``patient_id`` column.
        val_df: Validation rows with a ``patient_id`` column.

    Returns:
        Sorted patient ids found in both tables (empty for a clean split).
    """
    shared = set(train_df["patient_id"].astype(str)) & set(val_df["patient_id"].astype(str))
    return sorted(shared)


def class_counts(labels: Sequence[int], num_classes: int) -> list[int]:
    """Return how many of ``labels`` fall in each class.

    Args:
        labels: Class indices.
        num_classes: Number of classes.

    Returns:
        Counts per class index.
    """
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).tolist()
