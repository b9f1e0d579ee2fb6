"""The one table of training methods (who reads what, who teaches whom) and the default λ.

It sits beside ``raypi.tasks`` and imports nothing heavy: train, sweep and report all read it,
and the report never imports ``raypi.train`` (torch) to learn what a method is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """What one training method reads and how it relates to the others."""

    name: str
    """Registry name (the ``method`` column of the results)."""
    reads_image: bool
    """Its model reads the image tokens."""
    reads_report: bool
    """Its model reads the report tokens (privileged information)."""
    teacher: str | None = None
    """The method whose kept epoch it distills from (None: it trains on labels only)."""
    head: str | None = None
    """The registry head it always trains (None: the configured image head)."""
    lr: float = 1e-4
    """Its default learning rate with the attention head (linear probes use 1e-3)."""

    @property
    def distills(self) -> bool:
        """Whether it is a student trained on a teacher's probabilities."""
        return self.teacher is not None

    @property
    def can_teach(self) -> bool:
        """Whether its kept epoch's outputs may teach a student (every non-student can)."""
        return not self.distills

    @property
    def involves_report(self) -> bool:
        """Whether it or its teacher reads reports (so it names a text encoder)."""
        return self.reads_report or (self.distills and METHOD_TABLE[self.teacher].reads_report)


METHOD_TABLE: dict[str, Method] = {
    m.name: m
    for m in (
        Method("image", reads_image=True, reads_report=False),
        Method("teacher", reads_image=True, reads_report=True, head="teacher"),
        Method("distill", reads_image=True, reads_report=False, teacher="teacher"),
        Method("self_distill", reads_image=True, reads_report=False, teacher="image"),
        Method("text", reads_image=False, reads_report=True, head="text"),
    )
}
"""The one table of training methods: image-only model, report-reading teacher, student
distilled from the teacher (generalized distillation), student distilled from an image-only
teacher (self-distillation), and the report-only model of the study's Table 7. train, sweep
and report read what a method does from here."""

TEXT_ONLY_MODEL = (
    "frozen text-encoder tokens (e.g. CXR-BERT) with raypi's attention head — the study "
    "fine-tunes the BioViL-T BERT itself for its text-only results (Table 7), so these are a "
    "lower bound on what the reports predict"
)
"""What raypi's ``text`` method is, against the study's text-only model: a deviation the README
and the report state wherever text-only results appear (fine-tuning the text encoder is out of
scope: raypi's encoders are frozen feature extractors)."""

METHODS = tuple(METHOD_TABLE)
"""Method names, in the order of the table."""


def method(name: str) -> Method:
    """Return the table entry of ``name``, or raise naming the known methods."""
    if name not in METHOD_TABLE:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHOD_TABLE[name]


DISTILL_METHODS = tuple(m.name for m in METHOD_TABLE.values() if m.distills)


DEFAULT_LAMBDA = 0.5
"""Default imitation weight λ. The study does not state λ; 0.5 weighs the hard labels and the
teacher's soft labels equally, the neutral point of [0, 1] that makes no prior claim about which
source is better. It is a default to sweep (``sweeps/tune_lambda.py``), not a finding."""
