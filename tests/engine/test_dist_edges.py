"""Distributions' gradients at the edges of their formulas, against torch.distributions in float64: the kink of
Binomial.log_prob at probs = 1/2 and FisherSnedecor's moments where they are undefined, to second order."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.distributions as D
from tests.engine.oracle import needs_torch, torch

N = np.array([10.0, 10.0, 6.0, 3.0])
VALUE = np.array([5.0, 5.0, 2.0, 3.0])


def _grads(L, fn, arrays, wrt):
    """fn's value, its gradients in the `wrt` inputs (still differentiable), and the gradients of their sum."""
    xs = [L.tensor(a, dtype=L.float64, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out = fn(L, *xs)
    grads = L.autograd.grad(out.sum(), [xs[i] for i in wrt], create_graph=True, materialize_grads=True)
    second = L.autograd.grad(sum(g.sum() for g in grads), [xs[i] for i in wrt], allow_unused=True)
    return [t.detach().numpy() for t in (out, *grads, *(s if s is not None else xs[0] * 0 for s in second))]


def _dists(L):
    return D if L is engine else torch.distributions


BINOMIAL = {
    "probs": (lambda L, n, p, k: _dists(L).Binomial(n, probs=p).log_prob(k), [N, np.array([0.5, 0.3, 0.5, 0.9])]),
    "logits": (lambda L, n, x, k: _dists(L).Binomial(n, logits=x).log_prob(k), [N, np.array([0.0, 1.2, 0.0, -2.0])]),
}


@needs_torch
@pytest.mark.parametrize("param", BINOMIAL)
def test_binomial_log_prob_at_the_kink_matches_torch_to_second_order(param):
    """log_prob(5) of Binomial(10, 1/2) has derivative 0 in p (torch's clamp has gradient 1/2 at its kink)."""
    fn, arrays = BINOMIAL[param]
    arrays = [*arrays, VALUE]
    ours = _grads(engine, fn, arrays, wrt=(0, 1))
    theirs = _grads(torch, fn, arrays, wrt=(0, 1))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    assert ours[2][0] == 0.0  # d/dp at p = 1/2, k = n/2


DF1 = np.array([1.0, 3.0, 5.0, 2.5, 4.0])
DF2 = np.array([1.0, 3.0, 6.0, 2.0, 4.5])  # mean undefined for df2 <= 2, variance for df2 <= 4


@needs_torch
@pytest.mark.parametrize("moment", ["mean", "variance"])
def test_fisher_snedecor_moments_have_zero_gradients_where_undefined(moment):
    """NaN where undefined; first and second derivatives in df2 are torch's (0 there, not NaN), and in df1
    torch's where the moment exists (0 elsewhere: torch's NaN there comes from computing with NaN)."""
    def fn(L, df1, df2):
        return getattr(_dists(L).FisherSnedecor(df1, df2), moment)

    value, g1, g2, h1, h2 = _grads(engine, fn, [DF1, DF2], wrt=(0, 1))
    t_value, t_g1, t_g2, t_h1, t_h2 = _grads(torch, fn, [DF1, DF2], wrt=(0, 1))
    np.testing.assert_allclose(value, t_value, rtol=1e-12)  # NaN in the same places
    np.testing.assert_allclose(g2, t_g2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h2, t_h2, rtol=1e-10, atol=1e-12)
    defined = ~np.isnan(value)
    np.testing.assert_allclose(g1[defined], t_g1[defined], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h1[defined], t_h1[defined], rtol=1e-10, atol=1e-12)
    assert not np.any(g1[~defined]) and not np.any(h1[~defined])
