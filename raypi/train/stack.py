"""Train several members of one head and shape as one stacked model, each equal to its own fit.

Members (e.g. one pack's image-only models of every size, or its students) are stacked on a
leading dimension and run through ``torch.func.vmap`` over ``functional_call`` of the head, so
one step runs each kernel once for all members. Each member keeps what makes it itself:

- parameters built under its own seed, its own Adam state and learning rate
  (``MemberAdam``), its own batch order, view draws and dropout stream (``_member``, which
  ``fit`` uses too);
- its own rows and number of steps: members of different sizes stack, a member with fewer
  batches sits the rest of an epoch out, and a member whose epochs are done leaves the stack —
  neither takes an Adam step it would not take alone;
- one validation pass per epoch evaluates every member on the shared validation rows.

Each member's history, kept epoch, metrics and teacher logits equal its own ``fit`` up to
floating-point rounding (checked in float64 and fp32 by ``tests/test_train_stack.py``).
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch.func import functional_call, stack_module_state, vmap

from raypi.train import metrics, objectives
from raypi.train._member import Member, autocast, build_member, epoch_order, head_shape, precision
from raypi.train._stacked import MemberAdam, stacked_batch
from raypi.train.config import FitConfig
from raypi.train.data import FitData, FitResult, check_fit_data
from raypi.train.loop import (
    _threads,
    eval_splits,
    evaluation_scores,
    finish,
    keep_epoch,
    skipped_scores,
    validates,
)

_SHARED = (
    "head_name",
    "head",
    "num_classes",
    "device",
    "dtype",
    "qkv_dim",
    "text_qkv_dim",
    "dropout",
    "has_cls_token",
    "eval_batch_size",
    "distills",
    "compile",
)
"""Settings every member of a stack has in common (the rest may differ per member)."""


def fit_stack(datas: list[FitData], configs: list[FitConfig], on_epoch=None) -> list[FitResult]:
    """Fit members of one head and shape together; each result equals that member's ``fit``.

    Args:
        datas: Each member's tensors; the validation (and selection) rows must be the same.
        configs: Each member's settings; they may differ in seed, lr, λ, epochs, batch size,
            selection, ``validate_every`` and training rows, not in ``_SHARED``.
        on_epoch: Per member, a callback of its history rows (or None).

    Returns:
        One ``FitResult`` per member, in the given order.
    """
    _check_stack(datas, configs)
    for data, config in zip(datas, configs):
        check_fit_data(data, config)
        metrics.warn_if_one_class(data.val_labels, config.context)
    callbacks = on_epoch or [None] * len(configs)
    device = torch.device(configs[0].device)
    with _threads(datas[0], configs[0], device, len(configs)), precision(configs[0].dtype, device):
        members = [build_member(data, config, device) for data, config in zip(datas, configs)]
        return _Stack(members).run(callbacks)


def _check_stack(datas: list[FitData], configs: list[FitConfig]) -> None:
    """Raise naming the setting or tensor that keeps the members from stacking."""
    if not configs or len(datas) != len(configs):
        raise ValueError(
            f"fit_stack needs one config per data, got {len(datas)} and {len(configs)}"
        )
    first, shape = configs[0], head_shape(datas[0], configs[0])
    for index, (data, config) in enumerate(zip(datas, configs)):
        for name in _SHARED:
            if getattr(config, name) != getattr(first, name):
                raise ValueError(
                    f"stack member {index} differs in {name}: "
                    f"{getattr(config, name)!r} vs {getattr(first, name)!r}"
                )
        if head_shape(data, config) != shape:
            raise ValueError(f"stack member {index} has another head shape than member 0")
        for name in (
            "val_labels",
            "val_tokens",
            "val_text",
            "val_text_lengths",
            "select_labels",
            "select_tokens",
            "select_text",
            "select_text_lengths",
        ):
            if not _same(getattr(data, name), getattr(datas[0], name)):
                raise ValueError(
                    f"stack member {index} has other {name} than member 0: "
                    "members of a stack validate on the same rows"
                )


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a is b or (a.shape == b.shape and torch.equal(a, b))


class _Stack:
    """The stacked parameters, optimizer and loop of one ``fit_stack`` call."""

    def __init__(self, members: list[Member]) -> None:
        self.members = members
        params, buffers = stack_module_state([m.model for m in members])
        if buffers:
            raise ValueError(f"heads with buffers do not stack: {sorted(buffers)}")
        self.params = params
        self.adam = MemberAdam(params, [m.config.lr for m in members])
        self.base = copy.deepcopy(members[0].model).to("meta")
        self.config = members[0].config
        self.device = members[0].placed.train_labels.device
        lams = [m.config.lam for m in members]
        self.lams = torch.tensor(lams, dtype=torch.get_default_dtype(), device=self.device)
        self.losses = _losses
        if self.config.compile:
            self.capture()

    def capture(self) -> None:
        """Compile the stacked forward and loss (CUDA graphs on CUDA: ``reduce-overhead``).

        A failure to compile raises when the step first runs; nothing falls back silently.
        """
        mode = "reduce-overhead" if self.device.type == "cuda" else "default"
        self.losses = torch.compile(_losses, mode=mode, dynamic=False)

    def run(self, callbacks: list) -> list[FitResult]:
        """Train every member for its epochs; return their results."""
        results = [FitResult() for _ in self.members]
        val_probs: list = [None] * len(self.members)
        for epoch in range(1, max(m.config.epochs for m in self.members) + 1):
            started = time.perf_counter()
            active = [i for i, m in enumerate(self.members) if m.config.epochs >= epoch]
            losses = self._train_epoch(active)
            checked = [i for i in active if validates(self.members[i].config, epoch)]
            logits = self._evaluate(checked)
            seconds = (time.perf_counter() - started) / len(active)
            for i in active:
                member, row = self.members[i], {"epoch": epoch, **losses[i]}
                if i in logits:
                    row.update(evaluation_scores(member.placed, logits[i]))
                    val_probs[i] = torch.softmax(logits[i]["val"], dim=1)
                else:
                    row.update(skipped_scores())
                row["seconds"] = seconds
                state = {name: value[i] for name, value in self.params.items()}
                keep_epoch(results[i], row, member.config, callbacks[i], val_probs[i], state)
        for member, result, probs in zip(self.members, results, val_probs):
            result.val_probs_final = probs
            finish(member.model, member.placed, member.config, result)
        return results

    def _train_epoch(self, active: list[int]) -> dict[int, dict]:
        """One epoch of the active members, each over its own rows in its own order."""
        orders = {i: epoch_order(self.members[i]) for i in active}
        sizes = {i: self.members[i].config.batch_size for i in active}
        steps = {i: math.ceil(self.members[i].placed.num_train / sizes[i]) for i in active}
        # Summed on the device and read once per epoch: a read per step would stall a GPU.
        totals = torch.zeros(len(self.members), 3, device=self.device)
        self.base.train()
        for step in range(max(steps.values())):
            taking = [i for i in active if step < steps[i]]
            batches = []
            for i in taking:
                index, rows = orders[i]
                cut = slice(step * sizes[i], (step + 1) * sizes[i])
                batches.append((self.members[i], index[cut], rows[cut]))
            batch = stacked_batch(batches)
            parts = self._step(taking, batch)
            counts = batch.valid.sum(dim=1, keepdim=True).to(parts.dtype)
            where = torch.tensor(taking, device=self.device)
            totals = totals.to(parts.dtype).index_add_(0, where, parts * counts)
        totals = totals.cpu()
        out = {}
        for i in active:
            loss, ce_loss, kd_loss = (totals[i] / self.members[i].placed.num_train).tolist()
            out[i] = {"loss": loss, "ce_loss": ce_loss, "kd_loss": kd_loss}
        return out

    def _step(self, taking: list[int], batch) -> torch.Tensor:
        """One Adam step of the members ``taking``; returns their [P, 3] loss parts."""
        everyone = len(taking) == len(self.members)
        index = None if everyone else torch.tensor(taking, device=self.device)
        params = self.params if everyone else _rows(self.params, index)
        inputs = batch.inputs
        with autocast(self.config.dtype, self.device):
            logits = _vmapped(self.base, inputs, shared=False)(params, *_args(inputs))
        lams = self.lams if everyone else self.lams.index_select(0, index)
        parts = objectives.stacked_losses(
            logits, batch.labels, batch.valid, batch.teacher_probs, lams
        )
        self.adam.zero_grad()
        parts["loss"].sum().backward()
        self.adam.step(taking)
        kd = parts.get("kd_loss", torch.full_like(parts["loss"], math.nan))
        return torch.stack([parts["loss"], parts["ce_loss"], kd], dim=1).detach()

    @torch.no_grad()
    def _evaluate(self, checked: list[int]) -> dict[int, dict]:
        """Logits of the members ``checked`` on the shared evaluation splits, in one pass each."""
        if not checked:
            return {}
        index = torch.tensor(checked, device=self.device)
        params = _rows(self.params, index)
        placed = self.members[checked[0]].placed
        self.base.eval()
        out = {i: {} for i in checked}
        for split in eval_splits(placed):
            rows = len(placed.val_labels) if split == "val" else len(placed.select.labels)
            chunks = []
            for start in range(0, rows, self.config.eval_batch_size):
                end = min(start + self.config.eval_batch_size, rows)
                inputs = {**placed.eval_batch(split, start, end), "masks": None}
                with autocast(self.config.dtype, self.device):
                    logits = _vmapped(self.base, inputs, shared=True)(params, *_args(inputs))
                chunks.append(objectives.full_precision(logits))
            stacked = torch.cat(chunks, dim=1)
            for position, i in enumerate(checked):
                out[i][split] = stacked[position]
        return out


_INPUTS = ("image", "text", "text_lengths", "masks")


def _losses(base: torch.nn.Module, params: dict, batch, lams: torch.Tensor) -> dict:
    """The members' loss parts on their stacked batch: the part a capture compiles."""
    logits = _vmapped(base, batch.inputs, shared=False)(params, *_args(batch.inputs))
    return objectives.stacked_losses(logits, batch.labels, batch.valid, batch.teacher_probs, lams)


def _args(inputs: dict) -> list:
    return [inputs[name] for name in _INPUTS]


def _vmapped(base: torch.nn.Module, inputs: dict, shared: bool):
    """The head's forward mapped over members (inputs per member, or ``shared`` by all)."""

    def forward(params, image, text, text_lengths, masks):
        kwargs = {"image": image, "text": text, "text_lengths": text_lengths, "masks": masks}
        return functional_call(base, params, (), kwargs)

    dims = [None if shared or inputs[name] is None else 0 for name in _INPUTS]
    return vmap(forward, in_dims=(0, *dims))


def _rows(params: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: value.index_select(0, index) for name, value in params.items()}
