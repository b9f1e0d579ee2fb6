"""What raypi reads on a Ray cluster's head node (run there as a Ray task)."""

from __future__ import annotations

import os
from pathlib import Path


def autoscaler_config(gcs_address: str) -> tuple[str | None, str | None]:
    """Return the text and path of the autoscaling config of the cluster at ``gcs_address``.

    Ray starts its autoscaler (``autoscaler/…/monitor.py``) on the head with
    ``--gcs-address`` and, when the cluster autoscales, ``--autoscaling-config=FILE``; the
    file is read from there (relative paths from the monitor's folder). Several clusters may
    run on one machine: only the monitor of this GCS counts (its port, when the host differs).

    Args:
        gcs_address: The cluster's GCS ``host:port``.

    Returns:
        ``(text, path)``, or ``(None, None)`` when this cluster's monitor has no config.
    """
    monitors = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not any(word.endswith(os.path.join("autoscaler", "_private", "monitor.py"))
                   or word.endswith(os.path.join("autoscaler", "v2", "monitor.py"))
                   for word in words):  # fmt: skip
            continue
        flags = dict(
            word[2:].split("=", 1) for word in words if word.startswith("--") and "=" in word
        )
        monitors.append((entry, flags))
    port = gcs_address.rpartition(":")[2]
    exact = [m for m in monitors if m[1].get("gcs-address") == gcs_address]
    same_port = [m for m in monitors if m[1].get("gcs-address", "").rpartition(":")[2] == port]
    mine = exact or same_port
    if not mine or "autoscaling-config" not in mine[0][1]:
        return None, None
    entry, flags = mine[0]
    path = os.path.expanduser(flags["autoscaling-config"])
    if not os.path.isabs(path):
        path = os.path.join(os.readlink(entry / "cwd"), path)
    return Path(path).read_text(), path
