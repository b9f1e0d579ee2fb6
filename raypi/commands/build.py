"""``raypi build mimic|inspect``: turn the published raw folders into dataset and task tables."""

from __future__ import annotations

import argparse

from raypi.commands import _options
from raypi.data.tables import TableError


def _size(value: str) -> int | None:
    """Parse an image count, or ``all`` for no limit."""
    return None if value.lower() == "all" else int(value)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``build`` command and its ``mimic`` / ``inspect`` subcommands."""
    parser = subparsers.add_parser(
        "build",
        help="build a dataset root from raw MIMIC or INSPECT folders",
        description="Build dataset.parquet, tasks/*.parquet, meta.json and build_summary.json "
        "from the folders as their publishers ship them.",
    )
    which = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    mimic = which.add_parser(
        "mimic",
        help="MIMIC 5x1200, Age and 3-Day Discharge from MIMIC-CXR-JPG/MIMIC-CXR/MIMIC-IV",
        description="Tasks mimic_5x1200, age and discharge_3day.",
    )
    mimic.add_argument("--jpg", required=True, help="MIMIC-CXR-JPG 2.1.0 folder (files/, *.csv.gz)")
    mimic.add_argument(
        "--reports", required=True, help="MIMIC-CXR 2.1.0 folder (files/ or mimic-cxr-reports.zip)"
    )
    mimic.add_argument("--mimic-iv", required=True, help="MIMIC-IV 3.1 folder (hosp/*.csv.gz)")
    mimic.add_argument("--out", required=True, help="dataset root to write (local or s3://)")
    mimic.add_argument(
        "--image-root", default=None,
        help="where every node reads the MIMIC-CXR-JPG images (the folder holding files/, "
        "local or s3://, e.g. its copy on S3), recorded in meta.json (default: --jpg)",
    )  # fmt: skip
    mimic.add_argument("--seed", type=int, default=0, help="seed of the deterministic selections")
    mimic.add_argument(
        "--age-images",
        type=_size,
        default="35242",
        help="Age task size, a seeded subsample ('all' keeps every image; default: the study's)",
    )
    mimic.add_argument(
        "--discharge-images",
        type=_size,
        default="all",
        help="3-Day Discharge size, a seeded subsample (default: all eligible images)",
    )
    mimic.add_argument(
        "--per-class",
        type=int,
        nargs=2,
        default=(1000, 200),
        metavar=("TRAIN", "VAL"),
        help="MIMIC 5x1200 images per class (default: the study's 1000 200)",
    )
    mimic.add_argument(
        "--labeller",
        choices=("chexpert", "negbio"),
        default="chexpert",
        help="label file of MIMIC 5x1200 (default: chexpert)",
    )
    mimic.set_defaults(func=run)
    inspect = which.add_parser(
        "inspect",
        help="12-Month PH, Readmission and Pulmonary Embolism from INSPECT (CT → DRR)",
        description="Renders AP DRRs with Plastimatch as a resumable Ray Data job.",
    )
    inspect.add_argument("--root", required=True, help="INSPECT folder (TSV tables + CTPA/)")
    inspect.add_argument("--out", required=True, help="dataset root to write (local or s3://)")
    inspect.add_argument("--seed", type=int, default=0, help="seed of the balancing order")
    inspect.add_argument("--resolution", type=int, default=512, help="DRR pixels per side")
    inspect.add_argument(
        "--balance",
        choices=("patients", "images"),
        default="patients",
        help="balance each task by subsampling whole majority-class patients (the study's, "
        "default) or single images",
    )
    inspect.add_argument(
        "--cpus-per-volume", type=float, default=1.0, help="CPUs Ray reserves per Plastimatch call"
    )
    _options.add_address(inspect, "the DRRs")
    inspect.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the requested dataset and print its summary; return the exit code."""
    from raypi.data._drr import PlastimatchMissing
    from raypi.data._summary import format_summary

    try:
        summary = _mimic(args) if args.dataset == "mimic" else _inspect(args)
    except (TableError, PlastimatchMissing) as error:
        print(f"raypi build {args.dataset}: {error}")
        return 2
    print(format_summary(summary))
    return 0


def _mimic(args: argparse.Namespace) -> dict:
    from raypi.data.mimic import MimicOptions, build_mimic

    options = MimicOptions(
        seed=args.seed,
        per_class=tuple(args.per_class),
        age_images=args.age_images,
        discharge_images=args.discharge_images,
        labeller=args.labeller,
        image_root=args.image_root,
    )
    return build_mimic(args.jpg, args.reports, args.mimic_iv, args.out, options)


def _inspect(args: argparse.Namespace) -> dict:
    from raypi.data._drr import DrrSettings
    from raypi.data.inspect_ct import InspectOptions, build_inspect

    options = InspectOptions(
        seed=args.seed,
        balance=args.balance,
        drr=DrrSettings(resolution=args.resolution),
        num_cpus_per_volume=args.cpus_per_volume,
        address=args.address,
    )
    return build_inspect(args.root, args.out, options)
