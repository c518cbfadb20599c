"""engine.distributions against torch.distributions: values, gradients, samples, errors, and training loops."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.distributions as D
from engine.ops.linalg import cholesky, solve_triangular
from tests.engine.oracle import check_grads, cuda_or_skip, needs_torch, torch, torch_check

RNG = np.random.default_rng(3)
LOC = RNG.standard_normal((2, 3))
SCALE = RNG.uniform(0.5, 2.0, (2, 3))
PROBS = RNG.uniform(0.1, 0.9, (2, 3))
WEIGHTS = RNG.uniform(0.2, 3.0, (2, 4))  # unnormalised: Categorical divides by the sum, as PyTorch does
LOGITS = RNG.standard_normal((2, 4)) * 2
TRIL = np.tril(RNG.standard_normal((3, 3)) * 0.5) + np.diag([1.0, 1.5, 0.8])
COV = TRIL @ TRIL.T
MVN_LOC = RNG.standard_normal((2, 3))
POSITIVE = np.random.default_rng(11).uniform(0.5, 3.0, (2, 2, 3))  # concentrations and rates
UNIT = np.random.default_rng(12).uniform(0.05, 0.95, (4, 2, 3))
SIMPLEX = np.random.default_rng(13).dirichlet(np.ones(3), (4, 2))


def lib(t):
    """engine.distributions for engine tensors, torch.distributions for torch tensors."""
    return D if isinstance(t, engine.Tensor) else torch.distributions


def like(t, array):
    """`array` as a tensor of t's library, float32 (int64 stays int64)."""
    array = array.astype(np.float32) if array.dtype.kind == "f" else array
    return engine.tensor(array) if isinstance(t, engine.Tensor) else torch.tensor(array)


# name -> (builder of a distribution from parameter tensors, parameter arrays, a value for log_prob)
CASES = {
    "normal": (lambda m, s: lib(m).Normal(m, s), [LOC, SCALE], RNG.standard_normal((4, 2, 3))),
    "uniform": (lambda lo, w: lib(lo).Uniform(lo, lo + w), [LOC, SCALE], LOC + SCALE * RNG.uniform(0, 1, (4, 2, 3))),
    "bernoulli_probs": (lambda p: lib(p).Bernoulli(probs=p), [PROBS], RNG.integers(0, 2, (4, 2, 3)).astype(float)),
    "bernoulli_logits": (lambda x: lib(x).Bernoulli(logits=x), [LOC], RNG.integers(0, 2, (4, 2, 3)).astype(float)),
    "categorical_probs": (lambda p: lib(p).Categorical(probs=p), [WEIGHTS], RNG.integers(0, 4, (5, 2))),
    "categorical_logits": (lambda x: lib(x).Categorical(logits=x), [LOGITS], RNG.integers(0, 4, (5, 2))),
    "one_hot_categorical": (lambda p: lib(p).OneHotCategorical(probs=p), [WEIGHTS],
                            np.eye(4)[RNG.integers(0, 4, (5, 2))]),
    "mvn_scale_tril": (lambda m, L: lib(m).MultivariateNormal(m, scale_tril=L), [MVN_LOC, TRIL],
                       RNG.standard_normal((4, 2, 3))),
    "mvn_covariance": (lambda m, C: lib(m).MultivariateNormal(m, covariance_matrix=C), [MVN_LOC, COV],
                       RNG.standard_normal((4, 2, 3))),
    "mvn_precision": (lambda m, C: lib(m).MultivariateNormal(m, precision_matrix=C), [MVN_LOC, COV],
                      RNG.standard_normal((4, 2, 3))),
    "independent_normal": (lambda m, s: lib(m).Independent(lib(m).Normal(m, s), 1), [LOC, SCALE],
                           RNG.standard_normal((4, 2, 3))),
    "gamma": (lambda a, b: lib(a).Gamma(a, b), list(POSITIVE), UNIT * 4),
    "beta": (lambda a, b: lib(a).Beta(a, b), list(POSITIVE), UNIT),
    "dirichlet": (lambda a: lib(a).Dirichlet(a), [POSITIVE[0]], SIMPLEX),
}


@needs_torch
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("what", ["log_prob", "entropy", "mean", "variance", "stddev", "mode"])
def test_values_and_gradients_match_torch(name, what):
    build, params, value = CASES[name]
    if name.startswith("categorical") and what in ("mean", "variance", "stddev"):
        pytest.skip("NaN by definition, checked in test_categorical_moments_are_nan")
    if name.startswith("uniform") and what == "mode":
        pytest.skip("NaN by definition")
    if name == "beta" and what == "mode":
        pytest.skip("NaN where a concentration is below 1, as in torch: checked in test_beta_mode_matches_torch")
    if what == "mode" and name.startswith("bernoulli"):
        pytest.skip("mode is piecewise constant: checked without gradients below")

    def fn(*ts):
        d = build(*ts)
        if what == "log_prob":
            return d.log_prob(like(ts[0], value))
        if what == "entropy":
            return d.entropy()
        out = getattr(d, what)
        return out if out.dtype.is_floating_point else out.float()

    wrt = None if what != "mode" or name.startswith(("normal", "mvn", "independent")) else []
    torch_check(fn, params, wrt=wrt)


@needs_torch
def test_mode_of_bernoulli_and_categorical_match_torch():
    p = np.array([0.2, 0.5, 0.7], dtype=np.float32)
    ours, theirs = D.Bernoulli(engine.tensor(p)).mode.numpy(), torch.distributions.Bernoulli(torch.tensor(p)).mode
    np.testing.assert_array_equal(ours, theirs.numpy())  # NaN at 0.5 in both
    w = WEIGHTS.astype(np.float32)
    theirs = torch.distributions.Categorical(torch.tensor(w)).mode
    assert D.Categorical(engine.tensor(w)).mode.tolist() == theirs.tolist()


def test_categorical_moments_are_nan():
    d = D.Categorical(engine.tensor(WEIGHTS, dtype=engine.float32))
    assert d.mean.shape == (2,) and np.isnan(d.mean.numpy()).all() and np.isnan(d.variance.numpy()).all()


def test_categorical_normalises_like_torch():
    d = D.Categorical(probs=engine.tensor([[1.0, 3.0], [2.0, 2.0]]))
    np.testing.assert_allclose(d.probs.numpy(), [[0.25, 0.75], [0.5, 0.5]], rtol=1e-6)
    e = D.Categorical(logits=engine.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(np.exp(e.logits.numpy()).sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(e.probs.numpy(), np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)


@needs_torch
@pytest.mark.parametrize("name", ["normal", "uniform", "mvn_scale_tril", "mvn_covariance", "independent_normal"])
def test_rsample_gradients_match_torch(name, monkeypatch):
    """Both libraries get the same noise; the sample and its gradients w.r.t. the parameters must agree."""
    build, params, _ = CASES[name]
    shape = (5,)
    ours = [engine.tensor(a, dtype=engine.float32, requires_grad=True) for a in params]
    theirs = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in params]
    d = build(*ours)
    full = (*shape, *d.batch_shape, *d.event_shape)
    draw = engine.rand if name == "uniform" else engine.randn
    engine.manual_seed(11)
    noise = torch.tensor(draw(full).numpy())
    engine.manual_seed(11)
    x = d.rsample(shape)
    if name == "uniform":
        monkeypatch.setattr(torch, "rand", lambda *a, **k: noise)
    else:
        for module in ("normal", "multivariate_normal"):
            monkeypatch.setattr(getattr(torch.distributions, module), "_standard_normal", lambda *a, **k: noise)
    y = build(*theirs).rsample(shape)
    np.testing.assert_allclose(x.detach().numpy(), y.detach().numpy(), rtol=1e-4, atol=1e-5)
    r = np.random.default_rng(2).standard_normal(full).astype(np.float32)
    (x * engine.tensor(r)).sum().backward()
    (y * torch.tensor(r)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-3, atol=1e-4)


def test_cholesky_and_solve_triangular_gradients_match_finite_differences():
    check_grads(lambda a: cholesky(a @ a.mT + 3 * engine.eye(3, dtype=a.dtype)), [(2, 3, 3)],
                torch_fn=lambda a: torch.linalg.cholesky(a @ a.mT + 3 * torch.eye(3)))
    for upper in (False, True):
        def solve(a, b, upper=upper):
            a = a + 3 * engine.eye(3, dtype=a.dtype)
            return solve_triangular(a, b, upper=upper)

        def torch_solve(a, b, upper=upper):
            return torch.linalg.solve_triangular(a + 3 * torch.eye(3), b, upper=upper)

        check_grads(solve, [(2, 3, 3), (3, 2)], torch_fn=torch_solve)


@needs_torch
def test_beta_mode_matches_torch():
    a, b = np.array([0.5, 2.0, 3.0, 1.5]), np.array([1.0, 2.0, 0.5, 0.7])
    ours = D.Beta(engine.tensor(a), engine.tensor(b)).mode.numpy()
    np.testing.assert_allclose(ours, torch.distributions.Beta(torch.tensor(a), torch.tensor(b)).mode.numpy())


@needs_torch
def test_normal_icdf_matches_torch_and_inverts_cdf():
    p = np.array([[1e-6, 0.1, 0.5], [0.75, 0.99, 1 - 1e-6]])
    torch_check(lambda m, s, q: lib(m).Normal(m, s).icdf(q), [LOC, SCALE, p])
    d = D.Normal(engine.tensor(LOC), engine.tensor(SCALE))
    np.testing.assert_allclose(d.cdf(d.icdf(engine.tensor(p))).numpy(), p, rtol=1e-9)
    assert np.isinf(D.Normal(0.0, 1.0).icdf(engine.tensor([0.0, 1.0])).numpy()).all()


@needs_torch
def test_gamma_rsample_gradient_matches_torch_on_the_same_samples():
    """Implicit reparameterisation: dx/dalpha = -(dF/dalpha) / f, as torch's _standard_gamma_grad gives it."""
    alpha = np.array([0.05, 0.5, 1.0, 2.5, 9.0, 40.0, 300.0])
    rate = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 0.1])
    ours = [engine.tensor(a, requires_grad=True) for a in (alpha, rate)]
    engine.manual_seed(5)
    x = D.Gamma(*ours).rsample((50,))
    x.sum().backward()
    standard = torch.tensor(x.detach().numpy() * rate)
    d_alpha = torch._standard_gamma_grad(torch.tensor(alpha).expand(50, -1), standard).numpy()
    # torch's gradient is an approximation good to about 1e-3
    np.testing.assert_allclose(ours[0].grad.numpy(), (d_alpha / rate).sum(0), rtol=2e-3)
    np.testing.assert_allclose(ours[1].grad.numpy(), (-standard.numpy() / rate ** 2).sum(0), rtol=1e-9)


def test_standard_gamma_gradient_matches_finite_differences_of_the_cdf():
    """dx/dalpha at fixed P(alpha, x), against the CDF's series differentiated numerically."""
    from engine.distributions.gamma import standard_gamma_grad

    def cdf(a, x):  # the regularised lower incomplete gamma function by its series, in float64
        from math import exp, lgamma, log

        term = exp(a * log(x) - x - lgamma(a + 1))
        total, n = term, 0
        while term > 1e-18 * total:
            n += 1
            term *= x / (a + n)
            total += term
        return total

    for a, x in [(0.3, 0.05), (1.0, 1.0), (4.0, 7.5), (60.0, 52.0)]:
        h = 1e-6
        d_alpha = (cdf(a + h, x) - cdf(a - h, x)) / (2 * h)
        d_x = (cdf(a, x + h) - cdf(a, x - h)) / (2 * h)
        ours = standard_gamma_grad(np, np.array([a]), np.array([x]))[0]
        np.testing.assert_allclose(ours, -d_alpha / d_x, rtol=1e-6)


@pytest.mark.parametrize("name", ["beta", "dirichlet"])
def test_beta_and_dirichlet_rsample_gradients_are_unbiased(name):
    """The mean over many reparameterised samples has the gradient of the analytic mean."""
    conc = [engine.tensor(a, requires_grad=True) for a in ([0.7, 2.0, 5.0], [1.5, 0.4, 3.0])]
    d = D.Beta(*conc) if name == "beta" else D.Dirichlet(conc[0])
    engine.manual_seed(0)
    weights = engine.tensor([1.0, -2.0, 3.0], dtype=engine.float64)
    (d.rsample((200_000,)).mean(0) * weights).sum().backward()
    sampled = [c.grad.numpy().copy() for c in conc if c.grad is not None]
    for c in conc:
        c.grad = None
    (d.mean * weights).sum().backward()
    for got, c in zip(sampled, conc):
        np.testing.assert_allclose(got, c.grad.numpy(), atol=0.01)


def test_gamma_family_rejects_bad_parameters():
    with pytest.raises(ValueError, match=r"concentration.*GreaterThan"):
        D.Gamma(engine.tensor([1.0, -1.0]), 1.0)
    with pytest.raises(ValueError, match="at least one-dimensional"):
        D.Dirichlet(engine.tensor(2.0))
    with pytest.raises(ValueError, match="support"):
        D.Dirichlet(engine.tensor([1.0, 2.0])).log_prob(engine.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="support"):
        D.Beta(1.0, 2.0).log_prob(engine.tensor([1.5]))


@needs_torch
@pytest.mark.parametrize("pair", ["normal", "categorical", "one_hot", "bernoulli", "uniform", "mvn", "independent",
                                  "gamma", "beta", "dirichlet"])
def test_kl_divergence_matches_torch(pair):
    q_loc, q_scale = RNG.standard_normal((2, 3)), RNG.uniform(0.5, 2.0, (2, 3))
    q_tril = np.tril(RNG.standard_normal((3, 3)) * 0.3) + np.eye(3)
    builders = {
        "normal": (lambda a, b, c, d: lib(a).Normal(a, b), lambda a, b, c, d: lib(a).Normal(c, d),
                   [LOC, SCALE, q_loc, q_scale]),
        "categorical": (lambda a, b: lib(a).Categorical(logits=a), lambda a, b: lib(a).Categorical(probs=b),
                        [LOGITS, WEIGHTS]),
        "one_hot": (lambda a, b: lib(a).OneHotCategorical(logits=a), lambda a, b: lib(a).OneHotCategorical(probs=b),
                    [LOGITS, WEIGHTS]),
        "bernoulli": (lambda a, b: lib(a).Bernoulli(probs=a), lambda a, b: lib(a).Bernoulli(logits=b),
                      [PROBS, LOC]),
        "uniform": (lambda a, b: lib(a).Uniform(a, a + 0.5), lambda a, b: lib(a).Uniform(a - b, a + 0.5 + b),
                    [LOC, SCALE]),
        "mvn": (lambda a, b, c, d: lib(a).MultivariateNormal(a, scale_tril=b),
                lambda a, b, c, d: lib(a).MultivariateNormal(c, covariance_matrix=d @ d.mT),
                [MVN_LOC, TRIL, q_loc, q_tril]),
        "independent": (lambda a, b, c, d: lib(a).Independent(lib(a).Normal(a, b), 1),
                        lambda a, b, c, d: lib(a).Independent(lib(a).Normal(c, d), 1), [LOC, SCALE, q_loc, q_scale]),
        "gamma": (lambda a, b, c, d: lib(a).Gamma(a, b), lambda a, b, c, d: lib(a).Gamma(c, d),
                  [*POSITIVE, *POSITIVE[::-1]]),
        "beta": (lambda a, b, c, d: lib(a).Beta(a, b), lambda a, b, c, d: lib(a).Beta(c, d),
                 [*POSITIVE, *POSITIVE[::-1]]),
        "dirichlet": (lambda a, b: lib(a).Dirichlet(a), lambda a, b: lib(a).Dirichlet(b), list(POSITIVE)),
    }
    p, q, params = builders[pair]

    def kl(*ts):
        return lib(ts[0]).kl_divergence(p(*ts), q(*ts))

    torch_check(kl, params)


def test_kl_gives_inf_where_q_has_no_mass_and_zero_where_p_has_none():
    p = D.Categorical(probs=engine.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]))
    q = D.Categorical(probs=engine.tensor([[0.5, 0.0, 0.5], [0.25, 0.75, 0.0]]))
    kl = D.kl_divergence(p, q).numpy()
    assert np.isinf(kl[0]) and np.isfinite(kl[1])
    assert np.isinf(D.kl_divergence(D.Bernoulli(0.5), D.Bernoulli(0.0)).item())
    assert D.kl_divergence(D.Bernoulli(0.0), D.Bernoulli(0.0)).item() == 0


def test_register_kl_dispatches_to_the_most_specific_pair():
    class MyNormal(D.Normal):
        pass

    assert np.isclose(D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)).item(), 0.5)

    @D.register_kl(MyNormal, D.Normal)
    def _mine(p, q):
        return engine.tensor(42.0)

    assert D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)).item() == 42.0
    assert np.isclose(D.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 1.0)).item(), 0.5)
    with pytest.raises(NotImplementedError, match=r"No KL.*Normal.*Bernoulli"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Bernoulli(0.5))
    with pytest.raises(TypeError, match="Distribution subclass"):
        D.register_kl(int, D.Normal)


def _all_dists():
    f = engine.float32
    return {
        "normal": D.Normal(engine.tensor(LOC, dtype=f), engine.tensor(SCALE, dtype=f)),
        "uniform": D.Uniform(engine.tensor(LOC, dtype=f), engine.tensor(LOC + SCALE, dtype=f)),
        "bernoulli": D.Bernoulli(engine.tensor(PROBS, dtype=f)),
        "categorical": D.Categorical(engine.tensor(WEIGHTS, dtype=f)),
        "one_hot": D.OneHotCategorical(engine.tensor(WEIGHTS, dtype=f)),
        "mvn": D.MultivariateNormal(engine.tensor(MVN_LOC, dtype=f), scale_tril=engine.tensor(TRIL, dtype=f)),
        "independent": D.Independent(D.Normal(engine.tensor(LOC, dtype=f), engine.tensor(SCALE, dtype=f)), 1),
        "gamma": D.Gamma(*(engine.tensor(a, dtype=f) for a in POSITIVE)),
        "beta": D.Beta(*(engine.tensor(a, dtype=f) for a in POSITIVE)),
        "dirichlet": D.Dirichlet(engine.tensor(POSITIVE[0], dtype=f)),
    }


@pytest.mark.parametrize("name", list(_all_dists()))
def test_sample_shapes_and_reproducibility(name):
    d = _all_dists()[name]
    base = (*d.batch_shape, *d.event_shape)
    assert tuple(d.sample().shape) == base
    assert tuple(d.sample((4, 5)).shape) == (4, 5, *base)
    assert tuple(d.sample(engine.Size([3])).shape) == (3, *base)
    assert not d.sample((2,)).requires_grad
    engine.manual_seed(7)
    a = d.sample((3,)).numpy()
    engine.manual_seed(7)
    np.testing.assert_array_equal(a, d.sample((3,)).numpy())
    assert d.log_prob(d.sample((6,))).shape == (6, *d.batch_shape)
    with pytest.raises(TypeError, match="sample_shape must be a tuple"):
        d.sample(5)


def test_sample_dtypes_follow_torch():
    d = _all_dists()
    assert d["categorical"].sample().dtype == engine.int64
    assert d["bernoulli"].sample().dtype == engine.float32
    assert d["one_hot"].sample().dtype == engine.float32
    assert D.Normal(engine.zeros(2, dtype=engine.float64), 1.0).sample().dtype == engine.float64


@pytest.mark.parametrize("name", list(_all_dists()))
def test_sample_statistics_converge(name):
    d = _all_dists()[name]
    x = d.sample((100_000,)).numpy().astype(np.float64)
    if name == "categorical":  # frequencies match the normalised probabilities
        freq = np.stack([(x == k).mean(0) for k in range(4)], -1)
        np.testing.assert_allclose(freq, d.probs.numpy(), atol=0.01)
        return
    np.testing.assert_allclose(x.mean(0), d.mean.numpy(), atol=0.03)
    np.testing.assert_allclose(x.var(0), d.variance.numpy(), rtol=0.03, atol=0.005)
    if name == "mvn":
        cov = np.einsum("nbi,nbj->bij", x - x.mean(0), x - x.mean(0)) / len(x)
        np.testing.assert_allclose(cov, np.broadcast_to(COV, cov.shape), atol=0.05)


def test_bernoulli_and_uniform_samples_stay_in_support():
    d = _all_dists()
    b = d["bernoulli"].sample((1000,)).numpy()
    assert set(np.unique(b)) <= {0.0, 1.0}
    u = d["uniform"]
    x = u.sample((1000,)).numpy()
    assert (x >= u.low.numpy()).all() and (x < u.high.numpy()).all()
    zero = D.Categorical(probs=engine.tensor([0.0, 1.0, 0.0, 1.0]))
    assert set(np.unique(zero.sample((5000,)).numpy())) == {1, 3}


@needs_torch
def test_expand_matches_torch():
    loc, scale = LOC[0].astype(np.float32), SCALE[0].astype(np.float32)
    ours = D.Normal(engine.tensor(loc), engine.tensor(scale)).expand((4, 3))
    theirs = torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale)).expand((4, 3))
    assert tuple(ours.batch_shape) == tuple(theirs.batch_shape) == (4, 3)
    assert tuple(ours.sample((2,)).shape) == (2, 4, 3)
    v = RNG.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(ours.log_prob(engine.tensor(v)).numpy(), theirs.log_prob(torch.tensor(v)).numpy(),
                               rtol=1e-5)
    for d in _all_dists().values():
        e = d.expand((5, *d.batch_shape))
        assert tuple(e.batch_shape) == (5, *d.batch_shape) and tuple(e.event_shape) == tuple(d.event_shape)
        assert tuple(e.sample().shape) == (5, *d.batch_shape, *d.event_shape)
        np.testing.assert_allclose(e.entropy().numpy() if not isinstance(d, D.Uniform) else 0,
                                   np.broadcast_to(d.entropy().numpy(), e.batch_shape)
                                   if not isinstance(d, D.Uniform) else 0, rtol=1e-6)


@pytest.mark.parametrize("make, message", [
    (lambda: D.Normal(engine.tensor([0.0, 1.0]), engine.tensor([1.0, -2.0])),
     r"Expected parameter scale \(Tensor of shape \(2,\)\) of distribution Normal.*GreaterThan\(lower_bound=0.0\)"
     r".*-2.0 at index \(1,\)"),
    (lambda: D.Bernoulli(engine.tensor([0.5, 1.5])), r"Expected parameter probs .*Interval\(lower_bound=0.0, "
                                                      r"upper_bound=1.0\).*1.5"),
    (lambda: D.Categorical(engine.tensor([0.5, -0.25, 1.0])), r"Expected parameter probs .*Simplex\(\)"),
    (lambda: D.Uniform(engine.tensor([0.0, 2.0]), engine.tensor([1.0, 1.0])), r"Expected parameter low .*LessThan"),
    (lambda: D.MultivariateNormal(engine.zeros(2), engine.tensor([[1.0, 2.0], [2.0, 1.0]])),
     r"Expected parameter covariance_matrix .*PositiveDefinite\(\)"),
    (lambda: D.MultivariateNormal(engine.zeros(2), scale_tril=engine.tensor([[1.0, 0.0], [0.5, -1.0]])),
     r"Expected parameter scale_tril .*LowerCholesky\(\)"),
    (lambda: D.Bernoulli(probs=0.5, logits=0.0), r"Either `probs` or `logits` must be specified, but not both"),
    (lambda: D.Categorical(), r"Either `probs` or `logits` must be specified"),
    (lambda: D.Categorical(engine.tensor(1.0)), r"`probs` parameter must be at least one-dimensional"),
    (lambda: D.MultivariateNormal(engine.zeros(2)), r"Exactly one of covariance_matrix or precision_matrix or "
                                                    r"scale_tril may be specified"),
    (lambda: D.MultivariateNormal(engine.zeros(3), scale_tril=engine.eye(2)), r"scale_tril must be a .*3x3"),
    (lambda: D.Independent(D.Normal(0.0, 1.0), 1), r"Expected reinterpreted_batch_ndims <= "
                                                  r"len\(base_distribution.batch_shape\), actual 1 vs 0"),
    (lambda: D.Normal(0.0, 1.0).log_prob(engine.tensor([float("nan")])),
     r"Expected value argument .*within the support \(Real\(\)\)"),
    (lambda: D.Bernoulli(0.3).log_prob(engine.tensor([0.5])), r"within the support \(Boolean\(\)\)"),
    (lambda: D.Categorical(engine.tensor([0.5, 0.5])).log_prob(engine.tensor([2])),
     r"IntegerInterval\(lower_bound=0, upper_bound=1\)"),
    (lambda: D.Normal(engine.zeros(2), 1.0).log_prob(engine.zeros(3)),
     r"Value is not broadcastable with batch_shape\+event_shape: \(3,\) vs \(2,\)"),
    (lambda: D.MultivariateNormal(engine.zeros(2), scale_tril=engine.eye(2)).log_prob(engine.zeros(3)),
     r"The right-most size of value must match event_shape: \(3,\) vs \(2,\)"),
    (lambda: D.Normal(0.0, 1.0).log_prob(0.5), r"The value argument to log_prob must be a Tensor"),
])
def test_validate_args_errors_name_the_bad_parameter(make, message):
    with pytest.raises(ValueError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_validate_args_false_skips_the_checks():
    d = D.Normal(engine.tensor([0.0]), engine.tensor([-1.0]), validate_args=False)
    assert d.log_prob(engine.tensor([float("nan")])).shape == (1,)
    assert D.Bernoulli(0.3, validate_args=False).log_prob(engine.tensor([0.5])).shape == (1,)


def test_rsample_is_refused_where_torch_refuses_it():
    with pytest.raises(NotImplementedError, match="Categorical has no rsample"):
        D.Categorical(engine.tensor([0.5, 0.5])).rsample()
    assert D.Normal(0.0, 1.0).has_rsample and not D.Bernoulli(0.5).has_rsample
    assert D.Independent(D.Normal(engine.zeros(2), 1.0), 1).has_rsample


def test_reinforce_learns_the_rewarded_action():
    """A policy over 4 actions, rewarded only for action 2, learns to pick it through log_prob gradients."""
    logits = engine.zeros(4, requires_grad=True)
    opt = engine.optim.Adam([logits], lr=0.1)
    reward = engine.tensor([0.0, 0.0, 1.0, 0.0])
    for _ in range(60):
        policy = D.Categorical(logits=logits)
        actions = policy.sample((32,))
        r = reward[actions]
        loss = -(policy.log_prob(actions) * (r - r.mean())).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert D.Categorical(logits=logits).probs[2].item() > 0.9


def test_vae_reparameterised_step_trains():
    """Encoder -> Normal -> rsample -> decoder with a KL term: the ELBO loss falls and gradients reach the encoder."""
    nn = engine.nn
    data = engine.tensor(np.outer(np.linspace(-1, 1, 64), [1.0, -2.0, 0.5, 3.0]), dtype=engine.float32)
    enc, dec = nn.Linear(4, 4), nn.Linear(2, 4)
    opt = engine.optim.Adam([*enc.parameters(), *dec.parameters()], lr=0.02)
    prior = D.Normal(0.0, 1.0)
    losses = []
    for _ in range(200):
        mu, log_sigma = enc(data).chunk(2, -1)
        q = D.Normal(mu, log_sigma.exp())
        recon = dec(q.rsample())
        loss = ((recon - data) ** 2).sum(-1).mean() + 0.01 * D.kl_divergence(q, prior).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        assert np.abs(enc.weight.grad.numpy()).sum() > 0
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.2 * np.mean(losses[:10])


def test_ops_are_recorded_in_the_graph():
    """log_prob is made of engine ops: its graph reaches the parameters (what the debugger draws)."""
    loc = engine.tensor([0.5], requires_grad=True)
    lp = D.Normal(loc, 1.0).log_prob(engine.tensor([1.0]))
    seen, stack = set(), [lp.grad_fn]
    while stack:
        node = stack.pop()
        seen.add(node.name())
        stack.extend(n for n, _ in node.next_functions if n is not None)
    assert "AccumulateGrad" in seen and "PowBackward0" in seen


@pytest.mark.gpu
def test_gpu_distributions_match_cpu():
    cuda_or_skip()
    results = {}
    values = RNG.standard_normal((4, 2, 3))
    for device in ("cpu", "cuda"):
        loc = engine.tensor(MVN_LOC, dtype=engine.float32, device=device, requires_grad=True)
        tril = engine.tensor(TRIL, dtype=engine.float32, device=device, requires_grad=True)
        logits = engine.tensor(LOGITS, dtype=engine.float32, device=device, requires_grad=True)
        mvn = D.MultivariateNormal(loc, scale_tril=tril)
        cov = D.MultivariateNormal(loc * 0, covariance_matrix=tril @ tril.mT + engine.eye(3, device=device))
        cat = D.Categorical(logits=logits)
        value = engine.tensor(values, dtype=engine.float32, device=device)
        total = (mvn.log_prob(value).sum() + D.kl_divergence(mvn, cov).sum() + cat.entropy().sum()
                 + cat.log_prob(engine.tensor([1, 3], device=device)).sum() + mvn.rsample((3,)).sum() * 0)
        total.backward()
        samples = [mvn.sample((1000,)), cat.sample((1000,)), D.Normal(loc, 1.0).sample(),
                   D.Uniform(0.0, loc.exp()).sample(), D.Bernoulli(logits=logits).sample(),
                   D.OneHotCategorical(logits=logits).sample((2,))]
        assert all(s.device == engine.device(device) for s in samples)
        engine.manual_seed(3)
        first = mvn.sample((2,)).cpu().numpy()
        engine.manual_seed(3)
        np.testing.assert_array_equal(first, mvn.sample((2,)).cpu().numpy())
        results[device] = (total.item(), loc.grad.cpu().numpy(), tril.grad.cpu().numpy(), logits.grad.cpu().numpy())
    for a, b in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_gpu_gamma_family_matches_cpu():
    cuda_or_skip()
    results = {}
    for device in ("cpu", "cuda"):
        a, b = (engine.tensor(p, device=device, requires_grad=True) for p in POSITIVE)
        dists = [D.Gamma(a, b), D.Beta(a, b), D.Dirichlet(a)]
        values = [engine.tensor(v, device=device) for v in (UNIT * 4, UNIT, SIMPLEX)]
        total = sum(d.log_prob(v).sum() + d.entropy().sum() for d, v in zip(dists, values))
        total = total + D.kl_divergence(dists[0], D.Gamma(b, a)).sum()
        total.backward()
        engine.manual_seed(4)
        samples = [d.rsample((1000,)) for d in dists]
        assert all(s.device == engine.device(device) and np.isfinite(s.detach().cpu().numpy()).all() for s in samples)
        sum(s.sum() for s in samples).backward()  # implicit reparameterisation runs on the device
        np.testing.assert_allclose(samples[0].detach().cpu().numpy().mean(0), dists[0].mean.detach().cpu().numpy(),
                                   rtol=0.15)
        results[device] = (total.item(), a.grad.cpu().numpy(), b.grad.cpu().numpy())
    np.testing.assert_allclose(results["cpu"][0], results["cuda"][0], rtol=1e-9)
