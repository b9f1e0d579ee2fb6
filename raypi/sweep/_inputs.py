"""A trial's inputs: its split, its training subset, and only those rows' features.

A trial never reads report text: the dataset table is read without its ``report`` column
(only to check the task table's ids), and reports enter as stored text-encoder tokens. So no
exception raised inside a trial can carry report text.
"""

from __future__ import annotations

import functools

import torch

from raypi import io
from raypi.train import FitData


@functools.lru_cache(maxsize=64)
def read_split(root: str, task_name: str, seed: int):
    """Return the seed's train/validation split of a task (report text is never read).

    Cached per process: Tune reuses trial actors, and a split is a pure function of its
    inputs (task tables are written once).

    Args:
        root: Dataset root.
        task_name: Task name.
        seed: Seed of the split.

    Returns:
        A ``raypi.splits.Split``.
    """
    from raypi.data import tables
    from raypi.splits import split_task
    from raypi.tasks import get_task

    spec = get_task(task_name)
    ids = io.read_parquet(tables.dataset_file(root), columns=["image_id", "patient_id"])
    task_df = tables.read_task(root, spec, dataset=ids.to_pandas())
    return split_task(task_df, spec, seed)


def training_rows(config) -> tuple[list[str], list[int], list[str], list[int]]:
    """Return the trial's training ids and labels (its nested subset) and validation ids/labels.

    Args:
        config: The trial's ``TrialConfig``.

    Returns:
        ``(train_ids, train_labels, val_ids, val_labels)``.
    """
    from raypi.splits import training_subset

    split = read_split(config.dataset_root, config.task, config.seed)
    train_ids = training_subset(split, config.size, config.seed)
    label_of = dict(zip(split.train_ids, split.train_labels))
    return (
        train_ids,
        [label_of[i] for i in train_ids],
        list(split.val_ids),
        list(split.val_labels),
    )


def fit_data(config, teacher_probs: torch.Tensor | None = None) -> tuple[FitData, list[str]]:
    """Load the tensors of one trial from the feature store.

    Args:
        config: The trial's ``TrialConfig``.
        teacher_probs: Teacher probabilities of the training rows at the student's τ.

    Returns:
        ``(FitData, train_ids)``.
    """
    from raypi.features import load, load_text

    train_ids, train_labels, val_ids, val_labels = training_rows(config)
    data = FitData(
        train_tokens=None,
        train_labels=torch.tensor(train_labels, dtype=torch.long),
        val_tokens=None,
        val_labels=torch.tensor(val_labels, dtype=torch.long),
        teacher_probs=teacher_probs,
    )
    if config.method != "text":
        views = None if config.views is None else list(range(config.views + 1))
        data.train_tokens = load(config.features, config.encoder, train_ids, views=views)
        data.val_tokens = load(config.features, config.encoder, val_ids, views=0)
    if config.method in ("teacher", "text"):
        data.train_text, data.train_text_lengths = load_text(
            config.features, config.text_encoder, train_ids, allow_missing=True
        )
        data.val_text, data.val_text_lengths = load_text(
            config.features, config.text_encoder, val_ids, allow_missing=True
        )
    return data, train_ids


def has_cls_token(config) -> bool:
    """Return whether the image tokens of the trial's encoder start with a CLS token."""
    if config.encoder is None:
        return False
    from raypi.features import read_manifest

    return bool(read_manifest(config.features, config.encoder).get("has_cls", False))
