"""Count, continuous-Bernoulli, straight-through and von Mises distributions against torch.distributions."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.distributions as D
from engine.distributions.exp_family import ExponentialFamily
from tests.engine.oracle import cuda_or_skip, finite_difference_check, needs_torch, torch, torch_check

RNG = np.random.default_rng(5)
PROBS = RNG.uniform(0.1, 0.9, (2, 3))
NEAR_HALF = np.array([[0.2, 0.4995, 0.5], [0.5004, 0.7, 0.93]])  # ContinuousBernoulli's Taylor region too
LOGITS = RNG.standard_normal((2, 3)) * 1.5
RATE = RNG.uniform(0.5, 4.0, (2, 3))
COUNTS = RNG.integers(0, 6, (4, 2, 3)).astype(float)
UNIT = RNG.uniform(0.02, 0.98, (4, 2, 3))
ANGLES = RNG.uniform(-4, 4, (4, 2, 3))
WEIGHTS = RNG.uniform(0.2, 3.0, (2, 4))
MULTI = np.array([[2.0, 0.0, 4.0, 1.0], [0.0, 7.0, 0.0, 0.0]])  # two count vectors summing to 7


def lib(t):
    return D if isinstance(t, engine.Tensor) else torch.distributions


def like(t, array):
    array = np.asarray(array, dtype=np.float32)
    return engine.tensor(array) if isinstance(t, engine.Tensor) else torch.tensor(array)


# name -> (builder from parameter tensors, parameter arrays, a value for log_prob / cdf)
CASES = {
    "poisson": (lambda r: lib(r).Poisson(r), [RATE], COUNTS),
    "binomial_probs": (lambda p: lib(p).Binomial(5, probs=p), [PROBS], COUNTS.clip(0, 5)),
    "binomial_logits": (lambda x: lib(x).Binomial(5, logits=x), [LOGITS], COUNTS.clip(0, 5)),
    "binomial_tensor_count": (lambda n, p: lib(p).Binomial(n, probs=p), [np.full((2, 3), 6.0), PROBS],
                              COUNTS),
    "geometric_probs": (lambda p: lib(p).Geometric(probs=p), [PROBS], COUNTS),
    "geometric_logits": (lambda x: lib(x).Geometric(logits=x), [LOGITS], COUNTS),
    "negative_binomial_probs": (lambda n, p: lib(p).NegativeBinomial(n, probs=p), [RATE, PROBS], COUNTS),
    "negative_binomial_logits": (lambda n, x: lib(x).NegativeBinomial(n, logits=x), [RATE, LOGITS], COUNTS),
    "multinomial_probs": (lambda p: lib(p).Multinomial(7, probs=p), [WEIGHTS], MULTI),
    "multinomial_logits": (lambda x: lib(x).Multinomial(7, logits=x), [np.log(WEIGHTS)], MULTI),
    "continuous_bernoulli_probs": (lambda p: lib(p).ContinuousBernoulli(probs=p), [NEAR_HALF], UNIT),
    "continuous_bernoulli_logits": (lambda x: lib(x).ContinuousBernoulli(logits=x), [LOGITS], UNIT),
    "straight_through": (lambda p: lib(p).OneHotCategoricalStraightThrough(probs=p), [WEIGHTS],
                         np.eye(4)[RNG.integers(0, 4, (5, 2))]),
    "von_mises": (lambda m, k: lib(m).VonMises(m, k), [LOGITS, RATE], ANGLES),
    "fisher_snedecor": (lambda a, b: lib(a).FisherSnedecor(a, b), [RATE + 2.1, RATE + 4.1], UNIT * 3),
}
# what torch itself does not define for a distribution
MISSING = {
    "poisson": {"entropy", "cdf", "icdf"}, "binomial": {"cdf", "icdf"}, "geometric": {"cdf", "icdf"},
    "negative_binomial": {"entropy", "cdf", "icdf"}, "multinomial": {"mode", "cdf", "icdf"},
    "straight_through": {"cdf", "icdf"}, "von_mises": {"entropy", "cdf", "icdf"}, "continuous_bernoulli": {"mode"},
    "fisher_snedecor": {"entropy", "cdf", "icdf"},
}
PIECEWISE = {"mode"}  # integer-valued: no gradient to compare


def _missing(name):
    return next((v for k, v in MISSING.items() if name.startswith(k)), set())


@needs_torch
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("what", ["log_prob", "entropy", "mean", "variance", "stddev", "mode", "cdf", "icdf"])
def test_values_and_gradients_match_torch(name, what):
    build, params, value = CASES[name]
    if what in _missing(name):
        pytest.skip(f"torch.distributions has no {what} for {name}")

    def fn(*ts):
        d = build(*ts)
        if what in ("log_prob", "cdf"):
            return getattr(d, what)(like(ts[-1], value))
        if what == "icdf":
            return d.icdf(like(ts[-1], UNIT))
        if what == "entropy":
            return d.entropy()
        out = getattr(d, what)
        return out if out.dtype.is_floating_point else out.float()

    wrt = [] if what in PIECEWISE else None
    if name == "binomial_tensor_count":
        wrt = [] if what in PIECEWISE else [1]  # total_count is an integer
    torch_check(fn, params, wrt=wrt)


@pytest.mark.parametrize("name", ["poisson", "binomial_logits", "geometric_probs", "negative_binomial_probs",
                                  "multinomial_logits", "continuous_bernoulli_logits", "von_mises"])
def test_log_prob_gradients_match_finite_differences(name):
    build, params, value = CASES[name]
    finite_difference_check(lambda *ts: build(*ts).log_prob(engine.tensor(value, dtype=ts[0].dtype)), params)


@needs_torch
@pytest.mark.parametrize("make", [
    lambda L, p: L.Binomial(4, p), lambda L, p: L.Binomial(torch.full((2, 3), 3.0) if L is not D else
                                                           engine.full((2, 3), 3.0), logits=p),
    lambda L, p: L.Multinomial(1, p), lambda L, p: L.OneHotCategoricalStraightThrough(p),
])
def test_enumerate_support_matches_torch(make):
    p = PROBS.astype(np.float32)
    ours, theirs = make(D, engine.tensor(p)), make(torch.distributions, torch.tensor(p))
    for expand in (True, False):
        if not theirs.has_enumerate_support:
            with pytest.raises(NotImplementedError):
                ours.enumerate_support(expand)
            continue
        a, b = ours.enumerate_support(expand), theirs.enumerate_support(expand)
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert ours.has_enumerate_support == theirs.has_enumerate_support


def test_binomial_refuses_inhomogeneous_total_count():
    d = D.Binomial(engine.tensor([2.0, 3.0]), engine.tensor([0.5, 0.5]))
    with pytest.raises(NotImplementedError, match="Inhomogeneous total count"):
        d.enumerate_support()
    with pytest.raises(NotImplementedError, match="Inhomogeneous total count"):
        d.entropy()


def _dists():
    f = engine.float32
    return {
        "poisson": D.Poisson(engine.tensor(RATE, dtype=f)),
        "binomial": D.Binomial(engine.tensor([[3.0], [10.0]]), engine.tensor(PROBS, dtype=f)),
        "geometric": D.Geometric(engine.tensor(PROBS + 0.1, dtype=f)),
        "negative_binomial": D.NegativeBinomial(engine.tensor(RATE, dtype=f), engine.tensor(PROBS * 0.8, dtype=f)),
        "multinomial": D.Multinomial(9, engine.tensor(WEIGHTS, dtype=f)),
        "continuous_bernoulli": D.ContinuousBernoulli(engine.tensor(NEAR_HALF, dtype=f)),
        "straight_through": D.OneHotCategoricalStraightThrough(engine.tensor(WEIGHTS, dtype=f)),
    }


@pytest.mark.parametrize("name", list(_dists()))
def test_sample_statistics_shapes_and_support(name):
    d = _dists()[name]
    engine.manual_seed(0)
    x = d.sample((100_000,))
    assert tuple(x.shape) == (100_000, *d.batch_shape, *d.event_shape) and x.dtype == engine.float32
    assert not x.requires_grad
    x = x.numpy().astype(np.float64)
    np.testing.assert_allclose(x.mean(0), d.mean.numpy(), rtol=0.02, atol=0.01)
    np.testing.assert_allclose(x.var(0), d.variance.numpy(), rtol=0.04, atol=0.002)
    if d.support.is_discrete:
        assert np.all(x == np.round(x)) and np.all(x >= 0)
    assert bool(d.support.check(engine.tensor(x[:100], dtype=engine.float32)).all())
    assert np.isfinite(d.log_prob(engine.tensor(x[:100], dtype=engine.float32)).numpy()).all()
    engine.manual_seed(3)
    a = d.sample((2,)).numpy()
    engine.manual_seed(3)
    np.testing.assert_array_equal(a, d.sample((2,)).numpy())


def test_multinomial_samples_sum_to_total_count():
    x = D.Multinomial(9, engine.tensor(WEIGHTS, dtype=engine.float32)).sample((50,)).numpy()
    assert np.all(x.sum(-1) == 9)


def test_von_mises_samples_match_the_circular_moments():
    loc, kappa = engine.tensor([0.5, 3.0, -2.0]), engine.tensor([0.3, 5.0, 1e-6])
    d = D.VonMises(loc, kappa)
    engine.manual_seed(1)
    x = d.sample((100_000,)).numpy().astype(np.float64)
    assert x.min() >= -np.pi and x.max() < np.pi
    resultant = np.exp(1j * x).mean(0)
    np.testing.assert_allclose(np.angle(resultant[:2]), loc.numpy()[:2], atol=0.05)
    np.testing.assert_allclose(1 - np.abs(resultant), d.variance.numpy(), atol=0.01)
    assert d.sample().dtype == engine.float32
    assert D.VonMises(loc.double(), kappa.double()).sample().dtype == engine.float64


@needs_torch
def test_continuous_bernoulli_rsample_matches_torch_on_the_same_noise(monkeypatch):
    p = NEAR_HALF.astype(np.float32)
    ours, theirs = engine.tensor(p, requires_grad=True), torch.tensor(p, requires_grad=True)
    engine.manual_seed(2)
    noise = engine.rand((5, 2, 3))
    engine.manual_seed(2)
    x = D.ContinuousBernoulli(ours).rsample((5,))
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.tensor(noise.numpy()))
    y = torch.distributions.ContinuousBernoulli(theirs).rsample((5,))
    np.testing.assert_allclose(x.detach().numpy(), y.detach().numpy(), rtol=1e-4, atol=1e-6)
    x.sum().backward()
    y.sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-3, atol=1e-4)


def test_straight_through_rsample_is_one_hot_with_the_gradient_of_probs():
    w = engine.tensor(WEIGHTS, dtype=engine.float32, requires_grad=True)
    d = D.OneHotCategoricalStraightThrough(probs=w)
    x = d.rsample((3,))
    assert set(np.unique(x.detach().numpy())) <= {0.0, 1.0} and np.all(x.detach().numpy().sum(-1) == 1)
    r = engine.tensor(np.random.default_rng(0).standard_normal((3, 2, 4)), dtype=engine.float32)
    (x * r).sum().backward()
    w2 = engine.tensor(WEIGHTS, dtype=engine.float32, requires_grad=True)
    (D.OneHotCategorical(probs=w2).probs * r.sum(0)).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), w2.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert D.OneHotCategoricalStraightThrough.has_rsample and not D.OneHotCategorical.has_rsample


KL_PAIRS = {
    "binomial": (lambda p, q: (lib(p).Binomial(5, p), lib(p).Binomial(5, q)), [PROBS, PROBS[::-1]]),
    "binomial_more_trials": (lambda p, q: (lib(p).Binomial(6, p), lib(p).Binomial(5, q)), [PROBS, PROBS[::-1]]),
    "geometric": (lambda p, q: (lib(p).Geometric(p), lib(p).Geometric(q)), [PROBS, PROBS[::-1]]),
    "poisson": (lambda a, b: (lib(a).Poisson(a), lib(a).Poisson(b)), [RATE, RATE[::-1]]),
    "bernoulli_poisson": (lambda p, r: (lib(p).Bernoulli(p), lib(p).Poisson(r)), [PROBS, RATE]),
    "poisson_bernoulli": (lambda r, p: (lib(p).Poisson(r), lib(p).Bernoulli(p)), [RATE, PROBS]),
    "poisson_binomial": (lambda r, p: (lib(p).Poisson(r), lib(p).Binomial(3, p)), [RATE, PROBS]),
    "cb_cb": (lambda p, q: (lib(p).ContinuousBernoulli(p), lib(p).ContinuousBernoulli(q)), [NEAR_HALF, PROBS]),
    "beta_cb": (lambda a, b, p: (lib(p).Beta(a, b), lib(p).ContinuousBernoulli(p)), [RATE, RATE[::-1], PROBS]),
    "uniform_cb": (lambda lo, p: (lib(p).Uniform(lo, lo + 0.05), lib(p).ContinuousBernoulli(p)),
                   [PROBS * 0.9, PROBS]),
    "cb_normal": (lambda p, m: (lib(p).ContinuousBernoulli(p), lib(p).Normal(m, m.exp())), [PROBS, LOGITS]),
    "cb_uniform": (lambda p, lo: (lib(p).ContinuousBernoulli(p), lib(p).Uniform(lo - 1, lo + 1.5)),
                   [PROBS, PROBS * 0.5]),
    "normal_cb": (lambda m, p: (lib(p).Normal(m, 1.0), lib(p).ContinuousBernoulli(p)), [LOGITS, PROBS]),
    "gamma_cb": (lambda a, p: (lib(p).Gamma(a, 1.0), lib(p).ContinuousBernoulli(p)), [RATE, PROBS]),
    "straight_through": (lambda p, q: (lib(p).OneHotCategoricalStraightThrough(p),
                                       lib(p).OneHotCategoricalStraightThrough(q)), [WEIGHTS, WEIGHTS[::-1]]),
}


@needs_torch
@pytest.mark.parametrize("pair", KL_PAIRS)
def test_kl_divergence_matches_torch(pair):
    build, params = KL_PAIRS[pair]
    torch_check(lambda *ts: lib(ts[0]).kl_divergence(*build(*ts)), [np.ascontiguousarray(a) for a in params])


def test_binomial_kl_refuses_fewer_trials_in_p():
    p = engine.tensor([0.3])
    with pytest.raises(NotImplementedError, match=r"q\.total_count > p\.total_count"):
        D.kl_divergence(D.Binomial(2, p), D.Binomial(3, p))


class _Exponential:
    """An exponential distribution written only as an exponential family (theta = -rate, F = -log(-theta)),
    in either library, to test the Bregman entropy and KL."""

    @staticmethod
    def make(base):
        class Exp(base):
            arg_constraints: dict = {}

            def __init__(self, rate):
                self.rate = rate
                super().__init__(rate.shape, validate_args=False)

            @property
            def _natural_params(self):
                return (-self.rate,)

            def _log_normalizer(self, x):
                return -(-x).log()

            _mean_carrier_measure = 0

        return Exp


@needs_torch
def test_exponential_family_entropy_and_kl_by_bregman_divergence_match_torch():
    ours_cls = _Exponential.make(ExponentialFamily)
    theirs_cls = _Exponential.make(torch.distributions.ExponentialFamily)
    a, b = RATE.astype(np.float32), RATE[::-1].astype(np.float32).copy()
    p, q = ours_cls(engine.tensor(a)), ours_cls(engine.tensor(b))
    tp, tq = theirs_cls(torch.tensor(a)), theirs_cls(torch.tensor(b))
    np.testing.assert_allclose(p.entropy().detach().numpy(), tp.entropy().detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(p.entropy().detach().numpy(), 1 - np.log(a), rtol=1e-5)
    np.testing.assert_allclose(D.kl_divergence(p, q).detach().numpy(),
                               torch.distributions.kl_divergence(tp, tq).detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(D.kl_divergence(p, q).detach().numpy(), np.log(a / b) + b / a - 1, rtol=1e-5)
    with pytest.raises(NotImplementedError, match="different exponential families"):
        D.kl_divergence(p, D.Poisson(engine.tensor(a)))
    cb = D.ContinuousBernoulli(engine.tensor(PROBS, dtype=engine.float32))  # Bregman equals the closed form
    np.testing.assert_allclose(ExponentialFamily.entropy(cb).detach().numpy(), cb.entropy().numpy(), atol=1e-5)


@needs_torch
def test_poisson_entropy_is_missing_as_in_torch():
    with pytest.raises(NotImplementedError):
        torch.distributions.Poisson(torch.tensor([1.0])).entropy()
    with pytest.raises(NotImplementedError, match="_mean_carrier_measure"):
        D.Poisson(engine.tensor([1.0])).entropy()


@needs_torch
def test_expand_matches_torch():
    p, r = engine.tensor(PROBS[0], dtype=engine.float32), engine.tensor(RATE[0], dtype=engine.float32)
    tp, tr = torch.tensor(PROBS[0], dtype=torch.float32), torch.tensor(RATE[0], dtype=torch.float32)
    for make in (lambda L, p, r: L.Poisson(r), lambda L, p, r: L.Binomial(4, p), lambda L, p, r: L.Geometric(p),
                 lambda L, p, r: L.NegativeBinomial(r, logits=p), lambda L, p, r: L.ContinuousBernoulli(p),
                 lambda L, p, r: L.VonMises(p, r), lambda L, p, r: L.Multinomial(3, p)):
        ours, theirs = make(D, p, r).expand((4, 3) if not isinstance(make(D, p, r), D.Multinomial) else (4,)), None
        theirs = make(torch.distributions, tp, tr)
        theirs = theirs.expand((4, 3) if not isinstance(theirs, torch.distributions.Multinomial) else (4,))
        assert tuple(ours.batch_shape) == tuple(theirs.batch_shape)
        assert tuple(ours.event_shape) == tuple(theirs.event_shape)
        assert tuple(ours.sample((2,)).shape) == tuple(theirs.sample((2,)).shape)
        np.testing.assert_allclose(ours.mean.numpy(), theirs.mean.numpy(), rtol=1e-5)


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: D.Poisson(engine.tensor([-1.0, 2.0])), ValueError, "Expected parameter rate"),
    (lambda: D.Binomial(engine.tensor([2.5]), engine.tensor([0.5])), ValueError, "Expected parameter total_count"),
    (lambda: D.Binomial(3, engine.tensor([1.5])), ValueError, "Expected parameter probs"),
    (lambda: D.Binomial(3), ValueError, "Either `probs` or `logits` must be specified"),
    (lambda: D.Geometric(engine.tensor([0.0, 0.5])), ValueError, "Expected parameter probs .* to be positive"),
    (lambda: D.NegativeBinomial(engine.tensor([-1.0]), engine.tensor([0.5])), ValueError,
     "Expected parameter total_count"),
    (lambda: D.NegativeBinomial(2.0, engine.tensor([1.0])), ValueError, "Expected parameter probs"),
    (lambda: D.Multinomial(2.5, engine.tensor([0.5, 0.5])), NotImplementedError, "inhomogeneous total_count"),
    (lambda: D.Multinomial(3, engine.tensor([0.5, -0.5])), ValueError, "Expected parameter probs"),
    (lambda: D.ContinuousBernoulli(engine.tensor([1.5]), validate_args=True), ValueError,
     "The parameter probs has invalid values"),
    (lambda: D.VonMises(engine.tensor([0.0]), engine.tensor([-1.0])), ValueError, "Expected parameter concentration"),
    (lambda: D.Poisson(engine.tensor([1.0])).log_prob(engine.tensor([1.5])), ValueError,
     "Expected value argument .* to be within the support"),
    (lambda: D.Binomial(3, engine.tensor([0.5])).log_prob(engine.tensor([4.0])), ValueError,
     "to be within the support"),
    (lambda: D.Multinomial(3, engine.tensor([0.5, 0.5])).log_prob(engine.tensor([3.0, 1.0])), ValueError,
     "to be within the support"),
    (lambda: D.Multinomial(3, engine.tensor([0.5, 0.5])).log_prob(engine.tensor([1.0, 1.0, 1.0])), ValueError,
     "The right-most size of value must match event_shape"),
    (lambda: D.ContinuousBernoulli(engine.tensor([0.3])).log_prob(engine.tensor([1.5])), ValueError,
     "to be within the support"),
])
def test_bad_input_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_validate_args_false_skips_the_checks():
    D.Poisson(engine.tensor([-1.0]), validate_args=False)
    D.Binomial(3, engine.tensor([1.5]), validate_args=False)


@needs_torch
def test_count_distributions_have_torch_properties():
    p, tp = engine.tensor(PROBS, dtype=engine.float32), torch.tensor(PROBS, dtype=torch.float32)
    for name in ("Poisson", "Binomial", "Geometric", "NegativeBinomial", "Multinomial", "ContinuousBernoulli",
                 "OneHotCategoricalStraightThrough", "VonMises"):
        ours, theirs = getattr(D, name), getattr(torch.distributions, name)
        assert ours.has_rsample == theirs.has_rsample, name
        assert set(ours.arg_constraints) == set(theirs.arg_constraints), name
    assert D.Binomial(4, p).support.upper_bound is not None
    assert D.Poisson(p).support is D.constraints.nonnegative_integer
    assert D.ContinuousBernoulli(p).support is D.constraints.unit_interval
    assert D.Multinomial(3, p).support.is_discrete and D.Multinomial(3, p).support.event_dim == 1
    assert torch.distributions.Multinomial(3, tp).support.event_dim == 1
    np.testing.assert_allclose(D.Binomial(4, p).logits.numpy(), torch.distributions.Binomial(4, tp).logits.numpy(),
                               rtol=1e-5)
    assert tuple(D.Multinomial(3, p).param_shape) == tuple(torch.distributions.Multinomial(3, tp).param_shape)


def test_count_models_train_on_poisson_and_negative_binomial_likelihoods():
    """A Poisson regression recovers its rate; the NegativeBinomial loss decreases, as a ported count model's."""
    engine.manual_seed(0)
    y = D.Poisson(engine.full((500,), 3.0)).sample()
    log_rate = engine.zeros(1, requires_grad=True)
    opt = engine.optim.Adam([log_rate], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        loss = -D.Poisson(log_rate.exp()).log_prob(y).mean()
        loss.backward()
        opt.step()
    assert abs(log_rate.exp().item() - y.numpy().mean()) < 0.05
    logits = engine.zeros(1, requires_grad=True)
    first = -D.NegativeBinomial(2.0, logits=logits).log_prob(y).mean()
    first.backward()
    with engine.no_grad():
        logits -= 0.1 * logits.grad
    assert -D.NegativeBinomial(2.0, logits=logits).log_prob(y).mean().item() < first.item()


@needs_torch
def test_second_order_gradients_match_torch():
    """create_graph through Binomial, NegativeBinomial, ContinuousBernoulli and VonMises log_probs."""
    def loss(L, x, r, p):
        return (L.Binomial(5, logits=x).log_prob(like(x, COUNTS.clip(0, 5))).sum()
                + L.NegativeBinomial(r, logits=x).log_prob(like(x, COUNTS)).sum()
                + L.ContinuousBernoulli(logits=x).log_prob(like(x, UNIT)).sum()
                + L.VonMises(x, r).log_prob(like(x, ANGLES)).sum() + L.Poisson(r).log_prob(like(x, COUNTS)).sum()
                + L.Geometric(p).log_prob(like(x, COUNTS)).sum())

    arrays = [LOGITS, RATE, PROBS]
    results = []
    for L, make in ((D, engine.tensor), (torch.distributions, torch.tensor)):
        ts = [make(a.astype(np.float32), requires_grad=True) for a in arrays]
        autograd = engine.autograd if L is D else torch.autograd
        grads = autograd.grad(loss(L, *ts), ts, create_graph=True)
        v = [make(np.random.default_rng(i).standard_normal(a.shape).astype(np.float32)) for i, a in enumerate(arrays)]
        hvp = autograd.grad(sum((g * w).sum() for g, w in zip(grads, v)), ts)
        results.append([h.detach().numpy() for h in (*grads, *hvp)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
def test_gpu_count_distributions_match_cpu():
    cuda_or_skip()
    results = {}
    for device in ("cpu", "cuda"):
        p = engine.tensor(PROBS, dtype=engine.float32, device=device, requires_grad=True)
        r = engine.tensor(RATE, dtype=engine.float32, device=device, requires_grad=True)
        k = engine.tensor(COUNTS, dtype=engine.float32, device=device)
        dists = [D.Poisson(r), D.Binomial(5, p), D.Geometric(p), D.NegativeBinomial(r, p), D.ContinuousBernoulli(p),
                 D.VonMises(p, r), D.Multinomial(7, engine.tensor(WEIGHTS, dtype=engine.float32, device=device))]
        total = sum(d.log_prob(v).sum() for d, v in zip(dists[:-1], (k, k.clamp(max=5), k, k, k / 6, k)))
        total = total + dists[4].entropy().sum()  # (rsample draws differ between the devices' generators)
        total.backward()
        assert dists[4].rsample((3,)).device == engine.device(device)
        for d in dists:
            s = d.sample((2000,))
            assert s.device == engine.device(device) and np.isfinite(s.cpu().numpy()).all()
        results[device] = (total.item(), p.grad.cpu().numpy(), r.grad.cpu().numpy())
    for a, b in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


@needs_torch
def test_fisher_snedecor_moments_are_nan_where_torch_says_so_and_rsample_is_differentiable():
    df1, df2 = np.array([1.5, 3.0, 7.0], dtype=np.float32), np.array([5.0, 9.0, 2.5], dtype=np.float32)
    ours = D.FisherSnedecor(engine.tensor(df1), engine.tensor(df2))
    theirs = torch.distributions.FisherSnedecor(torch.tensor(df1), torch.tensor(df2))
    for what in ("mean", "mode", "variance"):
        np.testing.assert_allclose(getattr(ours, what).numpy(), getattr(theirs, what).numpy(), rtol=1e-5)
    a = engine.tensor([5.0, 8.0], requires_grad=True)
    d = D.FisherSnedecor(a, engine.tensor([12.0, 20.0]))
    engine.manual_seed(0)
    x = d.rsample((100_000,))
    np.testing.assert_allclose(x.detach().numpy().mean(0), [12 / 10, 20 / 18], rtol=0.02)
    x.mean().backward()  # E[X] does not depend on df1: its gradient averages to about 0
    assert a.grad is not None and np.all(np.abs(a.grad.numpy()) < 0.01)
    with pytest.raises(ValueError, match="Expected parameter df1"):
        D.FisherSnedecor(engine.tensor([-1.0]), engine.tensor([2.0]))
