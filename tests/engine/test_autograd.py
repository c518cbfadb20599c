"""Autograd behaviour a user relies on: accumulation, graph lifetime, grad mode, graph shape, errors."""

import importlib
import sys
import threading

import numpy as np
import pytest

import engine
from engine.backend import Device
from tests.engine.oracle import needs_torch, torch


# ---- accumulation and graph lifetime ------------------------------------------------------------
@needs_torch
def test_gradients_accumulate_on_leaves_across_backward_calls():
    grads = {}
    for lib in (engine, torch):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        y = (x * x + x * 3).sum()
        y.backward(retain_graph=True)
        first = x.grad.tolist()
        y.backward()
        grads[lib.__name__] = first, x.grad.tolist()
    assert grads["engine"] == grads["torch"] == ([5.0, -1.0, 9.0], [10.0, -2.0, 18.0])


def test_accumulated_grad_is_a_new_tensor_per_backward_only_when_needed():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward(engine.ones(2))
    g = x.grad
    (x * 3).backward(engine.ones(2))
    assert x.grad.tolist() == [5.0, 5.0]
    assert g.tolist() == [5.0, 5.0] and g is x.grad, "accumulation happens in place, as in PyTorch"


@needs_torch
def test_second_backward_without_retain_graph_is_a_clear_error():
    for lib in (engine, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            y.backward()


def test_the_second_time_error_names_the_node_and_the_fix():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp() * 2
    y.backward(engine.ones(2))
    with pytest.raises(RuntimeError, match=r"MulBackward0.*retain_graph=True"):
        y.backward(engine.ones(2))


@needs_torch
def test_ops_that_saved_nothing_may_backward_twice_like_torch():
    grads = {}
    for lib in (engine, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x + 1
        y.backward(lib.ones(2))
        y.backward(lib.ones(2))
        grads[lib.__name__] = x.grad.tolist()
    assert grads["engine"] == grads["torch"] == [2.0, 2.0]


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad can be implicitly created only for scalar outputs.*\(2,\)"):
        (x * 2).backward()


def test_backward_of_a_tensor_without_a_graph_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        (engine.tensor([1.0]) * 2).backward()
    x = engine.tensor([1.0], requires_grad=True)
    with engine.no_grad():
        y = x * 2
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        engine.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        engine.arange(3).requires_grad_()


@needs_torch
def test_integer_and_bool_outputs_never_require_grad():
    for lib in (engine, torch):
        x = lib.tensor([0.5, 1.5, -2.0], requires_grad=True)
        for out in (x > 0, x == x, x.long(), x.int(), x.bool(), (x * 2).int() + 1, ~(x > 0)):
            assert not out.requires_grad and out.grad_fn is None, (lib.__name__, out)
        assert x.double().requires_grad


def test_no_gradient_flows_through_an_integer_cast():
    x = engine.tensor([1.5, 2.5], requires_grad=True)
    y = x * 2 + x.long()
    y.backward(engine.ones(2))
    assert x.grad.tolist() == [2.0, 2.0]


# ---- grad mode -------------------------------------------------------------------------------------
def _records(x) -> bool:
    return (x * 2).requires_grad


def test_no_grad_and_enable_grad_as_context_managers():
    x = engine.tensor([1.0], requires_grad=True)
    assert engine.is_grad_enabled() and _records(x)
    with engine.no_grad():
        assert not engine.is_grad_enabled() and not _records(x)
        with engine.enable_grad():
            assert engine.is_grad_enabled() and _records(x)
        assert not _records(x)
    assert engine.is_grad_enabled()


def test_grad_modes_as_decorators_with_and_without_parentheses():
    x = engine.tensor([1.0], requires_grad=True)

    @engine.no_grad()
    def a():
        return _records(x)

    @engine.no_grad
    def b():
        return _records(x)

    @engine.set_grad_enabled(False)
    def c():
        return _records(x)

    assert engine.is_grad_enabled(), "decorating must not change the mode"
    assert (a(), b(), c()) == (False, False, False)
    assert a.__name__ == "a", "the decorator keeps the function's name"

    @engine.enable_grad()
    def d():
        return _records(x)

    with engine.no_grad():
        assert d()
    assert engine.is_grad_enabled()


def test_set_grad_enabled_as_function_and_context_manager():
    x = engine.tensor([1.0], requires_grad=True)
    try:
        engine.set_grad_enabled(False)
        assert not engine.is_grad_enabled() and not _records(x)
        engine.set_grad_enabled(True)
        assert _records(x)
    finally:
        engine.set_grad_enabled(True)
    with engine.set_grad_enabled(False):
        assert not _records(x)
        with engine.set_grad_enabled(True):
            assert _records(x)
        assert not _records(x)
    assert engine.is_grad_enabled()


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ValueError), engine.no_grad():
        raise ValueError("boom")
    assert engine.is_grad_enabled()

    @engine.no_grad()
    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fails()
    assert engine.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    with engine.no_grad():
        t = threading.Thread(target=lambda: seen.append(engine.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


# ---- graph shape and order -------------------------------------------------------------------------
def test_a_100k_op_chain_runs_backward_without_recursion():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    h = x
    for _ in range(100_000):
        h = h + 1.0
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # a recursive scheduler could not pass with this
    try:
        h.backward(engine.ones(2))
    finally:
        sys.setrecursionlimit(limit)
    assert x.grad.tolist() == [1.0, 1.0]


@needs_torch
@pytest.mark.parametrize("expr", [
    lambda x: x * x * x + x * 2 + x,
    lambda x: (x + x) * (x - 1) + x.exp() * x,
    lambda x: x * x * x * x,
    lambda x: sum((x * float(i) for i in range(1, 30)), x * 0),
    lambda x: (x * x).sin() + x.sin() * x,
], ids=["cube", "mixed", "x4", "fan30", "sin"])
def test_diamond_graphs_sum_gradients_from_every_use(expr):
    grads = {}
    for lib in (engine, torch):
        x = lib.tensor([0.5, -1.5, 2.0], requires_grad=True)
        expr(x).backward(lib.ones(3))
        grads[lib.__name__] = x.grad.numpy()
    np.testing.assert_allclose(grads["engine"], grads["torch"], rtol=1e-5)


def _structure(fn):
    """A graph as nested (name, children) tuples; torch's C++ node names lose their namespace."""
    if fn is None:
        return None
    return fn.name().rsplit("::", 1)[-1], tuple(_structure(f) for f, _ in fn.next_functions)


@needs_torch
def test_grad_fn_names_and_next_functions_match_torch():
    def expr(lib, a, b):
        return ((a * b + a) * 2 - b.exp()) / 3

    ea, eb = engine.tensor([1.0, 2.0], requires_grad=True), engine.tensor([3.0, 4.0], requires_grad=True)
    ta, tb = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([3.0, 4.0], requires_grad=True)
    ours, theirs = expr(engine, ea, eb), expr(torch, ta, tb)
    assert _structure(ours.grad_fn) == _structure(theirs.grad_fn)
    assert ours.grad_fn.name() == "DivBackward0"
    mul = ours.grad_fn.next_functions[0][0].next_functions[0][0]  # (a*b + a) * 2
    assert mul.name() == "MulBackward0" and mul.next_functions[1] == (None, 0), "a constant has no node"
    acc = mul.next_functions[0][0].next_functions[1][0]
    assert acc.name() == "AccumulateGrad" and acc.variable is ea and acc.next_functions == ()


def test_a_constant_tensor_input_has_no_node():
    x = engine.tensor([1.0], requires_grad=True)
    c = engine.tensor([2.0])
    names = [f if f is None else f.name() for f, _ in (x * c).grad_fn.next_functions]
    assert names == ["AccumulateGrad", None]


@needs_torch
def test_backward_runs_nodes_in_reverse_creation_order():
    orders = {}
    for lib in (engine, torch):
        order = []
        a = lib.tensor([1.0], requires_grad=True)
        b = a.exp()
        c = a.sin()
        d = b * c
        e = d + b
        f = e * c
        for name, t in {"b": b, "c": c, "d": d, "e": e}.items():
            t.register_hook(lambda g, name=name, order=order: order.append(name))
        f.backward(lib.ones(1))
        orders[lib.__name__] = order
    assert orders["engine"] == orders["torch"] == ["e", "d", "c", "b"]


# ---- in-place and saved tensors -----------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("change", ["input", "output"])
def test_changing_a_saved_tensor_in_place_fails_at_backward(change):
    for lib in (engine, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        if change == "input":
            y = x * 1
            z = y * y
            y.add_(1)  # y was saved by the mul
        else:
            z = (x * 1).exp()
            z.mul_(2)  # exp saved its output
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.backward(lib.ones(2))


def test_the_inplace_error_names_the_node_and_versions():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y * y
    y.add_(1)
    y.add_(1)
    expected = r"input 0 of mul, saved by MulBackward0, is at version 2; expected version 0"
    with pytest.raises(RuntimeError, match=expected):
        z.backward(engine.ones(2))


def test_changing_a_tensor_not_saved_is_fine():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y + 3  # add saves nothing
    y.add_(1)
    z.backward(engine.ones(2))
    assert x.grad.tolist() == [1.0, 1.0]


# ---- devices ---------------------------------------------------------------------------------------------
class _FakeGpuArray(np.ndarray):
    """A numpy array that claims to live on another device (no GPU needed to test the check)."""


def test_mixing_devices_is_a_clear_error(monkeypatch):
    tensor_module = importlib.import_module("engine.tensor")  # `engine.tensor` is also a function
    real = tensor_module.device_of
    monkeypatch.setattr(tensor_module, "device_of",
                        lambda a: Device("cuda", 0) if isinstance(a, _FakeGpuArray) else real(a))
    gpu = engine.Tensor._of(np.ones(2, dtype=np.float32).view(_FakeGpuArray))
    assert gpu.device == "cuda:0"
    message = "mul: expected all tensors on the same device, but found cpu and cuda:0"
    with pytest.raises(RuntimeError, match=message):
        engine.ones(2) * gpu
