"""The one place raypi starts or joins Ray, and the cluster rules every stage shares.

Extraction (``raypi extract``), the INSPECT DRR job (``raypi build inspect``) and every sweep
connect through :func:`connect`: an address (``auto``, ``ray://…`` or a GCS address) joins a
cluster; none starts a local Ray, with its dashboard bound to 127.0.0.1. Either way the S3
settings of this shell (``FORWARDED_ENV``) travel to the workers, and Ray's token
authentication is left as the cluster has it (``RAY_AUTH_MODE`` and ``~/.ray/auth_token`` are
Ray's own). The GPU rules (shares, ``big_gpu``, ``--gpu auto``) are in
:mod:`raypi.cluster.gpu` and named here too. Ray is imported inside the functions, so
importing this package stays light.
"""

from __future__ import annotations

import os

from raypi.cluster.gpu import (  # noqa: F401  (the cluster rules, named here too)
    BIG_GPU_RESOURCE,
    GPU_SETTINGS,
    GPU_SHARES,
    ORDINARY_GPU_RESOURCE,
    GpuDecision,
    decide_gpu,
    gpu_decision,
    gpu_node_types,
    gpu_share,
    head_autoscaler_config,
    local_gpu_decision,
    read_cluster_file,
    resources,
)

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


def forwarded_env() -> dict[str, str]:
    """Return the ``FORWARDED_ENV`` variables set in this process (the commit set first)."""
    from raypi import provenance

    provenance.export_commit()
    return {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}


class ClusterUnreachableError(ConnectionError):
    """No Ray cluster answers at the address given (or found for ``auto``)."""


def connect(
    address: str | None = None,
    *,
    dashboard: bool = False,
    quiet: bool = False,
    wait_s: float = 5.0,
) -> None:
    """Join the Ray cluster at ``address``, or start a local Ray; nothing if connected already.

    Without an address (and without ``RAY_ADDRESS``, which Ray Jobs set for their entrypoint)
    a fresh local Ray starts: Ray's own ``address=None`` would join whichever cluster was last
    started on this machine (its ``ray_current_cluster`` file), even a stopped one. An address
    is first checked to answer within ``wait_s`` seconds, so a stale or wrong one fails at
    once, naming it, instead of Ray retrying "Failed to connect to GCS" for minutes.

    Args:
        address: ``auto`` (the cluster running on this machine), ``ray://host:port``, a GCS
            ``host:port``, or None.
        dashboard: Start the dashboard with a local Ray (always on 127.0.0.1).
        quiet: Do not stream the workers' output to this console (it stays in Ray's logs).
        wait_s: Seconds an address has to accept a connection.

    Raises:
        ClusterUnreachableError: Nothing answers at ``address``.
    """
    import ray

    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS") or "local"
    if target != "local":
        check_reachable(target, wait_s)
    env = forwarded_env()
    context = ray.init(
        address=target,
        include_dashboard=dashboard if target == "local" else None,
        dashboard_host="127.0.0.1",
        runtime_env={"env_vars": env} if env else None,
        log_to_driver=not quiet,
    )
    url = getattr(context, "dashboard_url", None)
    if url and dashboard:
        print(f"raypi: Ray dashboard at http://{url}")


def check_reachable(address: str, wait_s: float = 5.0) -> str:
    """Return the ``host:port`` that ``address`` names once it accepts a TCP connection.

    Args:
        address: ``auto``, ``ray://host:port`` or ``host:port``.
        wait_s: Seconds to wait for the connection.

    Returns:
        The resolved ``host:port``.

    Raises:
        ClusterUnreachableError: ``auto`` finds no cluster on this machine, or nothing
            accepts a connection at the address in time.
    """
    import socket

    resolved = _resolve(address)
    host, _, port = resolved.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=wait_s):
            pass
        if not address.startswith("ray://"):  # something listens: is it a Ray GCS?
            _ask_gcs(resolved, wait_s)
        return resolved
    except (OSError, ValueError, RuntimeError) as error:
        named = address if resolved == address else f"{address} ({resolved})"
        raise ClusterUnreachableError(
            f"no Ray cluster answers at {named} within {wait_s:g} s: {error}. Start one "
            "(`ray start --head`, `ray up cluster.yaml`), give the address of a running one, "
            "or give no address for a local Ray"
        ) from None


def _ask_gcs(address: str, wait_s: float) -> None:
    """Ask the GCS at ``address`` for a key; raise RuntimeError unless it answers in time."""
    import threading

    from ray._raylet import GcsClient

    failure: list = ["no answer"]

    def ask() -> None:
        try:
            GcsClient(address=address).internal_kv_get(b"raypi", None, timeout=wait_s)
            failure.clear()
        except Exception as error:  # any failure to answer means: not a usable GCS
            failure[:] = [f"not a Ray GCS ({type(error).__name__}: {error})"]

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(wait_s + 1.0)
    if failure:
        raise RuntimeError(failure[0])


def _resolve(address: str) -> str:
    """Return the ``host:port`` behind ``address`` (``auto``: this machine's running cluster)."""
    if address.startswith("ray://"):
        return address[len("ray://") :].split("/", 1)[0]
    if address != "auto":
        return address
    from ray._private.services import canonicalize_bootstrap_address

    try:
        found = canonicalize_bootstrap_address("auto")
    except ConnectionError as error:
        raise ClusterUnreachableError(f"--address auto: {error}") from None
    if not found:
        raise ClusterUnreachableError("--address auto: no Ray cluster found on this machine")
    return found


def map_rows(rows: list[dict], function, *, num_cpus: float = 1.0, address: str | None = None):
    """Run ``function`` on every row as a Ray Data CPU task on the cluster; return the results.

    Joins the cluster at ``address``, or starts a local Ray (:func:`connect`). The INSPECT
    DRR job runs this way, so ``raypi.data`` reaches Ray only through this module.

    Args:
        rows: The items (plain dicts).
        function: ``row → result dict``, importable on the workers.
        num_cpus: CPUs reserved per call.
        address: Ray cluster address; a local Ray when None.

    Returns:
        One result per row.
    """
    import ray

    connect(address)
    # One row per block up to 1,000 blocks: fine-grained tasks without swamping the scheduler.
    dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 1000))
    return dataset.map(function, num_cpus=num_cpus).take_all()
