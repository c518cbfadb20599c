"""The elementwise transforms, as torch.distributions.transforms: parameter-free ones (exp, sigmoid, softplus,
tanh, abs) from one formula table, and the parameterised power, affine and CDF maps. Import them from
engine.distributions.transforms."""

from __future__ import annotations

import math
import numbers

import numpy as np

import engine
from engine.distributions import constraints
from engine.distributions.transforms import Transform, _widened
from engine.distributions.utils import broadcast_all, lazy_property, sum_rightmost
from engine.ops.activation import softplus
from engine.tensor import Tensor

__all__ = ["AbsTransform", "AffineTransform", "CumulativeDistributionTransform", "ExpTransform", "PowerTransform",
           "SigmoidTransform", "SoftplusTransform", "TanhTransform"]


def _clipped_sigmoid(x: Tensor) -> Tensor:
    """sigmoid(x) kept inside (0, 1), so its logit and log stay finite."""
    info = np.finfo(x.dtype.np)
    return x.sigmoid().clamp(min=float(info.tiny), max=1.0 - float(info.eps))


def _logit(y: Tensor) -> Tensor:
    info = np.finfo(y.dtype.np)
    y = y.clamp(min=float(info.tiny), max=1.0 - float(info.eps))
    return y.log() - (-y).log1p()


# name -> (forward, inverse, log |dy/dx| (x, y), domain, codomain, bijective): the parameter-free elementwise maps
_ELEMENTWISE = {
    "Exp": (Tensor.exp, Tensor.log, lambda x, y: x, constraints.real, constraints.positive, True),
    "Sigmoid": (_clipped_sigmoid, _logit, lambda x, y: -softplus(-x) - softplus(x),
                constraints.real, constraints.unit_interval, True),
    # softplus(x) and its inverse log(-expm1(-y)) + y, which stays finite for large y
    "Softplus": (softplus, lambda y: (-y).expm1().neg().log() + y, lambda x, y: -softplus(-x),
                 constraints.real, constraints.positive, True),
    # log(1 - tanh(x)^2) written so that it neither cancels nor overflows for large |x|
    "Tanh": (Tensor.tanh, Tensor.atanh, lambda x, y: 2.0 * (math.log(2.0) - x - softplus(-2.0 * x)),
             constraints.real, constraints.interval(-1.0, 1.0), True),
    # |x| is not injective: its pseudo-inverse keeps the positive branch
    "Abs": (Tensor.abs, lambda y: y, None, constraints.real, constraints.positive, False),
}


class _Elementwise(Transform):
    """A parameter-free elementwise map whose formulas come from the _ELEMENTWISE table."""

    sign = +1

    def __eq__(self, other) -> bool:
        return isinstance(other, type(self))

    __hash__ = object.__hash__

    def _call(self, x):
        return self._formulas[0](x)

    def _inverse(self, y):
        return self._formulas[1](y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        if self._formulas[2] is None:
            return super().log_abs_det_jacobian(x, y)
        return self._formulas[2](x, y)


def _elementwise_class(name: str) -> type:
    fwd, inv, ladj, domain, codomain, bijective = _ELEMENTWISE[name]
    doc = f"The elementwise map y = {name.lower()}(x)."
    attrs = {"_formulas": (fwd, inv, ladj), "domain": domain, "codomain": codomain, "bijective": bijective,
             "__doc__": doc, "__module__": __name__, "__qualname__": f"{name}Transform"}
    if not bijective:  # |x| is not monotone: it has no sign
        attrs["sign"] = Transform.sign
    return type(f"{name}Transform", (_Elementwise,), attrs)


ExpTransform = _elementwise_class("Exp")
SigmoidTransform = _elementwise_class("Sigmoid")
SoftplusTransform = _elementwise_class("Softplus")
TanhTransform = _elementwise_class("Tanh")
AbsTransform = _elementwise_class("Abs")


def _param_equal(a, b) -> bool:
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        return a == b
    return bool((a == b).all().item())


def _shape_of(p) -> tuple:
    return tuple(p.shape) if isinstance(p, Tensor) else ()


class PowerTransform(Transform):
    """y = x ** exponent on the positive reals."""

    domain = constraints.positive
    codomain = constraints.positive
    bijective = True

    def __init__(self, exponent, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        (self.exponent,) = broadcast_all(exponent)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return PowerTransform(self.exponent, cache_size=cache_size)

    @lazy_property
    def sign(self):
        return self.exponent.sign()

    def __eq__(self, other) -> bool:
        return isinstance(other, PowerTransform) and _param_equal(self.exponent, other.exponent)

    __hash__ = object.__hash__

    def _call(self, x):
        return x.pow(self.exponent)

    def _inverse(self, y):
        return y.pow(1 / self.exponent)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return (self.exponent * y / x).abs().log()

    def forward_shape(self, shape):
        return engine.broadcast_shapes(shape, _shape_of(self.exponent))

    inverse_shape = forward_shape


class AffineTransform(Transform):
    """y = loc + scale * x; with event_dim > 0 log |det J| sums over that many rightmost dims."""

    bijective = True

    def __init__(self, loc, scale, event_dim: int = 0, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.loc, self.scale, self._event_dim = loc, scale, event_dim

    @property
    def event_dim(self) -> int:
        return self._event_dim

    @constraints.dependent_property(is_discrete=False)
    def domain(self):
        return _widened(constraints.real, self.event_dim)

    @constraints.dependent_property(is_discrete=False)
    def codomain(self):
        return _widened(constraints.real, self.event_dim)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return AffineTransform(self.loc, self.scale, self.event_dim, cache_size=cache_size)

    def __eq__(self, other) -> bool:
        return (isinstance(other, AffineTransform) and _param_equal(self.loc, other.loc)
                and _param_equal(self.scale, other.scale))

    __hash__ = object.__hash__

    @property
    def sign(self):
        if isinstance(self.scale, numbers.Number):
            return 1 if self.scale > 0 else -1 if self.scale < 0 else 0
        return self.scale.sign()

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        shape = tuple(x.shape)
        if isinstance(self.scale, numbers.Number):
            result = engine.full_like(x, math.log(abs(self.scale)))
        else:
            result = self.scale.abs().log()
        if self.event_dim:
            result = sum_rightmost(result, self.event_dim)
            shape = shape[:len(shape) - self.event_dim]
        return result.expand(shape)

    def forward_shape(self, shape):
        return engine.broadcast_shapes(shape, _shape_of(self.loc), _shape_of(self.scale))

    inverse_shape = forward_shape


class CumulativeDistributionTransform(Transform):
    """y = distribution.cdf(x), onto the unit interval (a copula's marginal)."""

    bijective = True
    codomain = constraints.unit_interval
    sign = +1

    def __init__(self, distribution, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.distribution = distribution

    @property
    def domain(self):
        return self.distribution.support

    def _call(self, x):
        return self.distribution.cdf(x)

    def _inverse(self, y):
        return self.distribution.icdf(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return self.distribution.log_prob(x)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return CumulativeDistributionTransform(self.distribution, cache_size=cache_size)
