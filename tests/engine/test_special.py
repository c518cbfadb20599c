"""Special functions (erfc, erfinv, lgamma, digamma, polygamma, xlogy and engine.special) against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, cuda_or_skip, finite_difference_check, needs_torch, torch, torch_check

# wide ranges with the awkward points: poles, zeros of lgamma (1, 2) and digamma (1.4616), tails
WIDE = np.concatenate([np.linspace(-30.5, 30.5, 4001), np.geomspace(1e-30, 1e30, 300), -np.geomspace(1e-30, 1e6, 300),
                       [0.0, -0.0, 1.0, 2.0, 1.4616321449683622, -1.0, -2.0, -100.0, np.inf, -np.inf, np.nan]])
UNIT = np.concatenate([np.linspace(-1, 1, 20001), 1 - np.geomspace(1e-16, 0.5, 200), -1 + np.geomspace(1e-16, 0.5, 200),
                       [1.0, -1.0, 1.5, -1.5, 0.0, np.nan]])
UNARY = {"lgamma": WIDE, "digamma": WIDE, "erfc": WIDE, "erfinv": UNIT}


def _assert_close_with_nonfinite(ours, theirs, rtol, atol):
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    inf = np.isinf(theirs)
    np.testing.assert_array_equal(ours[inf], theirs[inf])
    fin = np.isfinite(theirs)
    np.testing.assert_allclose(ours[fin], theirs[fin], rtol=rtol, atol=atol)


@needs_torch
@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_values_match_torch_over_wide_ranges(name, dtype):
    x = UNARY[name].astype(dtype)
    if name == "digamma":  # torch gives a finite value at the poles -1, -2, ... where we give NaN (as scipy)
        x = x[~((x < 0) & (x == np.floor(x)))]
    ours = getattr(engine, name)(engine.tensor(x)).numpy()
    theirs = getattr(torch, name)(torch.tensor(x)).numpy()
    assert ours.dtype == theirs.dtype
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == "float64" else dict(rtol=2e-6, atol=1e-6)
    if name == "digamma" and dtype == "float64":
        tol = dict(rtol=1e-12, atol=1e-12)  # near its root both lose digits to cancellation
    _assert_close_with_nonfinite(ours, theirs, **tol)


@needs_torch
@pytest.mark.parametrize("n", [1, 2, 3])
def test_polygamma_matches_torch(n):
    x = WIDE[(WIDE > -20) & (WIDE < 1e10) & ~((WIDE <= 0) & (np.floor(WIDE) == WIDE))]
    ours = engine.polygamma(n, engine.tensor(x)).numpy()
    theirs = torch.polygamma(n, torch.tensor(x)).numpy()
    _assert_close_with_nonfinite(ours, theirs, rtol=1e-8, atol=1e-12)  # torch's trigamma is good to ~1e-9
    assert engine.polygamma(1, engine.tensor([0.0])).item() == math.inf
    np.testing.assert_array_equal(engine.tensor([0.5, 2.0]).polygamma(2).numpy(),
                                  engine.polygamma(2, engine.tensor([0.5, 2.0])).numpy())


def test_known_values():
    assert engine.lgamma(engine.tensor([0.5], dtype=engine.float64)).item() == pytest.approx(0.5 * math.log(math.pi),
                                                                                                 rel=1e-15)
    euler = 0.5772156649015329
    assert engine.digamma(engine.tensor([1.0], dtype=engine.float64)).item() == pytest.approx(-euler, rel=1e-15)
    assert engine.polygamma(1, engine.tensor([1.0], dtype=engine.float64)).item() == pytest.approx(math.pi ** 2 / 6,
                                                                                                     rel=1e-15)
    x = engine.tensor([-0.9, 0.3, 0.999999], dtype=engine.float64)
    np.testing.assert_allclose(engine.erf(engine.erfinv(x)).numpy(), x.numpy(), rtol=1e-15)
    assert engine.lgamma(engine.tensor([171.5], dtype=engine.float64)).item() == pytest.approx(math.lgamma(171.5))


@pytest.mark.parametrize("name", ["lgamma", "digamma", "erfc", "erfinv"])
def test_gradients_match_finite_differences_and_torch(name):
    x = np.array([[0.3, 1.7, 4.2], [-0.45, 2.5, 9.0]]) if name != "erfinv" else np.array([[-0.9, 0.1, 0.5]])
    finite_difference_check(lambda t: getattr(t, name)(), [x])
    if torch is not None:
        torch_check(lambda t: getattr(t, name)(), [x])


def test_polygamma_and_xlogy_gradients():
    x = np.array([0.3, 1.7, 4.2, -0.45])
    for n in (1, 2):
        finite_difference_check(lambda t, n=n: engine.polygamma(n, t), [x])
        if torch is not None:
            torch_check(lambda t, n=n: (engine if isinstance(t, engine.Tensor) else torch).polygamma(n, t), [x])
    check_grads(lambda a, b: a.xlogy(b.exp()), [(2, 3), (2, 3)])
    if torch is not None:
        torch_check(lambda a, b: (engine if isinstance(a, engine.Tensor) else torch).special.xlog1py(a, b.exp()),
                    [np.ones((2, 3)), np.ones((2, 3))])


@needs_torch
def test_xlogy_is_zero_where_x_is_zero_and_broadcasts_like_torch():
    x = np.array([[0.0], [1.0], [2.0]])
    y = np.array([0.0, 0.5, np.nan, np.inf])
    for fn in ("xlogy",):
        ours = getattr(engine, fn)(engine.tensor(x, requires_grad=True), engine.tensor(y, requires_grad=True))
        theirs = getattr(torch, fn)(torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True))
        np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    assert engine.xlogy(2.0, engine.tensor([3.0])).item() == pytest.approx(2 * math.log(3))
    assert engine.xlogy(engine.tensor([2]), 3).dtype == engine.float32  # integers give floats, as in torch
    a, b = engine.tensor([0.0, 2.0], requires_grad=True), engine.tensor([0.0, 2.0], requires_grad=True)
    engine.xlogy(a, b).sum().backward()
    ta, tb = torch.tensor([0.0, 2.0], requires_grad=True), torch.tensor([0.0, 2.0], requires_grad=True)
    torch.xlogy(ta, tb).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())


@needs_torch
@pytest.mark.parametrize("name", ["erf", "erfc", "erfinv", "gammaln", "digamma", "psi", "expit", "logit", "xlogy",
                                  "xlog1py", "log_softmax", "softmax", "logsumexp", "ndtr", "ndtri", "multigammaln",
                                  "exp2", "expm1", "log1p"])
def test_engine_special_namespace_matches_torch_special(name):
    from engine.special import gammaln  # importable as a module, as torch.special

    assert gammaln is engine.lgamma
    x = np.random.default_rng(0).uniform(0.05, 0.95, (2, 3))
    args = {"log_softmax": (1,), "softmax": (1,), "logsumexp": (1,), "multigammaln": (2,)}.get(name, ())

    def fn(t):
        lib = engine.special if isinstance(t, engine.Tensor) else torch.special
        if name in ("xlogy", "xlog1py"):
            return getattr(lib, name)(t, t + 1)
        return getattr(lib, name)(t + 1 if name == "multigammaln" else t, *args)

    torch_check(fn, [x])


@needs_torch
def test_tensor_methods_and_inplace_forms_match_torch():
    x = np.array([0.2, 0.4, 0.9], dtype=np.float32)
    for name in ("erfc", "erfinv", "lgamma", "digamma", "logit"):
        ours, theirs = engine.tensor(x), torch.tensor(x)
        getattr(ours, name + "_")()
        getattr(theirs, name + "_")()
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    np.testing.assert_allclose(engine.tensor(x).logit(eps=0.3).numpy(), torch.tensor(x).logit(eps=0.3).numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(engine.mvlgamma(engine.tensor(x + 2), 3).numpy(),
                               torch.mvlgamma(torch.tensor(x + 2), 3).numpy(), rtol=1e-6)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="polygamma: n must be a non-negative integer, got -1"):
        engine.polygamma(-1, engine.ones(2))
    with pytest.raises(ValueError, match="mvlgamma: p must be a positive integer"):
        engine.mvlgamma(engine.ones(2), 0)
    with pytest.raises(engine.ShapeError, match="xlogy"):
        engine.xlogy(engine.ones(2), engine.ones(3))


def test_integer_inputs_give_floats():
    for name in ("lgamma", "digamma", "erfc", "erfinv"):
        assert getattr(engine, name)(engine.tensor([1, 2])).dtype == engine.float32


@pytest.mark.gpu
def test_gpu_special_functions_match_cpu():
    cuda_or_skip()
    x = np.concatenate([WIDE[::7], UNIT[::50]])
    for name in ("lgamma", "digamma", "erfc", "erfinv"):
        cpu = getattr(engine, name)(engine.tensor(x)).numpy()
        gpu = getattr(engine, name)(engine.tensor(x, device="cuda")).cpu().numpy()
        np.testing.assert_allclose(gpu, cpu, rtol=1e-12, atol=1e-13, equal_nan=True)
    for device in ("cpu", "cuda"):
        t = engine.tensor([0.3, 1.7, 4.2], dtype=engine.float32, device=device, requires_grad=True)
        (engine.lgamma(t) + engine.digamma(t) + engine.polygamma(1, t) + engine.xlogy(t, t)
         + engine.erfinv(t / 5) + engine.erfc(t)).sum().backward()
        if device == "cpu":
            expected = t.grad.numpy()
        else:
            np.testing.assert_allclose(t.grad.cpu().numpy(), expected, rtol=1e-5)


@needs_torch
@pytest.mark.parametrize("name", ["xlogy", "xlog1py"])
def test_the_gradient_in_x_at_x_zero_is_log_y_where_it_is_defined_as_torch_gives_it(name):
    # d/dx x log(y) = log(y) at x = 0 too; only where log(y) is -inf or undefined is it taken as 0
    xs = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    ys = [2.0, 0.0, 0.5, float("nan"), -1.0, 0.0, 3.0, -2.0]
    grads = []
    for lib in (engine, torch):
        x = lib.tensor(xs, dtype=lib.float64, requires_grad=True)
        fn = lib.xlogy if name == "xlogy" else lib.special.xlog1py
        with np.errstate(all="ignore"):
            fn(x, lib.tensor(ys, dtype=lib.float64)).sum().backward()
        grads.append(x.grad.detach().numpy())
    np.testing.assert_allclose(*grads, rtol=1e-12)
