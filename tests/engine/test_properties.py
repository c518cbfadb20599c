"""Property tests: broadcasting arithmetic and reductions over random shapes and dims (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import engine
from tests.engine.oracle import torch

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def values(draw, shape):
    """float64 data of `shape`: normal samples, or small integers so that ties (max, amax) happen often."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        return rng.integers(-2, 3, shape).astype(np.float64)
    return rng.standard_normal(shape)


def _grads(lib, fn, arrays_, weights):
    """Gradients of sum(fn(*inputs) * weights) with respect to each input, as numpy arrays."""
    inputs = [lib.tensor(a, requires_grad=True) for a in arrays_]
    out = fn(*inputs)
    (out * lib.tensor(weights)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in inputs]


@st.composite
def broadcast_pair(draw):
    shapes = draw(mutually_broadcastable_shapes(num_shapes=2, max_dims=4, min_side=1, max_side=4))
    a, b = (draw(values(s)) for s in shapes.input_shapes)
    return a, b, shapes.result_shape


@SETTINGS
@given(pair=broadcast_pair(), op=st.sampled_from(["add", "mul"]))
def test_broadcast_arithmetic(pair, op):
    a, b, result_shape = pair
    fn = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y}[op]
    weights = np.random.default_rng(0).standard_normal(result_shape)
    out, (ga, gb) = _grads(engine, fn, (a, b), weights)
    np.testing.assert_allclose(out, fn(a, b), rtol=1e-12)
    assert ga.shape == a.shape and gb.shape == b.shape
    if torch is not None:
        _, (ta, tb) = _grads(torch, fn, (a, b), weights)
        np.testing.assert_allclose(ga, ta, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gb, tb, rtol=1e-10, atol=1e-12)


@st.composite
def array_and_dims(draw):
    x = draw(values(draw(array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))))
    chosen = draw(st.lists(st.sampled_from(range(x.ndim)), unique=True))
    # each dim spelled either way round: 1 or 1 - ndim
    dims = tuple(d - x.ndim if draw(st.booleans()) else d for d in chosen)
    if not dims:
        dims = None
    elif len(dims) == 1 and draw(st.booleans()):
        dims = dims[0]  # a bare int
    return x, dims, draw(st.booleans())


NUMPY = {"sum": np.sum, "mean": np.mean, "amax": np.max, "var": lambda a, **kw: np.var(a, ddof=1, **kw)}


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")  # var of one element: nan
@SETTINGS
@given(case=array_and_dims(), op=st.sampled_from(sorted(NUMPY)))
def test_reductions_over_random_dims(case, op):
    x, dims, keepdim = case
    dim = () if dims is None and op == "amax" else dims  # amax spells "every dim" as ()
    call = lambda t: getattr(t, op)(dim=dim, keepdim=keepdim)  # noqa: E731
    expected = NUMPY[op](x, axis=dims, keepdims=keepdim)
    weights = np.random.default_rng(0).standard_normal(np.shape(expected))
    out, (g,) = _grads(engine, call, (x,), weights)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    assert g.shape == x.shape
    if torch is not None:
        ref, (tg,) = _grads(torch, call, (x,), weights)
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g, tg, rtol=1e-10, atol=1e-12)
