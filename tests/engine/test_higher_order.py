"""Higher-order gradients (create_graph=True): gradient penalties, Hessians, MAML, PDE residuals, per op.

Each is compared with PyTorch running the same code (the engine shares its API) and, where PyTorch is not
needed for the reference, with float64 central differences of the engine's own gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
import engine.nn as enn
import engine.nn.functional as EF
from engine.events import BackwardEvent, hub
from tests.engine.oracle import needs_torch, torch

if torch is not None:
    import torch.nn as tnn
    import torch.nn.functional as TF

RTOL, ATOL = 1e-6, 1e-9  # float64 on both sides: the formulas are the same, so only rounding differs


def _both(arrays, requires_grad=True):
    """The same float64 arrays as engine and torch leaves."""
    return ([engine.tensor(a, requires_grad=requires_grad) for a in arrays],
            [torch.tensor(a, requires_grad=requires_grad) for a in arrays])


def _close(ours, theirs, rtol=RTOL, atol=ATOL):
    ours = ours.detach().numpy() if isinstance(ours, engine.Tensor) else np.asarray(ours)
    theirs = theirs.detach().numpy() if torch is not None and isinstance(theirs, torch.Tensor) else theirs
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def _copy_weights(ours, theirs) -> None:
    theirs.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in ours.state_dict().items()})


# ---- every covered op: the gradient, and the gradient of (gradient . v), against PyTorch -------------------
CASES = {
    "add": (lambda L, F, a, b: (a + b) * (a * b), [(3, 4), (4,)]),
    "sub": (lambda L, F, a, b: (a - b) ** 2, [(3, 4), (3, 4)]),
    "mul_div": (lambda L, F, a, b: a * b / (b * b + 1), [(3, 4), (3, 4)]),
    "neg": (lambda L, F, a: -(a * a * a), [(5,)]),
    "pow_tensor": (lambda L, F, a, b: (a.abs() + 0.5) ** b, [(5,), (5,)]),
    "pow_scalar": (lambda L, F, a: (a.abs() + 0.5) ** 3.5 + a ** 2 + 2.0 ** a, [(5,)]),
    "exp_log": (lambda L, F, a: L.log(L.exp(a) + 1) * L.exp(a), [(5,)]),
    "sqrt_rsqrt": (lambda L, F, a: L.sqrt(a * a + 1) + L.rsqrt(a * a + 2) * a, [(5,)]),
    "abs": (lambda L, F, a: a.abs() * a * a, [(5,)]),
    "tanh_sigmoid": (lambda L, F, a: L.tanh(a) * L.sigmoid(a * 2), [(5,)]),
    "relu": (lambda L, F, a: L.relu(a) * a, [(6,)]),
    "leaky_relu": (lambda L, F, a: F.leaky_relu(a, 0.2) * a, [(6,)]),
    "elu": (lambda L, F, a: F.elu(a, 0.7) * a, [(6,)]),
    "gelu": (lambda L, F, a: F.gelu(a) * a, [(6,)]),
    "gelu_tanh": (lambda L, F, a: F.gelu(a, approximate="tanh") * a, [(6,)]),
    "softplus": (lambda L, F, a: F.softplus(a, beta=2.0) * a, [(6,)]),
    "silu": (lambda L, F, a: F.silu(a) * a, [(6,)]),
    "sin_cos": (lambda L, F, a: L.sin(a) * L.cos(a * a), [(6,)]),
    "clamp": (lambda L, F, a: L.clamp(a, -0.5, 0.5) * a * a, [(6,)]),
    "where": (lambda L, F, a, b: L.where(a > 0, a * b, b * b), [(6,), (6,)]),
    "maximum_minimum": (lambda L, F, a, b: L.maximum(a, b) * L.minimum(a, b * 2) * a, [(6,), (6,)]),
    "sum_mean_dims": (lambda L, F, a: (a * a).sum(dim=1, keepdim=True) * (a * a).mean(dim=(0, 1)), [(2, 3, 4)]),
    "amax": (lambda L, F, a: L.amax(a * a, dim=1) * a.sum(dim=1), [(3, 4)]),
    "max_dim": (lambda L, F, a: (a * a).max(dim=1).values * a.sum(dim=1), [(3, 4)]),
    "logsumexp": (lambda L, F, a: L.logsumexp(a, dim=1) * a.sum(1), [(3, 4)]),
    "matmul": (lambda L, F, a, b: L.tanh(a @ b) @ b.t(), [(3, 4), (4, 5)]),
    "matmul_1d": (lambda L, F, a, b: (a @ b) * (b @ a.t()), [(4, 3), (3,)]),
    "mm_bmm": (lambda L, F, a, b: L.bmm(a, b) ** 2 + L.mm(a[0], b[1]).sum(), [(2, 3, 4), (2, 4, 2)]),
    "linear": (lambda L, F, x, w, b: L.tanh(F.linear(x, w, b)) ** 2, [(3, 4), (5, 4), (5,)]),
    "reshape_view_flatten": (lambda L, F, a: (a.reshape(4, 3).t() * a.view(3, 4)).flatten() ** 2, [(3, 4)]),
    "squeeze_unsqueeze": (lambda L, F, a: a.unsqueeze(0).squeeze(0) * a.unsqueeze(1).squeeze() * a, [(5,)]),
    "transpose_permute": (lambda L, F, a: a.permute(2, 0, 1).transpose(0, 1) ** 3, [(2, 3, 4)]),
    "expand_broadcast": (lambda L, F, a, b: a.expand(3, 4) * b * a, [(1, 4), (3, 4)]),
    "index_slice": (lambda L, F, a: a[1:, ::2] * a[0, :2] * a[:2, 1:3] + a[[0, 2, 2]][:, :2].sum(), [(3, 4)]),
    "cat_stack": (lambda L, F, a, b: L.cat([a * a, b], 0) * L.stack([a, b], 0).sum(0).sum(), [(2, 3), (2, 3)]),
    "softmax": (lambda L, F, a: F.softmax(a, dim=1) * a, [(3, 4)]),
    "log_softmax": (lambda L, F, a: F.log_softmax(a, dim=0) * a, [(3, 4)]),
    "cross_entropy": (lambda L, F, a: F.cross_entropy(a * a, L.tensor([1, 0, 3])) * a.sum(), [(3, 4)]),
    "cross_entropy_smoothing": (lambda L, F, a: F.cross_entropy(a * a, L.tensor([1, 0, 3]), label_smoothing=0.1,
                                                                reduction="none") * a.sum(1), [(3, 4)]),
    "cross_entropy_ignored_row": (lambda L, F, a: F.cross_entropy(a * a, L.tensor([1, -100, 3])) * a.sum(),
                                  [(3, 4)]),
    "nll_loss": (lambda L, F, a: F.nll_loss(F.log_softmax(a, 1), L.tensor([1, 0, 3])) * a.sum(), [(3, 4)]),
    "mse_loss": (lambda L, F, a, b: F.mse_loss(a * b, b) * a.sum(), [(3, 4), (3, 4)]),
    "norm": (lambda L, F, a: a.norm(dim=1) * a.norm() * L.linalg.vector_norm(a, 3, dim=0).sum(), [(3, 4)]),
    "conv2d": (lambda L, F, x, w, b: L.tanh(F.conv2d(x, w, b, stride=2, padding=1)) ** 2,
               [(2, 3, 6, 6), (4, 3, 3, 3), (4,)]),
    "conv2d_groups_dilation": (lambda L, F, x, w: F.conv2d(x, w, padding=1, dilation=2, groups=2) ** 2,
                               [(2, 4, 6, 6), (4, 2, 3, 3)]),
    "conv1d": (lambda L, F, x, w: L.tanh(F.conv1d(x, w, padding=2)) ** 2, [(2, 3, 7), (4, 3, 3)]),
    "max_pool2d": (lambda L, F, x: F.max_pool2d(x * x, 2, stride=1, padding=1) ** 2, [(2, 2, 5, 5)]),
    "max_pool1d": (lambda L, F, x: F.max_pool1d(x * x, 3, stride=2) ** 2, [(2, 2, 7)]),
    "avg_pool2d": (lambda L, F, x: F.avg_pool2d(x * x, 3, stride=2, padding=1) ** 2, [(2, 2, 6, 6)]),
    "avg_pool1d": (lambda L, F, x: F.avg_pool1d(x * x, 2) ** 2, [(2, 2, 6)]),
    "max_pool3d": (lambda L, F, x: F.max_pool3d(x * x, 2, stride=1, padding=1) ** 2, [(1, 2, 3, 4, 3)]),
    "avg_pool3d": (lambda L, F, x: F.avg_pool3d(x * x, 2, stride=2, padding=1) ** 2, [(1, 2, 4, 3, 4)]),
    "layer_norm": (lambda L, F, x, w, b: F.layer_norm(x, (4,), w, b) ** 3, [(3, 4), (4,), (4,)]),
    "layer_norm_2d": (lambda L, F, x: F.layer_norm(x * x, (3, 4)) ** 3, [(2, 3, 4)]),
    "batch_norm_training": (lambda L, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True) ** 3,
                            [(4, 3, 2), (3,), (3,)]),
}


@needs_torch
@pytest.mark.parametrize("name", list(CASES))
def test_second_order_of_each_op_matches_torch(name):
    fn, shapes = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    arrays = [rng.standard_normal(s) for s in shapes]
    vs = [rng.standard_normal(s) for s in shapes]
    ours, theirs = _both(arrays)
    out_e, out_t = fn(engine, EF, *ours), fn(torch, TF, *theirs)
    r = rng.standard_normal(tuple(out_t.shape))
    g_e = engine.autograd.grad((out_e * engine.tensor(r)).sum(), ours, create_graph=True)
    g_t = torch.autograd.grad((out_t * torch.tensor(r)).sum(), theirs, create_graph=True)
    for a, b in zip(g_e, g_t):
        assert a.requires_grad
        _close(a, b)
    hv_e = engine.autograd.grad(sum((g * engine.tensor(v)).sum() for g, v in zip(g_e, vs)), ours, allow_unused=True)
    hv_t = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(g_t, vs)), theirs, allow_unused=True)
    for a, b in zip(hv_e, hv_t):
        _close(0 if a is None else a, 0 if b is None else b.numpy())


# ---- Hessians -------------------------------------------------------------------------------------------
A = np.array([[2.0, 0.5, -0.3], [0.1, 1.0, 0.2], [-0.4, 0.3, 3.0]])


def _f(L, x):
    """A small smooth function with every pair of coordinates coupled."""
    return (((x[:-1] ** 2) * x[1:]).sum() + L.logsumexp(x, dim=0) + x @ (L.tensor(A) @ x)
            + (L.sin(x) * L.tanh(x)).sum())


def _hessian(x):
    (g,) = engine.autograd.grad(_f(engine, x), x, create_graph=True)
    return np.stack([engine.autograd.grad(g[i], x, retain_graph=True)[0].numpy() for i in range(x.shape[0])])


def _gradient_at(a):
    x = engine.tensor(a, requires_grad=True)
    return engine.autograd.grad(_f(engine, x), x)[0].numpy()


def test_full_hessian_matches_finite_differences_of_the_gradient():
    a = np.array([0.3, -0.7, 1.1])
    h = _hessian(engine.tensor(a, requires_grad=True))
    eps = 1e-6
    fd = np.stack([(_gradient_at(a + eps * e) - _gradient_at(a - eps * e)) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h, h.T, atol=1e-12)


@needs_torch
def test_full_hessian_matches_torch():
    a = np.array([0.3, -0.7, 1.1])
    h = _hessian(engine.tensor(a, requires_grad=True))
    theirs = torch.autograd.functional.hessian(lambda x: _f(torch, x), torch.tensor(a))
    _close(h, theirs)


def _mlp_loss(L, F, x, y, w1, b1, w2, b2):
    return F.mse_loss(F.linear(L.tanh(F.linear(x, w1, b1)), w2, b2), y)


def _mlp_arrays(rng):
    return [rng.standard_normal(s) * 0.7 for s in [(5, 3), (5,), (2, 5), (2,)]]


def test_hessian_vector_product_matches_finite_differences():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    params = _mlp_arrays(rng)
    vs = [rng.standard_normal(p.shape) for p in params]

    def grads(arrays, create_graph=False):
        ps = [engine.tensor(p, requires_grad=True) for p in arrays]
        loss = _mlp_loss(engine, EF, engine.tensor(x), engine.tensor(y), *ps)
        return ps, engine.autograd.grad(loss, ps, create_graph=create_graph)

    ps, gs = grads(params, create_graph=True)
    hv = engine.autograd.grad(sum((g * engine.tensor(v)).sum() for g, v in zip(gs, vs)), ps)
    eps = 1e-6
    plus = grads([p + eps * v for p, v in zip(params, vs)])[1]
    minus = grads([p - eps * v for p, v in zip(params, vs)])[1]
    for h, gp, gm in zip(hv, plus, minus):
        np.testing.assert_allclose(h.numpy(), (gp.numpy() - gm.numpy()) / (2 * eps), rtol=1e-5, atol=1e-7)


@needs_torch
def test_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    params = _mlp_arrays(rng)
    vs = [rng.standard_normal(p.shape) for p in params]
    ours, theirs = _both(params)
    g_e = engine.autograd.grad(_mlp_loss(engine, EF, engine.tensor(x), engine.tensor(y), *ours), ours,
                               create_graph=True)
    g_t = torch.autograd.grad(_mlp_loss(torch, TF, torch.tensor(x), torch.tensor(y), *theirs), theirs,
                              create_graph=True)
    hv_e = engine.autograd.grad(sum((g * engine.tensor(v)).sum() for g, v in zip(g_e, vs)), ours)
    hv_t = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(g_t, vs)), theirs)
    for a, b in zip(hv_e, hv_t):
        _close(a, b)


def test_third_derivative_of_a_simple_function():
    x = engine.tensor([0.4, -1.3, 2.0], dtype=engine.float64, requires_grad=True)
    y = (engine.sin(x) * x ** 3).sum()
    (d1,) = engine.autograd.grad(y, x, create_graph=True)
    (d2,) = engine.autograd.grad(d1.sum(), x, create_graph=True)
    (d3,) = engine.autograd.grad(d2.sum(), x)
    a = x.detach().numpy()
    # (x^3 sin x)''' = 6 sin x + 18 x cos x - 9 x^2 sin x - x^3 cos x
    expected = 6 * np.sin(a) + 18 * a * np.cos(a) - 9 * a ** 2 * np.sin(a) - a ** 3 * np.cos(a)
    np.testing.assert_allclose(d3.numpy(), expected, rtol=1e-10)


def test_backward_create_graph_leaves_differentiable_grads():
    x = engine.tensor([1.0, -2.0, 0.5], dtype=engine.float64, requires_grad=True)
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    assert x.grad.grad_fn is not None and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.detach().numpy(), 3 * x.detach().numpy() ** 2)
    (second,) = engine.autograd.grad(x.grad.sum(), x)
    np.testing.assert_allclose(second.numpy(), 6 * x.detach().numpy())
    y.backward()  # retain_graph defaulted to create_graph: the graph is still there
    np.testing.assert_allclose(x.grad.detach().numpy(), 6 * x.detach().numpy() ** 2)


# ---- WGAN-GP ----------------------------------------------------------------------------------------
def gradient_penalty(L, critic, real, fake, alpha):
    """WGAN-GP's penalty, in library L (engine or torch): (|d critic / d x| - 1)^2 at points between real and fake."""
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    d_hat = critic(x_hat)
    (g,) = L.autograd.grad(d_hat, x_hat, grad_outputs=L.ones_like(d_hat), create_graph=True)
    return ((g.reshape(g.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()


def _gp_step(L, F, critic, opt, real, fake, alpha, lam=10.0):
    """One critic step of WGAN-GP; returns the loss and the critic's gradients."""
    opt.zero_grad()
    penalty = gradient_penalty(L, critic, real, fake, alpha)
    loss = critic(fake).mean() - critic(real).mean() + lam * penalty
    loss.backward()
    grads = [p.grad.detach().numpy().copy() for p in critic.parameters()]
    opt.step()
    return loss.item(), grads


def _check_wgan_gp(make_critic, data_shape, steps=3):
    engine.manual_seed(0)
    ours = make_critic(enn)
    theirs = make_critic(tnn).double()
    ours = ours.to(dtype=engine.float64) if hasattr(ours, "to") else ours
    _copy_weights(ours, theirs)
    opt_e = engine.optim.SGD(ours.parameters(), lr=0.05)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.05)
    rng = np.random.default_rng(3)
    for _ in range(steps):
        real, fake = rng.standard_normal(data_shape), rng.standard_normal(data_shape) * 0.5 + 1
        alpha = rng.uniform(size=(data_shape[0],) + (1,) * (len(data_shape) - 1))
        loss_e, grads_e = _gp_step(engine, EF, ours, opt_e, *(engine.tensor(a) for a in (real, fake, alpha)))
        loss_t, grads_t = _gp_step(torch, TF, theirs, opt_t, *(torch.tensor(a) for a in (real, fake, alpha)))
        assert loss_e == pytest.approx(loss_t, rel=1e-9)
        for a, b in zip(grads_e, grads_t):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        _close(a, b)


@needs_torch
def test_wgan_gp_on_an_mlp_critic_matches_torch():
    _check_wgan_gp(lambda nn: nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.Tanh(),
                                            nn.Linear(16, 1)), (6, 4))


@needs_torch
def test_wgan_gp_on_a_conv_critic_matches_torch():
    _check_wgan_gp(lambda nn: nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 8, 3, padding=1), nn.Tanh(),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 1)), (3, 1, 8, 8))


# ---- MAML and a physics-informed residual -------------------------------------------------------------------
def _maml_meta_grads(L, F, params, support, query, inner_lr=0.1):
    loss = _mlp_loss(L, F, *support, *params)
    grads = L.autograd.grad(loss, params, create_graph=True)
    fast = [p - inner_lr * g for p, g in zip(params, grads)]
    outer = _mlp_loss(L, F, *query, *fast)
    outer.backward()
    return outer, [p.grad for p in params]


@needs_torch
def test_maml_inner_step_meta_gradient_matches_torch():
    rng = np.random.default_rng(4)
    support = [rng.standard_normal((6, 3)), rng.standard_normal((6, 2))]
    query = [rng.standard_normal((6, 3)), rng.standard_normal((6, 2))]
    ours, theirs = _both(_mlp_arrays(rng))
    out_e, g_e = _maml_meta_grads(engine, EF, ours, [engine.tensor(a) for a in support],
                                  [engine.tensor(a) for a in query])
    out_t, g_t = _maml_meta_grads(torch, TF, theirs, [torch.tensor(a) for a in support],
                                  [torch.tensor(a) for a in query])
    _close(out_e, out_t)
    for a, b in zip(g_e, g_t):
        assert a.grad_fn is None  # the outer backward was a plain one
        _close(a, b)


def _pinn_loss(L, F, x, w1, b1, w2, b2, w3, b3):
    u = F.linear(L.tanh(F.linear(L.tanh(F.linear(x, w1, b1)), w2, b2)), w3, b3)
    (du,) = L.autograd.grad(u.sum(), x, create_graph=True)
    (d2u,) = L.autograd.grad(du.sum(), x, create_graph=True)
    residual = d2u + math.pi ** 2 * L.sin(math.pi * x)
    return (residual ** 2).mean(), d2u


@needs_torch
def test_tanh_mlp_second_derivative_and_its_parameter_gradients_match_torch():
    rng = np.random.default_rng(5)
    shapes = [(8, 1), (8,), (8, 8), (8,), (1, 8), (1,)]
    arrays = [rng.standard_normal(s) * 0.8 for s in shapes]
    xs = np.linspace(-1, 1, 7).reshape(-1, 1)
    ours, theirs = _both(arrays)
    loss_e, d2u_e = _pinn_loss(engine, EF, engine.tensor(xs, requires_grad=True), *ours)
    loss_t, d2u_t = _pinn_loss(torch, TF, torch.tensor(xs, requires_grad=True), *theirs)
    _close(d2u_e, d2u_t)
    _close(loss_e, loss_t)
    loss_e.backward()
    loss_t.backward()
    assert ours[-1].grad is None and theirs[-1].grad is None  # d2u does not depend on the last bias
    for a, b in zip(ours[:-1], theirs[:-1]):
        _close(a.grad, b.grad)


def test_tanh_second_derivative_matches_the_formula():
    x = engine.tensor(np.linspace(-2, 2, 9), requires_grad=True)
    (d1,) = engine.autograd.grad(engine.tanh(x).sum(), x, create_graph=True)
    (d2,) = engine.autograd.grad(d1.sum(), x)
    t = np.tanh(x.detach().numpy())
    np.testing.assert_allclose(d2.numpy(), -2 * t * (1 - t * t), rtol=1e-12, atol=1e-15)


# ---- errors and what stays as it was ------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["backward", "grad"])
def test_an_op_without_a_differentiable_backward_is_named_before_anything_changes(how):
    from engine.autograd.function import Function

    class Twice(Function):  # an op with an array backward only, as a user's own op has
        op = "twice"

        def forward(ctx, x):
            return 2 * x

        def backward(ctx, grad):
            return 2 * grad

    x = engine.tensor([1.0, 2.0, 4.0], requires_grad=True)
    x.grad = engine.tensor([7.0, 7.0, 7.0])
    y = (Twice.apply(x * x) * engine.tensor([3.0, 2.0, 1.0])).sum()
    with pytest.raises(NotImplementedError, match=r"create_graph=True: the backward of twice .* is not "
                                                  r"differentiable in the engine yet"):
        if how == "backward":
            y.backward(create_graph=True)
        else:
            engine.autograd.grad(y, x, create_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 7.0, 7.0])  # untouched
    y.backward()  # and the graph is whole: a plain backward still runs
    np.testing.assert_allclose(x.grad.numpy(), [7.0 + 4 * 1 * 3, 7.0 + 4 * 2 * 2, 7.0 + 4 * 4 * 1])


def test_create_graph_false_keeps_plain_gradients_and_never_runs_the_recording_scheduler(monkeypatch):
    from engine.autograd import higher

    def refuse(*args, **kwargs):
        raise AssertionError("the create_graph scheduler ran for a plain backward")

    monkeypatch.setattr(higher, "run", refuse)
    w = engine.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    loss = (engine.tanh(engine.tensor([[1.0, 2.0]]) @ w) ** 2).sum()
    loss.backward()
    assert w.grad.grad_fn is None and not w.grad.requires_grad
    (g,) = engine.autograd.grad((w * w).sum(), w)
    assert g.grad_fn is None and not g.requires_grad
    np.testing.assert_array_equal(g.numpy(), 2 * w.detach().numpy())


def test_backward_events_still_flow_under_create_graph():
    assert not hub.active, "another test left a subscriber behind"
    x = engine.tensor([0.5, -1.0], requires_grad=True)
    y = (engine.tanh(x) * x).sum()
    got = []
    unsubscribe = hub.subscribe(got.append)
    try:
        engine.autograd.grad(y, x, create_graph=True)
    finally:
        unsubscribe()
    assert [e.op for e in got if isinstance(e, BackwardEvent)] == ["sum", "mul", "tanh"]
