"""Order statistics and searching: kthvalue, mode, quantile/nanquantile, searchsorted, bucketize, histc, isin.

kthvalue, mode and quantile are differentiable: each reads the input at indices found by sorting, so the
gradient flows back to the elements picked. The others return indices, counts or masks.
"""

from __future__ import annotations

import math
import numbers
from collections import namedtuple

import numpy as np

from engine.backend import array_module
from engine.ops.gather_scatter import gather
from engine.ops.reduce import MaxDim, median_like
from engine.ops.scan import running
from engine.ops.shape import _dim
from engine.ops.sort import _order
from engine.tensor import Tensor

__all__ = ["bucketize", "histc", "isin", "kthvalue", "mode", "nanquantile", "quantile", "searchsorted"]

KthvalueResult = namedtuple("kthvalue", ["values", "indices"])
ModeResult = namedtuple("mode", ["values", "indices"])


# ---- kthvalue, mode ---------------------------------------------------------------------------------------
class KthvalueDim(MaxDim):
    op = "kthvalue"


class ModeDim(MaxDim):
    op = "mode"


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """(values, indices) of the k-th smallest element along `dim`, as torch.kthvalue; NaN counts as the
    largest value. Among tied values the index is the k-th in a stable sort (PyTorch leaves it unspecified)."""
    d = _dim(dim, input.ndim)
    n = input.shape[d] if input.ndim else 1
    if n and not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): k ({k}) out of range for dimension {d} of input {tuple(input.shape)}, "
                           f"which has size {n}")

    def index_of(x, d):
        return _order(x, d, False, True)[(slice(None),) * d + (slice(k - 1, k),)]

    return median_like("kthvalue", input, d, keepdim, None, KthvalueDim, index_of, KthvalueResult)


def _mode_index(x, dim: int):
    """int64 index along dim (kept, size 1) of each slice's most frequent value: the smallest of equally
    frequent ones, at its last occurrence (NaNs count as equal to each other)."""
    xp = array_module(x)
    order = xp.moveaxis(_order(x, dim, False, True), dim, -1)
    s = xp.take_along_axis(xp.moveaxis(x, dim, -1), order, axis=-1)
    same = s[..., 1:] == s[..., :-1]
    if x.dtype.kind == "f":
        same |= xp.isnan(s[..., 1:]) & xp.isnan(s[..., :-1])
    positions = xp.arange(s.shape[-1], dtype=np.int64)
    same = xp.concatenate([xp.zeros((*s.shape[:-1], 1), bool), same], axis=-1)
    start = running(xp, "maximum", xp.where(same, 0, positions), -1)  # where each element's run began
    end = (positions - start).argmax(axis=-1)[..., None]  # the end of the first longest run
    return xp.moveaxis(xp.take_along_axis(order, end, axis=-1), -1, dim)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """(values, indices) of the most frequent value along `dim`, as torch.mode: the smallest of equally
    frequent values; the index is its last occurrence, which torch's CPU kernel gives in practice (its
    docs leave the index unspecified)."""
    return median_like("mode", input, _dim(dim, input.ndim), keepdim, None, ModeDim, _mode_index, ModeResult)


# ---- quantile, nanquantile ------------------------------------------------------------------------------------
INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _q_array(name: str, x: Tensor, q):
    """q as a 1-d array of x's dtype on x's device, and whether q was a scalar; torch's checks."""
    xp = array_module(x.array)
    if isinstance(q, Tensor):
        if q.dtype is not x.dtype:
            raise RuntimeError(f"{name}() q tensor must be same dtype as the input tensor ({x.dtype.name}), "
                               f"got {q.dtype.name}")
        if q.ndim > 1:
            raise RuntimeError(f"{name}() q must be a scalar or 1D tensor, got shape {tuple(q.shape)}")
        if type(q.array) is not type(x.array):
            raise RuntimeError(f"{name}() q must be on the input's device ({x.device}), got {q.device}")
        qa = q.array.reshape(-1)
        if qa.size and not bool(((qa >= 0) & (qa <= 1)).all()):
            raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
        return qa, q.ndim == 0
    if not isinstance(q, numbers.Real) or isinstance(q, bool):
        raise TypeError(f"{name}() q must be a number or a tensor, got {type(q).__name__}")
    if not 0 <= q <= 1:
        raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {q}")
    return xp.asarray([q], dtype=x.array.dtype), True


def _quantile(name: str, input: Tensor, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool) -> Tensor:
    if input.array.dtype not in (np.float32, np.float64):
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype, got {input.dtype.name}")
    qa, scalar = _q_array(name, input, q)
    if input.numel() == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    if interpolation not in INTERPOLATIONS:
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, midpoint or nearest, "
                           f"but got {interpolation}")
    if dim is None:
        x = input.reshape(-1)
    else:
        d = _dim(dim, input.ndim)
        x = input.movedim(d, -1) if input.ndim else input.reshape(1)
    xp = array_module(x.array)
    a, n, m = x.array, x.shape[-1], qa.size
    lead = (m,) + (1,) * x.ndim  # q along a new first dim; the sorted dim last
    nan = xp.isnan(a)
    # the (fractional) position of each quantile among the sorted values, NaN sorting last
    if ignore_nan:
        ranks = xp.maximum(qa.reshape(lead) * ((~nan).sum(axis=-1, keepdims=True) - 1), 0)
    else:  # a slice with a NaN reads its last value: NaN
        ranks = xp.where(nan.any(axis=-1, keepdims=True), n - 1, qa.reshape(lead) * (n - 1))
    ranks = {"lower": xp.floor, "higher": xp.ceil, "nearest": xp.round}.get(interpolation, lambda r: r)(ranks)
    order = xp.broadcast_to(_order(a, x.ndim - 1, False, True), (m, *a.shape))
    xq = x.unsqueeze(0).expand(m, *x.shape)

    def read(rank):
        return gather(xq, -1, Tensor._wrap(xp.take_along_axis(order, rank.astype(np.int64), axis=-1)))

    out = read(ranks)
    if interpolation in ("linear", "midpoint"):
        weight = xp.full_like(ranks, 0.5) if interpolation == "midpoint" else ranks - xp.floor(ranks)
        above = read(xp.ceil(ranks))
        out = out + Tensor._wrap(weight) * (above - out)
    out = out.squeeze(-1)
    if keepdim:
        out = out.reshape(m, *(1,) * input.ndim) if dim is None else out.unsqueeze(d + 1) if input.ndim else out
    return out.squeeze(0) if scalar else out


def quantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """The q-th quantiles of input (flattened when dim is None) along `dim`, as torch.quantile; a slice with
    a NaN gives NaN. A 1-d q puts its quantiles along a new first dim. No gradient flows to q."""
    return _quantile("quantile", input, q, dim, keepdim, interpolation, False)


def nanquantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Tensor:
    """quantile ignoring NaN, as torch.nanquantile: an all-NaN slice gives NaN."""
    return _quantile("nanquantile", input, q, dim, keepdim, interpolation, True)


# ---- searchsorted, bucketize ----------------------------------------------------------------------------------
def _values_array(name: str, like, values):
    """`values` (a tensor or a number) as an array on the device of `like`."""
    if isinstance(values, Tensor):
        if type(values.array) is not type(like):
            raise RuntimeError(f"{name}(): expected the sorted sequence and the values on the same device")
        return values.array
    if not isinstance(values, numbers.Number):
        raise TypeError(f"{name}(): input must be a tensor or a number, got {type(values).__name__}")
    return array_module(like).asarray(values)


def _search_rows(xp, seq, values, side: str):
    """searchsorted of each row of values in the same row of seq (both 2-d, same number of rows): values
    and sequence become ranks in their sorted union, offset per row, so one 1-d search does every row."""
    rows, m = seq.shape
    union = xp.unique(xp.concatenate([seq.reshape(-1), values.reshape(-1)]))
    offset = xp.arange(rows, dtype=np.int64)[:, None] * (union.size + 1)
    keys = (xp.searchsorted(union, seq) + offset).reshape(-1)
    found = xp.searchsorted(keys, (xp.searchsorted(union, values) + offset).reshape(-1), side=side)
    return found.reshape(values.shape) - xp.arange(rows, dtype=np.int64)[:, None] * m


def searchsorted(sorted_sequence: Tensor, input, *, out_int32: bool = False, right: bool = False,
                 side: str | None = None, sorter: Tensor | None = None) -> Tensor:
    """Where each value of `input` would go in the innermost dim of `sorted_sequence` to keep it sorted, as
    torch.searchsorted: the first such index, or the last with right=True or side='right'."""
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("searchsorted(): side and right can't be set to opposites, got side of left "
                               "while right was True")
        right = side == "right"
    seq = sorted_sequence.array
    xp = array_module(seq)
    values = _values_array("searchsorted", seq, input)
    if values.ndim == 0 and seq.ndim > 1:
        raise RuntimeError("searchsorted(): input value can be a scalar only when the sorted sequence is 1-d, "
                           f"got a sequence of shape {tuple(seq.shape)}")
    if seq.ndim > 1 and (seq.ndim != values.ndim or seq.shape[:-1] != values.shape[:-1]):
        raise RuntimeError("searchsorted(): the sorted sequence must be 1-d or share all but its last dim with "
                           f"the input, got sequence {tuple(seq.shape)} and input {tuple(values.shape)}")
    if sorter is not None:
        if not isinstance(sorter, Tensor) or sorter.array.dtype != np.int64 or sorter.shape != sorted_sequence.shape:
            raise RuntimeError("searchsorted(): sorter must be an int64 tensor of the sorted sequence's shape "
                               f"{tuple(seq.shape)}")
        seq = xp.take_along_axis(seq, sorter.array, axis=-1)
    side = "right" if right else "left"
    if seq.ndim <= 1:
        found = xp.searchsorted(seq.reshape(-1), values, side=side)
    else:
        rows = math.prod(seq.shape[:-1])
        found = _search_rows(xp, seq.reshape(rows, -1), values.reshape(rows, -1), side).reshape(values.shape)
    return Tensor._wrap(xp.asarray(found).astype(np.int32 if out_int32 else np.int64, copy=False))


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The index of the bucket of each value of `input` among 1-d `boundaries`, as torch.bucketize:
    boundaries[i-1] < x <= boundaries[i], or boundaries[i-1] <= x < boundaries[i] with right=True."""
    if boundaries.ndim != 1:
        raise RuntimeError(f"bucketize(): boundaries tensor must be 1 dimension, got shape {tuple(boundaries.shape)}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


# ---- histc, isin ----------------------------------------------------------------------------------------------
def bin_range(lo: float, hi: float, widen: float, name: str) -> tuple[float, float]:
    """[lo, hi] checked finite, and widened by `widen` each way when it is one point: the range histc and
    histogram lay equal bins over. `name` begins the error ("histc(): range of")."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"{name} [{lo}, {hi}] is not finite")
    return (lo - widen, hi + widen) if lo == hi else (lo, hi)


def histc(input: Tensor, bins: int = 100, min=0, max=0) -> Tensor:
    """Counts of input's elements in `bins` equal-width bins over [min, max] (the data's range when min ==
    max), as torch.histc; elements outside the range, and NaN, are not counted."""
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral):
        raise TypeError(f"histc(): bins must be an int, got {type(bins).__name__} {bins!r}")
    if bins <= 0:
        raise RuntimeError(f"histc(): bins must be > 0, got {bins}")
    a = input.array.reshape(-1)
    if a.dtype.kind != "f":
        raise RuntimeError(f"histc(): input dtype must be floating point, got {input.dtype.name}; call .float() first")
    xp = array_module(a)
    lo, hi = float(min), float(max)
    if lo == hi and a.size:
        lo, hi = float(a.min()), float(a.max())
    lo, hi = bin_range(lo, hi, 1, "histc(): range of")
    if lo > hi:
        raise RuntimeError(f"histc(): max must be larger than min, got min {lo} and max {hi}")
    lo_, hi_ = a.dtype.type(lo), a.dtype.type(hi)
    keep = (a >= lo_) & (a <= hi_)
    with np.errstate(invalid="ignore"):
        at = xp.where(keep, (a - lo_) * bins / (hi_ - lo_), 0).astype(np.int64)
    counts = xp.bincount(xp.minimum(at, bins - 1), weights=keep.astype(a.dtype), minlength=bins)
    return Tensor._wrap(counts.astype(a.dtype, copy=False))


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """Whether each element of `elements` is in `test_elements` (either may be a number), as torch.isin."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin(): elements and test_elements can't both be numbers; pass a tensor for one")
    like = elements.array if isinstance(elements, Tensor) else test_elements.array
    e, t = (_values_array("isin", like, v) for v in (elements, test_elements))
    return Tensor._wrap(array_module(like).isin(e, t, assume_unique=assume_unique, invert=invert))
