"""Statistics torch has at the top level that ported scripts call: std_mean, var_mean, aminmax, cov, corrcoef,
dist, pdist, histogram and histogramdd.

The moments, extremes, covariances and distances are composed of differentiable ops; the histograms are
counts, without gradients, as in torch.
"""

from __future__ import annotations

from collections import namedtuple

from engine import dtypes
from engine.autograd.function import ShapeError
from engine.backend import array_module
from engine.ops.order import bin_range
from engine.ops.reduce import _dims, amax, amin, mean, norm, std, var
from engine.tensor import Tensor

__all__ = ["aminmax", "corrcoef", "cov", "dist", "histogram", "histogramdd", "pdist", "std_mean", "var_mean"]

AminmaxResult = namedtuple("aminmax", ["min", "max"])  # as torch.return_types
HistogramResult = namedtuple("histogram", ["hist", "bin_edges"])
HistogramddResult = namedtuple("histogramdd", ["hist", "bin_edges"])


# ---- moments and extremes --------------------------------------------------------------------------------------
def _moment_and_mean(op: str, spread, input: Tensor, dim, unbiased, keepdim: bool, correction):
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op} only support floating point and complex dtypes, got {input.dtype.name}")
    if isinstance(dim, bool):  # std_mean(input, unbiased), as torch's older overload
        dim, unbiased = None, dim
    return spread(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
             correction: int | None = None) -> tuple[Tensor, Tensor]:
    """(std, mean) over `dim` with std's correction rules, as torch.std_mean."""
    return _moment_and_mean("std_mean", std, input, dim, unbiased, keepdim, correction)


def var_mean(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
             correction: int | None = None) -> tuple[Tensor, Tensor]:
    """(var, mean) over `dim` with var's correction rules, as torch.var_mean."""
    return _moment_and_mean("var_mean", var, input, dim, unbiased, keepdim, correction)


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False) -> AminmaxResult:
    """(min, max) over `dim` (every element by default), as torch.aminmax; ties share the gradient."""
    if dim is not None and not isinstance(dim, int):
        raise TypeError(f"aminmax(): dim must be an int or None, got {type(dim).__name__}")
    if dim is None and input.numel() == 0:
        raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation has no "
                           "identity.")
    dims = () if dim is None else _dims(dim, input.ndim)
    if any(input.shape[d] == 0 for d in dims):  # an empty tensor reduces over its other, non-empty dims
        raise IndexError(f"aminmax: Expected reduction dim {dims[0]} to have non-zero size.")
    low, high = amin(input, dims, keepdim), amax(input, dims, keepdim)
    if dim is None and keepdim:  # torch keeps every dim as size 1
        low, high = low.reshape([1] * input.ndim), high.reshape([1] * input.ndim)
    return AminmaxResult(low, high)


# ---- covariance and correlation --------------------------------------------------------------------------------
def _observations(op: str, input: Tensor, aweights: Tensor | None = None) -> Tensor:
    """input as a (variables, observations) float matrix, in the dtype aweights promote it to (as torch)."""
    if input.ndim > 2:
        raise ShapeError(f"{op}(): expected input to have two or fewer dimensions but got an input with "
                         f"{input.ndim} dimensions")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    if aweights is not None and aweights.dtype.is_floating_point:
        return x.to(dtypes.wider(x.dtype, aweights.dtype))
    return x if x.dtype.is_floating_point else x.to(dtypes.default_float)


def _weights(name: str, w: Tensor | None, n: int, integral: bool):
    if w is None:
        return None
    if w.ndim > 1:
        raise ShapeError(f"cov(): expected {name} to have one or fewer dimensions but got {name} with {w.ndim} "
                         "dimensions")
    if w.numel() != n:
        raise ShapeError(f"cov(): expected {name} to have the same numel as there are observations in the input but "
                         f"got {w.numel()} != {n}")
    if integral and w.dtype.is_floating_point:
        raise TypeError(f"cov(): expected fweights to have integral dtype but got fweights with {w.dtype.name} dtype")
    if not integral and not w.dtype.is_floating_point:
        raise TypeError(f"cov(): expected aweights to have floating point dtype but got aweights with "
                        f"{w.dtype.name} dtype")
    if bool((w.detach() < 0).any()):
        raise ValueError(f"cov(): {name} cannot be negative")
    return w.reshape(-1)


def cov(input: Tensor, *, correction: int = 1, fweights: Tensor | None = None,
        aweights: Tensor | None = None) -> Tensor:
    """The covariance matrix of the variables in input's rows (observations in columns), as torch.cov."""
    x = _observations("cov", input, aweights)
    n = x.shape[1]
    fw = _weights("fweights", fweights, n, integral=True)
    aw = _weights("aweights", aweights, n, integral=False)
    w = fw if aw is None else (aw if fw is None else fw * aw)
    if w is None:
        total, average = n, x.mean(1, keepdim=True)
        factor = n - correction
    else:
        w = w.to(x.dtype)
        total = w.sum()
        average = (x * w).sum(1, keepdim=True) / total
        if correction == 0:
            factor = total
        elif aw is None:
            factor = total - correction
        else:
            factor = total - correction * (w * aw.to(x.dtype)).sum() / total
    factor = factor.clamp_min(0) if isinstance(factor, Tensor) else max(factor, 0)  # torch clamps at 0 too
    centered = x - average
    weighted = centered if w is None else centered * w
    out = centered @ weighted.mT / factor
    return out.squeeze() if input.ndim < 2 or x.shape[0] == 1 else out


def corrcoef(input: Tensor) -> Tensor:
    """Pearson's correlation coefficients of the variables in input's rows, clipped to [-1, 1], as torch.corrcoef."""
    _observations("corrcoef", input)
    c = cov(input)
    if c.ndim == 0:
        return c / c
    spread = c.diagonal().sqrt()
    return (c / spread.unsqueeze(1) / spread.unsqueeze(0)).clamp(-1, 1)


# ---- distances -----------------------------------------------------------------------------------------------
def dist(input: Tensor, other: Tensor, p=2) -> Tensor:
    """The p-norm of input - other (broadcast), as torch.dist."""
    return norm(input - other, p)


def pdist(input: Tensor, p: float = 2) -> Tensor:
    """The p-norm distance between each pair of rows i < j of an (N, M) input, in row-major order, as torch.pdist."""
    if input.ndim != 2:
        raise ShapeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if not input.dtype.is_floating_point:
        raise TypeError(f"pdist only supports floating-point dtypes, got {input.dtype.name}")
    if p < 0:
        raise ValueError(f"pdist only supports non-negative p values, got {p}")
    xp = array_module(input.array)
    i, j = xp.triu_indices(input.shape[0], 1)
    return norm(input[Tensor._wrap(i)] - input[Tensor._wrap(j)], p, 1)


# ---- histograms ------------------------------------------------------------------------------------------------
def _edges(xp, x, d: int, bins, bounds, dtype):
    """The bin edges of dimension d: the given tensor's values, or `bins` equal bins over `bounds` (the data's
    extent by default, [0, 1] for no data; widened by 0.5 each way when it is one point, as torch)."""
    if isinstance(bins, Tensor):
        if bins.ndim != 1 or bins.shape[0] < 1:
            raise ShapeError(f"torch.histogramdd: bins tensor should have one dimension and at least 1 element, but "
                             f"got {tuple(bins.shape)} for dimension {d}")
        return bins.array.astype(dtype)
    if bins <= 0:
        raise ValueError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension {d}")
    if bounds is None:
        column = x[:, d]
        low, high = (float(column.min()), float(column.max())) if column.size else (0.0, 1.0)
    else:
        low, high = float(bounds[0]), float(bounds[1])
    low, high = bin_range(low, high, 0.5, f"torch.histogramdd: dimension {d}'s range")
    if low > high:
        raise RuntimeError(f"torch.histogramdd: min should not exceed max, but got min {low} max {high} for "
                           f"dimension {d}")
    return xp.linspace(low, high, bins + 1).astype(dtype)


def _histogram(op: str, input: Tensor, points: Tensor, bins, range, weight: Tensor | None, weight_shape, density):
    """The histogram of `points` (N, D) with numpy's or CuPy's histogramdd on edges made as torch makes them."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: \"histogramdd\" not implemented for {input.dtype.name}; call .float() first")
    dims = points.shape[1]
    if isinstance(bins, int | Tensor):
        bins = [bins] * dims if isinstance(bins, int) else [bins]
    if len(bins) != dims:
        raise ValueError(f"{op}: expected {dims} sequences of bin edges for each dimension, but got {len(bins)}")
    if range is not None and len(range) != 2 * dims:
        raise ValueError(f"{op}: expected {2 * dims} values for range, but got {len(range)}")
    w = None
    if weight is not None:
        if tuple(weight.shape) != tuple(weight_shape):
            raise ShapeError(f"{op}: if weight tensor is provided it should have the same shape as the input tensor "
                             f"excluding its innermost dimension, but got input with shape {tuple(input.shape)} "
                             f"and weight with shape {tuple(weight.shape)}")
        if weight.dtype != input.dtype:
            raise TypeError(f"{op}: weight must have the input's dtype {input.dtype.name}, got {weight.dtype.name}")
        w = weight.array.reshape(-1)
    xp, dtype, x = array_module(input.array), input.array.dtype, points.array
    edges = [_edges(xp, x, d, b, None if range is None else range[2 * d:2 * d + 2], dtype) for d, b in enumerate(bins)]
    hist, _ = xp.histogramdd(x, bins=edges, weights=w, density=density)
    return Tensor._wrap(hist.astype(dtype)), [Tensor._wrap(e) for e in edges]


def histogram(input: Tensor, bins=100, *, range=None, weight: Tensor | None = None,
              density: bool = False) -> HistogramResult:
    """(hist, bin_edges): counts (or weights' sums, or a density) of input's values in `bins` equal bins over
    `range` (the data's extent by default) or between the given edges, as torch.histogram."""
    hist, edges = _histogram("histogram", input, input.detach().reshape(-1, 1), bins, range, weight, input.shape,
                             density)
    return HistogramResult(hist, edges[0])


def histogramdd(input: Tensor, bins=10, *, range=None, weight: Tensor | None = None,
                density: bool = False) -> HistogramddResult:
    """(hist, bin_edges) of the points in input's last dim, as torch.histogramdd: bins an int, one int per
    dimension or one edges tensor per dimension; range the flat (min, max) pairs."""
    if input.ndim < 2:
        raise ShapeError(f"torch.histogramdd: input tensor should have at least 2 dimensions, but got {input.ndim}")
    points = input.detach().reshape(-1, input.shape[-1])
    return HistogramddResult(*_histogram("histogramdd", input, points, bins, range, weight, input.shape[:-1], density))
