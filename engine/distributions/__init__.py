"""Probability distributions with torch.distributions' API, built from engine ops.

    from engine.distributions import Normal, kl_divergence
    q = Normal(mu, log_sigma.exp())
    z = q.rsample()                      # gradients reach mu and log_sigma
    loss = -log_likelihood(z) + kl_divergence(q, Normal(0.0, 1.0)).sum()

Samples come from the engine's generators (engine.manual_seed makes runs repeat), on the parameters' device.
"""

from engine.distributions import constraints, kl_continuous, kl_pairs  # the kl_ modules register their pairs
from engine.distributions.bernoulli import Bernoulli
from engine.distributions.beta import Beta
from engine.distributions.categorical import Categorical
from engine.distributions.constraint_registry import biject_to, transform_to
from engine.distributions.continuous_bernoulli import ContinuousBernoulli
from engine.distributions.counts import Binomial, Geometric, Multinomial, NegativeBinomial, Poisson
from engine.distributions.dirichlet import Dirichlet
from engine.distributions.distribution import Distribution
from engine.distributions.exp_family import ExponentialFamily
from engine.distributions.fisher_snedecor import FisherSnedecor
from engine.distributions.gamma import Gamma
from engine.distributions.heavy_tails import Cauchy, Gumbel, HalfCauchy, Laplace, StudentT
from engine.distributions.independent import Independent
from engine.distributions.kl import kl_divergence, register_kl
from engine.distributions.lowrank_multivariate_normal import LowRankMultivariateNormal
from engine.distributions.mixture import MixtureSameFamily
from engine.distributions.multivariate_normal import MultivariateNormal
from engine.distributions.normal import Normal
from engine.distributions.one_hot_categorical import OneHotCategorical
from engine.distributions.positive import (
    Chi2,
    Exponential,
    HalfNormal,
    InverseGamma,
    Kumaraswamy,
    LogNormal,
    Pareto,
    Weibull,
)
from engine.distributions.relaxed import (
    ExpRelaxedCategorical,
    LogisticNormal,
    LogitRelaxedBernoulli,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from engine.distributions.straight_through import OneHotCategoricalStraightThrough
from engine.distributions.transformed_distribution import TransformedDistribution
from engine.distributions.transforms import *  # noqa: F403  (every Transform, as torch.distributions exports them)
from engine.distributions.transforms import __all__ as _transform_names
from engine.distributions.uniform import Uniform
from engine.distributions.von_mises import VonMises

__all__ = [
    "Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2", "ContinuousBernoulli", "Dirichlet",
    "Distribution", "ExpRelaxedCategorical", "Exponential", "ExponentialFamily", "FisherSnedecor", "Gamma",
    "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "InverseGamma", "Kumaraswamy", "Laplace",
    "LogNormal", "LogisticNormal", "LogitRelaxedBernoulli", "LowRankMultivariateNormal", "MixtureSameFamily",
    "Multinomial", "MultivariateNormal", "NegativeBinomial", "Normal", "OneHotCategorical",
    "OneHotCategoricalStraightThrough", "Pareto", "Poisson", "RelaxedBernoulli", "RelaxedOneHotCategorical",
    "StudentT", "TransformedDistribution", "Uniform", "VonMises", "Weibull", "biject_to", "constraints",
    "kl_divergence", "register_kl", "transform_to",
    *_transform_names,
]
