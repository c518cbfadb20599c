"""What a PyTorch user porting a training script met: each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.oracle import finite_difference_check, needs_torch, torch, torch_check

rng = np.random.default_rng(7)


# ---- numpy scalars count as Python numbers (float32 * np.float64 stays float32) -------------------
@pytest.mark.parametrize("scalar", [np.float64(2.5), np.sqrt(np.float64(16.0)), np.float32(0.5)])
def test_numpy_scalar_keeps_float32(scalar):
    x = engine.randn(3, 4)
    for out in (x * scalar, scalar * x, x / scalar, x + scalar, x - scalar, x.clamp(min=scalar)):
        assert out.dtype == engine.float32
    y = x.clone()
    y.mul_(scalar)
    assert y.dtype == engine.float32
    # the usual attention scaling by np.sqrt(d) must still feed a float32 Linear
    nn.Linear(4, 2)(x / np.sqrt(np.float64(4)))


@needs_torch
def test_numpy_scalar_dtype_matches_torch():
    a = rng.standard_normal(5).astype(np.float32)
    for s in (np.float64(1.5), np.int64(3)):
        assert (engine.tensor(a) * s).dtype.name == str((torch.tensor(a) * s).dtype).removeprefix("torch.")
        ints = engine.tensor([1, 2]) * s
        assert ints.dtype.name == str((torch.tensor([1, 2]) * s).dtype).removeprefix("torch.")


# ---- in-place writes that do not depend on the old value cut its gradient -------------------------
@needs_torch
@pytest.mark.parametrize("write", ["zero_", "fill_", "copy_"])
def test_overwrite_gives_old_history_zero_gradient(write):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    w = rng.standard_normal((3, 4)).astype(np.float32)

    def run(lib):
        x = lib.tensor(a, requires_grad=True)
        y = x * 2
        if write == "zero_":
            y.zero_()
        elif write == "fill_":
            y.fill_(3.0)
        else:
            y.copy_(lib.tensor(w))
        ((y + x) * lib.tensor(w)).sum().backward()  # x also reaches the loss directly
        return y.detach().numpy(), x.grad.numpy()

    (out, grad), (out_t, grad_t) = run(engine), run(torch)
    np.testing.assert_allclose(out, out_t)
    np.testing.assert_allclose(grad, grad_t)  # w, not 3 * w


@needs_torch
def test_copy_into_non_leaf_sends_gradient_to_source():
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)

    def run(lib):
        x, s = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        y = x * 2
        y.copy_(s)  # broadcast (3,) into (2, 3)
        (y * y).sum().backward()
        return (np.zeros_like(a) if x.grad is None else x.grad.numpy()), s.grad.numpy()

    for ours, theirs in zip(run(engine), run(torch), strict=True):  # x: None here, zeros in torch
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


# ---- mul saves only what backward reads: writing into its input is then allowed ---------------------
@needs_torch
def test_setitem_from_scaled_view_of_itself():
    a = rng.standard_normal((3, 4)).astype(np.float32)

    def run(lib):
        x = lib.tensor(a, requires_grad=True)
        y = x * 1
        y[:, 0] = y[:, 1] * 2  # box-coordinate style edit; PyTorch allows it
        (y * lib.tensor(a)).sum().backward()
        return y.detach().numpy(), x.grad.numpy()

    for ours, theirs in zip(run(engine), run(torch), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_mul_still_catches_change_of_saved_operand():
    x = engine.randn(3, requires_grad=True)
    y = x * 1
    z = y * x  # saves y for x's gradient
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


# ---- remainder (%) is differentiable, as in PyTorch -------------------------------------------------
@needs_torch
def test_remainder_gradients_match_torch():
    a = np.array([-1.3, 0.4, 2.7, 5.1], np.float32)
    b = np.array([0.5, -0.7, 1.1, 2.0], np.float32)
    torch_check(lambda x, y: x % y, [a, b])
    torch_check(lambda x: x % 0.75, [a])
    torch_check(lambda x: x.remainder(1.5), [a])


def test_remainder_finite_differences_and_ints():
    a = np.array([-1.3, 0.4, 2.7, 5.1])
    finite_difference_check(lambda x: (x * 3) % 1.1, [a])
    assert (engine.tensor([5, 7]) % 3).tolist() == [2, 1]
    assert (engine.tensor([5, 7]) % 3).dtype == engine.int64


# ---- kl_div / KLDivLoss -----------------------------------------------------------------------------
@needs_torch
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    logits = rng.standard_normal((4, 5)).astype(np.float32)
    p = np.exp(rng.standard_normal((4, 5))).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    p[0, 2] = 0.0  # a zero probability contributes 0 (0 * log 0)
    t = np.log(p + 1e-3) if log_target else p
    torch_check(
        lambda x, y: F.kl_div(F.log_softmax(x, dim=1), y, reduction=reduction, log_target=log_target),
        [logits, t],
        torch_fn=lambda x, y: torch.nn.functional.kl_div(
            torch.nn.functional.log_softmax(x, dim=1), y, reduction=reduction, log_target=log_target),
        wrt=[0] if not log_target else None,
    )


@needs_torch
def test_kl_div_loss_module():
    x = rng.standard_normal((3, 4)).astype(np.float32)
    p = np.full((3, 4), 0.25, np.float32)
    ours = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(engine.tensor(x), dim=1), engine.tensor(p))
    theirs = torch.nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(torch.tensor(x), 1), torch.tensor(p))
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-5)


def test_kl_div_bad_input():
    with pytest.raises(engine.ShapeError, match="kl_div"):
        F.kl_div(engine.randn(3, 4), engine.randn(3, 5))
    with pytest.raises(ValueError, match="batchmean"):
        F.kl_div(engine.randn(3, 4), engine.randn(3, 4), reduction="avg")


def test_kl_div_finite_differences():
    x = rng.standard_normal((3, 4))
    p = np.abs(rng.standard_normal((3, 4))) + 0.1
    finite_difference_check(lambda a, t: F.kl_div(a, t, reduction="batchmean"), [x, p])
    finite_difference_check(lambda a, t: F.kl_div(a, t, reduction="sum", log_target=True), [x, np.log(p)])


# ---- lerp_ (EMA weights), addcmul_, addcdiv_ --------------------------------------------------------
@needs_torch
def test_lerp_addcmul_addcdiv_match_torch():
    a, b, c = (rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3))
    c = np.abs(c) + 0.5
    torch_check(lambda x, y: x.lerp(y, 0.3), [a, b])
    torch_check(lambda x, y, z: x.addcmul(y, z, value=0.5), [a, b, c])
    torch_check(lambda x, y, z: x.addcdiv(y, z, value=-2), [a, b, c])
    torch_check(lambda x, y, w: x.lerp(y, w.sigmoid()), [a, b, c])


def test_ema_update_with_lerp_in_place():
    model, ema = nn.Linear(3, 2), nn.Linear(3, 2)
    before = ema.weight.detach().numpy().copy()
    with engine.no_grad():
        for e, p in zip(ema.parameters(), model.parameters(), strict=True):
            e.lerp_(p, 0.1)
    expected = before + 0.1 * (model.weight.detach().numpy() - before)
    np.testing.assert_allclose(ema.weight.detach().numpy(), expected, rtol=1e-6)


# ---- einsum names the subscript whose sizes disagree (numpy's message spoke of "remapped shapes") ----
def test_einsum_size_mismatch_names_subscript():
    with pytest.raises(engine.ShapeError, match=r"subscript 'j' has size 4 in operand 1 .*size 3 in operand 0"):
        engine.einsum("ij,jk->ik", engine.randn(2, 3), engine.randn(4, 5))
    # size-1 dimensions still broadcast, as in torch
    assert engine.einsum("ij,jk->ik", engine.randn(2, 1), engine.randn(3, 5)).shape == (2, 5)
