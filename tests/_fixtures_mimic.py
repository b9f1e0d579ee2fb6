"""Writes tiny MIMIC-CXR-JPG 2.1.0 / MIMIC-CXR 2.1.0 / MIMIC-IV 3.1 folders in published layout.

File names, column names, gzip compression and the ``files/pXX/pSUBJECT/sSTUDY/DICOM.jpg`` and
``files/pXX/pSUBJECT/sSTUDY.txt`` patterns follow PhysioNet's releases. The content is made up
so that every rule of the MIMIC builders has a row that exercises it; ``MimicFixture`` records
what each rule must produce.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

FIVE = ("Atelectasis", "Cardiomegaly", "Edema", "Pleural Effusion", "Consolidation")
CHEXPERT = (
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
METADATA_EXTRA = (
    "PerformedProcedureStepDescription",
    "Rows",
    "Columns",
    "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)

REPORT_BOTH = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___ with shortness of breath.

 COMPARISON:  ___

 FINDINGS:

 PA and lateral views of the chest provided.  There is {finding} noted.
 No pneumothorax.

 IMPRESSION:

 {finding} as above.
"""
REPORT_NEITHER = """                                 FINAL REPORT
 PORTABLE CHEST ___ AT 10:12
 Single portable view of the chest. Lines and tubes unchanged. {finding}.
"""


def dicom_id(*parts) -> str:
    """A dicom_id shaped like MIMIC's (five dash-separated 8-hex-digit groups)."""
    digest = hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


@dataclass
class MimicFixture:
    """Paths of the generated folders and what the builders must make of them."""

    jpg: Path
    reports: Path
    mimic_iv: Path
    single_subjects: dict[str, list[str]] = field(default_factory=dict)
    """Finding → subject ids with exactly that one of the five findings (eligible)."""
    multi_subjects: list[str] = field(default_factory=list)
    """Subjects with two of the five findings (must be excluded)."""
    age_bins: dict[str, int] = field(default_factory=dict)
    """dicom_id → expected age class for every frontal image with a JPEG and a patient row."""
    discharge: dict[str, int] = field(default_factory=dict)
    """dicom_id → expected 3-day label of images linked to exactly one surviving admission."""
    discharge_excluded: dict[str, str] = field(default_factory=dict)
    """dicom_id → why the image is not in the discharge task."""
    positive_images: set[str] = field(default_factory=set)
    """Frontal images of the single-finding subjects' positive studies."""
    missing_jpeg: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    """dicom_ids listed twice in the metadata (inconsistent: reported, never used)."""
    subject_clash: list[str] = field(default_factory=list)
    """dicom_ids whose study has another subject_id in the label file (reported, never used)."""
    lateral: list[str] = field(default_factory=list)
    no_patient_subject: str = ""
    report_status: dict[str, str] = field(default_factory=dict)
    """study_id → "both" | "neither" | "missing"."""


class _Writer:
    """Accumulates rows of every published table."""

    def __init__(self, fixture: MimicFixture, start: pd.Timestamp):
        self.fx = fixture
        self.metadata, self.chexpert, self.split, self.admissions = [], [], [], []
        self.reports: dict[str, str] = {}
        self.start = start
        self.next_study = 50_000_000
        self.next_hadm = 20_000_000

    def study(
        self,
        subject: int,
        when: pd.Timestamp,
        labels: dict[str, float],
        finding: str,
        views=("PA", "LATERAL"),
        report="both",
        jpeg=True,
    ) -> list[str]:
        """Add one study with its images and labels; return its frontal dicom_ids."""
        self.next_study += 1
        study = self.next_study
        row = {name: np.nan for name in CHEXPERT} | labels
        self.chexpert.append({"subject_id": subject, "study_id": study, **row})
        frontal = []
        for view in views:
            dicom = dicom_id(subject, study, view)
            self.metadata.append(
                {
                    "dicom_id": dicom,
                    "subject_id": subject,
                    "study_id": study,
                    "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
                    "ViewPosition": view,
                    "Rows": 16,
                    "Columns": 16,
                    "StudyDate": int(when.strftime("%Y%m%d")),
                    # PhysioNet stores HHMMSS.fff as a number (leading zeros dropped).
                    "StudyTime": float(when.strftime("%H%M%S")) + 0.531,
                    "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
                    "ViewCodeSequence_CodeMeaning": "postero-anterior",
                    "PatientOrientationCodeSequence_CodeMeaning": "Erect",
                }
            )
            self.split.append(
                {"dicom_id": dicom, "study_id": study, "subject_id": subject, "split": "train"}
            )
            if view == "LATERAL":
                self.fx.lateral.append(dicom)
                continue
            if jpeg:
                path = self.fx.jpg / f"files/p{str(subject)[:2]}/p{subject}/s{study}/{dicom}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((16, 16), len(frontal) * 40 + 60, np.uint8)).save(path)
                frontal.append(dicom)
            else:
                self.fx.missing_jpeg.append(dicom)
        self.fx.report_status[str(study)] = report
        if report != "missing":
            template = REPORT_BOTH if report == "both" else REPORT_NEITHER
            self.reports[f"files/p{str(subject)[:2]}/p{subject}/s{study}.txt"] = template.format(
                finding=finding
            )
        return frontal

    def admission(self, subject: int, admit: pd.Timestamp, discharge: pd.Timestamp, died=False):
        self.next_hadm += 1
        self.admissions.append(
            {
                "subject_id": subject,
                "hadm_id": self.next_hadm,
                "admittime": admit,
                "dischtime": discharge,
                "deathtime": discharge if died else pd.NaT,
                "admission_type": "EW EMER.",
                "admit_provider_id": "P00001",
                "admission_location": "EMERGENCY ROOM",
                "discharge_location": "DIED" if died else "HOME",
                "insurance": "Other",
                "language": "English",
                "marital_status": "SINGLE",
                "race": "WHITE",
                "edregtime": pd.NaT,
                "edouttime": pd.NaT,
                "hospital_expire_flag": int(died),
            }
        )


def _single_finding_subjects(w: _Writer, per_class: int, patients: list) -> None:
    subject = 10_000_000
    for index, finding in enumerate(FIVE):
        w.fx.single_subjects[finding] = []
        for k in range(per_class):
            subject += 1
            when = w.start + pd.Timedelta(days=30 * k + index, hours=7, minutes=5)
            other = FIVE[(index + 1) % 5]
            # Uncertain (-1.0) and negative (0.0) mentions of other findings do not count.
            labels = {finding: 1.0, other: -1.0, "Support Devices": 1.0}
            w.fx.positive_images.update(w.study(subject, when, labels, finding))
            w.study(
                subject,
                when + pd.Timedelta(days=400),
                {"No Finding": 1.0, finding: 0.0},
                "no finding",
                views=("AP",),
                report="neither" if k == 0 else "both",
            )
            patients.append((subject, 20 + 15 * k + index, when.year))
            w.fx.single_subjects[finding].append(str(subject))


def _multi_finding_subjects(w: _Writer, patients: list) -> None:
    for k in range(3):
        subject = 11_000_000 + k
        first, second = FIVE[k], FIVE[k + 1]
        w.study(subject, w.start + pd.Timedelta(days=k), {first: 1.0}, first)
        w.study(subject, w.start + pd.Timedelta(days=k + 90), {second: 1.0}, second)
        patients.append((subject, 60, w.start.year))
        w.fx.multi_subjects.append(str(subject))


def _discharge_cases(w: _Writer, patients: list) -> None:
    """One subject per 3-Day rule branch; all have a patient row except the last."""
    base = w.start + pd.Timedelta(days=1000)
    cases = [
        ("discharged after 2 days", 1),
        ("discharged after 3 days exactly", 1),
        ("discharged after 5 days", 0),
        ("died", None),
        ("two admissions", None),
        ("no admission", None),
        ("no patient row", 1),
    ]
    for k, (case, label) in enumerate(cases):
        subject = 12_000_000 + k
        when = base + pd.Timedelta(days=10 * k, hours=1, minutes=3, seconds=4)
        report = "missing" if case == "no admission" else "both"
        [image] = w.study(
            subject, when, {"No Finding": 1.0}, "no finding", views=("AP",), report=report
        )
        admit = when - pd.Timedelta(hours=5)
        if case == "discharged after 3 days exactly":
            w.admission(subject, admit, when + pd.Timedelta(hours=72))
        elif case in ("discharged after 2 days", "no patient row"):
            w.admission(subject, admit, when + pd.Timedelta(days=2))
        elif case == "discharged after 5 days":
            w.admission(subject, admit, when + pd.Timedelta(days=5))
        elif case == "died":
            w.admission(subject, admit, when + pd.Timedelta(days=1), died=True)
        elif case == "two admissions":
            w.admission(subject, admit, when + pd.Timedelta(days=1))
            w.admission(subject, admit - pd.Timedelta(days=1), when + pd.Timedelta(days=6))
        if label is None:
            w.fx.discharge_excluded[image] = case
        else:
            w.fx.discharge[image] = label
        if case == "no patient row":
            w.fx.no_patient_subject = str(subject)
        else:
            patients.append((subject, 80 + k, when.year))
    # An admission that ends before it starts: reported, never used.
    w.admission(12_000_000, base + pd.Timedelta(days=500), base + pd.Timedelta(days=499))
    # A frontal image listed in the metadata whose JPEG is missing.
    w.study(
        13_000_000,
        base,
        {"No Finding": 1.0},
        "no finding",
        views=("PA",),
        jpeg=False,
        report="missing",
    )
    patients.append((13_000_000, 50, base.year))
    # Inconsistent rows: a dicom_id listed twice, and a study whose label row names another subject.
    w.fx.duplicated.extend(w.study(14_000_000, base, {"Edema": 1.0}, "edema", views=("PA",)))
    w.metadata.append(dict(w.metadata[-1]))
    w.fx.subject_clash.extend(w.study(14_000_001, base, {"Edema": 1.0}, "edema", views=("PA",)))
    w.chexpert[-1]["subject_id"] = 14_000_002
    patients.extend([(14_000_000, 50, base.year), (14_000_001, 50, base.year)])


def _age_class(age: int) -> int:
    return sum(age >= edge for edge in (40, 55, 65, 75))


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, compression="gzip")


def make_mimic(root: Path, per_class: int = 4, reports_zip: bool = False) -> MimicFixture:
    """Write the three folders under ``root`` and return what the builders must find.

    Args:
        root: Empty folder.
        per_class: Eligible single-finding subjects per class.
        reports_zip: Ship the reports as ``mimic-cxr-reports.zip`` instead of a ``files/`` tree.

    Returns:
        The fixture description.
    """
    fx = MimicFixture(root / "mimic-cxr-jpg", root / "mimic-cxr", root / "mimiciv")
    w = _Writer(fx, pd.Timestamp("2150-03-04 07:05:06"))
    patients: list[tuple[int, int, int]] = []
    _single_finding_subjects(w, per_class, patients)
    _multi_finding_subjects(w, patients)
    _discharge_cases(w, patients)
    metadata = pd.DataFrame(w.metadata)
    _write_csv(metadata, fx.jpg / "mimic-cxr-2.0.0-metadata.csv.gz")
    chexpert = pd.DataFrame(w.chexpert)[["subject_id", "study_id", *CHEXPERT]]
    _write_csv(chexpert, fx.jpg / "mimic-cxr-2.0.0-chexpert.csv.gz")
    _write_csv(chexpert, fx.jpg / "mimic-cxr-2.0.0-negbio.csv.gz")
    _write_csv(pd.DataFrame(w.split), fx.jpg / "mimic-cxr-2.0.0-split.csv.gz")
    rows = [
        {
            "subject_id": s,
            "gender": "F",
            "anchor_age": a,
            "anchor_year": y,
            "anchor_year_group": "2014 - 2016",
            "dod": None,
        }
        for s, a, y in patients
    ]
    _write_csv(pd.DataFrame(rows), fx.mimic_iv / "hosp/patients.csv.gz")
    admissions = pd.DataFrame(w.admissions)
    for column in ("admittime", "dischtime", "deathtime", "edregtime", "edouttime"):
        admissions[column] = pd.to_datetime(admissions[column]).dt.strftime("%Y-%m-%d %H:%M:%S")
    _write_csv(admissions, fx.mimic_iv / "hosp/admissions.csv.gz")
    _write_reports(fx.reports, w.reports, reports_zip)
    ages = {s: (a, y) for s, a, y in patients}
    for row in metadata.itertuples():
        bad = set(fx.missing_jpeg) | set(fx.duplicated) | set(fx.subject_clash)
        if row.ViewPosition in ("PA", "AP") and row.dicom_id not in bad and row.subject_id in ages:
            anchor_age, anchor_year = ages[row.subject_id]
            fx.age_bins[row.dicom_id] = _age_class(
                anchor_age + int(str(row.StudyDate)[:4]) - anchor_year
            )
    return fx


def _write_reports(root: Path, reports: dict[str, str], as_zip: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if as_zip:
        with zipfile.ZipFile(root / "mimic-cxr-reports.zip", "w") as archive:
            for name, text in reports.items():
                archive.writestr(name, text)
        return
    for name, text in reports.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
