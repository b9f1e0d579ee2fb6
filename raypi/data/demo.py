"""The built-in demo dataset: real IU chest X-ray reports, synthetic radiographs, known causes.

Each image gets a real report of the Indiana University collection (read from the installed
``torchxrayvision`` wheel) and a synthetic 256x256 radiograph drawn from that report's MeSH
terms and from its patient's age. The three tasks reproduce the study's regimes with a ground
truth we know. Causal graph (every dependency the builder draws; nothing else is used)::

    patient ──► age A ───────────────────────► X: rib band width, spine curvature, aortic knob rim
    report R (real MeSH terms M) ─┬─► drawn findings F ⊂ M ──► X: heart, fluid, opacities, nodules
                                  └─► hidden groups H ⊂ M ───► X: one faint local sign per group
    severity S = 1.0·|H| + 0.3·|F − {nodule}| + 0.3·(A − 55)/20 + U,   U ~ N(0, 1.3²)

    demo_diagnostic  Y = [Cardiomegaly ∈ M]   in the report (a keyword rule recovers it) and
                                              drawn in X as a heart width that overlaps between
                                              the classes; τ = 2.5 as MIMIC 5x1200
    demo_auxiliary   Y = bin of A (<45, 45–65, ≥65) — in X only; the report is independent of A
    demo_prognostic  Y = [S > median S]       R holds H and F, X holds F, A and a faint sign of
                                              each group of H — a report-reading teacher knows
                                              more, and what it knows is partly in the image

F = {cardiomegaly, effusion, opacity, nodule}. Cardiomegaly sets the heart's cardiothoracic
ratio, drawn from ``HEART_RATIO`` (0.51 ± 0.045 with it, 0.44 ± 0.04 without): the classes
overlap because in the study the diagnostic labels are read from the reports (the CheXpert
labeler on MIMIC-CXR), so the report states the label by construction while the radiograph
shows it through a noisy sign — the study's Table 7 has text-only models at 96–98 AUC and
image-only at 80–84 on these labels; the demo draws that regime. H is the set of report-only
groups of ``HIDDEN_TERMS`` (atelectasis, congestion, airspace disease, obstructive disease,
vascular calcification, devices/other), each drawn as its own faint local sign (``_demo_draw``:
a plate-like band, Kerley lines, a cluster of spots, an apical bulla, an aortic calcification,
a tube). Reports are assigned to images at random (20% with cardiomegaly), each report once
unless ``n`` exceeds the collection; patients have 1-4 images (about 40% of them more than
one) and share their age (±2 years). The dataset table carries the ground truth as ``gt_*``
columns so tests and the report's probe can check what the pipeline recovers.

Changes to the design, and why (never to move a p-value; each follows from the study):

- The prognostic label was ``[S > median]`` with ``S = 1.5·|H| + … + N(0, 0.5²)``: for images
  whose report had a hidden group, P(Y = 1) ≥ 0.98, so the report nearly *was* the label
  (report + age ~0.90 AUC) and τ = 0.25 turned the teacher's outputs into near-hard labels.
  The study's prognostic text-only AUCs are 57–76 (Table 7); the noise (σ = 1.3) and weights
  now put a report-only oracle at ~0.72 and P(Y = 1 | H ≠ ∅) at ~0.75, so teacher targets
  stay soft.
- The hidden groups were a global haze of a few gray levels — the size of the exposure jitter,
  and what the self-supervised recipe's brightness/contrast augmentation removes. A student
  can only learn E[teacher | image] (Lopez-Paz et al. 2016): they are now local signs the image
  carries weakly but robustly, the regime where privileged information can help.
- The encoders were pre-trained on the demo images themselves (every validation image, and for
  CLIP its report, which states the diagnostic label). They now learn from a separate draw of
  the generator (``pretrain/`` under the dataset root; ``draw_pretrain_tables``): other
  patients, and reports the task draw did not use — no image or report any trial trains or
  validates on is seen in pre-training. Both image recipes use the same augmentations
  (``raypi.pretrain.recipes.AUGMENT``), and age is drawn through structure (rib band width,
  spine curvature, the aortic knob's rim) that shifts and exposure changes keep.
- The cardiomegaly share went from 30 % to 20 % of the task draw: 240 of the collection's 375
  cardiomegaly reports at the default n, so the pre-training draw still has ~135 of its own.

Why the study's four findings should show on it (``raypi.report.findings`` tests them; the
report's probe says how much of H and of A each image encoder's features hold):

1. Diagnostic — text-only far above image-only (Table 7): the label is the report's own MeSH
   term, which its text states, while the image shows it only through an overlapping heart
   width.
2. Distillation from the report teacher beats self-distillation on the prognostic task and
   not on the diagnostic one (Fig. 3): the prognostic teacher reads H, whose signs the image
   carries faintly — its soft labels point the student at them; on the diagnostic task the
   teacher's knowledge comes from the report's words, which the image does not hold beyond
   the heart width the student already sees. Whether the gain shows depends on the encoder
   keeping the faint signs (the probe), which the design cannot promise.
3. Auxiliary — the teacher no better than image-only (Fig. 9): the report is independent of
   age, so reading it adds nothing.
4. Pre-training (Fig. 2 a-b): an image encoder aligned with the reports (``demo_vit_clip``)
   is pushed toward what reports say — cardiomegaly, effusion, opacities — and away from what
   they never mention (age); a self-supervised one (``demo_vit_ssl``) keeps whatever tells
   images apart, age cues included. So aligned should win on the diagnostic task at small
   sizes and lose on the auxiliary task.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from raypi import __version__, io
from raypi.data import _demo_draw, tables
from raypi.data._iu_reports import IUReport, load_reports
from raypi.splits import rng_for
from raypi.tasks import list_tasks

DEFAULT_N = 1200
DESIGN = 2
"""Version of the generator's causal design, in ``meta.json``; 2: soft prognostic label, local
hidden signs, a disjoint pre-training draw (``raypi.data._demo_pretrain``)."""
CARDIOMEGALY_SHARE = 0.2
AGE_RANGE = (20.0, 90.0)
AGE_BINS = (45.0, 65.0)
IMAGES_PER_PATIENT = ((1, 0.6), (2, 0.25), (3, 0.1), (4, 0.05))
DRAWN_TERMS = {
    "cardiomegaly": frozenset({"Cardiomegaly"}),
    "effusion": frozenset({"Pleural Effusion", "Costophrenic Angle"}),
    "opacity": frozenset({"Opacity", "Density", "Infiltrate"}),
    "nodule": frozenset({"Nodule", "Mass", "Granuloma", "Calcified Granuloma"}),
}
"""MeSH terms (per finding) that the radiograph draws."""
HIDDEN_TERMS = {
    "atelectasis": frozenset({"Pulmonary Atelectasis"}),
    "congestion": frozenset({"Pulmonary Congestion", "Pulmonary Edema"}),
    "airspace": frozenset({"Airspace Disease", "Pneumonia", "Consolidation"}),
    "obstructive": frozenset(
        {"Emphysema", "Pulmonary Emphysema", "Pulmonary Disease, Chronic Obstructive"}
    ),
    "vascular": frozenset({"Atherosclerosis", "Calcinosis", "Aorta", "Aorta, Thoracic"}),
    "other": frozenset(
        {"Catheters, Indwelling", "Tube, Inserted", "Pneumothorax", "Pulmonary Fibrosis"}
    ),
}
"""MeSH term groups that drive severity; the image shows each only as a faint local sign."""
HEART_RATIO = {True: (0.51, 0.045), False: (0.44, 0.04)}
"""Cardiothoracic ratio (mean, sd) drawn with and without cardiomegaly: overlapping on purpose
(the radiograph shows the label less reliably than the report states it; oracle AUC ~0.88)."""
SEVERITY_WEIGHTS = {"hidden": 1.0, "drawn": 0.3, "age": 0.3, "noise": 1.3}
"""Severity of the prognostic label: a report-only oracle reaches ~0.72 AUC (the study's
prognostic text-only AUCs are 57–76), and P(Y = 1 | a hidden group) is ~0.75, not ~1."""


def _patients(n: int, rng: np.random.Generator) -> np.ndarray:
    """Images per patient, summing to ``n``."""
    counts, probs = zip(*IMAGES_PER_PATIENT)
    sizes = rng.choice(counts, size=n, p=probs)  # n patients always hold at least n images
    last = int(np.searchsorted(np.cumsum(sizes), n))
    sizes = sizes[: last + 1].astype(np.int64)
    sizes[-1] -= int(sizes.sum()) - n
    return sizes


def _assign_reports(
    reports: tuple[IUReport, ...], n: int, rng, share: float = CARDIOMEGALY_SHARE
) -> list[IUReport]:
    """Pick ``n`` reports, ``share`` of them naming cardiomegaly, in random order.

    Reports repeat only when ``n`` exceeds what the collection holds of a kind.
    """
    positive = [report for report in reports if "Cardiomegaly" in report.mesh]
    negative = [report for report in reports if "Cardiomegaly" not in report.mesh]
    n_positive = round(share * n)
    chosen = []
    for pool, count in ((positive, n_positive), (negative, n - n_positive)):
        if count and not pool:
            raise ValueError(f"no reports left to draw {count} images from")
        rounds = -(-count // len(pool)) if count else 0
        order = np.concatenate([rng.permutation(len(pool)) for _ in range(rounds)])[:count]
        chosen.extend(pool[i] for i in order)
    return [chosen[i] for i in rng.permutation(n)]


def _image_rows(reports: list[IUReport], ages: np.ndarray, rng, heart_rng) -> pd.DataFrame:
    """Ground truth per image: drawn findings, heart size, hidden groups, severity."""
    rows = pd.DataFrame({"gt_age": ages})
    for finding, terms in DRAWN_TERMS.items():
        rows[f"gt_{finding}"] = [bool(report.mesh & terms) for report in reports]
    hidden = np.array([[bool(r.mesh & terms) for terms in HIDDEN_TERMS.values()] for r in reports])
    hidden = hidden.reshape(len(reports), len(HIDDEN_TERMS))
    rows["gt_hidden"] = hidden.sum(axis=1).astype(np.int64)
    rows["gt_hidden_groups"] = [
        "; ".join(g for g, present in zip(HIDDEN_TERMS, flags) if present) for flags in hidden
    ]
    drawn = rows[["gt_cardiomegaly", "gt_effusion", "gt_opacity"]].sum(axis=1)
    weights = SEVERITY_WEIGHTS
    noise = rng.normal(0.0, weights["noise"], len(rows))
    rows["gt_severity"] = (
        weights["hidden"] * rows["gt_hidden"]
        + weights["drawn"] * drawn
        + weights["age"] * (rows["gt_age"] - 55.0) / 20.0
        + noise
    )
    heart = np.array([HEART_RATIO[bool(flag)] for flag in rows["gt_cardiomegaly"]])
    rows["gt_heart_ratio"] = heart_rng.normal(heart[:, 0], heart[:, 1])
    return rows


def _labels(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        "demo_diagnostic": rows["gt_cardiomegaly"].to_numpy(np.int64),
        "demo_auxiliary": np.digitize(rows["gt_age"], AGE_BINS).astype(np.int64),
        "demo_prognostic": (rows["gt_severity"] > rows["gt_severity"].median()).to_numpy(np.int64),
    }


def draw_tables(n: int = DEFAULT_N, seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Draw the demo's dataset table (without images) and its labels.

    Args:
        n: Number of images.
        seed: Seed; the same (n, seed) gives the same tables (NumPy's generator streams).

    Returns:
        ``(dataset_df, {task_name: labels})``; ``dataset_df`` has the ``gt_*`` columns.
    """
    if n < 20:
        raise ValueError(f"the demo needs at least 20 images, got n={n}")
    reports = _assign_reports(load_reports(), n, rng_for("demo", seed, "reports"))
    frame = _draw("demo", n, seed, reports, ("demo-", "demo-p"))
    return frame, _labels(frame)


def _draw(stream: str, n: int, seed: int, reports: list[IUReport], prefixes) -> pd.DataFrame:
    """Patients, ages and ground truth of ``n`` images carrying ``reports``."""
    sizes = _patients(n, rng_for(stream, seed, "patients"))
    image_prefix, patient_prefix = prefixes
    patient_ids = np.repeat([f"{patient_prefix}{i:05d}" for i in range(len(sizes))], sizes)
    patient_age = rng_for(stream, seed, "age").uniform(*AGE_RANGE, len(sizes))
    drift = rng_for(stream, seed, "age-drift").uniform(-2.0, 2.0, n)
    ages = np.clip(np.repeat(patient_age, sizes) + drift, *AGE_RANGE)
    rows = _image_rows(reports, ages, rng_for(stream, seed, "severity"),
                       rng_for(stream, seed, "heart"))  # fmt: skip
    image_ids = [f"{image_prefix}{i:05d}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "image_id": image_ids,
            "patient_id": patient_ids,
            "image_path": [f"images/{image_id}.png" for image_id in image_ids],
            "report": [report.text for report in reports],
            "report_uid": [report.uid for report in reports],
            "mesh": ["; ".join(sorted(report.mesh)) for report in reports],
        }
    )
    return pd.concat([frame, rows], axis=1)


def _scene(row) -> _demo_draw.Scene:
    return _demo_draw.Scene(
        age=float(row.gt_age),
        heart_ratio=float(row.gt_heart_ratio),
        effusion=bool(row.gt_effusion),
        opacity=bool(row.gt_opacity),
        nodule=bool(row.gt_nodule),
        hidden=tuple(g for g in str(row.gt_hidden_groups).split("; ") if g),
    )


def _write_images(out: str, frame: pd.DataFrame, seed: int) -> None:
    from PIL import Image

    for row in frame.itertuples(index=False):
        pixels = _demo_draw.draw(_scene(row), rng_for("demo", seed, "image", row.image_id))
        buffer = _png(Image.fromarray(pixels))
        io.write_bytes(io.join(out, row.image_path), buffer)


def _png(image) -> bytes:
    import io as stdio

    buffer = stdio.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def build_demo(out: str | os.PathLike, n: int = DEFAULT_N, seed: int = 0) -> dict:
    """Build the demo dataset under ``out`` and its pre-training draw under ``out/pretrain``.

    ``out`` gets the dataset table, task tables, images and meta.json; the pre-training draw
    is a dataset root of its own (other patients, reports the task draw did not use).

    Args:
        out: Dataset root to create or overwrite (local or ``s3://``).
        n: Number of images.
        seed: Seed; the same (n, seed) gives byte-identical files (NumPy's generator streams).

    Returns:
        Summary: root, images, patients, patients with several images, unique reports,
        per-task class counts, and the seconds it took.
    """
    started = time.perf_counter()
    out = str(out)
    frame, labels = draw_tables(n, seed)
    _write_images(out, frame, seed)
    tables.write_dataset(out, frame)
    counts = {}
    for spec in list_tasks("demo"):
        task = frame[["image_id", "patient_id"]].assign(label=labels[spec.name])
        tables.write_task(out, spec, task, frame)
        counts[spec.name] = dict(
            zip(spec.classes, np.bincount(labels[spec.name], minlength=spec.num_classes).tolist())
        )
    meta = {"name": "demo", "tasks": list(counts), "n": n, "seed": seed, "design": DESIGN}
    tables.write_meta(out, {**meta, "raypi_version": __version__})
    from raypi.data._demo_pretrain import build_pretrain_draw

    build_pretrain_draw(out, n, seed)
    per_patient = frame.groupby("patient_id").size()
    return {
        "root": out,
        "images": int(n),
        "patients": int(len(per_patient)),
        "patients_with_several_images": int((per_patient > 1).sum()),
        "unique_reports": int(frame["report_uid"].nunique()),
        "tasks": counts,
        "pretrain_images": int(n),
        "seconds": round(time.perf_counter() - started, 2),
    }
