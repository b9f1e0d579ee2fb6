"""The pipeline's per-batch work: decode + preprocess (CPU tasks) and encode + write (actors).

Every stage passes a row on with an ``error`` column (empty when fine) instead of dropping
it, so the driver sees each (image, view) once more at the end — written or skipped, with why.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from raypi import io
from raypi.data.tables import decode_image, image_location
from raypi.encoders import image_seed
from raypi.encoders.weights import fetch_weights
from raypi.features import _tokens, schema, store
from raypi.features._identity import weights_fingerprint

OK = ""


def _read_image(root: str, image_path: str) -> tuple[np.ndarray | None, str]:
    """Return ``(image, "")`` or ``(None, reason)``; reasons never hold file content."""
    location = image_location(root, image_path)
    try:
        data = io.read_bytes(location)
    except (FileNotFoundError, OSError) as error:
        return None, f"missing or unreadable file ({type(error).__name__}): {image_path}"
    try:
        return decode_image(data), OK
    except ValueError as error:
        return None, f"{error}: {image_path}"


def decode_views(batch: dict, *, spec, root: str, seed: int, pixel_shape: tuple) -> dict:
    """Decode each image once and preprocess every view it still needs.

    Args:
        batch: Columns ``image_id``, ``image_path``, ``views`` (list of view indices).
        spec: Image encoder spec.
        root: Dataset root the image paths are relative to.
        seed: Base seed of the augmented views.
        pixel_shape: ``[C, H, W]`` the spec produces (zeros stand in for failed images).

    Returns:
        One row per (image, view): ``image_id``, ``view``, ``pixels``, ``error``.
    """
    ids, views, pixels, errors = [], [], [], []
    blank = np.zeros(pixel_shape, dtype=np.float32)
    for image_id, image_path, wanted in zip(batch["image_id"], batch["image_path"], batch["views"]):
        image, error = _read_image(root, str(image_path))
        for view in wanted:
            array = blank
            if not error:
                try:
                    array = spec.augment(image, int(view), image_seed(str(image_id), seed)).numpy()
                except Exception as failure:  # noqa: BLE001 - reported per row, run goes on
                    error = f"preprocessing failed ({type(failure).__name__}): {image_path}"
                    array = blank
            ids.append(str(image_id))
            views.append(int(view))
            pixels.append(array.astype(np.float32, copy=False))
            errors.append(error)
    return {
        "image_id": np.array(ids, dtype=object),
        "view": np.array(views, dtype=np.int16),
        "pixels": np.stack(pixels) if pixels else np.zeros((0, *pixel_shape), np.float32),
        "error": np.array(errors, dtype=object),
    }


class _EncoderActor:
    """Holds one built encoder; each call encodes a batch and writes it as one shard."""

    def __init__(self, *, spec, weights, fingerprint: str, target: dict, device: str, threads: int):
        if device == "cpu" and threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.spec, self.target = spec, target
        module = spec.build(fetch_weights(weights))  # s3:// weights: this node's copy
        if weights_fingerprint(module) != fingerprint:
            raise RuntimeError(
                f"encoder {spec.name!r} built on this worker differs from the driver's build "
                "(weights changed during the run, or the build is not deterministic)"
            )
        self.module = module.to(self.device)

    def _write(self, table) -> int:
        return store.write_shard(self.target["store"], self.target["encoder"], table)[1]

    def _status(self, ids, errors, written: int, seconds: float, extra: dict) -> dict:
        size = np.zeros(len(ids), dtype=np.int64)
        spent = np.zeros(len(ids), dtype=np.float64)
        if len(ids):
            size[0], spent[0] = written, seconds
        return {"image_id": ids, **extra, "error": errors, "bytes": size, "seconds": spent}


class ImageEncoderActor(_EncoderActor):
    """Encode preprocessed views, reduce their tokens, write one shard per batch."""

    def __call__(self, batch: dict) -> dict:
        """Encode the rows without an error; return every row's status."""
        ids, views, errors = batch["image_id"], batch["view"], batch["error"]
        good = np.array([not error for error in errors], dtype=bool)
        written, seconds = 0, 0.0
        if good.any():
            start = time.perf_counter()
            pixels = torch.from_numpy(np.ascontiguousarray(batch["pixels"][good]))
            with torch.inference_mode():
                tokens = self.module(pixels.to(self.device))
            seconds = time.perf_counter() - start
            self._check(tokens)
            t = self.target
            tokens = _tokens.reduce_tokens(tokens, t["tokens"], t["pool"], t["cls"])
            table = schema.image_table(list(ids[good]), views[good], tokens, t["dtype"])
            written = self._write(table)
        return self._status(ids, errors, written, seconds, {"view": views})

    def _check(self, tokens: torch.Tensor) -> None:
        if tuple(tokens.shape[1:]) != tuple(self.spec.token_shape):
            raise RuntimeError(
                f"encoder {self.spec.name!r} emitted tokens {tuple(tokens.shape[1:])}; "
                f"its spec declares {tuple(self.spec.token_shape)}"
            )


class TextEncoderActor(_EncoderActor):
    """Encode reports truncated to ``max_length`` tokens, write one shard per batch."""

    def __call__(self, batch: dict) -> dict:
        """Encode a batch of reports; return every row's status."""
        ids, texts = batch["image_id"], [str(text) for text in batch["report"]]
        max_length = self.target["max_length"]
        start = time.perf_counter()
        with torch.inference_mode():
            tokens, lengths = self.spec.encode(texts, max_length, self.module)
        seconds = time.perf_counter() - start
        tokens = _pad(tokens.float(), max_length)
        table = schema.text_table(list(ids), tokens, lengths.cpu().numpy(), self.target["dtype"])
        errors = np.array([OK] * len(ids), dtype=object)
        return self._status(ids, errors, self._write(table), seconds, {})


def _pad(tokens: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad (or cut) ``[B, L, D]`` tokens to exactly ``length`` positions."""
    if tokens.shape[1] >= length:
        return tokens[:, :length]
    padding = tokens.new_zeros(tokens.shape[0], length - tokens.shape[1], tokens.shape[2])
    return torch.cat([tokens, padding], dim=1)
