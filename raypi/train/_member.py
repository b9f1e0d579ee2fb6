"""One member's own pieces, built the same way by ``fit`` and by ``fit_stack``.

A member's parameters come from the global generator seeded with its seed (as ``build_head``
draws them); its batch order and view draws come from a CPU generator seeded with its seed;
its dropout masks come from a generator that continues the global stream where the head's
initialisation left it. Drawing masks from that generator is bitwise what ``F.dropout`` draws
from the global generator on the CPU, so a fit reads the same with or without stacking.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from raypi.train._placement import Placed, place
from raypi.train.config import FitConfig
from raypi.train.data import FitData
from raypi.train.heads import HeadShape, build_head


@dataclass
class Member:
    """A member's head, placed tensors and random streams."""

    model: torch.nn.Module
    """Its head, on the device, initialised under its seed."""
    placed: Placed
    """Its tensors on the device."""
    order: torch.Generator
    """CPU generator of its batch order and view draws."""
    dropout: torch.Generator
    """Generator of its dropout masks, on the device."""
    config: FitConfig
    """Its settings."""


def build_member(data: FitData, config: FitConfig, device: torch.device) -> Member:
    """Place a member's tensors and build its head and streams under its seed.

    Args:
        data: The member's tensors.
        config: The member's settings.
        device: Target device.

    Returns:
        The member; the global random state is left as it was.
    """
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(config.seed)
        placed = place(data, config, device)
        model = build_head(config.head_name, head_shape(data, config)).to(device)
        dropout = torch.Generator(device=device)
        if device.type == "cpu":
            dropout.set_state(torch.get_rng_state())
        else:
            dropout.manual_seed(config.seed)
    order = torch.Generator().manual_seed(config.seed)
    return Member(model, placed, order, dropout, config)


def head_shape(data: FitData, config: FitConfig) -> HeadShape:
    """Return the shape of the head a fit of ``config`` on ``data`` trains."""
    return HeadShape(
        image_dim=None if data.train_tokens is None else data.train_tokens.shape[-1],
        num_classes=config.num_classes,
        text_dim=None if data.train_text is None else data.train_text.shape[-1],
        qkv_dim=config.qkv_dim,
        text_qkv_dim=config.text_qkv_dim,
        dropout=config.dropout,
        image_pool=config.head,
        has_cls_token=config.has_cls_token,
    )


def epoch_order(member: Member) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw a member's next epoch: training-row order and flat image rows (index·V + view).

    Returns:
        ``(index, rows)`` on the member's device.
    """
    placed, config = member.placed, member.config
    n, views = placed.num_train, placed.views
    order = torch.randperm(n, generator=member.order)
    view = sample_views(n, views, config.train_views, member.order)
    device = placed.train_labels.device
    index = order.to(device, non_blocking=True)
    return index, (order * views + view).to(device, non_blocking=True)


def sample_views(n: int, views: int, mode: str, generator: torch.Generator) -> torch.Tensor:
    """One cached view per training row: augmented views 1..V-1 (or all, by ``mode``)."""
    if views == 1:
        return torch.zeros(n, dtype=torch.long)
    low = 1 if mode == "augmented" else 0
    return torch.randint(low, views, (n,), generator=generator)


def dropout_masks(member: Member, inputs: dict) -> dict | None:
    """Draw the dropout masks of one training batch from the member's stream.

    Masks are drawn per attention pool in the order the head's forward runs them, each of
    the shape of its attention weights [B, T, T], scaled by 1/(1-p) as ``F.dropout`` does.

    Args:
        member: The member.
        inputs: The batch's inputs (``Placed.train_batch``).

    Returns:
        Pool name → mask, or None when the head drops nothing.
    """
    p = member.config.dropout
    keys = getattr(member.model, "dropout_inputs", ())
    if p <= 0 or not keys:
        return None
    masks = {}
    for key in keys:
        tokens = inputs[key]
        rows, count = tokens.shape[0], tokens.shape[1]
        mask = torch.empty(rows, count, count, dtype=tokens.dtype, device=tokens.device)
        masks[key] = mask.bernoulli_(1 - p, generator=member.dropout).div_(1 - p)
    return masks


@contextlib.contextmanager
def precision(dtype: str, device: torch.device):
    """Turn on TF32 matmuls on CUDA for ``tf32`` (restored afterwards); nothing otherwise."""
    if dtype != "tf32" or device.type != "cuda":
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def autocast(dtype: str, device: torch.device):
    """bfloat16 autocast for ``bf16``; nothing for ``fp32`` and ``tf32``."""
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
