"""The ``cls_lp`` head needs a CLS token: refused, before anything runs, where there is none."""

from __future__ import annotations


def check_cls_heads(heads: tuple[str, ...], encoders: tuple[str, ...]) -> None:
    """Refuse the ``cls_lp`` head on image encoders whose tokens have no CLS token.

    CLS-LP reads token 0; on a CNN's patch grid that is the top-left patch, not a summary.

    Args:
        heads: A grid block's image heads.
        encoders: Its image encoders.

    Raises:
        ValueError: Naming the encoders without a CLS token.
    """
    if "cls_lp" not in heads:
        return
    from raypi.encoders import get_encoder
    from raypi.features._tokens import has_cls

    lacking = []
    for name in encoders:
        spec = get_encoder(name)
        if not has_cls(spec.token_shape[0], getattr(spec, "has_cls", None)):
            lacking.append(f"{name} ({spec.family}, {spec.token_shape[0]} tokens)")
    if lacking:
        raise ValueError(
            f"head cls_lp reads a CLS token, which encoder(s) {', '.join(lacking)} do not "
            "have; use mean_lp or attention for them, or list them in a grid block without "
            "cls_lp"
        )
