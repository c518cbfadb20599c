"""Tensor-level backwards of the cumulative and order ops (engine/ops/scan.py, order.py), for create_graph=True.

cummax/cummin read their input at indices, as gather does, and kthvalue/mode as max(x, dim) does, so they
share those ops' backwards. cumprod's gradient is written again in engine ops (O(n^2) where the input has
zeros); logcumsumexp's is an ExpScan, whose own gradient is ExpScan again, so both differentiate to any order.
"""

from __future__ import annotations

from engine import ops
from engine.autograd.higher import differentiable, saved_input, saved_inputs, saved_output
from engine.autograd.higher_index import _gather_backward
from engine.autograd.higher_ops import _max_dim, const
from engine.backend import array_module
from engine.ops import order, scan
from engine.ops.reduce import reverse_cumsum

differentiable(scan.Cummax, scan.Cummin)(_gather_backward)
differentiable(order.KthvalueDim, order.ModeDim)(_max_dim)


@differentiable(scan.Cumprod)
def _cumprod(ctx, g):
    xa, ya = ctx.saved
    if xa.ndim == 0:
        return g
    x, d = saved_input(ctx, 0, xa), ctx.dim
    xp = array_module(xa)
    if not bool((xa == 0).any()):
        return reverse_cumsum(g * saved_output(ctx, ya), d) / x
    # with zeros, each x_i gets the sum over j >= i of g_j times the running product with x_i taken as 1:
    # O(n^2), as PyTorch does for double backward, since the O(n) masks of the array backward cut the
    # second derivative at a zero through the later positions (their value 0 is x_zero times something)
    n = xa.shape[d]
    xm, gm = x.movedim(d, -1), g.movedim(d, -1)
    eye = const(xp.eye(n, dtype=bool))
    products = ops.cumprod(ops.where(eye, 1.0, xm.unsqueeze(-2)), -1)  # row i: x with x_i = 1
    later = const(xp.triu(xp.ones((n, n), dtype=xa.dtype)))  # j >= i
    return (products * gm.unsqueeze(-2) * later).sum(-1).movedim(-1, d)


@differentiable(scan.Logcumsumexp)
def _logcumsumexp(ctx, g):
    xa, ya = ctx.saved
    return scan.ExpScan.apply(g, -saved_output(ctx, ya), saved_input(ctx, 0, xa), dim=ctx.dim, reverse=True)


@differentiable(scan.ExpScan)
def _exp_scan(ctx, g):
    ua, aa, ba, out = ctx.saved
    u, a, b = saved_inputs(ctx, ua, aa, ba)
    gu = scan.ExpScan.apply(g, b, a, dim=ctx.dim, reverse=not ctx.reverse)
    need_u, need_a, need_b = ctx.needs_input_grad
    return (gu if need_u else None), (u * gu if need_a else None), (g * saved_output(ctx, out) if need_b else None)
