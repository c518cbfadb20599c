"""Tensor.unfold: every window of `size` entries along a dim, `step` apart, as a view of the tensor (as_strided over
its memory, as torch's), so writes into a window write the tensor and memory does not grow with the window count.

Its backward adds each window's gradient back where the window lies (FoldWindows), the two being each other's
Tensor-level backward for create_graph=True.
"""

from __future__ import annotations

import operator

from engine.autograd.function import Function
from engine.autograd.higher import differentiable
from engine.backend import array_module
from engine.ops.shape import _dim
from engine.tensor import Tensor


def _windows(xp, a, d: int, size: int, step: int, count: int, start: int = 0):
    """`count` windows of `size` entries along dim d of array `a`, `step` apart from entry `start` on, in a new last
    dim: a writable view of a's memory (as_strided), so memory does not grow with the window count."""
    a = a[(slice(None),) * d + (slice(start, None),)]
    shape = (*a.shape[:d], count, *a.shape[d + 1:], size)
    strides = (*a.strides[:d], a.strides[d] * step, *a.strides[d + 1:], a.strides[d])
    return xp.lib.stride_tricks.as_strided(a, shape, strides)


def _fold_windows(grad, shape: tuple, d: int, size: int, step: int, count: int):
    """The adjoint of _windows: each window's values added back where the window lies in an array of `shape`."""
    xp = array_module(grad)
    out = xp.zeros(shape, grad.dtype)
    spans = -(-size // step)  # windows overlap this deep; one pass per span writes disjoint memory, so += is exact
    if count < spans:  # few long windows: one pass per window instead
        for w in range(count):
            _windows(xp, out, d, size, step, 1, w * step)[...] += grad[(slice(None),) * d + (slice(w, w + 1),)]
        return out
    for start in range(0, size, step):
        width = min(step, size - start)
        _windows(xp, out, d, width, step, count, start)[...] += grad[..., start:start + width]
    return out


class Unfold(Function):
    """Tensor.unfold: the windows along `dim`, as a view of x, as in torch; the gradient adds each window back."""

    view = True

    def forward(ctx, x):
        return _windows(array_module(x), x, ctx.dim, ctx.size, ctx.step, ctx.count)

    def backward(ctx, grad):
        return _fold_windows(grad, ctx.shape, ctx.dim, ctx.size, ctx.step, ctx.count)


class UnfoldCopy(Unfold):
    """The windows as a new array: the backward of FoldWindows, whose gradient must not alias itself."""

    op = "unfold"
    view = False

    def forward(ctx, x):
        xp = array_module(x)
        return xp.ascontiguousarray(_windows(xp, x, ctx.dim, ctx.size, ctx.step, ctx.count))


class FoldWindows(Function):
    """Windows added back into an array of `shape` (Unfold's backward, recorded for create_graph=True)."""

    op = "fold_windows"

    def forward(ctx, windows):
        return _fold_windows(windows, ctx.shape, ctx.dim, ctx.size, ctx.step, ctx.count)

    def backward(ctx, grad):
        xp = array_module(grad)
        return xp.ascontiguousarray(_windows(xp, grad, ctx.dim, ctx.size, ctx.step, ctx.count))


def _geometry(ctx) -> dict:
    return {"shape": ctx.shape, "dim": ctx.dim, "size": ctx.size, "step": ctx.step, "count": ctx.count}


@differentiable(Unfold, UnfoldCopy)
def _unfold_backward(ctx, g: Tensor) -> Tensor:
    return FoldWindows.apply(g, **_geometry(ctx))


@differentiable(FoldWindows)
def _fold_windows_backward(ctx, g: Tensor) -> Tensor:
    return UnfoldCopy.apply(g, **_geometry(ctx))


def unfold(self: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Every window of `size` entries along `dimension`, `step` apart, in a new last dim (Tensor.unfold).

    A view, as torch's: writing into a window writes self, and overlapping windows share elements. Its gradient
    adds each window's gradient back where the window came from.
    """
    d = _dim(dimension, self.ndim)
    x = self if self.ndim else self.reshape(1)
    n = x.shape[d]
    size, step = operator.index(size), operator.index(step)
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    out = Unfold.apply(x, dim=d, size=size, step=step, count=(n - size) // step + 1, shape=x.shape)
    return out if self.ndim else out.reshape(-1)  # torch: a 0-d tensor's windows are one 1-d tensor
