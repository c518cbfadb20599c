"""LowRankMultivariateNormal(loc, cov_factor, cov_diag): a Gaussian with covariance W W^T + diag(D), as in
torch.distributions.

With W of shape n x m (m << n), log_prob and entropy never form the n x n covariance: the Woodbury identity
and the matrix determinant lemma reduce them to the m x m capacitance matrix C = I + W^T D^-1 W.
"""

from __future__ import annotations

import math

import engine
from engine.distributions import constraints
from engine.distributions.distribution import Distribution
from engine.distributions.multivariate_normal import batch_mahalanobis, batch_mv
from engine.distributions.utils import lazy_property
from engine.ops.linalg import cholesky, diag_embed, solve_triangular
from engine.ops.linalg import linalg_diagonal as diagonal
from engine.tensor import Tensor


def batch_capacitance_tril(W: Tensor, D: Tensor) -> Tensor:
    """The Cholesky factor of I + W^T D^-1 W, over batch dims."""
    m = W.shape[-1]
    K = (W.mT / D.unsqueeze(-2)) @ W
    return cholesky(K + engine.eye(m, dtype=K.dtype, device=K.device))


def batch_lowrank_logdet(W: Tensor, D: Tensor, capacitance_tril: Tensor) -> Tensor:
    """log det(W W^T + D) = log det(C) + log det(D) (the matrix determinant lemma)."""
    return 2 * diagonal(capacitance_tril).log().sum(-1) + D.log().sum(-1)


def batch_lowrank_mahalanobis(W: Tensor, D: Tensor, x: Tensor, capacitance_tril: Tensor) -> Tensor:
    """x^T (W W^T + D)^-1 x = x^T D^-1 x - |L^-1 W^T D^-1 x|^2 (the Woodbury identity, C = L L^T)."""
    Wt_Dinv_x = batch_mv(W.mT / D.unsqueeze(-2), x)
    return (x.pow(2) / D).sum(-1) - batch_mahalanobis(capacitance_tril, Wt_Dinv_x)


def batch_trace_XXT(X: Tensor) -> Tensor:
    """trace(X X^T) over batch dims: the sum of squares of X."""
    return X.pow(2).sum((-2, -1))


class LowRankMultivariateNormal(Distribution):
    """The Gaussian over vectors of length n with mean `loc` and covariance cov_factor @ cov_factor.T +
    diag(cov_diag); rsample is loc + W eps_W + sqrt(D) eps_D."""

    arg_constraints = {"loc": constraints.real_vector, "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Tensor, cov_factor: Tensor, cov_diag: Tensor, validate_args: bool | None = None) -> None:
        for name, t in (("loc", loc), ("cov_factor", cov_factor), ("cov_diag", cov_diag)):
            if not isinstance(t, Tensor):
                raise TypeError(f"LowRankMultivariateNormal: {name} must be a Tensor, got {type(t).__name__}")
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        event_shape = loc.shape[-1:]
        if cov_factor.ndim < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional leading batch dimensions")
        if cov_factor.shape[-2:-1] != event_shape:
            raise ValueError(f"cov_factor must be a batch of matrices with shape {event_shape[0]} x m")
        if cov_diag.shape[-1:] != event_shape:
            raise ValueError(f"cov_diag must be a batch of vectors with shape {engine.Size(event_shape)}")
        try:
            shape = engine.broadcast_shapes(loc.unsqueeze(-1).shape, cov_factor.shape, cov_diag.unsqueeze(-1).shape)
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"Incompatible batch shapes: loc {engine.Size(loc.shape)}, cov_factor "
                             f"{engine.Size(cov_factor.shape)}, cov_diag {engine.Size(cov_diag.shape)}") from e
        shape = tuple(shape)
        self.loc = loc.expand(shape[:-1])
        self.cov_factor = cov_factor.expand(shape)
        self.cov_diag = cov_diag.expand(shape[:-1])
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        super().__init__(shape[:-2], event_shape, validate_args=validate_args)  # checks cov_diag > 0 first
        self._capacitance_tril = batch_capacitance_tril(cov_factor, cov_diag)

    def _expand_extra(self, new, batch_shape) -> None:
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        new._capacitance_tril = self._capacitance_tril

    @property
    def mean(self) -> Tensor:
        return self.loc

    mode = mean

    @lazy_property
    def variance(self) -> Tensor:
        """The diagonal of the covariance: row sums of W^2, plus D."""
        v = self._unbroadcasted_cov_factor.pow(2).sum(-1) + self._unbroadcasted_cov_diag
        return v.expand(tuple(self._batch_shape + self._event_shape))

    @lazy_property
    def scale_tril(self) -> Tensor:
        """The lower Cholesky factor of the covariance, sqrt(D) chol(I + D^-1/2 W W^T D^-1/2)."""
        n = self._event_shape[0]
        sqrt_d = self._unbroadcasted_cov_diag.sqrt().unsqueeze(-1)
        Dinvsqrt_W = self._unbroadcasted_cov_factor / sqrt_d
        K = Dinvsqrt_W @ Dinvsqrt_W.mT + engine.eye(n, dtype=sqrt_d.dtype, device=sqrt_d.device)
        L = sqrt_d * cholesky(K)
        return L.expand(tuple(self._batch_shape + self._event_shape + self._event_shape))

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        """W W^T + diag(D)."""
        W = self._unbroadcasted_cov_factor
        cov = W @ W.mT + diag_embed(self._unbroadcasted_cov_diag)
        return cov.expand(tuple(self._batch_shape + self._event_shape + self._event_shape))

    @lazy_property
    def precision_matrix(self) -> Tensor:
        """The inverse covariance by Woodbury: D^-1 - A^T A with A = L^-1 W^T D^-1."""
        Wt_Dinv = self._unbroadcasted_cov_factor.mT / self._unbroadcasted_cov_diag.unsqueeze(-2)
        A = solve_triangular(self._capacitance_tril, Wt_Dinv, upper=False)
        P = diag_embed(self._unbroadcasted_cov_diag.reciprocal()) - A.mT @ A
        return P.expand(tuple(self._batch_shape + self._event_shape + self._event_shape))

    def rsample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        W_shape = (*shape[:-1], self.cov_factor.shape[-1])
        eps_W = engine.randn(W_shape, dtype=self.loc.dtype, device=self.loc.device)
        eps_D = engine.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return (self.loc + batch_mv(self._unbroadcasted_cov_factor, eps_W)
                + self._unbroadcasted_cov_diag.sqrt() * eps_D)

    def _logdet(self) -> Tensor:
        return batch_lowrank_logdet(self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag,
                                    self._capacitance_tril)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        M = batch_lowrank_mahalanobis(self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag,
                                      value - self.loc, self._capacitance_tril)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + self._logdet() + M)

    def entropy(self) -> Tensor:
        H = 0.5 * (self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._logdet())
        return H if not self._batch_shape else H.expand(tuple(self._batch_shape))
