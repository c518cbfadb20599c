"""Tensor-level backwards (for create_graph=True) of engine/ops/pointwise_port.py's own ops: its unary table (tan,
asinh, acosh, atanh, exp2, frac, sinc, deg2rad, rad2deg) and fmax/fmin.

Each mirrors its op's array derivative (same saved arrays, same formula) in engine ops; see higher.py.
"""

from __future__ import annotations

import math

from engine import ops
from engine.autograd.higher import differentiable, saved_input, saved_output
from engine.autograd.higher_ops import const
from engine.ops import pointwise_port as port

_LN2 = math.log(2)
_SINC_CURVATURE = math.pi**2 / 3  # -sinc''(0), the limit of the slope's slope


def _sinc_slope(x, g, xa):
    """(cos(pi x) - sinc(x)) / x, and at x == 0 the slope's tangent there, -pi^2/3 x: +0 (as torch), with the true
    second derivative -pi^2/3 (torch gives NaN). The formula is computed at 1 there so that no inf meets where's
    zero gradient."""
    at_zero = const(xa == 0)
    safe = ops.where(at_zero, 1.0, x)
    return g * ops.where(at_zero, 0.0 - x * _SINC_CURVATURE, (ops.cos(math.pi * safe) - port.sinc(safe)) / safe)


# name -> gradient given x (input Tensor), y (output Tensor), g, and the saved input array
UNARY = {
    "tan": lambda x, y, g, xa: g * (1 + y * y),
    "asinh": lambda x, y, g, xa: g / ops.sqrt(x * x + 1),
    "acosh": lambda x, y, g, xa: g / ops.sqrt(x * x - 1),
    "atanh": lambda x, y, g, xa: g / (1 - x * x),
    "exp2": lambda x, y, g, xa: g * y * _LN2,
    "frac": lambda x, y, g, xa: g,
    "sinc": lambda x, y, g, xa: _sinc_slope(x, g, xa),
    "deg2rad": lambda x, y, g, xa: g * port._RAD_PER_DEG,
    "rad2deg": lambda x, y, g, xa: g * port._DEG_PER_RAD,
}


@differentiable(*(port.PORT_UNARY_OPS[name][0] for name in UNARY))
def _unary(ctx, g):
    xa, ya = ctx.saved
    x = None if xa is None else saved_input(ctx, 0, xa)
    y = None if ya is None else saved_output(ctx, ya)
    return UNARY[ctx.op](x, y, g, xa)


@differentiable(port.Fmax, port.Fmin)
def _nan_ignoring(ctx, g):
    (first,) = ctx.saved
    need_a, need_b = ctx.needs_input_grad
    return (ops.where(const(first), g, 0.0) if need_a else None), (ops.where(const(first), 0.0, g) if need_b else None)
