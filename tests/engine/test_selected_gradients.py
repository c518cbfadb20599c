"""Ops that pass a gradient to some elements only (relu, clamp, maximum, max over a dim, ...) give the others exactly
0, whatever the incoming gradient is: an inf there (the derivative of a sqrt at 0 behind a relu) gave NaN when the
gradient was multiplied by a mask of 0s and 1s. The expected gradients are PyTorch's, checked against it where it is
installed; the engine is checked with plain backward, with create_graph=True, and with the fused CUDA kernel."""

import contextlib
import math

import numpy as np
import pytest

import engine
from engine import kernels
from tests.engine.oracle import lib, needs_torch, torch
from tests.engine.test_devices import NO_GPU

I, N = math.inf, math.nan


def _f(t):
    return engine.nn.functional if isinstance(t, engine.Tensor) else torch.nn.functional


# name -> (fn of the inputs, inputs, the output's incoming gradient, each input's gradient)
CASES = {
    "relu": (lambda x: _f(x).relu(x), [[-1, 0, 2, N]], [I, -I, 3, 2], [[0, 0, 3, 2]]),
    "relu in place": (lambda x: _f(x).relu(x * 1, inplace=True), [[-1, 0, 2, N]], [I, -I, 3, 2], [[0, 0, 3, 2]]),
    "relu6": (lambda x: _f(x).relu6(x), [[-1, 0, 3, 6, 7, N]], [I, I, 2, -I, I, 5], [[0, 0, 2, 0, 0, 5]]),
    "hardtanh": (lambda x: _f(x).hardtanh(x, -1.0, 2.0), [[-3, -1, 0.5, 2, 4, N]], [I, I, 2, I, -I, 5],
                 [[0, 0, 2, 0, 0, 5]]),
    "threshold": (lambda x: _f(x).threshold(x, 0.5, 2.0), [[-1, 0.5, 1, N]], [I, I, 3, 4], [[0, 0, 3, 4]]),
    "hardshrink": (lambda x: _f(x).hardshrink(x, 0.5), [[-2, -0.5, 0, 0.5, 2]], [3, I, I, I, 4], [[3, 0, 0, 0, 4]]),
    "softshrink": (lambda x: _f(x).softshrink(x, 0.5), [[-2, -0.5, 0, 0.5, 2]], [3, I, I, I, 4], [[3, 0, 0, 0, 4]]),
    "hardsigmoid": (lambda x: _f(x).hardsigmoid(x), [[-4, -3, 0, 3, 4]], [I, I, 6, I, I], [[0, 0, 1, 0, 0]]),
    "hardswish": (lambda x: _f(x).hardswish(x), [[-4, -3, 0, 4]], [I, I, 2, 3], [[0, 0, 1, 3]]),
    # ties split in half; where either is NaN, both get it all
    "maximum": (lambda a, b: lib(a).maximum(a, b), [[1, 2, 3, N], [2, 2, N, 1]], [I, 4, 5, 6],
                [[0, 2, 5, 6], [I, 2, 5, 6]]),
    "minimum": (lambda a, b: lib(a).minimum(a, b), [[1, 2, 3, N], [2, 2, N, 1]], [I, 4, 5, 6],
                [[I, 2, 5, 6], [0, 2, 5, 6]]),
    "max(x, other)": (lambda a, b: lib(a).max(a, b), [[3, 1], [2, 5]], [-I, I], [[-I, 0], [0, I]]),
    # a NaN loses to a number; ties go to the first
    "fmax": (lambda a, b: lib(a).fmax(a, b), [[1, 2, 3, N], [2, 2, N, 1]], [I, 4, 5, 6], [[0, 4, 5, 0], [I, 0, 0, 6]]),
    "fmin": (lambda a, b: lib(a).fmin(a, b), [[1, 2, 3, N], [2, 2, N, 1]], [I, 4, 5, 6], [[I, 4, 5, 0], [0, 0, 0, 6]]),
    "clamp": (lambda x: x.clamp(0.0, 2.0), [[-1, 0, 1, 2, 3, N]], [I, 3, 4, 5, I, 6], [[0, 3, 4, 5, 0, 0]]),
    # tensor bounds: x keeps it where lo <= x <= hi (ties too); a bound gets it where it is the value taken
    "clamp(min=tensor)": (lambda x, lo: lib(x).clamp(x, min=lo), [[1, 2, 3, N], [2, 2, N, 1]], [I, 4, 5, 6],
                          [[0, 4, 0, 0], [I, 0, 0, 0]]),
    "clamp(max=tensor)": (lambda x, hi: lib(x).clamp(x, max=hi), [[1, 2, 3], [2, 2, 1]], [I, 4, -I],
                          [[I, 4, 0], [0, 0, -I]]),
    "clamp(tensor, tensor)": (lambda x, lo, hi: lib(x).clamp(x, lo, hi),
                              [[1, 2, 3, N, 5, 0], [2, 2, N, 1, 3, 3], [3, 2, 2, 2, 1, 1]], [7, 4, 5, I, 8, 9],
                              [[0, 4, 0, 0, 0, 0], [7, 0, 0, 0, 0, 0], [0, 0, 5, 0, 8, 9]]),
    # whole-tensor max, min and median: split among the elements equal to the result (the NaNs if it is NaN)
    "max()": (lambda x: x.max(), [[1, 3, 3, 2]], I, [[0, I, I, 0]]),
    "max() of NaNs": (lambda x: x.max(), [[1, N, 2, N]], 4, [[0, 2, 0, 2]]),
    "min()": (lambda x: x.min(), [[2, 1, 1]], -I, [[0, -I, -I]]),
    "median()": (lambda x: x.median(), [[3, 1, 2]], I, [[0, 0, I]]),
    "max(dim).values": (lambda x: x.max(1).values, [[[1, 5, 2], [4, 3, 0]]], [I, -I], [[[0, I, 0], [-I, 0, 0]]]),
    "min(dim).values": (lambda x: x.min(0).values, [[[1, 5], [0, 7]]], [I, 2], [[[0, 2], [I, 0]]]),
    "median(dim).values": (lambda x: x.median(1).values, [[[3, 1, 2]]], [I], [[[0, 0, I]]]),
    # the fuzzer's cases: the inf comes from the op after
    "relu then sqrt": (lambda x: _f(x).relu(x).sqrt(), [[-1, 0.5, 4]], [1, 1, 1], [[0, 0.5 ** 0.5, 0.25]]),
    "relu then lgamma": (lambda x: _f(x).relu(x).lgamma(), [[-1, 0.5, 3]], [1, 1, 1],
                         [[0, -1.9635100260214235, 0.9227843350984671]]),
}


def _gradients(lib_, fn, inputs, upstream, create_graph=False, device="cpu"):
    kw = {} if lib_ is torch else {"device": device}
    xs = [lib_.tensor(np.array(a, np.float32), requires_grad=True, **kw) for a in inputs]
    out = fn(*xs)
    up = lib_.tensor(np.broadcast_to(np.float32(upstream), tuple(out.shape)).copy(), **kw)
    return [g.detach().cpu().numpy() for g in lib_.autograd.grad(out, xs, up, create_graph=create_graph)]


def _assert_grads(got, expected, name):
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, np.array(e, np.float32), rtol=1e-6, err_msg=name)  # NaN matches NaN


@pytest.mark.parametrize("create_graph", [False, True], ids=["backward", "create_graph"])
@pytest.mark.parametrize("name", CASES)
def test_unselected_elements_get_exactly_zero(name, create_graph):
    fn, inputs, upstream, expected = CASES[name]
    _assert_grads(_gradients(engine, fn, inputs, upstream, create_graph), expected, name)


@needs_torch
@pytest.mark.parametrize("name", CASES)
def test_the_expected_gradients_are_torchs(name):
    fn, inputs, upstream, expected = CASES[name]
    _assert_grads(_gradients(torch, fn, inputs, upstream), expected, name)


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU is not None, reason=NO_GPU or "")
@pytest.mark.parametrize("fused", [True, False], ids=["fused kernel", "array formulas"])
def test_relu_on_the_gpu_selects_too(fused):
    fn, inputs, upstream, expected = CASES["relu"]
    with contextlib.nullcontext() if fused else kernels.disabled():
        _assert_grads(_gradients(engine, fn, inputs, upstream, device="cuda"), expected, "relu")
