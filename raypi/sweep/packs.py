"""Trial packs: every trial that shares one feature working set, as one unit of Tune work.

A pack is the trials of one (task, image encoder, seed) with the same data settings (views,
protocol, store): all its sizes (nested subsets of one order) and methods, report-reading or
not. Its working set — the largest training subset × views, the validation rows and the report
tokens its members read — is loaded once; each member's tensors are slices of it (views, no
copy, where the member's rows are a prefix). Students and their teachers always share a pack
(a teacher differs from its student only in method, text encoder, λ and τ). A pack whose
working set would not fit its memory budget is split by size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import torch

from raypi.methods import METHOD_TABLE
from raypi.sweep.grid import TrialConfig

_PACK_FIELDS = ("task", "dataset", "encoder", "seed", "views", "selection_split", "inner_share",
                "dataset_root", "features")  # fmt: skip
"""The settings that decide which rows and tokens a trial reads."""


def pack_key(trial: TrialConfig) -> str:
    """Return the key of the pack holding ``trial`` (16 hex digits)."""
    values = {name: getattr(trial, name) for name in _PACK_FIELDS}
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_packs(trials: list[TrialConfig], max_bytes: float | None = None) -> dict[str, list]:
    """Group trials into packs: stage-1 members first, then students, sizes ascending.

    Args:
        trials: Trials to run (their teachers among them or already recorded).
        max_bytes: Working-set budget of one pack; a larger pack is split by size (None =
            never split).

    Returns:
        Pack key (``<key>`` or ``<key>-<part>``) → its members.
    """
    grouped: dict[str, list[TrialConfig]] = {}
    for trial in trials:
        grouped.setdefault(pack_key(trial), []).append(trial)
    packs = {}
    for key, members in grouped.items():
        members = sorted(members, key=lambda t: (t.is_student, t.size))
        parts = _split(members, max_bytes) if max_bytes else [members]
        for index, part in enumerate(parts):
            packs[key if len(parts) == 1 else f"{key}-{index}"] = part
    return packs


def _split(members: list[TrialConfig], max_bytes: float) -> list[list[TrialConfig]]:
    """Split members into groups of sizes whose largest working set fits ``max_bytes``."""
    from raypi.sweep.cost import working_set_bytes

    groups: list[list[TrialConfig]] = []
    for size in sorted({t.size for t in members}):
        same = [t for t in members if t.size == size]
        grown = (groups[-1] if groups else []) + same
        if groups and working_set_bytes(grown) <= max_bytes:
            groups[-1] = grown
        else:
            groups.append(same)
    return [sorted(g, key=lambda t: (t.is_student, t.size)) for g in groups]


def stack_key(trial: TrialConfig) -> tuple:
    """What members of one stack share: stage, head and its shapes, precision, evaluation rows.

    Students of both methods stack together (their heads and shapes are one); under the
    ``inner`` protocol each size selects on its own rows, so sizes stack only with themselves.
    """
    method = METHOD_TABLE[trial.method]
    return (
        trial.is_student,
        method.head or trial.head,
        trial.head,
        trial.text_encoder if method.reads_report else None,
        trial.dtype,
        trial.size if trial.selection_split == "inner" else None,
    )


def plan_stacks(members: list[TrialConfig], stack: bool = True) -> list[list[TrialConfig]]:
    """Group a pack's members into stacks trained as one model, stage-1 stacks first.

    Args:
        members: The pack's members to train, stage-1 models first (``make_packs``' order).
        stack: False: every member alone (``--no-stack``).

    Returns:
        The stacks, each in the members' order; teachers always precede their students.
    """
    if not stack:
        return [[member] for member in members]
    groups: dict[tuple, list[TrialConfig]] = {}
    for member in members:
        groups.setdefault(stack_key(member), []).append(member)
    return sorted(groups.values(), key=lambda group: group[0].is_student)


@dataclass
class WorkingSet:
    """The tensors every member of a pack reads, loaded once."""

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

    def __post_init__(self) -> None:
        self.row = {image_id: index for index, image_id in enumerate(self.ids)}

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
    return WorkingSet(ids, image, val_image, text, bytes_served() - before)


def member_data(working: WorkingSet, trial: TrialConfig, teacher_probs=None):
    """Return a member's ``FitData`` (slices of the working set) and its training ids.

    Args:
        working: The pack's working set.
        trial: The member.
        teacher_probs: Its teacher's probabilities at its τ (students).

    Returns:
        ``(FitData, train_ids)``, equal to what ``_inputs.fit_data`` would load for it.
    """
    from raypi.sweep._inputs import training_rows
    from raypi.train import FitData

    rows = training_rows(trial)
    method = METHOD_TABLE[trial.method]
    train, select = _index(working, rows.train_ids), _index(working, rows.select_ids)
    data = FitData(
        train_tokens=_take(working.image, train) if method.reads_image else None,
        train_labels=torch.tensor(rows.train_labels, dtype=torch.long),
        val_tokens=working.val_image if method.reads_image else None,
        val_labels=torch.tensor(rows.val_labels, dtype=torch.long),
        teacher_probs=teacher_probs,
    )
    if select is not None:
        data.select_labels = torch.tensor(rows.select_labels, dtype=torch.long)
        if method.reads_image:
            data.select_tokens = _take(working.image, select)[:, 0]
    if method.reads_report:
        tokens, lengths, val_tokens, val_lengths = working.text[trial.text_encoder]
        data.train_text, data.train_text_lengths = _take(tokens, train), _take(lengths, train)
        data.val_text, data.val_text_lengths = val_tokens, val_lengths
        if select is not None:
            data.select_text, data.select_text_lengths = (
                _take(tokens, select),
                _take(lengths, select),
            )
    return data, rows.train_ids


def _index(working: WorkingSet, ids: list[str] | None) -> torch.Tensor | None:
    if ids is None:
        return None
    return torch.tensor([working.row[i] for i in ids], dtype=torch.long)


def _take(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of ``tensor``: a view when they are a prefix, else a copy."""
    count = len(index)
    if count and int(index[-1]) == count - 1 and torch.equal(index, torch.arange(count)):
        return tensor[:count]
    return tensor.index_select(0, index)
