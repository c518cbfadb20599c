"""Ordering: sort, argsort, topk and median along a dim; the gradient flows back to where each value came from."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.gather_scatter import _along
from engine.ops.reduce import LowerMedian, MaxDim, median_like
from engine.ops.shape import _dim
from engine.tensor import Tensor

__all__ = ["argsort", "median", "sort", "topk"]

# what sort / topk return, like torch.return_types: unpacks as (values, indices)
SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])
MedianResult = namedtuple("median", ["values", "indices"])


class Sort(Function):
    """x read at `ctx.index` along `ctx.dim`; each value's gradient goes back to the position it was read from."""

    def forward(ctx, x):
        ctx.shape = x.shape
        return array_module(x).take_along_axis(x, ctx.index, axis=ctx.dim)

    def backward(ctx, grad):
        xp = array_module(grad)
        g = xp.zeros(ctx.shape, grad.dtype)
        g[_along(xp, ctx.index, ctx.dim)] = grad  # the indices along dim are distinct: plain assignment
        return g


class Topk(Sort):
    pass


def _order(x, dim: int, descending: bool, stable: bool):
    """int64 indices that sort x along dim; NaN counts as the largest value, as in PyTorch."""
    xp = array_module(x)
    kind = "stable" if stable else None
    if x.dtype.kind == "b":
        x = x.astype(np.int8)
    if not descending:
        return xp.argsort(x, axis=dim, kind=kind).astype(np.int64, copy=False)
    if x.dtype.kind != "f":  # ~ reverses the order of any integer type, unsigned ones too, without overflow
        return xp.argsort(~x, axis=dim, kind=kind).astype(np.int64, copy=False)
    index = xp.argsort(-x, axis=dim, kind=kind)  # NaN last here, where PyTorch puts it first
    nan = xp.isnan(x)
    if nan.any():
        first = xp.argsort(~xp.take_along_axis(nan, index, axis=dim), axis=dim, kind="stable")
        index = xp.take_along_axis(index, first, axis=dim)
    return index.astype(np.int64, copy=False)


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) of x sorted along `dim`, as torch.sort."""
    d = _dim(dim, max(x.ndim, 1))
    if x.ndim == 0:
        return SortResult(x.clone(), Tensor._wrap(array_module(x.array).zeros((), np.int64)))
    index = _order(x.array, d, descending, stable)
    return SortResult(Sort.apply(x, index=index, dim=d), Tensor._wrap(index))


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The int64 indices that sort x along `dim` (no gradient, and no sort op of the values)."""
    if x.ndim == 0:
        return Tensor._wrap(array_module(x.array).zeros((), np.int64))
    return Tensor._wrap(_order(x.array, _dim(dim, x.ndim), descending, stable))


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices) of the k largest (or smallest) entries along `dim`, largest first."""
    d = _dim(dim, max(x.ndim, 1))
    size = x.shape[d] if x.ndim else 1
    if not 0 <= k <= size:
        raise ShapeError(f"topk: k ({k}) must be between 0 and the size of dimension {d} ({size}) "
                         f"of input {tuple(x.shape)}")
    if x.ndim == 0:
        return TopkResult(x.clone(), Tensor._wrap(array_module(x.array).zeros((), np.int64)))
    xp = array_module(x.array)
    index = xp.take(_order(x.array, d, largest, True), xp.arange(k), axis=d)
    return TopkResult(Topk.apply(x, index=index, dim=d), Tensor._wrap(index))


# ---- median ------------------------------------------------------------------------------------------
def _median_index(x, dim: int):
    """int64 index along dim of each slice's lower median, or of its first NaN (NaN propagates, as in PyTorch)."""
    xp = array_module(x)
    order = _order(x, dim, False, True)  # NaN sorts last
    n = x.shape[dim]
    k = xp.full((*x.shape[:dim], 1, *x.shape[dim + 1:]), (n - 1) // 2, np.int64)
    if x.dtype.kind == "f":
        finite = n - xp.isnan(x).sum(axis=dim, keepdims=True)
        k = xp.where(finite < n, finite, k)
    return xp.take_along_axis(order, k, axis=dim)


class Median(LowerMedian):
    """The lower median of every element."""

    index_of = staticmethod(_median_index)


class MedianDim(MaxDim):
    op = "median"


def median(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """median(x): the lower median of all elements; median(x, dim): (values, indices) along dim, as torch.median."""
    return median_like("median", input, dim, keepdim, Median, MedianDim, _median_index, MedianResult)
