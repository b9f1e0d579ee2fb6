"""Frozen-encoder token features: Ray Data extraction into Parquet, and a zero-copy reader.

Importing this package does not import Ray; only :func:`extract` does, when called.
"""

from raypi.features.extract import EncoderSummary, ExtractOptions, extract
from raypi.features.reader import load, load_text
from raypi.features.store import StoreError, read_manifest

__all__ = [
    "EncoderSummary",
    "ExtractOptions",
    "StoreError",
    "extract",
    "load",
    "load_text",
    "read_manifest",
]
