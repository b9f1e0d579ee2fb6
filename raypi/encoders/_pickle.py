"""Read torch checkpoints without running their code: weights-only unpickling plus an allowlist.

Published checkpoints carry harmless metadata beside their tensors: ``argparse.Namespace``
(C2L's ``opt``, MAE/MRM's ``args``), OmegaConf containers (GLoRIA's Lightning
``hyper_parameters``), Lightning callback classes as dict keys. torch's weights-only unpickler
refuses every global it does not know; raypi allows exactly these, and the OmegaConf and
Lightning ones only as inert stand-ins (their code never runs, and neither package is needed).
Anything else is refused with an error that names it.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import pickle

import torch

from raypi.encoders._errors import WeightsError


class Inert:
    """Stand-in for a metadata class: keeps what it was built with, does nothing."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state


INERT = (
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    "omegaconf.nodes.AnyNode",
    "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode",
    "omegaconf.nodes.FloatNode",
    "omegaconf.nodes.BooleanNode",
    "typing.Any",
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
)
"""Globals read as :class:`Inert` stand-ins."""

INERT_DICTS = ("pytorch_lightning.utilities.parsing.AttributeDict",)
"""Dict subclasses read as plain dicts (torch fills only exact dicts item by item)."""

PLAIN = (
    argparse.Namespace,
    pathlib.PosixPath,
    pathlib.PurePosixPath,
    pathlib.WindowsPath,
    pathlib.PureWindowsPath,
    collections.defaultdict,
    dict,
    list,
    int,
    float,
    str,
    bool,
)
"""Harmless types allowed as themselves."""


def allowed_globals() -> list:
    """Return the allowlist in the form ``torch.serialization.safe_globals`` takes."""
    stand_ins = [(type(name.rsplit(".", 1)[1], (Inert,), {}), name) for name in INERT]
    stand_ins += [(dict, name) for name in INERT_DICTS]
    return [*PLAIN, *stand_ins]


def load(path: str | pathlib.Path) -> object:
    """Unpickle a torch checkpoint safely.

    Args:
        path: A ``.pth``/``.pt``/``.bin``/``.ckpt``/``.tar`` file.

    Returns:
        The stored object (tensors on the CPU).

    Raises:
        WeightsError: The file is not a torch checkpoint, or its pickle names a global
            outside the allowlist (named in the message; nothing of it was run).
    """
    with torch.serialization.safe_globals(allowed_globals()):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            refused = _refused(path)
            if refused:
                raise WeightsError(
                    f"{path}: refused to unpickle {', '.join(refused)} (not an allowed type; "
                    "raypi never runs code from a checkpoint). Resave the weights as a plain "
                    "state dict (torch.save(model.state_dict(), …)) or as safetensors."
                ) from None
            raise WeightsError(f"{path}: not a readable torch checkpoint ({error})") from None
        except (RuntimeError, EOFError, OSError, ValueError) as error:
            raise WeightsError(f"{path}: not a readable torch checkpoint ({error})") from None


def _refused(path) -> list[str]:
    """Return the globals of the checkpoint that the allowlist does not cover."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the caller
        return []
    allowed = {name for name in INERT + INERT_DICTS}
    allowed |= {f"{t.__module__}.{t.__qualname__}" for t in PLAIN}
    return sorted(name for name in names if name not in allowed)
