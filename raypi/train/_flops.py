"""FLOP counts of the heads, for thread choice and benchmarks (multiply-add = 2 FLOP)."""

from __future__ import annotations


def attention_reference_flops(tokens: int, dim: int, qkv_dim: int | None = None) -> int:
    """Forward FLOP per sample of the plain attention head (q, k, v per token, A·V, mean).

    Args:
        tokens: Number of tokens T.
        dim: Token width D.
        qkv_dim: Query/key/value width d (None = D).

    Returns:
        FLOP of one forward pass of one sample (training costs about 3 times as much).
    """
    d = qkv_dim or dim
    return 2 * 3 * tokens * dim * d + 2 * 2 * tokens * tokens * d


def attention_executed_flops(tokens: int, dim: int, qkv_dim: int | None = None) -> int:
    """Forward FLOP per sample that ``AttentionPool`` executes (merged scores, pooled values).

    Args:
        tokens: Number of tokens T.
        dim: Token width D.
        qkv_dim: Query/key/value width d (None = D).

    Returns:
        FLOP of one forward pass of one sample.
    """
    d = qkv_dim or dim
    if 2 * d >= dim:
        scores = 2 * tokens * dim * dim + 2 * tokens * tokens * dim
    else:
        scores = 2 * 2 * tokens * dim * d + 2 * tokens * tokens * d
    return scores + 2 * tokens * tokens + 2 * tokens * dim + 2 * dim * d


def batch_flops(head: str, tokens: int, dim: int, batch: int) -> int:
    """Rough forward FLOP of one batch of ``head`` (linear probes are a pass over the tokens).

    Args:
        head: Registry name of the head.
        tokens: Number of tokens T.
        dim: Token width D.
        batch: Batch size.

    Returns:
        FLOP of one forward pass of the batch.
    """
    if head in ("attention", "teacher", "text"):
        return batch * attention_executed_flops(tokens, dim)
    return batch * 8 * tokens * dim
