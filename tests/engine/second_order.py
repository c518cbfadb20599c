"""The per-op second-order check the higher-order test files share, over a CASES dict of theirs.

A case is `name: (fn, shapes)`, fn(L, F, *tensors) written once for L = engine or torch (F their functional).
For each case the gradient of sum(out * r) and the gradient of (that gradient . v) are compared with PyTorch
in float64, and the latter with central differences of the engine's own gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import pytest

import engine
import engine.nn.functional as EF
from tests.engine.oracle import needs_torch, torch
from tests.engine.test_higher_order import _close

if torch is not None:
    import torch.nn.functional as TF

Cases = dict[str, tuple[Callable, list[tuple[int, ...]]]]


def case_inputs(cases: Cases, name: str) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """The case's float64 inputs, the direction v of each and the weights r of its output, seeded by its name."""
    fn, shapes = cases[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    arrays = [rng.standard_normal(s) for s in shapes]
    vs = [rng.standard_normal(s) for s in shapes]
    out = fn(engine, EF, *(engine.tensor(a) for a in arrays))
    return arrays, vs, rng.standard_normal(tuple(out.shape))


def grad_and_hvp(L, F, fn: Callable, arrays, vs, r, device: str = "cpu"):
    """The gradient of sum(out * r) and the gradient of (that gradient . v), with L = engine or torch."""
    xs = [L.tensor(a, requires_grad=True, device=device) for a in arrays]
    out = fn(L, F, *xs)
    grads = L.autograd.grad((out * L.tensor(r, device=device)).sum(), xs, create_graph=True)
    hv = L.autograd.grad(sum((g * L.tensor(v, device=device)).sum() for g, v in zip(grads, vs)), xs,
                         allow_unused=True)
    return grads, hv


def check_matches_torch(cases: Cases, name: str, torch_lacks: Collection[str] = ()) -> None:
    """The case's gradient (still differentiable) and Hessian-vector product equal torch's; skipped where torch
    has no such op."""
    if name in torch_lacks:
        pytest.skip(f"torch has no {name}")
    arrays, vs, r = case_inputs(cases, name)
    g_e, hv_e = grad_and_hvp(engine, EF, cases[name][0], arrays, vs, r)
    g_t, hv_t = grad_and_hvp(torch, TF, cases[name][0], arrays, vs, r)
    for a, b in zip(g_e, g_t):
        assert a.requires_grad
        _close(a, b)
    for a, b in zip(hv_e, hv_t):
        _close(0 if a is None else a, 0 if b is None else b.numpy())


def check_matches_finite_differences(cases: Cases, name: str, eps: float = 1e-6) -> None:
    """The case's Hessian-vector product equals central differences of the engine's gradient along v."""
    fn = cases[name][0]
    arrays, vs, r = case_inputs(cases, name)
    _, hv = grad_and_hvp(engine, EF, fn, arrays, vs, r)

    def gradient(shift):
        xs = [engine.tensor(a + shift * v, requires_grad=True) for a, v in zip(arrays, vs)]
        return engine.autograd.grad((fn(engine, EF, *xs) * engine.tensor(r)).sum(), xs, allow_unused=True)

    for h, gp, gm in zip(hv, gradient(eps), gradient(-eps)):
        fd = 0 if gp is None else (gp.numpy() - gm.numpy()) / (2 * eps)
        np.testing.assert_allclose(0 if h is None else h.numpy(), fd, rtol=1e-5, atol=1e-6)


def second_order_tests(cases: Cases, torch_lacks: Collection[str] = (), no_differences: Collection[str] = ()):
    """The two parametrized tests of a file's cases: against torch, and against central differences (cases in
    `no_differences` left out of those, where the engine's gradient is not smooth at the sampled points)."""

    @needs_torch
    @pytest.mark.parametrize("name", sorted(cases))
    def test_second_order_matches_torch(name):
        check_matches_torch(cases, name, torch_lacks)

    @pytest.mark.parametrize("name", sorted(n for n in cases if n not in no_differences))
    def test_second_order_matches_finite_differences(name):
        check_matches_finite_differences(cases, name)

    return test_second_order_matches_torch, test_second_order_matches_finite_differences
