"""Training throughput of the attention head against a plain PyTorch loop, and the grid's cost.

Measures, in one run and on one machine (ratios are taken within the run, so a busy shared CPU
slows both sides alike): this machine's fp32/bf16 matmul rate; sample-steps/s and GFLOP/s of
``raypi.train.fit`` (fp32 and bf16 autocast) and of a straightforward reference loop
(``TensorDataset`` + ``DataLoader`` + a textbook attention module) at the study's token shapes;
the cost of one epoch of the largest trial (Age, 3,171 training and 3,524 validation samples);
and the FLOP count of the study's grid.

GFLOP/s use the *reference* algorithm's FLOP count (3 x forward), so they compare like with
like; ``raypi`` executes fewer FLOP (see ``raypi/train/_attention.py``), and its executed rate is
reported as a fraction of the measured matmul rate.

    python benchmarks/train.py            # full run (minutes on 2 CPU cores)
    python benchmarks/train.py --smoke-test
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn
from torch.nn import functional as F

from raypi.sweep.footprint import trial_flop
from raypi.train import FitConfig, FitData, fit
from raypi.train._flops import attention_executed_flops, attention_reference_flops, batch_flops
from raypi.train.heads import HeadShape, build_head
from raypi.train.loop import SMALL_BATCH_FLOPS

STUDY_SHAPES = {  # name: (tokens, width, samples, batch) — samples/batch sized for 2 CPU cores
    "resnet50_224": (49, 2048, 128, 64),
    "vit_b16_224": (197, 768, 128, 64),
    "rad_dino_518": (1370, 768, 16, 8),
}
SMOKE_SHAPES = {"tiny": (17, 64, 64, 32)}
AGE_TRAIN, AGE_VAL = 3171, 3524


class ReferenceHead(nn.Module):
    """The attention head written the textbook way: q, k, v for every token, A·V, mean."""

    def __init__(self, dim: int, num_classes: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_classes)
        self.scale = dim**-0.5

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] from tokens [B, T, D]."""
        x = self.norm(tokens)
        q, k, v = self.query(x), self.key(x), self.value(x)
        attn = self.dropout(torch.softmax(q @ k.transpose(1, 2) * self.scale, dim=-1))
        return self.classifier((attn @ v).mean(dim=1))


def matmul_seconds(dtype: torch.dtype, size: int = 1024, repeats: int = 5) -> float:
    """Fastest of ``repeats`` square matmuls of ``dtype`` (2·size³ FLOP each)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return best


def matmul_rate(dtype: torch.dtype, size: int = 1024) -> float:
    """This machine's matmul GFLOP/s for ``dtype`` (best of a few)."""
    return 2 * size**3 / matmul_seconds(dtype, size) / 1e9


class ReferenceLoop:
    """A straightforward training loop: DataLoader batches, Adam, fp32; one epoch per call."""

    def __init__(self, tokens: torch.Tensor, labels: torch.Tensor, batch: int) -> None:
        torch.manual_seed(0)
        self.model = ReferenceHead(tokens.shape[-1])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        dataset = torch.utils.data.TensorDataset(tokens, labels)
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True)

    def epoch_seconds(self) -> float:
        """Run one epoch and return its wall time."""
        start = time.perf_counter()
        for x, y in self.loader:
            loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start


def raypi_epoch_seconds(tokens, labels, batch: int, dtype: str) -> float:
    """One epoch of ``raypi.train.fit`` (validation on one batch is included)."""
    data = FitData(tokens, labels, tokens[:batch], labels[:batch])
    config = FitConfig(batch_size=batch, epochs=1, dtype=dtype, keep_train_outputs=False)
    return fit(data, config).history[0]["seconds"]


def interleaved_minimum(runs: dict, repeats: int) -> dict:
    """Fastest of ``repeats`` calls of each runner, called in turns so load drifts hit all."""
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            best[name] = min(best[name], run())
    return best


def eval_seconds_per_sample(tokens: torch.Tensor, batch: int, dtype: str) -> float:
    """Forward-only (validation) time per sample of the raypi attention head."""
    head = build_head("attention", HeadShape(image_dim=tokens.shape[-1], num_classes=2)).eval()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")
    small = batch_flops("attention", tokens.shape[1], tokens.shape[2], batch) < SMALL_BATCH_FLOPS
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if small else threads)  # the thread choice fit makes
    try:
        return _eval_seconds(head, tokens, batch, autocast)
    finally:
        torch.set_num_threads(threads)


def _eval_seconds(head, tokens, batch, autocast) -> float:
    with torch.no_grad(), autocast:
        head(tokens[:batch])
        start = time.perf_counter()
        for first in range(0, len(tokens), batch):
            head(tokens[first : first + batch])
    return (time.perf_counter() - start) / len(tokens)


def measure_shape(name: str, spec: tuple, repeats: int, rates: dict) -> dict:
    """All throughput figures of one token shape."""
    tokens_n, dim, samples, batch = spec
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(samples, tokens_n, dim, generator=g)
    labels = torch.randint(0, 2, (samples,), generator=g)
    ref_flop = 3 * attention_reference_flops(tokens_n, dim) * samples
    run_flop = 3 * attention_executed_flops(tokens_n, dim, batch=batch) * samples
    reference = ReferenceLoop(tokens, labels, batch)
    runs = {"reference": reference.epoch_seconds}
    for dtype in ("fp32", "bf16"):
        if rates[dtype] >= 0.1 * rates["fp32"]:
            runs[dtype] = lambda dtype=dtype: raypi_epoch_seconds(tokens, labels, batch, dtype)
    runs["matmul"] = lambda: matmul_seconds(torch.float32)  # measured in turns with the loops
    seconds = interleaved_minimum(runs, repeats)
    rates = {**rates, "fp32": max(rates["fp32"], 2 * 1024**3 / seconds["matmul"] / 1e9)}
    row = {"shape": f"{tokens_n}x{dim}", "name": name, "samples": samples, "batch": batch}
    row["matmul_fp32_gflop_per_s"] = round(rates["fp32"], 1)
    row["reference_fp32"] = _figures(samples, ref_flop, seconds["reference"])
    for dtype in ("fp32", "bf16"):
        if dtype not in seconds:
            row[f"raypi_{dtype}"] = (
                f"skipped: {dtype} matmul runs at {rates[dtype]:.1f} GFLOP/s here"
            )
            continue
        figures = _figures(samples, ref_flop, seconds[dtype])
        figures["ratio_vs_reference_fp32"] = round(seconds["reference"] / seconds[dtype], 2)
        figures["executed_fraction_of_matmul"] = round(
            run_flop / seconds[dtype] / 1e9 / rates[dtype], 2
        )
        row[f"raypi_{dtype}"] = figures
    per_sample_train = row["raypi_fp32"]["epoch_seconds"] / samples
    per_sample_eval = eval_seconds_per_sample(tokens, batch, "fp32")
    row["age_epoch_seconds_fp32"] = round(AGE_TRAIN * per_sample_train + AGE_VAL * per_sample_eval)
    return row


def _figures(samples: int, flop: float, seconds: float) -> dict:
    return {
        "epoch_seconds": round(seconds, 3),
        "sample_steps_per_s": round(samples / seconds, 1),
        "gflop_per_s": round(flop / seconds / 1e9, 1),
    }


POOL_IMAGES = {  # PAPER.md's task table: validation = share x images (MIMIC 5x1200: fixed 1000)
    "mimic_5x1200": 1000,
    "age": 35242,
    "discharge_3day": 18490,
    "ph_12month": 5449,
    "readmission": 5651,
    "pulmonary_embolism": 9375,
}
DISTILL_SIZES = {  # two sizes per task (the study's Table 7 / distillation figures)
    "mimic_5x1200": (200, 2000),
    "age": (317, 3171),
    "discharge_3day": (165, 1662),
    "ph_12month": (204, 2044),
    "readmission": (211, 2119),
    "pulmonary_embolism": (351, 3515),
}
TEXT_SHAPE = (512, 768)  # CXR-BERT tokens at max length 512


def grid_flops() -> dict:
    """Reference-algorithm FLOP of the study's sample-efficiency and distillation grids."""
    from raypi.encoders import list_encoders
    from raypi.tasks import get_task

    images = {e.name: e.token_shape for e in list_encoders("image") if not e.tiny}
    text_fwd = attention_reference_flops(*TEXT_SHAPE)
    totals = {"sample_efficiency": 0.0, "distillation": 0.0}
    trials = {"sample_efficiency": 0, "distillation": 0}
    for task, pool in POOL_IMAGES.items():
        spec = get_task(task)
        val = pool if spec.val_share is None else round(pool * spec.val_share)
        seeds = 10 if task == "readmission" else 5
        for shape in images.values():
            image_fwd = attention_reference_flops(*shape)
            for size in spec.sizes:
                cost = trial_flop(image_fwd, size.samples, size.epochs, val)
                if task != "pulmonary_embolism":  # image-only sample-efficiency curves
                    totals["sample_efficiency"] += seeds * cost
                    trials["sample_efficiency"] += seeds
                if size.samples in DISTILL_SIZES[task]:  # teacher + distilled + self-distilled
                    fwd = image_fwd + text_fwd
                    teacher = trial_flop(fwd, size.samples, size.epochs, val)
                    totals["distillation"] += 5 * (teacher + 2 * cost)
                    trials["distillation"] += 5 * 3
    out = {f"{k}_pflop": round(v / 1e15, 1) for k, v in totals.items()}
    out["trials"] = trials
    out["total_pflop"] = round(sum(totals.values()) / 1e15, 1)
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print one JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved epochs per loop; the fastest counts"
    )
    parser.add_argument("--smoke-test", action="store_true", help="tiny shapes, seconds")
    args = parser.parse_args(argv)
    shapes = SMOKE_SHAPES if args.smoke_test else STUDY_SHAPES
    rates = {"fp32": matmul_rate(torch.float32), "bf16": matmul_rate(torch.bfloat16, size=256)}
    report = {
        "threads": torch.get_num_threads(),
        "matmul_gflop_per_s": {k: round(v, 1) for k, v in rates.items()},
        "shapes": [measure_shape(n, s, args.repeats, rates) for n, s in shapes.items()],
        "grid": grid_flops(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
