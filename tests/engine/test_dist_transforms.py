"""engine.distributions.transforms, biject_to / transform_to and TransformedDistribution against
torch.distributions: maps, inverses, log |det J|, their gradients (and second derivatives), caching, shapes, and a
SAC policy's tanh-squashed Normal."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.distributions as D
import engine.distributions.transforms as T
from engine.distributions.constraint_registry import biject_to, transform_to
from tests.engine.oracle import cuda_or_skip, finite_difference_check, needs_torch, torch, torch_check

RNG = np.random.default_rng(21)
X = RNG.standard_normal((3, 4))
SQUARE = RNG.standard_normal((2, 3, 3))


def tlib(t):
    return T if isinstance(t, engine.Tensor) else torch.distributions.transforms


# name -> (transform built from the library M = engine's or torch's transforms module, input array)
CASES = {
    "exp": (lambda M: M.ExpTransform(), X),
    "sigmoid": (lambda M: M.SigmoidTransform(), X),
    "softplus": (lambda M: M.SoftplusTransform(), X * 5),
    "tanh": (lambda M: M.TanhTransform(), X),
    "abs": (lambda M: M.AbsTransform(), X),
    "power": (lambda M: M.PowerTransform(2.5), np.abs(X) + 0.1),
    "affine": (lambda M: M.AffineTransform(1.5, -2.0), X),
    "affine_event": (lambda M: M.AffineTransform(1.5, -2.0, event_dim=1), X),
    "compose": (lambda M: M.ComposeTransform([M.AffineTransform(0.0, 2.0), M.TanhTransform()]), X),
    "inverse_exp": (lambda M: M.ExpTransform().inv, np.abs(X) + 0.1),
    "softmax": (lambda M: M.SoftmaxTransform(), X),
    "stick_breaking": (lambda M: M.StickBreakingTransform(), X),
    "lower_cholesky": (lambda M: M.LowerCholeskyTransform(), SQUARE),
    "positive_definite": (lambda M: M.PositiveDefiniteTransform(), SQUARE),
    "corr_cholesky": (lambda M: M.CorrCholeskyTransform(), RNG.standard_normal((2, 6))),
    "independent": (lambda M: M.IndependentTransform(M.ExpTransform(), 1), X),
    "reshape": (lambda M: M.ReshapeTransform((4,), (2, 2)), X),
    "cat": (lambda M: M.CatTransform([M.ExpTransform(), M.identity_transform], dim=1, lengths=[1, 3]), X),
    "stack": (lambda M: M.StackTransform([M.ExpTransform(), M.SigmoidTransform(), M.identity_transform,
                                          M.TanhTransform()], dim=1), X),
    "identity": (lambda M: M.identity_transform, X),
}
NO_LOG_DET = {"abs", "softmax", "lower_cholesky", "positive_definite"}  # torch does not give one either


@needs_torch
@pytest.mark.parametrize("name", CASES)
def test_forward_and_gradient_match_torch(name):
    build, x = CASES[name]
    torch_check(lambda a: build(tlib(a))(a), [x])


@needs_torch
@pytest.mark.parametrize("name", CASES)
def test_inverse_matches_torch(name):
    build, x = CASES[name]
    with torch.no_grad():
        y = build(torch.distributions.transforms)(torch.tensor(x)).numpy()
    torch_check(lambda b: build(tlib(b)).inv(b), [y])


@needs_torch
@pytest.mark.parametrize("name", [n for n in CASES if n not in NO_LOG_DET])
def test_log_abs_det_jacobian_and_its_gradient_match_torch(name):
    build, x = CASES[name]

    def fn(a):
        t = build(tlib(a))
        ladj = t.log_abs_det_jacobian(a, t(a))
        return ladj + 0 * a.sum()  # keeps a constant log-det (affine, reshape) in the graph, as in torch

    torch_check(fn, [x])


@pytest.mark.parametrize("name", [n for n in CASES if n not in NO_LOG_DET])
def test_log_abs_det_jacobian_gradient_matches_finite_differences(name):
    build, x = CASES[name]

    def fn(a):
        t = build(T)
        return t.log_abs_det_jacobian(a, t(a)) + 0 * a.sum()

    finite_difference_check(fn, [x])


@needs_torch
@pytest.mark.parametrize("name", CASES)
def test_constraints_shapes_and_flags_match_torch(name):
    build, x = CASES[name]
    ours, ref = build(T), build(torch.distributions.transforms)
    assert ours.domain.event_dim == ref.domain.event_dim and ours.codomain.event_dim == ref.codomain.event_dim
    assert ours.bijective == ref.bijective
    assert tuple(ours.forward_shape(x.shape)) == tuple(ref.forward_shape(torch.Size(x.shape)))
    y_shape = tuple(ref.forward_shape(torch.Size(x.shape)))
    assert tuple(ours.inverse_shape(y_shape)) == tuple(ref.inverse_shape(torch.Size(y_shape)))
    y = ours(engine.tensor(x))
    assert bool(ours.codomain.check(y).all().item())
    if name not in ("abs", "softmax", "lower_cholesky", "positive_definite", "corr_cholesky", "reshape", "cat",
                    "stack", "stick_breaking", "identity"):
        sign = ours.sign
        assert (sign if isinstance(sign, int) else sign.numpy()) == pytest.approx(
            ref.sign if isinstance(ref.sign, int) else ref.sign.numpy())


def test_tanh_log_det_stays_finite_where_tanh_saturates():
    x = engine.tensor([-60.0, -20.0, 0.0, 20.0, 60.0], requires_grad=True)
    t = T.TanhTransform()
    ladj = t.log_abs_det_jacobian(x, t(x))
    assert np.isfinite(ladj.detach().numpy()).all()
    ladj.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -2 * np.tanh(x.detach().numpy()), atol=1e-6)


def test_cache_returns_the_input_itself():
    t = T.TanhTransform(cache_size=1)
    x = engine.tensor([30.0, -0.5])
    y = t(x)
    assert t.inv(y) is x  # atanh(1.0) would be inf: the cache gives back x exactly
    assert t(x) is y
    with np.errstate(divide="ignore"):
        assert not np.isfinite(T.TanhTransform().inv(y).numpy()[0])
    assert t.inv.inv is t and T.ExpTransform().with_cache(1)._cache_size == 1
    composed = T.ComposeTransform([T.AffineTransform(0.0, 2.0), T.TanhTransform()], cache_size=1)
    assert composed.inv(composed(x)) is x
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        T.ExpTransform(cache_size=2)


def test_equality_follows_torch():
    assert T.ExpTransform() == T.ExpTransform() and T.ExpTransform() != T.SigmoidTransform()
    assert T.AffineTransform(1.0, 2.0) == T.AffineTransform(1.0, 2.0) != T.AffineTransform(1.0, 3.0)
    assert T.ExpTransform().inv == T.ExpTransform().inv
    assert T.ComposeTransform([T.ExpTransform()]) == T.ComposeTransform([T.ExpTransform()])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="different numbers of elements"):
        T.ReshapeTransform((4,), (3,))
    with pytest.raises(ValueError, match="lengths"):
        T.CatTransform([T.ExpTransform()], lengths=[1, 2])
    with pytest.raises(TypeError, match="Transform instances"):
        T.StackTransform([T.ExpTransform(), "exp"])
    with pytest.raises(ValueError, match="must equal length"):
        T.CatTransform([T.ExpTransform(), T.ExpTransform()], dim=1, lengths=[1, 1])(engine.tensor(X))
    with pytest.raises(IndexError, match="out of range"):
        T.StackTransform([T.ExpTransform()], dim=3)(engine.tensor(X))
    with pytest.raises(ValueError, match="not a flattened lower-diagonal"):
        T.CorrCholeskyTransform().forward_shape((2, 4))
    with pytest.raises(NotImplementedError, match="AbsTransform"):
        T.AbsTransform().log_abs_det_jacobian(engine.tensor(X), engine.tensor(X))
    with pytest.raises(ValueError, match="transforms must be a Transform"):
        D.TransformedDistribution(D.Normal(0.0, 1.0), ["exp"])


# constraint -> the same constraint in torch (a function of torch.distributions.constraints)
CONSTRAINTS = {
    "real": (D.constraints.real, lambda C: C.real),
    "positive": (D.constraints.positive, lambda C: C.positive),
    "greater_than": (D.constraints.greater_than(1.5), lambda C: C.greater_than(1.5)),
    "less_than": (D.constraints.less_than(-1.0), lambda C: C.less_than(-1.0)),
    "unit_interval": (D.constraints.unit_interval, lambda C: C.unit_interval),
    "interval": (D.constraints.interval(-2.0, 3.0), lambda C: C.interval(-2.0, 3.0)),
    "simplex": (D.constraints.simplex, lambda C: C.simplex),
    "real_vector": (D.constraints.real_vector, lambda C: C.real_vector),
    "lower_cholesky": (D.constraints.lower_cholesky, lambda C: C.lower_cholesky),
    "positive_definite": (D.constraints.positive_definite, lambda C: C.positive_definite),
    "corr_cholesky": (D.constraints.corr_cholesky, lambda C: C.corr_cholesky),
    "cat": (D.constraints.cat([D.constraints.real, D.constraints.positive], -1, [2, 1]),
            lambda C: C.cat([C.real, C.positive], -1, [2, 1])),
    "stack": (D.constraints.stack([D.constraints.real, D.constraints.positive, D.constraints.unit_interval], -1),
              lambda C: C.stack([C.real, C.positive, C.unit_interval], -1)),
}


@needs_torch
@pytest.mark.parametrize("name", CONSTRAINTS)
@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
def test_constraint_registry_matches_torch(name, registry):
    ours_c, theirs_c = CONSTRAINTS[name]
    ours_r = {"biject_to": biject_to, "transform_to": transform_to}[registry]
    theirs_r = getattr(torch.distributions, registry)
    try:
        ref_t = theirs_r(theirs_c(torch.distributions.constraints))
    except NotImplementedError:
        with pytest.raises(NotImplementedError, match="Cannot transform"):
            ours_r(ours_c)
        return
    x = RNG.standard_normal((2, 3, 3) if "cholesky" in name or "definite" in name else (2, 6) if "corr" in name
                            else (2, 3))
    x = RNG.standard_normal((2, 6)) if name == "corr_cholesky" else x
    t = ours_r(ours_c)
    assert type(t).__name__ == type(ref_t).__name__
    y = t(engine.tensor(x))
    np.testing.assert_allclose(y.numpy(), ref_t(torch.tensor(x)).numpy(), rtol=1e-6, atol=1e-9)
    assert bool(ours_c.check(y).all().item())


def test_registry_refuses_unknown_constraints():
    with pytest.raises(NotImplementedError, match="Cannot transform _IntegerInterval constraints"):
        biject_to(D.constraints.integer_interval(0, 3))
    with pytest.raises(TypeError, match="Constraint subclass or instance"):
        biject_to.register(int, lambda c: T.ExpTransform())


@needs_torch
def test_sac_tanh_squashed_policy_matches_torch():
    """SAC's policy: a = tanh(mu + std * eps); log pi(a) and its gradients in mu and log_std equal torch's for the
    same eps (the cached tanh hands log_prob the pre-squash sample)."""
    rng = np.random.default_rng(4)
    mu, log_std, eps = rng.standard_normal((8, 2)), rng.standard_normal((8, 2)) * 0.5, rng.standard_normal((8, 2))
    mu[0, 0], eps[0, 0] = 6.0, 3.0  # a saturated action: atanh(a) would overflow without the cache

    def policy(L, m, s):
        dist = L.TransformedDistribution(L.Normal(m, s.exp()), [L.transforms.TanhTransform(cache_size=1)])
        u = m + s.exp() * (engine.tensor(eps) if L is D else torch.tensor(eps))
        a = dist.transforms[0](u)
        return a, dist.log_prob(a).sum(-1)

    ours = [engine.tensor(mu, requires_grad=True), engine.tensor(log_std, requires_grad=True)]
    theirs = [torch.tensor(mu, requires_grad=True), torch.tensor(log_std, requires_grad=True)]
    (a, logp), (a_t, logp_t) = policy(D, *ours), policy(torch.distributions, *theirs)
    np.testing.assert_allclose(logp.detach().numpy(), logp_t.detach().numpy(), rtol=1e-10)
    assert np.isfinite(logp.detach().numpy()).all()
    loss, loss_t = (logp - 2 * a.sum(-1)).mean(), (logp_t - 2 * a_t.sum(-1)).mean()
    loss.backward()
    loss_t.backward()
    for x, y in zip(ours, theirs):
        np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-8, atol=1e-12)


@needs_torch
def test_transformed_distribution_cdf_icdf_and_support_match_torch():
    def build(L, loc, scale):
        tr = L.transforms if L is D else torch.distributions.transforms
        return L.TransformedDistribution(L.Normal(loc, scale), [tr.AffineTransform(1.0, -2.0), tr.ExpTransform()])

    loc, scale = X[0], np.abs(X[1]) + 0.5
    value = np.abs(X[2]) + 0.2
    for what in ("cdf", "icdf", "log_prob"):
        v = np.clip(value / 4, 0.05, 0.95) if what == "icdf" else value
        torch_check(lambda m, s, L=None, w=what, v=v: getattr(build(D if isinstance(m, engine.Tensor)
                                                                    else torch.distributions, m, s), w)(
            engine.tensor(v.astype(np.float32)) if isinstance(m, engine.Tensor) else torch.tensor(v.astype(
                np.float32))), [loc, scale])
    d = build(D, engine.tensor(loc), engine.tensor(scale))
    assert repr(d.support) == "GreaterThan(lower_bound=0.0)" and d.has_rsample
    vec = D.TransformedDistribution(D.Normal(engine.zeros(2, 3), engine.ones(2, 3)), T.StickBreakingTransform())
    assert vec.batch_shape == (2,) and vec.event_shape == (4,) and vec.support.event_dim == 1
    assert vec.expand((5, 2)).sample().shape == (5, 2, 4)


@needs_torch
def test_second_derivatives_match_torch():
    """create_graph=True through a transformed log_prob: the Hessian-vector product equals torch's."""
    rng = np.random.default_rng(9)
    loc, scale, v = rng.standard_normal(3), rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    value = rng.uniform(0.2, 0.9, 3)

    def hvp(L, tr):
        m, s = L.tensor(loc, requires_grad=True), L.tensor(scale, requires_grad=True)
        d = L.distributions.TransformedDistribution(L.distributions.Normal(m, s),
                                                    [tr.SigmoidTransform(), tr.PowerTransform(1.5)])
        (gm, gs) = L.autograd.grad(d.log_prob(L.tensor(value)).sum(), [m, s], create_graph=True)
        return L.autograd.grad((gm * L.tensor(v)).sum() + (gs * L.tensor(v)).sum(), [m, s])

    for a, b in zip(hvp(engine, T), hvp(torch, torch.distributions.transforms)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


def test_cuda_transforms_run_on_the_gpu():
    cp = cuda_or_skip()
    x = engine.tensor(X.astype(np.float32), device="cuda", requires_grad=True)
    total = 0
    for name, (build, _) in CASES.items():
        if name in ("lower_cholesky", "positive_definite", "corr_cholesky", "power", "inverse_exp"):
            continue
        t = build(T)
        y = t(x)
        assert isinstance(y.array, cp.ndarray)
        total = total + y.sum()
        if name not in NO_LOG_DET:
            total = total + t.log_abs_det_jacobian(x, y).sum()
    total.backward()
    assert np.isfinite(cp.asnumpy(x.grad.array)).all()
