"""More of torch's activations: mish, hardswish, hardsigmoid, selu, celu, softsign, tanhshrink, threshold,
hardshrink, softshrink, rrelu, softmin and gumbel_softmax; and rms_norm and local_response_norm, composed.

The elementwise ones are rows of a table, as in activation.py: forward (the output plus the arrays beyond the
input its backward needs) and derivative side by side, run by activation.Activation. Their Tensor-level backwards
(for create_graph=True) are in engine/autograd/higher_acts.py.
"""

from __future__ import annotations

import math

import numpy as np

from engine import dtypes
from engine import random as _random
from engine.autograd.function import Function, ShapeError
from engine.backend import array_module, device_of
from engine.creation import exponential_like
from engine.ops import elementwise as _elementwise
from engine.ops.activation import (
    Activation,
    Softmax,
    _logistic,
    _maybe_inplace,
    _softmax_dim,
    _softplus_of,
    elu_grad,
    elu_of,
    integral,
    nan_to_bound_min,
    softmax,
    softmax_options,
)
from engine.ops.nn import require_float
from engine.ops.shape import pad
from engine.tensor import Tensor

__all__ = ["celu", "celu_", "gumbel_softmax", "hardshrink", "hardsigmoid", "hardswish", "local_response_norm", "mish",
           "rms_norm", "rrelu", "rrelu_", "selu", "selu_", "softmin", "softshrink", "softsign", "tanhshrink",
           "threshold", "threshold_"]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _mish(xp, x, c):
    tsp = xp.tanh(_softplus_of(xp, x))  # tanh(softplus(x))
    return x * tsp, tsp


# The selecting ones below choose by arithmetic (a mask of 0s and 1s, exact as one term is 0), not where(), which on a
# mask of mixed signs mispredicts a branch per value (5-10x the time); a NaN input goes the way torch's kernels send it.
# Their gradients are selected by elementwise.keep_where: a mask times an inf gradient would be NaN.
def _shrink_mask(x, c):
    """Where x is outside [-lambd, lambd], or NaN."""
    return ~((x >= -c.lambd) & (x <= c.lambd))


def _above_threshold(x, c):
    """Where x > threshold, or NaN."""
    return ~(x <= c.threshold)


def _threshold(xp, x, c):
    """x where it is above the threshold (or NaN), else `value`: x clipped from below at the threshold (so that -inf
    is finite), times 1 or 0, plus 0 or the value."""
    y = xp.clip(x, c.threshold, math.inf)
    if c.value != c.threshold:  # else the clip is all (threshold(x, 0, 0) is relu)
        kept = _above_threshold(x, c).astype(x.dtype)  # float: numpy's arithmetic with bools takes 2x as long
        y *= kept
        kept -= 1
        kept *= -c.value
        y += kept
    return (y,)


def _hardswish(xp, x, c):
    """x relu6(x + 3) / 6, in one new array."""
    y = x + 3
    xp.clip(y, 0, 6, out=y)
    y *= x
    y /= 6
    return (y,)


def _hardswish_grad(xp, g, c, x):
    """g times 0 up to -3, x / 3 + 0.5 between, and 1 from 3 on and for NaN, as torch's: the line at x bounded (3 for
    NaN), times 0 outside (-3, 3), plus 1 from 3 on."""
    slope = nan_to_bound_min(xp, x, 3)
    xp.clip(slope, -3, 3, out=slope)
    slope /= 3
    slope += 0.5
    below = x < 3
    slope *= below & (x > -3)
    slope += ~below
    slope *= _elementwise.zero_where(g, x <= -3)  # 0 there even for an inf g
    return slope


# class -> (op, forward(xp, x, ctx) -> (y, *kept), gradient(xp, grad, ctx, x, *kept)), as in activation.py;
# selu and celu are activation.elu_of with their constants, as in PyTorch
ACTIVATIONS = {
    "Mish": ("mish", _mish, lambda xp, g, c, x, tsp: g * (tsp + x * _logistic(xp, x) * (1 - tsp * tsp))),
    # at x = -3 and x = 3 the slopes are torch's: 0 and 1
    "Hardswish": ("hardswish", _hardswish, _hardswish_grad),
    "Hardsigmoid": ("hardsigmoid",
                    lambda xp, x, c: (xp.clip(x + 3, 0, 6) / 6,),
                    lambda xp, g, c, x: _elementwise.keep_where(g, (x > -3) & (x < 3)) / 6),
    "Selu": ("selu",
             lambda xp, x, c: (elu_of(xp, x, SELU_ALPHA, SELU_SCALE),),
             lambda xp, g, c, x: elu_grad(xp, g, x, SELU_ALPHA, SELU_SCALE)),
    "Celu": ("celu",
             lambda xp, x, c: (elu_of(xp, x, c.alpha, input_div=c.alpha),),
             lambda xp, g, c, x: elu_grad(xp, g, x, c.alpha, input_div=c.alpha)),
    "Softsign": ("softsign",
                 lambda xp, x, c: (x / (1 + xp.abs(x)),),
                 lambda xp, g, c, x: g / (1 + xp.abs(x)) ** 2),
    "Tanhshrink": ("tanhshrink",
                   lambda xp, x, c: (x - xp.tanh(x),),
                   lambda xp, g, c, x: g * xp.tanh(x) ** 2),
    "Threshold": ("threshold", _threshold, lambda xp, g, c, x: _elementwise.keep_where(g, _above_threshold(x, c))),
    "Hardshrink": ("hardshrink",
                   lambda xp, x, c: (x * _shrink_mask(x, c),),
                   lambda xp, g, c, x: _elementwise.keep_where(g, _shrink_mask(x, c))),
    "Softshrink": ("softshrink",
                   lambda xp, x, c: (x - xp.clip(x, -c.lambd, c.lambd),),
                   lambda xp, g, c, x: _elementwise.keep_where(g, _shrink_mask(x, c))),
}

ACTIVATION_OPS = {
    name: type(name, (Activation,), {"op": op, "f": staticmethod(f), "df": staticmethod(df),
                                     "__doc__": f"Elementwise {op}."})
    for name, (op, f, df) in ACTIVATIONS.items()
}
Mish, Hardswish, Hardsigmoid, Selu, Celu, Softsign, Tanhshrink, Threshold, Hardshrink, Softshrink = (
    ACTIVATION_OPS[n] for n in ACTIVATIONS)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)), elementwise."""
    return _maybe_inplace(input, inplace, Mish.apply)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6, elementwise."""
    return _maybe_inplace(input, inplace, Hardswish.apply)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6, elementwise."""
    return _maybe_inplace(input, inplace, Hardsigmoid.apply)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalizing constants alpha = 1.6733 and scale = 1.0507."""
    return _maybe_inplace(input, inplace, Selu.apply)


def selu_(input: Tensor) -> Tensor:
    """In-place selu."""
    return selu(input, inplace=True)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x / alpha) - 1)."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (the negative part divides by it)")
    return _maybe_inplace(input, inplace, lambda t: Celu.apply(t, alpha=float(alpha)))


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place celu."""
    return celu(input, alpha, inplace=True)


def _as_float(x: Tensor) -> Tensor:
    """Integers as the default float: torch composes softsign and tanhshrink of ops that give floats for them."""
    return x.to(dtype=dtypes.default_float) if integral(x) else x


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|), elementwise."""
    return Softsign.apply(_as_float(input))


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x), elementwise."""
    return Tanhshrink.apply(_as_float(input))


def _threshold_of(x: Tensor, threshold: float, value: float) -> Tensor:
    if integral(x):  # both numbers cut toward zero, and the dtype kept, as torch's integer kernel
        return _elementwise.where(x > int(threshold), x, int(value))
    return Threshold.apply(x, threshold=threshold, value=value)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else `value`."""
    return _maybe_inplace(input, inplace, lambda t: _threshold_of(t, threshold, value))


_threshold = threshold  # threshold_'s argument of the same name hides the function


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """In-place threshold."""
    return _threshold(input, threshold, value, inplace=True)


def _check_lambd(op: str, lambd: float) -> float:
    if lambd < 0:
        raise ValueError(f"{op}: lambda must be greater or equal to 0, but found to be {lambd}")
    return float(lambd)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    return Hardshrink.apply(input, lambd=float(lambd))


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    return Softshrink.apply(input, lambd=_check_lambd("softshrink", lambd))


# ---- rrelu: random slopes in training ------------------------------------------------------------------
class RReLU(Function):
    """x where x > 0, else x times a slope drawn uniformly from [lower, upper] for each element."""

    op = "rrelu"

    def forward(ctx, x):
        require_float(ctx.op, x)
        xp = array_module(x)
        noise = xp.ones_like(x)
        drawn = x <= 0  # torch draws a slope for these alone, in order: one float64 U(lower, upper) each
        noise[drawn] = _random.uniform(_random.generator(device_of(x)), float(np.float32(ctx.lower)),
                                       float(np.float32(ctx.upper)), (int(drawn.sum()),), np.float64)
        ctx.save(noise)
        return x * noise

    def backward(ctx, grad):
        (noise,) = ctx.saved
        return grad * noise


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Leaky relu whose negative slope is drawn from U(lower, upper) per element in training, and is
    (lower + upper) / 2 otherwise."""
    if lower > upper:
        raise ValueError(f"rrelu: lower bound {lower} must be less than or equal to upper bound {upper}")
    if not training:
        from engine.ops.activation import leaky_relu

        return leaky_relu(input, (lower + upper) / 2, inplace)
    return _maybe_inplace(input, inplace, lambda t: RReLU.apply(t, lower=float(lower), upper=float(upper)))


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    """In-place rrelu."""
    return rrelu(input, lower, upper, training, inplace=True)


# ---- softmax relatives ----------------------------------------------------------------------------------
def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-x) along `dim`; `dtype` casts the input first."""
    if dtype is not None:
        input = input.to(dtype)
    return Softmax.apply(_elementwise.neg(input), **softmax_options("softmin", input, dim))


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """softmax((logits + Gumbel noise) / tau) along `dim`; hard=True gives the one-hot of its argmax with
    the soft sample's gradient (straight-through)."""
    require_float("gumbel_softmax", logits.array)
    if tau <= 0:
        raise ValueError(f"gumbel_softmax: tau must be positive, got {tau}")
    a = logits.array
    # as torch: -log of exponential_ samples of the logits' dtype
    gumbels = -array_module(a).log(exponential_like(logits).array)
    y_soft = softmax((logits + Tensor._wrap(gumbels)) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.array.argmax(axis=_softmax_dim("gumbel_softmax", logits, dim))
    y_hard = array_module(a).zeros_like(a)
    _put_one(array_module(a), y_hard, index, dim)
    return Tensor._wrap(y_hard) - y_soft.detach() + y_soft


def _put_one(xp, out, index, dim: int) -> None:
    """Set `out` to 1 where `dim` equals `index` (CuPy has no put_along_axis)."""
    dim %= out.ndim
    grids = list(xp.ogrid[tuple(slice(n) for n in index.shape)])
    grids.insert(dim, index)
    out[tuple(grids)] = 1


# ---- normalizations composed of engine ops (torch's functional files them beside the activations) ------
def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the last len(normalized_shape) dims, times `weight` if given;
    eps defaults to the input dtype's machine epsilon, as torch's."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise ShapeError(f"rms_norm: Given normalized_shape={list(shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}")
    if weight is not None and tuple(weight.shape) != shape:
        raise ShapeError(f"rms_norm: weight has shape {tuple(weight.shape)}, expected normalized_shape {shape}")
    require_float("rms_norm", input.array)
    # as torch: a narrower float is normalised in float32 (its x * x overflows from 256 up), eps defaulting
    # to float32's, and cast back at the end
    narrow = input.array.dtype.itemsize < 4
    x = input.to(dtypes.float32) if narrow else input
    if eps is None:
        eps = float(np.finfo(x.array.dtype).eps)
    dims = tuple(range(input.ndim - k, input.ndim))
    y = x * ((x * x).mean(dim=dims, keepdim=True) + eps).rsqrt()
    if weight is not None:
        y = y * weight
    return y.to(input.dtype) if narrow else y


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels) ** beta, channels being dim 1 (torch's
    window: size // 2 before, (size - 1) // 2 after, zero-padded)."""
    if input.ndim < 3:
        raise ShapeError(f"local_response_norm: Expected 3D or higher dimensionality input (got {input.ndim} "
                         f"dimensions)")
    if size < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size}")
    if input.numel() == 0:
        return input
    channels = input.shape[1]
    padded = pad(input * input, (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2))
    window = padded.narrow(1, 0, channels)
    for j in range(1, size):
        window = window + padded.narrow(1, j, channels)
    return input / (window * (alpha / size) + k) ** beta
