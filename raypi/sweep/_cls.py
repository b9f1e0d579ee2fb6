"""Heads that read a CLS token (``raypi.heads``): refused, before anything runs, where none is."""

from __future__ import annotations

from raypi.heads import HEAD_TABLE, IMAGE_HEADS, image_head


def check_cls_heads(heads: tuple[str, ...], encoders: tuple[str, ...]) -> None:
    """Refuse image heads that need a CLS token on image encoders whose tokens have none.

    CLS-LP reads token 0; on a CNN's patch grid that is the top-left patch, not a summary.

    Args:
        heads: A grid block's image heads.
        encoders: Its image encoders.

    Raises:
        ValueError: A head is no image head, or naming the encoders without a CLS token.
    """
    needing = [name for name in heads if image_head(name).needs_cls]
    if not needing:
        return
    from raypi.encoders import get_encoder
    from raypi.features._tokens import has_cls

    lacking = []
    for name in encoders:
        spec = get_encoder(name)
        if not has_cls(spec.token_shape[0], getattr(spec, "has_cls", None)):
            lacking.append(f"{name} ({spec.family}, {spec.token_shape[0]} tokens)")
    if lacking:
        heads_named = ", ".join(needing)
        others = " or ".join(n for n in IMAGE_HEADS if not HEAD_TABLE[n].needs_cls)
        raise ValueError(
            f"head {heads_named} reads a CLS token, which encoder(s) {', '.join(lacking)} do "
            f"not have; use {others} for them, or list them in a grid block "
            f"without {heads_named}"
        )
