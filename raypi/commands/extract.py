"""``raypi extract``: frozen-encoder features of a dataset into a (resumable) feature store."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from raypi import paths


def _weights(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``extract`` command."""
    parser = subparsers.add_parser(
        "extract",
        help="extract frozen-encoder token features into a feature store (Ray Data)",
        description="Run image and text encoders over a dataset with Ray Data and write fp16 "
        "token features as Parquet shards plus a manifest per encoder. Reruns extract only "
        "missing rows; a store made differently is refused unless --overwrite.",
    )
    parser.add_argument(
        "--dataset", default=str(paths.demo_dataset()),
        help="dataset root with dataset.parquet, local or s3:// (default: the demo dataset)",
    )  # fmt: skip
    parser.add_argument(
        "--encoders", required=True,
        help="comma-separated encoder names, image and text (see `raypi encoders`)",
    )  # fmt: skip
    parser.add_argument(
        "--views", type=int, default=0,
        help="augmented views per image besides view 0 (random resized crop 0.4-0.9)",
    )  # fmt: skip
    parser.add_argument(
        "--out", default=None,
        help="feature store folder, local or s3:// (default: $RAYPI_HOME/features/<dataset>)",
    )  # fmt: skip
    parser.add_argument(
        "--max-text-length", type=int, default=128,
        help="truncation length of reports in tokens (real lengths are stored)",
    )  # fmt: skip
    parser.add_argument(
        "--dtype", choices=("fp16", "bf16", "fp32"), default="fp16",
        help="storage dtype of tokens (default fp16)",
    )  # fmt: skip
    parser.add_argument(
        "--pool", type=int, default=1,
        help="average-pool the patch grid in POOL x POOL windows (e.g. 2); CLS kept",
    )  # fmt: skip
    parser.add_argument(
        "--tokens", choices=("all", "cls", "mean"), default="all",
        help="keep every token, only the CLS token, or only the patch-token mean",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="base seed of the augmented views")
    parser.add_argument(
        "--batch-size", type=int, default=None,
        help="rows per forward pass and per shard (default: the encoder's resource hint)",
    )  # fmt: skip
    parser.add_argument(
        "--weights", type=_weights, action="append", default=[], metavar="NAME=PATH",
        help="upstream weights file/folder of an encoder (repeatable); default "
        "$RAYPI_HOME/weights/NAME when present, else random init",
    )  # fmt: skip
    parser.add_argument(
        "--overwrite", action="store_true",
        help="rewrite a store made with other weights/preprocessing/options instead of refusing",
    )  # fmt: skip
    parser.add_argument(
        "--gpu-memory-gb", type=float, default=16.0,
        help="memory of one GPU, to turn an encoder's memory hint into a GPU share",
    )  # fmt: skip
    parser.add_argument(
        "--cpu-threads", type=int, default=None,
        help="torch threads of a CPU encoder actor (default: the cluster's CPU count)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def default_store(dataset: str) -> str:
    """Return the default feature store of a dataset root: ``$RAYPI_HOME/features/<name>``."""
    return str(paths.home() / "features" / Path(dataset.rstrip("/")).name)


def run(args: argparse.Namespace) -> int:
    """Run ``raypi extract``; print one summary line per encoder."""
    from raypi.data.tables import TableError
    from raypi.features import StoreError, extract

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or default_store(args.dataset)
    encoders = [name.strip() for name in args.encoders.split(",") if name.strip()]
    try:
        summaries = extract(
            args.dataset, encoders, out, views=args.views, weights=dict(args.weights),
            max_text_length=args.max_text_length, dtype=args.dtype, pool=args.pool,
            tokens=args.tokens, seed=args.seed, batch_size=args.batch_size,
            overwrite=args.overwrite, gpu_memory_gb=args.gpu_memory_gb,
            cpu_threads=args.cpu_threads,
        )  # fmt: skip
    except (StoreError, TableError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"raypi extract: {message}", file=sys.stderr)
        return 2
    print(f"feature store: {out}")
    for summary in summaries:
        print(summary.line())
    return 0
