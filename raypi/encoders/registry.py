"""The encoder registry: one entry per name, unknown or duplicate names raise."""

from __future__ import annotations

from raypi.encoders.spec import EncoderSpec

_REGISTRY: dict[str, EncoderSpec] = {}


def register(spec: EncoderSpec) -> EncoderSpec:
    """Add an encoder to the registry.

    Args:
        spec: The entry; its ``name`` must not be registered yet.

    Returns:
        The same spec, so a module can keep a handle on it.
    """
    if spec.name in _REGISTRY:
        raise ValueError(f"encoder {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_encoder(name: str) -> EncoderSpec:
    """Return the registry entry called ``name``, or raise listing the known names.

    Args:
        name: Encoder name, e.g. ``"rad_dino"`` or ``"tiny_vit"``.

    Returns:
        The encoder's spec.
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown encoder {name!r}; known encoders: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_encoders(kind: str | None = None, include_tiny: bool = True) -> list[EncoderSpec]:
    """Return the registered encoders in registration order.

    Args:
        kind: ``"image"`` or ``"text"`` to keep one kind; None keeps both.
        include_tiny: Whether to include the tiny test/demo variants.

    Returns:
        The matching specs.
    """
    if kind not in (None, "image", "text"):
        raise ValueError(f"kind must be 'image', 'text' or None, not {kind!r}")
    return [
        spec
        for spec in _REGISTRY.values()
        if (kind is None or spec.kind == kind) and (include_tiny or not spec.tiny)
    ]
