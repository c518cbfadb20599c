"""Vector normalization and cosine similarity, composed from norm, clamp, div, expand and sum."""

from __future__ import annotations

import numpy as np

from engine.autograd.function import ShapeError
from engine.ops.elementwise import clamp
from engine.ops.reduce import norm
from engine.ops.shape import _dim, expand
from engine.tensor import Tensor

__all__ = ["cosine_similarity", "normalize"]


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input divided by its p-norm along `dim`, the norm kept at least `eps`."""
    return input / clamp(norm(input, p, dim=dim, keepdim=True), min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """The cosine of the angle between x1 and x2 (broadcast together) along `dim`; each norm kept >= eps."""
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ShapeError(f"cosine_similarity: x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} do not "
                         "broadcast together") from None
    d = _dim(dim, len(shape))
    x1, x2 = (x if x.shape == shape else expand(x, shape) for x in (x1, x2))
    return (normalize(x1, 2, d, eps) * normalize(x2, 2, d, eps)).sum(d)
