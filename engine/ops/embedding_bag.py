"""embedding with torch's max_norm, and embedding_bag: sums, means or maxima of bags of embedding rows.

Both are composed of engine ops (the lookup, a product with the per-sample weights, an index_add into the
bags or a gather of each bag's maxima), so their gradients, create_graph and CuPy come from those ops.
"""

from __future__ import annotations

import itertools
import math

from engine.autograd.function import ShapeError
from engine.backend import array_module
from engine.ops import nn as _nn
from engine.ops.gather_scatter import gather, index_add
from engine.ops.shape import cat
from engine.tensor import Tensor

__all__ = ["embedding", "embedding_bag", "embedding_renorm_"]

MODES = ("sum", "mean", "max")


def _indices(op: str, input: Tensor, num_embeddings: int):
    """The integer index array of `input`, every index checked against the table's rows."""
    idx = input.array if isinstance(input, Tensor) else input
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer tensor, got {idx.dtype}; use indices.long()")
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= num_embeddings:
            raise IndexError(f"{op}: index {lo if lo < 0 else hi} is out of range for {num_embeddings} "
                             f"embeddings (valid: 0 to {num_embeddings - 1})")
    return idx


def embedding_renorm_(weight: Tensor, input: Tensor, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale, in place, each row of `weight` that `input` names whose norm_type-norm exceeds max_norm, to
    max_norm (torch's max_norm / (norm + 1e-7)); returns `weight`."""
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape "
                         f"{tuple(weight.shape)}")
    xp = array_module(weight.array)
    rows = xp.unique(_indices("embedding", input, weight.shape[0]).reshape(-1))
    if not rows.size:
        return weight
    w = weight.array[rows]
    a = xp.abs(w)
    if norm_type == math.inf:
        norms = a.max(axis=1)
    elif norm_type == 0:
        norms = (a != 0).sum(axis=1).astype(w.dtype)
    else:
        norms = (a ** norm_type).sum(axis=1) ** (1 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1).astype(w.dtype)
    # an in-place write under no_grad, as torch's: it bumps the version, so a graph that saved the old
    # weight refuses to backward through it
    weight.array[rows] = w * scale[:, None]
    weight._vc[0] += 1
    return weight


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` picked by integer `input`; with max_norm, the rows looked up are first renormalised
    in place (as torch); the padding_idx row gets no gradient."""
    if sparse:
        raise NotImplementedError("embedding(sparse=True): the engine has no sparse gradients")
    if scale_grad_by_freq:
        raise NotImplementedError("embedding: scale_grad_by_freq is not supported")
    if max_norm is not None:
        embedding_renorm_(weight, input, max_norm, norm_type)
    return _nn.embedding(input, weight, padding_idx)


def _bags(input: Tensor, offsets, per_sample_weights, include_last_offset: bool):
    """The flat index array, the (sorted) start of each bag and the flat per-sample weights."""
    idx = input.array
    if per_sample_weights is not None and tuple(per_sample_weights.shape) != tuple(input.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights ({tuple(per_sample_weights.shape)}) is not None, "
                         f"then it must have the same shape as the input ({tuple(input.shape)})")
    xp = array_module(idx)
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: if input is 2D, then offsets has to be None, as input is treated as "
                             "a mini-batch of fixed length sequences")
        starts = xp.arange(0, idx.size, max(idx.shape[1], 1))[: idx.shape[0]]
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
        return idx.reshape(-1), starts, per_sample_weights
    if idx.ndim != 1:
        raise ShapeError(f"embedding_bag: input has to be a 1D or 2D tensor, got shape {tuple(input.shape)}")
    if offsets is None or offsets.ndim != 1:
        raise ValueError("embedding_bag: offsets has to be a 1D tensor when input is 1D, got "
                         f"{'None' if offsets is None else f'shape {tuple(offsets.shape)}'}")
    starts = offsets.array
    if starts.dtype.kind not in "iu":
        raise TypeError(f"embedding_bag: offsets must be an integer tensor, got {starts.dtype}")
    host = starts.tolist()
    if host and host[0] != 0:
        raise ValueError(f"embedding_bag: offsets[0] has to be 0, i.e., the first sequence in the mini-batch "
                         f"has to start from position 0. However, got {host[0]}")
    if any(b < a for a, b in itertools.pairwise(host)) or (host and host[-1] > idx.size):
        raise ValueError(f"embedding_bag: offsets must be non-decreasing and at most the input's length "
                         f"({idx.size}), got {host}")
    if include_last_offset:
        # torch's kernels disagree with each other past a shorter last offset: refuse it
        if not host or host[-1] != idx.size:
            raise ValueError(f"embedding_bag: with include_last_offset=True the last offset must be the input's "
                             f"length ({idx.size}), got {host[-1] if host else 'no offsets'}")
        starts = starts[:-1]
    return idx, starts, per_sample_weights


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None, max_norm: float | None = None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean",
                  sparse: bool = False, per_sample_weights: Tensor | None = None,
                  include_last_offset: bool = False, padding_idx: int | None = None) -> Tensor:
    """The sum, mean or max of each bag of `weight`'s rows: a bag is a row of a 2-D `input`, or a run of a
    1-D `input` that `offsets` starts; entries equal to padding_idx are left out, and an empty bag is 0."""
    if weight.ndim != 2:
        raise ShapeError(f"embedding_bag: weight has to be a 2D tensor, got shape {tuple(weight.shape)}")
    if mode not in MODES:
        raise ValueError(f"embedding_bag: mode has to be one of sum, mean or max, got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights is only supported for mode='sum' "
                                  f"(got mode={mode!r})")
    if sparse or scale_grad_by_freq:
        raise NotImplementedError("embedding_bag: sparse and scale_grad_by_freq are not supported")
    n, dim = weight.shape
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding_bag: padding_idx {padding_idx} must be within num_embeddings ({n})")
        padding_idx %= n
    idx, starts, psw = _bags(input, offsets, per_sample_weights, include_last_offset)
    _indices("embedding_bag", idx, n)
    if max_norm is not None:
        embedding_renorm_(weight, Tensor._wrap(idx), max_norm, norm_type)
    xp = array_module(idx)
    positions = xp.arange(idx.size)
    bag = xp.searchsorted(starts, positions, side="right") - 1  # the bag of each entry
    keep = bag >= 0
    if padding_idx is not None:
        keep &= idx != padding_idx
    bags = starts.shape[0]
    rows = _nn.embedding(Tensor._wrap(idx), weight, padding_idx)
    if mode == "max":
        return _bag_max(xp, rows, bag, keep, starts, bags)
    scale = keep.astype(rows.array.dtype)
    contribution = rows * Tensor._wrap(scale[:, None])
    if psw is not None:
        contribution = contribution * psw.reshape(-1, 1)
    out = Tensor._wrap(xp.zeros((bags, dim), rows.array.dtype))
    out = index_add(out, 0, Tensor._wrap(xp.where(keep, bag, 0)), contribution)
    if mode == "mean":
        counts = xp.bincount(bag[keep], minlength=bags).astype(rows.array.dtype)
        out = out / Tensor._wrap(xp.maximum(counts, 1)[:, None])
    return out


def _bag_max(xp, rows: Tensor, bag, keep, starts, bags: int) -> Tensor:
    """Each bag's elementwise maximum of its kept rows: a gather of the winning rows (an empty bag reads 0)."""
    values = rows.array
    length, dim = values.shape
    within = xp.arange(length) - starts[xp.maximum(bag, 0)]
    longest = int(within[keep].max()) + 1 if bool(keep.any()) else 0
    grid = xp.full((bags, max(longest, 1), dim), -xp.inf, values.dtype)
    slots = xp.full((bags, max(longest, 1)), length, bag.dtype)  # `length`: the zero row appended below
    grid[bag[keep], within[keep]] = values[keep]
    slots[bag[keep], within[keep]] = xp.arange(length)[keep]
    winner = grid.argmax(axis=1)  # (bags, dim): the first maximum's place within its bag
    chosen = slots[xp.arange(bags)[:, None], winner]
    padded = cat([rows, Tensor._wrap(xp.zeros((1, dim), values.dtype))], 0)
    return gather(padded, 0, Tensor._wrap(chosen.astype(xp.int64)))
