"""torch.linalg's eigh, eigvalsh, lstsq, matrix_rank, cond, solve_ex and vecdot: values and gradients against torch
(float32 and float64) and float64 finite differences, second derivatives, which lstsq fields each driver fills,
torch's answers for singular and repeated-eigenvalue inputs, one-line errors of torch's types, GPU."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, cuda_or_skip, lib, needs_torch, torch
from tests.engine.second_order import second_order_tests
from tests.engine.test_math_more import against_torch

RNG = np.random.default_rng(31)


def _spectral(L, w, v):
    """V diag(exp(w)) V^T: a function of the eigendecomposition that no choice of eigenvector signs changes."""
    return (v * w.unsqueeze(-2).exp()) @ v.mT


# fn(*tensors) runs on engine and torch tensors alike; symmetric inputs (a + a^T) keep finite differences, which
# perturb one entry, on the matrices eigh reads
CASES = {
    "eigh_spectral": (lambda a: _spectral(lib(a), *lib(a).linalg.eigh(a + a.mT)), [(2, 4, 4)]),
    "eigh_abs_vectors_upper": (lambda a: lib(a).linalg.eigh(a + a.mT, UPLO="U").eigenvectors.abs(), [(3, 3)]),
    "eigh_values": (lambda a: lib(a).linalg.eigh(a + a.mT).eigenvalues, [(2, 3, 3)]),
    "eigvalsh": (lambda a: lib(a).linalg.eigvalsh(a + a.mT), [(2, 1, 4, 4)]),
    "eigvalsh_upper": (lambda a: lib(a).linalg.eigvalsh(a @ a.mT, UPLO="u"), [(3, 3)]),
    "lstsq_tall": (lambda a, b: lib(a).linalg.lstsq(a, b).solution, [(5, 3), (5, 2)]),
    "lstsq_wide": (lambda a, b: lib(a).linalg.lstsq(a, b, driver="gelsd").solution, [(2, 3, 5), (2, 3, 2)]),
    "lstsq_vector": (lambda a, b: lib(a).linalg.lstsq(a, b, driver="gels").solution, [(4, 5, 3), (4, 5)]),
    "lstsq_broadcast": (lambda a, b: lib(a).linalg.lstsq(a, b, driver="gelss").solution, [(2, 1, 5, 3), (1, 3, 5, 2)]),
    "lstsq_residuals": (lambda a, b: lib(a).linalg.lstsq(a, b, driver="gelsd").residuals, [(2, 6, 3), (2, 6, 2)]),
    "matrix_rank_carries_no_gradient": (lambda a: a * lib(a).linalg.matrix_rank(a), [(3, 4)]),
    "cond": (lambda a: lib(a).linalg.cond(a), [(2, 3, 3)]),
    "cond_tall": (lambda a: lib(a).linalg.cond(a, 2), [(5, 3)]),
    "cond_minus_2": (lambda a: lib(a).linalg.cond(a, -2), [(3, 4)]),
    "solve_ex": (lambda a, b: lib(a).linalg.solve_ex(a, b).result, [(2, 3, 3), (3, 2)]),
    "solve_ex_vector": (lambda a, b: lib(a).linalg.solve_ex(a, b).result, [(2, 3, 3), (2, 3)]),
    "solve_ex_right": (lambda a, b: lib(a).linalg.solve_ex(a, b, left=False).result, [(3, 3), (2, 4, 3)]),
    "vecdot": (lambda x, y: lib(x).linalg.vecdot(x, y), [(2, 3), (4, 1, 3)]),
    "vecdot_dim": (lambda x, y: lib(x).linalg.vecdot(x, y, dim=0), [(3, 2), (3, 1)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients(name):
    fn, shapes = CASES[name]
    check_grads(fn, shapes, seed=sum(map(ord, name)))


def _cond_by_norms(p):
    """torch's definition of cond in the norms other than 2: its own linalg.cond has no working backward for them
    (it fills inv_ex's output in place), so the gradients are compared with this composition's."""
    return lambda a: torch.linalg.matrix_norm(a, p) * torch.linalg.matrix_norm(torch.linalg.inv(a), p)


@pytest.mark.parametrize("p", ["fro", "nuc", 1, -1, math.inf, -math.inf])
def test_cond_in_other_norms_values_and_gradients(p):
    check_grads(lambda a: engine.linalg.cond(a, p), [(2, 3, 3)], torch_fn=_cond_by_norms(p), seed=7)
    if torch is not None:
        a = RNG.standard_normal((3, 3))
        np.testing.assert_allclose(engine.linalg.cond(engine.tensor(a), p).numpy(),
                                   torch.linalg.cond(torch.tensor(a), p).numpy(), rtol=1e-10)


@needs_torch
@pytest.mark.parametrize("name", list(CASES))
def test_float64_values_and_gradients_equal_torchs(name):
    fn, shapes = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    against_torch(fn, *(rng.standard_normal(s) for s in shapes), rtol=1e-8, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh_reads_one_triangle_and_its_gradient_is_torchs(uplo):
    # a non-symmetric A: only the triangle UPLO names is read; the gradient is torch's symmetric one
    a = RNG.standard_normal((2, 4, 4))
    against_torch(lambda t: _spectral(lib(t), *lib(t).linalg.eigh(t, UPLO=uplo)), a, rtol=1e-8, atol=1e-10)
    triangle = np.tril(a) + np.tril(a, -1).swapaxes(-1, -2) if uplo == "L" else np.triu(a) + np.triu(a, 1).swapaxes(
        -1, -2)
    result = engine.linalg.eigh(engine.tensor(a), UPLO=uplo)
    np.testing.assert_allclose(result.eigenvalues.numpy(), np.linalg.eigvalsh(triangle), atol=1e-12)
    np.testing.assert_allclose(engine.linalg.eigvalsh(engine.tensor(a), uplo).numpy(), np.linalg.eigvalsh(triangle),
                               atol=1e-12)
    vectors = result.eigenvectors.numpy()
    np.testing.assert_allclose(triangle @ vectors, vectors * result.eigenvalues.numpy()[..., None, :], atol=1e-12)


@needs_torch
def test_result_types_are_torchs():
    a = RNG.standard_normal((3, 3))
    ours, theirs = engine.linalg.eigh(engine.tensor(a)), torch.linalg.eigh(torch.tensor(a))
    assert type(ours).__name__ == type(theirs).__name__ == "linalg_eigh"
    assert ours._fields == ("eigenvalues", "eigenvectors")
    b = RNG.standard_normal((3, 2))
    assert type(engine.linalg.lstsq(engine.tensor(a), engine.tensor(b))).__name__ == "linalg_lstsq"
    assert engine.linalg.lstsq(engine.tensor(a), engine.tensor(b))._fields == (
        "solution", "residuals", "rank", "singular_values")
    assert type(engine.linalg.solve_ex(engine.tensor(a), engine.tensor(b))).__name__ == "linalg_solve_ex"
    # as in torch: torch.linalg's names only, not at the top level nor as Tensor methods
    for name in ("eigh", "eigvalsh", "solve_ex", "vecdot"):
        assert callable(getattr(engine.linalg, name))
        assert not hasattr(engine, name) and not hasattr(torch, name)
        assert not hasattr(engine.Tensor, name) and not hasattr(torch.Tensor, name)


def _rank_deficient(batch=()):
    a = RNG.standard_normal((*batch, 6, 3))
    a[..., 2] = a[..., 0] - 2 * a[..., 1]
    return a


LSTSQ_INPUTS = {
    "tall": lambda: (RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))),
    "wide": lambda: (RNG.standard_normal((3, 5)), RNG.standard_normal((3, 2))),
    "square": lambda: (RNG.standard_normal((2, 3, 3)), RNG.standard_normal((2, 3, 1))),
    "vector": lambda: (RNG.standard_normal((6, 3)), RNG.standard_normal(6)),
    "batched_vector": lambda: (RNG.standard_normal((4, 6, 3)), RNG.standard_normal((4, 6))),
    "broadcast": lambda: (RNG.standard_normal((2, 1, 6, 3)), RNG.standard_normal((1, 4, 6, 2))),
    "rank_deficient": lambda: (_rank_deficient(), RNG.standard_normal((6, 2))),
    "one_deficient_in_batch": lambda: (np.stack([RNG.standard_normal((6, 3)), _rank_deficient()]),
                                       RNG.standard_normal((2, 6, 2))),
    "no_columns": lambda: (np.zeros((5, 0)), RNG.standard_normal((5, 2))),
}


@needs_torch
@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("case", list(LSTSQ_INPUTS))
def test_lstsq_fills_torchs_fields_per_driver(case, driver):
    a, b = LSTSQ_INPUTS[case]()
    ours = engine.linalg.lstsq(engine.tensor(a), engine.tensor(b), driver=driver)
    theirs = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    skip = ("solution", "residuals") if driver == "gels" and "deficient" in case else ()  # QR without a rank: garbage
    if driver == "gels" and case == "no_columns":
        skip = ("residuals",)  # torch's are zeros there; nothing fits B, whose squared norm ours are
        np.testing.assert_allclose(ours.residuals.numpy(), (b ** 2).sum(0))
    for field, mine, ref in zip(ours._fields, ours, theirs):
        assert tuple(mine.shape) == tuple(ref.shape), field
        assert mine.dtype.name == str(ref.dtype).removeprefix("torch."), field
        if field not in skip:
            np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-8, atol=1e-10, err_msg=field)


def test_lstsq_rcond_and_minimum_norm_solution():
    a, b = _rank_deficient(), RNG.standard_normal((6, 2))
    result = engine.linalg.lstsq(engine.tensor(a), engine.tensor(b), driver="gelsd")
    assert result.rank.tolist() == 2 and result.residuals.numel() == 0
    np.testing.assert_allclose(result.solution.numpy(), np.linalg.lstsq(a, b, rcond=None)[0], atol=1e-10)
    # a cutoff above the second singular value leaves one
    s = np.linalg.svd(a, compute_uv=False)
    cut = engine.linalg.lstsq(engine.tensor(a), engine.tensor(b), (s[1] / s[0] + s[0]) / 2 / s[0], driver="gelss")
    assert cut.rank.tolist() == 1
    gels = engine.linalg.lstsq(engine.tensor(a), engine.tensor(b), 0.9, driver="gels")  # gels reads no rcond
    np.testing.assert_allclose(gels.solution.numpy(), result.solution.numpy(), atol=1e-10)


@needs_torch
def test_lstsq_gradient_at_orthonormal_columns_is_torchs():
    # equal singular values: a gradient through the SVD's factors would divide 0 by 0 here, torch's does not
    q = np.linalg.qr(RNG.standard_normal((5, 3)))[0]
    out = against_torch(lambda a, b: lib(a).linalg.lstsq(a, b, driver="gelsd").solution, q,
                        RNG.standard_normal((5, 2)), rtol=1e-8, atol=1e-10)
    assert np.isfinite(out.detach().numpy()).all()


@needs_torch
def test_lstsq_rank_deficient_gradient_is_torchs():
    against_torch(lambda a, b: lib(a).linalg.lstsq(a, b, driver="gelsd").solution, _rank_deficient(),
                  RNG.standard_normal((6, 2)), rtol=1e-6, atol=1e-8)


# ---- repeated eigenvalues and singular matrices: torch's answers ------------------------------------------
@needs_torch
def test_repeated_eigenvalues_as_torch():
    weights = [1.0, 2.0, 3.0]
    for L in (engine, torch):
        a = L.tensor(np.eye(3), requires_grad=True)
        w, _ = L.linalg.eigh(a)
        (w * L.tensor(weights).double()).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), np.diag(weights))  # eigenvalues alone: defined
        b = L.tensor(np.eye(3), requires_grad=True)
        L.linalg.eigvalsh(b).sum().backward()
        np.testing.assert_allclose(b.grad.numpy(), np.eye(3))
        c = L.tensor(np.eye(3), requires_grad=True)
        L.linalg.eigh(c).eigenvectors.abs().sum().backward()
        assert np.isnan(c.grad.numpy()).all()  # through the eigenvectors: not finite, as torch documents


@needs_torch
def test_solve_ex_reports_torchs_info_for_singular_matrices():
    s = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    stack = np.stack([RNG.standard_normal((3, 3)), s, s.T, np.zeros((3, 3))])
    b = RNG.standard_normal((4, 3, 2))
    for left in (True, False):
        rhs = b if left else b.swapaxes(-1, -2)
        ours = engine.linalg.solve_ex(engine.tensor(stack), engine.tensor(rhs), left=left)
        theirs = torch.linalg.solve_ex(torch.tensor(stack), torch.tensor(rhs), left=left)
        assert ours.info.dtype == engine.int32
        assert ours.info.tolist() == theirs.info.tolist() == [0, 3, 2, 1]
        np.testing.assert_allclose(ours.result.numpy()[0], theirs.result.numpy()[0], atol=1e-12)
        assert np.isnan(ours.result.numpy()[1:]).all()
    single = engine.linalg.solve_ex(engine.tensor(s), engine.tensor(b[0]))
    assert single.info.tolist() == 3 and tuple(single.info.shape) == ()
    assert engine.linalg.solve_ex(engine.tensor(s.T), engine.tensor(b[0])).info.tolist() == 2
    with pytest.raises(engine.linalg.LinAlgError, match=r"\(Batch element 1\): The solver failed because the input "
                                                        r"matrix is singular"):
        engine.linalg.solve_ex(engine.tensor(stack), engine.tensor(b), check_errors=True)


def test_solve_ex_gradient_of_the_solvable_matrices_in_a_batch():
    a = np.stack([RNG.standard_normal((3, 3)), np.ones((3, 3))])
    A = engine.tensor(a, requires_grad=True)
    result = engine.linalg.solve_ex(A, engine.ones(3, dtype=engine.float64)).result
    result[0].sum().backward()
    B = engine.tensor(a[0], requires_grad=True)
    engine.linalg.solve(B, engine.ones(3, dtype=engine.float64)).sum().backward()
    np.testing.assert_allclose(A.grad.numpy()[0], B.grad.numpy())
    assert not A.grad.numpy()[1].any()


@needs_torch
def test_cond_of_singular_and_empty_matrices_as_torch():
    stack = np.stack([np.ones((3, 3)), np.zeros((3, 3)), RNG.standard_normal((3, 3))])
    for p in (None, 2, -2, "fro", "nuc", 1, -1, math.inf, -math.inf):
        ours, theirs = engine.linalg.cond(engine.tensor(stack), p).numpy(), torch.linalg.cond(torch.tensor(stack), p)
        if p == "nuc":  # torch's is NaN for the zero matrix (the SVD of its inf-filled inverse); inf, as the others
            assert ours[1] == math.inf
            ours, theirs = ours[::2], theirs[::2]
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-8)
    for shape, p in (((0, 0), None), ((0, 3, 3), "fro"), ((2, 0, 0), 1)):
        ours, theirs = engine.linalg.cond(engine.zeros(shape), p), torch.linalg.cond(torch.zeros(shape), p)
        assert tuple(ours.shape) == tuple(theirs.shape) and ours.tolist() == theirs.tolist()
        assert ours.dtype == engine.float32


@needs_torch
@pytest.mark.parametrize("kwargs", [{}, {"hermitian": True}, {"atol": 1.0}, {"rtol": 0.5}, {"atol": 0.1, "rtol": 0.9},
                                    {"atol": np.array([0.1, 10.0, 1e-3])}, {"rtol": np.array([[0.05], [0.9]])},
                                    {"atol": 0.0}, {"tol": 1.5}])
def test_matrix_rank_as_torch(kwargs):
    a = RNG.standard_normal((3, 4, 4))
    a[1, :, 3] = a[1, :, 0]
    a = a @ a.swapaxes(-1, -2)  # symmetric, for hermitian=True
    tol = kwargs.pop("tol", None)
    extra = (tol,) if tol is not None else ()
    ours, theirs = (L.linalg.matrix_rank(L.tensor(a), *extra, **{k: L.tensor(v) if isinstance(v, np.ndarray) else v
                                                                 for k, v in kwargs.items()}) for L in (engine, torch))
    assert ours.dtype == engine.int64 and ours.tolist() == theirs.tolist()


def test_matrix_rank_of_wide_empty_and_negative_definite_matrices():
    assert engine.linalg.matrix_rank(engine.tensor(RNG.standard_normal((2, 5)))).tolist() == 2
    assert engine.linalg.matrix_rank(engine.zeros(0, 3)).tolist() == 0
    assert engine.linalg.matrix_rank(engine.zeros(2, 3, 3)).tolist() == [0, 0]
    assert engine.linalg.matrix_rank(-engine.eye(3), hermitian=True).tolist() == 3


def test_vecdot_of_two_vectors_ignores_dim_as_torch():
    x, y = RNG.standard_normal(4), RNG.standard_normal(4)
    assert engine.linalg.vecdot(engine.tensor(x), engine.tensor(y), dim=3).item() == pytest.approx(x @ y)
    assert engine.linalg.vecdot(engine.tensor(2.0), engine.tensor(3.0)).item() == 6.0


# ---- second derivatives (create_graph=True) ----------------------------------------------------------------
def _cond(L, a, p):
    """cond(a, p); on torch its definition by norms, as _cond_by_norms."""
    return L.linalg.cond(a, p) if L is engine else _cond_by_norms(p)(a)


SECOND_ORDER = {
    "eigh": (lambda L, F, a: _spectral(L, *L.linalg.eigh(a + a.mT)), [(2, 3, 3)]),
    "eigh_vectors_upper": (lambda L, F, a: L.linalg.eigh(a @ a.mT, UPLO="U").eigenvectors ** 2, [(4, 4)]),
    "eigh_values": (lambda L, F, a: L.linalg.eigh(a + a.mT)[0] ** 3, [(3, 3)]),
    "eigvalsh": (lambda L, F, a: L.linalg.eigvalsh(a + a.mT).exp(), [(2, 4, 4)]),
    "lstsq": (lambda L, F, a, b: L.linalg.lstsq(a, b).solution, [(5, 3), (5, 2)]),
    "lstsq_wide": (lambda L, F, a, b: L.linalg.lstsq(a, b, driver="gelsd").solution, [(2, 3, 4), (2, 3)]),
    "lstsq_residuals": (lambda L, F, a, b: L.linalg.lstsq(a, b, driver="gels").residuals, [(6, 3), (6, 2)]),
    "cond": (lambda L, F, a: L.linalg.cond(a), [(3, 3)]),
    "cond_fro": (lambda L, F, a: _cond(L, a, "fro"), [(2, 3, 3)]),
    "cond_inf": (lambda L, F, a: _cond(L, a, math.inf), [(3, 3)]),
    "solve_ex": (lambda L, F, a, b: L.linalg.solve_ex(a, b).result, [(3, 3), (3, 2)]),
    "vecdot": (lambda L, F, x, y: L.linalg.vecdot(x, y) ** 2, [(2, 3), (3,)]),
}
# cond in the inf-norm takes a max of row sums: not smooth enough for central differences of the gradient
test_second_order_matches_torch, test_second_order_matches_finite_differences = second_order_tests(
    SECOND_ORDER, no_differences=("cond_inf",))


# ---- errors ----------------------------------------------------------------------------------------------
def _f(L, shape, dtype="float32"):
    return L.ones(shape, dtype=getattr(L, dtype))


ERRORS = [
    (lambda L: L.linalg.eigh(_f(L, (3, 4))), RuntimeError, r"square matrices, but they are 3 by 4"),
    (lambda L: L.linalg.eigvalsh(_f(L, (2, 3, 4))), RuntimeError, r"batches of square matrices"),
    (lambda L: L.linalg.eigh(_f(L, (3,))), RuntimeError, r"at least 2 dimensions"),
    (lambda L: L.linalg.eigh(_f(L, (3, 3), "int64")), NotImplementedError, r"int64"),
    (lambda L: L.linalg.eigvalsh(_f(L, (3, 3), "float16")), NotImplementedError, r"float16"),
    (lambda L: L.linalg.eigh(_f(L, (3, 3)), UPLO="X"), RuntimeError, r"UPLO argument to be 'L' or 'U', but got X"),
    (lambda L: L.linalg.eigvalsh(_f(L, (3, 3)), UPLO="LU"), RuntimeError, r"'L' or 'U', but got LU"),
    (lambda L: L.linalg.eigh(_f(L, (3, 3)), UPLO=1), TypeError, r"'UPLO' must be str, not int"),
    (lambda L: L.linalg.lstsq(_f(L, (3,)), _f(L, (3,))), RuntimeError, r"input must have at least 2 dimensions"),
    (lambda L: L.linalg.lstsq(_f(L, (3, 2)), _f(L, ())), RuntimeError, r"other must have at least 1 dimension"),
    (lambda L: L.linalg.lstsq(_f(L, (4, 3, 2)), _f(L, (3,))), RuntimeError, r"input.dim\(\) must be greater or equal"),
    (lambda L: L.linalg.lstsq(_f(L, (5, 3)), _f(L, (4, 2))), RuntimeError, r"size\(-2\) should match other.size\(-2\)"),
    (lambda L: L.linalg.lstsq(_f(L, (5, 3)), _f(L, (4,))), RuntimeError, r"size\(-2\) should match other.size\(-1\)"),
    (lambda L: L.linalg.lstsq(_f(L, (5, 3)), _f(L, (5, 2), "float64")), RuntimeError, r"to have the same dtype"),
    (lambda L: L.linalg.lstsq(_f(L, (5, 3), "int64"), _f(L, (5, 2), "int64")), RuntimeError, r"int64"),
    (lambda L: L.linalg.lstsq(_f(L, (5, 3)), _f(L, (5, 2)), driver="qr"), RuntimeError,
     r"`driver` should be one of \(gels, gelsy, gelsd, gelss\)"),
    (lambda L: L.linalg.lstsq(_f(L, (2, 5, 3)), _f(L, (3, 5, 2))), RuntimeError, r"(do not broadcast|must match)"),
    (lambda L: L.linalg.matrix_rank(_f(L, (3,))), RuntimeError, r"at least 2 dimensions"),
    (lambda L: L.linalg.matrix_rank(_f(L, (3, 3), "int64")), RuntimeError, r"int64"),
    (lambda L: L.linalg.matrix_rank(_f(L, (4, 3)), hermitian=True), RuntimeError,
     r"linalg.eigh: A must be batches of square matrices"),
    (lambda L: L.linalg.cond(_f(L, (3,))), RuntimeError, r"at least 2 dimensions"),
    (lambda L: L.linalg.cond(_f(L, (3, 3)), 3), RuntimeError, r"linalg.cond got an invalid norm type: 3"),
    (lambda L: L.linalg.cond(_f(L, (3, 3)), "foo"), RuntimeError, r"invalid norm type: foo"),
    (lambda L: L.linalg.cond(_f(L, (4, 3)), "fro"), RuntimeError, r"linalg.cond\(ord=fro\): A must be batches"),
    (lambda L: L.linalg.cond(_f(L, (3, 3), "int64")), RuntimeError, r"int64"),
    (lambda L: L.linalg.solve_ex(_f(L, (3, 4)), _f(L, (3, 2))), RuntimeError, r"linalg.solve: A must be batches"),
    (lambda L: L.linalg.solve_ex(_f(L, (3, 3)), _f(L, (4, 2))), RuntimeError,
     r"Incompatible shapes of A and B for the equation AX = B \(3x3 and 4x2\)"),
    (lambda L: L.linalg.solve_ex(_f(L, (3, 3)), _f(L, (3,)), left=False), RuntimeError,
     r"equation XA = B \(3x3 and 3x1\)"),
    (lambda L: L.linalg.solve_ex(_f(L, (3, 3)), _f(L, (3, 2), "float64")), RuntimeError, r"same dtype"),
    (lambda L: L.linalg.solve_ex(_f(L, (3, 3), "int64"), _f(L, (3, 2), "int64")), RuntimeError, r"int64"),
    (lambda L: L.linalg.vecdot(_f(L, (2, 3), "int64"), _f(L, (2, 3), "int64")), RuntimeError,
     r"Expected a floating point or complex tensor as input"),
    (lambda L: L.linalg.vecdot(_f(L, (2, 3)), _f(L, (2, 3), "float64")), RuntimeError,
     r"Expected x and y to have the same dtype"),
    (lambda L: L.linalg.vecdot(_f(L, (2, 3)), _f(L, (2, 3)), dim=2), IndexError,
     r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_errors_as_torchs(call, error, message):
    with pytest.raises(error, match=message) as err:
        call(engine)
    assert "\n" not in str(err.value)
    if torch is not None:  # torch raises an error of the same type
        with pytest.raises(error):
            call(torch)


# ---- GPU ------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_matches_cpu_cuda():
    cuda_or_skip()
    sym, tall, rhs = RNG.standard_normal((2, 4, 4)), _rank_deficient((2,)), RNG.standard_normal((2, 6, 2))
    singular = np.stack([RNG.standard_normal((3, 3)), np.array([[1.0, 2, 3], [2, 4, 6], [1, 0, 1]])])
    results = {}
    for device in ("cpu", "cuda"):
        S, T, R, Q = (engine.tensor(x, device=device, requires_grad=True) for x in (sym, tall, rhs, singular))
        w, v = engine.linalg.eigh(S + S.mT)
        solution, residuals, rank, values = engine.linalg.lstsq(T[..., :2], R, driver="gelsd")
        full = engine.linalg.lstsq(T[..., 1:], R)  # the default driver: gels on a GPU, gelsy on the CPU
        result, info = engine.linalg.solve_ex(Q, R[..., :3, :])
        parts = [w, _spectral(engine, w, v), engine.linalg.eigvalsh(S, UPLO="U"), solution, residuals, values,
                 full.solution, engine.linalg.cond(S), engine.linalg.cond(S, "fro"), engine.linalg.cond(Q, 1)[:1],
                 result[:1], engine.linalg.vecdot(T, T[:1], dim=-2)]
        sum((t * t).sum() for t in parts).backward()
        assert all(t.device == engine.device(device) for t in parts)
        assert info.tolist() == [0, 3] and rank.tolist() == [2, 2]
        assert engine.linalg.matrix_rank(T).tolist() == engine.linalg.matrix_rank(T, hermitian=False).tolist() == [2, 2]
        assert engine.linalg.matrix_rank(S @ S.mT, hermitian=True).tolist() == [4, 4]
        assert engine.linalg.cond(Q, "nuc").tolist()[1] == math.inf
        results[device] = [t.detach().cpu().numpy() for t in parts] + [t.grad.cpu().numpy() for t in (S, T, R, Q)]
    for cpu, gpu in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-8, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("matrix", [np.eye(3), np.diag([2.0, 2.0, 1.0]), np.linalg.qr(np.arange(9.0).reshape(3, 3)
                                                                                     + np.eye(3))[0]])
def test_pinv_of_equal_singular_values_has_torchs_finite_gradient(matrix):
    # pinv composed from the SVD divided by gaps between singular values: NaN at the identity or any orthogonal matrix
    w = np.random.default_rng(1).standard_normal(matrix.T.shape)
    a, t = engine.tensor(matrix, requires_grad=True), torch.tensor(matrix, requires_grad=True)
    (engine.linalg.pinv(a) * engine.tensor(w)).sum().backward()
    (torch.linalg.pinv(t) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
