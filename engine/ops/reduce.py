"""Reductions: sum, mean, var/std, max/min/amax/amin, argmax/argmin, logsumexp, prod, norm, all/any, cumsum,
and the NaN-skipping nansum, nanmean and nanmedian.

`dim` is None (every dim), an int or a tuple, negative counting from the end, wherever PyTorch takes
one. A backward gets the output's gradient, whose reduced dims are gone unless keepdim;
`Reduction.kept` puts them back as size 1 so the gradient broadcasts against the input.
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from engine import dtypes, user_warning
from engine.autograd.function import Function
from engine.autograd.grad_mode import state as _grad_state
from engine.backend import array_module, max_kept
from engine.ops.convert import cast
from engine.ops.elementwise import keep_where, maximum, minimum, zero_where
from engine.ops.shape import _dim, _dims
from engine.tensor import Tensor

__all__ = [
    "all", "amax", "amin", "any", "argmax", "argmin", "cumsum", "logsumexp", "max", "mean", "min", "nanmean",
    "nanmedian", "nansum", "norm", "prod", "std", "sum", "var",
]

# what max(x, dim) / min(x, dim) return, like torch.return_types.max: unpacks as (values, indices)
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


class Reduction(Function):
    """An op reducing axes `ctx.dims` of an input of shape `ctx.shape` (options given by `_reduce`)."""

    def kept(ctx, a):
        """`a`, shaped like the output, with the reduced dims back as size 1."""
        if ctx.keepdim:
            return a
        return a.reshape(tuple(1 if i in ctx.dims else n for i, n in enumerate(ctx.shape)))

    def count(ctx) -> int:
        """How many input elements make up one output element."""
        return math.prod(ctx.shape[d] for d in ctx.dims)


def _reduce(cls, x: Tensor, dim, keepdim: bool, **options) -> Tensor:
    if isinstance(dim, tuple | list) and not dim:
        dim = None  # PyTorch reads an empty dim list as "every dim"
    return cls.apply(x, dims=_dims(dim, x.ndim), keepdim=bool(keepdim), shape=x.shape, **options)


def divided(a, n: int):
    """a / n for a count n, computed in float32 for float16 arrays: there n is cast to float16 first, and a count
    above 65504 becomes infinity (the mean of a 512x256 float16 batch passed back a zero gradient)."""
    if a.dtype.kind == "f" and a.dtype.itemsize < 4:
        return (a.astype(np.float32) / n).astype(a.dtype)
    return a / n


def _accumulator(x):
    """Integers and bools add and multiply up in int64, as in PyTorch."""
    return np.int64 if x.dtype.kind in "biu" else None


def with_dtype(op: str, x: Tensor, dtype) -> Tensor:
    """x cast to the `dtype` a reduction was given (None: as it is). An integer or bool dtype for an x that requires
    grad is refused, as in PyTorch: the cast would cut the graph without a word."""
    if dtype is None:
        return x
    dtype = dtypes.as_dtype(dtype)
    if not dtype.is_floating_point and x.requires_grad and _grad_state.enabled:
        raise RuntimeError(f"{op}(): autograd does not support dtype={dtype.name} for an input that requires grad, "
                           "as in PyTorch (the result could carry no gradient); pass a floating dtype, or detach() "
                           "the input")
    return cast(x, dtype)


def _floating(x: Tensor, op: str, dtype=None) -> Tensor:
    x = with_dtype(op, x, dtype)
    if not x.dtype.is_floating_point:
        hint = "pass dtype=engine.float32 or call .float() first" if op == "mean" else "call .float() first"
        raise RuntimeError(f"{op}(): input dtype must be floating point, got {x.dtype.name}; {hint}")
    return x


# ---- sums and moments ---------------------------------------------------------------------------------
class Sum(Reduction):
    def forward(ctx, x):
        return x.sum(axis=ctx.dims, keepdims=ctx.keepdim, dtype=_accumulator(x))

    def backward(ctx, grad):
        return array_module(grad).broadcast_to(ctx.kept(grad), ctx.shape)


class Mean(Reduction):
    def forward(ctx, x):
        return x.mean(axis=ctx.dims, keepdims=ctx.keepdim)

    def backward(ctx, grad):
        return array_module(grad).broadcast_to(divided(ctx.kept(grad), ctx.count()), ctx.shape)


class Var(Reduction):
    def forward(ctx, x):
        centered = x - x.mean(axis=ctx.dims, keepdims=True)
        ctx.dof = builtins.max(0, ctx.count() - ctx.correction)  # PyTorch clamps N - correction at 0
        if ctx.dof == 0:  # NaN or inf follows (a one-sample batch's std), as torch warns
            user_warning.warn(f"{ctx.op}(): degrees of freedom is <= 0: the correction ({ctx.correction}) is not "
                              f"less than the number of elements reduced ({ctx.count()}), so the result is NaN or "
                              "inf; pass correction=0 (unbiased=False) for the spread of a single sample")
        ctx.save(centered)
        half = x.dtype.itemsize < 4  # float16 squares add up in float32, as torch's do (65504 is its largest)
        total = (centered * centered).sum(axis=ctx.dims, keepdims=ctx.keepdim, dtype=np.float32 if half else None)
        return (total / ctx.dof).astype(x.dtype) if half else total / ctx.dof

    def backward(ctx, grad):
        centered = ctx.saved[0]
        dof = ctx.count() - ctx.correction  # PyTorch's backward does not clamp it: below 0 the gradient is finite
        if dof <= 0 and ctx.whole:  # but over the whole tensor it is "2 / 0 times x - mean": inf, NaN at the mean
            xp = array_module(grad)
            return grad * xp.where(centered == 0, math.nan, math.inf).astype(grad.dtype)
        return divided(ctx.kept(grad) * centered * 2, dof)


class Std(Var):
    def forward(ctx, x):
        xp = array_module(x)
        y = xp.asarray(xp.sqrt(super().forward(x)))
        ctx.save(ctx.saved[0], y)
        return y

    def backward(ctx, grad):
        y = ctx.saved[1]
        return super().backward(zero_where(grad / (2 * y), y == 0))  # no gradient where std is 0, as in PyTorch


def sum(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Sum over `dim` (all dims by default); integer and bool tensors sum to int64."""
    x = with_dtype("sum", x, dtype)
    return _reduce(Sum, x, dim, keepdim)


def mean(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Mean over `dim` (all dims by default); floating point tensors only, as in PyTorch."""
    return _reduce(Mean, _floating(x, "mean", dtype), dim, keepdim)


class NanSum(Reduction):
    """The sum (or, with `ctx.mean`, the mean) of the non-NaN elements; NaNs get no gradient."""

    op = "nansum"

    def forward(ctx, x):
        xp = array_module(x)
        if x.dtype.kind != "f":
            ctx.save(None, None)
            return x.sum(axis=ctx.dims, keepdims=ctx.keepdim, dtype=_accumulator(x))
        keep = ~xp.isnan(x)
        total = xp.where(keep, x, 0).sum(axis=ctx.dims, keepdims=True)
        count = keep.sum(axis=ctx.dims, keepdims=True, dtype=x.dtype) if ctx.mean else None
        with np.errstate(invalid="ignore"):  # an all-NaN slice: 0 / 0 is the NaN torch gives
            y = total / count if ctx.mean else total
        ctx.save(keep, count)
        return y if ctx.keepdim else y.squeeze(axis=ctx.dims)

    def backward(ctx, grad):
        keep, count = ctx.saved
        g = ctx.kept(grad) * keep
        with np.errstate(invalid="ignore"):
            return g / count if ctx.mean else g


def nansum(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over `dim` treating NaN as zero, as torch.nansum."""
    x = with_dtype("nansum", x, dtype)
    return _reduce(NanSum, x, dim, keepdim, mean=False)


def nanmean(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of the non-NaN elements over `dim` (NaN where all are NaN), as torch.nanmean."""
    return _reduce(NanSum, _floating(x, "nanmean", dtype), dim, keepdim, mean=True, op="nanmean")


def _correction(op: str, unbiased, correction) -> int:
    if correction is not None and unbiased is not None:
        raise TypeError(f"{op}(): pass either unbiased or correction, not both")
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def _spread(cls, x: Tensor, dim, unbiased, keepdim: bool, correction) -> Tensor:
    op = cls.op
    if isinstance(dim, bool):  # var(False) means var(unbiased=False), as in PyTorch
        dim, unbiased = None, dim
    return _reduce(cls, _floating(x, op), dim, keepdim, correction=_correction(op, unbiased, correction),
                   whole=dim is None or x.ndim == 0)


def var(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: int | None = None) -> Tensor:
    """Variance over `dim` with Bessel's correction by default (correction=0 or unbiased=False: biased)."""
    return _spread(Var, x, dim, unbiased, keepdim, correction)


def std(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: int | None = None) -> Tensor:
    """Standard deviation over `dim`: the square root of `var` with the same arguments."""
    return _spread(Std, x, dim, unbiased, keepdim, correction)


# ---- extremes -------------------------------------------------------------------------------------------
def evenly_distributed(grad, x, y):
    """The gradient of y, one element picked from all of x (a max, min or median): grad split evenly among the
    elements equal to y (the NaNs if y is NaN), exactly 0 elsewhere even for an inf grad, as PyTorch's on the CPU."""
    hit = hits(x, y)
    return keep_where(grad / hit.sum(dtype=grad.dtype), hit)


def hits(x, y):
    """Where x equals y, or is NaN as y is."""
    xp = array_module(x)
    return (x == y) | (xp.isnan(x) & xp.isnan(y))


class Amax(Reduction):
    """Largest value over dims; the gradient splits evenly among tied elements, as in PyTorch."""

    pick = "max"

    def forward(ctx, x):
        y = array_module(x).asarray(getattr(x, ctx.pick)(axis=ctx.dims, keepdims=ctx.keepdim))
        ctx.save(x, y)
        return y

    def backward(ctx, grad):
        x, y = ctx.saved
        hit = x == ctx.kept(y)
        return ctx.kept(grad) * hit / hit.sum(axis=ctx.dims, keepdims=True, dtype=grad.dtype)


class Amin(Amax):
    pick = "min"


class Max(Amax):
    """max(x): the whole tensor's largest value (amax's gradient is the mask times the share, as PyTorch's is)."""

    def backward(ctx, grad):
        return evenly_distributed(grad, *ctx.saved)


class Min(Max):
    pick = "min"


class MaxDim(Reduction):
    """The values of max(x, dim), read at `ctx.index`; the gradient goes to that index only."""

    op = "max"

    def forward(ctx, x):
        if x.ndim == 0:
            return x.copy()
        y = array_module(x).take_along_axis(x, ctx.index, axis=ctx.dims[0])
        return y if ctx.keepdim else y.squeeze(ctx.dims[0])

    def backward(ctx, grad):
        if not ctx.shape:
            return grad
        d = ctx.dims[0]
        xp = array_module(grad)
        positions = xp.arange(ctx.shape[d]).reshape((-1,) + (1,) * (len(ctx.shape) - d - 1))
        return keep_where(ctx.kept(grad), positions == ctx.index)  # 0 elsewhere even for an inf gradient


class MinDim(MaxDim):
    op = "min"


class Argmax(Function):
    differentiable = False
    pick = "argmax"

    def forward(ctx, x):
        xp = array_module(x)
        f = getattr(xp, ctx.pick)
        if ctx.dim is None:  # the index into the flattened tensor
            return xp.asarray(f(x.reshape(-1)), dtype=np.int64).reshape((1,) * x.ndim if ctx.keepdim else ())
        if x.ndim == 0:
            return xp.zeros((), np.int64)
        return f(x, axis=ctx.dim, keepdims=ctx.keepdim).astype(np.int64, copy=False)


class Argmin(Argmax):
    pick = "argmin"


# name -> (whole-tensor op, op along a dim, index op, elementwise function, result type)
_EXTREMES = {
    "max": (Max, MaxDim, Argmax, maximum, MaxResult),
    "min": (Min, MinDim, Argmin, minimum, MinResult),
}


def _nonempty(op: str, x: Tensor, dim) -> None:
    """Refuse, as torch does, a max-like reduction (no identity) of no elements: over every dim (`dim` None or
    empty) of an empty tensor, or over a given dim of size 0 (numpy's error would name its internals)."""
    if x.array.size:
        return
    if dim is None or (isinstance(dim, tuple | list) and not dim):
        raise RuntimeError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0 (input shape "
                           f"{tuple(x.shape)}). Specify the reduction dim with the 'dim' argument.")
    for d in _dims(dim, x.ndim):
        if x.shape[d] == 0:
            raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size (input shape "
                             f"{tuple(x.shape)})")


def _extreme(name: str, x: Tensor, dim, keepdim: bool):
    whole, along, index_op, elementwise, result = _EXTREMES[name]
    if isinstance(dim, Tensor):
        return elementwise(x, dim)
    _nonempty(name, x, dim)
    if dim is None:
        if keepdim:
            raise TypeError(f"{name}(): keepdim needs a dim; use amax/amin(x, keepdim=True) to keep all dims")
        return _reduce(whole, x, None, False)
    if isinstance(dim, tuple | list):
        raise TypeError(f"{name}(): dim must be an int, got {dim!r}; use a{name} to reduce several dims")
    d = _dim(dim, x.ndim)
    indices = index_op.apply(x, dim=d, keepdim=keepdim)
    index = indices.array if keepdim or x.ndim == 0 else array_module(x.array).expand_dims(indices.array, d)
    values = along.apply(x, index=index, dims=(d,) if x.ndim else (), keepdim=bool(keepdim), shape=x.shape)
    return result(values, indices)


def max(x: Tensor, dim=None, keepdim: bool = False):
    """max(x): the largest element; max(x, dim): (values, indices) along dim; max(x, other): elementwise."""
    return _extreme("max", x, dim, keepdim)


def min(x: Tensor, dim=None, keepdim: bool = False):
    """min(x): the smallest element; min(x, dim): (values, indices) along dim; min(x, other): elementwise."""
    return _extreme("min", x, dim, keepdim)


def amax(x: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """Largest values over `dim` (an int or a tuple; all dims by default)."""
    _nonempty("amax", x, dim)
    return _reduce(Amax, x, dim, keepdim)


def amin(x: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """Smallest values over `dim` (an int or a tuple; all dims by default)."""
    _nonempty("amin", x, dim)
    return _reduce(Amin, x, dim, keepdim)


def _arg(op, x: Tensor, dim, keepdim: bool) -> Tensor:
    _nonempty(op.op, x, dim)
    return op.apply(x, dim=None if dim is None else _dim(dim, x.ndim), keepdim=bool(keepdim))


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the first largest value along `dim` (of the flattened tensor when dim is None), as int64."""
    return _arg(Argmax, x, dim, keepdim)


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the first smallest value along `dim` (of the flattened tensor when dim is None), as int64."""
    return _arg(Argmin, x, dim, keepdim)


# ---- logsumexp, prod, norm ----------------------------------------------------------------------------
class LogSumExp(Reduction):
    def forward(ctx, x):
        xp = array_module(x)
        if x.dtype.kind != "f":
            x = x.astype(dtypes.default_float.np)
        shift = max_kept(x, ctx.dims)
        shift = xp.where(xp.isfinite(shift), shift, 0)  # all -inf slices: avoid inf - inf
        with np.errstate(divide="ignore"):  # log(0) = -inf is the answer for all -inf slices
            y = xp.log(xp.exp(x - shift).sum(axis=ctx.dims, keepdims=True)) + shift
        y = y if ctx.keepdim else y.squeeze(axis=ctx.dims)
        ctx.save(x, y)
        return y

    def backward(ctx, grad):
        x, y = ctx.saved
        return ctx.kept(grad) * array_module(grad).exp(x - ctx.kept(y))


def logsumexp(x: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over `dim`, computed without overflow."""
    return _reduce(LogSumExp, x, dim, keepdim)


class Prod(Reduction):
    def forward(ctx, x):
        ctx.save(x)
        return x.prod(axis=ctx.dims, keepdims=ctx.keepdim, dtype=_accumulator(x))

    def backward(ctx, grad):
        # d prod / d x_i is the product of the others. PyTorch's rule: computed as such where the input holds a zero
        # (anywhere), else as prod / x_i (NaN at an inf x_i); chosen on the device, without reading back
        (x,) = ctx.saved
        if x.ndim == 0:  # the product of no others: 1 (prod / x would be NaN at 0 and inf)
            return grad
        xp = array_module(grad)
        zero = x == 0
        quotient = x.prod(axis=ctx.dims, keepdims=True) / xp.where(zero, 1, x)
        g = ctx.kept(grad) * xp.where(zero.any(), _product_of_others(xp, x, ctx.dims), quotient)
        # and prod() of a tensor with two or more zeros passes back exact zeros, whatever the incoming gradient
        return keep_where(g, zero.sum() < 2) if ctx.whole else g


def _product_of_others(xp, x, dims: tuple[int, ...]):
    """Each element's product of the others of its slice over `dims` (one dim, or all): the product of those before it
    times that of those after it, so exact at zeros and infinities."""
    axis = dims[0] if len(dims) == 1 else 0
    v = xp.moveaxis(x if len(dims) == 1 else x.reshape(-1), axis, -1)
    before, after = xp.ones_like(v), xp.ones_like(v)
    before[..., 1:] = xp.cumprod(v[..., :-1], axis=-1)
    after[..., :-1] = xp.cumprod(v[..., :0:-1], axis=-1)[..., ::-1]
    return xp.moveaxis(before * after, -1, axis).reshape(x.shape)


def prod(x: Tensor, dim: int | None = None, keepdim: bool = False, dtype=None) -> Tensor:
    """Product over `dim` (all elements by default); integer and bool tensors multiply in int64."""
    x = with_dtype("prod", x, dtype)
    if isinstance(dim, tuple | list):
        raise TypeError(f"prod(): dim must be an int or None, got {dim!r}")
    return _reduce(Prod, x, dim, keepdim, whole=dim is None)


class Norm(Reduction):
    """The vector p-norm over dims: (sum |x|^p)^(1/p); p = inf/-inf take max/min of |x|, p = 0 counts."""

    def forward(ctx, x):
        xp = array_module(x)
        a, p = xp.abs(x), ctx.p
        if math.isinf(p):
            y = (a.max if p > 0 else a.min)(axis=ctx.dims, keepdims=ctx.keepdim)
        elif p == 0:
            y = (a != 0).sum(axis=ctx.dims, keepdims=ctx.keepdim, dtype=x.dtype)
        else:
            y = (a ** p).sum(axis=ctx.dims, keepdims=ctx.keepdim) ** (1 / p)
        y = xp.asarray(y)
        ctx.save(x, y)
        return y

    def backward(ctx, grad):
        x, y = ctx.saved
        xp = array_module(grad)
        a, y, g, p = xp.abs(x), ctx.kept(y), ctx.kept(grad), ctx.p
        if math.isinf(p):  # like amax: split among the tied largest (or smallest) |x|
            hit = a == y
            return g * xp.sign(x) * hit / hit.sum(axis=ctx.dims, keepdims=True, dtype=grad.dtype)
        if p == 0:
            return xp.zeros_like(x)
        # sign(x) |x|^(p-1) / y^(p-1); the `where`s keep 0 * inf out where x or the whole slice is 0
        return g * xp.sign(x) * xp.where(a > 0, a, 1) ** (p - 1) * xp.where(y > 0, y, 1) ** (1 - p)


def norm(x: Tensor, p=2, dim=None, keepdim: bool = False) -> Tensor:
    """The p-norm over `dim` (all elements by default): p a number, inf, -inf or 'fro', or 'nuc' over two dims."""
    if p == "fro":
        p = 2
    if p == "nuc":
        from engine.ops.linalg import matrix_norm

        return matrix_norm(x, "nuc", (-2, -1) if dim is None else dim, keepdim)
    if isinstance(p, str) or not isinstance(p, int | float):
        raise ValueError(f"norm(): p must be a number, inf, -inf, 'fro' or 'nuc', got {p!r}")
    return _reduce(Norm, _floating(x, "norm"), dim, keepdim, p=p)


# ---- logical reductions and cumulative sum ---------------------------------------------------------------
class All(Reduction):
    differentiable = False
    pick = "all"

    def forward(ctx, x):
        return array_module(x).asarray(getattr(x, ctx.pick)(axis=ctx.dims, keepdims=ctx.keepdim))


class Any(All):
    pick = "any"


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Whether every element over `dim` is nonzero, as a bool tensor."""
    return _reduce(All, x, dim, keepdim)


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Whether some element over `dim` is nonzero, as a bool tensor."""
    return _reduce(Any, x, dim, keepdim)


class Cumsum(Function):
    def forward(ctx, x):
        # a 0-d tensor takes dim 0 in PyTorch; numpy wants a real axis
        flat = x.reshape(x.shape or (1,))
        return array_module(x).cumsum(flat, axis=ctx.dim, dtype=_accumulator(x)).reshape(x.shape)

    def backward(ctx, grad):
        # element i feeds every output j >= i, so its gradient is the sum of grad[j] for j >= i
        return reverse_cumsum(grad.reshape(grad.shape or (1,)), ctx.dim).reshape(grad.shape)


def reverse_cumsum(a, dim: int):
    """The sums from each position to the end along `dim` (cumsum's gradient), of an array or, differentiably,
    of a Tensor."""
    if isinstance(a, Tensor):
        return a.flip(dim).cumsum(dim).flip(dim)
    xp = array_module(a)
    return xp.flip(xp.cumsum(xp.flip(a, dim), axis=dim), dim)


def cumsum(x: Tensor, dim: int, dtype=None) -> Tensor:
    """Running sums along `dim`; integer and bool tensors sum in int64."""
    x = with_dtype("cumsum", x, dtype)
    return Cumsum.apply(x, dim=_dim(dim, x.ndim))


# ---- nanmedian -----------------------------------------------------------------------------------------------
def _nanmedian_index(x, dim: int):
    """int64 index along dim of each slice's lower median among its non-NaN values (0 if all are NaN)."""
    from engine.ops.sort import _order

    xp = array_module(x)
    order = _order(x, dim, False, True)  # NaN sorts last
    count = (~xp.isnan(x)).sum(axis=dim, keepdims=True) if x.dtype.kind == "f" else \
        xp.full((*x.shape[:dim], 1, *x.shape[dim + 1:]), x.shape[dim])
    return xp.take_along_axis(order, xp.maximum((count - 1) // 2, 0).astype(np.int64), axis=dim)


class LowerMedian(Reduction):
    """The lower median of every element (of those `index_of` counts); the gradient splits evenly among the
    elements equal to it. Subclasses name `index_of(x, dim)`: the index of each slice's median along dim."""

    index_of = None

    def forward(ctx, x):
        xp = array_module(x)
        flat = x.reshape(-1)
        if flat.size == 0:  # NaN, as torch gives; backward then passes the empty input an empty gradient
            y = xp.full((), np.nan, x.dtype if x.dtype.kind == "f" else np.float32)
        else:
            y = flat[ctx.index_of(flat, 0)].reshape(())
        ctx.save(x, y)
        return y

    def backward(ctx, grad):
        return evenly_distributed(grad, *ctx.saved)


class NanMedian(LowerMedian):
    """The lower median of the non-NaN elements."""

    op = "nanmedian"
    index_of = staticmethod(_nanmedian_index)


class NanMedianDim(MaxDim):
    op = "nanmedian"


NanMedianResult = namedtuple("nanmedian", ["values", "indices"])


def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """median ignoring NaN: nanmedian(x) the lower median of the non-NaN elements, nanmedian(x, dim) (values,
    indices) along dim, as torch.nanmedian; an all-NaN slice gives NaN."""
    return median_like("nanmedian", input, dim, keepdim, NanMedian, NanMedianDim, _nanmedian_index, NanMedianResult)


def median_like(name: str, input: Tensor, dim, keepdim: bool, whole, along, index_of, result):
    """median and nanmedian: op `whole` over every element when dim is None, else `result(values, indices)`
    along dim, the indices from `index_of(array, dim)` and the values by op `along` at them."""
    if dim is None:
        return whole.apply(input, dims=tuple(range(input.ndim)), keepdim=False, shape=input.shape)
    d = _dim(dim, input.ndim)
    if input.ndim == 0:
        index = array_module(input.array).zeros((), np.int64)
        values = along.apply(input, index=index, dims=(), keepdim=bool(keepdim), shape=input.shape)
        return result(values, Tensor._wrap(index))
    _nonempty(name, input, d)
    index = index_of(input.array, d)
    values = along.apply(input, index=index, dims=(d,), keepdim=bool(keepdim), shape=input.shape)
    return result(values, Tensor._wrap(index if keepdim else index.squeeze(d)))
