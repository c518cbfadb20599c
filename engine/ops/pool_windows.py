"""Window geometry shared by the pooling ops, for any number of spatial dims (1-D, 2-D and 3-D alike).

A pooling op sees an (N, C, *spatial) or unbatched (C, *spatial) array and works on its trailing
`spatial` axes only, so the leading axes are never reshaped. Windows are boxes, so pooling runs one
axis at a time: `taps` picks tap i of every window along an axis as one strided slice, `box_sum` and
`box_sum_grad` sum windows and spread gradients back, and `scatter_back` sends each output's gradient
to the one input cell a max came from.
"""

from __future__ import annotations

import math

from engine.autograd.function import ShapeError
from engine.backend import array_module
from engine.ops.conv import ints
from engine.ops.index import scatter_add_into

Pads = tuple[tuple[int, int], ...]  # (before, after) of each spatial axis


def check_input(op: str, x, spatial: int) -> None:
    """Raise a clear error unless array `x` is a floating (C, *spatial) or (N, C, *spatial) input."""
    if x.ndim not in (spatial + 1, spatial + 2):
        raise ShapeError(f"{op}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) input, "
                         f"got input of shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype}")
    if 0 in x.shape[-spatial - 1:]:
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} has an empty channel or spatial dimension")


def options(op: str, spatial: int, kernel_size, stride, padding, dilation) -> dict:
    """The user's kernel_size, stride, padding and dilation as `spatial`-tuples, checked as PyTorch does."""
    kernel = ints(kernel_size, spatial, "kernel_size", op)
    no_stride = stride is None or (hasattr(stride, "__len__") and not len(stride))
    stride = kernel if no_stride else ints(stride, spatial, "stride", op)
    pads = ints(padding, spatial, "padding", op, low=0)
    if any(p > k // 2 for k, p in zip(kernel, pads)):  # PyTorch's rule; no window lies wholly in padding
        # torch raises a RuntimeError: a ShapeError is one (and the ValueError it was before)
        raise ShapeError(f"{op}: padding should be at most half of kernel_size, got padding={padding!r} "
                         f"and kernel_size={kernel_size!r}")
    return {"kernel": kernel, "stride": stride, "padding": pads,
            "dilation": ints(dilation, spatial, "dilation", op)}


def geometry(ctx, x) -> tuple[tuple[int, ...], Pads]:
    """Output size and the padding of each axis, the `after` side grown so ceil_mode's last window fits
    (PyTorch's pooling_output_shape)."""
    out, pads = [], []
    for size, k, s, p, d in zip(x.shape[-ctx.spatial:], ctx.kernel, ctx.stride, ctx.padding, ctx.dilation):
        span = d * (k - 1) + 1
        o = (size + 2 * p - span + (s - 1 if ctx.ceil_mode else 0)) // s + 1
        if ctx.ceil_mode and (o - 1) * s >= size + p:
            o -= 1  # the last window has to start inside the input or its left padding
        out.append(o)
        pads.append((p, p + max(0, (o - 1) * s + span - size - 2 * p)))
    if min(out) < 1:
        raise ShapeError(f"{ctx.op}: input of shape {tuple(x.shape)} is too small for kernel_size {ctx.kernel} "
                         f"with padding {ctx.padding} and dilation {ctx.dilation} (output size would be "
                         f"{tuple(out)})")
    return tuple(out), tuple(pads)


def pad(x, pads: Pads, value: float = 0.0):
    """`x` inside a frame of `value` around its trailing axes, `pads` wide on each side."""
    if not any(a or b for a, b in pads):
        return x
    lead = x.shape[:x.ndim - len(pads)]
    out = array_module(x).full((*lead, *(n + a + b for n, (a, b) in zip(x.shape[len(lead):], pads))), value,
                               dtype=x.dtype)
    out[inside(x.shape[len(lead):], pads)] = x
    return out


def inside(sizes, pads: Pads) -> tuple:
    """The index of the unpadded cells in a padded array."""
    return (..., *(slice(a, a + n) for n, (a, _) in zip(sizes, pads)))


def taps(ndim: int, axis: int, out: int, stride: int, dilation: int):
    """Index of tap i of every window along `axis` of an ndim-D padded array: `taps(...)(i)`."""
    def key(i: int) -> tuple:
        return (*(slice(None),) * axis, slice(i * dilation, i * dilation + stride * (out - 1) + 1, stride))
    return key


def box_sum(xpad, kernel, out, stride, dilation):
    """Sum over every window of the trailing axes: (*lead, *padded) -> (*lead, *out).

    A window is a box, so the sum is separable: one axis at a time, k strided adds per axis
    (9 for a 3x3x3 kernel rather than 27)."""
    d = len(kernel)
    for a, (k, o, s, dil) in enumerate(zip(kernel, out, stride, dilation)):
        key = taps(xpad.ndim, xpad.ndim - d + a, o, s, dil)
        total = xpad[key(0)]
        for i in range(1, k):
            total = total + xpad[key(i)]
        xpad = total
    return xpad


def box_sum_grad(grad, kernel, padded, stride, dilation):
    """Adjoint of `box_sum`: each window's gradient added onto every cell of its box."""
    xp, d = array_module(grad), len(kernel)
    for a in reversed(range(d)):
        axis = grad.ndim - d + a
        key = taps(grad.ndim, axis, grad.shape[axis], stride[a], dilation[a])
        spread = xp.zeros((*grad.shape[:axis], padded[a], *grad.shape[axis + 1:]), dtype=grad.dtype)
        for i in range(kernel[a]):  # windows may overlap, so one strided add per tap
            spread[key(i)] += grad
        grad = spread
    return grad


def scatter_back(grad, flat, x_shape: tuple, spatial: int):
    """Each output's gradient added at the flat (within-plane) input position it came from; positions
    outside the plane (a window wholly in padding) take nothing."""
    xp = array_module(grad)
    planes, plane = math.prod(x_shape[:-spatial]), math.prod(x_shape[-spatial:])
    flat = flat.reshape(planes, math.prod(grad.shape[-spatial:]))
    flat = xp.where((flat < 0) | (flat >= plane), plane, flat) + xp.arange(planes).reshape(-1, 1) * (plane + 1)
    g = xp.zeros(planes * (plane + 1), grad.dtype)
    scatter_add_into(xp)(g, flat.reshape(-1), grad.reshape(-1))  # one flat index: numpy's fast path
    return g.reshape(planes, plane + 1)[:, :plane].reshape(x_shape)
