"""Integer and bool tensors through ops that PyTorch gives integer rules: clamp's bounds promote, the clipping
activations keep integers (their float arguments cut toward zero), softsign and tanhshrink give floats, integer
powers take negative exponents, and a reduction's integer dtype is refused for an input that requires grad."""

import numpy as np
import pytest

import engine
import engine.nn.functional as EF
from tests.engine.oracle import needs_torch, one_line, torch

if torch is not None:
    import torch.nn.functional as TF

CASES = {  # name -> (fn(L, F), expected value, expected dtype), written once for L = engine or torch
    "clamp_int_float_bounds": (lambda L, F: L.tensor([1, 0, 2]).clamp(-0.5, 0.5), [0.5, 0.0, 0.5], "float32"),
    "clamp_int32_float_min": (lambda L, F: L.tensor([1, 2], dtype=L.int32).clamp(0.5), [1.0, 2.0], "float32"),
    "clamp_int_int_bounds": (lambda L, F: L.tensor([1, 5], dtype=L.int32).clamp(0, 3), [1, 3], "int32"),
    "clamp_bool_crossed_bounds": (lambda L, F: L.tensor([True, False]).clamp(min=0.5, max=-0.5), [-0.5, -0.5],
                                  "float32"),
    "clamp_bool_int_bounds": (lambda L, F: L.tensor([True, False]).clamp(0, 1), [1, 0], "int64"),
    "clamp_min_int_float": (lambda L, F: L.clamp_min(L.tensor([1, 2]), 1.5), [1.5, 2.0], "float32"),
    "clip_max_int_float": (lambda L, F: L.tensor([1, 0, 2]).clip(max=0.5), [0.5, 0.0, 0.5], "float32"),
    "hardtanh_int": (lambda L, F: F.hardtanh(L.tensor([1, -2, 3])), [1, -1, 1], "int64"),
    "hardtanh_int_cut_bounds": (lambda L, F: F.hardtanh(L.tensor([-1, -2, 2], dtype=L.int8), -1.5, 1.5), [-1, -1, 1],
                                "int8"),
    "relu6_int": (lambda L, F: F.relu6(L.tensor([1, -2, 8])), [1, 0, 6], "int64"),
    "relu6_int16": (lambda L, F: F.relu6(L.tensor([-1, 7], dtype=L.int16)), [0, 6], "int16"),
    "threshold_int": (lambda L, F: F.threshold(L.tensor([1, -2, 3]), 1, 5), [5, 5, 3], "int64"),
    # -1.5 cuts to -1, so -1 is not above it; -7.9 cuts to -7
    "threshold_int_cut": (lambda L, F: F.threshold(L.tensor([-1, -2, 2]), -1.5, -7.9), [-7, -7, 2], "int64"),
    "softsign_int": (lambda L, F: F.softsign(L.tensor([1, -2])), [0.5, -2 / 3], "float32"),
    "tanhshrink_int": (lambda L, F: F.tanhshrink(L.tensor([1, -2], dtype=L.int8)),
                       [1 - np.tanh(1), -2 - np.tanh(-2)], "float32"),
    "hardtanh_module_int": (lambda L, F: L.nn.Hardtanh(-2, 2)(L.tensor([1, -3, 8])), [1, -2, 2], "int64"),
    "pow_scalar_base_negative_exponents": (lambda L, F: L.pow(2, L.tensor([-1, 2])), [0, 4], "int64"),
    "pow_int_negative_exponents": (
        lambda L, F: L.pow(L.tensor([0, 1, -1, -1, 2, -3]), L.tensor([-1, -3, -3, -2, -1, 2])), [0, 1, -1, 1, 0, 9],
        "int64"),
    "pow_int8_operator": (lambda L, F: L.tensor([2, 3], dtype=L.int8) ** L.tensor([-1, 1], dtype=L.int8), [0, 3],
                          "int8"),
    "pow_negative_base": (lambda L, F: L.pow(-2, L.tensor([-1, 2, -2, 3])), [0, 4, 0, -8], "int64"),
    "pow_float_base_keeps_fractions": (lambda L, F: L.pow(2.0, L.tensor([-1, 2])), [0.5, 4.0], "float32"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_integer_input_gives_torchs_value_and_dtype(name):
    fn, expected, dtype = CASES[name]
    out = fn(engine, EF)
    assert out.dtype.name == dtype
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    if torch is not None:
        ref = fn(torch, TF)
        assert str(ref.dtype) == f"torch.{dtype}"
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6)


def test_in_place_integer_clips_keep_the_tensor():
    x = engine.tensor([-1, -2, 2])
    assert EF.hardtanh_(x, -1.5, 1.5) is x and x.tolist() == [-1, -1, 1]
    y = engine.tensor([-1, -2, 2])
    EF.threshold_(y, -1.5, 3)
    assert y.tolist() == [3, 3, 2]
    one_line(lambda: engine.tensor([1, 2]).clamp_(0.5), RuntimeError, "can't be cast")


def test_clipping_activations_refuse_bools_in_one_line():
    for fn in (EF.hardtanh, EF.relu6, EF.softsign):
        one_line(lambda fn=fn: fn(engine.tensor([True, False])), TypeError,
                 "expected a floating point tensor, got bool")


def test_integer_tensor_to_a_negative_python_exponent_is_refused_as_torch():
    one_line(lambda: engine.pow(engine.tensor([2, 3]), -1), RuntimeError, "Integers to negative integer powers")
    if torch is not None:
        with pytest.raises(RuntimeError, match="Integers to negative integer powers"):
            torch.pow(torch.tensor([2, 3]), -1)


REDUCTIONS = {
    "sum": lambda L, x, d: x.sum(dtype=d),
    "prod": lambda L, x, d: x.prod(dtype=d),
    "nansum": lambda L, x, d: x.nansum(dtype=d),
    "cumsum": lambda L, x, d: x.cumsum(0, dtype=d),
    "cumprod": lambda L, x, d: x.cumprod(0, dtype=d),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_integer_dtype_reduction_of_an_input_that_requires_grad_is_refused(name):
    fn = REDUCTIONS[name]
    x = engine.tensor([1.5, 2.0], requires_grad=True)
    one_line(lambda: fn(engine, x, engine.int64), RuntimeError,
             rf"^{name}\(\): autograd does not support dtype=int64 for an input that requires grad")
    # a floating dtype keeps the graph; without grad the integer result is computed as before
    assert fn(engine, x, engine.float64).requires_grad
    with engine.no_grad():
        assert fn(engine, x, engine.int64).dtype is engine.int64
    assert fn(engine, x.detach(), engine.int64).dtype is engine.int64
    if torch is not None:
        with pytest.raises(RuntimeError, match="Autograd not support dtype"):
            fn(torch, torch.tensor([1.5, 2.0], requires_grad=True), torch.int64)


@needs_torch
def test_integer_clamp_with_float_bounds_matches_torch_over_many_values():
    values = np.arange(-5, 6)
    for lo, hi in [(-2.5, 2.5), (-0.5, None), (None, 1.7), (3.5, -3.5)]:
        out = engine.tensor(values).clamp(lo, hi)
        ref = torch.tensor(values).clamp(lo, hi)
        assert str(ref.dtype) == f"torch.{out.dtype.name}"
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
