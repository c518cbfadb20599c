"""Reductions against finite differences and PyTorch: dims, keepdim, ties, zeros, dtypes and errors."""

import math

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, needs_torch, torch

DIMS = [None, 0, -1, (0, 2), (-1, 0)]
SHAPE = (2, 3, 4)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("op", ["sum", "mean", "var", "std", "amax", "amin", "logsumexp", "norm"])
def test_reduction_over_dims(op, dim, keepdim):
    if dim is None and op in ("amax", "amin", "logsumexp"):
        dim = ()  # these spell "every dim" as an empty tuple (logsumexp: torch needs a dim, so pass all)
        if op == "logsumexp":
            dim = (0, 1, 2)
    check_grads(lambda x: getattr(x, op)(dim=dim, keepdim=keepdim), [SHAPE])


@pytest.mark.parametrize("p", [2, 1, 3, math.inf, -math.inf, "fro"])
@pytest.mark.parametrize("dim", [None, 1, (0, -1)])
def test_norm_orders(p, dim):
    check_grads(lambda x: x.norm(p=p, dim=dim), [SHAPE])


@pytest.mark.parametrize("kwargs", [{}, {"unbiased": False}, {"correction": 0}, {"correction": 2},
                                    {"dim": 1, "unbiased": True}, {"dim": (0, 2), "correction": 0}])
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_corrections(op, kwargs):
    check_grads(lambda x: getattr(x, op)(**kwargs), [SHAPE])


@needs_torch
def test_var_positional_unbiased_flag_like_torch():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    ours, ref = engine.tensor(x), torch.tensor(x)
    np.testing.assert_allclose(ours.var(False).numpy(), ref.var(False).numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.std(1, False).numpy(), ref.std(1, False).numpy(), rtol=1e-5)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_along_dim_values_and_indices(op, dim, keepdim):
    check_grads(lambda x: getattr(x, op)(dim, keepdim=keepdim).values, [(3, 4)])
    check_grads(lambda x: getattr(x, op)(dim=dim, keepdim=keepdim)[0], [(3, 4)])
    if torch is None:
        return
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    ours, ref = getattr(engine.tensor(x), op)(dim, keepdim), getattr(torch.tensor(x), op)(dim, keepdim)
    values, indices = ours  # unpacks like torch.return_types.max
    np.testing.assert_array_equal(indices.numpy(), ref.indices.numpy())
    assert indices.dtype is engine.int64
    np.testing.assert_array_equal(values.numpy(), ref.values.numpy())
    assert type(ours).__name__ == op


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_whole_tensor_and_elementwise(op):
    check_grads(lambda x: getattr(x, op)(), [(3, 4)])
    check_grads(lambda a, b: getattr(a, op)(b), [(3, 4), (3, 4)])
    assert getattr(engine.randn(3, 4), op)().shape == ()


# ties: the gradient splits evenly among tied extremes for whole-tensor max/min and amax/amin, and goes
# to the returned index for max/min along a dim, exactly as PyTorch does
TIES = np.array([[3.0, 1.0, 3.0, -2.0], [-2.0, 0.5, 0.5, -2.0], [1.0, 1.0, 1.0, 1.0]])


@needs_torch
@pytest.mark.parametrize("fn", [
    lambda x: x.max(), lambda x: x.min(), lambda x: x.amax(), lambda x: x.amin(),
    lambda x: x.amax(1), lambda x: x.amin(-1, keepdim=True), lambda x: x.amax((0, 1)),
    lambda x: x.max(1).values, lambda x: x.min(0).values, lambda x: x.max(-1, keepdim=True).values,
    lambda x: x.norm(math.inf), lambda x: x.norm(math.inf, dim=1),
], ids=["max", "min", "amax", "amin", "amax1", "amin-1", "amax01", "max1", "min0", "max-1k", "inf", "inf1"])
def test_ties_match_torch(fn):
    ours = engine.tensor(TIES, dtype=engine.float32, requires_grad=True)
    ref = torch.tensor(TIES, dtype=torch.float32, requires_grad=True)
    out, expected = fn(ours), fn(ref)
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    weights = np.arange(1, out.numel() + 1, dtype=np.float32).reshape(out.shape)
    (out * engine.tensor(weights)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), ref.grad.numpy(), rtol=1e-6)


def test_max_along_dim_grad_goes_to_first_tied_index():
    x = engine.tensor([[2.0, 5.0, 5.0]], requires_grad=True)
    values, indices = x.max(1)
    values.sum().backward()
    assert indices.tolist() == [1]
    assert x.grad.tolist() == [[0.0, 1.0, 0.0]]


@pytest.mark.parametrize("zeros", [(), ((0, 1),), ((0, 1), (1, 2)), ((0, 0), (0, 3))])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_prod_with_zeros(zeros, dim):
    x = np.random.default_rng(4).uniform(0.5, 1.5, (3, 4)) * np.array([1, -1, 1, -1])
    for i, j in zeros:
        x[i, j] = 0.0
    kwargs = {} if dim is None else {"dim": dim}
    check_grads(lambda t: t.prod(**kwargs), [x])
    if dim is not None:
        check_grads(lambda t: t.prod(dim, keepdim=True), [x])


def test_prod_single_zero_gradient_is_product_of_others():
    x = engine.tensor([2.0, 0.0, 3.0], requires_grad=True)
    x.prod().backward()
    assert x.grad.tolist() == [0.0, 6.0, 0.0]


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum(dim):
    check_grads(lambda x: x.cumsum(dim), [(3, 4)])
    check_grads(lambda x: x.cumsum(dim=dim) * x, [(3, 4)])


def test_logsumexp_is_stable():
    x = engine.tensor([[1000.0, 1000.0], [-1000.0, -1001.0], [-math.inf, -math.inf]])
    out = x.logsumexp(1).numpy()
    expected = [1000.0 + math.log(2), -1000.0 + math.log1p(math.exp(-1)), -math.inf]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    check_grads(lambda t: (t * 300).logsumexp(dim=-1, keepdim=True), [(3, 4)])


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
@needs_torch
def test_argmax_argmin(op, dim, keepdim):
    for x in (TIES.astype(np.float32), np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)):
        ours = getattr(engine.tensor(x), op)(dim=dim, keepdim=keepdim)
        ref = getattr(torch.tensor(x), op)(dim=dim, keepdim=keepdim)
        assert ours.dtype is engine.int64
        assert tuple(ours.shape) == tuple(ref.shape)
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())


@needs_torch
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 1)])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("op", ["all", "any"])
def test_all_any(op, dim, keepdim):
    x = np.array([[1.0, 0.0, 2.0], [3.0, 4.0, 5.0]], dtype=np.float32)
    kwargs = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    ours, ref = getattr(engine.tensor(x), op)(**kwargs), getattr(torch.tensor(x), op)(**kwargs)
    assert ours.dtype is engine.bool
    assert ours.tolist() == ref.tolist()
    assert not getattr(engine.tensor(x, requires_grad=True), op)().requires_grad


# ---- dtypes ---------------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
@pytest.mark.parametrize("op", ["sum", "prod", "cumsum"])
def test_integer_reductions_give_int64_like_torch(op, dtype):
    x = np.array([[1, 0, 2], [3, 1, 1]]).astype(dtype)
    args = (1,) if op == "cumsum" else ()
    ours = getattr(engine.tensor(x), op)(*args)
    ref = getattr(torch.tensor(x), op)(*args)
    assert ours.dtype.name == str(ref.dtype).removeprefix("torch.") == "int64"
    assert ours.tolist() == ref.tolist()


def test_sum_dtype_argument():
    x = engine.tensor([[1.5, 2.5]], requires_grad=True)
    s = x.sum(dtype=engine.float64)
    assert s.dtype is engine.float64
    s.backward()
    assert x.grad.dtype is engine.float32 and x.grad.tolist() == [[1.0, 1.0]]
    assert engine.arange(4).sum(dtype=engine.float32).dtype is engine.float32


def test_mean_of_integers_raises_like_torch():
    with pytest.raises(RuntimeError, match=r"mean\(\).*floating point.*int64"):
        engine.arange(4).mean()
    assert engine.arange(4).mean(dtype=engine.float32).item() == 1.5
    with pytest.raises(RuntimeError, match=r"var\(\).*int64"):
        engine.arange(4).var()


# ---- dims and errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda x: x.sum(5), lambda x: x.mean((0, 5)), lambda x: x.amax(5), lambda x: x.max(5),
    lambda x: x.argmax(5), lambda x: x.cumsum(5), lambda x: x.var(5), lambda x: x.logsumexp(5),
    lambda x: x.prod(5), lambda x: x.all(5),
])
def test_dim_out_of_range_message(call):
    message = r"^Dimension out of range \(expected to be in range of \[-2, 1\], but got 5\)$"
    with pytest.raises(IndexError, match=message):
        call(engine.ones(2, 3))


def test_repeated_dim_is_refused():
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        engine.ones(2, 3).sum((0, -2))


def test_zero_dim_tensor_accepts_dim_0_and_minus_1():
    x = engine.tensor(3.0, requires_grad=True)
    for out in (x.sum(0), x.sum(-1, keepdim=True), x.max(0).values, x.cumsum(0), x.amax(-1), x.prod(0)):
        assert out.shape == () and out.item() == 3.0
    with pytest.raises(IndexError, match=r"\[-1, 0\], but got 1"):
        x.sum(1)


def test_empty_dim_tuple_means_all_dims():
    x = engine.ones(2, 3)
    assert x.sum(()).item() == 6.0 and x.amax(dim=[]).shape == ()


def test_max_with_several_dims_points_to_amax():
    with pytest.raises(TypeError, match="amax"):
        engine.ones(2, 3).max(dim=(0, 1))


# ---- GPU: the same kernels through cupy ----------------------------------------------------------------
GPU_CASES = [
    lambda x: x.sum((0, -1)), lambda x: x.mean(1, keepdim=True), lambda x: x.var(0), lambda x: x.std(),
    lambda x: x.amax((0, 1)), lambda x: x.max(), lambda x: x.min(1).values, lambda x: x.logsumexp(-1),
    lambda x: x.prod(1), lambda x: x.norm(), lambda x: x.norm(math.inf, dim=0), lambda x: x.cumsum(1),
    lambda x: x.max(2, keepdim=True)[0],
]


@pytest.mark.gpu
def test_gpu_reductions_match_cpu():
    cupy_ok = engine.backend.cupy_module()
    try:
        if cupy_ok is None or cupy_ok.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("needs CuPy and a CUDA GPU")
    except Exception:
        pytest.skip("needs CuPy and a CUDA GPU")
    x = TIES[:, None, :].repeat(2, axis=1) + np.array([[0.0], [0.5]])
    x[0, 0, 1] = 0.0
    for fn in GPU_CASES:
        cpu, gpu = engine.tensor(x, requires_grad=True), engine.tensor(x, device="cuda", requires_grad=True)
        out_cpu, out_gpu = fn(cpu), fn(gpu)
        r = np.random.default_rng(0).standard_normal(out_cpu.shape)
        (out_cpu * engine.tensor(r)).sum().backward()
        (out_gpu * engine.tensor(r, device="cuda")).sum().backward()
        np.testing.assert_allclose(out_gpu.detach().cpu().numpy(), out_cpu.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(gpu.grad.cpu().numpy(), cpu.grad.numpy(), rtol=1e-12, atol=1e-12)
    ints = engine.tensor([[1, 2], [3, 4]], device="cuda", dtype=engine.int32)
    assert ints.sum().dtype is engine.int64 and ints.sum().item() == 10
    assert ints.argmax(1).cpu().tolist() == [1, 1] and bool(ints.all()) and ints.any(0).device == ints.device
