"""F.affine_grid, F.grid_sample and F.ctc_loss / nn.CTCLoss against PyTorch (float64, tight) and float64
finite differences: values, gradients in the input and the grid (and theta), every mode, padding and
align_corners, grids reaching past the border, and CTC with repeated labels, empty targets and inputs
too short for their targets."""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.oracle import cuda_or_skip, finite_difference_check, needs_torch, torch

RNG = np.random.default_rng(11)
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def _compare(fn, torch_fn, arrays, name):
    """fn on engine float64 tensors and torch_fn on torch ones: the output and every float input's gradient."""
    ours = [engine.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out, ref = fn(*ours), torch_fn(*theirs)
    assert tuple(out.shape) == tuple(ref.shape), name
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), err_msg=f"{name}: values", **TIGHT)
    r = RNG.standard_normal(tuple(ref.shape))
    (out * engine.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"{name}: gradient of input {i}",
                                       **TIGHT)
    return out


# ---- grid_sample ----------------------------------------------------------------------------------------------
GRID_CASES = [(mode, pad, corners) for mode, pad, corners in
              itertools.product(["bilinear", "nearest", "bicubic"], ["zeros", "border", "reflection"], [False, True])]


@needs_torch
@pytest.mark.parametrize(("mode", "padding_mode", "align_corners"), GRID_CASES, ids=str)
def test_grid_sample_2d_matches_torch_in_values_and_both_gradients(mode, padding_mode, align_corners):
    x = RNG.standard_normal((2, 3, 5, 7))
    grid = RNG.uniform(-1.9, 1.9, (2, 4, 6, 2))  # a third of the points lie past the border
    _compare(lambda a, g: F.grid_sample(a, g, mode, padding_mode, align_corners),
             lambda a, g: torch.nn.functional.grid_sample(a, g, mode, padding_mode, align_corners), [x, grid],
             f"grid_sample {mode} {padding_mode} {align_corners}")


@needs_torch
@pytest.mark.parametrize(("mode", "padding_mode", "align_corners"),
                         [c for c in GRID_CASES if c[0] != "bicubic"], ids=str)
def test_grid_sample_3d_matches_torch(mode, padding_mode, align_corners):
    x = RNG.standard_normal((2, 2, 3, 4, 5))
    grid = RNG.uniform(-1.6, 1.6, (2, 3, 2, 4, 3))
    _compare(lambda a, g: F.grid_sample(a, g, mode, padding_mode, align_corners),
             lambda a, g: torch.nn.functional.grid_sample(a, g, mode, padding_mode, align_corners), [x, grid],
             f"grid_sample 3-D {mode} {padding_mode} {align_corners}")


@needs_torch
@pytest.mark.parametrize(("mode", "padding_mode", "align_corners"), GRID_CASES, ids=str)
def test_grid_points_on_pixels_edges_and_far_outside_match_torch(mode, padding_mode, align_corners):
    # exact pixel positions, the -1 / 1 edges (where border clipping stops the gradient), far-away points that
    # reflection folds back in, and a 1-pixel-wide input
    ticks = np.array([-5.0, -1.0, -0.6, 0.0, 0.25, 1.0, 3.5])
    grid = np.stack(np.meshgrid(ticks, ticks[::-1], indexing="xy"), axis=-1)[None].repeat(2, axis=0)
    for shape in [(2, 2, 4, 5), (2, 1, 1, 3)]:
        x = RNG.standard_normal(shape)
        _compare(lambda a, g: F.grid_sample(a, g, mode, padding_mode, align_corners),
                 lambda a, g: torch.nn.functional.grid_sample(a, g, mode, padding_mode, align_corners),
                 [x, grid], f"grid_sample {shape} {mode} {padding_mode} {align_corners}")


def test_grid_sample_gradients_match_finite_differences():
    x = RNG.standard_normal((1, 2, 4, 5))
    grid = RNG.uniform(-0.9, 0.9, (1, 3, 2, 2))  # away from pixel lines, where the kinks are
    for mode in ["bilinear", "bicubic"]:
        finite_difference_check(lambda a, g, m=mode: F.grid_sample(a, g, m, "reflection", False), [x, grid])


def test_skipped_taps_do_not_read_the_input():
    # a tap past the border reads nothing: an Inf at pixel (0, 0) must not leak into points sampled elsewhere
    x = np.ones((1, 1, 4, 4))
    x[0, 0, 0, 0] = np.inf
    grid = engine.tensor(np.array([[[[0.9, 0.9], [1.2, -0.1]]]]))
    out = F.grid_sample(engine.tensor(x, requires_grad=True), grid, "bicubic", "zeros", False)
    assert np.isfinite(out.detach().numpy()).all()
    out = F.grid_sample(engine.tensor(x), grid, "bilinear", "zeros", False)
    assert np.isfinite(out.numpy()).all()


@needs_torch
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 5, 7), (2, 1, 1, 4), (2, 3, 2, 3, 4)], ids=str)
def test_affine_grid_matches_torch_and_trains_theta(size, align_corners):
    rows = len(size) - 2
    theta = RNG.standard_normal((size[0], rows, rows + 1))
    with pytest.warns(UserWarning) if align_corners and min(size[2:]) == 1 else _nothing():
        _compare(lambda t: F.affine_grid(t, size, align_corners),
                 lambda t: torch.nn.functional.affine_grid(t, size, align_corners), [theta], f"affine_grid {size}")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@needs_torch
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_spatial_transformer_gradient_reaches_theta_as_in_torch(mode):
    x = RNG.standard_normal((2, 3, 9, 8))
    theta = np.array([[[0.9, -0.2, 0.1], [0.15, 1.1, -0.05]], [[1.2, 0.3, 0.2], [-0.1, 0.8, 0.3]]])

    def stn(F_, a, t):
        grid = F_.affine_grid(t, (2, 3, 6, 5), align_corners=False)
        return F_.grid_sample(a, grid, mode, "border", align_corners=False)

    _compare(lambda a, t: stn(F, a, t), lambda a, t: stn(torch.nn.functional, a, t), [x, theta], "stn")


def test_grid_sample_refuses_bad_arguments_in_one_line():
    x, grid = engine.randn(1, 2, 4, 4), engine.rand(1, 3, 3, 2)
    cases = [
        (lambda: F.grid_sample(x, grid, "area", align_corners=False), ValueError, "mode must be one of"),
        (lambda: F.grid_sample(x, grid, padding_mode="wrap", align_corners=False), ValueError, "padding_mode"),
        (lambda: F.grid_sample(engine.randn(1, 1, 2, 2, 2), engine.rand(1, 1, 1, 1, 3), "bicubic",
                               align_corners=False), ValueError, "bicubic mode needs a 4-D input"),
        (lambda: F.grid_sample(x, engine.rand(1, 3, 3, 3), align_corners=False), ValueError, "(N, H_out, W_out, 2)"),
        (lambda: F.grid_sample(x, engine.rand(2, 3, 3, 2), align_corners=False), ValueError, "N = 1"),
        (lambda: F.grid_sample(engine.randn(4, 4), grid, align_corners=False), ValueError, "4-D"),
        (lambda: F.grid_sample(x, grid.double(), align_corners=False), TypeError, "float32 and float64"),
        (lambda: F.affine_grid(engine.randn(1, 2, 2), (1, 2, 4, 4), False), ValueError, "Nx2x3"),
        (lambda: F.affine_grid(engine.randn(1, 2, 3), (1, 2, 4), False), NotImplementedError, "4D and 5D"),
        (lambda: F.affine_grid(engine.randn(1, 2, 3), (1, 2, 0, 4), False), ValueError, "positive"),
    ]
    for call, error, text in cases:
        with pytest.raises(error) as info:
            call()
        assert text in str(info.value) and "\n" not in str(info.value)


def test_align_corners_left_out_warns_as_torch_and_means_false():
    x, grid = engine.randn(1, 1, 3, 3), engine.rand(1, 2, 2, 2)
    with pytest.warns(UserWarning, match="align_corners=False"):
        out = F.grid_sample(x, grid)
    np.testing.assert_array_equal(out.numpy(), F.grid_sample(x, grid, align_corners=False).numpy())


@needs_torch
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_grid_sample_second_order_gradients_match_torch(mode):
    # a gradient penalty on a spatial transformer: the gradient's own graph is recorded
    x, grid = RNG.standard_normal((2, 2, 4, 5)), RNG.uniform(-1.2, 1.2, (2, 3, 2, 2))
    grads = []
    for lib, F_ in [(engine, F), (torch, torch.nn.functional)]:
        a, g = lib.tensor(x, requires_grad=True), lib.tensor(grid, requires_grad=True)
        out = F_.grid_sample(a, g, mode, "reflection", align_corners=False)
        ga, gg = lib.autograd.grad((out * out).sum(), (a, g), create_graph=True)
        ((ga * ga).sum() + (gg * gg * gg).sum()).backward()
        grads.append([a.grad.detach().numpy(), g.grad.detach().numpy()])
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def test_grid_sample_float32_and_no_grad():
    x, grid = engine.randn(1, 2, 4, 4), engine.rand(1, 3, 3, 2) * 2 - 1
    with engine.no_grad():
        out = F.grid_sample(x, grid, align_corners=True)
    assert out.dtype == engine.float32 and tuple(out.shape) == (1, 2, 3, 3) and out.grad_fn is None


def test_grid_sample_on_gpu_matches_cpu():
    cp = cuda_or_skip()
    assert cp is not None
    x, grid = RNG.standard_normal((2, 3, 6, 5)), RNG.uniform(-1.5, 1.5, (2, 4, 3, 2))
    for mode, pad in [("bilinear", "zeros"), ("bicubic", "reflection"), ("nearest", "border")]:
        results = []
        for device in ["cpu", "cuda"]:
            a = engine.tensor(x, device=device, requires_grad=True)
            g = engine.tensor(grid, device=device, requires_grad=True)
            out = F.grid_sample(a, g, mode, pad, align_corners=False)
            (out * out).sum().backward()
            results.append([out.detach().cpu().numpy(), a.grad.cpu().numpy(), g.grad.cpu().numpy()])
        for ours, cpu in zip(results[1], results[0]):
            np.testing.assert_allclose(ours, cpu, rtol=1e-10, atol=1e-12)


# ---- ctc_loss -------------------------------------------------------------------------------------------------
T, N, C = 12, 5, 5
TARGETS = np.array([[1, 1, 2, 3, 0], [2, 2, 2, 0, 0], [1, 0, 0, 0, 0], [3, 4, 3, 4, 1], [4, 1, 4, 1, 4]])
INPUT_LENGTHS, TARGET_LENGTHS = [12, 10, 7, 4, 0], [4, 3, 0, 5, 0]  # sample 3 is too short for its target


def _log_probs(shape=(T, N, C), dtype=np.float64):
    x = RNG.standard_normal(shape)
    return (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)


def _concatenated(targets, lengths):
    return np.concatenate([row[:n] for row, n in zip(targets, lengths)])


def _ctc_both(lp, targets, reduction="mean", zero_infinity=False, blank=0, inputs=INPUT_LENGTHS,
              lengths=TARGET_LENGTHS, lengths_as=list):
    """The engine's and torch's loss and log_probs gradient (for a random weighting of the loss)."""
    r = RNG.standard_normal(N) if reduction == "none" else np.array(RNG.standard_normal())
    results = []
    for lib, F_ in [(engine, F), (torch, torch.nn.functional)]:
        x = lib.tensor(lp, requires_grad=True)
        ins, outs = (lengths_as(inputs), lengths_as(lengths)) if lengths_as is list else \
            (lib.tensor(inputs), lib.tensor(lengths))
        loss = F_.ctc_loss(x, lib.tensor(targets), ins, outs, blank=blank, reduction=reduction,
                           zero_infinity=zero_infinity)
        (loss * lib.tensor(r.astype(lp.dtype))).sum().backward()
        results.append((loss.detach().numpy(), x.grad.numpy(), loss.dtype))
    return results


@needs_torch
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
def test_ctc_loss_matches_torch(reduction, zero_infinity, layout):
    lp = _log_probs()
    targets = TARGETS if layout == "padded" else _concatenated(TARGETS, TARGET_LENGTHS)
    (loss, grad, _), (ref, ref_grad, _) = _ctc_both(lp, targets, reduction, zero_infinity)
    # an input too short for its target has no alignment: inf, and NaN gradients on its frames, as torch;
    # zero_infinity makes both 0
    np.testing.assert_allclose(loss, ref, **TIGHT)
    np.testing.assert_allclose(grad, ref_grad, **TIGHT)
    if not zero_infinity and reduction == "none":
        assert loss[3] == np.inf and loss[4] == 0 and loss[2] > 0


@needs_torch
def test_ctc_loss_with_another_blank_tensor_lengths_and_float32_matches_torch():
    lp = _log_probs(dtype=np.float32)
    targets = np.where(TARGETS == 4, 0, TARGETS)  # class 4 is the blank here
    (loss, grad, dtype), (ref, ref_grad, ref_dtype) = _ctc_both(lp, targets, "mean", True, blank=4,
                                                                lengths_as=np.array)
    assert dtype == engine.float32 and ref_dtype == torch.float32
    np.testing.assert_allclose(loss, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)


@needs_torch
def test_unbatched_ctc_loss_matches_torch():
    lp = _log_probs((9, 4))
    for reduction in ["none", "mean"]:
        out = F.ctc_loss(engine.tensor(lp), engine.tensor([1, 3, 3]), (9,), (3,), reduction=reduction)
        ref = torch.nn.functional.ctc_loss(torch.tensor(lp), torch.tensor([1, 3, 3]), (9,), (3,),
                                           reduction=reduction)
        assert tuple(out.shape) == tuple(ref.shape) == ()
        np.testing.assert_allclose(out.numpy(), ref.numpy(), **TIGHT)


def test_ctc_gradient_through_log_softmax_matches_finite_differences():
    logits = RNG.standard_normal((6, 2, 4))
    targets = engine.tensor([[1, 1, 2], [3, 2, 0]])

    def loss(z):
        return F.ctc_loss(z.log_softmax(2), targets, [6, 5], [3, 2], reduction="none")

    finite_difference_check(loss, [logits])


def test_ctc_loss_module_is_the_functional():
    lp = engine.tensor(_log_probs())
    module = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    assert repr(nn.CTCLoss()) == "CTCLoss()"
    np.testing.assert_array_equal(module(lp, engine.tensor(TARGETS), INPUT_LENGTHS, TARGET_LENGTHS).numpy(),
                                  F.ctc_loss(lp, engine.tensor(TARGETS), INPUT_LENGTHS, TARGET_LENGTHS,
                                             reduction="sum", zero_infinity=True).numpy())
    with pytest.raises(ValueError, match="reduction"):
        nn.CTCLoss(reduction="avg")


def test_ctc_loss_refuses_impossible_lengths_and_shapes_in_one_line():
    lp, targets = engine.tensor(_log_probs((5, 2, 4))), engine.tensor([[1, 2, 3], [2, 2, 0]])
    cases = [
        (lambda: F.ctc_loss(lp, targets, [6, 5], [3, 2]), "input_lengths to have value at most 5"),
        (lambda: F.ctc_loss(lp, targets, [5, 5], [4, 2]), "S at least the longest target length 4"),
        (lambda: F.ctc_loss(lp, targets, [-1, 5], [3, 2]), "input_lengths to have value at least 0"),
        (lambda: F.ctc_loss(lp, targets, [5, 5], [3, -2]), "target_lengths to have value at least 0"),
        (lambda: F.ctc_loss(lp, targets, [5], [3, 2]), "input_lengths must be of size batch_size (2)"),
        (lambda: F.ctc_loss(lp, targets, [5, 5], [3, 2], blank=4), "blank must be in label range"),
        (lambda: F.ctc_loss(lp, engine.tensor([[1, 7, 3], [2, 2, 0]]), [5, 5], [3, 2]), "out of range"),
        (lambda: F.ctc_loss(lp, engine.tensor([1, 2, 3]), [5, 5], [3, 2]), "sum(target_lengths) = 5"),
        (lambda: F.ctc_loss(lp, targets, [5, 5], [3, 2], reduction="avg"), "reduction"),
        (lambda: F.ctc_loss(lp, targets.double() + 0.5, [5, 5], [3, 2]), "fractional"),
        (lambda: F.ctc_loss(lp[0, 0], targets, [5, 5], [3, 2]), "(T, N, C)"),
    ]
    for call, text in cases:
        with pytest.raises((ValueError, TypeError, IndexError)) as info:
            call()
        assert text in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_ctc_loss_on_gpu_matches_cpu():
    cuda_or_skip()
    lp = _log_probs()
    results = []
    for device in ["cpu", "cuda"]:
        x = engine.tensor(lp, device=device, requires_grad=True)
        loss = F.ctc_loss(x, engine.tensor(TARGETS, device=device), INPUT_LENGTHS, TARGET_LENGTHS,
                          zero_infinity=True)
        loss.backward()
        results.append([loss.detach().cpu().numpy(), x.grad.cpu().numpy()])
    for ours, cpu in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, cpu, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("labels", [30, 520])  # 2S+1 positions within one CUDA block, and wider (frame by frame)
def test_ctc_loss_on_gpu_one_launch_per_recursion_matches_the_step_by_step_kernels(labels):
    cuda_or_skip()
    from engine import kernels

    rng = np.random.default_rng(labels)
    t_len, n, classes = 2 * labels + 40, 3, 12
    lp = np.log(rng.dirichlet(np.ones(classes), (t_len, n))).astype(np.float32)
    target_lengths = (labels, labels - 7, 0)
    targets = rng.integers(1, classes, (n, labels))
    input_lengths = (t_len, t_len - 5, 9)
    results = []
    for fused in (True, False):
        x = engine.tensor(lp, device="cuda", requires_grad=True)
        with contextlib.nullcontext() if fused else kernels.disabled():
            loss = F.ctc_loss(x, engine.tensor(targets, device="cuda"), input_lengths, target_lengths,
                              reduction="sum")
            loss.backward()
        results.append((loss.item(), x.grad.cpu().numpy()))
    assert np.isfinite(results[0][0])
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4, atol=1e-6)


def test_ctc_loss_under_create_graph_names_the_op():
    x = engine.tensor(_log_probs(), requires_grad=True)
    loss = F.ctc_loss(x, engine.tensor(TARGETS), INPUT_LENGTHS, TARGET_LENGTHS, zero_infinity=True)
    with pytest.raises(NotImplementedError, match="ctc_loss"):
        engine.autograd.grad(loss, x, create_graph=True)
