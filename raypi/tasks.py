"""Task specs of the study (and of the built-in demo): classes, validation share, sizes → epochs, τ.

Every number here comes from the study (arXiv 2510.24385, Appendix A, Tables 2-6; PAPER.md).
A spec turns a training pool into concrete training sizes in two ways: the study's absolute
sample counts (``mode="study"``, to reproduce its figures) or the study's fractions of the pool
(``mode="fraction"``, for new data of another size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

KINDS = ("diagnostic", "auxiliary", "prognostic")
MODES = ("study", "fraction")


@dataclass(frozen=True)
class TrainingSize:
    """One training-set size of a task."""

    samples: int
    """Number of training images (the study's absolute count)."""
    epochs: int
    """Training epochs used for this size in the study."""
    fraction: float | None = None
    """Share of the training pool this size is in the study; None where it has none."""


@dataclass(frozen=True)
class TaskSpec:
    """What a classification task is and how the study trains on it."""

    name: str
    """Registry key, e.g. ``"readmission"``; also the task table's file name."""
    title: str
    """Human-readable name used in figures, e.g. ``"Readmission"``."""
    dataset: str
    """Dataset the task's images come from (``"mimic"``, ``"inspect"`` or ``"demo"``)."""
    kind: str
    """``"diagnostic"``, ``"auxiliary"`` or ``"prognostic"``."""
    classes: tuple[str, ...]
    """Class names; a task table's ``label`` is an index into this tuple."""
    val_share: float | None
    """Share of images held out for validation per seed; None for a fixed split."""
    fixed_split: dict | None
    """Fixed per-class split (``{"train_per_class": n, "val_per_class": m}``) or None."""
    sizes: tuple[TrainingSize, ...]
    """Training sizes with their epoch counts, smallest first."""
    tau: float
    """Default distillation temperature τ."""
    seeds: int = 5
    """Seeds the study averaged over."""
    images: int | None = None
    """Images in the study's task table (None for the demo, whose size is a parameter)."""
    description: str = field(default="", compare=False)
    """One line on what the label means."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if len(self.classes) < 2:
            raise ValueError(f"task {self.name!r}: needs at least two classes")
        if (self.val_share is None) == (self.fixed_split is None):
            raise ValueError(f"task {self.name!r}: give exactly one of val_share, fixed_split")
        samples = [size.samples for size in self.sizes]
        if samples != sorted(set(samples)):
            raise ValueError(f"task {self.name!r}: sizes must be strictly increasing")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def epochs_for(self, size: int | TrainingSize) -> int:
        """Return the epochs to train a given training size for.

        A size the study lists gets its epochs; any other gets the epochs of the largest listed
        size not above it (the smallest listed size's epochs below all of them).

        Args:
            size: Number of training samples, or a ``TrainingSize``.

        Returns:
            The number of epochs.
        """
        samples = size.samples if isinstance(size, TrainingSize) else int(size)
        epochs = self.sizes[0].epochs
        for listed in self.sizes:
            if listed.samples <= samples:
                epochs = listed.epochs
        return epochs

    def training_sizes(self, pool_size: int, mode: str = "study") -> tuple[TrainingSize, ...]:
        """Return the training sizes that a training pool of ``pool_size`` images allows.

        Args:
            pool_size: Number of images in the training part of a split.
            mode: ``"study"`` keeps the study's absolute sizes that fit in the pool;
                ``"fraction"`` applies the study's fractions to ``pool_size``.

        Returns:
            The sizes, smallest first, each with its epochs and fraction.

        Raises:
            ValueError: For an unknown mode, or fractions asked of a task that has none.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "study":
            return tuple(size for size in self.sizes if size.samples <= pool_size)
        if any(size.fraction is None for size in self.sizes):
            raise ValueError(f"task {self.name!r} has no fractions for its sizes; use mode='study'")
        sizes = []
        for size in self.sizes:
            samples = min(pool_size, max(1, math.floor(size.fraction * pool_size)))
            if not sizes or samples > sizes[-1].samples:
                sizes.append(TrainingSize(samples, size.epochs, size.fraction))
        return tuple(sizes)


def _sizes(*rows: tuple[int, int, float | None]) -> tuple[TrainingSize, ...]:
    return tuple(TrainingSize(samples, epochs, fraction) for samples, epochs, fraction in rows)


_STUDY = (
    TaskSpec(
        name="mimic_5x1200",
        title="MIMIC 5x1200",
        dataset="mimic",
        kind="diagnostic",
        classes=("Atelectasis", "Cardiomegaly", "Edema", "Pleural Effusion", "Consolidation"),
        val_share=None,
        fixed_split={"train_per_class": 1000, "val_per_class": 200},
        # Table 2 gives fractions for the four smallest sizes (of 4,000); 2,000 is the "50%"
        # of Table 7, so 4,000 is 100%.
        sizes=_sizes(
            (100, 100, 0.025),
            (200, 100, 0.05),
            (400, 100, 0.10),
            (1000, 50, 0.25),
            (2000, 50, 0.50),
            (4000, 50, 1.0),
        ),
        tau=2.5,
        images=6000,
        description="the one of five findings a subject's report names (CheXpert labels)",
    ),
    TaskSpec(
        name="age",
        title="Age",
        dataset="mimic",
        kind="auxiliary",
        classes=("18-40", "40-55", "55-65", "65-75", "75+"),
        val_share=0.10,
        fixed_split=None,
        sizes=_sizes((317, 100, 0.01), (792, 100, 0.025), (1585, 100, 0.05), (3171, 50, 0.10)),
        tau=0.25,
        images=35242,
        description="the patient's age bin at the study (5 bins as in RAD-DINO)",
    ),
    TaskSpec(
        name="discharge_3day",
        title="3-Day Discharge",
        dataset="mimic",
        kind="prognostic",
        classes=("not discharged within 3 days", "discharged within 3 days"),
        val_share=0.10,
        fixed_split=None,
        sizes=_sizes(
            (82, 100, 0.005),
            (165, 100, 0.01),
            (416, 100, 0.025),
            (829, 50, 0.05),
            (1662, 50, 0.10),
            (4145, 50, 0.25),
        ),
        tau=0.25,
        images=18490,
        description="discharge from the admission within 3 days of the image (MIMIC-IV)",
    ),
    TaskSpec(
        name="ph_12month",
        title="12-Month PH",
        dataset="inspect",
        kind="prognostic",
        classes=("no PH within 12 months", "PH within 12 months"),
        val_share=0.25,
        fixed_split=None,
        sizes=_sizes(
            (204, 100, 0.05),
            (408, 100, 0.10),
            (715, 100, 0.175),
            (1022, 100, 0.25),
            (2044, 50, 0.50),
        ),
        tau=0.25,
        images=5449,
        description="pulmonary hypertension diagnosed within 12 months (censored removed)",
    ),
    TaskSpec(
        name="readmission",
        title="Readmission",
        dataset="inspect",
        kind="prognostic",
        classes=("not readmitted", "readmitted within 12 months"),
        val_share=0.25,
        fixed_split=None,
        sizes=_sizes(
            (211, 100, 0.05),
            (423, 100, 0.10),
            (741, 100, 0.175),
            (1059, 100, 0.25),
            (2119, 50, 0.50),
        ),
        tau=0.25,
        seeds=10,
        images=5651,
        description="readmission within 12 months (censored removed, balanced)",
    ),
    TaskSpec(
        name="pulmonary_embolism",
        title="Pulmonary Embolism",
        dataset="inspect",
        kind="diagnostic",
        classes=("no PE", "PE"),
        val_share=0.25,
        fixed_split=None,
        # Appendix B.4 lists the sizes only; epochs follow the other INSPECT tasks.
        sizes=_sizes((351, 100, 0.05), (3515, 50, 0.50)),
        tau=0.25,
        images=9375,
        description="pulmonary embolism present in the CT (balanced)",
    ),
)

# The demo's sizes fit its default pool (n=1200 images, 25% validation → ~900 to train) and
# its epochs keep the whole demo sweep within minutes on two CPU cores.
_DEMO_SIZES = _sizes((100, 60, None), (200, 45, None), (400, 30, None))

_DEMO = (
    TaskSpec(
        name="demo_diagnostic",
        title="Demo Cardiomegaly",
        dataset="demo",
        kind="diagnostic",
        classes=("no cardiomegaly", "cardiomegaly"),
        val_share=0.25,
        fixed_split=None,
        sizes=_DEMO_SIZES,
        tau=2.5,
        description="the report's MeSH terms name cardiomegaly; drawn as an enlarged heart",
    ),
    TaskSpec(
        name="demo_auxiliary",
        title="Demo Age",
        dataset="demo",
        kind="auxiliary",
        classes=("young", "middle", "old"),
        val_share=0.25,
        fixed_split=None,
        sizes=_DEMO_SIZES,
        tau=0.25,
        description="the patient's age tertile: drawn as bone density, absent from the report",
    ),
    TaskSpec(
        name="demo_prognostic",
        title="Demo Outcome",
        dataset="demo",
        kind="prognostic",
        classes=("good outcome", "poor outcome"),
        val_share=0.25,
        fixed_split=None,
        sizes=_DEMO_SIZES,
        tau=0.25,
        description="noisy outcome of a latent severity the report shows more of than the image",
    ),
)


def _register(specs: tuple[TaskSpec, ...]) -> dict[str, TaskSpec]:
    registry: dict[str, TaskSpec] = {}
    for spec in specs:
        if spec.name in registry:
            raise ValueError(f"duplicate task name {spec.name!r}")
        registry[spec.name] = spec
    return registry


TASKS: dict[str, TaskSpec] = _register(_STUDY + _DEMO)
"""Every known task by name: the study's six, then the demo's three."""


def get_task(name: str) -> TaskSpec:
    """Return the spec of a task.

    Args:
        name: Task name, e.g. ``"readmission"``.

    Returns:
        The task's spec.

    Raises:
        KeyError: For an unknown name; the message lists the known ones.
    """
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def list_tasks(dataset: str | None = None) -> list[TaskSpec]:
    """Return the task specs, optionally only those of one dataset.

    Args:
        dataset: ``"mimic"``, ``"inspect"``, ``"demo"``, or None for all.

    Returns:
        Specs in registry order.
    """
    return [spec for spec in TASKS.values() if dataset is None or spec.dataset == dataset]
