"""Loss functions: cross entropy (fused with log-softmax), nll, regression losses and binary cross entropy,
each one Function (the margin, embedding and likelihood losses are composed in engine.ops.margin_loss).

Class-index losses work on rows: the class axis (1) of an (N, C, d1, ...) input is moved last and the
rest flattened, so one (M, C) kernel serves every shape.

Class indices are checked on the CPU at once; on a GPU on the device, with the error raised by a later
call (see cross_entropy), since reading the verdict at once would make every training step wait for
the GPU.
"""

from __future__ import annotations

import functools

import numpy as np

from engine import kernels, user_warning
from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.elementwise import keep_where
from engine.ops.index_checks import LATER, all_below, first_bad, out_of_range, position, settled_checks
from engine.ops.nn import require_float, require_same_dtype
from engine.ops.reduce import divided
from engine.tensor import Tensor

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss", "kl_div",
           "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss"]

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(op: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(v, reduction: str):
    return v if reduction == "none" else (v.mean() if reduction == "mean" else v.sum())


def _grad_scale(grad, reduction: str, n: int):
    """The incoming gradient as a factor on each element's derivative."""
    return divided(grad, n) if reduction == "mean" else grad


def _col(v):
    """A per-row vector as an (M, 1) column; scalars unchanged."""
    return v[:, None] if getattr(v, "ndim", 0) == 1 else v


# ---- rows: (N, C, d1, ...) <-> (M, C) ---------------------------------------------------------------
def _rows(x):
    if x.ndim == 2:
        return x
    if x.ndim == 1:
        return x.reshape(1, -1)
    return array_module(x).moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _unrows(g, shape: tuple[int, ...]):
    if len(shape) <= 2:
        return g if g.shape == shape else g.reshape(shape)
    n, c, *rest = shape
    return array_module(g).moveaxis(g.reshape(n, *rest, c), -1, 1)


def _check_index_target(op: str, x, t, weight) -> None:
    require_float(op, x)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index target must be an integer tensor, got {t.dtype}; "
                        "use target.long()")
    expected = x.shape[:1] + x.shape[2:] if x.ndim >= 2 else ()
    if t.shape != expected:
        if x.ndim >= 2 and t.ndim >= 1 and t.shape[0] != x.shape[0]:
            raise ShapeError(f"{op}: target has shape {t.shape} but input has batch size {x.shape[0]} "
                             f"(input shape {x.shape})")
        if t.ndim == x.ndim and t.ndim >= 3 and t.shape[1] == 1 and t.shape[:1] + t.shape[2:] == expected:
            raise ShapeError(f"{op}: target has shape {t.shape} but input of shape {x.shape} needs a target of "
                             f"shape {expected}: drop the target's channel dimension with target.squeeze(1)")
        if x.ndim >= 3 and t.shape == x.shape[:-1]:  # (N, H, W, C) logits: the classes last
            order = ", ".join(map(str, (0, x.ndim - 1, *range(1, x.ndim - 1))))
            raise ShapeError(f"{op}: target has shape {t.shape} but input of shape {x.shape} needs a target of "
                             f"shape {expected}: the classes are the input's last dimension (channels last?); "
                             f"they go in dim 1, input.permute({order})")
        if t.shape == x.shape:  # one-hot labels: read as class probabilities, which must be floats
            raise ShapeError(f"{op}: an integer target of the input's shape {x.shape} (one-hot labels?): class "
                             f"indices have shape {expected} (target.argmax(1)), class probabilities must be "
                             "floating point (target.float())")
        raise ShapeError(f"{op}: target has shape {t.shape} but input of shape {x.shape} needs a target "
                         f"of shape {expected}")
    classes = x.shape[1] if x.ndim >= 2 else x.shape[0]
    if weight is not None:
        if weight.shape != (classes,):
            raise ShapeError(f"{op}: weight has shape {weight.shape} but input has {classes} classes")
        require_same_dtype(op, x, weight=weight)


def _out_of_bounds(op: str, target: int, classes: int, ignore_index: int) -> str:
    return (f"{op}: target {target} is out of bounds for {classes} classes "
            f"(valid: 0 to {classes - 1}, or ignore_index={ignore_index})")


def _class_targets(op: str, t, classes: int, ignore_index: int):
    """Check class indices; return them safe to gather with, and the mask of kept rows (None: all kept)."""
    if not 0 <= ignore_index < classes and all_below(t, classes):
        return t, None  # the common case: every target is a class, so none equals ignore_index
    keep = t != ignore_index
    t = array_module(t).where(keep, t, 0)
    if not all_below(t, classes):
        message = _out_of_bounds(op, int(t[(t < 0) | (t >= classes)][0]), classes, ignore_index)
        kept = t[keep]
        if kept.size and int(kept.min()) >= 1 and int(kept.max()) == classes:  # 1..C for C classes
            message += f"; the targets run from 1 to {classes}: numbered from 1? subtract 1 (0 to {classes - 1})"
        raise IndexError(message)
    return t, keep


def _device_class_targets(xp, t, classes: int, ignore_index: int):
    """_class_targets without reading anything back: (targets safe to gather with, kept rows, status).

    A bad target's row is dropped like an ignored one; status is (M - first bad row, its target), or
    (0, 0), for DeviceChecks to read back later.
    """
    m = t.shape[0]
    info = np.iinfo(t.dtype)
    keep = t != ignore_index if info.min <= ignore_index <= info.max else xp.ones(m, dtype=bool)
    bad = keep & out_of_range(t, classes)
    keep ^= bad
    return xp.where(keep, t, 0), keep, first_bad(xp, bad, t)


def _bad_target(op: str, classes: int, ignore_index: int, shape: tuple, values) -> IndexError | None:
    """The error a device-side check reports in `values` = (M - first bad row, its target); None if none."""
    key, target = values
    if not key:
        return None
    at = position("target", shape, key) if shape else "the target"
    return IndexError(f"{_out_of_bounds(op, target, classes, ignore_index)}; found at {at} by the device-side "
                      f"check of an earlier {op} call, which left that element out of its loss {LATER}")


def _post_check(ctx, checks, status, classes: int) -> None:
    ctx.check = checks.post(status, functools.partial(_bad_target, ctx.op, classes, ctx.ignore_index, ctx.t_shape))


def _targets(ctx, checks, xp, t, classes: int):
    """Targets safe to gather with and the kept rows (None: all): checked now on the CPU, posted on a GPU."""
    if checks is None:
        return _class_targets(ctx.op, t, classes, ctx.ignore_index)
    safe, keep, status = _device_class_targets(xp, t, classes, ctx.ignore_index)
    _post_check(ctx, checks, status, classes)
    return safe, keep


def _nll_coefficients(t, keep, weight, reduction: str, dtype):
    """Each row's factor on -log p[target]: its class weight (0 if ignored) over mean's divisor.

    Returns (factor, divisor); the factor is a scalar when every row counts alike (the fast path).
    """
    row_w = None if weight is None else weight[t]
    if keep is not None:
        row_w = keep.astype(dtype) if row_w is None else row_w * keep
    if reduction != "mean":
        return (1.0 if row_w is None else row_w), 1
    divisor = t.shape[0] if row_w is None else row_w.sum()  # PyTorch divides by the summed weights
    return (1.0 if row_w is None else row_w) / divisor, divisor


def _kept_rows(v, keep):
    """v (one value per row, or one for all) with exactly 0 in the ignored rows, even where a row's logits or its
    incoming gradient are inf (its factor of 0 would give NaN): an ignored row counts for nothing. Mean's 0 / 0
    over no counted rows is in the factor, not here, so that that loss stays NaN, as in PyTorch."""
    return v if keep is None else keep_where(v, keep)


def _finish(loss, reduction: str, shape):
    return loss.reshape(shape) if reduction == "none" else loss.sum()


class CrossEntropy(Function):
    """log_softmax and nll_loss over class indices fused; with class weights, ignore_index and smoothing."""

    op = "cross_entropy"
    fused = None  # on CUDA, engine.kernels' one-kernel forward and backward of the plain case
    check = None  # on CUDA, the posted target check (engine.kernels.DeviceChecks)
    keep = None  # the rows that count (None: all), where some target is ignore_index

    def forward(ctx, x, t, w):
        _check_index_target(ctx.op, x, t, w)
        ctx.x_shape, ctx.t_shape = x.shape, t.shape
        xp = array_module(x)
        checks = settled_checks(xp)
        z = _rows(x)
        m, classes = z.shape
        t = t if t.ndim == 1 else t.reshape(-1)
        fused = kernels.get("cross_entropy", xp)
        if fused is not None and w is None and not ctx.label_smoothing and classes <= fused.MAX_CLASSES \
                and x.dtype.itemsize >= 4:  # CUDA, the plain case: one kernel each way, the check included
            ctx.fused = fused
            loss, reduced, p, ctx.status = fused.forward(z, t, ctx.ignore_index, ctx.reduction)
            _post_check(ctx, checks, ctx.status, classes)
            ctx.save(p, None, t, None)
            return loss.reshape(ctx.t_shape) if reduced is None else reduced
        t, keep = _targets(ctx, checks, xp, t, classes)
        shifted = z - z.max(axis=1, keepdims=True)
        p = xp.exp(shifted)
        total = p.sum(axis=1)
        p /= total[:, None]
        lse = xp.log(total)
        rows = xp.arange(m)
        eps = ctx.label_smoothing
        # loss per row = a * (-log p[target]) + b * (-sum_c w_c log p_c); a and b fold in the smoothing
        # split, class weights, ignored rows and mean's divisor
        a, divisor = _nll_coefficients(t, keep, w, ctx.reduction, x.dtype)
        a = a * (1 - eps) if eps else a
        loss = a * _kept_rows(lse - shifted[rows, t], keep)
        b = 0.0
        if eps:
            b = eps / classes if keep is None else keep.astype(x.dtype) * (eps / classes)
            if ctx.reduction == "mean":
                b = b / divisor
            smooth = lse * classes - shifted.sum(axis=1) if w is None else lse * w.sum() - shifted @ w
            loss += b * _kept_rows(smooth, keep)
        ctx.save(p, rows, t, w)
        ctx.a, ctx.b, ctx.keep = a, b, keep
        return _finish(loss, ctx.reduction, ctx.t_shape)

    def backward(ctx, grad):
        if ctx.check is not None:
            ctx.check.due = True  # the GPU is a whole backward past it by the next call
        p, rows, t, w = ctx.saved
        g = grad.reshape(-1) if ctx.reduction == "none" else grad
        if ctx.fused is not None:
            dz = ctx.fused.backward(p, t, g, ctx.ignore_index, ctx.status, ctx.reduction == "mean")
            return _unrows(dz, ctx.x_shape), None, None
        ga = _kept_rows(g * ctx.a, ctx.keep)
        # d/dz = p * (a + b * sum_c w_c) - a * onehot(target) - b * w
        if not ctx.label_smoothing:
            dz = p * _col(ga)
        else:
            gb = _kept_rows(g * ctx.b, ctx.keep)
            dz = p * _col(ga + gb * (p.shape[1] if w is None else w.sum()))
            dz -= _col(gb) if w is None else _col(gb) * w
        dz[rows, t] -= ga
        return _unrows(dz, ctx.x_shape), None, None


def smoothed(q, eps: float):
    """Class probabilities q (M, C) with label smoothing eps: q (1 - eps) + eps / C."""
    return q * (1 - eps) + eps / q.shape[1] if eps else q


class SoftCrossEntropy(Function):
    """Cross entropy against class probabilities of the input's shape (optionally smoothed and weighted)."""

    op = "cross_entropy"

    def forward(ctx, x, q, w):
        require_float(ctx.op, x)
        classes = x.shape[1] if x.ndim >= 2 else x.shape[0]
        if w is not None and w.shape != (classes,):
            raise ShapeError(f"cross_entropy: weight has shape {w.shape} but input has {classes} classes")
        require_same_dtype(ctx.op, x, target=q, weight=w)
        ctx.x_shape, ctx.t_shape = x.shape, x.shape[:1] + x.shape[2:] if x.ndim >= 2 else ()
        xp = array_module(x)
        need_w = (ctx.needs_input_grad or (False,) * 3)[2]
        q_in, z, q = q, _rows(x), _rows(q)
        shifted = z - z.max(axis=1, keepdims=True)
        p = xp.exp(shifted)
        total = p.sum(axis=1, keepdims=True)
        p /= total
        logp = shifted - xp.log(total)
        q = smoothed(q, ctx.label_smoothing)
        qw = q if w is None else q * w
        loss = -(qw * logp).sum(axis=1)
        if ctx.reduction == "mean":  # PyTorch divides by the number of rows, whatever the weights
            loss /= z.shape[0]
        ctx.save(p, logp, qw, w, q_in if need_w else None)  # the target only for the weight's gradient
        return _finish(loss, ctx.reduction, ctx.t_shape)

    def backward(ctx, grad):
        p, logp, qw, w, q = ctx.saved
        need_x, need_q, need_w = ctx.needs_input_grad
        g = grad.reshape(-1, 1) if ctx.reduction == "none" else grad
        if ctx.reduction == "mean":
            g = g / p.shape[0]
        gx = _unrows(g * (p * qw.sum(axis=1, keepdims=True) - qw), ctx.x_shape) if need_x else None
        gq = gw = None
        if need_q:
            gq = -g * logp * (1 - ctx.label_smoothing)
            gq = _unrows(gq if w is None else gq * w, ctx.x_shape)
        if need_w:  # d/dw_c = -sum over rows of g * (smoothed q)_c * log p_c
            gw = -(g * smoothed(_rows(q), ctx.label_smoothing) * logp).sum(axis=0)
        return gx, gq, gw


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy of logits (N, C, d1, ...) against class indices (N, d1, ...) or class probabilities.

    A class index must be 0 to C-1 or `ignore_index`; any other raises IndexError, naming it. On the
    CPU this call raises it. On a GPU the check runs on the device, so that a training step never
    waits for the GPU: the bad element is left out of the loss, like an ignored one, and the error,
    which also names the element's position, is raised by a later cross_entropy or nll_loss call of
    the same thread: the first to find the check's verdict back from the GPU, at the latest the first
    after backward has gone through this loss (the next step's loss, in a training loop) or, without
    backward, the ninth; or by `engine.kernels.settle_device_checks()`, which waits for the GPU.
    (PyTorch's CUDA kernels stop at a device-side assert instead, which leaves the CUDA context
    unusable.)
    """
    check_reduction("cross_entropy", reduction)
    if input.ndim >= 2 and input.shape[1] == 1:
        user_warning.warn("cross_entropy: the input has one class (dim 1 of its shape "
                          f"{tuple(input.shape)}), so the loss is always 0 and passes back no gradient; for two "
                          "classes give the layer 2 outputs, or use binary_cross_entropy_with_logits on the one")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    op = CrossEntropy
    if target.dtype.is_floating_point:
        if target.shape != input.shape:
            raise ShapeError(f"cross_entropy: target has shape {tuple(target.shape)} and dtype "
                             f"{target.dtype}; class indices must be an integer tensor (use target.long()), "
                             f"and class probabilities must have the input's shape {tuple(input.shape)}")
        op = SoftCrossEntropy
    return op.apply(input, target, weight, ignore_index=ignore_index, reduction=reduction,
                    label_smoothing=label_smoothing)


class NllLoss(Function):
    op = "nll_loss"
    check = None  # on CUDA, the posted target check (engine.kernels.DeviceChecks)

    def forward(ctx, x, t, w):
        _check_index_target(ctx.op, x, t, w)
        ctx.x_shape, ctx.t_shape = x.shape, t.shape
        z = _rows(x)
        xp = array_module(z)
        t, keep = _targets(ctx, settled_checks(xp), xp, t.reshape(-1), z.shape[1])
        coef, _ = _nll_coefficients(t, keep, w, ctx.reduction, x.dtype)
        ctx.save(t)
        ctx.coef, ctx.keep = coef, keep
        return _finish(-coef * _kept_rows(z[xp.arange(z.shape[0]), t], keep), ctx.reduction, ctx.t_shape)

    def backward(ctx, grad):
        if ctx.check is not None:
            ctx.check.due = True
        (t,) = ctx.saved
        g = grad.reshape(-1) if ctx.reduction == "none" else grad
        xp = array_module(grad)
        shape = ctx.x_shape
        classes = shape[1] if len(shape) >= 2 else shape[0]
        dz = xp.zeros((t.shape[0], classes), dtype=grad.dtype)
        dz[xp.arange(t.shape[0]), t] = _kept_rows(-g * ctx.coef, ctx.keep)
        return _unrows(dz, shape), None, None


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, *, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C, d1, ...) at class indices (N, d1, ...).

    Class indices are checked as in cross_entropy: on a GPU, a bad one raises at a later call.
    """
    check_reduction("nll_loss", reduction)
    return NllLoss.apply(input, target, weight, ignore_index=ignore_index, reduction=reduction)


# ---- regression losses: op -> (loss of d = input - target, its derivative in d) --------------------
def _smooth_l1(xp, d, beta):
    a = xp.abs(d)
    return xp.where(a < beta, (0.5 / beta) * d * d, a - 0.5 * beta)


POINTWISE = {
    "MseLoss": ("mse_loss", lambda xp, d, c: d * d, lambda xp, d, c: 2 * d),
    "L1Loss": ("l1_loss", lambda xp, d, c: xp.abs(d), lambda xp, d, c: xp.sign(d)),
    "SmoothL1Loss": ("smooth_l1_loss", lambda xp, d, c: _smooth_l1(xp, d, c.beta),
                     lambda xp, d, c: xp.clip(d / c.beta, -1, 1)),
    # huber(delta) = delta * smooth_l1(beta=delta)
    "HuberLoss": ("huber_loss", lambda xp, d, c: c.delta * _smooth_l1(xp, d, c.delta),
                  lambda xp, d, c: xp.clip(d, -c.delta, c.delta)),
}


def warn_broadcast_target(op: str, input_shape, target_shape, shape) -> None:
    """Warn that a loss's input and target broadcast to `shape`: torch computes it, but it is nearly always a bug."""
    user_warning.warn(f"{op}: target shape {tuple(target_shape)} differs from input shape {tuple(input_shape)}; they "
                      f"are broadcast to {tuple(shape)}, which is rarely what was meant (an (N, 1) output against (N,) "
                      "targets compares every output with every target): reshape one so they match")


class PointwiseLoss(Function):
    """A loss of input - target whose formula and derivative come from the POINTWISE table."""

    promotes = True

    def forward(ctx, x, y):
        if x.shape != y.shape:  # as torch: broadcast, with a warning, since a mismatch is nearly always a bug
            try:
                shape = np.broadcast_shapes(x.shape, y.shape)
            except ValueError:
                raise ShapeError(f"{ctx.op}: target shape {y.shape} and input shape {x.shape} do not broadcast; "
                                 "reshape one so they match") from None
            warn_broadcast_target(ctx.op, x.shape, y.shape, shape)
        require_float(ctx.op, x)
        d = x - y
        ctx.save(d)
        ctx.shapes = (x.shape, y.shape)
        return _reduce(ctx.f(array_module(d), d, ctx), ctx.reduction)

    def backward(ctx, grad):
        (d,) = ctx.saved
        xp = array_module(d)
        gx = ctx.df(xp, d, ctx) * _grad_scale(grad, ctx.reduction, d.size)
        gy = -gx if ctx.needs_input_grad[1] else None
        sx, sy = ctx.shapes
        if sx != sy:  # broadcast in forward: each input's gradient summed back to its shape
            gx, gy = _summed_to(gx, sx), (None if gy is None else _summed_to(gy, sy))
        return gx, gy


def _summed_to(g, shape: tuple):
    """g, of a broadcast shape, summed over the dims `shape` was broadcast along."""
    lead = g.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=dims).reshape(shape) if dims else g


POINTWISE_OPS = {
    name: type(name, (PointwiseLoss,), {"op": op, "f": staticmethod(f), "df": staticmethod(df),
                                        "__doc__": f"The {op} of input and target."})
    for name, (op, f, df) in POINTWISE.items()
}
MseLoss, L1Loss, SmoothL1Loss, HuberLoss = (POINTWISE_OPS[n] for n in POINTWISE)


def mse_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """(input - target)^2, reduced."""
    check_reduction("mse_loss", reduction)
    return MseLoss.apply(input, target, reduction=reduction)


def l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced."""
    check_reduction("l1_loss", reduction)
    return L1Loss.apply(input, target, reduction=reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target), reduced."""
    check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    if beta == 0:  # the limit is l1, as in PyTorch
        return L1Loss.apply(input, target, reduction=reduction)
    return SmoothL1Loss.apply(input, target, reduction=reduction, beta=beta)


def huber_loss(input: Tensor, target: Tensor, *, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta) (d = input - target), reduced."""
    check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    return HuberLoss.apply(input, target, reduction=reduction, delta=delta)


# ---- Kullback-Leibler divergence ------------------------------------------------------------------
class KLDiv(Function):
    """target * (log(target) - input), with input and (if log_target) target as log-probabilities."""

    op = "kl_div"
    promotes = True

    def forward(ctx, x, t):
        if x.shape != t.shape:
            raise ShapeError(f"kl_div: target shape {t.shape} differs from input shape {x.shape}")
        require_float("kl_div", x)
        xp = array_module(x)
        if ctx.log_target:
            p = xp.exp(t)
            v = p * (t - x)
        else:  # 0 * log(0) is 0, as PyTorch's xlogy takes it
            p = t
            v = xp.where(t > 0, t * xp.log(xp.where(t > 0, t, 1)), 0) - t * x
        ctx.save(x, t, p)
        if ctx.reduction == "batchmean":
            return v.sum() / (x.shape[0] if x.ndim else 1)
        return _reduce(v, ctx.reduction)

    def backward(ctx, grad):
        x, t, p = ctx.saved
        if ctx.reduction == "batchmean":
            grad = grad / (x.shape[0] if x.ndim else 1)
        else:
            grad = _grad_scale(grad, ctx.reduction, x.size)
        gt = None
        if ctx.needs_input_grad[1]:
            xp = array_module(x)
            if ctx.log_target:
                gt = grad * p * (t - x + 1)
            else:
                gt = grad * (xp.where(t > 0, xp.log(xp.where(t > 0, t, 1)) + 1, 0) - x)
        return -grad * p, gt


# torch's words, which scripts filter warnings by
KL_DIV_MEAN_WARNING = ("reduction: 'mean' divides the total loss by both the batch size and the support size. "
                       "'batchmean' divides only by the batch size, and aligns with the KL div math definition. "
                       "'mean' will be changed to behave the same as 'batchmean' in the next major release.")


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL divergence of log-probabilities `input` from `target`; reduction 'batchmean' gives the true KL
    ('mean', the default, divides by the number of elements and warns, as torch's F.kl_div does)."""
    if size_average is not None or reduce is not None:
        raise TypeError("kl_div: size_average and reduce are deprecated in PyTorch and not supported; "
                        "use reduction=")
    if reduction == "mean":
        user_warning.warn(KL_DIV_MEAN_WARNING)
    return kl_div_unwarned(input, target, reduction, log_target)


def kl_div_unwarned(input: Tensor, target: Tensor, reduction: str, log_target: bool) -> Tensor:
    """kl_div without the warning about 'mean' (torch.kl_div, whose reduction is an int, gives none)."""
    if reduction not in (*REDUCTIONS, "batchmean"):
        raise ValueError(f"kl_div: reduction must be 'batchmean', 'mean', 'sum' or 'none', got {reduction!r}")
    return KLDiv.apply(input, target, reduction=reduction, log_target=log_target)


# ---- binary cross entropy -------------------------------------------------------------------------
def _check_binary(op: str, x, y, **others) -> None:
    require_float(op, x)
    if x.shape != y.shape:
        raise ShapeError(f"{op}: target has shape {y.shape} but input has shape {x.shape}; they must match")
    require_same_dtype(op, x, target=y, **others)


class BinaryCrossEntropy(Function):
    op = "binary_cross_entropy"

    def forward(ctx, x, y, w):
        _check_binary(ctx.op, x, y, weight=w)
        xp = array_module(x)
        if x.size and (x.min() < 0 or x.max() > 1):
            raise RuntimeError(f"{ctx.op}: input must hold probabilities in [0, 1] (apply sigmoid first, "
                               f"or use binary_cross_entropy_with_logits); got values in "
                               f"[{float(x.min()):g}, {float(x.max()):g}]")
        with np.errstate(divide="ignore"):  # log(0) is clamped to -100 below, as in PyTorch
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        loss = -(y * log_x + (1 - y) * log_1mx)
        ctx.save(x, y, w, log_x, log_1mx, loss)
        return _reduce(loss if w is None else loss * w, ctx.reduction)

    def backward(ctx, grad):
        x, y, w, log_x, log_1mx, loss = ctx.saved
        xp = array_module(x)
        need_x, need_y, need_w = ctx.needs_input_grad
        s = _grad_scale(grad, ctx.reduction, x.size)
        sw = s if w is None else s * w
        # PyTorch's guard: the denominator x (1 - x) is kept at least 1e-12
        gx = sw * (x - y) / xp.maximum(x * (1 - x), 1e-12) if need_x else None
        gy = sw * (log_1mx - log_x) if need_y else None
        return gx, gy, (s * loss if need_w else None)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                         reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities p, with each log clamped to >= -100."""
    check_reduction("binary_cross_entropy", reduction)
    return BinaryCrossEntropy.apply(input, target, weight, reduction=reduction)


class BinaryCrossEntropyWithLogits(Function):
    op = "binary_cross_entropy_with_logits"

    def forward(ctx, x, y, w, pos_w):
        _check_binary(ctx.op, x, y, weight=w, pos_weight=pos_w)
        xp = array_module(x)
        sp = xp.logaddexp(0, x)  # softplus(x) = -log(1 - sigmoid(x)); never overflows
        sp_neg = sp - x  # softplus(-x) = -log(sigmoid(x))
        loss = (1 - y) * sp + (y * sp_neg if pos_w is None else pos_w * y * sp_neg)
        ctx.save(x, y, w, pos_w, sp, sp_neg, loss)
        return _reduce(loss if w is None else loss * w, ctx.reduction)

    def backward(ctx, grad):
        x, y, w, pos_w, sp, sp_neg, loss = ctx.saved
        xp = array_module(x)
        need_x, need_y, need_w, need_pos = ctx.needs_input_grad
        s = _grad_scale(grad, ctx.reduction, x.size)
        sw = s if w is None else s * w
        gx = gy = gpos = None
        if need_x:
            sig = xp.exp(x - sp)
            gx = sw * (sig - y if pos_w is None else (1 - y) * sig - pos_w * y * (1 - sig))
        if need_y:
            gy = sw * (-x if pos_w is None else pos_w * sp_neg - sp)
        if need_pos:
            gpos = sw * y * sp_neg
        return gx, gy, (s * loss if need_w else None), gpos


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """binary_cross_entropy(sigmoid(input), target), computed stably; pos_weight weighs the positives."""
    check_reduction("binary_cross_entropy_with_logits", reduction)
    return BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight, reduction=reduction)


_LEGACY = "size_average and reduce args will be deprecated, please use reduction='{}' instead"


def resolved_reduction(op: str, size_average, reduce, reduction: str) -> str:
    """`reduction`, checked, or what the deprecated size_average/reduce flags stand for (None counts as
    True), with PyTorch's DeprecationWarning at the user's line that passed them."""
    if size_average is None and reduce is None:
        check_reduction(op, reduction)
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    user_warning.warn(_LEGACY.format(reduction), DeprecationWarning)  # at a loss module's or function's caller
    return reduction
