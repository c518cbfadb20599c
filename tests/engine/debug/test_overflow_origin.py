"""A non-finite origin whose inputs are finite says why: what overflowed (squares, products, a sum, exp), how large
the inputs were against the dtype's largest value, and what to do; or which edge of its domain the op met."""

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine.debug import Debugger, NonFiniteError, watch

pytestmark = pytest.mark.filterwarnings("ignore:overflow", "ignore:invalid value", "ignore:divide by zero")


def _alert(fn):
    """The one non-finite alert of Debugger("summary") around fn(), checked to be the one watch() raises."""
    with Debugger("summary") as dbg:
        fn()
    alerts = [a for a in dbg.alerts if a.kind.startswith("nonfinite")]
    assert len(alerts) == 1, [a.message for a in alerts]
    with pytest.raises(NonFiniteError) as info, watch():
        fn()
    assert info.value.alert.message.split("; ", 1)[1] == alerts[0].message.split("; ", 1)[1]
    return alerts[0]


def _full(value, shape=(8, 4), dtype=np.float32):
    return engine.tensor(np.full(shape, value, dtype))


def test_mse_loss_of_finite_inputs_near_1e20_says_the_squares_overflow_float32():
    pred, target = _full(1e20), _full(-1e19)
    alert = _alert(lambda: F.mse_loss(pred, target))
    assert alert.kind == "nonfinite_forward" and alert.op == "mse_loss"
    assert "its inputs are finite, but the sum of their squared differences overflows: its inputs reach 1e+20, " \
           "and float32 tops out at 3.4e+38" in alert.message
    assert "lower the learning rate or clip the gradients" in alert.message and "compute in float64" in alert.message


def test_exp_of_100_says_exp_overflows_above_its_limit():
    x = _full(100.0, (3,))
    alert = _alert(lambda: x.exp())
    assert alert.op == "exp"
    assert "its inputs are finite, but exp overflows: its input reaches 100, and exp of anything above 88.7 is " \
           "more than float32 holds (3.4e+38)" in alert.message and "Subtract the maximum first" in alert.message


@pytest.mark.parametrize(("fn", "op", "what"), [
    (lambda a, b: a * b, "mul", "their products overflow"),
    (lambda a, b: a @ b.T, "matmul", "their products overflow"),
    (lambda a, b: a ** 2, "pow", "their squares overflow"),
    (lambda a, b: (a * 1e18).sum(), "sum", "their sum overflows"),
    (lambda a, b: a / engine.full((8, 4), 1e-30), "div", "their quotients overflow"),
])
def test_each_kind_of_overflow_is_named(fn, op, what):
    a, b = _full(3e19), _full(-2e19)
    alert = _alert(lambda: fn(a, b))
    assert alert.op == op and f"but {what}: its inputs reach " in alert.message and "float32 tops out" in alert.message


def test_float64_overflow_names_its_own_limit_and_does_not_suggest_float64():
    x = _full(1e200, dtype=np.float64)
    alert = _alert(lambda: x * x)
    assert "its inputs reach 1e+200, and float64 tops out at 1.8e+308" in alert.message
    assert "compute in float64" not in alert.message


@pytest.mark.parametrize(("fn", "op", "why"), [
    (lambda x: (x - x).log(), "log", "log of 0 is -inf, and of a negative number NaN"),
    (lambda x: (-x).sqrt(), "sqrt", "sqrt of a negative number is NaN"),
    (lambda x: x / (x - x), "div", "a division by 0 gives inf, and 0/0 NaN"),
])
def test_the_edge_of_a_domain_is_no_overflow(fn, op, why):
    x = _full(1e20)  # large, yet nothing here overflows
    alert = _alert(lambda: fn(x))
    assert alert.op == op and f"its inputs are finite, but {why}: keep its input in range" in alert.message
    assert "overflow" not in alert.message.split("; ", 1)[1]  # (the file name says overflow)



def test_a_ctc_target_no_alignment_fits_says_so_and_names_zero_infinity():
    log_probs = engine.tensor(np.log(np.full((3, 2, 5), 0.2, np.float32)), requires_grad=True)  # 3 frames
    targets = engine.tensor([[1, 1, 2, 3], [1, 2, 0, 0]])  # the first needs 5 frames (a blank between the 1s)
    lengths = engine.tensor([3, 3]), engine.tensor([4, 2])
    alert = _alert(lambda: F.ctc_loss(log_probs, targets, *lengths, reduction="none"))
    assert alert.op == "ctc_loss" and "no alignment fits" in alert.message
    assert "pass zero_infinity=True" in alert.message and "clamp" not in alert.message
    with Debugger("summary") as dbg:
        F.ctc_loss(log_probs, targets, *lengths, reduction="none", zero_infinity=True)
    assert not dbg.alerts


@pytest.mark.filterwarnings("ignore:std\\(\\)")
def test_the_std_of_one_element_says_its_correction_divides_by_zero():
    returns = engine.tensor([1.5], requires_grad=True)  # a REINFORCE episode one step long
    alert = _alert(lambda: (returns - returns.mean()) / (returns.std() + 1e-8))
    assert alert.op == "std" and "divides by N - correction = 0" in alert.message
    assert "pass correction=0" in alert.message
