"""Pooling with PyTorch's semantics, for 1-D, 2-D and 3-D inputs alike: average and power-average (Lp)
pooling here; max pooling and unpooling in pool_max, adaptive pooling in pool_adaptive, the window
geometry they share in pool_windows. Every pooling function is importable from here.

Average pooling sums each window one axis at a time (pool_windows.box_sum), and its gradient spreads
each window's share back the same way.
"""

from __future__ import annotations

import math

from engine.autograd.function import Function
from engine.backend import array_module
from engine.ops.conv import ints
from engine.ops.pool_adaptive import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
)
from engine.ops.pool_max import max_pool1d, max_pool2d, max_pool3d, max_unpool1d, max_unpool2d, max_unpool3d
from engine.ops.pool_windows import box_sum, box_sum_grad, check_input, geometry, inside, options, pad
from engine.tensor import Tensor

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "adaptive_max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "lp_pool1d",
    "lp_pool2d", "lp_pool3d", "max_pool1d", "max_pool2d", "max_pool3d", "max_unpool1d", "max_unpool2d",
    "max_unpool3d",
]


class AvgPool2d(Function):
    """Mean over each kernel window of (N, C, H, W), with PyTorch's divisor rules."""

    op = "avg_pool2d"
    spatial = 2

    def forward(ctx, x):
        check_input(ctx.op, x, ctx.spatial)
        out_size, pads = geometry(ctx, x)
        xpad = pad(x, pads)
        total = box_sum(xpad, ctx.kernel, out_size, ctx.stride, ctx.dilation)
        divisor = ctx.divisor_override or _window_counts(ctx, x, out_size)
        if ctx.needs_input_grad:
            ctx.save(divisor)
            ctx.x_shape, ctx.padded, ctx.pads = x.shape, xpad.shape[-ctx.spatial:], pads
        return total / divisor

    def backward(ctx, grad):
        (divisor,) = ctx.saved
        dx = box_sum_grad(grad / divisor, ctx.kernel, ctx.padded, ctx.stride, ctx.dilation)  # a share each
        return array_module(dx).ascontiguousarray(dx[inside(ctx.x_shape[-ctx.spatial:], ctx.pads)])


class AvgPool1d(AvgPool2d):
    """Average pooling of (N, C, L)."""

    op = "avg_pool1d"
    spatial = 1


class AvgPool3d(AvgPool2d):
    """Average pooling of (N, C, D, H, W)."""

    op = "avg_pool3d"
    spatial = 3


def _window_counts(ctx, x, out_size):
    """How many cells each window averages over, (*out_size): a product over axes, as windows are boxes.

    Padding counts when count_include_pad is set; the extra cells ceil_mode hangs off the end never do.
    """
    xp, d = array_module(x), ctx.spatial
    counts = 1
    for a, (size, o, k, s, p) in enumerate(zip(x.shape[-d:], out_size, ctx.kernel, ctx.stride, ctx.padding)):
        start = xp.arange(o) * s - p
        end = xp.minimum(start + k, size + p)
        if not ctx.count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, size)
        counts = counts * (end - start).reshape(-1, *(1,) * (d - 1 - a))
    return counts.astype(x.dtype)


def _avg_pool(cls, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"{cls.op}: divisor_override must be positive, got {divisor_override!r}")
    opts = options(cls.op, cls.spatial, kernel_size, stride, padding, 1)
    return cls.apply(input, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                     divisor_override=divisor_override, **opts)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling of (N, C, L) or (C, L), as torch.nn.functional.avg_pool1d."""
    return _avg_pool(AvgPool1d, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-D average pooling of (N, C, H, W) or (C, H, W), as torch.nn.functional.avg_pool2d."""
    return _avg_pool(AvgPool2d, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """3-D average pooling of (N, C, D, H, W) or (C, D, H, W), as torch.nn.functional.avg_pool3d."""
    return _avg_pool(AvgPool3d, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _lp_pool(avg_pool, spatial: int, input: Tensor, norm_type: float, kernel_size, stride,
             ceil_mode: bool) -> Tensor:
    """(sum of x**p over each window)**(1/p): the window's mean of x**p times its size, as PyTorch computes it."""
    kernel = ints(kernel_size, spatial, "kernel_size", f"lp_pool{spatial}d")
    out = avg_pool(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(math.prod(kernel)).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """Power-average pooling over (N, C, L) windows, as torch.nn.functional.lp_pool1d."""
    return _lp_pool(avg_pool1d, 1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """Power-average pooling (sum of x**p over each window)**(1/p), as torch.nn.functional.lp_pool2d."""
    return _lp_pool(avg_pool2d, 2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """Power-average pooling over (N, C, D, H, W) windows, as torch.nn.functional.lp_pool3d."""
    return _lp_pool(avg_pool3d, 3, input, norm_type, kernel_size, stride, ceil_mode)
