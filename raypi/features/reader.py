"""Read stored features into one torch tensor: no per-row Python, each byte read once.

The result tensor is allocated once; each shard row group that holds requested rows is read
(memory-mapped when local), viewed as ``[rows, T, D]`` without a copy, and scattered into the
result by vectorised indexing. Peak memory is the result plus one row group (≤64 MB).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from raypi.features import schema, store

_SERVED = [0]  # feature bytes this process has served since it started


def bytes_served() -> int:
    """Return the token bytes ``load`` and ``load_text`` have returned in this process.

    Sweeps read it before and after loading a trial's (or a pack's) rows to record what the
    trial read from the store (the ``bytes_read`` column of ``trials.parquet``).
    """
    return _SERVED[0]


def load(
    store_path: str,
    encoder: str,
    image_ids: Sequence[str],
    views: int | Sequence[int] | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Load image token features for ``image_ids``, in their order.

    Args:
        store_path: Feature store folder, local or ``s3://``.
        encoder: Image encoder name.
        image_ids: Images to load (duplicates allowed).
        views: None for every view the manifest lists, a list of views, or one view index.
        dtype: Result dtype; the stored dtype when None.

    Returns:
        ``[N, V, T, D]`` for None or a list of views, ``[N, T, D]`` for one view index.

    Raises:
        StoreError: The store is not an image store, lacks a requested view, or lacks rows.
    """
    manifest = _checked_manifest(store_path, encoder, "image")
    wanted_views = _resolve_views(views, manifest)
    ids = pd.Index(list(image_ids))
    index = store.read_index(store_path, encoder, schema.IMAGE_KEYS)
    unique = ids.unique()
    rows = _locate(index, unique, wanted_views, manifest)
    tokens = _gather(rows, len(unique) * len(wanted_views), manifest, dtype)
    tokens = tokens.view(len(unique), len(wanted_views), *tokens.shape[1:])
    if len(unique) != len(ids):
        tokens = tokens[torch.from_numpy(unique.get_indexer(ids))]
    return tokens[:, 0] if isinstance(views, (int, np.integer)) else tokens


def load_text(
    store_path: str,
    encoder: str,
    image_ids: Sequence[str],
    allow_missing: bool = False,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load report token features and their real lengths for ``image_ids``.

    Images whose report was null or empty have no text row (the manifest lists them as
    skipped). By default asking for one is an error; with ``allow_missing`` they come back as
    all-zero tokens of length 0, which callers must mask.

    Args:
        store_path: Feature store folder, local or ``s3://``.
        encoder: Text encoder name.
        image_ids: Images whose reports to load, in order.
        allow_missing: Return zeros with length 0 for ids without a text row.
        dtype: Result dtype; the stored dtype when None.

    Returns:
        ``(tokens [N, L_max, D], lengths [N] int64)``.
    """
    manifest = _checked_manifest(store_path, encoder, "text")
    ids = pd.Index(list(image_ids))
    unique = ids.unique()
    index = store.read_index(store_path, encoder, schema.TEXT_KEYS)
    rows = _locate(index, unique, None, manifest, allow_missing=allow_missing)
    tokens = _gather(rows, len(unique), manifest, dtype)
    lengths = torch.zeros(len(unique), dtype=torch.int64)
    lengths[torch.from_numpy(np.array(rows["target"]))] = torch.from_numpy(
        _read_column(rows, schema.LENGTH).astype(np.int64)
    )
    if len(unique) != len(ids):
        order = torch.from_numpy(unique.get_indexer(ids))
        tokens, lengths = tokens[order], lengths[order]
    return tokens, lengths


def check(store_path: str, encoder: str, kind: str, views: int | None = None) -> dict:
    """Return the manifest of ``encoder`` in ``store_path`` if it can serve what is asked.

    Args:
        store_path: Feature store folder, local or ``s3://``.
        encoder: Encoder name.
        kind: ``image`` or ``text``.
        views: Augmented views needed besides view 0 (images; None = whatever is stored).

    Returns:
        The manifest.

    Raises:
        StoreError: No such features, features of another encoder or kind, an unfinished
            extraction, or too few views.
    """
    manifest = _checked_manifest(store_path, encoder, kind)
    if kind == "image":
        _resolve_views(None if views is None else list(range(views + 1)), manifest)
    return manifest


def _checked_manifest(store_path: str, encoder: str, kind: str) -> dict:
    manifest = store.read_manifest(store_path, encoder)
    if manifest.get("format") != store.FORMAT:
        raise store.StoreError(
            f"{encoder} store format {manifest.get('format')!r}; this raypi reads {store.FORMAT}"
        )
    if manifest.get("kind") != kind:
        raise store.StoreError(
            f"{encoder} in {store_path} holds {manifest.get('kind')} features; asked for {kind}"
        )
    if manifest.get("encoder") != encoder:
        raise store.StoreError(
            f"{store_path}/{encoder} manifest names encoder {manifest.get('encoder')!r}"
        )
    return manifest


def _resolve_views(views, manifest: dict) -> list[int]:
    stored = list(manifest.get("views") or [])
    if not stored:
        raise store.StoreError(
            f"{manifest['encoder']} store has no completed extraction yet; rerun `raypi extract`"
        )
    if views is None:
        return stored
    wanted = [int(views)] if isinstance(views, (int, np.integer)) else [int(v) for v in views]
    absent = sorted(set(wanted) - set(stored))
    if absent:
        raise store.StoreError(
            f"{manifest['encoder']} store has views {stored}; asked for missing views {absent}"
        )
    return wanted


def _locate(
    index: pd.DataFrame,
    ids: pd.Index,
    views: list[int] | None,
    manifest: dict,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """Return the stored rows to read, each with ``target``: its row in the flat result."""
    id_pos = ids.get_indexer(index[schema.IMAGE_ID])
    target = id_pos.astype(np.int64)
    keep = id_pos >= 0
    if views is not None:
        view_pos = pd.Index(views).get_indexer(index[schema.VIEW])
        keep &= view_pos >= 0
        target = target * len(views) + view_pos
    rows = index[keep].assign(target=target[keep])
    # Copies of a row (a killed run's late write) are identical by the store identity.
    rows = rows[~rows["target"].duplicated()]
    expected = len(ids) * (len(views) if views is not None else 1)
    if len(rows) != expected and not allow_missing:
        _raise_missing(rows, ids, views, manifest)
    return rows


def _raise_missing(rows: pd.DataFrame, ids: pd.Index, views, manifest: dict) -> None:
    per_image = len(views) if views is not None else 1
    found = np.bincount(rows["target"].to_numpy() // per_image, minlength=len(ids))
    missing = ids[found < per_image]
    reasons = {entry["image_id"]: entry["reason"] for entry in manifest.get("skipped", [])}
    shown = ", ".join(f"{i} ({reasons.get(i, 'not extracted')})" for i in missing[:5])
    raise store.StoreError(
        f"{manifest['encoder']} store lacks rows for {len(missing)} of {len(ids)} requested "
        f"images (views {views}): {shown}{' …' if len(missing) > 5 else ''}"
    )


def _gather(rows: pd.DataFrame, count: int, manifest: dict, dtype) -> torch.Tensor:
    """Read the token bytes of ``rows`` into a new ``[count, T, D]`` tensor."""
    shape, stored = tuple(manifest["token_shape"]), manifest["dtype"]
    out_dtype = dtype or schema.storage_dtype(stored).torch
    out = torch.zeros((count, *shape), dtype=out_dtype)
    for tokens, target in _row_groups(rows, shape, stored):
        values = schema.as_torch(tokens, stored)
        out[torch.from_numpy(target)] = values.to(out_dtype)
    _SERVED[0] += out.numel() * out.element_size()
    return out


def _whole(local: np.ndarray, count: int) -> bool:
    return len(local) == count and bool((local == np.arange(count)).all())


def _row_groups(rows: pd.DataFrame, shape: tuple[int, ...], dtype: str):
    """Yield ``(tokens, target)`` for each shard row group holding requested rows."""
    for path, shard_rows in rows.groupby("shard", sort=False):
        with store.open_shard(path) as shard:
            yield from _shard_groups(shard, path, shard_rows, shape, dtype)


def _shard_groups(shard, path: str, shard_rows: pd.DataFrame, shape, dtype: str):
    """Yield ``(tokens, target)`` per row group of one open shard (closed by the caller)."""
    if schema.shard_layout(shard.schema_arrow) != (shape, dtype):
        raise store.StoreError(
            f"shard {path} holds {schema.shard_layout(shard.schema_arrow)} tokens; "
            f"its manifest says {(shape, dtype)}"
        )
    sizes = [shard.metadata.row_group(g).num_rows for g in range(shard.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    group_of = np.searchsorted(starts, shard_rows["row"].to_numpy(), side="right") - 1
    for group in np.unique(group_of):
        chosen = shard_rows[group_of == group]
        try:
            table = shard.read_row_group(int(group), columns=[schema.TOKENS])
        except store.REPAIRABLE as error:
            raise store.shard_error(path, error) from None
        tokens = schema.decode_tokens(table.column(schema.TOKENS), shape, dtype)
        local = chosen["row"].to_numpy() - starts[group]
        # A whole row group in order is used as the Arrow buffer itself (no extra copy).
        whole = _whole(local, len(tokens))
        yield (tokens if whole else tokens[local]), np.array(chosen["target"])


def _read_column(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Return one small column of ``rows`` (e.g. text lengths), in the order of ``rows``."""
    values = np.empty(len(rows), dtype=np.int64)
    positions = pd.Series(np.arange(len(rows)), index=rows.index)
    for path, shard_rows in rows.groupby("shard", sort=False):
        column_values = store.read_shard(path, columns=[column]).column(column).to_numpy()
        values[positions[shard_rows.index].to_numpy()] = column_values[shard_rows["row"]]
    return values
