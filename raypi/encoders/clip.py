"""BiomedCLIP's image tower: open_clip's TimmModel (timm ViT-B/16) from its open_clip config."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from raypi.encoders.preprocess import Preprocessing
from raypi.encoders.registry import register
from raypi.encoders.spec import EncoderSpec, ResourceHint
from raypi.encoders.weights import LoadReport, WeightsError, load_checked, read_state_dict

# The image half of BiomedCLIP-PubMedBERT_256-vit_base_patch16_224's open_clip_config.json.
# Only the vision tower is built: the text tower would need PubMedBERT's config from the hub.
EMBED_DIM = 512
VISION_CFG = {
    "timm_model_name": "vit_base_patch16_224",
    "timm_model_pretrained": False,
    "timm_pool": "",
    "timm_proj": "linear",
    "image_size": 224,
}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


class ClipTowerTokens(nn.Module):
    """open_clip's vision tower (``self.model``); tokens are its timm trunk's normed tokens."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Map pixels [B, 3, 224, 224] to tokens [B, 197, 768] (CLS first, before projection)."""
        return self.model.trunk.forward_features(pixels)


def build_biomedclip_tower() -> ClipTowerTokens:
    """Build BiomedCLIP's vision tower offline through open_clip's own tower builder."""
    from open_clip.model import _build_vision_tower

    return ClipTowerTokens(_build_vision_tower(EMBED_DIM, dict(VISION_CFG)))


def load_open_clip_folder(module: ClipTowerTokens, path: str) -> LoadReport:
    """Load the ``visual.*`` weights of an open_clip folder, checking its config first.

    Args:
        module: A :class:`ClipTowerTokens`.
        path: Folder with ``open_clip_config.json`` and ``open_clip_pytorch_model.bin`` (or
            ``open_clip_model.safetensors``).

    Returns:
        The load report (the text tower and logit scale are reported as dropped).
    """
    folder = Path(path)
    _check_config(folder)
    files = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not files:
        raise WeightsError(f"{folder}: expected one of {WEIGHT_FILES}")
    state = read_state_dict(files[0])
    state = state.get("state_dict", state)
    return load_checked(module.model, state, source=str(files[0]), prefixes=("visual.",))


def _check_config(folder: Path) -> None:
    config_file = folder / "open_clip_config.json"
    if not config_file.is_file():
        raise WeightsError(f"{folder}: expected open_clip_config.json beside the weights")
    config = json.loads(config_file.read_text())
    model_cfg = config.get("model_cfg", {})
    vision = {k: model_cfg.get("vision_cfg", {}).get(k) for k in VISION_CFG}
    if vision != VISION_CFG or model_cfg.get("embed_dim") != EMBED_DIM:
        raise WeightsError(
            f"{config_file}: vision tower {vision} (embed_dim "
            f"{model_cfg.get('embed_dim')}) is not BiomedCLIP's {VISION_CFG}"
        )
    preprocess = config.get("preprocess_cfg", {})
    for key, ours in (("mean", OPENAI_MEAN), ("std", OPENAI_STD)):
        if key in preprocess and tuple(preprocess[key]) != ours:
            raise WeightsError(f"{config_file}: preprocess {key} {preprocess[key]} != {ours}")


register(
    EncoderSpec(
        name="biomedclip",
        kind="image",
        family="clip",
        token_shape=(197, 768),
        input_size=224,
        weights_hint="open_clip folder of microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224 "
        "(open_clip_config.json + open_clip_pytorch_model.bin) at $RAYPI_HOME/weights/biomedclip",
        hint=ResourceHint(gpu_memory_gb=4.0, batch_size=128),
        description="open_clip TimmModel (timm ViT-B/16): CLS + 14x14 patch tokens x 768, "
        "before the 512-d projection",
        factory=build_biomedclip_tower,
        loader=load_open_clip_folder,
        preprocessing=Preprocessing(
            resize=224,
            crop=224,
            mean=OPENAI_MEAN,
            std=OPENAI_STD,
            interpolation="bicubic",
            source="open_clip image_transform(224, is_train=False), BiomedCLIP preprocess_cfg",
        ),
    )
)
