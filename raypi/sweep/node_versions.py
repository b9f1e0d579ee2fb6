"""The software a node runs, and the check that every node of a cluster runs the driver's.

Ray requires one Ray (and Python) version on every node, and a sweep's numbers are only
comparable when every trial ran the same raypi, torch and CUDA. Before training, the driver
asks each alive node for its versions (a zero-CPU task pinned to the node, importing what the
node's workers import) and stops, naming the node, when any differs from its own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from raypi import provenance

FIELDS = ("python", "raypi", "raypi_source", "ray", "torch", "cuda")
"""What is compared: versions, and a digest of raypi's own source files."""


class VersionMismatchError(RuntimeError):
    """A node of the cluster runs other software than the driver."""


def source_digest() -> str:
    """Return a short digest of raypi's Python source (paths and bytes, in path order)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def versions() -> dict[str, str]:
    """Return this process's Python, raypi (version and source digest), Ray, torch and CUDA."""
    import platform

    found = provenance.software()
    return {
        "python": platform.python_version(),
        "raypi": found["raypi_version"],
        "raypi_source": source_digest(),
        "ray": found["ray_version"],
        "torch": found["torch_version"],
        "cuda": found["cuda_version"],
    }


def node_versions(timeout_s: float = 300.0) -> dict[str, tuple[str, dict | str]]:
    """Return ``node id → (node address, versions or the error of asking)`` of alive nodes."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(versions)
    asked = {}
    for node in ray.nodes():
        if node["Alive"]:
            pinned = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ref = task.options(scheduling_strategy=pinned).remote()
            asked[node["NodeID"]] = (node["NodeManagerAddress"], ref)
    found = {}
    for node_id, (address, ref) in asked.items():
        try:
            found[node_id] = (address, ray.get(ref, timeout=timeout_s))
        except Exception as error:  # a node that cannot even say is refused with the reason
            found[node_id] = (address, f"could not be asked: {type(error).__name__}: {error}")
    return found


def check_cluster(timeout_s: float = 300.0) -> dict[str, str]:
    """Stop unless every alive node runs the driver's software; return the driver's versions.

    Raises:
        VersionMismatchError: Naming each differing node (id and address) and what differs.
    """
    mine = versions()
    problems = []
    for node_id, (address, theirs) in node_versions(timeout_s).items():
        if isinstance(theirs, str):
            problems.append(f"node {node_id} ({address}) {theirs[:300]}")
            continue
        differ = [f"{k} {theirs.get(k)} (driver: {mine[k]})" for k in FIELDS
                  if theirs.get(k) != mine[k]]  # fmt: skip
        if differ:
            problems.append(f"node {node_id} ({address}) runs " + ", ".join(differ))
    if problems:
        raise VersionMismatchError(
            "the cluster's nodes must run the driver's software (install constraints.txt on "
            "every node, sync the same tree); " + "; ".join(problems)
        )
    return mine
