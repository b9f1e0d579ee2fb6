"""The one place raypi starts or joins Ray, and the cluster rules every stage shares.

Extraction (``raypi extract``), the INSPECT DRR job (``raypi build inspect``) and every sweep
connect through :func:`connect`: an address (``auto``, ``ray://…`` or a GCS address) joins a
cluster; none starts a local Ray, with its dashboard bound to 127.0.0.1. Either way the S3
settings of this shell (``FORWARDED_ENV``) travel to the workers, and Ray's token
authentication is left as the cluster has it (``RAY_AUTH_MODE`` and ``~/.ray/auth_token`` are
Ray's own). Ray is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import os

BIG_GPU_RESOURCE = "big_gpu"
"""Custom resource of 40 GB+ GPU nodes (``cluster.yaml``); its count equals the node's GPUs.
Work that needs a big GPU (RAD-DINO extraction and its heads) asks for it, so it lands only
there."""

ORDINARY_GPU_RESOURCE = "gpu_16gb"
"""Custom resource of the ordinary (16 GB) GPU node type of ``cluster.yaml``. With
``--ordinary-gpu-resource gpu_16gb`` ordinary GPU trials also ask for it, so they — and the
nodes the autoscaler launches for them — stay off the big-GPU nodes, which Ray's autoscaler
would otherwise launch for them as readily (both types fit a GPU fraction)."""

FORWARDED_ENV = (
    "RAYPI_S3_ENDPOINT",
    "RAYPI_STORAGE_RETRY_S",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "RAYPI_GIT_COMMIT",
)
"""Environment variables the driver's workers need to reach the same object store (and to
retry it as long), and the driver's commit, recorded in every trial row even where the
workers run from a copy without ``.git`` (``raypi.provenance``)."""

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


def forwarded_env() -> dict[str, str]:
    """Return the ``FORWARDED_ENV`` variables set in this process (the commit set first)."""
    from raypi import provenance

    provenance.export_commit()
    return {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}


def connect(address: str | None = None, *, dashboard: bool = False, quiet: bool = False) -> None:
    """Join the Ray cluster at ``address``, or start a local Ray; nothing if connected already.

    Args:
        address: ``auto``, ``ray://host:port``, a GCS address, or None for a local Ray (which
            also honours ``RAY_ADDRESS`` when set, as ``ray.init`` does).
        dashboard: Start the dashboard with a local Ray (always on 127.0.0.1).
        quiet: Do not stream the workers' output to this console (it stays in Ray's logs).
    """
    import ray

    if ray.is_initialized():
        return
    env = forwarded_env()
    context = ray.init(
        address=address,
        include_dashboard=dashboard if address is None else None,
        dashboard_host="127.0.0.1",
        runtime_env={"env_vars": env} if env else None,
        log_to_driver=not quiet,
    )
    url = getattr(context, "dashboard_url", None)
    if url and dashboard:
        print(f"raypi: Ray dashboard at http://{url}")


def resources() -> dict[str, float]:
    """Return the connected cluster's total resources (``CPU``, ``GPU``, ``big_gpu``, …)."""
    import ray

    return {name: float(value) for name, value in ray.cluster_resources().items()}
