"""Frozen image and text encoders of the study: registry, weights, preprocessing, tokens.

Importing this package switches Hugging Face and open_clip to offline mode (weights come from
local files only) before any of those libraries is imported, so a missing file fails at once
instead of retrying the network for ~40 s. Import it before ``transformers`` or ``open_clip``.
"""

import os

for _switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_switch, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# Family modules register their entries on import (order = listing order).
from raypi.encoders import biovil, clip, dino, resnet, text, vit  # noqa: E402,F401
from raypi.encoders.preprocess import Preprocessing, image_seed  # noqa: E402
from raypi.encoders.registry import get_encoder, list_encoders, register  # noqa: E402
from raypi.encoders.spec import EncoderSpec, ResourceHint  # noqa: E402
from raypi.encoders.weights import LoadReport, WeightsError  # noqa: E402

__all__ = [
    "EncoderSpec",
    "LoadReport",
    "Preprocessing",
    "ResourceHint",
    "WeightsError",
    "get_encoder",
    "image_seed",
    "list_encoders",
    "register",
]
