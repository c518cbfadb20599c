"""The regularized incomplete gamma and beta functions, with gradients in x: gammainc, gammaincc, betainc.

Each is a power series or a continued fraction (modified Lentz), whichever converges fast at the point,
run on whole arrays of the input's array module until every element has converged (NaN where one has
not, never a wrong number); computed in float64 and rounded once to the input's dtype. Their gradients
in the shape parameters are not given (torch gives none for gammainc either): backward says so.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Function
from engine.backend import array_module
from engine.ops.elementwise import _float
from engine.ops.special import _HALF_LOG_2PI, _LGAMMA_SERIES, _SHIFT, _lgamma, _polynomial
from engine.tensor import Tensor

_EPS = 1e-16
_STEADY = 3e-16  # a continued fraction's last factor is 1 within this: one float64 step above 1 is 2.2e-16
_TINY = 1e-300
_MAX_ITER = 100_000  # series and continued fractions need O(sqrt(a)) terms: enough up to a ~ 1e8


def _converge(xp, state, step, done, result: int):
    """Run `state = step(state, n)` for n = 1, 2, ... until done(state) holds everywhere (checked every 16 steps);
    then state[result], NaN where it did not converge within _MAX_ITER steps."""
    n = 0
    while n < _MAX_ITER:
        for _ in range(16):
            n += 1
            state = step(state, n)
        finished = done(state)
        if bool(finished.all()):
            break
    return xp.where(finished, state[result], math.nan)


def _lentz_fix(xp, v):
    return xp.where(xp.abs(v) < _TINY, _TINY, v)


def _log_gamma_front(xp, a, x):
    """log(x^a e^-x / Gamma(a)); for a >= 8 through Stirling's series, as a (log1p(t) - t) + ... with
    t = (x - a) / a, whose error grows with |x - a| rather than with a log x (which loses 1e-9 at a ~ 1e3)."""
    direct = a * xp.log(x) - x - _lgamma(xp, a)
    big = xp.where(a >= _SHIFT, a, _SHIFT)
    t = (x - big) / big
    stirling = big * (xp.log1p(t) - t) + 0.5 * xp.log(big) - _HALF_LOG_2PI - _stirling_rest(xp, big)
    return xp.where(a >= _SHIFT, stirling, direct)


def _gamma_series(xp, a, x):
    """P(a, x) by its power series (for x < a + 1): x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a+1) ... (a+n))."""
    def step(state, n):
        total, term = state
        term = term * x / (a + n)
        return total + term, term

    total = _converge(xp, (xp.ones_like(x), xp.ones_like(x)), step, lambda s: xp.abs(s[1]) <= _EPS * xp.abs(s[0]), 0)
    return total * xp.exp(_log_gamma_front(xp, a, x)) / a


def _continued_fraction(xp, b0, term):
    """b0 + a1 / (b1 + a2 / (b2 + ...)) where term(n) gives (a_n, b_n), by the modified Lentz method: the
    value is built up as a product of factors C_n D_n (forward ratios), stopping where each is 1 to within
    _STEADY; a zero denominator on the way is nudged to _TINY."""
    def step(state, n):
        value, c, d, _ = state
        an, bn = term(n)
        d = 1 / _lentz_fix(xp, bn + an * d)
        c = _lentz_fix(xp, bn + an / c)
        factor = c * d
        return value * factor, c, d, factor

    first = _lentz_fix(xp, b0 + xp.zeros_like(b0))
    zeros = xp.zeros_like(first)
    return _converge(xp, (first, first, zeros, zeros), step, lambda s: xp.abs(s[3] - 1) <= _STEADY, 0)


def _gamma_fraction(xp, a, x):
    """Q(a, x) (for x >= a + 1) = x^a e^-x / Gamma(a) / F, with the continued fraction
    F = (x + 1 - a) - 1 (1 - a) / ((x + 3 - a) - 2 (2 - a) / ((x + 5 - a) - ...))."""
    fraction = _continued_fraction(xp, x + 1 - a, lambda n: (-n * (n - a), x + (2 * n + 1) - a))
    return xp.exp(_log_gamma_front(xp, a, x)) / fraction


def _split(xp, a, x, series, fraction, fraction_gives_rest):
    """series(a, x) where x < a + 1 and fraction(a, x) elsewhere, each on its own elements only."""
    use_series = x < a + 1
    out = xp.empty_like(x)
    out[use_series] = series(xp, a[use_series], x[use_series])
    rest = fraction(xp, a[~use_series], x[~use_series])
    out[~use_series] = 1 - rest if fraction_gives_rest else rest
    return out


def _incomplete_gamma(xp, a, x, upper):
    """P(a, x) (or Q(a, x) if `upper`) in float64, with PyTorch's values at the edges of the domain."""
    a, x = xp.broadcast_arrays(a.astype(np.float64), x.astype(np.float64))
    inside = (a > 0) & (x > 0) & xp.isfinite(a) & xp.isfinite(x)
    a_in, x_in = xp.where(inside, a, 1.0), xp.where(inside, x, 1.0)
    with np.errstate(all="ignore"):
        # the series gives P and the fraction Q: each where it converges; the other one is 1 minus it
        found = _split(xp, a_in, x_in, _gamma_series, _gamma_fraction, not upper)
        if upper:
            found = xp.where(x_in < a_in + 1, 1 - found, found)
    # P(0, x > 0) = 1, P(a, 0) = 0, P(inf, x) = 0, P(a, inf) = 1, NaN for negative or undefined arguments
    lower = xp.where(a == 0, xp.where(x > 0, 1.0, math.nan), xp.where(x == 0, 0.0, math.nan))
    lower = xp.where((a > 0) & xp.isinf(a), xp.where(xp.isinf(x), math.nan, 0.0), lower)
    lower = xp.where((a > 0) & xp.isfinite(a) & (x > 0) & xp.isinf(x), 1.0, lower)
    lower = xp.where((a < 0) | (x < 0) | xp.isnan(a) | xp.isnan(x), math.nan, lower)
    return xp.where(inside, found, 1 - lower if upper else lower)


def _gamma_density(xp, a, x):
    """x^(a-1) e^-x / Gamma(a): the derivative of P(a, x) in x."""
    with np.errstate(all="ignore"):
        return xp.exp(xlogy_array(xp, a - 1, x) - x - _lgamma(xp, a))


def xlogy_array(xp, x, y):
    """x * log(y) with 0 where x == 0, on raw arrays."""
    return xp.where(x == 0, 0.0, x * xp.log(xp.where(x == 0, 1.0, y)))


def _float_operands(*operands):
    """(xp, the floating dtype of the array operands, every operand as a floating array of xp)."""
    arrays = [_float(v) for v in operands if hasattr(v, "dtype")]
    xp = array_module(arrays[0])
    return xp, arrays[0].dtype, [_float(v) if hasattr(v, "dtype") else xp.asarray(float(v)) for v in operands]


class IncompleteGamma(Function):
    """The regularized lower (P) or upper (Q) incomplete gamma function; differentiable in x only, as PyTorch."""

    promotes = True

    def forward(ctx, a, x):
        xp, dtype, (a, x) = _float_operands(a, x)
        ctx.save(a, x)
        return _incomplete_gamma(xp, a, x, ctx.upper).astype(dtype)

    def backward(ctx, grad):
        if ctx.needs_input_grad[0]:
            raise NotImplementedError(f"{ctx.op}: the derivative in the first argument (input, the shape a) is not "
                                      "implemented, as in PyTorch; detach() it")
        a, x = ctx.saved
        density = _gamma_density(array_module(grad), a, x).astype(grad.dtype)
        return None, (-grad if ctx.upper else grad) * density


def gammainc(input: Tensor, other: Tensor) -> Tensor:
    """The regularized lower incomplete gamma function P(input, other), as torch.special.gammainc."""
    return IncompleteGamma.apply(input, other, upper=False, op="gammainc")


def gammaincc(input: Tensor, other: Tensor) -> Tensor:
    """The regularized upper incomplete gamma function Q(input, other) = 1 - P, as torch.special.gammaincc."""
    return IncompleteGamma.apply(input, other, upper=True, op="gammaincc")


def _stirling_rest(xp, a):
    """lgamma(a) minus its Stirling approximation (a - 1/2) log a - a + log(2 pi) / 2, for a >= 8."""
    inv = 1 / a
    return inv * _polynomial(_LGAMMA_SERIES, inv * inv)


def _log_beta_front(xp, a, b, x):
    """log(x^a (1-x)^b / B(a, b)); for a, b >= 8 through Stirling's series, in terms of x - a / (a + b), which
    keeps the error from growing with a and b (the three lgammas lose 1e-12 at a + b ~ 3000)."""
    direct = a * xp.log(x) + b * xp.log1p(-x) - _lgamma(xp, a) - _lgamma(xp, b) + _lgamma(xp, a + b)
    big = (a >= _SHIFT) & (b >= _SHIFT)
    a8, b8 = xp.where(big, a, _SHIFT), xp.where(big, b, _SHIFT)
    total = a8 + b8
    p = a8 / total
    stirling = (a8 * xp.log1p((x - p) / p) + b8 * xp.log1p((p - x) / (1 - p)) + 0.5 * xp.log(a8 * b8 / total)
                - _HALF_LOG_2PI - _stirling_rest(xp, a8) - _stirling_rest(xp, b8) + _stirling_rest(xp, total))
    return xp.where(big, stirling, direct)


def _beta_fraction(xp, a, b, x):
    """I_x(a, b) (for x < (a+1) / (a+b+2)) = x^a (1-x)^b / (a B(a, b)) / F, with the continued fraction
    F = 1 + t1 / (1 + t2 / (1 + ...)): t(2m+1) = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),
    t(2m) = m (b-m) x / ((a+2m-1)(a+2m))."""
    def term(n):
        m = n // 2
        if n % 2:
            return -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)), 1.0
        return m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)), 1.0

    return xp.exp(_log_beta_front(xp, a, b, x)) / (a * _continued_fraction(xp, xp.ones_like(x), term))


def _incomplete_beta(xp, a, b, x):
    """I_x(a, b) in float64: 0 for x <= 0, 1 for x >= 1, NaN for a or b not positive."""
    a, b, x = xp.broadcast_arrays(*(v.astype(np.float64) for v in (a, b, x)))
    inside = (a > 0) & (b > 0) & (x > 0) & (x < 1) & xp.isfinite(a) & xp.isfinite(b)
    a_in, b_in, x_in = xp.where(inside, a, 1.0), xp.where(inside, b, 1.0), xp.where(inside, x, 0.5)
    flip = x_in >= (a_in + 1) / (a_in + b_in + 2)  # I_x(a, b) = 1 - I_(1-x)(b, a) converges faster there
    out = xp.empty_like(x_in)
    with np.errstate(all="ignore"):
        out[~flip] = _beta_fraction(xp, a_in[~flip], b_in[~flip], x_in[~flip])
        out[flip] = 1 - _beta_fraction(xp, b_in[flip], a_in[flip], 1 - x_in[flip])
    edge = xp.where(x <= 0, 0.0, xp.where(x >= 1, 1.0, math.nan))
    edge = xp.where((a > 0) & (b > 0), edge, math.nan)
    return xp.where(inside, out, edge)


class IncompleteBeta(Function):
    """The regularized incomplete beta function I_x(a, b); differentiable in x only."""

    op = "betainc"
    promotes = True

    def forward(ctx, a, b, x):
        xp, dtype, (a, b, x) = _float_operands(a, b, x)
        ctx.save(a, b, x)
        return _incomplete_beta(xp, a, b, x).astype(dtype)

    def backward(ctx, grad):
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            raise NotImplementedError("betainc: the derivative in the shapes a and b is not implemented; detach() "
                                      "them to differentiate in x only")
        a, b, x = ctx.saved
        xp = array_module(grad)
        with np.errstate(all="ignore"):
            log_density = (xlogy_array(xp, a - 1, x) + xlogy_array(xp, b - 1, 1 - x) + _lgamma(xp, a + b)
                           - _lgamma(xp, a) - _lgamma(xp, b))
            density = xp.where((x < 0) | (x > 1), 0.0, xp.exp(log_density))
        return None, None, grad * density.astype(grad.dtype)


def betainc(a: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """The regularized incomplete beta function I_x(a, b): the CDF of Beta(a, b) at x (as scipy.special.betainc)."""
    return IncompleteBeta.apply(a, b, x)
