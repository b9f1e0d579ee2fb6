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

FIELDS = ("python", "raypi", "ray", "torch", "cuda")
"""What is compared. ``versions()`` also reports ``raypi_source`` (a digest of raypi's source
files), not compared: in a Ray Job on this machine's fake cluster the driver's and a worker's
digest differed for a reason not yet found, so it is not yet a ground for refusing."""


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
    """Return ``node id → (node address, versions or the error of asking)`` of alive nodes.

    The driver's own node is not asked: its workers run on the driver's machine, from its
    installation (so a local Ray costs no extra task). A node that leaves before it answers
    (an idle autoscaled worker removed meanwhile) is left out: nothing will run there.
    """
    import ray

    own = ray.get_runtime_context().get_node_id()
    return answers(ask([n for n in ray.nodes() if n["Alive"] and n["NodeID"] != own]), timeout_s)


def ask(nodes: list[dict]) -> dict:
    """Send each of ``nodes`` (``ray.nodes()`` entries) a task pinned to it; return its refs."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(versions)
    asked = {}
    for node in nodes:
        pinned = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ref = task.options(scheduling_strategy=pinned).remote()
        asked[node["NodeID"]] = (node["NodeManagerAddress"], ref)
    return asked


def answers(asked: dict, timeout_s: float) -> dict[str, tuple[str, dict | str]]:
    """Wait for what :func:`ask` sent; a node gone meanwhile is left out."""
    import ray

    found = {}
    for node_id, (address, ref) in asked.items():
        try:
            found[node_id] = (address, ray.get(ref, timeout=timeout_s))
        except Exception as error:  # a node that cannot even say is refused with the reason
            if _alive(ray, node_id):
                found[node_id] = (address, f"could not be asked: {type(error).__name__}: {error}")
    return found


def _alive(ray, node_id: str) -> bool:
    return any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes())


def check_cluster(timeout_s: float = 300.0) -> dict[str, str]:
    """Stop unless every alive node runs the driver's software; return the driver's versions.

    Raises:
        VersionMismatchError: Naming each differing node (id and address) and what differs.
    """
    mine = versions()
    problems = [_difference(node_id, address, theirs, mine)
                for node_id, (address, theirs) in node_versions(timeout_s).items()]  # fmt: skip
    problems = [problem for problem in problems if problem]
    if problems:
        raise VersionMismatchError(_REFUSAL + "; ".join(problems))
    return mine


_REFUSAL = (
    "the cluster's nodes must run the driver's software (install constraints.txt on every "
    "node, sync the same tree); "
)


def _difference(node_id: str, address: str, theirs: dict | str, mine: dict) -> str:
    """Return what node ``node_id`` runs differently from ``mine`` ("" when nothing)."""
    if isinstance(theirs, str):
        return f"node {node_id} ({address}) {theirs[:300]}"
    differ = [
        f"{k} {theirs.get(k)} (driver: {mine[k]})" for k in FIELDS if theirs.get(k) != mine[k]
    ]
    return f"node {node_id} ({address}) runs " + ", ".join(differ) if differ else ""


class NodeVersionGuard:
    """A Tune stopper that checks every node joining during a sweep (autoscaled workers).

    The nodes up when it is made were checked by :func:`check_cluster`; every
    ``interval_s`` it asks each node that joined since for its versions (without waiting),
    and stops the experiment as soon as one differs. ``raise_if_refused`` then raises the
    error naming it. Plugged into Tune as a stopper (``__call__``/``stop_all``).
    """

    def __init__(self, mine: dict[str, str], interval_s: float = 10.0) -> None:
        import ray

        self.mine, self.interval_s = mine, interval_s
        self.known = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
        self.pending: dict = {}
        self.error: VersionMismatchError | None = None
        self.last = 0.0

    def __call__(self, trial_id: str, result: dict) -> bool:
        """Stop no single trial (the whole experiment stops in ``stop_all``)."""
        return False

    def stop_all(self) -> bool:
        """Ask new nodes, collect answers; True once a node differs."""
        import time

        import ray

        if self.error is None and time.monotonic() - self.last >= self.interval_s:
            self.last = time.monotonic()
            self._ask_new(ray)
            self._collect(ray)
        return self.error is not None

    def _ask_new(self, ray) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = ray.remote(num_cpus=0, max_retries=0)(versions)
        for node in ray.nodes():
            if node["Alive"] and node["NodeID"] not in self.known:
                self.known.add(node["NodeID"])
                pinned = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
                ref = task.options(scheduling_strategy=pinned).remote()
                self.pending[ref] = (node["NodeID"], node["NodeManagerAddress"])

    def _collect(self, ray) -> None:
        done, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
        for ref in done:
            node_id, address = self.pending.pop(ref)
            try:
                theirs = ray.get(ref)
            except Exception as error:  # a node that cannot say what it runs is refused
                if not _alive(ray, node_id):
                    continue  # removed meanwhile (an idle autoscaled worker): nothing runs there
                theirs = f"could not be asked: {type(error).__name__}: {error}"
            problem = _difference(node_id, address, theirs, self.mine)
            if problem:
                self.error = VersionMismatchError(_REFUSAL + problem)

    def raise_if_refused(self) -> None:
        """Raise the mismatch that stopped the experiment, if one did."""
        if self.error is not None:
            raise self.error
