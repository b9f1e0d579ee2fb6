"""What a sweep will cost before it runs: trials, bytes read, FLOP, GPU-hours and resources.

Each trial's bytes and FLOP are its footprint (``sweep.footprint``: the FLOP model, token
shapes from a local store's manifest or the encoder registry, validation sizes); its request
is the one the launcher makes (``sweep.resources.trial_bundle``), and the packs are the
launcher's (``sweep.packs``). Nothing here starts Ray, reads features or reads a remote store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from raypi.sweep.footprint import trial_work
from raypi.sweep.grid import SweepSpec, TrialConfig, expand
from raypi.sweep.packs import make_packs, working_set_bytes
from raypi.sweep.resources import encoder_profile, trial_bundle

DEFAULT_GPU_TFLOPS = 8.0
"""Sustained TFLOP/s assumed for GPU-hours (a T4-class GPU on small heads); an assumption,
to be replaced by the rate ``benchmarks/gpu.py`` measures on the user's GPUs."""


def parse_tflops(text: str) -> dict[str, float]:
    """Parse sustained TFLOP/s per precision: ``8`` (every precision) or ``fp32=20,bf16=60``.

    Args:
        text: One number, or ``precision=number`` pairs joined by commas.

    Returns:
        Precision → TFLOP/s; ``"*"`` holds the single number's rate.
    """
    from raypi.train.config import DTYPES

    try:
        if "=" not in text:
            rates = {"*": float(text)}
        else:
            pairs = (item.split("=", 1) for item in text.split(","))
            rates = {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise ValueError(f"expected TFLOP/s as 8 or fp32=20,bf16=60; got {text!r}") from None
    unknown = sorted(set(rates) - {"*", *DTYPES})
    if unknown or any(rate <= 0 for rate in rates.values()):
        raise ValueError(f"TFLOP/s per precision of {DTYPES}, each > 0; got {text!r}")
    return rates


def _rate(rates, dtype: str) -> float:
    """The TFLOP/s of ``dtype`` in ``rates`` (a number, or ``parse_tflops``' dict)."""
    if not isinstance(rates, dict):
        return float(rates)
    if dtype not in rates and "*" not in rates:
        raise ValueError(f"no TFLOP/s given for precision {dtype!r} (given: {sorted(rates)})")
    return rates.get(dtype, rates.get("*"))


@dataclass(frozen=True)
class TrialCost:
    """The cost of one trial."""

    bytes_read: int
    """Feature bytes read from the store."""
    flop: float
    """Training and validation FLOP (reference attention head)."""
    bundle: str
    """Its resource request, e.g. ``CPU 1, GPU 0.125``."""
    executed_flop: float = 0.0
    """The FLOP raypi's heads execute (merged scores, pooled values; ``train._flops``): what a
    measured executed TFLOP/s rate (``benchmarks/gpu.py``) divides into GPU-hours."""


def trial_cost(trial: TrialConfig, spec: SweepSpec, use_gpu: bool, options) -> TrialCost:
    """Return what one trial reads, computes and asks for.

    Args:
        trial: The trial.
        spec: Its sweep (for resource overrides).
        use_gpu: Whether it would run on GPUs.
        options: ``LaunchOptions`` (CPUs per trial, GPU memory).

    Returns:
        The cost.
    """
    work = trial_work(trial)
    profile = encoder_profile(trial.encoder, trial.features, spec.resource_overrides, False)
    bundle = trial_bundle(trial, profile, options, use_gpu)
    text = ", ".join(f"{k} {v:g}" for k, v in bundle.items() if v)
    return TrialCost(work.bytes_read, work.flop, text, work.executed_flop)


def dry_run(spec: SweepSpec, options, use_gpu: bool = True, gpu_tflops: float = DEFAULT_GPU_TFLOPS):
    """Return the cost of every trial of ``spec``, one row each (nothing runs).

    Args:
        spec: The sweep.
        options: ``LaunchOptions``.
        use_gpu: Price the trials as GPU trials (their GPU shares) or CPU-only ones.
        gpu_tflops: Sustained TFLOP/s for the GPU-hours column: one number, or per precision
            (``parse_tflops``); each trial is priced at its own precision's rate.

    Returns:
        Columns stage, task, method, encoder, trial_key, dtype, bytes_read, flop,
        executed_flop, gpu_hours, bundle.
    """
    rows = []
    for trial in expand(spec):
        cost = trial_cost(trial, spec, use_gpu, options)
        rows.append(
            {"stage": 2 if trial.is_student else 1, "task": trial.task, "method": trial.method,
             "encoder": trial.encoder, "trial_key": trial.trial_key, "dtype": trial.dtype,
             "bytes_read": cost.bytes_read, "flop": cost.flop,
             "executed_flop": cost.executed_flop,
             "gpu_hours": cost.flop / (_rate(gpu_tflops, trial.dtype) * 1e12) / 3600,
             "bundle": cost.bundle}
        )  # fmt: skip
    return pd.DataFrame(rows)


def format_dry_run(name: str, costs: pd.DataFrame, gpu_tflops: float = DEFAULT_GPU_TFLOPS) -> str:
    """Return the dry run as a table per stage and method, with totals."""
    table = costs.groupby(["stage", "method"], sort=True).agg(
        trials=("trial_key", "count"),
        gb_read=("bytes_read", lambda b: round(b.sum() / 1e9, 2)),
        pflop=("flop", lambda f: round(f.sum() / 1e15, 3)),
        gpu_hours=("gpu_hours", lambda h: round(h.sum(), 2)),
        asks=("bundle", lambda b: "; ".join(sorted(set(b)))),
    )
    total = costs[["bytes_read", "flop", "gpu_hours"]].sum()
    rates = gpu_tflops if isinstance(gpu_tflops, dict) else {"*": gpu_tflops}
    said = ", ".join(f"{'any' if k == '*' else k} {v:g}" for k, v in rates.items())
    return "\n".join(
        [
            f"dry run of sweep {name}: {len(costs)} trials (nothing was started)",
            table.reset_index().to_string(index=False),
            f"total: {total['bytes_read'] / 1e9:.2f} GB read, {total['flop'] / 1e15:.3f} PFLOP, "
            f"~{total['gpu_hours']:.2f} GPU-hours at {said} TFLOP/s sustained "
            f"({math.ceil(total['gpu_hours'])} h on one GPU, less with fractional sharing)",
            _per_precision(costs, rates),
        ]
    )


def _per_precision(costs: pd.DataFrame, rates: dict) -> str:
    """GPU-hours of the whole sweep were it run in each precision a rate is given for."""
    from raypi.train.config import DTYPES

    flop = costs["flop"].sum()
    named = [(d, d) for d in DTYPES if d in rates] or [("any", "fp32")]
    parts = [f"{label}: ~{flop / (_rate(rates, d) * 1e12) / 3600:.2f}" for label, d in named]
    executed = costs["executed_flop"].sum() / 1e15
    return (f"GPU-hours of the whole sweep per precision ({', '.join(parts)}); executed "
            f"{executed:.3f} PFLOP (divide by benchmarks/gpu.py's measured rates)")  # fmt: skip


def format_pack_reads(spec: SweepSpec, options) -> str:
    """Return how many packs the sweep makes and the feature bytes they read (once each)."""
    limit = None if options.max_pack_gb is None else options.max_pack_gb * 1e9
    packs = make_packs(expand(spec), limit)
    total = sum(working_set_bytes(members) for members in packs.values())
    return (
        f"as packs (the default): {len(packs)} Tune trials, each reading its working set once: "
        f"{total / 1e9:.2f} GB read in all (--no-packs: the per-trial total above)"
    )
