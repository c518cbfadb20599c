"""fake_quantize_per_tensor_affine, fake_quantize_per_channel_affine and _fake_quantize_learnable_per_tensor_affine
against torch: values (round half to even, ties and clamping at quant_min / quant_max), the straight-through gradient,
per-channel along axis 0 and 1, float64, LSQ's scale and zero-point gradients, create_graph, and errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import cuda_or_skip, lib, needs_torch, one_line, torch

pytestmark = needs_torch

QPARAMS = [(0.1, 0, -128, 127), (0.25, 3, -4, 4), (1 / 3, -2, -8, 7), (0.05, 10, 0, 15)]


def _inputs(scale: float, zp: int, qmin: int, qmax: int, dtype=np.float32, seed: int = 0) -> np.ndarray:
    """Random values, exact .5 ties of x / scale, and the values rounding just at and past quant_min / quant_max."""
    rng = np.random.default_rng(seed)
    ties = (np.arange(qmin - zp - 3, qmax - zp + 3) + 0.5) * scale
    edges = np.array([qmin - zp, qmax - zp, qmin - zp - 1, qmax - zp + 1, qmin - zp - 0.5, qmax - zp + 0.5]) * scale
    spread = rng.uniform(qmin - zp - 4, qmax - zp + 4, 40) * scale
    return np.concatenate([ties, edges, spread, [0.0, -0.0]]).astype(dtype)


def _run(L, fn, x: np.ndarray, *args, tensors=(), w=None):
    """fn's output and x's gradient (of sum(y * w)) in library L; `tensors` names args made into tensors."""
    xt = L.tensor(x, requires_grad=True)
    args = [L.tensor(a) if i in tensors else a for i, a in enumerate(args)]
    y = fn(L)(xt, *args)
    w = np.linspace(0.5, 2.0, x.size).reshape(x.shape).astype(x.dtype) if w is None else w
    (y * L.tensor(w)).sum().backward()
    return y.detach().numpy(), xt.grad.numpy()


def _same(fn, x, *args, tensors=()):
    ye, ge = _run(engine, fn, x, *args, tensors=tensors)
    yt, gt = _run(torch, fn, x, *args, tensors=tensors)
    assert ye.dtype == yt.dtype
    np.testing.assert_array_equal(ye, yt)
    np.testing.assert_array_equal(ge, gt)


def per_tensor(L):
    return L.fake_quantize_per_tensor_affine


def per_channel(L):
    return L.fake_quantize_per_channel_affine


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale,zp,qmin,qmax", QPARAMS)
def test_per_tensor_values_and_straight_through_gradient(scale, zp, qmin, qmax, dtype):
    x = _inputs(scale, zp, qmin, qmax, dtype)
    _same(per_tensor, x, scale, zp, qmin, qmax)


@pytest.mark.parametrize("scale,zp,qmin,qmax", QPARAMS)
def test_per_tensor_with_tensor_qparams(scale, zp, qmin, qmax):
    x = _inputs(scale, zp, qmin, qmax)
    _same(per_tensor, x, np.float32(scale), np.int32(zp), qmin, qmax, tensors=(0, 1))
    _same(per_tensor, x, np.array([scale]), np.float32(zp + 0.7), qmin, qmax, tensors=(0, 1))  # zp truncated


def test_per_tensor_ties_round_half_to_even_and_nonfinite():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, np.nan, np.inf, -np.inf], np.float32)
    ye, ge = _run(engine, per_tensor, x, 1.0, 2, -3, 4)
    np.testing.assert_array_equal(ye, [0, 2, 2, 0, -2, -2, 2, -5, 2, -5])
    np.testing.assert_array_equal(ge != 0, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    _same(per_tensor, x, 1.0, 2, -3, 4)


def _channel_params(n: int, zp_dtype):
    scale = np.linspace(0.05, 0.4, n).astype(np.float32)
    zp = (np.arange(n) % 5 - 2).astype(np.int32)
    return scale, (zp if zp_dtype == np.int32 else (zp + np.linspace(0, 0.9, n)).astype(zp_dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("zp_dtype", [np.int32, np.float32])
@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel(axis, zp_dtype, dtype):
    shape = (4, 5, 6)
    scale, zp = _channel_params(shape[axis], zp_dtype)
    rng = np.random.default_rng(1)
    along = (-1,) + (1,) * (len(shape) - axis - 1)
    steps = rng.integers(-12, 12, shape) + rng.choice([0.0, 0.5, 0.25], shape)  # .5 ties of x / scale included
    x = (steps * scale.reshape(along)).astype(dtype)
    _same(per_channel, x, scale, zp, axis, -6, 5, tensors=(0, 1))


def test_second_order_matches_torch():
    x = _inputs(0.25, 1, -4, 4)
    rng = np.random.default_rng(2)
    w, v = rng.standard_normal(x.size).astype(np.float32), rng.standard_normal(x.size).astype(np.float32)
    got = []
    for L in (engine, torch):
        xt, wt = L.tensor(x, requires_grad=True), L.tensor(w, requires_grad=True)
        (gx,) = L.autograd.grad((L.fake_quantize_per_tensor_affine(xt, 0.25, 1, -4, 4) * wt).sum(), xt,
                                create_graph=True)
        (gw,) = L.autograd.grad((gx * L.tensor(v)).sum(), wt)
        got.append((gx.detach().numpy(), gw.numpy()))
    np.testing.assert_array_equal(got[0][0], got[1][0])
    np.testing.assert_array_equal(got[0][1], got[1][1])


@pytest.mark.parametrize("zp", [2.5, 3.5, -2.5, 1.2, 0.0, 9.0])
@pytest.mark.parametrize("grad_factor", [1.0, 0.5])
def test_learnable_per_tensor_matches_torch(zp, grad_factor):
    x = np.concatenate([_inputs(0.1, 0, -5, 5), [-10.0, 10.0, 0.7, -0.65]]).astype(np.float32)
    w = np.linspace(-1.0, 2.0, x.size).astype(np.float32)
    got = []
    for L in (engine, torch):
        xt = L.tensor(x, requires_grad=True)
        s, z = L.tensor([0.1], requires_grad=True), L.tensor([zp], requires_grad=True)
        y = lib(xt)._fake_quantize_learnable_per_tensor_affine(xt, s, z, -5, 5, grad_factor)
        (y * L.tensor(w)).sum().backward()
        got.append([a.detach().numpy() for a in (y, xt.grad, s.grad, z.grad)])
    for e, t in zip(got[0][:2], got[1][:2]):
        np.testing.assert_array_equal(e, t)
    for e, t in zip(got[0][2:], got[1][2:]):
        assert e.shape == t.shape == (1,)
        np.testing.assert_allclose(e, t, rtol=1e-3, atol=1e-4)


def test_errors_as_torch():
    x = engine.randn(3, 4)
    fq, fc = engine.fake_quantize_per_tensor_affine, engine.fake_quantize_per_channel_affine
    s, z = engine.tensor([0.1, 0.2, 0.3]), engine.tensor([0, 1, 2], dtype=engine.int32)
    one_line(lambda: fq(x, 0.1, 0, 5, 4), RuntimeError, "`quant_min` should be less than or equal to `quant_max`")
    one_line(lambda: fq(x, 0.1, 300, 0, 255), RuntimeError, "`zero_point` must be between")
    one_line(lambda: fq(engine.arange(3), 0.1, 0, 0, 255), NotImplementedError, "not implemented for 'int64'")
    one_line(lambda: fq(x, 0.1, 0.5, 0, 255), TypeError, "'zero_point' must be int")
    one_line(lambda: fq(x, 0.1, 0, 0.0, 255), TypeError, "'quant_min' must be int")
    one_line(lambda: fq(x, engine.tensor([0.1, 0.2]), engine.tensor([0, 0]), 0, 255), RuntimeError, "2 elements")
    one_line(lambda: fq(x, engine.tensor(0.1, requires_grad=True), engine.tensor(0), 0, 255), RuntimeError,
             "not differentiable with respect to argument 'scale'")
    one_line(lambda: fc(x, s, z, 0, 4, -4), RuntimeError, "`quant_min` should be less than or equal to `quant_max`")
    one_line(lambda: fc(x, s, z + 10, 0, -4, 4), RuntimeError, "`zero_point` must be between")
    one_line(lambda: fc(x, s, z, 2, -4, 4), IndexError, "Dimension out of range")
    one_line(lambda: fc(x, s, z, -2, -4, 4), RuntimeError, "`axis` must be between 0 and number of dimensions")
    one_line(lambda: fc(x, s, z, 1, -4, 4), RuntimeError, "not consistent with input tensor")
    one_line(lambda: fc(x, s, z[:2], 0, -4, 4), RuntimeError, "scale and zero-point need to have the same dimensions")
    one_line(lambda: fc(x, s.double(), z, 0, -4, 4), RuntimeError, "Scale must be Float or BFloat16, found float64")
    one_line(lambda: fc(x, s, z.long(), 0, -4, 4), RuntimeError, "Zero-point must be Int32, Float or Half")
    one_line(lambda: fc(x, s.reshape(3, 1), z, 0, -4, 4), RuntimeError, "1-D tensors")
    one_line(lambda: fc(x, 0.1, z, 0, -4, 4), TypeError, "'scale' must be Tensor")
    one_line(lambda: fc(x.long(), s, z, 0, -4, 4), NotImplementedError, "not implemented for 'int64'")
    one_line(lambda: fc(x, s.requires_grad_(), z, 0, -4, 4), RuntimeError, "not differentiable")
    lq = engine._fake_quantize_learnable_per_tensor_affine
    one_line(lambda: lq(x, engine.tensor([0.1]), engine.tensor([0.0]), 5, -5), RuntimeError, "`quant_min` should be")
    one_line(lambda: lq(x, engine.tensor(0.1), engine.tensor(0.0), -5, 5), IndexError, "0-dim")
    one_line(lambda: lq(x.int(), engine.tensor([0.1]), engine.tensor([0.0]), -5, 5), NotImplementedError, "int32")
    xr = engine.randn(4, requires_grad=True)
    y = lq(xr, engine.tensor([0.1], requires_grad=True), engine.tensor([0.0]), 1, 5)
    one_line(lambda: y.sum().backward(), RuntimeError, "the quantization range should include 0")


def test_cuda_matches_cpu():
    cuda_or_skip()
    x = _inputs(0.25, 1, -4, 4)[:40].reshape(-1, 2)
    for fn, args in ((per_tensor, (0.25, 1, -4, 4)),):
        cpu = _run(engine, fn, x, *args)
        xg = engine.tensor(x, device="cuda", requires_grad=True)
        y = fn(engine)(xg, *args)
        (y * engine.tensor(np.linspace(0.5, 2.0, x.size).reshape(x.shape).astype(x.dtype), device="cuda")).sum() \
            .backward()
        np.testing.assert_array_equal(y.detach().cpu().numpy(), cpu[0])
        np.testing.assert_array_equal(xg.grad.cpu().numpy(), cpu[1])
    scale, zp = _channel_params(2, np.int32)
    got = engine.fake_quantize_per_channel_affine(engine.tensor(x, device="cuda"), engine.tensor(scale, device="cuda"),
                                                  engine.tensor(zp, device="cuda"), 1, -6, 5)
    want = engine.fake_quantize_per_channel_affine(engine.tensor(x), engine.tensor(scale), engine.tensor(zp), 1, -6, 5)
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
