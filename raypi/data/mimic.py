"""Build the MIMIC dataset root (MIMIC 5x1200, Age, 3-Day Discharge) from the published folders.

Inputs are MIMIC-CXR-JPG 2.1.0, MIMIC-CXR 2.1.0 (reports) and MIMIC-IV 3.1 as PhysioNet ships
them (see ``_mimic_layout``). Only frontal images (ViewPosition PA or AP) whose JPEG exists are
candidates; the dataset table holds the images of at least one task, with ``image_path`` the
JPEG's path relative to the MIMIC-CXR-JPG folder (``files/p10/…/….jpg``) and ``report`` the
impression + findings sections (``reports``). The images stay where they are: ``meta.json``'s
``image_root`` says where nodes read them (``--image-root``, e.g. the folder's copy on S3;
``--jpg`` by default), so the dataset root works on every node that can reach that root.
Task rules are stated in ``_mimic_tasks``; every left-out row is counted, with its reason, in
``build_summary.json``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from raypi import __version__, io
from raypi.data import _mimic_layout as layout
from raypi.data import _mimic_tasks as rules
from raypi.data import images as image_roots
from raypi.data import tables
from raypi.data._summary import Drops, task_summary
from raypi.data.reports import report_text, section_counts
from raypi.tasks import get_task

STUDY_AGE_IMAGES = 35_242
"""Images of the study's Age task; the default size of raypi's (seeded) Age sample."""


@dataclass(frozen=True)
class MimicOptions:
    """Choices of the MIMIC build (defaults follow the study)."""

    seed: int = 0
    """Seed of every deterministic selection (5x1200 subjects, Age/Discharge subsamples)."""
    views: tuple[str, ...] = ("PA", "AP")
    """ViewPosition values kept (frontal radiographs)."""
    per_class: tuple[int, int] = (1000, 200)
    """MIMIC 5x1200 images per class: (train, val)."""
    age_images: int | None = STUDY_AGE_IMAGES
    """Age task size (seeded subsample); None keeps every eligible image."""
    discharge_images: int | None = None
    """3-Day Discharge size (seeded subsample); None keeps every eligible image."""
    labeller: str = "chexpert"
    """Label file of MIMIC 5x1200: "chexpert" or "negbio"."""
    image_root: str | None = None
    """Where the nodes read the MIMIC-CXR-JPG images (local or ``s3://``, holding ``files/``),
    recorded in ``meta.json``; None records the ``--jpg`` folder."""


def _consistent_images(metadata: pd.DataFrame, labels: pd.DataFrame, drops: Drops) -> pd.DataFrame:
    """Drop (and report) duplicate dicom_ids and studies whose subject differs between files."""
    duplicated = metadata["dicom_id"].duplicated(keep=False)
    drops.add(
        "dicom_id listed more than once in the metadata", metadata.loc[duplicated, "dicom_id"]
    )
    metadata = metadata[~duplicated]
    pairs = labels[["study_id", "subject_id"]].drop_duplicates()
    merged = metadata.merge(pairs, on="study_id", how="left", suffixes=("", "_labels"))
    clash = merged["subject_id_labels"].notna() & (
        merged["subject_id_labels"] != merged["subject_id"]
    )
    drops.add("study_id has another subject_id in the label file", merged.loc[clash, "dicom_id"])
    return metadata[~metadata["dicom_id"].isin(merged.loc[clash, "dicom_id"])]


def _candidates(jpg_root: Path, metadata: pd.DataFrame, views: tuple[str, ...], drops: Drops):
    """Frontal images whose JPEG file exists, with their path relative to ``jpg_root``."""
    frontal = metadata["ViewPosition"].isin(views)
    drops.add(
        f"not a frontal view (ViewPosition not in {list(views)})",
        metadata.loc[~frontal, "dicom_id"],
    )
    images = metadata[frontal].copy()
    images["path"] = [
        layout.jpg_path(subject, study, dicom)
        for subject, study, dicom in zip(
            images["subject_id"], images["study_id"], images["dicom_id"]
        )
    ]
    exists = images["path"].map(lambda path: os.path.isfile(jpg_root / path))
    drops.add("JPEG file missing under files/", images.loc[~exists, "dicom_id"])
    return images[exists].reset_index(drop=True)


def _dataset_table(images: pd.DataFrame, reader: layout.ReportReader) -> tuple[pd.DataFrame, dict]:
    """One row per image with its report sections; returns the table and report counts."""
    studies = images[["subject_id", "study_id"]].drop_duplicates()
    texts, statuses = {}, []
    for subject, study in zip(studies["subject_id"], studies["study_id"]):
        raw = reader.read(subject, study)
        report, status = report_text(raw) if raw is not None else (None, "missing")
        texts[study] = report
        statuses.append(status)
    counts = section_counts(status for status in statuses if status != "missing")
    counts["missing"] = statuses.count("missing")
    table = pd.DataFrame(
        {
            "image_id": images["dicom_id"].astype(str),
            "patient_id": images["subject_id"].astype("int64").astype(str),
            "image_path": images["path"],
            "report": images["study_id"].map(texts),
            "study_id": images["study_id"].astype("int64").astype(str),
            "view_position": images["ViewPosition"].astype(str),
            "study_datetime": images["study_datetime"].dt.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    )
    return table.reset_index(drop=True), counts


def _build_tasks(images, labels, patients, admissions, options: MimicOptions) -> dict:
    """Return ``{task: (table, drops, rule)}`` for the three MIMIC tasks."""
    return {
        "mimic_5x1200": (
            *rules.build_5x1200(images, labels, options.seed, options.per_class),
            rules.RULE_5X1200,
        ),
        "age": (
            *rules.build_age(images, patients, options.seed, options.age_images),
            rules.RULE_AGE,
        ),
        "discharge_3day": (
            *rules.build_discharge(images, admissions, options.discharge_images, options.seed),
            rules.RULE_DISCHARGE,
        ),
    }


def build_mimic(
    jpg: str | os.PathLike,
    reports: str | os.PathLike,
    mimic_iv: str | os.PathLike,
    out: str | os.PathLike,
    options: MimicOptions | None = None,
) -> dict:
    """Build the MIMIC dataset root: dataset table, three task tables, meta and summary.

    Args:
        jpg: MIMIC-CXR-JPG 2.1.0 folder (metadata/label tables and ``files/``).
        reports: MIMIC-CXR 2.1.0 folder (``files/…/sSTUDY.txt`` or ``mimic-cxr-reports.zip``).
        mimic_iv: MIMIC-IV 3.1 folder (``hosp/patients.csv.gz``, ``hosp/admissions.csv.gz``).
        out: Dataset root to write (local or ``s3://``).
        options: Build choices; the study's defaults when None.

    Returns:
        The build summary (also written to ``out/build_summary.json``).

    Raises:
        TableError: If a published file or column is missing, or a task cannot be filled.
    """
    options = options or MimicOptions()
    rules.check_spec_bins()
    jpg = Path(jpg).absolute()
    metadata = layout.read_metadata(jpg)
    labels = layout.read_labels(jpg, options.labeller)
    patients = layout.read_patients(mimic_iv)
    admissions = layout.read_admissions(mimic_iv)
    reader = layout.ReportReader(reports)
    drops = Drops()
    images = _candidates(jpg, _consistent_images(metadata, labels, drops), options.views, drops)
    built = _build_tasks(images, labels, patients, admissions, options)
    used = set().union(*(set(table["image_id"]) for table, _, _ in built.values()))
    try:
        dataset, report_counts = _dataset_table(images[images["dicom_id"].isin(used)], reader)
    finally:
        reader.close()
    tables.write_dataset(out, dataset)
    summaries = {}
    for name, (table, task_drops, rule) in built.items():
        tables.write_task(out, get_task(name), table, dataset)
        summaries[name] = task_summary(get_task(name), table, task_drops, rule)
    summary = {
        "name": "mimic",
        "out": str(out),
        "images": int(len(dataset)),
        "patients": int(dataset["patient_id"].nunique()),
        "reports": report_counts,
        "dropped": drops.to_dict(),
        "tasks": summaries,
        "options": asdict(options),
        "raypi_version": __version__,
    }
    io.write_json(io.join(out, "build_summary.json"), summary)
    meta = {"name": "mimic", "tasks": list(built), "summary": "build_summary.json"}
    tables.write_meta(out, {**meta, image_roots.IMAGE_ROOT_KEY: options.image_root or str(jpg)})
    return summary
