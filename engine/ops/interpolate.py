"""interpolate: resizing (N, C, ...) inputs by nearest neighbour, (bi/tri)linear or bicubic interpolation,
with or without antialiasing.

Every mode is separable: each spatial axis is resampled on its own, output position j reading input
positions idx[k, j] with weights w[k, j], for the K taps of the mode (nearest: one tap of weight 1,
linear two, bicubic four, antialiased as many as the widened filter covers). The tables are computed on
the host with PyTorch's formulas, in its precision (float32 scales for nearest, the tensor's dtype
otherwise), so that outputs match it at exact boundaries; backward adds each output's gradient back
into the positions it read.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.index import scatter_add_into
from engine.ops.pool import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d
from engine.tensor import Tensor

__all__ = ["interpolate"]

_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}  # mode -> the input rank it needs
_NEAREST = ("nearest", "nearest-exact")
_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_CUBIC_A = -0.75  # PyTorch's (and OpenCV's) cubic convolution; its antialiased bicubic uses PIL's -0.5
_DENSE_TAPS = 5  # from this many taps on, the CPU forward is one matrix product per axis


def _cubic(x, a: float):
    """Keys' cubic convolution kernel at |x| (zero from 2 on)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, 0))


def _triangle(x):
    return np.maximum(1 - np.abs(x), 0)


def _source_scale(in_size: int, out_size: int, scale, align_corners: bool, f):
    """Input cells per output cell, as PyTorch's area_pixel_compute_scale."""
    if align_corners:
        return f(in_size - 1) / f(out_size - 1) if out_size > 1 else f(0)
    return f(1.0 / scale) if scale else f(in_size) / f(out_size)


def _nearest_table(in_size: int, out_size: int, scale, exact: bool, dtype=None):
    """Source index of each output position, as PyTorch's nearest_idx (float32 arithmetic)."""
    if not exact and out_size == in_size:
        return np.arange(out_size)[None], None
    s = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
    j = np.arange(out_size, dtype=np.float32)
    src = np.floor((j + np.float32(0.5)) * s if exact else j * s)
    return np.minimum(src.astype(np.int64), in_size - 1)[None], None


def _linear_table(in_size: int, out_size: int, scale, align_corners: bool, dtype):
    """(idx, w), two taps per output position, as PyTorch's linear upsampling kernels."""
    f = np.dtype(dtype).type
    s = _source_scale(in_size, out_size, scale, align_corners, f)
    j = np.arange(out_size, dtype=dtype)
    src = j * s if align_corners else np.maximum((j + f(0.5)) * s - f(0.5), f(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    w1 = np.clip(src - i0, 0, 1).astype(dtype)
    return np.stack([i0, i0 + (i0 < in_size - 1)]), np.stack([1 - w1, w1]).astype(dtype)


def _cubic_table(in_size: int, out_size: int, scale, align_corners: bool, dtype):
    """(idx, w), four taps per output position, as PyTorch's bicubic kernel (borders replicated)."""
    f = np.dtype(dtype).type
    s = _source_scale(in_size, out_size, scale, align_corners, f)
    j = np.arange(out_size, dtype=dtype)
    src = j * s if align_corners else (j + f(0.5)) * s - f(0.5)  # not clamped at 0, unlike linear
    i = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    t = np.clip(src - i, 0, 1).astype(dtype)
    offsets = np.arange(-1, 3).reshape(-1, 1)
    w = _cubic(t[None] - offsets, f(_CUBIC_A)).astype(dtype)
    return np.clip(i[None] + offsets, 0, in_size - 1), w


def _antialias_table(in_size: int, out_size: int, scale, align_corners: bool, dtype, cubic: bool):
    """(idx, w) of PyTorch's antialiased kernels: the filter widened by the downscale factor, then each
    output's weights normalised to sum to 1 (taps past the input's border are dropped, not replicated)."""
    f = np.dtype(dtype).type
    s = _source_scale(in_size, out_size, scale, align_corners, f)
    support = f(2 if cubic else 1) * (s if s >= 1 else f(1))
    inv = f(1) / s if s >= 1 else f(1)
    center = s * (np.arange(out_size, dtype=dtype) + f(0.5))
    lo = np.maximum(np.floor(center - support + f(0.5)).astype(np.int64), 0)
    hi = np.minimum(np.floor(center + support + f(0.5)).astype(np.int64), in_size)
    taps = max(int((hi - lo).max()), 1)
    pos = lo[None] + np.arange(taps).reshape(-1, 1)
    x = (pos - center[None] + f(0.5)) * inv
    w = (_cubic(x, f(-0.5)) if cubic else _triangle(x)).astype(dtype) * (pos < hi[None])
    total = w.sum(axis=0)
    w = np.where(total != 0, w / np.where(total != 0, total, 1), w).astype(dtype)
    return np.minimum(pos, in_size - 1), w


class Interpolate(Function):
    """x resampled along each spatial axis by the (idx, w) tap tables in `ctx.tables`."""

    def forward(ctx, x):
        xp = array_module(x)
        ctx.in_shape = x.shape
        ctx.tables = [(xp.asarray(i), None if w is None else xp.asarray(w)) for i, w in ctx.tables]
        y = x
        for axis, (idx, w) in enumerate(ctx.tables, start=2):
            if w is None:
                y = xp.take(y, idx[0], axis=axis)
            elif xp is np and len(idx) >= _DENSE_TAPS and np.isfinite(y).all():
                y = np.moveaxis(np.moveaxis(y, axis, -1) @ _dense(idx, w, y.shape[axis], w.dtype).T, -1, axis)
            else:
                shape = (-1,) + (1,) * (x.ndim - axis - 1)
                acc = xp.take(y, idx[0], axis=axis) * w[0].reshape(shape)
                for k in range(1, len(idx)):
                    acc += xp.take(y, idx[k], axis=axis) * w[k].reshape(shape)
                y = acc
        return y.astype(x.dtype, copy=False)  # float16 inputs are weighted in float32, as PyTorch's opmath

    def backward(ctx, grad):
        xp = array_module(grad)
        add_at = scatter_add_into(xp)
        g = grad
        # on the CPU, the axis's resampling as a small (in, out) matrix: its adjoint is one matrix product,
        # where scattering every element into place (ufunc.at) cost five times PyTorch's backward. Not for a
        # gradient holding NaN or Inf: the product's 0 * inf would spread it along the whole axis
        dense = xp is np and bool(np.isfinite(grad).all())
        for axis in range(len(ctx.tables) + 1, 1, -1):  # undo the last axis resampled first
            idx, w = ctx.tables[axis - 2]
            if dense:
                weights = _dense(idx, w, ctx.in_shape[axis], grad.dtype)
                g = np.moveaxis(np.moveaxis(g, axis, -1) @ weights, -1, axis)
                continue
            moved = xp.moveaxis(g, axis, 0)
            out = xp.zeros((ctx.in_shape[axis], *moved.shape[1:]), grad.dtype)
            shape = (-1,) + (1,) * (moved.ndim - 1)
            for k in range(len(idx)):
                add_at(out, idx[k], moved if w is None else moved * w[k].reshape(shape))
            g = xp.moveaxis(out, 0, axis)
        return g


def _dense(idx, w, in_size: int, dtype):
    """The (out, in) matrix of an axis's taps (repeated indices add up)."""
    n_out = idx.shape[1]
    m = np.zeros((n_out, in_size), dtype)
    rows = np.broadcast_to(np.arange(n_out), idx.shape)
    np.add.at(m, (rows, idx), 1 if w is None else w.astype(dtype, copy=False))
    return m


def _per_axis(name: str, value, spatial: tuple, input_shape: tuple) -> tuple:
    values = tuple(value) if isinstance(value, tuple | list) else (value,) * len(spatial)
    if len(values) != len(spatial):
        raise ShapeError(f"interpolate: Input and output must have the same number of spatial dimensions, but "
                         f"got input with spatial dimensions of {list(spatial)} and output {name} of "
                         f"{list(values)} (input shape {input_shape})")
    return values


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize the spatial dims of an (N, C, ...) input to `size` or by `scale_factor`, as F.interpolate.

    Modes: 'nearest' and 'nearest-exact' (3-D to 5-D input), 'linear' (3-D), 'bilinear' and 'bicubic'
    (4-D, both with `antialias`), 'trilinear' (5-D), 'area' (adaptive average pooling, as in PyTorch).
    """
    shape = tuple(input.shape)
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported; use one of "
                                  + ", ".join(map(repr, _MODES)))
    if input.ndim not in (3, 4, 5):
        raise ShapeError(f"interpolate: input must be 3-D, 4-D or 5-D (N, C, ...), got shape {shape}")
    if mode in _RANK and input.ndim != _RANK[mode]:
        raise ShapeError(f"interpolate: Got {input.ndim}D input, but {mode} mode needs {_RANK[mode]}D input "
                         f"(input shape {shape})")
    if align_corners is not None and mode not in _RANK:
        raise ValueError("interpolate: align_corners option can only be set with the interpolating modes: "
                         f"linear | bilinear | bicubic | trilinear (got mode {mode!r})")
    if antialias and (mode not in ("bilinear", "bicubic") or input.ndim != 4):
        raise ValueError("interpolate: Anti-alias option is restricted to bilinear and bicubic modes and requires "
                         f"a 4-D tensor as input (got mode {mode!r} and input shape {shape})")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: " + ("only one of size or scale_factor should be defined" if size is not None
                                            else "either size or scale_factor should be defined"))
    spatial = shape[2:]
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an explicit size.")
        try:
            sizes = tuple(operator.index(s) for s in _per_axis("size", size, spatial, shape))
        except TypeError:
            raise TypeError(f"interpolate: size must be an int or a tuple of ints, got {size!r}") from None
        scales = (None,) * len(spatial)
    else:
        scales = tuple(float(s) for s in _per_axis("scale_factor", scale_factor, spatial, shape))
        sizes = tuple(math.floor(n * s) for n, s in zip(spatial, scales))
        if recompute_scale_factor:
            scales = (None,) * len(spatial)
    if any(s <= 0 for s in sizes):
        raise ShapeError(f"interpolate: output size {sizes} is too small for input {shape}: every size must be "
                         "positive")
    if mode == "area":
        return (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[input.ndim - 3](input, sizes)
    if mode in _NEAREST:
        tables = [_nearest_table(n, m, s, mode == "nearest-exact") for n, m, s in zip(spatial, sizes, scales)]
        return Interpolate.apply(input, tables=tables)
    if not input.dtype.is_floating_point:
        raise TypeError(f"interpolate: {mode} mode needs a floating point input, got {input.dtype.name}")
    dtype = np.float32 if input.array.dtype.itemsize < 4 else input.array.dtype
    cubic, corners = mode == "bicubic", bool(align_corners)
    if antialias:
        tables = [_antialias_table(n, m, s, corners, dtype, cubic) for n, m, s in zip(spatial, sizes, scales)]
    else:
        table = _cubic_table if cubic else _linear_table
        tables = [table(n, m, s, corners, dtype) for n, m, s in zip(spatial, sizes, scales)]
    return Interpolate.apply(input, tables=tables)
