"""torch's linear algebra and shape functions the engine lacked: kron, tensordot, cross, trace, block_diag, vander,
cartesian_prod, tril/triu_indices, rot90 and the LU family (linalg.lu_factor, lu, lu_solve, lu_unpack); values,
dtypes and gradients against torch (float64) and finite differences, one-line errors, second derivatives, GPU."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import cuda_or_skip, finite_difference_check, needs_torch, one_line, torch
from tests.engine.test_math_more import against_torch, check_second_order, lib

RNG = np.random.default_rng(9)


# ---- products, trace, block_diag, vander ----------------------------------------------------------------
CASES = {
    "kron": (lambda a, b: lib(a).kron(a, b), [(2, 3), (3, 1, 2)]),
    "kron_vectors": (lambda a, b: a.kron(b), [(3,), (2,)]),
    "tensordot_int": (lambda a, b: lib(a).tensordot(a, b, dims=2), [(2, 3, 4), (3, 4, 5)]),
    "tensordot_lists": (lambda a, b: lib(a).tensordot(a, b, dims=([0, 2], [2, 0])), [(2, 3, 4), (4, 5, 2)]),
    "tensordot_zero": (lambda a, b: lib(a).tensordot(a, b, dims=0), [(2, 3), (3,)]),
    "cross_default_dim": (lambda a, b: lib(a).cross(a, b), [(4, 3, 2), (4, 3, 2)]),
    "cross_method_dim": (lambda a, b: a.cross(b, dim=-1), [(2, 3), (1, 3)]),
    "linalg_cross_broadcast": (lambda a, b: lib(a).linalg.cross(a, b, dim=1), [(2, 3, 1), (1, 3, 4)]),
    "trace": (lambda a: lib(a).trace(a), [(3, 3)]),
    "trace_wide": (lambda a: a.trace(), [(2, 5)]),
    "trace_tall": (lambda a: a.trace(), [(5, 2)]),
    "block_diag": (lambda a, b, c: lib(a).block_diag(a, b, c), [(), (3,), (2, 2)]),
    "vander": (lambda a: lib(a).vander(a), [(4,)]),
    "vander_increasing": (lambda a: lib(a).vander(a, N=5, increasing=True), [(3,)]),
    "linalg_vander": (lambda a: lib(a).linalg.vander(a, N=4), [(2, 3)]),
    "cartesian_prod": (lambda a, b, c: lib(a).cartesian_prod(a, b, c), [(2,), (3,), (2,)]),
    "rot90": (lambda a: lib(a).rot90(a), [(2, 3, 4)]),
    "rot90_k2": (lambda a: a.rot90(2, [1, 2]), [(2, 3, 4)]),
    "rot90_k3": (lambda a: lib(a).rot90(a, -1, (2, 0)), [(2, 3, 4)]),
    "rot90_k4": (lambda a: lib(a).rot90(a, 4), [(2, 3)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_and_finite_differences(name):
    fn, shapes = CASES[name]
    arrays = [RNG.standard_normal(s) for s in shapes]
    # torch 2.13's vander cannot backward (its cumprod writes in place what it saved): values only there
    against_torch(fn, *arrays, wrt=[] if name.startswith("vander") else None)
    finite_difference_check(fn, arrays)


@needs_torch
def test_integer_and_mixed_dtypes_follow_torch():
    T = torch.tensor
    cases = [
        lambda L, t: L.kron(t([1, 2]), t([3, 4], dtype=L.int32)),
        lambda L, t: L.kron(t([1, 2]), t([[1.0, 2.0]])),
        lambda L, t: L.kron(t(2.0), t(3.0)),
        lambda L, t: L.trace(t([[1, 2], [3, 4]], dtype=L.int32)),
        lambda L, t: L.trace(L.ones(0, 3)),
        lambda L, t: L.block_diag(t(1.0), t([1, 2]), t([[1, 2], [3, 4]], dtype=L.int32)),
        lambda L, t: L.block_diag(),
        lambda L, t: L.block_diag(L.ones(0, 3), L.ones(2, 0)),
        lambda L, t: L.block_diag(L.ones(0, 3)),
        lambda L, t: L.vander(t([1, 2, 3])),
        lambda L, t: L.vander(t([1, 2, 3], dtype=L.int32), 2),
        lambda L, t: L.vander(t([True, False])),
        lambda L, t: L.vander(t([1.0, 2.0], dtype=L.float16)),
        lambda L, t: L.vander(t([1.0, 2.0]), 0),
        lambda L, t: L.linalg.vander(t([[1, 2, 3]], dtype=L.int32)),
        lambda L, t: L.cartesian_prod(t([1, 2])),
        lambda L, t: L.cartesian_prod(t([1, 2]), t([], dtype=L.int64)),
        lambda L, t: L.cross(t([[1, 0, 0]]), t([[0, 1, 0]])),
        lambda L, t: L.tensordot(t([[1, 2]]), t([[3, 4]]), dims=([1], [1])),
        lambda L, t: L.tensordot(L.ones(2, 3), L.ones(3, 2), dims=t([[1], [0]])),
        lambda L, t: L.rot90(t([[1, 2], [3, 4]]), -1),
    ]
    for i, case in enumerate(cases):
        ours, theirs = case(engine, engine.tensor), case(torch, T)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), f"case {i}"
        assert tuple(ours.shape) == tuple(theirs.shape), f"case {i}"
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=f"case {i}")


@needs_torch
def test_tril_and_triu_indices_match_torch():
    for row, col, offset in [(3, 4, 1), (3, 3, -1), (4, 2, 0), (0, 0, 0), (3, 5, -7), (3, 5, 9), (1, 6, 2)]:
        for name in ("tril_indices", "triu_indices"):
            ours = getattr(engine, name)(row, col, offset)
            theirs = getattr(torch, name)(row, col, offset)
            assert ours.dtype == engine.int64 and tuple(ours.shape) == tuple(theirs.shape)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert engine.tril_indices(3, 3, dtype=engine.int32).dtype == engine.int32
    one_line(lambda: engine.tril_indices(3, -1), ValueError, "tril_indices: row and col must be non-negative")
    one_line(lambda: engine.triu_indices(3, 3, dtype=engine.float32), TypeError, "must be an integer type")


@pytest.mark.parametrize("call, error, message", [
    (lambda: engine.tensordot(engine.ones(2, 3), engine.ones(3, 2), dims=([1], [1])), engine.ShapeError,
     "tensordot: contracted dimensions need to match, but a has size 3 in dim 1 and b has size 2 in dim 1"),
    (lambda: engine.tensordot(engine.ones(2, 3), engine.ones(3, 2), dims=3), engine.ShapeError, "dims=3 is more"),
    (lambda: engine.tensordot(engine.ones(2, 3), engine.ones(3, 2), dims=-1), ValueError, "dims must be >= 0"),
    (lambda: engine.tensordot(engine.ones(2, 3), engine.ones(3, 2), dims=([1, 0], [0])), ValueError,
     "both dimension lists should have the same length"),
    (lambda: engine.tensordot(engine.ones(2), engine.ones(2, dtype=engine.int64), dims=1), TypeError,
     "same dtype, got float32 and int64"),
    (lambda: engine.cross(engine.ones(4, 2), engine.ones(4, 2)), engine.ShapeError, "no dimension of size 3"),
    (lambda: engine.cross(engine.ones(4, 3), engine.ones(4, 3), dim=0), engine.ShapeError,
     "linalg.cross: inputs dimension 0 must have length 3, got 4 and 4"),
    (lambda: engine.linalg.cross(engine.ones(3), engine.ones(2, 3)), engine.ShapeError,
     "same number of dimensions"),
    (lambda: engine.linalg.cross(engine.ones(3), engine.ones(3, dtype=engine.int64)), TypeError, "same dtype"),
    (lambda: engine.linalg.cross(engine.ones(2, 3), engine.ones(4, 3)), engine.ShapeError, r"\(2, 3\), \(4, 3\)"),
    (lambda: engine.trace(engine.ones(3)), engine.ShapeError, "trace: expected a matrix, but got a tensor with 1"),
    (lambda: engine.block_diag(engine.ones(2, 2, 2)), engine.ShapeError, "input 0 has 3"),
    (lambda: engine.vander(engine.ones(2, 2)), engine.ShapeError, "vander: x must be a one-dimensional tensor"),
    (lambda: engine.vander(engine.ones(2), -1), ValueError, "vander: N must be non-negative"),
    (lambda: engine.linalg.vander(engine.ones(2), N=1), ValueError, "N must be greater than 1"),
    (lambda: engine.linalg.vander(engine.tensor(1.0)), engine.ShapeError, "at least one dimension"),
    (lambda: engine.cartesian_prod(engine.ones(1, 2)), engine.ShapeError, "expects 1-D tensors, but input 0"),
    (lambda: engine.cartesian_prod(engine.ones(2), engine.tensor([1, 2])), TypeError, "same dtype"),
    (lambda: engine.cartesian_prod(), ValueError, "at least one tensor"),
    (lambda: engine.rot90(engine.ones(2)), engine.ShapeError, "rot90: expected total dims >= 2"),
    (lambda: engine.rot90(engine.ones(2, 3), 1, [0, 0]), ValueError, "rotation dims to be different"),
    (lambda: engine.rot90(engine.ones(2, 3), 1, [0]), ValueError, "expected total rotation dims == 2"),
    (lambda: engine.rot90(engine.ones(2, 3), 1, [0, 5]), IndexError, "Dimension out of range"),
    (lambda: engine.rot90(engine.ones(2, 3), 1.5), TypeError, "integer"),
])
def test_bad_input_gets_a_one_line_error(call, error, message):
    one_line(call, error, message)


# ---- LU ---------------------------------------------------------------------------------------------------
SHAPES = [(4, 4), (3, 5), (5, 3), (2, 3, 3), (2, 1, 4, 2), (70, 70), (2, 40, 75), (75, 40)]


@needs_torch
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lu_factor_lu_and_lu_unpack_match_torch(shape):
    a = RNG.standard_normal(shape)
    lu, pivots = engine.linalg.lu_factor(engine.tensor(a))
    t_lu, t_pivots = torch.linalg.lu_factor(torch.tensor(a))
    assert pivots.dtype == engine.int32
    np.testing.assert_array_equal(pivots.numpy(), t_pivots.numpy())
    np.testing.assert_allclose(lu.numpy(), t_lu.numpy(), rtol=1e-9, atol=1e-12)
    for ours, theirs in zip(engine.linalg.lu(engine.tensor(a)), torch.linalg.lu(torch.tensor(a))):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-9, atol=1e-12)
    for ours, theirs in zip(engine.lu_unpack(lu, pivots), torch.lu_unpack(t_lu, t_pivots)):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-9, atol=1e-12)
    # gradients of every factor (square, wide and tall: torch's three cases)
    against_torch(lambda t: sum((f * f.sum()).sum() for f in lib(t).linalg.lu(t)[1:]), a, rtol=1e-8, atol=1e-10)
    against_torch(lambda t: lib(t).linalg.lu_factor(t).LU, a, rtol=1e-8, atol=1e-10)


def test_lu_gradients_match_finite_differences():
    for shape in [(3, 3), (2, 4), (4, 2)]:
        a = RNG.standard_normal(shape)
        finite_difference_check(lambda t: engine.linalg.lu(t).L * 2 + engine.linalg.lu(t).U.sum(), [a])
        finite_difference_check(lambda t: engine.linalg.lu_factor(t).LU, [a])


@needs_torch
@pytest.mark.parametrize("left, adjoint", [(True, False), (True, True), (False, False), (False, True)])
def test_lu_solve_matches_torch_with_broadcast_batches(left, adjoint):
    a = RNG.standard_normal((2, 1, 4, 4))
    b = RNG.standard_normal((3, 4, 2) if left else (3, 2, 4))

    def solve(A, B):
        L = lib(A)
        lu, pivots = L.linalg.lu_factor(A)
        return L.linalg.lu_solve(lu, pivots, B, left=left, adjoint=adjoint)

    x = against_torch(solve, a, b, rtol=1e-8, atol=1e-10).detach().numpy()
    op = np.swapaxes(a, -1, -2) if adjoint else a
    product = op @ x if left else x @ op
    np.testing.assert_allclose(product, np.broadcast_to(b, product.shape), atol=1e-10)
    finite_difference_check(solve, [a[0, 0], b[0]])


@needs_torch
def test_lu_of_singular_and_empty_matrices():
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    one_line(lambda: engine.linalg.lu_factor(engine.tensor(singular)), engine.linalg.LinAlgError,
             r"linalg.lu_factor: U\[1,1\] is zero")
    one_line(lambda: engine.linalg.lu_factor(engine.zeros(3, 2, 2)), engine.linalg.LinAlgError,
             r"\(batch element 0\): U\[0,0\] is zero")
    for ours, theirs in zip(engine.linalg.lu(engine.tensor(singular)), torch.linalg.lu(torch.tensor(singular))):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for shape in [(0, 3), (3, 0), (0, 0), (0, 2, 2)]:
        lu, pivots = engine.linalg.lu_factor(engine.zeros(*shape))
        t_lu, t_pivots = torch.linalg.lu_factor(torch.zeros(*shape))
        assert tuple(lu.shape) == tuple(t_lu.shape) and tuple(pivots.shape) == tuple(t_pivots.shape)
        assert [tuple(f.shape) for f in engine.linalg.lu(engine.zeros(*shape))] == \
            [tuple(f.shape) for f in torch.linalg.lu(torch.zeros(*shape))]


def test_lu_without_pivoting_factors_a_matrix_with_nonzero_leading_minors():
    a = RNG.standard_normal((2, 4, 4)) + 4 * np.eye(4)
    p, low, up = engine.linalg.lu(engine.tensor(a), pivot=False)
    assert tuple(p.shape) == (2, 0, 0)
    np.testing.assert_allclose((low @ up).numpy(), a, atol=1e-12)
    _, pivots = engine.linalg.lu_factor(engine.tensor(a), pivot=False)
    np.testing.assert_array_equal(pivots.numpy(), np.broadcast_to(np.arange(1, 5), (2, 4)))


def test_lu_unpack_skips_what_it_is_not_asked_for_and_checks_pivots():
    lu, pivots = engine.linalg.lu_factor(engine.tensor(RNG.standard_normal((3, 3))))
    p, low, up = engine.lu_unpack(lu, pivots, unpack_data=False)
    assert tuple(p.shape) == (3, 3) and low.numel() == 0 and up.numel() == 0
    p, low, up = engine.lu_unpack(lu, pivots, unpack_pivots=False)
    assert p.numel() == 0 and tuple(low.shape) == (3, 3)
    one_line(lambda: engine.lu_unpack(lu, pivots.long()), TypeError, "lu_unpack: pivots must be an int32 tensor")
    one_line(lambda: engine.lu_unpack(lu, engine.tensor([5, 1, 1], dtype=engine.int32)), ValueError,
             "pivots must be between 1 and 3")
    one_line(lambda: engine.lu_unpack(lu, pivots[:2]), engine.ShapeError, "do not fit LU of shape")


@pytest.mark.parametrize("call, error, message", [
    (lambda: engine.linalg.lu_factor(engine.ones(2, 2, dtype=engine.int64)), TypeError, "expected a floating point"),
    (lambda: engine.linalg.lu(engine.ones(2)), engine.ShapeError, "linalg.lu: expected a tensor with 2 or more"),
    (lambda: engine.linalg.lu_solve(*engine.linalg.lu_factor(engine.eye(3)), engine.ones(3)), engine.ShapeError,
     "linalg.lu_solve: B must have at least 2 dimensions"),
    (lambda: engine.linalg.lu_solve(*engine.linalg.lu_factor(engine.eye(3)), engine.ones(3, 2), left=False),
     engine.ShapeError, r"equation XA = B \(3x3 and 3x2\)"),
    (lambda: engine.linalg.lu_solve(*engine.linalg.lu_factor(engine.eye(3)), engine.ones(3, 1, dtype=engine.float64)),
     TypeError, "LU and B must have the same dtype"),
    (lambda: engine.linalg.lu_solve(engine.eye(3), engine.ones(3, dtype=engine.int64), engine.ones(3, 1)), TypeError,
     "pivots must be an int32 tensor"),
    (lambda: engine.linalg.lu_solve(engine.ones(3, 2), engine.ones(2, dtype=engine.int32), engine.ones(3, 1)),
     engine.ShapeError, "LU must be batches of square matrices"),
])
def test_lu_bad_input_gets_a_one_line_error(call, error, message):
    one_line(call, error, message)


# ---- second derivatives of the ops with their own backward, and of composed ones -------------------------
HIGHER = {
    "lu_factor": (lambda L, a: L.linalg.lu_factor(a).LU * a, [(3, 3)]),
    "lu_wide": (lambda L, a: L.linalg.lu(a).U ** 2, [(2, 4)]),
    "lu_tall": (lambda L, a: L.linalg.lu(a).L ** 2, [(4, 2)]),
    "cross": (lambda L, a, b: L.linalg.cross(a * a, b) * a, [(2, 3), (2, 3)]),
    "kron_composed": (lambda L, a, b: L.kron(a, b * a.sum()), [(2, 2), (2, 3)]),
}


@needs_torch
@pytest.mark.parametrize("name", list(HIGHER))
def test_second_derivatives_match_torch(name):
    check_second_order(*HIGHER[name], seed=sum(map(ord, name)), rtol=1e-8, atol=1e-10)


# ---- GPU ------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_matches_cpu():
    cuda_or_skip()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 5, 5)), rng.standard_normal((2, 5, 3))
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    results = {}
    for device in ("cpu", "cuda"):
        A = engine.tensor(a, device=device, requires_grad=True)
        B = engine.tensor(b, device=device, requires_grad=True)
        X = engine.tensor(x, device=device, requires_grad=True)
        Y = engine.tensor(y, device=device, requires_grad=True)
        lu, pivots = engine.linalg.lu_factor(A)
        p, low, up = engine.linalg.lu(A[:, :, :4])
        p2, _, _ = engine.lu_unpack(lu, pivots)
        parts = [
            engine.linalg.lu_solve(lu, pivots, B), engine.linalg.lu_solve(lu, pivots, B.mT, left=False, adjoint=True),
            low, up, p, p2, engine.kron(X, Y[:2]), engine.tensordot(X, Y, dims=([0], [0])), engine.cross(X, Y),
            engine.trace(X), engine.block_diag(X, Y[0]), engine.vander(X[:, 0]), engine.linalg.vander(X),
            engine.cartesian_prod(X[:, 0], Y[:, 1]), engine.rot90(X, 3), engine.logaddexp(X, Y),
            engine.logaddexp2(X, Y), engine.hypot(X, Y), engine.copysign(X, Y), engine.nextafter(X, Y),
            engine.frexp(X).mantissa, engine.ldexp(X, engine.tensor([[1, -2, 3]], device=device)),
            engine.ldexp(X, Y), engine.renorm(X, 2, 0, 1.0), engine.trapezoid(X, Y, dim=0),
            engine.cumulative_trapezoid(X, dx=0.5), engine.trapz(X),
        ]
        total = sum((t.float() if not t.dtype.is_floating_point else t).sum() for t in parts)
        total.backward()
        indices = [engine.tril_indices(3, 4, 1, device=device), engine.triu_indices(4, 3, -1, device=device),
                   pivots, engine.frexp(X).exponent]
        assert all(t.device == engine.device(device) for t in parts + indices)
        results[device] = ([t.detach().cpu().numpy() for t in parts + indices],
                           [t.grad.cpu().numpy() for t in (A, B, X, Y)])
    for cpu, gpu in zip(results["cpu"][0] + results["cpu"][1], results["cuda"][0] + results["cuda"][1]):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-12)
    with pytest.raises(engine.linalg.LinAlgError, match="is zero"):
        engine.linalg.lu_factor(engine.zeros(2, 2, device="cuda"))
