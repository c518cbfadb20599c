"""Division rounded down (// and div(rounding_mode='floor')) or toward zero (rounding_mode='trunc'), against PyTorch
and Python's own integer and float arithmetic: the graph it leaves, its values, its dtypes and its errors."""

import math

import numpy as np
import pytest

import engine
import engine.nn.functional as EF
from tests.engine.oracle import cuda_or_skip, needs_torch, one_line, torch

ROUNDED = {  # name -> fn(L, a, b), written once for L = engine or torch
    "floor": lambda L, a, b: L.div(a, b, rounding_mode="floor"),
    "trunc": lambda L, a, b: L.div(a, b, rounding_mode="trunc"),
    "floordiv": lambda L, a, b: a // b,
    "floor_divide": lambda L, a, b: L.floor_divide(a, b),
}
A = [3.0, -3.0, 5.5, -5.5, 1.0, 7.0, -7.0, 0.3]
B = [2.0, 2.0, -2.0, 2.5, 0.1, -0.7, 0.7, 0.1]


def _trunc(a: float, b: float) -> float:
    return float(math.trunc(a / b))


@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_rounding_div_of_floats_stays_on_the_graph_with_a_zero_gradient(mode):
    a = engine.tensor(A, requires_grad=True)
    b = engine.tensor(B, requires_grad=True)
    out = ROUNDED[mode](engine, a, b)
    assert out.requires_grad and out.grad_fn is not None
    (out * engine.tensor(np.arange(1.0, 9.0))).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.zeros(8))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(8))
    if torch is not None:
        ta, tb = torch.tensor(A, requires_grad=True), torch.tensor(B, requires_grad=True)
        ref = ROUNDED[mode](torch, ta, tb)
        assert ref.requires_grad
        np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())


@pytest.mark.parametrize("mode", ["floordiv", "floor_divide"])
def test_floor_divide_of_floats_raises_at_backward_as_torch(mode):
    for L in (engine, torch) if torch is not None else (engine,):
        x = L.tensor(A, requires_grad=True)
        out = ROUNDED[mode](L, x, 2)
        assert out.requires_grad  # the graph is not cut silently: backward says what is missing
        with pytest.raises(RuntimeError, match="floor_divide"):
            out.sum().backward()


def test_rounded_division_of_floats_equals_pythons():
    # floor as Python's //, exact where floor(a / b) rounds: 1.0 // 0.1 is 9.0 (a / b rounds up to 10.0)
    a, b = engine.tensor(A, dtype=engine.float64), engine.tensor(B, dtype=engine.float64)
    np.testing.assert_array_equal(ROUNDED["floor"](engine, a, b).numpy(), [x // y for x, y in zip(A, B)])
    np.testing.assert_array_equal((a // b).numpy(), [x // y for x, y in zip(A, B)])
    np.testing.assert_array_equal(ROUNDED["trunc"](engine, a, b).numpy(), [_trunc(x, y) for x, y in zip(A, B)])
    np.testing.assert_array_equal((engine.tensor([1.0, -2.0, 0.0]) // 0.0).numpy(), [math.inf, -math.inf, math.nan])


@needs_torch
@pytest.mark.parametrize("mode", sorted(ROUNDED))
@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "int8"])
def test_rounded_division_matches_torch(mode, dtype):
    a = np.array([7, -7, 5, -5, 16777217, 1, 0, -1]) if "int" in dtype else np.array(A)
    b = np.array([2, 2, -3, -3, 1, 7, 3, -9]) if "int" in dtype else np.array(B)
    if dtype == "int8":
        a[4] = 100
    for other in (b, 3, -2.5):  # a tensor, an int and a float (which makes integers floats)
        out = ROUNDED[mode](engine, engine.tensor(a, dtype=getattr(engine, dtype)),
                            engine.tensor(other) if isinstance(other, np.ndarray) else other)
        ref = ROUNDED[mode](torch, torch.tensor(a, dtype=getattr(torch, dtype)),
                            torch.tensor(other) if isinstance(other, np.ndarray) else other)
        assert out.dtype.name == str(ref.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(out.numpy(), ref.numpy())


def test_integer_trunc_division_is_exact_beyond_float_precision():
    big = 2**53 + 1  # through a float64 quotient it would round to 2**53
    out = engine.div(engine.tensor([big, -big, -7, 7]), engine.tensor([1, 1, 2, -2]), rounding_mode="trunc")
    assert out.dtype is engine.int64
    assert out.tolist() == [big, -big, -3, -3]


@pytest.mark.parametrize("mode", sorted(ROUNDED))
def test_integer_division_by_zero_raises_as_torch(mode):
    cases = [(engine.tensor([1, 2, 3]), engine.tensor([0, 1, 0])), (engine.tensor([1, 2]), 0)]
    for a, b in cases:
        one_line(lambda a=a, b=b: ROUNDED[mode](engine, a, b), ZeroDivisionError, r"integer division by zero")
    if torch is not None:
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            ROUNDED[mode](torch, torch.tensor([1, 2, 3]), torch.tensor([0, 1, 0]))


def test_rounded_division_of_bools_is_refused_as_torch():
    for L in (engine, torch) if torch is not None else (engine,):
        t = L.tensor([True, False])
        with pytest.raises((TypeError, NotImplementedError), match=r"(?i)bool"):
            t // t
        with pytest.raises((TypeError, NotImplementedError), match=r"(?i)bool"):
            L.div(t, t, rounding_mode="trunc")


def test_rounding_div_inside_a_second_order_gradient_contributes_zero():
    def grads(L):
        x = L.tensor([3.0, -3.0, 5.5], dtype=L.float64, requires_grad=True)
        y = (L.div(x, 2, rounding_mode="floor") * x * x).sum()
        (g,) = L.autograd.grad(y, x, create_graph=True)
        (h,) = L.autograd.grad(g.sum(), x)
        return g.detach().numpy(), h.numpy()

    g, h = grads(engine)
    x = np.array([3.0, -3.0, 5.5])
    np.testing.assert_allclose(g, 2 * x * np.floor(x / 2))  # d/dx of q(x) x^2 with q's derivative 0
    np.testing.assert_allclose(h, 2 * np.floor(x / 2))
    if torch is not None:
        for ours, theirs in zip((g, h), grads(torch)):
            np.testing.assert_allclose(ours, theirs)


def test_in_place_rounding_div_and_reflected_floordiv():
    x = engine.tensor([7.0, -7.0])
    x.div_(2, rounding_mode="floor")
    assert x.tolist() == [3.0, -4.0]
    assert (7 // engine.tensor([2, -2])).tolist() == [3, -4]


def test_rounded_division_integer_powers_and_empty_rows_on_cuda_match_cpu():
    """The array formulas of this change (floor and trunc division, integer powers, softmax and logsumexp over an
    empty dim) run on CuPy as they do on numpy."""
    cuda_or_skip()
    cases = [
        lambda d: engine.div(engine.tensor(A, device=d), engine.tensor(B, device=d), rounding_mode="floor"),
        lambda d: engine.tensor(A, device=d, dtype=engine.float64) // 0.1,
        lambda d: engine.div(engine.tensor([2**53 + 1, -7], device=d), engine.tensor([1, 2], device=d),
                             rounding_mode="trunc"),
        lambda d: engine.pow(engine.tensor([0, 1, -1, -1, 2], device=d), engine.tensor([-1, -3, -3, -2, 3], device=d)),
        lambda d: EF.log_softmax(engine.zeros(3, 0, device=d), 1),
        lambda d: engine.zeros(3, 0, device=d).logsumexp(1),
    ]
    for case in cases:
        cpu, gpu = case("cpu"), case("cuda")
        assert gpu.dtype is cpu.dtype and tuple(gpu.shape) == tuple(cpu.shape)
        np.testing.assert_array_equal(gpu.cpu().numpy(), cpu.numpy())
