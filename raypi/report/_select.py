"""Pick the reported metric and the study's main configuration out of a trials table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from raypi.methods import DEFAULT_LAMBDA, METHOD_TABLE
from raypi.report import _columns as col
from raypi.report import _labels, _settings

SELECTIONS = ("study", "final", "best")
"""``study``: teachers at their best validation epoch, every other model at its last epoch."""

DEFAULT_HEAD = "attention"
DEFAULT_TEXT_ENCODER = "cxr_bert"


def with_value(trials: pd.DataFrame, metric: str, selection: str = "study") -> pd.DataFrame:
    """Return the finished trials with a ``value`` column holding the reported metric.

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        selection: ``"study"``, ``"final"`` or ``"best"`` (see ``SELECTIONS``).

    Returns:
        Rows with status ``ok`` and a finite value.

    Raises:
        PooledSettingsError: Rows of one figure cell differ in another setting (lr, epochs,
            protocol, …): they must be shown apart, never averaged.
    """
    if metric not in ("auc", "auprc"):
        raise ValueError(f"unknown metric {metric!r}; known: auc, auprc")
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; known: {', '.join(SELECTIONS)}")
    final = pd.to_numeric(trials[f"{metric}_final"], errors="coerce")
    best = pd.to_numeric(trials[f"{metric}_best"], errors="coerce")
    if selection == "final":
        value = final
    elif selection == "best":
        value = best
    else:
        value = final.where(trials[col.METHOD] != "teacher", best)
    out = trials.assign(value=value.astype(float))
    ok = (out[col.STATUS].astype("string") == col.STATUS_OK).fillna(False)
    finished = out[ok & np.isfinite(out["value"])].reset_index(drop=True)
    _settings.check_not_pooled(finished)
    return finished


def _preferred(values: pd.Series, preferred: object | None) -> object | None:
    """Return ``preferred`` when present among ``values``, else the most frequent value."""
    present = values.dropna()
    if present.empty:
        return None
    if preferred is not None and (present == preferred).any():
        return preferred
    counts = present.value_counts()
    return sorted(counts[counts == counts.max()].index, key=str)[0]


def _task_tau(task: str) -> float | None:
    try:
        from raypi.tasks import get_task

        return float(get_task(task).tau)
    except Exception:  # noqa: BLE001 - tasks outside the registry have no default
        return None


def _default_lam() -> float:
    return float(DEFAULT_LAMBDA)


@dataclass(frozen=True)
class MainConfig:
    """The configuration of the main comparison for one task (others are ablations)."""

    head: object | None
    """Head of every model (``attention`` when present)."""
    text_encoder: object | None
    """Teacher text encoder (``cxr_bert`` when present)."""
    tau: object | None
    """Distillation temperature (the task spec's τ when present)."""
    lam: object | None
    """Imitation weight λ (``FitConfig``'s default when present)."""

    def describe(self) -> str:
        """Return a short text like ``Attention head, teacher text CXR-BERT, τ = 0.25, λ = 0.5``."""
        parts = []
        if self.head is not None:
            parts.append(_labels.head_title(str(self.head)))
        if self.text_encoder is not None:
            parts.append(f"teacher text {_labels.encoder_title(self.text_encoder)}")
        parts += [
            f"{name} = {value:g}"
            for name, value in (("τ", self.tau), ("λ", self.lam))
            if value is not None
        ]
        return ", ".join(parts)


def main_config(rows: pd.DataFrame, task: str) -> MainConfig:
    """Return the main configuration of ``task``: study defaults where present, else the mode.

    Args:
        rows: Finished trials of the task.
        task: Task name (its spec gives the default τ).

    Returns:
        The configuration.
    """
    students = rows[rows[col.METHOD].isin(_methods("distills"))]
    teachers = rows[rows[col.METHOD].isin(_methods("involves_report"))]
    return MainConfig(
        head=_preferred(rows[col.HEAD], DEFAULT_HEAD),
        text_encoder=_preferred(teachers[col.TEXT_ENCODER], DEFAULT_TEXT_ENCODER),
        tau=_preferred(pd.to_numeric(students[col.TAU], errors="coerce"), _task_tau(task)),
        lam=_preferred(pd.to_numeric(students[col.LAM], errors="coerce"), _default_lam()),
    )


def _methods(flag: str) -> tuple[str, ...]:
    """Return the methods of ``raypi.methods.METHOD_TABLE`` whose ``flag`` holds."""
    return tuple(m.name for m in METHOD_TABLE.values() if getattr(m, flag))


def _matches(series: pd.Series, value: object | None) -> pd.Series:
    """Return rows equal to ``value``; a missing cell matches anything (e.g. τ of a teacher)."""
    if value is None:
        return pd.Series(True, index=series.index)
    if isinstance(value, float):
        numbers = pd.to_numeric(series, errors="coerce")
        return numbers.isna() | np.isclose(numbers.fillna(np.nan), value)
    return series.isna() | (series.astype("string") == str(value)).fillna(False)


def select(rows: pd.DataFrame, config: MainConfig, vary: str | None = None) -> pd.DataFrame:
    """Return rows of the main configuration, letting column ``vary`` take any value.

    Args:
        rows: Finished trials.
        config: The main configuration.
        vary: A column among head, text_encoder, tau, lam left free (for an ablation).

    Returns:
        Matching rows: every method is matched only on the settings it uses.
    """
    uses = {
        col.HEAD: _methods("reads_image"),
        col.TEXT_ENCODER: _methods("involves_report"),
        col.TAU: _methods("distills"),
        col.LAM: _methods("distills"),
    }
    values = {col.HEAD: config.head, col.TEXT_ENCODER: config.text_encoder}
    values |= {col.TAU: config.tau, col.LAM: config.lam}
    keep = pd.Series(True, index=rows.index)
    for column, methods in uses.items():
        if column == vary:
            continue
        applies = rows[col.METHOD].isin(methods)
        keep &= ~applies | _matches(rows[column], values[column])
    return rows[keep]


def main_rows(
    rows: pd.DataFrame, methods: tuple[str, ...], vary: str | None = None
) -> pd.DataFrame:
    """Return each task's main-configuration rows of ``methods`` (``vary`` left free).

    Args:
        rows: Finished trials of any number of tasks.
        methods: Methods to keep.
        vary: Optional column left free (see ``select``).

    Returns:
        The selected rows.
    """
    parts = []
    for task, task_rows in rows.groupby(col.TASK, sort=True):
        chosen = select(task_rows, main_config(task_rows, str(task)), vary=vary)
        parts.append(chosen[chosen[col.METHOD].isin(methods)])
    return pd.concat(parts, ignore_index=True) if parts else rows.iloc[:0]
