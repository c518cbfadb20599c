"""Pooling with PyTorch's semantics: max and average pooling (1-D and 2-D) and adaptive average pooling.

Max and average pooling reduce the same strided window view conv2d uses, and their gradients go back
through the same col2im. 1-D pooling is 2-D pooling over images of height 1.
"""

from __future__ import annotations

from types import SimpleNamespace

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.conv import as_4d, col2im, crop, from_4d, ints, last, lift, pad_spatial, sliding_windows
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
_ADAPTIVE = {1: ("...w,jw->...j", "...j,jw->...w"), 2: ("...hw,ih,jw->...ij", "...ij,ih,jw->...hw")}


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


def _adaptive(cls, input: Tensor, output_size) -> Tensor:
    sizes = (output_size,) * cls.spatial if output_size is None or not hasattr(output_size, "__len__") \
        else tuple(output_size)
    if len(sizes) != cls.spatial:
        raise TypeError(f"{cls.op}: output_size must be an int or a tuple of {cls.spatial}, "
                        f"got {output_size!r}")
    sizes = tuple(None if s is None else ints(s, 1, "output_size", cls.op, low=1)[0] for s in sizes)
    return cls.apply(input, output_size=sizes)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to an output (H, W) (an entry None keeps that size), as in PyTorch."""
    return _adaptive(AdaptiveAvgPool2d, input, output_size)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling to an output length, as torch.nn.functional.adaptive_avg_pool1d."""
    return _adaptive(AdaptiveAvgPool1d, input, output_size)
