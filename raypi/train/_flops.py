"""FLOP counts of the heads, for thread choice and benchmarks (multiply-add = 2 FLOP)."""

from __future__ import annotations

from raypi.heads import head_spec


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


def attention_executed_flops(tokens: int, dim: int, qkv_dim: int | None = None, batch: int = 64):
    """Forward FLOP per sample that ``AttentionPool`` executes (merged scores, pooled values).

    Args:
        tokens: Number of tokens T.
        dim: Token width D.
        qkv_dim: Query/key/value width d (None = D).
        batch: Batch size, over which the merged form's W_q^T W_k product is shared.

    Returns:
        FLOP of one forward pass of one sample.
    """
    from raypi.train._attention import _merged_is_cheaper

    d = qkv_dim or dim
    if _merged_is_cheaper(batch * tokens, dim, d):
        scores = 2 * tokens * dim * dim + 2 * dim * dim * d / batch + 2 * tokens * tokens * dim
    else:
        scores = 2 * 2 * tokens * dim * d + 2 * tokens * tokens * d
    return scores + 2 * tokens * tokens + 2 * tokens * dim + 2 * dim * d


def batch_flops(head: str, tokens: int, dim: int, batch: int) -> int:
    """Rough forward FLOP of one batch of ``head`` by its FLOP model (``raypi.heads``).

    ``attention``: the attention layer as ``AttentionPool`` executes it; ``linear``: one pass
    over the tokens (a linear probe's LayerNorm and pooling).

    Args:
        head: Name of the head (``raypi.heads.HEAD_TABLE``).
        tokens: Number of tokens T.
        dim: Token width D.
        batch: Batch size.

    Returns:
        FLOP of one forward pass of the batch.
    """
    if head_spec(head).flops == "attention":
        return batch * attention_executed_flops(tokens, dim, batch=batch)
    return batch * 8 * tokens * dim
