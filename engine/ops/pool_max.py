"""Max pooling (1-D, 2-D, 3-D) with PyTorch's indices, and max unpooling, its partial inverse.

One N-d op serves every dimension: the maxima of a strided view of the windows, each remembered as the
flat position in its (L), (H, W) or (D, H, W) plane that PyTorch's `return_indices` gives. The gradient
goes back to those positions, so overlapping windows add up where they share a maximum.
"""

from __future__ import annotations

import functools
import math

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.conv import ints
from engine.ops.index_checks import LATER, first_bad, out_of_range, position, settled_checks
from engine.ops.pool_windows import check_input, geometry, options, pad, scatter_back, taps
from engine.tensor import Tensor


class MaxPool2d(Function):
    """Max over each kernel window of (N, C, H, W); the gradient goes to the max of a window."""

    op = "max_pool2d"
    spatial = 2
    indices = None  # a list to receive the flat indices, when the caller wants them

    def forward(ctx, x):
        check_input(ctx.op, x, ctx.spatial)
        out, flat = ctx.window_max(x)
        if ctx.indices is not None:
            ctx.indices.append(flat)
        if ctx.needs_input_grad:
            ctx.save(flat)
            ctx.x_shape = x.shape
        return out

    def backward(ctx, grad):
        (flat,) = ctx.saved
        return scatter_back(grad, flat, ctx.x_shape, ctx.spatial)

    def window_max(ctx, x):
        """The max of every window and its flat position in the input plane."""
        return _window_max(ctx, x)


class MaxPool1d(MaxPool2d):
    """Max pooling of (N, C, L)."""

    op = "max_pool1d"
    spatial = 1


class MaxPool3d(MaxPool2d):
    """Max pooling of (N, C, D, H, W)."""

    op = "max_pool3d"
    spatial = 3


def _window_max(ctx, x):
    """Max of every window and its flat position in the input plane, with PyTorch's choice among ties.

    A window is a box, so its max is found one axis at a time, each axis's taps as strided slices: no
    copy of all windows side by side. As in PyTorch's kernel, a tap wins when it is greater or NaN, so
    the first of equal maxima wins and the last NaN; a window that nothing lifts above -inf names its
    first tap outside the left padding."""
    xp, d = array_module(x), ctx.spatial
    out_size, pads = geometry(ctx, x)
    sizes = x.shape[-d:]
    best, where = pad(x, pads, -math.inf), None
    for a in reversed(range(d)):  # the flat position gains pos_a * (cells per step along axis a)
        axis, step = x.ndim - d + a, math.prod(sizes[a + 1:])
        key = taps(x.ndim, axis, out_size[a], ctx.stride[a], ctx.dilation[a])
        starts = _along(xp.arange(out_size[a]) * ctx.stride[a] - pads[a][0], x.ndim - axis)
        values = found = None
        for i in range(ctx.kernel[a]):
            v, pos = best[key(i)], (starts + i * ctx.dilation[a]) * step
            if where is not None:
                pos = where[key(i)] + pos
            if values is None:
                values, found = v, xp.broadcast_to(pos, v.shape)
            else:
                wins = (v > values) | xp.isnan(v)
                values, found = xp.where(wins, v, values), xp.where(wins, pos, found)
        best, where = values, found
    if math.prod(ctx.kernel) == 1:
        best = best.copy()  # a 1-cell kernel leaves a view of the input, which the output must not be
    first = 0
    for a in range(d):
        starts = xp.arange(out_size[a]) * ctx.stride[a] - pads[a][0]
        tap = xp.maximum(0, -(starts // ctx.dilation[a]))
        first = first * sizes[a] + _along(starts + tap * ctx.dilation[a], d - a)
    return best, xp.where(best == -math.inf, first, where)


def _along(v, trailing: int):
    """A 1-D array shaped to broadcast along the axis that has `trailing` axes after it, itself included."""
    return v.reshape(-1, *(1,) * (trailing - 1))


class MaxUnpool2d(Function):
    """Each value of (N, C, H, W) put at its flat index in a zero (N, C, *output_size): max_pool2d undone."""

    op = "max_unpool2d"
    spatial = 2
    check = None  # on CUDA, the posted index check (engine.kernels.DeviceChecks)

    def forward(ctx, x, indices):
        xp = array_module(x)
        plane = math.prod(ctx.output_size)
        planes = math.prod(x.shape[:-ctx.spatial])
        idx = indices.reshape(planes, -1)
        checks = settled_checks(xp)
        if checks is None:
            bad = out_of_range(idx, plane)
            if bad.any():
                raise IndexError(_bad_unpool_index(ctx.op, ctx.output_size, int(idx[bad][0])))
        elif idx.size:  # on the device, read back later: bad indices write to a spare column meanwhile
            bad = out_of_range(idx, plane)
            ctx.check = checks.post(first_bad(xp, bad.reshape(-1), idx.reshape(-1)),
                                    functools.partial(_bad_unpool_check, ctx.op, ctx.output_size, indices.shape))
            idx = xp.where(bad, plane, idx)
        out = xp.zeros((planes, plane + 1), x.dtype)
        out[xp.arange(planes).reshape(-1, 1), idx] = x.reshape(planes, -1)
        ctx.save(idx)
        ctx.x_shape = x.shape
        return out[:, :plane].reshape(*x.shape[:-ctx.spatial], *ctx.output_size)

    def backward(ctx, grad):
        if ctx.check is not None:
            ctx.check.due = True
        (idx,) = ctx.saved
        xp = array_module(grad)
        planes = idx.shape[0]
        g = xp.concatenate([grad.reshape(planes, -1), xp.zeros((planes, 1), grad.dtype)], axis=1)
        return xp.take_along_axis(g, idx, axis=1).reshape(ctx.x_shape), None


class MaxUnpool1d(MaxUnpool2d):
    """max_unpool2d of (N, C, L): values put at their index along L."""

    op = "max_unpool1d"
    spatial = 1


class MaxUnpool3d(MaxUnpool2d):
    """max_unpool2d of (N, C, D, H, W): values put at their flat index in each (D, H, W) volume."""

    op = "max_unpool3d"
    spatial = 3


def _bad_unpool_index(op: str, output_size: tuple, index: int) -> str:
    return (f"{op}: Found an invalid max index: {index} (output volumes are of size "
            f"{'x'.join(map(str, output_size))}; valid indices are 0 to {math.prod(output_size) - 1})")


def _bad_unpool_check(op: str, output_size: tuple, shape: tuple, values) -> IndexError | None:
    key, index = values
    if not key:
        return None
    return IndexError(f"{_bad_unpool_index(op, output_size, index)}; found at {position('indices', shape, key)} "
                      f"{LATER}")


# ---- functions ----------------------------------------------------------------------------------
def _max_pool(cls, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    opts = options(cls.op, cls.spatial, kernel_size, stride, padding, dilation)
    if not return_indices:
        return cls.apply(input, ceil_mode=ceil_mode, **opts)
    box: list = []
    out = cls.apply(input, ceil_mode=ceil_mode, indices=box, **opts)
    return out, Tensor._wrap(box[0].astype("int64", copy=False))


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """1-D max pooling of (N, C, L) or (C, L), as torch.nn.functional.max_pool1d."""
    return _max_pool(MaxPool1d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """2-D max pooling of (N, C, H, W) or (C, H, W), as torch.nn.functional.max_pool2d."""
    return _max_pool(MaxPool2d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """3-D max pooling of (N, C, D, H, W) or (C, D, H, W), as torch.nn.functional.max_pool3d."""
    return _max_pool(MaxPool3d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _unpool(cls, input: Tensor, indices: Tensor, kernel_size, stride, padding, output_size) -> Tensor:
    op, d = cls.op, cls.spatial
    kernel = ints(kernel_size, d, "kernel_size", op)
    stride = kernel if stride is None else ints(stride, d, "stride", op)
    padding = ints(padding, d, "padding", op, low=0)
    if not isinstance(indices, Tensor) or indices.dtype.is_floating_point or indices.dtype.name == "bool":
        what = indices.dtype.name if isinstance(indices, Tensor) else type(indices).__name__
        raise TypeError(f"{op}: indices must be an int64 tensor (as max_pool returns them), got {what}")
    if input.ndim not in (d + 1, d + 2):
        raise ShapeError(f"{op}: expected a {d + 1}-D (unbatched) or {d + 2}-D (batched) input, "
                         f"got input of shape {tuple(input.shape)}")
    if tuple(indices.shape) != tuple(input.shape):
        raise ShapeError(f"{op}: Expected shape of indices to be same as that of the input tensor "
                         f"({tuple(input.shape)}) but got indices tensor with shape: {tuple(indices.shape)}")
    spatial = tuple(input.shape[-d:])
    default = tuple((n - 1) * s + k - 2 * p for n, s, k, p in zip(spatial, stride, kernel, padding))
    if output_size is None:
        sizes = default
    else:
        sizes = tuple(output_size)
        if len(sizes) == d + 2:
            sizes = sizes[2:]
        if len(sizes) != d:
            raise ValueError(f"{op}: output_size should be a sequence containing {d} or {d + 2} elements, but "
                             f"it has a length of '{len(sizes)}'")
        for axis, (n, lo, step) in enumerate(zip(sizes, default, stride)):
            if not lo - step < n < lo + step:
                raise ValueError(f'{op}: invalid output_size "{tuple(output_size)}" (dim {axis} must be between '
                                 f"{lo - step} and {lo + step})")
    if min(sizes) < 1:
        raise ShapeError(f"{op}: output size {sizes} of input {tuple(input.shape)} must be positive")
    return cls.apply(input, indices, output_size=sizes)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Partial inverse of max_pool1d: values at their indices, zeros elsewhere, as torch's max_unpool1d."""
    return _unpool(MaxUnpool1d, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Partial inverse of max_pool2d: values at their indices, zeros elsewhere, as torch's max_unpool2d."""
    return _unpool(MaxUnpool2d, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Partial inverse of max_pool3d: values at their indices, zeros elsewhere, as torch's max_unpool3d."""
    return _unpool(MaxUnpool3d, input, indices, kernel_size, stride, padding, output_size)
