"""RAD-DINO: transformers' Dinov2Model (ViT-B/14 at 518); tokens = CLS + 37x37 patch tokens."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from raypi.encoders._hf import load_hf_folder
from raypi.encoders.preprocess import Preprocessing
from raypi.encoders.registry import register
from raypi.encoders.spec import EncoderSpec, ResourceHint
from raypi.encoders.weights import LoadReport, WeightsError

# microsoft/rad-dino's config.json (the fields that shape the network).
RAD_DINO_CONFIG = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    mlp_ratio=4,
    patch_size=14,
    image_size=518,
    layerscale_value=1.0,
    use_swiglu_ffn=False,
    layer_norm_eps=1e-6,
)
# microsoft/rad-dino's preprocessor_config.json (BitImageProcessor).
RAD_DINO_MEAN = (0.5307, 0.5307, 0.5307)
RAD_DINO_STD = (0.2583, 0.2583, 0.2583)


class DinoTokens(nn.Module):
    """A transformers ``Dinov2Model`` (``self.model``) returning ``last_hidden_state``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Map pixels [B, 3, 518, 518] to tokens [B, 1 + 37·37, 768] (CLS first, final norm)."""
        return self.model(pixel_values=pixels).last_hidden_state


def build_dinov2(config: dict = RAD_DINO_CONFIG) -> DinoTokens:
    """Return a random-init transformers Dinov2Model with the given config fields."""
    from transformers import Dinov2Config, Dinov2Model

    return DinoTokens(Dinov2Model(Dinov2Config(**config)))


def load_hf_dinov2(module: DinoTokens, path: str) -> LoadReport:
    """Load a Hugging Face Dinov2Model folder (``config.json`` + safetensors or .bin).

    Args:
        module: A :class:`DinoTokens`.
        path: The model folder.

    Returns:
        The load report.
    """
    folder = Path(path)
    _check_config(folder / "config.json", module.model.config)
    _check_processor(folder / "preprocessor_config.json")
    return load_hf_folder(module, str(folder))


def _check_config(config_file: Path, ours) -> None:
    if not config_file.is_file():
        return
    found = json.loads(config_file.read_text())
    wrong = {k: found[k] for k in RAD_DINO_CONFIG if k in found and found[k] != getattr(ours, k)}
    if wrong or found.get("num_register_tokens", 0):
        raise WeightsError(f"{config_file}: differs from the built Dinov2Model in {wrong}")


RAD_DINO_PROCESSOR = {
    "image_mean": list(RAD_DINO_MEAN),
    "image_std": list(RAD_DINO_STD),
    "size": {"shortest_edge": 518},
    "crop_size": {"height": 518, "width": 518},
    "resample": 3,  # PIL bicubic, what raypi's registered preprocessing uses
    "do_resize": True,
    "do_center_crop": True,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "do_convert_rgb": True,
}
"""What raypi's RAD-DINO preprocessing does, in ``preprocessor_config.json``'s terms."""


def _same(found, expected) -> bool:
    if isinstance(expected, float):
        return isinstance(found, (int, float)) and abs(found - expected) < 1e-9
    return found == expected


def _check_processor(processor_file: Path) -> None:
    # Preprocessing runs without the weights (in CPU tasks), from the registered numbers:
    # refuse a folder whose own processor would do something else.
    if not processor_file.is_file():
        return
    found = json.loads(processor_file.read_text())
    wrong = {k: found[k] for k in RAD_DINO_PROCESSOR if k in found}
    wrong = {k: v for k, v in wrong.items() if not _same(v, RAD_DINO_PROCESSOR[k])}
    expected = RAD_DINO_PROCESSOR
    if wrong:
        raise WeightsError(f"{processor_file}: {wrong} differ from raypi's {expected}")


register(
    EncoderSpec(
        name="rad_dino",
        kind="image",
        family="dinov2",
        token_shape=(1370, 768),
        input_size=518,
        weights_hint="Hugging Face folder of microsoft/rad-dino (config.json + model.safetensors) "
        "at $RAYPI_HOME/weights/rad_dino",
        hint=ResourceHint(gpu_memory_gb=24.0, batch_size=64, needs_big_gpu=True),
        description="transformers Dinov2Model ViT-B/14 at 518: CLS + 37x37 patch tokens x 768",
        factory=build_dinov2,
        loader=load_hf_dinov2,
        preprocessing=Preprocessing(
            resize=518,
            crop=518,
            mean=RAD_DINO_MEAN,
            std=RAD_DINO_STD,
            interpolation="bicubic",
            crop_rounding="floor",
            source="microsoft/rad-dino preprocessor_config.json (BitImageProcessor)",
        ),
    )
)
