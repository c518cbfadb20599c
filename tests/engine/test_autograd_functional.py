"""engine.autograd.functional against torch.autograd.functional: values, nesting of the returned tuples,
create_graph, strict mode and bad input; jacobian against float64 central differences."""

import numpy as np
import pytest

import engine
from engine.autograd import functional as EAF
from tests.engine.oracle import FD_EPS, GRAD_ATOL, GRAD_RTOL, cuda_or_skip, needs_torch, one_line, torch

if torch is not None:
    from torch.autograd import functional as TAF

RNG = np.random.default_rng(0)


def _close(ours, theirs) -> None:
    """Same nesting of tuples, same shapes, same values."""
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs), f"{type(ours)} vs a tuple of {len(theirs)}"
        for a, b in zip(ours, theirs):
            _close(a, b)
        return
    assert isinstance(ours, engine.Tensor), f"expected a Tensor, got {type(ours)}"
    assert tuple(ours.shape) == tuple(theirs.shape), f"shape {tuple(ours.shape)} != torch's {tuple(theirs.shape)}"
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL)


def _both(shapes, tuple_inputs: bool):
    arrays = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    ours = tuple(engine.tensor(a) for a in arrays)
    theirs = tuple(torch.tensor(a) for a in arrays)
    return (ours, theirs) if tuple_inputs else (ours[0], theirs[0])


# name: (fn, input shapes, inputs given as a tuple)
FUNCS = {
    "one_in_one_out": (lambda x: (x.exp() * x).sum(dim=1), [(2, 3)], False),
    "one_in_tuple_of_one": (lambda x: x.tanh() * 2, [(3,)], True),
    "two_in_one_out": (lambda x, y: x @ y, [(2, 3), (3, 4)], True),
    "two_in_two_out": (lambda x, y: (x.sin() * y, (x * y).sum()), [(3,), (3,)], True),
    "one_in_two_out": (lambda x: (x ** 2, x.sum(dim=0)), [(2, 2)], False),
    "unused_input": (lambda x, y: x.sigmoid(), [(3,), (2,)], True),
}
SCALAR_FUNCS = {
    "one_in": (lambda x: (x.exp() * x.sin()).sum(), [(2, 3)], False),
    "two_in": (lambda x, y: (x.tanh() @ y).pow(2).sum(), [(2, 3), (3,)], True),
    "quadratic_cross": (lambda x, y: (x * y).sum(), [(3,), (3,)], True),
    "unused_input": (lambda x, y: (x ** 3).sum(), [(3,), (2,)], True),
}


def _vector_like(ref):
    """A random v shaped as ref (a Tensor or a tuple of Tensors), for both libraries."""
    if isinstance(ref, tuple):
        pairs = [_vector_like(r) for r in ref]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    a = RNG.standard_normal(tuple(ref.shape)).astype(np.float32)
    return engine.tensor(a), torch.tensor(a)


@needs_torch
@pytest.mark.parametrize("name", FUNCS)
def test_jacobian_matches_torch(name):
    fn, shapes, as_tuple = FUNCS[name]
    ours, theirs = _both(shapes, as_tuple)
    _close(EAF.jacobian(fn, ours), TAF.jacobian(fn, theirs))
    # vectorize and forward-mode are accepted and give the same numbers
    _close(EAF.jacobian(fn, ours, vectorize=True, strategy="forward-mode"), TAF.jacobian(fn, theirs))


@needs_torch
@pytest.mark.parametrize("name", FUNCS)
def test_vjp_and_jvp_match_torch(name):
    fn, shapes, as_tuple = FUNCS[name]
    ours, theirs = _both(shapes, as_tuple)
    out = fn(*theirs) if as_tuple else fn(theirs)
    v_out = _vector_like(out)
    v_in = _vector_like(theirs)
    _close(EAF.vjp(fn, ours, v_out[0]), TAF.vjp(fn, theirs, v_out[1]))
    _close(EAF.jvp(fn, ours, v_in[0]), TAF.jvp(fn, theirs, v_in[1]))


@needs_torch
@pytest.mark.parametrize("name", SCALAR_FUNCS)
def test_hessian_hvp_vhp_match_torch(name):
    fn, shapes, as_tuple = SCALAR_FUNCS[name]
    ours, theirs = _both(shapes, as_tuple)
    _close(EAF.hessian(fn, ours), TAF.hessian(fn, theirs))
    v = _vector_like(theirs)
    _close(EAF.hvp(fn, ours, v[0]), TAF.hvp(fn, theirs, v[1]))
    _close(EAF.vhp(fn, ours, v[0]), TAF.vhp(fn, theirs, v[1]))
    _close(EAF.vjp(fn, ours), TAF.vjp(fn, theirs))  # v may be left out for a one-element output


@needs_torch
def test_v_may_be_left_out_for_one_element_inputs():
    ours, theirs = engine.tensor([0.3]), torch.tensor([0.3])

    def fn(x):
        return x ** 3, x.exp()

    _close(EAF.jvp(fn, ours), TAF.jvp(fn, theirs))
    _close(EAF.hvp(lambda x: (x ** 4).sum(), ours), TAF.hvp(lambda x: (x ** 4).sum(), theirs))


@needs_torch
@pytest.mark.parametrize("op", ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"])
def test_create_graph_differentiates_again_as_torch(op):
    """With create_graph the result carries a graph back to the caller's inputs: d(sum of result)/d inputs."""
    a, b = RNG.standard_normal(3), RNG.standard_normal(3)
    results = []
    for L in (engine, torch):
        x = L.tensor(a, requires_grad=True)
        fn = (lambda t: (t.sin() * t).sum()) if op in ("hessian", "hvp", "vhp") else (lambda t: t.sin() * t.exp())
        extra = () if op in ("jacobian", "hessian") else (L.tensor(b),)
        res = getattr(EAF if L is engine else TAF, op)(fn, x, *extra, create_graph=True)
        res = res if op in ("jacobian", "hessian") else res[1]
        assert res.requires_grad
        results.append(L.autograd.grad((res * res).sum(), x)[0])
    np.testing.assert_allclose(results[0].numpy(), results[1].numpy(), rtol=1e-7, atol=1e-9)


@needs_torch
def test_without_create_graph_results_have_no_history():
    x = engine.tensor(RNG.standard_normal(3), requires_grad=True)
    out, v = EAF.vjp(lambda t: t * 2, x, engine.ones(3))
    assert not out.requires_grad and not v.requires_grad
    assert not EAF.jacobian(lambda t: t.exp(), x).requires_grad


def test_jacobian_matches_finite_differences():
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal(3)

    def fn(x, y):
        return (x * y).tanh(), (x.exp() @ y)

    jac = EAF.jacobian(fn, (engine.tensor(a), engine.tensor(b)))
    for k, arr in enumerate((a, b)):
        for j in range(arr.size):
            hi, lo = [arr.copy() for _ in range(2)]
            hi.reshape(-1)[j] += FD_EPS
            lo.reshape(-1)[j] -= FD_EPS
            plus = fn(*[engine.tensor(hi if i == k else (a, b)[i]) for i in range(2)])
            minus = fn(*[engine.tensor(lo if i == k else (a, b)[i]) for i in range(2)])
            for i in range(2):
                numeric = (plus[i].numpy() - minus[i].numpy()) / (2 * FD_EPS)
                column = jac[i][k].numpy().reshape((*plus[i].shape, -1))[..., j]
                np.testing.assert_allclose(column, numeric, rtol=1e-5, atol=1e-7)


@needs_torch
@pytest.mark.parametrize("op", ["jacobian", "vjp", "jvp", "hessian", "hvp", "vhp"])
def test_strict_refuses_an_input_the_output_ignores_as_torch(op):
    messages = []
    for L in (engine, torch):
        x, y = L.tensor([1.0, 2.0]), L.tensor([3.0, 4.0])
        fn = (lambda a, b: (a ** 3).sum()) if op in ("hessian", "hvp", "vhp") else (lambda a, b: a ** 3)
        v = {"vjp": L.ones(2), "jacobian": None, "hessian": None}.get(op, (L.ones(2), L.ones(2)))
        call = getattr(EAF if L is engine else TAF, op)
        with pytest.raises(RuntimeError) as err:
            call(fn, (x, y), strict=True) if v is None else call(fn, (x, y), v, strict=True)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "\n" not in messages[0]


STRICT_CASES = {  # name: call(F, L, x) with F = engine's or torch's autograd.functional, L the library
    "output_not_differentiable": lambda F, L, x: F.vjp(lambda a: L.ones(2), x, L.ones(2), strict=True),
    "linear_hessian": lambda F, L, x: F.hessian(lambda a: a.sum() * 2, x, strict=True),
    "create_graph_constant": lambda F, L, x: F.jacobian(lambda a: a * 2, x, create_graph=True, strict=True),
}
BAD_INPUT = {
    "v_size": lambda F, L, x: F.vjp(lambda a: a * 2, x, L.ones(3)),
    "v_length": lambda F, L, x: F.jvp(lambda a, b: a * b, (x, x), (L.ones(2),)),
    "v_missing": lambda F, L, x: F.vjp(lambda a: a * 2, x),
    "not_a_tensor": lambda F, L, x: F.jacobian(lambda a: a, (x, 2.0)),
    "hessian_vector_output": lambda F, L, x: F.hessian(lambda a: a * 2, x),
    "hvp_tuple_output": lambda F, L, x: F.hvp(lambda a: (a.sum(), a.sum()), x, L.ones(2)),
    "strategy": lambda F, L, x: F.jacobian(lambda a: a, x, strategy="sideways"),
    "forward_without_vectorize": lambda F, L, x: F.jacobian(lambda a: a, x, strategy="forward-mode"),
    "strict_vectorize": lambda F, L, x: F.jacobian(lambda a: a, x, strict=True, vectorize=True),
    "strict_forward": lambda F, L, x: F.jacobian(lambda a: a, x, strict=True, vectorize=True, strategy="forward-mode"),
}


def _raised(case, calls: dict) -> list:
    """The exception each library raises for the case."""
    caught = []
    for L, F in ((engine, EAF), (torch, TAF)):
        with pytest.raises(Exception) as err:
            calls[case](F, L, L.tensor([1.0, 2.0]))
        caught.append(err.value)
    return caught


@needs_torch
@pytest.mark.parametrize("case", STRICT_CASES)
def test_other_strict_errors_as_torch(case):
    ours, theirs = _raised(case, STRICT_CASES)
    assert type(ours) is type(theirs) is RuntimeError
    assert str(ours) == str(theirs)


@needs_torch
@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_raises_as_torch(case):
    ours, theirs = _raised(case, BAD_INPUT)
    assert type(ours) is type(theirs)
    expected = str(theirs).replace("torch.Size", "engine.Size").replace("torch.Tensor", "engine.tensor.Tensor")
    # torch's forward-mode message lacks a space ("isonly"); ours has it
    assert str(ours).replace(" ", "") == expected.replace(" ", "")


def test_errors_are_one_line():
    one_line(lambda: EAF.vjp(lambda a: a * 2, engine.ones(2), engine.ones(3)), RuntimeError, "invalid size")
    one_line(lambda: EAF.jacobian(lambda a: a, [engine.ones(2)]), TypeError, "must be either a Tensor")


def test_jacobian_on_cuda():
    cuda_or_skip()
    a = RNG.standard_normal(3)
    jac = EAF.jacobian(lambda t: t.exp() * t, engine.tensor(a, device="cuda"))
    assert jac.is_cuda
    np.testing.assert_allclose(jac.cpu().numpy(), np.diag(np.exp(a) * (1 + a)), rtol=1e-6)
    _, hv = EAF.hvp(lambda t: (t ** 3).sum(), engine.tensor(a, device="cuda"), engine.ones(3, device="cuda"))
    np.testing.assert_allclose(hv.cpu().numpy(), 6 * a, rtol=1e-6)
