"""INSPECT's published layouts, and the ONE column mapping that reads both releases.

Later release (Stanford AIMI / Redivis, tables dated e.g. 20250611), ``--root DIR``::

    labels_<date>.tsv         impression_id, pe_positive_nlp (older exports: pe_positive),
                              pe_acute, pe_subsegmentalonly, 1/6/12_month_mortality,
                              1/6/12_month_readmission, 12_month_PH, tte_*, is_censored_*
    impressions_<date>.tsv    impression_id, impressions
    splits_<date>.tsv         impression_id, split (train/valid/test)
    study_mapping_<date>.tsv  impression_id, image_id (PE<hex>[.nii.gz]), person_id,
                              procedure_DATETIME, note_DATETIME, ...
    CTPA/<image_id>.nii.gz    one CT pulmonary angiogram volume per image_id

First public release (2023): one cohort table ``*.csv`` (as ``cohort_0.2.0_master_file_anon.csv``
of som-shahlab/INSPECT_public) holding impression_id, image_id, patient_id/PatientID, split,
procedure_time/StudyTime and the same eight label columns; impressions in a CSV whose name
contains ``impression`` (impression_id, impressions); volumes under ``CTPA/`` or
``anon_nii_gz/``. Its file names are inferred from the benchmark code, so files are found by
pattern and columns through ``COLUMNS`` below.

Label values are ``True``/``False``/``Censored`` (strings) or 1/0 (numbers); see ``VALUES``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from raypi.data._published import read_table
from raypi.data.tables import TableError

WHAT = "INSPECT"
COLUMNS = {
    "impression_id": ("impression_id",),
    "image_id": ("image_id",),
    "patient_id": ("person_id", "PatientID", "patient_id"),
    "study_time": ("procedure_DATETIME", "StudyTime", "procedure_time"),
    "impression": ("impressions", "impression", "impression_text"),
    "split": ("split",),
    "pe": ("pe_positive_nlp", "pe_positive"),
    "ph_12month": ("12_month_PH",),
    "readmission_12month": ("12_month_readmission",),
}
"""raypi name → the published column names it is read from, first found wins."""
LABELS = ("pe", "ph_12month", "readmission_12month")
VALUES = {
    "positive": frozenset({"true", "1", "1.0", "yes", "t"}),
    "negative": frozenset({"false", "0", "0.0", "no", "f"}),
    "censored": frozenset({"censored", "censor"}),
}
"""Published label values (lower-cased) → outcome; anything else (blank too) is "missing"."""
ID_DTYPES = {
    name: str for name in ("impression_id", "image_id", "person_id", "PatientID", "patient_id")
}
VOLUME_FOLDERS = ("CTPA", "anon_nii_gz", "")
VOLUME_SUFFIX = ".nii.gz"


def _one(root: Path, pattern: str, what: str) -> Path | None:
    found = sorted(root.glob(pattern))
    if len(found) > 1:
        raise TableError(f"{root}: several {what} files match {pattern}: {[p.name for p in found]}")
    return found[0] if found else None


def _pick(frame: pd.DataFrame, name: str, path: Path, required: bool = True) -> pd.Series | None:
    for column in COLUMNS[name]:
        if column in frame.columns:
            return frame[column]
    if required:
        raise TableError(
            f"{path}: none of the columns {list(COLUMNS[name])} (INSPECT {name}) is present; "
            f"found {list(frame.columns)[:20]}"
        )
    return None


def outcome(values: pd.Series) -> pd.Series:
    """Map published label values to "positive" / "negative" / "censored" / "missing"."""
    lowered = values.astype(str).str.strip().str.lower()
    out = pd.Series("missing", index=values.index)
    for name, accepted in VALUES.items():
        out[lowered.isin(accepted)] = name
    return out.where(values.notna(), "missing")


def _canonical(
    frame: pd.DataFrame, path: Path, names: tuple[str, ...], optional=()
) -> pd.DataFrame:
    """Rename a published table's columns to raypi names via ``COLUMNS``."""
    out = pd.DataFrame(index=frame.index)
    for name in names:
        out[name] = _pick(frame, name, path)
    for name in optional:
        column = _pick(frame, name, path, required=False)
        if column is not None:
            out[name] = column
    out["impression_id"] = out["impression_id"].astype(str).str.strip()
    return out


def _read_later(root: Path, labels_path: Path) -> tuple[pd.DataFrame, dict]:
    tables = {"labels": labels_path}
    for name, pattern in (
        ("mapping", "study_mapping_*.tsv"),
        ("impressions", "impressions_*.tsv"),
        ("splits", "splits_*.tsv"),
    ):
        tables[name] = _one(root, pattern, name)
        if tables[name] is None and name != "splits":
            raise TableError(f"{root}: missing {pattern}; expected the {WHAT} {name} table")
    read = {
        name: read_table(path, WHAT, ("impression_id",), ID_DTYPES, sep="\t")
        for name, path in tables.items()
        if path
    }
    labels = _canonical(read["labels"], labels_path, ("impression_id", *LABELS))
    mapping = _canonical(
        read["mapping"],
        tables["mapping"],
        ("impression_id", "image_id", "patient_id"),
        optional=("study_time",),
    )
    impressions = _canonical(
        read["impressions"], tables["impressions"], ("impression_id", "impression")
    )
    studies = labels.merge(mapping, on="impression_id", how="outer", indicator="_in")
    if "splits" in read:
        splits = _canonical(read["splits"], tables["splits"], ("impression_id", "split"))
        studies = studies.merge(
            splits.drop_duplicates("impression_id"), on="impression_id", how="left"
        )
    return studies, impressions


def _read_first(root: Path) -> tuple[pd.DataFrame, dict]:
    cohort_path = _one(root, "*cohort*.csv", "cohort") or _one(root, "*master*.csv", "cohort")
    impressions_path = _one(root, "*mpression*.csv", "impressions")
    if cohort_path is None or impressions_path is None:
        raise TableError(
            f"{root}: no INSPECT tables found; expected labels_*.tsv, study_mapping_*.tsv and "
            "impressions_*.tsv (later release) or a cohort *.csv with an impressions *.csv "
            "(first release)"
        )
    cohort = read_table(cohort_path, WHAT, ("impression_id",), ID_DTYPES)
    studies = _canonical(
        cohort,
        cohort_path,
        ("impression_id", "image_id", "patient_id", *LABELS),
        optional=("study_time", "split"),
    )
    studies["_in"] = "both"
    impressions = _canonical(
        read_table(impressions_path, WHAT, ("impression_id",), ID_DTYPES),
        impressions_path,
        ("impression_id", "impression"),
    )
    return studies, impressions


def read_studies(root: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read INSPECT's tables (either release) into raypi names.

    Args:
        root: The INSPECT folder.

    Returns:
        ``(studies, impressions)``: studies has impression_id, image_id (without
        ``.nii.gz``), patient_id, the three label columns as outcomes (see ``outcome``),
        optional study_time/split, and ``_in`` ("both", "left_only": no mapping row,
        "right_only": no labels row); impressions has impression_id, impression.

    Raises:
        TableError: If a table or a needed column is missing.
    """
    root = Path(root)
    labels_path = _one(root, "labels_*.tsv", "labels")
    studies, impressions = _read_later(root, labels_path) if labels_path else _read_first(root)
    studies["impression_id"] = studies["impression_id"].astype(str)
    impressions["impression_id"] = impressions["impression_id"].astype(str)
    image = studies["image_id"].astype("string").str.strip()
    studies["image_id"] = image.str.removesuffix(VOLUME_SUFFIX)
    studies["patient_id"] = studies["patient_id"].astype("string")
    for name in LABELS:
        studies[name] = outcome(studies[name])
    return studies, impressions


def volume_path(root: str | os.PathLike, image_id: str) -> Path | None:
    """Return the CT volume of ``image_id`` under the known folders, or None if absent."""
    for folder in VOLUME_FOLDERS:
        path = Path(root) / folder / f"{image_id}{VOLUME_SUFFIX}"
        if path.is_file():
            return path
    return None
