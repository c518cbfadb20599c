"""What a review of the new ops against torch 2.13 found: matrix_power(A, 1) aliasing A, histogram's range of
inf/NaN data and of no data, sinc's second derivative at 0, sign/sgn of NaN and bool, aminmax and
unique_consecutive of empty tensors, embedding_bag's extra outputs, cov's aweights promotion, alpha of an integral
add/sub/rsub, same-dtype checks of addmv/addbmm/baddbmm/multi_dot, fractional max pooling of an empty batch,
unravel_index into a shape with a 0, feature_dropout of 1-D input, and clamp's gradient under an inf upstream."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
import engine.nn.functional as EF
from tests.engine.oracle import cuda_or_skip, needs_torch, torch

RNG = np.random.default_rng(11)


def _same(ours, theirs, rtol=1e-6, atol=1e-7):
    a = ours.numpy() if isinstance(ours, engine.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy() if torch is not None and isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ---- 1. matrix_power returns a new tensor -------------------------------------------------------------------
def test_matrix_power_result_is_never_the_input():
    a = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
    for n in (1, -2, -1, 0, 2, 3):
        A = engine.tensor(a, requires_grad=True)
        B = engine.matrix_power(A, n)
        B.mul_(2)  # in place on the result: legal, as in torch, and A stays as it was
        np.testing.assert_array_equal(A.detach().numpy(), a)
        np.testing.assert_allclose(B.detach().numpy(), 2 * np.linalg.matrix_power(a, n), rtol=1e-10)
        C = engine.matrix_power(A.detach(), n)
        C[0, 0] = 100.0
        np.testing.assert_array_equal(A.detach().numpy(), a)


# ---- 2. histogram: a range that is not finite, no data --------------------------------------------------------
@pytest.mark.parametrize("data", [[1.0, math.inf], [1.0, math.nan], [-math.inf, 2.0], [math.nan]])
def test_histogram_of_data_that_is_not_finite_raises_as_torch(data):
    with pytest.raises(RuntimeError, match=r"range \[.*\] is not finite"):
        engine.histogram(engine.tensor(data), 3)
    with pytest.raises(RuntimeError, match=r"range of \[.*\] is not finite"):
        engine.histc(engine.tensor(data), 3)


def test_histogram_range_that_is_not_finite_or_reversed_raises():
    with pytest.raises(RuntimeError, match=r"dimension 0's range \[0.0, inf\] is not finite"):
        engine.histogram(engine.ones(3), 3, range=(0.0, math.inf))
    with pytest.raises(RuntimeError, match="min should not exceed max"):
        engine.histogramdd(engine.ones(3, 2), 3, range=(0.0, 1.0, 2.0, 1.0))


@needs_torch
def test_histogram_edges_as_torchs():
    for data, kw in [([], {}), ([], {"range": (2.0, 2.0)}), ([5.0, 5.0], {}),
                     ([math.inf, 1.0, math.nan, -math.inf], {"range": (0.0, 2.0)})]:
        ours = engine.histogram(engine.tensor(data), 4, **kw)
        theirs = torch.histogram(torch.tensor(data), 4, **kw)
        _same(ours.hist, theirs.hist)
        _same(ours.bin_edges, theirs.bin_edges)


@needs_torch
def test_histogramdd_of_no_points_spans_0_to_1():
    ours, theirs = engine.histogramdd(engine.zeros(0, 2), 3), torch.histogramdd(torch.zeros(0, 2), 3)
    for a, b in zip(ours.bin_edges, theirs.bin_edges):
        _same(a, b)


# ---- 3. sinc's derivatives at 0 ---------------------------------------------------------------------------
def _sinc_derivatives(L, values):
    x = L.tensor(values, dtype=L.float64, requires_grad=True)
    (g,) = L.autograd.grad(L.sinc(x).sum(), x, create_graph=True)
    (g2,) = L.autograd.grad(g.sum(), x, create_graph=True)
    (g3,) = L.autograd.grad(g2.sum(), x)
    return g, g2, g3


@needs_torch
def test_sinc_second_derivative_at_zero_is_its_limit():
    values = [0.3, -0.7, 1.5, 2.0]  # away from 0, as torch's
    for a, b in zip(_sinc_derivatives(engine, values), _sinc_derivatives(torch, values)):
        _same(a.detach(), b, rtol=1e-10, atol=1e-12)
    g, g2, g3 = _sinc_derivatives(engine, [0.0, -0.0, 1e-4, -1e-4])
    np.testing.assert_array_equal(g.detach().numpy()[:2], [0.0, 0.0])
    assert not np.signbit(g.detach().numpy()[:2]).any()  # +0, as torch's first derivative
    np.testing.assert_allclose(g2.detach().numpy(), -math.pi**2 / 3, rtol=1e-6)  # continuous through 0
    np.testing.assert_array_equal(g3.numpy()[:2], [0.0, 0.0])  # sinc'''(0) = 0



# ---- 4. sign and sgn: one op, NaN gives 0, a bool is its own sign -------------------------------------------
@needs_torch
@pytest.mark.parametrize("name", ["sign", "sgn"])
def test_sign_and_sgn_as_torchs(name):
    for values, dtype in [([math.nan, -0.0, 0.0, -2.5, 3.0, math.inf, -math.inf], "float32"),
                          ([math.nan, 1.0], "float64"), ([True, False], "bool"), ([-3, 0, 4], "int8"),
                          ([0, 3], "uint8"), ([-7, 0, 9], "int64")]:
        x = engine.tensor(values, dtype=getattr(engine, dtype if dtype != "bool" else "bool_"))
        theirs = getattr(torch, name)(torch.tensor(values, dtype=getattr(torch, dtype)))
        _same(getattr(engine, name)(x), theirs)
        _same(getattr(x, name)(), theirs)
    _same(getattr(engine, name)(engine.tensor(math.nan)), getattr(torch, name)(torch.tensor(math.nan)))  # 0-d


def test_sgn_is_sign():
    assert engine.sgn is engine.sign
    x = engine.tensor([math.nan, -2.0, 1.0], requires_grad=True)
    x.sgn().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


# ---- 5. aminmax of an empty tensor over a non-empty dim -----------------------------------------------------
@needs_torch
@pytest.mark.parametrize("shape, dim, keepdim", [((0, 3), 1, False), ((0, 3), 1, True), ((2, 0, 3), -1, False)])
def test_aminmax_reduces_empty_tensors_over_non_empty_dims(shape, dim, keepdim):
    ours = engine.aminmax(engine.zeros(*shape), dim=dim, keepdim=keepdim)
    theirs = torch.aminmax(torch.zeros(*shape), dim=dim, keepdim=keepdim)
    _same(ours.min, theirs.min)
    _same(ours.max, theirs.max)


def test_aminmax_over_an_empty_dim_raises_as_torch():
    with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
        engine.aminmax(engine.zeros(0, 3), dim=0)
    with pytest.raises(RuntimeError, match="cannot compute aminmax over an empty dimension"):
        engine.aminmax(engine.zeros(0, 3))


# ---- 6. unique_consecutive of an empty tensor along a dim ---------------------------------------------------
@needs_torch
def test_unique_consecutive_of_an_empty_dim():
    ours = engine.unique_consecutive(engine.zeros(0, 3), dim=0, return_inverse=True, return_counts=True)
    theirs = torch.unique_consecutive(torch.zeros(0, 3), dim=0, return_inverse=True, return_counts=True)
    for a, b in zip(ours, theirs):
        _same(a, b)


@pytest.mark.parametrize("shape, dim", [((0, 3), 1), ((2, 0, 3), 0), ((0, 0), 0)])
def test_unique_consecutive_with_another_empty_dim_raises_as_torch(shape, dim):
    with pytest.raises(RuntimeError, match="unique cannot be applied"):
        engine.unique_consecutive(engine.zeros(*shape), dim=dim)


# ---- 7. embedding_bag's offset2bag, bag_size and max_indices --------------------------------------------------
EMBEDDING_BAG_CASES = [  # (indices, offsets, include_last_offset, padding_idx, per_sample_weights)
    ([0, 2, 4, 1, 5, 5, 3], [0, 3, 3, 5], False, None, False),
    ([0, 2, 4, 1, 5, 5, 3], [0, 3, 3, 5, 7], True, None, False),
    ([0, 2, 4, 1, 5, 5, 3], [0, 3, 3, 5], False, 5, False),
    ([0, 2, 4, 1, 5, 5, 3], [0, 3, 3, 5, 7], True, -1, False),
    ([0, 2, 4, 1, 5, 5, 3], [0, 3, 3, 5], False, 0, False),
    ([5, 5, 1], [0, 2], False, 5, False),  # a bag of padding only
    ([0, 1, 2, 2, 1], [0, 3], False, None, False),  # ties
    ([0, 2, 4, 1, 5, 5, 3], [0, 3, 3, 5], False, None, True),
    ([], [0, 0], False, None, False),
]


def _embedding_bag_case(dtype, mode, case):
    idx, offsets, last, pad, weighted = case
    weighted = weighted and mode == 0  # per_sample_weights need mode sum
    w = np.round(RNG.standard_normal((6, 3)), 1).astype(dtype)
    w[1] = w[2]  # equal rows: ties in max mode
    psw = RNG.random(len(idx)).astype(dtype) if weighted else None
    args = (False, mode, False, psw, last, pad)

    def call(L):
        return L.embedding_bag(L.tensor(w), L.tensor(idx, dtype=L.int64), L.tensor(offsets, dtype=L.int64),
                               *args[:3], None if psw is None else L.tensor(psw), *args[4:])

    ours, theirs = call(engine), call(torch)
    _same(ours[0], theirs[0], rtol=1e-5)
    for a, b in zip(ours[1:], theirs[1:]):
        _same(a, b)


@needs_torch
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_embedding_bag_extra_outputs_as_torchs(mode):
    for case in EMBEDDING_BAG_CASES:
        for dtype in ("float32", "float64"):
            _embedding_bag_case(dtype, mode, case)
    # many bags at once (array ops, no loop over bags): each max is the row max_indices name
    bags, w = 5000, RNG.standard_normal((50, 4))
    out, _, _, winners = engine.embedding_bag(engine.tensor(w), engine.tensor(RNG.integers(0, 50, 3 * bags)),
                                              engine.tensor(np.arange(0, 3 * bags, 3)), False, 2)
    np.testing.assert_array_equal(np.take_along_axis(w, winners.numpy(), 0), out.numpy())


@needs_torch
def test_embedding_bag_offset2bag_off_torchs_fast_sum_path():
    w = RNG.standard_normal((10, 3)).astype(np.float32)
    idx, offsets = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 0, 4])
    for weight in (w, np.ascontiguousarray(w.T).T):  # unit inner stride or not
        ours = engine.embedding_bag(engine.tensor(weight), engine.tensor(idx), engine.tensor(offsets))
        theirs = torch.embedding_bag(torch.from_numpy(weight), torch.tensor(idx), torch.tensor(offsets))
        _same(ours[1], theirs[1])



# ---- 8. cov promotes to aweights' dtype --------------------------------------------------------------------
@needs_torch
def test_cov_promotes_with_aweights_as_torch():
    x, aw, fw = RNG.standard_normal((2, 5)) * 3, RNG.random(5) + 0.1, np.array([1, 2, 1, 3, 1])
    for x_dtype, aw_dtype in [("float32", "float64"), ("float64", "float32"), ("int64", "float64"),
                              ("float16", "float32"), ("int64", "float16")]:
        ours = engine.cov(engine.tensor(x).to(getattr(engine, x_dtype)), fweights=engine.tensor(fw),
                          aweights=engine.tensor(aw).to(getattr(engine, aw_dtype)))
        theirs = torch.cov(torch.tensor(x).to(getattr(torch, x_dtype)), fweights=torch.tensor(fw),
                           aweights=torch.tensor(aw).to(getattr(torch, aw_dtype)))
        _same(ours, theirs, rtol=2e-3, atol=1e-3)


# ---- 9. alpha of integral add/sub/rsub, same-dtype checks, empty pools, unravel_index, feature_dropout --------
@needs_torch
@pytest.mark.parametrize("call", [
    lambda L: L.rsub(L.tensor([1, 2]), 5, alpha=1.5),
    lambda L: L.rsub(L.tensor([1, 2]), 5, alpha=1.0),
    lambda L: L.sub(L.tensor([1, 2]), 5, alpha=1.5),
    lambda L: L.add(L.tensor([1, 2]), L.tensor([3, 4]), alpha=0.5),
    lambda L: L.add(L.tensor([1.0, 2.0]), 5, alpha=True),
])
def test_alpha_rules_as_torchs(call):
    with pytest.raises(RuntimeError) as theirs:
        call(torch)
    with pytest.raises(RuntimeError, match=str(theirs.value).split(".")[0]):
        call(engine)
    for accepted in (lambda L: L.rsub(L.tensor([1, 2]), 5.0, alpha=1.5), lambda L: L.rsub(L.tensor([1, 2]), 5, alpha=2),
                     lambda L: L.add(L.tensor([1, 2]), L.tensor([1.5, 2.0]), alpha=0.5),
                     lambda L: L.add(L.tensor([True]), L.tensor([True]), alpha=True)):
        _same(accepted(engine), accepted(torch))


@needs_torch
@pytest.mark.parametrize("name, shapes", [("addmv", [(2,), (2, 3), (3,)]), ("addbmm", [(2, 3), (4, 2, 5), (4, 5, 3)]),
                                          ("baddbmm", [(4, 2, 3), (4, 2, 5), (4, 5, 3)])])
@pytest.mark.parametrize("dtypes", [("float32", "float64", "float64"), ("float64", "float64", "float32"),
                                    ("int64", "float32", "float32")])
def test_addmv_addbmm_baddbmm_refuse_mixed_dtypes_as_torch(name, shapes, dtypes):
    for L in (torch, engine):
        with pytest.raises(RuntimeError, match=r"dtype|scalar type"):
            getattr(L, name)(*[L.ones(*s, dtype=getattr(L, d)) for s, d in zip(shapes, dtypes)])
    args = [(2, 3), (2,), (3,)]  # addr promotes, as torch's
    for dtypes in [("float32", "float64", "float64"), ("int64", "float32", "float32")]:
        _same(engine.addr(*[engine.ones(*s, dtype=getattr(engine, d)) for s, d in zip(args, dtypes)]),
              torch.addr(*[torch.ones(*s, dtype=getattr(torch, d)) for s, d in zip(args, dtypes)]))


@needs_torch
@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float64", "float32")])
def test_multi_dot_refuses_mixed_dtypes_as_torch(dtypes):
    for L in (torch, engine):
        with pytest.raises(RuntimeError, match=r"must have (be )?the same dtype but tensor 0"):
            L.linalg.multi_dot([L.ones(2, 2, dtype=getattr(L, d)) for d in dtypes])


@needs_torch
@pytest.mark.parametrize("d, shape", [(2, (0, 1, 4, 4)), (2, (0, 4, 4)), (3, (0, 1, 4, 4, 4))])
def test_fractional_max_pool_of_an_empty_batch(d, shape):
    name = f"fractional_max_pool{d}d"
    x = engine.ones(*shape, requires_grad=True)
    out, indices = getattr(EF, name)(x, 2, output_size=2, return_indices=True)
    ref, ref_indices = getattr(torch.nn.functional, name)(torch.ones(*shape), 2, output_size=2, return_indices=True)
    _same(out.detach(), ref)
    _same(indices, ref_indices)
    out.sum().backward()
    assert x.grad.shape == shape


def test_fractional_max_pool_without_channels_raises_as_torch():
    with pytest.raises(RuntimeError, match="non-zero size for non-batch dimensions"):
        EF.fractional_max_pool2d(engine.ones(1, 0, 4, 4), 2, output_size=2)


@needs_torch
@pytest.mark.parametrize("shape", [(2, 0), (0,), (0, 3)])
def test_unravel_index_into_a_shape_with_a_zero(shape):
    for L in (torch, engine):
        with pytest.raises(RuntimeError):
            L.unravel_index(L.tensor([0]), shape)
    ours = engine.unravel_index(engine.tensor([], dtype=engine.int64), shape)
    theirs = torch.unravel_index(torch.tensor([], dtype=torch.int64), shape)
    for a, b in zip(ours, theirs, strict=True):
        _same(a, b)


@needs_torch
@pytest.mark.parametrize("shape", [(4,), ()])
def test_feature_dropout_of_fewer_than_2_dims_as_torch(shape):
    x = RNG.standard_normal(shape)
    _same(engine.feature_dropout(engine.tensor(x), 1.0, True), torch.feature_dropout(torch.tensor(x), 1.0, True))
    t = engine.tensor(x)
    assert engine.feature_dropout(t, 0.5, False) is t and engine.feature_dropout(t, 0.0, True) is t
    for L in (torch, engine):
        with pytest.raises(RuntimeError, match="at least 2 dim"):
            L.feature_dropout(L.tensor(x), 0.5, True)


# ---- 10. clamp's gradient is exactly 0 where it cuts, even under an inf gradient ------------------------------
@needs_torch
def test_clamp_gradient_under_an_inf_upstream_as_torch():
    def grads(L):
        x = L.tensor([-2.0, 0.3, math.nan, 5.0, 1.0], requires_grad=True)
        x.clamp(-1, 1).backward(L.tensor([math.inf, math.inf, 1.0, math.nan, -math.inf]))
        d = L.distributions.Pareto(L.tensor(1.0), alpha := L.tensor([0.5, 3.0], requires_grad=True))
        d.mean.sum().backward()
        return x.grad, alpha.grad

    for a, b in zip(grads(engine), grads(torch)):
        _same(a, b)
    for dtype in ("float16", "float32", "float64"):  # the bit-level select keeps each width's values
        x = engine.tensor([-2.0, 0.25, 3.0, 0.5], dtype=getattr(engine, dtype), requires_grad=True)
        x.clamp(min=0).backward(engine.tensor([math.inf, -0.5, math.inf, math.nan], dtype=x.dtype))
        assert x.grad.dtype == x.dtype
        np.testing.assert_array_equal(x.grad.numpy(), np.array([0.0, -0.5, math.inf, math.nan], dtype=dtype))


def test_clamp_second_derivative_under_an_inf_upstream_is_zero_where_cut():
    x = engine.tensor([-2.0, 0.3], requires_grad=True)
    up = engine.tensor([math.inf, 2.0], requires_grad=True)
    (g,) = engine.autograd.grad(x.clamp(-1, 1), x, up, create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy(), [0.0, 2.0])


# ---- the GPU path --------------------------------------------------------------------------------------------
def test_review_fixes5_on_cuda():
    cuda_or_skip()
    x = engine.tensor([-2.0, 0.3, math.nan], device="cuda", requires_grad=True)
    x.clamp(-1, 1).backward(engine.tensor([math.inf, 2.0, 1.0], device="cuda"))
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [0.0, 2.0, 0.0])
    for values, signs in (([math.nan, -3.0], [0.0, -1.0]), ([True, False], [True, False])):
        np.testing.assert_array_equal(engine.sign(engine.tensor(values, device="cuda")).cpu().numpy(), signs)
    w = engine.tensor(RNG.standard_normal((6, 3)), device="cuda")
    idx, offsets = engine.tensor([0, 2, 4, 1, 5], device="cuda"), engine.tensor([0, 3, 3], device="cuda")
    ours = engine.embedding_bag(w, idx, offsets, False, 2)
    ref = engine.embedding_bag(w.cpu(), idx.cpu(), offsets.cpu(), False, 2)
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a.cpu().numpy(), b.cpu().numpy())
    assert EF.fractional_max_pool2d(engine.ones(0, 1, 4, 4, device="cuda"), 2, output_size=2).shape == (0, 1, 2, 2)


@needs_torch
def test_where_gives_the_branch_not_taken_an_exact_zero_gradient_even_under_an_infinite_one():
    results = []
    for lib, make in ((engine, engine.tensor), (torch, torch.tensor)):
        a = make([1.0, 2.0, 3.0], requires_grad=True)
        b = make([4.0, 5.0, 6.0], requires_grad=True)
        out = lib.where(make([False, True, False]), a, b)
        (out * make([float("inf"), 1.0, float("nan")])).sum().backward()
        results.append((a.grad.tolist(), b.grad.tolist()))
    np.testing.assert_array_equal(np.array(results[0], dtype=float), np.array(results[1], dtype=float))
    assert results[0][0] == [0.0, 1.0, 0.0]
