"""The sweep's result files: the one place the trials, epochs and teacher-output columns are named.

Layout of ``<results>`` (a local folder or ``s3://`` prefix)::

    sweep.yaml                      resolved sweep config and launch options
    trials.parquet, epochs.parquet  consolidated results (rebuilt by ``collect``)
    parts/trials/<trial_key>.parquet   one row per trial, written when the trial ends
    parts/epochs/<trial_key>.parquet   that trial's per-epoch rows
    configs/<trial_key>.json           the resolved config of every trial that ran
    teachers/<trial_key>.parquet       a stage-1 model's kept-epoch logits (``sweep.teachers``)
    tune/                           Ray Tune's experiment storage (logs, TensorBoard files)

One file per ``trial_key``, written atomically, makes the parts duplicate-free by
construction: a retried or resumed trial overwrites its own file. ``collect`` unions them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import yaml

from raypi import io, provenance
from raypi.sweep.grid import TrialConfig
from raypi.sweep.store_settings import STORE_FIELDS, store_columns

_ARROW_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}


def _config_fields() -> list[tuple[str, pa.DataType]]:
    """Every ``TrialConfig`` field as a column, typed from its annotation."""
    columns = []
    for item in fields(TrialConfig):
        base = str(item.type).split("|")[0].strip()
        if base not in _ARROW_TYPES:
            raise TypeError(f"TrialConfig.{item.name}: no Parquet type for {item.type!r}")
        columns.append((item.name, _ARROW_TYPES[base]))
    return columns


CONFIG_COLUMNS = tuple(name for name, _ in _config_fields())
"""Columns that come from the trial config: every ``TrialConfig`` field."""
STORE_COLUMNS = tuple(name for name, _ in STORE_FIELDS)
"""Columns that come from the trial's feature store (``raypi.sweep.store_settings``)."""

PROVENANCE_COLUMNS = (
    "raypi_version",
    "raypi_commit",
    "ray_version",
    "torch_version",
    "cuda_version",
    "device_name",
)
"""Which code made a trial row (``raypi.provenance``): filled by ``trial_row`` in the process
that writes it — the trial's worker for a trained trial (``device_name`` its GPU or CPU model),
the driver for a trial recorded as failed without running (``device_name`` None). Older files
read them as None."""

TRIALS_SCHEMA = pa.schema(
    [("sweep", pa.string()), ("trial_key", pa.string()), ("config_key", pa.string())]
    + _config_fields()
    + list(STORE_FIELDS)
    + [
        ("status", pa.string()),
        ("error", pa.string()),
        ("auc_final", pa.float64()),
        ("auprc_final", pa.float64()),
        ("auc_best", pa.float64()),
        ("auprc_best", pa.float64()),
        ("select_auc_best", pa.float64()),
        ("best_epoch", pa.int64()),
        ("bytes_read", pa.int64()),
        ("pack_key", pa.string()),
        ("stack_size", pa.int64()),
        ("train_seconds", pa.float64()),
        ("device", pa.string()),
        ("node_ip", pa.string()),
        ("node_id", pa.string()),
        ("gpu_ids", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
    ]
    + [(name, pa.string()) for name in PROVENANCE_COLUMNS]
)
"""``trials.parquet``: one row per trial (status ``ok`` or ``failed`` with its error). Built from
``TrialConfig`` so that every setting is a column; ``config_key`` is the key without the seed;
``auc_best`` is the validation AUC at the kept epoch, ``select_auc_best`` the selection split's;
``bytes_read`` the feature bytes the trial read (a pack's reads are on its first member, 0 on the
others, so the column sums to the sweep's reads); ``pack_key`` the pack it ran in (None alone);
``stack_size`` how many members trained as one stacked model with it (1: alone; None: before
the column existed); the ``PROVENANCE_COLUMNS`` last."""

LEGACY_DEFAULTS = {
    "dtype": "fp32",
    "teacher_selection": "auc-first-tie",
    "selection_split": "val",
    "inner_share": None,
    "select_auc_best": None,
    "validate_every": 1,
    "stack_size": None,
}
"""What trials files written before a column existed had in effect: read in its place. Ties of
the kept epoch then went to the *first* epoch, recorded as ``auc-first-tie`` so that such rows
are never averaged with newer ones."""

EPOCHS_SCHEMA = pa.schema(
    [
        ("trial_key", pa.string()),
        ("epoch", pa.int64()),
        ("loss", pa.float64()),
        ("ce_loss", pa.float64()),
        ("kd_loss", pa.float64()),
        ("val_auc", pa.float64()),
        ("val_auprc", pa.float64()),
        ("val_loss", pa.float64()),
        ("select_auc", pa.float64()),
        ("select_auprc", pa.float64()),
        ("select_loss", pa.float64()),
        ("seconds", pa.float64()),
    ]
)
"""``epochs.parquet``: one row per trial and epoch."""


OK, FAILED = "ok", "failed"


def trials_path(results: str) -> str:
    """Return the consolidated ``trials.parquet`` of a results folder."""
    return io.join(results, "trials.parquet")


def epochs_path(results: str) -> str:
    """Return the consolidated ``epochs.parquet`` of a results folder."""
    return io.join(results, "epochs.parquet")


def _part(results: str, kind: str, key: str) -> str:
    return io.join(results, "parts", kind, f"{key}.parquet")


def now() -> dt.datetime:
    """Return the current UTC time (the timestamps of result rows)."""
    return dt.datetime.now(dt.timezone.utc)


def trial_row(sweep: str, config: dict, status: str, **values) -> dict:
    """Return a trials row: the config's columns, the status, and the given metrics.

    Args:
        sweep: Sweep name.
        config: The trial config's dict form (``TrialConfig.to_dict``).
        status: ``ok`` or ``failed``.
        **values: Other columns (metrics, error, timings, placement); unknown names raise.
            The provenance columns are filled here (``device_name`` from ``device``).

    Returns:
        The row, every column present (missing ones None).
    """
    unknown = sorted(set(values) - set(TRIALS_SCHEMA.names))
    if unknown:
        raise KeyError(f"not trials columns: {unknown}")
    row = {name: None for name in TRIALS_SCHEMA.names}
    row.update({name: config.get(name) for name in CONFIG_COLUMNS})
    row.update(provenance.record(values.get("device")))
    row.update(store_columns(config))
    row.update(sweep=sweep, trial_key=config["trial_key"], status=status, **values)
    row["config_key"] = config.get("config_key")
    return row


def write_trial(results: str, row: dict, epochs: list[dict] | None = None) -> None:
    """Write one trial's row (and its epoch rows) as its part files, replacing older ones.

    Epochs are written first, so a trial row never exists without its epochs.

    Args:
        results: Results folder.
        row: A row from ``trial_row``.
        epochs: Per-epoch dicts (``epoch``, ``loss``, …); None or [] for none.
    """
    key = row["trial_key"]
    epoch_rows = [
        {name: ({**e, "trial_key": key}).get(name) for name in EPOCHS_SCHEMA.names}
        for e in epochs or []
    ]
    if epoch_rows:
        io.write_parquet(
            pa.Table.from_pylist(epoch_rows, EPOCHS_SCHEMA), _part(results, "epochs", key)
        )
    else:
        io.remove(_part(results, "epochs", key))
    io.write_parquet(pa.Table.from_pylist([row], TRIALS_SCHEMA), _part(results, "trials", key))


def _read_parts(results: str, kind: str, schema: pa.Schema, columns=None) -> pa.Table:
    folder = io.join(results, "parts", kind)
    names = [n for n in io.listdir(folder) if n.endswith(".parquet")]  # temporaries excluded
    if not names:
        return schema.empty_table().select(columns or schema.names)
    fs, inner = io.filesystem(folder)
    files = [f"{inner}/{name}" for name in names]
    dataset = pads.dataset(files, schema=schema, filesystem=fs, format="parquet")
    return io.retrying(folder, lambda: dataset.to_table(columns=columns))


def read_parts(results: str) -> pd.DataFrame:
    """Return the trials recorded so far (the part files; a running sweep's too), read only."""
    return with_legacy_defaults(_read_parts(results, "trials", TRIALS_SCHEMA).to_pandas())


def statuses(results: str) -> dict[str, str]:
    """Return ``trial_key → status`` of every trial recorded so far."""
    table = _read_parts(results, "trials", TRIALS_SCHEMA, ["trial_key", "status"])
    return dict(zip(table.column("trial_key").to_pylist(), table.column("status").to_pylist()))


def collect(results: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rebuild ``trials.parquet`` and ``epochs.parquet`` from the part files.

    Args:
        results: Results folder.

    Returns:
        ``(trials, epochs)`` as written, sorted by trial key (and epoch).
    """
    trials = _read_parts(results, "trials", TRIALS_SCHEMA).sort_by("trial_key")
    keys = pa.array(trials.column("trial_key").to_pylist(), pa.string())
    epochs = _read_parts(results, "epochs", EPOCHS_SCHEMA)
    # Epochs of a trial whose row is missing (killed between the two writes) are left out.
    epochs = epochs.filter(pc.is_in(epochs.column("trial_key"), value_set=keys))
    epochs = epochs.sort_by([("trial_key", "ascending"), ("epoch", "ascending")])
    io.write_parquet(trials, trials_path(results))
    io.write_parquet(epochs, epochs_path(results))
    return with_legacy_defaults(trials.to_pandas()), epochs.to_pandas()


def read_trials(results: str) -> pd.DataFrame:
    """Return the consolidated trials table of a results folder (older files upgraded)."""
    return with_legacy_defaults(io.read_parquet(trials_path(results)).to_pandas())


def with_legacy_defaults(trials: pd.DataFrame) -> pd.DataFrame:
    """Return ``trials`` with every column of ``TRIALS_SCHEMA``, older files' gaps filled.

    A column an older file lacks reads as ``LEGACY_DEFAULTS`` says (None elsewhere), and a
    missing ``config_key`` is computed from the row's settings.

    Args:
        trials: A trials table as read from Parquet.

    Returns:
        A new table with the schema's columns first.
    """
    frame = trials.copy()
    for name in TRIALS_SCHEMA.names:
        if name not in frame:
            frame[name] = None
        default = LEGACY_DEFAULTS.get(name)
        if default is not None:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), default)
    lacking = frame["config_key"].isna() & frame["task"].notna()
    if lacking.any():
        frame.loc[lacking, "config_key"] = [
            config_key_of(row) for row in frame[lacking].to_dict("records")
        ]
    extra = [name for name in frame.columns if name not in TRIALS_SCHEMA.names]
    return frame[list(TRIALS_SCHEMA.names) + extra]


def config_key_of(row: dict) -> str:
    """Return the ``config_key`` of a trials row (its settings, read as their column types).

    Args:
        row: One trials row as a dict.

    Returns:
        The key, as ``TrialConfig.config_key`` computes it.
    """
    values = {}
    for name, kind in _config_fields():
        value = row.get(name)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            value = None
        elif kind == pa.int64():
            value = int(value)
        elif kind == pa.float64():
            value = float(value)
        values[name] = value
    return TrialConfig(**values).config_key


def read_epochs(results: str) -> pd.DataFrame:
    """Return the consolidated epochs table of a results folder."""
    return io.read_parquet(epochs_path(results)).to_pandas()


def write_sweep_yaml(results: str, resolved: dict) -> None:
    """Write the resolved sweep config next to the results, with the driver's provenance.

    Args:
        results: Results folder.
        resolved: The resolved config (``sweep``, ``launch``, …); a ``provenance`` entry is
            added: ``raypi.provenance.record`` of the driver (its GPU, else its CPU).
    """
    import torch

    driver = provenance.record("cuda" if torch.cuda.is_available() else "cpu")
    text = yaml.safe_dump({**resolved, "provenance": driver}, sort_keys=False)
    io.write_bytes(io.join(results, "sweep.yaml"), text.encode())
