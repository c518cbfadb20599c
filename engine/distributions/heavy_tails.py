"""Distributions with heavier tails than the Normal, as torch.distributions has them: Cauchy, HalfCauchy, Laplace,
StudentT and Gumbel (robust regression, extreme values, the Gumbel-max trick)."""

from __future__ import annotations

import math

import numpy as np

import engine
from engine.distributions import constraints
from engine.distributions.distribution import Distribution
from engine.distributions.positive import EULER, Chi2, Folded, _batch
from engine.distributions.transformed_distribution import TransformedDistribution
from engine.distributions.transforms import AffineTransform, ExpTransform
from engine.distributions.uniform import Uniform
from engine.ops.elementwise import where
from engine.ops.special import digamma, lgamma
from engine.tensor import Tensor

__all__ = ["Cauchy", "Gumbel", "HalfCauchy", "Laplace", "StudentT"]


class _LocScale(Distribution):
    """A real-valued location-scale family: loc and scale broadcast together."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args: bool | None = None) -> None:
        (self.loc, self.scale), batch = _batch(loc, scale)
        super().__init__(batch, validate_args=validate_args)

    @property
    def mode(self) -> Tensor:
        return self.loc

    def _uniform(self, sample_shape, low: float = 0.0) -> Tensor:
        u = engine.rand(tuple(self._extended_shape(sample_shape)), dtype=self.loc.dtype, device=self.loc.device)
        return u if low == 0.0 else low + (1 - low) * u

    def _checked(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return value


class Cauchy(_LocScale):
    """The Cauchy (Lorentz) distribution: no mean or variance; rsample is loc + scale * tan(pi (u - 1/2))."""

    @property
    def mean(self) -> Tensor:
        return engine.full(tuple(self._extended_shape()), math.nan, dtype=self.loc.dtype, device=self.loc.device)

    @property
    def variance(self) -> Tensor:
        return engine.full(tuple(self._extended_shape()), math.inf, dtype=self.loc.dtype, device=self.loc.device)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))  # as torch draws it: a standard cauchy_, scaled
        eps = engine.empty(shape, dtype=self.loc.dtype, device=self.loc.device).cauchy_()
        return self.loc + eps * self.scale

    def log_prob(self, value: Tensor) -> Tensor:
        z = (self._checked(value) - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - z.pow(2).log1p()

    def cdf(self, value: Tensor) -> Tensor:
        return ((self._checked(value) - self.loc) / self.scale).atan() / math.pi + 0.5

    def icdf(self, value: Tensor) -> Tensor:
        return (math.pi * (value - 0.5)).tan() * self.scale + self.loc

    def entropy(self) -> Tensor:
        return math.log(4 * math.pi) + self.scale.log()


class Laplace(_LocScale):
    """The Laplace (double exponential) distribution; rsample inverts its CDF."""

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return 2 * self.scale.pow(2)

    @property
    def stddev(self) -> Tensor:
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape=()) -> Tensor:
        # u in (eps - 1, 1) as torch draws it, so that log1p(-|u|) stays finite
        u = self._uniform(sample_shape, low=float(np.finfo(self.loc.dtype.np).eps) - 1)
        return self.loc - self.scale * u.sign() * (-u.abs()).log1p()

    def log_prob(self, value: Tensor) -> Tensor:
        return -(2 * self.scale).log() - (self._checked(value) - self.loc).abs() / self.scale

    def cdf(self, value: Tensor) -> Tensor:
        d = self._checked(value) - self.loc
        return 0.5 - 0.5 * d.sign() * (-d.abs() / self.scale).expm1()

    def icdf(self, value: Tensor) -> Tensor:
        term = value - 0.5
        return self.loc - self.scale * term.sign() * (-2 * term.abs()).log1p()

    def entropy(self) -> Tensor:
        return 1 + (2 * self.scale).log()


class StudentT(Distribution):
    """Student's t with `df` degrees of freedom; rsample is loc + scale * X / sqrt(Z / df) for X ~ Normal(0, 1)
    and Z ~ Chi2(df) (gradients reach df through the implicitly reparameterised gamma)."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args: bool | None = None) -> None:
        (self.df, self.loc, self.scale), _ = _batch(df, loc, scale)
        self._chi2 = Chi2(self.df, validate_args=False)
        super().__init__(tuple(self.df.shape), validate_args=validate_args)

    def _expand_extra(self, new, batch_shape) -> None:
        new._chi2 = self._chi2.expand(batch_shape)

    @property
    def mean(self) -> Tensor:
        return where(self.df <= 1, math.nan, self.loc)

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        df = self.df
        finite = self.scale.pow(2) * df / where(df > 2, df - 2, 1.0)
        return where(df > 2, finite, where(df > 1, math.inf, math.nan))

    def rsample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        x = engine.randn(shape, dtype=self.df.dtype, device=self.df.device)
        z = self._chi2.rsample(sample_shape)
        return self.loc + self.scale * x * (z / self.df).rsqrt()

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        df = self.df
        y = (value - self.loc) / self.scale
        z = self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi) + lgamma(0.5 * df) - lgamma(0.5 * (df + 1.0))
        return -0.5 * (df + 1.0) * (y.pow(2) / df).log1p() - z

    def entropy(self) -> Tensor:
        df = self.df
        lbeta = lgamma(0.5 * df) + math.lgamma(0.5) - lgamma(0.5 * (df + 1))
        return (self.scale.log() + 0.5 * (df + 1) * (digamma(0.5 * (df + 1)) - digamma(0.5 * df))
                + 0.5 * df.log() + lbeta)


class HalfCauchy(Folded):
    """|X| for X ~ Cauchy(0, scale)."""

    folds = Cauchy

    @property
    def mean(self) -> Tensor:
        return engine.full(tuple(self._extended_shape()), math.inf, dtype=self.scale.dtype, device=self.scale.device)

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance


class Gumbel(TransformedDistribution):
    """The Gumbel (type-I extreme value) distribution: loc - scale * log(-log(u)) for u ~ Uniform(0, 1)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args: bool | None = None) -> None:
        (self.loc, self.scale), batch = _batch(loc, scale)
        info = np.finfo(self.loc.dtype.np)
        low, high = float(info.tiny), 1 - float(info.eps)
        if batch:
            base = Uniform(engine.full_like(self.loc, low), engine.full_like(self.loc, high),
                           validate_args=validate_args)
        else:
            base = Uniform(low, high, validate_args=validate_args)
        transforms = [ExpTransform().inv, AffineTransform(0, -engine.ones_like(self.scale)), ExpTransform().inv,
                      AffineTransform(self.loc, -self.scale)]
        super().__init__(base, transforms, validate_args=validate_args)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        y = (self.loc - value) / self.scale
        return y - y.exp() - self.scale.log()

    @property
    def mean(self) -> Tensor:
        return self.loc + self.scale * EULER

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return math.pi / math.sqrt(6) * self.scale

    @property
    def variance(self) -> Tensor:
        return self.stddev.pow(2)

    def entropy(self) -> Tensor:
        return self.scale.log() + (1 + EULER)
