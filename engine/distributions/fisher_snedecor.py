"""FisherSnedecor(df1, df2): the F distribution, as torch.distributions.FisherSnedecor.

rsample is the ratio of two implicitly reparameterised gamma samples, (X1 / df1) / (X2 / df2), so
gradients reach both degrees of freedom.
"""

from __future__ import annotations

import numbers

import numpy as np

from engine.distributions import constraints
from engine.distributions.distribution import Distribution
from engine.distributions.gamma import Gamma
from engine.distributions.utils import broadcast_all
from engine.ops.elementwise import where
from engine.tensor import Tensor


def _defined(undefined: Tensor, df: Tensor, harmless: float) -> Tensor:
    """`df` with `harmless` where the moment is undefined: the formula then stays finite there, so no NaN
    reaches a gradient (the NaN is put in after, by a where whose other branch is finite)."""
    return where(undefined, harmless, df)


class FisherSnedecor(Distribution):
    """The F distribution with `df1` and `df2` degrees of freedom; mean, mode and variance are NaN where they
    do not exist (df2 <= 2, df1 <= 2, df2 <= 4), with gradients 0 there at every order (torch's are 0 for df2
    and NaN for df1)."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args: bool | None = None) -> None:
        self.df1, self.df2 = broadcast_all(df1, df2)
        scalar = isinstance(df1, numbers.Number) and isinstance(df2, numbers.Number)
        super().__init__(() if scalar else self.df1.shape, validate_args=validate_args)
        self._gamma1 = Gamma(self.df1 * 0.5, self.df1, validate_args=False)
        self._gamma2 = Gamma(self.df2 * 0.5, self.df2, validate_args=False)

    def _expand_extra(self, new, batch_shape) -> None:
        new._gamma1 = self._gamma1.expand(batch_shape)
        new._gamma2 = self._gamma2.expand(batch_shape)

    @property
    def mean(self) -> Tensor:
        undefined = self.df2 <= 2
        df2 = _defined(undefined, self.df2, 3.0)
        return where(undefined, float("nan"), df2 / (df2 - 2))

    @property
    def mode(self) -> Tensor:
        mode = (self.df1 - 2) / self.df1 * self.df2 / (self.df2 + 2)
        return where(self.df1 <= 2, float("nan"), mode)

    @property
    def variance(self) -> Tensor:
        undefined = self.df2 <= 4
        df2 = _defined(undefined, self.df2, 5.0)
        variance = 2 * df2.pow(2) * (self.df1 + df2 - 2) / (self.df1 * (df2 - 2).pow(2) * (df2 - 4))
        return where(undefined, float("nan"), variance)

    def rsample(self, sample_shape=()) -> Tensor:
        x1 = self._gamma1.rsample(sample_shape)
        tiny = float(np.finfo(x1.dtype.np).tiny)
        x2 = self._gamma2.rsample(sample_shape).clamp(min=tiny)
        return (x1 / x2).clamp(min=tiny)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        ct1, ct2, ct3 = self.df1 * 0.5, self.df2 * 0.5, self.df1 / self.df2
        t1 = (ct1 + ct2).lgamma() - ct1.lgamma() - ct2.lgamma()
        t2 = ct1 * ct3.log() + (ct1 - 1) * value.log()
        t3 = (ct1 + ct2) * (ct3 * value).log1p()
        return t1 + t2 - t3
