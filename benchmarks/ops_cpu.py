"""The engine's heaviest CPU ops against hand-written numpy and PyTorch, one thread each. Prints ratios.

    python benchmarks/ops_cpu.py [--quick] [--only conv|act] [--act NAME ...]

- conv2d on a few shapes of a small CNN: 3x3 with padding 1, a 1x1, a strided 3x3 and a depthwise 3x3.
- the activations of transformers and CNNs: gelu (exact and tanh), silu, softplus, softmax, log_softmax,
  layer_norm, leaky_relu, elu, selu, hardswish, threshold, hardshrink and softshrink, over a (32, 128, 256) batch of
  activations (--act names some of them).
Each line times the forward alone (no graph recorded) and the forward plus the backward of a fixed random
gradient, torch being the 1.00x when it is installed. The numpy contender is what a careful person writes by
hand: im2col with a strided view and one matmul, col2im with one add per kernel offset; the classic
Abramowitz-Stegun erf (error 1.5e-7) for the exact gelu, which numpy lacks. No bar: the lines say where the
engine stands.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, report, try_torch  # first: it sets one BLAS thread before numpy loads

# isort: split
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import engine
import engine.nn.functional as F

# (title, input shape, weight shape, options)
CONVS = (
    ("3x3 pad 1, 32x8x28x28 -> 16", (32, 8, 28, 28), (16, 8, 3, 3), {"padding": 1}),
    ("3x3 pad 1, 32x16x14x14 -> 32", (32, 16, 14, 14), (32, 16, 3, 3), {"padding": 1}),
    ("1x1, 32x16x14x14 -> 32", (32, 16, 14, 14), (32, 16, 1, 1), {}),
    ("3x3 stride 2 pad 1, 32x16x28x28 -> 32", (32, 16, 28, 28), (32, 16, 3, 3), {"stride": 2, "padding": 1}),
    ("depthwise 3x3 pad 1, 32x16x14x14", (32, 16, 14, 14), (16, 1, 3, 3), {"padding": 1, "groups": 16}),
)
ACT_SHAPE = (32, 128, 256)
SQRT_HALF, GELU_K, GELU_C = math.sqrt(0.5), math.sqrt(2 / math.pi), 0.044715
LEAKY_SLOPE = 0.01
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
THRESHOLD, THRESHOLD_VALUE, SHRINK = 0.5, -1.0, 0.5


# ---- conv2d by hand ----------------------------------------------------------------------------------------
def numpy_conv(x, w, stride=1, padding=0, groups=1):
    """conv2d's forward() -> (out, cols) and backward(g, cols) -> (dx, dw), as one writes them with numpy."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    wm = w.reshape(groups, o // groups, -1).transpose(0, 2, 1)  # (G, C/G*kh*kw, O/G)

    def forward():
        xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        win = sliding_window_view(xpad, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, kh, kw)
        ho, wo = win.shape[2:4]
        # rows (G, N*Ho*Wo, C/G*kh*kw): one matmul per group
        cols = win.reshape(n, groups, cg, ho, wo, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
        cols = cols.reshape(groups, -1, cg * kh * kw)
        out = (cols @ wm).reshape(groups, n, ho, wo, o // groups).transpose(1, 0, 4, 2, 3).reshape(n, o, ho, wo)
        return out, cols

    def backward(g, cols):
        ho, wo = g.shape[2:]
        gm = g.reshape(n, groups, o // groups, ho, wo).transpose(1, 0, 3, 4, 2).reshape(groups, -1, o // groups)
        dw = (cols.transpose(0, 2, 1) @ gm).transpose(0, 2, 1).reshape(w.shape)
        dcols = (gm @ wm.transpose(0, 2, 1)).reshape(groups, n, ho, wo, cg, kh, kw)
        dxpad = np.zeros((n, c, h + 2 * padding, wd + 2 * padding), x.dtype)
        for i in range(kh):
            for j in range(kw):
                part = dcols[..., i, j].transpose(1, 0, 4, 2, 3).reshape(n, c, ho, wo)
                dxpad[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride] += part
        return dxpad[:, :, padding:padding + h, padding:padding + wd], dw

    return forward, backward


def check_conv(forward, backward, g, xe, we, ge, opts) -> None:
    """Before timing: the hand-written conv and the engine's agree on the output and both gradients."""
    out, cols = forward()
    dx, dw = backward(g, cols)
    y = F.conv2d(xe, we, **opts)
    y.backward(ge)
    for ours, theirs in ((y.detach().numpy(), out), (xe.grad.numpy(), dx), (we.grad.numpy(), dw)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)
    xe.grad = we.grad = None


def conv_contenders(torch, x, w, g, opts) -> tuple[dict, dict]:
    """{name: forward} and {name: forward and backward} for numpy by hand, the engine and torch."""
    forward, backward = numpy_conv(x, w, **opts)
    xe, we, ge = engine.tensor(x, requires_grad=True), engine.tensor(w, requires_grad=True), engine.tensor(g)
    check_conv(forward, backward, g, xe, we, ge, opts)

    def engine_fwd():
        with engine.no_grad():
            F.conv2d(xe, we, **opts)

    def engine_fb():
        F.conv2d(xe, we, **opts).backward(ge)
        xe.grad = we.grad = None

    fwd = {"numpy": forward, "engine": engine_fwd}
    fb = {"numpy": lambda: backward(g, forward()[1]), "engine": engine_fb}
    if torch:
        tf = torch.nn.functional
        xt, wt, gt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True), torch.tensor(g)

        def torch_fwd():
            with torch.no_grad():
                tf.conv2d(xt, wt, **opts)

        def torch_fb():
            tf.conv2d(xt, wt, **opts).backward(gt)
            xt.grad = wt.grad = None

        fwd["torch"], fb["torch"] = torch_fwd, torch_fb
    return fwd, fb


def conv_lines(torch, rounds: int, repeat: int) -> None:
    rng = np.random.default_rng(0)
    base = "torch" if torch else "numpy"
    for title, x_shape, w_shape, opts in CONVS:
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = (rng.standard_normal(w_shape) / math.sqrt(math.prod(w_shape[1:]))).astype(np.float32)
        out_shape = numpy_conv(x, w, **opts)[0]()[0].shape
        g = rng.standard_normal(out_shape).astype(np.float32)
        fwd, fb = conv_contenders(torch, x, w, g, opts)
        report(f"conv2d {title}, forward", interleaved(fwd, rounds, repeat), base)
        report(f"conv2d {title}, fwd+bwd", interleaved(fb, rounds, repeat), base)


# ---- activations by hand: (forward(x) -> (y, saved), backward(g, x, saved) -> dx) -------------------------
def _erf_as(z):
    """Abramowitz and Stegun 7.1.26, the erf people write by hand (|error| <= 1.5e-7)."""
    a = np.abs(z)
    t = 1 / (1 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(z) * (1 - poly * np.exp(-a * a))


def _gelu(x):
    cdf = 0.5 * (1 + _erf_as(x * SQRT_HALF))
    return x * cdf, cdf


def _gelu_tanh(x):
    th = np.tanh(GELU_K * (x + GELU_C * x * x * x))
    return 0.5 * x * (1 + th), th


def _sigmoid(x):
    return 1 / (1 + np.exp(-np.clip(x, -80, None)))


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))), None


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e, None


def _log_softmax(x):
    y = x - x.max(axis=-1, keepdims=True)
    y -= np.log(np.exp(y).sum(axis=-1, keepdims=True))
    return y, None


def _layer_norm(x):
    xc = x - x.mean(axis=-1, keepdims=True)
    rstd = 1 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + 1e-5)
    xc *= rstd
    return xc, (xc, rstd)


def _layer_norm_grad(g, x, saved):
    xhat, rstd = saved
    return rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))


def _silu(x):
    s = _sigmoid(x)
    return x * s, s


def _leaky_relu(x):
    return np.maximum(x, x * np.float32(LEAKY_SLOPE)), None


def _leaky_relu_grad(g, x, _):
    slope = (x <= 0).astype(x.dtype)
    slope *= np.float32(LEAKY_SLOPE - 1)
    slope += 1
    return g * slope


def _elu(x, alpha=1.0, scale=1.0):
    neg = np.expm1(np.clip(x, -np.inf, 0))  # numpy's minimum with a scalar is 3x slower than clip
    neg *= np.float32(alpha)
    neg += np.clip(x, 0, np.inf)
    neg *= np.float32(scale)
    return neg, None


def _elu_grad(g, x, _, alpha=1.0, scale=1.0):
    slope = np.exp(np.clip(x, -np.inf, 0))
    if alpha != 1:  # alpha e^x below 0 and 1 above
        slope *= np.float32(alpha)
        slope *= x <= 0
        slope += x > 0
    slope *= np.float32(scale)
    slope *= g
    return slope


def _hardswish(x):
    y = np.clip(x + 3, 0, 6)
    y *= x
    y /= 6
    return y, None


def _hardswish_grad(g, x, _):
    slope = np.clip(x, -3, 3)
    slope /= 3
    slope += 0.5
    slope *= (x > -3) & (x < 3)
    slope += x >= 3
    slope *= g
    return slope


def _threshold(x):
    kept = x > THRESHOLD
    y = np.clip(x, THRESHOLD, None)
    y *= kept
    y += ~kept * np.float32(THRESHOLD_VALUE)
    return y, None


def _shrink_grad(g, x, _):
    return g * (np.abs(x) > SHRINK)


# name -> (numpy forward, numpy backward, engine/torch call taking (F, x))
ACTIVATIONS = {
    "gelu": (_gelu, lambda g, x, cdf: g * (cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)),
             lambda F, x: F.gelu(x)),
    "gelu tanh": (_gelu_tanh, lambda g, x, th: g * (0.5 * (1 + th) + 0.5 * GELU_K * x * (1 - th * th)
                                                    * (1 + 3 * GELU_C * x * x)),
                  lambda F, x: F.gelu(x, approximate="tanh")),
    "silu": (_silu, lambda g, x, s: g * s * (1 + x * (1 - s)), lambda F, x: F.silu(x)),
    "softplus": (_softplus, lambda g, x, _: g * _sigmoid(x), lambda F, x: F.softplus(x)),
    "softmax": (_softmax, lambda g, x, _: None, lambda F, x: F.softmax(x, dim=-1)),
    "log_softmax": (_log_softmax, lambda g, x, _: None, lambda F, x: F.log_softmax(x, dim=-1)),
    "layer_norm": (_layer_norm, _layer_norm_grad, lambda F, x: F.layer_norm(x, (ACT_SHAPE[-1],))),
    "leaky_relu": (_leaky_relu, _leaky_relu_grad, lambda F, x: F.leaky_relu(x, LEAKY_SLOPE)),
    "elu": (_elu, _elu_grad, lambda F, x: F.elu(x)),
    "selu": (lambda x: _elu(x, SELU_ALPHA, SELU_SCALE), lambda g, x, _: _elu_grad(g, x, _, SELU_ALPHA, SELU_SCALE),
             lambda F, x: F.selu(x)),
    "hardswish": (_hardswish, _hardswish_grad, lambda F, x: F.hardswish(x)),
    "threshold": (_threshold, lambda g, x, _: g * (x > THRESHOLD),
                  lambda F, x: F.threshold(x, THRESHOLD, THRESHOLD_VALUE)),
    "hardshrink": (lambda x: (x * (np.abs(x) > SHRINK), None), _shrink_grad, lambda F, x: F.hardshrink(x, SHRINK)),
    "softshrink": (lambda x: (x - np.clip(x, -SHRINK, SHRINK), None), _shrink_grad,
                   lambda F, x: F.softshrink(x, SHRINK)),
}


def _numpy_fb(name, forward, backward):
    """The hand-written forward and backward; softmax's backward needs its output, so it is spelled here."""
    def run(x, g):
        y, saved = forward(x)
        if name == "softmax":
            gy = g * y
            return gy - y * gy.sum(axis=-1, keepdims=True)
        if name == "log_softmax":
            return g - np.exp(y) * g.sum(axis=-1, keepdims=True)
        return backward(g, x, saved)
    return run


def activation_contenders(torch, name: str, x, g) -> tuple[dict, dict]:
    """{name: forward} and {name: forward and backward} of one activation for numpy, the engine and torch."""
    forward, backward, call = ACTIVATIONS[name]
    numpy_fb = _numpy_fb(name, forward, backward)
    xe, ge = engine.tensor(x, requires_grad=True), engine.tensor(g)

    def engine_fwd():
        with engine.no_grad():
            call(F, xe)

    def engine_fb():
        call(F, xe).backward(ge)
        xe.grad = None

    fwd = {"numpy": lambda: forward(x), "engine": engine_fwd}
    fb = {"numpy": lambda: numpy_fb(x, g), "engine": engine_fb}
    if torch:
        xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(g)

        def torch_fwd():
            with torch.no_grad():
                call(torch.nn.functional, xt)

        def torch_fb():
            call(torch.nn.functional, xt).backward(gt)
            xt.grad = None

        fwd["torch"], fb["torch"] = torch_fwd, torch_fb
    return fwd, fb


def activation_lines(torch, rounds: int, repeat: int, names=ACTIVATIONS) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(ACT_SHAPE).astype(np.float32) * 2
    g = rng.standard_normal(ACT_SHAPE).astype(np.float32)
    base = "torch" if torch else "numpy"
    shape = "x".join(map(str, ACT_SHAPE))
    for name in names:
        fwd, fb = activation_contenders(torch, name, x, g)
        report(f"{name} {shape}, forward", interleaved(fwd, rounds, repeat), base)
        report(f"{name} {shape}, fwd+bwd", interleaved(fb, rounds, repeat), base)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--only", choices=("conv", "act"), help="one family of lines")
    parser.add_argument("--act", nargs="+", choices=ACTIVATIONS, default=list(ACTIVATIONS), metavar="NAME",
                        help=f"these activations alone, of: {', '.join(ACTIVATIONS)}")
    args = parser.parse_args(argv)
    rounds, repeat = (3, 2) if args.quick else (11, 5)
    torch = try_torch()
    print(f"ops_cpu: numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}, "
          f"one thread each")
    if args.only in (None, "conv"):
        conv_lines(torch, rounds, repeat)
    if args.only in (None, "act"):
        activation_lines(torch, rounds, repeat, args.act)


if __name__ == "__main__":
    main()
