"""Extract frozen-encoder features of a dataset into a feature store with Ray Data.

Per encoder: read the dataset table → find the (image, view) rows the store still lacks →
decode each image once and preprocess its views in CPU tasks → encode in an actor pool (GPU
fractions from the encoder's resource hint when GPUs exist) → one Parquet shard per batch,
written atomically by the actor → a manifest. Reports go through text encoders the same way.

Resuming is the normal path: a rerun reads the keys already stored and extracts only what is
missing, so a killed run costs only its unfinished batches. Rows that fail (missing or
undecodable image, failed preprocessing; null or empty report) are reported by ``image_id``,
listed in the manifest's ``skipped``, and retried by the next run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from raypi import cluster
from raypi.data import images as image_roots
from raypi.data import tables
from raypi.data.tables import read_dataset
from raypi.features import _resume, _tokens, schema, store, trust

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractOptions:
    """How to extract and store features (shared by every encoder of one run)."""

    views: int = 0
    """Augmented views per image (view 0, the evaluation view, is always extracted)."""
    dtype: str = field(default="fp16", metadata={"choices": tuple(schema.DTYPES)})
    """Storage dtype of tokens: ``fp16``, ``bf16`` or ``fp32``."""
    tokens: str = field(default="all", metadata={"choices": _tokens.MODES})
    """Image tokens to keep: ``all``, ``cls`` (CLS token only) or ``mean`` (patch mean only)."""
    pool: int = 1
    """Average-pool the patch grid in ``pool × pool`` windows (``tokens="all"`` only)."""
    max_text_length: int = 128
    """Truncation length of reports, in tokens (special tokens included)."""
    seed: int = 0
    """Base seed of the augmented views."""
    batch_size: int | None = None
    """Rows per encoder forward pass (= per shard); the encoder's hint when None."""
    overwrite: bool = False
    """Rewrite a store made with another encoder identity instead of refusing it."""
    gpu_memory_gb: float = 16.0
    """Memory of one GPU, to turn an encoder's memory hint into a GPU fraction."""
    cpu_threads: int | None = None
    """Torch threads of a CPU encoder actor; the cluster's CPU count when None."""
    gpu: str = field(default="auto", metadata={"choices": ("auto", "yes", "no")})
    """Encode on GPUs: ``auto`` = when the cluster has GPUs or its autoscaler may launch GPU
    nodes (``raypi.cluster.gpu_decision``, the rule sweeps use)."""
    verify: bool = False
    """Read every stored page (checking its checksum) before resuming, not only each shard's
    footer; corrupt shards are removed and their rows encoded again either way."""
    random_weights: bool = False
    """Extract an encoder that has published weights from its random initialisation when no
    weights are given or found (refused otherwise); the manifest records it, and a sweep on
    such features must say ``random_weights: true``."""


@dataclass(frozen=True)
class EncoderSummary:
    """What one encoder's extraction did."""

    encoder: str
    """Encoder name."""
    rows_written: int
    """(image, view) rows — or reports — encoded and written in this run."""
    rows_skipped: int
    """Rows reported as skipped (listed with reasons in the manifest)."""
    rows_total: int
    """Rows in the store after the run."""
    seconds: float
    """Wall time of the pipeline."""
    forward_seconds: float
    """Time spent in the encoder's forward passes (summed over actors)."""
    bytes_written: int
    """Size of the shards written in this run."""

    @property
    def images_per_second(self) -> float:
        """Rows encoded per second of wall time."""
        return self.rows_written / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """Return a one-line human summary."""
        return (
            f"{self.encoder}: {self.rows_written} rows written in {self.seconds:.1f} s "
            f"({self.images_per_second:.1f}/s), {self.bytes_written / 2**20:.1f} MiB, "
            f"{self.rows_skipped} skipped, {self.rows_total} in store"
        )


def extract(
    dataset_root: str,
    encoders: Sequence,
    out: str,
    views: int = 0,
    *,
    weights: dict[str, str] | None = None,
    address: str | None = None,
    verbose: bool = False,
    image_root: str | None = None,
    **options,
) -> list[EncoderSummary]:
    """Extract the features of every encoder into ``out``, resuming what is there.

    Args:
        dataset_root: Dataset folder with ``dataset.parquet`` (local or ``s3://``).
        encoders: Encoder names (or ``EncoderSpec`` objects), image and text alike.
        out: Feature store folder (local or ``s3://``); one subfolder per encoder.
        views: Augmented views per image besides view 0.
        weights: Weights file/folder per encoder name; otherwise ``spec.default_weights()``
            when it exists. Without either, only encoders with no published weights (tiny
            ones) or a run with ``random_weights`` use the random initialisation
            (``raypi.features.trust``).
        address: Ray cluster to join (``auto``, ``ray://…``); a local Ray when None (see
            ``raypi.cluster.connect``).
        verbose: Let Ray Data print its execution plans and progress to the console (they
            always go to Ray's log files); raypi logs one summary line per encoder.
        image_root: Where to read the table's relative image paths from instead of the
            dataset's own image root (``meta.json``'s ``image_root``, else the dataset root),
            e.g. their copy on S3 that every node reads.
        **options: Fields of :class:`ExtractOptions`.

    Returns:
        One summary per encoder.

    Raises:
        StoreError: A store exists with another identity and ``overwrite`` is False.
        WeightsError: An encoder without weights and without ``random_weights`` (before Ray
            starts).
    """
    from raypi.encoders import get_encoder
    from raypi.features._identity import store_identity  # torch: only when extracting

    config = replace(ExtractOptions(views=views), **options)
    _validate(config)
    table = read_dataset(dataset_root)
    if image_root:
        image_roots.require_relative_paths(table, tables.dataset_file(dataset_root), image_root)
    images = image_roots.image_root(dataset_root, image_root)
    specs = [get_encoder(name) if isinstance(name, str) else name for name in encoders]
    paths = [trust.weights_of(spec, weights or {}, config.random_weights) for spec in specs]
    # Every encoder is built from its weights before Ray starts: wrong weights stop here.
    identities = [store_identity(spec, path, config) for spec, path in zip(specs, paths)]
    cluster.connect(address)
    decision = cluster.gpu_decision(config.gpu)
    print(decision.line(), flush=True)
    summaries = []
    with _ray_data_console(verbose):
        for spec, path, identity in zip(specs, paths, identities):
            summary = _extract_one(
                spec, path, identity, table, (dataset_root, images), out, config, decision
            )
            log.info("%s", summary.line())
            summaries.append(summary)
    return summaries


@contextlib.contextmanager
def _ray_data_console(verbose: bool):
    """Hold Ray Data's console logging at warnings unless ``verbose`` (its files keep all)."""
    import ray.data  # noqa: F401 - importing it configures its loggers: do that first

    logger = logging.getLogger("ray.data")
    before = logger.level
    if not verbose:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)


def _validate(config: ExtractOptions) -> None:
    """Reject impossible options before any work starts."""
    schema.storage_dtype(config.dtype)
    if config.views < 0:
        raise ValueError(f"views must be >= 0 (augmented views besides view 0), got {config.views}")
    if config.max_text_length < 2:
        raise ValueError(f"max_text_length must be >= 2, got {config.max_text_length}")
    if config.batch_size is not None and config.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
    if config.tokens not in _tokens.MODES or config.pool < 1:
        raise ValueError(f"tokens must be one of {_tokens.MODES} and pool >= 1")


def _extract_one(spec, weights_path, identity, table, roots, out, config, decision):
    from raypi.features import _pipeline  # Ray loads only when extracting

    dataset_root, images = roots
    manifest = _resume.open_store(out, identity, config.overwrite)
    _resume.remove_corrupt(out, spec.name, config.verify)
    done_views = list(manifest["views"]) if manifest else []
    if spec.kind == "image":
        wanted_views = sorted(set(done_views) | set(range(config.views + 1)))
        todo, no_report = _resume.missing_images(table, out, spec.name, wanted_views), []
    else:
        wanted_views = [0]
        todo, no_report = _resume.missing_reports(table, out, spec.name)
    # Until the run ends, the manifest keeps the views of the last *completed* run.
    progress = {"views": wanted_views, "rows": int(todo.attrs["rows"])}
    store.write_manifest(
        out,
        spec.name,
        {
            **(manifest or {}),
            **identity,
            "views": done_views,
            "complete": False,
            "in_progress": progress,
        },
    )
    start = time.perf_counter()
    statuses = _pipeline.run(spec, weights_path, identity, todo, images, out, config, decision)
    seconds = time.perf_counter() - start
    failed = statuses[statuses["error"] != ""]
    rows_total = _resume.finish(
        out, spec, identity, wanted_views, no_report + _resume.skip_entries(failed), dataset_root
    )
    return EncoderSummary(
        encoder=spec.name, rows_written=int((statuses["error"] == "").sum()),
        rows_skipped=len(failed) + len(no_report), rows_total=rows_total, seconds=seconds,
        forward_seconds=float(statuses["seconds"].sum()),
        bytes_written=int(statuses["bytes"].sum()),
    )  # fmt: skip
