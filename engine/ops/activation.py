"""Activations, softmax and dropout: each one Function whose backward is a single expression.

Elementwise activations are data: one row per op with its forward (the output plus the arrays its
backward needs) and its derivative. Parameters such as `negative_slope` arrive as ctx options.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from engine import kernels
from engine import random as _random
from engine.autograd.function import Function, ShapeError
from engine.backend import array_module, device_of
from engine.ops import elementwise as _elementwise
from engine.ops.elementwise import _sigmoid
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


_CHUNK = 1 << 15  # values per pass over a large array on the CPU: its ~40 passes then stay in a core's cache


def _erfc_nonnegative(xp, z):
    """erfc(z) for z >= 0, with full relative precision in the tail. A large array on the CPU goes a chunk at a
    time: the sum's ~40 passes then run in cache, not memory (gelu's cdf of 1M float32 values: 16 ms -> 8 ms)."""
    if xp is not np or z.size <= 2 * _CHUNK:
        return _erfc_sum(xp, z)
    flat = z.reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _CHUNK):
        out[start:start + _CHUNK] = _erfc_sum(np, flat[start:start + _CHUNK])
    return out.reshape(z.shape)


def _erfc_sum(xp, z):
    """erfc(z) for z >= 0 from its Chebyshev sum (the comment above _ERFC_CHEBYSHEV)."""
    coeffs = _erfc_terms(z.dtype)
    t = 2 / (2 + z)
    u2 = 4 * t - 2  # 2u, the multiplier of Clenshaw's recurrence
    # Clenshaw: b_k = c_k + 2u b_{k+1} - b_{k+2}; three rotating buffers avoid a temporary per term
    b0, b1, b2 = xp.empty_like(z), xp.zeros_like(z), xp.zeros_like(z)
    for c in coeffs[:0:-1]:
        xp.multiply(u2, b1, out=b0)
        b0 -= b2
        b0 += c
        b0, b1, b2 = b2, b0, b1
    p = 0.5 * u2 * b1 - b2 + coeffs[0]
    return t * xp.exp(p - z * z)


def _normal_cdf(xp, x):
    """P(N(0, 1) <= x), accurate in both tails."""
    half_tail = 0.5 * _erfc_nonnegative(xp, xp.abs(x) * _SQRT_HALF)
    return xp.where(x < 0, half_tail, 1 - half_tail)


# ---- elementwise activations ------------------------------------------------------------------------
# class -> (op, forward(xp, x, ctx) -> (y, arrays to save), gradient(xp, grad, ctx, *saved))
def _gelu(xp, x, c):
    cdf = _normal_cdf(xp, x)
    return x * cdf, (x, cdf)


def _gelu_tanh(xp, x, c):
    th = xp.tanh(_GELU_K * (x + _GELU_C * x * x * x))
    return 0.5 * x * (1 + th), (x, th)


def _silu(xp, x, c):
    s = _sigmoid(xp, x)
    return x * s, (x, s)


# Backward keeps only what its formula needs (never the output unless PyTorch does too), so changing
# an activation's output in place stays legal, as in PyTorch.
ACTIVATIONS = {
    "Gelu": ("gelu", _gelu,
             lambda xp, g, c, x, cdf: g * (cdf + x * _INV_SQRT_2PI * xp.exp(-0.5 * x * x))),
    "GeluTanh": ("gelu", _gelu_tanh,
                 lambda xp, g, c, x, th: g * (0.5 * (1 + th) + 0.5 * _GELU_K * x * (1 - th * th)
                                              * (1 + 3 * _GELU_C * x * x))),
    "Silu": ("silu", _silu, lambda xp, g, c, x, s: g * s * (1 + x * (1 - s))),
    "LeakyRelu": ("leaky_relu",
                  lambda xp, x, c: (xp.where(x > 0, x, x * c.negative_slope), (x,)),
                  lambda xp, g, c, x: xp.where(x > 0, g, g * c.negative_slope)),
    # expm1/exp of min(x, 0): the branch not taken must not overflow for large x
    "Elu": ("elu",
            lambda xp, x, c: (xp.where(x > 0, x, c.alpha * xp.expm1(xp.minimum(x, 0))), (x,)),
            lambda xp, g, c, x: xp.where(x > 0, g, g * c.alpha * xp.exp(xp.minimum(x, 0)))),
    # above `threshold` softplus is the identity (as in PyTorch); logaddexp never overflows below it
    "Softplus": ("softplus",
                 lambda xp, x, c: (xp.where(x * c.beta > c.threshold, x,
                                            xp.logaddexp(0, x * c.beta) / c.beta), (x,)),
                 lambda xp, g, c, x: xp.where(x * c.beta > c.threshold, g, g * _sigmoid(xp, x * c.beta))),
    # at the bounds themselves the gradient is 0, as in PyTorch
    "Hardtanh": ("hardtanh",
                 lambda xp, x, c: (xp.clip(x, c.min_val, c.max_val).astype(x.dtype, copy=False), (x,)),
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
        y, saved = ctx.f(xp, x, ctx)
        ctx.save(*saved)
        return y

    def backward(ctx, grad):
        if ctx.fused is not None:
            return ctx.fused.backward(ctx, grad, *ctx.saved)
        return ctx.df(array_module(grad), grad, ctx, *ctx.saved)


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
