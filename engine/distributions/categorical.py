"""Categorical(probs | logits): one of K categories, as torch.distributions.Categorical."""

from __future__ import annotations

import math

import numpy as np

import engine
from engine.distributions import constraints
from engine.distributions.bernoulli import one_of
from engine.distributions.distribution import Distribution
from engine.distributions.utils import lazy_property, logits_to_probs, probs_to_logits
from engine.tensor import Tensor


def _as_tensor(value) -> Tensor:
    return value if isinstance(value, Tensor) else engine.tensor(value, dtype=engine.float32)


class Categorical(Distribution):
    """Samples an index in 0..K-1 with the weights in the last dim of `probs` (normalised to sum to 1), or
    with softmax(`logits`); log_prob of an index tensor reads the (normalised) log-probability there."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        one_of(probs, logits)
        if probs is not None:
            probs = _as_tensor(probs)
            if probs.ndim < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            logits = _as_tensor(logits)
            if logits.ndim < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        param = self._param
        self._num_events = param.shape[-1]
        super().__init__(param.shape[:-1], validate_args=validate_args)

    @property
    def _param(self) -> Tensor:
        return self.__dict__["probs"] if "probs" in self.__dict__ else self.__dict__["logits"]

    def _expand_extra(self, new, batch_shape) -> None:
        new._num_events = self._num_events

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self) -> Tensor:
        """The normalised log-probabilities (log of probs, clamped away from 0)."""
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self) -> Tensor:
        """The normalised probabilities, softmax(logits)."""
        return logits_to_probs(self.logits)

    @property
    def param_shape(self) -> engine.Size:
        return engine.Size(self._param.shape)

    @property
    def mean(self) -> Tensor:
        return engine.full(tuple(self._extended_shape()), float("nan"), dtype=self._param.dtype,
                           device=self._param.device)

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    @property
    def variance(self) -> Tensor:
        return self.mean

    def sample(self, sample_shape=()) -> Tensor:
        """Indices (int64) of shape sample_shape + batch_shape, drawn as torch draws them: multinomial with
        replacement, all of one row's samples at a time."""
        shape = tuple(self._extended_shape(sample_shape))  # checks sample_shape
        with engine.no_grad():
            rows = self.probs.reshape(-1, self._num_events)
            drawn = engine.multinomial(rows, math.prod(sample_shape), True).T
            return drawn.reshape(shape)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        shape = np.broadcast_shapes(value.shape, self.logits.shape)
        log_pmf = self.logits.expand(shape)
        index = value.expand((*shape[:-1], 1))
        return log_pmf.gather(-1, index).squeeze(-1)

    def entropy(self) -> Tensor:
        min_real = float(np.finfo(self.logits.dtype.np).min)
        logits = self.logits.clamp(min=min_real)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = engine.arange(self._num_events, device=self._param.device)
        values = values.reshape(-1, *(1,) * len(self._batch_shape))
        return values.expand(-1, *self._batch_shape) if expand else values

