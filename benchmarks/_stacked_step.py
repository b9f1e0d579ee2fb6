"""Pieces of ``benchmarks/gpu.py``: GEMM rates at the heads' shapes and the stacked step's rate."""

from __future__ import annotations

import contextlib
import time


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA only)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


@contextlib.contextmanager
def matmul_precision(dtype: str, device: str):
    """TF32 matmuls on CUDA for ``tf32``, as ``raypi.train._member.precision`` turns them on."""
    import torch

    from raypi.train._member import precision

    with precision(dtype, torch.device(device)):
        yield


def gemm_rate(rows: int, inner: int, cols: int, dtype: str, device: str, repeats=10) -> float:
    """TFLOP/s of a [rows, inner] × [inner, cols] matmul in ``dtype`` (fp32, tf32 or bf16)."""
    import torch

    kind = torch.bfloat16 if dtype == "bf16" else torch.float32
    a = torch.randn(rows, inner, device=device, dtype=kind)
    b = torch.randn(inner, cols, device=device, dtype=kind)
    with matmul_precision(dtype, device):
        a @ b
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync(device)
    return 2 * rows * inner * cols * repeats / (time.perf_counter() - start) / 1e12


def head_gemms(tokens: int, dim: int, batch: int = 64) -> dict[str, tuple[int, int, int]]:
    """The attention head's GEMMs at one token shape (batch 64, q/k/v width = D).

    ``tokens_by_DxD``: the merged score form's x·(W_q^T W_k) over all B·T tokens (or one of
    the q/k projections: the same shape); ``scores_TxDxT``: one row's T×T scores.
    """
    return {"tokens_by_DxD": (batch * tokens, dim, dim), "scores_TxDxT": (tokens, dim, tokens)}


def _members(count: int, tokens: int, dim: int, batch: int, device: str, dtype: str):
    """``count`` attention-head members of one batch of rows each (tokens shared, fp16)."""
    import torch

    from raypi.train import FitConfig, FitData
    from raypi.train._member import build_member

    g = torch.Generator().manual_seed(0)
    tokens_ = torch.randn(batch, tokens, dim, generator=g).half()
    labels = torch.randint(0, 2, (batch,), generator=g)
    data = FitData(tokens_, labels, tokens_[:2], torch.tensor([0, 1]))
    configs = [FitConfig(seed=i, device=device, dtype=dtype) for i in range(count)]
    return data, [build_member(data, config, torch.device(device)) for config in configs]


def stacked_step(shape, count: int, device: str, dtype: str, captured: bool, steps: int = 5,
                 batch: int = 64) -> dict:  # fmt: skip
    """Time the stacked training step of ``count`` members at token ``shape``.

    Returns:
        Executed TFLOP/s, CPU and wall (GPU) milliseconds per step, peak device memory; or the
        error (e.g. out of memory, or a capture that failed: the eager figure stands).
    """
    import torch

    from raypi.train._flops import attention_executed_flops
    from raypi.train._member import epoch_order
    from raypi.train._stacked import stacked_batch
    from raypi.train.loop import _threads
    from raypi.train.stack import _Stack

    tokens, dim = shape
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        data, members = _members(count, tokens, dim, batch, device, dtype)
        threads = _threads(data, members[0].config, torch.device(device), count)  # as fit_stack
        with matmul_precision(dtype, device), threads:
            stack = _Stack(members)
            if captured:
                stack.capture()
            batches = [(m, *epoch_order(m)) for m in members]
            batch_in = stacked_batch(batches)
            everyone = list(range(count))
            for _ in range(2):  # warm-up (and capture)
                stack._step(everyone, batch_in)
            sync(device)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(steps):
                stack._step(everyone, batch_in)
            sync(device)
            cpu, wall = (time.process_time() - cpu) / steps, (time.perf_counter() - wall) / steps
    except Exception as error:  # noqa: BLE001 - a figure that could not be measured says why
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"}
    flop = count * 3 * batch * attention_executed_flops(tokens, dim, batch=batch)
    peak = None
    if device.startswith("cuda"):
        peak = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return {"tflop_per_s": round(flop / wall / 1e12, 6), "wall_ms": round(wall * 1e3, 2),
            "cpu_ms": round(cpu * 1e3, 2), "peak_gib": peak}  # fmt: skip


def equality(device: str, dtype: str, image=(197, 768), text=(64, 768)) -> dict:
    """Stacked vs one-at-a-time on ``device``: the largest differences over a small pack.

    The pack has ``image`` and ``text`` token shapes (ViT-B's by default).
    """
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from stack import pack_members

    from raypi.train import fit, fit_stack

    worst = {"val_auc": 0.0, "train_logits": 0.0, "kept_epoch_differs": 0}
    for members in pack_members(image, text, ((24, 3), (48, 2)), 32, device, dtype):
        stacked = fit_stack([d for d, _ in members], [c for _, c in members])
        for (data, config), s in zip(members, stacked):
            alone = fit(data, config)
            for a, b in zip(s.history, alone.history):
                worst["val_auc"] = max(worst["val_auc"], abs(a["val_auc"] - b["val_auc"]))
            worst["kept_epoch_differs"] += int(s.best_epoch != alone.best_epoch)
            if alone.train_logits_best is not None:
                gap = float((s.train_logits_best - alone.train_logits_best).abs().max())
                worst["train_logits"] = max(worst["train_logits"], gap)
    return worst
