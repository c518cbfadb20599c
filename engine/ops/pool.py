"""Pooling with PyTorch's semantics: max and average pooling (1-D and 2-D), adaptive average and max
pooling, max unpooling and power-average (Lp) pooling.

Max and average pooling reduce the same strided window view conv2d uses, and their gradients go back
through the same col2im. 1-D pooling is 2-D pooling over images of height 1.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.conv import as_4d, col2im, crop, from_4d, ints, last, lift, pad_spatial, sliding_windows
from engine.ops.index import scatter_add_into
from engine.ops.index_checks import LATER, first_bad, out_of_range, position, settled_checks
from engine.tensor import Tensor


def _check_input(op: str, x, spatial: int) -> None:
    if x.ndim not in (spatial + 1, spatial + 2):
        raise ShapeError(f"{op}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) input, "
                         f"got input of shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype}")
    if 0 in x.shape[-spatial:]:
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} has an empty spatial dimension")


def _geometry(ctx, x4, x):
    """Output size and padding ((top, bottom), (left, right)), bottom/right grown so ceil_mode's last
    window fits, following PyTorch's pooling_output_shape."""
    out, pads = [], []
    for size, k, s, p, d in zip(x4.shape[2:], ctx.kernel, ctx.stride, ctx.padding, ctx.dilation):
        span = d * (k - 1) + 1
        o = (size + 2 * p - span + (s - 1 if ctx.ceil_mode else 0)) // s + 1
        if ctx.ceil_mode and (o - 1) * s >= size + p:
            o -= 1  # the last window has to start inside the input or its left padding
        out.append(o)
        pads.append((p, p + max(0, (o - 1) * s + span - size - 2 * p)))
    if min(out) < 1:
        sp = ctx.spatial
        raise ShapeError(f"{ctx.op}: input of shape {tuple(x.shape)} is too small for kernel_size "
                         f"{last(ctx.kernel, sp)} with padding {last(ctx.padding, sp)} and dilation "
                         f"{last(ctx.dilation, sp)} (output size would be {last(tuple(out), sp)})")
    return tuple(out), tuple(pads)


def _window_max(ctx, x):
    """Max of every window (N, C, Ho, Wo) and the offset of the first max inside it (as in PyTorch)."""
    _check_input(ctx.op, x, ctx.spatial)
    x4 = as_4d(x, ctx.spatial)
    out_hw, pads = _geometry(ctx, x4, x)
    xpad = pad_spatial(x4, pads, -float("inf"))
    n, c = x4.shape[:2]
    flat = sliding_windows(xpad, ctx.kernel, out_hw, ctx.stride, ctx.dilation).reshape(n, c, -1, *out_hw)
    return flat.max(axis=2), flat.argmax(axis=2), xpad.shape[2:], pads


class MaxPool2d(Function):
    """Max over each kernel window of (N, C, H, W); the gradient goes to the first max of a window."""

    op = "max_pool2d"
    spatial = 2

    def forward(ctx, x):
        out, arg, padded_hw, pads = _window_max(ctx, x)
        if ctx.needs_input_grad:
            ctx.save(arg)
            ctx.x_shape, ctx.padded_hw, ctx.pads = x.shape, padded_hw, pads
        return from_4d(out, x.ndim, ctx.spatial)

    def backward(ctx, grad):
        (arg,) = ctx.saved
        g4, kw = as_4d(grad, ctx.spatial), ctx.kernel[1]
        return _col2im_input(lambda i, j: (arg == i * kw + j) * g4, ctx)  # grad to each window's max


class MaxPool1d(MaxPool2d):
    """Max pooling of (N, C, L): max_pool2d over height-1 images."""

    op = "max_pool1d"
    spatial = 1


class AvgPool2d(Function):
    """Mean over each kernel window of (N, C, H, W), with PyTorch's divisor rules."""

    op = "avg_pool2d"
    spatial = 2

    def forward(ctx, x):
        _check_input(ctx.op, x, ctx.spatial)
        x4 = as_4d(x, ctx.spatial)
        out_hw, pads = _geometry(ctx, x4, x)
        xpad = pad_spatial(x4, pads)
        total = sliding_windows(xpad, ctx.kernel, out_hw, ctx.stride, ctx.dilation).sum(axis=(2, 3))
        divisor = ctx.divisor_override or _window_counts(ctx, x4, pads, out_hw)
        if ctx.needs_input_grad:
            ctx.save(divisor)
            ctx.x_shape, ctx.padded_hw, ctx.pads = x.shape, xpad.shape[2:], pads
        return from_4d(total / divisor, x.ndim, ctx.spatial)

    def backward(ctx, grad):
        (divisor,) = ctx.saved
        g4 = as_4d(grad, ctx.spatial) / divisor
        return _col2im_input(lambda i, j: g4, ctx)  # the same share to every cell of a window


def _col2im_input(part, ctx):
    """Window values `part(i, j)` summed back onto a contiguous gradient of the input's shape."""
    dx = crop(col2im(part, ctx.kernel, ctx.padded_hw, ctx.stride, ctx.dilation), ctx.pads)
    return array_module(dx).ascontiguousarray(dx).reshape(ctx.x_shape)


def _window_counts(ctx, x4, pads, out_hw):
    """How many cells each window averages over: (1, 1, Ho, Wo).

    Padding counts when count_include_pad is set; the extra cells ceil_mode hangs off the end never do.
    """
    xp = array_module(x4)
    h, w = x4.shape[2:]
    (t, b), (l, r) = pads
    (pt, pl) = ctx.padding
    mask = xp.zeros((1, 1, h + t + b, w + l + r), dtype=x4.dtype)
    if ctx.count_include_pad:
        mask[:, :, :h + 2 * pt, :w + 2 * pl] = 1
    else:
        mask[:, :, t:t + h, l:l + w] = 1
    return sliding_windows(mask, ctx.kernel, out_hw, ctx.stride, ctx.dilation).sum(axis=(2, 3))


class AvgPool1d(AvgPool2d):
    """Average pooling of (N, C, L): avg_pool2d over height-1 images."""

    op = "avg_pool1d"
    spatial = 1


# Averaging over the cells [floor(i*H/Ho), ceil((i+1)*H/Ho)) of each axis is separable, so adaptive
# pooling is one small averaging matrix per axis and one einsum; the gradient is the transposed einsum.
_ADAPTIVE = {1: ("...w,jw->...j", "...j,jw->...w"), 2: ("...hw,ih,jw->...ij", "...ij,ih,jw->...hw"),
             3: ("...dhw,kd,ih,jw->...kij", "...kij,kd,ih,jw->...dhw")}


def _averaging_matrix(xp, size: int, out: int, dtype):
    """(out, size) matrix whose row i averages input cells floor(i*size/out) .. ceil((i+1)*size/out)-1."""
    i = xp.arange(out).reshape(-1, 1)
    start, end = (i * size) // out, -((-(i + 1) * size) // out)
    cells = xp.arange(size).reshape(1, -1)
    return (((cells >= start) & (cells < end)) / (end - start)).astype(dtype)


class AdaptiveAvgPool2d(Function):
    """Average pooling of (N, C, H, W) to a fixed output size, with windows as PyTorch places them."""

    op = "adaptive_avg_pool2d"
    spatial = 2

    def forward(ctx, x):
        _check_input(ctx.op, x, ctx.spatial)
        xp = array_module(x)
        sizes = x.shape[-ctx.spatial:]
        mats = [_averaging_matrix(xp, size, size if out is None else out, x.dtype)
                for size, out in zip(sizes, ctx.output_size)]
        if ctx.needs_input_grad:
            ctx.save(*mats)
        return xp.einsum(_ADAPTIVE[ctx.spatial][0], x, *mats, optimize=True)

    def backward(ctx, grad):
        return array_module(grad).einsum(_ADAPTIVE[ctx.spatial][1], grad, *ctx.saved, optimize=True)


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """Average pooling of (N, C, L) to a fixed output length."""

    op = "adaptive_avg_pool1d"
    spatial = 1


class AdaptiveAvgPool3d(AdaptiveAvgPool2d):
    """Average pooling of (N, C, D, H, W) to a fixed output size."""

    op = "adaptive_avg_pool3d"
    spatial = 3


class AdaptiveMaxPool2d(Function):
    """Max over each adaptive window of (N, C, H, W) (windows as adaptive_avg_pool2d places them); the
    gradient goes to the first max of a window. `ctx.indices` receives PyTorch's flat indices."""

    op = "adaptive_max_pool2d"
    spatial = 2

    def forward(ctx, x):
        _check_input(ctx.op, x, ctx.spatial)
        xp = array_module(x)
        d, sizes = ctx.spatial, x.shape[-ctx.spatial:]
        outs = tuple(n if o is None else o for n, o in zip(sizes, ctx.output_size))
        tables = [_window_cells(n, o) for n, o in zip(sizes, outs)]
        # every window's cells side by side: (..., *outs, *taps), short windows repeating their last cell
        key = tuple(xp.asarray(t).reshape(_spread(a, d, t.shape)) for a, t in enumerate(tables))
        cells = x[(..., *key)].reshape(*x.shape[:-d], *outs, -1)
        arg = cells.argmax(axis=-1)
        out = xp.take_along_axis(cells, arg[..., None], axis=-1)[..., 0]
        taps = xp.unravel_index(arg, tuple(t.shape[1] for t in tables))
        flat = 0
        for a, (t, k) in enumerate(zip(tables, taps)):
            pos = xp.asarray(t)[xp.arange(outs[a]).reshape(_spread(a, d, (-1,))[:d]), k]
            flat = flat * sizes[a] + pos
        ctx.indices.append(flat)
        ctx.x_shape = x.shape
        return out

    def backward(ctx, grad):
        return _scatter_back(grad, ctx.indices[0], ctx.x_shape, ctx.spatial)


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    """Max over each adaptive window of (N, C, L)."""

    op = "adaptive_max_pool1d"
    spatial = 1


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


def _scatter_back(grad, flat, x_shape: tuple, spatial: int):
    """Each output's gradient added at the flat (within-plane) input position it came from."""
    xp = array_module(grad)
    planes = math.prod(x_shape[:-spatial])
    g = xp.zeros((planes, math.prod(x_shape[-spatial:])), grad.dtype)
    rows = xp.arange(planes).reshape(-1, 1)
    scatter_add_into(xp)(g, (rows, flat.reshape(planes, -1)), grad.reshape(planes, -1))
    return g.reshape(x_shape)


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
def _options(op: str, spatial: int, kernel_size, stride, padding, dilation) -> dict:
    """Normalize user parameters to the 2-D ones the kernels take."""
    kernel = ints(kernel_size, spatial, "kernel_size", op)
    stride = kernel if stride is None or (hasattr(stride, "__len__") and not len(stride)) else \
        ints(stride, spatial, "stride", op)
    padding_arg, padding = padding, ints(padding, spatial, "padding", op, low=0)
    dilation = ints(dilation, spatial, "dilation", op)
    if any(p > k // 2 for k, p in zip(kernel, padding)):  # PyTorch's rule; no window lies wholly in padding
        raise ValueError(f"{op}: padding should be at most half of kernel_size, got padding={padding_arg!r} "
                         f"and kernel_size={kernel_size!r}")
    return {"kernel": lift(kernel, 1), "stride": lift(stride, 1), "padding": lift(padding, 0),
            "dilation": lift(dilation, 1)}


def _max_pool(cls, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    opts = _options(cls.op, cls.spatial, kernel_size, stride, padding, dilation)
    out = cls.apply(input, ceil_mode=ceil_mode, **opts)
    if not return_indices:
        return out
    return out, _max_indices(cls, input, ceil_mode, opts)


def _max_indices(cls, input: Tensor, ceil_mode: bool, opts: dict) -> Tensor:
    """PyTorch's indices of the maxima: flat positions in each (H, W) plane, no graph.

    Computed in a second pass so the op itself keeps one output."""
    ctx = SimpleNamespace(op=cls.op, spatial=cls.spatial, ceil_mode=ceil_mode, **opts)
    x = input.array
    _, arg, _, ((top, _), (left, _)) = _window_max(ctx, x)
    xp = array_module(x)
    kw, (sh, sw), (dh, dw) = ctx.kernel[1], ctx.stride, ctx.dilation
    ho, wo = arg.shape[2:]
    rows = xp.arange(ho).reshape(-1, 1) * sh - top + (arg // kw) * dh
    cols = xp.arange(wo) * sw - left + (arg % kw) * dw
    idx = rows * as_4d(x, cls.spatial).shape[3] + cols
    return Tensor._wrap(from_4d(idx.astype("int64"), x.ndim, cls.spatial))


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """2-D max pooling of (N, C, H, W) or (C, H, W), as torch.nn.functional.max_pool2d."""
    return _max_pool(MaxPool2d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """1-D max pooling of (N, C, L) or (C, L), as torch.nn.functional.max_pool1d."""
    return _max_pool(MaxPool1d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-D average pooling of (N, C, H, W) or (C, H, W), as torch.nn.functional.avg_pool2d."""
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"avg_pool2d: divisor_override must be positive, got {divisor_override!r}")
    opts = _options(AvgPool2d.op, 2, kernel_size, stride, padding, 1)
    return AvgPool2d.apply(input, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                           divisor_override=divisor_override, **opts)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling of (N, C, L) or (C, L), as torch.nn.functional.avg_pool1d."""
    opts = _options(AvgPool1d.op, 1, kernel_size, stride, padding, 1)
    return AvgPool1d.apply(input, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                           divisor_override=None, **opts)


def _adaptive(cls, input: Tensor, output_size, **options) -> Tensor:
    sizes = (output_size,) * cls.spatial if output_size is None or not hasattr(output_size, "__len__") \
        else tuple(output_size)
    if len(sizes) != cls.spatial:
        raise TypeError(f"{cls.op}: output_size must be an int or a tuple of {cls.spatial}, "
                        f"got {output_size!r}")
    sizes = tuple(None if s is None else ints(s, 1, "output_size", cls.op, low=1)[0] for s in sizes)
    return cls.apply(input, output_size=sizes, **options)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to an output (H, W) (an entry None keeps that size), as in PyTorch."""
    return _adaptive(AdaptiveAvgPool2d, input, output_size)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling to an output length, as torch.nn.functional.adaptive_avg_pool1d."""
    return _adaptive(AdaptiveAvgPool1d, input, output_size)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """Average pooling to an output (D, H, W) (an entry None keeps that size), as in PyTorch."""
    return _adaptive(AdaptiveAvgPool3d, input, output_size)


def _adaptive_max(cls, input: Tensor, output_size, return_indices: bool):
    box: list = []
    out = _adaptive(cls, input, output_size, indices=box)
    if not return_indices:
        return out
    return out, Tensor._wrap(box[0].astype("int64", copy=False))


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to an output (H, W) (an entry None keeps that size), as torch's adaptive_max_pool2d."""
    return _adaptive_max(AdaptiveMaxPool2d, input, output_size, return_indices)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to an output length, as torch.nn.functional.adaptive_max_pool1d."""
    return _adaptive_max(AdaptiveMaxPool1d, input, output_size, return_indices)


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


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Partial inverse of max_pool2d: values at their indices, zeros elsewhere, as torch's max_unpool2d."""
    return _unpool(MaxUnpool2d, input, indices, kernel_size, stride, padding, output_size)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Partial inverse of max_pool1d: values at their indices, zeros elsewhere, as torch's max_unpool1d."""
    return _unpool(MaxUnpool1d, input, indices, kernel_size, stride, padding, output_size)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """Power-average pooling (sum of x**p over each window)**(1/p), as torch.nn.functional.lp_pool2d."""
    kh, kw = ints(kernel_size, 2, "kernel_size", "lp_pool2d")
    out = avg_pool2d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(kh * kw).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """Power-average pooling over (N, C, L) windows, as torch.nn.functional.lp_pool1d."""
    (k,) = ints(kernel_size, 1, "kernel_size", "lp_pool1d")
    out = avg_pool1d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(k).pow(1.0 / norm_type)


# ---- 3-D pooling: separable, so each (H, W) slice is pooled by the 2-D op, then each column along D ----
def _pool3d(op: str, input: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool, plane, depth):
    """`depth(plane(slices))`: a box's max (or sum) is the max (or sum) along D of each slice's."""
    if not isinstance(input, Tensor) or input.ndim not in (4, 5):
        shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ShapeError(f"{op}: expected a 4-D (unbatched) or 5-D (batched) input, got input of shape {shape}")
    kernel = ints(kernel_size, 3, "kernel_size", op)
    stride = kernel if stride is None else ints(stride, 3, "stride", op)
    padding, dilation = ints(padding, 3, "padding", op, low=0), ints(dilation, 3, "dilation", op)
    if any(p > k // 2 for k, p in zip(kernel, padding)):
        raise ValueError(f"{op}: padding should be at most half of kernel_size, got padding={padding} and "
                         f"kernel_size={kernel}")
    x = input if input.ndim == 5 else input.unsqueeze(0)
    n, c, d, h, w = x.shape
    for size, k, s, p, dil in zip((d, h, w), kernel, stride, padding, dilation):
        if (size + 2 * p - dil * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1 < 1:
            raise ShapeError(f"{op}: input of shape {tuple(input.shape)} is too small for kernel_size {kernel} "
                             f"with padding {padding} and dilation {dilation}")
    opts = {"stride": stride, "padding": padding, "dilation": dilation}
    y = plane(x.reshape(n, c * d, h, w), kernel[1:], **{k: v[1:] for k, v in opts.items()})
    ho, wo = y.shape[-2:]
    y = depth(y.reshape(n, c, d, ho * wo).transpose(2, 3).reshape(n, c * ho * wo, d), kernel[:1],
              **{k: v[:1] for k, v in opts.items()})
    y = y.reshape(n, c, ho, wo, y.shape[-1]).permute(0, 1, 4, 2, 3)
    return y if input.ndim == 5 else y.squeeze(0)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """3-D max pooling of (N, C, D, H, W) or (C, D, H, W), as torch.nn.functional.max_pool3d."""
    if return_indices:
        raise NotImplementedError("max_pool3d: return_indices=True is not supported by the engine; "
                                  "max_pool2d and max_pool1d return indices")

    def plane(x, k, stride, padding, dilation):
        return max_pool2d(x, k, stride, padding, dilation, ceil_mode)

    def depth(x, k, stride, padding, dilation):
        return max_pool1d(x, k, stride, padding, dilation, ceil_mode)

    return _pool3d("max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, plane, depth)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """3-D average pooling of (N, C, D, H, W) or (C, D, H, W), as torch.nn.functional.avg_pool3d."""
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"avg_pool3d: divisor_override must be positive, got {divisor_override!r}")
    # the divisor is a product over axes (a window's cells form a box), so means of means are right;
    # an overriding divisor divides the plain sums
    sums = divisor_override is not None

    def plane(x, k, stride, padding, dilation):
        return avg_pool2d(x, k, stride, padding, ceil_mode, count_include_pad, 1 if sums else None)

    def depth(x, k, stride, padding, dilation):
        opts = _options(AvgPool1d.op, 1, k, stride, padding, 1)
        return AvgPool1d.apply(x, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                               divisor_override=divisor_override, **opts)

    return _pool3d("avg_pool3d", input, kernel_size, stride, padding, 1, ceil_mode, plane, depth)
