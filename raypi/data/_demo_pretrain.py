"""The demo's pre-training draw: the generator run again on other patients and unused reports.

The demo encoders learn from this draw only (``raypi.pretrain``), never from the images or
reports that the tasks train and validate on: its patients (``demo-q…``), images
(``demo-pre-…``) and reports are disjoint from the task draw's by construction. It lives under
``<dataset root>/pretrain`` as a dataset root of its own (no tasks).
"""

from __future__ import annotations

import os

import pandas as pd

from raypi import __version__, io
from raypi.data import demo, tables
from raypi.data._iu_reports import load_reports
from raypi.splits import rng_for

PRETRAIN_DIR = "pretrain"
"""Folder of the pre-training draw under the dataset root."""


def pretrain_root(root: str | os.PathLike) -> str:
    """Return the root of the demo's pre-training draw (``<root>/pretrain``)."""
    return io.join(str(root), PRETRAIN_DIR)


def ensure_pretrain_draw(root: str | os.PathLike) -> str:
    """Return the pre-training draw of the demo at ``root``, building it where missing.

    Raises:
        ValueError: The demo at ``root`` was built by an older generator design.
    """
    meta = tables.read_meta(str(root))
    if meta.get("design") != demo.DESIGN:
        raise ValueError(
            f"the demo dataset at {root} was built by generator design {meta.get('design', 1)}"
            f", not {demo.DESIGN}: delete it or rebuild it with `raypi demo-data --out {root}`"
        )
    out = pretrain_root(root)
    if not io.exists(io.join(out, "dataset.parquet")):
        build_pretrain_draw(str(root), int(meta["n"]), int(meta["seed"]))
    return out


def build_pretrain_draw(root: str, n: int, seed: int) -> None:
    """Draw and write the pre-training set of the demo at ``root`` (its task draw exists)."""
    used = set(tables.read_dataset(root)["report"])
    frame = draw_pretrain_tables(n, seed, used)
    out = pretrain_root(root)
    demo._write_images(out, frame, seed)
    tables.write_dataset(out, frame)
    meta = {"name": "demo-pretrain", "tasks": [], "n": n, "seed": seed, "design": demo.DESIGN}
    tables.write_meta(out, {**meta, "raypi_version": __version__})


def draw_pretrain_tables(n: int, seed: int, used: set[str]) -> pd.DataFrame:
    """Draw the pre-training set: the generator again, other patients, unused reports.

    Args:
        n: Number of images.
        seed: The task draw's seed (the streams differ by name).
        used: Report texts the task draw used; none of them is drawn here (the collection
            repeats some short normal reports word for word under different ids).

    Returns:
        A dataset table like ``draw_tables``'s (ids ``demo-pre-…``, patients ``demo-q…``).
    """
    pool = tuple(report for report in load_reports() if report.text not in used)
    positives = sum("Cardiomegaly" in report.mesh for report in pool)
    share = min(demo.CARDIOMEGALY_SHARE, positives / n)
    reports = demo._assign_reports(pool, n, rng_for("demo-pretrain", seed, "reports"), share)
    return demo._draw("demo-pretrain", n, seed, reports, ("demo-pre-", "demo-q"))
