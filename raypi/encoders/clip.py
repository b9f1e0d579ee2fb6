"""BiomedCLIP's image tower: open_clip's TimmModel (timm ViT-B/16) from its open_clip config."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch
from torch import nn

from raypi.encoders.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from raypi.encoders.registry import register
from raypi.encoders.spec import EncoderSpec, ResourceHint
from raypi.encoders.vit import TINY_PREPROCESSING
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

# The demo's image-report aligned encoder: open_clip's timm tower around tiny_vit's trunk.
DEMO_TIMM_MODEL = "vit_raypi_demo_patch16_64"
DEMO_EMBED_DIM = 32
DEMO_VISION_CFG = {**VISION_CFG, "timm_model_name": DEMO_TIMM_MODEL, "image_size": 64}


def register_demo_timm_model() -> None:
    """Make ``DEMO_TIMM_MODEL`` (tiny_vit's trunk) a timm model name open_clip can build."""
    import timm
    from timm.models import register_model

    if not timm.is_model(DEMO_TIMM_MODEL):
        register_model(_vit_raypi_demo_patch16_64)


def _vit_raypi_demo_patch16_64(pretrained: bool = False, **kwargs) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    from raypi.encoders.vit import TINY_VIT

    if pretrained:
        raise ValueError(f"{DEMO_TIMM_MODEL} has no published weights (raypi pretrain builds them)")
    # timm's factory adds its own keys; the rest (e.g. drop_path_rate) are the architecture's.
    options = {k: v for k, v in kwargs.items() if k not in _TIMM_FACTORY_KEYS}
    trunk = VisionTransformer(**{"num_classes": 0, **TINY_VIT, **options})
    trunk.default_cfg = trunk.pretrained_cfg = {"architecture": DEMO_TIMM_MODEL}
    return trunk


_TIMM_FACTORY_KEYS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")
_vit_raypi_demo_patch16_64.__name__ = DEMO_TIMM_MODEL


class ClipTowerTokens(nn.Module):
    """open_clip's vision tower (``self.model``); tokens are its timm trunk's normed tokens."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Map pixels [B, 3, 224, 224] to tokens [B, 197, 768] (CLS first, before projection)."""
        return self.model.trunk.forward_features(pixels)


def build_open_clip_tower(embed_dim: int, vision_cfg: dict) -> ClipTowerTokens:
    """Build an open_clip vision tower offline through open_clip's own tower builder."""
    from open_clip.model import _build_vision_tower

    if vision_cfg["timm_model_name"] == DEMO_TIMM_MODEL:
        register_demo_timm_model()
    return ClipTowerTokens(_build_vision_tower(embed_dim, dict(vision_cfg)))


def load_open_clip_folder(
    module: ClipTowerTokens,
    path: str,
    vision_cfg: dict = VISION_CFG,
    embed_dim: int = EMBED_DIM,
    mean: tuple[float, ...] = OPENAI_MEAN,
    std: tuple[float, ...] = OPENAI_STD,
) -> LoadReport:
    """Load the ``visual.*`` weights of an open_clip folder, checking its config first.

    Args:
        module: A :class:`ClipTowerTokens`.
        path: Folder with ``open_clip_config.json`` and ``open_clip_pytorch_model.bin`` (or
            ``open_clip_model.safetensors``).
        vision_cfg: The ``model_cfg.vision_cfg`` values the folder must have (BiomedCLIP's).
        embed_dim: The ``model_cfg.embed_dim`` it must have.
        mean: Its ``preprocess_cfg.mean`` when it states one.
        std: Its ``preprocess_cfg.std`` when it states one.

    Returns:
        The load report (the text tower and logit scale are reported as dropped).
    """
    folder = Path(path)
    _check_config(folder, vision_cfg, embed_dim, {"mean": mean, "std": std})
    files = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not files:
        raise WeightsError(f"{folder}: expected one of {WEIGHT_FILES}")
    state = read_state_dict(files[0])
    state = state.get("state_dict", state)
    return load_checked(module.model, state, source=str(files[0]), prefixes=("visual.",))


def _check_config(folder: Path, vision_cfg: dict, embed_dim: int, stats: dict) -> None:
    config_file = folder / "open_clip_config.json"
    if not config_file.is_file():
        raise WeightsError(f"{folder}: expected open_clip_config.json beside the weights")
    config = json.loads(config_file.read_text())
    model_cfg = config.get("model_cfg", {})
    vision = {k: model_cfg.get("vision_cfg", {}).get(k) for k in vision_cfg}
    if vision != vision_cfg or model_cfg.get("embed_dim") != embed_dim:
        raise WeightsError(
            f"{config_file}: vision tower {vision} (embed_dim "
            f"{model_cfg.get('embed_dim')}) is not the expected {vision_cfg} (embed_dim "
            f"{embed_dim})"
        )
    preprocess = config.get("preprocess_cfg", {})
    for key, ours in stats.items():
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
        factory=partial(build_open_clip_tower, EMBED_DIM, VISION_CFG),
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

register(
    EncoderSpec(
        name="demo_vit_clip",
        kind="image",
        family="clip",
        token_shape=(17, 64),
        input_size=64,
        weights_hint="open_clip folder (open_clip_config.json + open_clip_pytorch_model.bin) "
        "that `raypi pretrain` writes to $RAYPI_HOME/weights/demo_vit_clip (demo only)",
        hint=ResourceHint(gpu_memory_gb=0.5, batch_size=256),
        description="tiny_vit's trunk in open_clip's timm tower, aligned CLIP-style with the "
        "demo reports through demo_bert: the demo's stand-in for BioViL-T / BiomedCLIP / GLoRIA",
        factory=partial(build_open_clip_tower, DEMO_EMBED_DIM, DEMO_VISION_CFG),
        loader=partial(
            load_open_clip_folder,
            vision_cfg=DEMO_VISION_CFG,
            embed_dim=DEMO_EMBED_DIM,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        ),
        preprocessing=TINY_PREPROCESSING,
        tiny=True,
        demo_pretrained=True,
    )
)
