"""What an encoder is: architecture factory, weights loader, preprocessing, token layout, hint."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from raypi.encoders.preprocess import Preprocessing
from raypi.encoders.weights import LoadReport, WeightsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResourceHint:
    """What one extraction worker of an encoder needs; the feature pipeline schedules by it."""

    gpu_memory_gb: float
    """GPU memory (weights + activations, fp16) for one forward pass at ``batch_size``."""
    batch_size: int
    """Images (or reports) per forward pass that fits in ``gpu_memory_gb``."""
    needs_big_gpu: bool = False
    """True when a 16 GB GPU is not enough (RAD-DINO needed a 40 GB A100 in the study)."""

    def gpu_fraction(self, device_memory_gb: float) -> float:
        """Return the share of one GPU of ``device_memory_gb`` to request per worker.

        Args:
            device_memory_gb: Memory of the GPUs on the node.

        Returns:
            A fraction of ``raypi.cluster.GPU_SHARES`` (the one GPU-share rule).
        """
        from raypi.cluster import gpu_share

        return gpu_share(self.gpu_memory_gb, device_memory_gb)


@dataclass(frozen=True)
class EncoderSpec:
    """A registry entry: a frozen image or text encoder as the study uses it."""

    name: str
    """Registry name, e.g. ``rad_dino``; also the feature store's subfolder."""
    kind: str
    """``"image"`` or ``"text"``."""
    family: str
    """Architecture family: ``dinov2``, ``vit``, ``resnet``, ``biovil``, ``clip`` or ``bert``."""
    token_shape: tuple[int, int]
    """(T, D) of one output; for text encoders T is the longest supported length."""
    input_size: int
    """Square image side fed to the network (text: maximum tokens)."""
    weights_hint: str
    """Where and in which format the upstream weights are expected."""
    hint: ResourceHint
    """Resources for extraction."""
    description: str
    """One line: architecture, source package, token layout choice."""
    factory: Callable[[], torch.nn.Module] = field(repr=False)
    """Builds the architecture with random weights (offline)."""
    loader: Callable[[torch.nn.Module, str], LoadReport] | None = field(default=None, repr=False)
    """Loads upstream weights from a local file or folder into a built module."""
    preprocessing: Preprocessing | None = None
    """Image preprocessing of the study (None for text encoders)."""
    tiny: bool = False
    """True for the small test/demo variants."""
    demo_pretrained: bool = False
    """True for the demo encoders whose weights ``raypi.pretrain`` builds from the demo data
    (``$RAYPI_HOME/weights/NAME``); they are never extracted from a random initialisation."""

    def build(self, weights: str | Path | None = None) -> torch.nn.Module:
        """Build the encoder, load its weights, and return it frozen in eval mode.

        Args:
            weights: Local file or folder in the upstream format (see ``weights_hint``); None
                keeps the random initialisation, seeded by the name so it is reproducible.

        Returns:
            Image encoders: a module mapping pixels [B, C, H, W] to tokens [B, T, D].
            Text encoders: a module with ``encode(texts, max_length)`` (see ``encode``).
            ``module.load_report`` holds the :class:`LoadReport` (None without weights).
        """
        if weights is not None and not Path(weights).exists():
            raise WeightsError(f"{self.name}: weights not found at {weights} ({self.weights_hint})")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_name_seed(self.name))
            module = self.factory()
        report = None
        if weights is None and not self.tiny:
            log.warning("%s: no weights given, using a random initialisation", self.name)
        if weights is not None:
            if self.loader is None:
                raise ValueError(f"encoder {self.name!r} has no upstream weights to load")
            report = self.loader(module, str(weights))
        module.eval().requires_grad_(False)
        module.load_report = report
        return module

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """Apply the study's preprocessing to one image.

        Args:
            image: uint8 array [H, W] (grayscale) or [H, W, 3] (RGB).

        Returns:
            Float tensor [C, input_size, input_size].
        """
        return self._image_only().apply(image)

    def augment(self, image: np.ndarray, view: int, seed: int) -> torch.Tensor:
        """Return view ``view`` of an image: 0 is ``preprocess``, >= 1 a random resized crop.

        Args:
            image: uint8 array [H, W] or [H, W, 3].
            view: View index; views >= 1 crop a random area of 40-90% of the image.
            seed: Per-image seed (see :func:`raypi.encoders.image_seed`); the crop depends
                only on (seed, view).

        Returns:
            Float tensor [C, input_size, input_size].
        """
        return self._image_only().augment(image, view, seed)

    def encode(
        self, texts: list[str], max_length: int, module: torch.nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize and encode reports with a module from ``build``.

        Args:
            texts: Reports (empty strings allowed).
            max_length: Truncation length L in tokens, special tokens included.
            module: The module returned by ``build``.

        Returns:
            tokens float [B, L, D] (zero beyond each length) and lengths int64 [B].
        """
        if self.kind != "text":
            raise TypeError(f"encoder {self.name!r} is an image encoder; use preprocess + module")
        if not 1 < max_length <= self.token_shape[0]:
            raise ValueError(f"max_length must be in 2..{self.token_shape[0]}, got {max_length}")
        return module.encode(texts, max_length)

    def bytes_per_item(self, dtype_bytes: int = 2, length: int | None = None) -> int:
        """Return the stored size of one output (one image view, or one report).

        Args:
            dtype_bytes: Bytes per value (2 for fp16/bf16).
            length: For text encoders, the truncation length (default: the maximum).

        Returns:
            T * D * dtype_bytes.
        """
        tokens, width = self.token_shape
        return (length or tokens) * width * dtype_bytes

    def default_weights(self) -> Path:
        """Return where ``raypi`` looks for this encoder's weights: ``$RAYPI_HOME/weights/NAME``."""
        from raypi.paths import home

        return home() / "weights" / self.name

    def _image_only(self) -> Preprocessing:
        if self.preprocessing is None:
            raise TypeError(f"encoder {self.name!r} is a text encoder; use encode()")
        return self.preprocessing


def _name_seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
