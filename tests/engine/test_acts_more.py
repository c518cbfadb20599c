"""Activations, normalisations and embedding features a ported torch script hits: mish to softshrink, rrelu,
softmin, Softmax2d, gumbel_softmax, rms_norm, local_response_norm, embedding's max_norm and embedding_bag.
Values, gradients and second derivatives (create_graph) against torch in float64, finite differences, reprs,
in-place variants and the errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.oracle import cuda_or_skip, finite_difference_check, needs_torch, torch

RNG = np.random.default_rng(11)

if torch is not None:
    import torch.nn as tnn
    import torch.nn.functional as TF


def both(fn_name: str, *args, **kwargs):
    """The engine's and torch's functional `fn_name` as one-argument functions."""
    return (lambda x: getattr(F, fn_name)(x, *args, **kwargs)), (lambda x: getattr(TF, fn_name)(x, *args, **kwargs))


# inputs away from the kinks (0, +-3, +-lambd, the threshold), where finite differences are meaningful
X = np.array([[-5.0, -3.4, -2.2, -0.7, -0.2], [0.3, 0.8, 1.9, 2.6, 25.0]])

ELEMENTWISE = [
    ("mish", (), {}), ("hardswish", (), {}), ("hardsigmoid", (), {}), ("selu", (), {}), ("celu", (), {}),
    ("celu", (), {"alpha": 0.5}), ("softsign", (), {}), ("tanhshrink", (), {}), ("threshold", (0.5, -2.0), {}),
    ("hardshrink", (), {}), ("hardshrink", (1.0,), {}), ("softshrink", (), {}), ("softshrink", (1.0,), {}),
    ("rrelu", (), {}), ("softmin", (), {"dim": 1}), ("softmin", (), {"dim": 0}), ("logsigmoid", (), {}),
]


def _compare(ours, ref, x=X, second=True, grad_rtol=1e-10):
    """Values, gradients and (when `second`) gradients of the gradient of ours and torch's, float64."""
    a, b = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ya, yb = ours(a), ref(b)
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-12, atol=1e-14)
    r = RNG.standard_normal(tuple(ya.shape))
    (ga,) = engine.autograd.grad((ya * engine.tensor(r)).sum(), a, create_graph=second)
    (gb,) = torch.autograd.grad((yb * torch.tensor(r)).sum(), b, create_graph=second)
    np.testing.assert_allclose(ga.detach().numpy(), gb.detach().numpy(), rtol=grad_rtol, atol=1e-12)
    if not second:
        return
    if not ga.requires_grad:  # the gradient does not depend on the input (a mask times r): torch's is 0
        try:
            (gb2,) = torch.autograd.grad((gb * gb).sum(), b, allow_unused=True) if gb.requires_grad else (None,)
        except RuntimeError as err:  # torch has no second derivative of hardsigmoid at all
            assert "not implemented" in str(err)
            return
        assert gb2 is None or not gb2.abs().max(), "torch's gradient depends on the input, ours does not"
        return
    (gb2,) = torch.autograd.grad((gb * gb).sum(), b)
    (ga * ga).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), gb2.numpy(), rtol=1e-9 * grad_rtol / 1e-10, atol=1e-12)


@needs_torch
@pytest.mark.parametrize(("name", "args", "kwargs"), ELEMENTWISE, ids=lambda v: str(v))
def test_activation_matches_torch_to_second_order(name, args, kwargs):
    # torch's hardsigmoid backward multiplies by 1/6 rounded to float32, also for float64 (ours is exact)
    _compare(*both(name, *args, **kwargs), grad_rtol=1e-7 if name == "hardsigmoid" else 1e-10)


@pytest.mark.parametrize(("name", "args", "kwargs"), ELEMENTWISE, ids=lambda v: str(v))
def test_activation_gradient_matches_finite_differences(name, args, kwargs):
    finite_difference_check(lambda x: getattr(F, name)(x, *args, **kwargs), [X])


@needs_torch
def test_kinks_take_torchs_one_sided_slopes():
    x = np.array([-3.0, 3.0, -0.5, 0.5, 0.0, 1.0])
    for name, args in [("hardswish", ()), ("hardsigmoid", ()), ("hardshrink", ()), ("softshrink", ()),
                       ("threshold", (1.0, 7.0)), ("selu", ()), ("celu", ())]:
        _compare(*both(name, *args), x=x, second=False, grad_rtol=1e-7 if name == "hardsigmoid" else 1e-10)


@needs_torch
def test_no_overflow_for_large_inputs():
    x = np.array([-800.0, -50.0, 50.0, 800.0])
    for name in ("mish", "selu", "celu", "softsign", "tanhshrink"):
        with np.errstate(over="raise", invalid="raise"):
            _compare(*both(name), x=x, second=False)


@needs_torch
def test_float32_keeps_dtype():
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    for name, args in [("mish", ()), ("hardswish", ()), ("hardsigmoid", ()), ("selu", ()), ("celu", ()),
                       ("softsign", ()), ("tanhshrink", ()), ("threshold", (0.1, 2.0)), ("hardshrink", ()),
                       ("softshrink", ())]:
        y = getattr(F, name)(engine.tensor(x), *args)
        assert y.dtype == engine.float32, name
        ref = getattr(TF, name)(torch.tensor(x), *args).numpy()
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-6)


# ---- in place ----------------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize(("name", "args"), [("mish", ()), ("hardswish", ()), ("hardsigmoid", ()), ("selu", ()),
                                            ("celu", (1.5,)), ("threshold", (0.5, -2.0)), ("rrelu", ())])
def test_inplace_writes_the_input_and_keeps_the_gradient(name, args):
    base = engine.tensor(X, requires_grad=True)
    tbase = torch.tensor(X, requires_grad=True)
    h, th = base * 1.0, tbase * 1.0
    out = getattr(F, name)(h, *args, inplace=True)
    tout = getattr(TF, name)(th, *args, inplace=True)
    assert out is h
    np.testing.assert_allclose(h.detach().numpy(), th.detach().numpy(), rtol=1e-12)
    h.sum().backward()
    th.sum().backward()
    np.testing.assert_allclose(base.grad.numpy(), tbase.grad.numpy(), rtol=1e-7)  # torch's float32 1/6 (hardsigmoid)
    del tout


@needs_torch
def test_underscore_variants():
    for name, args in [("selu_", ()), ("celu_", (2.0,)), ("threshold_", (0.0, 5.0)), ("rrelu_", ())]:
        a, b = engine.tensor(X), torch.tensor(X)
        assert getattr(F, name)(a, *args) is a
        getattr(TF, name)(b, *args)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
        assert callable(getattr(engine, name.rstrip("_")))


def test_inplace_on_a_leaf_that_requires_grad_is_refused():
    with pytest.raises(RuntimeError, match="leaf Variable"):
        F.mish(engine.tensor(X, requires_grad=True), inplace=True)


# ---- rrelu in training ----------------------------------------------------------------------------------
def test_rrelu_training_draws_slopes_from_the_engine_generator():
    x = engine.tensor(-np.ones((200, 50)), requires_grad=True)
    engine.manual_seed(3)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    slopes = -y.detach().numpy()
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03
    assert abs(slopes.mean() - 0.2) < 0.005
    engine.manual_seed(3)
    np.testing.assert_array_equal(F.rrelu(x, 0.1, 0.3, training=True).detach().numpy(), -slopes)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), slopes)  # each element's gradient is its own slope
    pos = engine.tensor([1.0, 2.0])
    np.testing.assert_array_equal(F.rrelu(pos, training=True).numpy(), [1.0, 2.0])


def test_rrelu_second_order_and_module_modes():
    x = engine.tensor(X, requires_grad=True)
    (g,) = engine.autograd.grad(F.rrelu(x, training=True).pow(2).sum(), x, create_graph=True)
    g.sum().backward()
    assert np.all(x.grad.numpy() > 0)
    m = nn.RReLU(0.1, 0.3)
    m.eval()
    np.testing.assert_allclose(m(engine.tensor([-1.0])).numpy(), [-0.2])
    m.train()
    assert m(engine.tensor([-1.0] * 8)).numpy().std() > 0


# ---- gumbel_softmax ---------------------------------------------------------------------------------------
def test_gumbel_softmax_soft_and_hard():
    logits = engine.tensor(np.log([[0.1, 0.6, 0.3]] * 4000), requires_grad=True)
    engine.manual_seed(0)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.detach().numpy().sum(1), 1.0, rtol=1e-12)
    engine.manual_seed(0)
    hard = F.gumbel_softmax(logits, tau=0.5, hard=True)
    h = hard.detach().numpy()
    assert set(np.unique(h)) == {0.0, 1.0} and np.all(h.sum(1) == 1)
    np.testing.assert_array_equal(h.argmax(1), soft.detach().numpy().argmax(1))  # the same draw
    np.testing.assert_allclose(h.mean(0), [0.1, 0.6, 0.3], atol=0.03)  # Gumbel-max samples the softmax
    r = engine.tensor(RNG.standard_normal((4000, 3)))
    (gs,) = engine.autograd.grad((soft * r).sum(), logits)
    (gh,) = engine.autograd.grad((hard * r).sum(), logits)
    np.testing.assert_allclose(gh.numpy(), gs.numpy(), rtol=1e-10, atol=1e-12)  # straight-through


def test_gumbel_softmax_other_dim_and_errors():
    engine.manual_seed(1)
    y = F.gumbel_softmax(engine.randn(3, 5, 2), hard=True, dim=1).numpy()
    assert np.all(y.sum(1) == 1)
    with pytest.raises(ValueError, match="tau"):
        F.gumbel_softmax(engine.randn(3), tau=0)
    with pytest.raises(TypeError, match="floating point"):
        F.gumbel_softmax(engine.tensor([1, 2]))


# ---- modules and reprs --------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("make", [
    lambda m: m.Mish(), lambda m: m.Mish(True), lambda m: m.Hardswish(True), lambda m: m.Hardsigmoid(),
    lambda m: m.SELU(), lambda m: m.SELU(inplace=True), lambda m: m.CELU(), lambda m: m.CELU(2.0, True),
    lambda m: m.Softsign(), lambda m: m.Tanhshrink(), lambda m: m.Threshold(0.1, 20),
    lambda m: m.Threshold(0.1, 2.0, True),
    lambda m: m.RReLU(), lambda m: m.RReLU(0.1, 0.3, True), lambda m: m.Softmin(), lambda m: m.Softmin(1),
    lambda m: m.Softmax2d(), lambda m: m.Hardshrink(), lambda m: m.Softshrink(1), lambda m: m.LogSigmoid(),
    lambda m: m.RMSNorm(4), lambda m: m.RMSNorm([3, 4], eps=1e-5, elementwise_affine=False),
    lambda m: m.LocalResponseNorm(2), lambda m: m.EmbeddingBag(10, 3),
    lambda m: m.EmbeddingBag(10, 3, max_norm=1.0, mode="max", padding_idx=2, include_last_offset=True),
    lambda m: m.EmbeddingBag(10, 3, norm_type=1.0, mode="sum"), lambda m: m.Embedding(5, 2, max_norm=1.0),
])
def test_repr_is_torchs(make):
    assert repr(make(nn)) == repr(make(tnn))


@needs_torch
def test_modules_compute_as_torchs():
    x = RNG.standard_normal((2, 3, 4, 5))
    for make in (lambda m: m.Mish(), lambda m: m.Hardswish(), lambda m: m.Hardsigmoid(), lambda m: m.SELU(),
                 lambda m: m.CELU(0.7), lambda m: m.Softsign(), lambda m: m.Tanhshrink(),
                 lambda m: m.Threshold(0.2, -1.0), lambda m: m.Softmin(dim=2), lambda m: m.Softmax2d(),
                 lambda m: m.Hardshrink(0.3), lambda m: m.Softshrink(0.3), lambda m: m.LogSigmoid(),
                 lambda m: m.RMSNorm([4, 5]), lambda m: m.LocalResponseNorm(3, alpha=0.1, beta=0.6, k=2.0)):
        ours, ref = make(nn).eval(), make(tnn).eval()
        np.testing.assert_allclose(ours(engine.tensor(x)).detach().numpy(), ref(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-12, atol=1e-14, err_msg=repr(ref))
    sm = nn.Softmax2d()
    np.testing.assert_allclose(sm(engine.tensor(x[0])).numpy(), tnn.Softmax2d()(torch.tensor(x[0])).numpy())


# ---- rms_norm and local_response_norm ----------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("shape", [(4,), (3, 4)])
@pytest.mark.parametrize("eps", [None, 1e-3])
def test_rms_norm_matches_torch(shape, eps):
    x = RNG.standard_normal((2, 3, 4)) * 0.1
    w = RNG.standard_normal(shape)
    _compare(lambda t: F.rms_norm(t, shape, engine.tensor(w), eps),
             lambda t: TF.rms_norm(t, shape, torch.tensor(w), eps), x=x)
    _compare(lambda t: F.rms_norm(t, shape, eps=eps), lambda t: TF.rms_norm(t, shape, eps=eps), x=x)


@needs_torch
def test_rms_norm_default_eps_is_the_dtypes_and_module_trains_its_weight():
    x = np.full((2, 4), 1e-4, np.float32)
    np.testing.assert_allclose(F.rms_norm(engine.tensor(x), [4]).numpy(), TF.rms_norm(torch.tensor(x), [4]).numpy(),
                               rtol=1e-6)
    m = nn.RMSNorm(4)
    assert [n for n, _ in m.named_parameters()] == ["weight"] and np.all(m.weight.detach().numpy() == 1)
    m(engine.randn(3, 4)).sum().backward()
    assert m.weight.grad is not None
    assert list(nn.RMSNorm(4, elementwise_affine=False).parameters()) == []


@needs_torch
@pytest.mark.parametrize(("shape", "size"), [((2, 5, 3), 3), ((2, 6, 3, 2), 2), ((1, 4, 2, 2, 2), 5)])
def test_local_response_norm_matches_torch(shape, size):
    x = RNG.standard_normal(shape)
    _compare(lambda t: F.local_response_norm(t, size, 0.3, 0.7, 1.5),
             lambda t: TF.local_response_norm(t, size, 0.3, 0.7, 1.5), x=x)


def test_norm_errors_say_what_was_wrong():
    with pytest.raises(ValueError, match=r"normalized_shape=\[4\].*\[\*, 4\].*\[2, 3\]"):
        F.rms_norm(engine.randn(2, 3), [4])
    with pytest.raises(ValueError, match="weight has shape"):
        F.rms_norm(engine.randn(2, 3), [3], engine.ones(4))
    with pytest.raises(ValueError, match="3D or higher"):
        F.local_response_norm(engine.randn(2, 3), 2)
    with pytest.raises(ValueError, match="3D or 4D"):
        nn.Softmax2d()(engine.randn(2, 3))
    with pytest.raises(ValueError, match="lambda must be greater or equal to 0"):
        F.softshrink(engine.randn(3), -1.0)
    with pytest.raises(ValueError, match="lower bound"):
        F.rrelu(engine.randn(3), 0.5, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        F.celu(engine.randn(3), 0.0)
    with pytest.raises(TypeError, match="floating point"):
        F.mish(engine.tensor([1, 2]))
    with pytest.raises(TypeError, match="missing a required argument: 'threshold'"):
        nn.Threshold()


# ---- embedding max_norm ---------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_embedding_max_norm_renormalises_looked_up_rows_in_place(norm_type):
    w0 = RNG.standard_normal((6, 3)) * 2
    idx = np.array([[0, 2, 2], [5, 0, 1]])
    ours, theirs = engine.tensor(w0.copy(), requires_grad=True), torch.tensor(w0.copy(), requires_grad=True)
    ya = F.embedding(engine.tensor(idx), ours, max_norm=1.5, norm_type=norm_type)
    yb = TF.embedding(torch.tensor(idx), theirs, max_norm=1.5, norm_type=norm_type)
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)  # rows 0, 1, 2, 5 only
    np.testing.assert_array_equal(ours.detach().numpy()[[3, 4]], w0[[3, 4]])
    r = RNG.standard_normal(ya.shape)
    (ya * engine.tensor(r)).sum().backward()
    (yb * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)


@needs_torch
def test_embedding_module_max_norm_and_version_bump():
    torch.manual_seed(0)
    ref = tnn.Embedding(5, 4, max_norm=1.0)
    m = nn.Embedding(5, 4, max_norm=1.0, _weight=engine.tensor(ref.weight.detach().numpy().copy()))
    idx = np.array([1, 3, 3])
    np.testing.assert_allclose(m(engine.tensor(idx)).detach().numpy(), ref(torch.tensor(idx)).detach().numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(m.weight.detach().numpy(), ref.weight.detach().numpy(), rtol=1e-6)
    # a graph that read the weight before renorm changed it refuses to backward, as torch's
    w = engine.tensor(RNG.standard_normal((4, 2)) * 5, requires_grad=True)
    h = w * 1.0
    saved = h * h
    F.embedding(engine.tensor([0]), h, max_norm=1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.sum().backward()


def test_embedding_bad_indices_name_the_problem():
    w = engine.randn(4, 2)
    with pytest.raises(IndexError, match="index 4 is out of range"):
        F.embedding(engine.tensor([4]), w, max_norm=1.0)
    with pytest.raises(TypeError, match="integer"):
        F.embedding(engine.tensor([1.0]), w, max_norm=1.0)


# ---- embedding_bag --------------------------------------------------------------------------------------------
BAG_CASES = [
    dict(input=[1, 2, 4, 5, 4, 3, 2, 9], offsets=[0, 4]),
    dict(input=[1, 2, 4, 5, 4, 3, 2, 9], offsets=[0, 2, 2, 7]),  # an empty bag
    dict(input=[1, 2, 4, 5, 4, 3, 2, 9], offsets=[0, 3, 8], include_last_offset=True),  # ... and empty last
    dict(input=[[1, 2, 4], [4, 3, 9]]),
    dict(input=[1, 2, 0, 5, 0, 0, 2, 9], offsets=[0, 2, 4, 6], padding_idx=0),  # bag 2 is all padding
    dict(input=[[0, 2, 4], [4, 0, 0]], padding_idx=0),
]


@needs_torch
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("case", BAG_CASES, ids=lambda c: str(c))
def test_embedding_bag_matches_torch(mode, case):
    w0 = RNG.standard_normal((10, 3))
    kwargs = {k: v for k, v in case.items() if k not in ("input", "offsets")}
    idx, off = case["input"], case.get("offsets")

    def call(lib, f, w):
        t = lib.tensor
        return f(t(idx), w, None if off is None else t(off), mode=mode, **kwargs)

    _compare(lambda w: call(engine, F.embedding_bag, w), lambda w: call(torch, TF.embedding_bag, w), x=w0)


def test_embedding_bag_last_offset_short_of_the_end_is_refused():
    # torch's kernels disagree past a shorter last offset (float64 sums the rest into the last bag, float32
    # leaves it out of the sum but counts it in the mean): the engine names the problem instead
    with pytest.raises(ValueError, match=r"last offset must be the input's length \(8\), got 6"):
        F.embedding_bag(engine.tensor([1, 2, 4, 5, 4, 3, 2, 9]), engine.randn(10, 3), engine.tensor([0, 3, 6]),
                        include_last_offset=True)


@needs_torch
@pytest.mark.parametrize("case", BAG_CASES[:4], ids=lambda c: str(c))
def test_embedding_bag_per_sample_weights(case):
    w0 = RNG.standard_normal((10, 3))
    idx, off = case["input"], case.get("offsets")
    psw0 = RNG.standard_normal(np.shape(idx))
    last = case.get("include_last_offset", False)
    w, tw = engine.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    p, tp = engine.tensor(psw0, requires_grad=True), torch.tensor(psw0, requires_grad=True)
    y = F.embedding_bag(engine.tensor(idx), w, None if off is None else engine.tensor(off), mode="sum",
                        per_sample_weights=p, include_last_offset=last)
    ty = TF.embedding_bag(torch.tensor(idx), tw, None if off is None else torch.tensor(off), mode="sum",
                          per_sample_weights=tp, include_last_offset=last)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    r = RNG.standard_normal(y.shape)
    (y * engine.tensor(r)).sum().backward()
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_embedding_bag_finite_differences():
    idx, off = engine.tensor([1, 2, 4, 1, 3]), engine.tensor([0, 2])
    w0 = RNG.standard_normal((5, 3))
    for mode in ("sum", "mean", "max"):
        finite_difference_check(lambda w, mode=mode: F.embedding_bag(idx, w, off, mode=mode), [w0])
    finite_difference_check(lambda w, p: F.embedding_bag(idx, w, off, mode="sum", per_sample_weights=p),
                            [w0, RNG.standard_normal(5)])


@needs_torch
def test_embedding_bag_module_with_max_norm():
    torch.manual_seed(1)
    ref = tnn.EmbeddingBag(8, 3, max_norm=1.0, mode="sum", padding_idx=1)
    m = nn.EmbeddingBag(8, 3, max_norm=1.0, mode="sum", padding_idx=1,
                        _weight=engine.tensor(ref.weight.detach().numpy().copy()))
    idx, off = [3, 1, 5, 7, 3], [0, 3]
    np.testing.assert_allclose(m(engine.tensor(idx), engine.tensor(off)).detach().numpy(),
                               ref(torch.tensor(idx), torch.tensor(off)).detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(m.weight.detach().numpy(), ref.weight.detach().numpy(), rtol=1e-5)
    fresh = nn.EmbeddingBag(8, 3, padding_idx=1)
    assert np.all(fresh.weight.detach().numpy()[1] == 0)
    pre = nn.EmbeddingBag.from_pretrained(engine.ones(4, 2), mode="max")
    assert not pre.weight.requires_grad and pre.mode == "max"


def test_embedding_bag_errors_say_what_was_wrong():
    w = engine.randn(5, 2)
    idx1, idx2 = engine.tensor([1, 2, 3]), engine.tensor([[1, 2], [3, 4]])
    cases = [
        (ValueError, "offsets has to be a 1D tensor", lambda: F.embedding_bag(idx1, w)),
        (ValueError, "if input is 2D, then offsets has to be None",
         lambda: F.embedding_bag(idx2, w, engine.tensor([0]))),
        (ValueError, "offsets\\[0\\] has to be 0", lambda: F.embedding_bag(idx1, w, engine.tensor([1]))),
        (ValueError, "non-decreasing", lambda: F.embedding_bag(idx1, w, engine.tensor([0, 2, 1]))),
        (ValueError, "mode has to be one of", lambda: F.embedding_bag(idx2, w, mode="median")),
        (NotImplementedError, "only supported for mode='sum'",
         lambda: F.embedding_bag(idx2, w, per_sample_weights=engine.ones(2, 2))),
        (ValueError, "same shape as the input",
         lambda: F.embedding_bag(idx2, w, mode="sum", per_sample_weights=engine.ones(3))),
        (IndexError, "index 7 is out of range", lambda: F.embedding_bag(engine.tensor([[1, 7]]), w)),
        (TypeError, "integer", lambda: F.embedding_bag(engine.tensor([[1.0]]), w)),
        (ValueError, "weight has to be a 2D", lambda: F.embedding_bag(idx2, engine.randn(5))),
        (ValueError, "1D or 2D", lambda: F.embedding_bag(engine.tensor([[[1]]]), w)),
        (ValueError, "padding_idx 9", lambda: F.embedding_bag(idx2, w, padding_idx=9)),
        (ValueError, "mode has to be one of", lambda: nn.EmbeddingBag(4, 2, mode="avg")),
    ]
    for exc, match, call in cases:
        with pytest.raises(exc, match=match):
            call()


# ---- CuPy --------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_on_the_gpu_as_on_the_cpu():
    cuda_or_skip()
    x = RNG.standard_normal((3, 4, 5))
    for name, args in [(n, a) for n, a, _ in ELEMENTWISE if n not in ("rrelu",)]:
        kwargs = dict(next(k for n, a, k in ELEMENTWISE if n == name))
        c, g = engine.tensor(x, requires_grad=True), engine.tensor(x, device="cuda", requires_grad=True)
        yc, yg = getattr(F, name)(c, *args, **kwargs), getattr(F, name)(g, *args, **kwargs)
        np.testing.assert_allclose(yg.cpu().detach().numpy(), yc.detach().numpy(), rtol=1e-10, atol=1e-12)
        yc.pow(2).sum().backward()
        yg.pow(2).sum().backward()
        np.testing.assert_allclose(g.grad.cpu().numpy(), c.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert F.rrelu(engine.tensor(-np.ones(8), device="cuda"), training=True).device.type == "cuda"
    hard = F.gumbel_softmax(engine.tensor(x, device="cuda"), hard=True, dim=1)
    assert np.all(hard.cpu().numpy().sum(1) == 1)
    w0 = RNG.standard_normal((10, 3))
    for mode in ("sum", "mean", "max"):
        out = [F.embedding_bag(engine.tensor([1, 0, 4, 5, 4], device=d), engine.tensor(w0, device=d),
                               engine.tensor([0, 2, 2], device=d), mode=mode, padding_idx=0, max_norm=1.0).cpu().numpy()
               for d in ("cpu", "cuda")]
        np.testing.assert_allclose(out[1], out[0], rtol=1e-10)
    for f in (lambda t: F.rms_norm(t, [5]), lambda t: F.local_response_norm(t, 3)):
        np.testing.assert_allclose(f(engine.tensor(x, device="cuda")).cpu().numpy(), f(engine.tensor(x)).numpy(),
                                   rtol=1e-10)
