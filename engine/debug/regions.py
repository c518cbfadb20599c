"""A slice's gradient as the debugger keeps it: its region's values and their place, never made whole.

A slice's backward returns a RegionGrad (engine.autograd.function): values that are the whole gradient
inside one region of the input, zeros outside it. Listeners get it as it is, so backward through T
slices of one tensor stays linear under the debugger too: the summary of the whole gradient is made
from the region's values plus the number of zeros around them, and the value cache keeps the region
and makes the whole array only when it is fetched.

A whole gradient of more than `limit` elements gets the summary `summarize(whole, limit=numel)` gives:
every statistic exact (stride 1, where summarize() would sample), the histogram and the samples of
the same evenly spaced positions of the whole array. Smaller ones, regions that fill more than half
their tensor, and regions this module cannot place (integer-array keys) are made whole and summarised
as any gradient: that costs at most a constant, or twice the region.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from engine.autograd.function import RegionGrad
from engine.backend import array_module, device_of, host_floats
from engine.debug.summary import (
    HIST_LIMIT,
    SAMPLES,
    TensorSummary,
    _dtype_names,
    _hist_range,
    _make,
    sample_std,
    summarize,
)
from engine.ops.view_write import Region

_umin, _umax, _sum = np.minimum.reduce, np.maximum.reduce, np.add.reduce


def whole(g):
    """`g` as a full array (a RegionGrad made dense; an array as it is)."""
    return g.dense() if isinstance(g, RegionGrad) else g


def held(g):
    """The array `g` holds: a RegionGrad's values (every other element is zero), else `g` itself."""
    return g.values if isinstance(g, RegionGrad) else g


def numel(g) -> int:
    """How many elements the whole gradient `g` has."""
    return math.prod(g.shape) if isinstance(g, RegionGrad) else g.size


def summarize_region(region: RegionGrad, limit: int) -> TensorSummary:
    """The summary of the whole gradient `region` stands for, from its values alone (see the module)."""
    values = region.values
    n, k = math.prod(region.shape), values.size
    box = _box(region) if n > limit and 2 * k <= n else None
    if box is None:
        return summarize(region.dense(), limit)
    xp = array_module(values)
    flat = values.reshape(-1)
    x64 = flat.astype(xp.float64)
    if xp is np:
        total, sq = float(_sum(x64)), float(x64.dot(x64))
        vmin, vmax, nonzero = float(_umin(flat)), float(_umax(flat)), int(np.count_nonzero(flat))
    else:  # one transfer
        total, sq, vmin, vmax, nonzero = host_floats(
            [x64.sum(), x64.dot(x64), flat.min(), flat.max(), xp.count_nonzero(flat)])
    if not math.isfinite(total) or not math.isfinite(sq):  # NaN, infinities, an overflow: the general path
        return summarize(region.dense(), limit)
    mn, mx = min(vmin, 0.0), max(vmax, 0.0)  # at least half the elements are zeros
    mean = total / n
    var = sq / n - mean * mean  # no cancellation: with half of them zeros, var >= mean^2
    if mx == mn:
        mean, var = mn, 0.0
    lo, hi = _hist_range(mn, mx)
    counted = _every(values, box, n, -(-n // HIST_LIMIT))  # the elements summarize() would count
    samples = tuple(_every(values, box, n, max(1, n // SAMPLES), SAMPLES).tolist())
    dev = "cpu" if xp is np else str(device_of(values))
    dt = values.dtype
    dtype = _dtype_names.get(dt) or _dtype_names.setdefault(dt, dt.name)
    return _make(region.shape, dtype, dev, n, mn, mx, mean, sample_std(var, n), math.sqrt(sq), 0, 0,
                 n - int(nonzero), None, lo, hi, samples, 1, counted)


def _box(region: RegionGrad) -> tuple | None:
    """Where the region's values lie in the flat C-order whole: (offset, end, dims, run), with dims
    (size, stride, axis of values, flipped) largest stride first, so that the value at index i lies at
    offset + sum(i[axis] * stride) (i[axis] counted from the end when flipped), every position in
    [offset, end) when `run`; None where it can't say."""
    index = region.index
    if isinstance(index, Region):  # a written view's region (engine.ops.view_write)
        if index.order is not None:  # offsets in a base laid out in another order than C's
            return None
        offset, shape, strides = index.offset, index.shape, index.strides
    else:
        if getattr(index, "advanced", None) is not None:  # integer arrays or a mask (engine.ops.index Key)
            return None
        place = _basic(region.shape, getattr(index, "basic", index))
        if place is None:
            return None
        offset, shape, strides = place
    if tuple(shape) != region.values.shape:
        return None
    dims = []
    for axis, (size, stride) in enumerate(zip(shape, strides)):
        if size == 1:
            continue
        if stride < 0:
            offset += (size - 1) * stride
        dims.append((size, abs(stride), axis, stride < 0))
    dims.sort(key=lambda dim: -dim[1])
    inner = 0
    for size, stride, _, _ in reversed(dims):  # each stride steps past everything inside it: no overlap
        if stride <= inner:
            return None
        inner += (size - 1) * stride
    return offset, offset + inner + 1, dims, _is_run(dims, region.values)


def _is_run(dims: list, values) -> bool:
    """Whether the values, in their own C order, fill consecutive positions (x[t] of a (T, ...) tensor)."""
    if not values.flags.c_contiguous:
        return False
    expect, axis = 1, values.ndim
    for size, stride, ax, flipped in reversed(dims):
        if flipped or stride != expect or ax >= axis:
            return False
        expect, axis = expect * size, ax
    return True


def _basic(shape: tuple, index) -> tuple | None:
    """(offset, shape, strides) in elements of x[index] for a C-contiguous x of `shape` and an index of
    ints, slices, None and Ellipsis (as numpy places that view); None for any other index."""
    if not isinstance(index, tuple):
        index = (index,)
    c = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        c[d] = c[d + 1] * shape[d + 1]
    used = sum(1 for item in index if item is not None and item is not Ellipsis)
    offset, out_shape, out_strides, d = 0, [], [], 0
    for item in index:
        if item is Ellipsis:
            for _ in range(len(shape) - used):
                out_shape.append(shape[d])
                out_strides.append(c[d])
                d += 1
        elif item is None:
            out_shape.append(1)
            out_strides.append(0)
        elif isinstance(item, slice):
            start, stop, step = item.indices(shape[d])
            out_shape.append(len(range(start, stop, step)))
            out_strides.append(step * c[d])
            offset += start * c[d]
            d += 1
        elif isinstance(item, bool) or not hasattr(item, "__index__"):
            return None
        else:
            i = operator.index(item)
            offset += (i + shape[d] if i < 0 else i) * c[d]
            d += 1
    for rest in range(d, len(shape)):
        out_shape.append(shape[rest])
        out_strides.append(c[rest])
    return offset, tuple(out_shape), tuple(out_strides)


def _every(values, box: tuple, n: int, step: int, count: int | None = None):
    """The whole gradient's elements at positions 0, step, 2 step, ... below n (the first `count` of
    them), as a host array."""
    xp = array_module(values)
    offset, end, dims, run = box
    total = -(-n // step) if count is None else min(count, -(-n // step))
    out = xp.zeros(total, values.dtype)
    first, last = -(-offset // step), min(total, -(-end // step))  # the positions in [offset, end)
    if first < last:
        rest = xp.arange(first * step - offset, last * step - offset, step)
        if run:
            out[first:last] = values.reshape(-1)[rest]
        else:
            inside = None
            index = [0] * values.ndim
            for size, stride, axis, flipped in dims:
                i, rest = xp.divmod(rest, stride)
                if inside is None:  # the outermost: every position in [offset, end) lies in its range
                    inside = i < size
                else:
                    inside &= i < size
                    i = xp.minimum(i, size - 1)
                index[axis] = size - 1 - i if flipped else i
            inside &= rest == 0
            out[first:last] = xp.where(inside, values[tuple(index)], xp.zeros((), values.dtype))
    return out if xp is np else out.get()
