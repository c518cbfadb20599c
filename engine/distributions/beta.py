"""Beta(concentration1, concentration0), as torch.distributions.Beta: the two-category Dirichlet."""

from __future__ import annotations

import numbers

from engine.distributions import constraints
from engine.distributions.dirichlet import Dirichlet
from engine.distributions.distribution import Distribution
from engine.distributions.utils import broadcast_all
from engine.ops.shape import stack
from engine.ops.special import digamma, lgamma, xlogy
from engine.ops.special_incomplete import betainc
from engine.tensor import Tensor


class Beta(Distribution):
    """The beta distribution on [0, 1] with shapes `concentration1` (alpha) and `concentration0` (beta); rsample is
    x / (x + y) for implicitly reparameterised gamma samples x and y."""

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args: bool | None = None) -> None:
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        scalar = isinstance(concentration1, numbers.Number) and isinstance(concentration0, numbers.Number)
        super().__init__(() if scalar else self.concentration1.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        return Dirichlet(stack([a, b], -1), validate_args=False).mode[..., 0]

    @property
    def variance(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        total = a + b
        return a * b / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()) -> Tensor:
        """As torch draws it: the first coordinate of a Dirichlet of (concentration1, concentration0)."""
        pair = stack(broadcast_all(self.concentration1, self.concentration0), -1)
        return Dirichlet(pair, validate_args=False).rsample(sample_shape)[..., 0]

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        return (xlogy(a - 1.0, value) + xlogy(b - 1.0, 1 - value) + lgamma(a + b) - lgamma(a) - lgamma(b))

    def cdf(self, value: Tensor) -> Tensor:
        """P(X <= value): the regularized incomplete beta function I_value(concentration1, concentration0)."""
        if self._validate_args:
            self._validate_sample(value)
        return betainc(self.concentration1, self.concentration0, value)

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        total = a + b
        return (lgamma(a) + lgamma(b) - lgamma(total) - (a - 1.0) * digamma(a) - (b - 1.0) * digamma(b)
                + (total - 2.0) * digamma(total))
