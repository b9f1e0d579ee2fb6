"""Feature store layout: manifests, atomic shard writes and the index of stored rows.

A store is a folder (local or ``s3://``) with one subfolder per encoder::

    STORE/<encoder>/manifest.json
    STORE/<encoder>/part-<uuid>.parquet

Shards become visible whole or not at all: local shards are written under a temporary name and
renamed; S3 objects appear only when their upload completes. The manifest records what made
the shards (see ``IDENTITY``); a store is only ever extended by a run with the same identity.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from raypi import io
from raypi.features import schema

MANIFEST = "manifest.json"
FORMAT = 1
ROW_GROUP_BYTES = 64 * 2**20

IDENTITY = (
    "format",
    "encoder",
    "kind",
    "weights_fingerprint",
    "preprocessing",
    "token_shape",
    "tokens",
    "pool",
    "dtype",
    "max_length",
    "seed",
)
"""Manifest fields that must match for a run to add rows to an existing store."""


class StoreError(ValueError):
    """A feature store is missing, incomplete, or does not hold what was asked for."""


class ShardError(StoreError):
    """A shard that cannot be read back as written (truncated, or bytes changed on storage)."""

    def __init__(self, path: str, reason: str):
        super().__init__(
            f"corrupt feature shard {path} ({reason}); it is not served. Rerun `raypi extract` "
            "with the same options on this store: it removes the shard and encodes its rows again"
        )
        self.path, self.reason = path, reason

    def __reduce__(self):
        # Rebuilt from its own arguments, so it survives the trip from a Ray worker.
        return type(self), (self.path, self.reason)


REPAIRABLE = (OSError, pa.ArrowException)
"""What pyarrow raises on a truncated file, a bad footer or a failed page checksum."""


def encoder_dir(store: str, encoder: str) -> str:
    """Return the folder of one encoder's features inside ``store``."""
    return io.join(store, encoder)


def read_manifest(store: str, encoder: str) -> dict:
    """Return the manifest of ``encoder``'s features in ``store``.

    Args:
        store: Feature store folder, local or ``s3://``.
        encoder: Encoder name.

    Returns:
        The manifest as a dict.

    Raises:
        StoreError: No manifest exists there.
    """
    path = io.join(encoder_dir(store, encoder), MANIFEST)
    if not io.exists(path):
        known = [name for name in io.listdir(store) if io.exists(io.join(store, name, MANIFEST))]
        raise StoreError(
            f"no features of encoder {encoder!r} in {store} (no {MANIFEST}); "
            f"encoders there: {known or 'none'}. Run `raypi extract` first."
        )
    return io.read_json(path)


def find_manifest(store: str, encoder: str, remote: bool = True) -> dict | None:
    """Return ``encoder``'s manifest in ``store``, or None where it has none.

    Args:
        store: Feature store folder, local or ``s3://`` (empty: no store).
        encoder: Encoder name.
        remote: Read a remote store's manifest; False answers None for a remote store, so
            nothing is read over the network (``raypi.sweep.cost``'s dry run).
    """
    if not store or not encoder or (not remote and io.is_remote(store)):
        return None
    path = io.join(encoder_dir(store, encoder), MANIFEST)
    return io.read_json(path) if io.exists(path) else None


def token_shape(manifest: dict) -> tuple[int, int] | None:
    """Return the ``(T, D)`` of the stored tokens (pooled, if the store pools), None if unset."""
    shape = manifest.get("token_shape")
    return None if shape is None else (int(shape[0]), int(shape[1]))


def stored_views(manifest: dict) -> list[int]:
    """Return the views whose extraction completed (0 the plain image; text stores: ``[0]``)."""
    return list(manifest.get("views") or [])


def serves_views(manifest: dict, views: int) -> bool:
    """Return whether a completed store holds views ``0..views`` (text stores: view 0 only)."""
    wanted = {0} if manifest.get("kind") == "text" else set(range(views + 1))
    return bool(manifest.get("complete")) and wanted <= set(stored_views(manifest))


def has_cls(manifest: dict) -> bool:
    """Return whether the stored image tokens start with a CLS token."""
    return bool(manifest.get("has_cls", False))


def write_manifest(store: str, encoder: str, manifest: dict) -> None:
    """Write ``encoder``'s manifest (atomically)."""
    io.write_json(io.join(encoder_dir(store, encoder), MANIFEST), manifest)


def identity_mismatches(stored: dict, wanted: dict) -> list[str]:
    """Return a line per identity field where a stored manifest differs from ``wanted``."""
    return [
        f"{field}: store has {stored.get(field)!r}, run asks {wanted.get(field)!r}"
        for field in IDENTITY
        if _plain(stored.get(field)) != _plain(wanted.get(field))
    ]


def _plain(value):
    """Normalise tuples to lists so JSON round trips compare equal."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def list_shards(store: str, encoder: str) -> list[str]:
    """Return the paths of the complete shards of ``encoder`` (temporaries are invisible)."""
    folder = encoder_dir(store, encoder)
    names = io.listdir(folder)
    return [io.join(folder, n) for n in names if n.startswith("part-") and n.endswith(".parquet")]


def write_shard(store: str, encoder: str, table) -> tuple[str, int]:
    """Write one shard atomically and return its ``(path, size in bytes)``.

    Args:
        store: Feature store folder.
        encoder: Encoder name.
        table: An Arrow table with the image or text schema.

    Returns:
        The shard's path and its size on storage.
    """
    path = io.join(encoder_dir(store, encoder), f"part-{uuid.uuid4().hex}.parquet")
    rows_per_group = max(1, ROW_GROUP_BYTES // max(1, table.nbytes // max(1, table.num_rows)))
    # Token bytes are near-random: dictionaries and compression cost time and save little.
    io.write_parquet(
        table,
        path,
        row_group_size=rows_per_group,
        use_dictionary=[schema.IMAGE_ID],
        compression="none",
        write_statistics=[schema.IMAGE_ID, schema.VIEW],
        write_page_checksum=True,  # a changed byte on storage fails the read, naming the shard
    )
    fs, inner = io.filesystem(path)
    return path, int(io.retrying(path, lambda: fs.get_file_info(inner)).size)


def open_shard(path: str) -> pq.ParquetFile:
    """Open a shard for reading (memory-mapped when local), verifying page checksums on read.

    Raises:
        ShardError: The file is truncated or its footer unreadable.
        StorageUnavailableError: The object store did not answer (the shard may be sound).
    """
    fs, inner = io.filesystem(path)
    try:
        if isinstance(fs, pafs.LocalFileSystem):
            return pq.ParquetFile(inner, memory_map=True, page_checksum_verification=True)
        source = io.retrying(path, lambda: fs.open_input_file(inner))
        return pq.ParquetFile(source, page_checksum_verification=True)
    except REPAIRABLE as error:
        raise shard_error(path, error) from None


def read_shard(path: str, columns: list[str] | None = None):
    """Read columns of a whole shard, naming the shard when it is corrupt.

    Raises:
        ShardError: The shard cannot be read back as written.
    """
    shard = open_shard(path)
    try:
        with shard:
            return shard.read(columns=columns)
    except REPAIRABLE as error:
        raise shard_error(path, error) from None


def shard_error(path: str, error: Exception) -> Exception:
    """Return the ``ShardError`` of a pyarrow failure reading ``path`` (first line of it).

    An unreachable object store or a refused allocation says nothing about the shard, so its
    error is returned as it is: a shard is never called corrupt (nor repaired) for them.
    """
    if isinstance(error, (io.StorageUnavailableError, MemoryError)) or io.is_transient(error):
        return error
    return ShardError(path, f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")


def corrupt_shards(store: str, encoder: str, full: bool = False) -> list[str]:
    """Return the shards of ``encoder`` that cannot be read.

    Args:
        store: Feature store folder.
        encoder: Encoder name.
        full: Read every page (checking every checksum) instead of only each footer.

    Returns:
        Paths of the corrupt shards.
    """
    bad = []
    for path in list_shards(store, encoder):
        try:
            if full:
                read_shard(path)
            else:
                open_shard(path).close()
        except ShardError:
            bad.append(path)
    return bad


def read_index(store: str, encoder: str, keys: tuple[str, ...]) -> pd.DataFrame:
    """Return where every stored row lives: its key columns plus ``shard`` and ``row``.

    Args:
        store: Feature store folder.
        encoder: Encoder name.
        keys: Key columns to read (``schema.IMAGE_KEYS`` or ``schema.TEXT_KEYS``).

    Returns:
        One row per stored feature row; ``shard`` is the shard path, ``row`` its row number.
    """
    frames = []
    for path in list_shards(store, encoder):
        table = read_shard(path, columns=list(keys))
        frame = table.to_pandas()
        frame["shard"] = path
        frame["row"] = np.arange(len(frame), dtype=np.int64)
        frames.append(frame)
    if not frames:
        return pd.DataFrame({**{key: [] for key in keys}, "shard": [], "row": []})
    return pd.concat(frames, ignore_index=True)


def drop_duplicate_shards(store: str, encoder: str, keys: tuple[str, ...]) -> int:
    """Delete shards whose every row is also in another shard; return how many.

    A worker of a killed run can finish its batch after the rerun has read the index, so the
    same (image, view) may land twice. Copies are identical (same store identity), and such a
    late batch is fully covered by the rerun's shards, so deleting it restores one row per key.

    Args:
        store: Feature store folder.
        encoder: Encoder name.
        keys: Key columns of the store's kind.

    Returns:
        The number of shards deleted.
    """
    index = read_index(store, encoder, keys)
    key = index[keys[0]].astype(str)
    for column in keys[1:]:
        key = key + "/" + index[column].astype(str)
    codes = pd.factorize(key)[0]
    counts = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
    dropped = 0
    for path, positions in index.groupby("shard", sort=False).indices.items():
        shard_codes = codes[positions]
        if (counts[shard_codes] >= 2).all():
            io.remove(path)
            counts[shard_codes] -= 1
            dropped += 1
    return dropped


def clear(store: str, encoder: str) -> None:
    """Delete ``encoder``'s manifest, shards and leftover temporaries from ``store``."""
    folder = encoder_dir(store, encoder)
    for name in io.listdir(folder):
        if name == MANIFEST or name.startswith("part-"):
            io.remove(io.join(folder, name))


def remove_temporaries(store: str, encoder: str) -> int:
    """Delete temporary files a killed local run left behind; return how many."""
    folder = encoder_dir(store, encoder)
    if io.is_remote(folder) or not Path(folder).is_dir():
        return 0
    stale = [path for path in Path(folder).glob("*.tmp-*") if path.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
