"""The demo's two image pre-training families, on tiny_vit's trunk and the demo images.

- ``demo_vit_ssl`` — self-supervised (SimCLR's contrastive objective between two augmented
  views of each image; no report, no label). Saved as MAE's ``util/misc.py save_model`` saves
  Medical MAE's and MRM's checkpoints (``{'model', 'optimizer', 'epoch', 'scaler', 'args'}``,
  plus the projector under its own key), so ``raypi.encoders.vit.load_mae_checkpoint`` reads it.
- ``demo_vit_clip`` — image–report alignment (CLIP's symmetric contrastive objective between
  each image and its own report, the report embedded by the frozen ``demo_bert``). The image
  tower is open_clip's timm tower; the folder is what open_clip's hub export writes for
  BiomedCLIP (``open_clip_config.json`` + ``open_clip_pytorch_model.bin`` holding ``visual.*``,
  ``text.*`` and ``logit_scale``), read by ``raypi.encoders.clip.load_open_clip_folder``.

Both recipes use the same augmentations (``recipes.AUGMENT``): small shifts, exposure and
contrast jitter, noise. They keep what the demo's tasks depend on — heart width relative to the
thorax, rib band width and spine curvature (age), the hidden groups' local signs — all local
structure that a global exposure or contrast change leaves in place.
"""

from __future__ import annotations

import argparse
import io as stdio
import json
import math
from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn

from raypi.pretrain._common import Outcome, seeded, train
from raypi.pretrain.recipes import CLIP_RECIPE, SSL_RECIPE, Recipe


def augment(pixels: torch.Tensor, options: dict, generator: torch.Generator) -> torch.Tensor:
    """Return one random view of a batch: a shift, exposure/contrast jitter and noise.

    Args:
        pixels: Normalised images [B, C, H, W].
        options: ``shift_px`` and optionally ``contrast``, ``brightness``, ``noise``.
        generator: Stream of the augmentations.
    """
    batch, _, height, width = pixels.shape
    shift = options["shift_px"]
    padded = F.pad(pixels, (shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * shift + 1, (batch, 2), generator=generator)
    view = torch.stack(
        [padded[i, :, y : y + height, x : x + width] for i, (y, x) in enumerate(offsets.tolist())]
    )
    scale = 1 + options.get("contrast", 0.0) * _symmetric(batch, generator)
    offset = options.get("brightness", 0.0) * _symmetric(batch, generator)
    noise = options.get("noise", 0.0) * torch.randn(view.shape, generator=generator)
    return view * scale + offset + noise


def _symmetric(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform draws in [-1, 1], one per image, shaped to broadcast over [B, C, H, W]."""
    return 2 * torch.rand(batch, 1, 1, 1, generator=generator) - 1


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Return the symmetric InfoNCE of matched rows of ``a`` and ``b`` (CLIP's loss)."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    target = torch.arange(len(a))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Return SimCLR's NT-Xent loss.

    Each view's positive is the other view of its image; every other view in the batch (of
    both augmentations) is a negative.
    """
    z = F.normalize(torch.cat([a, b]), dim=-1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    n = len(a)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, target)


def pretrain_ssl(pixels: torch.Tensor, seed: int, recipe: Recipe = SSL_RECIPE) -> Outcome:
    """Pre-train tiny_vit's trunk with SimCLR on the demo images.

    Args:
        pixels: Preprocessed demo images [N, 3, 64, 64].
        seed: Seed of the initialisation, batch order and augmentations.
        recipe: Epochs, batch size, learning rate, temperature, augmentation strengths.

    Returns:
        The MAE-style checkpoint, the loss per epoch and the trunk's tensors.
    """
    from raypi.encoders.vit import TINY_VIT, tiny_vit_trunk

    options = recipe.options
    generator = torch.Generator().manual_seed(seed)
    with seeded(seed):
        trunk = tiny_vit_trunk()
        width = TINY_VIT["embed_dim"]
        projector = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, options["projection"])
        )

        def loss_of(index):
            views = [augment(pixels[index], options, generator) for _ in range(2)]
            a, b = (projector(trunk.forward_features(view)[:, 0]) for view in views)
            return nt_xent(a, b, recipe.temperature)

        optimizer, losses = train(
            [trunk, projector], loss_of, len(pixels), recipe, generator, "SimCLR"
        )
    checkpoint = {
        "model": trunk.state_dict(),
        "projector": projector.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": recipe.epochs - 1,
        "scaler": {},
        "args": argparse.Namespace(model="tiny_vit", seed=seed, **asdict(recipe)),
    }
    return Outcome(
        files={"checkpoint-last.pth": _torch_bytes(checkpoint)},
        losses=losses,
        state=trunk.state_dict(),
    )


def pretrain_clip(
    pixels: torch.Tensor, reports: list[str], text_weights: str, seed: int, recipe=CLIP_RECIPE
) -> Outcome:
    """Align tiny_vit's trunk (in open_clip's timm tower) with the reports, CLIP-style.

    Args:
        pixels: Preprocessed demo images [N, 3, 64, 64], row i paired with ``reports[i]``.
        reports: The demo reports.
        text_weights: Folder of the pre-trained ``demo_bert`` (frozen; embeds the reports).
        seed: Seed of the initialisation, batch order and augmentations.
        recipe: Epochs, batch size, learning rate, temperature, options.

    Returns:
        The open_clip folder's files, the loss per epoch and the tower's tensors.
    """
    from raypi.encoders import get_encoder
    from raypi.encoders.clip import DEMO_EMBED_DIM, DEMO_VISION_CFG

    options = recipe.options
    text_spec = get_encoder(options["text_encoder"])
    text = text_spec.build(text_weights)
    tokens, lengths = text_spec.encode(reports, options["max_length"], text)
    pooled = tokens.sum(dim=1) / lengths.clamp(min=1).unsqueeze(-1)  # open_clip's mean pooler
    generator = torch.Generator().manual_seed(seed)
    with seeded(seed):
        tower = get_encoder(recipe.encoder).factory().model  # open_clip TimmModel
        width = pooled.shape[1]
        hidden = (width + DEMO_EMBED_DIM) // 2
        # open_clip's HFTextEncoder "mlp" projection (two bias-free linears around a GELU).
        proj = nn.Sequential(
            nn.Linear(width, hidden, bias=False),
            nn.GELU(),
            nn.Linear(hidden, DEMO_EMBED_DIM, bias=False),
        )
        logit_scale = nn.Parameter(torch.tensor(math.log(1 / recipe.temperature)))
        holder = nn.ParameterList([logit_scale])

        def loss_of(index):
            images = tower(augment(pixels[index], options, generator))
            reports_ = proj(pooled[index])
            return info_nce(images, reports_, 1 / logit_scale.exp().clamp(max=100))

        _, losses = train([tower, proj, holder], loss_of, len(pixels), recipe, generator, "CLIP")
    state = {f"visual.{k}": v for k, v in tower.state_dict().items()}
    state |= {f"text.transformer.{k}": v for k, v in text.model.state_dict().items()}
    state |= {f"text.proj.{k}": v for k, v in proj.state_dict().items()}
    state["logit_scale"] = logit_scale.detach().clone()
    config = {
        "model_cfg": {
            "embed_dim": DEMO_EMBED_DIM,
            "vision_cfg": DEMO_VISION_CFG,
            "text_cfg": {
                "hf_model_name": options["text_encoder"],
                "hf_tokenizer_name": options["text_encoder"],
                "hf_proj_type": "mlp",
                "hf_pooler_type": "mean_pooler",
                "context_length": options["max_length"],
            },
        },
        "preprocess_cfg": _preprocess_cfg(get_encoder(recipe.encoder).preprocessing),
    }
    return Outcome(
        files={
            "open_clip_config.json": (json.dumps(config, indent=2) + "\n").encode(),
            "open_clip_pytorch_model.bin": _torch_bytes(state),
        },
        losses=losses,
        state=tower.state_dict(),
    )


def _preprocess_cfg(preprocessing) -> dict:
    return {
        "size": preprocessing.crop,
        "mean": list(preprocessing.mean),
        "std": list(preprocessing.std),
        "interpolation": preprocessing.interpolation,
        "resize_mode": "shortest",
    }


def _torch_bytes(obj) -> bytes:
    buffer = stdio.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
