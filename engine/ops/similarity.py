"""Vector normalization, cosine similarity (composed from norm, clamp, div, expand and sum) and cdist."""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.elementwise import clamp
from engine.ops.reduce import norm
from engine.ops.shape import _dim, expand
from engine.tensor import Tensor

__all__ = ["cdist", "cosine_similarity", "normalize"]


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input divided by its p-norm along `dim`, the norm kept at least `eps`."""
    return input / clamp(norm(input, p, dim=dim, keepdim=True), min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """The cosine of the angle between x1 and x2 (broadcast together) along `dim`; each norm kept >= eps."""
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ShapeError(f"cosine_similarity: x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} do not "
                         "broadcast together") from None
    d = _dim(dim, len(shape))
    x1, x2 = (x if x.shape == shape else expand(x, shape) for x in (x1, x2))
    return (normalize(x1, 2, d, eps) * normalize(x2, 2, d, eps)).sum(d)


class Cdist(Function):
    """p-norm distances between the rows of x1 (..., P, M) and of x2 (..., R, M): shape (..., P, R).

    p = 2 may go through matrix products (|a|^2 + |b|^2 - 2 a.b), as PyTorch does for more than 25 rows;
    otherwise the differences are formed explicitly. A zero distance has a zero gradient, as in PyTorch.
    """

    promotes = True

    def forward(ctx, x1, x2):
        xp = array_module(x1)
        if ctx.mm:
            sq = (x1 * x1).sum(-1)[..., :, None] + (x2 * x2).sum(-1)[..., None, :] - 2 * (x1 @ x2.swapaxes(-1, -2))
            d = xp.sqrt(xp.maximum(sq, 0))
            ctx.save(x1, x2, d)
            return d
        a = xp.abs(x1[..., :, None, :] - x2[..., None, :, :])
        p = ctx.p
        if math.isinf(p):
            d = a.max(-1) if a.shape[-1] else a.sum(-1)
        elif p == 0:
            d = (a != 0).sum(-1, dtype=a.dtype)
        else:
            d = (a ** p).sum(-1) ** (1 / p)
        ctx.save(x1, x2, d)
        return d

    def backward(ctx, grad):
        x1, x2, d = ctx.saved
        xp = array_module(grad)
        need_1, need_2 = ctx.needs_input_grad
        p = ctx.p
        if p == 0:
            return (xp.zeros_like(x1) if need_1 else None), (xp.zeros_like(x2) if need_2 else None)
        if ctx.mm:  # sum over r of g/d (x1_p - x2_r), as matrix products
            w = xp.where(d > 0, grad / xp.where(d > 0, d, 1), 0)
            g1 = w.sum(-1)[..., None] * x1 - w @ x2 if need_1 else None
            g2 = w.swapaxes(-1, -2).sum(-1)[..., None] * x2 - w.swapaxes(-1, -2) @ x1 if need_2 else None
            return g1, g2
        diff = x1[..., :, None, :] - x2[..., None, :, :]
        a, dk, g = xp.abs(diff), d[..., None], grad[..., None]
        if math.isinf(p):  # like amax: split among the tied largest |x1 - x2|
            hit = a == dk
            per = g * xp.sign(diff) * hit / xp.maximum(hit.sum(-1, keepdims=True), 1)
        elif p == 1:
            per = g * xp.sign(diff)
        else:  # sign |diff|^(p-1) / d^(p-1), taken as 0 where the distance is 0
            per = g * xp.sign(diff) * xp.where(a > 0, a, 1) ** (p - 1) * xp.where(dk > 0, dk, 1) ** (1 - p)
            per = xp.where(dk > 0, per, 0) if p < 1 else per
        return (per.sum(-2) if need_1 else None), (-per.sum(-3) if need_2 else None)


_CDIST_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str = "use_mm_for_euclid_dist_if_necessary"
          ) -> Tensor:
    """Pairwise p-norm distances between the rows of x1 (B, P, M) and x2 (B, R, M), shape (B, P, R)."""
    for name, x in (("X1", x1), ("X2", x2)):
        if x.ndim < 2:
            raise ShapeError(f"cdist: only supports at least 2D tensors, {name} got: {x.ndim}D "
                             f"(shapes {tuple(x1.shape)} and {tuple(x2.shape)})")
        if not x.dtype.is_floating_point:
            raise TypeError(f"cdist: only supports floating-point dtypes, {name} got: {x.dtype.name}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} "
                         f"X2: {x2.shape[-1]} (shapes {tuple(x1.shape)} and {tuple(x2.shape)})")
    try:
        np.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    except ValueError:
        raise ShapeError(f"cdist: the batch dims of X1 {tuple(x1.shape)} and X2 {tuple(x2.shape)} do not "
                         "broadcast together") from None
    if not p >= 0:
        raise ValueError(f"cdist: only supports non-negative p values, got {p}")
    if compute_mode not in _CDIST_MODES:
        raise ValueError(f"cdist: {compute_mode!r} is not a valid value for compute_mode; "
                         f"use one of {', '.join(_CDIST_MODES)}")
    rows = max(x1.shape[-2], x2.shape[-2])
    mm = p == 2 and (compute_mode == "use_mm_for_euclid_dist"
                     or (compute_mode == _CDIST_MODES[0] and rows > 25))
    return Cdist.apply(x1, x2, p=float(p), mm=mm)
