"""Column names of the sweep's results tables, taken from ``raypi.sweep.results`` and checked."""

from __future__ import annotations

from raypi.sweep import results as _results

TRIALS_SCHEMA = _results.TRIALS_SCHEMA
EPOCHS_SCHEMA = _results.EPOCHS_SCHEMA
TRIAL_COLUMNS = tuple(TRIALS_SCHEMA.names)
CONFIG_COLUMNS = _results.CONFIG_COLUMNS
STORE_COLUMNS = _results.STORE_COLUMNS
EPOCH_COLUMNS = tuple(EPOCHS_SCHEMA.names)
STATUS_OK, STATUS_FAILED = _results.OK, _results.FAILED


def _trials(name: str) -> str:
    """Return ``name`` if ``trials.parquet`` has that column, else fail at import time."""
    if name not in TRIAL_COLUMNS:
        raise ImportError(f"raypi.report reads column {name!r}, which trials.parquet lacks")
    return name


SWEEP = _trials("sweep")
TRIAL_KEY = _trials("trial_key")
TASK = _trials("task")
ENCODER = _trials("encoder")
TEXT_ENCODER = _trials("text_encoder")
METHOD = _trials("method")
HEAD = _trials("head")
SIZE = _trials("size")
SEED = _trials("seed")
LAM = _trials("lam")
TAU = _trials("tau")
STATUS = _trials("status")
ERROR = _trials("error")
AUC_FINAL = _trials("auc_final")
AUPRC_FINAL = _trials("auprc_final")
AUC_BEST = _trials("auc_best")
AUPRC_BEST = _trials("auprc_best")
TRAIN_SECONDS = _trials("train_seconds")
FINISHED_AT = _trials("finished_at")
DATASET = _trials("dataset")
LR = _trials("lr")
BATCH_SIZE = _trials("batch_size")
EPOCHS = _trials("epochs")
TEACHER_KEY = _trials("teacher_key")
BEST_EPOCH = _trials("best_epoch")
DEVICE = _trials("device")
NODE_IP = _trials("node_ip")
CONFIG_KEY = _trials("config_key")
TEACHER_SELECTION = _trials("teacher_selection")
SELECTION_SPLIT = _trials("selection_split")
SELF_DISTILL_TEACHER = _trials("self_distill_teacher")
INIT_SEED = _trials("init_seed")


def _epochs(name: str) -> str:
    """Return ``name`` if ``epochs.parquet`` has that column, else fail at import time."""
    if name not in EPOCH_COLUMNS:
        raise ImportError(f"raypi.report reads column {name!r}, which epochs.parquet lacks")
    return name


EPOCH = _epochs("epoch")

CONFIG_FILE = "sweep.yaml"


def trials_path(folder: str) -> str:
    """Return the consolidated ``trials.parquet`` of a results folder."""
    return _results.trials_path(folder)


def epochs_path(folder: str) -> str:
    """Return the consolidated ``epochs.parquet`` of a results folder."""
    return _results.epochs_path(folder)
