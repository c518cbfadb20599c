"""Bitwise ops and the operators & | ^ ~ << >> (and their in-place forms) on integer and bool tensors, against torch:
values, dtypes, torch's shift rules and its errors for floating-point tensors."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import cuda_or_skip, needs_torch, torch

RNG = np.random.default_rng(3)
NAMES = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift"]


def _same(ours, theirs):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), f"{ours.dtype} != torch's {theirs.dtype}"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def both(fn):
    return fn(engine, engine.tensor), fn(torch, torch.tensor)


def test_every_name_exists():
    for name in [*NAMES, "bitwise_not"]:
        assert callable(getattr(engine, name)) and callable(getattr(engine.Tensor, name))
        assert callable(getattr(engine.Tensor, name + "_"))
    for dunder in ("and", "or", "xor", "lshift", "rshift"):
        for form in (f"__{dunder}__", f"__r{dunder}__", f"__i{dunder}__"):
            assert callable(getattr(engine.Tensor, form))


@needs_torch
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8"])
def test_binary_ops_match_torch_for_each_integer_dtype(name, dtype):
    a = RNG.integers(-100, 100, (3, 4))
    b = RNG.integers(-2, 12, (4,)) if "shift" in name else RNG.integers(-100, 100, (4,))
    if dtype == "uint8":
        a, b = np.abs(a), np.abs(b)
    _same(*both(lambda L, t: getattr(L, name)(t(a, dtype=getattr(L, dtype)), t(b, dtype=getattr(L, dtype)))))
    _same(*both(lambda L, t: getattr(L, name)(t(a, dtype=getattr(L, dtype)), 3)))  # a number takes the dtype
    _same(*both(lambda L, t: getattr(L, name)(5, t(b, dtype=getattr(L, dtype)))))


@needs_torch
def test_mixed_dtypes_bools_and_numbers_promote_as_torch():
    cases = [
        lambda L, t: L.bitwise_and(t([True, False]), t([True, True])),
        lambda L, t: L.bitwise_xor(t([True, False]), True),
        lambda L, t: L.bitwise_and(t([True, False]), 1),  # a bool tensor and an int give int64
        lambda L, t: L.bitwise_or(t([12, 5], dtype=L.int32), t([10, 3], dtype=L.uint8)),
        lambda L, t: L.bitwise_and(t([12, 5], dtype=L.int32), t([True, False])),
        lambda L, t: L.bitwise_or(t([12, 5], dtype=L.int8), 1000),  # 1000 wraps to int8, as torch
        lambda L, t: L.bitwise_and(t([True]), 300),
        lambda L, t: L.bitwise_left_shift(t([5]), t([True])),
        lambda L, t: L.bitwise_not(t([0, 5])), lambda L, t: L.bitwise_not(t([True, False])),
        lambda L, t: L.bitwise_not(t([0, 5], dtype=L.uint8)), lambda L, t: L.bitwise_not(t(3)),
        lambda L, t: L.bitwise_and(t([[1], [6]]), t([3, 7, 2])),  # broadcasting
    ]
    for case in cases:
        _same(*both(case))


@needs_torch
def test_shifts_past_the_width_follow_torch():
    cases = [
        lambda L, t: L.bitwise_left_shift(t([1, -3, 7]), t([64, 63, -1])),
        lambda L, t: L.bitwise_right_shift(t([-8, 8, -8, 8]), t([70, 70, -1, -1])),
        lambda L, t: L.bitwise_left_shift(t([1], dtype=L.uint8), 9),
        lambda L, t: L.bitwise_left_shift(t([1], dtype=L.int8), 7),
        lambda L, t: L.bitwise_right_shift(t([-1], dtype=L.int8), 3),
        lambda L, t: L.bitwise_right_shift(t([255], dtype=L.uint8), 8),
        lambda L, t: L.bitwise_right_shift(t([255, 128], dtype=L.uint8), -1),
    ]
    for case in cases:
        _same(*both(case))


@needs_torch
def test_operators_are_bitwise_on_integers_and_logical_on_bools():
    a, b = RNG.integers(-50, 50, (2, 3)), RNG.integers(0, 5, (3,))
    p, q = RNG.random((2, 3)) > 0.5, RNG.random(3) > 0.5
    cases = [
        lambda L, t: t(a) & t(b), lambda L, t: t(a) | t(b), lambda L, t: t(a) ^ t(b), lambda L, t: ~t(a),
        lambda L, t: t(a) << t(b), lambda L, t: t(a) >> t(b), lambda L, t: t(a) & 6, lambda L, t: 6 & t(a),
        lambda L, t: 7 | t(a), lambda L, t: 7 ^ t(a), lambda L, t: 3 << t(b), lambda L, t: 100 >> t(b),
        lambda L, t: t(p) & t(q), lambda L, t: t(p) | t(q), lambda L, t: t(p) ^ True, lambda L, t: ~t(p),
        lambda L, t: t(a) | t(p),
    ]
    for case in cases:
        _same(*both(case))


@needs_torch
def test_in_place_operators_and_methods_match_torch():
    a, b = RNG.integers(-50, 50, (2, 3)), RNG.integers(0, 5, (3,))
    for op in ("__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__"):
        ours, theirs = engine.tensor(a), torch.tensor(a)
        assert getattr(ours, op)(engine.tensor(b)) is ours
        getattr(theirs, op)(torch.tensor(b))
        _same(ours, theirs)
    for name in [n + "_" for n in NAMES]:
        ours, theirs = engine.tensor(a, dtype=engine.int32), torch.tensor(a, dtype=torch.int32)
        assert getattr(ours, name)(2) is ours
        getattr(theirs, name)(2)
        _same(ours, theirs)
    ours, theirs = engine.tensor([True, False]), torch.tensor([True, False])
    ours &= engine.tensor([True, True])
    theirs &= torch.tensor([True, True])
    _same(ours.bitwise_not_(), theirs.bitwise_not_())
    with pytest.raises(RuntimeError, match="can't be cast"):  # as torch: an int64 result does not fit a bool tensor
        ours |= engine.tensor([1, 2])


def test_results_carry_no_gradient():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    i = engine.tensor([3, 5])
    assert not engine.bitwise_and(i, (x > 1).long()).requires_grad
    assert engine.bitwise_xor(i, 1).grad_fn is None


@pytest.mark.parametrize("call, error, message", [
    (lambda: engine.bitwise_and(engine.tensor([1.0]), engine.tensor([1.0])), NotImplementedError,
     "bitwise_and: not implemented for float32 tensors; it takes integer and bool tensors"),
    (lambda: engine.bitwise_or(engine.tensor([1]), 1.5), NotImplementedError, "bitwise_or: not implemented for f"),
    (lambda: engine.bitwise_left_shift(engine.tensor([True]), engine.tensor([True])), NotImplementedError,
     "bitwise_left_shift: not implemented for bool tensors; it takes integer tensors"),
    (lambda: engine.bitwise_right_shift(engine.tensor([1.0]), 1), NotImplementedError, "not implemented for float32"),
    (lambda: engine.bitwise_not(engine.tensor([1.0])), NotImplementedError, "bitwise_not: not implemented for float32"),
    (lambda: engine.bitwise_and(1, 2), TypeError, r"bitwise_and\(\): expected a Tensor"),
    (lambda: ~engine.tensor([1.5]), TypeError, r"~ \(operator.invert\) is only implemented on integer and Boolean"),
    (lambda: engine.tensor([1.5]) & engine.tensor([1.0]), NotImplementedError, "bitwise_and: not implemented"),
    (lambda: engine.tensor([1.5]) << 1, NotImplementedError, "bitwise_left_shift: not implemented for float32"),
    (lambda: engine.tensor([1, 2]) & engine.tensor([1, 2, 3]), engine.ShapeError, r"bitwise_and.*\(2,\), \(3,\)"),
])
def test_errors_are_one_line(call, error, message):
    with pytest.raises(error, match=message) as err:
        call()
    assert "\n" not in str(err.value)


@pytest.mark.gpu
def test_cuda_bitwise_matches_cpu():
    cuda_or_skip()
    a, b = RNG.integers(-100, 100, (3, 4)), RNG.integers(-2, 70, (4,))
    for name in NAMES:
        cpu = getattr(engine, name)(engine.tensor(a), engine.tensor(b)).numpy()
        gpu = getattr(engine, name)(engine.tensor(a, device="cuda"), engine.tensor(b, device="cuda")).cpu().numpy()
        np.testing.assert_array_equal(gpu, cpu)
    x = engine.tensor(a, dtype=engine.int8, device="cuda")
    np.testing.assert_array_equal((~(x | 1000)).cpu().numpy(), ~(a.astype(np.int8) | np.int8(-24)))
