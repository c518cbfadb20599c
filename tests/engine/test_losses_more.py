"""The margin, embedding and likelihood losses (margin_ranking_loss to gaussian_nll_loss) and their modules,
against PyTorch in float32 and float64 and against finite differences; their errors and reprs."""

import re
import warnings

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine import ShapeError
from tests.engine.oracle import finite_difference_check, needs_torch, torch
from tests.engine.test_devices import NO_GPU

TF = torch.nn.functional if torch is not None else None
REDUCTIONS = ["mean", "sum", "none"]
TOL = {np.float32: dict(rtol=1e-3, atol=1e-6), np.float64: dict(rtol=1e-9, atol=1e-12)}
GRAD_TOL = {np.float32: dict(rtol=1e-3, atol=1e-4), np.float64: dict(rtol=1e-9, atol=1e-12)}

rng = np.random.default_rng(7)


def normal(*shape):
    return rng.standard_normal(shape)


def signs(*shape):
    """Targets of 1 and -1."""
    return rng.choice([-1.0, 1.0], shape)


def positive(*shape):
    return np.abs(rng.standard_normal(shape)) + 0.1


COUNTS = np.array([[0, 1, 2], [3, 0.5, 7], [1.5, 2, 0], [4, 1, 9]])  # Poisson targets, 0 and 1 included
LABELS = np.array([[3, 0, -1, 1, 1], [1, 1, 4, -1, -1], [-1, 0, 0, 0, 0]])  # multilabel rows end at -1
CLASSES = np.array([0, 4, 2, 2])


def raises(exc, message):
    """pytest.raises matching `message` literally."""
    return pytest.raises(exc, match=re.escape(message))


def compare(fn, arrays, wrt, dtype):
    """fn(engine.nn.functional, ...) against fn(torch.nn.functional, ...): value, shape, dtype, gradients."""
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    ours = [engine.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out, ref = fn(F, *ours), fn(TF, *theirs)
    assert tuple(out.shape) == tuple(ref.shape)
    assert out.dtype.name == str(ref.dtype).removeprefix("torch.")
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), **TOL[dtype])
    r = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(dtype)
    (out * engine.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    for i in wrt:
        np.testing.assert_allclose(ours[i].grad.numpy(), theirs[i].grad.numpy(), **GRAD_TOL[dtype],
                                   err_msg=f"gradient of input {i} differs from torch")


# name -> (fn(F, *tensors, reduction), arrays, indices to differentiate)
CASES = {
    "margin_ranking": (lambda F, a, b, t, r: F.margin_ranking_loss(a, b, t, 0.3, reduction=r),
                       [normal(6), normal(6), signs(6)], [0, 1]),
    "margin_ranking 2-d": (lambda F, a, b, t, r: F.margin_ranking_loss(a, b, t, reduction=r),
                           [normal(3, 4), normal(3, 4), signs(3, 4)], [0, 1]),
    "margin_ranking 0-d": (lambda F, a, b, t, r: F.margin_ranking_loss(a, b, t, -0.5, reduction=r),
                           [normal(), normal(), np.array(-1.0)], [0, 1]),
    "hinge_embedding": (lambda F, x, t, r: F.hinge_embedding_loss(x, t, reduction=r),
                        [normal(4, 3), signs(4, 3)], [0]),
    "hinge_embedding 1-d": (lambda F, x, t, r: F.hinge_embedding_loss(x, t, 0.5, reduction=r),
                            [normal(5), signs(5)], [0]),
    "soft_margin": (lambda F, x, t, r: F.soft_margin_loss(x, t, reduction=r), [normal(4, 3), signs(4, 3)], [0]),
    "soft_margin 1-d": (lambda F, x, t, r: F.soft_margin_loss(x, t, reduction=r), [normal(5), signs(5)], [0]),
    "multilabel_soft_margin": (lambda F, x, t, r: F.multilabel_soft_margin_loss(x, t, reduction=r),
                               [normal(4, 3), rng.integers(0, 2, (4, 3)).astype(float)], [0]),
    "multilabel_soft_margin weight": (lambda F, x, t, w, r: F.multilabel_soft_margin_loss(x, t, w, reduction=r),
                                      [normal(4, 3), rng.integers(0, 2, (4, 3)).astype(float), positive(3)], [0]),
    "multilabel_soft_margin 1-d": (lambda F, x, t, r: F.multilabel_soft_margin_loss(x, t, reduction=r),
                                   [normal(3), np.array([1.0, 0.0, 1.0])], [0]),
    "cosine_embedding": (lambda F, a, b, t, r: F.cosine_embedding_loss(a, b, t, reduction=r),
                         [normal(4, 5), normal(4, 5), signs(4)], [0, 1]),
    "cosine_embedding margin": (lambda F, a, b, t, r: F.cosine_embedding_loss(a, b, t, -0.4, reduction=r),
                                [normal(4, 5), normal(4, 5), signs(4)], [0, 1]),
    "cosine_embedding 1-d": (lambda F, a, b, t, r: F.cosine_embedding_loss(a, b, t, 0.1, reduction=r),
                             [normal(5), normal(5), np.array(-1.0)], [0, 1]),
    "multi_margin": (lambda F, x, t, r: F.multi_margin_loss(x, t, reduction=r), [normal(4, 5), CLASSES], [0]),
    "multi_margin p=2": (lambda F, x, t, r: F.multi_margin_loss(x, t, 2, 0.7, reduction=r),
                         [normal(4, 5), CLASSES], [0]),
    "multi_margin weight": (lambda F, x, t, w, r: F.multi_margin_loss(x, t, 1, 1.5, w, reduction=r),
                            [normal(4, 5), CLASSES, positive(5)], [0]),
    "multi_margin p=2 weight": (lambda F, x, t, w, r: F.multi_margin_loss(x, t, 2, weight=w, reduction=r),
                                [normal(4, 5), CLASSES, positive(5)], [0]),
    "multi_margin 1-d": (lambda F, x, t, r: F.multi_margin_loss(x, t, reduction=r), [normal(5), np.array(3)], [0]),
    "multilabel_margin": (lambda F, x, t, r: F.multilabel_margin_loss(x, t, reduction=r), [normal(3, 5), LABELS],
                          [0]),
    "multilabel_margin 1-d": (lambda F, x, t, r: F.multilabel_margin_loss(x, t, reduction=r),
                              [normal(5), LABELS[0]], [0]),
    "triplet_margin": (lambda F, a, p, n, r: F.triplet_margin_loss(a, p, n, reduction=r),
                       [normal(4, 5), normal(4, 5), normal(4, 5)], [0, 1, 2]),
    "triplet_margin p=1 swap": (lambda F, a, p, n, r: F.triplet_margin_loss(a, p, n, 0.5, 1, swap=True, reduction=r),
                                [normal(4, 5), normal(4, 5), normal(4, 5)], [0, 1, 2]),
    "triplet_margin p=3 eps": (lambda F, a, p, n, r: F.triplet_margin_loss(a, p, n, 2.0, 3, 0.1, reduction=r),
                               [normal(4, 5), normal(4, 5), normal(4, 5)], [0, 1, 2]),
    "triplet_margin 1-d": (lambda F, a, p, n, r: F.triplet_margin_loss(a, p, n, 3.0, reduction=r),
                           [normal(5), normal(5), normal(5)], [0, 1, 2]),
    "triplet_margin 3-d": (lambda F, a, p, n, r: F.triplet_margin_loss(a, p, n, swap=True, reduction=r),
                           [normal(2, 4, 3), normal(2, 4, 3), normal(2, 4, 3)], [0, 1, 2]),
    "triplet_with_distance": (lambda F, a, p, n, r: F.triplet_margin_with_distance_loss(a, p, n, reduction=r),
                              [normal(4, 5), normal(4, 5), normal(4, 5)], [0, 1, 2]),
    "triplet_with_distance cosine swap": (
        lambda F, a, p, n, r: F.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda x, y: 1 - F.cosine_similarity(x, y), margin=0.5, swap=True,
            reduction=r),
        [normal(4, 5), normal(4, 5), normal(4, 5)], [0, 1, 2]),
    "poisson_nll": (lambda F, x, t, r: F.poisson_nll_loss(x, t, reduction=r), [normal(4, 3), COUNTS], [0]),
    "poisson_nll rate": (lambda F, x, t, r: F.poisson_nll_loss(x, t, False, reduction=r), [positive(4, 3), COUNTS],
                         [0, 1]),
    "poisson_nll full": (lambda F, x, t, r: F.poisson_nll_loss(x, t, full=True, reduction=r), [normal(4, 3), COUNTS],
                         [0]),
    "poisson_nll rate full eps": (lambda F, x, t, r: F.poisson_nll_loss(x, t, False, True, eps=0.5, reduction=r),
                                  [positive(4, 3), COUNTS], [0]),
    "gaussian_nll": (lambda F, x, t, v, r: F.gaussian_nll_loss(x, t, v, reduction=r),
                     [normal(4, 3), normal(4, 3), positive(4, 3)], [0, 1, 2]),
    "gaussian_nll var per row": (lambda F, x, t, v, r: F.gaussian_nll_loss(x, t, v, full=True, reduction=r),
                                 [normal(4, 3), normal(4, 3), positive(4)], [0, 1, 2]),
    "gaussian_nll var (4, 1)": (lambda F, x, t, v, r: F.gaussian_nll_loss(x, t, v, reduction=r),
                                [normal(4, 3), normal(4, 3), positive(4, 1)], [0, 1, 2]),
    "gaussian_nll var (1, 3)": (lambda F, x, t, v, r: F.gaussian_nll_loss(x, t, v, reduction=r),
                                [normal(4, 3), normal(4, 3), positive(1, 3)], [0, 1, 2]),
    "gaussian_nll var a number": (lambda F, x, t, r: F.gaussian_nll_loss(x, t, 0.7, reduction=r),
                                  [normal(4, 3), normal(4, 3)], [0, 1]),
    "gaussian_nll var below eps": (lambda F, x, t, v, r: F.gaussian_nll_loss(x, t, v, eps=0.2, reduction=r),
                                   [normal(4, 3), normal(4, 3), positive(4, 3) * 0.2], [0, 1, 2]),
    # composed of broadcasting ops in torch, so a target may widen the input (the losses above refuse that)
    "hinge_embedding target widens": (lambda F, x, t, r: F.hinge_embedding_loss(x, t, reduction=r),
                                      [normal(3), signs(4, 3)], [0]),
    "poisson_nll target widens": (lambda F, x, t, r: F.poisson_nll_loss(x, t, full=True, reduction=r),
                                  [normal(3), COUNTS], [0]),
    "poisson_nll scalar rate": (lambda F, x, t, r: F.poisson_nll_loss(x, t, False, reduction=r),
                                [positive(1), COUNTS], [0, 1]),
    "gaussian_nll target widens": (lambda F, x, t, v, r: F.gaussian_nll_loss(x, t, v, reduction=r),
                                   [normal(3), normal(4, 3), positive(3)], [0, 1, 2]),
}


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, reduction, dtype):
    fn, arrays, wrt = CASES[case]
    compare(lambda F, *t: fn(F, *t, reduction), arrays, wrt, dtype)


# below eps, var's gradient is PyTorch's (as if unclamped), which finite differences do not see
@pytest.mark.parametrize("case", [c for c in CASES if "1-d" not in c and "0-d" not in c and "below eps" not in c])
def test_gradients_match_finite_differences(case):
    fn, arrays, wrt = CASES[case]
    finite_difference_check(lambda *t: fn(F, *t, "sum"), arrays, wrt=wrt)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_pairwise_distance(dtype):
    a, b = normal(4, 5), normal(4, 5)
    compare(lambda F, x, y: F.pairwise_distance(x, y), [a, b], [0, 1], dtype)
    compare(lambda F, x, y: F.pairwise_distance(x, y, 3, 0.1, keepdim=True), [a, b], [0, 1], dtype)
    compare(lambda F, x, y: F.pairwise_distance(x, y, 1), [a, normal(5)], [0, 1], dtype)  # broadcast
    compare(lambda F, x, y: F.pairwise_distance(x, y), [normal(), normal()], [0, 1], dtype)


# ---- edge cases: zero margins, all-equal inputs, eps, targets beside +-1 ------------------------------
EQUAL = np.ones((3, 4))
EDGES = {
    # the loss sits exactly on its kink: PyTorch's clamp_min passes the gradient there, its kernels do not
    "margin_ranking, equal inputs, margin 0": (lambda F, a, b, t: F.margin_ranking_loss(a, b, t, reduction="none"),
                                               [EQUAL, EQUAL, signs(3, 4)], [0, 1]),
    "hinge_embedding, input at the margin": (lambda F, x, t: F.hinge_embedding_loss(x, t, 1.0, reduction="sum"),
                                             [EQUAL, signs(3, 4)], [0]),
    "hinge_embedding, targets beside +-1": (lambda F, x, t: F.hinge_embedding_loss(x, t, reduction="none"),
                                            [normal(2, 3), np.array([[0.0, 1, -1], [2, -1, 1]])], [0]),
    "multi_margin, equal inputs, margin 0": (lambda F, x, t: F.multi_margin_loss(x, t, margin=0.0),
                                             [EQUAL, np.array([0, 3, 1])], [0]),
    "multi_margin, margin met exactly": (lambda F, x, t: F.multi_margin_loss(x, t, margin=0.5),
                                         [np.array([[1.0, 0.5, 0.0]]), np.array([0])], [0]),
    "multilabel_margin, equal inputs": (lambda F, x, t: F.multilabel_margin_loss(x, t, reduction="none"),
                                        [EQUAL, np.array([[3, 0, -1, 1], [1, 1, 2, -1], [-1, 0, 0, 0]])], [0]),
    "multilabel_margin, margin met exactly": (lambda F, x, t: F.multilabel_margin_loss(x, t),
                                              [np.array([[2.0, 1.0, 0.5]]), np.array([[0, -1, 2]])], [0]),
    "multilabel_margin, every class listed": (lambda F, x, t: F.multilabel_margin_loss(x, t),
                                              [normal(2, 3), np.array([[0, 1, 2], [2, 2, 2]])], [0]),
    "cosine_embedding, zero vectors": (lambda F, a, b, t: F.cosine_embedding_loss(a, b, t, reduction="none"),
                                       [np.zeros((2, 3)), np.zeros((2, 3)), np.array([1.0, -1.0])], [0, 1]),
    "cosine_embedding, equal inputs": (lambda F, a, b, t: F.cosine_embedding_loss(a, b, t, 0.0, reduction="none"),
                                       [EQUAL, EQUAL, np.array([1.0, -1.0, 0.0])], [0, 1]),
    "triplet_margin, all equal, eps 0": (lambda F, a, p, n: F.triplet_margin_loss(a, p, n, eps=0.0),
                                         [EQUAL, EQUAL, EQUAL], [0, 1, 2]),
    "triplet_margin, all equal, eps": (lambda F, a, p, n: F.triplet_margin_loss(a, p, n, eps=1e-3, swap=True),
                                       [EQUAL, EQUAL, EQUAL], [0, 1, 2]),
    "soft_margin, large logits": (lambda F, x, t: F.soft_margin_loss(x, t, reduction="none"),
                                  [np.array([30.0, -30.0, 15.0]), np.array([1.0, 1.0, -1.0])], [0]),
    "poisson_nll, zero rate with eps": (lambda F, x, t: F.poisson_nll_loss(x, t, False, eps=1e-3),
                                        [np.array([0.0, 1.0, 2.0]), np.array([1.0, 0.0, 3.0])], [0]),
    "gaussian_nll, zero variance": (lambda F, x, t, v: F.gaussian_nll_loss(x, t, v, reduction="none"),
                                    [normal(2, 3), normal(2, 3), np.array([[0.0, 1, 2], [3, 0, 1]])], [0, 1, 2]),
}


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(EDGES))
def test_edge_cases_match_torch(case, dtype):
    fn, arrays, wrt = EDGES[case]
    compare(fn, arrays, wrt, dtype)


def test_soft_margin_loss_does_not_overflow():
    """PyTorch's log1p(exp(-y x)) gives inf here; the loss is y x's magnitude, and its gradient is finite."""
    x = engine.tensor([-200.0, 200.0], dtype=engine.float32, requires_grad=True)
    loss = F.soft_margin_loss(x, engine.tensor([1.0, -1.0], dtype=engine.float32), reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [200.0, 200.0])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, 1.0])


@pytest.mark.parametrize("loss", ["hinge_embedding_loss", "poisson_nll_loss", "gaussian_nll_loss"])
def test_targets_that_widen_the_input_are_computed_as_torch_with_a_warning(loss):
    """(N,) targets against an (N, 1) input broadcast to (N, N), as torch computes them, and the engine says so;
    one rate (a 0-d input) against many targets is what it looks like, and passes without a word."""
    def call(F, x, y):
        return getattr(F, loss)(*(x, y, 1.0) if loss == "gaussian_nll_loss" else (x, y), reduction="none")

    x, y = np.array([[0.5], [2.0]]), np.array([1.0, -1.0])
    with pytest.warns(UserWarning, match=rf"^{loss}: target shape \(2,\) differs from input shape \(2, 1\); they are "
                                         r"broadcast to \(2, 2\)"):
        out = call(F, engine.tensor(x), engine.tensor(y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = call(F, engine.tensor(0.5), engine.tensor(y))
    assert tuple(out.shape) == (2, 2) and tuple(one.shape) == (2,)
    if torch is not None:
        np.testing.assert_allclose(out.numpy(), call(TF, torch.tensor(x), torch.tensor(y)).numpy())
        np.testing.assert_allclose(one.numpy(), call(TF, torch.tensor(0.5), torch.tensor(y)).numpy())


def test_poisson_nll_full_target_gradient_is_finite_at_zero():
    """Stirling's term is masked at targets <= 1; its log must not leak a nan gradient there (PyTorch's does)."""
    t = engine.tensor([0.0, 1.0, 2.0], requires_grad=True)
    F.poisson_nll_loss(engine.zeros(3), t, full=True, reduction="sum").backward()
    np.testing.assert_allclose(t.grad.numpy()[:2], [0.0, 0.0])
    assert np.isfinite(t.grad.numpy()).all()


@needs_torch
def test_legacy_size_average_and_reduce():
    x, t = normal(4, 3), signs(4, 3)
    for size_average, reduce, reduction in [(False, None, "sum"), (None, False, "none"), (True, True, "mean")]:
        with pytest.warns(DeprecationWarning, match="size_average and reduce"):
            ours = F.soft_margin_loss(engine.tensor(x), engine.tensor(t), size_average, reduce)
        np.testing.assert_allclose(ours.numpy(), TF.soft_margin_loss(torch.tensor(x), torch.tensor(t),
                                                                     reduction=reduction).numpy())
        with pytest.warns(DeprecationWarning):
            module = nn.MarginRankingLoss(size_average=size_average, reduce=reduce)
        assert module.reduction == reduction
    # poisson_nll_loss keeps PyTorch's positional order: log_input, full, size_average, eps, reduce
    with pytest.warns(DeprecationWarning):
        ours = F.poisson_nll_loss(engine.tensor(x), engine.tensor(COUNTS), True, False, False, 1e-8, True)
    np.testing.assert_allclose(ours.numpy(), TF.poisson_nll_loss(torch.tensor(x), torch.tensor(COUNTS),
                                                                 reduction="sum").numpy())


# ---- bad input: one clear line ------------------------------------------------------------------------
def t(a):
    return engine.tensor(np.asarray(a))


BAD = [
    (lambda: F.margin_ranking_loss(t(normal(4, 1)), t(normal(4)), t(signs(4))), ShapeError,
     "margin_ranking_loss: input1, input2 and target must have the same number of dimensions, got shapes "
     "(4, 1), (4,) and (4,)"),
    (lambda: F.margin_ranking_loss(t(normal(4)), t(normal(3)), t(signs(4))), ShapeError,
     "margin_ranking_loss: the shapes input1 (4,), input2 (3,), target (4,) do not broadcast together"),
    (lambda: F.hinge_embedding_loss(t(normal(4, 2)), t(signs(3))), ShapeError,
     "hinge_embedding_loss: the shapes input (4, 2), target (3,) do not broadcast together"),
    (lambda: F.soft_margin_loss(t(normal(4, 3)), t(signs(2))), ShapeError,
     "soft_margin_loss: target has shape (2,) but input has shape (4, 3)"),
    (lambda: F.soft_margin_loss(t([1, 2]), t([1, -1])), TypeError,
     "soft_margin_loss: input must be a floating point tensor, got engine.int64"),
    (lambda: F.multilabel_soft_margin_loss(t(normal(2, 3)), t(np.ones((2, 4)))), ShapeError,
     "multilabel_soft_margin_loss: target has shape (2, 4) but input has shape (2, 3)"),
    (lambda: F.multilabel_soft_margin_loss(t(normal(2, 3)), t(np.ones((2, 3))), t(np.ones(4))), ShapeError,
     "multilabel_soft_margin_loss: weight has shape (4,) but input has shape (2, 3)"),
    (lambda: F.multilabel_soft_margin_loss(t(normal()), t(1.0)), ShapeError,
     "multilabel_soft_margin_loss: input must have a class dimension, (C) or (N, C), got a 0-d tensor"),
    (lambda: F.cosine_embedding_loss(t(normal(4, 3)), t(normal(4, 3)), t(signs(4, 1))), ShapeError,
     "cosine_embedding_loss: target must be 0-d or 1-d (multi-target not supported); got input1 (4, 3), "
     "input2 (4, 3), target (4, 1)"),
    (lambda: F.cosine_embedding_loss(t(normal(3)), t(normal(4, 3)), t(signs(4))), ShapeError,
     "cosine_embedding_loss: a 1-d target needs 2-d inputs"),
    (lambda: F.cosine_embedding_loss(t(normal(4, 3)), t(normal(4, 2)), t(signs(4))), ShapeError,
     "cosine_embedding_loss: the shapes input1 (4, 3), input2 (4, 2) do not broadcast together"),
    (lambda: F.cosine_embedding_loss(t(normal(4, 3)), t(normal(4, 3)), t(signs(5))), ShapeError,
     "cosine_embedding_loss: target must hold one entry per row of the inputs; got input1 (4, 3), input2 (4, 3), "
     "target (5,)"),
    (lambda: F.multi_margin_loss(t(normal(2, 3, 4)), t([1, 1])), ShapeError,
     "multi_margin_loss: input must be a non-empty (C) vector or (N, C) matrix, got shape (2, 3, 4)"),
    (lambda: F.multi_margin_loss(t(normal(2, 3)), t([1, 1, 1])), ShapeError,
     "multi_margin_loss: target must be 1-d with one class index per sample: expected shape (2,) but got (3,) "
     "for input of shape (2, 3)"),
    (lambda: F.multi_margin_loss(t(normal(2, 3)), t([1.0, 1.0])), TypeError,
     "multi_margin_loss: target must be an integer tensor of class indices, got engine.float64; use target.long()"),
    (lambda: F.multi_margin_loss(t(normal(2, 3)), t([1, 3])), IndexError,
     "multi_margin_loss: target 3 is out of bounds for 3 classes (valid: 0 to 2)"),
    (lambda: F.multi_margin_loss(t(normal(2, 3)), t([-1, 0])), IndexError,
     "multi_margin_loss: target -1 is out of bounds for 3 classes"),
    (lambda: F.multi_margin_loss(t(normal(2, 3)), t([1, 1]), weight=t(np.ones(4))), ShapeError,
     "multi_margin_loss: weight has shape (4,) but input of shape (2, 3) has 3 classes"),
    (lambda: F.multi_margin_loss(t(normal(2, 3)), t([1, 1]), weight=t(np.ones((1, 3)))), ValueError,
     "multi_margin_loss: weight must be one-dimensional, got shape (1, 3)"),
    (lambda: F.multi_margin_loss(t(normal(2, 3)), t([1, 1]), p=3), ValueError,
     "multi_margin_loss: only p == 1 and p == 2 supported, got p=3"),
    (lambda: F.multilabel_margin_loss(t(normal(2, 3)), t([1, -1, 0])), ShapeError,
     "multilabel_margin_loss: target has shape (3,) but must have the input's shape (2, 3)"),
    (lambda: F.multilabel_margin_loss(t(normal(2, 3)), t([[1, -1, 7], [0, -1, 0]])), IndexError,
     "multilabel_margin_loss: target 7 is out of bounds for 3 classes (valid: 0 to 2, and -1 to end a row's list)"),
    (lambda: F.multilabel_margin_loss(t(normal(2, 3)), t([[1, -2, 0], [0, -1, 0]])), IndexError,
     "multilabel_margin_loss: target -2 is out of bounds for 3 classes"),
    (lambda: F.triplet_margin_loss(t(normal(2, 3)), t(normal(3)), t(normal(3))), ShapeError,
     "triplet_margin_loss: anchor, positive and negative must have the same number of dimensions, got shapes "
     "(2, 3), (3,) and (3,)"),
    (lambda: F.triplet_margin_loss(t(normal(2, 3)), t(normal(2, 4)), t(normal(2, 3))), ShapeError,
     "triplet_margin_loss: the shapes anchor (2, 3), positive (2, 4), negative (2, 3) do not broadcast together"),
    (lambda: F.triplet_margin_loss(t(normal(2, 3)), t(normal(2, 3)), t(normal(2, 3)), margin=0), ValueError,
     "triplet_margin_loss: margin must be greater than 0, got 0"),
    (lambda: F.triplet_margin_with_distance_loss(t(normal(2, 3)), t(normal(3)), t(normal(2, 3))), ShapeError,
     "triplet_margin_with_distance_loss: anchor, positive and negative must have the same number of dimensions"),
    (lambda: F.triplet_margin_with_distance_loss(t(normal(2, 3)), t(normal(2, 3)), t(normal(2, 3)),
                                                 distance_function="l2"), TypeError,
     "triplet_margin_with_distance_loss: distance_function must be callable, got str"),
    (lambda: F.pairwise_distance(t(normal(4, 3)), t(normal(4))), ShapeError,
     "pairwise_distance: the shapes x1 (4, 3), x2 (4,) do not broadcast together"),
    (lambda: F.poisson_nll_loss(t(normal(4, 3)), t(positive(2))), ShapeError,
     "poisson_nll_loss: the shapes input (4, 3), target (2,) do not broadcast together"),
    (lambda: F.gaussian_nll_loss(t(normal(4, 3)), t(normal(4, 3)), t(np.ones(3))), ShapeError,
     "gaussian_nll_loss: var has shape (3,) but input has shape (4, 3)"),
    (lambda: F.gaussian_nll_loss(t(normal(4, 3)), t(normal(4, 3)), t(np.ones((1, 1)))), ShapeError,
     "gaussian_nll_loss: var has shape (1, 1) but input has shape (4, 3)"),
    (lambda: F.gaussian_nll_loss(t(normal(4, 3)), t(normal(4, 3)), t(-np.ones((4, 3)))), ValueError,
     "gaussian_nll_loss: var has negative entry/entries"),
    (lambda: F.gaussian_nll_loss(t(normal(4, 3)), t(normal(4, 3)), -1.0), ValueError,
     "gaussian_nll_loss: var has negative entry/entries"),
    (lambda: F.gaussian_nll_loss(t(normal(4, 3)), t(normal(3, 3)), 1.0), ShapeError,
     "gaussian_nll_loss: the shapes input (4, 3), target (3, 3) do not broadcast together"),
    (lambda: F.gaussian_nll_loss(t(normal(4, 3)), t(normal(4, 3)), "1"), TypeError,
     "gaussian_nll_loss: var must be a tensor or a number, got str"),
    (lambda: F.soft_margin_loss(t(normal(3)), t(signs(3)), reduction="avg"), ValueError,
     "soft_margin_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: F.gaussian_nll_loss(t(normal(3)), t(normal(3)), 1.0, reduction="avg"), ValueError,
     "gaussian_nll_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: nn.MultiMarginLoss(p=3), ValueError, "MultiMarginLoss: only p == 1 and p == 2 supported, got p=3"),
    (lambda: nn.MultiMarginLoss(weight=engine.ones(2, 2)), ValueError,
     "MultiMarginLoss: expected weight to be None or 1D tensor, got 2D instead"),
    (lambda: nn.TripletMarginLoss(margin=-1.0), ValueError,
     "TripletMarginLoss: expected margin to be greater than 0, got -1.0 instead"),
    (lambda: nn.TripletMarginWithDistanceLoss(margin=0.0), ValueError,
     "TripletMarginWithDistanceLoss: expected margin to be greater than 0, got 0.0 instead"),
    (lambda: nn.SoftMarginLoss(reduction="avg"), ValueError,
     "SoftMarginLoss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
]


@pytest.mark.parametrize("call,exc,message", BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, _, m) in enumerate(BAD)])
def test_bad_input_raises_one_clear_line(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text


# ---- modules ------------------------------------------------------------------------------------------
def modules(nn, torch_like):
    """Each module built the same way from engine.nn or torch.nn."""
    weight = torch_like(np.array([0.5, 1.0, 2.0]))
    return [
        nn.MarginRankingLoss(0.5), nn.HingeEmbeddingLoss(2.0, reduction="sum"), nn.SoftMarginLoss(),
        nn.MultiMarginLoss(2, 0.5, weight), nn.MultiLabelMarginLoss(reduction="none"),
        nn.MultiLabelSoftMarginLoss(weight), nn.CosineEmbeddingLoss(0.1), nn.TripletMarginLoss(2.0, 1.0, swap=True),
        nn.TripletMarginWithDistanceLoss(), nn.TripletMarginWithDistanceLoss(distance_function=nn.PairwiseDistance(1)),
        nn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: (a - b).abs().sum(-1), margin=0.5),
        nn.PoissonNLLLoss(False, True), nn.GaussianNLLLoss(full=True), nn.PairwiseDistance(keepdim=True),
    ]


@needs_torch
def test_module_reprs_and_options_match_torch():
    ours = modules(nn, lambda a: engine.tensor(a))
    theirs = modules(torch.nn, lambda a: torch.tensor(a))
    for m, ref in zip(ours, theirs, strict=True):
        assert repr(m) == repr(ref)
        assert m.extra_repr() == ref.extra_repr()
        for name in ("reduction", "margin", "p", "eps", "swap", "full", "log_input", "norm", "keepdim"):
            assert getattr(m, name, None) == getattr(ref, name, None), f"{type(m).__name__}.{name}"
        assert [n for n, _ in m.named_buffers()] == [n for n, _ in ref.named_buffers()]


@needs_torch
def test_modules_compute_their_functional():
    a, p, n = normal(4, 3), normal(4, 3), normal(4, 3)
    calls = [  # (module index in modules(), arrays)
        (0, [a, p, signs(4, 3)]), (1, [a, signs(4, 3)]), (2, [a, signs(4, 3)]), (3, [a, np.array([0, 2, 1, 1])]),
        (4, [a, np.array([[0, -1, 2], [1, 2, 0], [-1, 0, 0], [2, -1, -1]])]), (5, [a, np.ones((4, 3))]),
        (6, [a, p, signs(4)]), (7, [a, p, n]), (8, [a, p, n]), (9, [a, p, n]), (10, [a, p, n]),
        (11, [positive(4, 3), COUNTS[:, :3]]), (12, [a, p, positive(4, 3)]), (13, [a, p]),
    ]
    ours = modules(nn, lambda x: engine.tensor(x))
    theirs = modules(torch.nn, lambda x: torch.tensor(x))
    for i, arrays in calls:
        out = ours[i](*[engine.tensor(x) for x in arrays])
        ref = theirs[i](*[torch.tensor(x) for x in arrays])
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-9, err_msg=type(ours[i]).__name__)


def test_module_weight_is_a_buffer_that_moves_with_the_module():
    loss = nn.MultiMarginLoss(weight=engine.ones(3))
    assert list(loss.state_dict()) == ["weight"]
    assert loss.to(engine.float64).weight.dtype is engine.float64


def test_margins_are_runtime_editable_settings():
    loss = nn.TripletMarginLoss()
    loss.set_setting("margin", 0.25)
    assert loss.margin == 0.25
    with raises(ValueError, "TripletMarginLoss: cannot set 'margin' to 0; allowed: a float in (0, inf)"):
        loss.set_setting("margin", 0)
    multi = nn.MultiMarginLoss()
    multi.set_setting("p", 2)
    with raises(ValueError, "MultiMarginLoss: cannot set 'p' to 3; allowed: one of 1, 2"):
        multi.set_setting("p", 3)


def test_every_step_of_a_composed_loss_is_in_the_graph():
    """A composed loss is ops of the engine: its backward reaches every input through them."""
    x = engine.tensor(normal(4, 5), requires_grad=True)
    loss = F.multi_margin_loss(x, t(CLASSES))
    assert loss.grad_fn is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss.backward()
    assert x.grad.shape == x.shape


# ---- on a GPU -----------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU is not None, reason=NO_GPU or "")
@pytest.mark.parametrize("case", list(CASES))
def test_gpu_matches_cpu(case):
    fn, arrays, wrt = CASES[case]
    results = []
    for device in ("cpu", "cuda"):
        tensors = [engine.tensor(a.astype(np.float32) if a.dtype.kind == "f" else a, device=device,
                                 requires_grad=i in wrt) for i, a in enumerate(arrays)]
        out = fn(F, *tensors, "sum")
        out.backward()
        assert out.device.type == device
        results.append([out.detach().cpu().numpy()] + [tensors[i].grad.cpu().numpy() for i in wrt])
    for ours, cpu in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(ours, cpu, rtol=1e-4, atol=1e-5, err_msg=case)


@pytest.mark.parametrize("make", [lambda: nn.MSELoss(reduce=False), lambda: nn.MarginRankingLoss(size_average=False),
                                  lambda: nn.KLDivLoss(reduce=False),
                                  lambda: F.soft_margin_loss(engine.zeros(2), engine.ones(2), False)])
def test_legacy_flags_warn_at_the_line_that_passed_them(make):
    with pytest.warns(DeprecationWarning, match="size_average and reduce args will be deprecated") as seen:
        make()
    assert seen[0].filename == __file__
