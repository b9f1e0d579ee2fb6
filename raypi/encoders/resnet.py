"""torchvision ResNets: C2L (ResNet-18), GLoRIA (ResNet-50), tiny_resnet; tokens = H·W × C."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch import nn

from raypi.encoders.preprocess import Preprocessing
from raypi.encoders.registry import register
from raypi.encoders.spec import EncoderSpec, ResourceHint
from raypi.encoders.weights import LoadReport, load_checked, read_state_dict, unwrap

STAGES = ("layer1", "layer2", "layer3", "layer4")


class ResNetTokens(nn.Module):
    """A torchvision ResNet (``self.model``, fc removed) whose last stage map becomes tokens."""

    def __init__(self, model: nn.Module, stages: tuple[str, ...] = STAGES):
        super().__init__()
        model.fc = nn.Identity()
        self.model = model
        self.stages = stages

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Map pixels [B, 3, H, W] to tokens [B, h·w, C] (row-major over the feature map)."""
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(pixels))))
        for stage in self.stages:
            x = getattr(m, stage)(x)
        return x.flatten(2).transpose(1, 2).contiguous()


def build_resnet(depth: int) -> ResNetTokens:
    """Return torchvision's ResNet-``depth`` (18 or 50), random weights, as a token encoder."""
    import torchvision

    return ResNetTokens(getattr(torchvision.models, f"resnet{depth}")(weights=None))


def build_tiny_resnet() -> ResNetTokens:
    """Return a 2-stage torchvision ResNet of width 64 (BasicBlock, 1 block per stage)."""
    from torchvision.models.resnet import BasicBlock, ResNet

    model = ResNet(BasicBlock, [1, 1, 1, 1])
    model.inplanes = 64
    model.layer2 = model._make_layer(BasicBlock, 64, 1, stride=2)
    model.layer3 = model.layer4 = nn.Identity()
    return ResNetTokens(model, stages=("layer1", "layer2"))


def load_resnet(module: ResNetTokens, path: str, prefixes: tuple[str, ...]) -> LoadReport:
    """Load a torchvision-style state dict, unwrapping MoCo / Lightning / DataParallel layouts.

    Args:
        module: A :class:`ResNetTokens`.
        path: ``.pth``/``.pt``/``.bin``/``.ckpt`` file (or a folder holding exactly one).
        prefixes: Key prefixes to try in order (e.g. ``module.encoder_q.``); ``""`` last.

    Returns:
        The load report.
    """
    file = _single_file(Path(path))
    state = unwrap(read_state_dict(file))
    return load_checked(module.model, state, source=str(file), prefixes=prefixes, drop=("fc.",))


def _single_file(path: Path) -> Path:
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.suffix in {".pth", ".pt", ".bin", ".ckpt", ".tar"}
        )
        if len(files) != 1:
            from raypi.encoders.weights import WeightsError

            raise WeightsError(f"{path}: expected one .pth/.pt/.bin/.ckpt file, found {files}")
        return files[0]
    return path


C2L_PREFIXES = ("module.encoder_q.", "encoder_q.", "module.", "model.", "")
GLORIA_PREFIXES = ("gloria.img_encoder.model.", "img_encoder.model.", "model.", "")

register(
    EncoderSpec(
        name="c2l",
        kind="image",
        family="resnet",
        token_shape=(49, 512),
        input_size=224,
        weights_hint="C2L ResNet-18 checkpoint (.pth; MoCo-style 'state_dict' with "
        "'module.encoder_q.' keys or a plain torchvision state dict) at $RAYPI_HOME/weights/c2l",
        hint=ResourceHint(gpu_memory_gb=2.0, batch_size=256),
        description="torchvision ResNet-18, layer4 map 7x7 -> 49 tokens x 512",
        factory=partial(build_resnet, 18),
        loader=partial(load_resnet, prefixes=C2L_PREFIXES),
        preprocessing=Preprocessing(resize=224, crop=224, source="study A (C2L's GitHub code)"),
    )
)

register(
    EncoderSpec(
        name="gloria",
        kind="image",
        family="resnet",
        token_shape=(49, 2048),
        input_size=224,
        weights_hint="GLoRIA Lightning checkpoint chexpert_resnet50.ckpt ('state_dict' with "
        "'gloria.img_encoder.model.' keys) at $RAYPI_HOME/weights/gloria",
        hint=ResourceHint(gpu_memory_gb=4.0, batch_size=256),
        description="torchvision ResNet-50, layer4 map at 224 -> 49 tokens x 2048 (study input; "
        "GLoRIA's own local features are layer3 at 299)",
        factory=partial(build_resnet, 50),
        loader=partial(load_resnet, prefixes=GLORIA_PREFIXES),
        preprocessing=Preprocessing(resize=238, crop=224, source="study A (GLoRIA & Medical MAE)"),
    )
)

register(
    EncoderSpec(
        name="tiny_resnet",
        kind="image",
        family="resnet",
        token_shape=(64, 64),
        input_size=64,
        weights_hint="torchvision-style state dict (.pth) of tiny_resnet (tests and demo only)",
        hint=ResourceHint(gpu_memory_gb=0.5, batch_size=256),
        description="tiny test/demo ResNet: 2 stages of width 64 at 64 px -> 8x8 = 64 tokens x 64",
        factory=build_tiny_resnet,
        loader=partial(load_resnet, prefixes=C2L_PREFIXES),
        preprocessing=Preprocessing(resize=72, crop=64, source="tiny variant (ImageNet stats)"),
        tiny=True,
    )
)
