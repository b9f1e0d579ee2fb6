"""MIMIC builder: the three tasks' rules on a fixture folder in PhysioNet's published layout."""

from __future__ import annotations

import gzip
import hashlib
import json

import pandas as pd
import pytest
from _fixtures_mimic import FIVE, make_mimic

from raypi.cli import main
from raypi.data import images as image_roots
from raypi.data import tables
from raypi.data._mimic_tasks import AGE_BIN_EDGES, age_bin, check_spec_bins
from raypi.data.mimic import MimicOptions, build_mimic
from raypi.data.tables import TableError

PER_CLASS = (3, 1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("mimic")
    fx = make_mimic(root)
    out = root / "out"
    summary = build_mimic(
        fx.jpg, fx.reports, fx.mimic_iv, out, MimicOptions(per_class=PER_CLASS, age_images=None)
    )
    dataset = tables.read_dataset(out)
    tasks = {name: tables.read_task(out, name, dataset) for name in summary["tasks"]}
    return fx, out, summary, dataset, tasks


def test_published_layout_and_outputs_are_valid(built):
    fx, out, summary, dataset, tasks = built
    assert (fx.jpg / "mimic-cxr-2.0.0-metadata.csv.gz").read_bytes()[:2] == b"\x1f\x8b"  # gzip
    with gzip.open(fx.mimic_iv / "hosp/admissions.csv.gz", "rt") as handle:
        assert handle.readline().startswith("subject_id,hadm_id,admittime,dischtime,deathtime")
    assert tables.read_meta(out)["tasks"] == ["mimic_5x1200", "age", "discharge_3day"]
    assert json.loads((out / "build_summary.json").read_text())["images"] == len(dataset)
    assert set(dataset["image_id"]) == set().union(*(set(t["image_id"]) for t in tasks.values()))
    # Paths relative to the image root that meta.json records (the --jpg folder by default).
    assert all(
        path.endswith(".jpg") and path.startswith("files/p1") for path in dataset["image_path"]
    )
    assert image_roots.image_root(out) == str(fx.jpg.absolute())
    assert not image_roots.check_images(out, dataset, decode=True)


def test_5x1200_exactly_one_finding_per_subject(built):
    fx, _, summary, _, tasks = built
    table = tasks["mimic_5x1200"]
    assert table["patient_id"].is_unique  # one image per subject
    for index, finding in enumerate(FIVE):
        rows = table[table["label"] == index]
        assert set(rows["patient_id"]) <= set(fx.single_subjects[finding])
        assert (rows["split"] == "train").sum() == PER_CLASS[0]
        assert (rows["split"] == "val").sum() == PER_CLASS[1]
    assert not set(table["patient_id"]) & set(fx.multi_subjects)
    assert set(table["image_id"]) <= fx.positive_images  # from the positive study, frontal
    train = table[table["split"] == "train"]
    val = table[table["split"] == "val"]
    assert not set(train["patient_id"]) & set(val["patient_id"])
    dropped = summary["tasks"]["mimic_5x1200"]["dropped"]
    assert dropped["subject has more than one of the five findings (subject_id)"]["rows"] == 3


def test_5x1200_is_deterministic_and_fails_clearly_when_short(built, tmp_path):
    fx, out, *_ = built
    again = build_mimic(
        fx.jpg,
        fx.reports,
        fx.mimic_iv,
        tmp_path / "again",
        MimicOptions(per_class=PER_CLASS, age_images=None),
    )
    first = tables.read_task(out, "mimic_5x1200")
    second = tables.read_task(tmp_path / "again", "mimic_5x1200")
    assert first.equals(second) and again["images"] == len(tables.read_dataset(out))
    with pytest.raises(TableError, match="MIMIC 5x1200: only 4 eligible subjects"):
        build_mimic(
            fx.jpg, fx.reports, fx.mimic_iv, tmp_path / "short", MimicOptions(per_class=(4, 1))
        )


def test_age_bins(built):
    fx, _, summary, _, tasks = built
    table = tasks["age"].set_index("image_id")["label"]
    assert table.to_dict() == fx.age_bins
    check_spec_bins()  # edges agree with the age task's class names
    ages = pd.Series([18, 39.9, 40, 54, 55, 64, 65, 74, 75, 91, 17])
    assert age_bin(ages).fillna(-1).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, -1]
    assert AGE_BIN_EDGES == (18, 40, 55, 65, 75)
    assert summary["tasks"]["age"]["dropped"]["subject not in MIMIC-IV patients"]["rows"] == 1


def test_age_subsample_is_seeded(built, tmp_path):
    fx, *_ = built
    options = MimicOptions(per_class=PER_CLASS, age_images=10, seed=3)
    summary = build_mimic(fx.jpg, fx.reports, fx.mimic_iv, tmp_path / "a", options)
    build_mimic(fx.jpg, fx.reports, fx.mimic_iv, tmp_path / "b", options)
    first, second = (tables.read_task(tmp_path / name, "age") for name in "ab")
    assert len(first) == 10 and first.equals(second)
    dropped = summary["tasks"]["age"]["dropped"][
        "beyond the study's image count (seeded subsample)"
    ]
    assert dropped["rows"] == len(fx.age_bins) - 10


def test_discharge_rule(built):
    fx, _, summary, _, tasks = built
    table = tasks["discharge_3day"].set_index("image_id")["label"]
    assert table.to_dict() == fx.discharge
    assert not set(table.index) & set(fx.discharge_excluded)
    dropped = summary["tasks"]["discharge_3day"]["dropped"]
    for reason in (
        "admission ended in death",
        "more than one admission spans the study time",
        "admission with dischtime before admittime (hadm_id)",
    ):
        assert dropped[reason]["rows"] == 1
    assert dropped["no admission spans the study time"]["rows"] > 1


def test_inconsistent_and_missing_rows_are_reported(built):
    fx, _, summary, dataset, _ = built
    dropped = summary["dropped"]
    assert dropped["not a frontal view (ViewPosition not in ['PA', 'AP'])"]["rows"] == len(
        fx.lateral
    )
    assert dropped["JPEG file missing under files/"]["examples"] == fx.missing_jpeg
    assert (
        dropped["dicom_id listed more than once in the metadata"]["examples"] == fx.duplicated * 2
    )
    assert (
        dropped["study_id has another subject_id in the label file"]["examples"] == fx.subject_clash
    )
    used = set(dataset["image_id"])
    assert not used & set(fx.missing_jpeg + fx.duplicated + fx.subject_clash + fx.lateral)


def test_reports_sections_and_counts(built, tmp_path):
    fx, _, summary, dataset, _ = built
    studies = dataset.drop_duplicates("study_id").set_index("study_id")
    statuses = {study: fx.report_status[study] for study in studies.index}
    counts = summary["reports"]
    assert counts["neither"] == list(statuses.values()).count("neither") == 5
    assert counts["missing"] == list(statuses.values()).count("missing") == 1
    assert counts["both"] == list(statuses.values()).count("both")
    for study, status in statuses.items():
        report = studies.loc[study, "report"]
        assert (report is None or pd.isna(report)) == (status == "missing")
        if status == "both":  # impression first, then findings, headers gone
            impression, findings = report.split("\n\n")
            assert impression.endswith("as above.") and findings.endswith("No pneumothorax.")
            assert "IMPRESSION" not in report and "INDICATION" not in report
    # The reports zip gives the same texts as the files/ tree.
    zipped = make_mimic(tmp_path, reports_zip=True)
    build_mimic(
        zipped.jpg,
        zipped.reports,
        zipped.mimic_iv,
        tmp_path / "out",
        MimicOptions(per_class=PER_CLASS, age_images=None),
    )

    def digest(frame):
        return hashlib.sha256(
            "|".join(frame.sort_values("image_id")["report"].fillna("")).encode()
        ).hexdigest()

    assert digest(tables.read_dataset(tmp_path / "out")) == digest(dataset)


def test_missing_file_or_column_names_the_published_file(built, tmp_path):
    fx, *_ = built
    fresh = make_mimic(tmp_path / "bad")
    (fresh.mimic_iv / "hosp/admissions.csv.gz").unlink()
    with pytest.raises(TableError, match=r"admissions\.csv\.gz.*MIMIC-IV 3\.1"):
        build_mimic(fresh.jpg, fresh.reports, fresh.mimic_iv, tmp_path / "o1")
    metadata = fresh.jpg / "mimic-cxr-2.0.0-metadata.csv.gz"
    pd.read_csv(metadata).drop(columns=["ViewPosition"]).to_csv(
        metadata, index=False, compression="gzip"
    )
    with pytest.raises(
        TableError, match=r"missing columns \['ViewPosition'\].*mimic-cxr-2\.0\.0-metadata"
    ):
        build_mimic(fresh.jpg, fresh.reports, fx.mimic_iv, tmp_path / "o2")
    with pytest.raises(TableError, match=r"mimic-cxr-reports\.zip"):
        build_mimic(fx.jpg, tmp_path / "nowhere", fx.mimic_iv, tmp_path / "o3")


def test_cli_build_mimic(built, tmp_path, capsys):
    fx, *_ = built
    common = [
        "build",
        "mimic",
        "--jpg",
        str(fx.jpg),
        "--reports",
        str(fx.reports),
        "--mimic-iv",
        str(fx.mimic_iv),
    ]
    assert (
        main(
            [*common, "--out", str(tmp_path / "o"), "--per-class", "3", "1", "--age-images", "all"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "task mimic_5x1200: 20 images, 20 patients" in printed
    assert tables.read_task(tmp_path / "o", "discharge_3day").shape[0] == len(fx.discharge)
    assert main([*common, "--out", str(tmp_path / "o2")]) == 2  # default 1000+200 per class
    assert "only 4 eligible subjects" in capsys.readouterr().out


def test_image_root_is_recorded_and_read(built, tmp_path):
    """Nodes read the images from --image-root (here a copy of the JPG folder's files/)."""
    import shutil

    fx, *_ = built
    copy = tmp_path / "copy"
    shutil.copytree(fx.jpg / "files", copy / "files")
    out = tmp_path / "o"
    common = ["build", "mimic", "--jpg", str(fx.jpg), "--reports", str(fx.reports)]
    options = ["--per-class", "3", "1", "--age-images", "all", "--image-root", str(copy)]
    assert main([*common, "--mimic-iv", str(fx.mimic_iv), "--out", str(out), *options]) == 0
    assert tables.read_meta(out)[image_roots.IMAGE_ROOT_KEY] == str(copy)
    dataset = tables.read_dataset(out)
    assert not image_roots.check_images(out, dataset, decode=False)
    shutil.rmtree(copy / "files" / dataset["image_path"].iloc[0].split("/")[1])
    assert image_roots.check_images(out, dataset, decode=False)  # read from the copy, not --jpg


def test_absolute_paths_cannot_be_remapped(tmp_path):
    frame = pd.DataFrame({"image_id": ["a", "b"], "image_path": ["/old/a.jpg", "rel/b.jpg"]})
    with pytest.raises(TableError, match="cannot remap absolute image paths"):
        image_roots.require_relative_paths(frame, "dataset.parquet", "s3://bucket/images")
    image_roots.require_relative_paths(frame.iloc[1:], "dataset.parquet", "s3://bucket/images")
