"""The Transformer family: encoder and decoder layers, their stacks, and nn.Transformer (PyTorch's arguments,
submodule names and state_dict keys)."""

from __future__ import annotations

import copy
from collections.abc import Callable

from engine import creation, ops
from engine.nn import functional as F
from engine.nn import init
from engine.nn.containers import ModuleList
from engine.nn.layers.attention import MultiheadAttention
from engine.nn.layers.dropout import Dropout
from engine.nn.layers.linear import Linear
from engine.nn.layers.norm import LayerNorm
from engine.nn.module import Module
from engine.tensor import Tensor

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """The feed-forward activation: a name PyTorch accepts, or the callable itself."""
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise RuntimeError(f"activation should be relu/gelu, not {activation}")
        return _ACTIVATIONS[activation]
    return activation


def _check_heads(owner: str, d_model: int, nhead: int) -> None:
    if nhead > 0 and d_model % nhead:  # MultiheadAttention reports non-positive sizes itself
        raise ValueError(f"{owner}: d_model ({d_model}) must be divisible by nhead ({nhead})")


def _build_layer(layer: Module, blocks: int, d_model: int, nhead: int, dim_feedforward: int, dropout: float,
                 activation, layer_norm_eps: float, batch_first: bool, norm_first: bool, bias: bool,
                 new: dict) -> None:
    """Give an encoder (2 blocks) or decoder (3: plus attention over memory) layer its submodules, named
    and registered in PyTorch's order, so that state_dict keys and repr match."""
    _check_heads(type(layer).__name__, d_model, nhead)
    for name in ("self_attn", "multihead_attn")[:blocks - 1]:
        setattr(layer, name, MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                batch_first=batch_first, **new))
    layer.linear1 = Linear(d_model, dim_feedforward, bias=bias, **new)
    layer.dropout = Dropout(dropout)
    layer.linear2 = Linear(dim_feedforward, d_model, bias=bias, **new)
    layer.norm_first = norm_first
    for i in range(1, blocks + 1):
        setattr(layer, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **new))
    for i in range(1, blocks + 1):
        setattr(layer, f"dropout{i}", Dropout(dropout))
    layer.activation = _activation(activation)


def _self_attention(layer: Module, x: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
    """dropout1(self_attn(x, x, x)): the self-attention block of an encoder or decoder layer."""
    x = layer.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                        need_weights=False, is_causal=is_causal)[0]
    return layer.dropout1(x)


def _feed_forward(layer: Module, x: Tensor, out_dropout: Dropout) -> Tensor:
    """linear2(dropout(activation(linear1(x)))), then the layer's residual-branch dropout."""
    return out_dropout(layer.linear2(layer.dropout(layer.activation(layer.linear1(x)))))


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection and LayerNorm."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable[[Tensor], Tensor] = F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        _build_layer(self, 2, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                     batch_first, norm_first, bias, dict(device=device, dtype=dtype))

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + _self_attention(self, self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + _feed_forward(self, self.norm2(x), self.dropout2)
        x = self.norm1(x + _self_attention(self, x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + _feed_forward(self, x, self.dropout2))


class TransformerEncoder(Module):
    """`num_layers` copies of an encoder layer applied in turn, then an optional norm."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                        is_causal=bool(is_causal))
        return out if self.norm is None else self.norm(out)


class TransformerDecoderLayer(Module):
    """Self-attention, attention over the encoder's memory, then a feed-forward block; each residual + LayerNorm."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable[[Tensor], Tensor] = F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        _build_layer(self, 3, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                     batch_first, norm_first, bias, dict(device=device, dtype=dtype))

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        self._check_inputs(tgt, memory)
        x = tgt
        if self.norm_first:
            x = x + _self_attention(self, self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                                    memory_is_causal)
            return x + _feed_forward(self, self.norm3(x), self.dropout3)
        x = self.norm1(x + _self_attention(self, x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
        return self.norm3(x + _feed_forward(self, x, self.dropout3))

    def _mha_block(self, x: Tensor, memory: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        x = self.multihead_attn(x, memory, memory, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(x)

    def _check_inputs(self, tgt: Tensor, memory: Tensor) -> None:
        """Shape errors that name tgt and memory, before they surface deep inside an attention."""
        name, d_model = type(self).__name__, self.self_attn.embed_dim
        shapes = f"tgt shape {tuple(tgt.shape)}, memory shape {tuple(memory.shape)}"
        if tgt.ndim not in (2, 3) or memory.ndim != tgt.ndim:
            raise ValueError(f"{name}: tgt and memory must both be 3-D (batched) or both 2-D (unbatched), "
                             f"got {shapes}")
        for which, x in (("tgt", tgt), ("memory", memory)):
            if x.shape[-1] != d_model:
                raise ValueError(f"{name}: {which} has {x.shape[-1]} features, expected d_model {d_model} "
                                 f"({shapes})")
        axis = 0 if self.self_attn.batch_first else 1
        if tgt.ndim == 3 and tgt.shape[axis] != memory.shape[axis]:
            raise ValueError(f"{name}: tgt and memory must have the same batch size (dim {axis} with "
                             f"batch_first={self.self_attn.batch_first}), got {shapes}")


class TransformerDecoder(Module):
    """`num_layers` copies of a decoder layer applied in turn to tgt (each attending to memory), then a norm."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        out = tgt
        for layer in self.layers:
            out = layer(out, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                        tgt_key_padding_mask=tgt_key_padding_mask,
                        memory_key_padding_mask=memory_key_padding_mask,
                        tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return out if self.norm is None else self.norm(out)


class Transformer(Module):
    """An encoder over src and a decoder over tgt that attends to the encoder's output."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable[[Tensor], Tensor] = F.relu, custom_encoder: Module | None = None,
                 custom_decoder: Module | None = None, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        _check_heads(type(self).__name__, d_model, nhead)
        new = dict(device=device, dtype=dtype)
        layer_args = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                          layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first,
                          bias=bias, **new)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **layer_args),
                                              num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **new))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, **layer_args),
                                              num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **new))
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self) -> None:
        """PyTorch's default for the whole model: xavier_uniform_ on every matrix, the rest as built."""
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Tensor | None = None, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None, memory_key_padding_mask: Tensor | None = None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        shapes = f"src shape {tuple(src.shape)}, tgt shape {tuple(tgt.shape)}"
        if src.ndim != tgt.ndim:
            raise RuntimeError(f"Transformer: src and tgt must both be 3-D (batched) or both 2-D (unbatched), "
                               f"got {shapes}")
        axis = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[axis] != tgt.shape[axis]:
            raise RuntimeError(f"the batch number of src and tgt must be equal ({shapes}, "
                               f"batch_first={self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(f"the feature number of src and tgt must be equal to d_model ({self.d_model}), "
                               f"got {shapes}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """A (sz, sz) float mask: -inf above the diagonal (later positions), 0 elsewhere."""
        return ops.triu(creation.full((sz, sz), float("-inf"), dtype=dtype, device=device), 1)
