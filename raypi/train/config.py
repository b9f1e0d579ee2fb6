"""The settings of one fit: a frozen dataclass checked on construction."""

from __future__ import annotations

from dataclasses import dataclass

from raypi.methods import DEFAULT_LAMBDA, METHOD_TABLE, METHODS, Method

DTYPES = ("fp32", "tf32", "bf16")
"""Precision of a fit: ``fp32`` (the study's), ``tf32`` (fp32 with TF32 matmuls, on CUDA only;
on the CPU it computes as ``fp32``) or ``bf16`` (bfloat16 autocast)."""
SELECTIONS = ("auc", "loss", "last")
"""How a fit picks the epoch it keeps (the one a teacher teaches from): ``auc``, the study's
rule, keeps the highest selection-split AUC and breaks ties toward the *later* epoch, so a
model whose AUC plateaus from epoch 1 is not kept untrained; ``loss`` keeps the lowest
selection-split cross-entropy (later on ties); ``last`` keeps the final epoch."""
TRAIN_VIEWS = ("augmented", "all")


@dataclass(frozen=True)
class FitConfig:
    """Settings of one fit; defaults follow the study (Adam, lr 1e-4, batch 64)."""

    head: str = "attention"
    """Image head: ``attention`` (study default), ``mean_lp`` or ``cls_lp`` (linear probes; the
    study trains those with lr 1e-3). A teacher uses it for its image branch."""
    method: str = "image"
    """One of ``METHODS``."""
    num_classes: int = 2
    """Number of classes; binary tasks use 2 (softmax over two logits)."""
    lr: float = 1e-4
    """Adam learning rate."""
    batch_size: int = 64
    """Training batch size; the last batch of an epoch may be smaller."""
    epochs: int = 100
    """Number of epochs (the task spec's epochs for the training size)."""
    lam: float = DEFAULT_LAMBDA
    """Imitation weight λ in [0, 1] of generalized distillation (distill/self_distill only)."""
    selection: str = "auc"
    """Which epoch the fit keeps: one of ``SELECTIONS``. The study keeps its teachers at the
    highest validation AUC and does not say how it breaks ties; raypi breaks them toward the
    later epoch (``loss`` and ``last`` are the named alternatives)."""
    seed: int = 0
    """Seed of the head initialisation, dropout, batch order and view sampling."""
    device: str = "cpu"
    """Torch device, e.g. ``cpu`` or ``cuda:0``."""
    dtype: str = "fp32"
    """One of ``DTYPES``: ``fp32``, ``tf32`` (TF32 matmuls on CUDA) or ``bf16`` (bfloat16
    autocast; parameters and losses stay fp32)."""
    validate_every: int = 1
    """Validate after every k-th epoch and the last (1 = every epoch, the study's curves).
    Only a fit that keeps its last epoch (``selection: last``) may skip epochs: the others
    choose an epoch on the validated scores."""
    qkv_dim: int | None = None
    """Width of query/key/value of the image attention; None = input width (the study's)."""
    dropout: float = 0.2
    """Dropout on the attention weights (the study's 0.2)."""
    text_qkv_dim: int | None = None
    """Width of query/key/value of the text attention; None = text input width."""
    has_cls_token: bool = False
    """Whether token 0 is a CLS token. Mean-LP then averages tokens 1..T-1 (the local tokens);
    CLS-LP always reads token 0."""
    train_views: str = "augmented"
    """With V > 1 cached views, ``augmented`` samples each epoch's view from 1..V-1 (the study
    always trains on augmented crops) and ``all`` from 0..V-1. With V = 1, view 0 is used."""
    eval_batch_size: int = 512
    """Batch size of validation and of the teacher's pass over the training rows."""
    keep_train_outputs: bool | None = None
    """Return best-epoch logits on the training rows; None = for the methods
    that can teach (image, teacher, text), not for students."""
    context: str = ""
    """Label of this fit (e.g. ``task/seed``) used in warnings; never holds patient data."""
    compile: bool = False
    """Wrap the head in ``torch.compile`` (pays only for long fits on a GPU)."""
    threads: int | None = None
    """CPU threads during the fit; None = 1 for small heads (where thread hand-offs cost more
    than they save, badly so on a shared CPU) and torch's setting otherwise."""

    def __post_init__(self) -> None:
        _check_choice("method", self.method, METHODS)
        _check_choice("dtype", self.dtype, DTYPES)
        _check_choice("train_views", self.train_views, TRAIN_VIEWS)
        _check_choice("selection", self.selection, SELECTIONS)
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"FitConfig.lam must lie in [0, 1], got {self.lam}")
        if self.validate_every > 1 and self.selection != "last":
            raise ValueError(
                f"FitConfig.validate_every={self.validate_every} needs selection 'last' (a fit "
                f"that chooses its epoch by {self.selection!r} must validate every epoch)"
            )
        for name in ("num_classes", "batch_size", "epochs", "eval_batch_size", "validate_every"):
            if getattr(self, name) < (2 if name == "num_classes" else 1):
                raise ValueError(f"FitConfig.{name} is too small: {getattr(self, name)}")

    @property
    def spec(self) -> Method:
        """The method's entry of ``METHOD_TABLE``."""
        return METHOD_TABLE[self.method]

    @property
    def distills(self) -> bool:
        """Whether this fit is a student trained on teacher probabilities."""
        return self.spec.distills

    @property
    def head_name(self) -> str:
        """Registry name of the model this fit trains (see ``raypi.train.heads``)."""
        return self.spec.head or self.head

    @property
    def returns_train_outputs(self) -> bool:
        """Whether the fit returns best-epoch outputs on the training rows."""
        if self.keep_train_outputs is not None:
            return self.keep_train_outputs
        return not self.distills


def _check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"FitConfig.{field} must be one of {choices}, got {value!r}")
