"""Readers for publishers' tables (CSV/TSV, gzipped or not) that name the expected file on error."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from raypi.data.tables import TableError


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` if it is a file, else raise naming the published file expected.

    Args:
        path: Where the file should be.
        what: The dataset release it belongs to, e.g. ``"MIMIC-CXR-JPG 2.1.0"``.

    Returns:
        The path.

    Raises:
        TableError: If the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: missing; expected the {what} file {path.name} here")
    return path


def read_table(
    path: str | os.PathLike,
    what: str,
    columns: Sequence[str],
    dtype: dict | None = None,
    sep: str = ",",
) -> pd.DataFrame:
    """Read a published CSV/TSV (gzip by suffix) and check it has ``columns``.

    Args:
        path: The file.
        what: The release it belongs to (used in messages).
        columns: Columns the file must have (others are kept).
        dtype: Column dtypes passed to pandas.
        sep: Field separator.

    Returns:
        The table.

    Raises:
        TableError: If the file is missing, unreadable or lacks a column.
    """
    path = require_file(path, what)
    try:
        frame = pd.read_csv(path, sep=sep, dtype=dtype, low_memory=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise TableError(f"{path}: not a readable {what} table ({type(error).__name__})") from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise TableError(
            f"{path}: missing columns {missing} of the {what} file {path.name}; "
            f"found {list(frame.columns)[:20]}"
        )
    return frame


def rank_key(seed: int, ids: Iterable[str]) -> list[str]:
    """Return a deterministic pseudo-random sort key per id (sha256 of ``seed:id``)."""
    return [hashlib.sha256(f"{seed}:{value}".encode()).hexdigest() for value in ids]


def deterministic_order(frame: pd.DataFrame, column: str, seed: int) -> pd.DataFrame:
    """Return ``frame`` sorted by a seeded hash of ``column`` (stable across runs and machines)."""
    keys = rank_key(seed, frame[column].astype(str))
    return frame.assign(_rank=keys).sort_values("_rank", kind="stable").drop(columns="_rank")


def examples(values: Iterable, limit: int = 5) -> list[str]:
    """Return up to ``limit`` example ids (never text) for a summary entry."""
    out = []
    for value in values:
        out.append(str(value))
        if len(out) == limit:
            break
    return out
