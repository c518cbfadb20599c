"""torch's pointwise names the engine lacked (tan, asinh..., exp2, frac, sgn, sinc, fmax, heaviside, gcd, float_power,
torch's aliases, in-place methods and top-level in-place functions): values, dtypes, gradients and second derivatives
against torch and finite differences, and torch's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, cuda_or_skip, finite_difference_check, lib, needs_torch, torch, torch_check
from tests.engine.second_order import second_order_tests

RNG = np.random.default_rng(11)
NAN, INF = math.nan, math.inf


def _same(ours, theirs, rtol=1e-12, atol=1e-14):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), f"{ours.dtype} != torch's {theirs.dtype}"
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol, equal_nan=True)


def both(fn, *args):
    """fn(L, t) run with (engine, engine.tensor) and (torch, torch.tensor)."""
    return fn(engine, engine.tensor, *args), fn(torch, torch.tensor, *args)


# ---- every name exists -------------------------------------------------------------------------------------
FUNCTIONS = ["tan", "asinh", "acosh", "atanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh",
    "arctan2", "exp2", "frac", "sgn", "signbit", "sinc", "rad2deg", "deg2rad", "float_power", "positive", "rsub",
    "heaviside", "fmax", "fmin", "gcd", "lcm", "isposinf", "isneginf", "isreal", "igamma", "igammac", "multiply",
    "subtract", "divide", "true_divide", "negative", "absolute", "clip", "greater", "less", "greater_equal",
    "less_equal", "not_equal", "swapdims", "moveaxis", "ger"]
METHODS = [n for n in FUNCTIONS if n != "rsub"]
IN_PLACE = ["sinh_", "cosh_", "asin_", "acos_", "atan_", "rsqrt_", "log1p_", "tan_", "asinh_", "acosh_", "atanh_",
    "arcsin_", "arccos_", "arctan_", "arcsinh_", "arccosh_", "arctanh_", "arctan2_", "exp2_", "frac_", "sgn_", "eq_",
    "ne_", "lt_", "le_", "gt_", "ge_", "logical_and_", "logical_or_", "logical_xor_", "logical_not_", "clip_",
    "absolute_", "negative_", "multiply_", "subtract_", "divide_", "true_divide_", "greater_", "greater_equal_",
    "less_", "less_equal_", "not_equal_", "float_power_", "heaviside_", "gcd_", "lcm_", "xlogy_", "deg2rad_",
    "rad2deg_", "sinc_", "igamma_", "igammac_", "floor_divide_", "cumsum_", "mvlgamma_"]


def test_every_name_exists_on_engine_and_tensor():
    assert [n for n in FUNCTIONS if not callable(getattr(engine, n, None))] == []
    assert [n for n in METHODS + IN_PLACE if not callable(getattr(engine.Tensor, n, None))] == []


@needs_torch
def test_torch_top_level_in_place_functions_exist_where_the_engine_has_the_method():
    names = [n for n in dir(torch) if n.endswith("_") and not n.startswith("_") and hasattr(engine.Tensor, n)]
    assert len(names) > 50
    assert [n for n in names if not callable(getattr(engine, n, None))] == []


# ---- unary math ------------------------------------------------------------------------------------------
def _open_interval(shape, lo, hi):
    return RNG.uniform(lo, hi, shape)


UNARY = {  # name -> inputs inside its domain, away from where it is not differentiable
    "tan": _open_interval((3, 4), -1.4, 1.4),
    "asinh": RNG.standard_normal((3, 4)) * 3,
    "acosh": _open_interval((3, 4), 1.1, 5.0),
    "atanh": _open_interval((3, 4), -0.9, 0.9),
    "exp2": RNG.standard_normal((3, 4)) * 3,
    "frac": RNG.standard_normal((3, 4)) * 5,
    "sgn": RNG.standard_normal((3, 4)),
    "sinc": np.concatenate([RNG.standard_normal(11) * 2, [0.0]]).reshape(3, 4),
    "deg2rad": RNG.standard_normal((3, 4)) * 90,
    "rad2deg": RNG.standard_normal((3, 4)),
}


@needs_torch
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_math_matches_torch_in_float64(name):
    x = UNARY[name]
    ours, theirs = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = getattr(engine, name)(ours), getattr(torch, name)(theirs)
    _same(out, ref, rtol=1e-13)
    r = RNG.standard_normal(x.shape)
    (out * engine.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(force=True), rtol=1e-12, atol=1e-14)  # sgn's: zeros


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_math_matches_finite_differences_and_torch_in_float32(name):
    x = UNARY[name]
    if name == "frac":  # away from the jumps at integers, where central differences straddle one
        x = np.floor(x) + np.clip(x - np.floor(x), 0.1, 0.9)
    if name == "sgn":  # torch's gradient is a ZeroTensor, which its oracle cannot read
        finite_difference_check(lambda t: t.sgn(), [x])
    else:
        check_grads(lambda t: getattr(t, name)(), [x])


@needs_torch
def test_unary_dtypes_follow_torch():
    cases = [
        lambda L, t: L.tan(t([1, 2])), lambda L, t: L.asinh(t([1, 2], dtype=L.int32)), lambda L, t: L.exp2(t([True])),
        lambda L, t: L.sinc(t([0, 1, 2])), lambda L, t: L.rad2deg(t([1, 2])), lambda L, t: L.deg2rad(t([1, 2])),
        lambda L, t: L.sgn(t([1, -2, 0])), lambda L, t: L.sgn(t([True, False])), lambda L, t: L.sgn(t([-0.5, 0.0])),
        lambda L, t: L.frac(t([1.5, -2.25], dtype=L.float16)), lambda L, t: L.tan(t([0.5], dtype=L.float64)),
        lambda L, t: L.signbit(t([1, -2, 0])), lambda L, t: L.signbit(t([-0.0, 0.0, -NAN, -INF])),
        lambda L, t: L.signbit(t([True])), lambda L, t: L.isposinf(t([1.0, INF, -INF, NAN])),
        lambda L, t: L.isneginf(t([1.0, INF, -INF])), lambda L, t: L.isposinf(t([1, 2])),
        lambda L, t: L.isreal(t([1, 2])), lambda L, t: L.isreal(t([1.0, NAN])),
    ]
    for case in cases:
        _same(*both(case), rtol=1e-6)


@needs_torch
def test_sinc_is_one_at_zero_and_its_slope_is_zero_there():
    x = engine.tensor([0.0, 1.0, -0.5], dtype=engine.float64, requires_grad=True)
    y = engine.sinc(x)
    y.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), [1.0, 0.0, 2 / math.pi], atol=1e-16)
    np.testing.assert_allclose(x.grad.numpy()[0], 0.0)


# ---- binary math -----------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("name", ["fmax", "fmin"])
def test_fmax_fmin_nan_rules_and_gradients_match_torch(name):
    a = np.array([1.0, 2.0, NAN, 3.0, NAN, -1.0])
    b = np.array([1.0, NAN, 1.0, 4.0, NAN, -2.0])
    ours = [engine.tensor(v, requires_grad=True) for v in (a, b)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (a, b)]
    out, ref = getattr(engine, name)(*ours), getattr(torch, name)(*theirs)
    _same(out, ref)
    out.sum().backward()
    ref.sum().backward()
    for o, t in zip(ours, theirs):  # ties go to input, a NaN loses
        np.testing.assert_array_equal(o.grad.numpy(), t.grad.numpy())
    fn = getattr(engine, name), getattr(torch, name)
    for x, y in (([1, 5], [2, 1]), ([1, 5], [2.0]), ([True, False], [False, False])):
        _same(fn[0](engine.tensor(x), engine.tensor(y)), fn[1](torch.tensor(x), torch.tensor(y)))


@pytest.mark.parametrize("name", ["fmax", "fmin"])
def test_fmax_fmin_broadcast_and_match_finite_differences(name):
    check_grads(lambda a, b: getattr(a, name)(b), [(3, 1, 4), (2, 4)])


@needs_torch
def test_heaviside_matches_torch_and_has_no_derivative():
    cases = [
        lambda L, t: L.heaviside(t([-1.0, 0.0, 2.0, NAN, -0.0]), t([0.5])),
        lambda L, t: L.heaviside(t([[-1], [0], [2]]), t([7, 8])),
        lambda L, t: L.heaviside(t([True, False]), t([True])),
        lambda L, t: t([0.0, 3.0]).heaviside(t([2.0, 2.0])),
    ]
    for case in cases:
        _same(*both(case))
    x = engine.tensor([-1.0, 0.0], requires_grad=True)
    y = engine.heaviside(x, engine.tensor([0.5]))
    assert y.requires_grad
    with pytest.raises(NotImplementedError, match="heaviside: the derivative is not implemented"):
        y.sum().backward()


@needs_torch
def test_gcd_lcm_match_torch():
    a, b = RNG.integers(-60, 60, (4, 5)), RNG.integers(-60, 60, (5,))
    for name in ("gcd", "lcm"):
        for da, db in (("int64", "int64"), ("int32", "int64"), ("int16", "int16")):  # int32 and int64 give int64
            _same(*both(lambda L, t, name=name, da=da, db=db: getattr(L, name)(t(a, dtype=getattr(L, da)),
                                                                              t(b, dtype=getattr(L, db)))))
    _same(*both(lambda L, t: L.gcd(t([12, -18, 0, 0]), t([8, 12, 5, 0]))))


@needs_torch
def test_float_power_computes_in_float64_with_torch_gradients():
    cases = [
        lambda L, t: L.float_power(t([1, 2]), 2), lambda L, t: L.float_power(2, t([1, 2])),
        lambda L, t: L.float_power(t([1.0, 2.0]), t([2, 3])), lambda L, t: L.float_power(t([4.0]), 0.5),
        lambda L, t: t([1.5, 2.0]).float_power(t([3.0], dtype=L.float16)),
    ]
    for case in cases:
        _same(*both(case))
    a, b = RNG.uniform(0.5, 2.0, (2, 3)).astype(np.float32), RNG.standard_normal(3).astype(np.float32)
    torch_check(lambda x, y: lib(x).float_power(x, y), [a, b])
    finite_difference_check(lambda x, y: lib(x).float_power(x, y), [a, b])
    x = engine.tensor(a, requires_grad=True)
    engine.float_power(x, 2).sum().backward()
    assert x.grad.dtype == engine.float32  # the gradient comes back in the input's dtype


@needs_torch
def test_positive_and_rsub_match_torch():
    x = engine.tensor([1.0, -2.0])
    assert engine.positive(x) is x and +x is x
    cases = [
        lambda L, t: L.rsub(t([1, 2]), 5), lambda L, t: L.rsub(t([1, 2]), t([5, 5]), alpha=2),
        lambda L, t: L.rsub(t([1.0, 2.0]), 5, alpha=2), lambda L, t: L.rsub(t([1.0, 2.0]), t([[1.0], [3.0]])),
        lambda L, t: L.positive(t([1, 2], dtype=L.int8)),
    ]
    for case in cases:
        _same(*both(case))
    check_grads(lambda a, b: lib(a).rsub(a, b, alpha=3), [(2, 3), (3,)])


@needs_torch
def test_aliases_match_their_ops():
    a, b = RNG.uniform(-0.9, 0.9, (2, 3)), RNG.uniform(1.1, 3, (2, 3))
    c = b[::-1].copy()
    pairs = [
        ("arcsin", a), ("arccos", a), ("arctan", a), ("arcsinh", a), ("arccosh", b), ("arctanh", a),
    ]
    for name, x in pairs:
        _same(getattr(engine, name)(engine.tensor(x)), getattr(torch, name)(torch.tensor(x)))
        _same(getattr(engine.tensor(x), name)(), getattr(torch.tensor(x), name)())
    cases = [
        lambda L, t: L.arctan2(t(a), t(b)), lambda L, t: L.multiply(t([1, 2]), 3), lambda L, t: L.subtract(t(a), t(b)),
        lambda L, t: L.divide(t([1, 2]), 2), lambda L, t: L.true_divide(t(a), t(b)), lambda L, t: L.negative(t(a)),
        lambda L, t: L.absolute(t(a)), lambda L, t: L.clip(t(a), -0.5, 0.5), lambda L, t: L.greater(t(a), 0),
        lambda L, t: L.less(t(a), t(b)), lambda L, t: L.greater_equal(t(a), 0.1), lambda L, t: L.less_equal(t(a), 0),
        lambda L, t: L.not_equal(t([1, 2]), 2), lambda L, t: L.swapdims(t(a), 0, 1),
        lambda L, t: L.moveaxis(t(np.zeros((2, 3, 4))), 0, -1), lambda L, t: L.ger(t(a[0]), t(b[1])),
        lambda L, t: L.igamma(t(b), t(c)), lambda L, t: L.igammac(t(b), t(c)),
        lambda L, t: t(b).igamma(t(c)),
    ]
    for case in cases:
        _same(*both(case))


# ---- in-place forms --------------------------------------------------------------------------------------
IN_PLACE_CASES = {  # name -> (starting values, arguments)
    "sinh_": ([0.5, -1.0], ()), "cosh_": ([0.5, -1.0], ()), "asin_": ([0.5, -0.2], ()), "acos_": ([0.5, -0.2], ()),
    "atan_": ([0.5, -3.0], ()), "rsqrt_": ([0.5, 4.0], ()), "log1p_": ([0.5, 3.0], ()), "tan_": ([0.5, -1.0], ()),
    "asinh_": ([0.5, -3.0], ()), "acosh_": ([1.5, 3.0], ()), "atanh_": ([0.5, -0.2], ()), "arcsin_": ([0.5, 0.1], ()),
    "arctan2_": ([0.5, -3.0], ([1.0, -1.0],)), "exp2_": ([0.5, -3.0], ()), "frac_": ([2.5, -3.25], ()),
    "sgn_": ([0.5, -3.0], ()), "sinc_": ([0.5, 0.0], ()), "deg2rad_": ([90.0, -3.0], ()), "rad2deg_": ([1.0, -3.0], ()),
    "eq_": ([1.0, 2.0], ([1.0, 3.0],)), "lt_": ([1.0, 2.0], (1.5,)), "greater_equal_": ([1.0, 2.0], (1.5,)),
    "not_equal_": ([1.0, 2.0], (2.0,)), "logical_and_": ([1.0, 0.0], ([2.0, 2.0],)), "logical_not_": ([1.0, 0.0], ()),
    "logical_xor_": ([1.0, 0.0], ([1.0, 1.0],)), "clip_": ([1.0, 5.0], (2.0, 3.0)), "absolute_": ([-1.0, 2.0], ()),
    "negative_": ([-1.0, 2.0], ()), "multiply_": ([-1.0, 2.0], (3.0,)), "subtract_": ([-1.0, 2.0], ([3.0, 1.0],)),
    "divide_": ([-1.0, 2.0], (4.0,)), "true_divide_": ([-1.0, 2.0], (4.0,)), "heaviside_": ([-1.0, 0.0], ([0.5],)),
    "igamma_": ([1.0, 2.0], ([0.5, 1.0],)), "igammac_": ([1.0, 2.0], ([0.5, 1.0],)), "xlogy_": ([1.0, 2.0], (3.0,)),
    "floor_divide_": ([7.0, -7.0], (2.0,)), "cumsum_": ([1.0, 2.0], (0,)), "mvlgamma_": ([2.5, 3.0], (2,)),
}


@needs_torch
@pytest.mark.parametrize("name", list(IN_PLACE_CASES))
def test_in_place_methods_match_torch(name):
    values, args = IN_PLACE_CASES[name]
    ours, theirs = engine.tensor(values), torch.tensor(values)
    assert getattr(ours, name)(*(engine.tensor(a) if isinstance(a, list) else a for a in args)) is ours
    getattr(theirs, name)(*(torch.tensor(a) if isinstance(a, list) else a for a in args))
    _same(ours, theirs, rtol=1e-6)


@needs_torch
def test_integer_in_place_methods_match_torch():
    for name, args in (("gcd_", ([4, 6],)), ("lcm_", ([4, 6],)), ("sgn_", ()), ("eq_", (2,)), ("multiply_", (3,))):
        ours, theirs = engine.tensor([6, -2]), torch.tensor([6, -2])
        getattr(ours, name)(*(engine.tensor(a) if isinstance(a, list) else a for a in args))
        getattr(theirs, name)(*(torch.tensor(a) if isinstance(a, list) else a for a in args))
        _same(ours, theirs)
    with pytest.raises(RuntimeError, match="can't be cast"):  # as torch: a float result does not fit an int tensor
        engine.tensor([1, 2]).tan_()


@needs_torch
def test_float_power_in_place_needs_a_float64_tensor():
    x, y = engine.tensor([1.0, 2.0], dtype=engine.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert x.float_power_(engine.tensor([2.0, 3.0])) is x
    _same(x, y.float_power_(torch.tensor([2.0, 3.0])))
    with pytest.raises(RuntimeError, match=r"^the base given to float_power_ has dtype float32 but .* float64"):
        engine.tensor([1.0, 2.0]).float_power_(2)


@needs_torch
def test_in_place_method_records_the_gradient():
    a = RNG.uniform(-1, 1, (2, 3))
    for L in (engine, torch):
        x = L.tensor(a, requires_grad=True)
        y = x * 1
        y.sinc_().tan_().sum().backward()  # sinc keeps its input (copied before the write), tan its output
        if L is engine:
            ours = x.grad.numpy()
    np.testing.assert_allclose(ours, x.grad.numpy(), rtol=1e-12)


@needs_torch
def test_top_level_in_place_functions_apply_the_method():
    for name, values, args in (("exp_", [0.5, 1.0], ()), ("tan_", [0.5, 1.0], ()), ("clamp_", [0.5, 2.0], (0.0, 1.0)),
                               ("arcsinh_", [0.5, 2.0], ()), ("fill_", [0.5, 2.0], (3.0,)), ("zero_", [0.5, 2.0], ()),
                               ("xlogy_", [0.5, 2.0], (2.0,)), ("frac_", [0.5, 2.25], ()), ("gcd_", [4, 6], None)):
        ours, theirs = engine.tensor(values), torch.tensor(values)
        if args is None:
            args_e, args_t = (engine.tensor([6, 4]),), (torch.tensor([6, 4]),)
        else:
            args_e = args_t = args
        assert getattr(engine, name)(ours, *args_e) is ours
        getattr(torch, name)(theirs, *args_t)
        _same(ours, theirs, rtol=1e-6)


# ---- errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda: engine.frac(engine.tensor([1, 2])), NotImplementedError, "frac: not implemented for int64"),
    (lambda: engine.fmax(engine.tensor([1.0]), 2.0), TypeError, r"fmax\(\): argument 'other' \(position 2\) must be"),
    (lambda: engine.fmin(engine.tensor([1.0]), 2), TypeError, r"fmin\(\): argument 'other'"),
    (lambda: engine.heaviside(engine.tensor([1.0]), 0.5), TypeError, r"heaviside\(\): argument 'values'"),
    (lambda: engine.heaviside(engine.tensor([1.0]), engine.tensor([1])), RuntimeError,
     "heaviside is not yet implemented for tensors with different dtypes"),
    (lambda: engine.gcd(engine.tensor([1.0]), engine.tensor([2.0])), NotImplementedError, "gcd: not implemented for "
     "float32"),
    (lambda: engine.lcm(engine.tensor([True]), engine.tensor([True])), NotImplementedError, "lcm: not implemented for "
     "bool"),
    (lambda: engine.gcd(engine.tensor([12]), 8), TypeError, r"gcd\(\): argument 'other' \(position 2\) must be Tensor"),
    (lambda: engine.positive(engine.tensor([True])), RuntimeError, "The `\\+` operator, on a bool tensor"),
    (lambda: +engine.tensor([True]), RuntimeError, "The `\\+` operator, on a bool tensor"),
    (lambda: engine.rsub(engine.tensor([True]), engine.tensor([True])), RuntimeError, "rsub: subtraction with two"),
    (lambda: engine.float_power(2, 3), TypeError, r"float_power\(\): expected a Tensor"),
    (lambda: engine.fmax(engine.ones(2), engine.ones(3)), engine.ShapeError, r"fmax.*\(2,\), \(3,\)"),
])
def test_errors_are_one_line(call, error, message):
    with pytest.raises(error, match=message) as err:
        call()
    assert "\n" not in str(err.value)


# ---- second derivatives ----------------------------------------------------------------------------------
def _inside(L, x, lo, hi):
    """x squeezed into (lo, hi) smoothly, so random inputs stay in an op's domain."""
    return lo + (hi - lo) * L.sigmoid(x)


SECOND_ORDER = {
    "tan": (lambda L, F, a: L.tan(_inside(L, a, -1.2, 1.2)) * a, [(2, 3)]),
    "asinh": (lambda L, F, a: L.asinh(a * 2) * a, [(2, 3)]),
    "acosh": (lambda L, F, a: L.acosh(_inside(L, a, 1.2, 4.0)) * a, [(2, 3)]),
    "atanh": (lambda L, F, a: L.atanh(_inside(L, a, -0.9, 0.9)) * a, [(2, 3)]),
    "exp2": (lambda L, F, a: L.exp2(a) * a, [(2, 3)]),
    "frac": (lambda L, F, a: L.frac(a * 0.3) * a, [(2, 3)]),
    "sgn": (lambda L, F, a: L.sgn(a) * a * a, [(2, 3)]),
    "sinc": (lambda L, F, a: L.sinc(a * 1.5) * a, [(2, 3)]),
    "deg2rad": (lambda L, F, a: L.deg2rad(a * a), [(2, 3)]),
    "rad2deg": (lambda L, F, a: L.rad2deg(a) * a, [(2, 3)]),
    "fmax": (lambda L, F, a, b: L.fmax(a * a, b) * b, [(2, 3), (3,)]),
    "fmin": (lambda L, F, a, b: L.fmin(a, b * b) * a, [(2, 3), (2, 3)]),
    "float_power": (lambda L, F, a, b: L.float_power(_inside(L, a, 0.5, 2.0), b), [(2, 3), (2, 3)]),
    "rsub": (lambda L, F, a, b: L.rsub(a * b, b, alpha=2) * a, [(2, 3), (3,)]),
}


test_second_order_matches_torch, test_second_order_matches_finite_differences = second_order_tests(
    SECOND_ORDER, no_differences=("frac",))


@pytest.mark.gpu
def test_cuda_pointwise_port_matches_cpu():
    cuda_or_skip()
    x = RNG.uniform(-0.9, 0.9, (3, 4))
    for name in ("tan", "asinh", "atanh", "exp2", "frac", "sgn", "sinc", "deg2rad", "rad2deg", "signbit", "isposinf"):
        cpu = getattr(engine, name)(engine.tensor(x)).numpy()
        gpu = getattr(engine, name)(engine.tensor(x, device="cuda")).cpu().numpy()
        np.testing.assert_allclose(gpu, cpu, rtol=1e-12, atol=1e-15)
    for device in ("cpu", "cuda"):
        a = engine.tensor(x, device=device, requires_grad=True)
        b = engine.tensor(x[::-1].copy(), device=device)
        (engine.sinc(a) + engine.fmax(a, b) + engine.float_power(a.abs() + 1, 2)).sum().backward()
        if device == "cpu":
            expected = a.grad.numpy()
        else:
            np.testing.assert_allclose(a.grad.cpu().numpy(), expected, rtol=1e-12)
    i = engine.tensor([12, -18, 7], device="cuda")
    np.testing.assert_array_equal(engine.gcd(i, engine.tensor([8, 12, 0], device="cuda")).cpu().numpy(), [4, 6, 7])
