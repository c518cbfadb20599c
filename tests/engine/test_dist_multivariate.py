"""LowRankMultivariateNormal and MixtureSameFamily against torch.distributions, including a mixture density
network's loss and its first and second derivatives."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.distributions as D
from tests.engine.oracle import cuda_or_skip, finite_difference_check, needs_torch, torch, torch_check

RNG = np.random.default_rng(8)
LOC = RNG.standard_normal((2, 4))
FACTOR = RNG.standard_normal((2, 4, 2)) * 0.7
DIAG = RNG.uniform(0.3, 1.5, (2, 4))
VALUE = RNG.standard_normal((3, 2, 4))
TRIL = np.tril(RNG.standard_normal((4, 4)) * 0.3) + np.diag([1.0, 1.2, 0.8, 1.1])
# a mixture density network's head: batch 5, k = 3 components over 2-d targets
MIX_LOGITS = RNG.standard_normal((5, 3))
MIX_MU = RNG.standard_normal((5, 3, 2))
MIX_LOG_SIGMA = RNG.standard_normal((5, 3, 2)) * 0.3
TARGET = RNG.standard_normal((5, 2))


def lib(t):
    return D if isinstance(t, engine.Tensor) else torch.distributions


def like(t, array):
    array = np.asarray(array, dtype=np.float32)
    return engine.tensor(array) if isinstance(t, engine.Tensor) else torch.tensor(array)


def lowrank(m, W, d):
    return lib(m).LowRankMultivariateNormal(m, W, d)


@needs_torch
@pytest.mark.parametrize("what", ["log_prob", "entropy", "mean", "mode", "variance", "stddev", "scale_tril",
                                  "covariance_matrix", "precision_matrix"])
def test_lowrank_values_and_gradients_match_torch(what):
    def fn(m, W, d):
        dist = lowrank(m, W, d)
        if what == "log_prob":
            return dist.log_prob(like(m, VALUE))
        return dist.entropy() if what == "entropy" else getattr(dist, what)

    torch_check(fn, [LOC, FACTOR, DIAG])


def test_lowrank_log_prob_gradients_match_finite_differences_and_the_full_covariance():
    finite_difference_check(lambda m, W, d: lowrank(m, W, d).log_prob(engine.tensor(VALUE)), [LOC, FACTOR, DIAG])
    m, W, d = (engine.tensor(a) for a in (LOC, FACTOR, DIAG))
    full = D.MultivariateNormal(m, covariance_matrix=W @ W.mT + engine.diag_embed(d))
    ours = lowrank(m, W, d)
    np.testing.assert_allclose(ours.log_prob(engine.tensor(VALUE)).numpy(), full.log_prob(engine.tensor(VALUE)).numpy(),
                               rtol=1e-10)
    np.testing.assert_allclose(ours.entropy().numpy(), full.entropy().numpy(), rtol=1e-10)


def test_lowrank_broadcasts_batch_shapes_and_expands():
    m = engine.zeros(4)
    d = lowrank(m, engine.tensor(FACTOR), engine.ones(4))
    assert tuple(d.batch_shape) == (2,) and tuple(d.event_shape) == (4,)
    assert tuple(d.loc.shape) == (2, 4) and tuple(d.cov_factor.shape) == (2, 4, 2)
    e = d.expand((3, 2))
    assert tuple(e.batch_shape) == (3, 2) and tuple(e.sample((5,)).shape) == (5, 3, 2, 4)
    assert tuple(e.log_prob(engine.zeros(3, 2, 4)).shape) == (3, 2)
    np.testing.assert_allclose(e.log_prob(engine.zeros(3, 2, 4)).numpy()[1], d.log_prob(engine.zeros(2, 4)).numpy())


def test_lowrank_sample_statistics_match_the_covariance():
    f = engine.float32
    d = lowrank(engine.tensor(LOC, dtype=f), engine.tensor(FACTOR, dtype=f), engine.tensor(DIAG, dtype=f))
    engine.manual_seed(0)
    x = d.sample((100_000,)).numpy().astype(np.float64)
    np.testing.assert_allclose(x.mean(0), LOC, atol=0.02)
    cov = np.einsum("nbi,nbj->bij", x - x.mean(0), x - x.mean(0)) / len(x)
    np.testing.assert_allclose(cov, FACTOR @ FACTOR.transpose(0, 2, 1) + DIAG[..., None] * np.eye(4), atol=0.04)


@needs_torch
def test_lowrank_rsample_gradients_match_torch(monkeypatch):
    arrays = [a.astype(np.float32) for a in (LOC, FACTOR, DIAG)]
    ours = [engine.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    engine.manual_seed(4)
    eps_w, eps_d = engine.randn((6, 2, 2)), engine.randn((6, 2, 4))
    engine.manual_seed(4)
    x = lowrank(*ours).rsample((6,))
    noise = iter([torch.tensor(eps_w.numpy()), torch.tensor(eps_d.numpy())])
    monkeypatch.setattr(torch.distributions.lowrank_multivariate_normal, "_standard_normal",
                        lambda *a, **k: next(noise))
    y = lowrank(*theirs).rsample((6,))
    np.testing.assert_allclose(x.detach().numpy(), y.detach().numpy(), rtol=1e-4, atol=1e-5)
    (x * x).sum().backward()
    (y * y).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-3, atol=1e-4)


@needs_torch
@pytest.mark.parametrize("pair", ["lowrank_lowrank", "mvn_lowrank", "lowrank_mvn"])
def test_lowrank_kl_divergences_match_torch(pair):
    def fn(m, W, d, L):
        L_ = L.tril() + like(L, np.eye(4) * 0.5)
        p = lowrank(m, W, d)
        q = lowrank(m.flip(0) * 0.5, W * 0.8, d.flip(0) + 0.2)
        full = lib(m).MultivariateNormal(m[0], scale_tril=L_)
        if pair == "lowrank_lowrank":
            return lib(m).kl_divergence(p, q)
        return lib(m).kl_divergence(full, q) if pair == "mvn_lowrank" else lib(m).kl_divergence(p, full)

    torch_check(fn, [LOC, FACTOR, DIAG, TRIL])


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: D.LowRankMultivariateNormal(engine.tensor(1.0), engine.ones(1, 1), engine.ones(1)), ValueError,
     "loc must be at least one-dimensional"),
    (lambda: D.LowRankMultivariateNormal(engine.zeros(4), engine.ones(4), engine.ones(4)), ValueError,
     "cov_factor must be at least two-dimensional"),
    (lambda: D.LowRankMultivariateNormal(engine.zeros(4), engine.ones(3, 2), engine.ones(4)), ValueError,
     "cov_factor must be a batch of matrices with shape 4 x m"),
    (lambda: D.LowRankMultivariateNormal(engine.zeros(4), engine.ones(4, 2), engine.ones(3)), ValueError,
     "cov_diag must be a batch of vectors"),
    (lambda: D.LowRankMultivariateNormal(engine.zeros(3, 4), engine.ones(2, 4, 2), engine.ones(4)), ValueError,
     "Incompatible batch shapes"),
    (lambda: D.LowRankMultivariateNormal(engine.zeros(4), engine.ones(4, 2), -engine.ones(4)), ValueError,
     "Expected parameter cov_diag"),
    (lambda: D.LowRankMultivariateNormal(engine.zeros(4), engine.ones(4, 2), engine.ones(4)).log_prob(
        engine.zeros(3)), ValueError, "The right-most size of value must match event_shape"),
    (lambda: D.MixtureSameFamily(D.Normal(0.0, 1.0), D.Normal(engine.zeros(3), 1.0)), ValueError,
     "needs to be an  instance of engine.distributions.Categorical"),
    (lambda: D.MixtureSameFamily(D.Categorical(engine.ones(3)), "normal"), ValueError,
     "Component distribution needs to be an instance"),
    (lambda: D.MixtureSameFamily(D.Categorical(engine.ones(3)), D.Normal(engine.zeros(4), 1.0)), ValueError,
     r"`mixture_distribution component` \(3\) does not equal `component_distribution.batch_shape\[-1\]` \(4\)"),
    (lambda: D.MixtureSameFamily(D.Categorical(engine.ones(2, 3)), D.Normal(engine.zeros(5, 3), 1.0)), ValueError,
     "is not compatible with `component_distribution.batch_shape`"),
    (lambda: D.MixtureSameFamily(D.Categorical(engine.ones(3)), D.Gamma(engine.ones(3), 1.0)).log_prob(
        engine.tensor([-1.0])), ValueError, "to be within the support"),
])
def test_bad_input_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def mdn(lib_, logits, mu, log_sigma):
    """A mixture density network's output distribution: k Independent diagonal Normals over 2-d targets."""
    components = lib_.Independent(lib_.Normal(mu, log_sigma.exp()), 1)
    return lib_.MixtureSameFamily(lib_.Categorical(logits=logits), components)


@needs_torch
def test_mixture_density_network_loss_and_gradient_match_torch():
    torch_check(lambda x, m, s, y: -mdn(lib(x), x, m, s).log_prob(y).mean().reshape(1),
                [MIX_LOGITS, MIX_MU, MIX_LOG_SIGMA, TARGET], wrt=[0, 1, 2])
    finite_difference_check(lambda x, m, s, y: mdn(D, x, m, s).log_prob(y), [MIX_LOGITS, MIX_MU, MIX_LOG_SIGMA,
                                                                              TARGET], wrt=[0, 1, 2])


@needs_torch
def test_mixture_density_network_second_order_gradients_match_torch():
    arrays = [a.astype(np.float32) for a in (MIX_LOGITS, MIX_MU, MIX_LOG_SIGMA)]
    results = []
    for lib_, make, autograd in ((D, engine.tensor, engine.autograd), (torch.distributions, torch.tensor,
                                                                       torch.autograd)):
        ts = [make(a, requires_grad=True) for a in arrays]
        loss = -mdn(lib_, *ts).log_prob(make(TARGET.astype(np.float32))).mean()
        grads = autograd.grad(loss, ts, create_graph=True)
        v = [make(np.random.default_rng(i).standard_normal(a.shape).astype(np.float32)) for i, a in enumerate(arrays)]
        hvp = autograd.grad(sum((g * w).sum() for g, w in zip(grads, v)), ts)
        results.append([t.detach().numpy() for t in (*grads, *hvp)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@needs_torch
@pytest.mark.parametrize("what", ["mean", "variance", "cdf", "log_prob"])
def test_mixture_statistics_match_torch(what):
    """Scalar-event components (Normal, with a cdf) and vector-event ones (Independent Normal, LowRank MVN)."""
    def fn(x, m, s):
        L = lib(x)
        dists = [L.MixtureSameFamily(L.Categorical(logits=x), L.Normal(m[..., 0], s[..., 0].exp()))]
        if what != "cdf":
            dists.append(mdn(L, x, m, s))
            dists.append(L.MixtureSameFamily(L.Categorical(logits=x[0]), L.LowRankMultivariateNormal(
                m, s.exp().unsqueeze(-1), s.exp())))
        outs = []
        for d in dists:
            value = like(x, TARGET[..., 0] if not d.event_shape else TARGET)
            outs.append(getattr(d, what)(value) if what in ("cdf", "log_prob") else getattr(d, what))
        return (engine.cat if L is D else torch.cat)([o.reshape(-1) for o in outs])

    torch_check(fn, [MIX_LOGITS, MIX_MU, MIX_LOG_SIGMA])


def test_mixture_sample_statistics_and_shapes():
    f = engine.float32
    d = mdn(D, engine.tensor(MIX_LOGITS, dtype=f), engine.tensor(MIX_MU, dtype=f),
            engine.tensor(MIX_LOG_SIGMA, dtype=f))
    assert tuple(d.batch_shape) == (5,) and tuple(d.event_shape) == (2,)
    engine.manual_seed(0)
    x = d.sample((100_000,))
    assert tuple(x.shape) == (100_000, 5, 2) and not x.requires_grad
    x = x.numpy().astype(np.float64)
    np.testing.assert_allclose(x.mean(0), d.mean.numpy(), atol=0.02)
    np.testing.assert_allclose(x.var(0), d.variance.numpy(), rtol=0.03, atol=0.01)
    shared = D.MixtureSameFamily(D.Categorical(engine.tensor([0.2, 0.8])), D.Normal(engine.tensor(
        [[-3.0, 3.0]] * 4), 0.1))  # one mixing distribution for a batch of 4
    s = shared.sample((20_000,)).numpy()
    assert s.shape == (20_000, 4) and abs((s > 0).mean() - 0.8) < 0.02
    e = d.expand((2, 5))
    assert tuple(e.batch_shape) == (2, 5) and tuple(e.sample((3,)).shape) == (3, 2, 5, 2)
    np.testing.assert_allclose(e.log_prob(engine.tensor(TARGET, dtype=f)).numpy()[1],
                               d.log_prob(engine.tensor(TARGET, dtype=f)).numpy(), rtol=1e-6)


def test_mixture_density_network_trains():
    """Fitting a two-cluster target with a 2-component MDN head brings the loss below a single Gaussian's."""
    engine.manual_seed(0)
    y = engine.cat([engine.randn(200, 1) * 0.1 - 2, engine.randn(200, 1) * 0.1 + 2])
    logits = engine.zeros(2, requires_grad=True)
    mu = engine.tensor([[-0.5], [0.5]], requires_grad=True)
    log_sigma = engine.zeros(2, 1, requires_grad=True)
    opt = engine.optim.Adam([logits, mu, log_sigma], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = -mdn(D, logits, mu, log_sigma).log_prob(y).mean()
        loss.backward()
        opt.step()
    single = -D.Normal(y.mean(), y.std()).log_prob(y).mean().item()
    assert loss.item() < single - 1.0
    np.testing.assert_allclose(np.sort(mu.detach().numpy().ravel()), [-2, 2], atol=0.05)


@pytest.mark.gpu
def test_gpu_lowrank_and_mixture_match_cpu():
    cuda_or_skip()
    results = {}
    for device in ("cpu", "cuda"):
        ts = [engine.tensor(a, dtype=engine.float32, device=device, requires_grad=True)
              for a in (LOC, FACTOR, DIAG, MIX_LOGITS, MIX_MU, MIX_LOG_SIGMA)]
        lr = lowrank(*ts[:3])
        total = (lr.log_prob(engine.tensor(VALUE, dtype=engine.float32, device=device)).sum() + lr.entropy().sum()
                 - mdn(D, *ts[3:]).log_prob(engine.tensor(TARGET, dtype=engine.float32, device=device)).sum())
        total.backward()
        for d in (lr, mdn(D, *ts[3:])):
            s = d.sample((1000,))
            assert s.device == engine.device(device) and np.isfinite(s.cpu().numpy()).all()
        results[device] = (total.item(), *(t.grad.cpu().numpy() for t in ts))
    for a, b in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
