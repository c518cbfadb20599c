"""OneHotCategoricalStraightThrough: a OneHotCategorical whose rsample passes gradients straight through."""

from __future__ import annotations

from engine.distributions.one_hot_categorical import OneHotCategorical
from engine.tensor import Tensor


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """rsample is a one-hot sample in the forward pass whose gradient is that of probs (Bengio et al. 2013)."""

    has_rsample = True

    def rsample(self, sample_shape=()) -> Tensor:
        samples = self.sample(sample_shape)
        probs = self._categorical.probs
        return samples + (probs - probs.detach())

    def __repr__(self) -> str:
        return "OneHotCategoricalStraightThrough" + repr(self._categorical)[len("Categorical"):]
