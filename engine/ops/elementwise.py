"""Elementwise ops: arithmetic, unary math, comparisons, clamp and where.

Unary ops are data: one row per op with its forward formula and its derivative. Every formula works
on raw arrays through `xp`, the array module of its inputs, so numpy and cupy share it.
"""

from __future__ import annotations

import math

from engine import dtypes, kernels
from engine.autograd.function import Function, promoted_dtype
from engine.backend import array_module
from engine.tensor import Tensor


def _float(x):
    # ops such as exp or division give floats for integer inputs, as in PyTorch
    return x if x.dtype.kind == "f" else x.astype(dtypes.default_float.np)


# ---- gradients selected, not multiplied by a mask of 0s and 1s ---------------------------------
# Where an op passes no gradient, PyTorch writes 0 whatever the incoming gradient is; grad * mask would give
# NaN there for an inf gradient (the derivative of a sqrt at 0 behind a relu, say). These multiply grad's bits,
# read as an integer, by the mask instead: exact, and never NaN. numpy's where takes ~3x as long as a multiply
# on an irregular mask; this takes ~10% longer than one.
_BITS = {2: "int16", 4: "int32", 8: "int64"}  # an integer dtype of each float width


def keep_where(grad, keep):
    """grad where the bool array `keep` is true, exactly +0 elsewhere, even where grad is inf or NaN."""
    bits = _BITS.get(grad.dtype.itemsize) if grad.dtype.kind == "f" else None
    if bits is None:
        return array_module(grad).where(keep, grad, 0)
    return (grad.view(bits) * keep).view(grad.dtype)


def zero_where(grad, drop):
    """grad, exactly +0 where the bool array `drop` is true (even where grad is inf or NaN)."""
    return keep_where(grad, ~drop)


# ---- binary arithmetic -------------------------------------------------------------------------
class Add(Function):
    promotes = True

    def forward(ctx, a, b):
        return a + b

    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    promotes = True

    def forward(ctx, a, b):
        return a - b

    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    promotes = True

    def forward(ctx, a, b):
        # keep only what backward reads (as PyTorch does): `y[0] = y[1] * 2` then changes nothing saved
        need_a, need_b = ctx.needs_input_grad or (False, False)
        ctx.save(a if need_b else None, b if need_a else None)
        return a * b

    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


def _integral(v) -> bool:
    return v.dtype.kind in "biu" if hasattr(v, "dtype") else not isinstance(v, float)


class Div(Function):
    promotes = True

    def forward(ctx, a, b):
        if _integral(a) and _integral(b):  # true division of integers gives floats
            a = _float(a) if hasattr(a, "dtype") else float(a)
            b = _float(b) if hasattr(b, "dtype") else b
        # keep a only for b's gradient (as PyTorch): `y[0] = y[1] / 0.5` then changes nothing saved
        ctx.save(a if (ctx.needs_input_grad or (False, False))[1] else None, b)
        return a / b

    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (grad / b if need_a else None), (-grad * a / (b * b) if need_b else None)


class Pow(Function):
    promotes = True

    def forward(ctx, a, b):
        y = _integer_power(a, b) if getattr(b, "dtype", None) is not None and b.dtype.kind in "iu" else a ** b
        needs = ctx.needs_input_grad
        # y only for b's gradient, as torch keeps it: a node that kept it always would make pow_(2) followed by
        # another in-place change an error at backward
        ctx.save(a, b, y if needs and needs[1] else None)
        return y

    def backward(ctx, grad):
        a, b, y = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        xp = array_module(grad)
        ga = gb = None
        if need_a:  # b * a^(b-1), and exactly 0 where b == 0 (even at a == 0)
            ga = grad * xp.where(b == 0, 0, b * a ** (b - 1)) if hasattr(b, "dtype") \
                else (grad * (b * a ** (b - 1)) if b != 0 else grad * 0)
        if need_b:  # a^b * log(a), taken as 0 where a <= 0 (PyTorch's convention at a == 0)
            safe_log = xp.log(xp.where(a > 0, a, 1)) if hasattr(a, "dtype") else (math.log(a) if a > 0 else 0.0)
            gb = grad * y * safe_log
        return ga, gb


def _integer_power(a, b):
    """a ** b for an array of integer exponents b: in integers (a integral too), a negative exponent gives 1 / a^|b|
    cut toward zero (1 for a == 1, +-1 for a == -1, else 0), as PyTorch, where numpy refuses it outright."""
    negative = b < 0
    if not _integral(a) or not negative.any():
        return a ** b
    xp = array_module(b)
    y = a ** xp.where(negative, 0, b)
    odd = (b % 2).astype(bool)
    return xp.where(negative, xp.where(a == 1, 1, xp.where(a == -1, 1 - 2 * odd, 0)), y).astype(y.dtype, copy=False)


class Maximum(Function):
    promotes = True

    def forward(ctx, a, b):
        ctx.save(a, b)
        return array_module(a).maximum(a, b)

    def backward(ctx, grad):
        a, b = ctx.saved
        return _split_by_winner(grad, a, b, ctx.needs_input_grad)


class Minimum(Function):
    promotes = True

    def forward(ctx, a, b):
        ctx.save(a, b)
        return array_module(a).minimum(a, b)

    def backward(ctx, grad):
        a, b = ctx.saved
        return _split_by_winner(grad, b, a, ctx.needs_input_grad)  # a wins where b is larger


def _split_by_winner(grad, a, b, needs):
    """(grad where a >= b, grad where a <= b), halved where a == b, whole to both where either is NaN: PyTorch's
    gradients of max(a, b), and of min(b, a). Selected: the loser's is exactly 0, even for an inf grad (which times
    a share of 0 would be NaN)."""
    grad = array_module(grad).where(a == b, grad * 0.5, grad)
    need_first, need_second = needs
    return (zero_where(grad, a < b) if need_first else None), (zero_where(grad, a > b) if need_second else None)


# ---- unary math: name -> (forward, derivative given x, y and grad, keeps integer dtype) --------
def _sigmoid(xp, x):
    # split by sign so exp never overflows
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _sign(xp, x):
    """-1, 0 or 1, with 0 for NaN; a bool is its own sign (torch's rules, which numpy's sign does not follow)."""
    if x.dtype.kind == "b":
        return x.copy()
    y = xp.sign(x)
    return xp.nan_to_num(xp.asarray(y), copy=False, nan=0) if x.dtype.kind == "f" else y  # (numpy: 0-d gives a scalar)


UNARY = {
    "neg": (lambda xp, x: -x, lambda xp, x, y, g: -g, True),
    "exp": (lambda xp, x: xp.exp(x), lambda xp, x, y, g: g * y, False),
    "log": (lambda xp, x: xp.log(x), lambda xp, x, y, g: g / x, False),
    "log1p": (lambda xp, x: xp.log1p(x), lambda xp, x, y, g: g / (1 + x), False),
    "sqrt": (lambda xp, x: xp.sqrt(x), lambda xp, x, y, g: g / (2 * y), False),
    "rsqrt": (lambda xp, x: 1 / xp.sqrt(x), lambda xp, x, y, g: -0.5 * g * y * y * y, False),
    "abs": (lambda xp, x: xp.abs(x), lambda xp, x, y, g: g * xp.sign(x), True),
    "sign": (_sign, lambda xp, x, y, g: g * 0, True),
    "sin": (lambda xp, x: xp.sin(x), lambda xp, x, y, g: g * xp.cos(x), False),
    "cos": (lambda xp, x: xp.cos(x), lambda xp, x, y, g: -g * xp.sin(x), False),
    "tanh": (lambda xp, x: xp.tanh(x), lambda xp, x, y, g: g * (1 - y * y), False),
    "sigmoid": (_sigmoid, lambda xp, x, y, g: g * y * (1 - y), False),
    # y != 0 where x > 0 or x is NaN (whose gradient passes, as in torch): one comparison
    "relu": (lambda xp, x: xp.maximum(x, 0), lambda xp, x, y, g: keep_where(g, y != 0), True),
    "square": (lambda xp, x: x * x, lambda xp, x, y, g: 2 * g * x, True),
    "reciprocal": (lambda xp, x: 1 / x, lambda xp, x, y, g: -g * y * y, False),
    "expm1": (lambda xp, x: xp.expm1(x), lambda xp, x, y, g: g * (y + 1), False),
    "log2": (lambda xp, x: xp.log2(x), lambda xp, x, y, g: g / (x * math.log(2)), False),
    "log10": (lambda xp, x: xp.log10(x), lambda xp, x, y, g: g / (x * math.log(10)), False),
    "sinh": (lambda xp, x: xp.sinh(x), lambda xp, x, y, g: g * xp.cosh(x), False),
    "cosh": (lambda xp, x: xp.cosh(x), lambda xp, x, y, g: g * xp.sinh(x), False),
    "asin": (lambda xp, x: xp.arcsin(x), lambda xp, x, y, g: g / xp.sqrt(1 - x * x), False),
    "acos": (lambda xp, x: xp.arccos(x), lambda xp, x, y, g: -g / xp.sqrt(1 - x * x), False),
    "atan": (lambda xp, x: xp.arctan(x), lambda xp, x, y, g: g / (1 + x * x), False),
}
# What each derivative reads: an op keeps only that (as PyTorch does), so an in-place change of what it does
# not read (the input, often a view written next, as in `y[0] = y[1].exp()`; or the output) stays legal.
READS_OUTPUT = {"exp", "sqrt", "rsqrt", "tanh", "sigmoid", "relu", "reciprocal", "expm1"}
READS_NOTHING = {"neg", "sign"}  # every other derivative reads the input only


class Unary(Function):
    """An elementwise op whose formula and derivative come from the UNARY table."""

    fused = None  # on CUDA, engine.kernels' one-kernel forward and backward (for some ops)

    def forward(ctx, x):
        if not ctx.keeps_int and x.dtype.kind != "f":
            x = _float(x)
        xp = array_module(x)
        if x.dtype.kind == "f":
            ctx.fused = kernels.get(type(ctx).__name__, xp)
        y = ctx.f(xp, x) if ctx.fused is None else ctx.fused.forward(ctx, x)
        ctx.save(x if ctx.keeps_x else None, y if ctx.keeps_y else None)
        return y

    def backward(ctx, grad):
        x, y = ctx.saved
        if ctx.fused is not None:  # a fused kernel that reads x reads it only where y says the same
            return ctx.fused.backward(ctx, grad, y if x is None else x, y)
        return ctx.df(array_module(grad), x, y, grad)


def _make_unary(name, f, df, keeps_int, reads_output: bool | None = None):
    reads_output = name in READS_OUTPUT if reads_output is None else reads_output
    cls = type(name.capitalize(), (Unary,), {
        "op": name, "f": staticmethod(f), "df": staticmethod(df), "keeps_int": keeps_int,
        "keeps_x": not reads_output and name not in READS_NOTHING, "keeps_y": reads_output,
        "__doc__": f"Elementwise {name}.",
    })
    return cls, lambda x: cls.apply(x)


UNARY_OPS = {name: _make_unary(name, *row) for name, row in UNARY.items()}
(neg, exp, log, log1p, sqrt, rsqrt, abs, sign, sin, cos, tanh, sigmoid, relu, square, reciprocal,
 expm1, log2, log10, sinh, cosh, asin, acos, atan) = (UNARY_OPS[n][1] for n in UNARY)


# ---- comparisons (no gradient) -----------------------------------------------------------------
class Compare(Function):
    promotes = True
    differentiable = False

    def forward(ctx, a, b):
        return ctx.f(a, b)


def _make_compare(name, f):
    cls = type(name.capitalize(), (Compare,), {"op": name, "f": staticmethod(f)})
    return lambda a, b: cls.apply(a, b)


eq = _make_compare("eq", lambda a, b: a == b)
ne = _make_compare("ne", lambda a, b: a != b)
lt = _make_compare("lt", lambda a, b: a < b)
le = _make_compare("le", lambda a, b: a <= b)
gt = _make_compare("gt", lambda a, b: a > b)
ge = _make_compare("ge", lambda a, b: a >= b)


def isclose(a: Tensor, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """Where |a - b| <= atol + rtol * |b|, as a bool tensor (torch.isclose); b may be a number too."""
    if not isinstance(a, Tensor):
        raise TypeError(f"isclose(): argument 'input' (position 1) must be Tensor, not {type(a).__name__}")
    b = b.array if isinstance(b, Tensor) else b
    return Tensor._wrap(array_module(a.array).isclose(a.array, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(a: Tensor, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when every element of a is close to b's (see isclose)."""
    return bool(isclose(a, b, rtol, atol, equal_nan).array.all())


def equal(a: Tensor, b: Tensor) -> bool:
    """True when a and b have the same shape and the same values."""
    return a.shape == b.shape and bool((a.array == b.array).all())


class LogicalNot(Function):
    differentiable = False
    op = "logical_not"

    def forward(ctx, x):
        return array_module(x).logical_not(x)


def logical_not(x: Tensor) -> Tensor:
    """Elementwise `not`, as a bool tensor."""
    return LogicalNot.apply(x)


# ---- clamp and where ----------------------------------------------------------------------------
class Clamp(Function):
    """x limited to [lo, hi]: each bound a number, an array or None. The gradients are PyTorch's: x's where
    lo <= x <= hi; a bound's where it is the value taken (hi's also where hi < lo, as then hi is taken)."""

    def forward(ctx, x, lo, hi):
        xp = array_module(x)
        y = xp.clip(x, lo, hi) if (lo is not None or hi is not None) else x.copy()
        ctx.save(x, lo, hi)
        return y.astype(x.dtype, copy=False)

    def backward(ctx, grad):
        x, lo, hi = ctx.saved
        need_x, need_lo, need_hi = ctx.needs_input_grad
        gx = glo = ghi = None
        if need_x:
            keep = True
            if lo is not None:
                keep = x >= lo
            if hi is not None:
                keep = keep & (x <= hi)
            gx = grad if keep is True else keep_where(grad, keep)
        if need_lo:
            glo = keep_where(grad, x < lo if hi is None else (x < lo) & (lo < hi))
        if need_hi:
            ghi = keep_where(grad, x > hi if lo is None else (x > hi) | (hi < lo))
        return gx, glo, ghi


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """Limit values to [min, max]; bounds may be numbers or tensors."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min or max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):  # then the dtypes promote, as in PyTorch
        target = promoted_dtype(*(v for v in (x, min, max) if v is not None)).np
        x, min, max = (v.to(dtype=target) if isinstance(v, Tensor) and v.array.dtype != target else v
                       for v in (x, min, max))
    elif not x.dtype.is_floating_point:  # number bounds promote too: an int tensor clamped to 0.5 gives floats
        target = promoted_dtype(x, *(bound for bound in (min, max) if bound is not None))
        x = x if target is x.dtype else x.to(dtype=target)
    return Clamp.apply(x, min, max)


def clamp_min(x: Tensor, min) -> Tensor:
    """max(x, min), as clamp(x, min=min)."""
    return clamp(x, min=min)


def clamp_max(x: Tensor, max) -> Tensor:
    """min(x, max), as clamp(x, max=max)."""
    return clamp(x, max=max)


class Where(Function):
    def forward(ctx, cond, a, b):
        ctx.save(cond)
        return array_module(cond).where(cond, a, b)

    def backward(ctx, grad):
        (cond,) = ctx.saved
        _, need_a, need_b = ctx.needs_input_grad
        # selected, not multiplied: an inf or NaN gradient where the other branch was taken gives 0, as torch
        return (None, keep_where(grad, cond) if need_a else None, zero_where(grad, cond) if need_b else None)


def where(cond: Tensor, a=None, b=None) -> Tensor:
    """`a` where `cond` is true, else `b` (broadcast together); differentiable in `a` and `b`.
    `where(cond)` alone is `nonzero(cond, as_tuple=True)`."""
    if a is None and b is None:
        from engine.ops.search import nonzero

        return nonzero(cond, as_tuple=True)
    if not isinstance(cond, Tensor) or cond.dtype is not dtypes.bool_:
        got = cond.dtype if isinstance(cond, Tensor) else type(cond).__name__
        raise TypeError(f"where: condition must be a bool tensor, got {got}")
    target = promoted_dtype(a, b).np
    a = a.to(dtype=target) if isinstance(a, Tensor) and a.array.dtype != target else a
    b = b.to(dtype=target) if isinstance(b, Tensor) and b.array.dtype != target else b
    out = Where.apply(cond, a, b)
    if out.array.dtype != target:
        out.array = out.array.astype(target)
    return out


def _scaled(a, b, alpha):
    """b * alpha, refusing the alphas torch refuses: a float one for an integral result, a bool one for a
    non-bool result."""
    if alpha is None:
        return b
    result = promoted_dtype(a, b)
    if isinstance(alpha, bool) and result is not dtypes.bool_:
        raise RuntimeError("Boolean alpha only supported for Boolean results.")
    if isinstance(alpha, float) and not result.is_floating_point:
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
    if alpha == 1:
        return b
    # a Python number times alpha stays a number: Mul needs at least one tensor
    return Mul.apply(b, alpha) if isinstance(b, Tensor) else b * alpha


def add(a, b, alpha=None) -> Tensor:
    return Add.apply(a, _scaled(a, b, alpha))


def sub(a, b, alpha=None) -> Tensor:
    return Sub.apply(a, _scaled(a, b, alpha))


def mul(a, b) -> Tensor:
    return Mul.apply(a, b)


def div(a, b, rounding_mode=None) -> Tensor:
    """a / b; rounding_mode 'floor' rounds the quotient down (as //), 'trunc' toward zero."""
    if rounding_mode is None:
        return Div.apply(a, b)
    if rounding_mode not in ("floor", "trunc"):
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
    return _rounded(RoundedDiv, a, b, rounding=rounding_mode)


def pow(a, b) -> Tensor:
    return Pow.apply(a, b)


def maximum(a, b) -> Tensor:
    """The elementwise larger of a and b (broadcast); a Python number is taken too, where torch asks for a
    tensor (clamp with a tensor bound and a number bound relies on it)."""
    return Maximum.apply(a, b)


def minimum(a, b) -> Tensor:
    """The elementwise smaller of a and b (broadcast); a Python number is taken too, as by maximum."""
    return Minimum.apply(a, b)


def isnan(x: Tensor) -> Tensor:
    return Tensor._wrap(array_module(x.array).isnan(x.array))


def isinf(x: Tensor) -> Tensor:
    return Tensor._wrap(array_module(x.array).isinf(x.array))


def isfinite(x: Tensor) -> Tensor:
    return Tensor._wrap(array_module(x.array).isfinite(x.array))


# ---- integer-style arithmetic and logic (no gradient) --------------------------------------------
class Arith(Function):
    promotes = True
    differentiable = False

    def forward(ctx, a, b):
        return ctx.f(array_module(a if hasattr(a, "dtype") else b), a, b)


def _make_arith(name, f):
    cls = type(name.capitalize(), (Arith,), {"op": name, "f": staticmethod(f)})
    return lambda a, b: cls.apply(a, b)


def _check_divisor(op: str, xp, a, b) -> None:
    """Integer division by zero has no value to give (numpy's 0 would pass silently): raise, as PyTorch does."""
    if _integral(a) and _integral(b) and bool(xp.any(xp.asarray(b) == 0)):
        raise ZeroDivisionError(f"{op}: integer division by zero")


class RoundedDiv(Function):
    """a / b rounded down ('floor') or toward zero ('trunc'); a step function, so its gradient is zero (as PyTorch
    gives it)."""

    op = "div"
    promotes = True

    def forward(ctx, a, b):
        xp = array_module(a if hasattr(a, "dtype") else b)
        _check_divisor(ctx.op, xp, a, b)
        if ctx.rounding == "floor":  # Python's rule, exact where floor(a / b) is not: 1.0 // 0.1 is 9.0, not 10.0
            return xp.floor_divide(a, b)
        if _integral(a) and _integral(b):  # in integers: a / b through a float would round int64 beyond 2^53
            q = xp.floor_divide(a, b)
            return q + ((q < 0) & (q * b != a))
        return xp.trunc(a / b)

    def backward(ctx, grad):
        xp = array_module(grad)
        return tuple(xp.zeros_like(grad) if need else None for need in ctx.needs_input_grad)


class FloorDivide(RoundedDiv):
    """a // b; PyTorch defines no derivative for it, so backward through it raises, as there."""

    op = "floor_divide"

    def backward(ctx, grad):
        raise RuntimeError("floor_divide (//): the derivative is not implemented, as in PyTorch; use "
                           "div(a, b, rounding_mode='floor'), whose gradient is zero, or detach() the input")


def _rounded(cls, a, b, **options) -> Tensor:
    if promoted_dtype(a, b) is dtypes.bool_:
        raise TypeError(f"{cls.op}: not implemented for bool tensors, as in PyTorch; convert them with .int()")
    return cls.apply(a, b, **options)


def floor_divide(a, b) -> Tensor:
    """a // b: the quotient rounded down, as Python's // (div with rounding_mode='floor')."""
    return _rounded(FloorDivide, a, b, rounding="floor")


class Modulo(Function):
    """a - round(a / b) * b, rounded down (remainder: b's sign, Python's %) or toward zero (fmod: a's sign)."""

    promotes = True
    kernel = rounding = ""

    def forward(ctx, a, b):
        xp = array_module(a if hasattr(a, "dtype") else b)
        _check_divisor(ctx.op, xp, a, b)
        ctx.save(a, b)
        return getattr(xp, ctx.kernel)(a, b)

    def backward(ctx, grad):
        a, b = ctx.saved
        need_b = ctx.needs_input_grad[1]
        return grad, (-grad * getattr(array_module(grad), ctx.rounding)(a / b) if need_b else None)


class Remainder(Modulo):
    """Python's %: the result takes the divisor's sign; differentiable as in PyTorch."""

    kernel, rounding = "remainder", "floor"


def remainder(a, b) -> Tensor:
    return Remainder.apply(a, b)


logical_and = _make_arith("logical_and", lambda xp, a, b: xp.logical_and(a, b))
logical_or = _make_arith("logical_or", lambda xp, a, b: xp.logical_or(a, b))
logical_xor = _make_arith("logical_xor", lambda xp, a, b: xp.logical_xor(a, b))


# ---- composed arithmetic (several nodes each) -----------------------------------------------------
def lerp(start: Tensor, end, weight) -> Tensor:
    """start + weight * (end - start); `ema.lerp_(p, 1 - decay)` keeps an exponential moving average."""
    return add(start, mul(weight, sub(end, start)))


def addcmul(x: Tensor, tensor1, tensor2, *, value=1) -> Tensor:
    """x + value * tensor1 * tensor2."""
    return add(x, mul(mul(tensor1, tensor2), value))


def addcdiv(x: Tensor, tensor1, tensor2, *, value=1) -> Tensor:
    """x + value * tensor1 / tensor2."""
    return add(x, mul(div(tensor1, tensor2), value))
