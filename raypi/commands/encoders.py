"""``raypi encoders``: list the image and text encoders with token shape, size and weights."""

from __future__ import annotations

import argparse
import json

from raypi.encoders import EncoderSpec, list_encoders


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``encoders`` subcommand.

    Args:
        subparsers: The ``raypi`` command's subparsers.
    """
    parser = subparsers.add_parser(
        "encoders",
        help="list the frozen image and text encoders",
        description="List each encoder: kind, family, token shape (T x D), input size, bytes "
        "per image (or report) in fp16, GPU hint, and where its weights are expected.",
    )
    parser.add_argument("--kind", choices=("image", "text"), help="only encoders of this kind")
    parser.add_argument(
        "--no-tiny", action="store_true", help="leave out the tiny test/demo encoders"
    )
    parser.add_argument(
        "--text-length",
        type=int,
        default=128,
        help="report truncation length used for the text encoders' bytes (default 128)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _row(spec: EncoderSpec, text_length: int) -> dict:
    length = min(text_length, spec.token_shape[0]) if spec.kind == "text" else None
    tokens, width = spec.token_shape
    weights = spec.default_weights()
    return {
        "name": spec.name,
        "kind": spec.kind,
        "family": spec.family,
        "tokens": f"{length or tokens}x{width}",
        "input": f"{spec.input_size}px" if spec.kind == "image" else f"<={spec.input_size} tok",
        "fp16/item": _size(spec.bytes_per_item(2, length)),
        "gpu": f"{spec.hint.gpu_memory_gb:g} GB @ {spec.hint.batch_size}"
        + (" (big GPU)" if spec.hint.needs_big_gpu else ""),
        "weights": ("found " if weights.exists() else "expected ") + str(weights),
        "format": spec.weights_hint,
    }


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 2**20:.2f} MiB" if num_bytes >= 2**20 else f"{num_bytes / 2**10:.0f} KiB"


def run(args: argparse.Namespace) -> int:
    """Print the encoder table.

    Args:
        args: Parsed arguments (``kind``, ``no_tiny``, ``text_length``, ``json``).

    Returns:
        Exit code 0.
    """
    specs = sorted(
        list_encoders(args.kind, include_tiny=not args.no_tiny),
        key=lambda spec: (spec.tiny, spec.kind != "image"),
    )
    rows = [_row(spec, args.text_length) for spec in specs]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    headers = [key for key in rows[0] if key != "format"]
    widths = [max(len(header), *(len(row[header]) for row in rows)) for header in headers]
    for cells in [dict(zip(headers, headers)), *rows]:
        print("  ".join(cells[key].ljust(width) for key, width in zip(headers, widths)).rstrip())
    print("\nWeights: the upstream file or folder, given to extraction per encoder or placed at")
    print("the path above. Formats:")
    for row in rows:
        print(f"  {row['name']}: {row['format']}")
    return 0
