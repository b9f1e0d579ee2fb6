"""The one table of heads: what each pools, its default learning rate, FLOP model and title.

It sits beside ``raypi.methods`` and imports nothing heavy: the sweep checks and expands head
names, the report titles them, and neither imports torch. The torch modules are registered
against this table in ``raypi.train.heads`` (a head without an entry here cannot register), so
adding a head is a line here and its factory there.
"""

from __future__ import annotations

from dataclasses import dataclass

POOLS = ("attention", "mean", "cls")
"""How a head pools tokens: self-attention then mean (``AttentionPool``), mean of the local
tokens (skipping a CLS token), or the CLS token (token 0)."""
FLOP_MODELS = ("attention", "linear")
"""Forward-cost formulas of ``raypi.train._flops``: the attention layer as executed, or one
pass over the tokens (a linear probe's LayerNorm and pooling)."""


@dataclass(frozen=True)
class HeadSpec:
    """What the sweep, the trainer and the report need to know about one head."""

    name: str
    """Registry name (the ``head`` column of the results for image heads)."""
    title: str
    """Display name in figures and tables."""
    flops: str
    """Its FLOP model (``FLOP_MODELS``), for thread choice and cost estimates."""
    pool: str | None = None
    """How it pools the tokens it reads (``POOLS``); None for the teacher, whose image branch
    pools as the trial's image head and whose report branch attends."""
    lr: float | None = None
    """Default learning rate of a model with this image head (a teacher's follows its image
    head); None for heads a method picks (teacher, text model)."""
    needs_cls: bool = False
    """It reads a CLS token, so it is refused on encoders whose tokens have none."""

    def __post_init__(self) -> None:
        if self.flops not in FLOP_MODELS:
            raise ValueError(f"head {self.name!r}: flops must be one of {FLOP_MODELS}")
        if self.pool is not None and self.pool not in POOLS:
            raise ValueError(f"head {self.name!r}: pool must be one of {POOLS} or None")

    @property
    def is_image_head(self) -> bool:
        """Whether a grid may name it under ``heads`` (it reads image tokens only)."""
        return self.lr is not None


def _table(*specs: HeadSpec) -> dict[str, HeadSpec]:
    """Return ``name → spec``; a name given twice raises."""
    table: dict[str, HeadSpec] = {}
    for spec in specs:
        if spec.name in table:
            raise ValueError(f"head {spec.name!r} is in the table twice")
        table[spec.name] = spec
    return table


HEAD_TABLE = _table(
    HeadSpec("attention", "Attention head", "attention", pool="attention", lr=1e-4),
    HeadSpec("mean_lp", "Mean-LP", "linear", pool="mean", lr=1e-3),
    HeadSpec("cls_lp", "CLS-LP", "linear", pool="cls", lr=1e-3, needs_cls=True),
    HeadSpec("teacher", "Teacher (image + report)", "attention"),
    HeadSpec("text", "Text model", "attention", pool="attention"),
)
"""The one table of heads: the study's attention head and its two linear probes (image heads a
grid names, in the study's order), the report-reading teacher and the report-only text model
(the heads the ``teacher`` and ``text`` methods always train)."""

IMAGE_HEADS = tuple(name for name, spec in HEAD_TABLE.items() if spec.is_image_head)
"""Heads a grid may name, in the table's order."""


def head_spec(name: str) -> HeadSpec:
    """Return the table entry of ``name``, or raise naming the known heads.

    Args:
        name: A head name.

    Returns:
        Its spec.

    Raises:
        KeyError: ``name`` is not in the table.
    """
    if name not in HEAD_TABLE:
        raise KeyError(f"unknown head {name!r}; known heads: {', '.join(HEAD_TABLE)}")
    return HEAD_TABLE[name]


def image_head(name: str) -> HeadSpec:
    """Return the spec of the image head ``name``, or raise naming the image heads.

    Args:
        name: A grid's head name.

    Returns:
        Its spec.

    Raises:
        ValueError: ``name`` is no image head (unknown, or a head a method picks).
    """
    spec = HEAD_TABLE.get(name)
    if spec is None or not spec.is_image_head:
        raise ValueError(f"{name!r} is not an image head; image heads: {', '.join(IMAGE_HEADS)}")
    return spec
