"""A tiny synthetic study (tables + feature store) for sweep tests and the overhead benchmark.

Like timm's tiny test models, it lives in the library so tests and benchmarks share one
definition. Image tokens carry a weak label signal, report tokens a strong one (privileged
information), so teachers beat image-only models and AUCs mean something. No images and no
report text exist: the store is written directly through the feature store's schema.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from raypi import io
from raypi.sweep.grid import DataSource


def make_synthetic_study(
    out: str,
    *,
    tasks: tuple[str, ...] = ("demo_prognostic",),
    image_encoders: tuple[str, ...] = ("tiny_vit",),
    text_encoders: tuple[str, ...] = ("tiny_bert",),
    images: int = 160,
    token_shape: tuple[int, int] = (8, 16),
    text_shape: tuple[int, int] = (6, 16),
    views: int = 1,
    seed: int = 0,
) -> DataSource:
    """Write a dataset (tables only) and a feature store for the given demo tasks.

    Args:
        out: Folder (local or ``s3://``); gets ``dataset/`` and ``features/``.
        tasks: Task names (their class counts set the labels).
        image_encoders: Registry names to store image tokens under.
        text_encoders: Registry names to store report tokens under.
        images: Number of images (two per patient).
        token_shape: ``(T, D)`` of image tokens.
        text_shape: ``(L, D)`` of report tokens.
        views: Augmented views per image besides view 0.
        seed: Seed of all values.

    Returns:
        The dataset root and feature store.
    """
    from raypi.data import tables
    from raypi.tasks import get_task

    rng = np.random.default_rng(seed)
    root, store = io.join(out, "dataset"), io.join(out, "features")
    ids = [f"img{i:05d}" for i in range(images)]
    frame = pd.DataFrame(
        {
            "image_id": ids,
            "patient_id": [f"p{i // 2:05d}" for i in range(images)],
            "image_path": [f"images/{i}.png" for i in ids],
            "report": [None] * images,
        }
    )
    tables.write_dataset(root, frame)
    latent = rng.normal(size=images)
    for name in tasks:
        spec = get_task(name)
        edges = np.quantile(latent, np.linspace(0, 1, spec.num_classes + 1)[1:-1])
        task = frame[["image_id", "patient_id"]].assign(label=np.digitize(latent, edges))
        tables.write_task(root, spec, task, frame)
    tables.write_meta(root, {"name": "synthetic", "tasks": list(tasks)})
    for name in image_encoders:
        _write_image_store(store, name, ids, latent, token_shape, views, rng)
    for name in text_encoders:
        _write_text_store(store, name, ids, latent, text_shape, rng)
    return DataSource(root=root, features=store)


def _signal(latent: np.ndarray, shape: tuple[int, int], strength: float, rng) -> torch.Tensor:
    noise = rng.normal(size=(len(latent), *shape))
    direction = rng.normal(size=shape[-1])
    values = noise + strength * latent[:, None, None] * direction[None, None, :]
    return torch.from_numpy(values.astype(np.float32))


def _write_image_store(store, name, ids, latent, shape, views, rng) -> None:
    from raypi.features import schema
    from raypi.features import store as feature_store

    for view in range(views + 1):
        tokens = _signal(latent, shape, 0.12, rng)
        table = schema.image_table(ids, np.full(len(ids), view), tokens.half(), "fp16")
        feature_store.write_shard(store, name, table)
    _manifest(
        store, name, "image", shape, views=list(range(views + 1)), rows=len(ids) * (views + 1)
    )


def _write_text_store(store, name, ids, latent, shape, rng) -> None:
    from raypi.features import schema
    from raypi.features import store as feature_store

    tokens = _signal(latent, shape, 1.5, rng)
    lengths = rng.integers(2, shape[0] + 1, size=len(ids))
    tokens[torch.arange(shape[0])[None, :] >= torch.from_numpy(lengths)[:, None]] = 0
    feature_store.write_shard(store, name, schema.text_table(ids, tokens.half(), lengths, "fp16"))
    _manifest(store, name, "text", shape, views=[0], rows=len(ids))


def _manifest(store, name, kind, shape, views, rows) -> None:
    from raypi.features import store as feature_store

    feature_store.write_manifest(
        store,
        name,
        {
            "format": feature_store.FORMAT,
            "encoder": name,
            "kind": kind,
            "token_shape": list(shape),
            "dtype": "fp16",
            "views": views,
            "has_cls": False,
            "complete": True,
            "rows": rows,
            "skipped": [],
            "weights_fingerprint": "synthetic",
        },
    )
