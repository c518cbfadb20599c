"""MultiheadAttention, with PyTorch's arguments, masks and parameter layout (state_dicts interchange)."""

from __future__ import annotations

import math

from engine import creation, ops
from engine.nn import functional as F
from engine.nn import init
from engine.nn.layers.linear import NonDynamicallyQuantizableLinear
from engine.nn.module import Module
from engine.nn.parameter import new_parameter
from engine.nn.settings import Setting
from engine.ops.activation import AttentionSoftmax
from engine.ops.attention import warn_if_keep_mask
from engine.tensor import Tensor


class MultiheadAttention(Module):
    """softmax(Q K^T / sqrt(head_dim) + mask) V in `num_heads` heads, then an output projection."""

    settings = (Setting("dropout", float, low=0.0, high=1.0, doc="dropout on the attention weights"),)

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) and num_heads ({num_heads}) "
                             "must be positive")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        new = dict(device=device, dtype=dtype)
        if self._qkv_same_embed_dim:  # torch's registration order, so state_dict keys come out alike
            self.in_proj_weight = new_parameter(3 * embed_dim, embed_dim, **new)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = new_parameter(embed_dim, embed_dim, **new)
            self.k_proj_weight = new_parameter(embed_dim, self.kdim, **new)
            self.v_proj_weight = new_parameter(embed_dim, self.vdim, **new)
            self.register_parameter("in_proj_weight", None)
        self.register_parameter("in_proj_bias", new_parameter(3 * embed_dim, **new) if bias else None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **new)
        self.register_parameter("bias_k", new_parameter(1, 1, embed_dim, **new) if add_bias_kv else None)
        self.register_parameter("bias_v", new_parameter(1, 1, embed_dim, **new) if add_bias_kv else None)
        self.add_zero_attn = add_zero_attn
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: xavier_uniform_ projections, zero biases, xavier_normal_ bias_k/bias_v."""
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                init.xavier_normal_(b)

    _reset_parameters = reset_parameters  # torch's name for it

    def _projections(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            weights = (self.in_proj_weight[:e], self.in_proj_weight[e:2 * e], self.in_proj_weight[2 * e:])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        biases = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        return tuple(F.linear(x, w, bb) for x, w, bb in zip((query, key, value), weights, biases))

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        batched = query.ndim == 3
        if not batched:  # (L, E): one sequence
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # work batch first: (N, L, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if query.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiheadAttention: query has {query.shape[-1]} features, expected embed_dim "
                             f"{self.embed_dim} (query shape {tuple(query.shape)})")
        n, tgt, _ = query.shape
        heads, d = self.num_heads, self.head_dim
        q, k, v = self._projections(query, key, value)
        if self.bias_k is not None:
            k = ops.cat([k, self.bias_k.expand(n, 1, self.embed_dim)], 1)
            v = ops.cat([v, self.bias_v.expand(n, 1, self.embed_dim)], 1)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        q = q.reshape(n, tgt, heads, d).transpose(1, 2)
        k = k.reshape(n, k.shape[1], heads, d).transpose(1, 2)
        v = v.reshape(n, v.shape[1], heads, d).transpose(1, 2)
        if self.add_zero_attn:
            zeros = creation.zeros((n, heads, 1, d), dtype=k.dtype, device=k.device)
            k, v = ops.cat([k, zeros], 2), ops.cat([v, zeros], 2)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        src = k.shape[2]
        scores = (q * (1.0 / math.sqrt(d))) @ k.transpose(-2, -1)  # (N, heads, L, S)
        mask = self._additive_mask(attn_mask, key_padding_mask, is_causal, n, tgt, src, scores)
        if mask is not None:
            scores = scores + mask
        # without the weights asked for, torch runs scaled_dot_product_attention, whose queries that every key is
        # masked from (an all-padding sequence) give zeros; with them, its softmax gives NaN there, as a plain one
        weights = F.softmax(scores, -1) if need_weights else AttentionSoftmax.apply(scores, dim=-1)
        weights = F.dropout(weights, self.dropout, self.training)
        # laid out (L, N, E) as torch's is, a batch-first result its transposed view: what comes after it (the
        # dropout of a Transformer layer) then draws its random numbers in torch's order
        out = self.out_proj((weights @ v).permute(2, 0, 1, 3).reshape(tgt, n, self.embed_dim))
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, (weights.squeeze(0) if not batched else weights)

    def _additive_mask(self, attn_mask, key_padding_mask, is_causal: bool, n: int, tgt: int, src: int,
                       scores: Tensor) -> Tensor | None:
        """One float mask broadcastable to (N, heads, L, S): -inf where attention is not allowed."""
        if attn_mask is None and is_causal:
            rows = creation.arange(tgt, device=scores.device).unsqueeze(1)
            attn_mask = creation.arange(src, device=scores.device).unsqueeze(0) > rows  # keys after the query
        mask = None
        if attn_mask is not None:
            mask = _as_additive(attn_mask, scores)
            if mask.ndim == 3:
                if mask.shape != (n * self.num_heads, tgt, src):
                    raise ValueError(f"MultiheadAttention: the 3-D attn_mask should have shape "
                                     f"{(n * self.num_heads, tgt, src)}, but got {tuple(mask.shape)}")
                mask = mask.reshape(n, self.num_heads, tgt, src)
            elif mask.shape != (tgt, src):
                raise ValueError(f"MultiheadAttention: the 2-D attn_mask should have shape {(tgt, src)}, "
                                 f"but got {tuple(mask.shape)}")
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (n, src):
                raise ValueError(f"MultiheadAttention: key_padding_mask should have shape {(n, src)}, "
                                 f"but got {tuple(key_padding_mask.shape)}")
            padding = _as_additive(key_padding_mask, scores).reshape(n, 1, 1, src)
            mask = padding if mask is None else mask + padding
        return mask


def _as_additive(mask: Tensor, like: Tensor) -> Tensor:
    """A bool mask (True = not allowed) as 0 / -inf in `like`'s dtype; a float mask unchanged."""
    if mask.dtype.name == "bool":
        zeros = creation.zeros(mask.shape, dtype=like.dtype, device=like.device)
        return zeros.masked_fill(mask, float("-inf"))
    warn_if_keep_mask("MultiheadAttention", mask)
    return mask.to(like.dtype)
