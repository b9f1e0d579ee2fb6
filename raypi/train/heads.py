"""Heads on frozen tokens, built by name: the torch modules of ``raypi.heads``' table.

Each head's facts (pool, default learning rate, FLOP model, title) are in ``raypi.heads``;
here a factory is registered per name of that table, and a name the table lacks cannot be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from raypi.heads import HEAD_TABLE, image_head
from raypi.train._attention import AttentionPool


@dataclass(frozen=True)
class HeadShape:
    """What a head factory needs to know about its inputs and outputs."""

    image_dim: int | None
    """Width D of the image tokens (None for the text model)."""
    num_classes: int
    """Number of output logits."""
    text_dim: int | None = None
    """Width of the report tokens (teacher and text model)."""
    qkv_dim: int | None = None
    """Image attention q/k/v width; None = ``image_dim``."""
    text_qkv_dim: int | None = None
    """Text attention q/k/v width; None = ``text_dim``."""
    dropout: float = 0.2
    """Dropout on attention weights."""
    image_pool: str = "attention"
    """The image head whose pooling the teacher's image branch uses (``raypi.heads``)."""
    has_cls_token: bool = False
    """Whether token 0 is a CLS token (Mean-LP then skips it)."""


HeadFactory = Callable[[HeadShape], nn.Module]
_HEADS: dict[str, HeadFactory] = {}


def register_head(name: str) -> Callable[[HeadFactory], HeadFactory]:
    """Register a head factory under ``name``; a second registration of a name raises.

    Args:
        name: Registry key: a name of ``raypi.heads.HEAD_TABLE`` (another raises).

    Returns:
        A decorator that registers and returns the factory.
    """
    if name not in HEAD_TABLE:
        raise KeyError(f"head {name!r} has no entry in raypi.heads.HEAD_TABLE; add its spec there")

    def decorate(factory: HeadFactory) -> HeadFactory:
        if name in _HEADS:
            raise ValueError(f"head {name!r} is already registered")
        _HEADS[name] = factory
        return factory

    return decorate


def list_heads() -> list[str]:
    """Return the registered head names, sorted."""
    return sorted(_HEADS)


def build_head(name: str, shape: HeadShape) -> nn.Module:
    """Build the head registered as ``name``.

    Args:
        name: Registry key (see ``list_heads``).
        shape: Input widths, classes and options.

    Returns:
        A module whose ``forward(image=None, text=None, text_lengths=None, masks=None)``
        returns logits; its ``dropout_inputs`` names the inputs whose attention drops weights
        (in the order the forward runs them), the keys of ``masks``.
    """
    if name not in _HEADS:
        raise KeyError(f"unknown head {name!r}; known heads: {', '.join(list_heads())}")
    return _HEADS[name](shape)


class MeanPool(nn.Module):
    """LayerNorm, then the mean of the (local) tokens: [B, T, D] → [B, D]."""

    def __init__(self, dim: int, skip_first: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.start = 1 if skip_first else 0
        self.out_dim = dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pool tokens [B, T, D] to [B, D]."""
        return self.norm(tokens[:, self.start :]).mean(dim=1)


class ClsPool(nn.Module):
    """LayerNorm of token 0 (the CLS token of a ViT): [B, T, D] → [B, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pool tokens [B, T, D] to [B, D]."""
        return self.norm(tokens[:, 0])


POOL_MODULES: dict[str, Callable[[int, HeadShape], nn.Module]] = {
    "attention": lambda dim, shape: AttentionPool(dim, shape.qkv_dim, shape.dropout),
    "mean": lambda dim, shape: MeanPool(dim, skip_first=shape.has_cls_token),
    "cls": lambda dim, shape: ClsPool(dim),
}
"""The module of each pooling kind of ``raypi.heads.POOLS``, over tokens of width ``dim``."""


def _image_pool(head: str, shape: HeadShape) -> nn.Module:
    """Return the image pooling of the image head ``head`` (its ``raypi.heads`` pool)."""
    if shape.image_dim is None:
        raise ValueError("an image head needs image tokens (image_dim is None)")
    return POOL_MODULES[image_head(head).pool](shape.image_dim, shape)


class ImageClassifier(nn.Module):
    """An image pooling followed by a linear classifier."""

    def __init__(self, pool: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.pool = pool
        self.classifier = nn.Linear(pool.out_dim, num_classes)
        self.dropout_inputs = ("image",) if isinstance(pool, AttentionPool) else ()

    def forward(self, image=None, text=None, text_lengths=None, masks=None) -> torch.Tensor:
        """Logits [B, C] from image tokens [B, T, D] (``masks``: dropout masks by input)."""
        if not self.dropout_inputs:
            return self.classifier(self.pool(image))
        return self.classifier(self.pool(image, None, _mask(masks, "image")))


class TextClassifier(nn.Module):
    """Report-only model: masked attention pooling over report tokens, linear classifier."""

    def __init__(self, shape: HeadShape) -> None:
        super().__init__()
        if shape.text_dim is None:
            raise ValueError("the text model needs report tokens (text_dim is None)")
        self.pool = AttentionPool(shape.text_dim, shape.text_qkv_dim, shape.dropout)
        self.classifier = nn.Linear(self.pool.out_dim, shape.num_classes)
        self.dropout_inputs = ("text",)

    def forward(self, image=None, text=None, text_lengths=None, masks=None) -> torch.Tensor:
        """Logits [B, C] from report tokens [B, L, D] and their lengths [B]."""
        return self.classifier(self.pool(text, text_lengths, _mask(masks, "text")))


class Teacher(nn.Module):
    """Image branch + report branch, each pooled and normalized, concatenated, one classifier."""

    def __init__(self, shape: HeadShape) -> None:
        super().__init__()
        if shape.text_dim is None:
            raise ValueError("the teacher needs report tokens (text_dim is None)")
        self.image_pool = _image_pool(shape.image_pool, shape)
        self.text_pool = AttentionPool(shape.text_dim, shape.text_qkv_dim, shape.dropout)
        # The study's "additional normalization" of each pooled vector before concatenation,
        # so neither branch dominates the classifier by scale.
        self.image_norm = nn.LayerNorm(self.image_pool.out_dim)
        self.text_norm = nn.LayerNorm(self.text_pool.out_dim)
        width = self.image_pool.out_dim + self.text_pool.out_dim
        self.classifier = nn.Linear(width, shape.num_classes)
        attends = isinstance(self.image_pool, AttentionPool)
        # The order in which the forward draws its masks: the image branch runs first.
        self.dropout_inputs = ("image", "text") if attends else ("text",)

    def forward(self, image=None, text=None, text_lengths=None, masks=None) -> torch.Tensor:
        """Logits [B, C] from image tokens [B, T, D] and report tokens [B, L, D'] + lengths."""
        if isinstance(self.image_pool, AttentionPool):
            pooled = self.image_pool(image, None, _mask(masks, "image"))
        else:
            pooled = self.image_pool(image)
        image_vec = self.image_norm(pooled)
        text_vec = self.text_norm(self.text_pool(text, text_lengths, _mask(masks, "text")))
        return self.classifier(torch.cat([image_vec, text_vec], dim=1))


def _mask(masks: dict | None, key: str) -> torch.Tensor | None:
    return None if masks is None else masks.get(key)


@register_head("attention")
def attention_head(shape: HeadShape) -> nn.Module:
    """The study's default head: attention pooling and a linear classifier."""
    return ImageClassifier(_image_pool("attention", shape), shape.num_classes)


@register_head("mean_lp")
def mean_lp_head(shape: HeadShape) -> nn.Module:
    """Mean-LP: mean of the local tokens and a linear classifier."""
    return ImageClassifier(_image_pool("mean_lp", shape), shape.num_classes)


@register_head("cls_lp")
def cls_lp_head(shape: HeadShape) -> nn.Module:
    """CLS-LP: the CLS token (token 0) and a linear classifier."""
    return ImageClassifier(_image_pool("cls_lp", shape), shape.num_classes)


@register_head("teacher")
def teacher_head(shape: HeadShape) -> nn.Module:
    """The report-reading teacher of generalized distillation."""
    return Teacher(shape)


@register_head("text")
def text_head(shape: HeadShape) -> nn.Module:
    """The report-only model of the study's text-vs-image comparison."""
    return TextClassifier(shape)
