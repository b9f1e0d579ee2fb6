"""Readable notes on what a figure lacks: absent combinations and intervals without seeds."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd


def absent_values(
    frame: pd.DataFrame,
    column: str,
    expected: Sequence[object],
    label: Callable[[object], str] = str,
) -> list[str]:
    """Return labels of ``expected`` values that no row of ``frame`` has in ``column``."""
    present = set(frame[column].dropna().tolist()) if column in frame else set()
    return [label(value) for value in expected if value not in present]


def lacks(where: str, what: str, values: list[str]) -> list[str]:
    """Return ``["<where>: no <what> for a, b"]`` or [] when ``values`` is empty."""
    return [f"{where}: no {what} for {', '.join(values)}"] if values else []


def single_seed(
    summary: pd.DataFrame, where: str, describe: Callable[[pd.Series], str]
) -> list[str]:
    """Return a note for groups with one seed only (their interval cannot be computed)."""
    alone = summary[summary["n"] == 1]
    if alone.empty:
        return []
    items = ", ".join(describe(row) for _, row in alone.iterrows())
    return [f"{where}: a single seed (no interval) for {items}"]


def seed_phrase(summary: pd.DataFrame) -> str:
    """Return ``"5 seeds"`` or ``"3–5 seeds"`` from the ``n`` column of a summary."""
    counts = pd.to_numeric(summary["n"], errors="coerce").dropna()
    if counts.empty:
        return "no seeds"
    low, high = int(counts.min()), int(counts.max())
    return f"{high} seed{'s' if high != 1 else ''}" if low == high else f"{low}–{high} seeds"
