"""Dirichlet(concentration), as torch.distributions.Dirichlet.

It samples by normalising independent gamma samples, g / sum(g); each gamma sample is implicitly
reparameterised (engine.distributions.gamma), so rsample's gradients reach the concentrations.
"""

from __future__ import annotations

import numpy as np

from engine import dtypes
from engine.distributions import constraints
from engine.distributions.distribution import Distribution
from engine.distributions.gamma import standard_gamma
from engine.ops.elementwise import where
from engine.ops.nn import one_hot
from engine.ops.special import digamma, lgamma, xlogy
from engine.tensor import Tensor


def _clamped(x: Tensor) -> Tensor:
    """Samples kept inside (0, 1), as PyTorch clamps them (to the smallest normal number and the largest below
    1), so that log_prob stays finite."""
    dt = x.dtype.np
    return x.clamp(min=float(np.finfo(dt).tiny), max=float(np.nextafter(dt.type(1), dt.type(0))))


class Dirichlet(Distribution):
    """The Dirichlet distribution over the probability simplex of the last dim of `concentration`."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration: Tensor, validate_args: bool | None = None) -> None:
        if not isinstance(concentration, Tensor) or concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self) -> Tensor:
        c = self.concentration
        inner = (c - 1).clamp(min=0)
        inner = inner / inner.sum(-1, keepdim=True)
        corner = one_hot(c.argmax(-1), c.shape[-1]).to(c.dtype)
        return where((c < 1).all(-1, keepdim=True), corner, inner)

    @property
    def variance(self) -> Tensor:
        c = self.concentration
        total = c.sum(-1, keepdim=True)
        return c * (total - c) / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()) -> Tensor:
        """As torch draws it: Gamma samples in float64 (concentrations included), normalised there, then cast."""
        c = self.concentration
        g = standard_gamma(c.to(dtypes.float64), self._extended_shape(sample_shape))
        return _clamped((g / g.sum(-1, keepdim=True)).to(c.dtype))

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return xlogy(c - 1.0, value).sum(-1) + lgamma(c.sum(-1)) - lgamma(c).sum(-1)

    def entropy(self) -> Tensor:
        c = self.concentration
        k = c.shape[-1]
        total = c.sum(-1)
        return lgamma(c).sum(-1) - lgamma(total) - (k - total) * digamma(total) - ((c - 1.0) * digamma(c)).sum(-1)
