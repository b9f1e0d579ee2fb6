"""``raypi pretrain``: pre-train the demo's tiny encoders on the demo dataset (weights cached)."""

from __future__ import annotations

import argparse
import json
import sys

from raypi import paths


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` subcommand.

    Args:
        subparsers: The ``raypi`` command's subparsers.
    """
    from raypi.pretrain import RECIPES

    parser = subparsers.add_parser(
        "pretrain",
        help="pre-train the demo encoders (demo_bert, demo_vit_ssl, demo_vit_clip) on the demo",
        description="Pre-train the demo's encoders on the demo dataset's images and reports "
        "(never its labels) and write them to $RAYPI_HOME/weights/<encoder>/ in their families' "
        "upstream formats, with pretrain.json (recipe, losses, weights hash) beside them. "
        "Current weights are kept unless --force.",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="demo dataset root (default: $RAYPI_HOME/datasets/demo; `raypi demo-data` builds it)",
    )
    parser.add_argument(
        "--encoders",
        nargs="+",
        default=list(RECIPES),
        choices=list(RECIPES),
        help="encoders to pre-train (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every recipe (default 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even current weights")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pre-train and print what was written as JSON (encoder → seconds, loss, hash).

    Args:
        args: Parsed arguments (``data``, ``encoders``, ``seed``, ``force``).

    Returns:
        0 on success, 2 when the dataset is missing.
    """
    from raypi import io
    from raypi.pretrain import ensure_pretrained, pretrain, weights_folder
    from raypi.pretrain._common import read_record

    data = args.data or str(paths.demo_dataset())
    if not io.exists(io.join(data, "meta.json")):
        print(
            f"raypi pretrain: no demo dataset at {data}; build it with `raypi demo-data`",
            file=sys.stderr,
        )
        return 2
    if args.force:
        pretrain(data, args.encoders, seed=args.seed)
    else:
        ensure_pretrained(data, args.encoders, seed=args.seed)
    summary = {}
    for name in args.encoders:
        record = read_record(weights_folder(name))
        summary[name] = {
            "folder": str(weights_folder(name)),
            "seconds": record["seconds"],
            "loss_first_last": [record["losses"][0], record["losses"][-1]],
            "weights_sha256": record["weights_sha256"],
        }
    print(json.dumps(summary, indent=2))
    return 0
