"""The Ray Data graph of one encoder's extraction, and the resources its actors ask for.

Graph: ``from_pandas`` (images still missing, a few per block) → ``map_batches(decode_views)``
(CPU tasks: read, decode, preprocess every missing view) → ``map_batches(ImageEncoderActor)``
(actor pool: forward, token reduction, one shard per batch) → status rows back to the driver.
On GPU clusters the two maps run as separate operators, so decoding overlaps the GPU. On a
CPU-only 2-core cluster the actor asks for the same single CPU as a decode task, so Ray Data
fuses the decode into the actor (no object-store hop for pixel tensors; the forward pass uses
both cores anyway). Fused vs unfused on CPU has not been benchmarked separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import ray

from raypi.cluster import BIG_GPU_RESOURCE, resources
from raypi.features import _workers


@dataclass(frozen=True)
class ActorResources:
    """What each encoder actor asks Ray for, and how many of them run."""

    size: int
    """Actors in the pool."""
    num_cpus: float
    """CPUs reserved per actor (fractional: decode tasks must stay schedulable)."""
    num_gpus: float
    """GPU share per actor (0 on CPU-only clusters)."""
    device: str
    """Torch device inside the actor."""
    threads: int
    """Torch threads of a CPU actor (0 = leave torch's default)."""
    custom: dict = field(default_factory=dict)
    """Custom Ray resources per actor (``big_gpu`` for encoders that need a 40 GB+ GPU)."""


def actor_resources(spec, config, decision=None) -> ActorResources:
    """Size the actor pool of ``spec`` on the connected cluster.

    GPU clusters: each actor takes the GPU share of the encoder's memory hint (a whole GPU for
    ``needs_big_gpu``) and a small CPU share. CPU-only clusters: one actor holding half the
    CPUs — an actor pool that reserves every CPU leaves Ray Data's decode tasks unschedulable
    and the pipeline stalls forever — with torch using every core for the forward pass.

    Args:
        spec: Encoder spec (its ``hint``).
        config: ``ExtractOptions`` (``gpu_memory_gb``, ``cpu_threads``).
        decision: ``raypi.cluster.GpuDecision``: without GPUs the pool is a CPU one; with
            GPUs but none up yet, the pool is sized for the first GPU node the autoscaler
            launches for it. None decides nothing: the GPUs up now count.

    Returns:
        The pool's resources.
    """
    cluster = resources()
    if decision is not None and not decision.use_gpu:
        cluster = {**cluster, "GPU": 0.0}
    elif decision is not None and cluster.get("GPU", 0.0) < 1:
        node = decision.launch_node(spec.hint.needs_big_gpu) or decision.launch_node(False)
        cluster = {**cluster, **{k: float(v) for k, v in node.items() if k != "CPU"}}
        cluster["CPU"] = cluster.get("CPU", 0.0) + float(node.get("CPU", 0.0))
    return size_pool(
        float(cluster.get("CPU", 1.0)),
        float(cluster.get("GPU", 0.0)),
        spec.hint,
        config,
        big_gpus=float(cluster.get(BIG_GPU_RESOURCE, 0.0)),
    )


def size_pool(cpus: float, gpus: float, hint, config, big_gpus: float = 0.0) -> ActorResources:
    """Return the actor pool for a cluster of ``cpus`` CPUs and ``gpus`` GPUs (see above).

    Where nodes declare the ``big_gpu`` resource (cluster.yaml's 40 GB+ type), encoders that
    need a big GPU ask for it too, one actor per big GPU, so they never land on 16 GB nodes.
    """
    if gpus >= 1 and hint.needs_big_gpu and big_gpus >= 1:
        size = int(big_gpus)
        per_actor_cpu = min(1.0, cpus / (2 * size))
        return ActorResources(size, per_actor_cpu, 1.0, "cuda", 0, {BIG_GPU_RESOURCE: 1.0})
    if gpus >= 1:
        share = 1.0 if hint.needs_big_gpu else hint.gpu_fraction(config.gpu_memory_gb)
        # A fractional actor must fit inside one GPU: floor(1 / share) of them per device.
        size = int(gpus) * max(1, math.floor(1 / share + 1e-9))
        per_actor_cpu = min(1.0, cpus / (2 * size))
        return ActorResources(size, per_actor_cpu, share, "cuda", 0)
    threads = config.cpu_threads or max(1, int(cpus))
    return ActorResources(1, max(0.01, cpus / 2), 0.0, "cpu", threads)


def run(
    spec,
    weights_path,
    identity: dict,
    todo: pd.DataFrame,
    dataset_root: str,
    out: str,
    config,
    decision=None,
) -> pd.DataFrame:
    """Run one encoder's pipeline over ``todo``; return every row's status.

    Args:
        spec: Encoder spec.
        weights_path: Weights file/folder or None.
        identity: The store identity (token shape, dtype, reductions, fingerprint).
        todo: Images (``image_id``, ``image_path``, ``views``) or reports to encode.
        dataset_root: Dataset root, for image paths.
        out: Feature store folder.
        config: ``ExtractOptions``.
        decision: ``raypi.cluster.GpuDecision`` of the run (see ``actor_resources``).

    Returns:
        Columns ``image_id``, (``view``), ``error`` ("" when written), ``bytes``, ``seconds``.
    """
    if todo.empty:
        return pd.DataFrame({"image_id": [], "error": [], "bytes": [], "seconds": []})
    batch_size = config.batch_size or spec.hint.batch_size
    resources = actor_resources(spec, config, decision)
    target = {
        key: identity.get(key) for key in ("encoder", "dtype", "tokens", "pool", "max_length")
    }
    target.update(store=out, cls=identity.get("has_cls", False))
    per_block = batch_size
    if spec.kind == "image":
        per_block = max(1, batch_size // max(1, int(todo["views"].map(len).max())))
    blocks = [todo.iloc[start : start + per_block] for start in range(0, len(todo), per_block)]
    dataset = ray.data.from_pandas(blocks)
    if spec.kind == "image":
        dataset = dataset.map_batches(
            _workers.decode_views,
            fn_kwargs={
                "spec": spec,
                "root": str(dataset_root),
                "seed": config.seed,
                "pixel_shape": tuple(identity["preprocessing"]["pixel_shape"]),
            },
            batch_size=None,
            batch_format="numpy",
            num_cpus=1,
        )
    actor = _workers.ImageEncoderActor if spec.kind == "image" else _workers.TextEncoderActor
    dataset = dataset.map_batches(
        actor,
        fn_constructor_kwargs={
            "spec": spec,
            "weights": weights_path,
            "fingerprint": identity["weights_fingerprint"],
            "target": target,
            "device": resources.device,
            "threads": resources.threads,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=resources.size),
        num_cpus=resources.num_cpus,
        num_gpus=resources.num_gpus,
        **({"resources": resources.custom} if resources.custom else {}),
    )
    frames = [batch for batch in dataset.iter_batches(batch_format="pandas", batch_size=None)]
    statuses = pd.concat(frames, ignore_index=True)
    statuses["error"] = statuses["error"].astype(str)
    statuses["bytes"] = statuses["bytes"].astype(np.int64)
    return statuses
