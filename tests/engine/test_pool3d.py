"""3-D pooling as in PyTorch: max_pool3d with indices, adaptive_max_pool3d, max_unpool3d and their modules;
the N-d pooling code 1-D and 2-D share with them; instance_norm with running statistics."""

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine.nn.layers import norm
from engine.nn.layers import pool as layers
from tests.engine.oracle import (
    GRAD_ATOL,
    GRAD_RTOL,
    cuda_or_skip,
    finite_difference_check,
    needs_torch,
    same_repr,
    torch,
)

FWD = dict(rtol=1e-5, atol=1e-6)
GRAD = dict(rtol=GRAD_RTOL, atol=GRAD_ATOL)


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def run_both(fn, torch_fn, x):
    """Outputs (a tuple) and input gradients of `sum(out[0] * r)` from the engine and from torch."""
    ours, theirs = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    a, b = fn(ours), torch_fn(theirs)
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    r = normal(*b[0].shape, seed=7)
    (a[0] * engine.tensor(r)).sum().backward()
    (b[0] * torch.tensor(r)).sum().backward()
    return a, b, ours.grad.numpy(), theirs.grad.numpy()


def finite_differences(fn, *shapes):
    """The engine's gradients of fn against float64 central differences."""
    rng = np.random.default_rng(0)
    finite_difference_check(fn, [rng.standard_normal(shape) for shape in shapes])


def assert_same(fn, torch_fn, x):
    a, b, ga, gb = run_both(fn, torch_fn, x)
    for mine, ref in zip(a, b, strict=True):
        assert tuple(mine.shape) == tuple(ref.shape)
        assert mine.dtype.name == str(ref.dtype).removeprefix("torch.")
        np.testing.assert_allclose(mine.detach().numpy(), ref.detach().numpy(), **FWD)
    np.testing.assert_allclose(ga, gb, **GRAD)


# ---- max_pool3d with indices ----------------------------------------------------------------------
MAX3D = [  # shape, kernel_size, stride, padding, dilation, ceil_mode
    ((2, 3, 5, 6, 7), 2, None, 0, 1, False),
    ((2, 3, 5, 6, 7), 3, 1, 1, 1, False),  # overlapping windows
    ((2, 3, 5, 6, 7), 3, 2, 1, 1, True),  # ceil_mode with padding
    ((1, 2, 7, 5, 9), (3, 2, 3), (2, 1, 3), (1, 0, 1), (2, 1, 1), True),  # per-axis values, dilation
    ((1, 2, 7, 5, 9), 2, (1, 2, 2), 1, 3, False),  # dilation wider than the kernel
    ((3, 5, 4, 7), 3, 2, 1, 1, True),  # unbatched (C, D, H, W)
]


@needs_torch
@pytest.mark.parametrize("shape, k, s, p, d, ceil", MAX3D)
def test_max_pool3d_values_indices_and_gradient_match_torch(shape, k, s, p, d, ceil):
    assert_same(lambda x: F.max_pool3d(x, k, s, p, d, ceil, return_indices=True),
                lambda x: torch.nn.functional.max_pool3d(x, k, s, p, d, ceil, return_indices=True), normal(*shape))


@needs_torch
def test_max_pool3d_module_returns_indices():
    x = normal(2, 3, 6, 5, 4)
    ours = layers.MaxPool3d(3, 2, 1, return_indices=True, ceil_mode=True)
    theirs = torch.nn.MaxPool3d(3, 2, 1, return_indices=True, ceil_mode=True)
    assert same_repr(ours, theirs)
    assert_same(ours, theirs, x)


@needs_torch
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("k, s, p, d, ceil", [(2, None, 0, 1, False), (3, 1, 1, 2, True), (3, 2, 1, 1, True)])
def test_max_pool1d_and_2d_share_the_nd_code_and_still_match_torch(dims, k, s, p, d, ceil):
    name, x = f"max_pool{dims}d", normal(2, 3, 9, 8) if dims == 2 else normal(2, 3, 11)
    assert_same(lambda x: getattr(F, name)(x, k, s, p, d, ceil, True),
                lambda x: getattr(torch.nn.functional, name)(x, k, s, p, d, ceil, True), x)


@needs_torch
def test_ties_nan_and_minus_inf_pick_the_cell_torch_picks():
    x = np.full((1, 1, 3, 4, 4), 2.0, np.float32)  # ties everywhere: the first max of a window wins
    x[0, 0, 1, 1, 1] = x[0, 0, 2, 3, 3] = np.nan  # a NaN wins over numbers, the last NaN over NaNs
    x[0, 0, 0, :2, :2] = -np.inf
    for k, s, p in [(2, 1, 1), (3, 1, 1), (4, 1, 2)]:
        with np.errstate(invalid="ignore"):  # -inf and NaN outputs in the sum
            a, b, ga, gb = run_both(
                lambda t, k=k, s=s, p=p: F.max_pool3d(t, k, s, p, return_indices=True),
                lambda t, k=k, s=s, p=p: torch.nn.functional.max_pool3d(t, k, s, p, return_indices=True), x)
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
        np.testing.assert_array_equal(ga, gb)
    for size in [1, (2, 3, 3)]:
        a, b, ga, gb = run_both(lambda t, size=size: F.adaptive_max_pool3d(t, size, True),
                                lambda t, size=size: torch.nn.functional.adaptive_max_pool3d(t, size, True), x)
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
        np.testing.assert_array_equal(ga, gb)
    y = np.full((1, 1, 2), -np.inf, np.float32)  # a window of only padding and -inf: torch's first real tap
    with np.errstate(invalid="ignore"):
        a, b, _, _ = run_both(lambda t: F.max_pool1d(t, 2, 1, 1, return_indices=True),
                              lambda t: torch.nn.functional.max_pool1d(t, 2, 1, 1, return_indices=True), y)
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


def test_a_one_cell_kernel_gives_a_new_tensor_not_a_view_of_the_input():
    x = engine.tensor(normal(1, 2, 2, 3, 2))
    before = x.numpy().copy()
    for out in (F.max_pool3d(x, 1), F.avg_pool3d(x, 1)):
        out.add_(1.0)
        np.testing.assert_array_equal(x.numpy(), before)
        np.testing.assert_allclose(out.numpy(), before + 1, rtol=1e-6)


def test_max_pool3d_gradient_matches_finite_differences():
    finite_differences(lambda x: F.max_pool3d(x, 3, (1, 2, 2), 1, 1, True), (2, 2, 4, 5, 5))
    finite_differences(lambda x: F.max_pool3d(x, 2, 1, 0, 2), (1, 2, 5, 4, 6))


@needs_torch
@pytest.mark.parametrize("k, s, p, ceil, include, divisor", [
    (3, 2, 1, True, False, None), (3, 1, 1, False, True, None), ((2, 3, 1), 1, (1, 1, 0), False, True, 5)])
def test_avg_pool3d_matches_torch_and_finite_differences(k, s, p, ceil, include, divisor):
    assert_same(lambda x: F.avg_pool3d(x, k, s, p, ceil, include, divisor),
                lambda x: torch.nn.functional.avg_pool3d(x, k, s, p, ceil, include, divisor), normal(2, 2, 5, 4, 7))
    finite_differences(lambda x: F.avg_pool3d(x, k, s, p, ceil, include, divisor), (1, 2, 3, 4, 5))


# ---- adaptive_max_pool3d ------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("shape", [(2, 3, 5, 6, 7), (3, 7, 4, 5)])
@pytest.mark.parametrize("size", [1, 3, (4, None, 2), (7, 9, 10)])  # overlapping, None, larger than the input
def test_adaptive_max_pool3d_matches_torch(shape, size):
    assert_same(lambda x: F.adaptive_max_pool3d(x, size, return_indices=True),
                lambda x: torch.nn.functional.adaptive_max_pool3d(x, size, return_indices=True), normal(*shape))


@needs_torch
def test_adaptive_max_pool3d_module():
    ours, theirs = layers.AdaptiveMaxPool3d((2, None, 3), True), torch.nn.AdaptiveMaxPool3d((2, None, 3), True)
    assert same_repr(ours, theirs)
    assert_same(ours, theirs, normal(2, 3, 5, 4, 7))
    assert isinstance(layers.AdaptiveMaxPool3d(2)(engine.tensor(normal(1, 1, 3, 3, 3))), engine.Tensor)


def test_adaptive_max_pool3d_gradient_matches_finite_differences():
    finite_differences(lambda x: F.adaptive_max_pool3d(x, (2, 3, 4)), (2, 2, 5, 4, 7))


# ---- max_unpool3d -------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("shape, k, s, p, size", [
    ((2, 3, 4, 6, 8), 2, None, 0, None),
    ((2, 3, 5, 6, 7), 3, 2, 1, (5, 6, 7)),  # output_size recovers the odd input size
    ((3, 5, 4, 7), (2, 3, 2), (2, 2, 1), (1, 1, 0), (1, 1, 5, 4, 7)),  # unbatched; N and C given too
])
def test_max_unpool3d_puts_values_back_as_torch(shape, k, s, p, size):
    x = normal(*shape)
    pooled, idx = torch.nn.functional.max_pool3d(torch.tensor(x), k, s, p, return_indices=True)
    ours_idx = F.max_pool3d(engine.tensor(x), k, s, p, return_indices=True)[1]
    np.testing.assert_array_equal(ours_idx.numpy(), idx.numpy())
    ours_idx = engine.tensor(idx.numpy())
    assert_same(lambda v: F.max_unpool3d(v, ours_idx, k, s, p, size),
                lambda v: torch.nn.functional.max_unpool3d(v, idx, k, s, p, size), pooled.numpy())
    module, reference = layers.MaxUnpool3d(k, s, p), torch.nn.MaxUnpool3d(k, s, p)
    assert same_repr(module, reference)
    assert_same(lambda v: module(v, ours_idx, size), lambda v: reference(v, idx, size), pooled.numpy())


def test_max_unpool3d_gradient_matches_finite_differences():
    x = engine.tensor(normal(2, 2, 4, 5, 6))
    _, idx = F.max_pool3d(x, 2, return_indices=True)
    finite_differences(lambda v: F.max_unpool3d(v, idx, 2, output_size=(4, 5, 6)), tuple(idx.shape))


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda: F.max_pool3d(engine.zeros(3, 4, 5), 2), engine.ShapeError, r"max_pool3d: expected a 4-D \(unbatched\) or "
     r"5-D \(batched\) input, got input of shape \(3, 4, 5\)"),
    (lambda: F.max_pool3d(engine.zeros(2, 3, 4, 5, 6), 5), engine.ShapeError, r"max_pool3d: input of shape "
     r"\(2, 3, 4, 5, 6\) is too small for kernel_size \(5, 5, 5\) .*output size would be \(0, 1, 1\)"),
    (lambda: F.max_pool3d(engine.zeros(2, 3, 4, 5, 6), 3, padding=2), ValueError,
     "padding should be at most half of kernel_size"),
    (lambda: F.max_pool3d(engine.zeros(2, 3, 4, 5, 6), (2, 2)), TypeError,
     r"kernel_size must be an int or a tuple of 3 ints, got \(2, 2\)"),
    (lambda: F.max_pool3d(engine.zeros(2, 0, 4, 5, 6), 2), engine.ShapeError, "empty channel or spatial dimension"),
    (lambda: F.adaptive_max_pool3d(engine.zeros(2, 3, 4, 5, 6), (2, 2)), TypeError,
     r"adaptive_max_pool3d: output_size must be an int or a tuple of 3, got \(2, 2\)"),
    (lambda: F.adaptive_max_pool3d(engine.zeros(2, 3, 4, 5, 6), -1), ValueError,
     "adaptive_max_pool3d: output_size must be positive, got -1"),
    (lambda: F.adaptive_max_pool3d(engine.zeros(3, 4, 5), 2), engine.ShapeError,
     r"adaptive_max_pool3d: expected a 4-D \(unbatched\) or 5-D \(batched\) input"),
    (lambda: F.max_unpool3d(engine.zeros(2, 3, 2, 2, 2), engine.zeros(2, 3, 2, 2, 2, dtype=engine.int64), 2,
                            output_size=(9, 9, 9)), ValueError,
     r'max_unpool3d: invalid output_size "\(9, 9, 9\)" \(dim 0 must be between 2 and 6\)'),
    (lambda: F.max_unpool3d(engine.zeros(2, 2, 2), engine.zeros(2, 2, 2, dtype=engine.int64), 2), engine.ShapeError,
     r"max_unpool3d: expected a 4-D \(unbatched\) or 5-D \(batched\) input"),
    (lambda: F.max_unpool3d(engine.ones(1, 1, 1, 1, 1), engine.tensor([[[[[8]]]]]), 2), IndexError,
     "max_unpool3d: Found an invalid max index: 8 .*valid indices are 0 to 7"),
])
def test_bad_input_gets_a_one_line_error(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "\n" not in str(info.value)


# ---- instance_norm with running statistics ----------------------------------------------------
@needs_torch
@pytest.mark.parametrize("shape", [(3, 4, 6), (2, 4, 3, 5), (2, 4, 2, 3, 3)])
def test_instance_norm_updates_running_stats_as_torch(shape):
    w, b = normal(4, seed=1) + 1, normal(4, seed=2)
    ours_stats = [engine.zeros(4), engine.ones(4)]
    theirs_stats = [torch.zeros(4), torch.ones(4)]
    for seed in range(3):
        x = normal(*shape, seed=seed) * (seed + 1) + seed
        assert_same(lambda t: F.instance_norm(t, *ours_stats, engine.tensor(w), engine.tensor(b), True, 0.3, 1e-3),
                    lambda t: torch.nn.functional.instance_norm(t, *theirs_stats, torch.tensor(w), torch.tensor(b),
                                                                True, 0.3, 1e-3), x)
    for mine, ref in zip(ours_stats, theirs_stats):
        assert not np.allclose(ref.numpy(), mine.numpy()[:1])  # they moved from (0, 1)
        np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


@needs_torch
def test_instance_norm_by_running_stats_matches_torch():
    mean, var, w = normal(3, seed=1), normal(3, seed=2) ** 2 + 0.5, normal(3, seed=3)
    assert_same(lambda t: F.instance_norm(t, engine.tensor(mean), engine.tensor(var), engine.tensor(w),
                                          use_input_stats=False),
                lambda t: torch.nn.functional.instance_norm(t, torch.tensor(mean), torch.tensor(var), torch.tensor(w),
                                                            use_input_stats=False), normal(2, 3, 5))
    before = mean.copy()
    F.instance_norm(engine.tensor(normal(2, 3, 1)), engine.tensor(mean), engine.tensor(var), use_input_stats=False)
    np.testing.assert_array_equal(mean, before)  # nothing learned from the batch, one spatial element is fine


def test_instance_norm_gradient_matches_finite_differences_with_running_stats():
    finite_differences(lambda x, w, b: F.instance_norm(x, engine.zeros(3, dtype=x.dtype), engine.ones(3, dtype=x.dtype),
                                                       w, b), (2, 3, 5), (3,), (3,))
    mean, var = engine.zeros(3, dtype=engine.float64), engine.full((3,), 2.0, dtype=engine.float64)
    finite_differences(lambda x, w: F.instance_norm(x, mean, var, w, use_input_stats=False), (2, 3, 2, 3), (3,))


@pytest.mark.parametrize("call, message", [
    (lambda x: F.instance_norm(x, use_input_stats=False),
     "instance_norm: running_mean and running_var are required when use_input_stats=False"),
    (lambda x: F.instance_norm(x, engine.zeros(3)),
     "instance_norm: running_mean and running_var must either both be None or neither be None"),
    (lambda x: F.instance_norm(x, engine.zeros(4), engine.ones(4)),
     r"instance_norm: running_mean has shape \(4,\) but the input has 3 channels"),
    (lambda x: F.instance_norm(x[..., :1]), "instance_norm: expected more than 1 spatial element when training"),
])
def test_instance_norm_bad_arguments_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call(engine.tensor(normal(2, 3, 5)))


@needs_torch
def test_instance_norm_module_tracks_through_the_functional():
    ours = norm.InstanceNorm3d(2, track_running_stats=True)
    theirs = torch.nn.InstanceNorm3d(2, track_running_stats=True)
    for seed in range(2):
        assert_same(ours, theirs, normal(2, 2, 3, 4, 2, seed=seed) + seed)
    ours.eval(), theirs.eval()
    assert_same(ours, theirs, normal(2, 2, 3, 4, 2, seed=5))


# ---- GPU: the same kernels through CuPy -----------------------------------------------------------
GPU_CASES = {
    "max_pool3d": lambda x: F.max_pool3d(x, 3, 2, 1, 1, True, return_indices=True),
    "max_pool3d dilated": lambda x: F.max_pool3d(x, 2, 1, 1, 2, return_indices=True),
    "avg_pool3d": lambda x: (F.avg_pool3d(x, 3, 1, 1, count_include_pad=False),),
    "adaptive_max_pool3d": lambda x: F.adaptive_max_pool3d(x, (2, None, 3), return_indices=True),
    "unpool": lambda x: (F.max_unpool3d(*F.max_pool3d(x, 2, return_indices=True), 2, output_size=(5, 6, 7)),),
    "instance_norm": lambda x: (F.instance_norm(x, engine.zeros(3, device=x.device), engine.ones(3, device=x.device)),),
}


@pytest.mark.gpu
@pytest.mark.parametrize("name", GPU_CASES)
def test_gpu_matches_cpu(name):
    cuda_or_skip()
    x = normal(2, 3, 5, 6, 7)
    x[0, 0, 1, 1, 1] = np.nan
    results = []
    for device in ("cpu", "cuda"):
        t = engine.tensor(x, device=device, requires_grad=True)
        out = GPU_CASES[name](t)
        (out[0].nan_to_num() * engine.tensor(normal(*out[0].shape, seed=3), device=device)).sum().backward()
        results.append([o.detach().cpu().numpy() for o in out] + [t.grad.cpu().numpy()])
        if device == "cuda":
            assert all(o.is_cuda for o in out) and t.grad.is_cuda
    for cpu, gpu in zip(*results, strict=True):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-5)
