"""The DRR step of the INSPECT build as a Ray Data job: one CPU task per CT volume, resumable.

Resumable because every JPEG is written atomically (temporary name, then rename) and a rerun
skips volumes whose JPEG already exists — a killed job loses only the volumes in flight. Ray is
reached through ``raypi.cluster.map_rows``, so ``raypi.data`` never imports Ray itself.
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
    rows = [{**job, "settings": asdict(settings)} for job in todo]
    results = cluster.map_rows(rows, _render_row, num_cpus=num_cpus_per_volume, address=address)
    failed = {result["image_id"]: result["error"] for result in results if result["error"]}
    rendered = [result["image_id"] for result in results if not result["error"]]
    return rendered, failed
