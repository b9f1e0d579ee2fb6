"""A trial's rows (its split and nested training subset) and the check that its features serve.

The tensors are loaded once per pack and sliced per member in ``sweep.working_set``.

A trial never reads report text: the dataset table is read without its ``report`` column
(only to check the task table's ids), and reports enter as stored text-encoder tokens. So no
exception raised inside a trial can carry report text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from raypi import io
from raypi.methods import METHOD_TABLE


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


@functools.lru_cache(maxsize=64)
def read_inner_pool(root: str, task_name: str, seed: int, share: float) -> frozenset[str]:
    """Return the seed's held-out training images of the honest protocol (cached per process).

    Args:
        root: Dataset root.
        task_name: Task name.
        seed: Seed of the split.
        share: Share of training patients held out.

    Returns:
        Image ids (``raypi.splits.inner_pool``).
    """
    from raypi.data import tables
    from raypi.splits import inner_pool
    from raypi.tasks import get_task

    split = read_split(root, task_name, seed)
    ids = io.read_parquet(tables.dataset_file(root), columns=["image_id", "patient_id"])
    task_df = tables.read_task(root, get_task(task_name), dataset=ids.to_pandas())
    train_df = task_df[task_df["image_id"].astype(str).isin(set(split.train_ids))]
    return inner_pool(train_df, share, task_name, seed)


@dataclass(frozen=True)
class TrialRows:
    """Image ids and labels of a trial's fitted, selection and validation rows."""

    train_ids: list[str]
    """Rows the model is fitted on: the nested subset (less the held-out rows under inner)."""
    train_labels: list[int]
    """Their labels."""
    val_ids: list[str]
    """The reported validation rows."""
    val_labels: list[int]
    """Their labels."""
    select_ids: list[str] | None = None
    """Held-out rows of the subset on which choices are made (``inner`` only)."""
    select_labels: list[int] | None = None
    """Their labels."""
    train_at: list[int] | None = None
    """Positions of the fitted rows in the subset; None: the whole subset, in order."""
    select_at: list[int] | None = None
    """Positions of the selection rows in the subset (``inner`` only)."""


def subset_rows(config, split, subset: list[str]) -> TrialRows:
    """Return the trial's rows given its training subset (split for selection under ``inner``).

    Args:
        config: The trial's ``TrialConfig``.
        split: The seed's split (``read_split``).
        subset: The trial's training subset: the first ``config.size`` ids of the seed's
            nested order (``splits.training_subset``), e.g. a prefix of its pack's rows.

    Returns:
        The rows, with the positions in ``subset`` of the fitted and selection rows.
    """
    label_of = dict(zip(split.train_ids, split.train_labels))
    val = (list(split.val_ids), list(split.val_labels))
    if config.selection_split != "inner":
        return TrialRows(list(subset), [label_of[i] for i in subset], *val)
    pool = read_inner_pool(config.dataset_root, config.task, config.seed, config.inner_share)
    train_at = [at for at, i in enumerate(subset) if i not in pool]
    select_at = [at for at, i in enumerate(subset) if i in pool]
    if not train_at or not select_at:
        raise ValueError(
            f"trial {config.trial_key}: size {config.size} leaves {len(train_at)} rows to fit "
            f"and {len(select_at)} to select on with inner_share {config.inner_share}"
        )
    train_ids, select_ids = [subset[at] for at in train_at], [subset[at] for at in select_at]
    labels = [label_of[i] for i in train_ids]
    return TrialRows(train_ids, labels, *val, select_ids, [label_of[i] for i in select_ids],
                     train_at, select_at)  # fmt: skip


def has_cls_token(config) -> bool:
    """Return whether the image tokens of the trial's encoder start with a CLS token."""
    if config.encoder is None:
        return False
    from raypi.features import read_manifest
    from raypi.features.store import has_cls

    return has_cls(read_manifest(config.features, config.encoder))


def _wanted_stores(trials) -> dict[tuple, int | None]:
    """Return ``(store, encoder, kind) → most views needed`` of the trials' features."""
    wanted: dict[tuple, int | None] = {}
    for trial in trials:
        method = METHOD_TABLE[trial.method]
        if method.reads_image:
            key = (trial.features, trial.encoder, "image")
            most = wanted.get(key)
            wanted[key] = trial.views if most is None else max(most, trial.views or 0)
        if method.reads_report:
            wanted.setdefault((trial.features, trial.text_encoder, "text"), None)
    return wanted


def check_features(trials, random_weights: bool = False) -> None:
    """Check, before anything runs, that every trial's features can be served.

    Args:
        trials: The sweep's trials (``TrialConfig``).
        random_weights: Accept stores extracted from the random initialisation of an encoder
            that has published weights (the sweep config's ``random_weights: true``).

    Raises:
        StoreError: Naming every store and encoder that cannot serve its trials, and why.
    """
    from raypi.features import trust
    from raypi.features.reader import check
    from raypi.features.store import StoreError

    problems, manifests = [], {}
    for (store, encoder, kind), views in sorted(_wanted_stores(trials).items(), key=str):
        try:
            manifests[store, encoder] = check(store, encoder, kind, views)
        except StoreError as error:
            where = "" if str(store) in str(error) else f"{store}/{encoder}: "
            problems.append(f"{where}{error}")
    if not random_weights:
        problems += [
            f"{line}; say `random_weights: true` in the sweep config to train on them"
            for line in trust.unexpected_random(manifests)
        ]
    if problems:
        raise StoreError(
            "the sweep's features cannot serve its trials (nothing was run):\n  "
            + "\n  ".join(problems)
        )


def random_encoders(trials) -> dict[str, str]:
    """Return ``encoder → why`` for each encoder whose features the trials read are random.

    Args:
        trials: The sweep's trials (``TrialConfig``), whose stores were checked.

    Returns:
        ``raypi.features.trust.random_encoders`` of their stores.
    """
    from raypi.features import read_manifest, trust

    stores = {(store, encoder) for store, encoder, _ in _wanted_stores(trials)}
    return trust.random_encoders({key: read_manifest(*key) for key in stores})
