"""The GPU rules every stage shares: GPU shares, the big-GPU resource, and ``--gpu auto``.

``--gpu auto`` means "on GPUs wherever the cluster has them or can launch them": decided from
the GPUs up now and the node types the autoscaler may launch (its own config on the head, or
a cluster file). The sweep, its ``--dry-run`` and extraction decide by :func:`gpu_decision`.
Ray is imported inside the functions.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

BIG_GPU_RESOURCE = "big_gpu"
"""Custom resource of 40 GB+ GPU nodes (``cluster.yaml``); its count equals the node's GPUs.
Work that needs a big GPU (RAD-DINO extraction and its heads) asks for it, so it lands only
there."""

ORDINARY_GPU_RESOURCE = "gpu_16gb"
"""Custom resource of the ordinary (16 GB) GPU node type of ``cluster.yaml``. With
``--ordinary-gpu-resource gpu_16gb`` ordinary GPU trials also ask for it, so they — and the
nodes the autoscaler launches for them — stay off the big-GPU nodes, which Ray's autoscaler
would otherwise launch for them as readily (both types fit a GPU fraction)."""

GPU_SHARES = (0.125, 0.25, 0.5, 1.0)
"""The GPU fractions raypi asks for: a whole GPU divides into 8, 4, 2 or 1 equal slots."""


def gpu_share(memory_gb: float, gpu_memory_gb: float) -> float:
    """Return the smallest of ``GPU_SHARES`` whose slice of one GPU holds ``memory_gb``.

    The one GPU-share rule of raypi: extraction actors and training trials both use it, so
    a GPU is always cut into equal slots and ``floor(1 / share)`` of them fit on it.

    Args:
        memory_gb: Memory the work needs.
        gpu_memory_gb: Memory of one GPU of the node type.

    Returns:
        The fraction of a GPU to request.
    """
    need = memory_gb / gpu_memory_gb
    return next((share for share in GPU_SHARES if need <= share + 1e-12), 1.0)


def resources() -> dict[str, float]:
    """Return the connected cluster's total resources (``CPU``, ``GPU``, ``big_gpu``, …)."""
    import ray

    return {name: float(value) for name, value in ray.cluster_resources().items()}


GPU_SETTINGS = ("auto", "yes", "no")
"""``--gpu``: ``auto`` = on GPUs wherever the cluster has them or can launch them."""


@dataclass(frozen=True)
class GpuDecision:
    """Whether work asks for GPUs, and what that was decided from."""

    use_gpu: bool
    """Trials and encoder actors ask for GPU shares."""
    setting: str
    """``--gpu``: ``auto``, ``yes`` or ``no``."""
    gpus_present: float | None
    """GPUs of the cluster's nodes when decided (None: no cluster was asked)."""
    launchable: tuple[str, ...]
    """Node types with GPUs that the autoscaler may launch."""
    source: str | None
    """Where the node types were read (the autoscaler's config, or a cluster file)."""
    node_resources: dict = field(default_factory=dict)
    """Resources of each node type in ``launchable`` (to size work for the first one)."""

    def launch_node(self, big: bool) -> dict:
        """Return the resources of the launchable GPU node type work would start on.

        Args:
            big: The work needs a big GPU: only types declaring ``BIG_GPU_RESOURCE`` count.

        Returns:
            The node type's resources (the most GPUs first); empty when none fits.
        """
        kinds = [r for r in self.node_resources.values() if not big or BIG_GPU_RESOURCE in r]
        return max(kinds, key=lambda r: float(r.get("GPU", 0)), default={})

    def line(self) -> str:
        """Return the decision as one line for the console."""
        where = "no GPU node types known"
        if self.launchable:
            where = f"GPU node types {', '.join(self.launchable)} in {self.source}"
        elif self.source:
            where = f"no GPU node types in {self.source}"
        present = "unknown" if self.gpus_present is None else f"{self.gpus_present:g}"
        run_on = "GPUs" if self.use_gpu else "CPUs only"
        return f"raypi: --gpu {self.setting}: work runs on {run_on} ({present} GPUs up; {where})"

    def record(self) -> dict:
        """Return the decision as plain values (for ``sweep.yaml``)."""
        values = asdict(self)
        values["launchable"] = list(self.launchable)
        values["node_resources"] = {k: dict(v) for k, v in self.node_resources.items()}
        return values


def decide_gpu(
    setting: str, gpus_present: float | None, config: dict | None, source: str | None = None
) -> GpuDecision:
    """Apply raypi's one GPU rule: ``auto`` uses GPUs if any node has or may launch some.

    Args:
        setting: ``auto``, ``yes`` or ``no``.
        gpus_present: GPUs of the nodes up now (None when unknown).
        config: The autoscaler's (or a cluster file's) config, None when there is none.
        source: Where ``config`` was read.

    Returns:
        The decision.
    """
    if setting not in GPU_SETTINGS:
        raise ValueError(f"--gpu must be one of {GPU_SETTINGS}, got {setting!r}")
    launchable = gpu_node_types(config) if config else ()
    use = {"yes": True, "no": False}.get(setting, bool(gpus_present) or bool(launchable))
    types = (config or {}).get("available_node_types", {})
    kinds = {name: dict(types[name].get("resources") or {}) for name in launchable}
    return GpuDecision(use, setting, gpus_present, launchable, source, kinds)


def gpu_node_types(config: dict) -> tuple[str, ...]:
    """Return the node types of a cluster config that have GPUs and may be started.

    The head type counts when it declares GPUs; a worker type when it also may have workers
    (its ``max_workers``, else the cluster's, above 0).
    """
    types = config.get("available_node_types") or {}
    head, default_max = config.get("head_node_type"), config.get("max_workers", 0)
    found = []
    for name, kind in types.items():
        gpus = float((kind.get("resources") or {}).get("GPU", 0))
        may_start = name == head or int(kind.get("max_workers", default_max)) > 0
        if gpus > 0 and may_start:
            found.append(name)
    return tuple(sorted(found))


def read_cluster_file(path: str) -> dict:
    """Return a cluster (or autoscaling) YAML as a dict, checking it has node types.

    Raises:
        ValueError: The file is no mapping with ``available_node_types``.
    """
    import yaml

    with open(os.path.expanduser(path)) as handle:
        config = yaml.safe_load(handle)
    if not isinstance(config, dict) or not isinstance(config.get("available_node_types"), dict):
        raise ValueError(f"{path}: not a Ray cluster file (expected `available_node_types`)")
    return config


def gpu_decision(setting: str, cluster_file: str | None = None) -> GpuDecision:
    """Decide on the connected cluster: its GPUs and the autoscaler's GPU node types.

    Args:
        setting: ``auto``, ``yes`` or ``no``.
        cluster_file: A cluster file to read the node types from instead of the autoscaler's
            own config on the head.

    Returns:
        The decision.
    """
    if cluster_file:
        config, source = read_cluster_file(cluster_file), cluster_file
    else:
        config, source = head_autoscaler_config()
    return decide_gpu(setting, resources().get("GPU", 0.0), config, source)


def local_gpu_decision(setting: str, cluster_file: str | None = None) -> GpuDecision:
    """Decide without a cluster: the GPUs a local Ray would have, or a cluster file's types."""
    if cluster_file:
        return decide_gpu(setting, None, read_cluster_file(cluster_file), cluster_file)
    from ray._private.accelerators import get_accelerator_manager_for_resource

    manager = get_accelerator_manager_for_resource("GPU")
    visible = manager.get_current_process_visible_accelerator_ids()
    count = len(visible) if visible is not None else manager.get_current_node_num_accelerators()
    return decide_gpu(setting, float(count), None)


def head_autoscaler_config(timeout_s: float = 60.0) -> tuple[dict | None, str | None]:
    """Return the autoscaler's config of the connected cluster and its path on the head.

    Read on the head node itself: the autoscaler (Ray's ``monitor.py`` of this cluster's
    GCS) is started with ``--autoscaling-config=FILE`` — ``~/ray_bootstrap_config.yaml`` on
    a head that ``ray up`` started. ``(None, None)`` when the cluster has no autoscaler.
    """
    import ray

    from raypi import _head

    task = ray.remote(_head.autoscaler_config).options(
        num_cpus=0, resources={"node:__internal_head__": 0.001}
    )
    gcs = ray.get_runtime_context().gcs_address
    text, path = ray.get(task.remote(gcs), timeout=timeout_s)
    if text is None:
        return None, None
    import yaml

    return yaml.safe_load(text), path
