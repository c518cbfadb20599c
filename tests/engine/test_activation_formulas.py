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
