"""Ops that address along one dimension with an index tensor: gather, scatter, scatter_add, scatter_reduce,
index_add and index_select, each with PyTorch's index checks and gradients."""

from __future__ import annotations

import math
import numbers

import numpy as np

from engine import user_warning
from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.index import _check_range, masked_fill, scatter_add_into
from engine.ops.shape import _dim
from engine.tensor import Tensor

__all__ = ["gather", "index_add", "index_fill", "index_select", "scatter", "scatter_add", "scatter_reduce",
           "take_along_dim"]


# ---- gather, scatter_add, index_select --------------------------------------------------------
def _index_array(op: str, index):
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}(): index must be a tensor, got {type(index).__name__}")
    if index.array.dtype not in (np.int64, np.int32):
        raise RuntimeError(f"{op}(): Expected dtype int32/int64 for index, got {index.dtype}")
    return index.array


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


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """input read at `indices` along `dim`, the other dims broadcast (of the flattened input when dim is
    None), as torch.take_along_dim; negative indices count from the end."""
    idx = _index_array("take_along_dim", indices)
    if idx.dtype != np.int64:
        raise RuntimeError(f"take_along_dim(): indices must be int64, got {indices.dtype.name}")
    if dim is None:
        input, idx, dim = input.reshape(-1), idx.reshape(-1), 0
    elif input.ndim != idx.ndim:
        raise ShapeError(f"take_along_dim(): input {tuple(input.shape)} and indices {tuple(idx.shape)} must have "
                         "the same number of dimensions")
    dim = _dim(dim, input.ndim)
    n = input.shape[dim] if input.ndim else 1
    _check_range(idx, -n, n, dim, "take_along_dim", input.shape)
    xp = array_module(idx)
    idx = xp.where(idx < 0, idx + n, idx)
    if not input.ndim:
        return gather(input, 0, Tensor._wrap(idx))
    try:
        shape = list(np.broadcast_shapes(*((*s[:dim], 1, *s[dim + 1:]) for s in (input.shape, idx.shape))))
    except ValueError:
        raise ShapeError(f"take_along_dim(): input {tuple(input.shape)} and indices {tuple(idx.shape)} do not "
                         f"broadcast apart from dimension {dim}") from None
    x = input.expand(*shape[:dim], n, *shape[dim + 1:])
    idx = xp.broadcast_to(idx, (*shape[:dim], idx.shape[dim], *shape[dim + 1:]))
    return gather(x, dim, Tensor._wrap(idx))


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of x with src[p] added at x[p with index[p] at `dim`]; repeated targets add up."""
    dim = _checked_src("scatter_add", x, dim, index, src)
    return ScatterAdd.apply(x, index, src, dim=dim)


def _checked_src(op: str, x: Tensor, dim: int, index, src) -> int:
    """The dim, non-negative, once index and src fit x for a scatter of src (else PyTorch's error)."""
    idx = _index_array(op, index)
    if not isinstance(src, Tensor):
        raise TypeError(f"{op}(): src must be a tensor, got {type(src).__name__}")
    if src.dtype is not x.dtype:
        raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype, got {x.dtype} and {src.dtype}")
    dim = _dim(dim, x.ndim)
    _check_index_shape(op, x, dim, idx, src)
    _check_range(idx, 0, x.shape[dim] if x.ndim else 1, dim, op, x.shape)
    return dim


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


def scatter(x: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce: str | None = None) -> Tensor:
    """A copy of x with x[p with index[p] at `dim`] = src[p] (or the number `src`/`value`) for each p of index;
    with reduce='add' or 'multiply' (torch's older form of scatter_reduce) src is added or multiplied in."""
    idx = _index_array("scatter", index)
    if src is None:
        src = value
    if reduce is not None and reduce not in SCATTER_REDUCE:
        raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce!r}")
    if isinstance(src, Tensor):
        if src.dtype is not x.dtype:
            raise RuntimeError(f"scatter(): Expected self.dtype to be equal to src.dtype, got {x.dtype} "
                               f"and {src.dtype}")
    elif isinstance(src, np.generic):
        src = src.item()  # a number from here on: forward tells tensors from numbers by their shape
    elif not isinstance(src, numbers.Number):
        raise TypeError(f"scatter(): src must be a tensor or a number, got {type(src).__name__}")
    dim = _dim(dim, x.ndim)
    _check_index_shape("scatter", x, dim, idx, src if isinstance(src, Tensor) else None)
    _check_range(idx, 0, x.shape[dim] if x.ndim else 1, dim, "scatter", x.shape)
    if reduce is None:
        return Scatter.apply(x, index, src, dim=dim)
    if isinstance(src, Tensor):
        _warn_deprecated_reduce()
    return ScatterReduced.apply(x, index, src, dim=dim, reduce=SCATTER_REDUCE[reduce])


# scatter's reduce argument -> the scatter_reduce reduction it is (x's own values always included)
SCATTER_REDUCE = {"add": "sum", "multiply": "prod"}


class ScatterReduced(Function):
    """scatter with reduce='add' or 'multiply': src (a tensor or a number) folded into the positions index names."""

    op = "scatter"

    def forward(ctx, x, index, src):
        index = _at_least_1d(index)
        src = array_module(x).full(index.shape, src, x.dtype) if isinstance(src, numbers.Number) else src
        return _reduce_into(_at_least_1d(x), index, _at_least_1d(src), ctx.dim, ctx.reduce, True).reshape(x.shape)

    def backward(ctx, grad):
        raise NotImplementedError("scatter with reduce: the derivative is not implemented, as in PyTorch; use "
                                  "scatter_reduce (sum or prod), which has one")


_warned = []


def _warn_deprecated_reduce() -> None:
    """torch's deprecation warning, once per process as there, pointing at the first line outside the engine."""
    if _warned:
        return
    _warned.append(True)
    user_warning.warn("The reduce argument of scatter with Tensor src is deprecated (as in torch); use "
                      "scatter_reduce, which has more reductions and a gradient")


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
    if reduce not in FOLDS:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    dim = _checked_src("scatter_reduce", x, dim, index, src)
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
    if not x.ndim and idx.size != 1:  # the result keeps the 0-d shape, which holds one value
        raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {idx.size} value(s)")
    _check_range(idx, 0, x.shape[dim] if x.ndim else 1, dim)
    return IndexSelect.apply(x, index, dim=dim)


def index_fill(x: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """A copy of x with `value` (a number or 0-d tensor) at positions `index` (a vector) along `dim`."""
    idx = _index_array("index_fill", index)
    if idx.ndim > 1:
        raise IndexError(f"index_fill(): Index is supposed to be a vector, got shape {tuple(idx.shape)}")
    dim = _dim(dim, x.ndim)
    n = x.shape[dim] if x.ndim else 1
    _check_range(idx, -n, n, dim, "index_fill", x.shape)
    mask = array_module(x.array).zeros(n, dtype=bool)
    mask[idx] = True  # a mask along dim, broadcast over the rest: masked_fill gives the gradients
    shape = (n,) + (1,) * (x.ndim - dim - 1) if x.ndim else ()
    return masked_fill(x, Tensor._wrap(mask.reshape(shape)), value)
