"""Storage-saving token reductions: spatial pooling of the patch grid, CLS-only, mean-only.

Token layouts: ViTs emit a CLS token followed by a square grid of patch tokens (``1 + s²``);
ResNets emit a square grid (``s²``) and no CLS. The layout is read from the encoder spec's
``has_cls`` when it has one, else inferred from the token count.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MODES = ("all", "cls", "mean")


def _square(count: int) -> bool:
    return count > 0 and math.isqrt(count) ** 2 == count


def has_cls(token_count: int, declared: bool | None = None) -> bool:
    """Return whether tokens start with a CLS token (``declared`` wins when given)."""
    if declared is not None:
        return bool(declared)
    if _square(token_count):
        return False
    if _square(token_count - 1):
        return True
    raise ValueError(f"{token_count} tokens are neither a square grid nor CLS + a square grid")


def reduced_shape(token_shape: tuple[int, int], mode: str, pool: int, cls: bool) -> tuple[int, int]:
    """Return the ``(T, D)`` stored after reducing ``token_shape`` tokens.

    Args:
        token_shape: The encoder's ``(T, D)``.
        mode: ``all`` (every token, grid pooled by ``pool``), ``cls`` or ``mean``.
        pool: Side of the average-pooling window over the patch grid (1 = none).
        cls: Whether the first token is a CLS token.

    Returns:
        The stored token shape.
    """
    count, width = token_shape
    _check(mode, pool, cls, count)
    if mode != "all":
        return 1, width
    side = math.isqrt(count - int(cls))
    pooled = math.ceil(side / pool)
    return int(cls) + pooled * pooled, width


def _check(mode: str, pool: int, cls: bool, count: int) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown token mode {mode!r}; expected one of {MODES}")
    if pool < 1:
        raise ValueError(f"pool must be >= 1, got {pool}")
    if mode == "cls" and not cls:
        raise ValueError("this encoder emits no CLS token; use tokens='mean' or 'all'")
    if mode != "all" and pool != 1:
        raise ValueError(f"pool={pool} applies only to tokens='all'")
    if not _square(count - int(cls)):
        raise ValueError(f"{count - int(cls)} patch tokens do not form a square grid")


def reduce_tokens(tokens: torch.Tensor, mode: str, pool: int, cls: bool) -> torch.Tensor:
    """Reduce ``[B, T, D]`` tokens as ``reduced_shape`` describes.

    Pooling averages each ``pool × pool`` window of the patch grid; a partial window at the
    grid's edge (e.g. 37 = 18·2 + 1) is averaged over the patches it holds. The CLS token is
    kept as is, in front.

    Args:
        tokens: Encoder output ``[B, T, D]``.
        mode: ``all``, ``cls`` or ``mean``.
        pool: Pooling window side (1 = none).
        cls: Whether the first token is a CLS token.

    Returns:
        The reduced tokens ``[B, T', D]``.
    """
    _check(mode, pool, cls, tokens.shape[1])
    head, patches = tokens[:, : int(cls)], tokens[:, int(cls) :]
    if mode == "cls":
        return head
    if mode == "mean":
        return patches.mean(dim=1, keepdim=True)
    if pool == 1:
        return tokens
    batch, count, width = patches.shape
    side = math.isqrt(count)
    grid = patches.transpose(1, 2).reshape(batch, width, side, side)
    pooled = F.avg_pool2d(grid, pool, stride=pool, ceil_mode=True)
    return torch.cat([head, pooled.flatten(2).transpose(1, 2)], dim=1)
