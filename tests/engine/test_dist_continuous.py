"""The continuous distributions of heavy_tails.py, positive.py and relaxed.py against torch.distributions: values,
gradients, reparameterised samples, sample statistics, KL pairs and errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.distributions as D
from tests.engine.oracle import cuda_or_skip, finite_difference_check, needs_torch, torch, torch_check

RNG = np.random.default_rng(5)
POS = RNG.uniform(0.5, 3.0, (2, 3))
POS2 = RNG.uniform(0.5, 3.0, (2, 3))
REAL = RNG.standard_normal((2, 3))
UNIT = RNG.uniform(0.05, 0.95, (4, 2, 3))
VALUES = RNG.standard_normal((4, 2, 3))
SIMPLEX4 = np.random.default_rng(6).dirichlet(np.ones(4), (4, 2))
SIMPLEX3 = np.random.default_rng(7).dirichlet(np.ones(3), (4, 2))
TEMP = np.array(0.7)


def lib(t):
    return D if isinstance(t, engine.Tensor) else torch.distributions


# name -> (builder from parameter tensors, parameter arrays, values for log_prob and cdf)
CASES = {
    "lognormal": (lambda a, b: lib(a).LogNormal(a, b), [REAL, POS], UNIT * 3),
    "halfnormal": (lambda a: lib(a).HalfNormal(a), [POS], UNIT * 3),
    "halfcauchy": (lambda a: lib(a).HalfCauchy(a), [POS], UNIT * 3),
    "cauchy": (lambda a, b: lib(a).Cauchy(a, b), [REAL, POS], VALUES),
    "laplace": (lambda a, b: lib(a).Laplace(a, b), [REAL, POS], VALUES),
    "gumbel": (lambda a, b: lib(a).Gumbel(a, b), [REAL, POS], VALUES),
    "weibull": (lambda a, b: lib(a).Weibull(a, b), [POS, POS2], UNIT * 3),
    "pareto": (lambda a, b: lib(a).Pareto(a, b), [POS * 0.3, POS2 + 2], UNIT * 3 + 1),
    "kumaraswamy": (lambda a, b: lib(a).Kumaraswamy(a, b), [POS + 1, POS2 + 1], UNIT),
    "exponential": (lambda a: lib(a).Exponential(a), [POS], UNIT * 3),
    "chi2": (lambda a: lib(a).Chi2(a), [POS * 2], UNIT * 3),
    "studentt": (lambda a, b, c: lib(a).StudentT(a, b, c), [POS * 2, REAL, POS2], VALUES),
    "inversegamma": (lambda a, b: lib(a).InverseGamma(a, b), [POS + 2, POS2], UNIT * 3),
    "logisticnormal": (lambda a, b: lib(a).LogisticNormal(a, b), [REAL, POS], SIMPLEX4),
    "relaxedbernoulli": (lambda t, p: lib(t).RelaxedBernoulli(t, probs=p), [TEMP, UNIT[0]], UNIT),
    "relaxedbernoulli_logits": (lambda t, x: lib(t).RelaxedBernoulli(t, logits=x), [TEMP, REAL], UNIT),
    "relaxedonehot": (lambda t, p: lib(t).RelaxedOneHotCategorical(t, probs=p), [TEMP, POS], SIMPLEX3),
    "relaxedonehot_logits": (lambda t, x: lib(t).RelaxedOneHotCategorical(t, logits=x), [TEMP, REAL], SIMPLEX3),
}
WHATS = ["log_prob", "cdf", "icdf", "entropy", "mean", "variance", "stddev", "mode"]


def _evaluate(d, what: str, value, like):
    as_tensor = engine.tensor if isinstance(like, engine.Tensor) else torch.tensor
    if what in ("log_prob", "cdf"):
        return getattr(d, what)(as_tensor(value.astype(np.float32) if like.dtype != engine.float64 else value))
    if what == "icdf":
        return d.icdf(as_tensor(UNIT.astype(np.float32)))
    if what == "entropy":
        return d.entropy()
    return getattr(d, what)


def _torch_has(name: str, what: str) -> bool:
    build, params, value = CASES[name]
    try:
        _evaluate(build(*[torch.tensor(p) for p in params]), what, value, torch.tensor(0.0))
    except NotImplementedError:
        return False
    return True


@needs_torch
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("what", WHATS)
def test_values_and_gradients_match_torch(name, what):
    build, params, value = CASES[name]
    if not _torch_has(name, what):
        pytest.skip(f"torch's {name} has no {what}")

    def fn(*ts):
        return _evaluate(build(*ts), what, value, ts[0])

    ours = [engine.tensor(p.astype(np.float32)) for p in params]
    theirs = [torch.tensor(p.astype(np.float32)) for p in params]
    out, ref = fn(*ours), fn(*theirs)
    finite = np.isfinite(ref.numpy()).all()
    # inf/nan entries (checked equal here) have no gradient to compare; torch does not differentiate the
    # incomplete gamma function in its shape (chi2's and the inverse gamma's cdf)
    if not finite or what == "mode" or (what == "cdf" and name in ("chi2", "inversegamma")):
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-3, atol=1e-6)
        assert tuple(out.shape) == tuple(ref.shape)
        return
    torch_check(fn, params)


@pytest.mark.parametrize("name", [n for n in CASES if not n.startswith("relaxed")])
def test_log_prob_gradients_match_finite_differences(name):
    build, params, value = CASES[name]
    finite_difference_check(lambda *ts: build(*ts).log_prob(engine.tensor(value)), params)


# name -> (distribution from float64 parameter tensors, parameters): univariate ones with a cdf
RSAMPLE = {n: CASES[n][:2] for n in ("lognormal", "halfnormal", "halfcauchy", "cauchy", "laplace", "gumbel",
                                      "weibull", "pareto", "kumaraswamy", "exponential")}


@needs_torch
@pytest.mark.parametrize("name", RSAMPLE)
def test_rsample_gradient_is_the_implicit_reparameterisation(name):
    """A reparameterised sample x of parameter theta moves as dx/dtheta = -(dF(x; theta)/dtheta) / p(x; theta):
    torch's cdf and log_prob give the right side at the engine's own samples."""
    build, params = RSAMPLE[name]
    engine.manual_seed(0)
    ours = [engine.tensor(p, requires_grad=True) for p in params]
    x = build(*ours).rsample()
    x.sum().backward()
    theirs = [torch.tensor(p, requires_grad=True) for p in params]
    d = build(*theirs)
    xt = torch.tensor(x.detach().numpy())
    cdf_grads = torch.autograd.grad(d.cdf(xt).sum(), theirs)
    density = d.log_prob(xt).exp().detach()
    for mine, g in zip(ours, cdf_grads):
        np.testing.assert_allclose(mine.grad.numpy(), (-g / density).numpy(), rtol=1e-5, atol=1e-7)


def _stats_ok(samples: np.ndarray, mean, var, n: int) -> None:
    mean, var = np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    assert np.all(np.abs(samples.mean(0) - mean) <= 6 * np.sqrt(var / n) + 1e-9), (samples.mean(0), mean)
    np.testing.assert_allclose(samples.var(0), var, rtol=0.05)


# name -> builder of a float64 distribution whose mean and variance are finite (and 4th moments, for the test)
STATS = {
    "lognormal": lambda: D.LogNormal(engine.tensor([0.0, 0.3]), engine.tensor([0.3, 0.5])),
    "halfnormal": lambda: D.HalfNormal(engine.tensor([0.5, 2.0])),
    "laplace": lambda: D.Laplace(engine.tensor([0.0, 1.0]), engine.tensor([0.5, 2.0])),
    "gumbel": lambda: D.Gumbel(engine.tensor([0.0, 1.0]), engine.tensor([0.5, 2.0])),
    "weibull": lambda: D.Weibull(engine.tensor([1.0, 2.0]), engine.tensor([1.5, 3.0])),
    "pareto": lambda: D.Pareto(engine.tensor([1.0, 2.0]), engine.tensor([6.0, 9.0])),
    "kumaraswamy": lambda: D.Kumaraswamy(engine.tensor([2.0, 0.7]), engine.tensor([3.0, 1.5])),
    "exponential": lambda: D.Exponential(engine.tensor([0.5, 2.0])),
    "chi2": lambda: D.Chi2(engine.tensor([1.0, 5.0])),
    "studentt": lambda: D.StudentT(engine.tensor([6.0, 9.0]), engine.tensor([0.0, 1.0]), engine.tensor([1.0, 2.0])),
    "inversegamma": lambda: D.InverseGamma(engine.tensor([6.0, 9.0]), engine.tensor([1.0, 2.0])),
    "logisticnormal": lambda: D.LogisticNormal(engine.tensor([0.2, -0.3]), engine.tensor([0.5, 0.8])),
    "relaxedbernoulli": lambda: D.RelaxedBernoulli(engine.tensor(0.5), probs=engine.tensor([0.3, 0.8])),
    "relaxedonehot": lambda: D.RelaxedOneHotCategorical(engine.tensor(0.5), probs=engine.tensor([0.2, 0.3, 0.5])),
}


@needs_torch
@pytest.mark.parametrize("name", STATS)
def test_sample_statistics(name):
    """100k seeded samples: the mean and variance of the engine's samples match torch's moments (or the samples
    of torch, where torch has no closed form)."""
    engine.manual_seed(1)
    d = STATS[name]()
    n = 100_000
    samples = d.sample((n,)).numpy()
    assert samples.shape == (n, *d.batch_shape, *d.event_shape)
    assert bool(d.support.check(engine.tensor(samples)).all().item())
    if name in ("logisticnormal", "relaxedbernoulli", "relaxedonehot"):
        ref = _torch_twin(d).sample((n,)).numpy()
        _stats_ok(samples, ref.mean(0), ref.var(0), n)
    else:
        _stats_ok(samples, d.mean.numpy(), d.variance.numpy(), n)
    engine.manual_seed(1)
    np.testing.assert_array_equal(STATS[name]().sample((n,)).numpy(), samples)  # seeded: the same again


def _torch_twin(d):
    torch.manual_seed(0)
    if isinstance(d, D.LogisticNormal):
        return torch.distributions.LogisticNormal(torch.tensor(d.loc.numpy()), torch.tensor(d.scale.numpy()))
    kind = getattr(torch.distributions, type(d).__name__)
    return kind(torch.tensor(d.temperature.numpy()), probs=torch.tensor(d.probs.numpy()))


@needs_torch
def test_relaxed_rsample_matches_torch_on_the_same_noise():
    """The Concrete samples are formulas of one uniform draw: with the draw replayed, values and gradients equal
    torch's formula on it."""
    logits = REAL[0]
    engine.manual_seed(3)
    u = engine.rand((5, 3), dtype=engine.float64).numpy()
    engine.manual_seed(3)
    lg = engine.tensor(logits, requires_grad=True)
    x = D.RelaxedOneHotCategorical(engine.tensor(0.6, dtype=engine.float64), logits=lg).rsample((5,))
    weights = np.random.default_rng(8).standard_normal((5, 3))
    (x * engine.tensor(weights)).sum().backward()
    lt = torch.tensor(logits, requires_grad=True)
    uc = torch.tensor(u).clamp(min=np.finfo(np.float64).eps, max=1 - np.finfo(np.float64).eps)
    ref = torch.softmax((torch.log_softmax(lt, -1) - (-uc.log()).log()) / 0.6, -1)
    (ref * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.detach().numpy(), ref.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(lg.grad.numpy(), lt.grad.numpy(), rtol=1e-8, atol=1e-12)


@needs_torch
def test_studentt_rsample_moves_with_loc_and_scale():
    engine.manual_seed(2)
    loc, scale = engine.tensor(REAL, requires_grad=True), engine.tensor(POS, requires_grad=True)
    df = engine.tensor(POS * 3, requires_grad=True)
    x = D.StudentT(df, loc, scale).rsample()
    x.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), np.ones_like(REAL))
    np.testing.assert_allclose(scale.grad.numpy(), ((x - loc) / scale).detach().numpy(), rtol=1e-10)
    assert np.isfinite(df.grad.numpy()).all() and np.any(df.grad.numpy())


# KL pairs torch registers, each as (p builder, q builder) over torch or engine (`L` is the library)
KL = {
    "exponential_exponential": (lambda L: L.Exponential(_t(L, POS)), lambda L: L.Exponential(_t(L, POS2))),
    "gumbel_gumbel": (lambda L: L.Gumbel(_t(L, REAL), _t(L, POS)), lambda L: L.Gumbel(_t(L, -REAL), _t(L, POS2))),
    "halfnormal_halfnormal": (lambda L: L.HalfNormal(_t(L, POS)), lambda L: L.HalfNormal(_t(L, POS2))),
    "laplace_laplace": (lambda L: L.Laplace(_t(L, REAL), _t(L, POS)), lambda L: L.Laplace(_t(L, -REAL), _t(L, POS2))),
    "pareto_pareto": (lambda L: L.Pareto(_t(L, POS), _t(L, POS2)), lambda L: L.Pareto(_t(L, POS2), _t(L, POS))),
    "cauchy_cauchy": (lambda L: L.Cauchy(_t(L, REAL), _t(L, POS)), lambda L: L.Cauchy(_t(L, -REAL), _t(L, POS2))),
    "lognormal_lognormal": (lambda L: L.LogNormal(_t(L, REAL), _t(L, POS)),
                            lambda L: L.LogNormal(_t(L, -REAL), _t(L, POS2))),
    "exponential_gamma": (lambda L: L.Exponential(_t(L, POS)), lambda L: L.Gamma(_t(L, POS2), _t(L, POS))),
    "exponential_gumbel": (lambda L: L.Exponential(_t(L, POS)), lambda L: L.Gumbel(_t(L, REAL), _t(L, POS2))),
    "exponential_normal": (lambda L: L.Exponential(_t(L, POS)), lambda L: L.Normal(_t(L, REAL), _t(L, POS2))),
    "gamma_exponential": (lambda L: L.Gamma(_t(L, POS), _t(L, POS2)), lambda L: L.Exponential(_t(L, POS))),
    "gamma_gumbel": (lambda L: L.Gamma(_t(L, POS), _t(L, POS2)), lambda L: L.Gumbel(_t(L, REAL), _t(L, POS))),
    "gumbel_normal": (lambda L: L.Gumbel(_t(L, REAL), _t(L, POS)), lambda L: L.Normal(_t(L, -REAL), _t(L, POS2))),
    "laplace_normal": (lambda L: L.Laplace(_t(L, REAL), _t(L, POS)), lambda L: L.Normal(_t(L, -REAL), _t(L, POS2))),
    "normal_gumbel": (lambda L: L.Normal(_t(L, REAL), _t(L, POS)), lambda L: L.Gumbel(_t(L, -REAL), _t(L, POS2))),
    "normal_laplace": (lambda L: L.Normal(_t(L, REAL), _t(L, POS)), lambda L: L.Laplace(_t(L, -REAL), _t(L, POS2))),
    "pareto_exponential": (lambda L: L.Pareto(_t(L, POS), _t(L, POS2 + 0.6)), lambda L: L.Exponential(_t(L, POS))),
    "pareto_gamma": (lambda L: L.Pareto(_t(L, POS), _t(L, POS2 * 2)), lambda L: L.Gamma(_t(L, POS), _t(L, POS2))),
    "pareto_normal": (lambda L: L.Pareto(_t(L, POS), _t(L, POS2 * 2)), lambda L: L.Normal(_t(L, REAL), _t(L, POS))),
    "beta_exponential": (lambda L: L.Beta(_t(L, POS), _t(L, POS2)), lambda L: L.Exponential(_t(L, POS))),
    "uniform_exponential": (lambda L: L.Uniform(_t(L, REAL), _t(L, REAL + POS)), lambda L: L.Exponential(_t(L, POS))),
    "uniform_gumbel": (lambda L: L.Uniform(_t(L, REAL), _t(L, REAL + POS)),
                       lambda L: L.Gumbel(_t(L, -REAL), _t(L, POS2))),
    "uniform_pareto": (lambda L: L.Uniform(_t(L, POS), _t(L, POS + POS2)), lambda L: L.Pareto(_t(L, POS2 * 0 + 0.6),
                                                                                             _t(L, POS))),
    "normal_uniform_inf": (lambda L: L.Normal(_t(L, REAL), _t(L, POS)), lambda L: L.Uniform(_t(L, REAL),
                                                                                           _t(L, REAL + 1))),
    "laplace_gamma_inf": (lambda L: L.Laplace(_t(L, REAL), _t(L, POS)), lambda L: L.Gamma(_t(L, POS), _t(L, POS))),
    "chi2_chi2": (lambda L: L.Chi2(_t(L, POS)), lambda L: L.Chi2(_t(L, POS2))),
}


def _t(L, a):
    return engine.tensor(a.astype(np.float32)) if L is D else torch.tensor(a.astype(np.float32))


@needs_torch
@pytest.mark.parametrize("pair", KL)
def test_kl_divergence_matches_torch(pair):
    p, q = KL[pair]
    ours = D.kl_divergence(p(D), q(D))
    ref = torch.distributions.kl_divergence(p(torch.distributions), q(torch.distributions))
    assert tuple(ours.shape) == tuple(ref.shape)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_kl_of_transformed_distributions_needs_equal_transforms():
    p = D.LogNormal(engine.tensor(REAL), engine.tensor(POS))
    q = D.TransformedDistribution(D.Normal(engine.tensor(REAL), engine.tensor(POS)), D.SigmoidTransform())
    with pytest.raises(NotImplementedError, match="equal transforms"):
        D.kl_divergence(p, q)


@pytest.mark.parametrize("build, message", [
    (lambda: D.LogNormal(0.0, -1.0), "scale"),
    (lambda: D.HalfNormal(engine.tensor([1.0, -1.0])), "scale"),
    (lambda: D.HalfCauchy(0.0), "scale"),
    (lambda: D.Laplace(0.0, 0.0), "scale"),
    (lambda: D.StudentT(-2.0), "df"),
    (lambda: D.Exponential(engine.tensor([-1.0])), "rate"),
    (lambda: D.Chi2(engine.tensor([0.0])), "df"),
    (lambda: D.Weibull(1.0, -1.0), "concentration"),
    (lambda: D.Pareto(-1.0, 1.0), "scale"),
    (lambda: D.Kumaraswamy(1.0, -1.0), "concentration0"),
    (lambda: D.InverseGamma(-1.0, 1.0), "concentration"),
])
def test_bad_parameters_raise(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("d, value", [
    (lambda: D.LogNormal(0.0, 1.0), -1.0), (lambda: D.HalfNormal(1.0), -0.5), (lambda: D.Exponential(1.0), -1.0),
    (lambda: D.Pareto(2.0, 1.0), 1.0), (lambda: D.Kumaraswamy(2.0, 2.0), 1.5),
    (lambda: D.RelaxedBernoulli(engine.tensor(0.5), probs=0.3), 2.0),
])
def test_values_outside_the_support_raise(d, value):
    with pytest.raises(ValueError, match="support"):
        d().log_prob(engine.tensor(value))


def test_relaxed_needs_exactly_one_of_probs_and_logits():
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.RelaxedBernoulli(engine.tensor(0.5))
    with pytest.raises(TypeError, match="temperature"):
        D.RelaxedBernoulli("hot", probs=0.3)


@needs_torch
@pytest.mark.parametrize("name", [n for n in CASES if n != "logisticnormal"])
def test_expand_matches_torch(name):
    build, params, value = CASES[name]
    batch = (4, 2) if name.startswith("relaxedonehot") else (4, 2, 3)
    ours = build(*[engine.tensor(p.astype(np.float32)) for p in params]).expand(batch)
    ref = build(*[torch.tensor(p.astype(np.float32)) for p in params]).expand(batch)
    assert tuple(ours.batch_shape) == tuple(ref.batch_shape) and tuple(ours.event_shape) == tuple(ref.event_shape)
    np.testing.assert_allclose(ours.log_prob(engine.tensor(value.astype(np.float32))).numpy(),
                               ref.log_prob(torch.tensor(value.astype(np.float32))).numpy(), rtol=1e-4, atol=1e-5)
    assert tuple(ours.sample().shape) == tuple(ref.sample().shape)


def test_scalar_parameters_give_an_empty_batch_shape():
    for d in (D.Cauchy(0.0, 1.0), D.Laplace(0.0, 1.0), D.Gumbel(0.0, 1.0), D.Exponential(1.0), D.HalfNormal(1.0),
              D.LogNormal(0.0, 1.0), D.Weibull(1.0, 2.0), D.Pareto(1.0, 2.0), D.Chi2(3.0), D.StudentT(3.0)):
        assert d.batch_shape == () and d.sample((5,)).shape == (5,)


def test_cuda_heavy_tails_and_positive_run_on_the_gpu():
    cp = cuda_or_skip()
    loc = engine.tensor(REAL.astype(np.float32), device="cuda", requires_grad=True)
    scale = engine.tensor(POS.astype(np.float32), device="cuda", requires_grad=True)
    total = 0
    for d in (D.Laplace(loc, scale), D.Cauchy(loc, scale), D.Gumbel(loc, scale), D.LogNormal(loc, scale),
              D.StudentT(scale * 3, loc, scale), D.Weibull(scale, scale + 1), D.HalfNormal(scale)):
        x = d.rsample((3,))
        assert isinstance(x.array, cp.ndarray)
        total = total + d.log_prob(x.detach()).sum() + x.sum()
    total.backward()
    cpu = [D.Laplace(engine.tensor(REAL.astype(np.float32)), engine.tensor(POS.astype(np.float32)))]
    ref = cpu[0].log_prob(engine.tensor(VALUES.astype(np.float32))).numpy()
    got = D.Laplace(loc, scale).log_prob(engine.tensor(VALUES.astype(np.float32), device="cuda"))
    np.testing.assert_allclose(cp.asnumpy(got.detach().array), ref, rtol=1e-5)
    assert np.isfinite(cp.asnumpy(scale.grad.array)).all()
