"""The pack planner: which trials run together, in what order, and what each pack asks Ray for.

A pack is what Ray Tune schedules: the trials of one (task, image encoder, seed) with the same
data settings (views, protocol, store) — all its sizes (nested subsets of one order) and
methods, report-reading or not. Its working set — the largest training subset × views, the
validation rows and the report tokens its members read — is loaded once
(``sweep.working_set``). Students and their teachers always share a pack (a teacher differs
from its student only in method, text encoder, λ and τ). A pack whose working set would not fit
``--max-pack-gb`` is split by size. Per-trial runs (``--no-packs``), the search's stage 1 and
its sampled students are packs of one: each trial alone, asking only its own resources.

Everything here is planning (no Ray, no torch, no feature reads): the pack key, the split by
size, the working-set bytes (from ``sweep.footprint``'s shapes), the host-memory request (held
at run time by ``sweep._memory``), the order (largest first) and the stacks a pack's members
train in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from raypi.methods import METHOD_TABLE
from raypi.sweep.footprint import (
    BYTES_PER_VALUE,
    token_shape,
    trial_work,
    validation_rows,
    views_read,
)
from raypi.sweep.grid import SweepSpec, TrialConfig
from raypi.sweep.resources import encoder_profile, trial_bundle

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
    groups: list[list[TrialConfig]] = []
    for size in sorted({t.size for t in members}):
        same = [t for t in members if t.size == size]
        grown = (groups[-1] if groups else []) + same
        if groups and working_set_bytes(grown) <= max_bytes:
            groups[-1] = grown
        else:
            groups.append(same)
    return [sorted(g, key=lambda t: (t.is_student, t.size)) for g in groups]


def working_set_bytes(members: list[TrialConfig]) -> int:
    """Return the feature bytes a pack of ``members`` holds in memory (``sweep.working_set``).

    Args:
        members: Trials of one pack.

    Returns:
        Bytes of the largest subset × views, the validation rows and the report tokens.
    """
    first = members[0]
    rows, val = max(t.size for t in members), validation_rows(first)
    total = 0
    if any(METHOD_TABLE[t.method].reads_image for t in members):
        tokens, dim = token_shape(first.encoder, first.features)
        total += (rows * views_read(first) + val) * tokens * dim * BYTES_PER_VALUE
    for name in {t.text_encoder for t in members if METHOD_TABLE[t.method].reads_report}:
        length, width = token_shape(name, first.features)
        total += (rows + val) * length * width * BYTES_PER_VALUE
    return int(total)


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


def trial_bundles(spec: SweepSpec, todo: list[TrialConfig], options) -> dict[str, dict]:
    """Return each trial's own resource bundle (GPU shares when ``options.use_gpu``).

    Args:
        spec: The sweep (its ``resource_overrides``).
        todo: The trials.
        options: ``LaunchOptions`` with ``use_gpu`` decided (``launch.resolve_gpu``).

    Returns:
        Trial key → bundle.
    """
    if options.use_gpu is None:
        raise ValueError("use_gpu is undecided: resolve it on the cluster first (resolve_gpu)")
    profiles: dict = {}
    bundles = {}
    for trial in todo:
        where = (trial.encoder, trial.features)
        if where not in profiles:
            profiles[where] = encoder_profile(*where, spec.resource_overrides)
        bundles[trial.trial_key] = trial_bundle(trial, profiles[where], options, options.use_gpu)
    return bundles


def pack_bundle(
    bundles: list[dict], members: list[TrialConfig], options, overrides: dict | None = None
) -> dict:
    """Return a pack's request: its largest member's, plus host memory for its working set.

    The host memory is, first found: the encoder's ``host_memory_gb`` in the sweep's
    ``resource_overrides``, ``options.pack_memory_gb``, or twice the working set plus 1.5 GB.
    The pack is held to it (``sweep._memory``).

    Args:
        bundles: The members' own bundles.
        members: The members.
        options: Launch options (``pack_memory_gb``).
        overrides: The sweep's ``resource_overrides``.

    Returns:
        The bundle, with ``memory`` in bytes.
    """
    merged: dict[str, float] = {}
    for bundle in bundles:
        for name, value in bundle.items():
            merged[name] = max(merged.get(name, 0.0), value)
    own = [(overrides or {}).get(t.encoder or "", {}).get("host_memory_gb") for t in members]
    own = [float(gb) for gb in own if gb is not None]
    if own:
        merged["memory"] = max(own) * 1e9
    elif options.pack_memory_gb == 0:
        return merged
    elif options.pack_memory_gb is not None:
        merged["memory"] = options.pack_memory_gb * 1e9
    else:
        merged["memory"] = 2 * working_set_bytes(members) + 1.5e9
    return merged


@dataclass(frozen=True)
class PackPlan:
    """The packs of one Tune run: members, requests and order."""

    packs: dict[str, list[TrialConfig]]
    """Pack key → members in training order (stage-1 models first); a pack of one's key is
    its trial key."""
    bundles: dict[str, dict]
    """Pack key → its Ray bundle."""
    order: list[str]
    """Pack keys in the order Tune gets them: largest FLOP first for packs (with few packs per
    slot the last long pack would otherwise run alone), the trials' own for packs of one."""
    together: bool = True
    """Whether trials sharing a working set run together (False: packs of one)."""

    @property
    def memory(self) -> dict[str, float]:
        """Pack key → host memory in bytes it asks for and is held to (only packs ask)."""
        return {k: b["memory"] for k, b in self.bundles.items() if self.together and "memory" in b}

    @property
    def keys(self) -> dict[str, list[str]]:
        """Pack key → its members' trial keys (what ``trainable.TrialPlan.packs`` holds)."""
        return {k: [t.trial_key for t in members] for k, members in self.packs.items()}


def plan_packs(spec: SweepSpec, todo: list[TrialConfig], options, together: bool = True):
    """Plan ``todo`` as packs (``together``) or as packs of one.

    Args:
        spec: The sweep.
        todo: Trials to run.
        options: ``LaunchOptions`` (``use_gpu`` decided; ``max_pack_gb``, ``pack_memory_gb``).
        together: Pack trials that share a working set; False: each trial alone, asking only
            its own resources (``--no-packs``, searches).

    Returns:
        The ``PackPlan``.
    """
    own = trial_bundles(spec, todo, options)
    if not together:
        packs = {t.trial_key: [t] for t in todo}
        return PackPlan(packs, dict(own), list(packs), together=False)
    limit = None if options.max_pack_gb is None else options.max_pack_gb * 1e9
    packs = make_packs(todo, limit)
    bundles = {
        key: pack_bundle([own[t.trial_key] for t in members], members, options,
                         spec.resource_overrides)
        for key, members in packs.items()
    }  # fmt: skip
    order = sorted(packs, key=lambda key: -sum(trial_work(t).flop for t in packs[key]))
    return PackPlan(packs, bundles, order)
