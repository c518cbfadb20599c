"""engine.switches: threads, deterministic algorithms, anomaly mode, print options, warn-always, float32 matmul
precision and the default device, with torch's names, behaviour and errors."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import engine
from engine import switches
from tests.engine.oracle import needs_torch, torch

# the NaN these tests make on purpose: numpy's warnings about it (engine/__init__ silences them outside pytest)
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


@pytest.fixture(autouse=True)
def _restore_switches(monkeypatch):
    """Every switch as it was, for the engine and torch, after each test."""
    for table in (switches._threads, switches._deterministic, switches._state):
        for key, value in list(table.items()):
            monkeypatch.setitem(table, key, value)
    yield
    engine.set_anomaly_enabled(False)
    engine.set_printoptions(profile="default")
    if torch is not None:
        torch.set_printoptions(profile="default")
        torch.set_anomaly_enabled(False)


def test_threads_default_to_the_cpu_count_and_read_back_what_was_set():
    assert engine.get_num_threads() == os.cpu_count()
    assert engine.get_num_interop_threads() == os.cpu_count()
    engine.set_num_threads(2)
    engine.set_num_interop_threads(3)
    assert (engine.get_num_threads(), engine.get_num_interop_threads()) == (2, 3)


@pytest.mark.parametrize(("n", "words"), [(0, "expects a positive integer"), (-1, "expects a positive integer"),
                                          (2.5, "expects an int, but got float")])
@pytest.mark.parametrize("name", ["set_num_threads", "set_num_interop_threads"])
def test_thread_counts_are_checked_as_torch_checks_them(name, n, words):
    with pytest.raises(RuntimeError, match=f"{name} {words}"):
        getattr(engine, name)(n)


def test_deterministic_algorithms_read_back():
    assert not engine.are_deterministic_algorithms_enabled()
    engine.use_deterministic_algorithms(True, warn_only=True)
    assert engine.are_deterministic_algorithms_enabled() and engine.is_deterministic_algorithms_warn_only_enabled()
    engine.use_deterministic_algorithms(False)
    assert not engine.are_deterministic_algorithms_enabled()
    assert not engine.is_deterministic_algorithms_warn_only_enabled()
    with pytest.raises(TypeError, match="argument 'mode' must be bool, not int"):
        engine.use_deterministic_algorithms(1)


# ---- anomaly mode -----------------------------------------------------------------------------------------
def _nan_backward(lib, op):
    x = lib.tensor([-1.0, 4.0] if op == "sqrt" else [0.0, 4.0], requires_grad=True)
    (x.sqrt() if op == "sqrt" else x / x).sum().backward()


@needs_torch
@pytest.mark.filterwarnings("ignore:Error detected in:UserWarning")  # torch's trace of the forward op
@pytest.mark.parametrize("op", ["sqrt", "div"])
def test_anomaly_mode_raises_at_the_node_that_made_nan_as_torch(op):
    torch.set_anomaly_enabled(True)
    engine.set_anomaly_enabled(True)
    assert engine.is_anomaly_enabled() and engine.is_anomaly_check_nan_enabled()
    with pytest.raises(RuntimeError) as expected:
        _nan_backward(torch, op)
    with pytest.raises(RuntimeError) as got:
        _nan_backward(engine, op)
    assert str(got.value) == str(expected.value)


def test_anomaly_mode_off_or_without_check_nan_lets_nan_through():
    _nan_backward(engine, "sqrt")
    engine.set_anomaly_enabled(True, check_nan=False)
    assert engine.is_anomaly_enabled() and not engine.is_anomaly_check_nan_enabled()
    _nan_backward(engine, "sqrt")
    engine.set_anomaly_enabled(False)
    assert not engine.is_anomaly_enabled() and not engine.hub.active  # nothing left listening to the ops


def test_anomaly_mode_checks_create_graph_backward_and_leaves_finite_ones_alone():
    engine.set_anomaly_enabled(True)
    x = engine.tensor([1.0, 4.0], requires_grad=True)
    (g,) = engine.autograd.grad(x.sqrt().sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [0.5, 0.25])
    y = engine.tensor([-1.0, 4.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="returned nan values in its 0th output"):
        engine.autograd.grad(y.sqrt().sum(), y, create_graph=True)


def test_detect_anomaly_and_set_detect_anomaly_restore_the_mode():
    with engine.autograd.detect_anomaly():
        assert engine.is_anomaly_enabled()
        with pytest.raises(RuntimeError, match="SqrtBackward0"):
            _nan_backward(engine, "sqrt")
    assert not engine.is_anomaly_enabled()
    with engine.autograd.set_detect_anomaly(True):
        assert engine.is_anomaly_enabled()
    assert not engine.is_anomaly_enabled()
    engine.autograd.set_detect_anomaly(True)
    assert engine.is_anomaly_enabled()
    with pytest.raises(TypeError, match="must be bool"):
        engine.set_anomaly_enabled(1)


# ---- print options ----------------------------------------------------------------------------------------
PRINT_CASES = [
    ({"precision": 2}, lambda L: L.tensor([1.25, 2.5, 1e-6, 1e9])),
    ({"precision": 2}, lambda L: L.tensor([1.2345, 2.5])),
    ({"sci_mode": True}, lambda L: L.tensor([1.0, 2.0])),
    ({"sci_mode": True}, lambda L: L.tensor([1, 2])),
    ({"sci_mode": False}, lambda L: L.tensor([1e-6, 1.5, 1e9])),
    ({"sci_mode": False}, lambda L: L.tensor([1.0, 2.0])),
    ({"linewidth": 30}, lambda L: L.arange(20.0)),
    ({"threshold": 5, "edgeitems": 1}, lambda L: L.arange(20.0)),
    ({"threshold": 5, "edgeitems": 1}, lambda L: L.arange(20.0).reshape(4, 5)),
    ({"profile": "short"}, lambda L: L.arange(2000.0)),
    ({"profile": "short"}, lambda L: L.tensor([1.2345])),
    ({"profile": "full"}, lambda L: L.arange(1500.0)),
]


@needs_torch
@pytest.mark.parametrize(("options", "make"), PRINT_CASES)
def test_set_printoptions_changes_repr_as_in_torch(options, make):
    torch.set_printoptions(**options)
    engine.set_printoptions(**options)
    assert repr(make(engine)) == repr(make(torch)).replace("torch.", "engine.")


def test_set_printoptions_default_profile_restores_and_sci_mode_none_chooses_again():
    engine.set_printoptions(precision=2, sci_mode=True)
    assert repr(engine.tensor([1.5])) == "tensor([1.50e+00])"
    engine.set_printoptions(sci_mode=None)
    assert repr(engine.tensor([1.5])) == "tensor([1.50])"
    engine.set_printoptions(profile="default")
    assert repr(engine.tensor([1.5])) == "tensor([1.5000])"


@pytest.mark.parametrize(("options", "error"), [({"profile": "foo"}, ValueError), ({"precision": "a"}, TypeError),
                                                ({"precision": -1}, ValueError), ({"sci_mode": 1}, TypeError),
                                                ({"linewidth": 2.5}, TypeError)])
def test_set_printoptions_refuses_bad_values(options, error):
    with pytest.raises(error, match="set_printoptions"):
        engine.set_printoptions(**options)


# ---- warnings, matmul precision, default device -----------------------------------------------------------
def test_warn_always_reads_back_and_takes_only_bools():
    assert not engine.is_warn_always_enabled()
    engine.set_warn_always(True)
    assert engine.is_warn_always_enabled()
    with pytest.raises(RuntimeError, match="expects a bool, but got int"):
        engine.set_warn_always(1)


def test_float32_matmul_precision_reads_back_and_warns_on_unknown_values():
    assert engine.get_float32_matmul_precision() == "highest"
    engine.set_float32_matmul_precision("medium")
    assert engine.get_float32_matmul_precision() == "medium"
    with pytest.warns(UserWarning, match="low is not one of 'highest', 'high', or 'medium'"):
        engine.set_float32_matmul_precision("low")
    assert engine.get_float32_matmul_precision() == "medium"
    with pytest.raises(RuntimeError, match="expects a str, but got int"):
        engine.set_float32_matmul_precision(1)


def test_default_device_is_the_cpu_and_another_is_refused():
    assert engine.get_default_device() == engine.device("cpu")
    engine.set_default_device("cpu")
    engine.set_default_device(None)
    with pytest.raises(RuntimeError, match="creates tensors on the CPU unless told otherwise"):
        engine.set_default_device("cuda")
    with pytest.raises(RuntimeError, match="unknown device"):
        engine.set_default_device("foo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert engine.zeros(2).device == engine.get_default_device()
