"""Load Hugging Face model folders through transformers (it maps legacy key names), checked."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch
from torch import nn

from raypi.encoders.weights import (
    LoadReport,
    WeightsError,
    hf_weight_file,
    misfit_message,
    summarise_keys,
)

log = logging.getLogger(__name__)


def load_hf_folder(holder: nn.Module, path: str, drop: tuple[str, ...] = (), **init) -> LoadReport:
    """Replace ``holder.model`` by the same architecture with weights from an HF folder.

    ``from_pretrained`` is given the built model's config, so the architecture stays the
    registered one; transformers translates old key layouts (``bert.`` prefixes,
    ``LayerNorm.gamma``, DINOv2's ``attention.attention.query``) to the current ones.

    Args:
        holder: A module whose ``model`` is a transformers ``PreTrainedModel``.
        path: Folder with ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``.
        drop: Prefixes of checkpoint keys the model does not use on purpose (heads).
        **init: Extra constructor arguments of the model class (e.g. ``add_pooling_layer``).

    Returns:
        The load report.
    """
    folder = Path(path)
    file = hf_weight_file(folder)
    model_class, config = type(holder.model), holder.model.config
    with quiet_transformers():
        model, info = model_class.from_pretrained(
            str(folder),
            config=config,
            dtype=torch.float32,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **init,
        )
    expected = set(model.state_dict())
    missing = sorted(info["missing_keys"])
    unexpected = sorted(k for k in info["unexpected_keys"] if not k.startswith(drop))
    wrong_shape = sorted(
        " ".join(map(str, item)) if isinstance(item, tuple) else str(item)
        for item in info["mismatched_keys"]
    )
    if missing or unexpected or wrong_shape:
        found = (expected - set(missing)) | set(info["unexpected_keys"])
        raise WeightsError(
            misfit_message(str(file), missing, unexpected, wrong_shape, expected, found)
        )
    holder.model = model
    report = LoadReport(str(file), len(expected), summarise_keys(set(info["unexpected_keys"])))
    log.info("loaded %d tensors from %s; dropped %s", report.loaded, file, report.dropped)
    return report


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' own load table and progress bar; raypi reports the load itself."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
