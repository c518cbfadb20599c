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
from engine.backend import array_module, blockwise, device_of
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


# Backward keeps only what its formula needs (never the output unless PyTorch does too), so changing
# an activation's output in place stays legal, as in PyTorch.
ACTIVATIONS = {
    "Gelu": ("gelu", _gelu, _gelu_grad),
    "GeluTanh": ("gelu", _gelu_tanh, _gelu_tanh_grad),
    "Silu": ("silu", _silu, _silu_grad),
    "LeakyRelu": ("leaky_relu",
                  lambda xp, x, c: (xp.where(x > 0, x, x * c.negative_slope),),
                  lambda xp, g, c, x: xp.where(x > 0, g, g * c.negative_slope)),
    # expm1/exp of min(x, 0): the branch not taken must not overflow for large x
    "Elu": ("elu",
            lambda xp, x, c: (xp.where(x > 0, x, c.alpha * xp.expm1(xp.minimum(x, 0))),),
            lambda xp, g, c, x: xp.where(x > 0, g, g * c.alpha * xp.exp(xp.minimum(x, 0)))),
    "Softplus": ("softplus", _softplus, _softplus_grad),
    # at the bounds themselves the gradient is 0, as in PyTorch
    "Hardtanh": ("hardtanh",
                 lambda xp, x, c: (xp.clip(x, c.min_val, c.max_val).astype(x.dtype, copy=False),),
                 lambda xp, g, c, x: g * ((x > c.min_val) & (x < c.max_val))),
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
    return _maybe_inplace(input, inplace, lambda t: Hardtanh.apply(t, min_val=min_val, max_val=max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6), elementwise."""
    return _maybe_inplace(input, inplace, lambda t: Relu6.apply(t, min_val=0.0, max_val=6.0))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""
    return Softplus.apply(input, beta=beta, threshold=threshold)


# ---- softmax and log_softmax ---------------------------------------------------------------------
class Softmax(Function):
    def forward(ctx, x):
        require_float(ctx.op, x)
        xp = array_module(x)
        y = xp.exp(x - x.max(axis=ctx.dim, keepdims=True))  # shifted so exp never overflows
        y /= y.sum(axis=ctx.dim, keepdims=True)
        ctx.save(y)
        return y

    def backward(ctx, grad):
        (y,) = ctx.saved
        gx = grad * y
        gx -= y * gx.sum(axis=ctx.dim, keepdims=True)
        return gx


class AttentionSoftmax(Softmax):
    """Softmax whose rows of -inf alone (a query every key is masked from: an all-padding sequence) are zeros, as
    torch's scaled_dot_product_attention gives them, where a plain softmax gives NaN; their gradient is zero."""

    op = "softmax"

    def forward(ctx, x):
        require_float(ctx.op, x)
        xp = array_module(x)
        top = x.max(axis=ctx.dim, keepdims=True)
        dead = top == -math.inf
        y = xp.exp(x - xp.where(dead, 0, top))
        total = y.sum(axis=ctx.dim, keepdims=True)
        y /= xp.where(dead, 1, total)
        ctx.save(y)
        return y


class LogSoftmax(Function):
    op = "log_softmax"

    def forward(ctx, x):
        require_float(ctx.op, x)
        xp = array_module(x)
        y = x - x.max(axis=ctx.dim, keepdims=True)
        y -= xp.log(xp.exp(y).sum(axis=ctx.dim, keepdims=True))
        ctx.save(y)
        return y

    def backward(ctx, grad):
        (y,) = ctx.saved
        gx = array_module(y).exp(y)
        gx *= -grad.sum(axis=ctx.dim, keepdims=True)
        gx += grad
        return gx


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
    if weight.numel() > 1:
        channels = input.shape[1] if input.ndim > 1 else input.shape[0]
        if input.ndim == 0 or weight.numel() != channels:
            raise ShapeError(f"prelu: {weight.numel()} slopes for an input of shape {tuple(input.shape)}; "
                             f"expected one, or one per channel (dim 1)")
        if input.ndim > 1:
            weight = weight.reshape((1, channels) + (1,) * (input.ndim - 2))
    return _elementwise.where(input > 0, input, weight * input)
