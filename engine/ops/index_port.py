"""Indexing and scatter functions ported scripts call that the core index ops lack: take and put over the
flattened tensor, index_copy, index_put (with accumulate), index_reduce, masked_scatter, the *_scatter
functions that write a select, slice or diagonal of a copy, and Tensor.fill_diagonal_, as torch has them.

Each is composed of setitem, index_add and scatter_reduce, whose backwards (and backwards of backwards)
send every gradient where torch sends it: to the input outside the written positions, to the written
values inside them.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import ShapeError
from engine.backend import array_module
from engine.ops.gather_scatter import FOLDS, index_add, scatter_reduce
from engine.ops.index import setitem
from engine.ops.shape import _dim, broadcast_shapes
from engine.tensor import Tensor

__all__ = ["diagonal_scatter", "index_copy", "index_put", "index_put_", "index_reduce", "masked_scatter", "put",
           "select_scatter", "slice_scatter", "take"]


def _tensor(op: str, what: str, value, position: int | None = None) -> Tensor:
    """value, checked to be a Tensor; else torch's TypeError, naming the argument (and its position)."""
    if not isinstance(value, Tensor):
        where = "" if position is None else f" (position {position})"
        raise TypeError(f"{op}(): argument '{what}'{where} must be Tensor, not {type(value).__name__}")
    return value


def _long_index(op: str, index) -> np.ndarray:
    if _tensor(op, "index", index).array.dtype != np.int64:
        raise RuntimeError(f"{op}(): Expected a long tensor for index, but got {index.dtype.name}")
    return index.array


def _same_dtype(op: str, input: Tensor, source: Tensor, what: str = "source") -> None:
    if _tensor(op, what, source).dtype is not input.dtype:
        raise RuntimeError(f"{op}(): self and {what} expected to have the same dtype, but got self.dtype = "
                           f"{input.dtype.name} and {what}.dtype = {source.dtype.name}")


def _slice_shape(op: str, src: Tensor, shape: tuple) -> None:
    if tuple(src.shape) != tuple(shape):
        raise RuntimeError(f"{op}: expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(shape)}")


# ---- take and put: the flattened tensor ----------------------------------------------------------------
def _flat_index(op: str, input: Tensor, index) -> np.ndarray:
    idx = _long_index(op, index)
    n = input.numel()
    if idx.size:
        bad = (idx < -n) | (idx >= n)
        if bool(bad.any()):
            raise IndexError(f"out of range: tried to access index {int(idx[bad].ravel()[0])} on a tensor of {n} "
                             "elements.")
    return idx


def take(input: Tensor, index: Tensor) -> Tensor:
    """input read as 1-D at `index` (negative counts from the end), in index's shape (torch.take)."""
    _flat_index("take", input, index)
    return input.reshape(-1)[index]


def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """A copy of input with its flattened entries at `index` set to (or, accumulating, increased by) source's
    (torch.put)."""
    idx = _flat_index("put_", input, index)
    _same_dtype("put_", input, source)
    if source.numel() != idx.size:
        raise IndexError(f"put_(): Expected source and index to have the same number of elements, but got "
                         f"source.numel() = {source.numel()}, index.numel() = {idx.size}")
    flat, values = input.reshape(-1), source.reshape(-1)
    key = Tensor._wrap(idx.reshape(-1) % max(flat.shape[0], 1))
    out = index_add(flat, 0, key, values) if accumulate else setitem(flat, key, values)
    return out.reshape(input.shape)


# ---- index_copy, index_reduce: along one dim ------------------------------------------------------------
def _vector_index(op: str, input: Tensor, dim: int, index, source: Tensor, long_only: bool,
                  count_error: type = IndexError) -> tuple:
    """(dim, index array) once index is a vector that fits source and input along `dim` (torch's checks)."""
    idx = _long_index(op, index) if long_only else _tensor(op, "index", index).array
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"{op}(): Expected dtype int32/int64 for index, got {index.dtype.name}")
    if idx.ndim > 1:
        raise IndexError(f"{op}(): Index is supposed to be a vector, but got dim: {idx.ndim} with size "
                         f"{list(idx.shape)}")
    d = _dim(dim, input.ndim)
    xs, ss = input.shape or (1,), source.shape or (1,)
    if len(ss) != len(xs) or ss[d] != idx.size:
        raise count_error(f"{op}(): Number of indices ({idx.size}) should be equal to source.size(dim) "
                          f"({ss[d] if d < len(ss) else 1}), for dim: {d}")
    if ss[:d] + ss[d + 1:] != xs[:d] + xs[d + 1:]:
        raise RuntimeError(f"{op}(): Source/destination tensor must have same slice shapes; source "
                           f"{tuple(source.shape)}, self {tuple(input.shape)}, dim {d}")
    if idx.size:
        bad = (idx < 0) | (idx >= xs[d])
        if bool(bad.any()):
            raise IndexError(f"{op}(): index {int(idx[bad].ravel()[0])} is out of bounds for dimension {d} with "
                             f"size {xs[d]}")
    return d, idx.reshape(-1)


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """A copy of input with input[..., index[i], ...] = source[..., i, ...] along `dim` (torch.index_copy)."""
    _same_dtype("index_copy_", input, source)
    d, idx = _vector_index("index_copy_", input, dim, index, source, long_only=True)
    x = input if input.ndim else input.reshape(1)
    values = source.reshape((*x.shape[:d], idx.size, *x.shape[d + 1:]))
    out = setitem(x, (slice(None),) * d + (Tensor._wrap(idx),), values)
    return out.reshape(input.shape)


def index_reduce(input: Tensor, dim: int, index: Tensor, source: Tensor, reduce: str, *,
                 include_self: bool = True) -> Tensor:
    """A copy of input with each source[..., i, ...] reduced into input[..., index[i], ...] by prod, mean, amax
    or amin (torch.index_reduce)."""
    if reduce not in FOLDS or reduce == "sum":
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    if _tensor("index_reduce_", "source", source).dtype is not input.dtype:
        raise RuntimeError(f"index_reduce_(): self ({input.dtype.name}) and source ({source.dtype.name}) must have "
                           "the same scalar type")
    d, idx = _vector_index("index_reduce_", input, dim, index, source, long_only=False, count_error=RuntimeError)
    # the vector, laid along dim and broadcast over the rest, is scatter_reduce's index
    along = (1,) * d + (idx.size,) + (1,) * (max(source.ndim, 1) - d - 1)
    full = array_module(idx).ascontiguousarray(array_module(idx).broadcast_to(idx.reshape(along),
                                                                             source.shape or (1,)))
    return scatter_reduce(input, d, Tensor._wrap(full.reshape(source.shape)), source, reduce,
                          include_self=include_self)


# ---- index_put: a tuple of index tensors -----------------------------------------------------------------
def _index_tuple(op: str, input: Tensor, indices) -> tuple[list, tuple]:
    """(the index arrays, bools as their nonzero positions, and the shape input[indices] has)."""
    if not isinstance(indices, tuple | list):
        raise TypeError(f"{op}(): argument 'indices' (position 2) must be tuple of Tensors, not "
                        f"{type(indices).__name__}")
    arrays = []
    for i, t in enumerate(indices):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): expected Tensor as element {i} in argument 1, but got {type(t).__name__}")
        kind = t.array.dtype.kind
        if kind not in "biu":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        if kind == "b":
            at = len(arrays)
            if tuple(t.shape) != tuple(input.shape[at:at + t.ndim]):
                raise IndexError(f"The shape of the mask {list(t.shape)} at index {i} does not match the shape of "
                                 f"the indexed tensor {list(input.shape)}")
            arrays.extend(array_module(t.array).nonzero(t.array))
        else:
            arrays.append(t.array)
    if len(arrays) > input.ndim:
        raise IndexError(f"too many indices for tensor of dimension {input.ndim} (got {len(arrays)})")
    try:
        lead = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(str(list(a.shape)) for a in arrays)
        raise IndexError(f"shape mismatch: indexing tensors could not be broadcast together with shapes {shapes}") \
            from None
    for d, a in enumerate(arrays):
        n = input.shape[d]
        bad = (a < -n) | (a >= n)
        if a.size and bool(bad.any()):
            raise IndexError(f"index {int(a[bad].ravel()[0])} is out of bounds for dimension {d} with size {n}")
    return arrays, (*lead, *input.shape[len(arrays):])


def index_put(input: Tensor, indices, values: Tensor, accumulate: bool = False) -> Tensor:
    """A copy of input with input[indices] = values (broadcast), or += values with repeats adding up when
    accumulate (torch.index_put)."""
    arrays, shape = _index_tuple("index_put", input, indices)
    if _tensor("index_put", "values", values).dtype is not input.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got {input.dtype.name} "
                           f"for the destination and {values.dtype.name} for the source.")
    try:
        fits = broadcast_shapes(values.shape, shape) == tuple(shape)
    except ShapeError:
        fits = False
    if not fits:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(values.shape)} cannot be broadcast to "
                           f"indexing result of shape {list(shape)}")
    values = values.expand(shape)
    if not arrays:
        return input.clone() + values if accumulate else setitem(input, Ellipsis, values)
    xp = array_module(input.array)
    k = len(arrays)
    if not accumulate:
        return setitem(input, tuple(Tensor._wrap(a) for a in arrays), values)
    # accumulate: the first k dims as one, addressed by a flat index, so index_add adds up repeats
    lead = input.shape[:k]
    flat = sum((xp.broadcast_to(a % n, shape[:len(shape) - input.ndim + k]) * math.prod(lead[d + 1:])
                for d, (a, n) in enumerate(zip(arrays, lead))), xp.zeros((), dtype=np.int64))
    rows = input.reshape(math.prod(lead), *input.shape[k:])
    added = index_add(rows, 0, Tensor._wrap(flat.reshape(-1).astype(np.int64)), values.reshape(-1, *input.shape[k:]))
    return added.reshape(input.shape)


def index_put_(input: Tensor, indices, values: Tensor, accumulate: bool = False) -> Tensor:
    """In-place index_put: input[indices] = values (or += when accumulate) (torch.index_put_)."""
    return input._write(lambda t: index_put(t, indices, values, accumulate))


# ---- masked_scatter -----------------------------------------------------------------------------------------
def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """A copy of input (broadcast with mask) with the positions where mask is true filled, in order, by
    source's first entries (torch.masked_scatter)."""
    if not isinstance(mask, Tensor) or mask.array.dtype != np.bool_:
        got = mask.dtype.name if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype {got}")
    if _tensor("masked_scatter", "source", source).dtype is not input.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got "
                           f"{input.dtype.name} and {source.dtype.name}")
    shape = tuple(broadcast_shapes(input.shape, mask.shape))
    xp = array_module(mask.array)
    where = xp.ascontiguousarray(xp.broadcast_to(mask.array, shape))
    count = int(where.sum())
    if source.numel() < count:
        raise RuntimeError(f"masked_scatter: number of elements of source ({source.numel()}) < number of ones in "
                           f"mask ({count})")
    return setitem(input.expand(shape), Tensor._wrap(where), source.reshape(-1)[:count])


# ---- select_scatter, slice_scatter, diagonal_scatter ----------------------------------------------------------
def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """A copy of input with input.select(dim, index) replaced by src (torch.select_scatter)."""
    if input.ndim == 0:
        raise IndexError("select_scatter(): cannot be applied to a 0-dim tensor.")
    d = _dim(dim, input.ndim)
    n = input.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
                         f"dimension {d}")
    _slice_shape("select_scatter", _tensor("select_scatter", "src", src), input.shape[:d] + input.shape[d + 1:])
    return setitem(input, (slice(None),) * d + (index % n,), src)


def slice_scatter(input: Tensor, src: Tensor, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """A copy of input with input[..., start:end:step, ...] along `dim` replaced by src (torch.slice_scatter)."""
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    d = _dim(dim, input.ndim)
    where = slice(start, end, step)
    taken = len(range(input.shape[d])[where]) if input.ndim else 1
    _slice_shape("slice_scatter", _tensor("slice_scatter", "src", src),
                 (*input.shape[:d], taken, *input.shape[d + 1:]))
    return setitem(input, (slice(None),) * d + (where,), src)


def diagonal_scatter(input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """A copy of input with input.diagonal(offset, dim1, dim2) replaced by src (torch.diagonal_scatter)."""
    d1, d2 = _dim(dim1, input.ndim), _dim(dim2, input.ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    moved = input.movedim((d1, d2), (-2, -1))
    r, c = moved.shape[-2:]
    length = max(0, min(r, c - offset) if offset >= 0 else min(r + offset, c))
    _slice_shape("diagonal_scatter", _tensor("diagonal_scatter", "src", src), (*moved.shape[:-2], length))
    xp = array_module(input.array)
    steps = xp.arange(length, dtype=np.int64)
    rows, cols = (steps, steps + offset) if offset >= 0 else (steps - offset, steps)
    return setitem(moved, (Ellipsis, Tensor._wrap(rows), Tensor._wrap(cols)), src).movedim((-2, -1), (d1, d2))


# ---- Tensor.fill_diagonal_ ----------------------------------------------------------------------------------------
def fill_diagonal_(self: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """Set the main diagonal of this tensor (all dims equal past 2-D) to fill_value; `wrap` restarts the
    diagonal below a tall matrix's square part every ncols + 1 rows, as numpy.fill_diagonal (Tensor method)."""
    if isinstance(fill_value, Tensor) and fill_value.ndim == 0 and not fill_value.requires_grad:
        fill_value = fill_value.item()  # torch reads a constant 0-d tensor as its number
    if not isinstance(fill_value, int | float | bool | np.generic):
        raise TypeError(f"fill_diagonal_(): argument 'fill_value' (position 1) must be Number, not "
                        f"{type(fill_value).__name__}")
    shape = tuple(self.shape)
    if len(shape) < 2:
        raise RuntimeError("dimensions must larger than 1")
    if len(shape) > 2 and len(set(shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    numel = math.prod(shape)
    step = 1 + sum(math.prod(shape[i + 1:]) for i in range(len(shape) - 1))
    end = numel if wrap or len(shape) > 2 else min(numel, shape[1] * shape[1])
    positions = Tensor._wrap(array_module(self.array).arange(0, end, step, dtype=np.int64))
    return self._write(lambda t: setitem(t.reshape(-1), positions, fill_value).reshape(shape))


# Tensor methods torch has no function for; bound here since tensor_methods binds functions of engine.ops
Tensor.fill_diagonal_ = fill_diagonal_
