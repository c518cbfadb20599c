"""Tensor-level backwards of convolution, pooling and normalization (see higher_ops.py for the rest).

Their backwards are linear maps of the gradient (col2im, a pooling's spread) given here as data, each
paired with its adjoint, so that LinearMap differentiates to any order; a norm layer's standardized input
and its 1/std become nodes of their own (Standardize, Rstd), each of which the other's backward reads.
"""

from __future__ import annotations

import math

from engine.autograd.function import Function
from engine.autograd.higher import derived, differentiable, saved_input, saved_inputs, saved_output
from engine.backend import array_module
from engine.ops import conv, dropout_more, fold, nn, pool, pool_adaptive, pool_max, pool_windows
from engine.tensor import Tensor


# ---- linear -----------------------------------------------------------------------------------------------
@differentiable(nn.Linear)
def _linear(ctx, g):
    x, w = saved_inputs(ctx, *ctx.saved)
    need_x, need_w, need_b = ctx.needs_input_grad
    gx = g @ w if need_x else None
    g2 = g.reshape(-1, g.shape[-1])
    gw = g2.t() @ x.reshape(-1, x.shape[-1]) if need_w else None
    gb = g2.sum(dim=0) if need_b else None
    return gx, gw, gb


# ---- linear maps given as data: convolution windows, pooling ------------------------------------------
class LinearMap(Function):
    """A linear map `fn(geo, a)` whose backward is its adjoint `adjoint(geo, g)`; `geo` holds the geometry.
    Its Tensor-level backward is the same op with the two swapped, so it differentiates to any order."""

    op = "linear_map"

    def forward(ctx, a):
        return ctx.fn(ctx.geo, a)

    def backward(ctx, grad):
        return ctx.adjoint(ctx.geo, grad)


@differentiable(LinearMap)
def _linear_map(ctx, g):
    return LinearMap.apply(g, fn=ctx.adjoint, adjoint=ctx.fn, geo=ctx.geo)


def _im2col(geo, x):
    """The (N, G, C/G*prod(kernel), prod(out)) window matrices of a convolution's padded input."""
    xpad = conv.pad_spatial(conv.as_nd(x, geo.spatial), geo.padding)
    return conv._im2col(xpad, geo.kernel, geo.out_hw, geo.stride, geo.dilation, geo.groups)


def _col2im(geo, cols):
    """The adjoint of `_im2col`: each window value added back where it was read."""
    out = tuple(geo.out_hw)
    n = cols.shape[0]
    cn = cols.reshape(n, -1, *geo.kernel, *out)
    summed = conv.col2im(lambda *at: cn[(slice(None), slice(None), *at)], geo.kernel, geo.padded_hw, geo.stride,
                         geo.dilation)
    x = conv.crop(summed, geo.padding)
    return array_module(x).ascontiguousarray(x).reshape(geo.x_shape)


class _Geometry:
    """An op node's options (stride, padding, shapes) plus a few more, such as a convolution's kernel."""

    def __init__(self, ctx, **more) -> None:
        self.__dict__.update(more)
        self._node = ctx

    def __getattr__(self, name: str):
        return getattr(self._node, name)


def _nd(ctx, t: Tensor) -> Tensor:
    """A convolution's (N, C, *spatial) view of tensor `t` (a 1-D op's with height 1)."""
    return t.reshape(conv.as_nd(t.array, ctx.spatial).shape)


@differentiable(conv.Conv2d, conv.Conv1d, conv.Conv3d)
def _conv(ctx, g):
    w_arr, cols = ctx.saved
    need_x, need_w, need_b = ctx.needs_input_grad
    gn = _nd(ctx, g)
    n, o = gn.shape[:2]
    groups = ctx.groups
    gm = gn.reshape(n, groups, o // groups, -1)
    wn_shape = conv.as_nd(w_arr, ctx.spatial).shape
    geo = _Geometry(ctx, kernel=wn_shape[2:], out_hw=gn.shape[2:])
    dx = dw = db = None
    if need_w:
        c = derived(ctx, LinearMap, cols, (0,), fn=_im2col, adjoint=_col2im, geo=geo)
        dw = (gm @ c.transpose(-1, -2)).sum(dim=0).reshape(w_arr.shape)
    if need_x:
        w_rows = saved_input(ctx, 1, w_arr).reshape(groups, wn_shape[0] // groups, -1)
        dx = LinearMap.apply(w_rows.transpose(-1, -2) @ gm, fn=_col2im, adjoint=_im2col, geo=geo)
    if need_b:
        db = gn.sum(dim=_channel_axes(gn))
    return dx, dw, db


def _group_rows(geo, x):
    return conv._group_rows(conv.as_nd(x, geo.spatial), geo.groups)


def _ungroup_rows(geo, m):
    return conv._ungroup_rows(m, geo.n, geo.in_hw).reshape(geo.x_shape)


@differentiable(conv.ConvTranspose2d, conv.ConvTranspose1d, conv.ConvTranspose3d)
def _conv_transpose(ctx, g):
    # the forward is conv2d's input gradient, col2im(w_rows^T @ x_rows): its backward reads the windows of g
    w_arr, x_arr = ctx.saved
    need_x, need_w, need_b = ctx.needs_input_grad
    gn = _nd(ctx, g)
    wn_shape = conv.as_nd(w_arr, ctx.spatial).shape
    geo = _Geometry(ctx, kernel=wn_shape[2:], out_hw=ctx.in_hw, x_shape=g.shape,
                    padded_hw=tuple(size + lo + hi for size, (lo, hi) in zip(gn.shape[2:], ctx.padding)))
    cols = LinearMap.apply(g, fn=_im2col, adjoint=_col2im, geo=geo)  # (N, G, O/G*prod(kernel), prod(in))
    dx = dw = db = None
    rows = _Geometry(ctx, n=gn.shape[0])
    if need_x:
        w_rows = saved_input(ctx, 1, w_arr).reshape(ctx.groups, wn_shape[0] // ctx.groups, -1)
        dx = LinearMap.apply(w_rows @ cols, fn=_ungroup_rows, adjoint=_group_rows, geo=rows)
    if need_w:
        xm = _group_rows(rows, x_arr)
        x_rows = derived(ctx, LinearMap, xm, (0,), fn=_group_rows, adjoint=_ungroup_rows, geo=rows)
        dw = (x_rows @ cols.transpose(-1, -2)).sum(dim=0).reshape(w_arr.shape)
    if need_b:
        db = gn.sum(dim=_channel_axes(gn))
    return dx, dw, db


def _avg_spread(geo, g):
    return pool.AvgPool2d.backward(geo, g)


def _avg_gather(geo, dx):
    xpad = pool_windows.pad(dx, geo.pads)
    return pool_windows.box_sum(xpad, geo.kernel, geo.out_size, geo.stride, geo.dilation) / geo.saved[0]


@differentiable(pool.AvgPool2d, pool.AvgPool1d, pool.AvgPool3d)
def _avg_pool(ctx, g):
    geo = _Geometry(ctx, saved=ctx.saved, out_size=g.shape[-ctx.spatial:])
    return LinearMap.apply(g, fn=_avg_spread, adjoint=_avg_gather, geo=geo)


def _max_spread(geo, g):
    return pool_windows.scatter_back(g, geo.flat, geo.x_shape, geo.spatial)


def _max_gather(geo, dx):
    """The adjoint of `_max_spread`: each window reads the gradient at its max (0 for one wholly in padding)."""
    xp = array_module(dx)
    planes, plane = math.prod(geo.x_shape[:-geo.spatial]), math.prod(geo.x_shape[-geo.spatial:])
    flat = geo.flat.reshape(planes, -1)
    values = xp.concatenate([dx.reshape(planes, plane), xp.zeros((planes, 1), dx.dtype)], axis=1)
    picked = xp.take_along_axis(values, xp.where((flat < 0) | (flat >= plane), plane, flat), axis=1)
    return picked.reshape(geo.flat.shape)


@differentiable(pool_max.MaxPool2d, pool_max.MaxPool1d, pool_max.MaxPool3d, pool_adaptive.AdaptiveMaxPool1d,
                pool_adaptive.AdaptiveMaxPool2d, pool_adaptive.AdaptiveMaxPool3d)
def _max_pool(ctx, g):
    geo = _Geometry(ctx, flat=ctx.saved[0])
    return LinearMap.apply(g, fn=_max_spread, adjoint=_max_gather, geo=geo)


# ---- normalization: the standardized input and its 1/std as nodes of their own ---------------------------
def _grouped(ctx, a):
    """`a` as group norm's (N, groups, -1) when the node standardizes groups of channels, else as it is."""
    return a if not ctx.groups else a.reshape(a.shape[0], ctx.groups, -1)


class Standardize(Function):
    """xhat = (x - mean) / sqrt(var + eps) over `axes` (of the (N, groups, -1) view when `groups` is set),
    the core of layer, batch and group norm."""

    groups = 0

    def forward(ctx, x):
        xhat, rstd, _, _ = nn._standardize(array_module(x), _grouped(ctx, x), ctx.axes, ctx.eps)
        ctx.save(xhat.reshape(x.shape), rstd)
        return ctx.saved[0]

    def backward(ctx, grad):
        xhat, rstd = ctx.saved
        return nn._standardize_grad(_grouped(ctx, grad), _grouped(ctx, xhat), rstd, ctx.axes).reshape(grad.shape)


class Rstd(Standardize):
    """1 / sqrt(var + eps) over `axes` (kept as size 1): d/dx = -rstd^2 xhat / n."""

    def forward(ctx, x):
        Standardize.forward(ctx, x)
        return ctx.saved[1]

    def backward(ctx, grad):
        xhat, rstd = ctx.saved
        return (-grad * rstd * rstd * _grouped(ctx, xhat) * (rstd.size / xhat.size)).reshape(xhat.shape)


@differentiable(Standardize)
def _standardize(ctx, g):
    xhat, rstd = ctx.saved
    xh = _grouped(ctx, saved_output(ctx, xhat))
    r = derived(ctx, Rstd, rstd, (0,), saved=ctx.saved, axes=ctx.axes, groups=ctx.groups)
    g = _grouped(ctx, g)
    gx = r * (g - g.mean(dim=ctx.axes, keepdim=True) - xh * (g * xh).mean(dim=ctx.axes, keepdim=True))
    return gx.reshape(xhat.shape)


@differentiable(Rstd)
def _rstd(ctx, g):
    xhat, rstd = ctx.saved
    xh = derived(ctx, Standardize, xhat, (0,), saved=ctx.saved, axes=ctx.axes, groups=ctx.groups)
    r = saved_output(ctx, rstd)
    return (-g * r * r * _grouped(ctx, xh) * (rstd.size / xhat.size)).reshape(xhat.shape)


def _normalized(ctx, g, w, axes: tuple[int, ...], groups: int = 0):
    """The standardized input and the input's gradient of a norm layer, given the gradient of its output
    and its (shaped) weight."""
    xhat, rstd, _ = ctx.saved
    xh = derived(ctx, Standardize, xhat, (0,), saved=(xhat, rstd), axes=axes, groups=groups)
    gxhat = g if w is None else g * w
    return xh, (_standardize(xh.grad_fn, gxhat) if xh.grad_fn is not None else None)


@differentiable(nn.LayerNorm)
def _layer_norm(ctx, g):
    need_x, need_w, need_b = ctx.needs_input_grad
    w = saved_input(ctx, 1, ctx.saved[2])
    xh, gx = _normalized(ctx, g, w, ctx.axes)
    return (gx if need_x else None), (g * xh if need_w else None), (g if need_b else None)


def _per_channel(ctx, i: int, g):
    """The (C,) weight, input `i` of `ctx`, shaped to broadcast over (N, C, ...), or None."""
    w = saved_input(ctx, i, ctx.saved[2])
    return None if w is None else w.reshape(w.shape + (1,) * (g.ndim - 2))


def _channel_axes(g) -> tuple[int, ...]:
    return (0, *range(2, g.ndim))


class ScaleBy(Function):
    """An array that is `x * scale` plus a constant (batch norm's eval-mode xhat); made only by `derived`."""

    def forward(ctx, x):
        return x * ctx.scale

    def backward(ctx, grad):
        return grad * ctx.scale


@differentiable(ScaleBy)
def _scale_by(ctx, g):
    return g * Tensor._wrap(ctx.scale)


@differentiable(nn.BatchNorm)
def _batch_norm(ctx, g):
    need_x, _, _, need_w, need_b = ctx.needs_input_grad
    w, axes = _per_channel(ctx, 3, g), ctx.axes
    if ctx.training:
        xh, gx = _normalized(ctx, g, w, axes)
    else:  # the running statistics are constants: xhat is an affine map of x
        xhat, rstd, _ = ctx.saved
        xh = derived(ctx, ScaleBy, xhat, (0,), scale=rstd)
        gx = (g if w is None else g * w) * Tensor._wrap(rstd)
    gw = (g * xh).sum(dim=axes) if need_w else None
    return (gx if need_x else None), None, None, gw, (g.sum(dim=axes) if need_b else None)


@differentiable(nn.GroupNorm)
def _group_norm(ctx, g):
    need_x, need_w, need_b = ctx.needs_input_grad
    xh, gx = _normalized(ctx, g, _per_channel(ctx, 1, g), (2,), ctx.num_groups)
    axes = _channel_axes(g)
    return (gx if need_x else None), ((g * xh).sum(dim=axes) if need_w else None), \
        (g.sum(dim=axes) if need_b else None)


# ---- fold / unfold: each the other's adjoint ---------------------------------------------------------------
@differentiable(fold.Unfold)
def _unfold(ctx, g):
    return fold.Fold.apply(g, **_fold_geometry(ctx))


@differentiable(fold.Fold)
def _fold(ctx, g):
    return fold.Unfold.apply(g, **_fold_geometry(ctx))


def _fold_geometry(ctx) -> dict:
    return {k: getattr(ctx, k) for k in ("kernel", "dilation", "pads", "stride", "blocks", "image")}


@differentiable(dropout_more.AlphaDropout, dropout_more.FeatureAlphaDropout)
def _alpha_dropout(ctx, g):
    return g * Tensor._wrap(ctx.saved[0])
