"""Gaps a port of a torch training script hits: Lp pooling in 3-D, orthogonal parametrization,
`scheduler.step(epoch)`, and backward hooks of modules with several outputs; each compared with PyTorch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import engine
import engine.nn as enn
from engine.nn.layers.pool import LPPool3d
from engine.nn.utils.parametrizations import orthogonal
from engine.ops.pool import lp_pool3d
from tests.engine.oracle import finite_difference_check, needs_torch, torch

# ---- lp_pool3d / LPPool3d --------------------------------------------------------------------------------


@needs_torch
@pytest.mark.filterwarnings("ignore:invalid value encountered in power:RuntimeWarning")  # numpy, on nan windows
@pytest.mark.parametrize(("p", "kernel", "stride", "ceil_mode"),
                         [(2.0, 2, None, False), (3.0, (2, 3, 2), (1, 2, 2), True), (1.5, 3, 2, True)])
def test_lp_pool3d_matches_torch_values_and_gradients(p, kernel, stride, ceil_mode):
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6, 7))
    if p == 1.5:
        x = np.abs(x)  # a fractional power of a negative sum is nan in both
    xe, xt = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ye = lp_pool3d(xe, p, kernel, stride, ceil_mode)
    yt = torch.nn.functional.lp_pool3d(xt, p, kernel, stride, ceil_mode)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-12, equal_nan=True)
    if p != 3.0:
        ye.sum().backward()
        yt.sum().backward()
        np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    layer = LPPool3d(p, kernel, stride, ceil_mode)
    assert repr(layer) == repr(torch.nn.LPPool3d(p, kernel, stride, ceil_mode))
    np.testing.assert_allclose(layer(xe).detach().numpy(), yt.detach().numpy(), rtol=1e-12, equal_nan=True)


def test_lp_pool3d_gradient_matches_finite_differences_and_unbatched_input_works():
    x = np.abs(np.random.default_rng(1).standard_normal((1, 2, 4, 4, 4))) + 0.5
    finite_difference_check(lambda t: lp_pool3d(t, 2.0, 2, 1), [x])
    assert tuple(lp_pool3d(engine.tensor(x[0]), 2.0, 2).shape) == (2, 2, 2, 2)


# ---- orthogonal ----------------------------------------------------------------------------------------


def _linear_pair(shape, seed=0):
    w = np.random.default_rng(seed).standard_normal(shape)
    tl = torch.nn.Linear(shape[1], shape[0]).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(w))
    el = enn.Linear(shape[1], shape[0]).double()
    el.load_state_dict({k: engine.tensor(v.numpy()) for k, v in tl.state_dict().items()})
    return tl, el


@needs_torch
@pytest.mark.parametrize("shape", [(4, 4), (6, 3), (3, 5)])
@pytest.mark.parametrize(("orthogonal_map", "use_trivialization"), [
    (None, True), ("matrix_exp", True), ("cayley", True), ("householder", True), ("householder", False),
    (None, False)])
def test_orthogonal_matches_torch_weight_state_dict_and_gradients(shape, orthogonal_map, use_trivialization):
    if orthogonal_map is None and not use_trivialization and shape[0] == shape[1]:
        pytest.skip("matrix_exp without trivialization cannot be initialised (torch raises too)")
    tl, el = _linear_pair(shape)
    torch.nn.utils.parametrizations.orthogonal(tl, orthogonal_map=orthogonal_map,
                                               use_trivialization=use_trivialization)
    orthogonal(el, orthogonal_map=orthogonal_map, use_trivialization=use_trivialization)
    assert sorted(el.state_dict()) == sorted(tl.state_dict())
    assert repr(el) == repr(tl)
    np.testing.assert_allclose(el.weight.detach().numpy(), tl.weight.detach().numpy(), atol=1e-12)
    # move away from the start (off the diagonal: householder keeps its signs there); the random completion
    # of a non-square base is the torch one, so both compute the same map
    delta = np.random.default_rng(1).standard_normal(shape) * 0.3 * (1 - np.eye(*shape))
    with torch.no_grad():
        tl.parametrizations.weight.original.add_(torch.tensor(delta))
    with engine.no_grad():
        el.parametrizations.weight.original.add_(engine.tensor(delta))
    if use_trivialization:
        el.parametrizations.weight[0].base = engine.tensor(tl.parametrizations.weight[0].base.numpy())
    w = el.weight.detach().numpy()
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-12)
    x = np.random.default_rng(2).standard_normal((2, shape[1]))
    r = np.random.default_rng(3).standard_normal((2, shape[0]))
    (tl(torch.tensor(x)) * torch.tensor(r)).sum().backward()
    (el(engine.tensor(x)) * engine.tensor(r)).sum().backward()
    np.testing.assert_allclose(el.weight.detach().numpy(), tl.weight.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(el.parametrizations.weight.original.grad.numpy(),
                               tl.parametrizations.weight.original.grad.numpy(), atol=1e-10)


@needs_torch
@pytest.mark.parametrize("orthogonal_map", ["matrix_exp", "cayley", "householder"])
def test_orthogonal_batched_buffer_and_assignment_match_torch(orthogonal_map):
    w = np.random.default_rng(4).standard_normal((2, 3, 4, 4))
    q = np.random.default_rng(5).standard_normal((2, 3, 4, 4))

    class TM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.tensor(w))

    class EM(enn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", engine.tensor(w))

    tm = torch.nn.utils.parametrizations.orthogonal(TM(), "w", orthogonal_map)
    em = orthogonal(EM(), "w", orthogonal_map)
    np.testing.assert_allclose(em.w.numpy(), tm.w.numpy(), atol=1e-12)
    tm.w, em.w = torch.tensor(q), engine.tensor(q)  # assignment orthogonalises, as in torch
    expected = tm.state_dict()
    assert sorted(em.state_dict()) == sorted(expected)
    for k, v in em.state_dict().items():
        np.testing.assert_allclose(v.numpy(), expected[k].numpy(), atol=1e-12)


def test_orthogonal_trains_and_reloads_and_reports_bad_use():
    lin = orthogonal(enn.Linear(5, 5))
    opt = engine.optim.SGD(lin.parameters(), lr=0.1)
    x = engine.randn(8, 5)
    for _ in range(3):
        opt.zero_grad()
        lin(x).pow(2).sum().backward()
        opt.step()
    w = lin.weight.detach().numpy()
    np.testing.assert_allclose(w.T @ w, np.eye(5), atol=1e-5)
    other = orthogonal(enn.Linear(5, 5))
    other.load_state_dict(lin.state_dict())
    np.testing.assert_array_equal(other.weight.detach().numpy(), w)
    with pytest.raises(ValueError, match=r'orthogonal_map has to be one of "matrix_exp", "cayley", "householder"\. '
                                         r"Got: qr"):
        orthogonal(enn.Linear(3, 3), orthogonal_map="qr")
    with pytest.raises(ValueError, match=r"Expected a matrix or batch of matrices\. Got a tensor of 1 dimensions"):
        orthogonal(enn.Linear(3, 3), "bias")
    with pytest.raises(ValueError, match="Module 'Linear' has no parameter or buffer with name 'kernel'"):
        orthogonal(enn.Linear(3, 3), "kernel")
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        orthogonal(enn.Linear(3, 3), orthogonal_map="cayley", use_trivialization=False)
    with pytest.raises(ValueError, match=r"shape \(3, 3\). Got a tensor of shape \(2, 3\)"):
        orthogonal(enn.Linear(3, 3)).weight = engine.zeros(2, 3)


def test_matrix_exp_gradient_matches_finite_differences():
    from engine.nn.utils.parametrizations import MatrixExp

    a = np.random.default_rng(6).standard_normal((2, 3, 3)) * 1.5  # large enough to need squarings
    finite_difference_check(lambda t: MatrixExp.apply(t), [a])


# ---- scheduler.step(epoch) -------------------------------------------------------------------------------

_SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)), ("MultiStepLR", dict(milestones=[2, 2, 5], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)), ("CosineAnnealingLR", dict(T_max=6, eta_min=0.01)),
    ("ConstantLR", dict(factor=0.25, total_iters=4)), ("LinearLR", dict(start_factor=0.2, total_iters=5)),
    ("PolynomialLR", dict(total_iters=6, power=2.0)), ("LambdaLR", dict(lr_lambda=lambda e: 0.9 ** e)),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.95)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.001)),
    ("CosineAnnealingWarmRestarts", dict(T_0=4)),
    ("CyclicLR", dict(base_lr=0.1, max_lr=1.0, step_size_up=3)), ("OneCycleLR", dict(max_lr=1.0, total_steps=40)),
]


def _epoch_run(lib, name, kwargs):
    p, q = lib.zeros(2, requires_grad=True), lib.zeros(2, requires_grad=True)
    opt = lib.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=1.0, momentum=0.9)
    sched = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
    epochs = [None, None, 7, None, 3, None, None, 12, 0, None]
    if name == "CosineAnnealingWarmRestarts":
        epochs += [5.5, None, 2.25, 9.75]  # a fraction of an epoch per batch: its documented use
    rates = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in epochs:
            opt.step()
            sched.step() if epoch is None else sched.step(epoch)
            rates.append([*sched.get_last_lr(), sched.last_epoch])
    return rates, sorted({str(w.message).split(". ")[0] for w in caught})  # the first sentence: torch's words


@needs_torch
@pytest.mark.parametrize(("name", "kwargs"), _SCHEDULERS, ids=[f"{n}{i}" for i, (n, _) in enumerate(_SCHEDULERS)])
def test_step_with_an_epoch_warns_and_sets_the_rates_torch_does(name, kwargs):
    rates, warned = _epoch_run(engine, name, kwargs)
    expected_rates, expected_warned = _epoch_run(torch, name, kwargs)
    np.testing.assert_allclose(np.array(rates, float), np.array(expected_rates, float), rtol=1e-12)
    assert warned == expected_warned


@needs_torch
def test_reduce_lr_on_plateau_step_with_an_epoch_matches_torch():
    def run(lib):
        opt = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=1.0)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1)
        with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)` was not necessary"):
            for i in range(6):
                sched.step(1.0, i * 10) if i % 2 else sched.step(1.0)
        return sched.last_epoch, sched.get_last_lr()

    assert run(engine) == run(torch)


# ---- backward hooks of modules with several outputs -------------------------------------------------------


def _hooked_call(lib, mode):
    class Three(lib.nn.Module):
        def forward(self, x, y):
            return x * 2, x * y, y.sin()

    module, seen = Three(), {}

    def pre(m, grad_output):
        seen["pre"] = [None if g is None else g.detach().numpy().copy() for g in grad_output]
        if mode == "pre":
            return tuple(None if g is None else g * 10 for g in grad_output)
        return None

    def full(m, grad_input, grad_output):
        seen["in"] = [None if g is None else g.detach().numpy().copy() for g in grad_input]
        seen["out"] = [None if g is None else g.detach().numpy().copy() for g in grad_output]
        if mode == "full":
            return tuple(g * 100 for g in grad_input)
        return None

    module.register_full_backward_pre_hook(pre)
    module.register_full_backward_hook(full)
    x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    y = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
    a, b, c = module(x, y)
    loss = (a * b).sum() + c.sum() * 3 if mode != "unused" else (a * 5).sum()
    loss.backward()
    return seen, x.grad.numpy(), y.grad.numpy()


def _same(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert (g is None) == (e is None)
        if e is not None:
            np.testing.assert_allclose(g, e, rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("mode", ["none", "unused", "pre", "full"])
def test_backward_hooks_see_and_replace_every_output_and_input_gradient_as_torch(mode):
    seen, gx, gy = _hooked_call(engine, mode)
    expected, tx, ty = _hooked_call(torch, mode)
    for key in ("pre", "in", "out"):
        _same(seen[key], expected[key])
    np.testing.assert_allclose(gx, tx, rtol=1e-12)
    np.testing.assert_allclose(gy, ty, rtol=1e-12)


@needs_torch
def test_backward_hooks_of_several_outputs_with_create_graph_and_retain_graph_match_torch():
    def run(lib):
        class Two(lib.nn.Module):
            def forward(self, x, y):
                return x * y, x.sin()

        module, calls = Two(), []
        module.register_full_backward_hook(lambda m, gi, go: calls.append(len(gi)))
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = lib.tensor([3.0, 4.0], dtype=lib.float64, requires_grad=True)
        a, b = module(x, y)
        loss = (a * b).sum()
        loss.backward(retain_graph=True)
        loss.backward(retain_graph=True)  # a second pass runs the hooks again
        x.grad = y.grad = None
        (gx,) = lib.autograd.grad(loss, [x], create_graph=True)
        gx.sum().backward()
        return calls, x.grad.numpy(), y.grad.numpy()

    calls, gx, gy = run(engine)
    expected_calls, tx, ty = run(torch)
    assert calls == expected_calls
    np.testing.assert_allclose(gx, tx, rtol=1e-12)
    np.testing.assert_allclose(gy, ty, rtol=1e-12)


def test_a_full_hook_of_a_call_whose_inputs_need_no_gradient_must_return_none():
    class Two(enn.Module):
        def forward(self, x):
            return x * self.w, x * 2 * self.w

        def __init__(self):
            super().__init__()
            self.w = enn.Parameter(engine.ones(2))

    module = Two()
    module.register_full_backward_hook(lambda m, gi, go: (engine.ones(2),))
    a, b = module(engine.ones(2))
    with pytest.raises(RuntimeError, match="no input of this call requires a gradient"):
        (a + b).sum().backward()
