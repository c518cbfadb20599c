"""solve_triangular(left=False, unitriangular), the modified Bessel functions, the incomplete gamma and beta
functions (Gamma.cdf, Beta.cdf) and diagonal as a view: values and gradients against PyTorch, exact
references and finite differences."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest

import engine
from engine.distributions import Beta, Gamma
from tests.engine.oracle import check_grads, cuda_or_skip, finite_difference_check, needs_torch, torch

RNG = np.random.default_rng(7)


# ---- solve_triangular ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("unit", [True, False])
def test_solve_triangular_left_and_unitriangular_match_torch_and_finite_differences(left, upper, unit):
    a = RNG.standard_normal((2, 4, 4)) + 4 * np.eye(4)
    b = RNG.standard_normal((2, 4, 3) if left else (2, 3, 4))

    def fn(A, B):
        return engine.linalg.solve_triangular(A, B, upper=upper, left=left, unitriangular=unit)

    def torch_fn(A, B):
        return torch.linalg.solve_triangular(A, B, upper=upper, left=left, unitriangular=unit)

    check_grads(fn, [a, b], torch_fn=torch_fn)
    x = fn(engine.tensor(a), engine.tensor(b)).numpy()
    tri = np.triu(a) if upper else np.tril(a)
    if unit:
        tri = tri - tri * np.eye(4) + np.eye(4)
    np.testing.assert_allclose(tri @ x if left else x @ tri, b, atol=1e-12)


def test_solve_triangular_bad_input_says_what_is_wrong():
    A = engine.eye(3)
    with pytest.raises(ValueError, match=r"equation XA = B \(3x3 and 2x4\)"):
        engine.linalg.solve_triangular(A, engine.ones(2, 4), upper=True, left=False)
    with pytest.raises(ValueError, match=r"equation AX = B \(3x3 and 4x2\)"):
        engine.linalg.solve_triangular(A, engine.ones(4, 2), upper=True)
    with pytest.raises(ValueError, match="B must have at least 2 dimensions"):
        engine.linalg.solve_triangular(A, engine.ones(3), upper=True)
    with pytest.raises(ValueError, match="square matrices"):
        engine.linalg.solve_triangular(engine.ones(2, 3), engine.ones(2, 2), upper=True)
    with pytest.raises(TypeError, match="same dtype"):
        engine.linalg.solve_triangular(A, engine.ones(3, 2, dtype=engine.float64), upper=True)


# ---- modified Bessel functions ---------------------------------------------------------------------------------
BESSEL_X = np.array([-750.0, -100.0, -20.01, -8.5, -8.0, -1.0, -1e-3, 0.0, 1e-6, 0.5, 3.0, 7.99, 8.0, 8.01, 15.0,
                     19.99, 20.0, 20.01, 25.0, 33.3, 50.0, 100.0, 500.0, 700.0])


def _bessel_reference(order: int, x: float, scaled: bool = False) -> float:
    """I_order(|x|) (times exp(-|x|) if `scaled`) from its power series sum (x/2)^(2k+order) / (k! (k+order)!),
    in 60-digit decimals."""
    with localcontext() as ctx:
        ctx.prec = 60
        half = Decimal(abs(x)) / 2
        term = half if order else Decimal(1)
        total, k = Decimal(0), 0
        while term > total * Decimal("1e-40") or k < 5:
            total += term
            k += 1
            term = term * half * half / (k * (k + order))
        return float(total * (-2 * half).exp() if scaled else total)


@pytest.mark.parametrize("name", ["i0", "i0e", "i1", "i1e"])
def test_bessel_functions_are_accurate_to_1e_12_over_the_real_line(name):
    order = int(name[1])
    out = getattr(engine.special, name)(engine.tensor(BESSEL_X)).numpy()
    for x, got in zip(BESSEL_X, out):
        value = _bessel_reference(order, x, scaled=name.endswith("e")) * (math.copysign(1, x) if order else 1)
        assert got == pytest.approx(value, rel=1e-12, abs=1e-300), (name, x)


def test_bessel_functions_at_the_edges():
    x = engine.tensor([math.inf, -math.inf, math.nan, 713.0], dtype=engine.float64)
    np.testing.assert_array_equal(engine.special.i0e(x).numpy()[:3], [0.0, 0.0, math.nan])
    np.testing.assert_array_equal(engine.special.i1(x).numpy()[:3], [math.inf, -math.inf, math.nan])
    # I0(713) ~ 1.5e308 is finite, though exp(713) is not
    assert engine.i0(x).numpy()[3] == pytest.approx(_bessel_reference(0, 713.0), rel=1e-12)


@needs_torch
@pytest.mark.parametrize("name", ["i0", "i0e", "i1", "i1e"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bessel_functions_match_torch(name, dtype):
    x = np.concatenate([BESSEL_X[1:-2], RNG.uniform(-30, 30, 50)]).astype(dtype)
    ours = getattr(engine.special, name)(engine.tensor(x))
    theirs = getattr(torch.special, name)(torch.tensor(x))
    assert ours.dtype.name == dtype
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("name", ["i0", "i0e", "i1", "i1e"])
def test_bessel_gradients_match_torch_and_finite_differences(name):
    x = np.array([-9.5, -3.0, -0.4, 0.3, 2.0, 7.9, 8.2, 15.0])
    fn = getattr(engine.special, name)
    check_grads(fn, [x], torch_fn=None if torch is None else getattr(torch.special, name))
    # at 0: d i0 = 0, d i1 = 1/2 (finite differences do not reach the kinks of the scaled ones)
    zero = engine.zeros(1, dtype=engine.float64, requires_grad=True)
    fn(zero).sum().backward()
    assert zero.grad.item() == {"i0": 0.0, "i0e": 0.0, "i1": 0.5, "i1e": 0.5}[name]


def test_i0_is_a_function_a_method_and_an_in_place_method():
    x = engine.tensor([1, 2])  # integers give the default float dtype, as torch.i0
    assert engine.i0(x).dtype == engine.float32
    np.testing.assert_allclose(x.float().i0().numpy(), [1.2660658777520082, 2.2795853023360673], rtol=1e-6)
    y = engine.tensor([1.0, 2.0])
    y.i0_()
    np.testing.assert_allclose(y.numpy(), [1.2660658777520082, 2.2795853023360673], rtol=1e-6)


# ---- incomplete gamma and beta ----------------------------------------------------------------------------------
def _gamma_p_reference(a: float, x: float) -> float:
    """P(a, x) by its power series in 60-digit decimals."""
    with localcontext() as ctx:
        ctx.prec = 60
        a_, x_ = Decimal(a), Decimal(x)
        term = total = 1 / a_
        n = 0
        while term > total * Decimal("1e-40"):
            n += 1
            term = term * x_ / (a_ + n)
            total += term
        log_front = a_ * x_.ln() - x_ - Decimal(math.lgamma(a))
        return float(total * log_front.exp())


@pytest.mark.parametrize(("a", "x"), [(0.3, 0.01), (0.5, 2.0), (2.5, 1.5), (3.0, 9.0), (40.0, 35.0), (40.0, 60.0),
                                      (400.0, 380.0), (400.0, 420.0), (1e4, 9900.0)])
def test_gammainc_and_gammaincc_are_accurate(a, x):
    # lgamma in the reference carries ~1e-16 relative error, so 1e-12 is what a and x near 1e4 allow
    p = _gamma_p_reference(a, x)
    a_, x_ = engine.tensor([a], dtype=engine.float64), engine.tensor([x], dtype=engine.float64)
    ours_p, ours_q = engine.special.gammainc(a_, x_), engine.special.gammaincc(a_, x_)
    assert ours_p.item() == pytest.approx(p, rel=1e-11)
    assert ours_q.item() == pytest.approx(1 - p, rel=1e-11)


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gammainc_matches_torch_with_its_edges(dtype):
    a = np.concatenate([RNG.uniform(0.05, 20, 100), [0.0, 0.0, -1.0, math.inf, 2.0, 2.0, 2.0]]).astype(dtype)
    x = np.concatenate([RNG.uniform(0, 30, 100), [1.0, 0.0, 1.0, 1.0, math.inf, -1.0, math.nan]]).astype(dtype)
    for name in ("gammainc", "gammaincc"):
        ours = getattr(engine.special, name)(engine.tensor(a), engine.tensor(x))
        theirs = getattr(torch.special, name)(torch.tensor(a), torch.tensor(x))
        assert ours.dtype.name == dtype
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5 if dtype == "float32" else 1e-9,
                                   atol=1e-7 if dtype == "float32" else 1e-14)


def test_gammainc_gradient_in_x_and_a_clear_error_in_a():
    a = np.array([0.7, 2.0, 5.0])
    finite_difference_check(lambda a_, x_: engine.special.gammainc(a_, x_), [a, np.array([0.4, 2.5, 4.0])], wrt=[1])
    finite_difference_check(lambda a_, x_: engine.special.gammaincc(a_, x_), [a, np.array([0.4, 2.5, 4.0])], wrt=[1])
    shape = engine.tensor([2.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="gammainc: the derivative in the first argument"):
        engine.special.gammainc(shape, engine.tensor([1.0])).sum().backward()


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gamma_cdf_matches_torch_with_gradients(dtype):
    conc, rate = RNG.uniform(0.5, 5, 6).astype(dtype), RNG.uniform(0.5, 3, 6).astype(dtype)
    value = RNG.uniform(0.01, 6, 6).astype(dtype)
    ours_rate, ours_value = engine.tensor(rate, requires_grad=True), engine.tensor(value, requires_grad=True)
    theirs_rate, theirs_value = torch.tensor(rate, requires_grad=True), torch.tensor(value, requires_grad=True)
    ours = Gamma(engine.tensor(conc), ours_rate).cdf(ours_value)
    theirs = torch.distributions.Gamma(torch.tensor(conc), theirs_rate).cdf(theirs_value)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-14}
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **tol)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(ours_value.grad.numpy(), theirs_value.grad.numpy(), **tol)
    np.testing.assert_allclose(ours_rate.grad.numpy(), theirs_rate.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [engine.float32, engine.float64])
def test_beta_cdf_matches_closed_forms_and_its_gradient_is_the_density(dtype):
    x = np.array([0.0, 1e-8, 0.1, 0.35, 0.5, 0.77, 0.999, 1.0])
    cases = {(1.0, 3.5): 1 - (1 - x) ** 3.5, (2.5, 1.0): x ** 2.5, (2.0, 2.0): 3 * x ** 2 - 2 * x ** 3,
             (0.5, 0.5): 2 / math.pi * np.arcsin(np.sqrt(x)), (30.0, 30.0): None}
    tol = 1e-6 if dtype == engine.float32 else 1e-12
    for (a, b), expected in cases.items():
        value = engine.tensor(x, dtype=dtype, requires_grad=True)
        dist = Beta(engine.tensor(a, dtype=dtype), engine.tensor(b, dtype=dtype))
        cdf = dist.cdf(value)
        assert cdf.dtype == dtype
        if expected is None:  # symmetric: I_x(a, a) + I_(1-x)(a, a) = 1
            expected = 1 - dist.cdf(engine.tensor(1 - x, dtype=dtype)).detach().numpy()
        np.testing.assert_allclose(cdf.detach().numpy(), expected, rtol=tol, atol=tol)
        cdf.sum().backward()
        inside = (x > 0) & (x < 1)
        density = np.exp(dist.log_prob(engine.tensor(x[inside], dtype=dtype)).detach().numpy())
        np.testing.assert_allclose(value.grad.numpy()[inside], density, rtol=1e-4 if dtype == engine.float32 else 1e-9)


@pytest.mark.parametrize(("a", "b", "x"), [(40, 25, 0.6), (1000, 2000, 0.33), (3, 700, 0.004)])
def test_beta_cdf_of_large_shapes_is_accurate(a, b, x):
    # integer a, b: I_x(a, b) = P(Binomial(a + b - 1, x) >= a), summed in 50-digit decimals
    n = a + b - 1
    with localcontext() as ctx:
        ctx.prec = 50
        p = Decimal(x)
        exact = float(sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(a, n + 1)))
    got = Beta(engine.tensor(float(a), dtype=engine.float64), engine.tensor(float(b), dtype=engine.float64)).cdf(
        engine.tensor(x, dtype=engine.float64))
    assert got.item() == pytest.approx(exact, rel=1e-12)


def test_beta_cdf_bad_shapes_and_values():
    with pytest.raises(NotImplementedError, match="betainc: the derivative in the shapes"):
        conc = engine.tensor(2.0, requires_grad=True)
        Beta(conc, engine.tensor(3.0)).cdf(engine.tensor(0.5)).backward()
    with pytest.raises(ValueError):
        Beta(engine.tensor(2.0), engine.tensor(3.0), validate_args=True).cdf(engine.tensor(1.5))


# ---- diagonal as a view ---------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize(("offset", "dim1", "dim2"), [(0, 0, 1), (1, 0, 1), (-1, 0, 1), (2, -1, 0), (0, 1, 2)])
def test_writes_through_a_diagonal_change_the_base_as_in_torch(offset, dim1, dim2):
    base = RNG.standard_normal((3, 4, 5)) if dim2 == 2 else RNG.standard_normal((4, 5))
    ours, theirs = engine.tensor(base), torch.tensor(base)
    ours.diagonal(offset, dim1, dim2).fill_(0)
    theirs.diagonal(offset, dim1, dim2).fill_(0)
    ours.diagonal(offset, dim1, dim2).add_(1)
    theirs.diagonal(offset, dim1, dim2).add_(1)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    view = engine.diagonal(ours, offset, dim1, dim2)
    ours.mul_(2)  # and a change of the base shows in the view
    np.testing.assert_array_equal(view.numpy(), theirs.mul_(2).diagonal(offset, dim1, dim2).numpy())


@needs_torch
def test_gradients_through_an_in_place_change_of_a_diagonal_match_torch():
    w = RNG.standard_normal((4, 4))
    r = RNG.standard_normal((4, 4))

    def run(lib, tensor):
        leaf = tensor(w, requires_grad=True)
        y = leaf * 3
        d = y.diagonal()
        d.mul_(leaf[0])  # the diagonal, changed in place by another function of the leaf
        e = y.diagonal(1)
        (y * tensor(r)).sum().backward(retain_graph=True)
        first = leaf.grad.clone()
        leaf.grad = None
        (e * e).sum().backward()
        return first, leaf.grad, y

    ours = run(engine, engine.tensor)
    theirs = run(torch, torch.tensor)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)


def test_diagonal_of_a_leaf_that_requires_grad_is_refused_in_place_but_works_under_no_grad():
    w = engine.ones(3, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable"):
        w.diagonal().fill_(0)
    with engine.no_grad():
        w.diagonal().fill_(0)
    np.testing.assert_array_equal(w.detach().numpy(), 1 - np.eye(3))


def test_diagonal_gradient_and_diag_stays_a_copy():
    check_grads(lambda x: x.diagonal(1, -1, 0), [(4, 3, 5)])
    check_grads(lambda x: engine.linalg.diagonal(x, offset=-1), [(2, 4, 3)],
                torch_fn=None if torch is None else lambda x: torch.linalg.diagonal(x, offset=-1))
    x = engine.arange(9.0).reshape(3, 3)
    d = engine.diag(x)
    d.fill_(-1)
    assert x.numpy()[0, 0] == 0.0  # torch.diag copies


@needs_torch
def test_diag_embed_matches_torch():
    check_grads(lambda x: engine.diag_embed(x, 1, 0, 2), [(3, 4)],
                torch_fn=lambda x: torch.diag_embed(x, 1, 0, 2))


# ---- on a GPU ---------------------------------------------------------------------------------------------------
def test_on_gpu_everything_matches_the_cpu():
    cuda_or_skip()
    x = np.array([-30.0, -2.0, 0.0, 0.5, 9.0, 300.0])
    for name in ("i0", "i0e", "i1", "i1e"):
        fn = getattr(engine.special, name)
        gpu = engine.tensor(x, device="cuda", requires_grad=True)
        cpu = engine.tensor(x, requires_grad=True)
        fn(gpu).sum().backward()
        fn(cpu).sum().backward()
        np.testing.assert_allclose(fn(gpu).cpu().detach().numpy(), fn(cpu).detach().numpy(), rtol=1e-13)
        np.testing.assert_allclose(gpu.grad.cpu().numpy(), cpu.grad.numpy(), rtol=1e-13)
    a, v = np.array([0.5, 3.0, 40.0, 2.0]), np.array([0.2, 5.0, 35.0, 0.0])
    for dev in ("cuda", "cpu"):
        value = engine.tensor(v, device=dev, requires_grad=True)
        cdf = Gamma(engine.tensor(a, device=dev), engine.tensor(1.5, device=dev, dtype=engine.float64)).cdf(value)
        cdf.sum().backward()
        beta = Beta(engine.tensor(a, device=dev), engine.tensor(2.5, device=dev, dtype=engine.float64))
        results = [cdf, value.grad, beta.cdf(engine.tensor(v / 40, device=dev))]
        if dev == "cuda":
            on_gpu = [r.cpu().detach().numpy() for r in results]
        else:
            for g, c in zip(on_gpu, results):
                np.testing.assert_allclose(g, c.detach().numpy(), rtol=1e-12)
    A, B = RNG.standard_normal((3, 3)) + 3 * np.eye(3), RNG.standard_normal((2, 3))
    xs = [engine.linalg.solve_triangular(engine.tensor(A, device=d), engine.tensor(B, device=d), upper=True,
                                         left=False).cpu().numpy() for d in ("cuda", "cpu")]
    np.testing.assert_allclose(xs[0], xs[1], rtol=1e-12)
    m = engine.zeros(3, 4, device="cuda")
    m.diagonal(1).fill_(2)
    np.testing.assert_array_equal(m.cpu().numpy(), np.eye(3, 4, 1) * 2)
