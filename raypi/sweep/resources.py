"""What one trial asks Ray for: a CPU share, a GPU fraction, and the big-GPU resource.

A head trains on cached tokens, so its GPU memory is set by the token count: small for
ResNet/ViT tokens (a 1/8 GPU), large for RAD-DINO's 1,370 tokens. The estimate's fraction is
rounded up to 1/8, 1/4, 1/2 or a whole GPU. An encoder whose hint says ``needs_big_gpu`` (the
study ran RAD-DINO on a 40 GB A100) also asks for ``BIG_GPU_RESOURCE``, a custom resource that
only the 40 GB+ nodes of ``cluster.yaml`` declare (one unit per GPU), so those trials land
only there. On a cluster without GPUs every trial takes CPUs only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from raypi.cluster import BIG_GPU_RESOURCE, gpu_share

_CONTEXT_GB = 1.0  # CUDA context, allocator slack and the head's parameters
_EVAL_BATCH = 512  # FitConfig.eval_batch_size: its attention scores dominate the peak


@dataclass(frozen=True)
class TrialResources:
    """A trial's resource request."""

    cpus: float
    """CPUs reserved (also the trial's torch thread count, at least 1)."""
    gpus: float = 0.0
    """GPU fraction (0 on CPU-only clusters)."""
    big_gpu: float = 0.0
    """Units of ``BIG_GPU_RESOURCE`` (equal to ``gpus`` for big-memory trials)."""
    ordinary_gpu_resource: str | None = None
    """Custom resource of the ordinary GPU nodes that an ordinary GPU trial also asks for (as
    many units as ``gpus``), keeping it off big-GPU nodes; None asks for no such resource."""

    def bundle(self) -> dict[str, float]:
        """Return the placement-group bundle."""
        bundle = {"CPU": self.cpus, "GPU": self.gpus}
        if self.big_gpu:
            bundle[BIG_GPU_RESOURCE] = self.big_gpu
        elif self.gpus and self.ordinary_gpu_resource:
            bundle[self.ordinary_gpu_resource] = self.gpus
        return bundle


def head_memory_gb(token_shape: tuple[int, int], batch_size: int = 64) -> float:
    """Estimate the peak GPU memory of training a head on ``[T, D]`` tokens.

    Args:
        token_shape: Tokens per image and their width.
        batch_size: Training batch size.

    Returns:
        Gigabytes: the larger of a training step (activations kept for the backward pass) and
        an evaluation batch, each dominated by the T×T attention scores, plus fixed overhead.
    """
    tokens, width = token_shape
    per_row = tokens * (tokens + 2 * width) * 4  # fp32 scores + normalised tokens
    peak_rows = max(3 * batch_size, _EVAL_BATCH)
    return _CONTEXT_GB + peak_rows * per_row / 1e9


def trial_resources(
    token_shape: tuple[int, int],
    needs_big_gpu: bool,
    *,
    use_gpu: bool,
    cpus: float = 1.0,
    batch_size: int = 64,
    gpu_memory_gb: float = 16.0,
    big_gpu_memory_gb: float = 40.0,
    share: float | None = None,
    ordinary_gpu_resource: str | None = None,
) -> TrialResources:
    """Return the resources of one trial.

    Args:
        token_shape: ``[T, D]`` of the image tokens it trains on.
        needs_big_gpu: Whether the encoder's hint asks for a 40 GB+ GPU.
        use_gpu: Whether the cluster has GPUs to use.
        cpus: CPUs per trial.
        batch_size: Training batch size.
        gpu_memory_gb: Memory of the ordinary GPUs.
        big_gpu_memory_gb: Memory of the big GPUs.
        share: A fixed GPU fraction instead of the estimate.
        ordinary_gpu_resource: Custom resource of the ordinary GPU nodes, asked for by trials
            that do not need a big GPU (``TrialResources.ordinary_gpu_resource``).

    Returns:
        The request.
    """
    if not use_gpu:
        return TrialResources(cpus=cpus)
    memory = head_memory_gb(token_shape, batch_size)
    size = big_gpu_memory_gb if needs_big_gpu else gpu_memory_gb
    gpus = share if share is not None else gpu_share(memory, size)
    if needs_big_gpu:
        return TrialResources(cpus=cpus, gpus=gpus, big_gpu=gpus)
    return TrialResources(cpus=cpus, gpus=gpus, ordinary_gpu_resource=ordinary_gpu_resource)


def encoder_profile(
    name: str | None, store: str, overrides: dict, remote: bool = True
) -> tuple[tuple, bool, float | None]:
    """Return ``(token_shape, needs_big_gpu, share or None)`` of an encoder for scheduling.

    The token shape comes from the store's manifest when it exists (tokens may be pooled),
    else from the registry (``sweep.footprint.token_shape``); ``overrides`` (``gpu_share``,
    ``needs_big_gpu``) win.

    Args:
        name: Image encoder name (None for the text-only model: it counts as small).
        store: Feature store holding it.
        overrides: The sweep's ``resource_overrides``.
        remote: Read a remote store's manifest (False: the registry's shape, no network).

    Returns:
        The profile.
    """
    own = dict(overrides.get(name or "", {}))
    if name is None:
        return (1, 1), False, own.get("gpu_share")
    from raypi.encoders import get_encoder
    from raypi.sweep.footprint import token_shape

    try:
        shape = token_shape(name, store, remote=remote)
    except OSError:  # an unreachable store: the registry's shape, as before the store exists
        shape = tuple(get_encoder(name).token_shape)
    big = bool(own.get("needs_big_gpu", get_encoder(name).hint.needs_big_gpu))
    return shape, big, own.get("gpu_share")


def trial_bundle(trial, profile: tuple, options, use_gpu: bool) -> dict[str, float]:
    """Return the placement-group bundle of one trial (the one place a trial's request is made).

    Args:
        trial: The trial (``TrialConfig``: its batch size).
        profile: Its image encoder's ``encoder_profile``.
        options: ``LaunchOptions`` (CPUs per trial, GPU memory, ordinary GPU resource).
        use_gpu: Whether it runs on GPUs.

    Returns:
        The bundle.
    """
    shape, big, share = profile
    return trial_resources(
        shape, big, use_gpu=use_gpu, cpus=options.cpus_per_trial, batch_size=trial.batch_size,
        gpu_memory_gb=options.gpu_memory_gb, big_gpu_memory_gb=options.big_gpu_memory_gb,
        share=share, ordinary_gpu_resource=options.ordinary_gpu_resource,
    ).bundle()  # fmt: skip


def threads_for(cpus: float) -> int:
    """Return the torch thread count of a trial holding ``cpus`` CPUs."""
    return max(1, math.floor(cpus))
