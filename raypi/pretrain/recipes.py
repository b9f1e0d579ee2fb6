"""The demo encoders' pre-training recipes: plain settings, recorded in ``pretrain.json``.

Kept free of torch so that listing them (``raypi pretrain --help``) stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """How one demo encoder is pre-trained (every field is recorded in ``pretrain.json``)."""

    encoder: str
    """Registry name of the encoder the weights are for."""
    objective: str
    """What it learns: ``mlm``, ``simclr`` or ``clip``."""
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.01
    temperature: float | None = None
    """Softmax temperature of the contrastive objectives."""
    options: dict = field(default_factory=dict)
    """Objective-specific settings (mask share, augmentation strengths, text encoder)."""
    version: int = 1
    """Bumped whenever the code of the recipe changes what it builds (2: learns from the demo's
    separate pre-training draw, never from the task draw)."""


BERT_RECIPE = Recipe(
    encoder="demo_bert",
    objective="mlm",
    epochs=30,
    batch_size=64,
    lr=3e-3,
    options={"mask_share": 0.15, "max_length": 128, "min_frequency": 2},
    version=2,
)
AUGMENT = {"shift_px": 6, "contrast": 0.2, "brightness": 0.2, "noise": 0.1}
"""The image augmentations of both image recipes (shift, contrast, exposure, noise): the same
for the self-supervised and the aligned encoder, so the two differ in their objective only."""

SSL_RECIPE = Recipe(
    encoder="demo_vit_ssl",
    objective="simclr",
    epochs=40,
    batch_size=128,
    lr=2e-3,
    weight_decay=0.05,
    temperature=0.2,
    options={**AUGMENT, "projection": 32},
    version=2,
)
CLIP_RECIPE = Recipe(
    encoder="demo_vit_clip",
    objective="clip",
    epochs=60,
    batch_size=128,
    lr=2e-3,
    weight_decay=0.05,
    temperature=0.07,
    options={"text_encoder": "demo_bert", "max_length": 128, **AUGMENT},
    version=2,
)
