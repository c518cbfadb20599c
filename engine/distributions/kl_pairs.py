"""The KL divergences torch registers for the count, mixture-free multivariate and exponential-family
distributions of this package (Binomial, Geometric, Poisson, ContinuousBernoulli, LowRankMultivariateNormal,
ExponentialFamily), registered with engine.distributions.kl.register_kl when the package is imported.
The pairs of infinite KL are in kl_continuous.INFINITE_KL_PAIRS."""

from __future__ import annotations

import math

import engine
from engine.distributions.bernoulli import Bernoulli
from engine.distributions.beta import Beta
from engine.distributions.continuous_bernoulli import ContinuousBernoulli
from engine.distributions.counts import Binomial, Geometric, Poisson
from engine.distributions.exp_family import ExponentialFamily, log_normalizer_and_grads
from engine.distributions.kl import register_kl
from engine.distributions.lowrank_multivariate_normal import (
    LowRankMultivariateNormal,
    batch_lowrank_logdet,
    batch_lowrank_mahalanobis,
    batch_trace_XXT,
)
from engine.distributions.multivariate_normal import MultivariateNormal, batch_mahalanobis, half_log_det
from engine.distributions.normal import Normal
from engine.distributions.uniform import Uniform
from engine.distributions.utils import sum_rightmost
from engine.ops.elementwise import where
from engine.ops.linalg import diag_embed, solve_triangular
from engine.tensor import Tensor


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p: Binomial, q: Binomial) -> Tensor:
    if bool((p.total_count < q.total_count).any().item()):
        raise NotImplementedError("KL between Binomials where q.total_count > p.total_count is not implemented")
    kl = p.total_count * (p.probs * (p.logits - q.logits) + (-p.probs).log1p() - (-q.probs).log1p())
    return where(p.total_count > q.total_count, float("inf"), kl)


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p: Geometric, q: Geometric) -> Tensor:
    return -p.entropy() - (-q.probs).log1p() / p.probs - q.logits


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p: Poisson, q: Poisson) -> Tensor:
    return p.rate * (p.rate.log() - q.rate.log()) - (p.rate - q.rate)


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p: Bernoulli, q: Poisson) -> Tensor:
    return -p.entropy() - (p.probs * q.rate.log() - q.rate)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_continuous_bernoulli_continuous_bernoulli(p: ContinuousBernoulli, q: ContinuousBernoulli) -> Tensor:
    t1 = p.mean * (p.logits - q.logits)
    t2 = p._cont_bern_log_norm() + (-p.probs).log1p()
    t3 = -q._cont_bern_log_norm() - (-q.probs).log1p()
    return t1 + t2 + t3


@register_kl(Beta, ContinuousBernoulli)
def _kl_beta_continuous_bernoulli(p: Beta, q: ContinuousBernoulli) -> Tensor:
    return -p.entropy() - p.mean * q.logits - (-q.probs).log1p() - q._cont_bern_log_norm()


@register_kl(Uniform, ContinuousBernoulli)
def _kl_uniform_continuous_bernoulli(p: Uniform, q: ContinuousBernoulli) -> Tensor:
    result = -p.entropy() - p.mean * q.logits - (-q.probs).log1p() - q._cont_bern_log_norm()
    return where((p.high >= 1.0) | (p.low <= 0.0), float("inf"), result)


@register_kl(ContinuousBernoulli, Normal)
def _kl_continuous_bernoulli_normal(p: ContinuousBernoulli, q: Normal) -> Tensor:
    t1 = -p.entropy()
    t2 = 0.5 * (math.log(2.0 * math.pi) + (q.loc / q.scale).square()) + q.scale.log()
    t3 = (p.variance + p.mean.square() - 2.0 * q.loc * p.mean) / (2.0 * q.scale.square())
    return t1 + t2 + t3


@register_kl(ContinuousBernoulli, Uniform)
def _kl_continuous_bernoulli_uniform(p: ContinuousBernoulli, q: Uniform) -> Tensor:
    result = -p.entropy() + (q.high - q.low).log()
    return where((q.low >= 0.0) | (q.high <= 1.0), float("inf"), result)


@register_kl(ExponentialFamily, ExponentialFamily)
def _kl_expfamily_expfamily(p: ExponentialFamily, q: ExponentialFamily) -> Tensor:
    if type(p) is not type(q):
        raise NotImplementedError("The cross KL-divergence between different exponential families cannot be "
                                  "computed using Bregman divergences")
    value, p_params, grads = log_normalizer_and_grads(p)
    q_params = q._natural_params
    result = q._log_normalizer(*q_params) - value
    for pnp, qnp, g in zip(p_params, q_params, grads):
        result = result - sum_rightmost((qnp - pnp) * g, len(q.event_shape))
    return result


def _check_event_shapes(p, q) -> None:
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two (Low Rank) Multivariate Normals with different event shapes "
                         "cannot be computed")


def _lowrank_parts(q: LowRankMultivariateNormal, delta: Tensor):
    """log det of q's covariance, the Mahalanobis term of delta, and A = L^-1 W^T D^-1 of q."""
    W, D, L = q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q._capacitance_tril
    A = solve_triangular(L, W.mT / D.unsqueeze(-2), upper=False)
    return batch_lowrank_logdet(W, D, L), batch_lowrank_mahalanobis(W, D, delta, L), A


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p: LowRankMultivariateNormal, q: LowRankMultivariateNormal) -> Tensor:
    _check_event_shapes(p, q)
    q_logdet, term3, A = _lowrank_parts(q, q.loc - p.loc)
    term1 = q_logdet - p._logdet()
    pW, pD, qD = p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag, q._unbroadcasted_cov_diag
    # trace(inv(qcov) pcov) = trace([inv(qD) - A^T A] (pD + pW pW^T))
    term2 = ((pD / qD).sum(-1) + batch_trace_XXT(pW * qD.rsqrt().unsqueeze(-1))
             - batch_trace_XXT(A * pD.sqrt().unsqueeze(-2)) - batch_trace_XXT(A @ pW))
    return 0.5 * (term1 + term2 + term3 - p.event_shape[0])


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_lowrank(p: MultivariateNormal, q: LowRankMultivariateNormal) -> Tensor:
    _check_event_shapes(p, q)
    q_logdet, term3, A = _lowrank_parts(q, q.loc - p.loc)
    Lp = p._unbroadcasted_scale_tril
    term1 = q_logdet - 2 * half_log_det(Lp)
    term2 = batch_trace_XXT(Lp * q._unbroadcasted_cov_diag.rsqrt().unsqueeze(-1)) - batch_trace_XXT(A @ Lp)
    return 0.5 * (term1 + term2 + term3 - p.event_shape[0])


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrank_mvn(p: LowRankMultivariateNormal, q: MultivariateNormal) -> Tensor:
    _check_event_shapes(p, q)
    Lq = q._unbroadcasted_scale_tril
    term1 = 2 * half_log_det(Lq) - p._logdet()
    term3 = batch_mahalanobis(Lq, q.loc - p.loc)
    # trace(inv(qcov) pcov) = |Lq^-1 pW|^2 + |Lq^-1 sqrt(pD)|^2
    n = p.event_shape[0]
    pW, pD = p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag
    batch = tuple(engine.broadcast_shapes(Lq.shape[:-2], pW.shape[:-2]))
    Lq = Lq.expand(*batch, n, n)
    term21 = batch_trace_XXT(solve_triangular(Lq, pW.expand(*batch, n, pW.shape[-1]), upper=False))
    term22 = batch_trace_XXT(solve_triangular(Lq, diag_embed(pD.sqrt()).expand(*batch, n, n), upper=False))
    return 0.5 * (term1 + term21 + term22 + term3 - n)


def kl_pairs_registered() -> list[tuple[str, str]]:
    """The (p, q) type names whose KL divergence this module registers."""
    return [(p.__name__, q.__name__) for p, q in _REGISTERED]


_REGISTERED = [(Binomial, Binomial), (Geometric, Geometric), (Poisson, Poisson), (Bernoulli, Poisson),
               (ContinuousBernoulli, ContinuousBernoulli), (Beta, ContinuousBernoulli), (Uniform, ContinuousBernoulli),
               (ContinuousBernoulli, Normal), (ContinuousBernoulli, Uniform), (ExponentialFamily, ExponentialFamily),
               (LowRankMultivariateNormal, LowRankMultivariateNormal), (MultivariateNormal, LowRankMultivariateNormal),
               (LowRankMultivariateNormal, MultivariateNormal)]
