"""Build and forward times of every encoder on CPU (random weights; fp32), as a markdown table."""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from raypi.encoders import get_encoder, list_encoders

REPORT = "Findings: no focal consolidation, effusion or pneumothorax. " * 12


def _measure(spec, batch: int, repeats: int) -> tuple[float, float, float, float]:
    start, cpu_start = time.perf_counter(), time.process_time()
    module = spec.build()
    build_s, build_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    with torch.inference_mode():
        if spec.kind == "image":
            pixels = torch.randn(batch, 3, spec.input_size, spec.input_size)
            run = lambda: module(pixels)  # noqa: E731
        else:
            length = min(128, spec.token_shape[0])
            run = lambda: spec.encode([REPORT] * batch, length, module)  # noqa: E731
        run()  # warm-up: first-call allocations and kernel selection
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            run()
        forward_s = (time.perf_counter() - start) / (repeats * batch)
        forward_cpu = (time.process_time() - cpu_start) / (repeats * batch)
    return build_s, build_cpu, forward_s, forward_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=4, help="images or reports per forward")
    parser.add_argument("--repeats", type=int, default=2, help="timed forwards per encoder")
    parser.add_argument("--encoders", help="comma-separated names (default: all)")
    parser.add_argument("--smoke-test", action="store_true", help="tiny encoders, one repeat")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.encoders:
        specs = [get_encoder(name) for name in args.encoders.split(",")]
    else:
        specs = [s for s in list_encoders() if s.tiny or not args.smoke_test]
    print(
        f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    # On a shared machine wall time includes waiting for a core; CPU seconds (all threads
    # together) show the work itself.
    print("| encoder | tokens | build s (CPU s) | forward s/item (CPU s/item) |")
    print("| --- | --- | --- | --- |")
    for spec in specs:
        build_s, build_cpu, per_item, per_item_cpu = _measure(
            spec, args.batch, 1 if args.smoke_test else args.repeats
        )
        tokens = f"{spec.token_shape[0] if spec.kind == 'image' else min(128, spec.token_shape[0])}"
        print(
            f"| {spec.name} | {tokens}x{spec.token_shape[1]} | {build_s:.2f} ({build_cpu:.2f}) | "
            f"{per_item:.3f} ({per_item_cpu:.3f}) |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
