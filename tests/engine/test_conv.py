"""Convolution and pooling against finite differences and PyTorch."""

from types import SimpleNamespace

import numpy as np
import pytest

import engine
from engine.ops import conv, pool
from tests.engine.oracle import check_grads, cuda_or_skip, needs_torch, torch, torch_check

NAMES = ("conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d",
         "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d")
OURS = SimpleNamespace(**{n: getattr(conv, n, None) or getattr(pool, n) for n in NAMES})
TF = torch.nn.functional if torch is not None else None


def check(expr, specs, **kw):
    """check_grads of `expr(F, *tensors)`, with F our functions for the engine and torch's for torch."""
    check_grads(lambda *a: expr(OURS, *a), specs, torch_fn=lambda *a: expr(TF, *a), **kw)


# ---- conv2d -------------------------------------------------------------------------------------
@pytest.mark.parametrize("x,w,opts", [
    ((1, 2, 5, 5), (3, 2, 3, 3), {}),
    ((2, 2, 4, 5), (2, 2, 2, 3), {"stride": 2, "padding": 1, "bias": True}),
    ((1, 2, 6, 5), (2, 2, 2, 2), {"stride": (2, 1), "padding": (1, 2), "dilation": (2, 1)}),
    ((1, 4, 3, 4), (4, 2, 2, 2), {"groups": 2, "padding": 1, "bias": True}),
    ((1, 4, 4, 4), (4, 1, 3, 3), {"groups": 4, "stride": 3, "padding": 1}),  # depthwise; stride skips rows
    ((1, 2, 5, 5), (2, 2, 3, 3), {"padding": "same", "bias": True}),
    ((1, 2, 5, 6), (2, 2, 2, 3), {"padding": "same", "dilation": (1, 2)}),  # odd total: extra pad at the end
    ((1, 2, 5, 5), (2, 2, 3, 3), {"padding": "valid", "dilation": 2, "bias": True}),
    ((2, 5, 5), (2, 2, 3, 3), {"padding": 1, "bias": True}),  # unbatched
])
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note about its own extra copy
def test_conv2d(x, w, opts):
    opts = dict(opts)
    if opts.pop("bias", False):
        check(lambda F, x, w, b: F.conv2d(x, w, b, **opts), [x, w, (w[0],)])
    else:
        check(lambda F, x, w: F.conv2d(x, w, **opts), [x, w])


def test_conv2d_input_grad_only_and_weight_grad_only():
    check(lambda F, x, w: F.conv2d(x, w, stride=2, padding=1), [(1, 2, 5, 5), (2, 2, 3, 3)], wrt=[0])
    check(lambda F, x, w: F.conv2d(x, w, stride=2, padding=1), [(1, 2, 5, 5), (2, 2, 3, 3)], wrt=[1])


def test_conv2d_without_grad_records_nothing():
    x, w = engine.randn(1, 2, 4, 4, requires_grad=True), engine.randn(3, 2, 3, 3, requires_grad=True)
    with engine.no_grad():
        y = conv.conv2d(x, w)
    assert y.grad_fn is None and not y.requires_grad and y.shape == (1, 3, 2, 2)


def test_an_in_place_change_to_the_input_after_the_forward_never_reaches_the_weight_gradient():
    # a 1x1 kernel's windows are the input itself, not a copy of it; a transposed convolution keeps its input, whose
    # change is caught as torch catches it
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((3, 4, 5, 5))
    weights = {conv.conv2d: (2, 4, 1, 1), conv.conv_transpose2d: (4, 2, 1, 1)}
    for call, w0 in ((call, rng.standard_normal(shape)) for call, shape in weights.items()):
        grads = []
        for change in (False, True):
            a, w = engine.tensor(x0, requires_grad=True), engine.tensor(w0, requires_grad=True)
            x = a + 0.5  # not a leaf: it may be changed in place
            y = call(x, w)
            if change:
                x.add_(1)
            try:
                y.sum().backward()
            except RuntimeError as err:
                assert call is conv.conv_transpose2d and "modified by an inplace operation" in str(err)
                continue
            grads.append(w.grad.numpy())
        assert len(grads) == 2 - (call is conv.conv_transpose2d)
        np.testing.assert_array_equal(grads[0], grads[-1])


def test_small_cnn_matches_torch():
    # conv -> relu -> max pool -> conv -> avg pool -> adaptive pool, the shape of a real model
    def net(F, x, w1, b1, w2):
        h = F.max_pool2d(F.conv2d(x, w1, b1, padding=1).relu(), 2)
        h = F.avg_pool2d(F.conv2d(h, w2, stride=1, padding="same"), 2, ceil_mode=True)
        return F.adaptive_avg_pool2d(h, 1)
    rng = np.random.default_rng(4)
    specs = [rng.standard_normal((2, 3, 10, 10)), rng.standard_normal((4, 3, 3, 3)) * 0.3,
             rng.standard_normal(4), rng.standard_normal((5, 4, 3, 3)) * 0.3]
    torch_check(lambda *a: net(OURS, *a), specs, torch_fn=lambda *a: net(TF, *a))


# ---- conv1d -------------------------------------------------------------------------------------
@pytest.mark.parametrize("x,w,opts", [
    ((2, 2, 7), (3, 2, 3), {}),
    ((1, 4, 9), (4, 2, 3), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}),
    ((1, 2, 8), (3, 2, 4), {"padding": "same"}),
    ((2, 8), (3, 2, 2), {"padding": 2, "stride": 3}),  # unbatched
])
def test_conv1d(x, w, opts):
    check(lambda F, x, w, b: F.conv1d(x, w, b, **opts), [x, w, (w[0],)])


# ---- transposed convolution ---------------------------------------------------------------------
@pytest.mark.parametrize("x,w,opts", [
    ((1, 2, 3, 3), (2, 3, 3, 3), {}),
    ((1, 2, 3, 3), (2, 2, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((1, 4, 3, 2), (4, 1, 2, 3), {"stride": (2, 3), "output_padding": (1, 2), "groups": 2}),
    ((1, 2, 3, 3), (2, 2, 2, 2), {"dilation": 2, "output_padding": 1, "padding": (0, 1)}),  # op < dilation
    ((2, 4, 3), (2, 2, 3, 2), {"stride": 2}),  # unbatched
])
def test_conv_transpose2d(x, w, opts):
    c_out = w[1] * opts.get("groups", 1)
    check(lambda F, x, w, b: F.conv_transpose2d(x, w, b, **opts), [x, w, (c_out,)])


def test_conv_transpose1d():
    check(lambda F, x, w: F.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
          [(1, 2, 5), (2, 3, 3)])


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv(x), y> == <x, conv_transpose(y)>: the property that makes it the gradient of conv
    rng = np.random.default_rng(2)
    x, w, y = (rng.standard_normal(s) for s in [(2, 4, 7, 6), (6, 2, 3, 2), (2, 6, 4, 3)])
    x_, w_, y_ = engine.tensor(x), engine.tensor(w), engine.tensor(y)
    opts = {"stride": 2, "padding": 1, "dilation": (1, 2), "groups": 2}
    lhs = (conv.conv2d(x_, w_, **opts).numpy() * y).sum()
    rhs = (x * conv.conv_transpose2d(y_, w_, output_padding=(0, 1), **opts).numpy()).sum()
    assert lhs == pytest.approx(rhs, rel=1e-10)


# ---- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("call,error,message", [
    (lambda: conv.conv2d(engine.randn(2, 3, 5, 5), engine.randn(8, 4, 3, 3)), engine.ShapeError,
     r"conv2d: input has 3 channels but weight expects 4 \(groups=1, weight shape \(8, 4, 3, 3\)\)"),
    (lambda: conv.conv2d(engine.randn(5, 5), engine.randn(8, 4, 3, 3)), engine.ShapeError,
     r"conv2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input, got input of shape \(5, 5\)"),
    (lambda: conv.conv1d(engine.randn(1, 2, 3, 5), engine.randn(2, 2, 3)), engine.ShapeError,
     r"conv1d: expected a 2-D \(unbatched\) or 3-D \(batched\) input"),
    (lambda: conv.conv2d(engine.randn(1, 2, 5, 5), engine.randn(2, 2, 3)), engine.ShapeError,
     r"conv2d: expected a 4-D weight \(out, in/groups, \*kernel\), got weight of shape \(2, 2, 3\)"),
    (lambda: conv.conv2d(engine.randn(1, 2, 2, 2), engine.randn(3, 2, 5, 5), padding=1), engine.ShapeError,
     r"conv2d: kernel size \(5, 5\) is larger than the padded input \(4, 4\) \(input shape \(1, 2, 2, 2\)"),
    (lambda: conv.conv2d(engine.randn(1, 2, 4, 4), engine.randn(3, 2, 3, 3), dilation=2), engine.ShapeError,
     r"kernel size \(3, 3\) dilated to \(5, 5\) is larger than the padded input \(4, 4\)"),
    (lambda: conv.conv2d(engine.randn(1, 4, 5, 5), engine.randn(6, 1, 3, 3), groups=4), engine.ShapeError,
     r"conv2d: groups=4 does not divide the weight's 6 output channels"),
    (lambda: conv.conv2d(engine.randn(1, 3, 5, 5), engine.randn(4, 1, 3, 3), groups=2), engine.ShapeError,
     r"input has 3 channels but weight expects 2 \(groups=2"),
    (lambda: conv.conv2d(engine.randn(1, 2, 5, 5), engine.randn(3, 2, 3, 3), engine.randn(4)),
     engine.ShapeError, r"conv2d: bias of shape \(4,\) does not match the 3 output channels"),
    (lambda: conv.conv2d(engine.randn(1, 2, 5, 5), engine.randn(3, 2, 3, 3), stride=(1, 0)), ValueError,
     r"conv2d: stride must be positive, got \(1, 0\)"),
    (lambda: conv.conv1d(engine.randn(1, 2, 5), engine.randn(3, 2, 3), stride=-1), ValueError,
     r"conv1d: stride must be positive, got -1"),
    (lambda: conv.conv2d(engine.randn(1, 2, 5, 5), engine.randn(3, 2, 3, 3), padding=-1), ValueError,
     r"conv2d: padding must be non-negative"),
    (lambda: conv.conv2d(engine.randn(1, 2, 5, 5), engine.randn(3, 2, 3, 3), stride=(1, 2, 3)), TypeError,
     r"conv2d: stride must be an int or a tuple of 2 ints, got \(1, 2, 3\)"),
    (lambda: conv.conv2d(engine.randn(1, 2, 5, 5), engine.randn(3, 2, 3, 3), padding="same", stride=2),
     ValueError, r"conv2d: padding='same' is not supported for strided convolutions"),
    (lambda: conv.conv2d(engine.randn(1, 2, 5, 5), engine.randn(3, 2, 3, 3), padding="full"), ValueError,
     r"conv2d: padding must be 'valid', 'same', an int or a tuple, got 'full'"),
    (lambda: conv.conv2d(engine.randn(1, 2, 5, 5), engine.randn(3, 2, 3, 3, dtype=engine.float64)), TypeError,
     r"conv2d: input, weight and bias must share one floating-point dtype, "
     r"got input float32, weight float64"),
    (lambda: conv.conv_transpose2d(engine.randn(1, 2, 3, 3), engine.randn(3, 2, 3, 3)), engine.ShapeError,
     r"conv_transpose2d: input has 2 channels but weight expects 3"),
    (lambda: conv.conv_transpose2d(engine.randn(1, 2, 3, 3), engine.randn(2, 2, 3, 3), stride=2,
                                   output_padding=2), ValueError,
     r"conv_transpose2d: output_padding must be smaller than either stride or dilation"),
    (lambda: conv.conv_transpose2d(engine.randn(1, 2, 1, 1), engine.randn(2, 2, 1, 1), padding=1),
     engine.ShapeError, r"conv_transpose2d: output size \(-1, -1\) is not positive"),
    (lambda: pool.max_pool2d(engine.randn(1, 2, 2, 2), 3), engine.ShapeError,
     r"max_pool2d: input of shape \(1, 2, 2, 2\) is too small for kernel_size \(3, 3\)"),
    (lambda: pool.avg_pool2d(engine.randn(1, 2, 6, 6), 3, padding=2), ValueError,
     r"avg_pool2d: padding should be at most half of kernel_size, got padding=2 and kernel_size=3"),
    (lambda: pool.max_pool2d(engine.randn(1, 2, 9, 9), 3, padding=2, dilation=2), ValueError,
     r"max_pool2d: padding should be at most half of kernel_size"),  # dilation does not widen the limit
    (lambda: pool.max_pool2d(engine.randn(2, 6, 6), 2, stride=0), ValueError,
     r"max_pool2d: stride must be positive, got 0"),
    (lambda: pool.max_pool1d(engine.randn(6), 2), engine.ShapeError,
     r"max_pool1d: expected a 2-D \(unbatched\) or 3-D \(batched\) input, got input of shape \(6,\)"),
    (lambda: pool.adaptive_avg_pool2d(engine.randn(1, 2, 6, 6), (2, 2, 2)), TypeError,
     r"adaptive_avg_pool2d: output_size must be an int or a tuple of 2"),
])
def test_errors_name_the_op_and_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- pooling ------------------------------------------------------------------------------------
POOL_CASES = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 1},  # overlapping windows
    {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": 2, "stride": 2, "ceil_mode": True},  # the last window hangs off the input
    {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True},  # no window may start in the padding
]


@pytest.mark.parametrize("opts", [
    *POOL_CASES, {"kernel_size": 2, "dilation": 2, "padding": 1},
    {"kernel_size": (2, 3), "dilation": (2, 1), "ceil_mode": True, "stride": 2},
])
def test_max_pool2d(opts):
    check(lambda F, x: F.max_pool2d(x, **opts), [(1, 2, 5, 5)])
    check(lambda F, x: F.max_pool2d(x, **opts), [(2, 5, 6)])


@pytest.mark.parametrize("opts", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d(opts, count_include_pad):
    check(lambda F, x: F.avg_pool2d(x, count_include_pad=count_include_pad, **opts), [(1, 2, 5, 5)])


def test_avg_pool2d_divisor_override_and_unbatched():
    check(lambda F, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, divisor_override=4), [(1, 2, 5, 5)])
    check(lambda F, x: F.avg_pool2d(x, 2, padding=1, count_include_pad=False), [(2, 5, 4)])


@pytest.mark.parametrize("opts", [
    {"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": 3, "stride": 1, "padding": 1},
])
def test_pool1d(opts):
    check(lambda F, x: F.max_pool1d(x, **opts), [(2, 3, 7)])
    check(lambda F, x: F.max_pool1d(x, dilation=2, **opts), [(3, 8)])
    check(lambda F, x: F.avg_pool1d(x, **opts), [(2, 3, 7)])
    check(lambda F, x: F.avg_pool1d(x, count_include_pad=False, **opts), [(3, 8)])


@needs_torch
@pytest.mark.parametrize("opts", [*POOL_CASES, {"kernel_size": (2, 3), "dilation": 2, "padding": 1}])
def test_max_pool2d_return_indices_match_torch(opts):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32)
    values, indices = pool.max_pool2d(engine.tensor(x), return_indices=True, **opts)
    t_values, t_indices = TF.max_pool2d(torch.tensor(x), return_indices=True, **opts)
    np.testing.assert_array_equal(values.numpy(), t_values.numpy())
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())
    assert indices.dtype is engine.int64 and not indices.requires_grad
    v1, i1 = pool.max_pool1d(engine.tensor(x[0]), 3, 2, 1, return_indices=True)
    t1, ti1 = TF.max_pool1d(torch.tensor(x[0]), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(v1.numpy(), t1.numpy())
    np.testing.assert_array_equal(i1.numpy(), ti1.numpy())


def test_max_pool2d_return_indices_values_carry_gradient():
    check(lambda F, x: F.max_pool2d(x, 3, 2, 1, return_indices=True)[0], [(1, 2, 5, 5)])


@needs_torch
@pytest.mark.parametrize("opts", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1},
                                  {"kernel_size": 3, "stride": 2, "ceil_mode": True}])
def test_max_pool_ties_pick_the_same_element_as_torch(opts):
    # few distinct values: most windows hold their maximum more than once, and the gradient goes to one
    x = np.random.default_rng(1).integers(0, 3, (2, 2, 7, 7)).astype(np.float32)
    torch_check(lambda t: pool.max_pool2d(t, **opts), [x], torch_fn=lambda t: TF.max_pool2d(t, **opts))
    _, indices = pool.max_pool2d(engine.tensor(x), return_indices=True, **opts)
    _, t_indices = TF.max_pool2d(torch.tensor(x), return_indices=True, **opts)
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())


@pytest.mark.parametrize("size", [(3, 4), (5, 2), 1, (None, 3), (7, 3), (9, 4)])
def test_adaptive_avg_pool2d(size):
    # input 7x6: every size except 1 and 7 gives windows of unequal, overlapping extents
    check(lambda F, x: F.adaptive_avg_pool2d(x, size), [(1, 1, 7, 6)])
    check(lambda F, x: F.adaptive_avg_pool2d(x, size), [(2, 7, 3)])


def test_adaptive_avg_pool1d():
    check(lambda F, x: F.adaptive_avg_pool1d(x, 3), [(2, 2, 7)])
    check(lambda F, x: F.adaptive_avg_pool1d(x, 5), [(3, 4)])


# ---- GPU ----------------------------------------------------------------------------------------
def assert_gpu_matches_cpu(ops, arrays) -> None:
    """Each op(*tensors of arrays): its value and the gradients of sum(out * r) on the GPU equal the CPU's."""
    for op in ops:
        outs = []
        for device in ("cpu", "cuda"):
            args = [engine.tensor(a, device=device, requires_grad=True) for a in arrays]
            y = op(*args)
            r = engine.tensor(np.random.default_rng(1).standard_normal(y.shape), device=device)
            (y * r).sum().backward()
            grads = [a.grad.cpu().numpy() for a in args if a.grad is not None]
            outs.append([y.cpu().detach().numpy(), *grads])
        for got, want in zip(outs[1], outs[0]):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


@pytest.mark.gpu
def test_gpu_matches_cpu():
    cuda_or_skip()
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    wt = rng.standard_normal((4, 3, 3, 3))
    ops = [
        lambda x, w, b, wt: conv.conv2d(x, w, b, stride=2, padding=1, groups=2),
        lambda x, w, b, wt: conv.conv2d(x, w, b, padding="same", groups=2, dilation=2),
        lambda x, w, b, wt: conv.conv1d(x[:, :, 0], w[:, :, 0], b, stride=2, groups=2),
        lambda x, w, b, wt: conv.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1),
        lambda x, w, b, wt: pool.max_pool2d(x, 3, 2, 1, ceil_mode=True),
        lambda x, w, b, wt: pool.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda x, w, b, wt: pool.adaptive_avg_pool2d(x, (4, 3)),
    ]
    assert_gpu_matches_cpu(ops, (x, w, b, wt))
    _, i_cpu = pool.max_pool2d(engine.tensor(x), 2, return_indices=True)
    _, i_gpu = pool.max_pool2d(engine.tensor(x, device="cuda"), 2, return_indices=True)
    np.testing.assert_array_equal(i_gpu.cpu().numpy(), i_cpu.numpy())
