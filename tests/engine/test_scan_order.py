"""cumprod, cummax/cummin, logcumsumexp, take_along_dim, kthvalue, mode, quantile, searchsorted, bucketize,
histc and isin against PyTorch (float64), finite differences, and their errors; create_graph to second order."""

import math

import numpy as np
import pytest

import engine
from engine.ops.scan import doubling_scan
from tests.engine.oracle import finite_difference_check, needs_torch, torch

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 5))
ZEROS = X.copy()
ZEROS[0, 1] = ZEROS[1, 2] = ZEROS[1, 4] = ZEROS[2, 0] = 0  # one zero, two zeros, a leading zero
IDX = RNG.integers(-5, 5, (3, 2))


def _lib(t):
    return engine if isinstance(t, engine.Tensor) else torch


def _index(t, a):
    return _lib(t).tensor(a)


def _q(t, values):
    return _lib(t).tensor(values, dtype=t.dtype)


DIFFERENTIABLE = {
    "cumprod": (lambda t: t.cumprod(1), X),
    "cumprod_zeros": (lambda t: t.cumprod(-1), ZEROS),
    "cumprod_zeros_dim0": (lambda t: _lib(t).cumprod(t.T, 0), ZEROS),
    "cummax": (lambda t: t.cummax(1).values, X),
    "cummin_dim0": (lambda t: _lib(t).cummin(t, -2)[0], X),
    "logcumsumexp": (lambda t: t.logcumsumexp(1), X),
    "logcumsumexp_large": (lambda t: t.logcumsumexp(0), X * 400),
    "take_along_dim": (lambda t: t.take_along_dim(_index(t, IDX), 1), X),
    "take_along_dim_flat": (lambda t: _lib(t).take_along_dim(t, _index(t, np.abs(IDX))), X),
    "kthvalue": (lambda t: t.kthvalue(2, 1).values, X),
    "kthvalue_keepdim": (lambda t: t.kthvalue(3, 0, keepdim=True)[0], X),
    "mode": (lambda t: t.mode(1).values, np.round(X)),
    "quantile_linear": (lambda t: t.quantile(_q(t, [0.1, 0.5, 1.0]), dim=0, keepdim=True), X),
    "quantile_lower": (lambda t: t.quantile(0.3, dim=1, interpolation="lower"), X),
    "quantile_higher": (lambda t: t.quantile(0.3, dim=-1, interpolation="higher"), X),
    "quantile_midpoint": (lambda t: t.quantile(0.77, interpolation="midpoint"), X),
    "quantile_nearest": (lambda t: t.quantile(_q(t, [0.25, 0.5]), dim=1, interpolation="nearest"), X),
    "nanquantile": (lambda t: t.nanquantile(0.4, dim=1, keepdim=True), X),
}


@needs_torch
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_values_and_gradients_match_torch(name):
    fn, x = DIFFERENTIABLE[name]
    ours, theirs = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = fn(ours), fn(theirs)
    assert tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    r = RNG.standard_normal(tuple(ref.shape))
    (out * engine.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in DIFFERENTIABLE if n not in ("mode", "logcumsumexp_large")])
def test_gradients_match_finite_differences(name):
    fn, x = DIFFERENTIABLE[name]
    finite_difference_check(fn, [x])


@needs_torch
@pytest.mark.parametrize("name", [n for n in DIFFERENTIABLE if not n.startswith("take")])
def test_second_derivatives_match_torch(name):
    fn, x = DIFFERENTIABLE[name]
    ours, theirs = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    v = RNG.standard_normal(x.shape)
    (g,) = engine.autograd.grad((fn(ours) ** 2).sum(), ours, create_graph=True)
    (h,) = engine.autograd.grad((g * engine.tensor(v)).sum(), ours)
    (gt,) = torch.autograd.grad((fn(theirs) ** 2).sum(), theirs, create_graph=True)
    (ht,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), theirs)
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=1e-8, atol=1e-10)


def _directional_check(grad_fn, x, eps=1e-6):
    """d/de sum(grad_fn(x + e w) * u) at e = 0, by create_graph, against central differences."""
    w, u = RNG.standard_normal(x.shape), RNG.standard_normal(x.shape)
    t = engine.tensor(x, requires_grad=True)
    (analytic,) = engine.autograd.grad((grad_fn(t) * engine.tensor(u)).sum(), t)

    def value(a):
        return float((grad_fn(engine.tensor(a, requires_grad=True)).detach().numpy() * u).sum())

    numeric = (value(x + eps * w) - value(x - eps * w)) / (2 * eps)
    assert float((analytic.numpy() * w).sum()) == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_logcumsumexp_third_order_matches_finite_differences():
    # the gradient of logcumsumexp is an ExpScan whose gradient is again one: differentiate a Hessian product
    v = RNG.standard_normal((2, 5))

    def hessian_vector(t):
        (g,) = engine.autograd.grad((t.logcumsumexp(1) ** 2).sum(), t, create_graph=True)
        (h,) = engine.autograd.grad((g * engine.tensor(v)).sum(), t, create_graph=True)
        return h

    _directional_check(hessian_vector, X[:2] * 0.5)


def test_cumprod_gradient_with_zeros_matches_finite_differences_to_second_order():
    def grad_of(t):
        (g,) = engine.autograd.grad((t.cumprod(1) * engine.tensor(X)).sum(), t, create_graph=True)
        return g

    _directional_check(grad_of, ZEROS)  # the gradient is a polynomial: smooth through the zeros


def test_logcumsumexp_is_stable_and_exact_at_minus_inf():
    x = engine.tensor([-math.inf, 0.0, -math.inf, 1000.0, -1000.0], dtype=engine.float64, requires_grad=True)
    y = engine.logcumsumexp(x, 0)
    np.testing.assert_allclose(y.detach().numpy(), [-math.inf, 0, 0, 1000, 1000])
    y.backward(engine.ones(5, dtype=engine.float64))
    g = x.grad.numpy()
    assert np.isfinite(g).all()  # PyTorch gives NaN at -inf inputs; the engine gives them 0
    np.testing.assert_allclose(g, [0, 2, 0, 2, 0], atol=1e-12)


@needs_torch
def test_cummax_cummin_ties_and_nan_indices_match_torch():
    raw = [[1.0, 3.0, 3.0, 2.0, math.nan, 5.0, math.nan], [2.0, 2.0, 1.0, 1.0, 2.0, 0.0, 0.0]]
    for name in ("cummax", "cummin"):
        ours, theirs = getattr(engine, name)(engine.tensor(raw), 1), getattr(torch, name)(torch.tensor(raw), 1)
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    for raw in ([1, 1, 0, 1], [True, False, True]):
        ours, theirs = engine.cummax(engine.tensor(raw), 0), torch.cummax(torch.tensor(raw), 0)
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        assert ours.values.dtype.name == str(theirs.values.dtype).removeprefix("torch.")


def test_kthvalue_and_mode_ties_and_nan():
    x = engine.tensor([[3.0, 1.0, 3.0, 2.0, 1.0], [2.0, 2.0, 5.0, 5.0, 1.0]])
    values, indices = engine.kthvalue(x, 2, 1)
    np.testing.assert_array_equal(values.numpy(), [1, 2])
    np.testing.assert_array_equal(x.numpy()[[0, 1], indices.numpy()], values.numpy())  # torch: index unspecified
    values, indices = x.mode(1)  # the smallest of the most frequent values, at its last occurrence (as torch)
    np.testing.assert_array_equal(values.numpy(), [1, 2])
    np.testing.assert_array_equal(indices.numpy(), [4, 1])
    values, indices = engine.kthvalue(engine.tensor([1.0, math.nan, 0.0]), 3)  # NaN is the largest
    assert math.isnan(values.item()) and indices.item() == 1
    values, indices = engine.mode(engine.tensor([math.nan, 1.0, math.nan]))
    assert math.isnan(values.item()) and indices.item() == 2


@needs_torch
def test_quantile_nan_handling_matches_torch():
    x = X.copy()
    x[0, 2], x[2, :] = math.nan, math.nan
    for name in ("quantile", "nanquantile"):
        for interp in ("linear", "nearest", "midpoint"):
            ours = getattr(engine, name)(engine.tensor(x), 0.4, dim=1, interpolation=interp)
            theirs = getattr(torch, name)(torch.tensor(x), 0.4, dim=1, interpolation=interp)
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


@needs_torch
def test_integer_cumprod_and_in_place_keep_torch_dtypes():
    for raw in ([1, 2, 3], [True, False]):
        assert engine.cumprod(engine.tensor(raw), 0).dtype is engine.int64
    t = engine.tensor([1, 2, 3], dtype=engine.int32)
    assert t.cumprod_(0) is t and t.dtype is engine.int32
    np.testing.assert_array_equal(t.numpy(), [1, 2, 6])
    assert engine.cumprod(engine.tensor([1, 2]), 0, dtype=engine.float64).dtype is engine.float64


def test_zero_dim_and_empty_inputs():
    s = engine.tensor(3.0, requires_grad=True)
    for out in (s.cumprod(0), s.cummax(-1).values, s.logcumsumexp(0), s.kthvalue(1).values, s.mode().values,
                s.quantile(0.3, dim=0, keepdim=True), s.take_along_dim(engine.tensor(0), 0)):
        assert out.shape == () and out.item() == pytest.approx(3.0)
        (g,) = engine.autograd.grad(out, s)
        assert g.item() == pytest.approx(1.0)
    assert engine.cummax(engine.ones(0), 0).indices.dtype is engine.int64
    assert engine.cumprod(engine.ones(2, 0), 1).shape == (2, 0)
    assert engine.logcumsumexp(engine.ones(0, 3), 0).shape == (0, 3)


@needs_torch
def test_searchsorted_and_bucketize_match_torch():
    seq = np.sort(RNG.standard_normal((2, 3, 6)), -1)
    v = RNG.standard_normal((2, 3, 4))
    v[0, 0, 0], v[1, 2, 3] = seq[0, 0, 2], seq[1, 2, 5]  # values equal to boundaries: left and right differ
    for right in (False, True):
        kw = {"right": right}
        for s, vals in ((seq, v), (seq[0, 0], v)):
            ours = engine.searchsorted(engine.tensor(s), engine.tensor(vals), **kw)
            np.testing.assert_array_equal(ours.numpy(), torch.searchsorted(torch.tensor(s), torch.tensor(vals), **kw))
            assert ours.dtype is engine.int64
        ours = engine.bucketize(engine.tensor(v), engine.tensor(seq[0, 0]), out_int32=True, **kw)
        assert ours.dtype is engine.int32
        np.testing.assert_array_equal(ours.numpy(), torch.bucketize(torch.tensor(v), torch.tensor(seq[0, 0]), **kw))
    unsorted = engine.tensor([3.0, 1.0, 2.0])
    found = engine.searchsorted(unsorted, engine.tensor([2.5]), side="right", sorter=engine.argsort(unsorted))
    assert found.tolist() == [2]
    assert engine.searchsorted(engine.tensor([1.0, 2.0, 3.0]), 2.0).shape == ()
    assert engine.bucketize(2.5, engine.tensor([1.0, 2.0, 3.0])).item() == 2


@needs_torch
def test_histc_and_isin_match_torch():
    h = RNG.standard_normal(1000).astype(np.float32)
    for args in ((), (17,), (7, -1, 1), (3, 0, 0)):
        np.testing.assert_array_equal(engine.tensor(h).histc(*args).numpy(), torch.tensor(h).histc(*args).numpy())
    np.testing.assert_array_equal(engine.histc(engine.tensor([2.0, 2.0]), 4).numpy(), [0, 0, 2, 0])
    np.testing.assert_array_equal(engine.histc(engine.tensor([1.0, math.nan]), 3, 0, 2).numpy(), [0, 1, 0])
    e, t = [1, 2, 3, 4], [2.0, 3.5, 4.0]
    for kw in ({}, {"invert": True}):
        assert engine.isin(engine.tensor(e), engine.tensor(t), **kw).tolist() == \
            torch.isin(torch.tensor(e), torch.tensor(t), **kw).tolist()
    assert engine.isin(3, engine.tensor([3])).item() is True
    assert engine.isin(engine.tensor([math.nan]), engine.tensor([math.nan])).tolist() == [False]


@pytest.mark.parametrize("call, error, match", [
    (lambda: engine.cumprod(engine.ones(2), 5), IndexError, r"Dimension out of range"),
    (lambda: engine.logcumsumexp(engine.tensor([1, 2]), 0), RuntimeError, r"logcumsumexp\(\).*int64.*float"),
    (lambda: engine.take_along_dim(engine.ones(2, 3), engine.tensor([0, 1]), 1), engine.ShapeError,
     r"take_along_dim.*\(2, 3\).*\(2,\).*same number of dimensions"),
    (lambda: engine.take_along_dim(engine.ones(2, 3), engine.tensor([[0]], dtype=engine.int32), 1), RuntimeError,
     r"take_along_dim\(\): indices must be int64, got int32"),
    (lambda: engine.take_along_dim(engine.ones(2, 3), engine.tensor([[3]]), 1), IndexError,
     r"take_along_dim: index 3 is out of bounds for dimension 1 with size 3"),
    (lambda: engine.take_along_dim(engine.ones(2, 3), engine.tensor([[0], [0], [0]]), 1), engine.ShapeError,
     r"do not broadcast"),
    (lambda: engine.kthvalue(engine.ones(2, 5), 6, 1), RuntimeError, r"kthvalue\(\): k \(6\) out of range.*size 5"),
    (lambda: engine.kthvalue(engine.ones(2, 5), 0), RuntimeError, r"k \(0\) out of range"),
    (lambda: engine.mode(engine.ones(2, 0), 1), IndexError, r"mode\(\).*non-zero size"),
    (lambda: engine.quantile(engine.ones(3), 1.5), RuntimeError, r"q must be in the range \[0, 1\] but got 1.5"),
    (lambda: engine.quantile(engine.ones(3), engine.tensor([0.5, 1.2])), RuntimeError, r"q values.*\[0, 1\]"),
    (lambda: engine.quantile(engine.ones(3), engine.tensor([0.5], dtype=engine.float64)), RuntimeError,
     r"same dtype as the input tensor \(float32\), got float64"),
    (lambda: engine.quantile(engine.tensor([1, 2]), 0.5), RuntimeError, r"float or double dtype, got int64"),
    (lambda: engine.quantile(engine.ones(0), 0.5), RuntimeError, r"non-empty"),
    (lambda: engine.quantile(engine.ones(3), 0.5, interpolation="foo"), RuntimeError, r"but got foo"),
    (lambda: engine.quantile(engine.ones(3), engine.ones(1, 1) / 2), RuntimeError, r"scalar or 1D tensor"),
    (lambda: engine.searchsorted(engine.ones(2, 3), engine.ones(3, 1)), RuntimeError, r"\(2, 3\).*\(3, 1\)"),
    (lambda: engine.searchsorted(engine.ones(2), engine.ones(1), side="middle"), RuntimeError, r"middle"),
    (lambda: engine.searchsorted(engine.ones(2), engine.ones(1), side="left", right=True), RuntimeError,
     r"opposites"),
    (lambda: engine.bucketize(engine.ones(2), engine.ones(2, 2)), RuntimeError, r"1 dimension.*\(2, 2\)"),
    (lambda: engine.histc(engine.tensor([1, 2]), 3), RuntimeError, r"histc\(\).*int64"),
    (lambda: engine.histc(engine.ones(3), 0), RuntimeError, r"bins must be > 0, got 0"),
    (lambda: engine.histc(engine.ones(3), 3.5), TypeError, r"bins must be an int"),
    (lambda: engine.histc(engine.ones(3), 3, 5, 1), RuntimeError, r"max must be larger than min"),
    (lambda: engine.histc(engine.tensor([1.0, math.nan]), 3), RuntimeError, r"not finite"),
    (lambda: engine.isin(1, 2), TypeError, r"can't both be numbers"),
])
def test_bad_input_raises_a_one_line_error(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_every_function_and_method_exists():
    names = ["cumprod", "cummax", "cummin", "logcumsumexp", "take_along_dim", "searchsorted", "bucketize", "histc",
             "isin", "kthvalue", "mode", "quantile", "nanquantile"]
    assert [n for n in names if not hasattr(engine, n)] == []
    methods = ["cumprod", "cumprod_", "cummax", "cummin", "logcumsumexp", "take_along_dim", "histc", "kthvalue",
               "mode", "quantile", "nanquantile"]
    assert [n for n in methods if not hasattr(engine.Tensor, n)] == []


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # the NaN put in on purpose
@pytest.mark.parametrize("ufunc", [np.maximum, np.minimum, np.logaddexp])
def test_doubling_scan_used_on_gpus_equals_numpy_accumulate(ufunc):
    a = RNG.standard_normal((3, 37, 2))
    a[1, 5, 0] = math.nan
    for axis in range(3):
        np.testing.assert_allclose(doubling_scan(np, ufunc, a, axis), ufunc.accumulate(a, axis=axis), rtol=1e-12)


GPU_CASES = {
    "cumprod_zeros": lambda t: t.cumprod(1),
    "cummax": lambda t: t.cummax(1).values * 1,
    "cummin": lambda t: t.cummin(0).values,
    "logcumsumexp": lambda t: t.logcumsumexp(1),
    "take_along_dim": lambda t: t.take_along_dim(engine.tensor(IDX, device=t.device), 1),
    "kthvalue": lambda t: t.kthvalue(2, 1).values,
    "mode": lambda t: (t.round()).mode(1).values + t.sum(),
    "quantile": lambda t: t.quantile(engine.tensor([0.2, 0.9], dtype=t.dtype, device=t.device), dim=1),
    "nanquantile": lambda t: t.nanquantile(0.3, dim=0, interpolation="nearest"),
}


@pytest.mark.parametrize("name", GPU_CASES)
def test_gpu_matches_cpu(name):
    from tests.engine.oracle import cuda_or_skip

    cuda_or_skip()
    results = []
    for device in ("cpu", "cuda"):
        x = engine.tensor(ZEROS, device=device, requires_grad=True)
        out = GPU_CASES[name](x)
        out.backward(engine.ones(out.shape, dtype=out.dtype, device=device))
        results.append([out.detach().cpu().numpy(), x.grad.cpu().numpy()])
    for cpu, gpu in zip(*results):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-12, err_msg=name)


def test_gpu_search_histc_isin_match_cpu():
    from tests.engine.oracle import cuda_or_skip

    cuda_or_skip()
    seq = np.sort(RNG.standard_normal((2, 6)), -1)
    v = RNG.standard_normal((2, 4))
    for device_fn in (lambda d: engine.searchsorted(engine.tensor(seq, device=d), engine.tensor(v, device=d)),
                      lambda d: engine.bucketize(engine.tensor(v, device=d), engine.tensor(seq[0], device=d)),
                      lambda d: engine.histc(engine.tensor(v, device=d), 5),
                      lambda d: engine.isin(engine.tensor([1, 2, 3], device=d), engine.tensor([2, 5], device=d)),
                      lambda d: engine.cummax(engine.tensor(v, device=d), 1).indices):
        np.testing.assert_array_equal(device_fn("cuda").cpu().numpy(), device_fn("cpu").numpy())
