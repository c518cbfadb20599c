"""Convolutions of every dimension, plain and transposed, on random geometries (odd sizes, strides, dilations,
groups, paddings, unbatched and empty batches) against PyTorch in float64 and float32, and float64 finite
differences."""

import itertools

import numpy as np
import pytest

import engine
from engine.ops import conv
from tests.engine.oracle import check_grads, needs_torch, torch

TF = torch.nn.functional if torch is not None else None


# ---- random geometries (a depthwise weight's products are outer products) ------------------------------------
def _random_case(rng, spatial: int, transposed: bool) -> dict:
    groups = int(rng.integers(1, 4))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kernel = tuple(int(k) for k in rng.integers(1, 5, spatial))
    stride = tuple(int(s) for s in rng.integers(1, 4, spatial))
    dilation = tuple(int(d) for d in rng.integers(1, 3, spatial))
    size = tuple(d * (k - 1) + 1 + int(rng.integers(0, 6)) for d, k in zip(dilation, kernel))  # odd sizes too
    padding = tuple(int(p) for p in rng.integers(0, 3, spatial))
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    if transposed:
        opts["output_padding"] = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        opts["padding"] = tuple(min(p, d * (k - 1)) for p, d, k in zip(padding, dilation, kernel))
        w_shape = (c_in, c_out // groups, *kernel)
    else:
        w_shape = (c_out, c_in // groups, *kernel)
    x_shape = (int(rng.integers(1, 6)), c_in, *size)
    if rng.random() < 0.2:
        x_shape = x_shape[1:]  # unbatched
    return {"x": x_shape, "w": w_shape, "bias": bool(rng.random() < 0.5), "opts": opts}


def _name(spatial: int, transposed: bool) -> str:
    return f"conv{'_transpose' if transposed else ''}{spatial}d"


RANDOM_CASES = [(spatial, transposed, seed) for spatial, transposed in itertools.product((1, 2, 3), (False, True))
                for seed in range(6)]
SPECIAL_CASES = [  # (op, x, w, options): the padding strings, images one column wide, empty batches, 1x1
    ("conv2d", (2, 4, 7, 9), (6, 2, 3, 2), {"padding": "same", "dilation": (2, 1), "groups": 2}),
    ("conv2d", (2, 3, 6, 5), (4, 3, 2, 2), {"padding": "valid"}),
    ("conv3d", (1, 2, 4, 5, 3), (3, 2, 2, 3, 1), {"padding": "same"}),
    ("conv1d", (3, 4, 11), (4, 1, 3), {"padding": "same", "groups": 4}),
    ("conv2d", (2, 3, 9, 1), (5, 3, 3, 1), {"padding": (1, 0)}),
    ("conv2d", (0, 3, 6, 6), (4, 3, 3, 3), {"padding": 1}),
    ("conv2d", (3, 6, 5, 7), (8, 6, 1, 1), {}),
    ("conv2d", (2, 6, 8, 8), (12, 1, 3, 3), {"padding": 1, "groups": 6}),  # depthwise, two filters a channel
    ("conv_transpose2d", (2, 4, 5, 6), (4, 3, 3, 3), {"padding": 1}),
    ("conv_transpose2d", (0, 4, 5, 6), (4, 3, 3, 3), {"stride": 2}),
]


def _torch_conv(op: str, x, w, b, opts, dtype):
    """Values and gradients of sum(op(...) * r) for a fixed random r, in torch."""
    tensors = [torch.tensor(a, dtype=dtype, requires_grad=True) if a is not None else None for a in (x, w, b)]
    out = getattr(TF, op)(*tensors, **opts)
    r = np.random.default_rng(1).standard_normal(tuple(out.shape))
    (out * torch.tensor(r, dtype=dtype)).sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors if t is not None], r


def _engine_conv(op: str, x, w, b, opts, dtype, r):
    tensors = [engine.tensor(a, dtype=dtype, requires_grad=True) if a is not None else None for a in (x, w, b)]
    out = getattr(conv, op)(*tensors, **opts)
    (out * engine.tensor(r, dtype=dtype)).sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors if t is not None]


def _compare_conv(op: str, x_shape, w_shape, bias: bool, opts) -> None:
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    channels = w_shape[1] * opts.get("groups", 1) if "transpose" in op else w_shape[0]
    b = rng.standard_normal(channels) if bias else None
    for dtype, (rtol, atol), (grad_rtol, grad_atol) in (("float64", (1e-10, 1e-10), (1e-10, 1e-10)),
                                                         ("float32", (1e-3, 1e-6), (1e-3, 1e-4))):
        want, r = _torch_conv(op, x, w, b, opts, getattr(torch, dtype))
        got = _engine_conv(op, x, w, b, opts, getattr(engine, dtype), r)
        assert got[0].dtype == np.dtype(dtype) and got[0].shape == want[0].shape
        np.testing.assert_allclose(got[0], want[0], rtol=rtol, atol=atol, err_msg=f"{op} {dtype} values")
        for i, (g, t) in enumerate(zip(got[1:], want[1:])):
            np.testing.assert_allclose(g, t, rtol=grad_rtol, atol=grad_atol, err_msg=f"{op} {dtype} gradient {i}")


@needs_torch
@pytest.mark.parametrize("spatial,transposed,seed", RANDOM_CASES)
def test_convolutions_on_random_geometries_match_torch(spatial, transposed, seed):
    case = _random_case(np.random.default_rng(seed + 10 * spatial + 100 * transposed), spatial, transposed)
    _compare_conv(_name(spatial, transposed), case["x"], case["w"], case["bias"], case["opts"])


@needs_torch
@pytest.mark.parametrize("op,x,w,opts", SPECIAL_CASES)
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note about its own extra copy
def test_convolutions_on_special_geometries_match_torch(op, x, w, opts):
    _compare_conv(op, x, w, True, opts)


@needs_torch
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv_layers_with_padding_modes_match_torch(mode):
    rng = np.random.default_rng(3)
    ours = engine.nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 1), groups=2, padding_mode=mode,
                            dtype=engine.float64)
    theirs = torch.nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 1), groups=2, padding_mode=mode,
                             dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.detach().numpy()))
        theirs.bias.copy_(torch.tensor(ours.bias.detach().numpy()))
    x = rng.standard_normal((3, 4, 7, 9))
    xe, xt = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ye, yt = ours(xe), theirs(xt)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    r = rng.standard_normal(tuple(yt.shape))
    (ye * engine.tensor(r)).sum().backward()
    (yt * torch.tensor(r)).sum().backward()
    for got, want in ((xe.grad, xt.grad), (ours.weight.grad, theirs.weight.grad), (ours.bias.grad, theirs.bias.grad)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op,x,w,opts", [
    ("conv2d", (3, 2, 5, 4), (4, 2, 3, 2), {"padding": 1, "dilation": (1, 2)}),
    ("conv2d", (3, 4, 5, 6), (4, 2, 2, 3), {"stride": (2, 1), "groups": 2}),
    ("conv1d", (3, 2, 7), (2, 1, 3), {"padding": 2, "groups": 2}),
    ("conv_transpose2d", (3, 2, 3, 4), (2, 3, 2, 3), {"padding": 1}),
    ("conv_transpose2d", (3, 2, 3, 3), (2, 2, 3, 2), {"stride": 2, "output_padding": 1}),
])
def test_convolution_gradients_match_finite_differences(op, x, w, opts):
    fn = getattr(conv, op)
    check_grads(lambda a, b: fn(a, b, **opts), [x, w], torch_fn=lambda a, b: getattr(TF, op)(a, b, **opts))
