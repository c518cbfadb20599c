"""Tensor-level backwards of the losses (see higher_ops.py for the rest).

Class-index losses work on (M, C) rows, as their ops do: an (N, C, d1, ...) input's classes are moved
last and flattened (RowSoftmax is cross_entropy's probabilities of those rows, as a node of their own).
"""

from __future__ import annotations

from engine import ops
from engine.autograd.function import Function
from engine.autograd.higher import derived, differentiable, saved_inputs, saved_output
from engine.autograd.higher_ops import const, kept_or_zero
from engine.backend import array_module
from engine.ops import activation as act
from engine.ops import elementwise, loss
from engine.tensor import Tensor

# ---- pointwise regression losses --------------------------------------------------------------------------
POINTWISE = {
    loss.MseLoss: lambda d, c: 2 * d,
    loss.L1Loss: lambda d, c: const(array_module(d.array).sign(d.array)),
    loss.SmoothL1Loss: lambda d, c: ops.clamp(d / c.beta, -1.0, 1.0),
    loss.HuberLoss: lambda d, c: ops.clamp(d, -c.delta, c.delta),
}


@differentiable(*POINTWISE)
def _pointwise_loss(ctx, g):
    (d_arr,) = ctx.saved
    d = derived(ctx, elementwise.Sub, d_arr, (0, 1))  # d = input - target
    gx = POINTWISE[type(ctx)](d, ctx) * (g / d_arr.size if ctx.reduction == "mean" else g)
    return gx, (-gx if ctx.needs_input_grad[1] else None)


# ---- class-index losses on rows ------------------------------------------------------------------------------
def _rows(t: Tensor) -> Tensor:
    """An (N, C, d1, ...) Tensor as (M, C) rows (loss._rows on Tensors)."""
    if t.ndim == 2:
        return t
    if t.ndim == 1:
        return t.reshape(1, -1)
    return t.movedim(1, -1).reshape(-1, t.shape[1])


def _unrows(t: Tensor, shape: tuple) -> Tensor:
    """(M, C) rows back to the input's (N, C, d1, ...) layout, as engine ops (loss._unrows on Tensors)."""
    if len(shape) <= 2:
        return t.reshape(shape)
    n, c, *rest = shape
    return t.reshape(n, *rest, c).movedim(-1, 1)


class RowSoftmax(Function):
    """softmax over the classes of an (N, C, d1, ...) input, as (M, C) rows."""

    op = "softmax"

    def forward(ctx, x):
        p = act.Softmax.forward(ctx, loss._rows(x))
        return p

    def backward(ctx, grad):
        (p,) = ctx.saved
        gp = grad * p
        return loss._unrows(gp - p * gp.sum(axis=1, keepdims=True), ctx.x_shape)


@differentiable(RowSoftmax)
def _row_softmax(ctx, g):
    y = saved_output(ctx, ctx.saved[0])
    gy = g * y
    return _unrows(gy - y * gy.sum(dim=1, keepdim=True), ctx.x_shape)


def _rows_of(v: Tensor) -> Tensor:
    return v.unsqueeze(-1) if v.ndim == 1 else v


def _one_hot(t, m: int, classes: int, dtype):
    xp = array_module(t)
    out = xp.zeros((m, classes), dtype)
    out[xp.arange(m), t] = 1
    return out


def _fused_coefficients(ctx, t, dtype):
    """The per-row factor, safe targets and kept rows of the plain case, which the fused CUDA kernel does not keep."""
    keep = t != ctx.ignore_index
    a = keep.astype(dtype)
    if ctx.reduction == "mean":
        a = a / keep.sum()
    return a, array_module(t).where(keep, t, 0), keep


def _kept_rows(v: Tensor, keep) -> Tensor:
    """v, exactly 0 in the ignored rows (None: none), as loss._kept_rows."""
    return v if keep is None else kept_or_zero(keep, v)


def _at_targets(v: Tensor, t, classes: int) -> Tensor:
    """(M, C) rows holding row i's v at its target t[i], exactly 0 elsewhere (even for an inf v)."""
    return kept_or_zero(_one_hot(t, t.shape[0], classes, bool), _rows_of(v))


def _row_grad(ctx, g: Tensor) -> Tensor:
    """The incoming gradient, one entry per row (reduction='none' gives it in the target's shape)."""
    return g.reshape(-1) if ctx.reduction == "none" else g


@differentiable(loss.CrossEntropy)
def _cross_entropy(ctx, g):
    p_arr, _, t, w = ctx.saved
    p = derived(ctx, RowSoftmax, p_arr, (0,), saved=(p_arr,), dim=1, x_shape=ctx.x_shape)
    a, t, keep = (ctx.a, t, ctx.keep) if ctx.fused is None else _fused_coefficients(ctx, t, p_arr.dtype)
    g = _row_grad(ctx, g)
    ga = _kept_rows(g * const(a) if hasattr(a, "shape") else g * a, keep)
    if not ctx.label_smoothing:
        dz = p * _rows_of(ga)
    else:
        gb = _kept_rows(g * const(ctx.b) if hasattr(ctx.b, "shape") else g * ctx.b, keep)
        dz = p * _rows_of(ga + gb * (p_arr.shape[1] if w is None else float(w.sum())))
        dz = dz - (_rows_of(gb) if w is None else _rows_of(gb) * const(w))
    dz = dz - _at_targets(ga, t, p_arr.shape[1])
    return _unrows(dz, ctx.x_shape), None, None


@differentiable(loss.NllLoss)
def _nll_loss(ctx, g):
    (t,) = ctx.saved
    coef = const(ctx.coef) if hasattr(ctx.coef, "shape") else ctx.coef
    shape = ctx.x_shape
    rows = (t.shape[0], shape[1] if len(shape) >= 2 else shape[0])
    dz = -_at_targets(_kept_rows(_row_grad(ctx, g) * coef, ctx.keep), t, rows[1])
    return _unrows(dz, shape), None, None


# ---- binary cross entropy and KL divergence -------------------------------------------------------------------
def _scale(ctx, g: Tensor, n: int) -> Tensor:
    return g / n if ctx.reduction == "mean" else g


@differentiable(loss.BinaryCrossEntropy)
def _binary_cross_entropy(ctx, g):
    x, y, w = saved_inputs(ctx, *ctx.saved[:3])
    need_x, need_y, need_w = ctx.needs_input_grad
    s = _scale(ctx, g, ctx.saved[0].size)
    sw = s if w is None else s * w
    log_x, log_1mx = ops.clamp(ops.log(x), min=-100.0), ops.clamp(ops.log1p(-x), min=-100.0)
    gx = sw * (x - y) / ops.clamp(x * (1 - x), min=1e-12) if need_x else None
    gy = sw * (log_1mx - log_x) if need_y else None
    gw = s * -(y * log_x + (1 - y) * log_1mx) if need_w else None
    return gx, gy, gw


@differentiable(loss.BinaryCrossEntropyWithLogits)
def _binary_cross_entropy_with_logits(ctx, g):
    x, y, w, pos_w = saved_inputs(ctx, *ctx.saved[:4])
    need_x, need_y, need_w, need_pos = ctx.needs_input_grad
    s = _scale(ctx, g, ctx.saved[0].size)
    sw = s if w is None else s * w
    sp = ops.clamp(x, min=0.0) + ops.log1p(ops.exp(-ops.abs(x)))  # softplus(x), never overflowing
    sp_neg = sp - x
    gx = gy = gw = gpos = None
    if need_x:
        sig = ops.sigmoid(x)
        gx = sw * (sig - y if pos_w is None else (1 - y) * sig - pos_w * y * (1 - sig))
    if need_y:
        gy = sw * (-x if pos_w is None else pos_w * sp_neg - sp)
    if need_w:
        gw = s * ((1 - y) * sp + (y * sp_neg if pos_w is None else pos_w * y * sp_neg))
    if need_pos:
        gpos = sw * y * sp_neg
    return gx, gy, gw, gpos


@differentiable(loss.KLDiv)
def _kl_div(ctx, g):
    xa, ta, _ = ctx.saved
    x, t = saved_inputs(ctx, xa, ta)
    g = g / (xa.shape[0] if xa.ndim else 1) if ctx.reduction == "batchmean" else _scale(ctx, g, xa.size)
    p = ops.exp(t) if ctx.log_target else t
    gt = None
    if ctx.needs_input_grad[1]:
        if ctx.log_target:
            gt = g * p * (t - x + 1)
        else:
            positive = const(ta > 0)
            gt = g * (ops.where(positive, ops.log(ops.where(positive, t, 1.0)) + 1, 0.0) - x)
    return -g * p, gt
