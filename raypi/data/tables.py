"""Dataset and task tables: the one place their layout is named, with validating readers/writers.

A dataset root ``DIR`` (local or ``s3://``) holds ``DIR/dataset.parquet`` (one row per image),
``DIR/tasks/<task>.parquet`` (labels) and ``DIR/meta.json``. Every reader checks schema and
content and raises ``TableError`` naming the file, the offending rows and what was expected.
Report text is patient data: no message here ever contains it.
"""

from __future__ import annotations

import io as _io
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from raypi import io
from raypi.tasks import TaskSpec, get_task

DATASET_FILE = "dataset.parquet"
META_FILE = "meta.json"
TASKS_DIR = "tasks"
DATASET_COLUMNS = ("image_id", "patient_id", "image_path", "report")
"""Columns every dataset table has (metadata columns may follow)."""
TASK_COLUMNS = ("image_id", "patient_id", "label")
"""Columns every task table has; ``split`` ("train"/"val") is optional."""
SPLIT_VALUES = ("train", "val")
_SHOWN = 5  # offending rows named in a message


class TableError(ValueError):
    """A dataset or task table breaks its contract; the message names file, rows and rule."""


def dataset_file(root: str | os.PathLike) -> str:
    """Return the path of a dataset root's dataset table."""
    return io.join(root, DATASET_FILE)


def task_file(root: str | os.PathLike, task: str) -> str:
    """Return the path of a dataset root's table for ``task``."""
    return io.join(root, TASKS_DIR, f"{task}.parquet")


def _rows(where: Iterable[bool] | pd.Series, frame: pd.DataFrame, column: str = "image_id") -> str:
    """Name the first few offending rows by position (0-based) and by ``column`` value."""
    mask = np.asarray(where, dtype=bool)
    positions = np.flatnonzero(mask)
    shown = ", ".join(f"{pos} ({column}={frame[column].iloc[pos]!r})" for pos in positions[:_SHOWN])
    more = f" and {len(positions) - _SHOWN} more" if len(positions) > _SHOWN else ""
    return f"{len(positions)} rows: {shown}{more}"


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], file: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise TableError(
            f"{file}: missing columns {missing}; expected at least {list(columns)}, "
            f"found {list(frame.columns)}"
        )


def _require_ids(frame: pd.DataFrame, file: str, columns: Iterable[str]) -> None:
    """Ids must be present (non-null, non-empty) and ``image_id`` unique."""
    for column in columns:
        bad = frame[column].isna() | (frame[column].astype(str).str.len() == 0)
        if bad.any():
            raise TableError(f"{file}: null or empty {column} in {_rows(bad, frame)}")
    duplicated = frame["image_id"].duplicated(keep=False)
    if duplicated.any():
        raise TableError(
            f"{file}: image_id must be unique; duplicates in {_rows(duplicated, frame)}"
        )


def validate_dataset(frame: pd.DataFrame, file: str = DATASET_FILE) -> pd.DataFrame:
    """Check a dataset table and return it with id columns as ``str``.

    Args:
        frame: The table.
        file: Name used in error messages.

    Returns:
        The validated table.

    Raises:
        TableError: On missing columns, null ids or paths, or duplicate ``image_id``.
    """
    _require_columns(frame, DATASET_COLUMNS, file)
    _require_ids(frame, file, ("image_id", "patient_id", "image_path"))
    frame = frame.reset_index(drop=True)
    for column in ("image_id", "patient_id", "image_path"):
        frame[column] = frame[column].astype(str)
    bad = frame["report"].map(lambda value: not (isinstance(value, str) or pd.isna(value)))
    if bad.any():
        raise TableError(
            f"{file}: report must be text or null; other values in {_rows(bad, frame)}"
        )
    return frame


def validate_task(
    frame: pd.DataFrame,
    spec: TaskSpec,
    dataset: pd.DataFrame | None = None,
    file: str | None = None,
) -> pd.DataFrame:
    """Check a task table against its spec (and dataset) and return it normalised.

    Args:
        frame: The task table.
        spec: The task's spec (classes, fixed split).
        dataset: The dataset table; when given, every ``image_id`` must be in it with the
            same ``patient_id``.
        file: Name used in error messages.

    Returns:
        The table with ``image_id``/``patient_id`` as ``str`` and ``label`` as int64.

    Raises:
        TableError: On any broken rule; the message names the rows.
    """
    file = file or f"{TASKS_DIR}/{spec.name}.parquet"
    _require_columns(frame, TASK_COLUMNS, file)
    _require_ids(frame, file, ("image_id", "patient_id"))
    frame = frame.reset_index(drop=True)
    frame["image_id"] = frame["image_id"].astype(str)
    frame["patient_id"] = frame["patient_id"].astype(str)
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = labels.isna() | (labels != labels.round()) | (labels < 0) | (labels >= spec.num_classes)
    if bad.any():
        raise TableError(
            f"{file}: label must be a class index 0..{spec.num_classes - 1} of "
            f"{list(spec.classes)}; bad labels in {_rows(bad, frame)}"
        )
    frame["label"] = labels.astype("int64")
    if "split" in frame.columns:
        bad = ~frame["split"].isin(SPLIT_VALUES)
        if bad.any():
            raise TableError(
                f"{file}: split must be one of {SPLIT_VALUES}; see {_rows(bad, frame)}"
            )
        sides = frame.groupby("patient_id")["split"].nunique()
        both = frame["patient_id"].isin(sides.index[sides > 1])
        if both.any():
            raise TableError(
                f"{file}: a patient's images must all be on one side of the split; "
                f"{int((sides > 1).sum())} patients are on both, in {_rows(both, frame)}"
            )
    if dataset is not None:
        _check_against_dataset(frame, dataset, file)
    return frame


def _check_against_dataset(frame: pd.DataFrame, dataset: pd.DataFrame, file: str) -> None:
    patients = pd.Series(dataset["patient_id"].to_numpy(), index=dataset["image_id"])
    unknown = ~frame["image_id"].isin(patients.index)
    if unknown.any():
        raise TableError(f"{file}: image_id not in {DATASET_FILE}: {_rows(unknown, frame)}")
    mismatch = frame["patient_id"].to_numpy() != patients.loc[frame["image_id"]].to_numpy()
    if mismatch.any():
        raise TableError(
            f"{file}: patient_id differs from {DATASET_FILE} in {_rows(mismatch, frame)}"
        )


def _read_table(path: str) -> pd.DataFrame:
    if not io.exists(path):
        raise TableError(f"{path}: file not found")
    try:
        return io.read_parquet(path).to_pandas()
    except (OSError, pa.ArrowException) as error:
        raise TableError(f"{path}: not a readable Parquet file ({type(error).__name__})") from None


def read_dataset(root: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a dataset root's dataset table.

    Args:
        root: Dataset root, local or ``s3://``.

    Returns:
        The dataset table (one row per image).

    Raises:
        TableError: If the file is missing, unreadable or breaks the contract.
    """
    path = dataset_file(root)
    return validate_dataset(_read_table(path), file=path)


def read_task(
    root: str | os.PathLike, task: str | TaskSpec, dataset: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Read and validate a task table against its spec and the dataset table.

    Args:
        root: Dataset root, local or ``s3://``.
        task: Task name or spec.
        dataset: The already-read dataset table; read from ``root`` when None.

    Returns:
        The task table (``image_id``, ``patient_id``, ``label`` [, ``split``]).

    Raises:
        TableError: If the file is missing, unreadable or breaks the contract.
    """
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    path = task_file(root, spec.name)
    dataset = read_dataset(root) if dataset is None else dataset
    return validate_task(_read_table(path), spec, dataset, file=path)


def read_meta(root: str | os.PathLike) -> dict:
    """Return a dataset root's ``meta.json`` (``name``, ``tasks``, …).

    Raises:
        TableError: If it is missing or lacks ``name``/``tasks``.
    """
    path = io.join(root, META_FILE)
    if not io.exists(path):
        raise TableError(f"{path}: file not found; is {root} a dataset root?")
    meta = io.read_json(path)
    missing = [key for key in ("name", "tasks") if key not in meta]
    if missing:
        raise TableError(f"{path}: missing keys {missing}")
    return meta


def write_dataset(root: str | os.PathLike, frame: pd.DataFrame) -> str:
    """Validate and write a dataset table; return its path."""
    path = dataset_file(root)
    frame = validate_dataset(frame.copy(), file=path)
    io.write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def write_task(
    root: str | os.PathLike, spec: TaskSpec, frame: pd.DataFrame, dataset: pd.DataFrame
) -> str:
    """Validate a task table against its spec and dataset, write it, and return its path."""
    path = task_file(root, spec.name)
    frame = validate_task(frame.copy(), spec, dataset, file=path)
    io.write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def write_meta(root: str | os.PathLike, meta: dict) -> str:
    """Write ``meta.json`` (must hold ``name`` and ``tasks``); return its path."""
    missing = [key for key in ("name", "tasks") if key not in meta]
    if missing:
        raise TableError(f"{META_FILE}: missing keys {missing}")
    path = io.join(root, META_FILE)
    io.write_json(path, meta)
    return path


def image_location(root: str | os.PathLike, image_path: str) -> str:
    """Return where an image lives: ``image_path`` itself if a URI/absolute, else under ``root``.

    Args:
        root: The image root (``image_root``): the dataset root unless ``meta.json`` or
            ``--image-root`` names another.
        image_path: The table's ``image_path``.
    """
    if io.is_remote(image_path) or os.path.isabs(image_path):
        return image_path
    return io.join(root, image_path)


def decode_image(data: bytes) -> np.ndarray:
    """Decode PNG/JPEG bytes to a uint8 array ([H, W] grayscale or [H, W, 3]).

    Raises:
        ValueError: If the bytes are not a decodable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(_io.BytesIO(data)) as image:
            image = image.convert("L") if image.mode in ("L", "I", "I;16", "1", "P") else image
            array = np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"undecodable image ({type(error).__name__})") from None
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return array


def read_image(root: str | os.PathLike, image_path: str) -> np.ndarray:
    """Read and decode one image of a dataset root (see ``decode_image``)."""
    return decode_image(io.read_bytes(image_location(root, image_path)))
