"""Probability distributions with torch.distributions' API, built from engine ops.

    from engine.distributions import Normal, kl_divergence
    q = Normal(mu, log_sigma.exp())
    z = q.rsample()                      # gradients reach mu and log_sigma
    loss = -log_likelihood(z) + kl_divergence(q, Normal(0.0, 1.0)).sum()

Samples come from the engine's generators (engine.manual_seed makes runs repeat), on the parameters' device.
"""

from engine.distributions import constraints
from engine.distributions.bernoulli import Bernoulli
from engine.distributions.beta import Beta
from engine.distributions.categorical import Categorical
from engine.distributions.dirichlet import Dirichlet
from engine.distributions.distribution import Distribution
from engine.distributions.gamma import Gamma
from engine.distributions.independent import Independent
from engine.distributions.kl import kl_divergence, register_kl
from engine.distributions.multivariate_normal import MultivariateNormal
from engine.distributions.normal import Normal
from engine.distributions.one_hot_categorical import OneHotCategorical
from engine.distributions.uniform import Uniform

__all__ = [
    "Bernoulli", "Beta", "Categorical", "Dirichlet", "Distribution", "Gamma", "Independent", "MultivariateNormal",
    "Normal", "OneHotCategorical", "Uniform", "constraints", "kl_divergence", "register_kl",
]
