"""VonMises(loc, concentration): the circular normal distribution on angles, as torch.distributions.VonMises.

log I0 and log I1 use torch's polynomial approximations (Abramowitz and Stegun 9.8.1-9.8.4, about 1e-7
relative), composed of engine ops so that they differentiate, twice if asked; samples come from Best and
Fisher's rejection sampler, in float64 as in torch.
"""

from __future__ import annotations

import math

import numpy as np

from engine import random as _random
from engine.autograd.grad_mode import no_grad
from engine.backend import array_module
from engine.distributions import constraints
from engine.distributions.distribution import Distribution
from engine.distributions.utils import broadcast_all, lazy_property
from engine.ops.elementwise import where
from engine.tensor import Tensor

# (coefficients in (x / 3.75)^2 for x < 3.75, coefficients in 3.75 / x above), for order 0 and order 1
_BESSEL_POLYNOMIALS = {
    0: ((1.0, 3.5156229, 3.0899424, 1.2067492, 0.2659732, 0.360768e-1, 0.45813e-2),
        (0.39894228, 0.1328592e-1, 0.225319e-2, -0.157565e-2, 0.916281e-2, -0.2057706e-1, 0.2635537e-1,
         -0.1647633e-1, 0.392377e-2)),
    1: ((0.5, 0.87890594, 0.51498869, 0.15084934, 0.2658733e-1, 0.301532e-2, 0.32411e-3),
        (0.39894228, -0.3988024e-1, -0.362018e-2, 0.163801e-2, -0.1031555e-1, 0.2282967e-1, -0.2895312e-1,
         0.1787654e-1, -0.420059e-2)),
}


def _eval_poly(y: Tensor, coefficients) -> Tensor:
    result = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        result = c + y * result
    return result


def log_modified_bessel_fn(x: Tensor, order: int = 0) -> Tensor:
    """log(I_order(x)) for x > 0 and order 0 or 1."""
    if order not in _BESSEL_POLYNOMIALS:
        raise ValueError(f"log_modified_bessel_fn: order must be 0 or 1, got {order}")
    small_coefficients, large_coefficients = _BESSEL_POLYNOMIALS[order]
    near = x < 3.75
    xs, xl = where(near, x, 1.0), where(near, 3.75, x)  # each branch sees only arguments it is valid for
    small = _eval_poly((xs / 3.75).pow(2), small_coefficients)
    if order == 1:
        small = xs.abs() * small
    large = xl - 0.5 * xl.log() + _eval_poly(3.75 / xl, large_coefficients).log()
    return where(near, small.log(), large)


def rejection_sample(xp, rng, loc, concentration, proposal_r, shape):
    """Best and Fisher's sampler on raw float64 arrays: angles in [-pi, pi) around `loc`."""
    x = xp.zeros(shape, dtype=np.float64)
    done = xp.zeros(shape, dtype=bool)
    while not bool(done.all()):
        u1, u2, u3 = rng.random((3, *shape))
        z = xp.cos(math.pi * u1)
        f = (1 + proposal_r * z) / (proposal_r + z)
        c = concentration * (proposal_r - f)
        with np.errstate(divide="ignore", invalid="ignore"):
            accept = ((c * (2 - c) - u2) > 0) | (xp.log(c / u2) + 1 - c >= 0)
        x = xp.where(accept & ~done, xp.sign(u3 - 0.5) * xp.arccos(xp.clip(f, -1, 1)), x)
        done = done | accept
    return (x + math.pi + loc) % (2 * math.pi) - math.pi


class VonMises(Distribution):
    """The von Mises distribution of angle `loc` (any real, read modulo 2 pi) and `concentration` kappa > 0;
    mean and variance are the circular ones."""

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args: bool | None = None) -> None:
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, (), validate_args=validate_args)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return (self.concentration * (value - self.loc).cos() - math.log(2 * math.pi)
                - log_modified_bessel_fn(self.concentration, order=0))

    @lazy_property
    def _proposal_r(self) -> Tensor:
        kappa = self.concentration.detach().double()
        tau = 1 + (1 + 4 * kappa ** 2).sqrt()
        with np.errstate(all="ignore"):  # the exact form overflows where kappa is tiny; the Taylor form is used
            rho = (tau - (2 * tau).sqrt()) / (2 * kappa)
            return where(kappa < 1e-5, 1 / kappa + kappa, (1 + rho ** 2) / (2 * rho))

    def sample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            loc = self.loc.detach().double().array
            xp = array_module(loc)
            rng = _random.generator(self.loc.device)
            x = rejection_sample(xp, rng, xp.broadcast_to(loc, shape),
                                 xp.broadcast_to(self.concentration.detach().double().array, shape),
                                 xp.broadcast_to(self._proposal_r.array, shape), shape)
            return Tensor._wrap(x.astype(self.loc.array.dtype))

    @property
    def mean(self) -> Tensor:
        """The circular mean, loc."""
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @lazy_property
    def variance(self) -> Tensor:
        """The circular variance, 1 - I1(kappa) / I0(kappa)."""
        k = self.concentration
        return 1 - (log_modified_bessel_fn(k, order=1) - log_modified_bessel_fn(k, order=0)).exp()
