"""embedding with torch's max_norm, and embedding_bag: sums, means or maxima of bags of embedding rows.

Both are composed of engine ops (the lookup, a product with the per-sample weights, an index_add into the
bags or a gather of each bag's maxima), so their gradients, create_graph and CuPy come from those ops.
Indices are checked by the lookup (on a GPU on the device, see engine.ops.index_checks), offsets here the
same way: nothing waits for the GPU.
"""

from __future__ import annotations

import functools

from engine.autograd.function import ShapeError
from engine.autograd.grad_mode import no_grad
from engine.backend import array_module
from engine.ops import nn as _nn
from engine.ops.gather_scatter import gather, index_add
from engine.ops.index_checks import LATER, all_below, first_bad, out_of_range, settled_checks
from engine.ops.math_more import renormed
from engine.ops.shape import cat
from engine.tensor import Tensor

__all__ = ["embedding", "embedding_bag", "embedding_renorm_"]

MODES = ("sum", "mean", "max")


def embedding_renorm_(weight: Tensor, input: Tensor, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale, in place, each row of `weight` that `input` names whose norm_type-norm exceeds max_norm, to
    max_norm (torch's max_norm / (norm + 1e-7)); returns `weight`."""
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape "
                         f"{tuple(weight.shape)}")
    idx = (input.array if isinstance(input, Tensor) else input).reshape(-1)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be an integer tensor, got {idx.dtype}; use indices.long()")
    if not idx.size:
        return weight
    xp, n = array_module(weight.array), weight.shape[0]
    if settled_checks(xp) is None and not all_below(idx, n):
        bad = int(idx[out_of_range(idx, n)][0])
        raise IndexError(_nn._bad_index_message(bad, tuple(weight.shape)))
    # on a GPU a bad index is left to the lookup's device-side check; here it stands for row 0 and changes nothing
    bad = out_of_range(idx, n)
    safe = xp.where(bad, 0, idx)
    with no_grad():
        scaled = renormed(Tensor._wrap(weight.array[safe]), norm_type, 0, max_norm).array
    # a row named twice gets the same value from both writes, so no unique() (a host sync on a GPU) is needed;
    # an entry standing in for a bad index writes row 0's own value unless row 0 is named too
    named = xp.zeros(n + 1, bool)
    named[xp.where(bad, n, idx)] = True
    keep = named[safe]
    # an in-place write under no_grad, as torch's: it bumps the version, so a graph that saved the old
    # weight refuses to backward through it
    weight.array[safe] = xp.where(keep[:, None], scaled, weight.array[safe])
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


def _bad_offsets(size: int, count: int, include_last: bool, values) -> ValueError | None:
    """The error for index_checks.first_bad's (key, value) of the offsets check in `_bags`; None if none."""
    key, value = values
    if not key:
        return None
    i = count - key
    if i == 0 and value != 0:
        return ValueError(f"embedding_bag: offsets[0] has to be 0, i.e., the first sequence in the mini-batch "
                          f"has to start from position 0. However, got {value}")
    if include_last and i == count - 1 and value != size:
        # torch's kernels disagree with each other past a shorter last offset: refuse it
        return ValueError(f"embedding_bag: with include_last_offset=True the last offset must be the input's "
                          f"length ({size}), got {value}")
    why = f"past the input's length ({size})" if value > size else "below the offset before it"
    return ValueError(f"embedding_bag: offsets must be non-decreasing and at most the input's length ({size}), "
                      f"got offsets[{i}] = {value}, {why}")


def _check_offsets(xp, starts, size: int, include_last: bool) -> None:
    """Raise for bad offsets at once on the CPU; on a GPU post the check to the device (its error comes later)."""
    count = starts.shape[0]
    if include_last and not count:
        raise ValueError("embedding_bag: with include_last_offset=True the last offset must be the input's "
                         f"length ({size}), got no offsets")
    if not count:
        return
    bad = starts > size
    bad[1:] |= starts[1:] < starts[:-1]
    bad[0] |= starts[0] != 0
    if include_last:
        bad[-1] |= starts[-1] != size
    verdict = functools.partial(_bad_offsets, size, count, include_last)
    status = first_bad(xp, bad, starts)
    checks = settled_checks(xp)
    if checks is None:
        error = verdict(status.tolist())
        if error is not None:
            raise error
    else:
        checks.post(status, lambda values: _later(verdict(values)))


def _later(error: ValueError | None) -> ValueError | None:
    return None if error is None else ValueError(f"{error} {LATER}")


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
        starts = xp.arange(idx.shape[0]) * idx.shape[1]  # rows of no columns: that many empty bags
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
    _check_offsets(xp, starts, idx.size, include_last_offset)
    return idx, (starts[:-1] if include_last_offset else starts), per_sample_weights


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
    if max_norm is not None:
        embedding_renorm_(weight, Tensor._wrap(idx), max_norm, norm_type)
    rows = _nn.embedding(Tensor._wrap(idx), weight, padding_idx)  # checks the indices
    xp = array_module(idx)
    bag = xp.searchsorted(starts, xp.arange(idx.size), side="right") - 1  # the bag of each entry
    keep = bag >= 0
    if padding_idx is not None:
        keep &= idx != padding_idx
    bags = starts.shape[0]
    if mode == "max":
        return _bag_max(xp, rows, bag, keep, bags)
    target = xp.where(keep, bag, 0)
    scale = keep.astype(rows.array.dtype)
    contribution = rows * Tensor._wrap(scale[:, None])
    if psw is not None:
        contribution = contribution * psw.reshape(-1, 1)
    out = Tensor._wrap(xp.zeros((bags, dim), rows.array.dtype))
    out = index_add(out, 0, Tensor._wrap(target), contribution)
    if mode == "mean":
        counts = xp.zeros(bags, rows.array.dtype)
        xp.add.at(counts, target, scale)
        out = out / Tensor._wrap(xp.maximum(counts, 1)[:, None])
    return out


def _bag_max(xp, rows: Tensor, bag, keep, bags: int) -> Tensor:
    """Each bag's elementwise maximum of its kept rows: a gather of the winning rows (the first maximum, as
    torch's, where a NaN never wins), an empty bag reading 0. Work and memory go with rows x dim, whatever
    the bags' lengths: one sort of (bag and column, value, row), no scatter-reduction (which CuPy lacks)."""
    values = rows.array
    length, dim = values.shape
    # flat (bag, column) slots, one spare bag for the rows left out
    slot = (xp.where(keep, bag, bags)[:, None] * dim + xp.arange(dim)).reshape(-1)
    row = xp.broadcast_to(xp.arange(length, dtype=xp.int64)[:, None], values.shape).reshape(-1)
    flat = values.reshape(-1).astype(xp.float64)
    larger_first = xp.where(xp.isnan(flat), xp.inf, -flat)
    order = xp.lexsort(xp.stack([row.astype(xp.float64), larger_first, slot.astype(xp.float64)]))
    ordered = slot[order]
    lead = xp.ones(ordered.shape, bool)  # the first of each slot in the order: its bag's maximum
    lead[1:] = ordered[1:] != ordered[:-1]
    first = xp.full((bags + 1) * dim, length, xp.int64)  # `length`: the zero row appended below
    first[ordered[lead]] = row[order][lead]
    padded = cat([rows, Tensor._wrap(xp.zeros((1, dim), values.dtype))], 0)
    return gather(padded, 0, Tensor._wrap(first.reshape(bags + 1, dim)[:bags]))
