"""Class-index losses and embeddings on a GPU: a training step never waits for the GPU, a bad index is still reported
(by a later call, with its value and position), and the fused kernel with ignored rows equals the plain
formulas and the CPU."""

import contextlib
import re

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine import kernels
from engine.backend import cupy_module
from tests.engine.test_devices import NO_GPU, waits_for_gpu

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(NO_GPU is not None, reason=NO_GPU or "")]


@pytest.fixture(autouse=True)
def _no_checks_left_over():
    """Each test starts with no pending device check: an earlier test's bad target must not raise here."""
    while True:
        try:
            kernels.settle_device_checks()
            break
        except IndexError:
            continue
    yield


def raises(exc, message):
    return pytest.raises(exc, match=re.escape(message))


def cuda(a, **kw):
    return engine.tensor(a, device="cuda", **kw)


def host(t) -> np.ndarray:
    """A tensor's values, read straight from its array (so that reading them raises nothing of its own)."""
    return t.array if isinstance(t.array, np.ndarray) else cupy_module().asnumpy(t.array)


# ---- a step does not wait for the GPU -------------------------------------------------------------------
LOSSES = {
    "cross_entropy": lambda z, y, w: F.cross_entropy(z, y),
    "cross_entropy, ignore_index, sum": lambda z, y, w: F.cross_entropy(z, y, ignore_index=2, reduction="sum"),
    "cross_entropy, weights, smoothing": lambda z, y, w: F.cross_entropy(z, y, w, label_smoothing=0.1),
    "nll_loss": lambda z, y, w: F.nll_loss(F.log_softmax(z, 1), y),
    "cross_entropy, kernels disabled": lambda z, y, w: F.cross_entropy(z, y),
}


def _manual_sgd(params):
    def step():
        with engine.no_grad():
            for p in params:
                p -= 0.01 * p.grad
                p.grad = None
    return step


OPTIMIZERS = {
    "p -= lr * p.grad": _manual_sgd,
    "SGD momentum": lambda ps: engine.optim.SGD(ps, lr=0.01, momentum=0.9).step,
    "Adam": lambda ps: engine.optim.Adam(ps, lr=1e-3).step,
}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("loss", LOSSES)
def test_a_training_step_does_not_wait_for_the_gpu(loss, optimizer):
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to("cuda")
    params = list(model.parameters())
    update = OPTIMIZERS[optimizer](params)
    x = engine.randn(32, 64, device="cuda")
    y = engine.randint(0, 10, (32,), device="cuda")
    w = engine.rand(10, device="cuda") + 0.5
    context = kernels.disabled if "disabled" in loss else contextlib.nullcontext

    def step():
        for p in params:
            p.grad = None
        LOSSES[loss](model(x), y, w).backward()
        update()

    with context():
        step()  # compiles the kernels and fills the memory pools, either of which may wait for the GPU
        step()
        waited = waits_for_gpu(step)
    assert not waited, f"a step with {loss} and {optimizer} waited for the GPU"


# ---- bad targets: reported later, never read out of bounds ------------------------------------------------
CALLS = {
    "fused": lambda x, t: F.cross_entropy(x, t),
    "fused, sum": lambda x, t: F.cross_entropy(x, t, reduction="sum"),
    "weighted": lambda x, t: F.cross_entropy(x, t, engine.ones(5, device="cuda")),
    "smoothed": lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
    "kernels disabled": lambda x, t: F.cross_entropy(x, t),
    "nll_loss": lambda x, t: F.nll_loss(F.log_softmax(x, 1), t),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("bad", [7, -1])
def test_a_bad_target_raises_at_the_next_call_after_backward(call, bad):
    fn = CALLS[call]
    op = "nll_loss" if call == "nll_loss" else "cross_entropy"
    x = cuda(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    context = kernels.disabled if call == "kernels disabled" else contextlib.nullcontext
    with context():
        loss = fn(x, cuda([0, 1, bad, 3]))  # checked on the device: this call does not wait to find out
        loss.backward()
        assert np.isfinite(host(loss)).all()
        np.testing.assert_array_equal(host(x.grad)[2], 0.0)  # the bad row is left out, like an ignored one
        with raises(IndexError, f"{op}: target {bad} is out of bounds for 5 classes (valid: 0 to 4, or "
                                f"ignore_index=-100); found at target[2] by the device-side check of an "
                                f"earlier {op} call"):
            fn(x, cuda([0, 1, 2, 3]))
        fn(x, cuda([0, 1, 2, 3]))  # raised once


@pytest.mark.parametrize("disabled", [False, True])
def test_a_bad_call_computes_the_loss_with_that_element_ignored(disabled):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    t = rng.integers(0, 5, (2, 3))
    t[1, 2] = 9
    ignored = t.copy()
    ignored[1, 2] = -100
    with kernels.disabled() if disabled else contextlib.nullcontext():
        xg = cuda(x, requires_grad=True)
        loss = F.cross_entropy(xg, cuda(t))
        loss.backward()
    xc = engine.tensor(x, requires_grad=True)
    expected = F.cross_entropy(xc, engine.tensor(ignored))
    expected.backward()
    np.testing.assert_allclose(host(loss), host(expected), rtol=1e-5)
    np.testing.assert_allclose(host(xg.grad), xc.grad.numpy(), rtol=1e-5, atol=1e-7)
    with raises(IndexError, "cross_entropy: target 9 is out of bounds for 5 classes (valid: 0 to 4, or "
                            "ignore_index=-100); found at target[1, 2]"):
        kernels.settle_device_checks()


def test_without_backward_the_error_comes_at_the_latest_nine_calls_later():
    x = cuda(np.zeros((3, 4), np.float32))
    good = cuda([0, 1, 2])
    F.cross_entropy(x, cuda([0, 4, 1]))
    with raises(IndexError, "cross_entropy: target 4 is out of bounds for 4 classes"):
        for _ in range(9):
            F.cross_entropy(x, good)


def test_settling_waits_for_the_gpu_and_raises_once():
    F.nll_loss(cuda(np.zeros((2, 3), np.float32)), cuda([5, 0]))
    with raises(IndexError, "nll_loss: target 5 is out of bounds for 3 classes (valid: 0 to 2, or "
                            "ignore_index=-100); found at target[0]"):
        kernels.settle_device_checks()
    kernels.settle_device_checks()


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_targets_of_either_integer_dtype(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    t = rng.integers(0, 4, 6).astype(dtype)
    for disabled in (False, True):
        with kernels.disabled() if disabled else contextlib.nullcontext():
            ours = host(F.cross_entropy(cuda(x), cuda(t), reduction="none"))
        np.testing.assert_allclose(ours, F.cross_entropy(engine.tensor(x), engine.tensor(t),
                                                         reduction="none").numpy(), rtol=1e-5)
    t[3] = -200
    F.cross_entropy(cuda(x), cuda(t), ignore_index=2**40)  # no int32 equals it: nothing is ignored
    with raises(IndexError, "cross_entropy: target -200 is out of bounds for 4 classes (valid: 0 to 3, or "
                            f"ignore_index={2**40}); found at target[3]"):
        kernels.settle_device_checks()


# ---- the fused kernel with ignored rows: the plain formulas and the CPU ------------------------------------
TARGETS = {
    "all classes": (np.array([0, 3, 1, 3, 2, 0]), -100),
    "some ignored": (np.array([0, -100, 1, 3, -100, 2]), -100),
    "ignore_index a class": (np.array([0, 3, 1, 3, 2, 0]), 3),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", TARGETS)
def test_fused_cross_entropy_equals_the_plain_formulas_and_the_cpu(case, reduction, dtype):
    t, ignore_index = TARGETS[case]
    x = np.random.default_rng(3).standard_normal((6, 4)).astype(dtype)
    cotangent = np.linspace(-1, 1.5, 6).astype(dtype)
    results = []
    for device, context in (("cuda", contextlib.nullcontext), ("cuda", kernels.disabled),
                            ("cpu", contextlib.nullcontext)):
        with context():
            xt = engine.tensor(x, device=device, requires_grad=True)
            out = F.cross_entropy(xt, engine.tensor(t, device=device), ignore_index=ignore_index,
                                  reduction=reduction)
            (out * engine.tensor(cotangent, device=device) if reduction == "none" else out).sum().backward()
        results.append((host(out), host(xt.grad)))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for out, grad in results[1:]:
        np.testing.assert_allclose(results[0][0], out, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(results[0][1], grad, rtol=rtol, atol=rtol)


# ---- embedding indices: the same device-side check ---------------------------------------------------------
@pytest.mark.parametrize("bad", [6, -2])
def test_a_bad_embedding_index_raises_at_the_next_call_after_backward(bad):
    engine.manual_seed(0)
    emb = nn.Embedding(6, 3).to("cuda")
    out = emb(cuda([[0, 1], [bad, 5]]))  # checked on the device: nothing waits
    np.testing.assert_array_equal(host(out)[1, 0], host(emb.weight)[0])  # row 0 stands in meanwhile
    out.sum().backward()
    with raises(IndexError, f"embedding: index {bad} is out of range for weight of shape (6, 3) (valid: 0 to 5); "
                            "found at input[1, 0] by the device-side check of an earlier embedding call"):
        emb(cuda([0, 1]))
    emb(cuda([0, 1]))  # raised once


def test_a_bad_embedding_index_raises_when_a_value_is_read_back():
    emb = nn.Embedding(4, 2).to("cuda")
    out = emb(cuda([3, 9, 0]))
    with raises(IndexError, "embedding: index 9 is out of range for weight of shape (4, 2)"):
        out.sum().item()


def test_an_embedding_step_does_not_wait_for_the_gpu():
    emb = nn.Embedding(100, 16).to("cuda")
    opt = engine.optim.SGD(emb.parameters(), lr=0.1)
    idx = engine.randint(0, 100, (64, 8), device="cuda")

    def step():
        opt.zero_grad()
        emb(idx).square().mean().backward()
        opt.step()

    step()
    assert not waits_for_gpu(step), "an embedding step waited for the GPU"
