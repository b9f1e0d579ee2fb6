"""What makes two extractions interchangeable: weights and preprocessing fingerprints, view seeds.

The weights fingerprint hashes the built module's state dict (names, dtypes, shapes, bytes),
so it is the same whichever file format the weights came from and changes whenever any
parameter does. The preprocessing fingerprint hashes what the spec's transforms produce for a
fixed synthetic image (view 0 and one augmented view, rounded to 1e-3), so a changed resize,
crop or normalisation is caught even when the spec's description did not change. Augmented
views use ``raypi.encoders.image_seed(image_id, seed)``, so a view's crop depends only on the
image, the view index and the run's seed — never on batching or scheduling.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from raypi.encoders import image_seed
from raypi.features import _tokens, store, trust

_ROUND = 3


def weights_fingerprint(module: torch.nn.Module) -> str:
    """Return a sha256 of every tensor in ``module``'s state dict."""
    hasher = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        values = tensor.detach().to("cpu").contiguous().reshape(-1)
        hasher.update(f"{name}|{values.dtype}|{tuple(tensor.shape)}|".encode())
        hasher.update(values.view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def _probe_image() -> np.ndarray:
    """A fixed, non-square grayscale gradient with structure in both directions."""
    rows, cols = np.mgrid[0:300, 0:260]
    return ((rows * 7 + cols * 3 + (rows * cols) % 31) % 256).astype(np.uint8)


def preprocessing_fingerprint(spec, seed: int) -> dict:
    """Describe an image encoder's preprocessing, with a hash of its output on a probe image.

    Args:
        spec: The image encoder spec (``preprocess`` and ``augment``).
        seed: Base seed of the augmented views.

    Returns:
        A JSON-able dict: input size, pixel shape, declared description and probe hash.
    """
    image = _probe_image()
    plain = spec.preprocess(image)
    augmented = spec.augment(image, 1, image_seed("probe", seed))
    hasher = hashlib.sha256()
    for tensor in (plain, augmented):
        rounded = np.round(tensor.float().numpy(), _ROUND) + 0.0  # + 0.0 turns -0.0 into 0.0
        hasher.update(rounded.astype(np.float32).tobytes())
    return {
        "input_size": getattr(spec, "input_size", None),
        "pixel_shape": list(plain.shape),
        "description": spec.preprocessing.describe(),
        "probe_sha256": hasher.hexdigest(),
    }


def tokenizer_fingerprint(module) -> dict:
    """Describe a text encoder's tokenizer by a hash of its vocabulary and its class."""
    tokenizer = getattr(module, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "get_vocab"):
        return {"tokenizer": type(tokenizer).__name__}
    vocab = sorted(tokenizer.get_vocab().items())
    digest = hashlib.sha256(json.dumps(vocab).encode()).hexdigest()
    return {
        "tokenizer": type(tokenizer).__name__,
        "vocab_sha256": digest,
        "lowercase": bool(getattr(tokenizer, "do_lower_case", False)),
    }


def store_identity(spec, weights_path, config) -> dict:
    """Return the manifest fields a store must share with this run.

    Builds the encoder from its weights (so wrong weights fail here, before Ray starts).

    Args:
        spec: The encoder's spec.
        weights_path: Its weights file or folder (None: random initialisation).
        config: The run's ``ExtractOptions``.

    Returns:
        Identity fields: format, encoder, weights and their fingerprint, dtype, shapes, and
        the preprocessing (or tokenizer) fingerprint.
    """
    from raypi.encoders.weights import fetch_weights

    module = spec.build(fetch_weights(weights_path))  # s3:// weights: a local copy
    fingerprint = weights_fingerprint(module)
    base = {
        "format": store.FORMAT,
        "encoder": spec.name,
        "kind": spec.kind,
        "family": spec.family,
        "weights": str(weights_path) if weights_path else None,
        "weights_fingerprint": fingerprint,
        **trust.manifest_fields(spec, weights_path),
        "dtype": config.dtype,
        "source_token_shape": list(spec.token_shape),
    }
    if spec.kind == "text":
        shape = (config.max_text_length, spec.token_shape[1])
        return {
            **base,
            "token_shape": list(shape),
            "max_length": config.max_text_length,
            "preprocessing": tokenizer_fingerprint(module),
            "tokens": "all",
            "pool": 1,
            "seed": None,
        }
    cls = _tokens.has_cls(spec.token_shape[0], getattr(spec, "has_cls", None))
    shape = _tokens.reduced_shape(tuple(spec.token_shape), config.tokens, config.pool, cls)
    return {
        **base,
        "token_shape": list(shape),
        "has_cls": cls,
        "tokens": config.tokens,
        "pool": config.pool,
        "max_length": None,
        "seed": config.seed,
        "preprocessing": preprocessing_fingerprint(spec, config.seed),
    }
