"""Build the demo dataset, its encoders' weights and its features when a demo sweep lacks them."""

from __future__ import annotations

import logging

from raypi import io
from raypi.methods import METHOD_TABLE
from raypi.sweep.grid import TEXT_METHODS, SweepSpec

log = logging.getLogger(__name__)


def needed_encoders(spec: SweepSpec, dataset: str) -> list[str]:
    """Return the image and text encoders the sweep reads from ``dataset``'s store."""
    from raypi.tasks import get_task

    names: list[str] = []
    for grid in spec.grids:
        if not any(get_task(task).dataset == dataset for task in grid.tasks):
            continue
        if any(METHOD_TABLE[method].reads_image for method in grid.methods):
            names += list(grid.encoders)
        if any(method in TEXT_METHODS for method in grid.methods):
            names += list(grid.text_encoders)
    return list(dict.fromkeys(names))


def needed_views(spec: SweepSpec) -> int:
    """Return the augmented views the demo store must hold (the most any grid asks for)."""
    return max((grid.views or 0) for grid in spec.grids)


def _demo_source(spec: SweepSpec):
    """Return the demo's data source when the sweep reads the built-in demo, else None."""
    from raypi.tasks import get_task

    datasets = {get_task(task).dataset for grid in spec.grids for task in grid.tasks}
    if "demo" not in datasets or "demo" in spec.data:
        return None
    return spec.source("demo")


def builds_demo(spec: SweepSpec) -> bool:
    """Return whether the sweep reads the built-in demo (whose inputs raypi makes itself)."""
    return _demo_source(spec) is not None


def ensure_demo_data(spec: SweepSpec) -> None:
    """Build the demo dataset and pre-train its encoders, where missing (no Ray needed).

    Only the demo is built automatically; real datasets come from ``raypi build`` and real
    weights from their authors.

    Args:
        spec: The sweep.
    """
    from raypi.pretrain import ensure_pretrained

    source = _demo_source(spec)
    if source is None:
        return
    if not io.exists(io.join(source.root, "dataset.parquet")):
        from raypi.data.demo import build_demo

        print(f"raypi: building the demo dataset in {source.root}")
        build_demo(source.root)
    ensure_pretrained(source.root, needed_encoders(spec, "demo"))


def ensure_demo_inputs(spec: SweepSpec, views: int | None = None) -> None:
    """Extract the demo's features where missing (after ``ensure_demo_data``), on Ray.

    Extraction runs on Ray (connected, or a local one started here).

    Args:
        spec: The sweep.
        views: Augmented views to extract; the most the grids ask for when None.
    """
    source = _demo_source(spec)
    if source is None:
        return
    views = needed_views(spec) if views is None else views
    missing = [
        name
        for name in needed_encoders(spec, "demo")
        if not _complete(source.features, name, views)
    ]
    if missing:
        from raypi.features import extract

        print(f"raypi: extracting demo features of {', '.join(missing)} into {source.features}")
        extract(source.root, missing, source.features, views=views)


def _complete(store: str, encoder: str, views: int) -> bool:
    from raypi.features import store as feature_store

    manifest = feature_store.find_manifest(store, encoder)
    return manifest is not None and feature_store.serves_views(manifest, views)
