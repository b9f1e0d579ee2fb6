"""Settings of the trials a report shows: never average two configurations, filter by value.

A figure cell (one bar, one point of a curve) is a task, encoder, text encoder, method, head,
size, λ and τ; its values are one per seed. Every other setting of a trial (learning rate,
epochs, views, dtype, the protocol, the self-distillation teacher, the feature store's
settings, …) must be the same across the seeds of a cell. Where
results of several settings meet, the report draws each setting as its own set of figures
(``variants``) and a figure builder refuses to pool them (``check_not_pooled``).
"""

from __future__ import annotations

import pandas as pd

from raypi.report import _columns as col

CELL = (col.TASK, col.ENCODER, col.TEXT_ENCODER, col.METHOD, col.HEAD, col.SIZE, col.LAM, col.TAU)
"""What tells figure cells apart (figures and ablations vary these)."""

_NOT_SETTINGS = {*CELL, col.SEED, col.TEACHER_KEY, col.DATASET, "dataset_root", "features"}
SETTINGS = (
    *(name for name in col.CONFIG_COLUMNS if name not in _NOT_SETTINGS),
    *col.STORE_COLUMNS,
)
"""Every other setting of a trial — its config's and its feature store's (views stored, tokens,
pooling, text length, weights): one value per cell, or the results are not comparable."""


class PooledSettingsError(ValueError):
    """Trials of different settings would be averaged into one figure cell."""


def _text(series: pd.Series) -> pd.Series:
    """Values as comparable text: numbers by value (1e-3 == 0.001), missing as ``None``."""
    numbers = pd.to_numeric(series, errors="coerce")
    as_text = series.astype(object).map(lambda v: "None" if pd.isna(v) else str(v))
    return as_text.where(numbers.isna(), numbers.map(lambda v: f"{v:g}"))


def differing(trials: pd.DataFrame) -> list[str]:
    """Return the settings that take more than one value inside some figure cell.

    Args:
        trials: Trials with the columns of ``trials.parquet``.

    Returns:
        Setting names, in ``SETTINGS`` order.
    """
    if trials.empty:
        return []
    cells = trials[list(CELL)].apply(_text)
    found = []
    for name in SETTINGS:
        if name not in trials:
            continue
        counts = cells.assign(_value=_text(trials[name])).groupby(list(CELL))["_value"].nunique()
        if (counts > 1).any():
            found.append(name)
    return found


def check_not_pooled(trials: pd.DataFrame) -> None:
    """Raise when some figure cell holds trials of different settings.

    Args:
        trials: The trials a figure would summarise.

    Raises:
        PooledSettingsError: Naming the setting, its values and how to choose one.
    """
    names = differing(trials)
    if not names:
        return
    name = names[0]
    values = sorted(set(_text(trials[name])))
    raise PooledSettingsError(
        f"these results mix trials that differ in {', '.join(names)} within one figure cell "
        f"({name} takes {', '.join(values)}): averaging them would pool different settings; "
        f"choose one with --where {name}={values[0]}, or let the report draw each separately"
    )


STUDY_VALUES = {
    col.SELECTION_SPLIT: "val",
    col.TEACHER_SELECTION: "auc",
    col.SELF_DISTILL_TEACHER: "same_seed",
}
"""The study's value of each protocol setting: the variant holding them all comes first."""

_WORDS = {
    (col.SELECTION_SPLIT, "val"): "choices on the validation split (the study's protocol)",
    (col.TEACHER_SELECTION, "auc"): "kept epoch of the highest validation AUC (the study's)",
    (col.TEACHER_SELECTION, "loss"): "kept epoch of the lowest loss",
    (col.TEACHER_SELECTION, "last"): "the last epoch kept",
    (col.TEACHER_SELECTION, "auc-first-tie"): "kept epoch of the highest AUC, first of ties",
    (col.SELF_DISTILL_TEACHER, "same_seed"): "self-distilled from the same seed's image-only model",
    (col.SELF_DISTILL_TEACHER, "independent"): "self-distilled from an independent image-only "
    "model",
}


def _words(name: str, value: str, rows: pd.DataFrame) -> str:
    """Return a setting's value as a reader would say it (``name = value`` where unknown)."""
    if name == col.SELECTION_SPLIT and value == "inner":
        shares = sorted(set(pd.to_numeric(rows["inner_share"], errors="coerce").dropna()))
        share = "/".join(f"{100 * v:g} %" for v in shares) or "an"
        return f"epochs chosen on an inner {share} split of the training patients"
    return _WORDS.get((name, value), f"{name} = {value}")


def _said_by_split(name: str, names: list[str]) -> bool:
    """``inner_share`` is worded with the selection split (``None`` under the study's)."""
    return name == "inner_share" and col.SELECTION_SPLIT in names


def _study_rank(names: list[str], values: tuple) -> int:
    return -sum(STUDY_VALUES.get(n) == v for n, v in zip(names, values))


def variants(trials: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Split trials into groups of one value per differing setting, each with a label.

    Args:
        trials: The trials table.

    Returns:
        ``(label, rows)`` pairs, the study's protocol first, labels in words (e.g. ``epochs
        chosen on an inner 20 % split of the training patients``); one pair with an empty label
        when nothing differs.
    """
    names = differing(trials)
    if not names:
        return [("", trials)]
    keys = trials[names].apply(_text)
    groups = []
    for values, rows in trials.groupby([keys[n] for n in names], sort=True):
        values = values if isinstance(values, tuple) else (values,)
        said = [(n, v) for n, v in zip(names, values) if not _said_by_split(n, names)]
        label = ", ".join(_words(name, value, rows) for name, value in said)
        groups.append((_study_rank(names, values), label, rows))
    return [(label, rows) for _, label, rows in sorted(groups, key=lambda g: g[0])]


def where(trials: pd.DataFrame, filters: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Keep the trials whose columns equal the given values (``KEY=VALUE``, all must hold).

    Args:
        trials: The trials table.
        filters: Conditions like ``lr=1e-4`` or ``selection_split=inner``; ``None`` matches
            a missing value; numbers compare by value.

    Returns:
        The matching rows.

    Raises:
        ValueError: A condition is not ``KEY=VALUE`` or names no column.
    """
    keep = pd.Series(True, index=trials.index)
    for condition in filters:
        name, sep, value = condition.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ValueError(f"--where takes KEY=VALUE, got {condition!r}")
        if name not in trials:
            known = ", ".join(c for c in col.TRIAL_COLUMNS if c in trials)
            raise ValueError(f"--where {condition!r}: no column {name!r}; known: {known}")
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        wanted = f"{number:g}" if pd.notna(number) else value
        keep &= _text(trials[name]) == wanted
    return trials[keep]


def label_slug(label: str) -> str:
    """Return a file-name-safe form of a variant label (``lr-0.001_selection_split-inner``)."""
    cleaned = label.replace(" = ", "-").replace(", ", "_")
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in cleaned)


def arms(trials: pd.DataFrame) -> pd.DataFrame:
    """Return the trials that are arms of a figure (independent teachers left out).

    An independent self-distillation teacher is an image-only model with its own
    ``init_seed``, trained only to teach; it is no arm of the study's figures.
    """
    if col.INIT_SEED not in trials:
        return trials
    return trials[trials[col.INIT_SEED].isna()]
