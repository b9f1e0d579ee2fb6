"""torchvision ResNets: C2L (ResNet-18), GLoRIA (ResNet-50), tiny_resnet; tokens = H·W × C."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

from raypi.encoders.preprocess import Preprocessing
from raypi.encoders.registry import register
from raypi.encoders.spec import EncoderSpec, ResourceHint
from raypi.encoders.weights import (
    LoadReport,
    load_checked,
    read_state_dict,
    single_file,
    take_entry,
    unwrap,
)

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


class UpsampledResNetTokens(ResNetTokens):
    """GLoRIA's own image forward: inputs upsampled to ``size`` (bilinear, corners aligned)."""

    def __init__(self, model: nn.Module, stages: tuple[str, ...], size: int):
        super().__init__(model, stages)
        self.size = size

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Upsample pixels to ``size`` as ``gloria/models/vision_model.py`` does, then tokens."""
        pixels = nn.functional.interpolate(
            pixels, size=(self.size, self.size), mode="bilinear", align_corners=True
        )
        return super().forward(pixels)


def build_gloria_upstream() -> UpsampledResNetTokens:
    """Return ResNet-50 read as GLoRIA's local features: 299 px, layer3 map 19x19 x 1024."""
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    return UpsampledResNetTokens(model, ("layer1", "layer2", "layer3"), GLORIA_INPUT)


GLORIA_INPUT = 299
"""GLoRIA upsamples every input to 299 px before its ResNet-50 (``vision_model.py``)."""


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


def load_resnet(
    module: ResNetTokens, path: str, prefixes: tuple[str, ...], entry: str | None = None
) -> LoadReport:
    """Load a torchvision-style ResNet from a checkpoint, unwrapping its wrappers.

    Args:
        module: A :class:`ResNetTokens`.
        path: ``.pth``/``.pt``/``.bin``/``.ckpt`` file (or a folder holding exactly one).
        prefixes: Key prefixes to try in order (e.g. ``encoder.module.``); ``""`` last.
        entry: Checkpoint entry holding the weights (C2L: ``model``, or ``model_ema``); None
            = the first of ``state_dict``/``model``/``module`` present, or the file itself.

    Returns:
        The load report (naming the entry and prefix used).
    """
    file = single_file(Path(path))
    checkpoint = read_state_dict(file)
    if entry in checkpoint or entry not in (None, "model"):
        state, used = take_entry(checkpoint, entry, str(file)), entry  # raises when absent
    else:  # a plain or Lightning state dict, as other tools save a torchvision ResNet
        used = next((k for k in ("state_dict", "model") if isinstance(checkpoint.get(k), dict)), "")
        state = unwrap(checkpoint)
    return load_checked(
        module.model, state, source=str(file), prefixes=prefixes, drop=("fc.",), entry=used
    )


C2L_PREFIXES = ("encoder.module.", "module.", "")
"""C2L's ``InsResNet18`` wraps its ResNet as ``self.encoder = nn.DataParallel(resnet18)``
(funnyzhou/C2L_MICCAI2020 ``models/resnet_mixup.py``), so its keys read ``encoder.module.*``;
``module.`` (a DataParallel-saved torchvision model) and plain torchvision keys also load."""
GLORIA_PREFIXES = ("gloria.img_encoder.model.", "img_encoder.model.", "model.", "")

C2L = register(
    EncoderSpec(
        name="c2l",
        kind="image",
        family="resnet",
        token_shape=(49, 512),
        input_size=224,
        weights_hint="C2L ResNet-18 checkpoint as train_C2L_res18.py saves it (ckpt_epoch_N.pth "
        "or current.pth: {'opt', 'model', 'contrast', 'optimizer', 'epoch', 'model_ema'}; "
        "'model' read, as upstream's LinearProbing.py does; keys 'encoder.module.*'; the "
        "128-d fc projection dropped) at $RAYPI_HOME/weights/c2l; published by the authors "
        "via github.com/funnyzhou/C2L_MICCAI2020",
        hint=ResourceHint(gpu_memory_gb=2.0, batch_size=256),
        description="torchvision ResNet-18, layer4 map 7x7 -> 49 tokens x 512",
        factory=partial(build_resnet, 18),
        loader=partial(load_resnet, prefixes=C2L_PREFIXES, entry="model"),
        preprocessing=Preprocessing(resize=224, crop=224, source="study A (C2L's GitHub code)"),
    )
)

register(
    replace(
        C2L,
        name="c2l_ema",
        weights_hint="the same C2L checkpoint; reads its 'model_ema' entry (the momentum "
        "encoder) instead of 'model'",
        description="C2L's momentum (EMA) encoder: torchvision ResNet-18, 49 tokens x 512",
        loader=partial(load_resnet, prefixes=C2L_PREFIXES, entry="model_ema"),
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
        "'gloria.img_encoder.model.' keys; OmegaConf hyper_parameters read as inert metadata) "
        "at $RAYPI_HOME/weights/gloria; published by the authors via "
        "github.com/marshuang80/gloria (pretrained/chexpert_resnet50.ckpt)",
        hint=ResourceHint(gpu_memory_gb=4.0, batch_size=256),
        description="torchvision ResNet-50, layer4 map at 224 -> 49 tokens x 2048 (the study's "
        "input; gloria_upstream reads GLoRIA's own forward)",
        factory=partial(build_resnet, 50),
        loader=partial(load_resnet, prefixes=GLORIA_PREFIXES),
        preprocessing=Preprocessing(resize=238, crop=224, source="study A (GLoRIA & Medical MAE)"),
    )
)

register(
    EncoderSpec(
        name="gloria_upstream",
        kind="image",
        family="resnet",
        token_shape=(361, 1024),
        input_size=224,
        weights_hint="the same GLoRIA chexpert_resnet50.ckpt as gloria",
        hint=ResourceHint(gpu_memory_gb=6.0, batch_size=128),
        description="GLoRIA's own image forward: 224 crop upsampled to 299, layer3 local "
        "features 19x19 -> 361 tokens x 1024 (the study does not say which it used)",
        factory=build_gloria_upstream,
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
