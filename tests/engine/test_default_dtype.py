"""engine.set_default_dtype / get_default_dtype: floating tensors made from Python floats, random draws and
new layers' parameters follow the default (float32 or float64), as in torch, and the repr leaves it out."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import needs_torch, torch


@pytest.fixture
def float64_default():
    """float64 as the default dtype of the engine (and of torch, when installed), restored afterwards."""
    engine.set_default_dtype(engine.float64)
    if torch is not None:
        torch.set_default_dtype(torch.float64)
    yield
    engine.set_default_dtype(engine.float32)
    if torch is not None:
        torch.set_default_dtype(torch.float32)


def test_the_default_is_float32_and_set_changes_it_both_ways():
    assert engine.get_default_dtype() is engine.float32
    engine.set_default_dtype(engine.float64)
    try:
        assert engine.get_default_dtype() is engine.float64
        assert engine.tensor(0.1).item() == 0.1  # exactly: no trip through float32
    finally:
        engine.set_default_dtype(engine.float32)
    assert engine.get_default_dtype() is engine.float32
    assert engine.tensor([1.5]).dtype is engine.float32
    assert repr(engine.tensor([1.5], dtype=engine.float64)) == "tensor([1.5000], dtype=engine.float64)"
    assert repr(engine.tensor([1.5])) == "tensor([1.5000])"


def _nn(lib):
    return lib.nn


# name -> fn(lib): the same call on engine and on torch; each result's dtype must agree
MADE = {
    "tensor_of_floats": lambda lib: lib.tensor([1.5, 2.0]),
    "tensor_of_a_float": lambda lib: lib.tensor(2.0),
    "tensor_of_mixed_numbers": lambda lib: lib.tensor([1, 2.5, True]),
    "tensor_of_ints_stays_int64": lambda lib: lib.tensor([1, 2]),
    "float32_array_keeps_its_dtype": lambda lib: lib.tensor(np.ones(2, dtype=np.float32)),
    "zeros": lambda lib: lib.zeros(2, 3),
    "ones": lambda lib: lib.ones(2),
    "empty": lambda lib: lib.empty(2),
    "full_of_a_float": lambda lib: lib.full((2,), 1.5),
    "full_of_an_int": lambda lib: lib.full((2,), 1),
    "arange_of_floats": lambda lib: lib.arange(0.0, 3.0),
    "arange_of_ints": lambda lib: lib.arange(3),
    "linspace": lambda lib: lib.linspace(0, 1, 5),
    "eye": lambda lib: lib.eye(2),
    "rand": lambda lib: lib.rand(2),
    "randn": lambda lib: lib.randn(2, 2),
    "normal_of_numbers": lambda lib: lib.normal(0.0, 1.0, size=(3,)),
    "int_tensor_times_float": lambda lib: lib.tensor([1, 2]) * 1.5,
    "int_division": lambda lib: lib.tensor([1, 2]) / 2,
    "sqrt_of_ints": lambda lib: lib.tensor([1, 4]).sqrt(),
    "float32_tensor_times_float": lambda lib: lib.ones(2, dtype=lib.float32) * 1.5,
    "Tensor.float_stays_float32": lambda lib: lib.tensor([1, 2]).float(),
    "scalar_tensor": lambda lib: lib.scalar_tensor(1),
    "linear_weight": lambda lib: _nn(lib).Linear(2, 3).weight,
    "linear_bias": lambda lib: _nn(lib).Linear(2, 3).bias,
    "conv_weight": lambda lib: _nn(lib).Conv2d(1, 2, 3).weight,
    "batchnorm_running_mean": lambda lib: _nn(lib).BatchNorm1d(3).running_mean,
    "embedding_weight": lambda lib: _nn(lib).Embedding(4, 2).weight,
    "layernorm_weight": lambda lib: _nn(lib).LayerNorm(3).weight,
    "lstm_weight": lambda lib: _nn(lib).LSTM(2, 3).weight_ih_l0,
}


@needs_torch
@pytest.mark.parametrize("name", list(MADE))
def test_made_tensors_follow_the_default_dtype_as_in_torch(float64_default, name):
    ours, theirs = MADE[name](engine), MADE[name](torch)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")


@pytest.mark.parametrize("name", ["tensor_of_floats", "zeros", "randn", "arange_of_floats", "linear_weight",
                                  "int_tensor_times_float", "scalar_tensor"])
def test_made_tensors_are_float64_under_a_float64_default(float64_default, name):
    assert MADE[name](engine).dtype is engine.float64


def test_finfo_without_a_dtype_describes_the_default(float64_default):
    assert engine.finfo().dtype == "float64"
    assert engine.finfo().eps == np.finfo(np.float64).eps


@needs_torch
def test_repr_leaves_out_the_default_dtype_and_shows_float32(float64_default):
    cases = [lambda lib: lib.tensor([1.5, 2.0]), lambda lib: lib.tensor([1.5], dtype=lib.float32),
             lambda lib: lib.empty(0), lambda lib: lib.empty(0, dtype=lib.float32)]
    for make in cases:
        assert repr(make(engine)) == repr(make(torch)).replace("torch.", "engine.")


@needs_torch
@pytest.mark.parametrize("bad", ["int64", "string", "python_float"])
def test_non_floating_defaults_are_refused_as_torch_refuses_them(bad):
    ours = {"int64": engine.int64, "string": "float64", "python_float": float}[bad]
    theirs = {"int64": torch.int64, "string": "float64", "python_float": float}[bad]
    with pytest.raises(TypeError) as expected:
        torch.set_default_dtype(theirs)
    with pytest.raises(TypeError, match="only floating-point types are supported as the default type") as got:
        engine.set_default_dtype(ours)
    assert str(got.value) == str(expected.value)
    assert engine.get_default_dtype() is engine.float32


def test_float16_default_is_refused_with_what_the_engine_supports():
    with pytest.raises(TypeError, match="only float32 and float64 are supported as the engine's default type"):
        engine.set_default_dtype(engine.float16)
    assert engine.get_default_dtype() is engine.float32
    assert engine.tensor([1.5]).dtype is engine.float32


def test_gradients_flow_in_float64_parameters_made_under_a_float64_default(float64_default):
    layer = engine.nn.Linear(3, 2)
    x = engine.randn(4, 3)
    layer(x).sum().backward()
    assert layer.weight.grad.dtype is engine.float64
    np.testing.assert_allclose(layer.weight.grad.numpy(), np.tile(x.numpy().sum(0), (2, 1)), rtol=1e-12)
