"""Higher-order gradients of the ops that refused create_graph=True until now: sort/topk/median, atan2/xlogy,
cdist (every p, zero distances included), scatter_reduce, bicubic resampling, the linear-algebra ops
(inv, det, slogdet/logdet, solve, solve_triangular, cholesky, svdvals, diagonals, outer, addmm), Bessel
functions, writes into tensors and views, soft-target cross_entropy and more.

Each op's gradient and the gradient of (gradient . v) are compared with PyTorch in float64 (with a composite
of torch ops where torch's own op has no double backward, as its cdist for p != 2), and the latter with
central differences of the engine's own gradient; then a full Hessian through a decomposition, a Gaussian
process's Hessian-vector product and WGAN-GP critics that measure distances with cdist.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as enn
import engine.nn.functional as EF
from tests.engine.oracle import cuda_or_skip, needs_torch, torch
from tests.engine.second_order import (
    case_inputs,
    grad_and_hvp,
    second_order_tests,
)
from tests.engine.test_higher_order import _check_wgan_gp, _close

_RNG = np.random.default_rng(33)
ZERO_MASK = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
NAN_SHIFT = np.zeros((3, 4))
NAN_SHIFT[1, 2] = np.nan
NOT_FINITE = np.array([0.0, np.nan, 0.0, np.inf, -np.inf, 0.0])  # nan_to_num's gradient stops there
INDEX = np.array([[0, 1], [2, 2], [3, 0]])
SOFT_TARGET = _RNG.dirichlet(np.ones(4), size=3)
CLASS_WEIGHT = _RNG.uniform(0.5, 2.0, 4)


def _idx(L, a):
    return L.tensor(np.asarray(a))


def _eye(L, like):
    """The identity of like's last dim, on like's device."""
    return L.eye(like.shape[-1], dtype=L.float64, device=like.device)


def _spd(L, a):
    """A symmetric positive-definite matrix (stack) made from a."""
    return a @ a.mT + 3 * _eye(L, a)


def _cdist_composite(L, x1, x2, p):
    """cdist as plain ops: the reference where torch's own cdist has no double backward (p != 2 without mm)."""
    a = (x1.unsqueeze(-2) - x2.unsqueeze(-3)).abs()
    if p == float("inf"):
        return a.amax(-1)
    return (a ** p).sum(-1) ** (1 / p)


def _cdist(p, mode="donot_use_mm_for_euclid_dist"):
    """A case of cdist with p; torch's reference is its own cdist only for p = 2 through matrix products."""
    def fn(L, F, a, b):
        if L is torch and not (p == 2 and mode == "use_mm_for_euclid_dist"):
            return _cdist_composite(L, a * a, b, p) * a.sum(-1, keepdim=True)
        return L.cdist(a * a, b, p=p, compute_mode=mode) * a.sum(-1, keepdim=True)
    return fn


def _scatter_reduce(reduce, include_self):
    return lambda L, F, a, s: L.scatter_reduce(a * a, 1, _idx(L, INDEX), s * 2, reduce,
                                               include_self=include_self) ** 2


def _setitem(L, F, a, v):
    y = a * 1.0
    y[:, 1:3] = v * v
    y[y.detach() < -0.5] = 0.25
    return y * a


def _write_through_view(L, F, a, v):
    y = a * a
    y[1].mul_(v[0])
    y[:, 0].add_(v[1:])
    return y * a


CASES = {
    # ordering and medians
    "sort": (lambda L, F, a: L.sort(a * a, 1).values ** 3, [(3, 4)]),
    "sort_descending_dim0": (lambda L, F, a: L.sort(L.tanh(a), 0, descending=True).values * a, [(3, 4)]),
    "topk": (lambda L, F, a: L.topk(a * a, 2, dim=1).values ** 3, [(3, 5)]),
    "topk_smallest": (lambda L, F, a: L.topk(a, 2, dim=0, largest=False).values ** 3, [(4, 3)]),
    "median": (lambda L, F, a: L.median(a) * (a * a).sum(), [(3, 4)]),
    "median_dim": (lambda L, F, a: L.median(a * a, 1).values * a.sum(1), [(3, 5)]),
    "nanmedian": (lambda L, F, a: L.nanmedian(a + _idx(L, NAN_SHIFT)) * (a * a).sum(), [(3, 4)]),
    "nanmedian_dim": (lambda L, F, a: L.nanmedian(a * a + _idx(L, NAN_SHIFT), 1).values * a.sum(1), [(3, 4)]),
    # two-argument math
    "atan2": (lambda L, F, a, b: L.atan2(a, b) * a * b, [(5,), (5,)]),
    "atan2_broadcast": (lambda L, F, a, b: L.atan2(a * a, b) ** 2, [(3, 4), (4,)]),
    "xlogy": (lambda L, F, a, b: L.xlogy(a * _idx(L, ZERO_MASK), b * b + 0.1) * a, [(5,), (5,)]),
    "xlog1py": (lambda L, F, a, b: L.special.xlog1py(a * _idx(L, ZERO_MASK), b * b) * a, [(5,), (5,)]),
    "fmod": (lambda L, F, a, b: L.fmod(a * 3, b * b + 0.5) * a * b, [(6,), (6,)]),
    "remainder": (lambda L, F, a, b: L.remainder(a * 3, b * b + 0.5) * a * b, [(6,), (6,)]),
    "round_nan_to_num": (lambda L, F, a: L.round(a * 3) * a
                         + L.nan_to_num(a * a + _idx(L, NOT_FINITE), 1.0, 2.0, -2.0) * a, [(6,)]),
    # cdist
    "cdist_p2_mm": (_cdist(2.0, "use_mm_for_euclid_dist"), [(3, 2), (4, 2)]),
    "cdist_p2": (_cdist(2.0), [(3, 2), (4, 2)]),
    "cdist_p1": (_cdist(1.0), [(3, 2), (4, 2)]),
    "cdist_p1_5_batched": (_cdist(1.5), [(2, 3, 3), (4, 3)]),
    "cdist_p3": (_cdist(3.0), [(3, 2), (4, 2)]),
    "cdist_p0_5": (_cdist(0.5), [(3, 2), (4, 2)]),
    "cdist_inf": (_cdist(float("inf")), [(3, 2), (4, 2)]),
    # scatter_reduce
    **{f"scatter_reduce_{r}_{'self' if s else 'noself'}": (_scatter_reduce(r, s), [(3, 4), (3, 2)])
       for r in ("sum", "mean", "amax", "amin", "prod") for s in (True, False)},
    "scatter_reduce_prod_zeros": (lambda L, F, a, s: L.scatter_reduce(
        a * _idx(L, [[1.0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]]), 1, _idx(L, INDEX),
        s * _idx(L, [[0.0, 1], [1, 1], [1, 1]]), "prod") ** 2, [(3, 4), (3, 2)]),
    # resampling
    "interpolate_bicubic": (lambda L, F, x: F.interpolate(x * x, size=(5, 4), mode="bicubic",
                                                          align_corners=False) ** 2, [(1, 2, 3, 3)]),
    "interpolate_bicubic_aligned": (lambda L, F, x: F.interpolate(x * x, scale_factor=1.5, mode="bicubic",
                                                                  align_corners=True) ** 2, [(1, 1, 4, 3)]),
    # linear algebra
    "inv": (lambda L, F, a: L.linalg.inv(_spd(L, a)) ** 2, [(2, 3, 3)]),
    "det": (lambda L, F, a: L.linalg.det(a) ** 2 * a.sum((-1, -2)), [(2, 3, 3)]),
    "slogdet": (lambda L, F, a: L.linalg.slogdet(a).logabsdet * a.sum((-1, -2)), [(2, 3, 3)]),
    "logdet": (lambda L, F, a: L.logdet(_spd(L, a)) ** 2, [(3, 3)]),
    "solve": (lambda L, F, a, b: L.linalg.solve(_spd(L, a), b * b) ** 2, [(2, 3, 3), (2, 3, 2)]),
    "solve_vector": (lambda L, F, a, b: L.linalg.solve(_spd(L, a), b) ** 2, [(3, 3), (3,)]),
    "solve_broadcast_b": (lambda L, F, a, b: L.linalg.solve(_spd(L, a), b) ** 2, [(3, 3), (2, 3, 2)]),
    "solve_triangular_upper": (lambda L, F, a, b: L.linalg.solve_triangular(
        a + 3 * _eye(L, a), b, upper=True) ** 2, [(3, 3), (3, 2)]),
    "solve_triangular_lower_unit": (lambda L, F, a, b: L.linalg.solve_triangular(
        a, b * a[:, :2], upper=False, unitriangular=True) ** 2, [(3, 3), (3, 2)]),
    "solve_triangular_right": (lambda L, F, a, b: L.linalg.solve_triangular(
        a + 3 * _eye(L, a), b, upper=False, left=False) ** 2, [(3, 3), (2, 3)]),
    "cholesky": (lambda L, F, a: L.linalg.cholesky(_spd(L, a)) ** 2, [(2, 3, 3)]),
    "cholesky_upper": (lambda L, F, a: L.linalg.cholesky(_spd(L, a), upper=True) ** 3, [(3, 3)]),
    "svdvals_tall": (lambda L, F, a: L.linalg.svdvals(a) ** 3, [(2, 4, 3)]),
    "svdvals_wide": (lambda L, F, a: L.linalg.svdvals(a * a) ** 2, [(3, 5)]),
    "matrix_norm_nuc_2": (lambda L, F, a: L.linalg.matrix_norm(a, "nuc") * L.linalg.matrix_norm(a, 2), [(3, 3)]),
    "tril_triu": (lambda L, F, a: L.tril(a * a) * L.triu(a, 1) + L.tril(a, -1) ** 2, [(3, 4)]),
    "diagonal_diag": (lambda L, F, a: (L.diagonal(a * a, 1) ** 2).sum() * L.diag(a) + L.diag(a, -1).sum() * a[0],
                      [(4, 4)]),
    "diag_embed": (lambda L, F, a: L.diag_embed(a * a, 1) ** 2 * L.diag(a[0]).sum(), [(2, 3)]),
    "outer": (lambda L, F, a, b: L.outer(a * a, b) ** 2, [(3,), (4,)]),
    "addmm": (lambda L, F, x, a, b: L.addmm(x, a * a, b, beta=0.5, alpha=2.0) ** 2, [(2,), (3, 4), (4, 2)]),
    # moving values
    "roll": (lambda L, F, a: L.roll(a * a, (1, -1), (0, 1)) * a, [(3, 4)]),
    "diff": (lambda L, F, a: L.diff(a * a, n=2, dim=1) ** 2, [(3, 5)]),
    "repeat_interleave": (lambda L, F, a: L.repeat_interleave(a * a, 2, dim=0) ** 2, [(3, 2)]),
    "repeat_interleave_counts": (lambda L, F, a: L.repeat_interleave(a * a, _idx(L, [2, 0, 1]), dim=1) ** 2,
                                 [(2, 3)]),
    "masked_select": (lambda L, F, a: L.masked_select(a * a, _idx(L, [True, False, True, True])) ** 2, [(3, 4)]),
    "max_unpool2d": (lambda L, F, x: F.max_unpool2d(*F.max_pool2d(x * x, 2, return_indices=True), 2) ** 2,
                     [(1, 2, 4, 4)]),
    "setitem": (_setitem, [(3, 4), (3, 2)]),
    "write_through_view": (_write_through_view, [(3, 4), (4,)]),
    # special functions and losses
    "gammainc_gammaincc": (lambda L, F, a, x: L.special.gammainc(_idx(L, [0.5, 1.0, 2.5, 4.0]), x * x + 0.1) * a
                           + L.special.gammaincc(_idx(L, [3.0, 0.7, 1.5, 2.0]), x * x + 0.2) ** 2, [(4,), (4,)]),
    "beta_cdf": (lambda L, F, a: L.distributions.Beta(_idx(L, [2.0, 0.8, 3.0]), _idx(L, [1.5, 2.0, 0.9]))
                 .cdf(L.sigmoid(a)) * a, [(3,)]),
    "bessel": (lambda L, F, a: L.special.i0(a) * L.special.i1(a) + L.special.i0e(a * a) * L.special.i1e(a), [(6,)]),
    "cross_entropy_probabilities": (lambda L, F, a, q: F.cross_entropy(a * a, F.softmax(q, 1)) * a.sum(),
                                    [(3, 4), (3, 4)]),
    "cross_entropy_probabilities_weight_smoothing": (lambda L, F, a, q: F.cross_entropy(
        a * a, F.softmax(q, 1), weight=_idx(L, CLASS_WEIGHT), label_smoothing=0.1, reduction="none") * a[:, 0],
        [(3, 4), (3, 4)]),
}


TORCH_LACKS = {"beta_cdf"}  # torch's Beta has no cdf


test_second_order_matches_torch, test_second_order_matches_finite_differences = second_order_tests(CASES, TORCH_LACKS)


# cases whose constants are all made on the inputs' device
GPU_CASES = [name for name in CASES if name.startswith(("sort", "topk", "median", "atan2", "fmod", "remainder",
                                                         "cdist", "inv", "det", "slogdet", "logdet", "solve",
                                                         "cholesky", "svdvals", "matrix_norm", "tril", "diag",
                                                         "outer", "addmm", "roll", "diff", "repeat_interleave",
                                                         "setitem", "write_through", "bessel", "interpolate"))
             and name != "repeat_interleave_counts"]


@pytest.mark.gpu
@pytest.mark.parametrize("name", GPU_CASES)
def test_second_order_on_the_gpu_matches_the_cpu(name):
    cuda_or_skip()
    fn = CASES[name][0]
    arrays, vs, r = case_inputs(CASES, name)
    g_cpu, hv_cpu = grad_and_hvp(engine, EF, fn, arrays, vs, r)
    g_gpu, hv_gpu = grad_and_hvp(engine, EF, fn, arrays, vs, r, device="cuda")
    for a, b in zip((*g_gpu, *hv_gpu), (*g_cpu, *hv_cpu)):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), rtol=1e-9, atol=1e-11)


# ---- cdist: p = 0, and distances that are exactly zero -------------------------------------------------------
def test_cdist_p0_counts_have_zero_gradients_of_every_order():
    a = engine.tensor(_RNG.standard_normal((3, 2)), requires_grad=True)
    b = engine.tensor(_RNG.standard_normal((4, 2)), requires_grad=True)
    ga, gb = engine.autograd.grad((engine.cdist(a * a, b, p=0) * a.sum(-1, keepdim=True)).sum(), (a, b),
                                  create_graph=True)
    np.testing.assert_array_equal(gb.numpy(), 0)
    (h,) = engine.autograd.grad((ga * ga).sum() + gb.sum(), a)
    assert np.isfinite(h.numpy()).all()


def _with_duplicate_rows(L, a, b):
    """x2 holds x1's first row (the same leaf): that pair's distance is 0 and stays 0 under any shift of a."""
    return L.cat([a[:1], b], 0)


@pytest.mark.parametrize("p", [2.0, 1.0, 1.5, 3.0, 0.5, float("inf")])
def test_cdist_zero_distance_contributes_nothing_and_second_order_matches_finite_differences(p):
    a0, b0, v = _RNG.standard_normal((3, 2)), _RNG.standard_normal((2, 2)), _RNG.standard_normal((3, 2))
    r = _RNG.standard_normal((3, 3))

    def gradient(shift, create_graph=False):
        a = engine.tensor(a0 + shift * v, requires_grad=True)
        d = engine.cdist(a, _with_duplicate_rows(engine, a, engine.tensor(b0)), p=p)
        assert d.detach().numpy()[0, 0] == 0
        return a, engine.autograd.grad((d * engine.tensor(r)).sum(), a, create_graph=create_graph)[0]

    a, g = gradient(0.0, create_graph=True)
    assert np.isfinite(g.detach().numpy()).all()
    # for p = 1 and inf the gradient is piecewise constant: it records no graph, and its derivative is 0
    hv = engine.autograd.grad((g * engine.tensor(v)).sum(), a)[0].numpy() if g.requires_grad else 0
    fd = (gradient(1e-6)[1].numpy() - gradient(-1e-6)[1].numpy()) / 2e-6
    np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-6)
    if torch is not None:  # the first gradient: torch's cdist also gives a zero distance no gradient
        at = torch.tensor(a0, requires_grad=True)
        dt = torch.cdist(at, _with_duplicate_rows(torch, at, torch.tensor(b0)), p=p)
        (gt,) = torch.autograd.grad((dt * torch.tensor(r)).sum(), at)
        _close(g, gt)


@needs_torch
def test_cdist_zero_distance_through_matrix_products_matches_torch():
    a0 = np.array([[0.5, -1.0], [0.25, 2.0], [-1.5, 0.75]])  # exact in binary: |a|^2 + |a|^2 - 2 a.a is 0
    b0, v, r = np.array([[1.0, 0.5], [-0.5, 0.25]]), _RNG.standard_normal((3, 2)), _RNG.standard_normal((3, 3))
    results = []
    for L in (engine, torch):
        a = L.tensor(a0, requires_grad=True)
        d = L.cdist(a, _with_duplicate_rows(L, a, L.tensor(b0)), compute_mode="use_mm_for_euclid_dist")
        (g,) = L.autograd.grad((d * L.tensor(r)).sum(), a, create_graph=True)
        (hv,) = L.autograd.grad((g * L.tensor(v)).sum(), a)
        results.append((g, hv))
    (g_e, hv_e), (g_t, hv_t) = results
    _close(g_e, g_t)
    _close(hv_e, hv_t)


# ---- scatter_reduce's prod with two zeros at one position: refused, as in torch ------------------------------
def test_scatter_reduce_prod_with_two_zeros_at_one_position_says_so():
    x = engine.tensor([[1.0, 1.0, 1.0]], requires_grad=True)
    src = engine.tensor([[0.0, 0.0, 2.0]], requires_grad=True)
    y = engine.scatter_reduce(x, 1, engine.tensor([[1, 1, 0]]), src, "prod")
    with pytest.raises(NotImplementedError, match="more than one zero of src goes to one position"):
        engine.autograd.grad((y * y).sum(), (x, src), create_graph=True)
    _, gsrc = engine.autograd.grad((y * y).sum(), (x, src))  # a plain gradient still works
    np.testing.assert_allclose(gsrc.numpy(), [[0.0, 0.0, 4.0]])


# ---- a full Hessian through a decomposition ----------------------------------------------------------------
def _gp_nll(L, x, z, y, log_ell, log_noise):
    """A Gaussian process's negative log marginal likelihood, its kernel from RBF features at inducing points z
    (distances by cdist), then Cholesky, a triangular solve and the log of the factor's diagonal."""
    d = L.cdist(x / L.exp(log_ell), z / L.exp(log_ell), compute_mode="use_mm_for_euclid_dist")
    phi = L.exp(-0.5 * d * d)
    k = phi @ phi.mT + L.exp(log_noise) * L.eye(x.shape[0], dtype=L.float64)
    low = L.linalg.cholesky(k)
    alpha = L.linalg.solve_triangular(low, y.unsqueeze(-1), upper=False)
    return 0.5 * (alpha * alpha).sum() + L.log(L.diagonal(low)).sum()


def _logdet_inv_loss(L, a):
    m = _spd(L, a.reshape(3, 3))
    return L.logdet(m) + L.linalg.inv(m).sum() + L.linalg.det(m) * 0.01


def _full_hessian(a0):
    a = engine.tensor(a0, requires_grad=True)
    (g,) = engine.autograd.grad(_logdet_inv_loss(engine, a), a, create_graph=True)
    return np.stack([engine.autograd.grad(g[i], a, retain_graph=True)[0].numpy() for i in range(a0.size)])


def test_full_hessian_through_logdet_inv_det_matches_finite_differences_and_torch():
    a0 = _RNG.standard_normal(9)
    h = _full_hessian(a0)
    np.testing.assert_allclose(h, h.T, rtol=1e-9, atol=1e-10)  # a Hessian is symmetric

    def grad_at(shift):
        a = engine.tensor(a0 + shift, requires_grad=True)
        return engine.autograd.grad(_logdet_inv_loss(engine, a), a)[0].numpy()

    fd = np.stack([(grad_at(1e-6 * e) - grad_at(-1e-6 * e)) / 2e-6 for e in np.eye(9)])
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-6)
    if torch is not None:
        ht = torch.autograd.functional.hessian(lambda a: _logdet_inv_loss(torch, a), torch.tensor(a0))
        _close(h, ht.numpy())


@needs_torch
def test_gaussian_process_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((6, 2)), rng.standard_normal((4, 2)), rng.standard_normal(6), np.array([0.2]),
              np.array([-1.0])]
    vs = [rng.standard_normal(a.shape) for a in arrays]
    out = []
    for L in (engine, torch):
        xs = [L.tensor(a, requires_grad=True) for a in arrays]
        loss = _gp_nll(L, *xs)
        grads = L.autograd.grad(loss, xs, create_graph=True)
        hv = L.autograd.grad(sum((g * L.tensor(v)).sum() for g, v in zip(grads, vs)), xs)
        out.append((loss, grads, hv))
    (le, ge, he), (lt, gt, ht) = out
    _close(le, lt)
    for a, b in zip((*ge, *he), (*gt, *ht)):
        _close(a, b)


def test_det_of_a_singular_matrix_under_create_graph_is_named():
    a = engine.tensor([[1.0, 2.0], [2.0, 4.0]], requires_grad=True)
    with pytest.raises(NotImplementedError, match=r"the backward of det \(DetBackward0\)"):
        engine.autograd.grad(engine.linalg.det(a * a), a, create_graph=True)


@needs_torch
def test_multivariate_normal_log_prob_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(3), rng.standard_normal((3, 3)), rng.standard_normal((4, 3))]
    vs = [rng.standard_normal(a.shape) for a in arrays]
    out = []
    for L in (engine, torch):
        loc, raw, x = (L.tensor(a, requires_grad=True) for a in arrays)
        scale_tril = L.tril(raw, -1) + L.diag_embed(L.exp(L.diagonal(raw)))
        dist = L.distributions.MultivariateNormal(loc, scale_tril=scale_tril)
        grads = L.autograd.grad(dist.log_prob(x).sum(), (loc, raw, x), create_graph=True)
        out.append((grads, L.autograd.grad(sum((g * L.tensor(v)).sum() for g, v in zip(grads, vs)), (loc, raw, x))))
    for a, b in zip((*out[0][0], *out[0][1]), (*out[1][0], *out[1][1])):
        _close(a, b)


def test_third_derivative_of_svdvals_names_the_singular_vectors():
    a = engine.tensor(_RNG.standard_normal((3, 3)), requires_grad=True)
    (g,) = engine.autograd.grad((engine.linalg.svdvals(a) ** 3).sum(), a, create_graph=True)
    with pytest.raises(NotImplementedError, match=r"the backward of svd \(SingularVectorsBackward0\)"):
        engine.autograd.grad((g * g).sum(), a, create_graph=True, retain_graph=True)
    (h,) = engine.autograd.grad((g * g).sum(), a)  # the second derivative itself is there
    assert np.isfinite(h.numpy()).all()


# ---- WGAN-GP with critics that measure distances to learned prototypes -----------------------------------------
def _prototype_critic(p, mode):
    def make(nn):
        L = engine if nn is enn else torch

        class PrototypeCritic(nn.Module):
            """Scores x by an RBF of its distances to learned prototypes."""

            def __init__(self):
                super().__init__()
                self.prototypes = nn.Parameter(L.tensor(np.random.default_rng(2).standard_normal((5, 4))))
                self.head = nn.Linear(5, 1)

            def forward(self, x):
                if L is torch and not (p == 2 and mode == "use_mm_for_euclid_dist"):
                    d = _cdist_composite(L, x, self.prototypes, p)
                else:
                    d = L.cdist(x, self.prototypes, p=p, compute_mode=mode)
                return self.head(L.exp(-0.25 * d * d))

        return PrototypeCritic()
    return make


@needs_torch
@pytest.mark.parametrize(("p", "mode"), [(2.0, "use_mm_for_euclid_dist"), (2.0, "donot_use_mm_for_euclid_dist"),
                                         (1.5, "donot_use_mm_for_euclid_dist")])
def test_wgan_gp_on_a_cdist_critic_matches_torch(p, mode):
    _check_wgan_gp(_prototype_critic(p, mode), (6, 4))


@needs_torch
def test_full_backward_hook_under_create_graph_sees_the_gradients_and_matches_torch():
    seen = []
    results = []
    for L, nn in ((engine, enn), (torch, torch.nn)):
        lin = nn.Linear(3, 2)
        if L is engine:
            lin = lin.to(dtype=engine.float64)
            weights = (lin.weight.detach().numpy(), lin.bias.detach().numpy())
        else:
            lin = lin.double()
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(weights[0]))
                lin.bias.copy_(torch.tensor(weights[1]))
        lin.register_full_backward_hook(lambda m, gi, go: seen.append(go[0].shape))
        x = L.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
        (g,) = L.autograd.grad((L.tanh(lin(x)) ** 2).sum(), x, create_graph=True)
        (h,) = L.autograd.grad((g * g).sum(), x)
        results.append((g, h))
    assert len(seen) >= 2
    _close(results[0][0], results[1][0])
    _close(results[0][1], results[1][1])
