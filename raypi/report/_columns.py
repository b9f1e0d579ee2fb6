"""Column names of the sweep results tables (trials, epochs) as the report reads them."""

from __future__ import annotations

# The contract's trials.parquet columns; kept here only until raypi.sweep.results lands.
SWEEP = "sweep"
TRIAL_KEY = "trial_key"
TASK = "task"
DATASET = "dataset"
ENCODER = "encoder"
TEXT_ENCODER = "text_encoder"
METHOD = "method"
HEAD = "head"
SIZE = "size"
SEED = "seed"
LAM = "lam"
TAU = "tau"
LR = "lr"
BATCH_SIZE = "batch_size"
EPOCHS = "epochs"
TEACHER_KEY = "teacher_key"
STATUS = "status"
ERROR = "error"
AUC_FINAL = "auc_final"
AUPRC_FINAL = "auprc_final"
AUC_BEST = "auc_best"
AUPRC_BEST = "auprc_best"
BEST_EPOCH = "best_epoch"
TRAIN_SECONDS = "train_seconds"
DEVICE = "device"
NODE_IP = "node_ip"
FINISHED_AT = "finished_at"

TRIAL_COLUMNS = (
    SWEEP,
    TRIAL_KEY,
    TASK,
    DATASET,
    ENCODER,
    TEXT_ENCODER,
    METHOD,
    HEAD,
    SIZE,
    SEED,
    LAM,
    TAU,
    LR,
    BATCH_SIZE,
    EPOCHS,
    TEACHER_KEY,
    STATUS,
    ERROR,
    AUC_FINAL,
    AUPRC_FINAL,
    AUC_BEST,
    AUPRC_BEST,
    BEST_EPOCH,
    TRAIN_SECONDS,
    DEVICE,
    NODE_IP,
    FINISHED_AT,
)

# epochs.parquet
EPOCH = "epoch"
EPOCH_COLUMNS = (TRIAL_KEY, EPOCH, "loss", "ce_loss", "kd_loss", "val_auc", "val_auprc")

STATUS_OK = "ok"
STATUS_FAILED = "failed"

TRIALS_FILE = "trials.parquet"
EPOCHS_FILE = "epochs.parquet"
CONFIG_FILE = "sweep.yaml"
