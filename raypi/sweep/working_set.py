"""A pack's working set, loaded once, and its members' ``FitData`` sliced from it.

The working set holds the training rows of the pack's largest member — the first rows of the
seed's nested order (``splits.nested_order``), so every smaller member's subset is a prefix of
them — with their views, the validation rows and the report tokens its members read. A member's
tensors are views of it (its subset is a prefix), or, under the ``inner`` protocol, its
fitted and selection rows taken from that prefix. This is the one place a trial's ``FitData``
is built: a trial run alone is a pack of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from raypi.methods import METHOD_TABLE
from raypi.sweep.grid import TrialConfig


@dataclass
class WorkingSet:
    """The tensors every member of a pack reads, loaded once."""

    split: object
    """The seed's train/validation split (``raypi.splits.Split``)."""
    ids: list[str]
    """Training-pool rows held, in nested order (the largest member's subset)."""
    image: torch.Tensor | None
    """Their image tokens, [N, V, T, D] (None when no member reads images)."""
    val_image: torch.Tensor | None
    """Validation image tokens, view 0."""
    text: dict[str, tuple] = field(default_factory=dict)
    """Text encoder → (training-row tokens, lengths, validation tokens, lengths)."""
    bytes_read: int = 0
    """Feature bytes served while loading it."""

    @property
    def nbytes(self) -> int:
        """Bytes of the tensors held (what the pack's host memory holds at least)."""
        tensors = [self.image, self.val_image, *(t for four in self.text.values() for t in four)]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def load_working_set(members: list[TrialConfig]) -> WorkingSet:
    """Load the rows and tokens the members of one pack read, each once.

    Args:
        members: The pack's trials (same pack key).

    Returns:
        The working set.
    """
    from raypi.features import load, load_text
    from raypi.features.reader import bytes_served
    from raypi.splits import training_subset
    from raypi.sweep._inputs import read_split

    first = members[0]
    before = bytes_served()
    split = read_split(first.dataset_root, first.task, first.seed)
    ids = training_subset(split, max(t.size for t in members), first.seed)
    image = val_image = None
    if any(METHOD_TABLE[t.method].reads_image for t in members):
        views = None if first.views is None else list(range(first.views + 1))
        image = load(first.features, first.encoder, ids, views=views)
        val_image = load(first.features, first.encoder, list(split.val_ids), views=0)
    texts = {t.text_encoder for t in members if METHOD_TABLE[t.method].reads_report}
    text = {}
    for name in sorted(texts):
        train = load_text(first.features, name, ids, allow_missing=True)
        val = load_text(first.features, name, list(split.val_ids), allow_missing=True)
        text[name] = (*train, *val)
    return WorkingSet(split, ids, image, val_image, text, bytes_served() - before)


def member_data(working: WorkingSet, trial: TrialConfig):
    """Return a member's ``FitData`` (slices of the working set) and its training ids.

    A student's ``teacher_probs`` is left unset: they follow from the training ids returned.

    Args:
        working: The pack's working set.
        trial: The member.

    Returns:
        ``(FitData, train_ids)``.
    """
    from raypi.sweep._inputs import subset_rows
    from raypi.train import FitData

    rows = subset_rows(trial, working.split, working.ids[: trial.size])
    method = METHOD_TABLE[trial.method]
    data = FitData(
        train_tokens=_rows(working.image, rows.train_at, trial.size) if method.reads_image
        else None,
        train_labels=torch.tensor(rows.train_labels, dtype=torch.long),
        val_tokens=working.val_image if method.reads_image else None,
        val_labels=torch.tensor(rows.val_labels, dtype=torch.long),
    )  # fmt: skip
    if rows.select_at is not None:
        data.select_labels = torch.tensor(rows.select_labels, dtype=torch.long)
        if method.reads_image:
            data.select_tokens = _rows(working.image, rows.select_at, trial.size)[:, 0]
    if method.reads_report:
        tokens, lengths, val_tokens, val_lengths = working.text[trial.text_encoder]
        data.train_text = _rows(tokens, rows.train_at, trial.size)
        data.train_text_lengths = _rows(lengths, rows.train_at, trial.size)
        data.val_text, data.val_text_lengths = val_tokens, val_lengths
        if rows.select_at is not None:
            data.select_text = _rows(tokens, rows.select_at, trial.size)
            data.select_text_lengths = _rows(lengths, rows.select_at, trial.size)
    return data, rows.train_ids


def fit_data(trial: TrialConfig, teacher_probs: torch.Tensor | None = None):
    """Load one trial's ``FitData`` as a pack of one (benchmarks, tests).

    Args:
        trial: The trial.
        teacher_probs: A student's teacher probabilities on its training rows.

    Returns:
        ``(FitData, train_ids)``.
    """
    data, train_ids = member_data(load_working_set([trial]), trial)
    data.teacher_probs = teacher_probs
    return data, train_ids


def _rows(tensor: torch.Tensor, at: list[int] | None, size: int) -> torch.Tensor:
    """The member's rows of ``tensor``: its first ``size`` (a view), else the rows ``at``."""
    if at is None:
        return tensor[:size]
    return tensor.index_select(0, torch.tensor(at, dtype=torch.long))
