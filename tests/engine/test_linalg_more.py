"""engine.linalg (inv, det, slogdet, solve, norms), diagonals, einsum with '...', nan-reductions, remainder/fmod."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, cuda_or_skip, finite_difference_check, lib, needs_torch, torch, torch_check


def well_conditioned(a):
    """a + 3 I: square matrices far from singular, for value and gradient checks."""
    n = a.shape[-1]
    return a + 3 * (engine.eye(n, dtype=a.dtype) if isinstance(a, engine.Tensor) else torch.eye(n, dtype=a.dtype))


@pytest.mark.parametrize("name", ["inv", "det", "logabsdet", "solve_matrix", "solve_vector", "solve_broadcast",
                                  "svdvals"])
def test_decompositions_match_torch_and_finite_differences(name):
    specs = {"solve_matrix": [(2, 3, 3), (2, 3, 2)], "solve_vector": [(2, 3, 3), (2, 3)],
             "solve_broadcast": [(3, 3), (4, 3, 2)], "svdvals": [(2, 4, 3)]}.get(name, [(2, 3, 3)])

    def fn(a, b=None):
        la = lib(a).linalg
        if name == "logabsdet":
            return la.slogdet(well_conditioned(a)).logabsdet
        if name.startswith("solve"):
            return la.solve(well_conditioned(a), b)
        if name == "svdvals":
            return la.svdvals(a)
        return getattr(la, name)(well_conditioned(a))

    check_grads(fn, specs)


@needs_torch
@pytest.mark.filterwarnings("ignore:torch.cholesky is deprecated")
def test_torch_level_aliases_and_methods():
    a = np.random.default_rng(0).standard_normal((2, 3, 3)) + 3 * np.eye(3)
    ours, theirs = engine.tensor(a), torch.tensor(a)
    for name in ("inverse", "det", "logdet", "cholesky"):
        x, y = (ours @ ours.mT, theirs @ theirs.mT) if name == "cholesky" else (ours, theirs)
        np.testing.assert_allclose(getattr(engine, name)(x).numpy(), getattr(torch, name)(y).numpy(), rtol=1e-10)
        np.testing.assert_allclose(getattr(x, name)().numpy(), getattr(y, name)().numpy(), rtol=1e-10)
    sign, logabs = engine.slogdet(-ours)
    t_sign, t_logabs = torch.slogdet(-theirs)
    np.testing.assert_array_equal(sign.numpy(), t_sign.numpy())
    np.testing.assert_allclose(logabs.numpy(), t_logabs.numpy(), rtol=1e-12)
    assert np.isnan(engine.logdet(engine.tensor([[-1.0, 0.0], [0.0, 1.0]])).item())
    upper = engine.linalg.cholesky(ours @ ours.mT, upper=True)
    np.testing.assert_allclose(upper.numpy(), torch.linalg.cholesky(theirs @ theirs.mT, upper=True).numpy(),
                               rtol=1e-10)


def test_det_of_a_singular_matrix_has_the_adjugate_as_gradient():
    """At a rank n-1 matrix det's gradient is the (nonzero) adjugate; torch 2.13 gives zeros there."""
    a = np.array([[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, -1.0, 2.0]], [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                                                                          [0.0, 0.0, 2.0]]])
    finite_difference_check(lambda t: engine.linalg.det(t), [a])
    t = engine.tensor(a[0], requires_grad=True)
    engine.linalg.det(t).backward()
    assert t.grad[0, 0].item() == pytest.approx(4 * 2 - 6 * -1)  # the cofactor of a[0, 0]


@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf])
def test_matrix_norm_matches_torch(ord):
    check_grads(lambda a: lib(a).linalg.matrix_norm(a, ord), [(2, 3, 4)])
    check_grads(lambda a: lib(a).linalg.matrix_norm(a, ord, dim=(0, 2), keepdim=True), [(3, 2, 4)])


@pytest.mark.parametrize("ord, dim", [(None, None), (3, None), (math.inf, 1), (None, (0, 1)), ("nuc", None),
                                      (1, (1, 0)), (0.5, -1)])
def test_linalg_norm_chooses_vector_or_matrix_norm_as_torch(ord, dim):
    shape = (3, 4) if isinstance(ord, str) or (ord is not None and dim is None) else (2, 3, 4)
    if ord == 3:
        shape = (5,)
    check_grads(lambda a: lib(a).linalg.norm(a, ord, dim), [shape])
    check_grads(lambda a: lib(a).linalg.vector_norm(a, 3, dim=-1, keepdim=True), [(2, 5)])
    check_grads(lambda a: a.norm("nuc"), [(3, 4)])  # torch.norm's matrix form
    check_grads(lambda a: lib(a).norm(a, "nuc", dim=(0, 2)), [(3, 2, 4)])


@pytest.mark.parametrize("offset", [0, 1, -2])
def test_diagonals_match_torch(offset):
    check_grads(lambda a: lib(a).diagonal(a, offset), [(4, 5)])
    check_grads(lambda a: lib(a).diagonal(a, offset, 2, 0), [(4, 2, 3)])
    check_grads(lambda a: a.diagonal(offset, -1, -3), [(4, 2, 3)])
    check_grads(lambda a: lib(a).linalg.diagonal(a, offset=offset), [(2, 4, 3)])
    check_grads(lambda a: lib(a).diag_embed(a, offset), [(2, 3)])
    check_grads(lambda a: lib(a).diag_embed(a, offset, 0, 2), [(2, 3)])
    check_grads(lambda a: lib(a).diag(a, offset), [(4,)])
    check_grads(lambda a: a.diag(offset), [(3, 4)])


@pytest.mark.parametrize("equation, shapes", [
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,jk", [(2, 3, 4), (4, 5)]),
    ("b...,b...->b", [(2, 3, 4), (2, 3, 4)]),
    ("i...->...", [(3, 2, 4)]),
    ("...i,...i->...", [(1, 3, 4), (2, 1, 4)]),  # batch dims of size 1 broadcast
    ("ij...,j->i...", [(2, 3), (3,)]),  # '...' standing for no dims
    ("ij,ij->i", [(1, 3), (2, 3)]),  # a letter of size 1 against n: its gradient sums back (raised before)
])
def test_einsum_ellipsis_matches_torch(equation, shapes):
    check_grads(lambda *ts: lib(ts[0]).einsum(equation, *ts), shapes)


def test_einsum_ellipsis_errors():
    with pytest.raises(ValueError, match=r"einsum: '\.\.i' has a '\.' that is not part of one '\.\.\.'"):
        engine.einsum("..i", engine.ones(2))
    with pytest.raises(engine.ShapeError, match="fewer dimensions"):
        engine.einsum("...ij->...", engine.ones(2))


@needs_torch
def test_nan_reductions_match_torch():
    x = np.array([[1.0, np.nan, 3.0, 2.0], [np.nan, np.nan, np.nan, np.nan], [4.0, -1.0, np.nan, 0.5]])
    for name, kwargs in [("nansum", {}), ("nansum", {"dim": 1}), ("nanmean", {}), ("nanmean", {"dim": 0}),
                         ("nanmean", {"dim": 1, "keepdim": True}), ("nanmedian", {})]:
        torch_check(lambda t, n=name, k=kwargs: getattr(lib(t), n)(t, **k), [x])
    for keepdim in (False, True):
        ours = engine.nanmedian(engine.tensor(x, requires_grad=True), 1, keepdim)
        theirs = torch.nanmedian(torch.tensor(x), 1, keepdim)
        np.testing.assert_array_equal(ours.values.detach().numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy()[[0, 2]], theirs.indices.numpy()[[0, 2]])
    torch_check(lambda t: lib(t).nanmedian(t, 0).values, [x[[0, 2]]])
    torch_check(lambda t: t.nansum(1) + t.nanmean(1), [x])
    assert engine.nansum(engine.tensor([1, 2, 3])).item() == 6


@needs_torch
@pytest.mark.parametrize("name", ["remainder", "fmod"])
def test_remainder_and_fmod_share_values_gradients_and_errors(name):
    a = np.array([[5.5, -5.5, 3.1], [-7.25, 7.25, 0.5]])  # no quotient is whole: no jump within eps
    b = np.array([[2.0, 2.0, -1.5], [-2.0, 3.0, 0.2]])
    check_grads(lambda x, y: getattr(lib(x), name)(x, y), [a, b])
    check_grads(lambda x: getattr(lib(x), name)(x, -1.5), [a])
    ours = getattr(engine, name)(engine.tensor([5, -5, 7]), 3).numpy()
    np.testing.assert_array_equal(ours, getattr(torch, name)(torch.tensor([5, -5, 7]), 3).numpy())
    with pytest.raises(ZeroDivisionError, match=f"{name}: integer division by zero"):
        getattr(engine, name)(engine.tensor([5, 3]), engine.tensor([1, 0]))


def test_bad_shapes_and_singular_matrices_raise_clear_errors():
    square_msg = r"must be batches of square matrices, but got 2 by 3 matrices \(shape \(2, 3\)\)"
    for fn in (engine.linalg.inv, engine.linalg.det, engine.linalg.slogdet, engine.linalg.cholesky):
        with pytest.raises(engine.ShapeError, match=square_msg):
            fn(engine.ones(2, 3))
    with pytest.raises(engine.linalg.LinAlgError, match=r"linalg\.inv: the input matrix is singular"):
        engine.linalg.inv(engine.zeros(2, 2))
    with pytest.raises(engine.linalg.LinAlgError, match=r"linalg\.solve: the input matrix is singular"):
        engine.linalg.solve(engine.ones(2, 2), engine.ones(2))
    with pytest.raises(engine.linalg.LinAlgError, match="not positive-definite"):
        engine.linalg.cholesky(-engine.eye(2))
    assert issubclass(engine.linalg.LinAlgError, RuntimeError)  # as torch.linalg.LinAlgError
    with pytest.raises(engine.ShapeError, match=r"linalg.solve: incompatible shapes of A \(3, 3\) and B \(2,\)"):
        engine.linalg.solve(engine.eye(3), engine.ones(2))
    with pytest.raises(TypeError, match="floating point"):
        engine.linalg.inv(engine.tensor([[1, 0], [0, 1]]))
    with pytest.raises(engine.ShapeError, match=r"diag: expected a 1-D or 2-D tensor, got shape \(2, 2, 2\)"):
        engine.diag(engine.ones(2, 2, 2))
    with pytest.raises(ValueError, match="diagonal dimensions cannot be identical"):
        engine.diagonal(engine.ones(2, 2), 0, 1, -1)
    with pytest.raises(ValueError, match="matrix_norm: ord must be"):
        engine.linalg.matrix_norm(engine.ones(2, 2), 3)


def test_engine_linalg_is_importable_as_a_module():
    from engine.linalg import cholesky, inv, norm

    assert cholesky is engine.linalg.cholesky and inv is engine.inverse and callable(norm)
    import engine.distributions.multivariate_normal as mvn

    assert mvn.cholesky is engine.linalg.cholesky  # one home for the decompositions


@pytest.mark.gpu
def test_gpu_linalg_matches_cpu():
    cuda_or_skip()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    b = rng.standard_normal((2, 3, 2))
    results = {}
    for device in ("cpu", "cuda"):
        A = engine.tensor(a, device=device, requires_grad=True)
        B = engine.tensor(b, device=device, requires_grad=True)
        total = (engine.linalg.inv(A).sum() + engine.linalg.det(A).sum() + engine.linalg.slogdet(A).logabsdet.sum()
                 + engine.linalg.solve(A, B).sum() + engine.linalg.matrix_norm(A, "nuc").sum()
                 + engine.linalg.cholesky(A @ A.mT).sum() + engine.diag_embed(A.diagonal(0, -2, -1)).sum()
                 + engine.einsum("...ij,...jk->...ik", A, B).sum() + engine.nanmean(B))
        total.backward()
        results[device] = (total.item(), A.grad.cpu().numpy(), B.grad.cpu().numpy())
    for x, y in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(x, y, rtol=1e-9)
    with pytest.raises(engine.linalg.LinAlgError, match="singular"):
        engine.linalg.inv(engine.zeros(2, 2, device="cuda"))
