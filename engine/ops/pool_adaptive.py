"""Adaptive average and max pooling (1-D, 2-D, 3-D): pooling to a fixed output size, whatever the input's.

Output cell i of an axis of n cells pools the input cells [floor(i*n/out), ceil((i+1)*n/out)), as
PyTorch places them. Averaging over such windows is separable, so adaptive average pooling is one small
averaging matrix per axis and one einsum; the gradient is the transposed einsum. Adaptive max pooling
gathers every window's cells side by side and takes their maximum.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Function
from engine.backend import array_module
from engine.ops.conv import ints
from engine.ops.pool_max import MaxPool2d
from engine.ops.pool_windows import check_input
from engine.tensor import Tensor

_EINSUM = {1: ("...w,jw->...j", "...j,jw->...w"), 2: ("...hw,ih,jw->...ij", "...ij,ih,jw->...hw"),
           3: ("...dhw,kd,ih,jw->...kij", "...kij,kd,ih,jw->...dhw")}


def _averaging_matrix(xp, size: int, out: int, dtype):
    """(out, size) matrix whose row i averages input cells floor(i*size/out) .. ceil((i+1)*size/out)-1."""
    i = xp.arange(out).reshape(-1, 1)
    start, end = (i * size) // out, -((-(i + 1) * size) // out)
    cells = xp.arange(size).reshape(1, -1)
    return (((cells >= start) & (cells < end)) / (end - start)).astype(dtype)


def _output_size(ctx, x) -> tuple[int, ...]:
    """The requested output size, an entry None keeping the input's size along that axis."""
    return tuple(n if o is None else o for n, o in zip(x.shape[-ctx.spatial:], ctx.output_size))


class AdaptiveAvgPool2d(Function):
    """Average pooling of (N, C, H, W) to a fixed output size, with windows as PyTorch places them."""

    op = "adaptive_avg_pool2d"
    spatial = 2

    def forward(ctx, x):
        check_input(ctx.op, x, ctx.spatial)
        xp = array_module(x)
        mats = [_averaging_matrix(xp, n, o, x.dtype) for n, o in zip(x.shape[-ctx.spatial:], _output_size(ctx, x))]
        if ctx.needs_input_grad:
            ctx.save(*mats)
        return xp.einsum(_EINSUM[ctx.spatial][0], x, *mats, optimize=True)

    def backward(ctx, grad):
        return array_module(grad).einsum(_EINSUM[ctx.spatial][1], grad, *ctx.saved, optimize=True)


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """Average pooling of (N, C, L) to a fixed output length."""

    op = "adaptive_avg_pool1d"
    spatial = 1


class AdaptiveAvgPool3d(AdaptiveAvgPool2d):
    """Average pooling of (N, C, D, H, W) to a fixed output size."""

    op = "adaptive_avg_pool3d"
    spatial = 3


class AdaptiveMaxPool2d(MaxPool2d):
    """Max over each adaptive window of (N, C, H, W); the gradient goes to the max of a window. Only
    where the windows lie differs from max_pool2d."""

    op = "adaptive_max_pool2d"
    spatial = 2

    def window_max(ctx, x):
        """The max of every adaptive window and its flat position in the input plane."""
        xp, d = array_module(x), ctx.spatial
        sizes, outs = x.shape[-d:], _output_size(ctx, x)
        tables = [_window_cells(n, o) for n, o in zip(sizes, outs)]
        taps = tuple(t.shape[1] for t in tables)
        # every window's cells side by side: (..., *outs, *taps), short windows repeating their last cell
        key = tuple(xp.asarray(t).reshape(_spread(a, d, t.shape)) for a, t in enumerate(tables))
        cells = x[(..., *key)].reshape(*x.shape[:-d], *outs, math.prod(taps))
        # as in PyTorch's kernel: the first of equal maxima, but the last NaN
        nan = xp.isnan(cells)
        arg = xp.where(nan.any(axis=-1), cells.shape[-1] - 1 - nan[..., ::-1].argmax(axis=-1), cells.argmax(axis=-1))
        flat = 0
        for a, (t, k) in enumerate(zip(tables, xp.unravel_index(arg, taps))):
            pos = xp.asarray(t)[xp.arange(outs[a]).reshape(_spread(a, d, (-1,))[:d]), k]
            flat = flat * sizes[a] + pos
        return xp.take_along_axis(cells, arg[..., None], axis=-1)[..., 0], flat


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    """Max over each adaptive window of (N, C, L)."""

    op = "adaptive_max_pool1d"
    spatial = 1


class AdaptiveMaxPool3d(AdaptiveMaxPool2d):
    """Max over each adaptive window of (N, C, D, H, W)."""

    op = "adaptive_max_pool3d"
    spatial = 3


def _window_cells(size: int, out: int):
    """(out, taps) input cells of each adaptive window [floor(i*size/out), ceil((i+1)*size/out)), the
    short windows padded with their last cell (which leaves a max and its first position unchanged)."""
    i = np.arange(out)
    start, end = (i * size) // out, -((-(i + 1) * size) // out)
    taps = int((end - start).max())
    return np.minimum(start[:, None] + np.arange(taps), end[:, None] - 1)


def _spread(axis: int, spatial: int, shape: tuple) -> tuple:
    """Shape placing a table's (out, taps) at positions `axis` and `spatial + axis` of 2*spatial axes."""
    dims = [1] * (2 * spatial)
    dims[axis] = shape[0]
    if len(shape) > 1:
        dims[spatial + axis] = shape[1]
    return tuple(dims)


# ---- functions ----------------------------------------------------------------------------------
def _adaptive(cls, input: Tensor, output_size, **options) -> Tensor:
    sizes = (output_size,) * cls.spatial if output_size is None or not hasattr(output_size, "__len__") \
        else tuple(output_size)
    if len(sizes) != cls.spatial:
        raise TypeError(f"{cls.op}: output_size must be an int or a tuple of {cls.spatial}, "
                        f"got {output_size!r}")
    sizes = tuple(None if s is None else ints(s, 1, "output_size", cls.op, low=1)[0] for s in sizes)
    return cls.apply(input, output_size=sizes, **options)


def _adaptive_max(cls, input: Tensor, output_size, return_indices: bool):
    if not return_indices:
        return _adaptive(cls, input, output_size)
    box: list = []
    out = _adaptive(cls, input, output_size, indices=box)
    return out, Tensor._wrap(box[0].astype("int64", copy=False))


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling to an output length, as torch.nn.functional.adaptive_avg_pool1d."""
    return _adaptive(AdaptiveAvgPool1d, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to an output (H, W) (an entry None keeps that size), as in PyTorch."""
    return _adaptive(AdaptiveAvgPool2d, input, output_size)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """Average pooling to an output (D, H, W) (an entry None keeps that size), as in PyTorch."""
    return _adaptive(AdaptiveAvgPool3d, input, output_size)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to an output length, as torch.nn.functional.adaptive_max_pool1d."""
    return _adaptive_max(AdaptiveMaxPool1d, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to an output (H, W) (an entry None keeps that size), as torch's adaptive_max_pool2d."""
    return _adaptive_max(AdaptiveMaxPool2d, input, output_size, return_indices)


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to an output (D, H, W) (an entry None keeps that size), as torch's adaptive_max_pool3d."""
    return _adaptive_max(AdaptiveMaxPool3d, input, output_size, return_indices)
