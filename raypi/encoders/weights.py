"""Upstream weight files: read them, strip wrappers and prefixes, load with a checked key match."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from raypi.encoders import _pickle
from raypi.encoders._errors import WeightsError
from raypi.encoders._fetch import fetch_weights

__all__ = [
    "WeightsError",
    "LoadReport",
    "fetch_weights",
    "load_checked",
    "read_state_dict",
    "unwrap",
]
log = logging.getLogger(__name__)

HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class LoadReport:
    """What loading a checkpoint did; kept on the built module as ``module.load_report``."""

    source: str
    """The file that was read."""
    loaded: int
    """Tensors copied into the model."""
    dropped: tuple[str, ...]
    """Checkpoint keys deliberately left out (decoders, text towers, heads), as prefixes+counts."""
    entry: str = ""
    """Which entry of the checkpoint the weights came from (e.g. ``model`` or ``model_ema``)."""
    prefix: str = ""
    """The key prefix stripped (e.g. ``encoder.module.``)."""


def hf_weight_file(folder: Path) -> Path:
    """Return the weights file of a Hugging Face model folder (safetensors first).

    Args:
        folder: A folder with ``model.safetensors`` or an old-style ``pytorch_model.bin``.

    Returns:
        The path of the weights file.
    """
    for name in HF_WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else "no such folder"
    raise WeightsError(f"{folder}: expected one of {HF_WEIGHT_FILES}; found {found}")


def read_state_dict(path: str | Path) -> dict:
    """Read a checkpoint file: ``.safetensors`` or a torch pickle (``.bin .pth .pt .ckpt``).

    One path for every format, and never full unpickling: torch pickles are read by the
    weights-only unpickler with a short allowlist of harmless metadata types
    (``raypi.encoders._pickle``); anything else is refused, naming the type.

    Args:
        path: The file.

    Returns:
        The object stored in it (a state dict, or a dict wrapping one).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    stored = _pickle.load(path)
    if not isinstance(stored, dict):
        raise WeightsError(f"{path}: expected a dict of tensors, found {type(stored).__name__}")
    return stored


CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")


def single_file(path: str | Path) -> Path:
    """Return ``path``, or the one checkpoint file inside it when it is a folder.

    Args:
        path: A checkpoint file, or a folder (e.g. ``$RAYPI_HOME/weights/NAME``) holding
            exactly one file with a suffix of ``CHECKPOINT_SUFFIXES``.

    Returns:
        The file.

    Raises:
        WeightsError: The folder holds no such file, or several.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    files = sorted(p for p in path.iterdir() if p.suffix in CHECKPOINT_SUFFIXES)
    if len(files) != 1:
        names = [p.name for p in files]
        suffixes = "/".join(CHECKPOINT_SUFFIXES)
        raise WeightsError(f"{path}: expected one {suffixes} file, found {names}")
    return files[0]


def take_entry(checkpoint: dict, entry: str, source: str) -> dict:
    """Return ``checkpoint[entry]``, or raise naming the entries the file has.

    Args:
        checkpoint: What :func:`read_state_dict` returned.
        entry: The wanted entry (e.g. ``model_ema``).
        source: File name for messages.

    Returns:
        The entry's flat state dict.
    """
    if not isinstance(checkpoint.get(entry), dict):
        found = sorted(str(key) for key in checkpoint)[:12]
        raise WeightsError(f"{source}: no {entry!r} entry in the checkpoint; it has {found}")
    return unwrap(checkpoint[entry])


def unwrap(checkpoint: dict, keys: Iterable[str] = ("state_dict", "model", "module")) -> dict:
    """Return the state dict inside ``checkpoint['state_dict' | 'model' | 'module']`` if any.

    Args:
        checkpoint: What :func:`read_state_dict` returned.
        keys: Wrapper keys to look through, in order.

    Returns:
        A flat ``{name: tensor}`` dict.
    """
    for key in keys:
        if isinstance(checkpoint.get(key), dict):
            return unwrap(checkpoint[key], keys)
    return {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def choose_prefix(state: dict, prefixes: Iterable[str]) -> str:
    """Return the first of ``prefixes`` that some key of ``state`` starts with.

    Args:
        state: A flat state dict.
        prefixes: Candidate prefixes, most specific first; end with ``""`` to accept any.

    Returns:
        The chosen prefix.
    """
    prefixes = tuple(prefixes)
    for prefix in prefixes:
        if any(key.startswith(prefix) for key in state):
            return prefix
    head = ", ".join(sorted(state)[:6])
    raise WeightsError(f"no checkpoint key starts with any of {prefixes}; keys like: {head}")


def load_checked(
    module: torch.nn.Module,
    state: dict,
    *,
    source: str,
    prefixes: Iterable[str] = ("",),
    drop: Iterable[str] = (),
    entry: str = "",
) -> LoadReport:
    """Load ``state`` into ``module``; raise naming expected vs found keys when it does not fit.

    Args:
        module: The built architecture.
        state: Flat state dict of the checkpoint.
        source: File name for messages.
        prefixes: Where the module's keys live in the checkpoint (first match wins, e.g.
            ``module.encoder_q.``); keys outside the chosen prefix are dropped and reported.
        drop: Key prefixes (after stripping) to leave out on purpose.
        entry: The checkpoint entry ``state`` came from, for the report.

    Returns:
        What was loaded and what was dropped; every model key must be in the file.
    """
    drop = tuple(drop)
    prefix = choose_prefix(state, prefixes)
    dropped = {k for k in state if not k.startswith(prefix)}
    inside = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    dropped |= {prefix + k for k in inside if drop and k.startswith(drop)}
    kept = {k: v for k, v in inside.items() if prefix + k not in dropped}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(kept))
    unexpected = sorted(set(kept) - set(expected))
    wrong_shape = [
        f"{k}: model {tuple(expected[k].shape)} vs file {tuple(kept[k].shape)}"
        for k in sorted(set(kept) & set(expected))
        if tuple(kept[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong_shape:
        raise WeightsError(misfit_message(source, missing, unexpected, wrong_shape, expected, kept))
    # Every key matched above, so strict loading cannot fail; strict=True keeps it honest.
    module.load_state_dict(kept, strict=True)
    report = LoadReport(source, len(kept), summarise_keys(dropped), entry, prefix)
    log.info(
        "loaded %d tensors from %s (entry %r, prefix %r); dropped %s",
        report.loaded, source, entry, prefix, report.dropped,
    )  # fmt: skip
    return report


def misfit_message(source, missing, unexpected, wrong_shape, expected, found) -> str:
    """Return the error text for a checkpoint that does not fit: what is off, and key samples."""

    def head(keys):
        return ", ".join(list(keys)[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")

    lines = [f"{source}: checkpoint does not fit the architecture"]
    if missing:
        lines.append(f"  missing in file: {head(missing)}")
    if unexpected:
        lines.append(f"  not in model: {head(unexpected)}")
    if wrong_shape:
        lines.append(f"  wrong shape: {head(wrong_shape)}")
    lines.append(f"  model expects keys like: {head(sorted(expected))}")
    lines.append(f"  file has keys like: {head(sorted(found))}")
    return "\n".join(lines)


def summarise_keys(keys: set[str]) -> tuple[str, ...]:
    """Return ``("prefix.* (count)", ...)`` for a set of keys, grouped by first component."""
    counts: dict[str, int] = {}
    for key in keys:
        prefix = key.split(".")[0]
        counts[prefix] = counts.get(prefix, 0) + 1
    return tuple(f"{prefix}.* ({count})" for prefix, count in sorted(counts.items()))
