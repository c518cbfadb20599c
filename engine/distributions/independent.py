"""Independent(base, n): the rightmost n batch dims of a distribution become event dims."""

from __future__ import annotations

from engine.distributions import constraints
from engine.distributions.distribution import Distribution
from engine.distributions.utils import forwarded, sum_rightmost
from engine.tensor import Tensor


class Independent(Distribution):
    """Reinterprets batch dims as event dims: log_prob and entropy sum over them (a diagonal Normal over
    vectors is Independent(Normal(loc, scale), 1))."""

    arg_constraints: dict = {}

    def __init__(self, base_distribution: Distribution, reinterpreted_batch_ndims: int,
                 validate_args: bool | None = None) -> None:
        if not isinstance(base_distribution, Distribution):
            raise TypeError(f"Independent expects a Distribution, got {type(base_distribution).__name__}")
        n = int(reinterpreted_batch_ndims)
        if n > len(base_distribution.batch_shape) or n < 0:
            raise ValueError("Expected reinterpreted_batch_ndims <= len(base_distribution.batch_shape), "
                             f"actual {n} vs {len(base_distribution.batch_shape)}")
        shape = base_distribution.batch_shape + base_distribution.event_shape
        event_dim = n + len(base_distribution.event_shape)
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = n
        super().__init__(shape[:len(shape) - event_dim], shape[len(shape) - event_dim:], validate_args=validate_args)

    def _expand_extra(self, new, batch_shape) -> None:
        # the base distribution expands to `batch_shape` + the reinterpreted dims
        n = self.reinterpreted_batch_ndims
        base_batch = self.base_dist.batch_shape
        new.base_dist = self.base_dist.expand(tuple(batch_shape) + tuple(base_batch[len(base_batch) - n:]))
        new.reinterpreted_batch_ndims = n

    has_rsample = forwarded("base_dist", "has_rsample")
    mean = forwarded("base_dist", "mean")
    mode = forwarded("base_dist", "mode")
    variance = forwarded("base_dist", "variance")

    @property
    def has_enumerate_support(self) -> bool:
        return self.reinterpreted_batch_ndims == 0 and self.base_dist.has_enumerate_support

    @constraints.dependent_property
    def support(self):
        result = self.base_dist.support
        if self.reinterpreted_batch_ndims:
            result = constraints.independent(result, self.reinterpreted_batch_ndims)
        return result

    def sample(self, sample_shape=()) -> Tensor:
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        return sum_rightmost(self.base_dist.log_prob(value), self.reinterpreted_batch_ndims)

    def entropy(self) -> Tensor:
        return sum_rightmost(self.base_dist.entropy(), self.reinterpreted_batch_ndims)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        if self.reinterpreted_batch_ndims > 0:
            raise NotImplementedError("Enumeration over cartesian product is not implemented")
        return self.base_dist.enumerate_support(expand=expand)

    def __repr__(self) -> str:
        return f"Independent({self.base_dist!r}, {self.reinterpreted_batch_ndims})"
