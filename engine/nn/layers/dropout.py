"""Dropout: elementwise, of whole channels (1-D, 2-D, 3-D), and alpha dropout."""

from __future__ import annotations

from engine.nn import functional as F
from engine.nn.module import Module
from engine.nn.settings import Setting
from engine.tensor import Tensor


class Dropout(Module):
    """While training, zero each element with probability p and scale the rest by 1/(1-p)."""

    settings = (Setting("p", float, low=0.0, high=1.0, doc="probability of zeroing an element"),)

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """While training, zero each whole channel with probability p and scale the rest by 1/(1-p)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout1d(Dropout):
    """While training, zero each whole channel of (N, C, L) with probability p and scale the rest by 1/(1-p)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout3d(Dropout):
    """While training, zero each whole channel of (N, C, D, H, W) with probability p and scale the rest by
    1/(1-p)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(Dropout):
    """While training, alpha dropout (for SELU networks): dropped values set to SELU's saturation, then
    rescaled so mean and variance are kept."""

    def forward(self, input: Tensor) -> Tensor:
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(Dropout):
    """While training, alpha dropout of whole channels of (N, C, ...)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.feature_alpha_dropout(input, self.p, self.training)
