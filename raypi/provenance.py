"""Which code and software made a result: raypi version and commit, Ray, torch, CUDA, device.

Every trial row and every ``sweep.yaml`` carries these, so that a published number can be
traced to the code that made it. The commit comes from ``RAYPI_GIT_COMMIT`` when set (the
driver sets it for its workers, which may run from a copy without ``.git``), else from the git
checkout raypi is imported from; a tree with uncommitted changes is marked ``-dirty``, and an
installed copy outside any checkout says so instead of a commit.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

COMMIT_ENV = "RAYPI_GIT_COMMIT"
"""Environment variable that, when set, is the commit recorded (the driver's, for workers)."""
NOT_A_CHECKOUT = "unknown (not run from a git checkout)"
"""What ``raypi_commit`` says when raypi was imported from outside a git checkout."""


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """Return ``RAYPI_GIT_COMMIT``, else the checkout's HEAD (``-dirty`` when changed)."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return NOT_A_CHECKOUT
    try:
        head = _git(root, "rev-parse", "HEAD")
        changed = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return NOT_A_CHECKOUT
    return f"{head}-dirty" if changed else head


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def export_commit() -> str:
    """Put this process's commit in ``RAYPI_GIT_COMMIT`` (for the workers it starts); return it."""
    commit = git_commit()
    if commit != NOT_A_CHECKOUT:
        os.environ[COMMIT_ENV] = commit
    return commit


@functools.lru_cache(maxsize=1)
def software() -> dict[str, str]:
    """Return the versions of raypi (and its commit), Ray, torch and CUDA in this process."""
    from raypi import __version__

    torch = sys.modules.get("torch")
    if torch is None:
        import torch
    return {
        "raypi_version": __version__,
        "raypi_commit": git_commit(),
        "ray_version": _installed("ray"),
        "torch_version": str(torch.__version__),
        "cuda_version": str(torch.version.cuda) if torch.version.cuda else "none (CPU build)",
    }


def _installed(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def device_name(device: str | None) -> str | None:
    """Return the model of a torch device (``cuda:1`` → its GPU's name, ``cpu`` → the CPU's).

    Args:
        device: A torch device string, or None (no device: nothing ran).

    Returns:
        The device's name, or None for None.
    """
    if device is None:
        return None
    if device.startswith("cuda"):
        import torch

        index = int(device.partition(":")[2] or 0)
        return torch.cuda.get_device_name(index)
    return cpu_name()


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """Return the CPU model (``/proc/cpuinfo`` on Linux, else ``platform.processor``)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def record(device: str | None = None) -> dict[str, str | None]:
    """Return the provenance of work done here on ``device``: ``software()`` + ``device_name``.

    Args:
        device: The torch device the work ran on (None when none ran, e.g. a refused trial).

    Returns:
        The values of the provenance columns.
    """
    return {**software(), "device_name": device_name(device)}
