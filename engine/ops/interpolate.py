"""interpolate: resizing (N, C, ...) inputs by nearest neighbour or (bi/tri)linear interpolation.

Both modes are separable: each spatial axis is resampled on its own, output position j reading input
positions i0[j] and i1[j] with weights w0[j] and w1[j] (nearest: one position, weight 1). The index
tables are computed on the host with PyTorch's formulas, in its precision (float32 scales for nearest,
the tensor's dtype for linear), so that outputs match it at exact boundaries; backward adds each
output's gradient back into the positions it read.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.index import scatter_add_into
from engine.ops.pool import adaptive_avg_pool1d, adaptive_avg_pool2d
from engine.tensor import Tensor

__all__ = ["interpolate"]

_LINEAR = {"linear": 3, "bilinear": 4, "trilinear": 5}  # mode -> the input rank it needs
_NEAREST = ("nearest", "nearest-exact")


def _nearest_table(in_size: int, out_size: int, scale, exact: bool):
    """Source index of each output position, as PyTorch's nearest_idx (float32 arithmetic)."""
    if not exact and out_size == in_size:
        return np.arange(out_size), None, None, None
    s = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
    j = np.arange(out_size, dtype=np.float32)
    src = np.floor((j + np.float32(0.5)) * s if exact else j * s)
    return np.minimum(src.astype(np.int64), in_size - 1), None, None, None


def _linear_table(in_size: int, out_size: int, scale, align_corners: bool, dtype):
    """(i0, w0, i1, w1) of each output position, as PyTorch's linear upsampling kernels."""
    f = np.dtype(dtype).type
    if align_corners:
        s = f(in_size - 1) / f(out_size - 1) if out_size > 1 else f(0)
        src = np.arange(out_size, dtype=dtype) * s
    else:
        s = f(1.0 / scale) if scale else f(in_size) / f(out_size)
        src = np.maximum((np.arange(out_size, dtype=dtype) + f(0.5)) * s - f(0.5), f(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    w1 = np.clip(src - i0, 0, 1).astype(dtype)
    i1 = i0 + (i0 < in_size - 1)
    return i0, (1 - w1).astype(dtype), i1, w1


class Interpolate(Function):
    """x resampled along each spatial axis by the (i0, w0, i1, w1) tables in `ctx.tables`."""

    def forward(ctx, x):
        xp = array_module(x)
        ctx.in_shape = x.shape
        ctx.tables = [tuple(None if a is None else xp.asarray(a) for a in t) for t in ctx.tables]
        y = x
        for axis, (i0, w0, i1, w1) in enumerate(ctx.tables, start=2):
            if w0 is None:
                y = xp.take(y, i0, axis=axis)
                continue
            shape = (-1,) + (1,) * (x.ndim - axis - 1)
            y = xp.take(y, i0, axis=axis) * w0.reshape(shape) + xp.take(y, i1, axis=axis) * w1.reshape(shape)
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
            i0, w0, i1, w1 = ctx.tables[axis - 2]
            if dense:
                n_out = g.shape[axis]
                cols = np.arange(n_out)
                weights = np.zeros((ctx.in_shape[axis], n_out), grad.dtype)
                if w0 is None:
                    add_at(weights, (i0, cols), 1)
                else:
                    add_at(weights, (i0, cols), w0.astype(grad.dtype, copy=False))
                    add_at(weights, (i1, cols), w1.astype(grad.dtype, copy=False))
                g = np.moveaxis(np.moveaxis(g, axis, -1) @ weights.T, -1, axis)
                continue
            moved = xp.moveaxis(g, axis, 0)
            out = xp.zeros((ctx.in_shape[axis], *moved.shape[1:]), grad.dtype)
            if w0 is None:
                add_at(out, i0, moved)
            else:
                shape = (-1,) + (1,) * (moved.ndim - 1)
                add_at(out, i0, moved * w0.reshape(shape))
                add_at(out, i1, moved * w1.reshape(shape))
            g = xp.moveaxis(out, 0, axis)
        return g


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

    Modes: 'nearest' and 'nearest-exact' (3-D to 5-D input), 'linear' (3-D), 'bilinear' (4-D),
    'trilinear' (5-D), 'area' (3-D and 4-D: adaptive average pooling, as in PyTorch).
    """
    shape = tuple(input.shape)
    if mode not in (*_NEAREST, *_LINEAR, "area"):
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported by the engine; use one of "
                                  "'nearest', 'nearest-exact', 'linear', 'bilinear', 'trilinear', 'area'")
    if input.ndim not in (3, 4, 5):
        raise ShapeError(f"interpolate: input must be 3-D, 4-D or 5-D (N, C, ...), got shape {shape}")
    if mode in _LINEAR and input.ndim != _LINEAR[mode]:
        raise ShapeError(f"interpolate: Got {input.ndim}D input, but {mode} mode needs {_LINEAR[mode]}D input "
                         f"(input shape {shape})")
    if align_corners is not None and mode not in _LINEAR:
        raise ValueError("interpolate: align_corners option can only be set with the interpolating modes: "
                         f"linear | bilinear | trilinear (got mode {mode!r})")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported by the engine")
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
        if input.ndim == 5:
            raise NotImplementedError("interpolate: mode 'area' of 5-D input is not supported by the engine")
        return (adaptive_avg_pool1d if input.ndim == 3 else adaptive_avg_pool2d)(input, sizes)
    if mode in _NEAREST:
        tables = [_nearest_table(n, m, s, mode == "nearest-exact") for n, m, s in zip(spatial, sizes, scales)]
    else:
        if not input.dtype.is_floating_point:
            raise TypeError(f"interpolate: {mode} mode needs a floating point input, got {input.dtype.name}")
        dtype = np.float32 if input.array.dtype.itemsize < 4 else input.array.dtype
        tables = [_linear_table(n, m, s, bool(align_corners), dtype) for n, m, s in zip(spatial, sizes, scales)]
    return Interpolate.apply(input, tables=tables)
