"""OneHotCategorical(probs | logits): a Categorical whose samples are one-hot vectors."""

from __future__ import annotations

import engine
from engine.distributions import constraints
from engine.distributions.categorical import Categorical
from engine.distributions.distribution import Distribution
from engine.distributions.utils import forwarded
from engine.ops.nn import one_hot
from engine.tensor import Tensor


class OneHotCategorical(Distribution):
    """Samples one-hot vectors of length K (event_shape (K,)); log_prob reads the category that is hot."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        param = self._categorical._param
        super().__init__(param.shape[:-1], param.shape[-1:], validate_args=validate_args)

    def _expand_extra(self, new, batch_shape) -> None:
        new._categorical = self._categorical.expand(batch_shape)

    _param = forwarded("_categorical", "_param")
    probs = forwarded("_categorical", "probs")
    logits = forwarded("_categorical", "logits")
    param_shape = forwarded("_categorical", "param_shape")
    mean = forwarded("_categorical", "probs")

    @property
    def mode(self) -> Tensor:
        probs = self._categorical.probs
        return one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)

    @property
    def variance(self) -> Tensor:
        p = self._categorical.probs
        return p * (1 - p)

    def sample(self, sample_shape=()) -> Tensor:
        probs = self._categorical.probs
        indices = self._categorical.sample(sample_shape)
        return one_hot(indices, self._categorical._num_events).to(probs.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        n = self._event_shape[0]
        values = engine.eye(n, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape(n, *(1,) * len(self._batch_shape), n)
        return values.expand(n, *self._batch_shape, n) if expand else values

    def __repr__(self) -> str:
        return "OneHotCategorical" + repr(self._categorical)[len("Categorical"):]
