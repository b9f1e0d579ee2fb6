"""What a feature store already holds and what a run still has to encode, and its finish.

A run opens the store (refusing one made differently unless ``overwrite``), drops shards that
cannot be read, lists the (image, view) rows or reports it lacks, and at the end drops late
duplicate shards and writes the completed manifest with the rows it skipped and why.
"""

from __future__ import annotations

import logging
import time

import pandas as pd

from raypi import io
from raypi.features import schema, store

log = logging.getLogger(__name__)


def open_store(out: str, identity: dict, overwrite: bool) -> dict | None:
    """Check an existing store against ``identity``; return its manifest (None when new)."""
    encoder = identity["encoder"]
    store.remove_temporaries(out, encoder)
    try:
        manifest = store.read_manifest(out, encoder)
    except store.StoreError:
        manifest = None
    if manifest is not None:
        problems = store.identity_mismatches(manifest, identity)
    else:
        problems = ["shards without a manifest"] if store.list_shards(out, encoder) else []
    if problems and not overwrite:
        raise store.StoreError(
            f"{store.encoder_dir(out, encoder)} was made differently from this run: "
            + "; ".join(problems)
            + ". Use another --out, or overwrite=True (--overwrite) to rewrite it."
        )
    if problems:
        log.warning("rewriting %s: %s", store.encoder_dir(out, encoder), "; ".join(problems))
        store.clear(out, encoder)
        return None
    return manifest


def remove_corrupt(out: str, encoder: str, full: bool) -> None:
    """Delete shards that cannot be read, so that the run encodes their rows again."""
    bad = store.corrupt_shards(out, encoder, full=full)
    for path in bad:
        log.warning("%s: removing corrupt shard %s; its rows are encoded again", encoder, path)
        io.remove(path)


def finish(out, spec, identity, views, skipped, dataset_root) -> int:
    """Drop late duplicate shards, write the completed manifest; return the stored rows."""
    dropped = store.drop_duplicate_shards(out, spec.name, _keys(spec))
    if dropped:
        log.warning("%s: removed %d shards duplicated by a killed run", spec.name, dropped)
    rows_total = len(store.read_index(out, spec.name, _keys(spec)))
    store.write_manifest(out, spec.name, {
        **identity, "views": views, "complete": True, "rows": rows_total, "skipped": skipped,
        "dataset": str(dataset_root), "raypi_version": _version(),
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })  # fmt: skip
    return rows_total


def _keys(spec) -> tuple[str, ...]:
    return schema.IMAGE_KEYS if spec.kind == "image" else schema.TEXT_KEYS


def missing_images(table: pd.DataFrame, out: str, encoder: str, views: list[int]):
    """Return one row per image that lacks views: image_id, image_path, views (list)."""
    index = store.read_index(out, encoder, schema.IMAGE_KEYS)
    wanted = pd.MultiIndex.from_product([table["image_id"], views], names=schema.IMAGE_KEYS)
    have = pd.MultiIndex.from_frame(index[list(schema.IMAGE_KEYS)].astype({"view": int}))
    missing = wanted.difference(have).to_frame(index=False)
    grouped = missing.groupby(schema.IMAGE_ID, sort=False)[schema.VIEW].agg(list).reset_index()
    paths = table.set_index("image_id")["image_path"]
    grouped["image_path"] = paths.loc[grouped[schema.IMAGE_ID]].to_numpy()
    grouped = grouped.rename(columns={schema.VIEW: "views"})
    grouped.attrs["rows"] = len(missing)
    return grouped


def missing_reports(table: pd.DataFrame, out: str, encoder: str):
    """Return reports not yet encoded, and skip entries for images without a report."""
    text = table["report"]
    absent = text.isna() | (text.fillna("").astype(str).str.strip() == "")
    skipped = [
        {"image_id": i, "reason": "no report (null or empty)"}
        for i in table.loc[absent, "image_id"]
    ]
    have = set(store.read_index(out, encoder, schema.TEXT_KEYS)[schema.IMAGE_ID])
    todo = table.loc[~absent & ~table["image_id"].isin(have), ["image_id", "report"]]
    todo = todo.reset_index(drop=True)
    todo.attrs["rows"] = len(todo)
    return todo, skipped


def skip_entries(failed: pd.DataFrame) -> list[dict]:
    """One skip entry per image (its views share the reason), in first-seen order."""
    first = failed.drop_duplicates(schema.IMAGE_ID)
    views = failed.groupby(schema.IMAGE_ID, sort=False).size()
    return [
        {"image_id": image_id, "reason": reason, "rows": int(views[image_id])}
        for image_id, reason in zip(first[schema.IMAGE_ID], first["error"])
    ]


def _version() -> str:
    from raypi import __version__

    return __version__
