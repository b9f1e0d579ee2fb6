"""timm ViT-B/16 encoders: Medical MAE, MRM, and ``tiny_vit``; tokens = CLS + patch tokens."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from raypi.encoders.preprocess import Preprocessing
from raypi.encoders.registry import register
from raypi.encoders.spec import EncoderSpec, ResourceHint
from raypi.encoders.weights import LoadReport, load_checked, read_state_dict, single_file, unwrap

# MAE / MRM pre-training checkpoints hold more than the encoder: the pixel decoder, the mask
# token and (MRM) the report decoder. These are left out on purpose and reported.
PRETRAIN_EXTRAS = ("decoder_", "mask_token", "bert_encoder.", "bert_mlp.")


class ViTTokens(nn.Module):
    """A timm VisionTransformer (``self.model``) returning its normed tokens."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Map pixels [B, 3, H, W] to tokens [B, 1 + patches, D] (CLS first)."""
        return self.model.forward_features(pixels)


def build_timm_vit(name: str, **kwargs) -> ViTTokens:
    """Return timm's ``name`` ViT with random weights and no classifier head."""
    import timm

    return ViTTokens(timm.create_model(name, pretrained=False, num_classes=0, **kwargs))


TINY_VIT = dict(img_size=64, patch_size=16, embed_dim=64, depth=2, num_heads=2)
"""The tiny ViT of tests and the demo (patch 16 on 64 px -> CLS + 16 tokens of width 64)."""


def tiny_vit_trunk() -> nn.Module:
    """Return timm's ``VisionTransformer`` of ``TINY_VIT`` without a classifier head."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(num_classes=0, **TINY_VIT)


def build_tiny_vit() -> ViTTokens:
    """Return a 2-block timm ViT of width 64 on 64 px images (patch 16 -> 1 + 16 tokens)."""
    return ViTTokens(tiny_vit_trunk())


def load_mae_checkpoint(module: ViTTokens, path: str) -> LoadReport:
    """Load an MAE-style ``.pth``, dropping decoder/text keys.

    Both Medical MAE and MRM save through MAE's ``util/misc.py save_model``:
    ``{'model', 'optimizer', 'epoch', 'scaler', 'args': argparse.Namespace}``; ``model`` is
    read (as MRM's README loads ``torch.load("MRM.pth")["model"]``), the Namespace as inert
    metadata.

    Args:
        module: A :class:`ViTTokens`.
        path: The checkpoint file, or a folder holding only it.

    Returns:
        The load report.
    """
    file = single_file(path)
    checkpoint = read_state_dict(file)
    entry = next((k for k in ("model", "state_dict") if isinstance(checkpoint.get(k), dict)), "")
    state = unwrap(checkpoint, ("model", "state_dict"))
    return load_checked(
        module.model,
        state,
        source=str(file),
        prefixes=("module.", ""),
        drop=PRETRAIN_EXTRAS,
        entry=entry,
    )


VIT_B16 = "vit_base_patch16_224"
TINY_PREPROCESSING = Preprocessing(resize=72, crop=64, source="tiny variant (ImageNet stats)")

register(
    EncoderSpec(
        name="medical_mae",
        kind="image",
        family="vit",
        token_shape=(197, 768),
        input_size=224,
        weights_hint="Medical MAE ViT-B/16 (0.5M) pre-training checkpoint vit-b_CXR_0.5M_mae.pth "
        "({'model', 'optimizer', 'epoch', 'scaler', 'args'}; 'model' read, decoder keys "
        "dropped) at $RAYPI_HOME/weights/medical_mae; published by the authors via "
        "github.com/lambert-x/medical_mae",
        hint=ResourceHint(gpu_memory_gb=4.0, batch_size=128),
        description="timm ViT-B/16 at 224: CLS + 14x14 patch tokens x 768 (final norm)",
        factory=partial(build_timm_vit, VIT_B16),
        loader=load_mae_checkpoint,
        preprocessing=Preprocessing(resize=238, crop=224, source="study A (GLoRIA & Medical MAE)"),
    )
)

register(
    EncoderSpec(
        name="mrm",
        kind="image",
        family="vit",
        token_shape=(197, 768),
        input_size=224,
        weights_hint="MRM.pth from github.com/RL4M/MRM-pytorch ({'model', 'optimizer', 'epoch', "
        "'scaler', 'args'}; 'model' read; pixel and report decoders dropped) at "
        "$RAYPI_HOME/weights/mrm",
        hint=ResourceHint(gpu_memory_gb=4.0, batch_size=128),
        description="timm ViT-B/16 at 224: CLS + 14x14 patch tokens x 768 (final norm)",
        factory=partial(build_timm_vit, VIT_B16),
        loader=load_mae_checkpoint,
        preprocessing=Preprocessing(
            resize=224,
            crop=224,
            color="gray3",
            mean=(0.4978,),
            std=(0.2449,),
            source="study A (MRM-pytorch test transform: Resize, CenterCrop, Grayscale(3))",
        ),
    )
)

register(
    EncoderSpec(
        name="tiny_vit",
        kind="image",
        family="vit",
        token_shape=(17, 64),
        input_size=64,
        weights_hint="MAE-style .pth ({'model': ...}) of tiny_vit (tests and demo only)",
        hint=ResourceHint(gpu_memory_gb=0.5, batch_size=256),
        description="tiny test/demo timm ViT: 2 blocks, width 64, 64 px -> CLS + 16 tokens",
        factory=build_tiny_vit,
        loader=load_mae_checkpoint,
        preprocessing=TINY_PREPROCESSING,
        tiny=True,
    )
)

register(
    EncoderSpec(
        name="demo_vit_ssl",
        kind="image",
        family="vit",
        token_shape=(17, 64),
        input_size=64,
        weights_hint="MAE-style checkpoint ({'model', 'optimizer', 'epoch', 'scaler', 'args'}) "
        "that `raypi pretrain` writes to $RAYPI_HOME/weights/demo_vit_ssl (demo only)",
        hint=ResourceHint(gpu_memory_gb=0.5, batch_size=256),
        description="tiny_vit self-supervised on the demo images (SimCLR-style contrastive "
        "views): the demo's stand-in for RAD-DINO / MRM / Medical MAE / C2L",
        factory=build_tiny_vit,
        loader=load_mae_checkpoint,
        preprocessing=TINY_PREPROCESSING,
        tiny=True,
        demo_pretrained=True,
    )
)
