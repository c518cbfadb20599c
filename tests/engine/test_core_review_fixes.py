"""What a review found in backward hooks, lr schedulers, functional_call, matrix_exp and lazy layers."""

from __future__ import annotations

import copy
import gc
import weakref

import numpy as np
import pytest

import engine
import engine.nn as enn
from engine.func import functional_call
from tests.engine.oracle import needs_torch, torch


# ---- full backward hooks: no copies at the junction --------------------------------------------------------
class _SumDiff(enn.Module):
    def forward(self, a, b):
        self.seen = (a, b)
        self.made = (a + b, a - b)
        return self.made


def test_a_full_backward_hook_passes_the_calls_tensors_on_without_copying():
    module = _SumDiff()
    module.register_full_backward_hook(lambda m, gi, go: None)
    a = engine.randn(50, 40, requires_grad=True)
    b = engine.randn(50, 40, requires_grad=True)
    out = module(a, b)
    for given, seen in zip((a, b), module.seen):
        assert np.shares_memory(given.detach().numpy(), seen.detach().numpy())
    for made, returned in zip(module.made, out):
        assert np.shares_memory(made.detach().numpy(), returned.detach().numpy())
    (out[0] * 2 + out[1]).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 3.0)
    np.testing.assert_allclose(b.grad.numpy(), 1.0)


@needs_torch
def test_backward_hooks_replace_gradients_of_several_outputs_and_inputs_as_torch():
    def run(lib):
        class M(lib.nn.Module):
            def forward(self, a, b):
                return a * 2, a * b

        m = M()
        m.register_full_backward_pre_hook(lambda mod, go: (go[0] * 10, go[1]))
        m.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[1] * 0))
        a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = lib.tensor([0.5, -1.0, 4.0], requires_grad=True)
        y1, y2 = m(a, b)
        (y1.sum() + (y2 * y2).sum()).backward()
        return a.grad.numpy(), b.grad.numpy()

    for got, expected in zip(run(engine), run(torch)):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


@needs_torch
def test_a_gradient_a_backward_hook_kept_is_not_changed_by_a_later_backward():
    def run(lib):
        m = lib.nn.Linear(3, 1)
        kept = []
        m.register_full_backward_hook(lambda mod, gi, go: kept.append(gi[0]))
        x = lib.ones(2, 3, requires_grad=True)
        for _ in range(2):
            m(x).sum().backward()
        rows = np.broadcast_to(m.weight.detach().numpy(), (2, 3))
        return [k.numpy() for k in kept], x.grad.numpy(), rows

    for lib in (torch, engine):  # torch is the reference: what the hook kept stays as it saw it
        (k1, k2), grad, rows = run(lib)
        np.testing.assert_allclose(k1, rows, rtol=1e-6)
        np.testing.assert_allclose(k2, rows, rtol=1e-6)
        np.testing.assert_allclose(grad, 2 * rows, rtol=1e-6)


# ---- lr schedulers: a tensor rate is filled in place ---------------------------------------------------------
@needs_torch
def test_a_scheduler_fills_a_tensor_learning_rate_in_place_as_torch():
    def run(lib, nn):
        lr = lib.tensor(0.1)
        opt = lib.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr)
        sched = lib.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
        rates = []
        for _ in range(3):
            opt.step()
            sched.step()
            rates.append(float(lr))
        return opt.param_groups[0]["lr"] is lr, rates, [float(r) for r in sched.get_last_lr()]

    assert run(engine, enn) == run(torch, torch.nn)
    same, rates, _ = run(engine, enn)
    assert same and rates == pytest.approx([0.05, 0.025, 0.0125])


# ---- functional_call ------------------------------------------------------------------------------------------
@needs_torch
def test_functional_call_takes_unknown_names_unless_strict_as_torch():
    m = enn.Linear(2, 2)
    w = np.arange(4.0, dtype=np.float32).reshape(2, 2)
    out = functional_call(m, {"weight": engine.tensor(w), "extra": engine.ones(1)}, (engine.ones(1, 2),))
    tm = torch.nn.Linear(2, 2)
    tm.bias.data = torch.tensor(m.bias.detach().numpy())
    tout = torch.func.functional_call(tm, {"weight": torch.tensor(w), "extra": torch.ones(1)}, (torch.ones(1, 2),))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-6)
    assert not hasattr(m, "extra")
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\): 'extra'\."):
        functional_call(m, {"weight": engine.ones(2, 2), "bias": engine.ones(2), "extra": engine.ones(1)},
                        (engine.ones(1, 2),), strict=True)


@needs_torch
def test_functional_call_puts_a_tensor_in_place_of_a_parametrized_one():
    m = enn.utils.parametrizations.weight_norm(enn.Linear(2, 2))
    before = {k: v.detach().numpy().copy() for k, v in m.named_parameters()}
    w = engine.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    out = functional_call(m, {"weight": w}, engine.ones(1, 2))
    out.sum().backward()
    tm = torch.nn.Linear(2, 2)
    tm.bias.data = torch.tensor(m.bias.detach().numpy())
    expected = torch.func.functional_call(tm, {"weight": torch.tensor(w.detach().numpy())}, torch.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), np.ones((2, 2)))  # d sum(x W^T) / dW with x of ones
    for k, v in m.named_parameters():
        np.testing.assert_array_equal(v.detach().numpy(), before[k])
    assert m.parametrizations.weight.original0.grad is None
    np.testing.assert_allclose(m(engine.ones(1, 2)).detach().numpy(),
                               (engine.ones(1, 2) @ m.weight.mT + m.bias).detach().numpy(), rtol=1e-6)


@needs_torch
def test_functional_call_refuses_two_values_for_tied_names_as_torch():
    class Tied(enn.Module):
        def __init__(self):
            super().__init__()
            self.a = enn.Linear(2, 2, bias=False)
            self.b = self.a

        def forward(self, x):
            return self.b(x)

    class TTied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 2, bias=False)
            self.b = self.a

        def forward(self, x):
            return self.b(x)

    with pytest.raises(ValueError) as ours:
        functional_call(Tied(), {"a.weight": engine.ones(2, 2), "b.weight": engine.zeros(2, 2)}, engine.ones(1, 2))
    with pytest.raises(ValueError) as theirs:
        torch.func.functional_call(TTied(), {"a.weight": torch.ones(2, 2), "b.weight": torch.zeros(2, 2)},
                                   torch.ones(1, 2))
    assert str(ours.value) == str(theirs.value)
    same = engine.ones(2, 2)
    out = functional_call(Tied(), {"a.weight": same, "b.weight": same}, engine.ones(1, 2))
    np.testing.assert_allclose(out.numpy(), [[2.0, 2.0]])


# ---- matrix_exp and householder_product: public ops --------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("scale", [0.1, 1.0, 4.0])
def test_matrix_exp_matches_torch_in_value_and_gradient(scale):
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((2, 5, 5)) * scale).astype(np.float32)
    w = rng.standard_normal((2, 5, 5)).astype(np.float32)
    ta = torch.tensor(a.astype(np.float64), requires_grad=True)
    (torch.matrix_exp(ta) * torch.tensor(w.astype(np.float64))).sum().backward()
    for fn in (engine.matrix_exp, engine.linalg.matrix_exp, lambda t: t.matrix_exp()):
        x = engine.tensor(a, requires_grad=True)
        y = fn(x)
        (y * engine.tensor(w)).sum().backward()
        ref = torch.matrix_exp(torch.tensor(a.astype(np.float64))).numpy()
        np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-3, atol=1e-6 * np.abs(ref).max())
        g = ta.grad.numpy()
        np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-3, atol=1e-4 * np.abs(g).max())


@needs_torch
def test_matrix_exp_differentiates_twice_as_torch():
    rng = np.random.default_rng(4)
    a, w = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))

    def run(lib):
        x = lib.tensor(a, requires_grad=True)
        (g,) = lib.autograd.grad((lib.matrix_exp(x) * lib.tensor(w)).sum(), [x], create_graph=True)
        (g * g).sum().backward()
        return g.detach().numpy(), x.grad.numpy()

    for got, expected in zip(run(engine), run(torch)):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_matrix_exp_gradient_matches_finite_differences_in_float64():
    rng = np.random.default_rng(5)
    a, d, w = (rng.standard_normal((4, 4)) * 2 for _ in range(3))

    def f(m):
        return float((engine.matrix_exp(engine.tensor(m)).numpy() * w).sum())

    x = engine.tensor(a, requires_grad=True)
    (engine.matrix_exp(x) * engine.tensor(w)).sum().backward()
    h = 1e-6
    fd = (f(a + h * d) - f(a - h * d)) / (2 * h)
    assert float((x.grad.numpy() * d).sum()) == pytest.approx(fd, rel=1e-6)


def test_matrix_exp_names_a_matrix_that_is_not_square():
    with pytest.raises(ValueError, match=r"matrix_exp: expected a square matrix.*\(2, 3\)"):
        engine.matrix_exp(engine.ones(2, 3))


@needs_torch
def test_householder_product_is_public_and_matches_torch():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((2, 5, 3))
    tau = rng.standard_normal((2, 3))
    x, t = engine.tensor(A, requires_grad=True), engine.tensor(tau, requires_grad=True)
    q = engine.linalg.householder_product(x, t)
    q.sum().backward()
    tx, tt = torch.tensor(A, requires_grad=True), torch.tensor(tau, requires_grad=True)
    tq = torch.linalg.householder_product(tx, tt)
    tq.sum().backward()
    np.testing.assert_allclose(q.detach().numpy(), tq.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---- lazy layers: shaped before the user's pre hooks -----------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("name, shape", [("LazyLinear", (4, 3)), ("LazyConv2d", (1, 3, 6, 6))])
def test_a_forward_pre_hook_of_a_lazy_layer_sees_its_shaped_weight_as_torch(name, shape):
    def seen(lib, nn):
        args = (2,) if name == "LazyLinear" else (2, 3)
        m = getattr(nn, name)(*args)
        shapes = []
        m.register_forward_pre_hook(lambda mod, a: shapes.append(tuple(mod.weight.shape)))
        m(lib.randn(*shape))
        m(lib.randn(*shape))
        return shapes, type(m).__name__

    assert seen(engine, enn) == seen(torch, torch.nn)


def test_a_copy_of_a_lazy_layer_made_before_its_first_call_still_shapes_itself():
    m = enn.LazyLinear(2)
    c = copy.deepcopy(m)
    assert c(engine.randn(5, 3)).shape == (5, 2)
    assert type(c) is enn.Linear and c.weight.shape == (2, 3)
    assert type(m) is enn.LazyLinear  # the original still waits for its own first call
    assert m(engine.randn(1, 7)).shape == (1, 2)


# ---- state_dict post hooks: removing the handle lets the hook go -----------------------------------------------
def test_removing_a_state_dict_post_hook_lets_the_hook_be_freed():
    m = enn.Linear(2, 2)

    def hook(module, state, prefix, meta):
        return None

    ref = weakref.ref(hook)
    handle = m.register_state_dict_post_hook(hook)
    handle.remove()
    del hook
    gc.collect()
    assert ref() is None
    assert set(m.state_dict()) == {"weight", "bias"}


def test_a_state_dict_post_hook_that_returns_a_value_is_refused():
    m = enn.Linear(2, 2)
    m.register_state_dict_post_hook(lambda mod, state, prefix, meta: {})
    with pytest.raises(RuntimeError, match="must return None"):
        m.state_dict()


@needs_torch
def test_cyclic_lr_fills_a_tensor_learning_rate_in_place_too():
    def run(lib, nn):
        lr = lib.tensor(0.1)
        opt = lib.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr, momentum=0.9)
        sched = lib.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=2)
        rates = []
        for _ in range(3):
            opt.step()
            sched.step()
            rates.append(round(float(lr), 12))
        return opt.param_groups[0]["lr"] is lr, rates

    assert run(engine, enn) == run(torch, torch.nn)
