"""Channel dropout of 1-D and 3-D feature maps, and alpha dropout (the SELU-preserving kind), as in PyTorch.

dropout1d and dropout3d are dropout2d on a view whose last two axes hold the feature map, so one draw per
(sample, channel) serves the whole map. Alpha dropout sets dropped values to SELU's negative saturation
and then rescales and shifts so that mean and variance stay those of the input: y = x * scale + shift
with per-element (or, for the feature kind, per-channel) `scale` and `shift`.
"""

from __future__ import annotations

import math

from engine import random as _random
from engine.autograd.function import Function, ShapeError
from engine.backend import array_module, device_of
from engine.ops.activation import _maybe_inplace, dropout2d
from engine.ops.activation_more import SELU_ALPHA, SELU_SCALE
from engine.ops.nn import require_float
from engine.tensor import Tensor

_SELU_SATURATION = SELU_ALPHA * SELU_SCALE  # SELU's negative saturation is minus this


def _check_p(op: str, p: float) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{op}: p must be a probability between 0 and 1, got {p}")


def _channel_dropout(op: str, input: Tensor, p: float, training: bool, inplace: bool, spatial: int) -> Tensor:
    _check_p(op, p)
    if input.ndim not in (spatial + 1, spatial + 2):
        names = "(C, L)" if spatial == 1 else "(C, D, H, W)"
        raise ShapeError(f"{op}: expected a {spatial + 1}-D {names} or {spatial + 2}-D (N, {names[1:]} input, "
                         f"got shape {tuple(input.shape)}")
    if not training or p == 0:
        return input

    def drop(t: Tensor) -> Tensor:
        maps = t.reshape(*t.shape[:t.ndim - spatial], -1, 1)  # each feature map as one (size, 1) image
        return dropout2d(maps, p, True).reshape(t.shape)

    return _maybe_inplace(input, inplace, drop)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, L) or (C, L) input with probability p, scaling the rest by 1/(1-p)."""
    return _channel_dropout("dropout1d", input, p, training, inplace, 1)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of an (N, C, D, H, W) or (C, D, H, W) input with probability p, scaling the
    rest by 1/(1-p)."""
    return _channel_dropout("dropout3d", input, p, training, inplace, 3)


class AlphaDropout(Function):
    """x * scale + shift, with scale and shift drawn once per element (or per channel with `feature`)."""

    op = "alpha_dropout"
    feature = False

    def forward(ctx, x):
        require_float(ctx.op, x)
        xp, p = array_module(x), ctx.p
        shape = (*x.shape[:2], *(1,) * (x.ndim - 2)) if ctx.feature else x.shape
        rng = _random.generator(device_of(x))
        keep = _random.below(rng, 1 - p, shape) if ctx.feature else \
            _random.in_memory_order(x, lambda shape: _random.below(rng, 1 - p, shape))
        a = 1 / math.sqrt((_SELU_SATURATION ** 2 * p + 1) * (1 - p))
        scale = xp.multiply(keep, a, dtype=x.dtype)
        shift = xp.where(keep, a * _SELU_SATURATION * p, a * _SELU_SATURATION * (p - 1)).astype(x.dtype)
        ctx.save(scale)
        return x * scale + shift

    def backward(ctx, grad):
        (scale,) = ctx.saved
        return grad * scale


class FeatureAlphaDropout(AlphaDropout):
    """Alpha dropout with one draw per (sample, channel)."""

    op = "feature_alpha_dropout"
    feature = True


def _alpha(cls, input: Tensor, p: float, training: bool, inplace: bool) -> Tensor:
    op = cls.op
    _check_p(op, p)
    if cls.feature and input.ndim < 2:
        raise ShapeError(f"{op}: expected an input with at least 2 dims (N, C, ...), got shape "
                         f"{tuple(input.shape)}")
    if not training or p == 0 or input.numel() == 0:
        return input
    if p == 1:  # everything dropped: PyTorch multiplies by zero
        return _maybe_inplace(input, inplace, lambda t: t * 0.0)
    return _maybe_inplace(input, inplace, lambda t: cls.apply(t, p=p))


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Alpha dropout of each element (for SELU networks); the identity when not training."""
    return _alpha(AlphaDropout, input, p, training, inplace)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Alpha dropout of whole channels of an (N, C, ...) input; the identity when not training."""
    return _alpha(FeatureAlphaDropout, input, p, training, inplace)
