"""Where a dataset's images are: relative paths start at its image root, which a run may move.

A table's ``image_path`` is relative (or, from older builds, absolute). Relative paths start at
the dataset root unless ``meta.json`` names another ``image_root`` (MIMIC's images stay in the
MIMIC-CXR-JPG folder or its copy on S3), and ``--image-root`` moves it for one run.
"""

from __future__ import annotations

import os

import pandas as pd

from raypi import io
from raypi.data.tables import (
    _SHOWN,
    META_FILE,
    TableError,
    _rows,
    dataset_file,
    decode_image,
    image_location,
)

IMAGE_ROOT_KEY = "image_root"
"""``meta.json`` key: where the images' relative paths start when not at the dataset root
(MIMIC's images stay in the MIMIC-CXR-JPG folder, or its copy on S3)."""


def image_root(root: str | os.PathLike, override: str | None = None) -> str:
    """Return the folder a dataset's relative image paths start from.

    Args:
        root: Dataset root.
        override: ``--image-root``: where this run reads the images (e.g. their copy on S3).

    Returns:
        ``override``, else ``meta.json``'s ``image_root`` (relative to ``root`` when relative),
        else ``root`` itself.
    """
    if override:
        return str(override)
    meta_path = io.join(root, META_FILE)
    recorded = io.read_json(meta_path).get(IMAGE_ROOT_KEY) if io.exists(meta_path) else None
    if not recorded:
        return str(root)
    if io.is_remote(recorded) or os.path.isabs(recorded):
        return str(recorded)
    return io.join(root, recorded)


def require_relative_paths(frame: pd.DataFrame, file: str, image_root_given: str) -> None:
    """Refuse remapping a table whose image paths are absolute (they ignore any image root).

    Raises:
        TableError: Naming the rows and how to get a table with relative paths.
    """
    paths = frame["image_path"].astype(str)
    absolute = paths.map(lambda p: io.is_remote(p) or os.path.isabs(p))
    if absolute.any():
        raise TableError(
            f"{file}: --image-root {image_root_given} cannot remap absolute image paths "
            f"({_rows(absolute, frame, 'image_path')}); rebuild the dataset root with this "
            "raypi (`raypi build mimic --image-root …` writes paths relative to the image "
            "root), or run without --image-root to read the paths as stored"
        )


def check_images(
    root: str | os.PathLike, frame: pd.DataFrame, decode: bool = True
) -> list[dict[str, str]]:
    """Find images of a dataset table that are missing or cannot be decoded.

    Args:
        root: Dataset root (its images are read from its ``image_root``).
        frame: Rows with ``image_id`` and ``image_path``.
        decode: Also decode each image (slower); otherwise only check existence.

    Returns:
        ``[{"image_id": ..., "reason": ...}]`` for every bad image, in table order.
    """
    bad, images = [], image_root(root)
    for image_id, image_path in zip(frame["image_id"], frame["image_path"]):
        location = image_location(images, image_path)
        if not io.exists(location):
            bad.append({"image_id": str(image_id), "reason": f"missing file {image_path}"})
            continue
        if decode:
            try:
                decode_image(io.read_bytes(location))
            except ValueError as error:
                bad.append({"image_id": str(image_id), "reason": f"{error}: {image_path}"})
    return bad


def require_images(root: str | os.PathLike, frame: pd.DataFrame, decode: bool = True) -> None:
    """Raise ``TableError`` naming the bad images if ``check_images`` finds any."""
    bad = check_images(root, frame, decode=decode)
    if bad:
        shown = "; ".join(f"{row['image_id']}: {row['reason']}" for row in bad[:_SHOWN])
        more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
        raise TableError(f"{dataset_file(root)}: {len(bad)} bad images: {shown}{more}")
