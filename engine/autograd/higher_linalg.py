"""Tensor-level backwards of the matrix ops: outer, addmm, inv, det, slogdet/logdet, solve, solve_triangular,
cholesky, svdvals and matrix_exp (see higher_ops.py for the scheme).

Each mirrors its op's array backward with engine ops, so that the solves and inverses in a gradient are
nodes of their own and differentiate again. svdvals' gradient U diag(g) V^T reads the singular vectors as
nodes (SingularVectors) whose backward is PyTorch's svd_backward for U or V alone.
"""

from __future__ import annotations

from engine.autograd.function import Function
from engine.autograd.higher import derived, differentiable, saved_input, saved_inputs, saved_output
from engine.backend import array_module
from engine.ops import linalg, linalg_exp
from engine.ops.shape import cat
from engine.tensor import Tensor


@differentiable(linalg.Outer)
def _outer(ctx, g):
    a, b = saved_inputs(ctx, *ctx.saved)
    need_a, need_b = ctx.needs_input_grad
    return (g @ b if need_a else None), (a @ g if need_b else None)


@differentiable(linalg.Addmm)
def _addmm(ctx, g):
    m1, m2 = ctx.saved
    need_x, need_1, need_2 = ctx.needs_input_grad
    m1, m2 = saved_input(ctx, 1, m1), saved_input(ctx, 2, m2)
    scaled = g if ctx.alpha == 1 else g * ctx.alpha
    return ((g * ctx.beta if need_x else None), (scaled @ m2.mT if need_1 else None),
            (m1.mT @ scaled if need_2 else None))


def _solve(a: Tensor, b: Tensor) -> Tensor:
    """a^-1 b for matrices b, as a Solve node (so that it differentiates again)."""
    return linalg.Solve.apply(a, b, vector=False)


@differentiable(linalg.Inverse)
def _inverse(ctx, g):
    y = saved_output(ctx, ctx.saved[0]).mT
    return -y @ g @ y


@differentiable(linalg.Solve)
def _solve_backward(ctx, g):
    a_arr, x_arr = ctx.saved
    a = saved_input(ctx, 0, a_arr)
    x = saved_output(ctx, x_arr[..., 0]).unsqueeze(-1) if ctx.vector else saved_output(ctx, x_arr)
    g2 = g.unsqueeze(-1) if ctx.vector else g
    gb = _solve(a.mT, g2)
    ga = -gb @ x.mT if ctx.needs_input_grad[0] else None
    return ga, (gb.squeeze(-1) if ctx.vector else gb)


def _triangular_solve(a: Tensor, b: Tensor, upper: bool, unit: bool) -> Tensor:
    return linalg.SolveTriangular.apply(a, b, upper=upper, unitriangular=unit)


@differentiable(linalg.SolveTriangular)
def _solve_triangular(ctx, g):
    a_arr, x_arr = ctx.saved  # a_arr: the triangle the forward read (input 0's other entries play no part)
    a, x = saved_input(ctx, 0, a_arr), saved_output(ctx, x_arr)
    upper, unit = ctx.upper, ctx.unitriangular
    gb = _triangular_solve(a.mT, g, not upper, unit)
    ga = None
    if ctx.needs_input_grad[0]:
        ga = -gb @ x.mT
        ga = ga.triu(int(unit)) if upper else ga.tril(-int(unit))
    return ga, gb


@differentiable(linalg.Cholesky)
def _cholesky(ctx, g):
    low_arr = ctx.saved[0]
    low = saved_output(ctx, low_arr)
    xp = array_module(low_arr)
    phi = (low.mT @ g).tril()
    phi = phi - Tensor._wrap(0.5 * xp.eye(low_arr.shape[-1], dtype=low_arr.dtype)) * phi  # halve the diagonal
    inner = _triangular_solve(low.mT, phi, True, False)  # L^-T phi
    s = _triangular_solve(low.mT, inner.mT, True, False).mT  # L^-T phi L^-1
    return 0.5 * (s + s.mT)


def _invertible(ctx) -> bool:
    xp = array_module(ctx.saved[0])
    return bool((xp.linalg.det(ctx.saved[0]) != 0).all())


@differentiable(linalg.Det, when=_invertible)
def _det(ctx, g):
    a_arr = ctx.saved[0]
    a = saved_input(ctx, 0, a_arr)
    d = saved_output(ctx, array_module(a_arr).linalg.det(a_arr))
    return (g * d).unsqueeze(-1).unsqueeze(-1) * linalg.Inverse.apply(a).mT


@differentiable(linalg.LogAbsDet)
def _log_abs_det(ctx, g):
    a = saved_input(ctx, 0, ctx.saved[0])
    return g.unsqueeze(-1).unsqueeze(-1) * linalg.Inverse.apply(a).mT


# ---- svdvals: the singular vectors as nodes of their own ---------------------------------------------------
class SingularVectors(Function):
    """U (`left`) or V of the thin SVD of A, made by `derived` from svdvals' saved factors; its backward is
    PyTorch's svd_backward with only gU (or gV) given: U [skew(U^T gU) / E] S V^T + (I - U U^T) gU S^-1 V^T
    (and the transpose for V), E_jk = s_k^2 - s_j^2."""

    op = "svd"

    def backward(ctx, grad):
        u, vh, s = ctx.saved
        xp = array_module(grad)
        v = linalg._t(vh)
        if not ctx.left:  # A^T = V S U^T: V is the left factor of A^T
            u, v = v, u
        s2 = s * s
        e = s2[..., None, :] - s2[..., :, None]
        k = s.shape[-1]
        eye = xp.eye(k, dtype=bool)
        e = xp.where(eye, 1, e)
        inner = linalg._t(u) @ grad
        skew = xp.where(eye, 0, (inner - linalg._t(inner)) / e)
        ga = u @ (skew * s[..., None, :]) @ linalg._t(v)
        if u.shape[-2] > k:  # the part of gU outside U's span
            ga = ga + (grad - u @ inner) / s[..., None, :] @ linalg._t(v)
        return linalg._t(ga) if not ctx.left else ga


@differentiable(linalg.SvdVals)
def _svdvals(ctx, g):
    u_arr, vh_arr, _ = ctx.saved
    u = derived(ctx, SingularVectors, u_arr, (0,), saved=ctx.saved, left=True)
    v = derived(ctx, SingularVectors, linalg._t(vh_arr), (0,), saved=ctx.saved, left=False)
    return (u * g.unsqueeze(-2)) @ v.mT


@differentiable(linalg_exp.MatrixExp)
def _matrix_exp(ctx, g):
    # the top-right block of exp([[A^T, G], [0, A^T]]), as a MatrixExp node itself (so it differentiates again),
    # with the squarings of the forward: the block is linear in G, A alone sets what it needs
    a = saved_input(ctx, 0, ctx.saved[0]).mT
    n = a.shape[-1]
    block = cat([cat([a, g], dim=-1), cat([a.new_zeros(a.shape).expand(g.shape), a.expand(g.shape)], dim=-1)],
                dim=-2)
    return linalg_exp.MatrixExp.apply(block, squarings=ctx.squarings)[..., :n, n:]
