"""torch's pointwise math the engine lacked: logaddexp(2), hypot, copysign, nextafter, frexp, ldexp, renorm and the
trapezoid rule; values, dtypes, broadcasting and gradients against torch (float64) and finite differences, and
second derivatives (create_graph=True) of the ops with their own backward."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
from tests.engine.oracle import finite_difference_check, lib, needs_torch, torch

RNG = np.random.default_rng(5)


def against_torch(fn, *arrays, wrt=None, rtol=1e-10, atol=1e-12):
    """fn on engine and on torch tensors of the same arrays: equal values, dtype, shape and gradients."""
    if torch is None:
        pytest.skip("PyTorch is not installed")
    wrt = [i for i, a in enumerate(arrays) if np.asarray(a).dtype.kind == "f"] if wrt is None else wrt
    ours = [engine.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out, ref = fn(*ours), fn(*theirs)
    assert tuple(out.shape) == tuple(ref.shape)
    assert out.dtype.name == str(ref.dtype).removeprefix("torch.")
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=rtol, atol=atol)
    if not wrt or not ref.requires_grad:  # torch's result of an empty reduction, say, has no graph
        return out
    r = RNG.standard_normal(tuple(out.shape))
    (out * engine.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    for i in wrt:
        expected = theirs[i].grad
        expected = np.zeros(arrays[i].shape) if expected is None else expected.numpy()
        got = ours[i].grad
        np.testing.assert_allclose(np.zeros(arrays[i].shape) if got is None else got.numpy(), expected,
                                   rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")
    return out


BINARY = {
    "logaddexp": lambda a, b: lib(a).logaddexp(a, b),
    "logaddexp2": lambda a, b: lib(a).logaddexp2(a, b),
    "hypot": lambda a, b: lib(a).hypot(a, b),
    "copysign": lambda a, b: lib(a).copysign(a, b),
    "nextafter": lambda a, b: lib(a).nextafter(a, b),
    "ldexp": lambda a, b: lib(a).ldexp(a, b),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_math_matches_torch_with_broadcasting(name):
    a, b = RNG.standard_normal((3, 1, 4)), RNG.standard_normal((2, 4))
    against_torch(BINARY[name], a, b)
    against_torch(BINARY[name], a[0, 0, 0].copy(), b)  # a 0-d input
    against_torch(BINARY[name], np.zeros((0, 4)), b[:1])  # an empty one


@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2", "hypot", "copysign", "ldexp"])
def test_binary_math_matches_finite_differences(name):
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3,))
    wrt = [0] if name == "copysign" else None  # copysign is flat in `other`: its gradient is 0 there
    finite_difference_check(BINARY[name], [a, b], wrt=wrt)


@needs_torch
def test_methods_and_in_place_variants_match_torch():
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    for name in ("logaddexp", "logaddexp2", "hypot", "copysign", "nextafter", "ldexp"):
        np.testing.assert_allclose(getattr(engine.tensor(a), name)(engine.tensor(b)).numpy(),
                                   getattr(torch.tensor(a), name)(torch.tensor(b)).numpy(), rtol=1e-15)
    for name in ("hypot_", "copysign_", "nextafter_", "ldexp_"):
        x, y = engine.tensor(a), torch.tensor(a)
        assert getattr(x, name)(engine.tensor(b)) is x
        getattr(y, name)(torch.tensor(b))
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-15)
    x, y = engine.tensor(a), torch.tensor(a)
    x.renorm_(2, 0, 1.0)
    y.renorm_(2, 0, 1.0)
    np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-12)
    mantissa, exponent = engine.tensor(a).frexp()
    np.testing.assert_array_equal(mantissa.numpy(), torch.tensor(a).frexp().mantissa.numpy())
    np.testing.assert_array_equal(exponent.numpy(), torch.tensor(a).frexp().exponent.numpy())
    with pytest.raises(RuntimeError, match="can't be cast"):  # copysign gives floats, as torch's refusal
        engine.tensor([1, 2]).copysign_(engine.tensor([-1, 1]))


@needs_torch
def test_logaddexp_is_stable_for_large_and_infinite_inputs():
    inf = math.inf
    a = np.array([-inf, inf, 1000.0, -inf, -1000.0, 30.0, 1e308])
    b = np.array([-inf, inf, 1000.0, 3.0, -1000.0, -30.0, 1e308])
    for name in ("logaddexp", "logaddexp2"):
        ours = getattr(engine, name)(engine.tensor(a, requires_grad=True), engine.tensor(b))
        theirs = getattr(torch, name)(torch.tensor(a), torch.tensor(b))
        np.testing.assert_allclose(ours.detach().numpy(), theirs.numpy(), rtol=1e-15)
    x, y = engine.tensor(a, requires_grad=True), engine.tensor(b, requires_grad=True)
    engine.logaddexp(x, y).sum().backward()
    # torch's formula gives NaN where both are -inf or both +inf; the limit along a == b is an even split
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.5, 0.5, 0.0, 0.5, 1.0, 0.5], atol=1e-13)
    np.testing.assert_allclose(y.grad.numpy(), [0.5, 0.5, 0.5, 1.0, 0.5, 0.0, 0.5], atol=1e-13)
    f32 = engine.logaddexp(engine.tensor([88.0, -200.0]), engine.tensor([88.0, -201.0]))
    assert f32.dtype == engine.float32 and np.isfinite(f32.numpy()).all()


@needs_torch
def test_hypot_does_not_overflow_and_its_gradient_is_zero_at_the_origin():
    a = engine.tensor([1e200, 0.0, 3.0], dtype=engine.float64, requires_grad=True)
    b = engine.tensor([1e200, 0.0, 4.0], dtype=engine.float64, requires_grad=True)
    out = engine.hypot(a, b)
    np.testing.assert_allclose(out.detach().numpy(), [math.sqrt(2) * 1e200, 0.0, 5.0], rtol=1e-15)
    out.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [math.sqrt(0.5), 0.0, 0.6], rtol=1e-15)  # torch: NaN at 0
    np.testing.assert_allclose(b.grad.numpy(), [math.sqrt(0.5), 0.0, 0.8], rtol=1e-15)


@needs_torch
def test_result_dtypes_follow_torch():
    T = torch.tensor
    cases = [
        lambda L, t: L.copysign(t([1, 2]), t([-1, 2])),  # integers give float32
        lambda L, t: L.copysign(t([1, 2], dtype=L.int32), -1.0),
        lambda L, t: L.copysign(t([1.0, 2.0]), t([-1.0], dtype=L.float64)),
        lambda L, t: L.ldexp(t([1, 2]), t([3])),
        lambda L, t: L.ldexp(t([1.0, 1.0, 1.0], dtype=L.float64), t([200, -200, 1100])),  # exact, no float32 2**200
        lambda L, t: L.ldexp(t([1.0]), t([1.5])),
        lambda L, t: L.ldexp(t([1.0], dtype=L.float16), t([3])),
        lambda L, t: L.ldexp(t([1.0], dtype=L.float16), t([3.0], dtype=L.float64)),
        lambda L, t: L.logaddexp(t([1, 2]), t([3.0, 4.0])),
        lambda L, t: L.logaddexp(t([1.0], dtype=L.float16), t([1.0])),
        lambda L, t: L.hypot(t([3.0], dtype=L.float16), t([4.0], dtype=L.float16)),
        lambda L, t: L.nextafter(t([1.0, 2.0]), t([2.0, 0.0], dtype=L.float64)),
        lambda L, t: L.nextafter(t([1.0, 2.0]), t([2.0, 0.0])),
    ]
    for case in cases:
        ours, theirs = case(engine, engine.tensor), case(torch, T)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2", "hypot", "nextafter"])
def test_integer_inputs_are_refused_in_one_line(name):
    with pytest.raises(TypeError, match=f"^{name}: expected floating point inputs, got int64 and int64") as err:
        getattr(engine, name)(engine.tensor([1, 2]), engine.tensor([3, 4]))
    assert "\n" not in str(err.value)


@needs_torch
def test_frexp_matches_torch():
    x = np.array([1.0, 8.0, 0.3, 0.0, -5.5, -math.inf, math.nan, 1e-310])
    for dtype in (np.float64, np.float32, np.float16):
        a = x.astype(dtype)
        m, e = engine.frexp(engine.tensor(a))
        tm, te = torch.frexp(torch.tensor(a))
        np.testing.assert_array_equal(m.numpy(), tm.numpy())
        if dtype is not np.float16:  # torch's float16 exponent of inf/nan differs from C's frexp
            np.testing.assert_array_equal(e.numpy(), te.numpy())
        assert e.dtype == engine.int32 and m.dtype.name == str(tm.dtype).removeprefix("torch.")
    against_torch(lambda t: lib(t).frexp(t).mantissa * 3, RNG.standard_normal((2, 3)) * 50)
    with pytest.raises(TypeError, match="frexp: only floating point"):
        engine.frexp(engine.tensor([1, 2]))


@needs_torch
@pytest.mark.parametrize("p, dim", [(2, 0), (1, 1), (3.5, -1), (math.inf, 1), (2, 2)])
def test_renorm_matches_torch(p, dim):
    x = RNG.standard_normal((3, 4, 2)) * 2
    against_torch(lambda t: t.renorm(p, dim, 1.5), x, rtol=1e-9)
    if p != math.inf:
        finite_difference_check(lambda t: engine.renorm(t, p, dim, 1.5), [x])


@pytest.mark.parametrize("call, error, message", [
    (lambda: engine.renorm(engine.ones(3), 2, 0, 1), engine.ShapeError, "renorm: input needs at least 2 dimensions"),
    (lambda: engine.renorm(engine.ones(2, 2), 0, 0, 1), ValueError, "renorm: p must be positive"),
    (lambda: engine.renorm(engine.ones(2, 2), 2, 0, -3), ValueError, "renorm: expected maxnorm to be >= 0"),
    (lambda: engine.renorm(engine.ones(2, 2, dtype=engine.int64), 2, 0, 1), TypeError, "renorm: expected a floating"),
    (lambda: engine.renorm(engine.ones(2, 2), 2, 2, 1), IndexError, "Dimension out of range"),
])
def test_renorm_errors_are_one_line(call, error, message):
    with pytest.raises(error, match=message) as err:
        call()
    assert "\n" not in str(err.value)


# ---- the trapezoid rule ------------------------------------------------------------------------------
TRAPEZOID = {
    "plain": (lambda t, y: lib(y).trapezoid(y), [(2, 5)]),
    "dx": (lambda t, y: lib(y).trapezoid(y, dx=0.5, dim=0), [(4, 3)]),
    "x_1d": (lambda t, y, x: lib(y).trapezoid(y, x, dim=1), [(2, 5, 3), (5,)]),
    "x_same_shape": (lambda t, y, x: lib(y).trapezoid(y, x), [(2, 5), (2, 5)]),
    "x_broadcast": (lambda t, y, x: lib(y).trapezoid(y, x), [(2, 5), (1, 5)]),
    "trapz_x": (lambda t, y, x: lib(y).trapz(y, x), [(3, 4), (4,)]),
    "trapz_dx": (lambda t, y: lib(y).trapz(y, dx=2.0), [(3, 4)]),
    "cumulative": (lambda t, y: lib(y).cumulative_trapezoid(y), [(2, 5)]),
    "cumulative_dx": (lambda t, y: lib(y).cumulative_trapezoid(y, dx=0.25, dim=0), [(4, 3)]),
    "cumulative_x": (lambda t, y, x: lib(y).cumulative_trapezoid(y, x, dim=0), [(4, 3), (4,)]),
    "size_one": (lambda t, y: lib(y).trapezoid(y), [(3, 1)]),
    "empty": (lambda t, y: lib(y).trapezoid(y), [(3, 0)]),
    "cumulative_empty": (lambda t, y: lib(y).cumulative_trapezoid(y), [(3, 0)]),
}


@pytest.mark.parametrize("name", list(TRAPEZOID))
def test_trapezoid_family_matches_torch(name):
    fn, shapes = TRAPEZOID[name]
    arrays = [RNG.standard_normal(s) for s in shapes]
    if len(arrays) == 2 and arrays[1].ndim == 1:
        arrays[1] = np.sort(arrays[1])
    against_torch(lambda *ts: fn(None, *ts), *arrays)
    if all(a.size for a in arrays):
        finite_difference_check(lambda *ts: fn(None, *ts), arrays)


@needs_torch
def test_trapezoid_of_integers_gives_floats():
    y, x = np.array([1, 2, 3]), np.array([0, 1, 3])
    for fn in (lambda L, t: L.trapezoid(t(y)), lambda L, t: L.trapezoid(t(y), t(x)),
               lambda L, t: L.trapezoid(t(y), dx=0.5), lambda L, t: L.cumulative_trapezoid(t(y)),
               lambda L, t: L.trapz(t(y))):
        ours, theirs = fn(engine, engine.tensor), fn(torch, torch.tensor)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_allclose(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("call, error, message", [
    (lambda: engine.trapezoid(engine.ones(3), engine.ones(2)), engine.ShapeError,
     r"trapezoid: there must be one x value for each sample point: x has 2 values, y has 3"),
    (lambda: engine.trapezoid(engine.ones(2, 3), engine.ones(3), dim=0), engine.ShapeError, "x has 3 values, y has 2"),
    (lambda: engine.trapezoid(engine.ones(3), engine.ones(3), dx=1.0), TypeError, "pass either x or dx, not both"),
    (lambda: engine.trapezoid(engine.tensor(1.0)), IndexError, "trapezoid: y must have at least one dimension"),
    (lambda: engine.cumulative_trapezoid(engine.ones(3), dim=2), IndexError, "Dimension out of range"),
    (lambda: engine.trapezoid(engine.ones(2, 3), engine.ones(3, 3)), engine.ShapeError, r"inputs: \(2, 2\)"),
])
def test_trapezoid_errors_are_one_line(call, error, message):
    with pytest.raises(error, match=message) as err:
        call()
    assert "\n" not in str(err.value)


# ---- second derivatives ----------------------------------------------------------------------------------
HIGHER = {
    "logaddexp": (lambda L, a, b: L.logaddexp(a * a, b), [(2, 3), (3,)]),
    "logaddexp2": (lambda L, a, b: L.logaddexp2(a, b * a), [(2, 3), (2, 3)]),
    "logaddexp_tie": (lambda L, a: L.logaddexp(a, a.detach()) + L.logaddexp2(a * 2, 2 * a), [(2, 3)]),
    "hypot": (lambda L, a, b: L.hypot(a, b) ** 2 * a, [(2, 3), (2, 3)]),
    "copysign": (lambda L, a, b: L.copysign(a * a, b) * a, [(2, 3), (2, 3)]),
    "nextafter": (lambda L, a, b: L.nextafter(a * a, b) * a, [(2, 3), (2, 3)]),
    "frexp": (lambda L, a: L.frexp(a * 7).mantissa * a, [(2, 3)]),
    "ldexp": (lambda L, a, b: L.ldexp(a, b) * a, [(2, 3), (2, 3)]),
    "renorm_composed": (lambda L, a: L.renorm(a, 2, 0, 0.5) * a, [(2, 3)]),
}


def _grad_and_hvp(L, fn, arrays, vs, r):
    xs = [L.tensor(a, requires_grad=True) for a in arrays]
    grads = L.autograd.grad((fn(L, *xs) * L.tensor(r)).sum(), xs, create_graph=True)
    hv = L.autograd.grad(sum((g * L.tensor(v)).sum() for g, v in zip(grads, vs)), xs, allow_unused=True)
    return grads, hv


def check_second_order(fn, shapes, seed: int, rtol=1e-9, atol=1e-12) -> None:
    """The gradient of sum(fn * r), made with create_graph=True, and the gradient of (that gradient . v): as torch's."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    vs = [rng.standard_normal(s) for s in shapes]
    r = rng.standard_normal(tuple(fn(engine, *map(engine.tensor, arrays)).shape))
    g_e, hv_e = _grad_and_hvp(engine, fn, arrays, vs, r)
    g_t, hv_t = _grad_and_hvp(torch, fn, arrays, vs, r)
    assert g_e[0].requires_grad
    for a, b in zip(g_e + hv_e, g_t + hv_t):
        np.testing.assert_allclose(0 if a is None else a.detach().numpy(), 0 if b is None else b.detach().numpy(),
                                   rtol=rtol, atol=atol)


@needs_torch
@pytest.mark.parametrize("name", list(HIGHER))
def test_second_derivatives_match_torch(name):
    check_second_order(*HIGHER[name], seed=sum(map(ord, name)))
