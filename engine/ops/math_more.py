"""More pointwise math as torch has it: logaddexp(2), hypot, copysign, nextafter, frexp, ldexp, renorm, and the
trapezoid rule (trapezoid, trapz, cumulative_trapezoid).

logaddexp and hypot are ops of their own so that they never overflow (they work from the larger input) and their
gradients stay finite where torch's formulas give NaN: both inputs -inf (logaddexp) or both 0 (hypot). renorm and
the trapezoid rule are composed of differentiable ops.
"""

from __future__ import annotations

import math
from collections import namedtuple

from engine import dtypes
from engine.autograd.function import Function, ShapeError, promoted_dtype
from engine.backend import array_module
from engine.ops.elementwise import _sigmoid, where
from engine.ops.index_port import _tensor
from engine.ops.shape import _dim
from engine.tensor import Tensor

__all__ = ["copysign", "cumulative_trapezoid", "frexp", "hypot", "ldexp", "logaddexp", "logaddexp2", "nextafter",
           "renorm", "trapezoid", "trapz"]

FrexpResult = namedtuple("frexp", ["mantissa", "exponent"])  # as torch.return_types.frexp


def _xp(a, b):
    return array_module(a if hasattr(a, "dtype") else b)


def _floating_pair(op: str, input: Tensor, other) -> None:
    """torch's refusal of integer operands for ops that only have floating-point kernels."""
    if not promoted_dtype(input, other).is_floating_point:
        shown = other.dtype.name if isinstance(other, Tensor) else type(other).__name__
        raise TypeError(f"{op}: expected floating point inputs, got {input.dtype.name} and {shown}; "
                        "convert them with .float()")


# ---- log(e^a + e^b) and log2(2^a + 2^b) ------------------------------------------------------------------
class LogAddExp(Function):
    """log(e^a + e^b), from the larger input; `scale` is ln(base), so logaddexp2 is the same op with ln 2.

    Where both are -inf (or both +inf) each input's gradient share is 1/2, where torch's formula gives NaN."""

    promotes = True
    scale = 1.0

    def forward(ctx, a, b):
        xp = _xp(a, b)
        ctx.save(a, b)
        out = xp.maximum(a, b) + xp.log1p(xp.exp(-ctx.scale * xp.abs(_difference(xp, a, b)))) / ctx.scale
        return out.astype(xp.result_type(a, b), copy=False)

    def backward(ctx, grad):
        xp = array_module(grad)
        d = _difference(xp, *ctx.saved)
        need_a, need_b = ctx.needs_input_grad
        return (grad * _sigmoid(xp, ctx.scale * d) if need_a else None), \
            (grad * _sigmoid(xp, -ctx.scale * d) if need_b else None)


def _difference(xp, a, b):
    """a - b, and 0 where both are the same infinity (inf - inf would be NaN)."""
    return xp.where(_same_infinity(xp, a, b), 0, a - b)


def _same_infinity(xp, a, b):
    return (a == b) & xp.isinf(a)


class LogAddExp2(LogAddExp):
    scale = math.log(2)


def logaddexp(input: Tensor, other) -> Tensor:
    """log(exp(input) + exp(other)) elementwise (broadcast), without overflow, as torch.logaddexp."""
    _floating_pair("logaddexp", input, other)
    return LogAddExp.apply(input, other)


def logaddexp2(input: Tensor, other) -> Tensor:
    """log2(2**input + 2**other) elementwise (broadcast), without overflow, as torch.logaddexp2."""
    _floating_pair("logaddexp2", input, other)
    return LogAddExp2.apply(input, other)


# ---- hypot, copysign, nextafter ----------------------------------------------------------------------
class Hypot(Function):
    """sqrt(a^2 + b^2) without overflow; the gradient (a, b) / out is 0 at the origin (torch's is NaN there)."""

    promotes = True

    def forward(ctx, a, b):
        xp = _xp(a, b)
        out = xp.hypot(a, b)
        ctx.save(a, b, out)
        return out

    def backward(ctx, grad):
        a, b, out = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        scaled = grad / array_module(out).where(out == 0, 1, out)  # a == b == 0 there: the share is 0
        return (scaled * a if need_a else None), (scaled * b if need_b else None)


def hypot(input: Tensor, other) -> Tensor:
    """sqrt(input**2 + other**2) elementwise (broadcast), without overflow, as torch.hypot."""
    _floating_pair("hypot", input, other)
    return Hypot.apply(input, other)


class Copysign(Function):
    """|a| with the sign of b (-0.0 counts as negative); integer inputs give floats, as in torch."""

    promotes = True

    def forward(ctx, a, b):
        xp = _xp(a, b)
        a = a if a.dtype.kind == "f" else a.astype(dtypes.default_float.np)
        out = xp.copysign(a, b).astype(a.dtype, copy=False)
        flips = xp.signbit(a) != xp.signbit(out)
        ctx.save(xp.where(a == 0, 0, xp.where(flips, -1, 1)).astype(a.dtype))  # d out / d a; 0 at a == 0, as torch
        return out

    def backward(ctx, grad):
        (slope,) = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (grad * slope if need_a else None), (array_module(grad).zeros_like(grad) if need_b else None)


def copysign(input: Tensor, other) -> Tensor:
    """The magnitude of input with the sign of other (broadcast), as torch.copysign; the result is floating point."""
    return Copysign.apply(_tensor("copysign", "input", input, 1), other)


class Nextafter(Function):
    """The next floating-point value after a towards b; torch passes the gradient to a unchanged, 0 to b."""

    promotes = True

    def forward(ctx, a, b):
        return _xp(a, b).nextafter(a, b)

    def backward(ctx, grad):
        return grad, (array_module(grad).zeros_like(grad) if ctx.needs_input_grad[1] else None)


def nextafter(input: Tensor, other) -> Tensor:
    """The next representable value after input in the direction of other (broadcast), as torch.nextafter."""
    _floating_pair("nextafter", input, other)
    return Nextafter.apply(input, other)


# ---- frexp and ldexp -----------------------------------------------------------------------------------
class Frexp(Function):
    """The mantissa m of x = m * 2^e, |m| in [0.5, 1); e goes to ctx.box. The gradient is grad * 2^-e."""

    def forward(ctx, x):
        mantissa, exponent = array_module(x).frexp(x)
        exponent = exponent.astype("int32", copy=False)
        ctx.box["exponent"] = exponent
        ctx.save(exponent)
        return mantissa

    def backward(ctx, grad):
        (exponent,) = ctx.saved
        return array_module(grad).ldexp(grad, -exponent)


def frexp(input: Tensor) -> FrexpResult:
    """(mantissa, exponent) with input = mantissa * 2**exponent, exponent int32, as torch.frexp."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"frexp: only floating point tensors are supported, got {input.dtype.name}")
    box = {}
    mantissa = Frexp.apply(input, box=box)
    return FrexpResult(mantissa, Tensor._wrap(box["exponent"]))


class Ldexp(Function):
    """a * 2^b, in the promoted floating dtype; an integer b scales exactly (no 2^b that could overflow first)."""

    def forward(ctx, a, b):
        xp = array_module(a)
        a = a.astype(ctx.dtype, copy=False)
        if ctx.integral:
            out = xp.ldexp(a, b.astype("int64", copy=False) if hasattr(b, "dtype") else int(b))
        else:
            out = a * xp.exp2(b)
        ctx.save(b, out)
        return out.astype(ctx.dtype, copy=False)

    def backward(ctx, grad):
        b, out = ctx.saved
        xp = array_module(grad)
        need_a, need_b = ctx.needs_input_grad
        ga = gb = None
        if need_a:
            ga = xp.ldexp(grad, b.astype("int64", copy=False) if hasattr(b, "dtype") else int(b)) \
                if ctx.integral else grad * xp.exp2(b)
        if need_b:
            gb = grad * out * math.log(2)
        return ga, gb


def ldexp(input: Tensor, other) -> Tensor:
    """input * 2**other (broadcast), as torch.ldexp; integer inputs give floats."""
    dtype = promoted_dtype(input, other)
    if not dtype.is_floating_point:
        dtype = dtypes.default_float
    integral = (other.dtype.category < dtypes.FLOAT) if isinstance(other, Tensor) else not isinstance(other, float)
    return Ldexp.apply(input, other, dtype=dtype.np, integral=integral)


# ---- renorm ----------------------------------------------------------------------------------------------
def renorm(input: Tensor, p, dim: int, maxnorm) -> Tensor:
    """Each slice along `dim` whose p-norm exceeds maxnorm scaled down to norm maxnorm, as torch.renorm."""
    if input.ndim < 2:
        raise ShapeError(f"renorm: input needs at least 2 dimensions, got {input.ndim} dimensions "
                         f"(shape {tuple(input.shape)})")
    if not input.dtype.is_floating_point:
        raise TypeError(f"renorm: expected a floating point tensor, got {input.dtype.name}")
    if not p > 0:
        raise ValueError(f"renorm: p must be positive (non-positive norms are not supported), got {p}")
    if maxnorm < 0:
        raise ValueError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    return renormed(input, p, dim, maxnorm)


def renormed(input: Tensor, p, dim: int, maxnorm) -> Tensor:
    """renorm's scaling without its checks: also embedding's max_norm (whose p may be 0 or inf)."""
    d = _dim(dim, input.ndim)
    norms = input.norm(p, tuple(i for i in range(input.ndim) if i != d), keepdim=True)
    return input * where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)  # torch's 1e-7 keeps a 0 norm finite


# ---- the trapezoid rule ---------------------------------------------------------------------------------
def _samples(op: str, y: Tensor, dim: int) -> tuple[Tensor, int]:
    if y.ndim == 0:
        raise IndexError(f"{op}: y must have at least one dimension, got a 0-d tensor")
    return (y if y.dtype.is_floating_point else y.to(dtypes.default_float)), _dim(dim, y.ndim)


def _pair_sums(op: str, y: Tensor, x, dx, d: int) -> Tensor:
    """(y[i] + y[i+1]) * (x[i+1] - x[i]) / 2 along dim d: the area of each trapezoid."""
    if x is not None and dx is not None:
        raise TypeError(f"{op}: pass either x or dx, not both")
    n = y.shape[d]
    pairs = y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)
    if x is None:
        return pairs * ((1 if dx is None else dx) / 2)
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: x must be a tensor, got {type(x).__name__}; pass a scalar spacing as dx")
    if x.ndim == 1:
        if x.shape[0] != n:
            raise ShapeError(f"{op}: there must be one x value for each sample point: x has {x.shape[0]} values, "
                             f"y has {n} along dim {d} (shape {tuple(y.shape)})")
        spacing = (x[1:] - x[:-1]).reshape([n - 1 if i == d else 1 for i in range(y.ndim)])
    else:
        xd = _dim(d - y.ndim, x.ndim)  # the same dim counted from the end, as broadcasting aligns
        spacing = x.narrow(xd, 1, x.shape[xd] - 1) - x.narrow(xd, 0, x.shape[xd] - 1)
    return pairs * spacing / 2


def trapezoid(y: Tensor, x: Tensor | None = None, *, dx=None, dim: int = -1) -> Tensor:
    """The trapezoid rule along `dim`: samples y at points x (or spacing dx, default 1), as torch.trapezoid."""
    y, d = _samples("trapezoid", y, dim)
    if y.shape[d] == 0:
        if x is not None and dx is not None:
            raise TypeError("trapezoid: pass either x or dx, not both")
        return y.sum(d)
    return _pair_sums("trapezoid", y, x, dx, d).sum(d)


def trapz(y: Tensor, x: Tensor | None = None, *, dx=None, dim: int = -1) -> Tensor:
    """torch.trapz: the older name of trapezoid."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y: Tensor, x: Tensor | None = None, *, dx=None, dim: int = -1) -> Tensor:
    """The running trapezoid rule along `dim` (one fewer element), as torch.cumulative_trapezoid."""
    y, d = _samples("cumulative_trapezoid", y, dim)
    if y.shape[d] == 0:
        return y.narrow(d, 0, 0)
    return _pair_sums("cumulative_trapezoid", y, x, dx, d).cumsum(d)
