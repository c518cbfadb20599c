"""Scaled dot-product attention, composed from matmul, masking, softmax and dropout."""

from __future__ import annotations

import math

import numpy as np

from engine import dtypes, user_warning
from engine.autograd.function import ShapeError
from engine.backend import array_module
from engine.creation import ones
from engine.ops.activation import AttentionSoftmax, dropout
from engine.ops.index import masked_fill
from engine.ops.linalg import matmul
from engine.ops.sequence import repeat_interleave
from engine.tensor import Tensor

__all__ = ["scaled_dot_product_attention"]


def warn_if_keep_mask(op: str, mask: Tensor) -> None:
    """Warn when a float attention mask holds only 0s and 1s, some 1s: it is added to the scores, so it masks
    nothing (a keep mask from tril() or ones(), as torch silently accepts it; a causal model then sees the future)."""
    xp = array_module(mask.array)
    m = mask.array
    if m.size and bool(xp.any(m == 1)) and bool(xp.all((m == 0) | (m == 1))):
        user_warning.warn(f"{op}: attn_mask is a float mask of 0s and 1s, and a float mask is added to the attention "
                          "scores, so it masks nothing. Pass a bool mask (scaled_dot_product_attention: True where "
                          "attention is allowed; MultiheadAttention: True where it is not), or a float mask of 0 "
                          "and -inf")


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, enable_gqa: bool = False) -> Tensor:
    """softmax(query @ key^T * scale + mask) @ value; a bool mask keeps where true, a float mask is added.
    enable_gqa: key and value may have fewer heads (dim -3) than query, each shared by a group of query heads."""
    shapes = f"query {tuple(query.shape)}, key {tuple(key.shape)} and value {tuple(value.shape)}"
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ShapeError(f"scaled_dot_product_attention: {shapes} must have at least 2 dimensions")
    if enable_gqa and min(query.ndim, key.ndim, value.ndim) >= 3 and key.shape[-3] != query.shape[-3]:
        heads, kv_heads = query.shape[-3], key.shape[-3]
        if heads % kv_heads or value.shape[-3] != kv_heads:
            raise ShapeError(f"scaled_dot_product_attention: with enable_gqa, the {heads} query heads must be a "
                             f"multiple of the key's and value's heads (dim -3), got {shapes}")
        key = repeat_interleave(key, heads // kv_heads, dim=-3)
        value = repeat_interleave(value, heads // kv_heads, dim=-3)
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: {shapes} must be (..., L, E), (..., S, E) and (..., S, Ev)")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both")
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = matmul(query, key.transpose(-2, -1)) * scale
    if is_causal:
        attn_mask = ones(query.shape[-2], key.shape[-2], dtype=dtypes.bool_, device=query.device).tril()
    if attn_mask is not None:
        if not _broadcasts_to(tuple(attn_mask.shape), tuple(scores.shape)):
            raise ShapeError(f"scaled_dot_product_attention: attn_mask {tuple(attn_mask.shape)} does not "
                             f"broadcast to the scores {tuple(scores.shape)} of {shapes}")
        if attn_mask.dtype is dtypes.bool_:
            scores = masked_fill(scores, attn_mask.logical_not(), -math.inf)
        else:
            warn_if_keep_mask("scaled_dot_product_attention", attn_mask)
            scores = scores + attn_mask
    # a query every key is masked from (an all-padding sequence) attends to nothing: zeros, as torch's
    weights = AttentionSoftmax.apply(scores, dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return matmul(weights, value)


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False
