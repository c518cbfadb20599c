"""Tensor-level backwards of ordering, medians, atan2/xlogy, cdist, scatter_reduce, Bessel functions, in-place
writes and the remaining linear ops (see higher_ops.py for the scheme, higher_linalg.py for decompositions).

Ops that only move values (sort, topk, roll, diff, repeat_interleave, tril, diagonals, masked_select, writes
into a view) have a fixed linear map as backward: a LinearMap paired with its adjoint. The rest mirror their
op's array backward, with masks (ties, zero distances, x == 0 of xlogy) kept as constants.
"""

from __future__ import annotations

import math

import numpy as np

from engine import ops
from engine.autograd.function import Function
from engine.autograd.higher import derived, differentiable, saved_input, saved_inputs, saved_output
from engine.autograd.higher_index import _backward_of, _forward_of, _geometry
from engine.autograd.higher_nn import LinearMap, _Geometry
from engine.autograd.higher_ops import _max_dim, const, evenly_distributed
from engine.backend import array_module
from engine.ops import gather_scatter as gs
from engine.ops import (
    index,
    linalg,
    loss,
    pointwise,
    pool_max,
    reduce,
    sequence,
    shape,
    special,
    special_incomplete,
    view_write,
)
from engine.ops.convert import ToDevice
from engine.ops.elementwise import Modulo, Remainder, RoundedDiv
from engine.ops.similarity import Cdist
from engine.ops.sort import Median, MedianDim, Sort, Topk
from engine.tensor import Tensor

# ---- ops linear in their one input whose forward is the adjoint of their backward --------------------------
_SELF_ADJOINT_FORWARD = (Sort, Topk, shape.Roll, sequence.Diff, sequence.RepeatInterleave,
                         linalg.Tril, linalg.Triu)


@differentiable(*_SELF_ADJOINT_FORWARD)
def _moves(ctx, g):
    return LinearMap.apply(g, fn=_backward_of, adjoint=_forward_of, geo=_geometry(ctx))


def _diagonal_copy(geo, a):
    """The diagonal a Diagonal/Diag node reads, as a copy (its forward gives a view of the input)."""
    return linalg._diagonal_view(array_module(a), a, geo.offset, geo.dim1, geo.dim2).copy()


def _diagonal_of_embedded(geo, g):
    return array_module(g).diagonal(g, geo.offset, geo.dim1, geo.dim2).copy()


@differentiable(linalg.Diagonal, linalg.Diag)
def _diagonal(ctx, g):
    return LinearMap.apply(g, fn=_backward_of, adjoint=_diagonal_copy, geo=_geometry(ctx))


@differentiable(linalg.DiagEmbed)
def _diag_embed(ctx, g):
    return LinearMap.apply(g, fn=_diagonal_of_embedded, adjoint=_forward_of, geo=_geometry(ctx))


def _masked_select(geo, a):
    xp = array_module(a)
    return xp.broadcast_to(a, geo.shape)[xp.broadcast_to(geo.saved[0], geo.shape)]


@differentiable(index.MaskedSelect)
def _masked_select_backward(ctx, g):
    return LinearMap.apply(g, fn=_backward_of, adjoint=_masked_select, geo=_geometry(ctx, slot=0)), None


def _unpool(geo, a):
    """The adjoint of max_unpool's backward: each value put at its index (max_unpool's forward, unchecked)."""
    xp = array_module(a)
    idx = geo.saved[0]
    out = xp.zeros((idx.shape[0], math.prod(geo.output_size) + 1), a.dtype)
    out[xp.arange(idx.shape[0]).reshape(-1, 1), idx] = a.reshape(idx.shape[0], -1)
    return out[:, :-1].reshape(*geo.x_shape[:-geo.spatial], *geo.output_size)


@differentiable(pool_max.MaxUnpool1d, pool_max.MaxUnpool2d, pool_max.MaxUnpool3d)
def _max_unpool(ctx, g):
    return LinearMap.apply(g, fn=_backward_of, adjoint=_unpool, geo=_geometry(ctx, slot=0)), None


# ---- writes: x[key] = value, and in-place changes of a view ------------------------------------------------
def _zero_region(geo, a):
    out = a.copy()
    index._assign(out, geo.key, 0)
    return out


def _region_of(geo, a):
    gv = index._region(a, geo.key).copy()
    return gv.reshape((1,) * (geo.value_ndim - gv.ndim) + gv.shape) if geo.value_ndim > gv.ndim else gv


def _into_region(geo, v):
    out = array_module(v).zeros(geo.x_shape, v.dtype)
    index._assign(out, geo.key, v.reshape(v.shape[max(v.ndim - geo.region_ndim, 0):]))
    return out


@differentiable(index.SetItem)
def _setitem(ctx, g):
    need_x, need_value = ctx.needs_input_grad
    gx = LinearMap.apply(g, fn=_zero_region, adjoint=_zero_region, geo=_geometry(ctx)) if need_x else None
    gv = None
    if need_value:
        region_ndim = index._region(array_module(g.array).empty(g.shape, bool), ctx.key).ndim
        geo = _geometry(ctx, x_shape=g.shape, region_ndim=region_ndim)
        gv = LinearMap.apply(g, fn=_region_of, adjoint=_into_region, geo=geo)
    return gx, gv


def _zero_view_region(geo, a):
    out = view_write.laid_out(a, geo.where, copy=True)
    view_write._at(out, geo.where)[...] = 0
    return out


def _view_region(geo, a):
    return view_write._at(view_write.laid_out(a, geo.where), geo.where).copy()


def _into_view_region(geo, v):
    # added up, not assigned: the elements of overlapping windows (unfold) each get every window's share
    return view_write._RegionOfBase(geo.where.base_shape, geo.where, v).dense()


@differentiable(view_write.WriteView)
def _write_view(ctx, g):
    need_base, need_value = ctx.needs_input_grad
    geo = _geometry(ctx)
    gbase = LinearMap.apply(g, fn=_zero_view_region, adjoint=_zero_view_region, geo=geo) if need_base else None
    gvalue = LinearMap.apply(g, fn=_view_region, adjoint=_into_view_region, geo=geo) if need_value else None
    return gbase, gvalue


@differentiable(view_write.ViewOf)
def _view_of(ctx, g):
    return LinearMap.apply(g, fn=_into_view_region, adjoint=_view_region, geo=_geometry(ctx))


# ---- medians: the gradient goes to the median's position (or splits among the values equal to it) ---------
differentiable(reduce.LowerMedian, reduce.NanMedian, Median)(evenly_distributed)
differentiable(MedianDim, reduce.NanMedianDim)(_max_dim)


# ---- two-argument math ------------------------------------------------------------------------------------
@differentiable(pointwise.Atan2)
def _atan2(ctx, g):
    a, b = saved_inputs(ctx, *ctx.saved)
    need_a, need_b = ctx.needs_input_grad
    r2 = a * a + b * b
    return (g * b / r2 if need_a else None), (-g * a / r2 if need_b else None)


@differentiable(special.XLogY)
def _xlogy(ctx, g):
    xa, ya = ctx.saved
    x, y = saved_inputs(ctx, xa, ya)
    need_x, need_y = ctx.needs_input_grad
    gx = gy = None
    if need_x:  # log(y), and 0 where x == 0 and log(y) is undefined, as the array backward
        xp = array_module(g.array)
        zero = const(special._log_undefined_at_zero(ctx.log, xp.asarray(xa), xp.asarray(ya)))
        log = getattr(ops, ctx.log)
        gx = g * ops.where(zero, 0.0, log(ops.where(zero, 1.0, y)) if isinstance(y, Tensor) else
                           getattr(math, ctx.log)(y))
    if need_y:
        gy = g * x / (y if ctx.log == "log" else 1 + y)
    return gx, gy


@differentiable(special.Logit)
def _logit(ctx, g):
    (xa,) = ctx.saved
    x = saved_input(ctx, 0, xa)
    if ctx.eps is None:  # as the array backward: NaN outside [0, 1]
        return g / ops.where(const((xa < 0) | (xa > 1)), math.nan, x * (1 - x))
    return ops.where(const((xa < ctx.eps) | (xa > 1 - ctx.eps)), 0.0, g / (x * (1 - x)))


@differentiable(Modulo, Remainder, pointwise.Fmod)
def _modulo(ctx, g):
    a, b = ctx.saved
    with np.errstate(all="ignore"):
        quotient = getattr(array_module(g.array), ctx.rounding)(a / b)
    return g, (-g * const(quotient) if ctx.needs_input_grad[1] else None)


@differentiable(pointwise.Round)
def _round(ctx, g):
    return g * 0


@differentiable(RoundedDiv)
def _rounded_div(ctx, g):
    return tuple(g * 0 if need else None for need in ctx.needs_input_grad)


@differentiable(pointwise.NanToNum)
def _nan_to_num(ctx, g):
    return g * const(array_module(g.array).isfinite(ctx.saved[0]))


def _over_x(y: Tensor, x: Tensor, xa) -> Tensor:
    """y / x for y = i1(x) or i1e(x), and its limit 1/2 at x == 0 (where its derivative is 0)."""
    zero = const(xa == 0)
    return ops.where(zero, 0.5, y / ops.where(zero, 1.0, x))


def _sign(xa) -> Tensor:
    return const(array_module(xa).sign(xa))


BESSEL = {  # d i0 = i1;  d i1 = i0 - i1 / x;  the scaled ones add -sign(x) times themselves
    "i0": lambda x, xa: special.i1(x),
    "i0e": lambda x, xa: special.i1e(x) - _sign(xa) * special.i0e(x),
    "i1": lambda x, xa: special.i0(x) - _over_x(special.i1(x), x, xa),
    "i1e": lambda x, xa: special.i0e(x) - _over_x(special.i1e(x), x, xa) - _sign(xa) * special.i1e(x),
}


def _bessel(ctx, g):
    xa = ctx.saved[0]
    return g * BESSEL[ctx.op](saved_input(ctx, 0, xa), xa)


for _name in BESSEL:
    differentiable(special.BESSEL_OPS[_name][0])(_bessel)


# ---- cdist ---------------------------------------------------------------------------------------------------
@differentiable(Cdist)
def _cdist(ctx, g):
    x1a, x2a, da = ctx.saved
    need_1, need_2 = ctx.needs_input_grad
    p = ctx.p
    if p == 0:
        return (g.new_zeros(x1a.shape) if need_1 else None), (g.new_zeros(x2a.shape) if need_2 else None)
    x1, x2 = saved_inputs(ctx, x1a, x2a)
    xp = array_module(da)
    positive = da > 0  # a zero distance has a zero gradient, as in PyTorch
    if ctx.mm:  # sum over r of g/d (x1_p - x2_r), as matrix products
        d = saved_output(ctx, da)
        w = ops.where(const(positive), g / ops.where(const(positive), d, 1.0), 0.0)
        wt = w.mT
        g1 = w.sum(-1).unsqueeze(-1) * x1 - w @ x2 if need_1 else None
        g2 = wt.sum(-1).unsqueeze(-1) * x2 - wt @ x1 if need_2 else None
        return g1, g2
    diff_a = x1a[..., :, None, :] - x2a[..., None, :, :]
    sign, a = const(xp.sign(diff_a)), xp.abs(diff_a)
    gk = g.unsqueeze(-1)
    if math.isinf(p):  # like amax: split among the tied largest |x1 - x2|
        hit = a == da[..., None]
        per = gk * sign * const(hit / xp.maximum(hit.sum(-1, keepdims=True), 1))
    elif p == 1:
        per = gk * sign
    else:  # sign |diff|^(p-1) / d^(p-1), taken as 0 where the distance is 0
        diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
        dk = saved_output(ctx, da).unsqueeze(-1)
        nonzero, pos = const(a > 0), const(positive[..., None])
        per = gk * sign * ops.where(nonzero, ops.abs(diff), 1.0) ** (p - 1) * ops.where(pos, dk, 1.0) ** (1 - p)
        per = ops.where(pos, per, 0.0) if p < 1 else per
    return (per.sum(-2) if need_1 else None), (-per.sum(-3) if need_2 else None)


# ---- scatter_reduce ---------------------------------------------------------------------------------------
def _outside_targets(ctx, g: Tensor) -> Tensor:
    """`g` with the positions index names zeroed (include_self=False: x's own values there were dropped)."""
    xp = array_module(g.array)
    keep = xp.ones(g.shape or (1,), g.array.dtype)
    keep[gs._along(xp, gs._at_least_1d(ctx.saved[0]), ctx.dim)] = 0
    return g * const(keep.reshape(g.shape))


def _read_at(geo, a):
    return gs._src_grad(a, geo.index, geo.dim, geo.src_shape)


def _add_at(geo, src):
    """The adjoint of `_read_at`: src added into zeros where index sends it."""
    xp = array_module(src)
    index = gs._at_least_1d(geo.index)
    out = xp.zeros(geo.x_shape or (1,), src.dtype)
    gs.scatter_add_into(xp)(out, gs._along(xp, index, geo.dim), gs._at_least_1d(src)[gs._head(index.shape)])
    return out.reshape(geo.x_shape)


def _read_at_index(ctx, t: Tensor) -> Tensor:
    """t[p with index[p] at dim] for each position p of index, padded to src's shape (zeros beyond index)."""
    geo = _Geometry(ctx, index=ctx.saved[0], x_shape=t.shape)
    return LinearMap.apply(t, fn=_read_at, adjoint=_add_at, geo=geo)


@differentiable(gs.ScatterReduce)
def _scatter_reduce(ctx, g):
    index_a, xa, srca, outa = ctx.saved
    need_x, _, need_src = ctx.needs_input_grad
    reduce_, xp = ctx.reduce, array_module(xa)
    if reduce_ == "sum":
        gx, gsrc = g, (_read_at_index(ctx, g) if need_src else None)
    elif reduce_ == "mean":
        i1 = gs._at_least_1d(index_a)
        n = gs._reduce_into(xp.full(xa.shape or (1,), int(ctx.include_self), xa.dtype), i1,
                            xp.ones(gs._at_least_1d(srca).shape, xa.dtype), ctx.dim, "sum", True)
        gx = g / const(xp.maximum(n, 1).reshape(xa.shape))
        gsrc = _read_at_index(ctx, gx) if need_src else None
    elif reduce_ == "prod":
        gx, gsrc = _prod_grads(ctx, g)
    else:  # amax, amin: split evenly among the values equal to the result (the engine's rule)
        i1 = gs._at_least_1d(index_a)
        at = gs._along(xp, i1, ctx.dim)
        x1, out1 = gs._at_least_1d(xa), gs._at_least_1d(outa)
        src1 = gs._at_least_1d(srca)[gs._head(i1.shape)]
        contributes = (x1 == out1).astype(xa.dtype)
        if not ctx.include_self:
            contributes[at] = 0
        chosen = (src1 == out1[at]).astype(xa.dtype)
        count = gs._reduce_into(contributes, i1, chosen, ctx.dim, "sum", True)
        share = g / const(count.reshape(xa.shape))
        gx = share * const(contributes.reshape(xa.shape))
        gsrc = None
        if need_src:
            chosen_padded = gs._padded(chosen, ctx.src_shape)
            gsrc = _read_at_index(ctx, share) * const(chosen_padded)
    if need_x and not ctx.include_self:
        gx = _outside_targets(ctx, gx)
    return (gx if need_x else None), None, gsrc


def _prod_grads(ctx, g):
    """prod's gradients as PyTorch writes them: each factor gets the product of the others."""
    index_a, xa, srca, outa = ctx.saved
    need_x, _, need_src = ctx.needs_input_grad
    x, src = saved_input(ctx, 0, xa), saved_input(ctx, 2, srca)
    index_t = Tensor._wrap(index_a)
    dim, keep_self = ctx.dim, ctx.include_self
    gx = gsrc = None
    if need_x:
        x_zero = const(xa == 0)
        x_or_1 = ops.where(x_zero, 1.0, x)
        gx = g * ops.scatter_reduce(x_or_1, dim, index_t, src, "prod", include_self=keep_self) / x_or_1
    if need_src:
        xp = array_module(xa)
        i1 = gs._at_least_1d(index_a)
        src_zero = gs._at_least_1d(srca)[gs._head(i1.shape)] == 0
        zeros_there = gs._reduce_into(xp.zeros(xa.shape or (1,), xa.dtype), i1, src_zero.astype(xa.dtype),
                                      dim, "sum", True)[gs._along(xp, i1, dim)]
        if bool((zeros_there > 1).any()):
            raise NotImplementedError(
                "create_graph=True: scatter_reduce's prod is not twice differentiable in src where more than one "
                "zero of src goes to one position (nor is it in PyTorch)")
        lone = xp.zeros(srca.shape or (1,), bool)
        lone[gs._head(i1.shape)] = src_zero
        lone = const(lone.reshape(srca.shape))
        others = ops.scatter_reduce(x, dim, index_t, ops.where(lone, 1.0, src), "prod", include_self=keep_self)
        out = saved_output(ctx, outa)
        src_or_1 = ops.where(const(srca == 0), 1.0, src)
        gsrc = ops.where(lone, _read_at_index(ctx, g * others), _read_at_index(ctx, g * out) / src_or_1)
    return gx, gsrc


# ---- cross entropy against class probabilities ----------------------------------------------------------------
class RowLogSoftmax(Function):
    """log_softmax over the classes of an (N, C, d1, ...) input, as (M, C) rows (made only by `derived`)."""

    op = "log_softmax"

    def backward(ctx, grad):
        (logp,) = ctx.saved
        p = array_module(logp).exp(logp)
        return loss._unrows(grad - p * grad.sum(axis=1, keepdims=True), ctx.x_shape)


@differentiable(RowLogSoftmax)
def _row_log_softmax(ctx, g):
    from engine.autograd.higher_losses import _unrows

    y = saved_output(ctx, ctx.saved[0])
    return _unrows(g - ops.exp(y) * g.sum(dim=1, keepdim=True), ctx.x_shape)


def _smoothed_rows(geo, q):
    """The linear part of q -> (q (1 - eps) + eps / C) * w, on (M, C) rows."""
    out = loss._rows(q) * (1 - geo.label_smoothing)
    return out if geo.saved[3] is None else out * geo.saved[3]


def _smoothed_rows_adjoint(geo, g):
    g = g * (1 - geo.label_smoothing)
    return loss._unrows(g if geo.saved[3] is None else g * geo.saved[3], geo.x_shape)


@differentiable(loss.SoftCrossEntropy)
def _soft_cross_entropy(ctx, g):
    from engine.autograd.higher_losses import RowSoftmax, _rows, _unrows

    pa, logpa, qwa, w, qa = ctx.saved
    need_x, need_q, need_w = ctx.needs_input_grad
    g = g.reshape(-1, 1) if ctx.reduction == "none" else g
    if ctx.reduction == "mean":
        g = g / pa.shape[0]
    weight = None if w is None else saved_input(ctx, 2, w)  # a constant unless it needs a gradient
    if need_w:  # q (smoothed) times w, on the graph of both
        q = loss.smoothed(_rows(saved_input(ctx, 1, qa)), ctx.label_smoothing)
        qw = q * weight
    else:
        qw = derived(ctx, LinearMap, qwa, (1,), fn=_smoothed_rows, adjoint=_smoothed_rows_adjoint,
                     geo=_geometry(ctx))
    gx = gq = gw = None
    if need_x:
        p = derived(ctx, RowSoftmax, pa, (0,), saved=(pa,), dim=1, x_shape=ctx.x_shape)
        gx = _unrows(g * (p * qw.sum(dim=1, keepdim=True) - qw), ctx.x_shape)
    if need_q or need_w:
        logp = derived(ctx, RowLogSoftmax, logpa, (0,), saved=(logpa,), x_shape=ctx.x_shape)
    if need_q:
        gq = -g * logp * (1 - ctx.label_smoothing)
        gq = _unrows(gq if w is None else gq * weight, ctx.x_shape)
    if need_w:  # as the op's: -sum over rows of g * (smoothed q) * log p
        gw = -(g * q * logp).sum(dim=0)
    return gx, gq, gw


# ---- incomplete gamma and beta: the density, in x only (as the ops' own backwards) -------------------------
def _refuse_shape_gradients(ctx, g, shapes: int) -> None:
    """The op's own error when a gradient in its shape parameters is asked for."""
    if any(ctx.needs_input_grad[:shapes]):
        type(ctx).backward(ctx, g.array)


@differentiable(special_incomplete.IncompleteGamma)
def _incomplete_gamma(ctx, g):
    _refuse_shape_gradients(ctx, g, 1)
    a, xa = ctx.saved
    x = saved_input(ctx, 1, xa)
    xp = array_module(xa)
    with np.errstate(all="ignore"):
        log_front = special_incomplete._lgamma(xp, a)
    density = ops.exp(ops.xlogy(const(a - 1), x) - x - const(log_front))
    return None, (-g if ctx.upper else g) * density


@differentiable(special_incomplete.IncompleteBeta)
def _incomplete_beta(ctx, g):
    _refuse_shape_gradients(ctx, g, 2)
    a, b, xa = ctx.saved
    x = saved_input(ctx, 2, xa)
    xp = array_module(xa)
    with np.errstate(all="ignore"):
        lg = special_incomplete._lgamma
        log_front = lg(xp, a + b) - lg(xp, a) - lg(xp, b)
    inside = const((xa >= 0) & (xa <= 1))
    log_density = ops.xlogy(const(a - 1), x) + ops.xlogy(const(b - 1), 1 - x) + const(log_front)
    return None, None, g * ops.where(inside, ops.exp(log_density), 0.0)


@differentiable(ToDevice)
def _to_device(ctx, g):
    return ToDevice.apply(g, device=ctx.source)
