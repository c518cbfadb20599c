"""What values a parameter or a sample may take, as torch.distributions.constraints.

A constraint's `check(value)` returns a bool tensor (one entry per batch element). Checks run on the raw
arrays, outside autograd and without op events: validating a parameter is not part of the user's graph.
"""

from __future__ import annotations

import numpy as np

from engine.backend import array_module
from engine.tensor import Tensor

__all__ = [
    "Constraint", "boolean", "cat", "corr_cholesky", "dependent", "dependent_property", "greater_than",
    "greater_than_eq", "half_open_interval", "independent", "integer_interval", "interval", "is_dependent",
    "less_than", "lower_cholesky", "lower_triangular", "nonnegative", "nonnegative_integer", "one_hot", "positive",
    "positive_definite", "positive_integer", "real", "real_vector", "simplex", "stack", "symmetric", "unit_interval",
]


def _array(value):
    return value.array if isinstance(value, Tensor) else value


class Constraint:
    """A region of values; `event_dim` is how many rightmost dims one event of it spans."""

    is_discrete = False
    event_dim = 0

    def _check(self, v):
        raise NotImplementedError

    def check(self, value) -> Tensor:
        """A bool tensor: True where `value` satisfies the constraint."""
        v = _array(value)
        xp = array_module(v)
        with np.errstate(all="ignore"):  # NaN and inf fail the check; numpy need not also warn
            return Tensor._wrap(xp.asarray(self._check(v)))

    def __repr__(self) -> str:
        return type(self).__name__.lstrip("_") + "()"


class _Dependent(Constraint):
    """A constraint that depends on other parameters (Uniform's low and high); not checked by itself."""

    def __init__(self, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        self.is_discrete, self.event_dim = is_discrete, event_dim

    def __call__(self, *, is_discrete: bool = False, event_dim: int = 0) -> _Dependent:
        """A dependent constraint with the given discreteness and event dims."""
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def _check(self, v):
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint) -> bool:
    """True for a constraint that validation skips (it depends on other parameters)."""
    return isinstance(constraint, _Dependent)


class _DependentProperty(property, _Dependent):
    """A property that is also a dependent constraint (a distribution's `support` that reads its parameters)."""

    def __init__(self, fn=None, *, is_discrete: bool = False, event_dim: int = 0) -> None:
        property.__init__(self, fn)
        _Dependent.__init__(self, is_discrete=is_discrete, event_dim=event_dim)

    def __call__(self, fn):
        return _DependentProperty(fn, is_discrete=self.is_discrete, event_dim=self.event_dim)


class _Real(Constraint):
    def _check(self, v):
        return v == v  # everything but NaN


class _Boolean(Constraint):
    is_discrete = True

    def _check(self, v):
        return (v == 0) | (v == 1)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def _check(self, v):
        return ((v == 0) | (v == 1)).all(-1) & (v.sum(-1) == 1)


class _Bounded(Constraint):
    """lower_bound (op) value (op) upper_bound; a bound of None is not checked."""

    def __init__(self, lower_bound=None, upper_bound=None) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def _check(self, v):
        ok = v == v
        if self.lower_bound is not None:
            ok = ok & self._low(_array(self.lower_bound), v)
        if self.upper_bound is not None:
            ok = ok & self._high(v, _array(self.upper_bound))
        return ok

    _low = staticmethod(lambda lo, v: lo <= v)
    _high = staticmethod(lambda v, hi: v <= hi)

    def __repr__(self) -> str:
        parts = [f"{n}={getattr(self, n)}" for n in ("lower_bound", "upper_bound") if getattr(self, n) is not None]
        return f"{type(self).__name__.lstrip('_')}({', '.join(parts)})"


class _GreaterThan(_Bounded):
    _low = staticmethod(lambda lo, v: lo < v)


class _GreaterThanEq(_Bounded):
    pass


class _LessThan(_Bounded):
    def __init__(self, upper_bound) -> None:
        super().__init__(None, upper_bound)

    _high = staticmethod(lambda v, hi: v < hi)


class _Interval(_Bounded):
    pass


class _HalfOpenInterval(_Bounded):
    _high = staticmethod(lambda v, hi: v < hi)


class _IntegerInterval(_Bounded):
    is_discrete = True

    def _check(self, v):
        return (v % 1 == 0) & super()._check(v)


class _IntegerGreaterThan(_IntegerInterval):
    pass


class _Simplex(Constraint):
    event_dim = 1

    def _check(self, v):
        xp = array_module(v)
        return (v >= 0).all(-1) & (xp.abs(v.sum(-1) - 1) < 1e-6)


class _LowerTriangular(Constraint):
    event_dim = 2

    def _check(self, v):
        xp = array_module(v)
        return (xp.tril(v) == v).reshape(*v.shape[:-2], -1).all(-1)


class _LowerCholesky(_LowerTriangular):
    def _check(self, v):
        xp = array_module(v)
        return super()._check(v) & (xp.diagonal(v, axis1=-2, axis2=-1) > 0).all(-1)


class _Symmetric(Constraint):
    event_dim = 2

    def _check(self, v):
        xp = array_module(v)
        return xp.isclose(v, xp.swapaxes(v, -1, -2), atol=1e-6).reshape(*v.shape[:-2], -1).all(-1)


class _PositiveDefinite(_Symmetric):
    def _check(self, v):
        xp = array_module(v)
        symmetric = super()._check(v)
        if v.shape[-1] == 0:
            return symmetric
        # a symmetric matrix is positive definite when its smallest eigenvalue is positive
        safe = xp.where(symmetric[..., None, None], v, xp.eye(v.shape[-1], dtype=v.dtype))
        return symmetric & (xp.linalg.eigvalsh(safe)[..., 0] > 0)


class _Independent(Constraint):
    """A constraint whose rightmost `reinterpreted_batch_ndims` dims form one event."""

    def __init__(self, base_constraint: Constraint, reinterpreted_batch_ndims: int) -> None:
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims

    @property
    def is_discrete(self) -> bool:
        return self.base_constraint.is_discrete

    @property
    def event_dim(self) -> int:
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def _check(self, v):
        ok = self.base_constraint._check(v)
        n = self.reinterpreted_batch_ndims
        if n:
            ok = ok.reshape(*ok.shape[:ok.ndim - n], -1).all(-1)
        return ok

    def __repr__(self) -> str:
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _CorrCholesky(_LowerCholesky):
    """Lower-triangular with a positive diagonal and rows of unit Euclidean norm: the Cholesky factor of a
    correlation matrix."""

    def _check(self, v):
        xp = array_module(v)
        tol = float(np.finfo(v.dtype).eps) * v.shape[-1] * 10
        unit_rows = (xp.abs(xp.linalg.norm(v, axis=-1) - 1.0) <= tol).all(-1)
        return super()._check(v) & unit_rows


class _Cat(Constraint):
    """Pieces of `lengths` along `dim`, the i-th satisfying cseq[i] (what CatTransform maps between)."""

    def __init__(self, cseq, dim: int = 0, lengths=None) -> None:
        self.cseq = list(cseq)
        self.lengths = [1] * len(self.cseq) if lengths is None else list(lengths)
        if len(self.lengths) != len(self.cseq):
            raise ValueError(f"lengths ({len(self.lengths)}) must match cseq ({len(self.cseq)})")
        self.dim = dim

    @property
    def is_discrete(self) -> bool:
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self) -> int:
        return max(c.event_dim for c in self.cseq)

    def _check(self, v):
        xp = array_module(v)
        edges = np.cumsum([0, *self.lengths])
        pieces = [c._check(xp.take(v, xp.arange(int(a), int(b)), axis=self.dim))
                  for c, a, b in zip(self.cseq, edges[:-1], edges[1:])]
        return xp.concatenate(pieces, axis=self.dim)


class _Stack(Constraint):
    """Slices along `dim`, the i-th satisfying cseq[i] (what StackTransform maps between)."""

    def __init__(self, cseq, dim: int = 0) -> None:
        self.cseq, self.dim = list(cseq), dim

    @property
    def is_discrete(self) -> bool:
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self) -> int:
        dim = max(c.event_dim for c in self.cseq)
        return dim + 1 if self.dim + dim < 0 else dim

    def _check(self, v):
        xp = array_module(v)
        return xp.stack([c._check(xp.take(v, i, axis=self.dim)) for i, c in enumerate(self.cseq)], axis=self.dim)


dependent = _Dependent()
dependent_property = _DependentProperty
independent = _Independent
boolean = _Boolean()
one_hot = _OneHot()
real = _Real()
real_vector = _Independent(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
unit_interval = _Interval(0.0, 1.0)
interval = _Interval
half_open_interval = _HalfOpenInterval
integer_interval = _IntegerInterval
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
simplex = _Simplex()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
corr_cholesky = _CorrCholesky()
cat = _Cat
stack = _Stack
symmetric = _Symmetric()
positive_definite = _PositiveDefinite()
