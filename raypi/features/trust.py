"""No silent random features: which weights an extraction uses, and what its store records.

A real encoder (one with published weights) is extracted from its weights or not at all,
unless the run asks for its random initialisation on purpose (``random_weights``). Tiny
encoders (``tiny_vit``, ``tiny_bert``, ``tiny_resnet``) have no published weights: they are
random by design, the study's "no pre-training" control. Every manifest records both facts, so
that a sweep refuses random features it was not told to expect, and the report names them.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

RANDOM_WEIGHTS = "random_weights"
"""Manifest field: True when the features come from a random initialisation."""
WEIGHTS_PUBLISHED = "weights_published"
"""Manifest field: False for encoders with no published weights (random by design)."""


def weights_published(spec) -> bool:
    """Return whether an encoder has upstream weights to load (tiny test encoders have none)."""
    return not getattr(spec, "tiny", False) or getattr(spec, "demo_pretrained", False)


def weights_of(spec, weights: dict[str, str], allow_random: bool = False) -> str | None:
    """Return the weights an extraction of ``spec`` uses; None for its random initialisation.

    Args:
        spec: The encoder's ``EncoderSpec``.
        weights: Weights file/folder (local or ``s3://``) per encoder name, as given.
        allow_random: Extract an encoder with published weights from its random
            initialisation when none are given or found (``--random-weights``).

    Returns:
        The weights given, else ``$RAYPI_HOME/weights/NAME`` when present, else None (only for
        encoders without published weights, or with ``allow_random``).

    Raises:
        WeightsError: A demo encoder that was not pre-trained yet, or a real encoder without
            weights and without ``allow_random``.
    """
    from raypi.encoders import WeightsError

    if spec.name in weights:
        return weights[spec.name]
    default = spec.default_weights()
    if default.exists():
        return str(default)
    if getattr(spec, "demo_pretrained", False):
        raise WeightsError(
            f"{spec.name}: no weights at {default}; this demo encoder is pre-trained on the "
            "demo data first: `raypi pretrain` (a demo sweep does it by itself)"
        )
    if not weights_published(spec):
        return None
    if not allow_random:
        raise WeightsError(
            f"{spec.name}: no weights given (--weights {spec.name}=PATH, local or s3://) and "
            f"none at {default}; expected {spec.weights_hint}. Its random initialisation is "
            "not extracted unless asked for: --random-weights (the manifest records it, and "
            "a sweep on such features must say `random_weights: true`)"
        )
    log.warning("%s: extracting a RANDOM initialisation (--random-weights)", spec.name)
    return None


def manifest_fields(spec, weights_path: str | None) -> dict:
    """Return the manifest fields that say whether features are random, and why."""
    return {RANDOM_WEIGHTS: weights_path is None, WEIGHTS_PUBLISHED: weights_published(spec)}


def is_random(manifest: dict) -> bool:
    """Return whether a store's features come from a random initialisation.

    Manifests written before ``random_weights`` existed say it with ``weights: null`` (an
    encoder extracted without weights); manifests without a ``weights`` field at all (the
    synthetic stores of tests and benchmarks) never came from an encoder.
    """
    if RANDOM_WEIGHTS in manifest:
        return bool(manifest[RANDOM_WEIGHTS])
    return "weights" in manifest and manifest["weights"] is None


def is_random_by_design(manifest: dict) -> bool:
    """Return whether a store's encoder has no published weights (older manifests: registry)."""
    if WEIGHTS_PUBLISHED in manifest:
        return not manifest[WEIGHTS_PUBLISHED]
    from raypi.encoders import list_encoders

    known = {spec.name: spec for spec in list_encoders()}
    spec = known.get(manifest.get("encoder"))
    return spec is not None and not weights_published(spec)


def unexpected_random(manifests: dict[tuple[str, str], dict]) -> list[str]:
    """Return a line per store of random features whose encoder has published weights.

    Args:
        manifests: ``(store, encoder) → manifest`` of the stores a sweep reads.

    Returns:
        One line per such store (empty when none).
    """
    return [
        f"{store}/{encoder}: extracted from a random initialisation (--random-weights), "
        "not from its published weights"
        for (store, encoder), manifest in sorted(manifests.items())
        if is_random(manifest) and not is_random_by_design(manifest)
    ]


def random_encoders(manifests: dict[tuple[str, str], dict]) -> dict[str, str]:
    """Return ``encoder → why`` for every store of random features (for sweep.yaml and report).

    Args:
        manifests: ``(store, encoder) → manifest`` of the stores a sweep reads.

    Returns:
        ``"no published weights"`` or ``"--random-weights"`` per random encoder.
    """
    return {
        encoder: "no published weights" if is_random_by_design(manifest) else "--random-weights"
        for (_, encoder), manifest in sorted(manifests.items())
        if is_random(manifest)
    }
