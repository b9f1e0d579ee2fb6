"""INSPECT builder: DRR orientation, the three balanced tasks, resumability, bad input."""

from __future__ import annotations

import hashlib
import os
import shutil

import cv2
import numpy as np
import pytest
from _fixtures_inspect import chest_phantom, make_inspect, write_nifti

from raypi.cli import main as run_raypi
from raypi.data import _drr, tables
from raypi.data import _inspect_layout as layout
from raypi.data import images as image_roots
from raypi.data.inspect_ct import TASK_LABELS, InspectOptions, build_inspect
from raypi.data.tables import TableError

needs_plastimatch = pytest.mark.skipif(
    shutil.which("plastimatch") is None,
    reason="plastimatch not installed here (Debian/Ubuntu: apt-get install -y plastimatch)",
)
SMALL = InspectOptions(drr=_drr.DrrSettings(resolution=64))
COLUMN = {
    "ph_12month": "12_month_PH",
    "readmission": "12_month_readmission",
    "pulmonary_embolism": "pe_positive_nlp",
}


def bright_centroid(image: np.ndarray) -> tuple[float, float]:
    """(row, col) centroid of the brightest pixels, as fractions of the image size."""
    rows, cols = np.nonzero(image >= np.percentile(image, 99))
    return rows.mean() / image.shape[0], cols.mean() / image.shape[1]


@needs_plastimatch
@pytest.mark.parametrize("flip_x", [False, True], ids=["x-left-to-right", "x-right-to-left"])
@pytest.mark.parametrize("marker", ["left-superior", "right-inferior"])
def test_drr_is_displayed_as_a_radiograph(tmp_path, flip_x, marker):
    """Dense bone at the patient's LEFT appears on the image's RIGHT; superior at the top."""
    volume = tmp_path / "ct.nii.gz"
    write_nifti(volume, chest_phantom(32, marker, flip_x=flip_x), flip_x=flip_x)
    out = tmp_path / "drr.jpg"
    _drr.render(volume, str(out), _drr.DrrSettings(resolution=96))
    assert out.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG
    image = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (96, 96) and image.min() <= 5 and image.max() >= 250  # equalised
    row, col = bright_centroid(image)
    if marker == "left-superior":
        assert col > 0.6 and row < 0.4
    else:
        assert col < 0.4 and row > 0.6


@needs_plastimatch
def test_drr_source_is_anterior(tmp_path):
    """Equal blocks: the anterior one, nearer the source, is magnified more (AP, not PA)."""
    n = 32
    volume = np.full((n, n, n), -1000, np.int16)
    volume[4:10, 22:28, 12:20] = 1500  # patient left (small i), anterior (large j: RAS +y)
    volume[22:28, 4:10, 12:20] = 1500  # patient right, posterior
    path = tmp_path / "blocks.nii.gz"
    write_nifti(path, volume)
    image = _drr.project(path, _drr.DrrSettings(resolution=256, sad=150, sid=300), tmp_path)
    mask = image > image.max() * 0.5
    width = {
        side: np.flatnonzero(half.any(axis=0)).size
        for side, half in (("image left", mask[:, :128]), ("image right", mask[:, 128:]))
    }
    # The anterior block is the patient's left, so it is on the image's right.
    assert width["image right"] > 1.2 * width["image left"] > 0


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)  # fmt: skip
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def built(tmp_path_factory, ray_cluster):
    if shutil.which("plastimatch") is None:
        pytest.skip(
            "plastimatch not installed here (Debian/Ubuntu: apt-get install -y plastimatch)"
        )
    root = tmp_path_factory.mktemp("inspect")
    fx = make_inspect(root / "raw", n=14, size=16)
    summary = build_inspect(fx.root, root / "out", SMALL)
    return fx, root / "out", summary


def test_tasks_are_balanced_censoring_removed(built):
    fx, out, summary = built
    dataset = tables.read_dataset(out)
    truth = fx.labels.set_index("image_id")
    for task, _label in TASK_LABELS.items():
        table = tables.read_task(out, task, dataset)
        counts = table["label"].value_counts()
        assert counts[0] == counts[1] > 0
        published = truth.loc[table["image_id"], COLUMN[task]]
        assert (published != "Censored").all()
        assert ((published == "True").astype(int).to_numpy() == table["label"].to_numpy()).all()
        assert (
            truth.loc[table["image_id"], "person_id"].to_numpy() == table["patient_id"].to_numpy()
        ).all()
        present = truth.drop(fx.missing_volume)
        known = present[present[COLUMN[task]] != "Censored"][COLUMN[task]]
        minority = min((known == "True").sum(), (known == "False").sum())
        assert len(table) == 2 * minority
        dropped = summary["tasks"][task]["dropped"]
        censored = (truth.drop(fx.missing_volume)[COLUMN[task]] == "Censored").sum()
        assert dropped.get("censored", {"rows": 0})["rows"] == censored
    assert summary["dropped"]["CT volume missing (image_id)"]["examples"] == fx.missing_volume
    unmatched = summary["dropped"]["study_mapping row without a labels row (impression_id)"]
    assert unmatched["examples"] == fx.unmapped_impressions


def test_dataset_has_drr_images_and_impressions(built):
    fx, out, _ = built
    dataset = tables.read_dataset(out)
    assert not image_roots.check_images(out, dataset, decode=True)
    assert all(
        path == f"images/{image}.jpg"
        for image, path in zip(dataset["image_id"], dataset["image_path"])
    )
    impressions = fx.labels.set_index("image_id")["impression_id"]
    text = {row: f"{int(row) - 1000}. No acute pulmonary embolism." for row in impressions}

    def digest(value):
        return hashlib.sha256(value.encode()).hexdigest()

    expected = [digest(text[impressions[image]]) for image in dataset["image_id"]]
    assert [digest(report) for report in dataset["report"]] == expected
    assert set(dataset["split_official"]) <= {"train", "valid", "test"}


def test_drr_job_resumes(built):
    fx, out, _ = built
    images = sorted((out / "images").glob("*.jpg"))
    stamps = {path.name: path.stat().st_mtime_ns for path in images}
    images[0].unlink()
    build_inspect(fx.root, out, SMALL)
    again = {path.name: path.stat().st_mtime_ns for path in sorted((out / "images").glob("*.jpg"))}
    assert set(again) == set(stamps)
    changed = [name for name in stamps if again[name] != stamps[name]]
    assert changed == [images[0].name]  # only the missing one was rendered again


def test_cli_build_inspect(built, capsys):
    fx, out, _ = built
    argv = ["build", "inspect", "--root", str(fx.root), "--out", str(out), "--resolution", "64"]
    assert run_raypi(argv) == 0
    assert "task pulmonary_embolism:" in capsys.readouterr().out


def test_both_releases_read_the_same(tmp_path):
    later = make_inspect(tmp_path / "later", n=9, size=8)
    make_inspect(tmp_path / "first", n=9, size=8, release="2023")
    a, _ = layout.read_studies(later.root)
    b, _ = layout.read_studies(tmp_path / "first")
    a = a[a["_in"] == "both"].set_index("image_id").sort_index()
    b = b.set_index("image_id").sort_index()
    for column in ("impression_id", "patient_id", *layout.LABELS):
        assert a[column].astype(str).tolist() == b[column].astype(str).tolist()
    assert layout.outcome(
        __import__("pandas").Series(["True", "0", "Censored", None, "x"])
    ).tolist() == ["positive", "negative", "censored", "missing", "missing"]


def test_missing_plastimatch_is_explained(tmp_path, monkeypatch, capsys):
    fx = make_inspect(tmp_path / "raw", n=6, size=8)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(_drr.PlastimatchMissing, match="apt-get install -y plastimatch"):
        build_inspect(fx.root, tmp_path / "out")
    assert (
        run_raypi(["build", "inspect", "--root", str(fx.root), "--out", str(tmp_path / "o")]) == 2
    )
    assert "apt-get install -y plastimatch" in capsys.readouterr().out


def test_missing_table_or_column_names_the_file(tmp_path):
    fx = make_inspect(tmp_path / "raw", n=6, size=8)
    labels = next(fx.root.glob("labels_*.tsv"))
    text = labels.read_text().replace("12_month_PH", "twelve_month_ph")
    labels.write_text(text)
    with pytest.raises(
        TableError, match=r"labels_20250611\.tsv: none of the columns \['12_month_PH'\]"
    ):
        build_inspect(fx.root, tmp_path / "out")
    next(fx.root.glob("study_mapping_*.tsv")).unlink()
    with pytest.raises(TableError, match=r"missing study_mapping_\*\.tsv"):
        build_inspect(fx.root, tmp_path / "out")
    os.remove(labels)
    for path in fx.root.glob("*.tsv"):
        path.unlink()
    with pytest.raises(TableError, match="no INSPECT tables found"):
        build_inspect(fx.root, tmp_path / "out")
