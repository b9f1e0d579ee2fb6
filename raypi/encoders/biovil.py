"""BioViL-T's image model: hi-ml-multimodal's ImageModel (ResNet-50 multi-image) at 448."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from raypi.encoders.preprocess import Preprocessing
from raypi.encoders.registry import register
from raypi.encoders.spec import EncoderSpec, ResourceHint
from raypi.encoders.weights import LoadReport, WeightsError, load_checked, read_state_dict

JOINT_FEATURE_SIZE = 128  # BioViL-T's projection size (biovil_t_image_model_proj_size_128.pt)


class BioViLTokens(nn.Module):
    """hi-ml-multimodal ``ImageModel`` (``self.model``); tokens are its 14x14 patch embeddings.

    For a single image the 512 channels are [ResNet-50 patch features mapped to 256 | the
    learnt ``missing_previous_emb`` (256)]: the second half is the same for every image.
    Both halves are kept, as ``ImageModel.patch_embeddings`` returns them.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Map pixels [B, 3, 448, 448] to tokens [B, 196, 512]."""
        patches, _ = self.model.encoder(pixels, return_patch_embeddings=True)
        return patches.flatten(2).transpose(1, 2).contiguous()


def build_biovil_t() -> BioViLTokens:
    """Build BioViL-T's ImageModel offline (no ``pretrained_model_path``: weights load later)."""
    with warnings.catch_warnings():  # hi-ml imports timm.models.layers (deprecated alias)
        warnings.simplefilter("ignore", FutureWarning)
        from health_multimodal.image.model.model import ImageModel
        from health_multimodal.image.model.types import ImageEncoderType

    model = ImageModel(
        img_encoder_type=ImageEncoderType.RESNET50_MULTI_IMAGE,
        joint_feature_size=JOINT_FEATURE_SIZE,
    )
    return BioViLTokens(model)


def load_biovil_t(module: BioViLTokens, path: str) -> LoadReport:
    """Load BioViL-T's image checkpoint: the ImageModel state dict hi-ml-multimodal publishes.

    Args:
        module: A :class:`BioViLTokens`.
        path: ``biovil_t_image_model_proj_size_128.pt``, or a folder holding it.

    Returns:
        The load report.
    """
    file = Path(path)
    if file.is_dir():
        candidates = sorted(file.glob("biovil_t_image_model*.pt")) or sorted(file.glob("*.pt"))
        if len(candidates) != 1:
            raise WeightsError(f"{file}: expected one biovil_t_image_model*.pt, found {candidates}")
        file = candidates[0]
    return load_checked(module.model, read_state_dict(file), source=str(file))


register(
    EncoderSpec(
        name="biovil_t",
        kind="image",
        family="biovil",
        token_shape=(196, 512),
        input_size=448,
        weights_hint="biovil_t_image_model_proj_size_128.pt (ImageModel state dict, from "
        "microsoft/BiomedVLP-BioViL-T) at $RAYPI_HOME/weights/biovil_t",
        hint=ResourceHint(gpu_memory_gb=6.0, batch_size=64),
        description="hi-ml-multimodal ImageModel resnet50_multi_image at 448: 14x14 patch tokens x "
        "512 (last 256 channels: constant missing-prior embedding for single images)",
        factory=build_biovil_t,
        loader=load_biovil_t,
        preprocessing=Preprocessing(
            resize=512,
            crop=448,
            color="gray3",
            mean=None,
            std=None,
            source="study A; hi-ml create_chest_xray_transform_for_inference(512, 448)",
        ),
    )
)
