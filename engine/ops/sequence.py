"""Ops along one dim read as a sequence: repeat_interleave (each element repeated) and diff (differences)."""

from __future__ import annotations

import operator

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.index import scatter_add_into
from engine.ops.shape import _dim, cat, flatten
from engine.tensor import Tensor

__all__ = ["diff", "repeat_interleave"]


class RepeatInterleave(Function):
    """x with element i along `ctx.dim` repeated `ctx.repeats[i]` times (or `ctx.repeats` times, an int)."""

    op = "repeat_interleave"

    def forward(ctx, x):
        ctx.in_shape = x.shape
        return array_module(x).repeat(x, ctx.repeats, axis=ctx.dim)

    def backward(ctx, grad):
        xp = array_module(grad)
        d, n = ctx.dim, ctx.in_shape[ctx.dim]
        if isinstance(ctx.repeats, int):  # view the repeats as their own axis and add them up
            return grad.reshape((*grad.shape[:d], n, ctx.repeats, *grad.shape[d + 1:])).sum(axis=d + 1)
        source = xp.repeat(xp.arange(n), ctx.repeats)  # which input element each output position copies
        g = xp.zeros((n, *grad.shape[:d], *grad.shape[d + 1:]), grad.dtype)
        scatter_add_into(xp)(g, source, xp.moveaxis(grad, d, 0))
        return xp.moveaxis(g, 0, d)


def _repeat_counts(repeats, size: int, shape: tuple) -> int | list[int]:
    """Repeats as an int or a host list of `size` ints (a tensor of repeats is read back, as PyTorch does)."""
    if isinstance(repeats, Tensor):
        if repeats.ndim > 1:
            raise ShapeError(f"repeat_interleave: repeats must be 0-dim or 1-dim tensor, got shape "
                             f"{tuple(repeats.shape)}")
        if repeats.dtype.is_floating_point or repeats.dtype.name == "bool":
            raise TypeError(f"repeat_interleave: repeats must be an integer tensor, got {repeats.dtype.name}")
        counts = repeats.array.tolist()
        if repeats.ndim == 0:
            repeats = counts
        elif len(counts) == 1:
            repeats = counts[0]
        else:
            if len(counts) != size:
                raise ShapeError(f"repeat_interleave: repeats must have the same size as input along dim, but "
                                 f"got repeats.size(0) = {len(counts)} and input.size(0) = {size} "
                                 f"(input shape {shape})")
            if any(c < 0 for c in counts):
                raise ValueError("repeat_interleave: repeats can not be negative")
            return counts
    try:
        repeats = operator.index(repeats)
    except TypeError:
        raise TypeError(f"repeat_interleave: repeats must be an int or an integer tensor, got {repeats!r}") from None
    if repeats < 0:
        raise ValueError(f"repeat_interleave: repeats must be non-negative, got {repeats}")
    return repeats


def repeat_interleave(input: Tensor, repeats=None, dim: int | None = None, *, output_size: int | None = None
                      ) -> Tensor:
    """Each element repeated `repeats` times along `dim` (the flattened input when dim is None).

    `repeat_interleave(counts)` with a 1-D integer tensor alone gives arange(len(counts)) repeated by counts.
    """
    if repeats is None:
        if input.ndim != 1 or input.dtype.is_floating_point:
            raise ShapeError(f"repeat_interleave: repeats must be a 1-D integer tensor, got "
                             f"{input.dtype.name} of shape {tuple(input.shape)}")
        xp = array_module(input.array)
        return repeat_interleave(Tensor._wrap(xp.arange(input.shape[0], dtype=np.int64)), input, 0,
                                 output_size=output_size)
    if dim is None:
        input, d = flatten(input), 0
    else:
        d = _dim(dim, input.ndim)
        if input.ndim == 0:
            input = flatten(input)
    counts = _repeat_counts(repeats, input.shape[d], tuple(input.shape))
    total = input.shape[d] * counts if isinstance(counts, int) else sum(counts)
    if output_size is not None and output_size != total:
        raise ValueError(f"repeat_interleave: output_size is {output_size} but the repeats add up to {total}")
    return RepeatInterleave.apply(input, repeats=counts, dim=d)


class Diff(Function):
    """The n-th forward difference along `ctx.dim`: out[i] = x[i + 1] - x[i], n times."""

    def forward(ctx, x):
        ctx.in_shape = x.shape
        return array_module(x).diff(x, ctx.n, axis=ctx.dim)  # of bools: xor, in numpy as in PyTorch

    def backward(ctx, grad):
        # the adjoint of one difference: g[i - 1] - g[i], with zeros beyond both ends
        xp = array_module(grad)
        d = ctx.dim
        if ctx.n >= ctx.in_shape[d]:  # nothing was left to differentiate
            return xp.zeros(ctx.in_shape, grad.dtype)
        for _ in range(ctx.n):
            zero = xp.zeros((*grad.shape[:d], 1, *grad.shape[d + 1:]), grad.dtype)
            grad = xp.diff(xp.concatenate([zero, grad, zero], axis=d), axis=d) * -1
        return grad


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Tensor | None = None,
         append: Tensor | None = None) -> Tensor:
    """The n-th forward difference along `dim`, after joining prepend and append, as torch.diff."""
    if input.ndim == 0:
        raise ShapeError("diff expects input to be at least one-dimensional, got a 0-d tensor")
    if n < 0:
        raise ValueError(f"diff: order must be non-negative but got {n}")
    d = _dim(dim, input.ndim)
    if prepend is not None or append is not None:
        parts = [t for t in (prepend, input, append) if t is not None]
        for t in parts:
            if t.ndim != input.ndim:
                raise ShapeError(f"diff: prepend and append must have the same number of dimensions as input "
                                 f"{tuple(input.shape)}, got {tuple(t.shape)}")
        input = cat(parts, d)
    if n == 0:
        return input.clone()
    return Diff.apply(input, n=n, dim=d)
