"""What only a GPU shows: head-training throughput at the study's shapes, and shared GPUs.

One command, under 10 minutes on one CUDA GPU:

    python benchmarks/gpu.py            # needs CUDA
    python benchmarks/gpu.py --smoke-test   # tiny shapes on the CPU, to check the script

Measures (each printed as one JSON line with its ``section``):
1. ``matmul``: the device's bf16 and fp32 matmul rates (4096², the reference for fractions);
2. ``gemm``: the matmul rate at the heads' own GEMM shapes in bf16, TF32 and fp32;
3. ``fit``: ``raypi.train.fit`` of one attention head at the study's token shapes (ResNet-50
   49×2048, ViT-B 197×768, RAD-DINO 1370×768) in bf16 and fp32: samples/s and the executed
   FLOP rate as a fraction of the matmul rate;
4. ``stacked_step``: the stacked training step (``raypi.train.stack``) of M = 1, 4, 16, 64
   members at those shapes, eager and captured (``torch.compile(mode="reduce-overhead")``, CUDA
   graphs; M = 1 and 16), executed TFLOP/s, CPU and wall ms per step, peak memory (an out of
   memory or a failed capture is printed as the row's error);
5. ``pack``: one pack at the ViT-B shape (image, teacher and students at two sizes) trained
   stacked and one member at a time: wall seconds and ratio;
6. ``equality``: stacked vs one at a time on this device (fp32 and TF32): largest validation
   AUC and teacher-logit differences, kept epochs that differ;
7. ``shared_gpu``: 8 fits as 8 Ray tasks of ``num_gpus=0.125`` against one after another;
8. ``projection``: the study grid's executed FLOP (``sweeps/configs/distill_grid.yaml`` and
   ``sample_efficiency.yaml``, ``raypi.sweep.cost``) / the measured stacked rate at M = 16 at
   each trial's image shape: projected GPU-hours on this device, per precision.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _stacked_step import equality, gemm_rate, head_gemms, stacked_step  # noqa: E402
from stack import pack_members, time_pack  # noqa: E402

SHAPES = {"resnet50_49x2048": (49, 2048), "vit_b_197x768": (197, 768),
          "rad_dino_1370x768": (1370, 768)}  # fmt: skip


def matmul_rate(device: str, dtype: str, size: int, repeats: int = 20) -> float:
    """Return FLOP/s of a ``size``² matmul in ``dtype`` (``fp32``, ``tf32``, ``bf16``)."""
    return gemm_rate(size, size, size, dtype, device, repeats) * 1e12


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _data(rows: int, tokens: int, dim: int, device: str):
    import torch

    from raypi.train import FitData

    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (rows,), generator=generator)
    x = torch.randn(rows, tokens, dim, generator=generator).half()
    val = torch.randn(rows // 4, tokens, dim, generator=generator).half()
    return FitData(x, labels, val, torch.randint(0, 2, (rows // 4,), generator=generator))


def fit_throughput(shape, rows: int, epochs: int, dtype: str, device: str) -> dict:
    """Return samples/s and TFLOP/s of one attention-head fit at token ``shape``."""
    from raypi.train import FitConfig, fit
    from raypi.train._flops import attention_executed_flops

    tokens, dim = shape
    data = _data(rows, tokens, dim, device)
    config = FitConfig(epochs=epochs, dtype=dtype, device=device, keep_train_outputs=False)
    fit(data, FitConfig(epochs=1, dtype=dtype, device=device, keep_train_outputs=False))
    _sync(device)
    start = time.perf_counter()
    fit(data, config)
    _sync(device)
    seconds = time.perf_counter() - start
    flop = epochs * attention_executed_flops(tokens, dim) * (3 * rows + rows // 4)
    return {
        "samples_per_s": round(epochs * rows / seconds, 1),
        "tflop_per_s": flop / seconds / 1e12,
    }


def shared_gpu(shape, rows: int, epochs: int, device: str, slots: int = 8) -> dict:
    """Return the wall time of ``slots`` fits one after another and as fractional-GPU tasks."""
    import ray

    def one() -> float:
        fit_throughput(shape, rows, epochs, "bf16", device)
        return 0.0

    start = time.perf_counter()
    for _ in range(slots):
        one()
    sequential = time.perf_counter() - start
    ray.init(address="local", num_gpus=1 if device.startswith("cuda") else 0,
             include_dashboard=False, log_to_driver=False)  # fmt: skip
    gpus = 1 / slots if device.startswith("cuda") else 0
    task = ray.remote(num_gpus=gpus, num_cpus=0.1)(one)
    ray.get(task.remote())  # warm the workers' imports before timing
    start = time.perf_counter()
    ray.get([task.remote() for _ in range(slots)])
    shared = time.perf_counter() - start
    ray.shutdown()
    return {"slots": slots, "sequential_s": round(sequential, 2), "shared_s": round(shared, 2),
            "speedup": round(sequential / shared, 2)}  # fmt: skip


def _print(section: str, **row) -> None:
    print(json.dumps({"section": section, **row}), flush=True)


def _stacked_rows(shapes: dict, device: str, counts, dtypes, captures) -> dict:
    """Print the stacked-step rows; return the M = 16 (or largest) rate per shape and dtype.

    Every (members, dtype) runs eagerly; those in ``captures`` also run captured.
    """
    rates = {}
    for label, shape in shapes.items():
        for dtype in dtypes:
            for count in counts:
                for captured in (False, True) if (count, dtype) in captures else (False,):
                    row = stacked_step(shape, count, device, dtype, captured)
                    mode = "captured" if captured else "eager"
                    _print("stacked_step", shape=label, dtype=dtype, members=count, mode=mode,
                           **row)  # fmt: skip
                    if count == counts[-2] and "tflop_per_s" in row:
                        best = rates.get((label, dtype), 0.0)
                        rates[(label, dtype)] = max(best, row["tflop_per_s"])
    return rates


def _projection(rates: dict, shapes: dict, dtypes) -> None:
    """Print the study grid's projected GPU-hours at the measured stacked rates."""
    from raypi.encoders import get_encoder
    from raypi.sweep.config import load_spec
    from raypi.sweep.cost import dry_run
    from raypi.sweep.launch import LaunchOptions

    repo = Path(__file__).resolve().parents[1] / "sweeps" / "configs"
    # The projection counts FLOP only: the configs' data paths are never read.
    where = {"RAYPI_DATA": "s3://YOUR-BUCKET/raypi"}
    costs = [dry_run(load_spec(str(repo / f"{name}.yaml"), where), LaunchOptions())
             for name in ("distill_grid", "sample_efficiency")]  # fmt: skip
    by_shape = {shape: label for label, shape in shapes.items()}
    for dtype in dtypes:
        hours, unmatched = 0.0, 0.0
        for table in costs:
            for row in table.itertuples():
                encoder = row.encoder if isinstance(row.encoder, str) else None  # text-only: NaN
                shape = tuple(get_encoder(encoder).token_shape) if encoder else None
                rate = rates.get((by_shape.get(shape), dtype))
                if rate:
                    hours += row.executed_flop / (rate * 1e12) / 3600
                else:
                    unmatched += row.executed_flop
        total = sum(table["executed_flop"].sum() for table in costs)
        _print("projection", dtype=dtype, grid_executed_pflop=round(total / 1e15, 1),
               gpu_hours=round(hours, 2), unmeasured_pflop=round(unmatched / 1e15, 1))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="tiny shapes on the CPU")
    args = parser.parse_args(argv)
    import torch

    if not args.smoke_test and not torch.cuda.is_available():
        print("benchmarks/gpu.py needs a CUDA GPU (or --smoke-test)")
        return 2
    smoke = args.smoke_test
    device = "cpu" if smoke else "cuda"
    shapes = {"tiny_17x64": (17, 64)} if smoke else SHAPES
    rows, epochs, size = (256, 2, 256) if smoke else (4096, 3, 4096)
    counts = (1, 2, 4) if smoke else (1, 4, 16, 64)
    dtypes = ("fp32", "bf16") if smoke else ("fp32", "tf32", "bf16")
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    rates = {dtype: matmul_rate(device, dtype, size) for dtype in ("bf16", "fp32")}
    _print("matmul", device=name, torch=torch.__version__,
           tflop_per_s={k: round(v / 1e12, 2) for k, v in rates.items()})  # fmt: skip
    for label, (tokens, dim) in shapes.items():
        for gemm, (m, k, n) in head_gemms(tokens, dim).items():
            _print("gemm", shape=label, gemm=f"{gemm} {m}x{k}x{n}",
                   **{dt: round(gemm_rate(m, k, n, dt, device), 3) for dt in dtypes})  # fmt: skip
    for label, shape in shapes.items():
        for dtype in ("bf16", "fp32"):
            row = fit_throughput(shape, rows, epochs, dtype, device)
            row["fraction_of_matmul"] = round(row["tflop_per_s"] * 1e12 / rates[dtype], 3)
            _print("fit", shape=label, dtype=dtype, **{**row, "tflop_per_s": round(
                row["tflop_per_s"], 3)})  # fmt: skip
    # A capture compiles (torch.compile): on the CPU smoke test one is enough to check it runs.
    captures = (
        {(counts[-2], "fp32")} if smoke else {(c, d) for c in (1, counts[-2]) for d in dtypes}
    )
    stacked = _stacked_rows(shapes, device, counts, dtypes, captures)
    sync = (lambda: torch.cuda.synchronize()) if device == "cuda" else (lambda: None)
    pack = ((17, 64), (16, 64), ((20, 2), (40, 1)), 24) if smoke else \
        ((197, 768), (512, 768), ((256, 10), (1024, 5)), 512)  # fmt: skip
    stacks = pack_members(*pack, device=device, dtype=dtypes[-1] if smoke else "tf32")
    time_pack(stacks, True, sync), time_pack(stacks, False, sync)  # warm-up
    seconds = {way: time_pack(stacks, way == "stacked", sync) for way in ("stacked", "alone")}
    _print("pack", shape=f"{pack[0][0]}x{pack[0][1]}", members=sum(len(s) for s in stacks),
           stacked_s=round(seconds["stacked"], 2), one_at_a_time_s=round(seconds["alone"], 2),
           speedup=round(seconds["alone"] / seconds["stacked"], 2))  # fmt: skip
    for dtype in ("fp32",) if smoke else ("fp32", "tf32"):
        tokens = {"image": (17, 64), "text": (16, 64)} if smoke else {}
        _print("equality", device=name, dtype=dtype, **equality(device, dtype, **tokens))
    _print("shared_gpu", **shared_gpu(next(iter(shapes.values())), rows // 4, epochs, device,
                                      slots=2 if smoke else 8))  # fmt: skip
    if smoke:  # the CPU's tiny-shape rate at every study shape: checks the arithmetic only
        stacked = {(label, dt): stacked[("tiny_17x64", dt)] for label in SHAPES for dt in dtypes}
    _projection(stacked, SHAPES, dtypes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
