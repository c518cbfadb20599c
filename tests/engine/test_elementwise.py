"""Elementwise ops against finite differences and PyTorch."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, needs_torch, torch

ROOT = Path(__file__).resolve().parents[2]
POSITIVE = {"log", "sqrt", "rsqrt", "log1p"}
UNARY = ["neg", "exp", "log", "log1p", "sqrt", "rsqrt", "abs", "sin", "cos", "tanh", "sigmoid", "relu",
         "square", "reciprocal"]


@pytest.mark.parametrize("name", UNARY)
def test_unary(name):
    # keep away from kinks (abs, relu at 0) and poles so finite differences are meaningful
    x = np.random.default_rng(3).uniform(0.2, 2.0, (3, 4)) * np.where(np.arange(12).reshape(3, 4) % 2, 1, -1)
    if name in POSITIVE or name == "reciprocal":
        x = np.abs(x)
    check_grads(lambda t: getattr(t, name)(), [x])


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(2, 3, 4), (4,)], [(3, 1), (1, 4)], [(), (2, 3)]])
def test_binary_broadcast(op, shapes):
    check_grads(lambda a, b: getattr(a, op)(b), shapes)


def test_pow_both_sides():
    base = np.random.default_rng(0).uniform(0.5, 2.0, (3, 4))
    check_grads(lambda a, b: a ** b, [base, (3, 4)])
    check_grads(lambda a: a ** 3, [(3, 4)])
    check_grads(lambda a: 2.0 ** a, [(3, 4)])
    check_grads(lambda a: a ** 0.5, [base])


@pytest.mark.parametrize("expr", [
    lambda a: 2 - a, lambda a: 3 / a, lambda a: a * 2.5 + 1, lambda a: -a / 4,
    lambda a: a.clamp(-0.5, 0.5), lambda a: a.clamp(min=0.1), lambda a: a.clamp(max=-0.1),
])
def test_scalars_on_either_side(expr):
    x = np.random.default_rng(5).uniform(0.3, 2.0, (4, 3)) * np.array([1, -1, 1])
    check_grads(expr, [x])


def test_where_and_comparisons():
    check_grads(lambda a, b: engine.where(a > b, a, b * 2), [(3, 4), (3, 4)],
                torch_fn=lambda a, b: torch.where(a > b, a, b * 2))


@pytest.mark.parametrize("a,b", [
    (np.int64(1), 2.5), (np.int32(1), 2), (np.int32(1), np.int64(2)), (True, 1), (np.float32(1), np.float64(1)),
])
@needs_torch
def test_promotion_matches_torch(a, b):
    for dims_a, dims_b in [((2,), (2,)), ((2,), ()), ((), (2,))]:
        ta = np.full(dims_a, a, dtype=np.asarray(a).dtype)
        ea, pa = engine.tensor(ta), torch.tensor(ta)
        other = b if isinstance(b, bool | int | float) and not isinstance(b, np.generic) else np.full(dims_b, b)
        eb = other if not isinstance(other, np.ndarray) else engine.tensor(other)
        pb = other if not isinstance(other, np.ndarray) else torch.tensor(other)
        for op in ("__add__", "__mul__", "__truediv__"):
            ours, ref = getattr(ea, op)(eb), getattr(pa, op)(pb)
            assert ours.dtype.name == str(ref.dtype).removeprefix("torch."), (op, dims_a, dims_b, a, b)


def test_python_scalar_keeps_tensor_dtype():
    x = engine.ones(3, dtype=engine.float64)
    assert (x * 2.5).dtype is engine.float64
    assert (engine.ones(3) * 2).dtype is engine.float32
    assert (engine.arange(3) * 2.0).dtype is engine.float32
    assert (engine.arange(3) / 2).dtype is engine.float32


def test_comparisons_have_no_grad():
    x = engine.randn(3, requires_grad=True)
    assert not (x > 0).requires_grad
    assert (x > 0).dtype is engine.bool


def test_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"add.*\(2, 3\).*\(4,\)"):
        engine.ones(2, 3) + engine.ones(4)


def test_ops_make_inf_and_nan_silently_as_in_pytorch():
    # in a fresh interpreter where every RuntimeWarning is an error (pytest manages warnings itself)
    code = ("import engine\n"
            "x = engine.tensor([0.0, -1.0, 2.0], requires_grad=True)\n"
            "y = engine.log(x)\n"
            "(y * engine.tensor([1.0, 1.0, 0.0])).sum().backward()\n"
            "print(y.tolist(), x.grad.tolist())\n")
    run = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    # numpy's "divide by zero encountered in log" would point into the engine, not at the user's line
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["[-inf,", "nan,", "0.6931471824645996]", "[inf,", "-1.0,", "0.0]"]
