"""The activations' CPU formulas (select-free, in place, float32's tanh-form normal cdf) and the helpers that run
a computation a cache-sized block at a time (engine.backend.blocks, made tiny here so that cases span blocks),
against PyTorch, exact references and plain evaluation."""

import math
import warnings

import numpy as np
import pytest

import engine
from engine import backend
from engine.ops import activation
from tests.engine.oracle import needs_torch, torch


@pytest.fixture
def tiny_blocks(monkeypatch):
    monkeypatch.setattr(backend, "BLOCK_BYTES", 1 << 10)


# ---- the helpers ------------------------------------------------------------------------------------------------
def test_blocks_cut_a_range_into_slices_of_about_block_bytes(monkeypatch):
    monkeypatch.setattr(backend, "BLOCK_BYTES", 1000)
    assert backend.blocks(np, 10, 300) == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]
    assert backend.blocks(np, 10, 5000) == [slice(i, i + 1) for i in range(10)]  # an item bigger than a block
    assert backend.blocks(np, 3, 300) == [slice(0, 3)]
    assert backend.blocks(np, 0, 300) == [slice(0, 0)]
    assert backend.blocks(object(), 10, 300) == [slice(0, 10)]  # another array module: one block


def test_blockwise_gives_what_the_whole_evaluation_gives(tiny_blocks):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 13)), rng.standard_normal((7, 13))
    got = backend.blockwise(lambda a, b: a * np.exp(b) - 1, x, y)
    np.testing.assert_array_equal(got, x * np.exp(y) - 1)
    assert got.shape == (7, 13) and got.dtype == np.float64
    assert backend.blockwise(lambda a: a + 1, np.float32(2.0).reshape(())) == 3  # 0-d: one block


# ---- activations ------------------------------------------------------------------------------------------------
def test_float32_normal_cdf_is_within_1e7_of_the_exact_one_and_saturates():
    x = np.concatenate([np.linspace(-9, 9, 200001), [-1e30, -40.0, 6.0, 40.0, 1e30]]).astype(np.float32)
    got = activation._normal_cdf_tanh(np, x)
    exact = np.array([0.5 * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() < 1e-7
    assert np.all(np.diff(got[:200001]) >= 0)  # monotone, as the cdf is
    np.testing.assert_array_equal(got[-5:], [0, 0, exact[-3].astype(np.float32), 1, 1])
    inf = activation._normal_cdf_tanh(np, np.array([-np.inf, np.inf, np.nan], np.float32))
    np.testing.assert_array_equal(inf, [0, 1, np.nan])


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_silu_softplus_and_mish_match_torch_from_tail_to_tail(dtype, tiny_blocks):
    x = np.concatenate([np.linspace(-30, 30, 2001), [-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4]])
    r = np.random.default_rng(4).standard_normal(x.shape)
    calls = {"gelu": lambda F, t: F.gelu(t), "gelu_tanh": lambda F, t: F.gelu(t, approximate="tanh"),
             "silu": lambda F, t: F.silu(t), "softplus": lambda F, t: F.softplus(t),
             "softplus_beta": lambda F, t: F.softplus(t, beta=2.0, threshold=5.0), "mish": lambda F, t: F.mish(t)}
    # torch's float64 gelu cancels to 0 below -38, where the engine's keeps its tail: hence atol, not 0
    (rtol, atol), (grad_rtol, grad_atol) = ((1e-10, 1e-14), (1e-10, 1e-14)) if dtype == "float64" else \
        ((1e-3, 1e-6), (1e-3, 1e-4))
    for name, call in calls.items():
        xe = engine.tensor(x, dtype=getattr(engine, dtype), requires_grad=True)
        xt = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # exp's overflow to inf is the intended limit, never a warning
            ye = call(engine.nn.functional, xe)
            (ye * engine.tensor(r, dtype=ye.dtype)).sum().backward()
        yt = call(torch.nn.functional, xt)
        (yt * torch.tensor(r, dtype=yt.dtype)).sum().backward()
        np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=rtol, atol=atol, err_msg=name)
        np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=grad_rtol, atol=grad_atol, err_msg=name)


def test_logistic_and_softplus_helpers_are_exact_in_both_tails_without_warnings():
    # exact to a few ulps down to the smallest normal number; below, the logistic is 0 where the exact value is
    # subnormal (float32 under -87)
    x = np.array([-1e4, -800.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 800.0, 1e4, np.inf, -np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float16, np.float32, np.float64):
            xs = x.astype(dtype)
            s = activation._logistic(np, xs)
            sp = activation._softplus_of(np, xs)
            assert s.dtype == dtype and sp.dtype == dtype
            with np.errstate(over="ignore"):  # the reference's own exp overflows at the far left
                want = (1 / (1 + np.exp(-x.astype(np.longdouble)))).astype(dtype)
            np.testing.assert_allclose(s, want, rtol=4 * np.finfo(dtype).eps, atol=np.finfo(dtype).tiny)
            want_sp = np.logaddexp(0, x.astype(np.longdouble)).astype(dtype)
            np.testing.assert_allclose(sp, want_sp, rtol=4 * np.finfo(dtype).eps, atol=0)


# ---- row reductions, softmax, log_softmax and layer norm ---------------------------------------------------------
def test_row_reductions_give_numpys_max_and_sums_with_nan_and_infinities():
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((3, 4, 7)).astype(dtype)
        x[0, 1, 2] = np.nan
        x[1, 2, :] = -np.inf
        x[2, 0, 3] = np.inf
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(backend.row_max(x), x.max(axis=-1, keepdims=True))
            np.testing.assert_allclose(backend.row_sum(x), x.sum(axis=-1, keepdims=True), rtol=1e-6)
            np.testing.assert_allclose(backend.row_dot(x, x[::-1].copy()), (x * x[::-1]).sum(-1, keepdims=True),
                                       rtol=1e-6)
        one = x[2, 3]  # a single row
        assert backend.row_max(one).shape == (1,) and backend.row_sum(one).shape == (1,)


SOFTMAX_CALLS = {"softmax": lambda F, t, dim: F.softmax(t, dim), "log_softmax": lambda F, t, dim: F.log_softmax(t, dim)}


def _softmax_inputs(rng):
    """(name, float64 values): ordinary, large, attention-masked and NaN."""
    x = rng.standard_normal((3, 5, 8)) * 3
    masked = x.copy()
    masked[rng.random(x.shape) < 0.4] = -np.inf
    masked[:, :, 0] = masked[0, 0, :] = -np.inf  # one row wholly masked: NaN, as in torch
    nan = x.copy()
    nan[1, 2, 3] = nan[2, :, 1] = np.nan
    return [("ordinary", x), ("1e4", x * 1e4), ("offset 1e4", x + 1e4), ("-1e30", np.where(x < 0, -1e30, x)),
            ("-inf mask", masked), ("nan", nan)]


def _compare_with_torch(call, a, tol, grad_tol, dim=-1, layout="c", grads_in_float64=False):
    """call(F, tensor, dim) on the engine and on torch: values and gradients alike, NaN where torch's are; the
    gradients against torch's float64 ones of the same values if `grads_in_float64`."""
    if layout == "T":  # a transposed view: its last dim is not contiguous
        a = np.ascontiguousarray(np.swapaxes(a, 0, -1)).swapaxes(0, -1)
    xe, xt = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    g = np.random.default_rng(6).standard_normal(a.shape).astype(a.dtype)
    with np.errstate(invalid="ignore"):  # -inf - -inf in a wholly masked row: NaN, as torch gives
        ye = call(engine.nn.functional, xe, dim)
        ye.backward(engine.tensor(g))
    yt = call(torch.nn.functional, xt, dim)
    assert ye.dtype.name == str(yt.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **tol)
    if a.dtype == np.float16:
        exact = call(torch.nn.functional, torch.tensor(a.astype(np.float64)), dim).numpy().astype(np.float16)
        _assert_rounded_once(ye.detach().numpy(), exact)
    if grads_in_float64:
        xt = torch.tensor(a.astype(np.float64), requires_grad=True)
        yt = call(torch.nn.functional, xt, dim)
    yt.backward(torch.tensor(g).to(yt.dtype))
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), **grad_tol)


def _assert_rounded_once(ours, exact):
    """A float16 result computed in float32 and rounded once: the exact value rounded, but for the rare one that a
    float32 rounding apart lands on the other side of a float16 one (rounding each step misses ~half)."""
    same = (ours == exact) | (np.isnan(ours) & np.isnan(exact))
    assert same.mean() >= 0.97, f"{(~same).sum()} of {same.size} float16 values are not the exact ones rounded"


TOLERANCES = {"float64": ({"rtol": 1e-10, "atol": 1e-14}, {"rtol": 1e-10, "atol": 1e-12}),
              "float32": ({"rtol": 1e-5, "atol": 1e-7}, {"rtol": 1e-4, "atol": 1e-5}),
              "float16": ({"rtol": 2e-3, "atol": 1e-3}, {"rtol": 1e-2, "atol": 1e-2})}


@needs_torch
@pytest.mark.parametrize("op", SOFTMAX_CALLS)
def test_softmax_and_log_softmax_match_torch_on_extremes_dtypes_dims_and_layouts(op):
    rng = np.random.default_rng(7)
    for name, x in _softmax_inputs(rng):
        for dtype, (tol, grad_tol) in TOLERANCES.items():
            for dim, layout in ((-1, "c"), (-1, "T"), (1, "c"), (0, "T")):
                if dtype == "float16" and name in ("1e4", "-1e30"):
                    continue  # beyond float16's range
                try:
                    _compare_with_torch(SOFTMAX_CALLS[op], x.astype(dtype), tol, grad_tol, dim, layout)
                except AssertionError as err:
                    raise AssertionError(f"{op} of {name} {dtype}, dim {dim}, layout {layout}: {err}") from None


@needs_torch
def test_layer_norm_matches_torch_on_extremes_dtypes_shapes_and_layouts():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 3, 6))
    nan = x.copy()
    nan[1, 2, 3] = np.nan
    w, b = rng.standard_normal((2, 3, 6)).astype(np.float16).astype(np.float64)  # the same in every dtype
    calls = {"last dim": lambda F, t, _: F.layer_norm(t, (6,)),
             "two dims, affine": lambda F, t, _: F.layer_norm(t, (3, 6), _like(t, w), _like(t, b), eps=1e-3)}
    for name, a in (("ordinary", x), ("offset 100", x + 100), ("1e4", x * 1e4), ("nan", nan)):
        for dtype, (tol, grad_tol) in TOLERANCES.items():
            if dtype == "float32":  # x + 100 is rounded to 7.6e-6, and torch sums in another order
                tol, grad_tol = {**tol, "atol": 5e-5}, {**grad_tol, "atol": 1e-4}
            for call_name, call in calls.items():
                for layout in ("c", "T"):
                    if dtype == "float16" and name == "1e4":
                        continue
                    try:
                        # torch's float16 gradient is 30x further from the exact one than the engine's
                        _compare_with_torch(call, a.astype(dtype), tol, grad_tol, layout=layout,
                                            grads_in_float64=dtype == "float16")
                    except AssertionError as err:
                        raise AssertionError(f"layer_norm {call_name} of {name} {dtype} {layout}: {err}") from None


def _like(t, values):
    """A tensor of `values` in t's library and dtype."""
    lib = engine if isinstance(t, engine.Tensor) else torch
    return lib.tensor(values.astype(t.detach().numpy().dtype))


F32_MAX, F64_MAX = float(np.finfo(np.float32).max), float(np.finfo(np.float64).max)
# rows whose statistics overflow: torch gives NaN for each of these on any vector width (for some others, such as
# [1e30, -1e30, 1e30, -1e30], its CPU kernel gives a row of zeros or NaN by the row's length), and rows it keeps finite
EXTREME_ROWS = {
    "float32": [[1e30, 0, 0, 0], [F32_MAX, -F32_MAX, F32_MAX / 2, 1], [1e30] * 4, [2e19] * 16, [np.inf, 1, 2, 3],
                [np.nan, 1, 2, 3], [1e19, -1e19, 3e18, 1], [3.0] * 4, [1e-38, -1e-38, 1e-45, 0]],
    "float64": [[1e300, 0, 0, 0], [F64_MAX, -F64_MAX, 1, 2], [1e200] * 8, [np.inf, 1, 2, 3], [-np.inf, 1, 2, 3],
                [1e30, -1e30, 1e30, -1e30], [1e150, 0, 0, 0], [3.0] * 4],
}


@needs_torch
@pytest.mark.parametrize("dtype", EXTREME_ROWS)
@pytest.mark.parametrize("op", ["layer_norm", "group_norm"])
def test_norms_of_rows_whose_statistics_overflow_are_nan_where_torchs_are(op, dtype):
    calls = {"layer_norm": lambda F, t, w, b: F.layer_norm(t, (t.shape[-1],), w, b),
             "group_norm": lambda F, t, w, b: F.group_norm(t.reshape(-1, 2, t.shape[-1] // 2), 1).reshape(t.shape)}
    for row in EXTREME_ROWS[dtype]:
        a = np.array([row], dtype=np.float64).astype(dtype) if dtype == "float64" else np.float32(row)[None]
        n = a.shape[-1]
        w, b = np.linspace(0.5, 2, n).astype(dtype), np.linspace(-1, 1, n).astype(dtype)
        g = np.linspace(-1, 1.5, n).astype(dtype)[None]
        out = {}
        for lib in (engine, torch):
            x, wt, bt = (lib.tensor(v, requires_grad=True) for v in (a, w, b))
            with np.errstate(all="ignore"):
                y = calls[op](lib.nn.functional, x, wt, bt)
                y.backward(lib.tensor(g))
            out[lib] = [y.detach().numpy()] + [t.grad.numpy() for t in (x, wt, bt) if t.grad is not None]
        for ours, theirs, what in zip(out[engine], out[torch], ("output", "input grad", "weight grad", "bias grad")):
            # NaN where torch's is, and finite values alike (a row of huge equal values has a gradient of rounding
            # noise in torch's formula, 0 for [1e200] * 8, where the exact one is the engine's: only NaN is compared)
            assert np.array_equal(np.isnan(ours), np.isnan(theirs)), f"{op} {dtype} {row}: {what} {ours} vs {theirs}"
            if what in ("output", "bias grad") or max(abs(v) for v in row) < 1e100:
                np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=f"{op} {dtype} {row} {what}")


@needs_torch
def test_layer_norm_of_constant_rows_is_the_bias_as_in_torch():
    # the mean of a constant row is rounded a few ulps off it, which 1/sqrt(eps) would scale up: 0.005 at 123.456
    # over 768 values, 0.93 at 1e5 (a constant channel, a padding position's activations)
    for value, n, dtype in ((123.456, 768, np.float32), (1e5 + 0.3, 100, np.float32), (1e4 + 0.3, 768, np.float32),
                            (1e18 + 7, 100, np.float32), (3.3, 10, np.float32), (1e9 + 0.1, 1000, np.float64)):
        a = np.full((3, n), value, dtype)
        a[1] = -value
        a[2] = np.linspace(-1, 1, n) + value  # a row that is not constant, beside them
        b = np.linspace(-1, 1, n).astype(dtype)
        ours = engine.nn.functional.layer_norm(engine.tensor(a), (n,), bias=engine.tensor(b)).numpy()
        theirs = torch.nn.functional.layer_norm(torch.tensor(a), (n,), bias=torch.tensor(b)).numpy()
        np.testing.assert_allclose(ours[:2], theirs[:2], rtol=0, atol=1e-6, err_msg=f"{n} values of {value}")
        np.testing.assert_allclose(ours[:2], np.broadcast_to(b, (2, n)), rtol=0, atol=1e-6)
        # the row beside them against torch's float64 result for the same values (its float32 one is 3e-3 off near 1e4)
        wide = [torch.tensor(v.astype(np.float64)) for v in (a[2:], b)]
        exact = torch.nn.functional.layer_norm(wide[0], (n,), bias=wide[1])
        np.testing.assert_allclose(ours[2:], exact.numpy(), rtol=0, atol=1e-5, err_msg=f"{n} values near {value}")


@needs_torch
def test_float16_group_norm_of_groups_far_from_zero_matches_torch():
    # computed in float16 here (torch's moments are float32): a mean of 300 squares past float16's range, which
    # must not read as an overflowed row; what is left of the rounded mean is taken out (0.14 off torch before)
    rng = np.random.default_rng(11)
    for offset in (0, 300, 3000):
        x = (rng.standard_normal((2, 4, 8)) + offset).astype(np.float16)
        ours = engine.nn.functional.group_norm(engine.tensor(x), 2).numpy()
        theirs = torch.nn.functional.group_norm(torch.tensor(x), 2).numpy()
        np.testing.assert_allclose(ours.astype(np.float32), theirs.astype(np.float32), rtol=0, atol=4e-3,
                                   err_msg=f"offset {offset}")


@needs_torch
def test_softmax_of_large_inputs_matches_torch_with_the_shift_and_without():
    # past a few thousand values the engine leaves the max out of exp(x - max) where every row's max is within
    # +-43.7 (float32); rows beyond (or NaN, or -inf alone) bring the shift back, for the whole input
    rng = np.random.default_rng(10)
    base = rng.standard_normal((64, 96)) * 8
    masked = base.copy()
    masked[rng.random(base.shape) < 0.3] = -np.inf
    wholly = masked.copy()
    wholly[5] = -np.inf  # NaN, as torch gives
    peaks = base - 60
    peaks[:, 0] = np.linspace(-43, 43, 64)
    past = base.copy()
    past[7, 3] = 44.5
    cases = {"ordinary": base, "masked": masked, "a row wholly masked": wholly, "maxima from -43 to 43": peaks,
             "one max of 44.5": past, "a NaN": np.where(base > 20, np.nan, base), "-300": base - 300,
             "float64 up to 300": (base * 10, np.float64), "float64 past 354": (base * 30, np.float64)}
    for name, case in cases.items():
        a, dtype = case if isinstance(case, tuple) else (case, np.float32)
        tol = ({"rtol": 1e-10, "atol": 1e-14}, {"rtol": 1e-10, "atol": 1e-12}) if dtype == np.float64 else \
            ({"rtol": 1e-5, "atol": 1e-7}, {"rtol": 1e-4, "atol": 1e-5})
        try:
            _compare_with_torch(SOFTMAX_CALLS["softmax"], a.astype(dtype), *tol)
        except AssertionError as err:
            raise AssertionError(f"softmax of {name}: {err}") from None


# ---- activations that select between formulas -------------------------------------------------------------------
# (function name, its arguments after the input): slopes and alphas inside and outside (0, 1]; the leaky_relu and elu
# family compute a float16 input in float32 and round once, as torch does
ROUNDED_ONCE = [*[("leaky_relu", (s,)) for s in (0.01, 0.2, 1.0, -0.5, 3.0)],
                *[("elu", (a,)) for a in (1.0, 0.7, 2.0)], ("selu", ()), ("celu", (1.0,)), ("celu", (0.5,))]
ROUNDED_EACH_STEP = [("hardswish", ()), ("threshold", (0.5, -1.0)), ("threshold", (0.0, 0.0)), ("hardshrink", ()),
                     ("softshrink", ())]


@needs_torch
def test_activations_that_select_do_it_by_arithmetic_and_match_torch_with_nan_and_infinities(monkeypatch):
    def refused(*args, **kwargs):
        raise AssertionError("where() on a mask of mixed signs mispredicts a branch per value (5-20x the time)")

    monkeypatch.setattr(np, "where", refused)
    x = np.concatenate([np.linspace(-20, 20, 81), [-1e4, -1e-7, -0.0, 0.0, 1e-7, 1e4, np.inf, -np.inf, np.nan]])
    g = np.random.default_rng(9).standard_normal(x.shape)
    for name, args in ROUNDED_ONCE + ROUNDED_EACH_STEP:
        for dtype, rtol in (("float64", 1e-12), ("float32", 1e-6), ("float16", 1e-3)):
            xe = engine.tensor(x, dtype=getattr(engine, dtype), requires_grad=True)
            xt = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
            with warnings.catch_warnings(), np.errstate(invalid="ignore" if name == "hardswish" else "warn"):
                warnings.simplefilter("error")  # no overflow from the side not taken (hardswish(-inf) is NaN)
                ye = getattr(engine.nn.functional, name)(xe, *args)
                ye.backward(engine.tensor(g, dtype=ye.dtype))
            yt = getattr(torch.nn.functional, name)(xt, *args)
            yt.backward(torch.tensor(g, dtype=yt.dtype))
            where = f"{name}{args}, {dtype}"
            if dtype == "float16" and (name, args) in ROUNDED_EACH_STEP:
                rtol = 4e-3
            # a NaN input gives NaN, and the gradient of the side torch's kernel sends it to
            np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=rtol, atol=0, err_msg=where)
            np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=2 * rtol, atol=0, err_msg=where)
            if dtype == "float16" and (name, args) in ROUNDED_ONCE:
                np.testing.assert_array_equal(ye.detach().numpy(), yt.detach().numpy(), err_msg=where)
