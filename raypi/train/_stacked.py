"""Pieces of a stacked step: per-member Adam over stacked parameters, padded member batches.

``MemberAdam`` updates only the members that took a step: a member that sits a step out (its
epoch has fewer batches) or has left the stack does not drift under its momentum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from raypi.train._member import Member, dropout_masks


class MemberAdam:
    """One ``torch.optim.Adam`` over stacked parameters, one parameter group per member.

    Each member's group holds detached views of its slices of the stacked leaves, so PyTorch's
    own (fused, where the device has it) Adam updates every member exactly as ``fit``'s
    optimizer updates it alone, with its own learning rate and state. A member that takes no
    step gets no gradient, and Adam leaves a parameter without gradient (and its state) alone.
    """

    def __init__(self, params: dict[str, torch.Tensor], lrs: list[float]) -> None:
        self.params = params
        self.views = [{name: value.detach()[member] for name, value in params.items()}
                      for member in range(len(lrs))]  # fmt: skip
        groups = [{"params": list(views.values()), "lr": lr} for views, lr in zip(self.views, lrs)]
        try:
            self.optimizer = torch.optim.Adam(groups, fused=True)
        except (RuntimeError, TypeError):  # as fit's: fused Adam is missing for some devices
            self.optimizer = torch.optim.Adam(groups)

    def zero_grad(self) -> None:
        """Drop the gradients (as ``zero_grad(set_to_none=True)``)."""
        for param in self.params.values():
            param.grad = None

    @torch.no_grad()
    def step(self, members: list[int]) -> None:
        """Update the members that took this step; the others' parameters and state stay.

        Args:
            members: Indices of the members whose gradients are in the stacked leaves.
        """
        taking = set(members)
        for member, views in enumerate(self.views):
            for name, view in views.items():
                grad = self.params[name].grad
                view.grad = grad[member] if member in taking and grad is not None else None
        self.optimizer.step()


@dataclass
class StackedBatch:
    """One step's batches of the members that take it, padded to one shape and stacked."""

    inputs: dict
    """``image``, ``text``, ``text_lengths`` ([P, B, ...] or None) and ``masks``."""
    labels: torch.Tensor
    """[P, B] class indices (0 on padded rows)."""
    valid: torch.Tensor
    """[P, B]: which rows are real."""
    counts: list[int]
    """Real rows per member."""
    teacher_probs: torch.Tensor | None
    """[P, B, C] soft targets (students)."""


def stacked_batch(batches: list[tuple[Member, torch.Tensor, torch.Tensor]]) -> StackedBatch:
    """Cut each member's batch as ``fit`` does (and draw its masks), then pad and stack.

    Padded rows are zeros (text length 1): finite, and weighed 0 by the loss. Report tokens
    are padded to the longest member's width; past a row's length they never count.

    Args:
        batches: Per member taking the step: (member, training-row index, flat image rows).

    Returns:
        The stacked batch.
    """
    cut = []
    for member, index, rows in batches:
        inputs = member.placed.train_batch(rows, index)
        cut.append((member, index, inputs, dropout_masks(member, inputs)))
    counts = [len(index) for _, index, _, _ in cut]
    size = max(counts)
    width = max(
        (inputs["text"].shape[1] for _, _, inputs, _ in cut if inputs["text"] is not None),
        default=0,
    )
    stacked = {
        "image": _stack([_pad(i["image"], size) for _, _, i, _ in cut]),
        "text": _stack([_pad(i["text"], size, width) for _, _, i, _ in cut]),
        "text_lengths": _stack([_pad(i["text_lengths"], size, fill=1) for _, _, i, _ in cut]),
        "masks": _stack_masks([masks for *_, masks in cut], size, width),
    }
    labels = torch.stack([_pad(m.placed.train_labels.index_select(0, i), size) for m, i, *_ in cut])
    valid = (
        torch.arange(size, device=labels.device)[None, :]
        < torch.tensor(counts, device=labels.device)[:, None]
    )
    teacher = None
    if cut[0][0].placed.teacher_probs is not None:
        teacher = torch.stack(
            [_pad(m.placed.teacher_probs.index_select(0, i), size) for m, i, *_ in cut]
        )
    return StackedBatch(stacked, labels, valid, counts, teacher)


def _pad(tensor: torch.Tensor | None, rows: int, width: int | None = None, fill=0):
    """Pad dim 0 to ``rows`` (and dim 1 to ``width``) with ``fill``."""
    if tensor is None:
        return None
    widths = [0, 0] * (tensor.ndim - 1) + [0, rows - tensor.shape[0]]
    if width is not None and tensor.ndim >= 2:
        widths[-3] = width - tensor.shape[1]
    return F.pad(tensor, widths, value=fill) if any(widths) else tensor


def _stack(tensors: list) -> torch.Tensor | None:
    return None if tensors[0] is None else torch.stack(tensors)


def _stack_masks(masks: list[dict | None], rows: int, width: int) -> dict | None:
    """Stack the members' dropout masks, padded with ones (padding never counts)."""
    if masks[0] is None:
        return None
    out = {}
    for key in masks[0]:
        square = [mask[key] for mask in masks]
        side = width if key == "text" else square[0].shape[1]
        out[key] = torch.stack(
            [
                F.pad(
                    m, (0, side - m.shape[2], 0, side - m.shape[1], 0, rows - m.shape[0]), value=1.0
                )
                for m in square
            ]
        )
    return out
