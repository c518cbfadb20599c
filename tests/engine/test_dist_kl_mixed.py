"""KL divergences between Beta, Gamma, Normal and Uniform (and the pairs whose KL is infinite) against
torch.distributions: values, gradients in float32 and float64 (finite differences), gradients of gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
import engine.distributions as D
import engine.nn.functional as EF
from engine.distributions.kl_continuous import INFINITE_KL_PAIRS
from tests.engine.oracle import finite_difference_check, needs_torch, torch, torch_check
from tests.engine.second_order import grad_and_hvp
from tests.engine.test_higher_order import _close

if torch is not None:
    import torch.nn.functional as TF

RNG = np.random.default_rng(11)
POS = RNG.uniform(0.5, 3.0, (2, 3))
POS2 = RNG.uniform(0.5, 3.0, (2, 3))
REAL = RNG.standard_normal((2, 3))
LOW = RNG.uniform(0.05, 0.4, (2, 3))  # Uniform(LOW, LOW + WIDTH) lies inside (0, 1)
WIDTH = RNG.uniform(0.1, 0.5, (2, 3))


def lib(t):
    return D if isinstance(t, engine.Tensor) else torch.distributions


# name -> (kl of parameter tensors, parameter arrays): finite KL, differentiable in every parameter
PAIRS = {
    "beta_normal": (lambda a, b, m, s: lib(a).kl_divergence(lib(a).Beta(a, b), lib(a).Normal(m, s)),
                    [POS, POS2, REAL, POS]),
    "beta_gamma": (lambda a, b, c, r: lib(a).kl_divergence(lib(a).Beta(a, b), lib(a).Gamma(c, r)),
                   [POS, POS2, POS2, POS]),
    "beta_uniform": (lambda a, b, lo, hi: lib(a).kl_divergence(lib(a).Beta(a, b), lib(a).Uniform(lo - 1, hi + 1)),
                     [POS, POS2, LOW, WIDTH]),
    "gamma_normal": (lambda c, r, m, s: lib(c).kl_divergence(lib(c).Gamma(c, r), lib(c).Normal(m, s)),
                     [POS, POS2, REAL, POS]),
    "uniform_beta": (lambda lo, w, a, b: lib(lo).kl_divergence(lib(lo).Uniform(lo, lo + w), lib(lo).Beta(a, b)),
                     [LOW, WIDTH, POS, POS2]),
    "uniform_gamma": (lambda lo, w, c, r: lib(lo).kl_divergence(lib(lo).Uniform(lo, lo + w), lib(lo).Gamma(c, r)),
                      [LOW, WIDTH, POS, POS2]),
    "uniform_normal": (lambda lo, w, m, s: lib(lo).kl_divergence(lib(lo).Uniform(lo, lo + w), lib(lo).Normal(m, s)),
                       [REAL, POS, -REAL, POS2]),
}


@needs_torch
@pytest.mark.parametrize("pair", PAIRS)
def test_kl_values_and_gradients_match_torch(pair):
    fn, arrays = PAIRS[pair]
    torch_check(fn, arrays)


@pytest.mark.parametrize("pair", PAIRS)
def test_kl_gradients_match_finite_differences(pair):
    fn, arrays = PAIRS[pair]
    finite_difference_check(fn, [a.copy() for a in arrays])  # copies: the check perturbs each in place


@needs_torch
@pytest.mark.parametrize("pair", PAIRS)
def test_kl_gradients_of_gradients_match_torch(pair):
    fn, arrays = PAIRS[pair]
    rng = np.random.default_rng(3)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    r = rng.standard_normal(arrays[0].shape)
    ours = grad_and_hvp(engine, EF, lambda L, F, *xs: fn(*xs), arrays, vs, r)
    theirs = grad_and_hvp(torch, TF, lambda L, F, *xs: fn(*xs), arrays, vs, r)
    for a, b in zip((*ours[0], *ours[1]), (*theirs[0], *theirs[1])):
        _close(a, b)


def test_kl_beta_normal_value():
    kl = D.kl_divergence(D.Beta(engine.tensor(0.5), engine.tensor(1.5)), D.Normal(engine.tensor(0.1), 1.0))
    assert abs(kl.item() - 1.5099) < 1e-4  # torch 2.13's value


# (p, q) of two libraries' modules L: p puts mass where q has none, in some batch elements or all
OUTSIDE = {
    "beta_uniform": lambda L: (L.Beta(_t(L, [2.0, 2.0, 0.5]), _t(L, [1.0, 3.0, 0.5])),
                               L.Uniform(_t(L, [-1.0, 0.5, 0.0]), _t(L, [2.0, 1.0, 0.9]))),
    "uniform_beta": lambda L: (L.Uniform(_t(L, [0.1, -0.2, 0.5]), _t(L, [0.9, 0.5, 1.5])),
                               L.Beta(_t(L, [2.0, 2.0, 0.5]), _t(L, [1.0, 3.0, 0.5]))),
    "uniform_gamma": lambda L: (L.Uniform(_t(L, [0.1, -0.2]), _t(L, [0.9, 0.5])), L.Gamma(_t(L, [2.0, 2.0]), 1.0)),
    "normal_beta": lambda L: (L.Normal(_t(L, [0.0, 1.0]), 1.0), L.Beta(_t(L, [2.0, 2.0]), 1.0)),
    "normal_gamma": lambda L: (L.Normal(_t(L, [0.0, 1.0]), 1.0), L.Gamma(_t(L, [2.0, 2.0]), 1.0)),
    "gamma_beta": lambda L: (L.Gamma(_t(L, [0.5, 2.0]), 1.0), L.Beta(_t(L, [2.0, 2.0]), 1.0)),
    "poisson_bernoulli_inf_rate": lambda L: (L.Poisson(_t(L, [1.0, math.inf])), L.Bernoulli(_t(L, [0.3, 0.4]))),
    "poisson_binomial_inf_rate": lambda L: (L.Poisson(_t(L, [math.inf, 2.0])), L.Binomial(3, _t(L, [0.3, 0.4]))),
    "normal_cb_inf_loc": lambda L: (L.Normal(_t(L, [math.inf, 0.0]), 1.0), L.ContinuousBernoulli(_t(L, [0.3, 0.4]))),
    "gamma_cb": lambda L: (L.Gamma(_t(L, [2.0, 3.0]), 1.0), L.ContinuousBernoulli(_t(L, [0.3, 0.4]))),
}


def _t(L, values):
    return (engine.tensor if L is D else torch.tensor)(np.array(values, dtype=np.float32))


@needs_torch
@pytest.mark.parametrize("pair", OUTSIDE)
def test_kl_is_infinite_where_q_has_no_mass_as_torch(pair):
    ours = D.kl_divergence(*OUTSIDE[pair](D))
    theirs = torch.distributions.kl_divergence(*OUTSIDE[pair](torch.distributions))
    assert ours.dtype is engine.float32 and tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4)
    assert np.isinf(ours.numpy()).any()


@needs_torch
def test_every_torch_kl_pair_is_registered_and_infinite_pairs_are_one_table():
    from engine.distributions.kl import _KL_REGISTRY

    theirs = {(p.__name__, q.__name__) for p, q in torch.distributions.kl._KL_REGISTRY}
    assert theirs <= {(p.__name__, q.__name__) for p, q in _KL_REGISTRY}
    infinite = {(p.__name__, q.__name__) for p, q, _ in INFINITE_KL_PAIRS}
    assert {("Normal", "Beta"), ("Normal", "Gamma"), ("Gamma", "Beta"), ("Poisson", "Bernoulli"),
            ("Poisson", "Binomial"), ("Normal", "ContinuousBernoulli"), ("Gamma", "ContinuousBernoulli")} <= infinite
    assert ("Beta", "Uniform") not in infinite  # finite where the Uniform covers [0, 1]
