"""Activations, softmax and dropout: each one Function, its backward beside its forward.

Elementwise activations are data: one row per op with its forward (the output plus the arrays beyond the input
its backward needs) and its derivative. Parameters such as `negative_slope` arrive as ctx options. The busy ones
(gelu, silu, softplus) are written as passes over one buffer (out=, +=): each temporary of a large array is a pass
over memory of its own, and a where() on mixed signs mispredicts a branch per value, so they use neither.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from engine import kernels
from engine import random as _random
from engine.autograd.function import Function, ShapeError
from engine.backend import array_module, blockwise, device_of, max_kept, row_dot, row_max, row_sum
from engine.ops import elementwise as _elementwise
from engine.ops.nn import require_float
from engine.tensor import Tensor
from engine.user_warning import warn

__all__ = ["dropout", "dropout2d", "elu", "gelu", "glu", "hardtanh", "leaky_relu", "log_softmax", "logsigmoid",
           "prelu", "relu", "relu6", "silu", "softmax", "softplus"]

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_GELU_K, _GELU_C = math.sqrt(2 / math.pi), 0.044715  # tanh form: 0.5 x (1 + tanh(K (x + C x^3)))

# numpy has no vectorised erf and the engine does not depend on scipy, so erfc is computed here.
# For z >= 0, erfc(z) = t * exp(-z^2 + P(u)) with t = 2 / (2 + z) and u = 2t - 1 (the form of Numerical
# Recipes' erfc). These are the Chebyshev coefficients of P on [-1, 1], fitted for this file with mpmath
# at 40 digits; they fall geometrically, so a dtype needs only those above its epsilon.
_ERFC_CHEBYSHEV = (
    -0.6513268598908547, 0.6419697923564902, 0.019476473204185836, -0.009561514786808632,
    -0.0009465953444820369, 0.00036683949785276145, 4.252332480690777e-05, -2.0278578112534242e-05,
    -1.6242900046470256e-06, 1.3036558355805232e-06, 1.5626441722066142e-08, -8.523809591492654e-08,
    6.5290544390988515e-09, 5.059343495551469e-09, -9.91364156493033e-10, -2.273651222931836e-10,
    9.646791102015527e-11, 2.3940380830391146e-12, -6.886027526497553e-12, 8.944879273090725e-13,
    3.130921399342958e-13, -1.1270822361367252e-13, 3.810905255189232e-16, 7.106097613609237e-15,
    -1.5230282014571043e-15, -9.457494571291233e-17, 1.210237189224279e-16, -2.816663087747177e-17,
)


@functools.cache
def _erfc_terms(dtype) -> tuple[float, ...]:
    """The Chebyshev coefficients that matter at this dtype's precision (13 for float32, 28 for float64)."""
    eps = np.finfo(dtype).eps / 8
    last = max(k for k, c in enumerate(_ERFC_CHEBYSHEV) if abs(c) > eps)
    return _ERFC_CHEBYSHEV[: last + 1]


@functools.cache
def _erfc_powers(dtype) -> tuple[float, ...]:
    """The same sum as a polynomial in u, highest power first: Horner's rule takes 2 passes a term to Clenshaw's 3,
    and loses nothing here, as the powers' coefficients stay small (their sizes sum to 1.5)."""
    return tuple(np.polynomial.chebyshev.cheb2poly(_erfc_terms(dtype))[::-1].tolist())


def _erfc_nonnegative(xp, z):
    """erfc(z) for z >= 0, with full relative precision in the tail; a large array on the CPU goes a cache-sized
    block at a time (backend.blockwise), so that the sum's ~30 passes run in cache, not memory."""
    return blockwise(lambda block: _erfc_sum(xp, block), z)


def _erfc_sum(xp, z):
    """erfc(z) for z >= 0 from its Chebyshev sum (the comment above _ERFC_CHEBYSHEV), by Horner's rule in place."""
    powers = _erfc_powers(z.dtype)
    flat = z.reshape(-1)  # an array even for a 0-d z, whose arithmetic gives numpy scalars that `out=` refuses
    t = flat + 2
    xp.divide(2, t, out=t)
    u = t * 2
    u -= 1
    p = u * powers[0]
    p += powers[1]
    for c in powers[2:]:
        p *= u
        p += c
    p -= xp.multiply(flat, flat, out=u)
    xp.exp(p, out=p)
    p *= t
    return p.reshape(z.shape)


# Float32 and narrower take Phi(x) = (1 + tanh(x R(x^2))) / 2, one tanh (numpy's cheapest transcendental) where
# the erfc sum takes ~30 passes and an exp. R is a polynomial in s = x^2, lowest power first, fitted here to
# atanh(erf(x / sqrt(2))) / x on |x| <= 6, minimax in the error it makes in Phi (2.4e-8; in float32 arithmetic
# 9.2e-8, the rounding of tanh's result dominating; PyTorch's float32 gelu is off by up to 1.1e-6). Beyond 6, s is
# held at 36 and tanh is saturated in float32 anyway: x R(36) > 10. What float32 gives up is the relative
# precision of the far negative tail (Phi(-6) = 1e-9), as PyTorch's float32 gelu does.
_PHI_TANH = (0.7978848786263681, 0.03633346945117632, -3.320487390076718e-05, -5.491714778992471e-05,
             3.845684048359376e-06, -1.1341864092282951e-07, 1.9681667652117504e-10, 6.323391892817914e-11,
             -9.806025667738192e-13)
_PHI_TANH_LAST = 36.0


def _one_d(fn, *arrays):
    """fn(*arrays), a 0-d array's computed as a 1-D one: numpy's arithmetic on 0-d arrays gives scalars, which the
    in-place (out=) formulas here cannot write into."""
    if arrays[0].ndim:
        return fn(*arrays)
    got = fn(*(a.reshape(1) for a in arrays))
    return tuple(g.reshape(()) for g in got) if isinstance(got, tuple) else got.reshape(())


def _float32_at_least(fn, x, *more):
    """fn(x, *more), narrower floats computed in float32 and the result rounded back to x's dtype once, as PyTorch's
    CPU kernels compute them (numpy's float16 arithmetic rounds at every step)."""
    if x.dtype.itemsize >= 4:
        return _one_d(fn, x, *more)
    wide = [a.astype(np.float32) for a in (x, *more)]
    return _one_d(fn, *wide).astype(x.dtype)


def _normal_cdf(xp, x):
    """P(N(0, 1) <= x): within 1e-7 in float32, and in float64 accurate in both tails."""
    if not x.ndim:
        return _one_d(lambda a: _normal_cdf(xp, a), x)
    if x.dtype.itemsize <= 4:
        return _normal_cdf_tanh(xp, x)
    return blockwise(lambda block: _normal_cdf_erfc(xp, block), x)


def _normal_cdf_erfc(xp, x):
    """Phi(x) from h = Phi(-|x|) = erfc(|x| / sqrt(2)) / 2: h below 0 and 1 - h above, blended by arithmetic, as
    numpy's where on a random sign mispredicts a branch per value (30-60x the cost of a multiply)."""
    z = xp.abs(x)
    z *= _SQRT_HALF
    h = _erfc_sum(xp, z)
    h *= 0.5
    cdf = h * -2
    cdf += 1
    cdf *= x >= 0
    cdf += h
    return cdf


def _normal_cdf_tanh(xp, x):
    """Phi(x) as (1 + tanh(x R(x^2))) / 2 (the comment above _PHI_TANH), in place."""
    s = x * x
    xp.clip(s, 0, _PHI_TANH_LAST, out=s)
    p = s * _PHI_TANH[-1]
    p += _PHI_TANH[-2]
    for c in _PHI_TANH[-3::-1]:
        p *= s
        p += c
    p *= x
    xp.tanh(p, out=p)
    p += 1
    p *= 0.5
    return p


def _logistic(xp, x):
    """sigmoid(x) as 1 / (1 + exp(-x)): exact in both tails without a select, down to the smallest normal number.
    exp(-x) overflows to inf below about -88 (float32), where the sigmoid is subnormal and this gives 0, so numpy's
    warning about it is silenced."""
    e = xp.negative(x)
    with np.errstate(over="ignore"):
        xp.exp(e, out=e)
    e += 1
    return xp.reciprocal(e, out=e)


def _softplus_of(xp, y):
    """log(1 + exp(y)) as max(y, 0) + log1p(exp(-|y|)), which never overflows (numpy's logaddexp takes 7-13x as
    long)."""
    out = xp.abs(y)
    xp.negative(out, out=out)
    xp.exp(out, out=out)
    xp.log1p(out, out=out)
    out += xp.maximum(y, 0)
    return out


# ---- elementwise activations ------------------------------------------------------------------------
# class -> (op, forward(xp, x, ctx) -> (y, *kept), gradient(xp, grad, ctx, x, *kept)); the node keeps x and `kept`,
# the arrays beyond x that the gradient reads
def _gelu(xp, x, c):
    cdf = _normal_cdf(xp, x)
    return x * cdf, cdf


def _gelu_tanh(xp, x, c):
    th = x * x
    th *= _GELU_C
    th += 1
    th *= x
    th *= _GELU_K
    xp.tanh(th, out=th)  # tanh(K (x + C x^3))
    y = th + 1
    y *= 0.5
    y *= x
    return y, th


def _gelu_grad(xp, g, c, x, cdf):
    d = x * x
    d *= -0.5
    xp.exp(d, out=d)
    d *= x
    d *= _INV_SQRT_2PI  # x times the normal density
    d += cdf
    d *= g
    return d


def _gelu_tanh_grad(xp, g, c, x, th):
    d = x * x
    d *= 3 * _GELU_C
    d += 1
    d *= x
    d *= 0.5 * _GELU_K
    sech2 = th * th
    xp.subtract(1, sech2, out=sech2)
    d *= sech2
    d += 0.5
    d += 0.5 * th
    d *= g
    return d


def _silu(xp, x, c):
    s = _logistic(xp, x)
    return x * s, s


def _silu_grad(xp, g, c, x, s):
    d = xp.subtract(1, s)
    d *= x
    d += 1
    d *= s
    d *= g
    return d


def _softplus(xp, x, c):
    """softplus(beta x) / beta, and x itself where beta x > threshold, as in PyTorch (copied over by a mask: few
    values pass it, where numpy's where would mispredict a branch per value on a mask of mixed signs)."""
    y = x * c.beta
    out = _softplus_of(xp, y)
    out /= c.beta
    xp.copyto(out, x, where=y > c.threshold)
    return (out,)


def _softplus_grad(xp, g, c, x):
    y = x * c.beta
    slope = _logistic(xp, y)
    xp.copyto(slope, 1, where=y > c.threshold)
    slope *= g
    return slope


def nan_to_bound_min(xp, x, bound: float):
    """min(x, bound), and the bound where x is NaN (clip would keep the NaN): numpy's fmin, against a row of bounds, as
    with a scalar it takes 1.7x as long."""
    return xp.fmin(x, xp.full(x.shape[-1:], bound, x.dtype))


def _leaky_relu(xp, x, c):
    """x where x > 0, else slope x: the larger of the two (the smaller for a slope above 1), exactly so."""
    if x.dtype.itemsize < 4:
        return (_float32_at_least(lambda a: _leaky_relu(xp, a, c)[0], x),)
    y = x * c.negative_slope
    (xp.maximum if c.negative_slope <= 1 else xp.minimum)(x, y, out=y)
    return (y,)


def _leaky_relu_grad(xp, g, c, x):
    """g, times the slope where x <= 0 (and where x is NaN, as in PyTorch): the 1s and 0s of x > 0 mapped to 1 and the
    slope by clip, or for a slope outside [0, 1] by (1 - m) slope + m (exact, as one term is 0)."""
    if g.dtype.itemsize < 4:
        return _float32_at_least(lambda g, x: _leaky_relu_grad(xp, g, c, x), g, x)
    slope = (x > 0).astype(g.dtype)
    if 0 <= c.negative_slope <= 1:
        xp.clip(slope, c.negative_slope, 1, out=slope)
    else:
        positive = slope
        slope = xp.subtract(1, positive)
        slope *= c.negative_slope
        slope += positive
    slope *= g
    return slope


def elu_of(xp, x, alpha: float, scale: float = 1.0, input_div: float = 1.0):
    """scale * (x where x > 0, else alpha expm1(x / input_div)): elu, selu and celu, as PyTorch's one kernel writes
    them. Computed as max(x, 0) + alpha expm1(min(x, 0) / input_div), exact, as one of the terms is 0; min(x, 0)
    keeps expm1 from overflowing for large x."""
    if x.dtype.itemsize < 4:
        return _float32_at_least(lambda a: elu_of(xp, a, alpha, scale, input_div), x)
    neg = xp.clip(x, -math.inf, 0)  # numpy's minimum(x, 0) takes 3x as long as clip
    if input_div != 1:
        neg /= input_div
    xp.expm1(neg, out=neg)
    neg *= alpha
    y = xp.clip(x, 0, math.inf)
    y += neg
    if scale != 1:
        y *= scale
    return y


def elu_grad(xp, g, x, alpha: float, scale: float = 1.0, input_div: float = 1.0):
    """g * scale * (1 where x > 0, else alpha / input_div * exp(x / input_div)), the derivative of `elu_of`; a NaN
    input takes the slope of x > 0, as in PyTorch."""
    if g.dtype.itemsize < 4:
        return _float32_at_least(lambda g, x: elu_grad(xp, g, x, alpha, scale, input_div), g, x)
    slope = nan_to_bound_min(xp, x, 0)
    if input_div != 1:
        slope /= input_div
    xp.exp(slope, out=slope)  # 1 where x > 0
    if alpha != input_div:  # then 1 is not alpha / input_div: where x > 0, multiply by 0 and add 1 (exact)
        slope *= alpha / input_div
        negative = x <= 0
        slope *= negative
        slope += ~negative
    if scale != 1:
        slope *= scale
    slope *= g
    return slope


# Backward keeps only what its formula needs (never the output unless PyTorch does too), so changing
# an activation's output in place stays legal, as in PyTorch.
ACTIVATIONS = {
    "Gelu": ("gelu", _gelu, _gelu_grad),
    "GeluTanh": ("gelu", _gelu_tanh, _gelu_tanh_grad),
    "Silu": ("silu", _silu, _silu_grad),
    "LeakyRelu": ("leaky_relu", _leaky_relu, _leaky_relu_grad),
    "Elu": ("elu", lambda xp, x, c: (elu_of(xp, x, c.alpha),), lambda xp, g, c, x: elu_grad(xp, g, x, c.alpha)),
    "Softplus": ("softplus", _softplus, _softplus_grad),
    # at the bounds themselves the gradient is 0, and a NaN passes it on, as in PyTorch
    "Hardtanh": ("hardtanh",
                 lambda xp, x, c: (xp.clip(x, c.min_val, c.max_val).astype(x.dtype, copy=False),),
                 lambda xp, g, c, x: _elementwise.zero_where(g, (x <= c.min_val) | (x >= c.max_val))),
}


class Activation(Function):
    """An elementwise activation whose formula and derivative come from the ACTIVATIONS table."""

    fused = None  # on CUDA, engine.kernels' one-kernel forward and backward of this formula

    def forward(ctx, x):
        require_float(ctx.op, x)
        xp = array_module(x)
        ctx.fused = kernels.get(type(ctx).__name__, xp)
        if ctx.fused is not None:
            ctx.save(x)
            return ctx.fused.forward(ctx, x)
        y, *kept = _one_d(lambda a: ctx.f(xp, a, ctx), x)
        ctx.save(x, *kept)
        return y

    def backward(ctx, grad):
        if ctx.fused is not None:
            return ctx.fused.backward(ctx, grad, *ctx.saved)
        xp = array_module(grad)
        return _one_d(lambda g, *saved: ctx.df(xp, g, ctx, *saved), grad, *ctx.saved)


ACTIVATION_OPS = {
    name: type(name, (Activation,), {"op": op, "f": staticmethod(f), "df": staticmethod(df),
                                     "__doc__": f"Elementwise {op}."})
    for name, (op, f, df) in ACTIVATIONS.items()
}
Gelu, GeluTanh, Silu, LeakyRelu, Elu, Softplus, Hardtanh = (ACTIVATION_OPS[n] for n in ACTIVATIONS)
Relu6 = type("Relu6", (Hardtanh,), {"op": "relu6", "__doc__": "Elementwise relu6: hardtanh from 0 to 6."})


def _maybe_inplace(x: Tensor, inplace: bool, fn) -> Tensor:
    # inplace=True goes through Tensor's in-place machinery: leaf checks and the version counter
    return x._write(fn) if inplace else fn(x)


def integral(x: Tensor) -> bool:
    """Whether x holds integers (not bools): the clipping activations keep them, with their float arguments cut
    toward zero (hardtanh(x, -1.5, 1.5) of int64 clips to [-1, 1] and stays int64), as PyTorch's integer kernels."""
    return x.array.dtype.kind in "iu"


def _hardtanh_of(x: Tensor, cls, min_val: float, max_val: float) -> Tensor:
    if integral(x):
        return _elementwise.clamp(x, int(min_val), int(max_val))
    return cls.apply(x, min_val=min_val, max_val=max_val)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0), elementwise."""
    return input._write(_elementwise.relu) if inplace else _elementwise.relu(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (Phi the standard normal CDF); approximate='tanh' uses the tanh formula."""
    if approximate == "none":
        return Gelu.apply(input)
    if approximate == "tanh":
        return GeluTanh.apply(input)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x), elementwise."""
    return _maybe_inplace(input, inplace, Silu.apply)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return _maybe_inplace(input, inplace, lambda t: LeakyRelu.apply(t, negative_slope=negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return _maybe_inplace(input, inplace, lambda t: Elu.apply(t, alpha=alpha))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]; the gradient is 0 outside the open interval."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val cannot be greater than max_val (got {min_val} and {max_val})")
    return _maybe_inplace(input, inplace, lambda t: _hardtanh_of(t, Hardtanh, min_val, max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6), elementwise."""
    return _maybe_inplace(input, inplace, lambda t: _hardtanh_of(t, Relu6, 0.0, 6.0))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""
    return Softplus.apply(input, beta=beta, threshold=threshold)


# ---- softmax and log_softmax ---------------------------------------------------------------------
# Each computes in one new array, in place from there. Over the last dim of C-contiguous rows (attention's and a
# classifier's case) the row reductions are backend's (argmax and BLAS), 2-4x faster than numpy's per-row ones.
# A narrower float is computed in float32 and rounded once, as PyTorch's CPU kernels do.
def _rows(x, dim) -> bool:
    """Whether reducing `x` over `dim` is reducing the rows backend.row_max and row_sum serve."""
    return dim == x.ndim - 1 and x.size > 0 and x.flags.c_contiguous and x.dtype.itemsize >= 4


def _max_over(x, dim):
    return row_max(x) if _rows(x, dim) else max_kept(x, dim)


def _sum_over(x, dim):
    return row_sum(x) if _rows(x, dim) else x.sum(axis=dim, keepdims=True)


def _dot_over(a, b, dim):
    """sum(a * b) over `dim`, kept."""
    if _rows(a, dim) and _rows(b, dim):
        return row_dot(a, b)
    return (a * b).sum(axis=dim, keepdims=True)


def _exp_needs_shift(xp, x, top) -> bool:
    """Whether exp(x) must be taken as exp(x - max) over rows whose maxima are `top`. Not where every max lies within
    half the exponent range either side of 0 (+-43.7 in float32), on the CPU: no sum of exps overflows there, the terms
    that underflow are below e^-44 of the row's largest, and the subtraction (a pass over memory, a fifth of a
    softmax's time) is saved. The check costs ~2 us, more than it saves below a few thousand values; on a GPU it
    would wait for the device, so there the shift is taken always."""
    if xp is not np or x.size < 4096:
        return True
    bound = -math.log(np.finfo(top.dtype).tiny) / 2
    return not np.abs(top).max() <= bound  # NaN in a row is not within the bound either


def _softmax(x, dim, zero_dead_rows: bool):
    """exp(x - max) / its sum over `dim`: shifted where exp(x) could overflow or underflow."""
    xp = array_module(x)
    top = _max_over(x, dim)
    if zero_dead_rows:
        dead = top == -math.inf
        top = xp.where(dead, 0, top)  # one value a row: where()'s mispredicted branches cost nothing here
    if _exp_needs_shift(xp, x, top):
        y = xp.subtract(x, top)
        xp.exp(y, out=y)
    else:
        y = xp.exp(x)
    total = _sum_over(y, dim)
    y /= xp.where(dead, 1, total) if zero_dead_rows else total
    return y


class Softmax(Function):
    def forward(ctx, x, zero_dead_rows=False):
        require_float(ctx.op, x)
        y = _float32_at_least(lambda a: _softmax(a, ctx.dim, zero_dead_rows), x)
        ctx.save(y)
        return y

    def backward(ctx, grad):
        (y,) = ctx.saved
        dim = ctx.dim

        def grad_of(g, y):  # y (g - sum(g y)), as PyTorch's kernel: a product fewer than g y - y sum(g y)
            gx = array_module(g).subtract(g, _dot_over(g, y, dim))
            gx *= y
            return gx

        return _float32_at_least(grad_of, grad, y)


class AttentionSoftmax(Softmax):
    """Softmax whose rows of -inf alone (a query every key is masked from: an all-padding sequence) are zeros, as
    torch's scaled_dot_product_attention gives them, where a plain softmax gives NaN; their gradient is zero."""

    op = "softmax"

    def forward(ctx, x):
        return Softmax.forward(ctx, x, zero_dead_rows=True)


class LogSoftmax(Function):
    op = "log_softmax"

    def forward(ctx, x):
        require_float(ctx.op, x)
        dim = ctx.dim

        def log_softmax(x):  # (x - max) - log(sum(exp(x - max))), always shifted: x - log(sum(exp(x))) would round
            xp = array_module(x)  # an output near 0 to the ulp of the log-sum-exp (1e-7 off torch's at 0.006)
            y = xp.subtract(x, _max_over(x, dim))
            y -= xp.log(_sum_over(xp.exp(y), dim))
            return y

        y = _float32_at_least(log_softmax, x)
        ctx.save(y)
        return y

    def backward(ctx, grad):
        (y,) = ctx.saved
        dim = ctx.dim

        def grad_of(g, y):  # g - exp(y) sum(g)
            xp = array_module(g)
            gx = xp.exp(y)
            gx *= _sum_over(g, dim)
            return xp.subtract(g, gx, out=gx)

        return _float32_at_least(grad_of, grad, y)


def _softmax_dim(op: str, x: Tensor, dim) -> int | None:
    if dim is None:  # PyTorch's deprecated implicit choice: dim 0 of a 0-, 1- or 3-d input (batch first?), else dim 1
        dim = 0 if x.ndim in (0, 1, 3) else 1
        batch = " (the batch, if the first dim is one: pass the dim of the classes)" if x.ndim == 3 else ""
        warn(f"{op} without dim takes dim={dim} for an input of shape {tuple(x.shape)}{batch}; this implicit "
             f"choice is deprecated, as in PyTorch: pass dim={dim} (or the dim you mean) explicitly")
    ndim = max(x.ndim, 1)  # a 0-d tensor accepts dim 0 or -1, as in PyTorch
    if not -ndim <= dim < ndim:
        raise ShapeError(f"{op}: dim {dim} is out of range for a tensor of shape {tuple(x.shape)}")
    return dim % ndim if x.ndim else None  # axis None reduces a 0-d array


def softmax_options(op: str, x: Tensor, dim) -> dict:
    """A softmax-like op's options: its dim, and implicit_dim when the deprecated default chose it (the debugger names
    a default that normalises over the batch: engine.debug.flows)."""
    options = {"dim": _softmax_dim(op, x, dim)}
    if dim is None:
        options["implicit_dim"] = True
    return options


def softmax(input: Tensor, dim: int | None = None, *, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim`, computed stably; `dtype` casts the input first."""
    if dtype is not None:
        input = input.to(dtype)
    return Softmax.apply(input, **softmax_options("softmax", input, dim))


def log_softmax(input: Tensor, dim: int | None = None, *, dtype=None) -> Tensor:
    """x - logsumexp(x) along `dim`; `dtype` casts the input first."""
    if dtype is not None:
        input = input.to(dtype)
    return LogSoftmax.apply(input, **softmax_options("log_softmax", input, dim))


# ---- dropout --------------------------------------------------------------------------------------
class Dropout(Function):
    channels = False  # dropout2d: one draw per (sample, channel), shared by its whole feature map

    def forward(ctx, x):
        require_float(ctx.op, x)
        xp = array_module(x)
        shape = (*x.shape[:-2], 1, 1) if ctx.channels else x.shape
        # the kept mask carries the 1/(1-p) scale already, so backward is one product; p = 1 draws nothing
        rng = _random.generator(device_of(x))
        if ctx.p == 1:
            kept = False
        elif ctx.channels:
            kept = _random.below(rng, 1 - ctx.p, shape)
        else:  # in x's memory order, as torch fills its empty_like (a transposed attention output)
            kept = _random.in_memory_order(x, lambda shape: _random.below(rng, 1 - ctx.p, shape))
        mask = xp.multiply(kept, 1 / (1 - ctx.p) if ctx.p < 1 else 0.0, dtype=x.dtype)
        ctx.save(mask)
        return x * mask

    def backward(ctx, grad):
        (mask,) = ctx.saved
        return grad * mask


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p); the identity when not training."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a probability between 0 and 1, got {p}")
    if not training or p == 0:
        return input
    return _maybe_inplace(input, inplace, lambda t: Dropout.apply(t, p=p))


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, H, W) or (C, H, W) input with probability p, scaling the rest by 1/(1-p)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout2d: p must be a probability between 0 and 1, got {p}")
    if input.ndim not in (3, 4):
        raise ShapeError(f"dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                         f"{tuple(input.shape)}")
    if not training or p == 0:
        return input
    return _maybe_inplace(input, inplace, lambda t: Dropout.apply(t, p=p, channels=True))


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), without overflow."""
    return _elementwise.neg(softplus(_elementwise.neg(input)))


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """The gated linear unit: the first half of `dim` times the sigmoid of the second half."""
    d = dim + input.ndim if dim < 0 else dim
    if not 0 <= d < input.ndim:
        raise IndexError(f"glu: dimension {dim} is out of range for a {input.ndim}-d tensor")
    if input.shape[d] % 2:
        raise ShapeError(f"glu: halving dimension must be even, but dimension {d} is size {input.shape[d]}")
    a, b = input.chunk(2, dim=d)
    return a * _elementwise.sigmoid(b)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, weight * x elsewhere; a weight of C values is one slope per channel (dim 1)."""
    if weight.numel() == 1:  # one slope for every element: the result keeps the input's shape, a 0-d one too
        weight = weight.reshape(())
    else:
        channels = input.shape[1] if input.ndim > 1 else input.shape[0]
        if input.ndim == 0 or weight.numel() != channels:
            raise ShapeError(f"prelu: {weight.numel()} slopes for an input of shape {tuple(input.shape)}; "
                             f"expected one, or one per channel (dim 1)")
        if input.ndim > 1:
            weight = weight.reshape((1, channels) + (1,) * (input.ndim - 2))
    return _elementwise.where(input > 0, input, weight * input)
