"""Self-attention followed by mean pooling, computed without the parts the mean makes redundant.

The study's head is LayerNorm → one self-attention layer (learnable linear q, k, v; dropout on
the attention weights) → mean over the attended tokens. Because the mean is linear,

    mean_i Σ_j A_ij v_j = (mean_i A_i) · (X W_v^T + b_v) = (ā X) W_v^T + (Σ_j ā_j) b_v,

so the value projection runs on one pooled vector instead of T tokens, and the T×T×d product
A·V becomes a vector-matrix product. Where it is cheaper (many tokens per batch relative to the
width, see ``_merged_is_cheaper``) the scores use the merged bilinear form
q_i·k_j = x_i (W_q^T W_k) x_j^T + x_j·(W_k^T b_q) + (terms constant in j, which softmax
ignores), replacing two T×D×d projections by one T×D×D product plus one D×d×D product per step.
Parameters, function and gradients are those of the plain layer (``reference_forward`` below is
the check).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class AttentionPool(nn.Module):
    """LayerNorm, single-head self-attention and (masked) mean pooling: [B, T, D] → [B, d]."""

    def __init__(self, dim: int, qkv_dim: int | None = None, dropout: float = 0.2) -> None:
        super().__init__()
        qkv_dim = qkv_dim or dim
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, qkv_dim)
        self.key = nn.Linear(dim, qkv_dim)
        self.value = nn.Linear(dim, qkv_dim)
        self.dropout = dropout
        self.scale = 1.0 / math.sqrt(qkv_dim)
        self.merged: bool | None = None  # None: choose per call by cost; True/False: force
        self.out_dim = qkv_dim

    def forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        dropout_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pool tokens; with ``lengths``, tokens at positions ≥ length never count.

        ``dropout_mask`` (in training: [B, T, T], zeros and 1/(1-p)) replaces the draw of
        ``F.dropout`` from the global generator, so a member's masks come from its own stream.
        """
        x = self.norm(tokens)
        scores = self._scores(x)
        if lengths is not None:
            valid = torch.arange(x.shape[1], device=x.device) < lengths[:, None]  # [B, T]
            scores = scores.masked_fill(~valid[:, None, :], torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1)
        if dropout_mask is not None and self.training:
            attn = attn * dropout_mask
        elif self.training and self.dropout > 0:
            attn = F.dropout(attn, self.dropout, self.training)
        if lengths is None:
            weights = attn.mean(dim=1)  # [B, T]: ā, the mean attention row
        else:
            query_weight = valid.to(attn.dtype) / lengths.clamp(min=1)[:, None].to(attn.dtype)
            weights = torch.bmm(query_weight[:, None, :], attn).squeeze(1)
        pooled = torch.bmm(weights[:, None, :].to(x.dtype), x).squeeze(1)  # [B, D]
        bias_weight = weights.sum(dim=1, keepdim=True)  # 1 without dropout and padding
        return F.linear(pooled, self.value.weight) + bias_weight * self.value.bias

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        merged = self.merged
        if merged is None:
            merged = _merged_is_cheaper(x.shape[0] * x.shape[1], x.shape[2], self.out_dim)
        if not merged:
            q, k = self.query(x), self.key(x)
            return torch.bmm(q, k.transpose(1, 2)) * self.scale
        bilinear = self.query.weight.t() @ self.key.weight * self.scale  # [D, D]
        key_bias = self.key.weight.t() @ self.query.bias * self.scale  # [D]
        left = torch.addmm(key_bias, x.reshape(-1, x.shape[-1]), bilinear)
        return torch.bmm(left.view_as(x), x.transpose(1, 2))


def _merged_is_cheaper(rows: int, dim: int, qkv_dim: int) -> bool:
    """Compare matmul FLOP of merged vs separate score projections for ``rows`` = B·T tokens.

    Separate: the q and k projections, 4·rows·D·d forward. Merged: 2·rows·D² plus 2·D²·d for
    W_q^T W_k. Backward triples both (the tokens are frozen inputs), so forward decides.
    """
    return 2 * rows * dim * dim + 2 * dim * dim * qkv_dim < 4 * rows * dim * qkv_dim


def reference_forward(
    pool: AttentionPool, tokens: torch.Tensor, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """The plain computation of ``pool`` (q, k, v for every token; A·V; mean), for checks.

    Args:
        pool: The module whose parameters to use (dropout is applied if it is training).
        tokens: Tokens [B, T, D].
        lengths: Optional valid lengths [B].

    Returns:
        Pooled vectors [B, d].
    """
    x = pool.norm(tokens)
    q, k, v = pool.query(x), pool.key(x), pool.value(x)
    scores = q @ k.transpose(1, 2) * pool.scale
    if lengths is None:
        valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    else:
        valid = torch.arange(x.shape[1], device=x.device) < lengths[:, None]
    scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
    attn = F.dropout(torch.softmax(scores, dim=-1), pool.dropout, pool.training)
    attended = attn @ v  # [B, T, d]
    mask = valid[:, :, None].to(attended.dtype)
    return (attended * mask).sum(1) / mask.sum(1).clamp(min=1)
