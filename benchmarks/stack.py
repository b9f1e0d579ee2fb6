"""Stacked vs one-member-at-a-time training of one pack, on the CPU (or any device).

    PYTHONPATH=. python benchmarks/stack.py               # demo + ViT-B pack, ~5 min idle
    PYTHONPATH=. python benchmarks/stack.py --smoke-test  # tiny shapes, seconds

A pack here is what ``raypi.sweep.packs`` makes of one (task, encoder, seed) of the demo sweep
(``sweeps/configs/distill_grid_demo.yaml``): image-only model, teacher, distilled and
self-distilled students at the smallest and largest demo size (100 rows × 60 epochs, 400 rows
× 30 epochs), 300 validation rows, demo token shapes (17×64 image, 128×64 report), lr 1e-3.
Its tensors are synthetic (tokens with a label signal), so the timing needs no feature store.
The second pack has the study's ViT-B shape (197×768 image, 512×768 report) with reduced rows.
Both run the pack's stacks (``plan``: image, teacher, students) through ``fit_stack`` and the
same members one at a time through ``fit``, in turns (fastest of ``--rounds`` kept), and print
one JSON line per pack with the ratio, after one line of machine facts (a tiny pack is
trained both ways first: the first fits of a process pay for torch's lazy set-up).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

PACKS = {
    # name: image shape, report shape, (size, epochs) per size, validation rows
    "demo_17x64": ((17, 64), (128, 64), ((100, 60), (400, 30)), 300),
    "vit_b_197x768": ((197, 768), (512, 768), ((32, 3), (128, 2)), 64),
}
SMOKE = {"smoke_17x64": ((17, 64), (16, 64), ((20, 2), (40, 1)), 24)}
STACKS = (("image",), ("teacher",), ("distill", "self_distill"))
"""The pack's stacks, in training order (students after their teachers)."""


def pack_members(image_shape, text_shape, sizes, val_rows, device="cpu", dtype="fp32", seed=0):
    """Return the pack's stacks: per stack, the members' ``(FitData, FitConfig)``.

    Students distill from uniform soft targets here (their teachers' outputs only change the
    values, not the work).
    """
    import torch

    from raypi.train import FitConfig, FitData

    g = torch.Generator().manual_seed(seed)
    largest = max(size for size, _ in sizes)

    def rows(n):
        labels = torch.randint(0, 2, (n,), generator=g)
        image = torch.randn(n, *image_shape, generator=g).half()
        image[..., 0] += labels.half().view(-1, 1)
        text = torch.randn(n, *text_shape, generator=g).half()
        lengths = torch.randint(text_shape[0] // 4, text_shape[0] + 1, (n,), generator=g)
        return image, labels, text, lengths

    train, val = rows(largest), rows(val_rows)
    stacks = []
    for methods in STACKS:
        members = []
        for method in methods:
            for size, epochs in sizes:
                data = FitData(train[0][:size], train[1][:size], val[0], val[1],
                               train[2][:size], train[3][:size], val[2], val[3])  # fmt: skip
                if method in ("distill", "self_distill"):
                    data.teacher_probs = torch.full((size, 2), 0.5)
                config = FitConfig(method=method, epochs=epochs, lr=1e-3, seed=seed,
                                   device=device, dtype=dtype)  # fmt: skip
                members.append((data, config))
        stacks.append(members)
    return stacks


def time_pack(stacks, stacked: bool, sync=lambda: None) -> float:
    """Seconds to train every member of the pack, stacked or one at a time."""
    from raypi.train import fit, fit_stack

    sync()
    start = time.perf_counter()
    for members in stacks:
        if stacked:
            fit_stack([d for d, _ in members], [c for _, c in members])
        else:
            for data, config in members:
                fit(data, config)
    sync()
    return time.perf_counter() - start


def machine() -> dict:
    """CPU model, cores, torch threads and the fp32 matmul rate (1024², this run)."""
    import torch

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info
                         if line.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    start, repeats = time.perf_counter(), 10
    for _ in range(repeats):
        a @ b
    rate = 2 * 1024**3 * repeats / (time.perf_counter() - start) / 1e9
    return {"cpu": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "matmul_fp32_gflop_per_s": round(rate, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="tiny shapes, seconds")
    parser.add_argument("--rounds", type=int, default=1, help="turns of each way (fastest kept)")
    args = parser.parse_args(argv)
    print(json.dumps({"machine": machine()}))
    warm = pack_members(*SMOKE["smoke_17x64"])
    time_pack(warm, stacked=True), time_pack(warm, stacked=False)  # torch's lazy set-up
    for name, (image, text, sizes, val_rows) in (SMOKE if args.smoke_test else PACKS).items():
        stacks = pack_members(image, text, sizes, val_rows)
        best = {"stacked": float("inf"), "one_at_a_time": float("inf")}
        for _ in range(args.rounds):
            for way in best:
                best[way] = min(best[way], time_pack(stacks, stacked=way == "stacked"))
        ratio = best["one_at_a_time"] / best["stacked"]
        row = {"pack": name, "members": sum(len(s) for s in stacks),
               "stacks": [len(s) for s in stacks], "speedup": round(ratio, 2)}  # fmt: skip
        print(json.dumps({**row, **{f"{k}_s": round(v, 2) for k, v in best.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
