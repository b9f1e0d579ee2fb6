"""Synthetic sweep results with plausible numbers, for smoke tests and looking at the report."""

from __future__ import annotations

import hashlib
import itertools
import json

import numpy as np
import pandas as pd
import pyarrow as pa

from raypi import io
from raypi.report import _columns as col

DEFAULT_TASKS = {"mimic_5x1200": (100, 400, 1000, 4000), "readmission": (211, 741, 2119)}
DEFAULT_ENCODERS = ("rad_dino", "mrm", "biovil_t")
LAMBDAS = (0.1, 0.3, 0.5, 0.7, 0.9)
HEADS = ("attention", "mean_lp", "cls_lp")
TEXT_ENCODERS = ("cxr_bert", "cxr_bert_general", "bio_clinicalbert")


def _unit(*parts: object) -> float:
    """Return a stable pseudo-random number in [0, 1) for ``parts``."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def _auc(task: str, encoder: str, size: int, seed: int, arm: tuple, rng) -> float:
    """Return a plausible AUC: grows with size, differs per encoder, shares noise per seed."""
    floor = 0.55 + 0.2 * _unit(task)
    gain = (0.97 - floor) * (1 - np.exp(-size / (800 + 2000 * _unit(task, "scale"))))
    shared = 0.012 * np.sin(seed * 2.1 + 7 * _unit(task, encoder, size))
    effect = {
        "image": 0.0,
        "teacher": 0.06,
        "distill": 0.025 * _unit(task, encoder, "d"),
        "self_distill": 0.004,
        "text": 0.1,
    }[arm[0]]
    effect -= 0.03 * HEADS.index(arm[1]) + 0.01 * TEXT_ENCODERS.index(arm[2] or "cxr_bert")
    effect -= (
        0.02 * abs(arm[4] - 0.5) + 0.01 * abs(np.log(arm[3] / 0.25)) if arm[0] == "distill" else 0
    )
    value = floor + gain * (0.7 + 0.3 * _unit(encoder, task)) + shared + effect
    return float(np.clip(value + rng.normal(0, 0.006), 0.5, 0.995))


def _arms(tau: float, ablations: bool, small: bool) -> list[tuple]:
    """Return (method, head, text encoder, τ, λ) of every trial kind at one size."""
    arms = [("image", "attention", None, tau, 0.5)]
    if small:
        arms += [
            ("teacher", "attention", "cxr_bert", tau, 0.5),
            ("distill", "attention", "cxr_bert", tau, 0.5),
            ("self_distill", "attention", None, tau, 0.5),
            ("text", "attention", "cxr_bert", tau, 0.5),
        ]
    if ablations:
        arms += [("image", head, None, tau, 0.5) for head in HEADS[1:]]
    if ablations and small:
        arms += [("distill", "attention", "cxr_bert", t, 0.5) for t in (tau * 4, tau * 10)]
        arms += [("distill", "attention", te, tau, 0.5) for te in TEXT_ENCODERS[1:]]
        arms += [("teacher", "attention", te, tau, 0.5) for te in TEXT_ENCODERS[1:]]
        arms += [("distill", "attention", "cxr_bert", tau, lam) for lam in LAMBDAS if lam != 0.5]
    return arms


def _row(sweep: str, task: str, encoder: str, size: int, seed: int, arm: tuple, rng) -> dict:
    method, head, text_encoder, tau, lam = arm
    config = {"task": task, "encoder": encoder, "size": size, "seed": seed, "arm": arm}
    key = hashlib.sha1(json.dumps(config, default=str).encode()).hexdigest()[:16]
    auc = _auc(task, encoder, size, seed, arm, rng)
    best = min(auc + abs(rng.normal(0, 0.004)), 0.999)
    prevalence = 0.5 if "mimic" not in task else 0.2
    return {
        col.SWEEP: sweep,
        col.TRIAL_KEY: key,
        col.TASK: task,
        col.DATASET: "synthetic",
        col.ENCODER: encoder if method != "text" else None,
        col.TEXT_ENCODER: text_encoder,
        col.METHOD: method,
        col.HEAD: head,
        col.SIZE: size,
        col.SEED: seed,
        col.LAM: lam if method in ("distill", "self_distill") else None,
        col.TAU: tau if method != "image" else None,
        col.LR: 1e-4,
        col.BATCH_SIZE: 64,
        col.EPOCHS: 50,
        col.TEACHER_KEY: None,
        col.STATUS: col.STATUS_OK,
        col.ERROR: None,
        col.AUC_FINAL: auc,
        col.AUC_BEST: best,
        col.AUPRC_FINAL: prevalence + (1 - prevalence) * (auc - 0.5) * 1.6 - 0.05,
        col.AUPRC_BEST: prevalence + (1 - prevalence) * (best - 0.5) * 1.6 - 0.05,
        col.BEST_EPOCH: int(rng.integers(1, 50)),
        col.TRAIN_SECONDS: float(size * 0.05 + 20),
        col.DEVICE: "cuda:0",
        col.NODE_IP: "10.0.0.2",
        col.FINISHED_AT: pd.Timestamp("2026-01-01", tz="UTC"),
    }


def synthetic_trials(
    tasks: dict[str, tuple[int, ...]] | None = None,
    encoders: tuple[str, ...] = DEFAULT_ENCODERS,
    seeds: int = 3,
    ablations: bool = True,
    failures: int = 2,
    drop: float = 0.0,
    sweep: str = "synthetic",
    seed: int = 0,
) -> pd.DataFrame:
    """Return a trials table shaped like a real sweep's, with made-up metrics.

    The smallest and largest size of each task get the distillation methods (and the text-only
    model); ablations add heads, τ, text encoders and λ at those sizes.

    Args:
        tasks: Task name → training sizes.
        encoders: Image encoders.
        seeds: Seeds per configuration.
        ablations: Whether to add ablation and λ-search trials.
        failures: Trials marked failed (with an error message and no metrics).
        drop: Share of trials removed at random (to leave combinations missing).
        sweep: Value of the sweep column.
        seed: Seed of the noise.

    Returns:
        The trials table.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for task, sizes in (tasks or DEFAULT_TASKS).items():
        tau = 2.5 if task == "mimic_5x1200" else 0.25
        for size, encoder, run in itertools.product(sizes, encoders, range(seeds)):
            small = size in (min(sizes), max(sizes))
            rows += [
                _row(sweep, task, encoder, size, run, arm, rng)
                for arm in _arms(tau, ablations, small)
                if arm[0] != "text" or encoder == encoders[0]  # text-only: once per seed
            ]
    frame = pd.DataFrame(rows)
    frame = frame[rng.random(len(frame)) >= drop].reset_index(drop=True)
    failed = rng.choice(len(frame), size=min(failures, len(frame)), replace=False)
    metrics = [col.AUC_FINAL, col.AUC_BEST, col.AUPRC_FINAL, col.AUPRC_BEST, col.BEST_EPOCH]
    frame.loc[failed, metrics] = np.nan
    frame.loc[failed, col.STATUS] = col.STATUS_FAILED
    frame.loc[failed, col.ERROR] = "RuntimeError: CUDA out of memory (synthetic)"
    return frame


def _table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Return ``frame`` in the sweep's exact schema (columns it lacks are null)."""
    full = frame.copy()
    for name in schema.names:
        if name not in full:
            full[name] = pd.Series([None] * len(full), dtype=object)
    return pa.Table.from_pandas(full[schema.names], schema, preserve_index=False)


def write_synthetic_results(out: str, **kwargs) -> str:
    """Write ``trials.parquet``, ``epochs.parquet`` and ``sweep.yaml`` of a synthetic sweep.

    Args:
        out: Results folder (local or ``s3://``).
        **kwargs: Passed to ``synthetic_trials``.

    Returns:
        ``out``.
    """
    trials = synthetic_trials(**kwargs)
    io.write_parquet(_table(trials, col.TRIALS_SCHEMA), col.trials_path(out))
    epochs = pd.DataFrame(
        [
            {
                col.TRIAL_KEY: key,
                col.EPOCH: epoch,
                "loss": 1 / epoch,
                "ce_loss": 1 / epoch,
                "kd_loss": 0.0,
                "val_auc": auc - 0.01 / epoch,
                "val_auprc": auc - 0.05,
            }
            for key, auc in zip(trials[col.TRIAL_KEY], trials[col.AUC_FINAL].fillna(0.5))
            for epoch in (1, 2, 3)
        ]
    )
    io.write_parquet(_table(epochs, col.EPOCHS_SCHEMA), col.epochs_path(out))
    name, seeds = kwargs.get("sweep", "synthetic"), kwargs.get("seeds", 3)
    config = f"name: {name}\nsynthetic: true\nseeds: {seeds}\n"
    io.write_bytes(io.join(out, col.CONFIG_FILE), config.encode())
    return out
