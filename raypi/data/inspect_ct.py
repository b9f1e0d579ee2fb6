"""Build the INSPECT dataset root: AP DRRs of the CT volumes, impressions, three balanced tasks.

Tasks (labels read through the one mapping of ``_inspect_layout``):

- ``pulmonary_embolism`` from ``pe_positive_nlp``: unreadable/missing labels dropped (reported);
- ``ph_12month`` from ``12_month_PH`` and ``readmission`` from ``12_month_readmission``:
  censored rows removed;

then each is balanced to as many majority-class images (negatives, in practice) as minority ones.
``balance="patients"`` (the default, the study's: "balancing it by subsampling the number of
patients that did not experience the event") keeps every image of each patient with a minority
image and adds majority-only patients whole, in a seeded hash order of ``patient_id``, until the
majority images reach the minority's count; ``balance="images"`` subsamples majority images
one by one in a seeded hash order of ``image_id``. Either is the same on every run and machine.

Images are DRRs (``_drr``), rendered by a resumable Ray Data job (``_drr_job``) into
``out/images/<image_id>.jpg``; only images of at least one task are rendered. A volume whose DRR
fails is reported and its image replaced by the next one in the balancing order.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from raypi import __version__, io
from raypi.data import _drr, _drr_job, tables
from raypi.data import _inspect_layout as layout
from raypi.data._published import deterministic_order
from raypi.data._summary import Drops, task_summary
from raypi.tasks import get_task

TASK_LABELS = {
    "ph_12month": "ph_12month",
    "readmission": "readmission_12month",
    "pulmonary_embolism": "pe",
}
"""raypi task → label column (raypi name, see ``_inspect_layout.COLUMNS``)."""
RULES = {
    "ph_12month": "12_month_PH: censored removed; balanced by seeded subsampling of the majority",
    "readmission": "12_month_readmission: censored removed; balanced by seeded subsampling of "
    "the majority",
    "pulmonary_embolism": "pe_positive_nlp: balanced by seeded subsampling of the majority",
}
BALANCES = ("patients", "images")
"""How the majority class is subsampled: whole patients (the study's) or single images."""
MAX_ROUNDS = 5


@dataclass(frozen=True)
class InspectOptions:
    """Choices of the INSPECT build."""

    seed: int = 0
    """Seed of the balancing order."""
    balance: str = "patients"
    """``patients`` (the study's: majority-only patients subsampled whole) or ``images``."""
    drr: _drr.DrrSettings = field(default_factory=_drr.DrrSettings)
    """DRR geometry and JPEG encoding."""
    num_cpus_per_volume: float = 1.0
    """CPUs Ray reserves per Plastimatch call."""
    address: str | None = field(default=None, compare=False)
    """Ray cluster that renders the DRRs (``auto``, ``ray://…``); a local Ray when None. How
    the build runs, not what it builds: not part of the build's recorded choices."""

    def __post_init__(self) -> None:
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be one of {BALANCES}, got {self.balance!r}")


def _usable_studies(root: Path, studies: pd.DataFrame, drops: Drops) -> pd.DataFrame:
    """Drop (and report) unmatched, id-less, duplicate and volume-less studies."""
    drops.add(
        "study_mapping row without a labels row (impression_id)",
        studies.loc[studies["_in"] == "right_only", "impression_id"],
    )
    drops.add(
        "labels row without a study_mapping row (impression_id)",
        studies.loc[studies["_in"] == "left_only", "impression_id"],
    )
    studies = studies[studies["_in"] == "both"]
    no_id = studies["image_id"].isna() | studies["patient_id"].isna()
    drops.add("no image_id or patient id (impression_id)", studies.loc[no_id, "impression_id"])
    studies = studies[~no_id]
    repeated = studies["image_id"].duplicated(keep="first")
    drops.add(
        "image_id already used by another impression (impression_id)",
        studies.loc[repeated, "impression_id"],
    )
    studies = studies[~repeated].copy()
    studies["volume"] = [layout.volume_path(root, image_id) for image_id in studies["image_id"]]
    missing = studies["volume"].isna()
    drops.add("CT volume missing (image_id)", studies.loc[missing, "image_id"])
    return studies[~missing].reset_index(drop=True)


def balanced_task(
    studies: pd.DataFrame, label: str, seed: int, balance: str = "patients"
) -> tuple[pd.DataFrame, Drops]:
    """Select one task's rows: positives/negatives only, the majority subsampled to the minority.

    Args:
        studies: Usable studies with the label's outcome column.
        label: Outcome column (``"pe"``, ``"ph_12month"``, ``"readmission_12month"``).
        seed: Seed of the subsampling order.
        balance: ``patients`` (whole majority-only patients) or ``images`` (see the module).

    Returns:
        ``(table, drops)``; table has image_id, patient_id, label (1 = positive).
    """
    if balance not in BALANCES:
        raise ValueError(f"balance must be one of {BALANCES}, got {balance!r}")
    drops = Drops()
    outcome = studies[label]
    drops.add("censored", studies.loc[outcome == "censored", "image_id"])
    drops.add("label missing or unreadable", studies.loc[outcome == "missing", "image_id"])
    known = studies[outcome.isin(["positive", "negative"])].assign(
        label=lambda frame: (frame[label] == "positive").astype("int64")
    )
    known = known.astype({"patient_id": str})
    pick = _by_patients if balance == "patients" else _by_images
    table = pick(known, seed) if known["label"].nunique() == 2 else known.head(0)
    dropped = known.loc[~known["image_id"].isin(table["image_id"]), "image_id"]
    drops.add(f"balancing: majority class subsampled by {balance[:-1]}", dropped)
    table = table[["image_id", "patient_id", "label"]]
    return table.sort_values("image_id").reset_index(drop=True), drops


def _by_images(known: pd.DataFrame, seed: int) -> pd.DataFrame:
    keep = int(known["label"].value_counts().min())
    ordered = [deterministic_order(known[known["label"] == v], "image_id", seed) for v in (0, 1)]
    return pd.concat([frame.head(keep) for frame in ordered])


def _by_patients(known: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every image of patients with a minority image; majority-only patients added whole."""
    counts = known["label"].value_counts()
    minority = int(counts.idxmin()) if counts.iloc[0] != counts.iloc[-1] else 1
    has_minority = known.groupby("patient_id")["label"].transform(lambda s: (s == minority).any())
    kept = known[has_minority]
    wanted = int((kept["label"] == minority).sum()) - int((kept["label"] != minority).sum())
    others = known[~has_minority]
    patients = deterministic_order(others[["patient_id"]].drop_duplicates(), "patient_id", seed)
    sizes = others.groupby("patient_id").size().reindex(patients["patient_id"])
    # The fewest patients, in the seeded order, whose images reach the wanted count.
    take = int((sizes.cumsum().shift(fill_value=0) < wanted).sum()) if wanted > 0 else 0
    chosen = set(patients["patient_id"].head(take))
    return pd.concat([kept, others[others["patient_id"].isin(chosen)]])


def _tasks_with_drrs(studies: pd.DataFrame, out: str, options: InspectOptions, drops: Drops):
    """Select the tasks, render their DRRs, and reselect around failures until stable."""
    failed: dict[str, str] = {}
    for _ in range(MAX_ROUNDS):
        usable = studies[~studies["image_id"].isin(failed)]
        built = {
            task: balanced_task(usable, label, options.seed, options.balance)
            for task, label in TASK_LABELS.items()
        }
        needed = sorted(set().union(*(set(table["image_id"]) for table, _ in built.values())))
        volumes = dict(zip(studies["image_id"], studies["volume"]))
        jobs = [
            {
                "image_id": image_id,
                "volume": str(volumes[image_id]),
                "out": io.join(out, image_path(image_id)),
            }
            for image_id in needed
        ]
        _, new_failures = _drr_job.render_all(
            jobs, options.drr, options.num_cpus_per_volume, address=options.address
        )
        failed |= new_failures
        if not new_failures:
            break
    for image_id, error in failed.items():
        drops.add(f"DRR failed: {error}", [image_id])
    return built


def image_path(image_id: str) -> str:
    """Return a DRR's path relative to the dataset root."""
    return f"images/{image_id}.jpg"


def _dataset_table(studies: pd.DataFrame, impressions: pd.DataFrame, ids: set[str]) -> pd.DataFrame:
    text = impressions.drop_duplicates("impression_id").set_index("impression_id")["impression"]
    rows = studies[studies["image_id"].isin(ids)].sort_values("image_id")
    report = (
        rows["impression_id"]
        .map(text)
        .map(lambda value: " ".join(value.split()) or None if isinstance(value, str) else None)
    )
    table = pd.DataFrame(
        {
            "image_id": rows["image_id"].astype(str),
            "patient_id": rows["patient_id"].astype(str),
            "image_path": rows["image_id"].map(image_path),
            "report": report,
            "impression_id": rows["impression_id"].astype(str),
        }
    )
    for column in ("study_time", "split"):
        if column in rows.columns:
            name = "split_official" if column == "split" else column
            table[name] = rows[column].astype("string").to_numpy()
    return table.reset_index(drop=True)


def build_inspect(
    root: str | os.PathLike, out: str | os.PathLike, options: InspectOptions | None = None
) -> dict:
    """Build the INSPECT dataset root (DRRs, dataset table, three task tables, summary).

    Args:
        root: INSPECT folder as released (either release; see ``_inspect_layout``).
        out: Dataset root to write (local or ``s3://``); rerunning resumes the DRRs.
        options: Build choices; defaults when None.

    Returns:
        The build summary (also written to ``out/build_summary.json``).

    Raises:
        TableError: If a published file or column is missing.
        PlastimatchMissing: If DRRs are needed and Plastimatch is not installed.
    """
    options = options or InspectOptions()
    root, out = Path(root), str(out)
    studies, impressions = layout.read_studies(root)
    drops = Drops()
    studies = _usable_studies(root, studies, drops)
    built = _tasks_with_drrs(studies, out, options, drops)
    ids = set().union(*(set(table["image_id"]) for table, _ in built.values()))
    dataset = _dataset_table(studies, impressions, ids)
    tables.write_dataset(out, dataset)
    summaries = {}
    for name, (table, task_drops) in built.items():
        tables.write_task(out, get_task(name), table, dataset)
        summaries[name] = task_summary(get_task(name), table, task_drops, RULES[name])
    summary = {
        "name": "inspect",
        "out": out,
        "images": int(len(dataset)),
        "patients": int(dataset["patient_id"].nunique()),
        "reports": {
            "impression": int(dataset["report"].notna().sum()),
            "missing": int(dataset["report"].isna().sum()),
        },
        "dropped": drops.to_dict(),
        "tasks": summaries,
        "options": {k: v for k, v in asdict(options).items() if k != "address"},
        "raypi_version": __version__,
    }
    io.write_json(io.join(out, "build_summary.json"), summary)
    tables.write_meta(
        out, {"name": "inspect", "tasks": list(built), "summary": "build_summary.json"}
    )
    return summary
