"""Where a sweep stands, from its results folder alone (running or finished, local or ``s3://``).

Reads the per-trial part files (so a running sweep is seen as it is) and the resolved
``sweep.yaml`` (to know what is not started yet); never starts Ray, never writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import yaml

from raypi import io
from raypi.sweep import results

NOT_STARTED = "not started"


@dataclass(frozen=True)
class SweepStatus:
    """A sweep's progress."""

    counts: pd.DataFrame
    """Per task × method: ``ok``, ``failed``, ``not started`` and ``total``."""
    failures: pd.DataFrame
    """Failed trials: task, method, encoder, size, seed, trial key and error."""
    compute_seconds: float
    """Training seconds spent by the recorded trials."""
    seconds_left: float | None
    """Wall time left at the rate trials finished so far (None when it cannot be told)."""
    note: str = ""
    """What could not be known (e.g. no ``sweep.yaml``: trials not started are unknown)."""


def expected_trials(folder: str) -> tuple[pd.DataFrame | None, str]:
    """Return every trial the folder's ``sweep.yaml`` defines (task, method, key), and a note."""
    from raypi.sweep.config import spec_from_dict
    from raypi.sweep.grid import expand

    path = io.join(folder, "sweep.yaml")
    if not io.exists(path):
        return None, "no sweep.yaml: trials not started yet are unknown"
    resolved = yaml.safe_load(io.read_bytes(path)) or {}
    try:
        spec = spec_from_dict(resolved["sweep"])
        trials = expand(spec)
    except (KeyError, ValueError, OSError) as error:
        return None, f"sweep.yaml could not be expanded ({error}): trials not started are unknown"
    frame = pd.DataFrame(
        {"trial_key": [t.trial_key for t in trials], "task": [t.task for t in trials],
         "method": [t.method for t in trials]}
    )  # fmt: skip
    note = "a λ/τ search samples its students: they are counted as they run" if "search" in (
        resolved
    ) else ""  # fmt: skip
    return frame, note


def sweep_status(folder: str) -> SweepStatus:
    """Return where the sweep in ``folder`` stands.

    Args:
        folder: A sweep's results folder (local or ``s3://``).

    Returns:
        The status.
    """
    recorded = results.read_parts(folder)
    expected, note = expected_trials(folder)
    keys = ["task", "method"]
    status = recorded[keys + ["trial_key", "status"]]
    if expected is not None:
        missing = expected[~expected["trial_key"].isin(set(recorded["trial_key"]))]
        status = pd.concat([status, missing.assign(status=NOT_STARTED)], ignore_index=True)
    counts = status.pivot_table(index=keys, columns="status", values="trial_key",
                                aggfunc="count", fill_value=0)  # fmt: skip
    for column in (results.OK, results.FAILED, NOT_STARTED):
        if column not in counts:
            counts[column] = 0
    counts = counts[[results.OK, results.FAILED, NOT_STARTED]].astype(int)
    counts["total"] = counts.sum(axis=1)
    failed = recorded[recorded["status"] == results.FAILED]
    failures = failed[["task", "method", "encoder", "size", "seed", "trial_key", "error"]]
    seconds = float(pd.to_numeric(recorded["train_seconds"], errors="coerce").fillna(0).sum())
    left = _seconds_left(recorded, int((status["status"] == NOT_STARTED).sum()))
    return SweepStatus(counts.reset_index(), failures.reset_index(drop=True), seconds, left, note)


def _seconds_left(recorded: pd.DataFrame, remaining: int) -> float | None:
    """Remaining trials over the rate at which trials have finished (wall clock)."""
    finished = pd.to_datetime(recorded["finished_at"], errors="coerce", utc=True).dropna()
    started = pd.to_datetime(recorded["started_at"], errors="coerce", utc=True).dropna()
    if remaining == 0:
        return 0.0
    if len(finished) < 2 or started.empty:
        return None
    span = (finished.max() - started.min()).total_seconds()
    return remaining * span / len(finished) if span > 0 else None


def format_status(folder: str, status: SweepStatus) -> str:
    """Return the status as text for the console."""
    lines = [f"sweep results: {folder}", status.counts.to_string(index=False)]
    total = status.counts[[results.OK, results.FAILED, NOT_STARTED]].sum()
    lines.append(
        f"{total[results.OK]} ok, {total[results.FAILED]} failed, {total[NOT_STARTED]} not "
        f"started; compute spent {status.compute_seconds / 3600:.2f} h"
        + (
            f"; about {status.seconds_left / 60:.1f} min left at the current rate"
            if status.seconds_left is not None
            else ""
        )
    )
    if not status.failures.empty:
        lines += ["failures:", status.failures.to_string(index=False)]
    if status.note:
        lines.append(f"note: {status.note}")
    return "\n".join(lines)
