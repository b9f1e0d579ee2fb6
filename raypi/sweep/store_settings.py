"""The feature store's settings a trial read, as columns of its trials row.

A trial's config names its store by path only; what the store holds — how many augmented views,
which tokens and pooling, the text length, the weights the features came from — changes its
result as much as a grid setting does. Each row records them from the store's manifests, so the
report never averages trials of different stores (``raypi.report._settings``).
"""

from __future__ import annotations

import functools

import pyarrow as pa

STORE_FIELDS = (
    ("store_views", pa.int64()),
    ("image_tokens", pa.string()),
    ("image_pool", pa.int64()),
    ("image_weights", pa.string()),
    ("text_max_length", pa.int64()),
    ("text_weights", pa.string()),
)
"""Columns: views stored per image (view 0 plain, 1.. augmented), the image store's ``tokens``
mode and pooling window, the image encoder's weights fingerprint, the text store's
``max_text_length`` and the text encoder's weights fingerprint (None where the trial reads no
image, or no report)."""
STORE_COLUMNS = tuple(name for name, _ in STORE_FIELDS)


@functools.lru_cache(maxsize=256)
def _manifest(store: str, encoder: str) -> dict:
    from raypi.features import read_manifest

    return read_manifest(store, encoder)


def store_columns(config: dict) -> dict:
    """Return the store settings of one trial from its config's dict form.

    Args:
        config: ``TrialConfig.to_dict`` (needs ``features``, ``method``, ``encoder``,
            ``text_encoder``).

    Returns:
        ``STORE_COLUMNS`` → value; a store without a manifest of the encoder (a trial that
        failed before reading features; results written by hand) leaves its columns None,
        which the report treats as a setting of its own.
    """
    from raypi.features.store import StoreError
    from raypi.methods import METHOD_TABLE

    row = dict.fromkeys(STORE_COLUMNS)
    method = METHOD_TABLE[config["method"]]
    store = config.get("features")
    parts = [("image", config.get("encoder"), method.reads_image)]
    parts.append(("text", config.get("text_encoder"), method.reads_report))
    for kind, encoder, reads in parts:
        if not (reads and encoder and store):
            continue
        try:
            manifest = _manifest(str(store), str(encoder))
        except (StoreError, OSError):
            continue
        if kind == "image":
            row.update(
                store_views=len(manifest.get("views") or []),
                image_tokens=manifest.get("tokens"),
                image_pool=manifest.get("pool"),
                image_weights=manifest.get("weights_fingerprint"),
            )
        else:
            row.update(
                text_max_length=manifest.get("max_length"),
                text_weights=manifest.get("weights_fingerprint"),
            )
    return row
