"""Special functions with gradients: erfc, erfinv, lgamma, digamma, polygamma, xlogy, the modified Bessel
functions i0/i0e/i1/i1e, and torch.special's names (the incomplete gamma and beta: special_incomplete.py).

numpy and CuPy have no vectorised gamma family and the engine does not depend on scipy, so the formulas
are written here from array primitives: lgamma and digamma shift the argument up to x >= 8 and use their
asymptotic (Stirling) series, with the reflection formula below 0.5; polygamma is a scaled Hurwitz zeta
summed the same way (Euler-Maclaurin); erfinv refines Giles' single-precision guess with four Halley or Newton steps.
Lower-precision inputs are computed in float64 and rounded once, so float32 results are correctly rounded
near the zeros of lgamma and digamma too.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from engine.autograd.function import Function
from engine.backend import array_module
from engine.ops.activation import _erfc_nonnegative, log_softmax, softmax
from engine.ops.elementwise import _float, _make_unary, expm1, log1p, sigmoid, zero_where
from engine.ops.pointwise import erf, round
from engine.ops.reduce import logsumexp
from engine.tensor import Tensor

__all__ = ["digamma", "erfc", "erfinv", "i0", "lgamma", "logit", "mvlgamma", "polygamma", "xlog1py", "xlogy"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_PI_OVER_2 = math.sqrt(math.pi) / 2
_MAX_SHIFT = 10000  # polygamma of x < -10000 is NaN rather than a loop of that length
_SHIFT = 8.0  # the asymptotic series below reach float64 precision from here up
# Stirling's series of lgamma, coefficients of w^-(2k-1): B_2k / (2k (2k - 1))
_LGAMMA_SERIES = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)
# digamma's asymptotic series, coefficients of w^-2k: B_2k / (2k)
_DIGAMMA_SERIES = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12)
# Euler-Maclaurin for the Hurwitz zeta: B_2j / (2j)!
_ZETA_BERNOULLI = (1 / 6 / 2, -1 / 30 / 24, 1 / 42 / 720, -1 / 30 / 40320, 5 / 66 / 3628800,
                   -691 / 2730 / 479001600, 7 / 6 / 87178291200, -3617 / 510 / 20922789888000)


def _in_float64(fn):
    """Run `fn(xp, x, ...)` in float64 and round the result to x's dtype once."""
    @functools.wraps(fn)
    def wrapped(xp, x, *rest):
        x = _float(x)
        with np.errstate(all="ignore"):  # poles and the unused branch of a `where` give inf and NaN by design
            if x.dtype == np.float64:
                return fn(xp, x, *rest)
            return fn(xp, x.astype(np.float64), *rest).astype(x.dtype)

    return wrapped


def _polynomial(coeffs, t):
    """sum c_k t^k by Horner's rule."""
    out = coeffs[-1]
    for c in coeffs[-2::-1]:
        out = out * t + c
    return out


def _shift_up(xp, z):
    """(w, product): w = z + k >= _SHIFT for the smallest k, and product = z (z + 1) ... (z + k - 1)."""
    w, product = z, xp.ones_like(z)
    for _ in range(int(_SHIFT)):
        small = w < _SHIFT
        product = xp.where(small, product * w, product)
        w = xp.where(small, w + 1, w)
    return w, product


def _sin_pi_abs(xp, x):
    """|sin(pi x)|, exact at integers (0) however large x is."""
    return xp.abs(xp.sin(math.pi * (x - xp.round(x))))


@_in_float64
def _lgamma(xp, x):
    reflect = x < 0.5
    z = xp.where(reflect, 1 - x, x)
    w, product = _shift_up(xp, z)
    inv = 1 / w
    series = inv * _polynomial(_LGAMMA_SERIES, inv * inv)
    y = (w - 0.5) * xp.log(w) - w + _HALF_LOG_2PI + series - xp.log(product)
    # lgamma(x) = log(pi / |sin(pi x)|) - lgamma(1 - x); inf at 0, -1, -2, ...
    y = xp.where(reflect, math.log(math.pi) - xp.log(_sin_pi_abs(xp, x)) - y, y)
    return xp.where(xp.isinf(x), math.inf, y)


@_in_float64
def _digamma(xp, x):
    reflect = x < 0.5
    z = xp.where(reflect, 1 - x, x)
    w, product = z, xp.zeros_like(z)
    for _ in range(int(_SHIFT)):  # psi(z) = psi(z + k) - sum 1 / (z + j)
        small = w < _SHIFT
        product = xp.where(small, product + 1 / w, product)
        w = xp.where(small, w + 1, w)
    inv2 = 1 / (w * w)
    y = xp.log(w) - 0.5 / w - inv2 * _polynomial(_DIGAMMA_SERIES, inv2) - product
    # psi(x) = psi(1 - x) - pi / tan(pi x); the poles at 0, -1, -2, ... give nan, and +-0 give -+inf (as PyTorch)
    y = xp.where(reflect, y - math.pi / xp.tan(math.pi * (x - xp.round(x))), y)
    y = xp.where((x <= 0) & (x == xp.floor(x)), math.nan, y)
    return xp.where(x == 0, xp.copysign(math.inf, -x), y)


@_in_float64
def _polygamma(xp, x, n):
    """psi^(n)(x) = (-1)^(n+1) n! zeta(n + 1, x) for n >= 1."""
    s = n + 1
    lowest = float(xp.nanmin(x)) if x.size else 0.0
    # shift every element up to w >= 10: more terms for negative x (one host read of the minimum)
    steps = 10 + (min(math.ceil(-lowest), _MAX_SHIFT) if math.isfinite(lowest) and lowest < 0 else 0)
    total, w = xp.zeros_like(x), x
    for _ in range(steps):
        small = w < 10
        total = xp.where(small, total + w ** -s, total)
        w = xp.where(small, w + 1, w)
    total = xp.where(w < 10, math.nan, total)  # below -_MAX_SHIFT: not computed
    total = total + w ** (1 - s) / (s - 1) + 0.5 * w ** -s
    rising, power = float(s), w ** (-s - 1)  # s (s+1) ... (s + 2j - 2) and w^(-s-2j+1)
    for j, b in enumerate(_ZETA_BERNOULLI, start=1):
        total = total + b * rising * power
        rising *= (s + 2 * j - 1) * (s + 2 * j)
        power = power / (w * w)
    total = xp.where(xp.isinf(x) & (x > 0), 0.0, total)
    return (-1) ** (n + 1) * math.factorial(n) * total


@_in_float64
def _erfc(xp, x):
    tail = _erfc_nonnegative(xp, xp.abs(x))
    return xp.where(x < 0, 2 - tail, tail)


# Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011): single precision, in w = -log(1 - x^2)
_GILES_CENTRAL = (1.50140941, 0.246640727, -0.00417768164, -0.00125372503, 0.00021858087, -4.39150654e-06,
                  -3.5233877e-06, 3.43273939e-07, 2.81022636e-08)
_GILES_TAIL = (2.83297682, 1.00167406, 0.00943887047, -0.0076224613, 0.00573950773, -0.00367342844,
               0.00134934322, 0.000100950558, -0.000200214257)


@_in_float64
def _erfinv(xp, x):
    from engine.ops.pointwise import _erf

    a = xp.abs(x)
    w = -xp.log((1 - a) * (1 + a))
    central = _polynomial(_GILES_CENTRAL, w - 2.5)
    tail = _polynomial(_GILES_TAIL, xp.sqrt(xp.where(w < 5, 5.0, w)) - 3)
    y = xp.where(w < 5, central, tail) * a
    # refine: Halley on erf(y) = a in the centre; in the tails Newton on log(erfc(y)) = log(1 - a), whose right
    # side is exact there and which is nearly linear in y even where Giles' guess is 0.7 off (a = 1 - 1e-16)
    tail_side, log_rest = a >= 0.5, xp.log(1 - a)
    for _ in range(4):
        slope = 2 / math.sqrt(math.pi) * xp.exp(-y * y)
        f = _erf(xp, y) - a
        rest = _erfc(xp, y)
        step = xp.where(tail_side, (xp.log(rest) - log_rest) * rest / slope, -f / (slope + y * f))
        y = xp.where(xp.isfinite(step), y + step, y)
    y = xp.where(a == 1, math.inf, xp.where(a > 1, math.nan, y))
    return xp.copysign(y, x)


@_in_float64
def _entr(xp, x):
    """-x log x, 0 at 0, -inf below it (NaN stays NaN)."""
    return xp.where(x > 0, -x * xp.log(xp.where(x > 0, x, 1.0)), xp.where(x == 0, 0.0, xp.where(x < 0, -math.inf, x)))


def _entr_derivative(xp, x, y, g):
    """-(1 + log x): +inf at 0, NaN below it (as torch's)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return g * -(1 + xp.log(x))


# name -> (forward, derivative given x, y and grad, keeps integer dtype, derivative reads the output)
SPECIAL = {
    "erfc": (_erfc, lambda xp, x, y, g: g * (-2 / math.sqrt(math.pi)) * xp.exp(-x * x), False, False),
    # erfinv's from x, as torch's: a node that kept y would make erfinv_ then another in-place change an error
    "erfinv": (_erfinv, lambda xp, x, y, g: g * _SQRT_PI_OVER_2 * xp.exp(_erfinv(xp, x) ** 2), False, False),
    "lgamma": (_lgamma, lambda xp, x, y, g: g * _digamma(xp, x), False, False),
    "digamma": (_digamma, lambda xp, x, y, g: g * _polygamma(xp, x, 1), False, False),
    "entr": (_entr, _entr_derivative, False, False),
}
SPECIAL_OPS = {name: _make_unary(name, f, df, keeps_int, reads_output=reads_y)
               for name, (f, df, keeps_int, reads_y) in SPECIAL.items()}
erfc, erfinv, lgamma, digamma, _special_entr = (SPECIAL_OPS[n][1] for n in SPECIAL)


class Polygamma(Function):
    """The n-th derivative of digamma, elementwise; its gradient is polygamma(n + 1)."""

    def forward(ctx, x):
        ctx.save(x)
        return _polygamma(array_module(x), x, ctx.n)

    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * _polygamma(array_module(grad), x, ctx.n + 1)


def polygamma(n: int, input: Tensor) -> Tensor:
    """The n-th derivative of the digamma function, as torch.polygamma(n, input); n = 0 is digamma."""
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative integer, got {n!r}")
    return digamma(input) if n == 0 else Polygamma.apply(input, n=int(n))


class XLogY(Function):
    """x * log(y) (or x * log1p(y)), defined as 0 where x == 0 unless y is NaN, as torch.special.xlogy."""

    promotes = True

    def forward(ctx, x, y):
        xp = array_module(x if hasattr(x, "dtype") else y)
        x = _float(x) if hasattr(x, "dtype") else float(x)
        y = _float(y) if hasattr(y, "dtype") else float(y)
        ctx.save(x, y)
        with np.errstate(all="ignore"):  # log(0) where x == 0 is replaced below
            out = xp.where((x == 0) & ~xp.isnan(y), 0.0, x * getattr(xp, ctx.log)(y))
        return xp.asarray(out).astype(x.dtype if hasattr(x, "dtype") else y.dtype, copy=False)

    def backward(ctx, grad):
        x, y = ctx.saved
        xp = array_module(grad)
        need_x, need_y = ctx.needs_input_grad
        gx = gy = None
        with np.errstate(all="ignore"):
            if need_x:  # log(y); 0 where x == 0 and log(y) is -inf or undefined, as torch
                gx = grad * xp.where(_log_undefined_at_zero(ctx.log, x, y), 0.0, getattr(xp, ctx.log)(y))
            if need_y:
                gy = grad * x / (y if ctx.log == "log" else 1 + y)
        return gx, gy


def _log_undefined_at_zero(log: str, x, y):
    """Where x == 0 and y is outside the domain of `log` (y <= 0, or y <= -1 for log1p): the gradient in x of
    x * log(y) is 0 there, as PyTorch gives it; elsewhere it is log(y) (NaN stays NaN)."""
    return (x == 0) & (y <= (0 if log == "log" else -1))


def xlogy(input, other) -> Tensor:
    """input * log(other), and 0 where input is 0 (unless other is NaN), as torch.xlogy."""
    return XLogY.apply(input, other, log="log")


def xlog1py(input, other) -> Tensor:
    """input * log1p(other), and 0 where input is 0 (unless other is NaN), as torch.special.xlog1py."""
    return XLogY.apply(input, other, log="log1p", op="xlog1py")


class Logit(Function):
    """log(p / (1 - p)) of p = x, clamped to [eps, 1 - eps] when eps is given. The gradient is PyTorch's:
    1 / (x (1 - x)), NaN outside [0, 1] without eps (where the composed log(p) - log1p(-p) would give a finite
    number), and 0 outside [eps, 1 - eps] with it."""

    def forward(ctx, x):
        xp = array_module(x)
        x = _float(x)
        ctx.save(x)
        p = x if ctx.eps is None else xp.clip(x, ctx.eps, 1 - ctx.eps)
        with np.errstate(all="ignore"):  # 0 and 1 give -inf and inf, outside [0, 1] NaN, as in torch
            return xp.log(p) - xp.log1p(-p)

    def backward(ctx, grad):
        (x,) = ctx.saved
        xp = array_module(grad)
        with np.errstate(all="ignore"):
            if ctx.eps is None:
                return grad / xp.where((x < 0) | (x > 1), xp.nan, x * (1 - x))
            return zero_where(grad / (x * (1 - x)), (x < ctx.eps) | (x > 1 - ctx.eps))


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)); with `eps`, p is first clamped to [eps, 1 - eps], as torch.logit."""
    return Logit.apply(input, eps=None if eps is None else float(eps))


def mvlgamma(input: Tensor, p: int) -> Tensor:
    """The log of the multivariate gamma function of dimension p, as torch.mvlgamma."""
    if not isinstance(p, int) or p < 1:
        raise ValueError(f"mvlgamma: p must be a positive integer, got {p!r}")
    total = lgamma(input)
    for j in range(1, p):
        total = total + lgamma(input - j / 2)
    return total + p * (p - 1) / 4 * math.log(math.pi)


def _ndtr(input: Tensor) -> Tensor:
    """P(N(0, 1) <= input)."""
    return 0.5 * erfc(input * -math.sqrt(0.5))


def _ndtri(input: Tensor) -> Tensor:
    """The standard normal quantile of probability `input`."""
    return erfinv(2 * input - 1) * math.sqrt(2)


def _exp2(input: Tensor) -> Tensor:
    """2 ** input."""
    return 2 ** input




# ---- modified Bessel functions of the first kind ----------------------------------------------------------
_BESSEL_SPLIT = 20.0  # |x| up to this: the power series; above it: the asymptotic expansion
_BESSEL_SERIES = 40  # terms of the power series: at |x| = 20 the 40th is 1e-23 of the sum
_BESSEL_ASYMPTOTIC = 25  # terms of the expansion: at |x| = 20 the 25th is 2e-17 of the sum (its smallest near 40)


def _bessel_coefficients(order: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(power series in (x/2)^2: 1 / (k! (k+order)!); expansion in 1/z: prod_{j<=k} ((2j-1)^2 - 4 order^2)
    / (k! 8^k)), lowest power first, each correctly rounded from exact integers and fractions."""
    series = tuple(1 / (math.factorial(k) * math.factorial(k + order)) for k in range(_BESSEL_SERIES + 1))
    expansion, c = [], Fraction(1)
    for k in range(_BESSEL_ASYMPTOTIC + 1):
        if k:
            c = c * ((2 * k - 1) ** 2 - 4 * order * order) / (8 * k)
        expansion.append(float(c))
    return series, tuple(expansion)


_BESSEL_COEFFICIENTS = (_bessel_coefficients(0), _bessel_coefficients(1))


def _bessel_scaled(xp, x, order: int):
    """exp(-|x|) I_order(|x|), order 0 or 1, in float64.

    Up to _BESSEL_SPLIT the power series (|x|/2)^order sum_k (x^2/4)^k / (k! (k+order)!): every term is
    positive, so it sums to a few ulps. Above it the asymptotic expansion exp(-z) I(z) ~
    (2 pi z)^(-1/2) sum_k (-1)^k prod_{j<=k} (4 order^2 - (2j-1)^2) / (k! (8z)^k), whose terms fall below
    float64's precision well before they start to grow again.
    """
    series, expansion = _BESSEL_COEFFICIENTS[order]
    a = xp.abs(x)
    near_a = xp.where(a <= _BESSEL_SPLIT, a, 0.0)
    near = _polynomial(series, near_a * near_a / 4) * xp.exp(-near_a)
    if order:
        near = near * (near_a / 2)
    far_a = xp.where(a > _BESSEL_SPLIT, a, _BESSEL_SPLIT)
    far = _polynomial(expansion, 1 / far_a) / xp.sqrt(2 * math.pi * far_a)
    out = xp.where(a <= _BESSEL_SPLIT, near, xp.where(xp.isinf(a), 0.0, far))
    return xp.where(xp.isnan(a), math.nan, out)


def _unscaled(xp, x, scaled):
    """exp(|x|) * scaled, in two halves so that it overflows only where the product does."""
    half = xp.exp(xp.abs(x) / 2)
    return xp.where(xp.isinf(x), math.inf, scaled * half * half)


@_in_float64
def _i0e(xp, x):
    return _bessel_scaled(xp, x, 0)


@_in_float64
def _i1e(xp, x):
    return xp.copysign(_bessel_scaled(xp, x, 1), x)


@_in_float64
def _i0(xp, x):
    return _unscaled(xp, x, _i0e(xp, x))


@_in_float64
def _i1(xp, x):
    return xp.copysign(_unscaled(xp, x, xp.abs(_i1e(xp, x))), x)


def _over_x(xp, y, x):
    """y / x for y = I1(x) or I1e(x), and its limit 1/2 at x == 0 (making the derivative there 1/2)."""
    return xp.where(x == 0, 0.5, y / xp.where(x == 0, 1.0, x))


BESSEL = {  # d i0 = i1;  d i1 = i0 - i1 / x;  the scaled ones add -sign(x) times themselves
    "i0": (_i0, lambda xp, x, y, g: g * _i1(xp, x)),
    "i0e": (_i0e, lambda xp, x, y, g: g * (_i1e(xp, x) - xp.sign(x) * _i0e(xp, x))),
    "i1": (_i1, lambda xp, x, y, g: g * (_i0(xp, x) - _over_x(xp, _i1(xp, x), x))),
    "i1e": (_i1e, lambda xp, x, y, g: g * (_i0e(xp, x) - _over_x(xp, _i1e(xp, x), x) - xp.sign(x) * _i1e(xp, x))),
}
BESSEL_OPS = {name: _make_unary(name, f, df, False, reads_output=False) for name, (f, df) in BESSEL.items()}
i0, i0e, i1, i1e = (BESSEL_OPS[n][1] for n in BESSEL)


from engine.ops.special_incomplete import gammainc, gammaincc  # noqa: E402  (it uses the helpers above)

# torch.special's names, for engine.special (built in engine/__init__)
SPECIAL_NAMESPACE = {
    "erf": erf, "erfc": erfc, "erfinv": erfinv, "gammaln": lgamma, "digamma": digamma, "psi": digamma,
    "polygamma": polygamma, "multigammaln": mvlgamma, "xlogy": xlogy, "xlog1py": xlog1py, "expit": sigmoid,
    "logit": logit, "log_softmax": log_softmax, "softmax": softmax, "logsumexp": logsumexp, "log1p": log1p,
    "expm1": expm1, "exp2": _exp2, "ndtr": _ndtr, "ndtri": _ndtri, "round": round,
    "i0": i0, "i0e": i0e, "i1": i1, "i1e": i1e, "gammainc": gammainc, "gammaincc": gammaincc, "entr": _special_entr,
}
