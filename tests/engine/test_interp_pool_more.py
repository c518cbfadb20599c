"""Interpolation and pooling that PyTorch vision scripts use: bicubic and antialiased resizing, 5-D area,
adaptive max pooling, max unpooling, Lp pooling and 3-D pooling, against PyTorch (float64, tight) and
float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.oracle import check_grads, cuda_or_skip, finite_difference_check, needs_torch, torch

RNG = np.random.default_rng(7)
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def _against_torch(fn, torch_fn, *arrays, name="output"):
    """fn on engine float64 tensors and torch_fn on torch ones: outputs (and indices) and input gradients."""
    ours = [engine.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out, ref = fn(*ours), torch_fn(*theirs)
    if isinstance(ref, tuple):
        np.testing.assert_array_equal(out[1].numpy(), ref[1].numpy(), err_msg="indices differ from torch")
        assert out[1].dtype == engine.int64
        out, ref = out[0], ref[0]
    assert tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), err_msg=f"{name} differs", **TIGHT)
    r = RNG.standard_normal(tuple(ref.shape))
    (out * engine.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    for a, b in zip(ours, theirs):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"gradient of {name} differs",
                                       **TIGHT)


# ---- interpolate ----------------------------------------------------------------------------------
RESIZES = [dict(scale_factor=2), dict(scale_factor=0.5), dict(scale_factor=(0.3, 1.7)), dict(size=(3, 11)),
           dict(size=(20, 2)), dict(scale_factor=0.37, recompute_scale_factor=True), dict(scale_factor=1.0)]


@needs_torch
@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("resize", RESIZES, ids=str)
def test_bicubic_and_antialias_match_torch(mode, antialias, align_corners, resize):
    for shape in [(2, 3, 7, 9), (1, 2, 16, 6)]:
        x = RNG.standard_normal(shape)
        _against_torch(
            lambda t: F.interpolate(t, mode=mode, align_corners=align_corners, antialias=antialias, **resize),
            lambda t: torch.nn.functional.interpolate(t, mode=mode, align_corners=align_corners,
                                                      antialias=antialias, **resize), x, name=mode)


def test_antialiased_output_of_width_one_averages_each_row():
    # torch 2.13's CPU forward repeats the first row when the output is one column wide (its backward
    # does not): the resize must be the same whichever axis it runs along
    x = engine.tensor(np.arange(12.0).reshape(1, 1, 4, 3))
    for mode in ("bilinear", "bicubic"):
        tall = F.interpolate(x, size=(2, 1), mode=mode, antialias=True)
        wide = F.interpolate(x.mT.contiguous(), size=(1, 2), mode=mode, antialias=True)
        np.testing.assert_allclose(tall.numpy(), wide.mT.numpy(), **TIGHT)
        assert tall.numpy()[0, 0, 1, 0] > tall.numpy()[0, 0, 0, 0]


@pytest.mark.parametrize("kwargs", [dict(mode="bicubic", size=(5, 3)), dict(mode="bicubic", scale_factor=1.5,
                                                                           align_corners=True),
                                    dict(mode="bilinear", size=(2, 1), antialias=True),
                                    dict(mode="bicubic", scale_factor=0.4, antialias=True),
                                    dict(mode="bicubic", size=(2, 3), antialias=True, align_corners=True)])
def test_interpolate_gradients_match_finite_differences(kwargs):
    # (finite differences, then torch in float32, except for the one-column output torch's CPU forward gets wrong)
    fn = lambda x: F.interpolate(x, **kwargs)  # noqa: E731
    if kwargs.get("size") == (2, 1):
        finite_difference_check(fn, [RNG.standard_normal((1, 2, 4, 5))])
    else:
        check_grads(fn, [(1, 2, 4, 5)], torch_fn=lambda x: torch.nn.functional.interpolate(x, **kwargs))


@needs_torch
@pytest.mark.parametrize("size", [(2, 3, 4), (7, 9, 3), (5, 6, 7)])
def test_area_mode_of_5d_input_matches_torch(size):
    x = RNG.standard_normal((2, 3, 5, 6, 7))
    _against_torch(lambda t: F.interpolate(t, size=size, mode="area"),
                   lambda t: torch.nn.functional.interpolate(t, size=size, mode="area"), x, name="area")


@needs_torch
def test_upsample_module_with_bicubic_matches_torch():
    x = RNG.standard_normal((2, 3, 5, 7))
    ours, theirs = nn.Upsample(scale_factor=2, mode="bicubic"), torch.nn.Upsample(scale_factor=2, mode="bicubic")
    assert repr(ours) == repr(theirs)
    _against_torch(ours, theirs, x, name="Upsample")


def test_bicubic_float32_matches_torch_with_style_tolerances():
    check_grads(lambda x: F.interpolate(x, scale_factor=1.5, mode="bicubic"), [(2, 3, 5, 6)],
                torch_fn=lambda x: torch.nn.functional.interpolate(x, scale_factor=1.5, mode="bicubic"))


@pytest.mark.parametrize("shape, kwargs, error, words", [
    ((1, 2, 5), dict(scale_factor=2, mode="bicubic"), ValueError, ["bicubic", "4D"]),
    ((1, 2, 5, 5), dict(scale_factor=2, mode="nearest", antialias=True), ValueError, ["Anti-alias", "'nearest'"]),
    ((1, 2, 5), dict(scale_factor=2, mode="linear", antialias=True), ValueError, ["Anti-alias", "'linear'"]),
    ((1, 2, 5, 5), dict(scale_factor=2, mode="cubic"), NotImplementedError, ["'cubic'", "'bicubic'"]),
    ((1, 2, 5, 5), dict(size=(0, 3), mode="bicubic"), ValueError, ["(0, 3)", "positive"]),
    ((1, 2, 5, 5), dict(scale_factor=2, mode="area", align_corners=True), ValueError, ["align_corners", "'area'"]),
])
def test_bad_interpolate_arguments_raise_one_clear_line(shape, kwargs, error, words):
    with pytest.raises(error) as info:
        F.interpolate(engine.zeros(shape), **kwargs)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message


# ---- adaptive max pooling --------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("shape, out", [((2, 3, 7, 9), (3, 4)), ((3, 10, 5), (4, None)), ((2, 3, 5, 5), 5),
                                        ((1, 2, 4, 9), (7, 2)), ((2, 3, 13, 1), (5, 1))])
def test_adaptive_max_pool2d_values_indices_and_gradients_match_torch(shape, out):
    x = RNG.standard_normal(shape)
    _against_torch(lambda t: F.adaptive_max_pool2d(t, out, return_indices=True),
                   lambda t: torch.nn.functional.adaptive_max_pool2d(t, out, return_indices=True), x,
                   name="adaptive_max_pool2d")


@needs_torch
@pytest.mark.parametrize("out", [1, 3, 4, 11, 15])
def test_adaptive_max_pool1d_and_module_match_torch(out):
    x = RNG.standard_normal((2, 3, 11))
    _against_torch(nn.AdaptiveMaxPool1d(out, return_indices=True),
                   torch.nn.AdaptiveMaxPool1d(out, return_indices=True), x, name="AdaptiveMaxPool1d")
    _against_torch(nn.AdaptiveMaxPool2d((out, 2)), torch.nn.AdaptiveMaxPool2d((out, 2)),
                   RNG.standard_normal((2, 5, 6)), name="AdaptiveMaxPool2d")


def test_adaptive_max_pool_gradients_match_finite_differences():
    finite_difference_check(lambda x: F.adaptive_max_pool2d(x, (2, 3)), [RNG.standard_normal((1, 2, 5, 4))])


# ---- max unpooling ------------------------------------------------------------------------------------
UNPOOLS = [((2, 3, 8, 8), 2, None, 0, None), ((2, 3, 8, 9), 2, None, 0, (8, 9)), ((1, 2, 7, 7), 3, 2, 1, None),
           ((1, 2, 7, 7), 3, 2, 1, (8, 7)), ((3, 7, 7), 2, 2, 0, (1, 3, 7, 7))]


@needs_torch
@pytest.mark.parametrize("shape, k, s, p, output_size", UNPOOLS)
def test_max_unpool2d_matches_torch(shape, k, s, p, output_size):
    pooled, idx = torch.nn.functional.max_pool2d(torch.tensor(RNG.standard_normal(shape)), k, s, p,
                                                 return_indices=True)
    _against_torch(lambda y, i: F.max_unpool2d(y, i, k, s, p, output_size),
                   lambda y, i: torch.nn.functional.max_unpool2d(y, i, k, s, p, output_size),
                   pooled.numpy(), idx.numpy(), name="max_unpool2d")


@needs_torch
@pytest.mark.parametrize("spatial", [1, 2])
def test_pool_then_unpool_modules_round_trip_as_in_torch(spatial):
    x = RNG.standard_normal((2, 3, 11) if spatial == 1 else (2, 3, 11, 6))
    names = (f"MaxPool{spatial}d", f"MaxUnpool{spatial}d")
    ours, theirs = [getattr(nn, n) for n in names], [getattr(torch.nn, n) for n in names]

    def run(classes, t):
        y, i = classes[0](3, 2, 1, return_indices=True)(t)
        return classes[1](3, 2, 1)(y, i, output_size=t.shape)

    _against_torch(lambda t: run(ours, t), lambda t: run(theirs, t), x, name=names[1])
    assert repr(ours[1](3, 2, 1)) == repr(theirs[1](3, 2, 1))


def test_max_unpool_gradients_match_finite_differences():
    y, i = F.max_pool2d(engine.tensor(RNG.standard_normal((1, 2, 6, 5))), 2, return_indices=True)
    finite_difference_check(lambda v: F.max_unpool2d(v, i, 2, output_size=(6, 5)), [y.numpy()])


@pytest.mark.parametrize("make, error, words", [
    (lambda y, i: F.max_unpool2d(y, i * 10, 2), IndexError, ["invalid max index", "4x4"]),
    (lambda y, i: F.max_unpool2d(y, i * 0 - 1, 2), IndexError, ["invalid max index: -1"]),
    (lambda y, i: F.max_unpool2d(y, i.float(), 2), TypeError, ["indices", "float32"]),
    (lambda y, i: F.max_unpool2d(y, i[..., :1], 2), ValueError, ["shape of indices", "(1, 1, 2, 1)"]),
    (lambda y, i: F.max_unpool2d(y, i, 2, output_size=(9, 9)), ValueError, ["output_size", "between 2 and 6"]),
    (lambda y, i: F.max_unpool2d(y, i, 2, output_size=(5,)), ValueError, ["2 or 4 elements"]),
    (lambda y, i: F.adaptive_max_pool2d(y, (1, 2, 3)), TypeError, ["output_size", "(1, 2, 3)"]),
    (lambda y, i: F.max_pool3d(y, 2), ValueError, ["max_pool3d", "(1, 1, 2, 2)"]),
])
def test_bad_pooling_arguments_raise_one_clear_line(make, error, words):
    y, i = F.max_pool2d(engine.tensor(RNG.standard_normal((1, 1, 4, 4))), 2, return_indices=True)
    with pytest.raises(error) as info:
        make(y, i)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message


# ---- Lp and 3-D pooling ----------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("norm, kernel, stride, ceil", [(2, 3, 2, True), (1.5, (2, 3), None, False), (3, 2, 1, False)])
def test_lp_pool_matches_torch(norm, kernel, stride, ceil):
    x = RNG.random((2, 3, 8, 7)) + 0.1
    _against_torch(lambda t: F.lp_pool2d(t, norm, kernel, stride, ceil),
                   lambda t: torch.nn.functional.lp_pool2d(t, norm, kernel, stride, ceil), x, name="lp_pool2d")
    k = kernel if isinstance(kernel, int) else kernel[0]
    _against_torch(nn.LPPool1d(norm, k, stride, ceil), torch.nn.LPPool1d(norm, k, stride, ceil), x[:, :, 0],
                   name="LPPool1d")
    assert repr(nn.LPPool2d(norm, kernel, stride, ceil)) == repr(torch.nn.LPPool2d(norm, kernel, stride, ceil))


POOL3D = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
          dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1), ceil_mode=True)]


@needs_torch
@pytest.mark.parametrize("kwargs", POOL3D, ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 7, 8, 9), (3, 5, 6, 7)])
def test_pool3d_matches_torch(kwargs, shape):
    x = RNG.standard_normal(shape)
    _against_torch(lambda t: F.max_pool3d(t, dilation=2, **kwargs),
                   lambda t: torch.nn.functional.max_pool3d(t, dilation=2, **kwargs), x, name="max_pool3d")
    _against_torch(nn.MaxPool3d(**kwargs), torch.nn.MaxPool3d(**kwargs), x, name="MaxPool3d")
    for include in (True, False):
        for divisor in (None, 5):
            _against_torch(nn.AvgPool3d(**kwargs, count_include_pad=include, divisor_override=divisor),
                           torch.nn.AvgPool3d(**kwargs, count_include_pad=include, divisor_override=divisor), x,
                           name=f"AvgPool3d(count_include_pad={include}, divisor_override={divisor})")
    assert repr(nn.AvgPool3d(**kwargs)) == repr(torch.nn.AvgPool3d(**kwargs))
    assert repr(nn.MaxPool3d(**kwargs)) == repr(torch.nn.MaxPool3d(**kwargs))


@needs_torch
def test_adaptive_avg_pool3d_module_matches_torch():
    x = RNG.standard_normal((2, 3, 5, 6, 7))
    _against_torch(nn.AdaptiveAvgPool3d((2, None, 3)), torch.nn.AdaptiveAvgPool3d((2, None, 3)), x,
                   name="AdaptiveAvgPool3d")


def test_pool3d_gradients_match_finite_differences():
    finite_difference_check(lambda x: F.avg_pool3d(x, 2, 1, 1, count_include_pad=False)
                            + F.max_pool3d(x, 2, 1, 1), [RNG.standard_normal((1, 2, 3, 4, 3))])


@pytest.mark.gpu
def test_gpu_resizing_and_pooling_match_cpu():
    cuda_or_skip()
    x = RNG.standard_normal((2, 3, 9, 8)).astype(np.float32)
    results = {}
    for device in ("cpu", "cuda"):
        t = engine.tensor(x, device=device, requires_grad=True)
        pooled, idx = F.adaptive_max_pool2d(t, (4, 3), return_indices=True)
        outs = [F.interpolate(t, scale_factor=1.7, mode="bicubic"),
                F.interpolate(t, scale_factor=0.4, mode="bicubic", antialias=True),
                F.interpolate(t, size=(3, 5), mode="bilinear", antialias=True, align_corners=True),
                pooled, F.max_unpool2d(pooled, idx, (2, 3), output_size=(9, 8)),
                F.avg_pool3d(t, 2, padding=1), F.lp_pool2d(t.abs(), 2, 3)]
        sum((o * (i + 1)).sum() for i, o in enumerate(outs)).backward()
        results[device] = [o.detach().cpu().numpy() for o in outs] + [idx.cpu().numpy(), t.grad.cpu().numpy()]
    for a, b in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(IndexError, match="invalid max index"):
        y = engine.tensor(x[:, :, :2, :2], device="cuda")
        F.max_unpool2d(y, engine.full((2, 3, 2, 2), 99, dtype=engine.int64, device="cuda"), 2)
        y.sum().item()  # the device's check is read back at a later call
