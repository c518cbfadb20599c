"""A loop that updates its parameters by hand (no optimizer, as PyTorch's own first tutorial fits a polynomial):
each forward, backward and update is one iteration, numbered alike, live and on the tape."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.tape
from engine.debug import Debugger, mark_iteration
from engine.debug.losses import LossCurves
from engine.debug.records import OpRecord

X = np.linspace(-math.pi, math.pi, 50)
Y = np.sin(X)


def polynomial_fit(steps: int = 4, lr: float = 1e-4, expected: list | None = None) -> None:
    """PyTorch's tensor tutorial, ported: four coefficients updated under no_grad, their .grad set to None."""
    x, y = engine.tensor(X), engine.tensor(Y)
    a, b, c, d = (engine.tensor(v, requires_grad=True) for v in (0.1, -0.2, 0.3, 0.05))
    for _ in range(steps):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        if expected is not None:
            expected.append(loss.item())
        loss.backward()
        with engine.no_grad():
            for p in (a, b, c, d):
                p -= lr * p.grad
                p.grad = None


def module_fit(steps: int = 3, expected: list | None = None) -> None:
    """A model's parameters updated by hand, its gradients zeroed through the model."""
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    x, y = engine.tensor(X[:, None], dtype=engine.float32), engine.tensor(Y[:, None], dtype=engine.float32)
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        if expected is not None:
            expected.append(loss.item())
        model.zero_grad()
        loss.backward()
        with engine.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad


def traced(fn, tmp_path, **options):
    gc.collect()  # no optimizer of an earlier test left alive: an optimizer holding gradients would be training
    records = []
    dbg = Debugger("summary", interactive=False, cache_bytes=0, on_record=records.append, **options)
    path = tmp_path / "run.tape"
    with dbg, engine.record(path, debugger=dbg):
        fn()
    return records, path


def keys_by_iteration(records) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for r in records:
        if isinstance(r, OpRecord):
            out.setdefault(r.iteration, []).append(r.event.key)
    return out


@pytest.mark.parametrize("fit", [polynomial_fit, module_fit])
def test_each_pass_and_its_update_is_an_iteration_live_and_on_the_tape(fit, tmp_path):
    expected = []
    records, path = traced(lambda: fit(expected=expected), tmp_path)
    steps = len(expected)
    keys = keys_by_iteration(records)
    assert sorted(keys) == list(range(steps))
    # the update's ops (under no_grad, after backward) end their own iteration, not the next one
    for it in range(steps):
        ops = [r for r in records if isinstance(r, OpRecord) and r.iteration == it]
        assert ops[0].event.op != "sub" and ops[-1].event.op == "sub"
    live = LossCurves()
    live.feed(records)
    curve = live.curves()["loss"]
    np.testing.assert_allclose([curve[i] for i in range(steps)], expected, rtol=1e-12)
    with engine.tape.open(path) as tape:
        assert [i.iteration for i in tape.iterations()] == list(range(steps))
        assert tape.loss_curves()["loss"] == curve
        # iterations after the first are numbered alike (a graph laid out once is reused)
        assert len({tuple(op.key for op in tape.graph(it).ops) for it in range(1, steps)}) == 1


def test_a_model_updated_by_hand_numbers_every_iteration_alike(tmp_path):
    records, _ = traced(module_fit, tmp_path)
    keys = keys_by_iteration(records)
    assert keys[0] == keys[1] == keys[2]


def test_two_losses_backpropagated_one_after_the_other_stay_one_iteration(tmp_path):
    def two_losses():
        w = engine.tensor([0.5, -0.5], requires_grad=True)
        for _ in range(3):
            fit, smooth = (w * w).sum(), w.exp().sum()
            fit.backward()
            smooth.backward()
            with engine.no_grad():
                w -= 0.1 * w.grad
                w.grad.zero_()

    records, path = traced(two_losses, tmp_path)
    assert sorted(keys_by_iteration(records)) == [0, 1, 2]
    with engine.tape.open(path) as tape:
        assert len(tape.iterations()) == 3


def test_an_optimizer_accumulating_before_its_first_step_keeps_its_micro_batches_together(tmp_path):
    w = engine.tensor([[0.5], [-0.2]], requires_grad=True)
    opt = engine.optim.SGD([w], lr=0.1)

    def accumulate():
        for _ in range(2):
            for k in range(3):
                ((engine.tensor(X[:2, None] * (k + 1)).T @ w) ** 2).mean().backward()
            opt.step()
            opt.zero_grad()

    records, _ = traced(accumulate, tmp_path)
    assert sorted(keys_by_iteration(records)) == [0, 1]


def test_marked_iterations_and_grad_calls_are_left_as_they_were(tmp_path):
    def marked():
        w = engine.tensor([1.0, 2.0], requires_grad=True)
        for _ in range(4):
            (w * w).sum().backward()
            if _ % 2:
                mark_iteration()

    def by_grad():  # autograd.grad() hands its gradients back: no pass of backward() runs, no boundary
        w = engine.tensor([1.0, 2.0], requires_grad=True)
        for _ in range(3):
            (g,) = engine.autograd.grad((w * w).sum(), w)
            with engine.no_grad():
                w -= 0.1 * g

    # until the first mark the passes split (nothing tells yet that marks will come); from it on, marks count
    assert sorted(keys_by_iteration(traced(marked, tmp_path)[0])) == [0, 1, 2]
    assert sorted(keys_by_iteration(traced(by_grad, tmp_path / "..")[0])) == [0]
