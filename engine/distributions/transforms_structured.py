"""Transforms over vectors and matrices, and the ones that apply other transforms piece by piece (cat, stack),
as torch.distributions.transforms; import them from engine.distributions.transforms.
"""

from __future__ import annotations

import math

import numpy as np

import engine
from engine.distributions import constraints
from engine.distributions.transforms import Transform
from engine.distributions.transforms_pointwise import _clipped_sigmoid
from engine.distributions.utils import lazy_property, sum_rightmost
from engine.ops.activation import logsigmoid, softplus
from engine.ops.linalg import cholesky
from engine.ops.shape import pad
from engine.tensor import Tensor

__all__ = [
    "CatTransform", "CorrCholeskyTransform", "LowerCholeskyTransform", "PositiveDefiniteTransform",
    "SoftmaxTransform", "StackTransform", "StickBreakingTransform", "cat", "corr_cholesky", "stack",
]


corr_cholesky, cat, stack = constraints.corr_cholesky, constraints.cat, constraints.stack  # still importable from here


def _need_dims(shape, n: int):
    if len(shape) < n:
        raise ValueError("Too few dimensions on input")
    return shape


class SoftmaxTransform(Transform):
    """Real vectors onto the simplex by exp and normalising; not bijective (adding a constant changes nothing)."""

    domain = constraints.real_vector
    codomain = constraints.simplex

    def __eq__(self, other) -> bool:
        return isinstance(other, SoftmaxTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        probs = (x - x.max(-1, True)[0]).exp()
        return probs / probs.sum(-1, True)

    def _inverse(self, y):
        return y.log()

    def forward_shape(self, shape):
        return _need_dims(shape, 1)

    inverse_shape = forward_shape


def _stick_offset(x: Tensor) -> Tensor:
    """log(K - k) for the k-th of K logits: centres the sigmoids so that x = 0 maps to the uniform point."""
    k = x.shape[-1]
    return engine.arange(k, 0, -1, dtype=x.dtype, device=x.device).log()


class StickBreakingTransform(Transform):
    """Real K-vectors onto the (K+1)-simplex by breaking a stick: each sigmoid takes its share of what is left."""

    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = True

    def __eq__(self, other) -> bool:
        return isinstance(other, StickBreakingTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        z = _clipped_sigmoid(x - _stick_offset(x))
        z_cumprod = (1 - z).cumprod(-1)
        return pad(z, (0, 1), value=1.0) * pad(z_cumprod, (1, 0), value=1.0)

    def _inverse(self, y):
        y_crop = y[..., :-1]
        offset = engine.arange(y_crop.shape[-1], 0, -1, dtype=y.dtype, device=y.device).log()
        sf = (1 - y_crop.cumsum(-1)).clamp(min=float(np.finfo(y.dtype.np).tiny))
        return y_crop.log() - sf.log() + offset

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        x = x - _stick_offset(x)
        return (-x + logsigmoid(x) + y[..., :-1].log()).sum(-1)

    def forward_shape(self, shape):
        shape = _need_dims(shape, 1)
        return engine.Size((*shape[:-1], shape[-1] + 1))

    def inverse_shape(self, shape):
        shape = _need_dims(shape, 1)
        return engine.Size((*shape[:-1], shape[-1] - 1))


class LowerCholeskyTransform(Transform):
    """Square matrices onto lower-triangular ones with a positive diagonal (exp of the diagonal)."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky

    def __eq__(self, other) -> bool:
        return isinstance(other, LowerCholeskyTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        return x.tril(-1) + x.diagonal(dim1=-2, dim2=-1).exp().diag_embed()

    def _inverse(self, y):
        return y.tril(-1) + y.diagonal(dim1=-2, dim2=-1).log().diag_embed()


class PositiveDefiniteTransform(Transform):
    """Square matrices onto positive-definite ones, L L^T for L = LowerCholeskyTransform()(x)."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite

    def __eq__(self, other) -> bool:
        return isinstance(other, PositiveDefiniteTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        x = LowerCholeskyTransform()(x)
        return x @ x.mT

    def _inverse(self, y):
        return LowerCholeskyTransform().inv(cholesky(y))


def _tril_index(n: int, diag: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each entry on or below diagonal `diag`, row by row (torch's vector order)."""
    return np.tril_indices(n, diag)


def _tril_to_vec(mat: Tensor, diag: int) -> Tensor:
    rows, cols = _tril_index(mat.shape[-1], diag)
    return mat[..., rows, cols]


def _vec_to_tril(vec: Tensor, diag: int) -> Tensor:
    """The (n, n) matrix holding `vec` below diagonal `diag` and zeros elsewhere (a gather, so differentiable)."""
    n = round((1 + math.sqrt(1 + 8 * vec.shape[-1])) / 2) if diag == -1 else None
    if n is None or n * (n - 1) // 2 != vec.shape[-1]:
        raise ValueError(f"a vector of {vec.shape[-1]} entries is not the strict lower triangle of a square matrix")
    source = np.zeros((n, n), dtype=np.int64)
    rows, cols = _tril_index(n, diag)
    source[rows, cols] = np.arange(1, rows.size + 1)
    padded = pad(vec, (1, 0), value=0.0)
    return padded[..., source]


class CorrCholeskyTransform(Transform):
    """Real vectors of D(D-1)/2 entries onto Cholesky factors of D x D correlation matrices: each row of the
    strict lower triangle goes through tanh, then a signed stick-breaking onto the unit sphere."""

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky
    bijective = True

    def __eq__(self, other) -> bool:
        return isinstance(other, CorrCholeskyTransform)

    __hash__ = object.__hash__

    def _call(self, x):
        eps = float(np.finfo(x.dtype.np).eps)
        r = _vec_to_tril(x.tanh().clamp(min=-1 + eps, max=1 - eps), -1)
        z1m_cumprod_sqrt = (1 - r ** 2).sqrt().cumprod(-1)
        r = r + engine.eye(r.shape[-1], dtype=r.dtype, device=r.device)
        return r * pad(z1m_cumprod_sqrt[..., :-1], (1, 0), value=1.0)

    def _inverse(self, y):
        y_cumsum = 1 - (y * y).cumsum(-1)
        y_cumsum_shifted = pad(y_cumsum[..., :-1], (1, 0), value=1.0)
        t = _tril_to_vec(y, -1) / _tril_to_vec(y_cumsum_shifted, -1).sqrt()
        return (t.log1p() - t.neg().log1p()) / 2

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor, intermediates=None) -> Tensor:
        y1m_cumsum = 1 - (y * y).cumsum(-1)
        stick_breaking_logdet = 0.5 * _tril_to_vec(y1m_cumsum, -2).log().sum(-1)
        tanh_logdet = -2 * (x + softplus(-2 * x) - math.log(2.0)).sum(-1)
        return stick_breaking_logdet + tanh_logdet

    def forward_shape(self, shape):
        n = _need_dims(shape, 1)[-1]
        d = round((0.25 + 2 * n) ** 0.5 + 0.5)
        if d * (d - 1) // 2 != n:
            raise ValueError("Input is not a flattened lower-diagonal number")
        return engine.Size((*shape[:-1], d, d))

    def inverse_shape(self, shape):
        shape = _need_dims(shape, 2)
        if shape[-2] != shape[-1]:
            raise ValueError("Input is not square")
        d = shape[-1]
        return engine.Size((*shape[:-2], d * (d - 1) // 2))


def _check_dim(t: Tensor, dim: int, size: int, what: str, expected: str) -> None:
    if not -t.dim() <= dim < t.dim():
        raise IndexError(f"dim {dim} out of range for {what} with {t.dim()} dimensions")
    if t.shape[dim] != size:
        raise ValueError(f"{what}.size({dim}) = {t.shape[dim]} must equal {expected} {size}")


class CatTransform(Transform):
    """Applies tseq[i] to the i-th piece (of lengths[i]) along `dim`, as engine.cat would join them."""

    def __init__(self, tseq, dim: int = 0, lengths=None, cache_size: int = 0) -> None:
        if not all(isinstance(t, Transform) for t in tseq):
            raise TypeError("All elements of tseq must be Transform instances")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = list(tseq)
        self.lengths = [1] * len(self.transforms) if lengths is None else list(lengths)
        if len(self.lengths) != len(self.transforms):
            raise ValueError(f"lengths ({len(self.lengths)}) must match transforms ({len(self.transforms)})")
        self.dim = dim

    @lazy_property
    def event_dim(self) -> int:
        return max(t.event_dim for t in self.transforms)

    @lazy_property
    def length(self) -> int:
        return sum(self.lengths)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return CatTransform(self.transforms, self.dim, self.lengths, cache_size)

    def _pieces(self, t: Tensor, what: str):
        _check_dim(t, self.dim, self.length, what, "length")
        start = 0
        for length in self.lengths:
            yield t.narrow(self.dim, start, length)
            start += length

    def _call(self, x):
        return engine.cat([t(p) for t, p in zip(self.transforms, self._pieces(x, "x"))], dim=self.dim)

    def _inverse(self, y):
        return engine.cat([t.inv(p) for t, p in zip(self.transforms, self._pieces(y, "y"))], dim=self.dim)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        terms = []
        for t, a, b in zip(self.transforms, self._pieces(x, "x"), self._pieces(y, "y")):
            terms.append(sum_rightmost(t.log_abs_det_jacobian(a, b), self.event_dim - t.event_dim))
        dim = (self.dim - x.dim() if self.dim >= 0 else self.dim) + self.event_dim
        return engine.cat(terms, dim=dim) if dim < 0 else sum(terms)

    @property
    def bijective(self) -> bool:
        return all(t.bijective for t in self.transforms)

    @constraints.dependent_property
    def domain(self):
        return constraints.cat([t.domain for t in self.transforms], self.dim, self.lengths)

    @constraints.dependent_property
    def codomain(self):
        return constraints.cat([t.codomain for t in self.transforms], self.dim, self.lengths)


class StackTransform(Transform):
    """Applies tseq[i] to the i-th slice along `dim`, as engine.stack would join them."""

    def __init__(self, tseq, dim: int = 0, cache_size: int = 0) -> None:
        if not all(isinstance(t, Transform) for t in tseq):
            raise TypeError("All elements of tseq must be Transform instances")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms, self.dim = list(tseq), dim

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return StackTransform(self.transforms, self.dim, cache_size)

    def _slices(self, t: Tensor, what: str):
        _check_dim(t, self.dim, len(self.transforms), what, "len(transforms)")
        return [t.select(self.dim, i) for i in range(t.shape[self.dim])]

    def _call(self, x):
        return engine.stack([t(p) for t, p in zip(self.transforms, self._slices(x, "x"))], dim=self.dim)

    def _inverse(self, y):
        return engine.stack([t.inv(p) for t, p in zip(self.transforms, self._slices(y, "y"))], dim=self.dim)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        pairs = zip(self.transforms, self._slices(x, "x"), self._slices(y, "y"))
        return engine.stack([t.log_abs_det_jacobian(a, b) for t, a, b in pairs], dim=self.dim)

    @property
    def bijective(self) -> bool:
        return all(t.bijective for t in self.transforms)

    @constraints.dependent_property
    def domain(self):
        return constraints.stack([t.domain for t in self.transforms], self.dim)

    @constraints.dependent_property
    def codomain(self):
        return constraints.stack([t.codomain for t in self.transforms], self.dim)

