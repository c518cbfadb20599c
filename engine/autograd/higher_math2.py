"""Tensor-level backwards (for create_graph=True) of engine/ops/math_more.py's and linalg_more.py's own ops:
logaddexp(2), hypot, copysign, nextafter, frexp, ldexp, cross and the LU factorization.

Each mirrors its op's array `backward` (same saved arrays, same formula) in engine ops; see higher.py.
"""

from __future__ import annotations

import math

from engine import ops
from engine.autograd.higher import differentiable, saved_input, saved_inputs, saved_output
from engine.autograd.higher_ops import const
from engine.backend import array_module
from engine.ops import linalg_more, math_more
from engine.ops.linalg import solve_triangular


@differentiable(math_more.LogAddExp, math_more.LogAddExp2)
def _logaddexp(ctx, g):
    a_arr, b_arr = ctx.saved
    a, b = saved_inputs(ctx, a_arr, b_arr)
    same = math_more._same_infinity(array_module(a_arr), a_arr, b_arr)
    d = ops.where(const(same), 0.0, a - b)  # where's other branch gets a zero, never a NaN, gradient
    need_a, need_b = ctx.needs_input_grad
    return (g * ops.sigmoid(ctx.scale * d) if need_a else None), (g * ops.sigmoid(-ctx.scale * d) if need_b else None)


@differentiable(math_more.Hypot)
def _hypot(ctx, g):
    a_arr, b_arr, out_arr = ctx.saved
    a, b = saved_inputs(ctx, a_arr, b_arr)
    scaled = g / ops.where(const(out_arr == 0), 1.0, saved_output(ctx, out_arr))
    need_a, need_b = ctx.needs_input_grad
    return (scaled * a if need_a else None), (scaled * b if need_b else None)


@differentiable(math_more.Copysign)
def _copysign(ctx, g):
    (slope,) = ctx.saved
    return g * const(slope), (ops.zeros_like(g) if ctx.needs_input_grad[1] else None)  # torch's zero, as backward


@differentiable(math_more.Nextafter)
def _nextafter(ctx, g):
    return g, (ops.zeros_like(g) if ctx.needs_input_grad[1] else None)


@differentiable(math_more.Frexp)
def _frexp(ctx, g):
    (exponent,) = ctx.saved
    return ops.ldexp(g, const(-exponent))


@differentiable(math_more.Ldexp)
def _ldexp(ctx, g):
    b_arr, out = ctx.saved
    b = saved_input(ctx, 1, b_arr)
    need_a, need_b = ctx.needs_input_grad
    ga = gb = None
    if need_a:
        ga = ops.ldexp(g, b) if ctx.integral else g * 2.0 ** b
    if need_b:
        gb = g * saved_output(ctx, out) * math.log(2)
    return ga, gb


@differentiable(linalg_more.Cross)
def _cross(ctx, g):
    a, b = saved_inputs(ctx, *ctx.saved)
    need_a, need_b = ctx.needs_input_grad
    return (linalg_more.Cross.apply(b, g, dim=ctx.dim) if need_a else None), \
        (linalg_more.Cross.apply(g, a, dim=ctx.dim) if need_b else None)


@differentiable(linalg_more.LUFactor)
def _lu_factor(ctx, g):
    lu_arr, perm = ctx.saved
    xp = array_module(lu_arr)
    m, n = lu_arr.shape[-2:]
    k = min(m, n)
    lu = saved_output(ctx, lu_arr)
    low, up = linalg_more._unpack(lu, k)
    strict, upper = const(xp.tri(m, k, -1, dtype=bool)), const(~xp.tri(k, n, -1, dtype=bool))
    g_low, g_up = ops.where(strict, g[..., :, :k], 0.0), ops.where(upper, g[..., :k, :], 0.0)
    low1, up1 = low[..., :k, :], up[..., :, :k]
    inner = ops.where(strict[:k], low1.mT @ g_low[..., :k, :] - g_up[..., :, k:] @ up[..., :, k:].mT, 0.0) + \
        ops.where(upper[:, :k], g_up[..., :, :k] @ up1.mT - low[..., k:, :].mT @ g_low[..., k:, :], 0.0)
    right = ops.cat([solve_triangular(up1.mT, inner, upper=False, left=False), g_up[..., :, k:]], -1)
    top = solve_triangular(low1.mT, right, upper=True, unitriangular=True)
    if m > k:
        top = ops.cat([top, solve_triangular(up1.mT, g_low[..., k:, :], upper=False, left=False)], -2)
    order = xp.argsort(perm, axis=-1)
    return top.gather(-2, const(xp.broadcast_to(order[..., None], top.shape)))
