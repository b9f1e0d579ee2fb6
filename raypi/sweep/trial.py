"""One trial's config (``TrialConfig``) and its stable keys: what a trial trains, hashed.

A trial's ``trial_key`` hashes everything that defines what it trains — never paths or the
sweep name — so a rerun, a move to S3 or a second sweep finds the same keys. A student's
``teacher_key`` is the key of the teacher (``teacher``) or image-only model (``image``) it
distills from: stage 1 trains each distinct key once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace

from raypi.methods import METHOD_TABLE

STUDENT_METHODS = tuple(m.name for m in METHOD_TABLE.values() if m.distills)
"""Methods that distill from a stage-1 model (the students of stage 2)."""
KEY_VERSION = 2
"""Bumped when the meaning of a trial config changes, so old results are not reused (2: ties
of the kept epoch go to the later epoch; protocol fields)."""
INDEPENDENT_SEED_OFFSET = 1000
"""An independent self-distillation teacher of seed ``s`` initialises with ``s + 1000``."""


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines one trial; Tune's dict converts to it only via ``from_dict``."""

    task: str
    """Task name."""
    dataset: str
    """Dataset name of the task."""
    encoder: str | None
    """Image encoder (None for the text-only method, which sees no image)."""
    text_encoder: str | None
    """Text encoder of the model or of its teacher (None when no report is involved)."""
    method: str
    """One of ``METHODS``."""
    head: str
    """Image head."""
    size: int
    """Training samples."""
    seed: int
    """Seed of split, subset and initialisation."""
    lam: float | None
    """λ (students only)."""
    tau: float | None
    """τ (students only)."""
    lr: float
    """Learning rate."""
    batch_size: int
    """Batch size."""
    epochs: int
    """Epochs."""
    views: int | None
    """Augmented views used (None = all stored)."""
    dtype: str
    """Precision (``raypi.train.config.DTYPES``)."""
    teacher_selection: str = "auc"
    """How the trial's model picks its kept epoch (``TEACHER_SELECTIONS``)."""
    selection_split: str = "val"
    """Where the kept epoch (and a searched λ/τ) is chosen (``SELECTION_SPLITS``)."""
    inner_share: float | None = None
    """Share of training patients held out for choices (``inner`` only; None under ``val``)."""
    teacher_key: str | None = None
    """Key of the teacher a student distills from."""
    self_distill_teacher: str | None = None
    """Self-distilled students: which image-only model teaches them (``SELF_DISTILL_TEACHERS``);
    also set on an ``independent`` teacher itself. None for every other trial."""
    init_seed: int | None = None
    """Seed of the head initialisation, dropout and batch order when it differs from ``seed``
    (an independent self-distillation teacher); None = ``seed``."""
    validate_every: int = 1
    """Validate every k-th epoch and the last (keyed only when not 1, so keys of trials
    from before the field are unchanged)."""
    dataset_root: str = field(default="", compare=False)
    """Absolute dataset root (not part of the key)."""
    features: str = field(default="", compare=False)
    """Absolute feature store (not part of the key)."""

    @property
    def trial_key(self) -> str:
        """Stable 16-hex-digit hash of the fields that define the trial."""
        return _hash(self._keyed())

    @property
    def config_key(self) -> str:
        """Hash of the trial's settings without its seed: trials of one configuration share it.

        The report averages over seeds only within one ``config_key`` (the teacher key is left
        out too, since it differs by seed).
        """
        seeds = ("seed", "init_seed", "teacher_key")
        return _hash({k: v for k, v in self._keyed().items() if k not in seeds})

    def _keyed(self) -> dict:
        """The fields a key hashes: not paths, not later fields at their neutral value."""
        return {k: v for k, v in asdict(self).items()
                if k not in _NOT_KEYED and v not in _UNKEYED_AT.get(k, ())}  # fmt: skip

    @property
    def fit_seed(self) -> int:
        """Seed of the fit itself: initialisation, dropout, batch order and view sampling."""
        return self.seed if self.init_seed is None else self.init_seed

    @property
    def is_student(self) -> bool:
        """Whether the trial distills from a stage-1 model."""
        return self.method in STUDENT_METHODS

    def to_dict(self) -> dict:
        """Return the flat dict form (what travels through Tune), key included."""
        return {**asdict(self), "trial_key": self.trial_key, "config_key": self.config_key}

    @classmethod
    def from_dict(cls, values: dict) -> TrialConfig:
        """Build a config from its dict form, checking the key when one is given.

        Args:
            values: The dict from ``to_dict`` (extra keys are ignored).

        Returns:
            The config.
        """
        config = cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
        if "trial_key" in values and values["trial_key"] != config.trial_key:
            raise ValueError(f"trial config does not match its key {values['trial_key']}")
        return config

    def teacher(self) -> TrialConfig:
        """Return the stage-1 config this student distills from."""
        if not self.is_student:
            raise ValueError(f"method {self.method!r} has no teacher")
        method = METHOD_TABLE[self.method].teacher
        text = self.text_encoder if METHOD_TABLE[method].involves_report else None
        teacher = replace(
            self, method=method, text_encoder=text, lam=None, tau=None, teacher_key=None
        )
        if self.self_distill_teacher == "independent":
            return replace(teacher, init_seed=self.seed + INDEPENDENT_SEED_OFFSET)
        return replace(teacher, self_distill_teacher=None)


_NOT_KEYED = ("dataset_root", "features")
_UNKEYED_AT = {
    "self_distill_teacher": (None, "same_seed"),
    "init_seed": (None,),
    "validate_every": (1,),
}
"""Fields added after key version 2: they enter the key only at a value that changes what a
trial trained before them (so older results keep their keys)."""


def _hash(values: dict) -> str:
    text = json.dumps({"v": KEY_VERSION, **values}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
