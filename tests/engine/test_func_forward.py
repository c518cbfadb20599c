"""torch.func.jvp and linearize (by reverse mode twice), and torch.vmap, against torch.func."""

import numpy as np
import pytest

import engine
from engine import func
from tests.engine.oracle import needs_torch, torch

pytestmark = needs_torch
RNG = np.random.default_rng(0)
X, V, W = RNG.standard_normal(4), RNG.standard_normal(4), RNG.standard_normal((3, 4))


def both(fn):
    """fn(library, its func namespace, tensor maker) for the engine and torch."""
    return fn(engine, func, engine.tensor), fn(torch, torch.func, torch.tensor)


def close(a, b, rtol=1e-10):
    if isinstance(a, tuple | list):
        for x, y in zip(a, b, strict=True):
            close(x, y, rtol)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            close(a[k], b[k], rtol)
    else:
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=1e-12)


def test_jvp_of_a_layer_and_of_several_outputs_matches_torch():
    def run(lib, f, T):
        w = T(W)
        layer = f.jvp(lambda x: lib.tanh(w @ x), (T(X),), (T(V),))
        pair = f.jvp(lambda a, b: ((a * b).sum(), {"d": a - b}), (T(X), T(V)), (T(V), T(X)))
        return layer, pair

    close(*both(run))


def test_forward_over_reverse_hessian_vector_product_matches_torch():
    def run(lib, f, T):
        loss = lambda x: (lib.sin(x) * x).sum() ** 2  # noqa: E731
        return f.jvp(f.grad(loss), (T(X),), (T(V),))

    close(*both(run))


def test_jvp_with_aux_and_linearize_match_torch():
    def run(lib, f, T):
        value, tangent, aux = f.jvp(lambda x: (x.exp(), x.sum()), (T(X),), (T(V),), has_aux=True)
        out, jvp_fn = f.linearize(lambda x: x.exp() * 3, T(X))
        return value, tangent, aux, out, jvp_fn(T(V)), jvp_fn(T(X))

    close(*both(run))


def test_jvp_inside_vmap_and_the_top_level_vmap_match_torch():
    directions = RNG.standard_normal((5, 4))

    def run(lib, f, T):
        return lib.vmap(lambda v: f.jvp(lambda x: (x ** 3).sum(), (T(X),), (v,))[1])(T(directions))

    close(*both(run))


def test_a_jvp_taken_where_the_caller_differentiates_keeps_its_graph():
    x = engine.tensor(X, requires_grad=True)
    _, tangent = func.jvp(lambda y: (y ** 2).sum(), (x,), (engine.tensor(V),))
    tangent.backward()  # d/dx of 2 x.v is 2 v
    np.testing.assert_allclose(x.grad.numpy(), 2 * V, rtol=1e-12)


@pytest.mark.parametrize("primals, tangents, message", [
    ([engine.ones(2)], (engine.ones(2),), "Expected primals to be a tuple"),
    ((engine.ones(2),), [engine.ones(2)], "same python structure"),
    ((engine.ones(2), engine.ones(2)), (engine.ones(2),), "same python structure"),
    ((engine.ones(2),), (engine.ones(3),), r"a tangent has shape \(3,\) but its primal has shape \(2,\)"),
])
def test_primals_and_tangents_that_do_not_pair_up_are_refused(primals, tangents, message):
    with pytest.raises(RuntimeError, match=message):
        func.jvp(lambda *a: a[0] * 2, primals, tangents)
