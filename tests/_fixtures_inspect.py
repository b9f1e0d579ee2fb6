"""Writes tiny INSPECT folders in the published layouts, with synthetic CT volumes (NIfTI-1).

Later release: ``labels_20250611.tsv``, ``impressions_20250611.tsv``, ``splits_20250611.tsv``,
``study_mapping_20250611.tsv`` and ``CTPA/<image_id>.nii.gz``. First release: one cohort CSV
with labels and ids (``cohort_0.2.0_master_file_anon.csv``) and ``Final_impressions.csv``.
Volumes are written by a minimal NIfTI-1 writer (no nibabel needed): int16 Hounsfield units,
RAS+ world coordinates through an sform — so the patient's left is at small ``i`` when the
sform's x spacing is positive.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

LABEL_COLUMNS = (
    "pe_positive_nlp",
    "1_month_mortality",
    "6_month_mortality",
    "12_month_mortality",
    "1_month_readmission",
    "6_month_readmission",
    "12_month_readmission",
    "12_month_PH",
)


def write_nifti(path: Path, volume: np.ndarray, spacing=(2.0, 2.0, 2.0), flip_x=False) -> None:
    """Write an int16 NIfTI-1 (.nii.gz) whose sform maps voxel (i, j, k) to RAS+ millimetres.

    Args:
        path: Destination.
        volume: Hounsfield units indexed [i, j, k].
        spacing: Voxel size in mm along i, j, k.
        flip_x: Store i running right-to-left (negative x spacing), as many CT exports do; the
            patient's left is then at LARGE i.
    """
    sx, sy, sz = spacing
    sx = -sx if flip_x else sx
    shape = np.array(volume.shape)
    origin = -np.array([sx, sy, sz]) * (shape - 1) / 2  # volume centred on the world origin
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, *volume.shape, 1, 1, 1, 1)
    struct.pack_into("<hh", header, 70, 4, 16)  # datatype int16, 16 bits per voxel
    struct.pack_into("<8f", header, 76, 1.0, *spacing, 1, 1, 1, 1)
    struct.pack_into("<ff", header, 108, 352.0, 1.0)  # vox_offset, scl_slope
    struct.pack_into("<B", header, 123, 2)  # xyzt_units: millimetres
    struct.pack_into("<hh", header, 252, 0, 1)  # qform_code 0, sform_code 1 (scanner)
    struct.pack_into("<4f", header, 280, sx, 0, 0, origin[0])
    struct.pack_into("<4f", header, 296, 0, sy, 0, origin[1])
    struct.pack_into("<4f", header, 312, 0, 0, sz, origin[2])
    header[344:348] = b"n+1\x00"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(bytes(header) + b"\x00" * 4 + volume.astype("<i2").tobytes(order="F"))


def chest_phantom(n: int = 32, marker: str = "left-superior", flip_x=False) -> np.ndarray:
    """A water cylinder (body) in air with a bone block at the patient's ``marker`` side.

    The block sits at the patient's left (RAS x < 0) and superior (z > 0) for
    ``"left-superior"``; ``"right-inferior"`` mirrors it.
    """
    volume = np.full((n, n, n), -1000, np.int16)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    volume[((i - (n - 1) / 2) ** 2 + (j - (n - 1) / 2) ** 2) < (0.42 * n) ** 2, :] = 0
    low, high = slice(n // 8, n // 3), slice(n - n // 3, n - n // 8)
    left_i, superior_k = (low, high) if marker == "left-superior" else (high, low)
    if flip_x:
        left_i = high if left_i == low else low
    volume[left_i, n // 3 : n - n // 3, superior_k] = 1500
    return volume


@dataclass
class InspectFixture:
    """Where the fixture lives and what the builders must make of it."""

    root: Path
    labels: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per impression: impression_id, image_id, person_id and the label columns."""
    missing_volume: list[str] = field(default_factory=list)
    unmapped_impressions: list[str] = field(default_factory=list)


def _outcome(rng: np.random.Generator, p_pos: float, p_cens: float) -> str:
    u = rng.random()
    return "Censored" if u < p_cens else ("True" if u < p_cens + p_pos else "False")


def make_inspect(
    root: Path, n: int = 24, size: int = 24, release: str = "2025", seed: int = 0
) -> InspectFixture:
    """Write an INSPECT folder with ``n`` studies (a few patients have two).

    Args:
        root: Empty folder.
        n: Number of impressions/studies.
        size: Volume side in voxels.
        release: "2025" (labels_/splits_/study_mapping_/impressions_ TSVs) or "2023" (cohort CSV).
        seed: Seed of the made-up labels.

    Returns:
        The fixture description.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        image_id = f"PE{k:06x}{'ab' * 3}"
        row = {
            "impression_id": str(1000 + k),
            "image_id": image_id,
            "person_id": str(500 + k // 2 * 2 - (k % 3 == 0)),
        }
        row |= {column: _outcome(rng, 0.3, 0.2) for column in LABEL_COLUMNS}
        row["pe_positive_nlp"] = _outcome(rng, 0.35, 0.0)
        rows.append(row)
    labels = pd.DataFrame(rows)
    fx = InspectFixture(root, labels)
    for k, row in enumerate(rows):
        if k == n - 1:
            fx.missing_volume.append(row["image_id"])  # mapped, labelled, but no CT file
            continue
        write_nifti(
            root / "CTPA" / f"{row['image_id']}.nii.gz",
            chest_phantom(size, flip_x=bool(k % 2), marker="left-superior"),
            flip_x=bool(k % 2),
        )
    impressions = pd.DataFrame(
        {
            "impression_id": labels["impression_id"],
            "impressions": [f"{k}. No acute pulmonary embolism." for k in range(n)],
        }
    )
    if release == "2025":
        _write_2025(root, fx, labels, impressions)
    else:
        _write_2023(root, labels, impressions)
    return fx


def _write_2025(
    root: Path, fx: InspectFixture, labels: pd.DataFrame, impressions: pd.DataFrame
) -> None:
    extra = {
        "pe_acute": "False",
        "pe_subsegmentalonly": "False",
        "tte_PH": 1440.0,
        "is_censored_PH": "False",
    }
    labels.drop(columns=["image_id", "person_id"]).assign(**extra).to_csv(
        root / "labels_20250611.tsv", sep="\t", index=False
    )
    mapping = labels[["impression_id", "image_id", "person_id"]].copy()
    mapping["image_id"] = mapping["image_id"] + ".nii.gz"  # some exports keep the suffix
    mapping["procedure_DATETIME"] = "2020-01-01 10:00:00"
    mapping["note_DATETIME"] = "2020-01-01 12:00:00"
    # A mapping row for an impression that has no labels row: reported, never used.
    mapping.loc[len(mapping)] = ["99999", "PEdeadbeef", "777", "2020-01-01 10:00:00", None]
    fx.unmapped_impressions.append("99999")
    mapping.to_csv(root / "study_mapping_20250611.tsv", sep="\t", index=False)
    impressions.to_csv(root / "impressions_20250611.tsv", sep="\t", index=False)
    splits = labels[["impression_id"]].assign(
        split=["train", "valid", "test"] * (len(labels) // 3) + ["train"] * (len(labels) % 3)
    )
    splits.to_csv(root / "splits_20250611.tsv", sep="\t", index=False)


def _write_2023(root: Path, labels: pd.DataFrame, impressions: pd.DataFrame) -> None:
    cohort = labels.rename(columns={"person_id": "PatientID"}).assign(
        StudyTime="2020-01-01 10:00:00", split="train"
    )
    cohort.to_csv(root / "cohort_0.2.0_master_file_anon.csv", index=False)
    impressions.to_csv(root / "Final_impressions.csv", index=False)
