"""Image preprocessing of the study and the augmented views (random resized crop 0.4-0.9)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SCALE = (0.4, 0.9)
CROP_RATIO = (3 / 4, 4 / 3)
_INTERPOLATION = {
    "bilinear": TF.InterpolationMode.BILINEAR,
    "bicubic": TF.InterpolationMode.BICUBIC,
}


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side, center-crop, scale to [0, 1], normalize (PIL + torchvision)."""

    resize: int
    """Target of the shorter side before cropping."""
    crop: int
    """Side of the square center crop (the network's input size)."""
    color: str = "rgb"
    """``"rgb"``: 3 channels from PIL's RGB; ``"gray3"``: PIL grayscale repeated to 3 channels."""
    mean: tuple[float, ...] | None = IMAGENET_MEAN
    """Per-channel mean after scaling to [0, 1] (one value broadcasts); None skips normalizing."""
    std: tuple[float, ...] | None = IMAGENET_STD
    """Per-channel std matching ``mean``."""
    interpolation: str = "bilinear"
    """``"bilinear"`` (torchvision's default) or ``"bicubic"``."""
    crop_rounding: str = "round"
    """Center-crop offset: ``"round"`` (torchvision) or ``"floor"`` (Hugging Face processors)."""
    source: str = ""
    """Where the numbers come from."""

    def apply(self, image: np.ndarray) -> torch.Tensor:
        """Preprocess one image for evaluation (view 0).

        Args:
            image: uint8 array [H, W] or [H, W, 3].

        Returns:
            Float tensor [C, crop, crop].
        """
        pil = TF.resize(_to_pil(image, self.color), self.resize, _INTERPOLATION[self.interpolation])
        return self._finish(self._center_crop(pil))

    def augment(self, image: np.ndarray, view: int, seed: int) -> torch.Tensor:
        """Return view ``view``: 0 is ``apply``; >= 1 a random resized crop seeded by (seed, view).

        Args:
            image: uint8 array [H, W] or [H, W, 3].
            view: View index.
            seed: Per-image seed.

        Returns:
            Float tensor [C, crop, crop].
        """
        if view < 0:
            raise ValueError(f"view must be >= 0, got {view}")
        if view == 0:
            return self.apply(image)
        pil = _to_pil(image, self.color)
        top, left, height, width = crop_box(pil.height, pil.width, seed, view)
        size = [self.crop, self.crop]
        pil = TF.resized_crop(
            pil, top, left, height, width, size, _INTERPOLATION[self.interpolation]
        )
        return self._finish(pil)

    def describe(self) -> str:
        """Return a one-line description (stored in feature manifests)."""
        norm = f"mean={self.mean} std={self.std}" if self.mean else "no normalization"
        return (
            f"resize shorter side {self.resize} ({self.interpolation}), center crop {self.crop}, "
            f"{self.color}, scale to [0,1], {norm}; views>=1: random resized crop "
            f"scale {CROP_SCALE} ratio (3/4, 4/3) to {self.crop}"
        )

    def _center_crop(self, pil: Image.Image) -> Image.Image:
        if self.crop_rounding == "round":
            return TF.center_crop(pil, [self.crop, self.crop])
        top, left = (pil.height - self.crop) // 2, (pil.width - self.crop) // 2
        return TF.crop(pil, top, left, self.crop, self.crop)

    def _finish(self, pil: Image.Image) -> torch.Tensor:
        pixels = TF.to_tensor(pil)
        if self.color == "gray3":
            pixels = pixels.expand(3, -1, -1).contiguous()
        if self.mean is not None:
            pixels = TF.normalize(pixels, list(self.mean), list(self.std))
        return pixels


def crop_box(height: int, width: int, seed: int, view: int) -> tuple[int, int, int, int]:
    """Sample a random-resized-crop box as torchvision does, from a (seed, view) generator.

    Args:
        height: Image height.
        width: Image width.
        seed: Per-image seed (non-negative after masking to 64 bits).
        view: View index >= 1.

    Returns:
        (top, left, crop height, crop width).
    """
    rng = np.random.default_rng([seed & (2**64 - 1), view])
    area = height * width
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        ratio = math.exp(rng.uniform(*log_ratio))
        crop_w = int(round(math.sqrt(target * ratio)))
        crop_h = int(round(math.sqrt(target / ratio)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            return top, left, crop_h, crop_w
    # torchvision's fallback: the whole image, clamped to the allowed aspect ratios.
    in_ratio = width / height
    if in_ratio < CROP_RATIO[0]:
        crop_w, crop_h = width, int(round(width / CROP_RATIO[0]))
    elif in_ratio > CROP_RATIO[1]:
        crop_w, crop_h = int(round(height * CROP_RATIO[1])), height
    else:
        crop_w, crop_h = width, height
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def image_seed(image_id: str, seed: int = 0) -> int:
    """Return a stable per-image seed for ``augment`` from an image id and a global seed.

    Args:
        image_id: The dataset's image id.
        seed: Global extraction seed.

    Returns:
        A 63-bit integer, identical across processes and machines.
    """
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _to_pil(image: np.ndarray, color: str) -> Image.Image:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(
            f"expected a uint8 numpy image, got {type(image).__name__} "
            f"{getattr(image, 'dtype', '')}"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected an image [H, W] or [H, W, 3], got shape {image.shape}")
    pil = Image.fromarray(image)
    return pil.convert("L" if color == "gray3" else "RGB")
