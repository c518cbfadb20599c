"""engine.nn.functional losses against finite differences and PyTorch, and their error messages."""

import re

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import ShapeError, kernels
from tests.engine.oracle import check_grads, finite_difference_check, needs_torch, torch

TF = torch.nn.functional if torch is not None else None
REDUCTIONS = ["mean", "sum", "none"]

TARGET = np.array([0, 3, 1, 3, 2])  # 5 samples, 4 classes
WITH_IGNORED = np.array([0, -100, 1, 3, -100])
CLASS_WEIGHT = np.array([0.5, 2.0, 1.0, 1.5])


def raises(exc, message):
    """pytest.raises matching `message` literally."""
    return pytest.raises(exc, match=re.escape(message))


def check(fn, specs, **kw):
    """check_grads of fn(engine.nn.functional, ...) against fn(torch.nn.functional, ...)."""
    check_grads(lambda *a: fn(F, *a), specs, torch_fn=lambda *a: fn(TF, *a), **kw)


def probabilities(shape, axis=1, seed=4):
    e = np.exp(np.random.default_rng(seed).standard_normal(shape))
    return e / e.sum(axis=axis, keepdims=True)


# ---- cross entropy with class indices -----------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy(reduction):
    check(lambda F, x, t: F.cross_entropy(x, t, reduction=reduction), [(5, 4), TARGET])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target,ignore_index", [(WITH_IGNORED, -100), (TARGET, 3)])
def test_cross_entropy_ignore_index(reduction, target, ignore_index):
    check(lambda F, x, t: F.cross_entropy(x, t, ignore_index=ignore_index, reduction=reduction),
          [(5, 4), target])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_class_weights(reduction):
    check(lambda F, x, t, w: F.cross_entropy(x, t, w, reduction=reduction),
          [(5, 4), WITH_IGNORED, CLASS_WEIGHT], wrt=[0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target", [TARGET, WITH_IGNORED])
def test_cross_entropy_label_smoothing(reduction, weighted, target):
    if weighted:
        check(lambda F, x, t, w: F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.2),
              [(5, 4), target, CLASS_WEIGHT], wrt=[0])
    else:
        check(lambda F, x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=0.2),
              [(5, 4), target])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_nd_input(reduction):
    target = np.array([[[0, 2], [1, 1]], [[2, -100], [0, 1]]])  # (N, d1, d2) for input (N, C, d1, d2)
    check(lambda F, x, t, w: F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.1),
          [(2, 3, 2, 2), target, CLASS_WEIGHT[:3]], wrt=[0])
    check(lambda F, x, t: F.cross_entropy(x, t, reduction=reduction), [(2, 3, 4), target.reshape(2, 4) % 3])


def test_cross_entropy_unbatched():
    check(lambda F, x, t: F.cross_entropy(x, t), [(4,), np.array(2)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_probability_targets(reduction, smoothing):
    check(lambda F, x, q: F.cross_entropy(x, q, reduction=reduction, label_smoothing=smoothing),
          [(5, 4), probabilities((5, 4))])
    check(lambda F, x, q, w: F.cross_entropy(x, q, w, reduction=reduction, label_smoothing=smoothing),
          [(2, 4, 3), probabilities((2, 4, 3)), CLASS_WEIGHT], wrt=[0, 1])


def test_cross_entropy_is_one_fused_node():
    x = engine.randn(5, 4, requires_grad=True)
    loss = F.cross_entropy(x, engine.tensor(TARGET))
    assert loss.grad_fn.name() == "CrossEntropyBackward0"
    assert loss.grad_fn.next_functions[0][0].variable is x


@needs_torch
def test_cross_entropy_is_stable_for_huge_logits():
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, 1e4, 0.0]], np.float32)
    t = np.array([2, 1])
    ours = F.cross_entropy(engine.tensor(x), engine.tensor(t), reduction="none").numpy()
    ref = TF.cross_entropy(torch.tensor(x), torch.tensor(t), reduction="none").numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert np.isfinite(ours).all()


def test_cross_entropy_shape_errors():
    x = engine.randn(4, 5)
    with raises(ShapeError, "cross_entropy: target has shape (3,) but input has batch size 4"):
        F.cross_entropy(x, engine.tensor([0, 1, 2]))
    with raises(ShapeError, "cross_entropy: target has shape (2, 4) but input of shape (2, 3, 5) "
                            "needs a target of shape (2, 5)"):
        F.cross_entropy(engine.randn(2, 3, 5), engine.zeros(2, 4, dtype=engine.int64))
    with raises(ShapeError, "cross_entropy: weight has shape (4,) but input has 5 classes"):
        F.cross_entropy(x, engine.tensor([0, 1, 2, 3]), engine.ones(4))
    with raises(ShapeError, "class indices must be an integer tensor (use target.long())"):
        F.cross_entropy(x, engine.tensor([0.0, 1.0, 2.0, 3.0]))


def test_cross_entropy_target_errors():
    x = engine.randn(4, 5)
    with raises(IndexError, "cross_entropy: target 5 is out of bounds for 5 classes"):
        F.cross_entropy(x, engine.tensor([0, 1, 5, 3]))
    with raises(IndexError, "cross_entropy: target -1 is out of bounds"):
        F.cross_entropy(x, engine.tensor([0, -1, 2, 3]))
    with raises(IndexError, "cross_entropy: target 9 is out of bounds"):  # ignored rows aside
        F.cross_entropy(x, engine.tensor([0, -100, 9, 3]))
    with raises(ValueError, "cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(x, engine.tensor([0, 1, 2, 3]), reduction="avg")
    with raises(ValueError, "cross_entropy: label_smoothing must be between 0.0 and 1.0, got 1.5"):
        F.cross_entropy(x, engine.tensor([0, 1, 2, 3]), label_smoothing=1.5)
    with raises(TypeError, "cross_entropy: expected a floating point tensor, got int64"):
        F.cross_entropy(engine.zeros(4, 5, dtype=engine.int64), engine.tensor([0, 1, 2, 3]))


def test_cpu_targets_are_checked_by_the_call_itself():
    kernels.settle_device_checks()  # nothing is ever pending on the CPU
    message = "nll_loss: target -2 is out of bounds for 3 classes (valid: 0 to 2, or ignore_index=-100)"
    with pytest.raises(IndexError, match=re.escape(message) + "$"):
        F.nll_loss(engine.randn(2, 3), engine.tensor([0, -2]))


# ---- nll loss --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    check(lambda F, x, t, w: F.nll_loss(x, t, w, reduction=reduction), [(5, 4), WITH_IGNORED, CLASS_WEIGHT],
          wrt=[0])
    check(lambda F, x, t: F.nll_loss(F.log_softmax(x, 1), t, ignore_index=3, reduction=reduction),
          [(5, 4), TARGET])
    check(lambda F, x, t: F.nll_loss(x, t, reduction=reduction),
          [(2, 3, 4), np.array([[0, 2, 1, 1], [2, 0, 0, 1]])])


def test_nll_loss_errors():
    with raises(ShapeError, "nll_loss: target has shape (2,) but input has batch size 3"):
        F.nll_loss(engine.randn(3, 4), engine.tensor([0, 1]))
    with raises(IndexError, "nll_loss: target 4 is out of bounds for 4 classes"):
        F.nll_loss(engine.randn(2, 4), engine.tensor([0, 4]))


# ---- regression losses --------------------------------------------------------------------------------
REGRESSION = {
    "mse": lambda F, x, y, r: F.mse_loss(x, y, reduction=r),
    "l1": lambda F, x, y, r: F.l1_loss(x, y, reduction=r),
    "smooth_l1": lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r),
    "smooth_l1_beta": lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.5),
    "smooth_l1_beta0": lambda F, x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.0),
    "huber": lambda F, x, y, r: F.huber_loss(x, y, reduction=r),
    "huber_delta": lambda F, x, y, r: F.huber_loss(x, y, reduction=r, delta=0.4),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", REGRESSION)
def test_regression_losses(name, reduction):
    check(lambda F, x, y: REGRESSION[name](F, x, y, reduction), [(3, 4), (3, 4)])


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's and ours, from the comparison with torch
@pytest.mark.parametrize("name", REGRESSION)
def test_regression_losses_broadcast_mismatched_shapes_with_torchs_warning(name):
    # a critic's (N, 1) output against (N,) targets: torch broadcasts to (N, N) with a warning, and ported scripts
    # ran into a refusal here; values and gradients as torch's, the warning at the caller's line
    check(lambda F, x, y: REGRESSION[name](F, x, y, "mean"), [(4, 1), (4,)])
    with pytest.warns(UserWarning, match=r"target shape \(4,\) differs from input shape \(4, 1\); they are "
                                         r"broadcast to \(4, 4\)") as caught:
        REGRESSION[name](F, engine.randn(4, 1), engine.randn(4), "mean")
    assert caught[0].filename == __file__


def test_regression_losses_refuse_mismatched_shapes():
    with raises(ShapeError, "mse_loss: target shape (3,) and input shape (4, 1, 2) do not broadcast"):
        F.mse_loss(engine.randn(4, 1, 2), engine.randn(3))
    with raises(ValueError, "huber_loss: delta must be > 0, got 0"):
        F.huber_loss(engine.randn(3), engine.randn(3), delta=0)
    with raises(ValueError, "smooth_l1_loss: beta must be >= 0, got -1"):
        F.smooth_l1_loss(engine.randn(3), engine.randn(3), beta=-1)


# ---- binary cross entropy -----------------------------------------------------------------------------
def _unit(shape, seed=5, lo=0.05, hi=0.95):
    return np.random.default_rng(seed).uniform(lo, hi, shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    check(lambda F, p, t: F.binary_cross_entropy(p, t, reduction=reduction),
          [_unit((3, 4)), _unit((3, 4), 6)])
    check(lambda F, p, t, w: F.binary_cross_entropy(p, t, w, reduction=reduction),
          [_unit((3, 4)), _unit((3, 4), 6), _unit((4,), 7)], wrt=[0, 1])


@needs_torch
def test_binary_cross_entropy_clamps_the_log_like_torch():
    p, t = np.array([0.0, 1.0, 0.5, 1.0], np.float32), np.array([1.0, 0.0, 1.0, 1.0], np.float32)
    ours = F.binary_cross_entropy(engine.tensor(p), engine.tensor(t), reduction="none").numpy()
    ref = TF.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction="none").numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert ours[0] == 100.0


def test_binary_cross_entropy_errors():
    with raises(RuntimeError, "binary_cross_entropy: input must hold probabilities in [0, 1]"):
        F.binary_cross_entropy(engine.tensor([0.5, 1.5]), engine.tensor([1.0, 0.0]))
    with raises(ShapeError, "binary_cross_entropy: target has shape (2,) but input has shape (2, 1)"):
        F.binary_cross_entropy(engine.tensor([[0.5], [0.2]]), engine.tensor([1.0, 0.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    bce = F.binary_cross_entropy_with_logits
    check(lambda F, x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
          [(3, 4), _unit((3, 4))])
    check(lambda F, x, t, w, pw: F.binary_cross_entropy_with_logits(x, t, w, reduction=reduction,
                                                                    pos_weight=pw),
          [(3, 4), _unit((3, 4)), _unit((3, 1), 8), _unit((4,), 9) * 3], wrt=[0, 1])
    # torch gives weight and pos_weight no gradient; the engine does, checked by finite differences
    finite_difference_check(
        lambda x, t, w, pw: bce(x, t, w, reduction=reduction, pos_weight=pw),
        [np.ones((2, 3)), _unit((2, 3)), _unit((2, 1), 8), _unit((3,), 9) * 3])


@needs_torch
def test_binary_cross_entropy_with_logits_is_stable_for_huge_logits():
    x, t = np.array([-200.0, 200.0, 90.0, -90.0], np.float32), np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    e = engine.tensor(x, requires_grad=True)
    ours = F.binary_cross_entropy_with_logits(e, engine.tensor(t), reduction="sum")
    ours.backward()
    ref = TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t), reduction="sum")
    np.testing.assert_allclose(ours.item(), ref.item(), rtol=1e-6)
    np.testing.assert_allclose(e.grad.numpy(), [-1, 1, 0, 0], atol=1e-6)
