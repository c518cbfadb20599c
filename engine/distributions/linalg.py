"""The two matrix ops MultivariateNormal needs and engine.ops lacks: Cholesky and triangular solve.

Both follow torch.linalg (`cholesky`, `solve_triangular`), batch over leading dims, and run on numpy
or CuPy through the array module of the inputs. Backward formulas are the standard ones (Murray 2016 for
Cholesky); a triangular solve's gradient is kept on the triangle the solve read.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.backend import array_module
from engine.tensor import Tensor


def _t(a):
    return a.swapaxes(-1, -2)


def _solve(xp, a, b):
    """a^-1 b for stacks of square a and matrices b whose batch dims broadcast."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return xp.linalg.solve(xp.broadcast_to(a, batch + a.shape[-2:]), xp.broadcast_to(b, batch + b.shape[-2:]))


class Cholesky(Function):
    """L with L L^T = A, L lower triangular, for a symmetric positive-definite A."""

    def forward(ctx, a):
        xp = array_module(a)
        try:
            low = xp.linalg.cholesky(a)
        except Exception as err:  # numpy's and CuPy's LinAlgError
            raise ValueError(f"cholesky: the input is not positive-definite ({err})") from None
        if not bool(xp.isfinite(low).all()):
            raise ValueError("cholesky: the input is not positive-definite")
        ctx.save(low)
        return low

    def backward(ctx, grad):
        (low,) = ctx.saved
        xp = array_module(grad)
        phi = xp.tril(_t(low) @ grad)
        phi = phi - 0.5 * xp.eye(low.shape[-1], dtype=low.dtype) * phi  # halve the diagonal
        inner = _solve(xp, _t(low), phi)          # L^-T phi
        s = _t(_solve(xp, _t(low), _t(inner)))    # L^-T phi L^-1
        return 0.5 * (s + _t(s))


class SolveTriangular(Function):
    """X with A X = B for a triangular A (lower unless `upper`); only A's triangle is read."""

    op = "solve_triangular"

    def forward(ctx, a, b):
        xp = array_module(a)
        a = xp.triu(a) if ctx.upper else xp.tril(a)
        x = _solve(xp, a, b)
        ctx.save(a, x)
        return x

    def backward(ctx, grad):
        a, x = ctx.saved
        xp = array_module(grad)
        gb = _solve(xp, _t(a), grad)
        ga = None
        if ctx.needs_input_grad[0]:
            ga = -gb @ _t(x)
            ga = xp.triu(ga) if ctx.upper else xp.tril(ga)
        return ga, gb


def cholesky(input: Tensor) -> Tensor:
    """The lower Cholesky factor of each symmetric positive-definite matrix in `input`, as torch.linalg.cholesky."""
    if input.ndim < 2 or input.shape[-1] != input.shape[-2]:
        raise ValueError(f"cholesky: expected a (batch of) square matrices, got shape {tuple(input.shape)}")
    return Cholesky.apply(input)


def solve_triangular(A: Tensor, B: Tensor, *, upper: bool) -> Tensor:
    """X with A X = B for triangular A, as torch.linalg.solve_triangular(A, B, upper=upper)."""
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"solve_triangular: A must be a (batch of) square matrices, got shape {tuple(A.shape)}")
    if B.ndim < 2 or B.shape[-2] != A.shape[-1]:
        raise ValueError(f"solve_triangular: B must have {A.shape[-1]} rows to match A, got shape {tuple(B.shape)}")
    return SolveTriangular.apply(A, B, upper=bool(upper))


def diagonal(input: Tensor) -> Tensor:
    """The main diagonal of each matrix in `input` (its last two dims), differentiably."""
    from engine.creation import eye

    n = input.shape[-1]
    return (input * eye(n, dtype=input.dtype, device=input.device)).sum(-1)
