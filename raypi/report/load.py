"""Read one or more sweep result folders (local or ``s3://``) into pandas tables."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import yaml

from raypi import io
from raypi.report import _columns as col
from raypi.sweep import results as _results


@dataclass(frozen=True)
class SweepInfo:
    """What the report says about one results folder."""

    name: str
    """Sweep name (the ``sweep`` column, else the folder name)."""
    path: str
    """The results folder as given."""
    config_text: str | None
    """Content of ``sweep.yaml`` (None when absent)."""
    trials: int
    """Trial rows in the folder."""
    failed: int
    """Trials whose status is not ``ok``."""
    train_seconds: float
    """Sum of the trials' training time."""
    protocol: str = ""
    """Where its choices were made and how its models kept an epoch, in words."""
    random_features: tuple[str, ...] = ()
    """Encoders whose features came from a random initialisation, each with why (from
    ``sweep.yaml``'s ``random_features``; empty for folders written before it existed)."""


@dataclass(frozen=True)
class Results:
    """Trials and epochs of every sweep read, with one row per distinct trial."""

    trials: pd.DataFrame
    """One row per trial key (a trial repeated across folders is kept once, the latest)."""
    epochs: pd.DataFrame
    """One row per trial-epoch (empty when no folder has ``epochs.parquet``)."""
    sweeps: tuple[SweepInfo, ...]
    """The folders read, in order."""
    duplicates: int
    """Trial rows dropped because their trial key appeared again."""


def _sweep_folders(path: str) -> list[str]:
    """Return ``path`` if it holds trials, else its subfolders that do."""
    if io.exists(col.trials_path(path)):
        return [path]
    found = [io.join(path, name) for name in io.listdir(path)]
    found = [folder for folder in found if io.exists(col.trials_path(folder))]
    if not found:
        raise FileNotFoundError(
            f"no trials.parquet in {path} or its subfolders; expected a sweep results folder "
            "(a sweep still running has only parts/: collect them first)"
        )
    return found


def _read_trials(folder: str) -> pd.DataFrame:
    # Older or partial tables: missing columns read as the defaults they had.
    frame = _results.with_legacy_defaults(io.read_parquet(col.trials_path(folder)).to_pandas())
    if frame[col.SWEEP].isna().all():
        frame[col.SWEEP] = folder.rstrip("/").rsplit("/", 1)[-1]
    return frame


def _read_text(path: str) -> str | None:
    return io.read_bytes(path).decode("utf-8", errors="replace") if io.exists(path) else None


def _info(folder: str, trials: pd.DataFrame) -> SweepInfo:
    names = trials[col.SWEEP].dropna().astype(str).unique()
    name = ", ".join(sorted(names)) or folder.rstrip("/").rsplit("/", 1)[-1]
    failed = int((trials[col.STATUS].astype("string") != col.STATUS_OK).sum())
    seconds = float(pd.to_numeric(trials[col.TRAIN_SECONDS], errors="coerce").fillna(0).sum())
    config = _read_text(io.join(folder, col.CONFIG_FILE))
    info = SweepInfo(name, folder, config, len(trials), failed, seconds, _protocol(trials))
    return replace(info, random_features=_random_features(folder, config))


def _random_features(folder: str, config: str | None) -> tuple[str, ...]:
    """Return ``encoder (why)`` per random-feature encoder that ``sweep.yaml`` records."""
    try:
        recorded = (yaml.safe_load(config) or {}).get("random_features") if config else None
    except yaml.YAMLError as error:
        raise ValueError(f"{folder}/{col.CONFIG_FILE}: not valid YAML ({error})") from None
    if recorded is None:
        return ()
    if not isinstance(recorded, dict):
        raise ValueError(
            f"{folder}/{col.CONFIG_FILE}: random_features should map encoder to reason, "
            f"got {type(recorded).__name__}"
        )
    return tuple(f"{encoder} ({why})" for encoder, why in sorted(recorded.items()))


SPLIT_TEXT = {
    "val": "kept epochs and searched λ/τ chosen on the reported validation split (the study's "
    "protocol)",
    "inner": "kept epochs and searched λ/τ chosen on an inner patient-grouped split of each "
    "trial's training rows; the reported validation split is never used for a choice",
}
KEEP_TEXT = {
    "auc": "highest selection AUC, later epoch on ties",
    "loss": "lowest selection loss",
    "last": "last epoch",
    "auc-first-tie": "highest validation AUC, first epoch on ties (raypi before 0.2)",
}


def _protocol(trials: pd.DataFrame) -> str:
    """Describe the protocol of a sweep's trials (each distinct one when they differ)."""
    pairs = trials[[col.SELECTION_SPLIT, col.TEACHER_SELECTION]].dropna().drop_duplicates()
    texts = [
        f"{SPLIT_TEXT.get(split, split)}; kept epoch: {KEEP_TEXT.get(keep, keep)}"
        for split, keep in sorted(pairs.itertuples(index=False, name=None))
    ]
    return " | ".join(texts)


def _latest_per_key(trials: pd.DataFrame) -> pd.DataFrame:
    """Keep one row per trial key: an ``ok`` row over a failed one, then the latest."""
    if trials.empty:
        return trials
    order = trials.assign(
        _ok=(trials[col.STATUS].astype("string") == col.STATUS_OK).fillna(False),
        _at=pd.to_datetime(trials[col.FINISHED_AT], errors="coerce", utc=True),
        _row=range(len(trials)),
    ).sort_values(["_ok", "_at", "_row"], na_position="first")
    keyed = order[order[col.TRIAL_KEY].notna()].drop_duplicates(col.TRIAL_KEY, keep="last")
    unkeyed = order[order[col.TRIAL_KEY].isna()]
    kept = pd.concat([keyed, unkeyed]).sort_values("_row")
    return kept.drop(columns=["_ok", "_at", "_row"]).reset_index(drop=True)


def load_results(paths: list[str]) -> Results:
    """Read the trials and epochs of every sweep under ``paths``.

    Args:
        paths: Result folders (each with ``trials.parquet``) or folders of such folders,
            local or ``s3://``.

    Returns:
        The combined tables; columns of the contract that a table lacks are added empty.
    """
    if not paths:
        raise ValueError("no results folder given")
    trial_frames, epoch_frames, sweeps = [], [], []
    for folder in (found for path in paths for found in _sweep_folders(str(path))):
        trials = _read_trials(folder)
        trial_frames.append(trials)
        sweeps.append(_info(folder, trials))
        epochs_path = col.epochs_path(folder)
        if io.exists(epochs_path):
            epoch_frames.append(io.read_parquet(epochs_path).to_pandas())
    every = pd.concat(trial_frames, ignore_index=True)
    trials = _latest_per_key(every)
    epochs = pd.concat(epoch_frames, ignore_index=True) if epoch_frames else pd.DataFrame()
    return Results(trials, epochs, tuple(sweeps), len(every) - len(trials))
