"""torch's pointwise math that ported scripts use and the engine lacked: tan, the inverse hyperbolic functions, exp2,
frac, sgn, sinc, deg2rad/rad2deg, signbit and the isposinf family, fmax/fmin, heaviside, gcd/lcm, float_power,
positive, rsub; torch's top-level aliases (arcsin, multiply, clip, ...) and its in-place functions (torch.exp_ ...).

The unary ops are rows of a table like engine.ops.elementwise's UNARY: a forward formula and its derivative (their
Tensor-level derivatives, for create_graph=True, are in engine/autograd/higher_pointwise.py). float_power, positive
and rsub are composed of differentiable ops.
"""

from __future__ import annotations

import math

from engine import dtypes
from engine.autograd.function import Function, promoted_dtype
from engine.backend import array_module
from engine.ops.elementwise import (
    Arith,
    _make_unary,
    abs,
    acos,
    asin,
    atan,
    clamp,
    div,
    ge,
    gt,
    keep_where,
    le,
    lt,
    mul,
    ne,
    neg,
    pow,
    sign,
    sub,
    zero_where,
)
from engine.ops.index_port import _tensor
from engine.ops.linalg import outer
from engine.ops.pointwise import atan2
from engine.ops.shape import movedim, transpose
from engine.ops.special import gammainc, gammaincc
from engine.tensor import Tensor

__all__ = ["acosh", "asinh", "atanh", "deg2rad", "exp2", "float_power", "fmax", "fmin", "frac", "gcd", "heaviside",
           "isneginf", "isposinf", "isreal", "lcm", "positive", "rad2deg", "rsub", "sgn", "signbit", "sinc", "tan"]

_LN2, _DEG_PER_RAD, _RAD_PER_DEG = math.log(2), 180 / math.pi, math.pi / 180


# ---- unary math: name -> (forward, derivative given x, y and grad, keeps integer dtype, what it reads) ------------
def _sinc(xp, x):
    """sin(pi x) / (pi x), and 1 at x == 0."""
    px = math.pi * xp.where(x == 0, 1, x).astype(x.dtype, copy=False)
    return xp.where(x == 0, 1, xp.sin(px) / px).astype(x.dtype, copy=False)


def _sinc_slope(xp, x, y, g):
    """(cos(pi x) - sinc(x)) / x, and 0 at x == 0 (as torch)."""
    safe = xp.where(x == 0, 1, x).astype(x.dtype, copy=False)
    return g * xp.where(x == 0, 0, (xp.cos(math.pi * safe) - _sinc(xp, safe)) / safe)


PORT_UNARY = {
    "tan": (lambda xp, x: xp.tan(x), lambda xp, x, y, g: g * (1 + y * y), False, "y"),
    "asinh": (lambda xp, x: xp.arcsinh(x), lambda xp, x, y, g: g / xp.sqrt(x * x + 1), False, "x"),
    "acosh": (lambda xp, x: xp.arccosh(x), lambda xp, x, y, g: g / xp.sqrt(x * x - 1), False, "x"),
    "atanh": (lambda xp, x: xp.arctanh(x), lambda xp, x, y, g: g / (1 - x * x), False, "x"),
    "exp2": (lambda xp, x: xp.exp2(x), lambda xp, x, y, g: g * y * _LN2, False, "y"),
    "frac": (lambda xp, x: x - xp.trunc(x), lambda xp, x, y, g: g, False, ""),
    "sinc": (_sinc, _sinc_slope, False, "x"),
    "deg2rad": (lambda xp, x: x * _RAD_PER_DEG, lambda xp, x, y, g: g * _RAD_PER_DEG, False, ""),
    "rad2deg": (lambda xp, x: x * _DEG_PER_RAD, lambda xp, x, y, g: g * _DEG_PER_RAD, False, ""),
}


def _port_unary(name, f, df, keeps_int, reads):
    cls, fn = _make_unary(name, f, df, keeps_int, reads_output=reads == "y")
    cls.keeps_x = reads == "x"  # an op keeps only what its derivative reads
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {name}, as torch.{name}."
    return cls, fn


PORT_UNARY_OPS = {name: _port_unary(name, *row) for name, row in PORT_UNARY.items()}
tan, asinh, acosh, atanh, exp2, _frac, sinc, deg2rad, rad2deg = (PORT_UNARY_OPS[n][1] for n in PORT_UNARY)
sgn = sign  # torch's sgn is sign for real tensors (it differs only for complex ones, which the engine lacks)


def frac(input: Tensor) -> Tensor:
    """The fractional part, input - trunc(input), with input's sign, as torch.frac (floating point only)."""
    _floating_only("frac", input)
    return _frac(input)


def _floating_only(op: str, *tensors: Tensor) -> None:
    for t in tensors:
        if not t.dtype.is_floating_point:
            raise NotImplementedError(f"{op}: not implemented for {t.dtype.name} tensors; convert with .float()")


# ---- predicates (bool results, no gradient) -------------------------------------------------------------
class Predicate(Function):
    """An elementwise test whose formula comes from the PREDICATES table."""

    differentiable = False

    def forward(ctx, x):
        return ctx.f(array_module(x), x)


PREDICATES = {
    "signbit": lambda xp, x: xp.signbit(x) if x.dtype.kind == "f" else x < 0,  # -0.0 and -nan count as negative
    "isposinf": lambda xp, x: x == math.inf,
    "isneginf": lambda xp, x: x == -math.inf,
    "isreal": lambda xp, x: xp.ones(x.shape, bool),  # the engine has no complex dtypes
}


def _make_predicate(name, f):
    cls = type(name.capitalize(), (Predicate,), {"op": name, "f": staticmethod(f)})

    def fn(input: Tensor) -> Tensor:
        return cls.apply(input)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {name} as a bool tensor, as torch.{name}."
    return fn


signbit, isposinf, isneginf, isreal = (_make_predicate(n, f) for n, f in PREDICATES.items())


# ---- fmax and fmin: maximum and minimum where a NaN loses to a number ------------------------------------
class NanIgnoring(Function):
    """max or min of a and b where a NaN loses to a number; the gradient goes to the input picked, to a on ties
    (torch's rule: where a >= b, or b is NaN, for fmax)."""

    promotes = True

    def forward(ctx, a, b):
        xp = array_module(a)
        if ctx.needs_input_grad:
            ctx.save(ctx.prefers(a, b) | xp.isnan(b))
        return getattr(xp, ctx.op)(a, b)

    def backward(ctx, grad):
        (first,) = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (keep_where(grad, first) if need_a else None), (zero_where(grad, first) if need_b else None)


class Fmax(NanIgnoring):
    prefers = staticmethod(lambda a, b: a >= b)


class Fmin(NanIgnoring):
    prefers = staticmethod(lambda a, b: a <= b)


def fmax(input: Tensor, other: Tensor) -> Tensor:
    """The elementwise maximum where a NaN loses to a number (NaN only where both are), as torch.fmax."""
    _tensor("fmax", "other", other, 2)
    return Fmax.apply(input, other)


def fmin(input: Tensor, other: Tensor) -> Tensor:
    """The elementwise minimum where a NaN loses to a number (NaN only where both are), as torch.fmin."""
    _tensor("fmin", "other", other, 2)
    return Fmin.apply(input, other)


# ---- heaviside, gcd and lcm ------------------------------------------------------------------------------
class Heaviside(Function):
    """0 where x < 0 (and where x is NaN), `values` where x == 0, 1 where x > 0; torch gives it no derivative."""

    def forward(ctx, x, values):
        return array_module(x).where(x == 0, values, x > 0).astype(x.dtype, copy=False)

    def backward(ctx, grad):
        raise NotImplementedError("heaviside: the derivative is not implemented, as in PyTorch; detach() the input")


def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """The Heaviside step function of input, `values` where input is 0 (broadcast), as torch.heaviside."""
    _tensor("heaviside", "values", values, 2)
    if input.dtype is not values.dtype:
        raise RuntimeError(f"heaviside is not yet implemented for tensors with different dtypes ({input.dtype.name} "
                           f"and {values.dtype.name}); convert values with .to(input.dtype)")
    return Heaviside.apply(input, values)


def _make_integer_arith(name):
    cls = type(name.capitalize(), (Arith,), {"op": name, "f": staticmethod(lambda xp, a, b: getattr(xp, name)(a, b))})

    def fn(input: Tensor, other: Tensor) -> Tensor:
        _tensor(name, "other", other, 2)
        for t in (input, other):
            if t.dtype.category != dtypes.INT:
                raise NotImplementedError(f"{name}: not implemented for {t.dtype.name} tensors; it takes integers")
        return cls.apply(input, other)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"The elementwise {name} of integer tensors (non-negative; broadcast), as torch.{name}."
    return fn


gcd, lcm = _make_integer_arith("gcd"), _make_integer_arith("lcm")


# ---- composed of differentiable ops ----------------------------------------------------------------------
def float_power(input, exponent) -> Tensor:
    """input ** exponent computed in float64 (either may be a number), as torch.float_power."""
    if not isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        raise TypeError(f"float_power(): expected a Tensor for input or exponent, got {type(input).__name__} and "
                        f"{type(exponent).__name__}")
    return pow(*(v.to(dtypes.float64) if isinstance(v, Tensor) else float(v) for v in (input, exponent)))


def float_power_inplace(self: Tensor, exponent) -> Tensor:
    """Tensor.float_power_: only a float64 tensor can hold float_power's result, as torch."""
    if self.dtype is not dtypes.float64:
        raise RuntimeError(f"the base given to float_power_ has dtype {self.dtype.name} but the operation's result "
                           "requires dtype float64; convert it with .double() first")
    return self._write(lambda t: float_power(t, exponent))


def positive(input: Tensor) -> Tensor:
    """input itself (the unary `+`), as torch.positive; refused for bool tensors, as torch."""
    if input.dtype is dtypes.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


def rsub(input: Tensor, other, *, alpha=1) -> Tensor:
    """other - alpha * input (input subtracted from other), as torch.rsub."""
    if promoted_dtype(input, other) is dtypes.bool_:
        raise RuntimeError("rsub: subtraction with two bool tensors is not supported; use the `^` or "
                           "logical_xor() operator instead")
    return sub(other, input, alpha=alpha)


# ---- torch's other names: aliases and top-level in-place functions ----------------------------------------
ALIASES = {
    "arcsin": asin, "arccos": acos, "arctan": atan, "arcsinh": asinh, "arccosh": acosh, "arctanh": atanh,
    "arctan2": atan2, "multiply": mul, "subtract": sub, "divide": div, "true_divide": div, "negative": neg,
    "absolute": abs, "clip": clamp, "greater": gt, "less": lt, "greater_equal": ge, "less_equal": le,
    "not_equal": ne, "swapdims": transpose, "moveaxis": movedim, "ger": outer, "igamma": gammainc,
    "igammac": gammaincc,
}
# torch.<name>_(input, ...) for in-place Tensor methods: `torch.exp_(x)` is `x.exp_()` (torch.relu_ and
# torch.detach_ come from engine.ops.torch_level and engine's namespace utilities)
INPLACE_FUNCTIONS = (
    "abs_", "acos_", "acosh_", "addmv_", "arccos_", "arccosh_", "arcsin_", "arcsinh_", "arctan_", "arctanh_", "asin_",
    "asinh_", "atan_", "atanh_", "ceil_", "clamp_", "clamp_max_", "clamp_min_", "clip_", "cos_", "cosh_", "deg2rad_",
    "erf_", "erfc_", "exp2_", "exp_", "expm1_", "fill_", "fix_", "floor_", "frac_", "gcd_", "i0_", "lcm_", "ldexp_",
    "log10_", "log1p_", "log2_", "log_", "logit_", "nan_to_num_", "neg_", "negative_", "rad2deg_", "reciprocal_",
    "round_", "rsqrt_", "sigmoid_", "sin_", "sinc_", "sinh_", "sqrt_", "square_", "tan_", "tanh_", "trunc_",
    "xlogy_", "zero_",
)


def _applies_method(name: str):
    def fn(input: Tensor, *args, **kwargs) -> Tensor:
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"input.{name}(...): changes input in place and returns it, as torch.{name}."
    return fn


globals().update(ALIASES)
globals().update({name: _applies_method(name) for name in INPLACE_FUNCTIONS})
__all__ += [*ALIASES, *INPLACE_FUNCTIONS]
