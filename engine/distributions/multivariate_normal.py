"""MultivariateNormal(loc, covariance_matrix | precision_matrix | scale_tril), as in torch.distributions."""

from __future__ import annotations

import math

import numpy as np

import engine
from engine.distributions import constraints
from engine.distributions.distribution import Distribution
from engine.distributions.utils import lazy_property
from engine.ops.linalg import cholesky, solve_triangular
from engine.ops.linalg import linalg_diagonal as diagonal
from engine.tensor import Tensor


def batch_mv(bmat: Tensor, bvec: Tensor) -> Tensor:
    """Matrix times vector over broadcast batch dims."""
    return (bmat @ bvec.unsqueeze(-1)).squeeze(-1)


def batch_mahalanobis(bL: Tensor, bx: Tensor) -> Tensor:
    """x^T (L L^T)^-1 x for a lower-triangular L: the squared norm of L^-1 x."""
    y = solve_triangular(bL, bx.unsqueeze(-1), upper=False).squeeze(-1)
    return (y * y).sum(-1)


def half_log_det(scale_tril: Tensor) -> Tensor:
    """log sqrt(det(L L^T)) = sum(log(diag(L)))."""
    return diagonal(scale_tril).log().sum(-1)


def _precision_to_scale_tril(P: Tensor) -> Tensor:
    Lf = cholesky(P.flip((-2, -1)))
    L_inv = Lf.flip((-2, -1)).transpose(-2, -1)
    eye = engine.eye(P.shape[-1], dtype=P.dtype, device=P.device)
    return solve_triangular(L_inv, eye, upper=False)


class MultivariateNormal(Distribution):
    """The Gaussian over vectors of length n (event_shape (n,)), given by exactly one of a covariance matrix,
    a precision matrix or a lower-triangular scale with positive diagonal (covariance = L L^T)."""

    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Tensor, covariance_matrix: Tensor | None = None, precision_matrix: Tensor | None = None,
                 scale_tril: Tensor | None = None, validate_args: bool | None = None) -> None:
        if not isinstance(loc, Tensor) or loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        for name, m in (("scale_tril", scale_tril), ("covariance_matrix", covariance_matrix),
                        ("precision_matrix", precision_matrix)):
            if m is None:
                continue
            if m.ndim < 2:
                raise ValueError(f"{name} matrix must be at least two-dimensional, with optional leading batch "
                                 "dimensions")
            if m.shape[-1] != m.shape[-2] or m.shape[-1] != loc.shape[-1]:
                raise ValueError(f"{name} must be a (batch of) {loc.shape[-1]}x{loc.shape[-1]} matrices to match loc "
                                 f"of shape {tuple(loc.shape)}, got shape {tuple(m.shape)}")
            batch_shape = np.broadcast_shapes(m.shape[:-2], loc.shape[:-1])
            self.__dict__[name] = m.expand((*batch_shape, -1, -1))
            matrix = m
        self.loc = loc.expand((*batch_shape, -1))
        event_shape = self.loc.shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = matrix
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cholesky(matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(matrix)

    def _expand_extra(self, new, batch_shape) -> None:
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril

    @lazy_property
    def scale_tril(self) -> Tensor:
        """The lower Cholesky factor L of the covariance (covariance = L L^T)."""
        L = self._unbroadcasted_scale_tril
        return L.expand(tuple(self._batch_shape) + tuple(L.shape[-2:]))

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        """L L^T."""
        L = self._unbroadcasted_scale_tril
        cov = L @ L.transpose(-2, -1)
        return cov.expand(tuple(self._batch_shape) + tuple(cov.shape[-2:]))

    @lazy_property
    def precision_matrix(self) -> Tensor:
        """The inverse covariance, (L L^T)^-1 = L^-T L^-1."""
        L = self._unbroadcasted_scale_tril
        eye = engine.eye(L.shape[-1], dtype=L.dtype, device=L.device)
        L_inv = solve_triangular(L, eye, upper=False)
        P = L_inv.transpose(-2, -1) @ L_inv
        return P.expand(tuple(self._batch_shape) + tuple(P.shape[-2:]))

    @property
    def mean(self) -> Tensor:
        return self.loc

    mode = mean

    @property
    def variance(self) -> Tensor:
        v = self._unbroadcasted_scale_tril.pow(2).sum(-1)
        return v.expand(tuple(self._batch_shape + self._event_shape))

    def rsample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        eps = engine.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + batch_mv(self._unbroadcasted_scale_tril, eps)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        M = batch_mahalanobis(self._unbroadcasted_scale_tril, value - self.loc)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + M) - half_log_det(
            self._unbroadcasted_scale_tril)

    def entropy(self) -> Tensor:
        H = 0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + half_log_det(self._unbroadcasted_scale_tril)
        return H if not self._batch_shape else H.expand(tuple(self._batch_shape))
