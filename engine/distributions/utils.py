"""Helpers shared by the distributions, as torch.distributions.utils."""

from __future__ import annotations

import numbers

import numpy as np

import engine
from engine import dtypes
from engine.ops import elementwise as E
from engine.ops.activation import softmax
from engine.tensor import Tensor

__all__ = ["broadcast_all", "clamp_probs", "lazy_property", "logits_to_probs", "probs_to_logits"]


def broadcast_all(*values) -> tuple[Tensor, ...]:
    """Tensors and numbers as tensors of one broadcast shape; numbers take the tensors' dtype and device."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    for v in values:
        if not isinstance(v, Tensor) and not isinstance(v, numbers.Number):
            raise ValueError(f"Input arguments must all be instances of numbers.Number or engine.Tensor, "
                             f"got {type(v).__name__}")
    like = tensors[0] if tensors else None
    dtype = like.dtype if like is not None and like.dtype.is_floating_point else dtypes.default_float
    device = like.device if like is not None else None
    out = [v if isinstance(v, Tensor) else engine.tensor(float(v), dtype=dtype, device=device) for v in values]
    shape = np.broadcast_shapes(*(t.shape for t in out))
    return tuple(t if t.shape == shape else t.expand(shape) for t in out)


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities kept one machine epsilon away from 0 and 1, so their logs stay finite."""
    eps = float(np.finfo(probs.dtype.np).eps)
    return probs.clamp(min=eps, max=1 - eps)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """sigmoid(logits) for a binary variable, softmax over the last dim otherwise."""
    return E.sigmoid(logits) if is_binary else softmax(logits, -1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """log(p) - log(1 - p) for a binary variable, log(p) otherwise (probabilities clamped first)."""
    p = clamp_probs(probs)
    return E.log(p) - E.log1p(-p) if is_binary else E.log(p)


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """The sum over the rightmost `dim` dims (value itself when dim is 0)."""
    if dim == 0:
        return value
    return value.reshape(*value.shape[:value.ndim - dim], -1).sum(-1)


def forwarded(attr: str, name: str) -> property:
    """A read-only property that reads `self.<attr>.<name>` (a wrapper's statistic is its base's)."""
    return property(lambda self: getattr(getattr(self, attr), name),
                    doc=f"The {name} of the wrapped distribution ({attr}).")


class lazy_property:
    """A property computed on first use and then kept in the instance's __dict__ (a parameter made from another)."""

    def __init__(self, wrapped) -> None:
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        with engine.enable_grad():
            value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value
