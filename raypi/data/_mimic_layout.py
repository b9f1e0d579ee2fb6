"""Published layouts of MIMIC-CXR-JPG 2.1.0, MIMIC-CXR 2.1.0 reports and MIMIC-IV 3.1 (hosp).

MIMIC-CXR-JPG 2.1.0 (``--jpg DIR``)::

    mimic-cxr-2.0.0-metadata.csv.gz  dicom_id, subject_id, study_id, ViewPosition,
                                     StudyDate (YYYYMMDD), StudyTime (HHMMSS[.fff]), ...
    mimic-cxr-2.0.0-chexpert.csv.gz  subject_id, study_id, Atelectasis, Cardiomegaly, ...
    mimic-cxr-2.0.0-negbio.csv.gz    same columns (NegBio labeller)
    mimic-cxr-2.0.0-split.csv.gz     dicom_id, study_id, subject_id, split
    files/p10/p10000032/s50414267/02aa804e-....jpg

MIMIC-CXR 2.1.0 reports (``--reports DIR``): ``files/p10/p10000032/s50414267.txt``, or the
same tree inside ``mimic-cxr-reports.zip``.

MIMIC-IV 3.1 (``--mimic-iv DIR``): ``hosp/patients.csv.gz`` (subject_id, gender, anchor_age,
anchor_year, anchor_year_group, dod) and ``hosp/admissions.csv.gz`` (subject_id, hadm_id,
admittime, dischtime, deathtime, ..., hospital_expire_flag).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pandas as pd

from raypi.data._published import read_table, require_file

JPG = "MIMIC-CXR-JPG 2.1.0"
REPORTS = "MIMIC-CXR 2.1.0"
MIMIC_IV = "MIMIC-IV 3.1"

METADATA_FILE = "mimic-cxr-2.0.0-metadata.csv.gz"
CHEXPERT_FILE = "mimic-cxr-2.0.0-chexpert.csv.gz"
NEGBIO_FILE = "mimic-cxr-2.0.0-negbio.csv.gz"
SPLIT_FILE = "mimic-cxr-2.0.0-split.csv.gz"
REPORTS_ZIP = "mimic-cxr-reports.zip"
PATIENTS_FILE = "hosp/patients.csv.gz"
ADMISSIONS_FILE = "hosp/admissions.csv.gz"

METADATA_COLUMNS = ("dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate", "StudyTime")
CHEXPERT_LABELS = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)
LABEL_COLUMNS = ("subject_id", "study_id", *CHEXPERT_LABELS)
SPLIT_COLUMNS = ("dicom_id", "study_id", "subject_id", "split")
PATIENTS_COLUMNS = ("subject_id", "gender", "anchor_age", "anchor_year")
ADMISSIONS_COLUMNS = ("subject_id", "hadm_id", "admittime", "dischtime")


def subject_folder(subject_id: int) -> str:
    """Return ``files/pXX/pSUBJECT`` (XX = the subject id's first two digits)."""
    subject = str(int(subject_id))
    return f"files/p{subject[:2]}/p{subject}"


def jpg_path(subject_id: int, study_id: int, dicom_id: str) -> str:
    """Return an image's path relative to the MIMIC-CXR-JPG root."""
    return f"{subject_folder(subject_id)}/s{int(study_id)}/{dicom_id}.jpg"


def report_path(subject_id: int, study_id: int) -> str:
    """Return a report's path relative to the MIMIC-CXR root (and inside the reports zip)."""
    return f"{subject_folder(subject_id)}/s{int(study_id)}.txt"


def read_metadata(jpg_root: str | os.PathLike) -> pd.DataFrame:
    """Read the image metadata table, with ``study_datetime`` parsed from StudyDate/StudyTime."""
    frame = read_table(
        Path(jpg_root) / METADATA_FILE, JPG, METADATA_COLUMNS, dtype={"dicom_id": str}
    )
    date = frame["StudyDate"].astype("Int64").astype(str)
    # StudyTime is HHMMSS.fff stored as a number, so leading zeros are lost (2310.0 = 00:23:10).
    time = frame["StudyTime"].fillna(0).astype(float).astype(int).astype(str).str.zfill(6)
    frame["study_datetime"] = pd.to_datetime(date + time, format="%Y%m%d%H%M%S", errors="coerce")
    return frame


def read_labels(jpg_root: str | os.PathLike, labeller: str = "chexpert") -> pd.DataFrame:
    """Read the CheXpert (or NegBio) study labels: 1.0 positive, 0.0 negative, -1.0 uncertain."""
    name = {"chexpert": CHEXPERT_FILE, "negbio": NEGBIO_FILE}[labeller]
    return read_table(Path(jpg_root) / name, JPG, LABEL_COLUMNS)


def read_split(jpg_root: str | os.PathLike) -> pd.DataFrame | None:
    """Read the official split table if present (metadata only; raypi splits per seed)."""
    path = Path(jpg_root) / SPLIT_FILE
    return read_table(path, JPG, SPLIT_COLUMNS, dtype={"dicom_id": str}) if path.is_file() else None


def read_patients(mimic_iv_root: str | os.PathLike) -> pd.DataFrame:
    """Read MIMIC-IV ``hosp/patients.csv.gz``."""
    return read_table(Path(mimic_iv_root) / PATIENTS_FILE, MIMIC_IV, PATIENTS_COLUMNS)


def read_admissions(mimic_iv_root: str | os.PathLike) -> pd.DataFrame:
    """Read MIMIC-IV ``hosp/admissions.csv.gz`` with admit/discharge/death times parsed."""
    frame = read_table(Path(mimic_iv_root) / ADMISSIONS_FILE, MIMIC_IV, ADMISSIONS_COLUMNS)
    for column in ("admittime", "dischtime", "deathtime"):
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], errors="coerce")
    return frame


class ReportReader:
    """Reads report texts from a MIMIC-CXR folder: the ``files/`` tree or the reports zip."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        zip_path = self.root / REPORTS_ZIP
        self._zip = zipfile.ZipFile(zip_path) if zip_path.is_file() else None
        if self._zip is None and not (self.root / "files").is_dir():
            require_file(zip_path, REPORTS)  # raises: neither layout is there
        self._names = None
        if self._zip is not None:
            # Members may sit under a top folder (e.g. "mimic-cxr-reports/files/...").
            self._names = {name.split("files/", 1)[-1]: name for name in self._zip.namelist()}

    def read(self, subject_id: int, study_id: int) -> str | None:
        """Return a study's report text, or None when the file is absent."""
        relative = report_path(subject_id, study_id)
        if self._zip is not None:
            name = self._names.get(relative.split("files/", 1)[-1])
            return self._zip.read(name).decode("utf-8", errors="replace") if name else None
        path = self.root / relative
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None

    def close(self) -> None:
        """Close the zip archive, if one is open."""
        if self._zip is not None:
            self._zip.close()
