"""The margin, embedding and likelihood losses (margin_ranking_loss to gaussian_nll_loss) and pairwise_distance.

Each is a few ops of the engine, so gradients come from those ops and every step shows in the graph.
PyTorch's functional forms take the deprecated size_average/reduce flags positionally; so do these.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import ShapeError
from engine.autograd.grad_mode import no_grad
from engine.backend import array_module
from engine.creation import full_like
from engine.ops.activation import logsigmoid, softplus
from engine.ops.elementwise import clamp, exp, log, minimum, relu, sqrt, where
from engine.ops.gather_scatter import gather
from engine.ops.index_checks import all_below, out_of_range
from engine.ops.loss import check_reduction, resolved_reduction, warn_broadcast_target
from engine.ops.nn import require_same_dtype
from engine.ops.reduce import norm
from engine.tensor import Tensor

__all__ = ["cosine_embedding_loss", "gaussian_nll_loss", "hinge_embedding_loss", "margin_ranking_loss",
           "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss", "pairwise_distance",
           "poisson_nll_loss", "soft_margin_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss"]

def _reduced(loss: Tensor, reduction: str) -> Tensor:
    return loss if reduction == "none" else (loss.mean() if reduction == "mean" else loss.sum())


def _require_float(op: str, name: str, x: Tensor) -> None:
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: {name} must be a floating point tensor, got {x.dtype}; convert it, e.g. {name}.float()")


def _fits_input(op: str, input: Tensor, **others: Tensor | None) -> None:
    """Each of `others` must have the input's shape or broadcast to it (never widen the input)."""
    for name, t in others.items():
        if t is None:
            continue
        try:
            fits = np.broadcast_shapes(input.shape, t.shape) == tuple(input.shape)
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(f"{op}: {name} has shape {tuple(t.shape)} but input has shape {tuple(input.shape)}; "
                             f"{name} must have the input's shape (or broadcast to it)")


def _broadcast(op: str, **tensors: Tensor) -> tuple[int, ...]:
    """The shape the tensors broadcast to, or a ShapeError naming each one's shape."""
    try:
        return np.broadcast_shapes(*(t.shape for t in tensors.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items())
        raise ShapeError(f"{op}: the shapes {shapes} do not broadcast together") from None


def _broadcast_target(op: str, input: Tensor, target: Tensor) -> None:
    """A target must broadcast with the input, as the broadcasting ops torch composes the loss of take it. Where the
    two widen each other ((N,) targets for an (N, 1) input give (N, N) losses) it warns, as that is nearly always a
    mistake; one rate for many counts (a 0-d input) is not."""
    shape = _broadcast(op, input=input, target=target)
    if shape != tuple(input.shape) and shape != tuple(target.shape):
        warn_broadcast_target(op, input.shape, target.shape, shape)


def _hinge(x: Tensor) -> Tensor:
    """max(x, 0) with the gradient passed at 0, as PyTorch's clamp_min (margin, cosine, triplet losses)."""
    return clamp(x, min=0)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, -target * (input1 - input2) + margin): input1 should rank above input2 where target is 1."""
    op = "margin_ranking_loss"
    reduction = resolved_reduction(op, size_average, reduce, reduction)
    if not input1.ndim == input2.ndim == target.ndim:
        raise ShapeError(f"{op}: input1, input2 and target must have the same number of dimensions, got shapes "
                         f"{tuple(input1.shape)}, {tuple(input2.shape)} and {tuple(target.shape)}")
    _broadcast(op, input1=input1, input2=input2, target=target)
    _require_float(op, "input1", input1)
    return _reduced(_hinge(-target * (input1 - input2) + margin), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """input where target is 1, max(0, margin - input) where it is -1 (input: a distance)."""
    op = "hinge_embedding_loss"
    reduction = resolved_reduction(op, size_average, reduce, reduction)
    _require_float(op, "input", input)
    _broadcast_target(op, input, target)
    return _reduced(where(target != 1, _hinge(margin - input), 0) + where(target != -1, input, 0), reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """log(1 + exp(-target * input)), without overflow, for targets of 1 and -1."""
    op = "soft_margin_loss"
    reduction = resolved_reduction(op, size_average, reduce, reduction)
    _require_float(op, "input", input)
    _fits_input(op, input, target=target)
    return _reduced(softplus(-target * input), reduction)


def _class_dim(op: str, input: Tensor) -> None:
    if input.ndim == 0:
        raise ShapeError(f"{op}: input must have a class dimension, (C) or (N, C), got a 0-d tensor")


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                                reduce=None, reduction: str = "mean") -> Tensor:
    """Binary cross entropy of logits per class (target 0 or 1), averaged over the classes (the last dim)."""
    op = "multilabel_soft_margin_loss"
    reduction = resolved_reduction(op, size_average, reduce, reduction)
    _require_float(op, "input", input)
    _class_dim(op, input)
    _fits_input(op, input, target=target, weight=weight)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduced(loss.sum(-1) / input.shape[-1], reduction)


_COSINE_EPS = 1e-12  # added to each squared norm, as in PyTorch


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """1 - cos(input1, input2) where target is 1, max(0, cos - margin) where it is -1; rows of (N, D) or one (D)."""
    op = "cosine_embedding_loss"
    reduction = resolved_reduction(op, size_average, reduce, reduction)
    shapes = f"input1 {tuple(input1.shape)}, input2 {tuple(input2.shape)}, target {tuple(target.shape)}"
    if target.ndim > 1:
        raise ShapeError(f"{op}: target must be 0-d or 1-d (multi-target not supported); got {shapes}")
    expected = target.ndim + 1
    if input1.ndim != expected or input2.ndim != expected:
        raise ShapeError(f"{op}: a {target.ndim}-d target needs {expected}-d inputs ((N, D) with target (N), or "
                         f"(D) with a 0-d target); got {shapes}")
    _broadcast(op, input1=input1, input2=input2)
    rows = np.broadcast_shapes(input1.shape, input2.shape)[:-1]
    try:
        fits = np.broadcast_shapes(rows, target.shape) == rows
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"{op}: target must hold one entry per row of the inputs; got {shapes}")
    _require_float(op, "input1", input1)
    d = target.ndim
    cos = (input1 * input2).sum(d) / sqrt(((input1 * input1).sum(d) + _COSINE_EPS)
                                          * ((input2 * input2).sum(d) + _COSINE_EPS))
    loss = where(target == 1, 1 - cos, 0) + where(target == -1, _hinge(cos - margin), 0)
    return _reduced(loss, reduction)


def _class_rows(op: str, input: Tensor) -> Tensor:
    """input as (N, C): a (C) vector is one row, a 0-d value one row of one class."""
    if input.ndim > 2 or (input.ndim and input.shape[-1] == 0):
        raise ShapeError(f"{op}: input must be a non-empty (C) vector or (N, C) matrix, got shape "
                         f"{tuple(input.shape)}")
    _require_float(op, "input", input)
    return input if input.ndim == 2 else input.reshape(1, -1)


def _index_target(op: str, target: Tensor) -> None:
    if target.dtype.is_floating_point or target.dtype.name == "bool":
        raise TypeError(f"{op}: target must be an integer tensor of class indices, got {target.dtype}; "
                        "use target.long()")


def _per_sample(loss: Tensor, input: Tensor, reduction: str) -> Tensor:
    """Reduce (N,) per-sample losses; unbatched input gives a 0-d 'none' result, as in PyTorch."""
    if reduction == "none" and input.ndim < 2:
        return loss.reshape(())
    return _reduced(loss, reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    """Multi-class hinge loss: sum over classes j != y of max(0, margin - x[y] + x[j])^p / C, p 1 or 2.

    Target classes are checked at once (on a GPU that reads one value back, as gather does).
    """
    op = "multi_margin_loss"
    reduction = resolved_reduction(op, size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 supported, got p={p}")
    if weight is not None and weight.ndim != 1:
        raise ValueError(f"{op}: weight must be one-dimensional, got shape {tuple(weight.shape)}")
    x = _class_rows(op, input)
    n, classes = x.shape
    _index_target(op, target)
    if target.ndim > 1 or target.numel() != n:
        raise ShapeError(f"{op}: target must be 1-d with one class index per sample: expected shape ({n},) but "
                         f"got {tuple(target.shape)} for input of shape {tuple(input.shape)}")
    if weight is not None and weight.shape[0] != classes:
        raise ShapeError(f"{op}: weight has shape {tuple(weight.shape)} but input of shape {tuple(input.shape)} "
                         f"has {classes} classes")
    require_same_dtype(op, input, weight=weight)
    t = target.array.reshape(n)
    if not all_below(t, classes):
        bad = int(t[out_of_range(t, classes)][0])
        raise IndexError(f"{op}: target {bad} is out of bounds for {classes} classes (valid: 0 to {classes - 1})")
    xp = array_module(t)
    is_y = Tensor._wrap(xp.arange(classes) == t[:, None])
    x_y = where(is_y, x, 0).sum(1, keepdim=True)
    h = relu(margin - x_y + x)  # no gradient where the margin is met exactly, as in PyTorch
    if p == 2:
        h = h * h
    if weight is not None:
        h = h * where(is_y, weight, 0).sum(1, keepdim=True)
    return _per_sample(where(is_y, 0, h).sum(1) / classes, input, reduction)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """Sum over target classes y and non-target classes k of max(0, 1 - (x[y] - x[k])) / C.

    Each target row lists class indices, ended by the first -1. Targets are checked at once.
    """
    op = "multilabel_margin_loss"
    reduction = resolved_reduction(op, size_average, reduce, reduction)
    x = _class_rows(op, input)
    n, classes = x.shape
    _index_target(op, target)
    if target.shape != input.shape:
        raise ShapeError(f"{op}: target has shape {tuple(target.shape)} but must have the input's shape "
                         f"{tuple(input.shape)} (class indices, ended by -1)")
    t = target.array.reshape(n, classes)
    xp = array_module(t)
    listed = xp.cumprod(t >= 0, axis=1).astype(bool)  # the entries before the first -1
    if t.size:
        low, high, most = (int(v) for v in xp.stack([t.min(), t.max(), listed.sum(1).max()]).tolist())
        if low < -1 or high >= classes:
            bad = low if low < -1 else high
            raise IndexError(f"{op}: target {bad} is out of bounds for {classes} classes (valid: 0 to "
                             f"{classes - 1}, and -1 to end a row's list)")
    else:
        most = 0
    listed = listed[:, :most]  # no row lists more classes than this
    safe = xp.where(listed, t[:, :most], 0)
    is_target = xp.zeros((n, classes + 1), dtype=bool)  # column C takes the unlisted entries
    is_target[xp.arange(n)[:, None], xp.where(listed, safe, classes)] = True
    x_y = gather(x, 1, Tensor._wrap(safe))
    pair = Tensor._wrap(listed[:, :, None] & ~is_target[:, None, :classes])  # (N, listed y, k not a target)
    h = where(pair, relu(1 - x_y.unsqueeze(2) + x.unsqueeze(1)), 0)
    return _per_sample(h.sum((1, 2)) / classes, input, reduction)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """The p-norm of x1 - x2 + eps over the last dimension (x1 and x2 broadcast together)."""
    shape = _broadcast("pairwise_distance", x1=x1, x2=x2)
    d = x1 - x2 + eps
    if not shape:
        return norm(d, p)
    return norm(d, p, dim=len(shape) - 1, keepdim=keepdim)


def _margin(op: str, margin: float) -> None:
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")


def _triplet(op: str, anchor: Tensor, positive: Tensor, negative: Tensor, distance, margin: float, swap: bool,
             reduction: str) -> Tensor:
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ShapeError(f"{op}: anchor, positive and negative must have the same number of dimensions, got "
                         f"shapes {tuple(anchor.shape)}, {tuple(positive.shape)} and {tuple(negative.shape)}")
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:  # Balntas et al.: the negative's distance to the positive, where that is the smaller
        d_neg = minimum(d_neg, distance(positive, negative))
    return _reduced(_hinge(margin + d_pos - d_neg), reduction)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(0, margin + d(anchor, positive) - d(anchor, negative)), d the pairwise p-norm distance."""
    op = "triplet_margin_loss"
    reduction = resolved_reduction(op, size_average, reduce, reduction)
    _margin(op, margin)
    _broadcast(op, anchor=anchor, positive=positive, negative=negative)
    return _triplet(op, anchor, positive, negative, lambda a, b: pairwise_distance(a, b, p, eps), margin, swap,
                    reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> Tensor:
    """triplet_margin_loss with any distance_function(x1, x2) (default: pairwise_distance)."""
    op = "triplet_margin_with_distance_loss"
    check_reduction(op, reduction)
    _margin(op, margin)
    if distance_function is not None and not callable(distance_function):
        raise TypeError(f"{op}: distance_function must be callable, got {type(distance_function).__name__}")
    return _triplet(op, anchor, positive, negative, distance_function or pairwise_distance, margin, swap,
                    reduction)


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False, size_average=None,
                     eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    """Poisson negative log likelihood: exp(input) - target * input (or, log_input=False, input - target *
    log(input + eps)); full adds Stirling's term for targets above 1."""
    op = "poisson_nll_loss"
    reduction = resolved_reduction(op, size_average, reduce, reduction)
    _require_float(op, "input", input)
    _broadcast_target(op, input, target)
    loss = exp(input) - target * input if log_input else input - target * log(input + eps)
    if full:
        above = target > 1
        t = where(above, target, 2)  # a stand-in of no use but to keep log's gradient finite where masked
        loss = loss + where(above, t * log(t) - t + 0.5 * log(2 * math.pi * t), 0)
    return _reduced(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """Gaussian negative log likelihood: 0.5 (log(var) + (input - target)^2 / var), var kept at least eps.

    var has the input's shape, or one dimension of size 1 (or missing at the end) for a shared variance,
    or is a number. As in PyTorch, the gradient flows to var as if it had not been clamped.
    """
    op = "gaussian_nll_loss"
    check_reduction(op, reduction)
    _require_float(op, "input", input)
    _broadcast_target(op, input, target)
    if not isinstance(var, Tensor):
        if not isinstance(var, int | float) or isinstance(var, bool):
            raise TypeError(f"{op}: var must be a tensor or a number, got {type(var).__name__}")
        if var < 0:
            raise ValueError(f"{op}: var has negative entry/entries (var={var})")
        var = full_like(input, var)
    elif var.numel() and bool(var.array.min() < 0):
        raise ValueError(f"{op}: var has negative entry/entries (min {float(var.array.min()):g})")
    if var.shape != input.shape:
        if var.shape == input.shape[:-1]:  # one variance per row, shared by its last dimension
            var = var.unsqueeze(-1)
        elif var.ndim != input.ndim or sum(v for i, v in zip(input.shape, var.shape) if i != v) != 1:
            raise ShapeError(f"{op}: var has shape {tuple(var.shape)} but input has shape {tuple(input.shape)}; "
                             "var must have the input's shape, or it with one dimension of size 1 or the last "
                             "one left out")
    with no_grad():  # clamped for stability; the gradient passes as if unclamped, as PyTorch's in-place clamp
        lift = clamp(var, min=eps) - var
    var = var + lift
    loss = 0.5 * (log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + _HALF_LOG_2PI
    return _reduced(loss, reduction)
