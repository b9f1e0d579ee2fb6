"""A sweep definition (frozen dataclasses) and its expansion into trial configs.

A sweep is a name, where each dataset's tables and features live, and one or more grid blocks
(tasks × image encoders × sizes × seeds × methods × heads × λ × τ × text encoders). Expanding
it gives one ``TrialConfig`` (``raypi.sweep.trial``, with its stable keys) per trial, each
student's teacher included once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from raypi.heads import image_head
from raypi.methods import METHOD_TABLE, METHODS
from raypi.sweep import _sizes
from raypi.sweep._cls import check_cls_heads
from raypi.sweep.trial import STUDENT_METHODS, TrialConfig

TEXT_METHODS = tuple(m.name for m in METHOD_TABLE.values() if m.involves_report)
"""Methods whose model (or whose teacher) reads report features: they name a text encoder."""
SIZE_MODES = ("study", "fraction")
"""How a grid's size picks read the task's sizes: the study's sample counts, or its fractions
of each seed's training pool."""
TEACHER_SELECTIONS = ("auc", "loss", "last")
"""How every model picks its kept epoch (``raypi.train.config.SELECTIONS``)."""
SELECTION_SPLITS = ("val", "inner")
"""Where choices are made: ``val``, the study's protocol (teacher epochs and λ/τ chosen on the
reported validation split), or ``inner``, an inner patient-grouped split carved from each
trial's training rows (the reported validation split is never used for a choice)."""
SELF_DISTILL_TEACHERS = ("same_seed", "independent")
"""Which image-only model teaches a self-distilled student: ``same_seed``, the image-only arm of
the student's own seed (its split, training subset, initialisation and batch order), or
``independent``, another image-only model on the same split and subset with its own
initialisation and batch order (``init_seed``). The study calls the teacher "another image-only
model of the same type" and counts four trained models per backbone and seed (image-only,
teacher, distilled, self-distilled: "4 methods for each of the 6 backbones over 5 seeds"),
which leaves no fifth model to teach; ``same_seed`` is therefore the default, ``independent``
the reading of "another" as a separately initialised model."""
DEFAULT_INNER_SHARE = 0.2
"""Share of a trial's training patients held out for choices under ``selection_split: inner``."""


@dataclass(frozen=True)
class DataSource:
    """Where one dataset's tables and feature store are."""

    root: str
    """Dataset root (``dataset.parquet``, ``tasks/``), local or ``s3://``."""
    features: str
    """Feature store folder of the dataset, local or ``s3://``."""


@dataclass(frozen=True)
class Grid:
    """One block of the grid; a sweep is the union of its blocks (deduplicated by key)."""

    tasks: tuple[str, ...]
    """Task names (``raypi.tasks``)."""
    encoders: tuple[str, ...]
    """Image encoder names (``raypi.encoders``) whose features are in the store."""
    methods: tuple[str, ...] = ("image", "teacher", "distill", "self_distill")
    """Subset of ``METHODS``; students bring in their teachers automatically."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Seeds: each changes the split, the training subset and the head initialisation."""
    sizes: tuple[int, ...] = ()
    """Training sizes in samples; empty = the task's own sizes (see ``size_picks``)."""
    size_picks: tuple[int, ...] = ()
    """Indexes into the task's sizes (``-1`` = largest) when ``sizes`` is empty; empty = all."""
    size_mode: str = "study"
    """``study`` (the study's sample counts) or ``fraction`` (its fractions of the pool)."""
    heads: tuple[str, ...] = ("attention",)
    """Image heads (``raypi.heads.IMAGE_HEADS``): ``attention``, ``mean_lp``, ``cls_lp``."""
    lams: tuple[float, ...] = (0.5,)
    """Imitation weights λ of students."""
    taus: tuple[float, ...] = ()
    """Temperatures τ of students; empty = the task's default τ."""
    text_encoders: tuple[str, ...] = ("cxr_bert",)
    """Text encoders of teachers (and of the text-only model)."""
    lr: float | None = None
    """Learning rate; None = the head's (``raypi.heads``: the study's 1e-4 for the attention
    head, 1e-3 for the linear probes)."""
    batch_size: int = 64
    """Training batch size."""
    epochs: int | None = None
    """Epochs for every size; None = the task's epochs for the size (the study's)."""
    views: int | None = None
    """Augmented training views to use (1..views); None = every view in the store."""
    dtype: str = "fp32"
    """Precision: ``fp32`` (the study's), ``tf32`` (TF32 matmuls on CUDA) or ``bf16`` autocast."""
    validate_every: int = 1
    """Validate every k-th epoch and the last; k > 1 only with ``teacher_selection: last`` (a
    model that chooses nothing). 1 = every epoch, the study's curves."""
    teacher_selection: str = "auc"
    """Kept epoch of every model (what a teacher teaches from): ``auc`` (the study's highest
    AUC; ties go to the later epoch), ``loss`` or ``last``."""
    selection_split: str = "val"
    """``val`` (the study's protocol) or ``inner`` (see ``SELECTION_SPLITS``)."""
    inner_share: float = DEFAULT_INNER_SHARE
    """Share of the training patients held out for choices under ``selection_split: inner``."""
    self_distill_teacher: str = "same_seed"
    """Teacher of self-distilled students (``SELF_DISTILL_TEACHERS``)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ValueError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
        for name, choices in (
            ("size_mode", SIZE_MODES),
            ("teacher_selection", TEACHER_SELECTIONS),
            ("selection_split", SELECTION_SPLITS),
            ("self_distill_teacher", SELF_DISTILL_TEACHERS),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        from raypi.train.config import DTYPES

        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.validate_every > 1 and self.teacher_selection != "last":
            raise ValueError(
                f"validate_every={self.validate_every} needs teacher_selection 'last' (a model "
                "that chooses its epoch must validate every epoch)"
            )
        if not 0.0 < self.inner_share < 1.0:
            raise ValueError(f"inner_share must lie in (0, 1), got {self.inner_share}")
        if not (self.tasks and self.encoders and self.methods and self.seeds):
            raise ValueError("a grid needs at least one task, encoder, method and seed")


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep: its name, its data, and its grid blocks."""

    name: str
    """Sweep name; results go to ``<storage>/<name>/``."""
    grids: tuple[Grid, ...]
    """Grid blocks; the sweep's trials are the union of theirs."""
    data: dict[str, DataSource] = field(default_factory=dict)
    """Dataset name (``TaskSpec.dataset``) → its tables and features; the demo's default
    locations are used for ``demo`` when it is absent."""
    resource_overrides: dict[str, dict] = field(default_factory=dict)
    """Encoder name → ``{"gpu_share": float, "needs_big_gpu": bool, "host_memory_gb": float}``
    overriding its hint (``host_memory_gb``: what each of its packs asks Ray for and is held to)."""
    random_weights: bool = False
    """Accept features extracted from the random initialisation of encoders that have published
    weights (``raypi extract --random-weights``); a sweep without it refuses such stores."""

    def source(self, dataset: str) -> DataSource:
        """Return the data source of ``dataset``.

        Args:
            dataset: Dataset name, e.g. ``demo``.

        Returns:
            The source with absolute paths.
        """
        if dataset in self.data:
            return self.data[dataset]
        if dataset == "demo":
            from raypi import paths

            return DataSource(str(paths.demo_dataset()), str(paths.demo_features()))
        raise KeyError(f"sweep {self.name!r} names no data for dataset {dataset!r}")

    def smoke(self) -> SweepSpec:
        """Return the smallest sweep of the same shape: one of everything, two epochs."""
        first = self.grids[0]
        grid = replace(
            first,
            tasks=first.tasks[:1],
            encoders=first.encoders[:1],
            seeds=first.seeds[:1],
            sizes=first.sizes[:1],
            size_picks=first.size_picks[:1] or (0,),
            heads=first.heads[:1],
            lams=first.lams[:1],
            taus=first.taus[:1],
            text_encoders=first.text_encoders[:1],
            epochs=2,
        )
        return replace(self, name=f"{self.name}_smoke", grids=(grid,))


def expand(spec: SweepSpec) -> list[TrialConfig]:
    """Return every trial of the sweep once, stage-1 models included, in a stable order.

    Args:
        spec: The sweep.

    Returns:
        Configs: stage 1 (teachers, image-only, text-only) first, then students.
    """
    trials: dict[str, TrialConfig] = {}
    for grid in spec.grids:
        check_cls_heads(grid.heads, grid.encoders)
        for config in _grid_trials(spec, grid):
            if config.is_student:
                teacher = config.teacher()
                trials.setdefault(teacher.trial_key, teacher)
                config = replace(config, teacher_key=teacher.trial_key)
            trials.setdefault(config.trial_key, config)
    ordered = sorted(trials.values(), key=lambda c: c.is_student)
    return ordered


def stages(trials: list[TrialConfig]) -> tuple[list[TrialConfig], list[TrialConfig]]:
    """Split trials into stage 1 (no teacher needed) and stage 2 (students)."""
    return [t for t in trials if not t.is_student], [t for t in trials if t.is_student]


def _grid_trials(spec: SweepSpec, grid: Grid):
    from raypi.tasks import get_task

    for task_name in grid.tasks:
        task = get_task(task_name)
        source = spec.source(task.dataset)
        for seed in grid.seeds:
            for size, epochs in _sizes.resolve(grid, task, source.root, seed):
                base = dict(
                    task=task.name,
                    dataset=task.dataset,
                    size=int(size),
                    seed=int(seed),
                    batch_size=int(grid.batch_size),
                    epochs=int(grid.epochs or epochs),
                    views=grid.views,
                    dtype=grid.dtype,
                    validate_every=int(grid.validate_every),
                    teacher_selection=grid.teacher_selection,
                    selection_split=grid.selection_split,
                    inner_share=_inner_share(grid),
                    dataset_root=source.root,
                    features=source.features,
                )
                yield from _method_trials(grid, task, base)


def _inner_share(grid: Grid) -> float | None:
    return float(grid.inner_share) if grid.selection_split == "inner" else None


def _method_trials(grid: Grid, task, base: dict):
    taus = grid.taus or (task.tau,)
    for encoder in grid.encoders:
        for head in grid.heads:
            lr = grid.lr or image_head(head).lr
            common = dict(base, encoder=encoder, head=head, lr=float(lr))
            for method in grid.methods:
                texts = grid.text_encoders if method in TEXT_METHODS else (None,)
                students = method in STUDENT_METHODS
                # A model that sees no image: one per text encoder, not per backbone.
                spec = METHOD_TABLE[method]
                own = {"encoder": None, "head": "attention", "lr": float(grid.lr or spec.lr)}
                own = own if not spec.reads_image else {}
                for text in texts:
                    for lam in grid.lams if students else (None,):
                        for tau in taus if students else (None,):
                            yield TrialConfig(
                                **{**common, **own},
                                method=method,
                                text_encoder=text,
                                lam=None if lam is None else float(lam),
                                tau=None if tau is None else float(tau),
                                self_distill_teacher=_teacher_of(grid, method),
                            )


def _teacher_of(grid: Grid, method: str) -> str | None:
    return grid.self_distill_teacher if method == "self_distill" else None
