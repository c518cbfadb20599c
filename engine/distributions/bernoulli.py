"""Bernoulli(probs | logits): a coin with P(1) = probs, as torch.distributions.Bernoulli."""

from __future__ import annotations

import engine
from engine.distributions import constraints
from engine.distributions.distribution import Distribution
from engine.distributions.utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits
from engine.ops.loss import binary_cross_entropy_with_logits
from engine.tensor import Tensor


def one_of(probs, logits) -> None:
    """Raise unless exactly one of `probs` and `logits` was given (PyTorch's words)."""
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")


class BinaryParams:
    """`probs` or `logits` of a binary event (one given, the other made on first use), with `extra` parameters
    broadcast to them."""

    def _set_params(self, probs, logits, **extra) -> engine.Size:
        """Store the parameters, broadcast together; returns the batch shape (theirs)."""
        one_of(probs, logits)
        name, param = ("probs", probs) if probs is not None else ("logits", logits)
        values = broadcast_all(*extra.values(), param)
        self.__dict__[name] = values[-1]
        for key, v in zip(extra, values):
            self.__dict__[key] = v.to(values[-1].dtype)
        return engine.Size(values[-1].shape)

    @property
    def _param(self) -> Tensor:
        return self.__dict__["probs"] if "probs" in self.__dict__ else self.__dict__["logits"]

    @lazy_property
    def logits(self) -> Tensor:
        """log(p / (1 - p))."""
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        """The probability of success, sigmoid(logits)."""
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> engine.Size:
        return engine.Size(self._param.shape)


class Bernoulli(BinaryParams, Distribution):
    """Samples 1 with probability `probs` (or sigmoid(`logits`)) and 0 otherwise; no rsample."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        super().__init__(self._set_params(probs, logits), validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        p = self.probs
        return (p >= 0.5).to(p.dtype).masked_fill(p == 0.5, float("nan"))

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        with engine.no_grad():
            p = self.probs.expand(shape)
            return (engine.rand(shape, dtype=p.dtype, device=p.device) < p).to(p.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        value = value.to(logits.dtype)  # a 0/1 sample may come as bool or int
        return -binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self) -> Tensor:
        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = engine.tensor([0.0, 1.0], dtype=self._param.dtype, device=self._param.device)
        values = values.reshape(2, *(1,) * len(self._batch_shape))
        return values.expand(2, *self._batch_shape) if expand else values
