"""``raypi extract``: frozen-encoder features of a dataset into a (resumable) feature store."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from raypi import paths
from raypi.commands import _options


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
        "--out", default=None,
        help="feature store folder, local or s3:// (default: $RAYPI_HOME/features/<dataset>)",
    )  # fmt: skip
    # Every extraction setting is a field of ExtractOptions: its flags are made from it.
    from raypi.features.extract import ExtractOptions

    _options.add_arguments(parser, ExtractOptions)
    parser.add_argument(
        "--weights", type=_weights, action="append", default=[], metavar="NAME=PATH",
        help="upstream weights file/folder of an encoder, local or s3:// (repeatable); default "
        "$RAYPI_HOME/weights/NAME when present; an encoder with published weights and none "
        "given is refused unless --random-weights",
    )  # fmt: skip
    parser.add_argument(
        "--image-root", default=None,
        help="read the table's relative image paths from here, local or s3:// (default: the "
        "dataset's image root: meta.json's image_root, else the dataset root)",
    )  # fmt: skip
    _options.add_address(parser, "the extraction")
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="show Ray Data's execution plans and progress (always in Ray's log files)",
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
        from raypi.features.extract import ExtractOptions

        summaries = extract(
            args.dataset, encoders, out, weights=dict(args.weights), address=args.address,
            verbose=args.verbose, image_root=args.image_root,
            **_options.values(args, ExtractOptions),
        )  # fmt: skip
    except (StoreError, TableError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"raypi extract: {message}", file=sys.stderr)
        return 2
    print(f"feature store: {out}")
    for summary in summaries:
        print(summary.line())
    return 0
