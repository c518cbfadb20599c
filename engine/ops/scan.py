"""Cumulative ops along one dim: cumprod, cummax/cummin (with where each running extreme came from) and
logcumsumexp. cumsum lives with the reductions (reduce.py).

NumPy runs the maximum/minimum/logaddexp scans with ufunc.accumulate; CuPy has no accumulate for those
ufuncs, so there a scan takes log2(n) whole-array steps (`doubling_scan`).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from engine.autograd.function import Function
from engine.backend import array_module
from engine.ops.gather_scatter import Gather
from engine.ops.reduce import _accumulator, reverse_cumsum, with_dtype
from engine.ops.shape import _dim
from engine.tensor import Tensor

__all__ = ["cummax", "cummin", "cumprod", "logcumsumexp"]

# what cummax / cummin return, like torch.return_types: unpacks as (values, indices)
CummaxResult = namedtuple("cummax", ["values", "indices"])
CumminResult = namedtuple("cummin", ["values", "indices"])


# ---- scans on raw arrays ----------------------------------------------------------------------------------
def doubling_scan(xp, fold, a, axis: int):
    """Inclusive scan of `a` along `axis` by the associative ufunc `fold`, in log2(n) whole-array steps."""
    a = xp.moveaxis(a, axis, -1).copy()
    step = 1
    while step < a.shape[-1]:
        a[..., step:] = fold(a[..., :-step], a[..., step:])
        step *= 2
    return xp.moveaxis(a, -1, axis)


def running(xp, name: str, a, axis: int, reverse: bool = False):
    """The inclusive scan of `a` along `axis` by ufunc `name` (maximum, minimum, logaddexp), last to first
    when `reverse`."""
    if reverse:
        return xp.flip(running(xp, name, xp.flip(a, axis), axis), axis)
    fold = getattr(xp, name)
    try:
        return fold.accumulate(a, axis=axis)
    except NotImplementedError:  # CuPy: accumulate exists for add and multiply only
        return doubling_scan(xp, fold, a, axis)


def _flat(a):
    """0-d arrays as 1-d: a 0-d tensor scans along dim 0, as in PyTorch."""
    return a.reshape(a.shape or (1,))


# ---- cumprod ----------------------------------------------------------------------------------------------
def zero_masks(xp, x, dim: int) -> tuple:
    """(before, first): where a slice has no zero up to and including here, and where its first zero is."""
    zero = x == 0
    seen = xp.cumsum(zero, axis=dim)
    return seen == 0, zero & (seen == 1)


class Cumprod(Function):
    """Running products; the gradient is exact where the input has zeros (no division by them)."""

    def forward(ctx, x):
        y = array_module(x).cumprod(_flat(x), axis=ctx.dim, dtype=_accumulator(x)).reshape(x.shape)
        ctx.save(x, y)
        return y

    def backward(ctx, grad):
        # x_i feeds y_j (j >= i) with the product of the others: y_j / x_i before a slice's first zero, the
        # cumprod with that zero taken as 1 at the zero itself, and 0 after it (a zero stays in every term)
        x, y = map(_flat, ctx.saved)
        g, d = _flat(grad), ctx.dim
        xp = array_module(g)
        before, first = zero_masks(xp, x, d)
        gx = reverse_cumsum(g * y, d) / xp.where(before, x, 1)
        at_zero = reverse_cumsum(g * xp.cumprod(xp.where(first, 1, x), axis=d), d)
        return xp.where(before, gx, xp.where(first, at_zero, 0)).reshape(grad.shape)


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running products along `dim`; integer and bool tensors multiply in int64, as torch.cumprod."""
    input = with_dtype("cumprod", input, dtype)
    return Cumprod.apply(input, dim=_dim(dim, input.ndim))


# ---- cummax, cummin -----------------------------------------------------------------------------------------
class Cummax(Gather):
    """The running largest values: x read at the running argmax, so the gradient goes back to it."""

    op = "cummax"


class Cummin(Gather):
    op = "cummin"


def _running_index(x, dim: int, name: str):
    """int64 index of the running maximum (or minimum) along dim: the latest of tied values, and once a NaN
    was seen the latest NaN, as PyTorch's kernel picks."""
    xp = array_module(x)
    if x.dtype.kind == "b":
        x = x.astype(np.int8)
    value = running(xp, name, x, dim)  # maximum and minimum propagate NaN
    # the running value changes only where an element equals it, so the index is the last such position
    hit = x == value
    if x.dtype.kind == "f":
        hit |= xp.isnan(x)
    positions = xp.arange(x.shape[dim], dtype=np.int64).reshape((-1,) + (1,) * (x.ndim - dim - 1))
    return running(xp, "maximum", xp.where(hit, positions, 0), dim)


def _cumulative_extreme(input: Tensor, dim: int, op, name: str, result):
    d = _dim(dim, input.ndim)
    index = _running_index(_flat(input.array), d, name).reshape(input.shape)
    return result(op.apply(input, Tensor._wrap(index), dim=d), Tensor._wrap(index))


def cummax(input: Tensor, dim: int):
    """(values, indices) of the running maximum along `dim`, as torch.cummax: ties take the latest index,
    and NaN propagates (the index is then the latest NaN's)."""
    return _cumulative_extreme(input, dim, Cummax, "maximum", CummaxResult)


def cummin(input: Tensor, dim: int):
    """(values, indices) of the running minimum along `dim`, as torch.cummin (ties and NaN as in cummax)."""
    return _cumulative_extreme(input, dim, Cummin, "minimum", CumminResult)


# ---- logcumsumexp ---------------------------------------------------------------------------------------------
def exp_scan(u, a, b, dim: int, reverse: bool):
    """out[m] = sum of u[k] * exp(a[k] + b[m]) over k <= m (k >= m when `reverse`), summed in log space so
    that large exponents neither overflow nor underflow; a term with a[k] + b[m] = inf - inf counts as 0."""
    xp = array_module(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_u = xp.log(xp.abs(u)) + a  # zeros add -inf: nothing
        parts = []
        for log_part in (xp.where(u < 0, -np.inf, log_u), xp.where(u < 0, log_u, -np.inf)):  # NaN stays in the first
            s = running(xp, "logaddexp", log_part, dim, reverse)
            r = b + s
            parts.append(xp.exp(xp.where(xp.isinf(b) & xp.isinf(s) & (b != s), -np.inf, r)))
    return parts[0] - parts[1]


class ExpScan(Function):
    """exp_scan(u, a, b) as an op: the gradient of logcumsumexp, itself differentiable to any order."""

    op = "exp_scan"

    def forward(ctx, u, a, b):
        out = exp_scan(_flat(u), _flat(a), _flat(b), ctx.dim, ctx.reverse).reshape(u.shape)
        ctx.save(u, a, b, out)
        return out

    def backward(ctx, grad):
        # d out[m] / d u[k] = exp(a[k] + b[m]): the same scan the other way, with a and b swapped
        u, a, b, out = ctx.saved
        gu = exp_scan(_flat(grad), _flat(b), _flat(a), ctx.dim, not ctx.reverse).reshape(u.shape)
        return gu, u * gu, grad * out


class Logcumsumexp(Function):
    """log(cumsum(exp(x))) along `ctx.dim`, as a running logaddexp: no overflow for large x, and -inf is exact."""

    def forward(ctx, x):
        y = running(array_module(x), "logaddexp", _flat(x), ctx.dim).reshape(x.shape)
        ctx.save(x, y)
        return y

    def backward(ctx, grad):
        # x[i] feeds y[j] (j >= i) with weight exp(x[i] - y[j]) <= 1
        x, y = ctx.saved
        return exp_scan(_flat(grad), _flat(-y), _flat(x), ctx.dim, True).reshape(grad.shape)


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(input))) along `dim`, computed stably, as torch.logcumsumexp (floating point only).

    Where x is -inf the gradient is 0 (PyTorch gives NaN there)."""
    if input.array.dtype.kind != "f":
        raise RuntimeError(f"logcumsumexp(): input dtype must be floating point, got {input.dtype.name}; "
                           "call .float() first")
    return Logcumsumexp.apply(input, dim=_dim(dim, input.ndim))
