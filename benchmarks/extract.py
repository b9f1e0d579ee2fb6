"""Images/s of the Ray Data extraction vs a plain PyTorch loop and the raw forward, one run.

For each encoder, on the same synthetic JPEG dataset and batch size:
- raw forward: the encoder alone on already-preprocessed pixels (the floor);
- plain loop: DataLoader (decode + preprocess, ``--loader-workers``) + model + pandas Parquet
  write of fp16 tokens per batch;
- pipeline: ``raypi.features.extract`` on a local Ray with ``--cpus`` CPUs, wall time of the
  call (driver fingerprint build, actor start-up and manifest included).
Then a reader check: load a synthetic store in a fresh process and report MB/s and peak RSS
growth relative to the tensor size (must stay well under 2x).

    .venv/bin/python benchmarks/extract.py                # tiny_vit + medical_mae (ViT-B/16)
    .venv/bin/python benchmarks/extract.py --smoke-test   # seconds, tiny_vit only
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from raypi.data.tables import decode_image, write_dataset


def make_dataset(root: Path, count: int, side: int) -> pd.DataFrame:
    """Write ``count`` smooth-plus-noise grayscale JPEGs (quality 95) and their table."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:side, 0:side]
    rows_out = []
    for i in range(count):
        base = 128 + 60 * np.sin(rows / (20 + i % 7)) * np.cos(cols / (25 + i % 5))
        image = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        name = f"images/{i:05d}.jpg"
        Image.fromarray(image).save(root / name, quality=95)
        rows_out.append(
            {"image_id": f"{i:05d}", "patient_id": f"p{i}", "image_path": name, "report": None}
        )
    frame = pd.DataFrame(rows_out)
    write_dataset(root, frame)
    return frame


class JpegImages(torch.utils.data.Dataset):
    """Decode + preprocess each image, as a plain PyTorch pipeline would."""

    def __init__(self, root: Path, frame: pd.DataFrame, spec):
        self.root, self.frame, self.spec = root, frame, spec

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, i):
        row = self.frame.iloc[i]
        image = decode_image((self.root / row["image_path"]).read_bytes())
        return row["image_id"], self.spec.preprocess(image)


def raw_forward(module, pixels: torch.Tensor, batch_size: int) -> float:
    """Seconds of forward passes alone over preprocessed ``pixels``."""
    start = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, len(pixels), batch_size):
            module(pixels[first : first + batch_size])
    return time.perf_counter() - start


def plain_loop(root, frame, spec, module, out: Path, batch_size: int, workers: int):
    """Seconds of DataLoader + model + pandas Parquet writes of fp16 tokens, and steady rows/s."""
    out.mkdir(parents=True, exist_ok=True)
    loader = torch.utils.data.DataLoader(
        JpegImages(root, frame, spec), batch_size=batch_size, num_workers=workers
    )
    start = time.perf_counter()
    with torch.inference_mode():
        for number, (ids, pixels) in enumerate(loader):
            tokens = module(pixels).half().numpy()
            table = pd.DataFrame(
                {
                    "image_id": list(ids),
                    "view": np.zeros(len(ids), np.int16),
                    "tokens": [row.tobytes() for row in tokens],
                }
            )
            table.to_parquet(out / f"part-{number:05d}.parquet", index=False)
    return time.perf_counter() - start, steady_rate(sorted(out.glob("part-*.parquet")))


def steady_rate(shards: list) -> float:
    """Rows/s between the first and the last shard written (start-up excluded)."""
    import pyarrow.parquet as pq

    times = sorted((Path(p).stat().st_mtime, pq.ParquetFile(p).metadata.num_rows) for p in shards)
    if len(times) < 2:
        return float("nan")
    return sum(rows for _, rows in times[1:]) / (times[-1][0] - times[0][0])


def bench_encoder(name: str, root: Path, frame: pd.DataFrame, args, work: Path) -> dict:
    """Measure raw forward, plain loop and pipeline for one encoder; return the figures."""
    from raypi.encoders import get_encoder
    from raypi.features import extract

    spec = get_encoder(name)
    module = spec.build()
    torch.set_num_threads(args.cpus)
    images = [decode_image((root / path).read_bytes()) for path in frame["image_path"]]
    pixels = torch.stack([spec.preprocess(image) for image in images])
    raw = raw_forward(module, pixels, args.batch_size)
    plain, plain_steady = plain_loop(
        root, frame, spec, module, work / f"plain-{name}", args.batch_size, args.loader_workers
    )
    start = time.perf_counter()
    # Throughput only: a real encoder's random initialisation costs the same as its weights.
    (summary,) = extract(
        str(root), [name], str(work / "store"), batch_size=args.batch_size,
        cpu_threads=args.cpus, random_weights=True,
    )  # fmt: skip
    pipeline = time.perf_counter() - start
    shards = list((work / "store" / name).glob("part-*.parquet"))
    count = len(frame)
    return {
        "encoder": name,
        "images": count,
        "batch": args.batch_size,
        "raw forward img/s": count / raw,
        "plain loop img/s": count / plain,
        "pipeline img/s": count / pipeline,
        "pipeline / plain": plain / pipeline,
        "pipeline over raw forward": pipeline / raw - 1,
        "steady plain img/s": plain_steady,
        "steady pipeline img/s": steady_rate(shards),
        "pipeline over its own forward": pipeline / summary.forward_seconds - 1,
        "pipeline forward s": summary.forward_seconds,
        "pipeline wall s": pipeline,
    }


READER = """
import resource, sys, time
import torch
from raypi.features import load
store, ids = sys.argv[1], [f"{i:06d}" for i in range(int(sys.argv[2]))]
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
start = time.perf_counter()
tokens = load(store, "synthetic", ids, views=0)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
size = tokens.numel() * tokens.element_size()
print(f"{size / 2**20:.0f} {seconds:.3f} {(peak - before) / 2**20:.0f}")
"""


def bench_reader(work: Path, rows: int, shape=(197, 768)) -> dict:
    """Write a synthetic fp16 store and load it in a fresh process; return MB/s and peak RSS."""
    from raypi.features import schema, store

    root = str(work / "reader")
    chunk = 64
    for first in range(0, rows, chunk):
        ids = [f"{i:06d}" for i in range(first, min(rows, first + chunk))]
        tokens = torch.randn(len(ids), *shape)
        store.write_shard(
            root, "synthetic", schema.image_table(ids, np.zeros(len(ids)), tokens, "fp16")
        )
    store.write_manifest(
        root,
        "synthetic",
        {
            "format": store.FORMAT,
            "encoder": "synthetic",
            "kind": "image",
            "dtype": "fp16",
            "token_shape": list(shape),
            "views": [0],
            "skipped": [],
        },
    )
    result = subprocess.run(
        [sys.executable, "-c", READER, root, str(rows)], check=True, capture_output=True, text=True
    )
    size, seconds, grown = result.stdout.split()
    return {
        "tensor MiB": float(size),
        "load s": float(seconds),
        "MiB/s": float(size) / float(seconds),
        "peak RSS growth / tensor": float(grown) / float(size),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", default="tiny_vit,medical_mae")
    parser.add_argument("--images", type=int, default=256, help="images for tiny encoders")
    parser.add_argument("--big-images", type=int, default=64, help="images for full-size ones")
    parser.add_argument("--side", type=int, default=512, help="side of the synthetic JPEGs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cpus", type=int, default=2, help="Ray CPUs and torch threads")
    parser.add_argument("--loader-workers", type=int, default=1)
    parser.add_argument("--reader-rows", type=int, default=2000)
    parser.add_argument("--smoke-test", action="store_true", help="tiny_vit, 16 images")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.encoders, args.images, args.side, args.reader_rows = "tiny_vit", 48, 128, 64
    import ray

    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.encoders.split(","):
            tiny = name.startswith("tiny")
            count = args.images if tiny else args.big_images
            root = work / f"data-{count}"
            frame = (
                make_dataset(root, count, args.side)
                if not root.exists()
                else pd.read_parquet(root / "dataset.parquet")
            )
            results.append(bench_encoder(name, root, frame, args, work / name))
        reader = bench_reader(work, args.reader_rows)
    print(markdown(results))
    print()
    print(markdown([reader]))
    return 0


def markdown(rows: list[dict]) -> str:
    """Format rows as a markdown table (numbers to 3 significant digits)."""
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()] for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


if __name__ == "__main__":
    sys.exit(main())
