"""ExponentialFamily: the base class of distributions whose density is exp(<t(x), theta> - F(theta) + k(x)).

As torch.distributions.ExponentialFamily, its entropy (and the KL between two members of one family,
engine.distributions.kl_pairs) comes from the Bregman divergence of the log normalizer F, whose gradient
autograd supplies; a subclass with a closed form overrides entropy.
"""

from __future__ import annotations

from engine.autograd.grad_mode import enable_grad
from engine.distributions.distribution import Distribution
from engine.tensor import Tensor


def log_normalizer_and_grads(dist: ExponentialFamily) -> tuple[Tensor, list[Tensor], tuple[Tensor, ...]]:
    """F(theta) at detached copies of the natural parameters theta, the copies, and dF/dtheta (with a graph)."""
    from engine.autograd.engine import grad

    params = [p.detach().requires_grad_() for p in dist._natural_params]
    with enable_grad():
        value = dist._log_normalizer(*params)
        grads = grad(value.sum(), params, create_graph=True)
    return value, params, grads


class ExponentialFamily(Distribution):
    """A distribution of an exponential family: subclasses give `_natural_params`, `_log_normalizer` and
    `_mean_carrier_measure`, and entropy follows."""

    @property
    def _natural_params(self) -> tuple[Tensor, ...]:
        raise NotImplementedError(f"{type(self).__name__} does not implement _natural_params")

    def _log_normalizer(self, *natural_params: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement _log_normalizer")

    @property
    def _mean_carrier_measure(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not implement _mean_carrier_measure")

    def entropy(self) -> Tensor:
        """F(theta) - <theta, grad F(theta)> - E[k(x)]: the entropy from the log normalizer."""
        result = -self._mean_carrier_measure
        value, params, grads = log_normalizer_and_grads(self)
        result = value + result
        for p, g in zip(params, grads):
            result = result - (p * g).reshape(*self._batch_shape, -1).sum(-1)
        return result
