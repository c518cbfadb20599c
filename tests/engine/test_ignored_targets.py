"""Rows whose class target is ignore_index count for nothing in cross_entropy and nll_loss, as in PyTorch: with every
target ignored the mean is NaN (0 / 0) but every gradient is 0 (it was NaN); an ignored row of inf logits leaves the
loss finite (it was NaN); an inf incoming gradient at an ignored row of reduction='none' gives that row 0 (it gave
NaN). Checked with plain backward, with create_graph=True, against PyTorch where installed, and on a GPU the fused
kernel against the plain formulas and the CPU. Also here: cross_entropy against class probabilities gives `weight`
its gradient (it gave none)."""

import contextlib

import numpy as np
import pytest

import engine
from engine import kernels
from tests.engine.oracle import check_grads, lib, torch
from tests.engine.test_devices import NO_GPU


def _f(t):
    return engine.nn.functional if isinstance(t, engine.Tensor) else torch.nn.functional


# name -> loss of logits z, class targets t and class weights w (None: unweighted)
LOSSES = {
    "cross_entropy": lambda z, t, w, r: _f(z).cross_entropy(z, t, w, reduction=r),
    "cross_entropy, label_smoothing": lambda z, t, w, r: _f(z).cross_entropy(z, t, w, reduction=r,
                                                                            label_smoothing=0.2),
    "nll_loss": lambda z, t, w, r: _f(z).nll_loss(_f(z).log_softmax(z, 1), t, w, reduction=r),
    "cross_entropy, ignore_index a class": lambda z, t, w, r: _f(z).cross_entropy(
        z, lib(z).where(t < 0, 2, t), w, reduction=r, ignore_index=2),
}
WEIGHTS = {"no weight": None, "weight": np.array([0.5, 2.0, 1.5], np.float32)}
LOGITS_4D = np.random.default_rng(0).standard_normal((2, 3, 2, 2)).astype(np.float32)


def _run(lib_, loss, z, t, w, reduction, cotangent=None, create_graph=False, device="cpu"):
    """The loss and the logits' gradient of sum(loss * cotangent) (of the loss, for a reduced one)."""
    kw = {} if lib_ is torch else {"device": device}
    zt = lib_.tensor(z, requires_grad=True, **kw)
    out = loss(zt, lib_.tensor(t, **kw), None if w is None else lib_.tensor(w, **kw), reduction)
    up = lib_.tensor(np.ones(tuple(out.shape), z.dtype) if cotangent is None else cotangent, **kw)
    (g,) = lib_.autograd.grad(out, [zt], up, create_graph=create_graph)
    return out.detach().cpu().numpy(), g.detach().cpu().numpy()


def _every_lib(create_graph: bool):
    """The engine (plain backward, or create_graph=True), then torch if it is installed."""
    yield lambda *a, **k: _run(engine, *a, create_graph=create_graph, **k)
    if torch is not None:
        yield lambda *a, **k: _run(torch, *a, **k)


MODES = pytest.mark.parametrize("create_graph", [False, True], ids=["backward", "create_graph"])


@MODES
@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("shape", ["2-d", "4-d"])
def test_every_target_ignored_gives_a_nan_mean_and_zero_gradients(shape, loss, weight, create_graph):
    z = LOGITS_4D if shape == "4-d" else LOGITS_4D[0, :, 0].T.copy()
    t = np.full(z.shape[:1] + z.shape[2:], -100)
    for run in _every_lib(create_graph):
        for reduction in ("mean", "sum"):
            out, grad = run(LOSSES[loss], z, t, WEIGHTS[weight], reduction)
            assert np.isnan(out) if reduction == "mean" else out == 0
            np.testing.assert_array_equal(grad, np.zeros_like(z))


@MODES
@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_an_ignored_row_of_inf_logits_counts_for_nothing(reduction, loss, weight, create_graph):
    z = np.array([[1.0, 2.0, 0.5], [-np.inf, -np.inf, -np.inf], [0.3, -1.0, 2.0], [np.inf, 0.0, 1.0]], np.float32)
    t = np.array([1, -100, 2, -100])
    kept = [0, 2]
    for run in _every_lib(create_graph):
        out, grad = run(LOSSES[loss], z, t, WEIGHTS[weight], reduction)
        alone, grad_alone = run(LOSSES[loss], z[kept], t[kept], WEIGHTS[weight], reduction)
        if reduction == "none":
            np.testing.assert_array_equal(out[[1, 3]], [0, 0])
            out = out[kept]
        np.testing.assert_allclose(out, alone, rtol=1e-6)
        np.testing.assert_allclose(grad[kept], grad_alone, rtol=1e-6)
        assert np.isnan(grad[[1, 3]]).all()  # as PyTorch's: no loss, but p * 0 with p NaN in the softmax's backward


@MODES
@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("loss", LOSSES)
def test_an_inf_gradient_at_an_ignored_row_gives_it_zero(loss, weight, create_graph):
    z = LOGITS_4D[0, :, 0].T.copy()
    t = np.array([1, -100])
    for run in _every_lib(create_graph):
        _, grad = run(LOSSES[loss], z, t, WEIGHTS[weight], "none", cotangent=np.float32([0.5, np.inf]))
        _, expected = run(LOSSES[loss], z, t, WEIGHTS[weight], "none", cotangent=np.float32([0.5, 0.0]))
        np.testing.assert_array_equal(grad, expected)
        np.testing.assert_array_equal(grad[1], [0, 0, 0])


def test_the_fuzzers_ignored_row_behind_a_sqrt():
    # row 0: loss log(e + e^2) - 2, times d sqrt = 1 / (2 sqrt(loss)), times (softmax - one-hot) = (p0, -p0)
    loss0 = np.log(np.e + np.e ** 2) - 2
    p0 = 1 / (1 + np.e)
    expected = [[p0 / (2 * np.sqrt(loss0)), -p0 / (2 * np.sqrt(loss0))], [0, 0]]
    for t in (engine, torch) if torch is not None else (engine,):
        x = t.tensor([[1.0, 2.0], [0.5, 0.1]], requires_grad=True)
        t.nn.functional.cross_entropy(x, t.tensor([1, -100]), reduction="none").sqrt().sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


# ---- the fused CUDA kernel: the plain formulas and the CPU ------------------------------------------------------
GPU_CASES = {
    "every target ignored": (LOGITS_4D[0, :, 0].T.copy(), np.array([-100, -100]), "mean", None),
    "an ignored row of -inf logits": (np.float32([[1, 2, 0.5], [-np.inf] * 3]), np.array([1, -100]), "mean", None),
    "an inf gradient at an ignored row": (LOGITS_4D[0, :, 0].T.copy(), np.array([1, -100]), "none",
                                          np.float32([0.5, np.inf])),
}


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU is not None, reason=NO_GPU or "")
@pytest.mark.parametrize("case", GPU_CASES)
def test_the_fused_kernel_agrees(case):
    z, t, reduction, cotangent = GPU_CASES[case]
    results = []
    for device, context in (("cuda", contextlib.nullcontext), ("cuda", kernels.disabled),
                            ("cpu", contextlib.nullcontext)):
        with context():
            results.append(_run(engine, LOSSES["cross_entropy"], z, t, None, reduction, cotangent, device=device))
    for out, grad in results[1:]:
        np.testing.assert_allclose(results[0][0], out, rtol=1e-6)  # NaN matches NaN
        np.testing.assert_allclose(results[0][1], grad, rtol=1e-6)


# ---- class probabilities: the weight's gradient -----------------------------------------------------------------
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2), (3,)])
def test_class_probability_targets_give_the_weight_its_gradient(shape, reduction, label_smoothing):
    check_grads(lambda x, q, w: _f(x).cross_entropy(x, q, w, reduction=reduction, label_smoothing=label_smoothing),
                [shape, shape, (3,)])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_the_weights_gradient_is_differentiable(label_smoothing):
    """create_graph=True: d/dw of the sum of the logits' and the weight's gradients, by finite differences."""
    rng = np.random.default_rng(5)
    x, q = rng.standard_normal((4, 3)), rng.random((4, 3))

    def second(w):
        wt = engine.tensor(w, requires_grad=True)
        xt = engine.tensor(x, requires_grad=True)
        loss = engine.nn.functional.cross_entropy(xt, engine.tensor(q), wt, label_smoothing=label_smoothing)
        gx, gw = engine.autograd.grad(loss, [xt, wt], create_graph=True)
        return wt, (gx ** 2).sum() + gw.sum()

    w = rng.random(3) + 0.5
    wt, s = second(w)
    (analytic,) = engine.autograd.grad(s, [wt])
    numeric = [(second(w + d)[1].item() - second(w - d)[1].item()) / 2e-6 for d in np.eye(3) * 1e-6]
    np.testing.assert_allclose(analytic.numpy(), numeric, rtol=1e-5, atol=1e-7)
