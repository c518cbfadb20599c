"""interpolate, repeat_interleave, rounding, outer, erf, nan_to_num, hardtanh/relu6, atan2, fmod, addmm,
diff, median and cdist: values and gradients against PyTorch and finite differences, and bad input."""

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.autograd.function import ShapeError
from engine.events import hub
from tests.engine.oracle import check_grads, finite_difference_check, needs_torch, torch

TF = torch.nn.functional if torch is not None else None
DTYPES = [np.float32, np.float64]


def _compare(fn, arrays, torch_fn=None, rtol=1e-5, atol=1e-6, grad=True):
    """Values, dtype and gradient (of sum(out * r)) in the arrays' own dtype, engine against torch."""
    torch_fn = torch_fn or fn
    ours = [engine.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    out, ref = fn(*ours), torch_fn(*theirs)
    assert tuple(out.shape) == tuple(ref.shape)
    assert out.dtype.name == str(ref.dtype).removeprefix("torch.")
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=rtol, atol=atol)
    if not grad or not ref.requires_grad:
        return
    r = np.random.default_rng(7).standard_normal(tuple(out.shape)).astype(out.detach().numpy().dtype)
    (out * engine.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    for o, t in zip(ours, theirs):
        if t.grad is not None:
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=rtol * 10, atol=atol * 10)


# ---- interpolate ----------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [
    {"scale_factor": 2}, {"scale_factor": 1.7}, {"scale_factor": (0.6, 2.5)}, {"size": (7, 3)}, {"size": 5},
    {"scale_factor": 1.3, "recompute_scale_factor": True}, {"size": (4, 6)},
])
@pytest.mark.parametrize("mode,align", [("nearest", None), ("nearest-exact", None), ("bilinear", False),
                                        ("bilinear", True), ("bilinear", None)])
def test_interpolate_4d_matches_torch(dtype, kwargs, mode, align):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 6)).astype(dtype)
    _compare(lambda t: F.interpolate(t, mode=mode, align_corners=align, **kwargs), [x],
             lambda t: TF.interpolate(t, mode=mode, align_corners=align, **kwargs))


@needs_torch
@pytest.mark.parametrize("mode,shape,kwargs", [
    ("linear", (2, 3, 5), {"scale_factor": 2.5, "align_corners": False}),
    ("linear", (2, 3, 5), {"size": 3, "align_corners": True}),
    ("nearest", (2, 3, 5), {"size": 8}),
    ("trilinear", (1, 2, 3, 4, 2), {"scale_factor": 1.5}),
    ("nearest", (1, 2, 3, 4, 2), {"size": (2, 5, 3)}),
    ("area", (1, 2, 6, 5), {"size": (3, 2)}),
])
def test_interpolate_other_ranks_and_modes(mode, shape, kwargs):
    x = np.random.default_rng(1).standard_normal(shape)
    _compare(lambda t: F.interpolate(t, mode=mode, **kwargs), [x], lambda t: TF.interpolate(t, mode=mode, **kwargs))


@pytest.mark.parametrize("mode,align", [("bilinear", False), ("bilinear", True), ("nearest", None)])
def test_interpolate_finite_differences(mode, align):
    x = np.random.default_rng(2).standard_normal((1, 2, 3, 4))
    finite_difference_check(lambda t: F.interpolate(t, scale_factor=(1.5, 0.75), mode=mode, align_corners=align),
                            [x])


@needs_torch
def test_upsample_modules_match_torch():
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 3)).astype(np.float32)
    pairs = [(nn.Upsample(scale_factor=2, mode="bilinear"), torch.nn.Upsample(scale_factor=2, mode="bilinear")),
             (nn.UpsamplingBilinear2d(size=(5, 4)), torch.nn.UpsamplingBilinear2d(size=(5, 4))),
             (nn.UpsamplingNearest2d(scale_factor=3), torch.nn.UpsamplingNearest2d(scale_factor=3))]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(engine.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(), rtol=1e-6)


def test_interpolate_event_and_bad_input():
    x = engine.randn(1, 1, 2, 2, requires_grad=True)
    assert F.interpolate(x, scale_factor=2).grad_fn.name() == "InterpolateBackward0"
    with pytest.raises(ShapeError, match=r"interpolate: Got 3D input, but bilinear mode needs 4D input"):
        F.interpolate(engine.randn(1, 2, 3), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(NotImplementedError, match="mode 'bicubicc'"):
        F.interpolate(x, scale_factor=2, mode="bicubicc")
    with pytest.raises(ShapeError, match=r"spatial dimensions of \[2, 2\] and output size of \[3\]"):
        F.interpolate(x, size=[3])
    with pytest.raises(ShapeError, match="must be 3-D, 4-D or 5-D"):
        F.interpolate(engine.randn(2, 2), size=3)


# ---- repeat_interleave --------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,repeats,dim", [
    ((3, 4), 2, None), ((3, 4), 3, 1), ((3, 4), 2, -2), ((3, 4), [1, 0, 3], 0), ((2, 3, 2), [2, 1, 4], 1),
    ((5,), [1], 0), ((3, 4), 0, 1), ((), 3, None),
])
def test_repeat_interleave_matches_torch(dtype, shape, repeats, dim):
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)

    def run(lib, t):
        r = lib.tensor(repeats) if isinstance(repeats, list) else repeats
        return t.repeat_interleave(r, dim=dim)

    _compare(lambda t: run(engine, t), [x], lambda t: run(torch, t))


def test_repeat_interleave_gradients_and_counts():
    check_grads(lambda t: t.repeat_interleave(engine.tensor([2, 0, 1]), dim=1), [(2, 3)],
                torch_fn=lambda t: t.repeat_interleave(torch.tensor([2, 0, 1]), dim=1))
    check_grads(lambda t: engine.repeat_interleave(t, 3, dim=0), [(2, 3)],
                torch_fn=lambda t: torch.repeat_interleave(t, 3, dim=0))
    assert engine.repeat_interleave(engine.tensor([2, 0, 3])).tolist() == [0, 0, 2, 2, 2]
    assert engine.repeat_interleave(engine.tensor([1, 2]), 2).dtype is engine.int64


def test_repeat_interleave_bad_input():
    x = engine.ones(3)
    with pytest.raises(ShapeError, match=r"repeats.size\(0\) = 2 and input.size\(0\) = 3"):
        x.repeat_interleave(engine.tensor([1, 2]))
    with pytest.raises(ValueError, match="can not be negative"):
        x.repeat_interleave(engine.tensor([1, -2, 1]))
    with pytest.raises(ValueError, match="non-negative"):
        x.repeat_interleave(-1)
    with pytest.raises(ShapeError, match="0-dim or 1-dim"):
        x.repeat_interleave(engine.ones(3, 1, dtype=engine.int64))
    with pytest.raises(TypeError, match="integer tensor"):
        x.repeat_interleave(engine.ones(3))


# ---- rounding -----------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["round", "floor", "ceil", "trunc", "fix"])
def test_rounding_matches_torch_with_zero_gradient(dtype, name):
    halves = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -0.49, 0.51, 1e8 + 0.5, np.inf, -np.inf, np.nan])
    x = np.concatenate([halves, np.random.default_rng(5).uniform(-4, 4, 11)]).astype(dtype)
    _compare(lambda t: getattr(t, name)(), [x], atol=0, grad=False)
    _compare(lambda t: getattr(t, name)(), [x[np.isfinite(x)]], atol=0)
    t = engine.tensor(x[np.isfinite(x)], requires_grad=True)
    getattr(engine, name)(t).sum().backward()
    assert t.grad is not None and not np.any(t.grad.numpy())


@needs_torch
@pytest.mark.parametrize("decimals", [1, 2, -1])
def test_round_decimals(decimals):
    x = np.random.default_rng(6).uniform(-100, 100, 20)
    _compare(lambda t: t.round(decimals=decimals), [x], atol=1e-9)


def test_rounding_keeps_integers_and_in_place():
    i = engine.tensor([1, -2, 3])
    for name in ("round", "floor", "ceil", "trunc"):
        out = getattr(i, name)()
        assert out.dtype is engine.int64 and out.tolist() == [1, -2, 3]
    x = engine.tensor([0.5, 1.5, -1.7])
    x.round_()
    assert x.tolist() == [0.0, 2.0, -2.0]
    x = engine.tensor([0.5, -1.5])
    x.floor_()
    assert x.tolist() == [0.0, -2.0]
    x.ceil_()
    x.trunc_()
    with pytest.raises(NotImplementedError, match="decimals"):
        i.round(decimals=1)


# ---- erf and gelu ---------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_erf_matches_torch(dtype):
    x = np.concatenate([np.random.default_rng(8).standard_normal(40) * 2,
                        [0.0, -0.0, 1e-9, -1e-6, 0.4999, 0.5, 0.5001, 6.0, -30.0, np.inf, -np.inf, np.nan]])
    x = x.astype(dtype)
    rtol = 2e-7 if dtype == np.float32 else 1e-14
    out = engine.erf(engine.tensor(x)).numpy()
    np.testing.assert_allclose(out, torch.erf(torch.tensor(x)).numpy(), rtol=rtol, atol=0)
    _compare(lambda t: t.erf(), [x[np.isfinite(x)]])


def test_erf_gradient_and_in_place():
    check_grads(lambda t: t.erf(), [(3, 4)], torch_fn=lambda t: t.erf())
    x = engine.tensor([0.0, 1.0])
    x.erf_()
    assert x.tolist()[0] == 0.0 and abs(x.tolist()[1] - 0.8427007929497149) < 1e-6


@needs_torch
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_modes_match_torch(approximate):
    x = np.random.default_rng(9).standard_normal((5, 6)) * 3
    ours, theirs = (lambda t: F.gelu(t, approximate=approximate)), (lambda t: TF.gelu(t, approximate=approximate))
    _compare(ours, [x], theirs, rtol=1e-10)
    _compare(ours, [x.astype(np.float32)], theirs)


# ---- nan_to_num -----------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [{}, {"nan": 1.5}, {"posinf": 10.0, "neginf": -7.0}, {"nan": -1.0, "posinf": 2.0}])
def test_nan_to_num_matches_torch(dtype, kwargs):
    x = np.array([np.nan, np.inf, -np.inf, 1.0, -2.5, 0.0, np.nan], dtype=dtype)
    _compare(lambda t: t.nan_to_num(**kwargs), [x])
    _compare(lambda t: engine.nan_to_num(t, **kwargs), [x.reshape(7, 1)], lambda t: torch.nan_to_num(t, **kwargs))


def test_nan_to_num_in_place_and_integers():
    x = engine.tensor([float("nan"), 2.0])
    x.nan_to_num_(nan=3.0)
    assert x.tolist() == [3.0, 2.0]
    assert engine.tensor([1, 2]).nan_to_num().tolist() == [1, 2]
    check_grads(lambda t: t.nan_to_num(), [(3, 2)])


# ---- hardtanh and relu6 -------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_hardtanh_relu6_match_torch(dtype):
    x = np.concatenate([np.random.default_rng(10).uniform(-8, 8, 30), [-1.0, 1.0, 0.0, 6.0, -0.5, 2.0]])
    x = x.astype(dtype)
    _compare(F.hardtanh, [x], TF.hardtanh)
    _compare(lambda t: F.hardtanh(t, -0.5, 2.0), [x], lambda t: TF.hardtanh(t, -0.5, 2.0))
    _compare(F.relu6, [x], TF.relu6)
    _compare(nn.ReLU6(), [x], torch.nn.ReLU6())
    _compare(nn.Hardtanh(-2.0, 3.0), [x], torch.nn.Hardtanh(-2.0, 3.0))


def test_hardtanh_relu6_gradients_modules_and_errors():
    x = np.random.default_rng(11).uniform(0.1, 0.9, (3, 4)) * np.where(np.arange(12).reshape(3, 4) % 2, 1, -1) * 3
    finite_difference_check(F.hardtanh, [x])
    finite_difference_check(lambda t: F.relu6(t * 4), [x])
    assert repr(nn.Hardtanh()) == "Hardtanh(min_val=-1.0, max_val=1.0)" and repr(nn.ReLU6()) == "ReLU6()"
    assert F.relu6(engine.randn(3, requires_grad=True)).grad_fn.name() == "Relu6Backward0"
    y = engine.tensor([-3.0, 9.0])
    F.relu6(y, inplace=True)
    assert y.tolist() == [0.0, 6.0]
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(engine.ones(2), 2.0, 1.0)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        nn.Hardtanh(2.0, 1.0)


# ---- atan2 and fmod -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(2, 3, 4), (4,)], [(3, 1), (1, 4)]])
def test_atan2_gradients(shapes):
    check_grads(lambda a, b: a.atan2(b), shapes, torch_fn=lambda a, b: a.atan2(b))


@needs_torch
def test_atan2_quadrants_dtypes_and_in_place():
    a = np.array([1.0, 1.0, -1.0, -1.0, 0.0, 0.0, -0.0, np.inf])
    b = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, -1.0, 2.0])
    for dtype in DTYPES:
        _compare(engine.atan2, [a.astype(dtype), b.astype(dtype)], torch.atan2, grad=False)
    out = engine.atan2(engine.tensor([1, 2]), engine.tensor([3, 4]))
    assert out.dtype is engine.float32
    x = engine.tensor([1.0, -1.0])
    x.atan2_(engine.tensor([-1.0, -1.0]))
    np.testing.assert_allclose(x.numpy(), np.arctan2([1.0, -1.0], [-1.0, -1.0]), rtol=1e-6)
    assert engine.tensor([1.0]).arctan2(engine.tensor([1.0])).item() == pytest.approx(np.pi / 4)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_fmod_and_remainder_with_negative_operands(dtype):
    a = np.array([5.0, -5.0, 5.0, -5.0, 5.5, -7.25, 0.0]).astype(dtype)
    b = np.array([3.0, 3.0, -3.0, -3.0, 2.0, 2.0, 4.0]).astype(dtype)
    _compare(engine.fmod, [a, b], torch.fmod)
    _compare(engine.remainder, [a, b], torch.remainder)
    _compare(lambda t: t.fmod(-2.5), [a], lambda t: t.fmod(-2.5))
    ours = engine.fmod(engine.tensor([-7, 7]), 3)
    assert ours.tolist() == [-1, 1] and ours.dtype is engine.int64


def test_fmod_gradients_and_errors():
    a = np.random.default_rng(12).uniform(-5, 5, (3, 4))
    b = np.random.default_rng(13).uniform(1.1, 1.9, (3, 4)) * np.sign(np.random.default_rng(14).standard_normal((3, 4)))
    check_grads(lambda x, y: x.fmod(y), [a, b], torch_fn=lambda x, y: x.fmod(y))
    x = engine.tensor([5.0, -5.0])
    x.fmod_(3.0)
    assert x.tolist() == [2.0, -2.0]
    with pytest.raises(ZeroDivisionError, match="fmod"):
        engine.fmod(engine.tensor([1, 2]), 0)
    with pytest.raises(ShapeError, match=r"fmod.*\(3,\), \(2,\)"):
        engine.fmod(engine.ones(3), engine.ones(2))


# ---- outer and addmm ---------------------------------------------------------------------------------
def test_outer_and_addmm_gradients():
    check_grads(lambda a, b: a.outer(b), [(3,), (4,)], torch_fn=lambda a, b: a.outer(b))
    check_grads(lambda x, a, b: engine.addmm(x, a, b), [(3, 5), (3, 4), (4, 5)],
                torch_fn=lambda x, a, b: torch.addmm(x, a, b))
    check_grads(lambda x, a, b: x.addmm(a, b, beta=0.5, alpha=-2.0), [(5,), (3, 4), (4, 5)],
                torch_fn=lambda x, a, b: x.addmm(a, b, beta=0.5, alpha=-2.0))
    check_grads(lambda x, a, b: engine.addmm(x, a, b, alpha=3), [(3, 1), (3, 2), (2, 5)],
                torch_fn=lambda x, a, b: torch.addmm(x, a, b, alpha=3))


@needs_torch
def test_outer_addmm_dtypes_and_beta_zero():
    for dtype in DTYPES:
        rng = np.random.default_rng(15)
        _compare(engine.outer, [rng.standard_normal(3).astype(dtype), rng.standard_normal(2).astype(dtype)],
                 torch.outer)
    assert engine.outer(engine.tensor([1, 2]), engine.tensor([1.0, 2.0])).dtype is engine.float32
    x = np.full((2, 2), np.nan, dtype=np.float32)
    out = engine.addmm(engine.tensor(x), engine.ones(2, 3), engine.ones(3, 2), beta=0)
    assert out.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    m = engine.zeros(2, 2)
    m.addmm_(engine.ones(2, 3), engine.ones(3, 2))
    assert m.tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_outer_addmm_bad_shapes():
    with pytest.raises(ShapeError, match=r"outer: Expected 1-D argument self, but got 2-D.*\(2, 2\)"):
        engine.outer(engine.ones(2, 2), engine.ones(2))
    with pytest.raises(ShapeError, match=r"addmm: mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
        engine.addmm(engine.ones(2), engine.ones(2, 3), engine.ones(4, 5))
    with pytest.raises(ShapeError, match="addmm: mat1 must be a matrix, got 1-D"):
        engine.addmm(engine.ones(2), engine.ones(3), engine.ones(3, 5))
    with pytest.raises(ShapeError, match=r"addmm: input of shape \(3, 2\) does not broadcast"):
        engine.addmm(engine.ones(3, 2), engine.ones(2, 3), engine.ones(3, 5))


# ---- diff ---------------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,dim,extra", [(1, -1, False), (2, 0, False), (3, 1, True), (0, 0, False), (6, 1, False)])
def test_diff_matches_torch(dtype, n, dim, extra):
    rng = np.random.default_rng(16)
    x, pre, app = (rng.standard_normal(s).astype(dtype) for s in [(4, 5), (4, 2), (4, 1)])
    if extra:
        _compare(lambda t, p, a: t.diff(n, dim, prepend=p, append=a), [x, pre, app])
    else:
        _compare(lambda t: engine.diff(t, n=n, dim=dim), [x], lambda t: torch.diff(t, n=n, dim=dim))


def test_diff_gradients_bools_and_errors():
    check_grads(lambda t: t.diff(2, 0), [(5, 3)], torch_fn=lambda t: t.diff(2, 0))
    check_grads(lambda t, p: t.diff(1, 1, prepend=p), [(2, 3), (2, 2)], torch_fn=lambda t, p: t.diff(1, 1, prepend=p))
    assert engine.tensor([True, False, False, True]).diff().tolist() == [True, False, True]
    with pytest.raises(ShapeError, match="diff expects input to be at least one-dimensional"):
        engine.diff(engine.tensor(1.0))
    with pytest.raises(ValueError, match="order must be non-negative but got -1"):
        engine.diff(engine.ones(3), n=-1)


# ---- median -------------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (4, 6), (3, 4, 5), ()])
def test_median_matches_torch(dtype, shape):
    x = np.random.default_rng(17).standard_normal(shape).astype(dtype)
    _compare(lambda t: t.median(), [x])
    for dim in range(-len(shape), max(len(shape), 1)):
        for keepdim in (False, True):
            _compare(lambda t, d=dim, k=keepdim: t.median(d, k).values, [x])
            assert engine.tensor(x).median(dim, keepdim).indices.tolist() == \
                torch.tensor(x).median(dim, keepdim).indices.tolist()


@needs_torch
def test_median_ties_and_nan():
    x = np.array([[1.0, 3.0, 2.0, 2.0], [4.0, 4.0, 4.0, 1.0], [5.0, np.nan, 0.0, np.nan]])
    values, indices = engine.tensor(x).median(1)
    ref = torch.tensor(x).median(1)
    np.testing.assert_array_equal(values.numpy(), ref.values.numpy())
    picked = np.take_along_axis(x, indices.numpy()[:, None], 1)[:, 0]
    np.testing.assert_array_equal(picked, values.numpy())  # ties: any index holding the median
    assert indices.tolist()[2] == ref.indices.tolist()[2] == 1  # the first NaN
    assert np.isnan(engine.tensor(x).median().item()) and np.isnan(torch.tensor(x).median().item())
    ties = np.array([1.0, 2.0, 2.0, 3.0, 2.0])
    _compare(lambda t: t.median(), [ties])  # gradient split evenly among the tied elements, as torch
    assert engine.tensor([3, 1, 2, 4]).median().item() == 2  # the lower of the two middle values
    assert np.isnan(engine.median(engine.ones(0)).item())


def test_median_gradients_and_errors():
    x = np.random.default_rng(18).permutation(20).reshape(4, 5).astype(np.float64)
    finite_difference_check(lambda t: t.median(1).values, [x])
    finite_difference_check(lambda t: engine.median(t), [x])
    assert isinstance(engine.median(engine.randn(3, 4), 0), tuple)
    with pytest.raises(IndexError, match="Dimension out of range"):
        engine.median(engine.randn(3, 4), 2)
    with pytest.raises(IndexError, match="non-zero size"):
        engine.median(engine.ones(0, 3), 0)


# ---- cdist --------------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, float("inf"), 0.0])
@pytest.mark.parametrize("shapes", [[(5, 3), (4, 3)], [(2, 5, 3), (2, 6, 3)], [(2, 1, 4, 3), (3, 5, 3)],
                                    [(30, 4), (27, 4)]])
def test_cdist_matches_torch(dtype, p, shapes):
    rng = np.random.default_rng(19)
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    _compare(lambda x, y: engine.cdist(x, y, p), [a, b], lambda x, y: torch.cdist(x, y, p), rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("mode", ["use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"])
@pytest.mark.parametrize("p", [2.0, 1.5, 3.0])
def test_cdist_finite_differences(mode, p):
    finite_difference_check(lambda x, y: engine.cdist(x, y, p, compute_mode=mode),
                            [np.random.default_rng(20).standard_normal((2, 4, 3)),
                             np.random.default_rng(21).standard_normal((2, 3, 3))])


def test_cdist_zero_distance_has_zero_gradient_and_errors():
    x = engine.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    for mode in ("use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"):
        x.grad = None
        engine.cdist(x, x.detach(), compute_mode=mode)[[0, 1], [0, 1]].sum().backward()
        assert x.grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(ShapeError, match="cdist: only supports at least 2D tensors, X1 got: 1D"):
        engine.cdist(engine.ones(3), engine.ones(2, 3))
    with pytest.raises(ShapeError, match=r"X1 and X2 must have the same number of columns\. X1: 3 X2: 4"):
        engine.cdist(engine.ones(2, 3), engine.ones(2, 4))
    with pytest.raises(ValueError, match="non-negative p"):
        engine.cdist(engine.ones(2, 3), engine.ones(2, 3), p=-1)
    with pytest.raises(TypeError, match="floating-point dtypes, X1 got: int64"):
        engine.cdist(engine.ones(2, 3, dtype=engine.int64), engine.ones(2, 3))
    with pytest.raises(ValueError, match="compute_mode"):
        engine.cdist(engine.ones(2, 3), engine.ones(2, 3), compute_mode="fast")


# ---- the debugger sees each op under its own name -----------------------------------------------------
def test_each_op_emits_its_event():
    from engine.events import OpEvent

    seen = []
    unsubscribe = hub.subscribe(seen.append)
    try:
        x = engine.randn(1, 1, 3, 3)
        F.interpolate(x, scale_factor=2, mode="bilinear")
        x.round()
        x.erf()
        engine.median(x)
        engine.cdist(x[0, 0], x[0, 0])
        x.flatten().diff()
        x.flatten().repeat_interleave(2)
        engine.fmod(x, 2.0)
        engine.atan2(x, x)
        F.relu6(x)
        F.hardtanh(x)
        x.nan_to_num()
        engine.outer(x.flatten(), x.flatten())
        engine.addmm(x[0, 0], x[0, 0], x[0, 0])
    finally:
        unsubscribe()
    ops = {e.op for e in seen if isinstance(e, OpEvent)}
    assert {"interpolate", "round", "erf", "median", "cdist", "diff", "repeat_interleave", "fmod", "atan2",
            "relu6", "hardtanh", "nan_to_num", "outer", "addmm"} <= ops


# ---- the same ops on a GPU ------------------------------------------------------------------------------
GPU_CASES = {  # name -> (function of engine tensors, input shapes)
    "interpolate bilinear": (lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear"), [(2, 3, 5, 4)]),
    "interpolate nearest": (lambda x: F.interpolate(x, size=(7, 3), mode="nearest"), [(2, 3, 5, 4)]),
    "repeat_interleave": (lambda x: x.repeat_interleave(engine.tensor([1, 0, 3]), dim=1), [(4, 3)]),
    "round": (lambda x: (x * 3).round() + x, [(6,)]),
    "erf": (lambda x: x.erf(), [(3, 4)]),
    "nan_to_num": (lambda x: (x / (x - x.detach())).nan_to_num(posinf=5.0) + x, [(5,)]),
    "hardtanh": (lambda x: F.hardtanh(x * 2, -1.0, 0.5), [(3, 4)]),
    "atan2": (lambda x, y: engine.atan2(x, y), [(3, 4), (3, 4)]),
    "fmod": (lambda x, y: engine.fmod(x * 4, y + 3), [(3, 4), (3, 4)]),
    "addmm": (lambda m, a, b: engine.addmm(m, a, b, beta=0.5, alpha=2.0), [(3, 5), (3, 4), (4, 5)]),
    "diff": (lambda x: x.diff(n=2, dim=1), [(3, 6)]),
    "median": (lambda x: x.median(dim=1)[0], [(4, 7)]),
    "cdist": (lambda a, b: engine.cdist(a, b), [(2, 5, 3), (2, 4, 3)]),
}


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(GPU_CASES))
def test_the_new_ops_run_on_a_gpu_as_on_the_cpu(name):
    from tests.engine.oracle import cuda_or_skip

    cuda_or_skip()
    fn, shapes = GPU_CASES[name]
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in shapes]
    results = []
    for device in ("cpu", "cuda"):
        inputs = [engine.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = fn(*inputs)
        out.backward(engine.ones(out.shape, dtype=out.dtype, device=device))
        results.append([out.detach().cpu().numpy()]
                       + [t.grad.cpu().numpy() for t in inputs])
    for cpu, gpu in zip(*results):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-9, err_msg=name)


@needs_torch
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_interpolate_backward_keeps_a_non_finite_gradient_where_it_lands(mode):
    # a dense product of the gradient with the resampling matrix made 0 * inf = NaN along the whole axis
    x = np.random.default_rng(5).standard_normal((1, 1, 4, 4))
    g = np.ones((1, 1, 8, 8))
    g[0, 0, 3, 5] = np.inf
    ours = engine.tensor(x, requires_grad=True)
    F.interpolate(ours, scale_factor=2, mode=mode).backward(engine.tensor(g))
    theirs = torch.tensor(x, requires_grad=True)
    TF.interpolate(theirs, scale_factor=2, mode=mode).backward(torch.tensor(g))
    np.testing.assert_array_equal(np.isfinite(ours.grad.numpy()), np.isfinite(theirs.grad.numpy()))
    finite = np.isfinite(theirs.grad.numpy())
    assert finite.sum() >= 12
    np.testing.assert_allclose(ours.grad.numpy()[finite], theirs.grad.numpy()[finite], rtol=1e-12)
