"""Indexing ops: x[index], out-of-place x[index] = value, gather, scatter(_add), index_select/add, masked_*.

PyTorch indexes in two steps, and so do we: ints, slices, None and Ellipsis are applied first (a
view), then the integer and boolean arrays index that view together, with NumPy's rules for
advanced indexing. So a prepared index is a `Key` of two parts, `basic` and `advanced`; keeping
them apart is what makes `x[0, :, [0, 1]]` come out as PyTorch's (3, 2) and not NumPy's (2, 3).
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import NamedTuple

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module, device_of
from engine.tensor import Tensor

__all__ = ["gather", "getitem", "index_add", "index_select", "masked_fill", "masked_select", "scatter", "scatter_add",
           "scatter_reduce", "setitem"]


class IndexOutOfRange(IndexError, RuntimeError):
    """An index beyond a dimension's size (IndexError as for x[i]; RuntimeError as torch.gather raises)."""


def scatter_add_into(xp):
    """`f(a, key, values)`: a[key] += values in place, repeated positions adding up (`xp.add.at`)."""
    at = getattr(xp.add, "at", None)
    if at is not None:
        return at
    import cupyx  # CuPy before 13 has no ufunc.at

    return cupyx.scatter_add


# ---- x[index] -----------------------------------------------------------------------------------
class Key(NamedTuple):
    """A prepared index: `basic` gives a view; `advanced` (arrays, or None) indexes that view."""

    basic: tuple
    advanced: tuple | None
    repeats: bool  # integer arrays may name a position twice, so gradients must add up


def _region(a, key: Key):
    """a[index]: a view for a basic key, a copy otherwise."""
    view = a[key.basic]
    return view if key.advanced is None else view[key.advanced]


def _assign(a, key: Key, value) -> None:
    """a[index] = value, in place."""
    view = a[key.basic]
    view[... if key.advanced is None else key.advanced] = value


def _accumulate(a, key: Key, value) -> None:
    """a[index] += value, in place; positions named twice get both contributions."""
    view = a[key.basic]
    if key.repeats:
        scatter_add_into(array_module(a))(view, key.advanced, value)
    else:
        view[... if key.advanced is None else key.advanced] += value


class Index(Function):
    """x[key] with integer or boolean arrays: a copy."""

    op = "getitem"

    def forward(ctx, x):
        ctx.shape = x.shape
        return _region(x, ctx.key)

    def backward(ctx, grad):
        g = array_module(grad).zeros(ctx.shape, grad.dtype)
        _accumulate(g, ctx.key, grad)
        return g


class Slice(Index):
    """x[key] with ints, slices, None and Ellipsis only: a view sharing x's storage."""

    op = "getitem"  # (a subclass would otherwise be named for its class)
    view = True


def getitem(x: Tensor, index) -> Tensor:
    """`x[index]` with PyTorch's semantics; a view when the index has no arrays or bools."""
    key = _prepare(x, index)
    return (Slice if key.advanced is None else Index).apply(x, key=key)


# ---- x[index] = value, out of place -------------------------------------------------------------
class SetItem(Function):
    """x with x[key] = value; the gradient goes to x outside the region and to value inside it."""

    op = "setitem"

    def forward(ctx, x, value):
        out = x.copy()
        _assign(out, ctx.key, value)  # broadcasts value and casts it to x's dtype
        ctx.value_ndim = getattr(value, "ndim", 0)
        return out

    def backward(ctx, grad):
        need_x, need_value = ctx.needs_input_grad
        gx = gv = None
        if need_x:
            gx = grad.copy()
            _assign(gx, ctx.key, 0)
        if need_value:
            gv = _region(grad, ctx.key)
            # assignment drops leading 1-dims of value, which sum_to cannot restore; put them back
            if ctx.value_ndim > gv.ndim:
                gv = gv.reshape((1,) * (ctx.value_ndim - gv.ndim) + gv.shape)
        return gx, gv


def setitem(x: Tensor, index, value) -> Tensor:
    """A new tensor equal to `x` with `x[index] = value` (value broadcast and cast to x's dtype)."""
    key = _prepare(x, index)
    if not isinstance(value, Tensor):
        value = _host_value(value, x)
    return SetItem.apply(x, value, key=key)


def _host_value(value, x: Tensor):
    if isinstance(value, numbers.Number | np.generic):
        return value
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        _check_same_device(value, x, "setitem", "value", host_ok=True)
        return array_module(x.data).asarray(value)
    raise TypeError(
        f"setitem: can't assign a {type(value).__name__} to a tensor; assign a tensor, an array or a number"
    )


# ---- turning a Python index into a Key ----------------------------------------------------------
def _prepare(x: Tensor, index) -> Key:
    items = [_convert(item, x) for item in _items(index)]
    shape = x.data.shape
    if sum(it is Ellipsis for it in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(_dims_used(it) for it in items)
    if used > len(shape):
        if not shape:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` to convert a 0-dim tensor "
                             "to a number")
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if not any(it is Ellipsis for it in items):
        items.append(Ellipsis)  # also makes x[i, j] a 0-d view rather than a NumPy scalar

    xp = array_module(x.data)
    basic, arrays = [], []  # arrays: (dim of the basic view it indexes, integer array)
    d = r = 0  # the dim of x, and of the basic view, that the next item indexes
    repeats = False
    for it in items:
        if it is Ellipsis:
            basic.append(it)
            d += len(shape) - used
            r += len(shape) - used
        elif it is None or it is True or it is False:
            basic.append(None)
            if it is not None:  # torch: True indexes a new dim of size 1 with [0], False with []
                arrays.append((r, xp.zeros(int(it), dtype=np.int64)))
            r += 1
        elif isinstance(it, int):
            if not -shape[d] <= it < shape[d]:
                raise IndexOutOfRange(f"index {it} is out of bounds for dimension {d} with size {shape[d]}")
            basic.append(it)
            d += 1
        elif isinstance(it, slice):
            basic.append(it)
            d += 1
            r += 1
        elif it.dtype.kind == "b":
            if it.shape != shape[d:d + it.ndim]:
                raise IndexError(f"The shape of the mask {list(it.shape)} does not match the shape of the "
                                 f"indexed tensor {list(shape)} at dimension {d}")
            for positions in it.nonzero():
                basic.append(slice(None))
                arrays.append((r, positions))
                r += 1
            d += it.ndim
        else:
            _check_range(it, -shape[d], shape[d], d)
            basic.append(slice(None))
            arrays.append((r, it))
            repeats = True
            d += 1
            r += 1
    if not arrays:
        return Key(tuple(basic), None, False)
    advanced = [slice(None)] * (arrays[-1][0] + 1)
    for dim, arr in arrays:
        advanced[dim] = arr
    return Key(tuple(basic), tuple(advanced), repeats)


def _items(index) -> list:
    if isinstance(index, tuple):
        return list(index)
    if isinstance(index, list) and any(
        isinstance(it, list | tuple | slice | Tensor | np.ndarray) or it is None or it is Ellipsis
        for it in index
    ):
        # torch 2.x reads such a list as a tuple (deprecated), NumPy as one array: refuse to guess
        raise IndexError(
            "a list index holding lists, tensors, slices, None or ... is ambiguous (PyTorch reads it as a "
            "tuple, NumPy as an array): write x[tuple(seq)], or x[engine.tensor(seq)] for an array"
        )
    return [index]


def _dims_used(it) -> int:
    if it is None or it is Ellipsis or it is True or it is False:
        return 0
    if isinstance(it, int | slice):
        return 1
    return it.ndim if it.dtype.kind == "b" else 1


def _convert(item, x: Tensor):
    """One index item as None, Ellipsis, bool, int, slice of ints, or an integer/bool array on x's device."""
    if isinstance(item, slice):
        return _slice(item)
    if item is None or item is Ellipsis:
        return item
    if isinstance(item, bool | np.bool_):
        return bool(item)
    if isinstance(item, Tensor):
        _check_same_device(item.data, x, "index", "index tensor", host_ok=False)
        if item.data.dtype.kind not in "biu":
            raise IndexError("tensors used as indices must be long, int or bool")
        arr = item.data
    elif isinstance(item, np.ndarray) or hasattr(item, "__cuda_array_interface__"):
        _check_same_device(item, x, "index", "index array", host_ok=True)
        arr = item
    elif isinstance(item, list):
        arr = np.asarray(item)
        if arr.size == 0:
            arr = arr.astype(np.int64)
    elif hasattr(item, "__index__"):
        return operator.index(item)
    else:
        raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and integer or bool tensors "
                         f"are valid indices (got {type(item).__name__})")
    if arr.dtype.kind not in "biu":
        raise IndexError(f"arrays used as indices must be of integer or bool type, got {arr.dtype}")
    if arr.ndim == 0:  # torch: a 0-d integer index is an int, a 0-d bool one a bool
        return bool(arr) if arr.dtype.kind == "b" else int(arr)
    # a copy: backward reads it later, so changes to the caller's index afterwards must not reach it
    return array_module(x.data).array(arr)


def _slice(s: slice) -> slice:
    bounds = [None if v is None else operator.index(v) for v in (s.start, s.stop, s.step)]
    if bounds[2] is not None and bounds[2] <= 0:
        raise ValueError("slice step cannot be zero" if bounds[2] == 0 else "step must be greater than zero")
    return slice(*bounds)


def _check_same_device(arr, x: Tensor, op: str, what: str, host_ok: bool) -> None:
    # host data (lists, numpy arrays) may index a GPU tensor; a tensor on another device may not
    if host_ok and isinstance(arr, np.ndarray):
        return
    where = device_of(arr)
    if where != x.device:
        raise RuntimeError(f"{op}: the {what} is on {where} but the tensor is on {x.device}; "
                           f"move it with .to('{x.device}')")


def _check_range(idx, lo: int, hi: int, dim: int, op: str = "", shape: tuple | None = None) -> None:
    """Raise IndexOutOfRange naming the first value of `idx` outside [lo, hi) (and the op and input shape)."""
    if idx.size == 0:
        return
    bad = (idx < lo) | (idx >= hi)
    if bool(bad.any()):  # one reduction (a single sync on the GPU) in the common, valid case
        value = int(idx[bad].ravel()[0])
        where = "" if shape is None else f" of input {tuple(shape)}"
        raise IndexOutOfRange(f"{op + ': ' if op else ''}index {value} is out of bounds for dimension {dim} "
                              f"with size {hi}{where}")


# ---- gather, scatter_add, index_select --------------------------------------------------------
def _dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def _index_array(op: str, index):
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}(): index must be a tensor, got {type(index).__name__}")
    if index.data.dtype not in (np.int64, np.int32):
        raise RuntimeError(f"{op}(): Expected dtype int32/int64 for index, got {index.dtype}")
    return index.data


def _along(xp, index, dim: int) -> tuple:
    """The key that addresses a[..., index[p], ...] at every position p of index, index replacing `dim`."""
    k = index.ndim
    key = [xp.arange(n).reshape((1,) * i + (n,) + (1,) * (k - i - 1)) for i, n in enumerate(index.shape)]
    key[dim] = index
    return tuple(key)


def _head(shape: tuple) -> tuple:
    """The key of the leading block of that shape."""
    return tuple(slice(n) for n in shape)


def _at_least_1d(a):
    return a if a.ndim else a.reshape(1)


class Gather(Function):
    def forward(ctx, x, index):
        ctx.save(index)
        ctx.shape = x.shape
        xp = array_module(x)
        return _at_least_1d(x)[_along(xp, _at_least_1d(index), ctx.dim)].reshape(index.shape)

    def backward(ctx, grad):
        (index,) = ctx.saved
        xp = array_module(grad)
        g = xp.zeros(ctx.shape or (1,), grad.dtype)
        scatter_add_into(xp)(g, _along(xp, _at_least_1d(index), ctx.dim), _at_least_1d(grad))
        return g.reshape(ctx.shape), None


class ScatterAdd(Function):
    op = "scatter_add"

    def forward(ctx, x, index, src):
        ctx.save(index)
        ctx.src_shape = src.shape
        xp = array_module(x)
        index = _at_least_1d(index)
        out = _at_least_1d(x).copy()
        scatter_add_into(xp)(out, _along(xp, index, ctx.dim), _at_least_1d(src)[_head(index.shape)])
        return out.reshape(x.shape)

    def backward(ctx, grad):
        (index,) = ctx.saved
        need_x, _, need_src = ctx.needs_input_grad
        gsrc = _src_grad(grad, index, ctx.dim, ctx.src_shape) if need_src else None
        return (grad if need_x else None), None, gsrc


def _src_grad(grad, index, dim: int, src_shape: tuple):
    """The gradient of a scatter's src: grad read where each src entry went."""
    return _padded(_at_least_1d(grad)[_along(array_module(grad), _at_least_1d(index), dim)], src_shape)


def _padded(g, src_shape: tuple):
    """The index-shaped gradient `g` as one of src's shape: src entries that index does not reach get none."""
    gsrc = array_module(g).zeros(src_shape or (1,), g.dtype)
    gsrc[_head(g.shape)] = g
    return gsrc.reshape(src_shape)


def _check_index_shape(op: str, x: Tensor, dim: int, index, src: Tensor | None = None) -> None:
    # torch treats 0-d tensors as 1-d ones here
    xs, ix, ss = x.shape or (1,), index.shape or (1,), src is not None and (src.shape or (1,))
    srcs = f" and src {tuple(src.shape)}" if src is not None else ""
    if len(ix) != len(xs) or (ss and len(ss) != len(xs)):
        raise ShapeError(f"{op}: index {tuple(index.shape)} must have as many dimensions as input "
                         f"{tuple(x.shape)}{srcs}")
    for d, n in enumerate(ix):
        if (d != dim and n > xs[d]) or (ss and n > ss[d]):
            raise ShapeError(f"{op}: index {tuple(index.shape)} must be no larger than input "
                             f"{tuple(x.shape)} apart from dimension {dim}"
                             + (f", nor than src {tuple(src.shape)}" if ss else ""))


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """out[p] = x[p with index[p] at `dim`], for every position p of `index` (torch.gather)."""
    idx = _index_array("gather", index)
    dim = _dim(dim, x.ndim)
    _check_index_shape("gather", x, dim, idx)
    _check_range(idx, 0, x.shape[dim] if x.ndim else 1, dim)
    return Gather.apply(x, index, dim=dim)


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of x with src[p] added at x[p with index[p] at `dim`]; repeated targets add up."""
    idx = _index_array("scatter_add", index)
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): src must be a tensor, got {type(src).__name__}")
    if src.dtype is not x.dtype:
        raise RuntimeError(f"scatter_add(): Expected self.dtype to be equal to src.dtype, got {x.dtype} "
                           f"and {src.dtype}")
    dim = _dim(dim, x.ndim)
    _check_index_shape("scatter_add", x, dim, idx, src)
    _check_range(idx, 0, x.shape[dim] if x.ndim else 1, dim)
    return ScatterAdd.apply(x, index, src, dim=dim)


class Scatter(Function):
    """A copy of x with src written at the positions index names; src is a tensor or a number."""

    op = "scatter"

    def forward(ctx, x, index, src):
        ctx.save(index)
        ctx.src_shape = getattr(src, "shape", None)
        xp = array_module(x)
        index = _at_least_1d(index)
        out = _at_least_1d(x).copy()
        out[_along(xp, index, ctx.dim)] = src if ctx.src_shape is None else _at_least_1d(src)[_head(index.shape)]
        return out.reshape(x.shape)

    def backward(ctx, grad):
        (index,) = ctx.saved
        need_x, _, need_src = ctx.needs_input_grad
        gx = gsrc = None
        if need_x:  # overwritten entries no longer depend on x
            gx = _at_least_1d(grad).copy()
            gx[_along(array_module(grad), _at_least_1d(index), ctx.dim)] = 0
            gx = gx.reshape(grad.shape)
        if need_src and ctx.src_shape is not None:
            gsrc = _src_grad(grad, index, ctx.dim, ctx.src_shape)
        return gx, None, gsrc


def scatter(x: Tensor, dim: int, index: Tensor, src=None, *, value=None) -> Tensor:
    """A copy of x with x[p with index[p] at `dim`] = src[p] (or the number `src`/`value`) for each p of index."""
    idx = _index_array("scatter", index)
    if src is None:
        src = value
    if isinstance(src, Tensor):
        if src.dtype is not x.dtype:
            raise RuntimeError(f"scatter(): Expected self.dtype to be equal to src.dtype, got {x.dtype} "
                               f"and {src.dtype}")
    elif not isinstance(src, numbers.Number | np.generic):
        raise TypeError(f"scatter(): src must be a tensor or a number, got {type(src).__name__}")
    dim = _dim(dim, x.ndim)
    _check_index_shape("scatter", x, dim, idx, src if isinstance(src, Tensor) else None)
    _check_range(idx, 0, x.shape[dim] if x.ndim else 1, dim, "scatter", x.shape)
    return Scatter.apply(x, index, src, dim=dim)


# ---- scatter_reduce -----------------------------------------------------------------------------
# each reduction as the ufunc that folds two values into one
FOLDS = {"sum": "add", "prod": "multiply", "mean": "add", "amax": "maximum", "amin": "minimum"}


def _fold_runs(xp, keys, values, fold) -> tuple:
    """(each distinct key, `fold` over the values with that key, how many there were), for flat arrays."""
    # sorting puts equal keys in runs; a scan within the runs, in log2(n) whole-array steps, leaves each
    # run's total at its end: no ufunc.at, which CuPy lacks for multiply
    order = xp.argsort(keys)
    keys, values = keys[order], values[order]
    step = 1
    while step < keys.size:
        values[step:] = xp.where(keys[step:] == keys[:-step], fold(values[:-step], values[step:]), values[step:])
        step *= 2
    last = xp.ones(keys.size, dtype=bool)
    last[:-1] = keys[1:] != keys[:-1]
    ends = xp.nonzero(last)[0]
    return keys[ends], values[ends], xp.diff(ends, prepend=-1)


def _reduce_into(x, index, src, dim: int, reduce: str, include_self: bool):
    """A copy of x (at least 1-d) with each position that index names reduced with the src entries sent
    there, and with its own value too when include_self (raw arrays; src no smaller than index)."""
    xp = array_module(x)
    fold = getattr(xp, FOLDS[reduce])
    out = x.copy()
    flat = out.reshape(-1)
    strides = [math.prod(out.shape[d + 1:]) for d in range(out.ndim)]
    targets = sum(k * s for k, s in zip(_along(xp, index, dim), strides))
    where, total, count = _fold_runs(xp, targets.reshape(-1), src[_head(index.shape)].reshape(-1), fold)
    if include_self:
        total, count = fold(flat[where], total), count + 1
    if reduce == "mean":  # torch: floor division for integers
        total = total / count if out.dtype.kind == "f" else total // count
    flat[where] = total
    return out


class ScatterReduce(Function):
    """A copy of x with src reduced into the positions index names (sum, prod, mean, amax or amin)."""

    op = "scatter_reduce"

    def forward(ctx, x, index, src):
        out = _reduce_into(_at_least_1d(x), _at_least_1d(index), _at_least_1d(src), ctx.dim, ctx.reduce,
                           ctx.include_self).reshape(x.shape)
        ctx.src_shape = src.shape
        ctx.save(index, x, src, out)
        return out

    def backward(ctx, grad):
        index, x, src, out = map(_at_least_1d, ctx.saved)
        g = _at_least_1d(grad)
        dim, reduce, include_self = ctx.dim, ctx.reduce, ctx.include_self
        xp = array_module(g)
        at = _along(xp, index, dim)
        src = src[_head(index.shape)]
        if reduce == "sum":
            gx, gsrc = g, g[at]
        elif reduce == "mean":
            n = _reduce_into(xp.full_like(g, int(include_self)), index, xp.ones_like(src), dim, "sum", True)
            gx = g / xp.maximum(n, 1)
            gsrc = gx[at]
        elif reduce == "prod":
            gx, gsrc = _prod_grads(g, x, index, src, out, dim, include_self)
        else:  # amax, amin: the gradient is split evenly among the values equal to the result
            contributes = (x == out).astype(g.dtype)
            if not include_self:
                contributes[at] = 0  # unlike torch 2.13, which splits it with the excluded x too
            chosen = (src == out[at]).astype(g.dtype)
            share = g / _reduce_into(contributes, index, chosen, dim, "sum", True)
            gx, gsrc = contributes * share, chosen * share[at]
        if not include_self:
            gx = gx.copy()
            gx[at] = 0
        return gx.reshape(grad.shape), None, _padded(gsrc, ctx.src_shape)


def _prod_grads(g, x, index, src, out, dim: int, include_self: bool) -> tuple:
    """Gradients of scatter_reduce's prod: each factor gets the product of the others, zeros included."""
    xp = array_module(g)
    at = _along(xp, index, dim)
    x_or_1 = xp.where(x == 0, 1, x)
    gx = g * _reduce_into(x_or_1, index, src, dim, "prod", include_self) / x_or_1
    zero = src == 0
    zeros_there = _reduce_into(xp.zeros_like(x), index, zero.astype(x.dtype), dim, "sum", True)[at]
    lone = zero & (zeros_there == 1)  # the only zero src at its position: the others' product is not 0
    others = _reduce_into(x, index, xp.where(lone, 1, src), dim, "prod", include_self)
    gsrc = xp.where(lone, (g * others)[at], (g * out)[at] / xp.where(zero, 1, src))
    return gx, gsrc


def scatter_reduce(x: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """A copy of x with each src[p] reduced into x[p with index[p] at `dim`] by sum, prod, mean, amax or amin."""
    idx = _index_array("scatter_reduce", index)
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce(): src must be a tensor, got {type(src).__name__}")
    if reduce not in FOLDS:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    if src.dtype is not x.dtype:
        raise RuntimeError(f"scatter_reduce(): Expected self.dtype to be equal to src.dtype, got {x.dtype} "
                           f"and {src.dtype}")
    dim = _dim(dim, x.ndim)
    _check_index_shape("scatter_reduce", x, dim, idx, src)
    _check_range(idx, 0, x.shape[dim] if x.ndim else 1, dim, "scatter_reduce", x.shape)
    return ScatterReduce.apply(x, index, src, dim=dim, reduce=reduce, include_self=bool(include_self))


class IndexAdd(Function):
    op = "index_add"

    def forward(ctx, x, index, source):
        ctx.save(index)
        xp = array_module(x)
        out = _at_least_1d(x).copy()
        source = _at_least_1d(source) * ctx.alpha if ctx.alpha != 1 else _at_least_1d(source)
        scatter_add_into(xp)(out, (slice(None),) * ctx.dim + (index.reshape(-1),), source.astype(x.dtype, copy=False))
        return out.reshape(x.shape)

    def backward(ctx, grad):
        (index,) = ctx.saved
        need_x, _, need_source = ctx.needs_input_grad
        gsource = None
        if need_source:
            gsource = array_module(grad).take(_at_least_1d(grad), index.reshape(-1), axis=ctx.dim)
            gsource = gsource * ctx.alpha if ctx.alpha != 1 else gsource
        return (grad if need_x else None), None, gsource


def index_add(x: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    """A copy of x with alpha * source[..., i, ...] added at x[..., index[i], ...] along `dim`; repeats add up."""
    idx = _index_array("index_add", index)
    if not isinstance(source, Tensor):
        raise TypeError(f"index_add(): source must be a tensor, got {type(source).__name__}")
    if source.dtype is not x.dtype:
        raise RuntimeError(f"index_add(): self ({x.dtype}) and source ({source.dtype}) must have the same "
                           "scalar type")
    if idx.ndim > 1:
        raise IndexError(f"index_add(): Index is supposed to be a vector, got shape {tuple(idx.shape)}")
    dim = _dim(dim, x.ndim)
    xs, ss = x.shape or (1,), source.shape or (1,)
    expected = (*xs[:dim], idx.size, *xs[dim + 1:])
    if tuple(ss) != expected:
        raise ShapeError(f"index_add: source {tuple(source.shape)} must have shape {expected}: input "
                         f"{tuple(x.shape)} with dim {dim} of the index's size {idx.size}")
    _check_range(idx, 0, xs[dim], dim, "index_add", x.shape)
    return IndexAdd.apply(x, index, source, dim=dim, alpha=alpha)


class IndexSelect(Function):
    op = "index_select"

    def forward(ctx, x, index):
        ctx.save(index)
        ctx.shape = x.shape
        out = array_module(x).take(_at_least_1d(x), index.reshape(-1), axis=ctx.dim)
        return out if x.ndim else out.reshape(())

    def backward(ctx, grad):
        (index,) = ctx.saved
        xp = array_module(grad)
        g = xp.zeros(ctx.shape or (1,), grad.dtype)
        grad = grad.reshape((*g.shape[:ctx.dim], index.size, *g.shape[ctx.dim + 1:]))
        scatter_add_into(xp)(g, (slice(None),) * ctx.dim + (index.reshape(-1),), grad)
        return g.reshape(ctx.shape), None


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries of x at positions `index` (a vector) along `dim`."""
    idx = _index_array("index_select", index)
    if idx.ndim > 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector, got shape {tuple(idx.shape)}")
    dim = _dim(dim, x.ndim)
    _check_range(idx, 0, x.shape[dim] if x.ndim else 1, dim)
    return IndexSelect.apply(x, index, dim=dim)


# ---- masked_fill --------------------------------------------------------------------------------
class MaskedFill(Function):
    op = "masked_fill"

    def forward(ctx, x, mask, value):
        ctx.save(mask)
        return array_module(x).where(mask, value, x).astype(x.dtype, copy=False)

    def backward(ctx, grad):
        (mask,) = ctx.saved
        need_x, _, need_value = ctx.needs_input_grad
        xp = array_module(grad)
        gx = xp.where(mask, 0, grad) if need_x else None
        gvalue = xp.where(mask, grad, 0) if need_value else None  # summed to value's 0-d shape centrally
        return gx, None, gvalue


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """x with `value` (a number or 0-d tensor) where the bool `mask` (broadcast with x) is true."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"masked_fill(): mask must be a bool tensor, got {type(mask).__name__}")
    if mask.data.dtype != np.bool_:
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype {mask.dtype}")
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError("masked_fill only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s)")
    elif not isinstance(value, numbers.Number | np.generic):
        raise TypeError(f"masked_fill(): value must be a number or a 0-d tensor, got {type(value).__name__}")
    return MaskedFill.apply(x, mask, value)


# ---- masked_select --------------------------------------------------------------------------------
class MaskedSelect(Function):
    op = "masked_select"

    def forward(ctx, x, mask):
        xp = array_module(x)
        shape = np.broadcast_shapes(x.shape, mask.shape)
        ctx.save(mask)
        ctx.shape = shape
        return xp.broadcast_to(x, shape)[xp.broadcast_to(mask, shape)]

    def backward(ctx, grad):
        (mask,) = ctx.saved
        xp = array_module(grad)
        g = xp.zeros(ctx.shape, grad.dtype)
        g[xp.broadcast_to(mask, ctx.shape)] = grad  # summed back to x's shape centrally
        return g, None


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    """The entries of x where the bool `mask` (broadcast with x) is true, as a 1-D tensor."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"masked_select(): mask must be a bool tensor, got {type(mask).__name__}")
    if mask.data.dtype != np.bool_:
        raise RuntimeError(f"masked_select: expected a bool mask, got {mask.dtype}")
    try:
        np.broadcast_shapes(x.shape, mask.shape)
    except ValueError:
        raise ShapeError(f"masked_select: mask {tuple(mask.shape)} does not broadcast with input "
                         f"{tuple(x.shape)}") from None
    return MaskedSelect.apply(x, mask)
