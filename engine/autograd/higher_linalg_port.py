"""Tensor-level backwards (for create_graph=True) of engine/ops/linalg_decomp_port.py's SVD and QR.

Each mirrors its op's array `backward` (same packed factors, same formula) in engine ops; see higher.py.
"""

from __future__ import annotations

from engine.autograd.higher import differentiable, saved_output
from engine.autograd.higher_ops import const
from engine.backend import array_module
from engine.ops import cat, where
from engine.ops.linalg import solve_triangular
from engine.ops.linalg_decomp_port import QR, Svd, _check_differentiable


@differentiable(Svd)
def _svd(ctx, g):
    packed_arr = ctx.saved[0]
    packed, m = saved_output(ctx, packed_arr), ctx.m
    u, s, v = packed[..., :m, :], packed[..., m, :], packed[..., m + 1:, :]
    gu, gs, gv = g[..., :m, :], g[..., m, :], g[..., m + 1:, :]
    k = s.shape[-1]
    eye = const(array_module(packed_arr).eye(k, dtype=bool))
    s2 = s * s
    e = where(eye, 1.0, s2.unsqueeze(-2) - s2.unsqueeze(-1))
    utgu, vtgv = u.mT @ gu, v.mT @ gv
    inner = (utgu - utgu.mT) / e * s.unsqueeze(-2) + s.unsqueeze(-1) * (vtgv - vtgv.mT) / e
    ga = u @ (inner + where(eye, gs.unsqueeze(-2), 0.0)) @ v.mT
    if u.shape[-2] > k:
        ga = ga + (gu - u @ utgu) / s.unsqueeze(-2) @ v.mT
    if v.shape[-2] > k:
        ga = ga + (u / s.unsqueeze(-2)) @ (gv - v @ vtgv).mT
    return ga


@differentiable(QR)
def _qr(ctx, g):
    packed_arr = ctx.saved[0]
    m, n = ctx.m, packed_arr.shape[-2] - ctx.m
    _check_differentiable(ctx.mode, m, n)
    packed = saved_output(ctx, packed_arr)
    q, r = packed[..., :m, :], packed[..., m:, :].mT
    gq, gr = g[..., :m, :], g[..., m:, :].mT
    k = q.shape[-1]
    gy = None
    if n > k:
        gv = gr[..., :, k:]
        gy, gq = q @ gv, gq + q @ r[..., :, k:] @ gv.mT
        r, gr = r[..., :, :k], gr[..., :, :k]
    inner = r @ gr.mT - gq.mT @ q
    sym = inner.tril() + inner.tril(-1).mT
    gx = solve_triangular(r, (gq + q @ sym).mT, upper=True).mT
    return gx if gy is None else cat([gx, gy], -1)
