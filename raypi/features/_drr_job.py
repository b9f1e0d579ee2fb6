"""The DRR step of the INSPECT build as a Ray Data job: one CPU task per CT volume, resumable.

Resumable because every JPEG is written atomically (temporary name, then rename) and a rerun
skips volumes whose JPEG already exists — a killed job loses only the volumes in flight. It
lives in ``raypi.features`` beside the other Ray Data job, so that ``raypi.data`` never imports
Ray; ``raypi.data.inspect_ct`` calls it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from raypi import cluster, io
from raypi.data import _drr


def _render_row(row: dict[str, Any]) -> dict[str, Any]:
    settings = _drr.DrrSettings(**row["settings"])
    try:
        _drr.render(row["volume"], row["out"], settings)
        return {"image_id": row["image_id"], "error": ""}
    except (_drr.DrrError, _drr.PlastimatchMissing, OSError) as error:
        return {"image_id": row["image_id"], "error": str(error)[:300]}


def render_all(
    jobs: list[dict[str, str]],
    settings: _drr.DrrSettings,
    num_cpus_per_volume: float = 1.0,
    address: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Render the DRRs of ``jobs`` that are not on disk yet, in parallel on the Ray cluster.

    Joins the cluster at ``address``, or starts a local Ray (``raypi.cluster.connect``).

    Args:
        jobs: ``[{"image_id", "volume", "out"}]``; ``out`` is the JPEG destination.
        settings: DRR geometry and encoding.
        num_cpus_per_volume: CPUs reserved per Plastimatch call.
        address: Ray cluster address; a local Ray when None.

    Returns:
        ``(rendered_now, failed)``: image ids rendered by this call, and image id → error.

    Raises:
        PlastimatchMissing: If Plastimatch is not installed here (checked before starting).
    """
    todo = [job for job in jobs if not io.exists(job["out"])]
    if not todo:
        return [], {}
    _drr.plastimatch()
    import ray

    cluster.connect(address)
    rows = [{**job, "settings": asdict(settings)} for job in todo]
    # One volume per block up to 1,000 blocks: fine-grained tasks without swamping the scheduler.
    dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 1000))
    results = dataset.map(_render_row, num_cpus=num_cpus_per_volume).take_all()
    failed = {result["image_id"]: result["error"] for result in results if result["error"]}
    rendered = [result["image_id"] for result in results if not result["error"]]
    return rendered, failed
