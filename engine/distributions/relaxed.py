"""Continuous relaxations of discrete distributions, and the logistic-normal on the simplex, as
torch.distributions has them: LogitRelaxedBernoulli / RelaxedBernoulli (binary Concrete), ExpRelaxedCategorical /
RelaxedOneHotCategorical (Gumbel-softmax), LogisticNormal. All have rsample: gradients reach probs or logits."""

from __future__ import annotations

import numbers

import engine
from engine.distributions import constraints
from engine.distributions.bernoulli import BinaryParams
from engine.distributions.categorical import Categorical
from engine.distributions.distribution import Distribution
from engine.distributions.normal import Normal
from engine.distributions.transformed_distribution import TransformedDistribution
from engine.distributions.transforms import ExpTransform, SigmoidTransform, StickBreakingTransform
from engine.distributions.utils import broadcast_all, clamp_probs
from engine.ops.activation import softplus
from engine.tensor import Tensor

__all__ = ["ExpRelaxedCategorical", "LogisticNormal", "LogitRelaxedBernoulli", "RelaxedBernoulli",
           "RelaxedOneHotCategorical"]


def _temperature(temperature, like: Tensor) -> Tensor:
    if isinstance(temperature, Tensor):
        return temperature
    if isinstance(temperature, numbers.Number):
        return engine.tensor(float(temperature), dtype=like.dtype, device=like.device)
    raise TypeError(f"temperature must be a Tensor or a number, got {type(temperature).__name__}")


class LogitRelaxedBernoulli(BinaryParams, Distribution):
    """The logit of a RelaxedBernoulli sample: (logit(u) + logits) / temperature for u ~ Uniform(0, 1)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args: bool | None = None) -> None:
        batch = self._set_params(probs, logits)
        self.temperature = _temperature(temperature, self._param)
        super().__init__(batch, validate_args=validate_args)

    def _expand_extra(self, new, batch_shape) -> None:
        new.temperature = self.temperature

    def rsample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        probs = clamp_probs(self.probs.expand(shape))
        u = clamp_probs(engine.rand(shape, dtype=probs.dtype, device=probs.device))
        return (u.log() - (-u).log1p() + probs.log() - (-probs).log1p()) / self.temperature

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        diff = logits - value * self.temperature
        return self.temperature.log() + diff - 2 * softplus(diff)


class RelaxedBernoulli(TransformedDistribution):
    """The binary Concrete distribution on (0, 1): sigmoid of a LogitRelaxedBernoulli sample."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args: bool | None = None) -> None:
        base = LogitRelaxedBernoulli(temperature, probs, logits)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)

    temperature = property(lambda self: self.base_dist.temperature, doc="The relaxation temperature.")
    logits = property(lambda self: self.base_dist.logits, doc="log(p / (1 - p)).")
    probs = property(lambda self: self.base_dist.probs, doc="The probability of 1 in the limit of temperature 0.")


class ExpRelaxedCategorical(Distribution):
    """The log of a RelaxedOneHotCategorical sample: log_softmax((logits + gumbel noise) / temperature)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args: bool | None = None) -> None:
        self._categorical = Categorical(probs, logits)
        self.temperature = _temperature(temperature, self._categorical._param)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    def _expand_extra(self, new, batch_shape) -> None:
        new.temperature = self.temperature
        new._categorical = self._categorical.expand(batch_shape)

    @property
    def param_shape(self) -> engine.Size:
        return self._categorical.param_shape

    logits = property(lambda self: self._categorical.logits, doc="Normalised log-probabilities.")
    probs = property(lambda self: self._categorical.probs, doc="Normalised probabilities.")

    def rsample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        u = clamp_probs(engine.rand(shape, dtype=self.logits.dtype, device=self.logits.device))
        gumbels = -(-u.log()).log()
        scores = (self.logits + gumbels) / self.temperature
        return scores - scores.logsumexp(dim=-1, keepdim=True)

    def log_prob(self, value: Tensor) -> Tensor:
        k = self._categorical._num_events
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        log_scale = engine.full_like(self.temperature, float(k)).lgamma() + (k - 1) * self.temperature.log()
        score = logits - value * self.temperature
        return (score - score.logsumexp(dim=-1, keepdim=True)).sum(-1) + log_scale


class RelaxedOneHotCategorical(TransformedDistribution):
    """The Concrete / Gumbel-softmax distribution on the simplex: exp of an ExpRelaxedCategorical sample."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args: bool | None = None) -> None:
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    temperature = property(lambda self: self.base_dist.temperature, doc="The relaxation temperature.")
    logits = property(lambda self: self.base_dist.logits, doc="Normalised log-probabilities.")
    probs = property(lambda self: self.base_dist.probs, doc="Normalised probabilities.")


class LogisticNormal(TransformedDistribution):
    """StickBreakingTransform of a Normal(loc, scale) vector: a distribution on the simplex of one more entry."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args: bool | None = None) -> None:
        base = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            base = base.expand((1,))
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    loc = property(lambda self: self.base_dist.base_dist.loc, doc="The mean of the underlying Normal.")
    scale = property(lambda self: self.base_dist.base_dist.scale, doc="The scale of the underlying Normal.")
