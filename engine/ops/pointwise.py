"""More elementwise math: rounding (round, floor, ceil, trunc), erf, nan_to_num, atan2 and fmod.

Rounding and erf are rows of the same kind of table as engine.ops.elementwise's UNARY: a forward
formula and its derivative. Rounding is piecewise constant, so its gradient is zero, as in PyTorch.
"""

from __future__ import annotations

import math

from engine.autograd.function import Function
from engine.backend import array_module
from engine.ops.activation import _erfc_nonnegative
from engine.ops.elementwise import Modulo, _float, _make_unary
from engine.tensor import Tensor

__all__ = ["atan2", "ceil", "erf", "fix", "floor", "fmod", "nan_to_num", "round", "trunc"]

_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


def _erf(xp, x):
    """erf(x): a Taylor series near 0 (where 1 - erfc(|x|) would lose relative precision), else 1 - erfc."""
    a = xp.abs(x)
    small = xp.minimum(a, 0.5)
    s2 = small * small
    series = xp.zeros_like(x)
    for n in range(16, -1, -1):  # Horner on sum (-1)^n s^2n / (n! (2n + 1)); 17 terms reach 1e-17 at |s| 0.5
        series = series * s2 + (-1) ** n / (math.factorial(n) * (2 * n + 1))
    near = _TWO_OVER_SQRT_PI * small * series
    far = 1 - _erfc_nonnegative(xp, a)
    return xp.where(a < 0.5, near, far) * xp.sign(x)


def _rounded(name):
    # integer tensors are already whole: numpy's floor would turn them into floats
    return lambda xp, x: getattr(xp, name)(x) if x.dtype.kind == "f" else x.copy()


def _zero_grad(xp, x, y, g):
    return xp.zeros_like(g)


# name -> (forward, derivative given x, y and grad, keeps integer dtype)
POINTWISE = {
    "floor": (_rounded("floor"), _zero_grad, True),
    "ceil": (_rounded("ceil"), _zero_grad, True),
    "trunc": (_rounded("trunc"), _zero_grad, True),
    "erf": (_erf, lambda xp, x, y, g: g * _TWO_OVER_SQRT_PI * xp.exp(-x * x), False),
}
POINTWISE_OPS = {name: _make_unary(name, *row) for name, row in POINTWISE.items()}
floor, ceil, trunc, erf = (POINTWISE_OPS[n][1] for n in POINTWISE)
fix = trunc


class Round(Function):
    """Round half to even (as PyTorch and numpy), optionally to `decimals` decimal places."""

    def forward(ctx, x):
        if x.dtype.kind != "f":
            return x.copy()
        return array_module(x).round(x, ctx.decimals)

    def backward(ctx, grad):
        return array_module(grad).zeros_like(grad)


def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """Each element rounded to `decimals` places, halves to the even neighbour; zero gradient."""
    if decimals and not input.dtype.is_floating_point:
        raise NotImplementedError(f"round: decimals is only supported for floating point tensors, "
                                  f"got {input.dtype.name}")
    return Round.apply(input, decimals=int(decimals))


class NanToNum(Function):
    """NaN, +inf and -inf replaced by numbers; the gradient passes only where the input was finite."""

    op = "nan_to_num"

    def forward(ctx, x):
        xp = array_module(x)
        if x.dtype.kind != "f":
            return x.copy()
        ctx.save(x)
        info = xp.finfo(x.dtype)
        posinf = info.max if ctx.posinf is None else ctx.posinf
        neginf = info.min if ctx.neginf is None else ctx.neginf
        y = xp.where(xp.isnan(x), ctx.nan, x)
        y = xp.where(y == math.inf, posinf, y)
        return xp.where(y == -math.inf, neginf, y).astype(x.dtype, copy=False)

    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * array_module(grad).isfinite(x)


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN replaced by `nan`, +inf by `posinf` and -inf by `neginf` (the dtype's largest and smallest by default)."""
    return NanToNum.apply(input, nan=nan, posinf=posinf, neginf=neginf)


class Atan2(Function):
    """The angle of the point (other, input), in (-pi, pi]; integer inputs give floats."""

    promotes = True

    def forward(ctx, a, b):
        a = _float(a) if hasattr(a, "dtype") else float(a)
        b = _float(b) if hasattr(b, "dtype") else float(b)
        ctx.save(a, b)
        return array_module(a if hasattr(a, "dtype") else b).arctan2(a, b)

    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        r2 = a * a + b * b
        return (grad * b / r2 if need_a else None), (-grad * a / r2 if need_b else None)


def atan2(input: Tensor, other) -> Tensor:
    """atan2(input, other) elementwise (broadcast), the quadrant from both signs, as torch.atan2."""
    return Atan2.apply(input, other)


class Fmod(Modulo):
    """C's fmod: the result takes the dividend's sign (remainder takes the divisor's)."""

    kernel, rounding = "fmod", "trunc"


def fmod(input: Tensor, other) -> Tensor:
    """The remainder of input / other with the sign of input, as torch.fmod (Python's % is `remainder`)."""
    return Fmod.apply(input, other)
