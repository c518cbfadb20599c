"""Layers as functions: linear, embedding, one_hot, and layer, batch and group normalization
(instance_norm, built on the last two, is in norm_instance.py).

The three normalizations share one pair of kernels: standardize over some axes, and its gradient.
They differ only in which axes they reduce and how the affine parameters broadcast; layer and group norm reduce
trailing axes, a row of values per position, for which the kernels take backend's faster row reductions.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module, as_rows, row_dot, row_sum, rows_gram, rows_matmul
from engine.ops.index_checks import LATER, first_bad, out_of_range, position, settled_checks
from engine.tensor import Tensor

__all__ = ["batch_norm", "embedding", "group_norm", "layer_norm", "linear", "one_hot"]


# ---- argument checks shared by the nn ops ---------------------------------------------------------
def require_float(op: str, x) -> None:
    """Raise a clear TypeError unless array `x` holds floating point numbers."""
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point tensor, got {x.dtype}; "
                        "convert it first, e.g. x.float()")


def require_same_dtype(op: str, x, **others) -> None:
    """Raise a clear TypeError when a given array's dtype differs from the input's (PyTorch refuses too)."""
    for name, a in others.items():
        if a is not None and a.dtype != x.dtype:
            raise TypeError(f"{op}: input is {x.dtype} but {name} is {a.dtype}; convert one with .to(dtype)")


# ---- linear ---------------------------------------------------------------------------------------
class Linear(Function):
    """x @ w.T + b as one op: a layer is one node and one matrix product each way."""

    def forward(ctx, x, w, b):
        if w.ndim != 2:
            raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}")
        if x.ndim == 0 or x.shape[-1] != w.shape[1]:
            hint = ""
            if x.ndim == 1 and x.shape[0] > w.shape[1] and x.shape[0] % w.shape[1] == 0:
                hint = (f"; {x.shape[0]} = {x.shape[0] // w.shape[1]} x {w.shape[1]}: the batch was flattened into "
                        "the features (x.view(-1))? flatten each sample with x.flatten(1) or x.view(x.size(0), -1)")
            raise ShapeError(f"linear: input has {x.shape[-1] if x.ndim else 0} features but weight "
                             f"expects {w.shape[1]} (weight shape {w.shape}, input shape {x.shape}){hint}")
        if b is not None and b.shape != (w.shape[0],):
            raise ShapeError(f"linear: bias has shape {b.shape} but weight has {w.shape[0]} output "
                             f"features (weight shape {w.shape})")
        if w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
            require_same_dtype("linear", x, weight=w, bias=b)
        ctx.save(x, w)
        y = rows_matmul(x, w.T)
        if b is not None:
            y += b
        return y

    def backward(ctx, grad):
        x, w = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = rows_matmul(grad, w) if need_x else None
        gw = rows_gram(grad, x) if need_w else None  # every leading position of an N-D input is a sample
        gb = as_rows(grad).sum(axis=0) if need_b else None
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias, for inputs of shape (..., in_features)."""
    return Linear.apply(input, weight, bias)


# ---- embedding ------------------------------------------------------------------------------------
class Embedding(Function):
    check = None  # on CUDA, the posted index check (engine.kernels.DeviceChecks)

    def forward(ctx, idx, w):
        if idx.dtype.kind not in "iu":
            raise TypeError(f"embedding: indices must be an integer tensor, got {idx.dtype}; "
                            "use indices.long()")
        if w.ndim != 2:
            raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), "
                             f"got shape {w.shape}")
        n = w.shape[0]
        xp = array_module(w)
        checks = settled_checks(xp)
        if checks is None and idx.size:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= n:
                raise IndexError(_bad_index_message(lo if lo < 0 else hi, w.shape))
        elif idx.size:  # on the device, read back later: row 0 stands in for a bad index meanwhile
            bad = out_of_range(idx, n)
            ctx.check = checks.post(first_bad(xp, bad.reshape(-1), idx.reshape(-1)),
                                    functools.partial(_bad_index, w.shape, idx.shape))
            idx = xp.where(bad, 0, idx)
        ctx.save(idx)
        ctx.num_embeddings = n
        return xp.take(w, idx, axis=0)

    def backward(ctx, grad):
        if ctx.check is not None:
            ctx.check.due = True  # the GPU is a whole backward past it by the next call
        (idx,) = ctx.saved
        xp = array_module(grad)
        dim = grad.shape[-1]
        gw = xp.zeros((ctx.num_embeddings, dim), dtype=grad.dtype)
        xp.add.at(gw, idx.reshape(-1), grad.reshape(-1, dim))  # repeated indices accumulate
        if ctx.padding_idx is not None:
            gw[ctx.padding_idx] = 0
        return None, gw


def _bad_index_message(index: int, shape: tuple) -> str:
    return f"embedding: index {index} is out of range for weight of shape {shape} (valid: 0 to {shape[0] - 1})"


def _bad_index(weight_shape: tuple, shape: tuple, values) -> IndexError | None:
    """The error a device-side index check reports in `values` (see index_checks.first_bad); None if none."""
    key, index = values
    if not key:
        return None
    return IndexError(f"{_bad_index_message(index, weight_shape)}; found at {position('input', shape, key)} "
                      f"by the device-side check of an earlier embedding call, which used row 0 in its place "
                      f"{LATER}")


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of `weight` picked by integer `input`; the padding_idx row gets no gradient.

    Indices are checked as cross_entropy's targets are: on a GPU on the device, and a bad one raises
    IndexError at a later call (or when a value is read back to the host)."""
    if padding_idx is not None:
        n = weight.shape[0]
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for {n} embeddings")
        padding_idx %= n
    return Embedding.apply(input, weight, padding_idx=padding_idx)


# ---- normalization kernels ------------------------------------------------------------------------
def _sums(x, axes: tuple[int, ...]):
    """(sum of a, sum of a * b) over `axes`, kept, for arrays a and b of x's shape. Over x's trailing axes (layer and
    group norm) each position's values are one row, and the sums backend's row_sum and row_dot: numpy's own pay ~70 ns
    a row, 2-3x the time for rows of a few hundred values."""
    k = len(axes)
    if axes != tuple(range(x.ndim - k, x.ndim)) or x.dtype.itemsize < 4 or not x.size:
        return (lambda a: a.sum(axis=axes, keepdims=True)), (lambda a, b: (a * b).sum(axis=axes, keepdims=True))
    lead = x.shape[:x.ndim - k]
    kept = lead + (1,) * k

    def rows(a):
        return a.reshape(math.prod(lead), -1)

    return (lambda a: row_sum(rows(a)).reshape(kept)), (lambda a, b: row_dot(rows(a), rows(b)).reshape(kept))


def _standardize(xp, x, axes: tuple[int, ...], eps: float, overflow_nan: bool = False):
    """(x - mean) / sqrt(var + eps) over `axes`, with 1/sqrt(var + eps), the mean and the biased var; NaN for a
    group whose mean square var + mean^2 overflows the dtype if `overflow_nan`."""
    total, dot = _sums(x, axes)
    n = math.prod(x.shape[a] for a in axes)
    mean = total(x) / n
    xhat = xp.subtract(x, mean)
    var = dot(xhat, xhat) / n
    plain = xp is np and _plain_moments(mean, var, n)  # a GPU would wait for the test: it takes the long way
    if not plain:
        # the mean is rounded to a few ulps of itself, so a constant row of 123.0 has x - mean a few ulps from 0,
        # which 1/sqrt(eps) scales to ~0.005 where torch gives 0: one more pass takes out what is left of the mean
        # (the corrected two-pass algorithm)
        rest = total(xhat) / n
        xhat -= rest
        mean += rest
        var -= rest * rest
        xp.maximum(var, 0, out=var)
    rstd = 1 / xp.sqrt(var + eps)
    if overflow_nan and not plain and x.dtype.itemsize >= 4:
        # torch's row moments (layer and group norm) pass through the mean square and give NaN where it overflows;
        # 1/sqrt(inf) = 0 would quietly turn such a row into the bias (torch's CPU kernel gives a row of zeros for
        # some of these rows instead, by row length modulo its vector width: no rule to follow). Not for a float16
        # group norm, computed in float16 here where torch's moments are float32
        big = math.sqrt(xp.finfo(x.dtype).max)
        rstd = xp.where(~xp.isfinite(var) | (xp.abs(mean) > big), xp.nan, rstd)
    xhat *= rstd
    return xhat, rstd, mean, var


def _plain_moments(mean, var, n: int) -> bool:
    """Whether every group's moments are ordinary: no NaN, the variance and the mean's square within the dtype, and
    the spread beyond the rounding of the mean (n ulps of it). Four reductions over the groups, as a cheap global
    test that a batch of ordinary rows passes; one that fails takes the long way, right for every row."""
    if not mean.size:
        return True
    top = float(np.abs(mean).max())
    finfo = np.finfo(var.dtype)
    lowest, highest = float(var.min()), float(var.max())
    return top <= math.sqrt(finfo.max) and highest < math.inf and lowest >= (n * float(finfo.eps) * top) ** 2


def _standardize_grad(gxhat, xhat, rstd, axes: tuple[int, ...]):
    """Gradient of `_standardize` given the gradient of its output (mean and var depend on x too)."""
    total, dot = _sums(xhat, axes)
    n = math.prod(xhat.shape[a] for a in axes)
    gx = gxhat - total(gxhat) / n
    gx -= xhat * (dot(gxhat, xhat) / n)
    gx *= rstd
    return gx


def _widened(a):
    """`a`, a narrower float widened to float32."""
    return a.astype(np.float32) if a.dtype.itemsize < 4 else a


def _affine(xhat, w, b):
    if w is not None:
        y = xhat * w
        if b is not None:
            y += b
        return y
    return xhat if b is None else xhat + b


def _per_channel(p, ndim: int):
    """A (C,) parameter shaped to broadcast over (N, C, ...)."""
    return p if p is None or ndim <= 2 else p.reshape(p.shape + (1,) * (ndim - 2))


def _check_channels(op: str, x, **params) -> None:
    if x.ndim < 2:
        raise ShapeError(f"{op}: expected input of shape (N, C) or (N, C, ...), got {x.shape}")
    for name, p in params.items():
        if p is not None and p.shape != (x.shape[1],):
            raise ShapeError(f"{op}: {name} has shape {p.shape} but the input has {x.shape[1]} channels "
                             f"(input shape {x.shape})")
    require_same_dtype(op, x, **params)


# ---- layer norm -----------------------------------------------------------------------------------
class LayerNorm(Function):
    op = "layer_norm"

    def forward(ctx, x, w, b):
        require_float(ctx.op, x)
        shape = ctx.normalized_shape
        k = len(shape)
        if x.ndim < k or x.shape[x.ndim - k:] != shape:
            raise ShapeError(f"layer_norm: input shape {x.shape} does not end with normalized_shape {shape}")
        for name, p in (("weight", w), ("bias", b)):
            if p is not None and p.shape != shape:
                raise ShapeError(f"layer_norm: {name} has shape {p.shape} but normalized_shape is {shape}")
        require_same_dtype(ctx.op, x, weight=w, bias=b)
        ctx.axes = tuple(range(x.ndim - k, x.ndim))
        # a narrower float is computed in float32 and rounded once, after the affine, as PyTorch does
        xhat, rstd, _, _ = _standardize(array_module(x), _widened(x), ctx.axes, ctx.eps, overflow_nan=True)
        y = _affine(xhat, w, b)
        if xhat.dtype != x.dtype:
            y, rstd = y.astype(x.dtype), rstd.astype(x.dtype)
            xhat = y if w is None and b is None else xhat.astype(x.dtype)
        ctx.save(xhat, rstd, w)
        return y

    def backward(ctx, grad):
        xhat, rstd, w = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = None
        if need_x:
            g = _widened(grad)
            gxhat = g if w is None else g * w
            gx = _standardize_grad(gxhat, _widened(xhat), rstd, ctx.axes).astype(grad.dtype, copy=False)
        # parameter gradients come back full size; Function sums them over the leading dims
        return gx, (grad * xhat if need_w else None), (grad if need_b else None)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing `normalized_shape` dims, then scale by weight and shift by bias."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    return LayerNorm.apply(input, weight, bias, normalized_shape=shape, eps=eps)


# ---- batch norm -----------------------------------------------------------------------------------
class BatchNorm(Function):
    op = "batch_norm"

    def forward(ctx, x, running_mean, running_var, w, b):
        require_float(ctx.op, x)
        _check_channels(ctx.op, x, running_mean=running_mean, running_var=running_var, weight=w, bias=b)
        xp = array_module(x)
        axes = ctx.axes = (0, *range(2, x.ndim))
        if ctx.training:
            n = x.size // x.shape[1]
            if n <= 1:
                raise ShapeError(f"batch_norm: expected more than 1 value per channel when training, "
                                 f"got input of shape {x.shape} (a DataLoader's last batch of one? "
                                 "drop_last=True leaves it out)")
            xhat, rstd, mean, var = _standardize(xp, x, axes, ctx.eps)
            m = ctx.momentum
            # running statistics are updated in place, with the unbiased variance, as PyTorch does
            # (and, as there, without bumping their version: they are buffers, not autograd inputs)
            if running_mean is not None:
                running_mean *= 1 - m
                running_mean += m * mean.reshape(-1)
            if running_var is not None:
                running_var *= 1 - m
                running_var += (m * n / (n - 1)) * var.reshape(-1)
        else:
            rstd = 1 / xp.sqrt(_per_channel(running_var, x.ndim) + ctx.eps)
            xhat = (x - _per_channel(running_mean, x.ndim)) * rstd
        ctx.save(xhat, rstd, w)
        return _affine(xhat, _per_channel(w, x.ndim), _per_channel(b, x.ndim))

    def backward(ctx, grad):
        xhat, rstd, w = ctx.saved
        need_x, _, _, need_w, need_b = ctx.needs_input_grad
        gx = None
        if need_x:
            gxhat = grad if w is None else grad * _per_channel(w, grad.ndim)
            # in eval mode the statistics are constants, so only the scale passes through
            gx = _standardize_grad(gxhat, xhat, rstd, ctx.axes) if ctx.training else gxhat * rstd
        gw = (grad * xhat).sum(axis=ctx.axes) if need_w else None
        gb = grad.sum(axis=ctx.axes) if need_b else None
        return gx, None, None, gw, gb


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel of (N, C, ...) by batch statistics (training) or the running ones (eval)."""
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    if momentum is None:  # as torch's functional refuses it (its module's None is a count of batches it keeps)
        raise TypeError("batch_norm: momentum must be a number, got None; the cumulative average that "
                        "nn.BatchNorm's momentum=None gives is momentum=1 / (batches seen so far, this one included)")
    return BatchNorm.apply(input, running_mean, running_var, weight, bias,
                           training=training, momentum=momentum, eps=eps)


# ---- group norm -----------------------------------------------------------------------------------
class GroupNorm(Function):
    op = "group_norm"

    def forward(ctx, x, w, b):
        require_float(ctx.op, x)
        _check_channels(ctx.op, x, weight=w, bias=b)
        n, c = x.shape[:2]
        groups = ctx.num_groups
        if groups <= 0 or c % groups:
            raise ShapeError(f"group_norm: {c} channels cannot be split into {groups} groups "
                             f"(input shape {x.shape})")
        xhat, rstd, _, _ = _standardize(array_module(x), x.reshape(n, groups, -1), (2,), ctx.eps,
                                      overflow_nan=True)
        xhat = xhat.reshape(x.shape)
        ctx.save(xhat, rstd, w)
        return _affine(xhat, _per_channel(w, x.ndim), _per_channel(b, x.ndim))

    def backward(ctx, grad):
        xhat, rstd, w = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        axes = (0, *range(2, grad.ndim))
        gx = None
        if need_x:
            grouped = (grad.shape[0], ctx.num_groups, -1)
            gxhat = grad if w is None else grad * _per_channel(w, grad.ndim)
            gx = _standardize_grad(gxhat.reshape(grouped), xhat.reshape(grouped), rstd, (2,))
            gx = gx.reshape(grad.shape)
        gw = (grad * xhat).sum(axis=axes) if need_w else None
        gb = grad.sum(axis=axes) if need_b else None
        return gx, gw, gb


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize each group of channels of (N, C, ...) per sample, then apply a per-channel affine."""
    return GroupNorm.apply(input, weight, bias, num_groups=num_groups, eps=eps)


# ---- one_hot ------------------------------------------------------------------------------------
class OneHot(Function):
    differentiable = False
    op = "one_hot"

    def forward(ctx, x):
        xp = array_module(x)
        return (x[..., None] == xp.arange(ctx.num_classes)).astype(np.int64)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape (*tensor.shape, num_classes) with a 1 at each class index (one more than the
    largest index when num_classes is -1)."""
    x = tensor.array
    if x.dtype != np.int64:
        raise TypeError(f"one_hot: expected an int64 (long) tensor of class indices, got {tensor.dtype}")
    if num_classes < -1 or (num_classes == 0 and x.size):
        raise ValueError(f"one_hot: num_classes must be positive or -1, got {num_classes}")
    if x.size:  # one reduction each, read back at once, as PyTorch does
        low, high = int(x.min()), int(x.max())
        if low < 0:
            raise IndexError(f"one_hot: class values must be non-negative, got {low} in input of shape "
                             f"{tuple(tensor.shape)}")
        if num_classes == -1:
            num_classes = high + 1
        elif high >= num_classes:
            raise IndexError(f"one_hot: class value {high} is not smaller than num_classes ({num_classes}) "
                             f"in input of shape {tuple(tensor.shape)}")
    elif num_classes == -1:
        raise ValueError("one_hot: can not infer the number of classes from an empty tensor; pass num_classes")
    return OneHot.apply(tensor, num_classes=num_classes)
