"""engine.func's transforms against torch.func: values and the structure of what they return, composition
(jacrev of jacrev, vmap of grad, grad through functional_call, plain autograd around them) and errors."""

import numpy as np
import pytest

import engine
import engine.nn as enn
from engine import func as EFn
from tests.engine.oracle import GRAD_ATOL, GRAD_RTOL, cuda_or_skip, needs_torch, one_line, torch

if torch is not None:
    import torch.func as TFn

RNG = np.random.default_rng(0)
A, B, C = RNG.standard_normal(3), RNG.standard_normal(3), RNG.standard_normal((4, 3))


def _close(ours, theirs) -> None:
    """Same nesting of tuples, lists and dicts, same shapes, same values."""
    if isinstance(theirs, tuple | list):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), f"{ours!r} vs {theirs!r}"
        for a, b in zip(ours, theirs):
            _close(a, b)
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for k in theirs:
            _close(ours[k], theirs[k])
    else:
        assert isinstance(ours, engine.Tensor), f"expected a Tensor, got {type(ours)}"
        assert tuple(ours.shape) == tuple(theirs.shape), f"shape {tuple(ours.shape)} != {tuple(theirs.shape)}"
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL)


def _run(case, *arrays):
    """case(F, L, *tensors) for engine and torch (float64 inputs); both results."""
    return [case(F, L, *(L.tensor(a) for a in arrays)) for F, L in ((EFn, engine), (TFn, torch))]


def _pair(x, y):
    return (x.sin() * y).sum()


def _aux(x, y):
    return (x * y).sum(), {"double": x * 2, "list": [y.exp()]}


def _multi(x, y):
    return x.tanh() * y, {"s": (x * y).sum()}


CASES = {  # name: (call(F, L, *tensors), input arrays)
    "grad": (lambda F, L, x, y: F.grad(_pair)(x, y), (A, B)),
    "grad_argnums_tuple": (lambda F, L, x, y: F.grad(_pair, argnums=(0, 1))(x, y), (A, B)),
    "grad_negative_argnum": (lambda F, L, x, y: F.grad(_pair, argnums=-1)(x, y), (A, B)),
    "grad_has_aux": (lambda F, L, x, y: F.grad(_aux, has_aux=True)(x, y), (A, B)),
    "grad_and_value": (lambda F, L, x, y: F.grad_and_value(_pair, argnums=1)(x, y), (A, B)),
    "grad_and_value_aux": (lambda F, L, x, y: F.grad_and_value(_aux, has_aux=True)(x, y), (A, B)),
    "grad_of_dict": (lambda F, L, x, y: F.grad(lambda d: (d["a"] * d["b"][0]).sum())({"a": x, "b": [y]}), (A, B)),
    "grad_unused_input": (lambda F, L, x, y: F.grad(lambda a, b: (a ** 2).sum(), argnums=(0, 1))(x, y), (A, B)),
    "jacrev": (lambda F, L, x, y: F.jacrev(_multi)(x, y), (A, B)),
    "jacrev_argnums": (lambda F, L, x, y: F.jacrev(_multi, argnums=(0, 1))(x, y), (A, B)),
    "jacrev_aux": (lambda F, L, x, y: F.jacrev(lambda a: (a.exp(), a.sum()), has_aux=True)(x), (A, B)),
    "jacrev_matrix": (lambda F, L, x: F.jacrev(lambda m: m @ m.T)(x), (C,)),
    "jacfwd": (lambda F, L, x, y: F.jacfwd(_multi, argnums=1)(x, y), (A, B)),
    "jacrev_of_jacrev": (lambda F, L, x: F.jacrev(F.jacrev(lambda a: a.sin() * a.sum()))(x), (A,)),
    "hessian": (lambda F, L, x, y: F.hessian(_pair, argnums=(0, 1))(x, y), (A, B)),
    "hessian_of_matrix": (lambda F, L, x: F.hessian(lambda m: (m.tanh() ** 3).sum())(x), (C,)),
    "grad_of_grad": (lambda F, L, x: F.grad(lambda a: F.grad(lambda b: (b ** 3).sum())(a).sum())(x), (A,)),
    "vjp": (lambda F, L, x, y: _vjp_applied(F, L, x, y), (A, B)),
    "vmap": (lambda F, L, m, y: F.vmap(lambda r, v: r * v + 1)(m, y.reshape(1, 3).expand(4, 3)), (C, B)),
    "vmap_in_dims_none": (lambda F, L, m, y: F.vmap(lambda r, v: r @ v, in_dims=(0, None))(m, y), (C, B)),
    "vmap_in_dim_1_out_dim_1": (lambda F, L, m: F.vmap(lambda c: c.cumsum(0), in_dims=1, out_dims=1)(m), (C,)),
    "vmap_nested": (lambda F, L, m: F.vmap(F.vmap(lambda a: a.sin() * 2))(m), (C,)),
    "vmap_nested_outer_product": (lambda F, L, x, y: F.vmap(F.vmap(L.mul, (None, 0)), (0, None))(x, y), (A, B)),
    "vmap_tree_out": (lambda F, L, m: F.vmap(lambda r: {"r": r, "s": (r.sum(), [r.max()])})(m), (C,)),
    "vmap_dict_in": (lambda F, L, m, y: F.vmap(lambda d: d["m"] * d["y"], in_dims=({"m": 0, "y": None},))(
        {"m": m, "y": y}), (C, B)),
    "vmap_out_dims_tuple": (lambda F, L, m: F.vmap(lambda r: (r, r.sum()), out_dims=(1, 0))(m), (C,)),
    "vmap_out_dims_none": (lambda F, L, m, y: F.vmap(lambda r, v: (r, v), in_dims=(0, None),
                                                     out_dims=(0, None))(m, y), (C, B)),
    "vmap_kwargs_not_mapped": (lambda F, L, m, y: F.vmap(lambda r, scale: r * scale)(m, scale=y), (C, B)),
    "vmap_empty_batch": (lambda F, L, m: F.vmap(lambda r: r * 2)(m[:0]), (C,)),
    "vmap_of_grad": (lambda F, L, m, y: F.vmap(F.grad(_pair), in_dims=(0, None))(m, y), (C, B)),
    "vmap_of_jacrev": (lambda F, L, m: F.vmap(F.jacrev(lambda r: r.exp() * r.sum()))(m), (C,)),
    "grad_of_vmap": (lambda F, L, m: F.grad(lambda a: F.vmap(lambda r: (r ** 2).sum())(a).sum())(m), (C,)),
}


def _vjp_applied(F, L, x, y):
    """vjp over a dict primal with a tuple-and-dict output, and has_aux; its vjp_fn called twice."""
    out, fn, aux = F.vjp(lambda a, d: ((a * d["k"], {"e": a.exp()}), d["k"].sum()), x, {"k": y}, has_aux=True)
    return out, aux, fn((L.ones(3), {"e": y})), fn((y, {"e": L.zeros(3)}))


@needs_torch
@pytest.mark.parametrize("name", CASES)
def test_matches_torch(name):
    case, arrays = CASES[name]
    ours, theirs = _run(case, *arrays)
    _close(ours, theirs)


@needs_torch
def test_results_carry_no_graph_at_top_level_and_one_when_the_caller_differentiates():
    assert not EFn.grad(_pair)(engine.tensor(A), engine.tensor(B)).requires_grad
    assert not EFn.jacrev(lambda a: a.exp())(engine.tensor(A)).requires_grad
    # MAML's inner step: the outer loss differentiates through the inner gradient, as in torch
    grads = []
    for F, L in ((EFn, engine), (TFn, torch)):
        w, b = L.tensor(A, requires_grad=True), L.tensor(B)
        g = F.grad(lambda p, b=b: (p.sin() * b).sum())(w)
        adapted = w - 0.1 * g
        grads.append(L.autograd.grad((adapted ** 2).sum(), w)[0])
    _close(*grads)


@needs_torch
def test_a_captured_tensor_keeps_its_graph_through_grad():
    grads = []
    for F, L in ((EFn, engine), (TFn, torch)):
        w = L.tensor(B, requires_grad=True)
        g = F.grad(lambda x, w=w: (x.exp() * w).sum())(L.tensor(A))
        grads.append(L.autograd.grad((g * g).sum(), w)[0])
    _close(*grads)


@needs_torch
def test_per_sample_gradients_of_an_mlp_as_torch_tutorial():
    model_e = enn.Sequential(enn.Linear(3, 5), enn.Tanh(), enn.Linear(5, 2))
    model_t = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    for (_, pe), (_, pt) in zip(model_e.named_parameters(), model_t.named_parameters()):
        pt.data = torch.tensor(pe.detach().numpy().astype(np.float64))
    data, targets = RNG.standard_normal((6, 3)), RNG.integers(0, 2, 6)
    results = []
    for F, L, model in ((EFn, engine, model_e), (TFn, torch, model_t)):
        params = {k: L.tensor(v.detach().numpy().astype(np.float64)) for k, v in model.named_parameters()}

        def loss(p, sample, target, F=F, L=L, model=model):
            out = F.functional_call(model, p, (sample.unsqueeze(0),))
            return L.nn.functional.cross_entropy(out, target.unsqueeze(0))

        per_sample = F.vmap(F.grad(loss), in_dims=(None, 0, 0))(params, L.tensor(data), L.tensor(targets))
        results.append(per_sample)
    _close(*results)
    assert set(results[0]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert tuple(results[0]["0.weight"].shape) == (6, 5, 3)


def test_grad_through_functional_call():
    model = enn.Linear(3, 1)
    x = engine.tensor(RNG.standard_normal((4, 3)).astype(np.float32))
    params = {k: v.detach() for k, v in model.named_parameters()}
    g = EFn.grad(lambda p: EFn.functional_call(model, p, (x,)).sum())(params)
    np.testing.assert_allclose(g["weight"].numpy(), x.numpy().sum(0, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(g["bias"].numpy(), [4.0], rtol=1e-6)
    assert model.weight.grad is None


def test_randomness():
    x = engine.zeros(3, 2)
    one_line(lambda: EFn.vmap(lambda r: r + engine.rand(2))(x), RuntimeError, "randomness error mode")
    same = EFn.vmap(lambda r: r + engine.rand(2), randomness="same")(x)
    assert np.all(same.numpy() == same.numpy()[0])
    different = EFn.vmap(lambda r: r + engine.rand(2), randomness="different")(x)
    assert not np.all(different.numpy() == different.numpy()[0])


def neg(t):
    return -t


ERRORS = {  # name: call(F, L, x) that both libraries refuse
    "mismatched_batch": lambda F, L, x: F.vmap(L.add)(L.ones(2, 3), L.ones(3, 3)),
    "in_dims_structure": lambda F, L, x: F.vmap(L.add, in_dims=(0,))(x, x),
    "in_dims_type": lambda F, L, x: F.vmap(neg, in_dims=1.5)(x),
    "in_dim_element_type": lambda F, L, x: F.vmap(neg, in_dims=(1.5,))(x),
    "in_dim_range": lambda F, L, x: F.vmap(neg, in_dims=2)(x),
    "in_dim_non_tensor": lambda F, L, x: F.vmap(neg, in_dims=0)(3.0),
    "all_in_dims_none": lambda F, L, x: F.vmap(L.add, in_dims=(None, None))(x, x),
    "no_inputs": lambda F, L, x: F.vmap(neg)(),
    "non_tensor_output": lambda F, L, x: F.vmap(lambda r: 3.0)(x),
    "out_dims_structure": lambda F, L, x: F.vmap(lambda r: (r, r), out_dims=(0,))(x),
    "out_dims_type": lambda F, L, x: F.vmap(neg, out_dims=1.5)(x),
    "out_dim_range": lambda F, L, x: F.vmap(neg, out_dims=3)(x),
    "randomness_value": lambda F, L, x: F.vmap(neg, randomness="sometimes")(x),
    "chunk_size": lambda F, L, x: F.vmap(neg, chunk_size=0)(x),
    "grad_vector_output": lambda F, L, x: F.grad(lambda a: a * 2)(x),
    "grad_non_tensor_output": lambda F, L, x: F.grad(lambda a: 3.0)(x),
    "grad_aux_not_pair": lambda F, L, x: F.grad(lambda a: a.sum(), has_aux=True)(x),
    "grad_argnum_range": lambda F, L, x: F.grad(lambda a: a.sum(), argnums=2)(x),
    "grad_argnums_repeated": lambda F, L, x: F.grad(lambda a: a.sum(), argnums=(0, 0))(x),
    "grad_argnums_empty": lambda F, L, x: F.grad(lambda a: a.sum(), argnums=())(x),
    "grad_argnums_type": lambda F, L, x: F.grad(lambda a: a.sum(), argnums=1.0)(x),
    "grad_non_tensor_input": lambda F, L, x: F.grad(lambda a: a.sum())(3.0),
    "vjp_cotangent_structure": lambda F, L, x: F.vjp(lambda a: (a, a), x)[1](x),
    "vjp_cotangent_shape": lambda F, L, x: F.vjp(lambda a: a, x)[1](L.ones(5)),
    "vjp_non_tensor_output": lambda F, L, x: F.vjp(lambda a: 3.0, x),
    "jacrev_aux_not_pair": lambda F, L, x: F.jacrev(lambda a: a, has_aux=True)(x),
    "jacfwd_randomness": lambda F, L, x: F.jacfwd(neg, randomness="x")(x),
}


@needs_torch
@pytest.mark.parametrize("name", ERRORS)
def test_errors_as_torch(name):
    caught = []
    for F, L in ((EFn, engine), (TFn, torch)):
        with pytest.raises(Exception) as err:
            ERRORS[name](F, L, L.ones(2, 3))
        caught.append(err.value)
    ours, theirs = caught
    assert type(ours) is type(theirs), f"{type(ours).__name__}: {ours} vs torch's {type(theirs).__name__}: {theirs}"
    assert "\n" not in str(ours)
    expected = str(theirs).replace("\n ", "").replace("torch.Size", "engine.Size")
    if "TreeSpec" not in expected and "Mismatch in shape" not in expected and "out of range" not in expected:
        assert str(ours) == expected


def test_vmap_on_cuda():
    cuda_or_skip()
    m = engine.tensor(C, device="cuda")
    out = EFn.vmap(EFn.grad(lambda r: (r ** 3).sum()))(m)
    assert out.is_cuda
    np.testing.assert_allclose(out.cpu().numpy(), 3 * C ** 2, rtol=1e-6)


def test_import_engine_does_not_load_the_transforms_and_they_load_on_first_use():
    import subprocess
    import sys

    code = ("import sys, engine; loaded = [m for m in ('engine.func_transforms', 'engine.autograd.functional') "
            "if m in sys.modules]; assert not loaded, loaded; engine.autograd.functional.jacobian; engine.func.vmap")
    subprocess.run([sys.executable, "-c", code], check=True)
