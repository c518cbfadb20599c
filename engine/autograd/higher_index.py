"""Tensor-level backwards of the ops whose gradient is a fixed linear map of the incoming gradient.

Cumulative sums, padding, adaptive average pooling, resampling, gather/scatter and embedding lookups move
or add up values at positions that do not depend on them, so their backward is a linear map given by
the node's options and index arrays. Each becomes a LinearMap (higher_nn.py) of the gradient paired with
its adjoint, which for an op linear in its input is the op's own forward, so it differentiates to any
order. The map reads the node's saved arrays from a snapshot (`_geometry`): a backward without
retain_graph frees them while the map is still part of the gradient's graph.
"""

from __future__ import annotations

from engine.autograd.higher import differentiable
from engine.autograd.higher_nn import LinearMap, _Geometry
from engine.autograd.higher_ops import _kept
from engine.backend import array_module
from engine.ops import gather_scatter as gs
from engine.ops import interpolate, nn, pool_adaptive, reduce, shape
from engine.tensor import Tensor


def _geometry(ctx, **more) -> _Geometry:
    """The node's options and a snapshot of its saved arrays, for the maps below."""
    return _Geometry(ctx, saved=ctx.saved if "saved" in ctx.__dict__ else None, **more)


def _backward_of(geo, g):
    """The op's own array backward of `g` (input `geo.slot` of it, when the op has several)."""
    out = type(geo._node).backward(geo, g)
    return out[geo.slot] if isinstance(out, tuple) else out


def _forward_of(geo, a):
    """The op's own forward: the adjoint of its backward when the op is linear in its input."""
    return type(geo._node).forward(geo, a)


# ---- ops linear in their one input: the backward's adjoint is the forward ---------------------------------
@differentiable(reduce.Cumsum, shape.PadIndexed, interpolate.Interpolate, pool_adaptive.AdaptiveAvgPool1d,
                pool_adaptive.AdaptiveAvgPool2d, pool_adaptive.AdaptiveAvgPool3d)
def _linear_op(ctx, g):
    return LinearMap.apply(g, fn=_backward_of, adjoint=_forward_of, geo=_geometry(ctx))


def _constant_pad(geo, a):
    """Constant padding with zeros: the adjoint of Pad's backward, whatever value the forward padded with."""
    out = array_module(a).zeros(geo.shape, a.dtype)
    out[geo.dst] = a[geo.src]
    return out


@differentiable(shape.Pad)
def _pad(ctx, g):
    return LinearMap.apply(g, fn=_backward_of, adjoint=_constant_pad, geo=_geometry(ctx))


@differentiable(reduce.NanSum)
def _nansum(ctx, g):
    keep, count = ctx.saved
    g = _kept(ctx, g) * Tensor._wrap(keep)
    return g / Tensor._wrap(count) if ctx.mean else g


# ---- gather and scatter: each one's backward is the other ---------------------------------------------------
def _gather(geo, a):
    return gs.Gather.forward(geo, a, geo.saved[0])


def _scatter_src(geo, g):
    return gs._src_grad(g, geo.saved[0], geo.dim, geo.src_shape)


def _scatter_add_into_zeros(geo, src):
    return gs.ScatterAdd.forward(geo, array_module(src).zeros(geo.x_shape, src.dtype), geo.saved[0], src)


def _src_part(ctx, g):
    """The gradient of a scatter's src: g read where each src entry went."""
    geo = _geometry(ctx, x_shape=g.shape)
    return LinearMap.apply(g, fn=_scatter_src, adjoint=_scatter_add_into_zeros, geo=geo)


@differentiable(gs.Gather)
def _gather_backward(ctx, g):
    return LinearMap.apply(g, fn=_backward_of, adjoint=_gather, geo=_geometry(ctx, slot=0)), None


@differentiable(gs.ScatterAdd)
def _scatter_add(ctx, g):
    need_x, _, need_src = ctx.needs_input_grad
    return (g if need_x else None), None, (_src_part(ctx, g) if need_src else None)


@differentiable(gs.Scatter)
def _scatter(ctx, g):
    need_x, _, need_src = ctx.needs_input_grad
    gx = gsrc = None
    if need_x:  # zeroing the overwritten entries is its own adjoint
        geo = _geometry(ctx, slot=0, needs_input_grad=(True, False, False))
        gx = LinearMap.apply(g, fn=_backward_of, adjoint=_backward_of, geo=geo)
    if need_src and ctx.src_shape is not None:
        gsrc = _src_part(ctx, g)
    return gx, None, gsrc


def _index_select(geo, a):
    return gs.IndexSelect.forward(geo, a, geo.saved[0])


@differentiable(gs.IndexSelect)
def _index_select_backward(ctx, g):
    return LinearMap.apply(g, fn=_backward_of, adjoint=_index_select, geo=_geometry(ctx, slot=0)), None


def _index_add_into_zeros(geo, source):
    return gs.IndexAdd.forward(geo, array_module(source).zeros(geo.x_shape, source.dtype), geo.saved[0], source)


@differentiable(gs.IndexAdd)
def _index_add(ctx, g):
    need_x, _, need_source = ctx.needs_input_grad
    gsource = None
    if need_source:
        geo = _geometry(ctx, slot=2, needs_input_grad=(False, False, True), x_shape=g.shape)
        gsource = LinearMap.apply(g, fn=_backward_of, adjoint=_index_add_into_zeros, geo=geo)
    return (g if need_x else None), None, gsource


def _lookup(geo, gw):
    """The adjoint of Embedding's backward: the rows of `gw` the indices name (the padding row reads 0)."""
    if geo.padding_idx is not None:
        gw = gw.copy()
        gw[geo.padding_idx] = 0
    return array_module(gw).take(gw, geo.saved[0], axis=0)


@differentiable(nn.Embedding)
def _embedding(ctx, g):
    return None, LinearMap.apply(g, fn=_backward_of, adjoint=_lookup, geo=_geometry(ctx, slot=1))
