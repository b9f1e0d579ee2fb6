"""A trial's tensors placed on the device once, and batches cut from them by index."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from raypi.train.config import FitConfig
from raypi.train.data import FitData


@dataclass
class Placed:
    """Device-resident tensors of one fit; image tokens are flattened to [N·V, T, D] rows."""

    train_image: torch.Tensor | None
    views: int
    train_labels: torch.Tensor
    val_image: torch.Tensor | None
    val_labels: torch.Tensor
    train_text: torch.Tensor | None
    train_lengths: torch.Tensor | None
    val_text: torch.Tensor | None
    val_lengths: torch.Tensor | None
    teacher_probs: torch.Tensor | None
    select: Evaluated | None = None
    """The selection split's rows; None = the kept epoch is chosen on the validation rows."""

    @property
    def num_train(self) -> int:
        """Number of training rows."""
        return len(self.train_labels)

    def train_batch(self, rows: torch.Tensor, index: torch.Tensor) -> dict:
        """Inputs of training rows ``index`` whose image is flat row ``rows`` (= index·V + view)."""
        lengths = _take(self.train_lengths, index)
        return {
            "image": _take(self.train_image, rows),
            "text": _trim(_take(self.train_text, index), lengths),
            "text_lengths": lengths,
        }

    def eval_batch(self, split: str, start: int, end: int) -> dict:
        """Inputs of rows start..end of ``split`` ("train", "val" or "select"), view 0."""
        if split == "select":
            part = self.select
            image, text, lengths = part.image, part.text, part.lengths
            image = None if image is None else image[start:end]
        elif split == "train":
            image = None
            if self.train_image is not None:
                image = self.train_image[start * self.views : end * self.views : self.views]
            text, lengths = self.train_text, self.train_lengths
        else:
            image, text, lengths = self.val_image, self.val_text, self.val_lengths
            image = None if image is None else image[start:end]
        lengths = None if lengths is None else lengths[start:end]
        return {
            "image": _compute_dtype(image),
            "text": None if text is None else _compute_dtype(_trim(text[start:end], lengths)),
            "text_lengths": lengths,
        }


@dataclass
class Evaluated:
    """Device-resident rows that are only evaluated (a selection split), view 0."""

    image: torch.Tensor | None
    labels: torch.Tensor
    text: torch.Tensor | None
    lengths: torch.Tensor | None


def place(data: FitData, config: FitConfig, device: torch.device) -> Placed:
    """Copy the tensors a fit needs to ``device`` once (token dtypes are kept, e.g. fp16).

    Args:
        data: The trial's tensors.
        config: Settings; decides which tensors are needed.
        device: Target device.

    Returns:
        The placed tensors.
    """
    train_image, val_image, views = None, None, 1
    if config.spec.reads_image:
        train = data.train_tokens
        if train.ndim == 3:
            train = train[:, None]
        views = train.shape[1]
        train_image = _to(train, device).reshape(-1, *train.shape[2:])
        val_image = _view0(data.val_tokens, device)
    uses_text = config.spec.reads_report
    placed = Placed(
        train_image=train_image,
        views=views,
        train_labels=_to(data.train_labels.long(), device),
        val_image=val_image,
        val_labels=_to(data.val_labels.long(), device),
        train_text=_to(_trim(data.train_text, data.train_text_lengths), device)
        if uses_text
        else None,
        train_lengths=_to(data.train_text_lengths.long(), device) if uses_text else None,
        val_text=_to(_trim(data.val_text, data.val_text_lengths), device) if uses_text else None,
        val_lengths=_to(data.val_text_lengths.long(), device) if uses_text else None,
        teacher_probs=_compute_dtype(_to(data.teacher_probs, device)) if config.distills else None,
    )
    if data.has_selection_split:
        placed.select = Evaluated(
            image=_view0(data.select_tokens, device) if config.spec.reads_image else None,
            labels=_to(data.select_labels.long(), device),
            text=_to(_trim(data.select_text, data.select_text_lengths), device)
            if uses_text
            else None,
            lengths=_to(data.select_text_lengths.long(), device) if uses_text else None,
        )
    return placed


def _view0(tokens: torch.Tensor, device: torch.device) -> torch.Tensor:
    return _to(tokens[:, 0] if tokens.ndim == 4 else tokens, device)


def _to(tensor: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    if tensor is None:
        return None
    return tensor.to(device).contiguous()


def _take(tensor: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor | None:
    if tensor is None:
        return None
    taken = tensor.index_select(0, index)
    return _compute_dtype(taken)


def _compute_dtype(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """Floating tensors in torch's default dtype (fp32, or float64 where a check sets it)."""
    if tensor is None or not tensor.is_floating_point():
        return tensor
    return tensor.to(torch.get_default_dtype())


def _trim(text: torch.Tensor | None, lengths: torch.Tensor | None) -> torch.Tensor | None:
    """Drop padding columns past the longest report: masking makes them inert, not free.

    On an accelerator a per-batch trim would stall the queue on reading the lengths, so only
    CPU tensors are trimmed per batch (whole tensors are trimmed once, before placement).
    """
    if text is None or lengths is None or text.device.type != "cpu" or len(lengths) == 0:
        return text
    longest = max(int(lengths.max()), 1)
    return text[:, :longest] if longest < text.shape[1] else text
