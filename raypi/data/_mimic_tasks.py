"""Label rules of the MIMIC tasks: MIMIC 5x1200, Age and 3-Day Discharge.

Each rule takes the candidate images (one row per frontal image whose JPEG exists: dicom_id,
subject_id, study_id, study_datetime) and returns the task table plus the rows it left out,
with the reason. Rules are documented where they are defined.
"""

from __future__ import annotations

import pandas as pd

from raypi.data._published import deterministic_order
from raypi.data._summary import Drops
from raypi.data.tables import TableError
from raypi.tasks import get_task

FIVE_LABELS = ("Atelectasis", "Cardiomegaly", "Edema", "Pleural Effusion", "Consolidation")
"""The five findings of MIMIC 5x1200 (as in CheXpert 5x200 / GLoRIA), in class-index order."""
AGE_BIN_EDGES = (18, 40, 55, 65, 75)
"""Lower edges (years) of the 5 age bins [18,40), [40,55), [55,65), [65,75), [75, ∞): the bins
of ``raypi.tasks`` ``age`` (RAD-DINO's age task, Pérez-García et al. 2025)."""
DISCHARGE_HOURS = 72
"""3-Day Discharge horizon: positive when discharge follows the image within 72 h."""

RULE_5X1200 = (
    "subjects whose CheXpert labels (mimic-cxr-2.0.0-chexpert.csv.gz, positive = 1.0; 0.0, -1.0 "
    "and blank count as not assigned) name exactly one of the five findings over all their "
    "studies; one frontal image per subject from a study positive for it (seeded hash order); "
    "per class the first val_per_class subjects are 'val', the next train_per_class 'train'"
)
RULE_AGE = (
    "age at the study = anchor_age + (study year - anchor_year) from MIMIC-IV patients; "
    f"bins with lower edges {AGE_BIN_EDGES} years; frontal images, subsampled in seeded hash "
    "order to the study's image count unless all are asked for"
)
RULE_DISCHARGE = (
    "an image belongs to the admission of its subject with admittime <= study time <= "
    f"dischtime; label 1 when dischtime - study time <= {DISCHARGE_HOURS} h; excluded: no "
    "spanning admission, more than one spanning admission, admissions ending in death "
    "(deathtime set or hospital_expire_flag = 1), and admissions with dischtime < admittime"
)


def build_5x1200(
    images: pd.DataFrame, labels: pd.DataFrame, seed: int, per_class: tuple[int, int]
) -> tuple[pd.DataFrame, Drops]:
    """Select MIMIC 5x1200 (see ``RULE_5X1200``).

    Args:
        images: Candidate frontal images (dicom_id, subject_id, study_id).
        labels: CheXpert study labels (subject_id, study_id, the 14 findings).
        seed: Seed of the deterministic selection.
        per_class: ``(train_per_class, val_per_class)``.

    Returns:
        ``(table, drops)``; table has image_id, patient_id, label, split.

    Raises:
        TableError: If a class has fewer eligible subjects than ``sum(per_class)``.
    """
    drops = Drops()
    positive = labels[list(FIVE_LABELS)].eq(1.0)
    labels = labels.assign(n_pos=positive.sum(axis=1), finding=positive.idxmax(axis=1))
    per_subject = positive.groupby(labels["subject_id"]).any().sum(axis=1)
    several = per_subject.index[per_subject > 1]
    drops.add("subject has more than one of the five findings (subject_id)", several)
    single = per_subject.index[per_subject == 1]
    studies = labels[labels["subject_id"].isin(single) & (labels["n_pos"] == 1)]
    pool = images.merge(studies[["study_id", "finding"]], on="study_id", how="inner")
    pool = deterministic_order(pool, "dicom_id", seed).drop_duplicates("subject_id")
    rows = []
    train_n, val_n = per_class
    for index, finding in enumerate(FIVE_LABELS):
        chosen = pool[pool["finding"] == finding].head(train_n + val_n)
        if len(chosen) < train_n + val_n:
            raise TableError(
                f"MIMIC 5x1200: only {len(chosen)} eligible subjects with exactly one finding "
                f"'{finding}' have a frontal image; {train_n + val_n} needed"
            )
        split = ["val"] * val_n + ["train"] * train_n
        rows.append(chosen.assign(label=index, split=split))
    table = pd.concat(rows, ignore_index=True)
    return _task_frame(table, extra=("split",)), drops


def age_bin(age: pd.Series) -> pd.Series:
    """Return the class index of each age (NaN below the first edge)."""
    edges = list(AGE_BIN_EDGES) + [float("inf")]
    return pd.cut(age, bins=edges, right=False, labels=False)


def build_age(
    images: pd.DataFrame, patients: pd.DataFrame, seed: int, max_images: int | None
) -> tuple[pd.DataFrame, Drops]:
    """Label images with the patient's age bin (see ``RULE_AGE``).

    Args:
        images: Candidate frontal images (dicom_id, subject_id, study_datetime).
        patients: MIMIC-IV patients (subject_id, anchor_age, anchor_year).
        seed: Seed of the deterministic subsample.
        max_images: Keep at most this many images (None: all).

    Returns:
        ``(table, drops)``.
    """
    drops = Drops()
    merged = images.merge(
        patients[["subject_id", "anchor_age", "anchor_year"]], on="subject_id", how="left"
    )
    drops.add(
        "subject not in MIMIC-IV patients", merged.loc[merged["anchor_age"].isna(), "dicom_id"]
    )
    merged = merged[merged["anchor_age"].notna()]
    no_date = merged["study_datetime"].isna()
    drops.add("no StudyDate in the metadata", merged.loc[no_date, "dicom_id"])
    merged = merged[~no_date]
    age = merged["anchor_age"] + (merged["study_datetime"].dt.year - merged["anchor_year"])
    merged = merged.assign(age=age, label=age_bin(age))
    drops.add(f"age below {AGE_BIN_EDGES[0]}", merged.loc[merged["label"].isna(), "dicom_id"])
    merged = merged[merged["label"].notna()]
    if max_images is not None and len(merged) > max_images:
        ordered = deterministic_order(merged, "dicom_id", seed)
        drops.add(
            "beyond the study's image count (seeded subsample)",
            ordered["dicom_id"].iloc[max_images:],
        )
        merged = ordered.head(max_images)
    return _task_frame(merged), drops


def build_discharge(
    images: pd.DataFrame, admissions: pd.DataFrame, max_images: int | None, seed: int
) -> tuple[pd.DataFrame, Drops]:
    """Label images with discharge within 3 days (see ``RULE_DISCHARGE``).

    Args:
        images: Candidate frontal images (dicom_id, subject_id, study_datetime).
        admissions: MIMIC-IV admissions (subject_id, hadm_id, admittime, dischtime, ...).
        max_images: Keep at most this many images (None: all).
        seed: Seed of the deterministic subsample.

    Returns:
        ``(table, drops)``; the table also carries ``hadm_id``.
    """
    drops = Drops()
    admissions = _usable_admissions(admissions, drops)
    linked = images.merge(admissions, on="subject_id", how="inner")
    inside = (linked["admittime"] <= linked["study_datetime"]) & (
        linked["study_datetime"] <= linked["dischtime"]
    )
    linked = linked[inside]
    matches = linked.groupby("dicom_id")["hadm_id"].nunique()
    drops.add(
        "no admission spans the study time",
        images.loc[~images["dicom_id"].isin(matches.index), "dicom_id"],
    )
    drops.add("more than one admission spans the study time", matches.index[matches > 1])
    linked = linked[linked["dicom_id"].isin(matches.index[matches == 1])]
    died = linked["died"]
    drops.add("admission ended in death", linked.loc[died, "dicom_id"])
    linked = linked[~died]
    hours = (linked["dischtime"] - linked["study_datetime"]).dt.total_seconds() / 3600
    linked = linked.assign(label=(hours <= DISCHARGE_HOURS).astype(int))
    if max_images is not None and len(linked) > max_images:
        ordered = deterministic_order(linked, "dicom_id", seed)
        drops.add(
            "beyond the requested image count (seeded subsample)",
            ordered["dicom_id"].iloc[max_images:],
        )
        linked = ordered.head(max_images)
    return _task_frame(linked, extra=("hadm_id",)), drops


def _usable_admissions(admissions: pd.DataFrame, drops: Drops) -> pd.DataFrame:
    """Drop (and report) admissions without times or ending before they start; flag deaths."""
    missing = admissions["admittime"].isna() | admissions["dischtime"].isna()
    drops.add("admission without admittime/dischtime (hadm_id)", admissions.loc[missing, "hadm_id"])
    admissions = admissions[~missing]
    backwards = admissions["dischtime"] < admissions["admittime"]
    drops.add(
        "admission with dischtime before admittime (hadm_id)", admissions.loc[backwards, "hadm_id"]
    )
    admissions = admissions[~backwards]
    died = pd.Series(False, index=admissions.index)
    if "deathtime" in admissions.columns:
        died |= admissions["deathtime"].notna()
    if "hospital_expire_flag" in admissions.columns:
        died |= admissions["hospital_expire_flag"].fillna(0).astype(int).eq(1)
    columns = ["subject_id", "hadm_id", "admittime", "dischtime"]
    return admissions[columns].assign(died=died.to_numpy())


def _task_frame(frame: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rename to the task-table layout (image_id, patient_id, label, ...)."""
    table = pd.DataFrame(
        {
            "image_id": frame["dicom_id"].astype(str).to_numpy(),
            "patient_id": frame["subject_id"].astype("int64").astype(str).to_numpy(),
            "label": frame["label"].astype("int64").to_numpy(),
        }
    )
    for column in extra:
        table[column] = frame[column].to_numpy()
    return table


def check_spec_bins() -> None:
    """Raise if the age bin edges and the ``age`` task's class names disagree."""
    names = get_task("age").classes
    expected = [f"{low}-{high}" for low, high in zip(AGE_BIN_EDGES, AGE_BIN_EDGES[1:])]
    expected.append(f"{AGE_BIN_EDGES[-1]}+")
    if list(names) != expected:
        raise TableError(f"age bins {expected} differ from the age task's classes {list(names)}")
