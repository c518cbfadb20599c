"""Distance layers: PairwiseDistance and CosineSimilarity, each calling the functional of the same name."""

from __future__ import annotations

from engine.nn import functional as F
from engine.nn.module import Module
from engine.tensor import Tensor


class PairwiseDistance(Module):
    """The p-norm distance between x1 and x2 (plus eps) over their last dimension."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class CosineSimilarity(Module):
    """The cosine of the angle between x1 and x2 along `dim` (each norm kept at least eps)."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)
