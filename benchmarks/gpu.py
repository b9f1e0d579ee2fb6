"""What only a GPU shows: head-training throughput at the study's shapes, and shared GPUs.

One command, under 10 minutes on one CUDA GPU:

    python benchmarks/gpu.py            # needs CUDA
    python benchmarks/gpu.py --smoke-test   # tiny shapes on the CPU, to check the script

Measures (each printed as one JSON line):
1. the device's bf16 and fp32 matmul rates (4096², the reference for the fractions below);
2. ``raypi.train.fit`` of one attention head at the study's token shapes (ResNet-50 49×2048,
   ViT-B 197×768, RAD-DINO 1370×768) in bf16 and fp32: samples/s and the executed FLOP rate
   as a fraction of the matmul rate;
3. 8 fits sharing one GPU as 8 Ray tasks of ``num_gpus=0.125`` (how packs share a GPU) against
   the same 8 fits one after another: the wall-time ratio.
Members of a pack are trained one after another on the GPU (stacked multi-member training is
not built); the first figure is what each member gets.
"""

from __future__ import annotations

import argparse
import json
import time

SHAPES = {"resnet50_49x2048": (49, 2048), "vit_b_197x768": (197, 768),
          "rad_dino_1370x768": (1370, 768)}  # fmt: skip


def matmul_rate(device: str, dtype, size: int, repeats: int = 20) -> float:
    """Return FLOP/s of a ``size``² matmul in ``dtype`` on ``device``."""
    import torch

    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


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
    ray.init(num_gpus=1 if device.startswith("cuda") else 0, include_dashboard=False,
             log_to_driver=False)  # fmt: skip
    gpus = 1 / slots if device.startswith("cuda") else 0
    task = ray.remote(num_gpus=gpus, num_cpus=0.1)(one)
    ray.get(task.remote())  # warm the workers' imports before timing
    start = time.perf_counter()
    ray.get([task.remote() for _ in range(slots)])
    shared = time.perf_counter() - start
    ray.shutdown()
    return {"slots": slots, "sequential_s": round(sequential, 2), "shared_s": round(shared, 2),
            "speedup": round(sequential / shared, 2)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="tiny shapes on the CPU")
    args = parser.parse_args(argv)
    import torch

    if not args.smoke_test and not torch.cuda.is_available():
        print("benchmarks/gpu.py needs a CUDA GPU (or --smoke-test)")
        return 2
    device = "cpu" if args.smoke_test else "cuda"
    shapes = {"tiny_17x64": (17, 64)} if args.smoke_test else SHAPES
    rows, epochs, size = (256, 2, 256) if args.smoke_test else (4096, 3, 4096)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    rates = {k: matmul_rate(device, dt, size) for k, dt in
             (("bf16", torch.bfloat16), ("fp32", torch.float32))}  # fmt: skip
    print(json.dumps({"device": name, "matmul_tflop_per_s": {k: round(v / 1e12, 2)
                      for k, v in rates.items()}}))  # fmt: skip
    for label, shape in shapes.items():
        for dtype in ("bf16", "fp32"):
            row = fit_throughput(shape, rows, epochs, dtype, device)
            row["fraction_of_matmul"] = round(row["tflop_per_s"] * 1e12 / rates[dtype], 3)
            row["tflop_per_s"] = round(row["tflop_per_s"], 2)
            print(json.dumps({"shape": label, "dtype": dtype, **row}))
    shared = shared_gpu(next(iter(shapes.values())), rows // 4, epochs, device)
    print(json.dumps({"shared_gpu": shared}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
