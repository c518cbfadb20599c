"""torch's top-level and older linear algebra the engine lacked: inner, vdot, addr/addmv/addbmm/baddbmm (and in
place), chain_matmul, linalg.multi_dot, matrix_power, svd (old and linalg), qr (old and linalg), pinverse,
cholesky_solve, cholesky_inverse, triangular_solve, lu/lu_solve (old API), nuclear_norm, frobenius_norm: values
and gradients against torch (float32) and float64 finite differences, second derivatives, one-line errors, GPU."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, cuda_or_skip, lib, needs_torch, one_line, torch
from tests.engine.test_math_more import check_second_order

RNG = np.random.default_rng(21)


def _lower(n: int, batch=()) -> np.ndarray:
    """A well-conditioned lower-triangular factor."""
    return np.tril(RNG.standard_normal((*batch, n, n))) * 0.3 + 2 * np.eye(n)


# fn(*tensors) runs on engine and torch tensors alike; the torch-side fn (third entry) reads what torch reads
CASES = {
    "inner": (lambda a, b: lib(a).inner(a, b), [(2, 3), (4, 3)]),
    "inner_scalar": (lambda a, b: a.inner(b), [(), (2, 3)]),
    "vdot": (lambda a, b: lib(a).vdot(a, b), [(5,), (5,)]),
    "addr": (lambda x, a, b: lib(x).addr(x, a, b, beta=0.5, alpha=2), [(3, 4), (3,), (4,)]),
    "addr_broadcast": (lambda x, a, b: x.addr(a, b), [(4,), (3,), (4,)]),
    "addmv": (lambda x, m, v: lib(x).addmv(x, m, v, beta=-1, alpha=0.5), [(3,), (3, 4), (4,)]),
    "addbmm": (lambda x, a, b: lib(x).addbmm(x, a, b, beta=2), [(3, 5), (2, 3, 4), (2, 4, 5)]),
    "baddbmm": (lambda x, a, b: x.baddbmm(a, b, alpha=3), [(2, 1, 5), (2, 3, 4), (2, 4, 5)]),
    "beta_zero": (lambda x, m, v: lib(x).addmv(x, m, v, beta=0), [(3,), (3, 4), (4,)]),
    "chain_matmul": (lambda a, b, c, d: lib(a).chain_matmul(a, b, c, d), [(2, 5), (5, 1), (1, 4), (4, 3)]),
    "multi_dot": (lambda a, b, c: lib(a).linalg.multi_dot([a, b, c]), [(4,), (4, 3), (3,)]),
    "matrix_power": (lambda a: lib(a).matrix_power(a, 5), [(2, 3, 3)]),
    "matrix_power_neg": (lambda a: a.matrix_power(-2), [(3, 3)]),
    "matrix_power_zero": (lambda a: a.matrix_power(0) + a, [(3, 3)]),
    "linalg_matrix_power": (lambda a: lib(a).linalg.matrix_power(a, 2), [(3, 3)]),
    "svd_s": (lambda a: lib(a).svd(a).S, [(4, 3)]),
    "svd_u": (lambda a: lib(a).svd(a)[0] ** 2, [(4, 3)]),
    "svd_v_wide": (lambda a: a.svd().V ** 2, [(2, 3, 5)]),
    # each singular pair's outer product U_k V_k^T: the same whichever signs LAPACK picks
    "svd_pairs": (lambda a: (lambda u, s, v: u.mT.unsqueeze(-1) * v.mT.unsqueeze(-2))(*a.svd()), [(3, 3)]),
    "linalg_svd": (lambda a: (lambda u, s, vh: u.abs() + s.sum() + vh.abs().sum())(*lib(a).linalg.svd(
        a, full_matrices=False)), [(5, 3)]),
    "qr": (lambda a: (lambda q, r: q + r.sum())(*lib(a).qr(a)), [(5, 3)]),
    "qr_r": (lambda a: a.qr().R, [(2, 4, 4)]),
    "qr_wide": (lambda a: (lambda q, r: q.sum(-1, keepdim=True) * r)(*a.qr()), [(3, 5)]),
    "pinverse": (lambda a: lib(a).pinverse(a), [(4, 3)]),
    "pinverse_wide": (lambda a: a.pinverse(), [(2, 2, 3)]),
    "linalg_pinv": (lambda a: lib(a).linalg.pinv(a), [(3, 4)]),
    "nuclear_norm": (lambda a: lib(a).nuclear_norm(a), [(4, 3)]),
    "nuclear_norm_dim": (lambda a: lib(a).nuclear_norm(a, (0, 2), True), [(4, 2, 3)]),
    "frobenius_norm": (lambda a: lib(a).frobenius_norm(a, (0, 1)), [(2, 3, 4)]),
}
# solves from a triangular factor. torch's gradient of a Cholesky factor L is the dense formula's, whose lower
# triangle is what the solve (which reads that triangle only) has: the torch side passes L.tril() to compare that
FACTOR_CASES = {
    "cholesky_solve": (lambda b, l: lib(b).cholesky_solve(b, l), [(3, 2), _lower(3)]),
    "cholesky_solve_upper": (lambda b, l: b.cholesky_solve(l.mT, upper=True), [(2, 3, 2), _lower(3)]),
    "cholesky_inverse": (lambda l: lib(l).cholesky_inverse(l), [_lower(4, (2,))]),
    "triangular_solve": (lambda b, a: (lambda x, c: x + c[..., :2])(*lib(b).triangular_solve(b, a, upper=False)),
                         [(3, 2), _lower(3)]),
    "triangular_solve_t": (lambda b, a: b.triangular_solve(a, False, True, True).solution, [(2, 3, 2), _lower(3)]),
}


def _tril_last(fn):
    def torch_fn(*ts):
        return fn(*ts[:-1], ts[-1].tril())
    return torch_fn


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients(name):
    fn, shapes = CASES[name]
    check_grads(fn, shapes, seed=sum(map(ord, name)))


@pytest.mark.parametrize("name", list(FACTOR_CASES))
def test_factor_solves(name):
    fn, shapes = FACTOR_CASES[name]
    check_grads(fn, shapes, torch_fn=_tril_last(fn) if name.startswith("cholesky") else fn, seed=sum(map(ord, name)))


HIGHER = {
    "svd": (lambda L, a: (lambda u, s, v: s.sum() * (u ** 2).sum(0) + (v ** 2).sum(-1))(*L.svd(a)), [(4, 3)]),
    "svd_wide": (lambda L, a: L.svd(a).V ** 2, [(2, 4)]),
    "qr": (lambda L, a: (lambda q, r: q.sum(0) * r)(*L.qr(a)), [(4, 3)]),
    "qr_wide": (lambda L, a: (lambda q, r: q.sum(-1, keepdim=True) * r)(*L.qr(a)), [(3, 4)]),
    "pinverse": (lambda L, a: L.pinverse(a), [(3, 4)]),
    "matrix_power": (lambda L, a: L.matrix_power(a, -3), [(3, 3)]),
    "baddbmm": (lambda L, x, a, b: L.baddbmm(x, a, b, beta=2) ** 2, [(2, 3, 5), (2, 3, 4), (2, 4, 5)]),
    "cholesky_solve": (lambda L, b, a: L.cholesky_solve(b, L.linalg.cholesky(a @ a.mT + 3 * L.eye(3).double())),
                       [(3, 2), (3, 3)]),
    "triangular_solve": (lambda L, b, a: L.triangular_solve(b, (a + 3 * L.eye(3).double()).tril()).solution ** 2,
                         [(3, 2), (3, 3)]),
}


@needs_torch
@pytest.mark.parametrize("name", list(HIGHER))
def test_second_derivatives_match_torch(name):
    check_second_order(*HIGHER[name], seed=sum(map(ord, name)), rtol=1e-7, atol=1e-9)


# ---- results' shapes and types as torch's -----------------------------------------------------------------------
@needs_torch
def test_full_factors_and_result_types():
    a = RNG.standard_normal((4, 3))
    ours, theirs = engine.tensor(a), torch.tensor(a)
    u, _, v = ours.svd(some=False)
    assert type(ours.svd()).__name__ == "svd" and ours.svd()._fields == ("U", "S", "V")
    assert (tuple(u.shape), tuple(v.shape)) == ((4, 4), (3, 3))
    np.testing.assert_allclose((u.mT @ u).numpy(), np.eye(4), atol=1e-12)
    zero_u, s2, zero_v = engine.svd(ours, compute_uv=False)
    assert not zero_u.numpy().any() and tuple(zero_u.shape) == (4, 4) and tuple(zero_v.shape) == (3, 3)
    np.testing.assert_allclose(s2.numpy(), torch.svd(theirs).S.numpy())
    q, r = engine.qr(ours, some=False)
    tq, tr = torch.linalg.qr(theirs, mode="complete")
    np.testing.assert_allclose(q.numpy(), tq.numpy(), atol=1e-12)
    np.testing.assert_allclose(r.numpy(), tr.numpy(), atol=1e-12)
    assert engine.linalg.qr(ours, mode="r").Q.numel() == 0
    lu, piv, infos = engine.lu(engine.tensor([[1.0, 2.0], [2.0, 4.0]]), get_infos=True)
    tlu, tpiv, tinfos = torch.linalg.lu_factor_ex(torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    np.testing.assert_allclose(lu.numpy(), tlu.numpy())
    assert piv.tolist() == tpiv.tolist() and infos.tolist() == tinfos.tolist() == 2
    b = RNG.standard_normal((2, 3, 2))
    A = RNG.standard_normal((2, 3, 3))
    x = engine.tensor(b).lu_solve(*engine.lu(engine.tensor(A)))
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, b), atol=1e-12)
    _, coefficient = engine.triangular_solve(engine.tensor(b), engine.tensor(A))
    assert type(engine.triangular_solve(engine.tensor(b), engine.tensor(A))).__name__ == "triangular_solve"
    np.testing.assert_allclose(coefficient.numpy(), A)


def test_svd_some_false_gradient_reads_the_thin_factors():
    a = engine.tensor(RNG.standard_normal((4, 2)), requires_grad=True)
    u, _, _ = a.svd(some=False)
    u[:, :2].pow(2).sum(0).dot(engine.tensor([1.0, 2.0])).backward()
    b = engine.tensor(a.detach().numpy(), requires_grad=True)
    b.svd().U.pow(2).sum(0).dot(engine.tensor([1.0, 2.0])).backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy())


def test_in_place_forms():
    x = engine.tensor(RNG.standard_normal((3, 4)))
    a, b = engine.tensor(RNG.standard_normal(3)), engine.tensor(RNG.standard_normal(4))
    expected = (x * 2 + a.outer(b)).numpy()
    assert x.addr_(a, b, beta=2) is x
    np.testing.assert_allclose(x.numpy(), expected)
    y = engine.tensor(RNG.standard_normal(3))
    m = engine.tensor(RNG.standard_normal((3, 4)))
    expected = (y + m @ b).numpy()
    y.addmv_(m, b)
    np.testing.assert_allclose(y.numpy(), expected)
    z = engine.tensor(RNG.standard_normal((2, 3, 5)))
    b1, b2 = engine.tensor(RNG.standard_normal((2, 3, 4))), engine.tensor(RNG.standard_normal((2, 4, 5)))
    expected = (z + b1 @ b2).numpy()
    z.baddbmm_(b1, b2)
    np.testing.assert_allclose(z.numpy(), expected)
    w = engine.tensor(RNG.standard_normal((3, 5)))
    expected = (w + (b1 @ b2).sum(0) * 0.5).numpy()
    w.addbmm_(b1, b2, alpha=0.5)
    np.testing.assert_allclose(w.numpy(), expected)


def test_beta_zero_ignores_nan_input():
    out = engine.addmv(engine.tensor([np.nan, np.inf]), engine.ones(2, 2), engine.ones(2), beta=0)
    assert out.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("call, error, message", [
    (lambda: engine.inner(engine.ones(2, 3), engine.ones(4)), engine.ShapeError, r"last dimension must match"),
    (lambda: engine.vdot(engine.ones(2, 3), engine.ones(3)), engine.ShapeError, r"1D tensors expected, but got 2D"),
    (lambda: engine.vdot(engine.ones(3), engine.ones(3).double()), TypeError, r"same dtype"),
    (lambda: engine.addr(engine.ones(3, 4), engine.ones(3, 1), engine.ones(4)), engine.ShapeError,
     r"Expected 1-D argument vec1, but got 2-D"),
    (lambda: engine.addr(engine.ones(5, 4), engine.ones(3), engine.ones(4)), engine.ShapeError, r"cannot be expanded"),
    (lambda: engine.addmv(engine.ones(3), engine.ones(3, 4), engine.ones(5)), engine.ShapeError, r"size mismatch"),
    (lambda: engine.baddbmm(engine.ones(3, 5), engine.ones(2, 3, 4), engine.ones(3, 4, 5)), engine.ShapeError,
     r"batch2 tensor to be: \[2, 4\] but got: \[3, 4\]"),
    (lambda: engine.chain_matmul(), ValueError, r"Expected one or more matrices"),
    (lambda: engine.chain_matmul(engine.ones(3), engine.ones(3, 3)), engine.ShapeError, r"dimension is 1"),
    (lambda: engine.chain_matmul(engine.ones(3, 2), engine.ones(3, 3)), engine.ShapeError, r"cannot be multiplied"),
    (lambda: engine.matrix_power(engine.ones(2, 3), 2), engine.ShapeError, r"square matrices, but they are 2 by 3"),
    (lambda: engine.matrix_power(engine.ones(2, 2), 1.5), TypeError, r"n must be an int"),
    (lambda: engine.svd(engine.ones(3)), engine.ShapeError, r"at least 2 dimensions"),
    (lambda: engine.qr(engine.ones(3)), engine.ShapeError, r"at least 2 dimensions"),
    (lambda: engine.linalg.qr(engine.ones(3, 3), mode="thin"), ValueError, r"unrecognized mode"),
    (lambda: engine.pinverse(engine.ones(3)), engine.ShapeError, r"2 or more dimensions"),
    (lambda: engine.cholesky_solve(engine.ones(3), engine.eye(3)), engine.ShapeError, r"at least 2 dimensions"),
    (lambda: engine.cholesky_solve(engine.ones(2, 4), engine.eye(3)), engine.ShapeError,
     r"Incompatible matrix sizes for cholesky_solve: each A matrix is 3 by 3 but each b matrix is 2 by 4"),
    (lambda: engine.cholesky_inverse(engine.ones(2, 3)), engine.ShapeError, r"square matrices"),
    (lambda: engine.triangular_solve(engine.ones(3), engine.eye(3)), engine.ShapeError, r"at least 2 dimensions"),
    (lambda: engine.frobenius_norm(engine.ones(2, 2, 2), (0, 1, 2)), ValueError, r"at most 2 dims"),
    (lambda: engine.nuclear_norm(engine.ones(3)), engine.ShapeError, r"at least 2 dimensions"),
])
def test_errors(call, error, message):
    one_line(call, error, message)


def test_complete_qr_of_a_tall_matrix_and_mode_r_are_not_differentiable():
    a = engine.tensor(RNG.standard_normal((4, 2)), requires_grad=True)
    q, _ = engine.qr(a, some=False)
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete'"):
        q.sum().backward()
    r = engine.linalg.qr(a, mode="r").R
    np.testing.assert_allclose(r.detach().numpy(), np.linalg.qr(a.detach().numpy(), mode="r"), atol=1e-12)
    with pytest.raises(RuntimeError, match="not computed when mode='r'"):
        r.sum().backward()


# ---- GPU ------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_matches_cpu_cuda():
    cuda_or_skip()
    a, b, l = RNG.standard_normal((2, 4, 3)), RNG.standard_normal((2, 3, 2)), _lower(3)
    results = {}
    for device in ("cpu", "cuda"):
        A, B, L = (engine.tensor(x, device=device, requires_grad=True) for x in (a, b, l))
        u, s, v = A.svd()
        q, r = A.qr()
        parts = [s, u ** 2, v ** 2, q, r, A.pinverse(), engine.cholesky_solve(B, L), engine.cholesky_inverse(L),
                 engine.triangular_solve(B, L, upper=False).solution, (A.mT @ A).matrix_power(-2),
                 engine.baddbmm(B, A.mT, A[..., :2]), engine.inner(A, B.mT), engine.nuclear_norm(A),
                 engine.chain_matmul(A[0], B[0], B[1].mT), A.svd(some=False).U ** 2]
        sum((t * t).sum() for t in parts).backward()
        assert all(t.device == engine.device(device) for t in parts)
        results[device] = [t.detach().cpu().numpy() for t in parts] + [t.grad.cpu().numpy() for t in (A, B, L)]
    for cpu, gpu in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-8, atol=1e-10)
