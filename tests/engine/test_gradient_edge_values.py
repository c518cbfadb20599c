"""Gradients at the edges of their formulas, as PyTorch gives them: std where the std is 0 (0, not NaN), var with a
correction of at least the count (PyTorch's unclamped 2 / (N - correction)), prod with an inf and a zero (each
element gets the product of the others, not inf / inf), logit outside [0, 1] (NaN, not a finite number). The
expected values are worked out by hand and checked against PyTorch where installed; the engine's gradients are
checked with plain backward and with create_graph=True."""

import math

import numpy as np
import pytest

import engine
from tests.engine.oracle import lib, torch

I, N = math.inf, math.nan


def _std_mean_sum(x):
    std, mean = lib(x).std_mean(x, 1)
    return std + mean


# name -> (fn of x, x, the output's incoming gradient, x's gradient)
CASES = {
    # row 0 has std 0: no gradient through the std; row 1, std 1: (x - mean) / ((N - 1) std)
    "std over a dim": (lambda x: x.std(1), [[1, 1, 1], [1, 2, 3]], [1, 1], [[0, 0, 0], [-0.5, 0, 0.5]]),
    "std keepdim": (lambda x: x.std(1, keepdim=True), [[1, 1, 1], [1, 2, 3]], [[1], [1]],
                    [[0, 0, 0], [-0.5, 0, 0.5]]),
    "std of a constant": (lambda x: x.std(), [[2, 2], [2, 2]], 1, [[0, 0], [0, 0]]),
    "std_mean": (_std_mean_sum, [[1, 1, 1], [1, 2, 3]], [1, 1], [[1 / 3] * 3, [-0.5 + 1 / 3, 1 / 3, 0.5 + 1 / 3]]),
    # the fuzzer's: a normalisation by std + 1e-5 of a constant row: d/dx of (x - mean) / (std + eps) is 1e5 (I - 1/3)
    "std normalisation": (lambda x: (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-5),
                          [[1, 1, 1]], [[1, 2, 3]], [[-1e5, 0, 1e5]]),
    # correction above N - 1 over a dim: PyTorch divides by the negative N - correction in backward
    "var, correction > N over a dim": (lambda x: x.var(0, correction=3), [[1], [3]], [1], [[2], [-2]]),
    "var, correction = N over a dim": (lambda x: x.var(0, correction=2), [[1], [3], [1]], [1], [[-4 / 3], [8 / 3],
                                                                                                 [-4 / 3]]),
    # over the whole tensor it gives inf, NaN at the mean, instead
    "var, correction > N, whole": (lambda x: x.var(correction=4), [1, 2, 3], 1, [I, N, I]),
    "std, correction > N, whole": (lambda x: x.std(correction=4), [1, 2, 3], 1, [N, N, N]),
    # each element's gradient is the product of the others when the input holds a zero (anywhere)
    "prod with an inf and a zero": (lambda x: x.prod(1), [[2, 0, 0], [I, 1, 2]], [1, 1], [[0, 0, 0], [2, I, I]]),
    "prod of all with a zero": (lambda x: x.prod(), [[2, 0, 5], [3, 1, 2]], 1, [[0, 60, 0], [0, 0, 0]]),
    "prod with one zero": (lambda x: x.prod(0), [[2, 0], [3, 4], [5, 6]], [1, 1], [[15, 24], [10, 0], [6, 0]]),
    # and prod / x_i (inf / inf is NaN) when it holds none, as PyTorch does; a 0-d input passes the gradient on
    "prod with an inf, no zero": (lambda x: x.prod(1), [[I, 1, 2]], [1], [[N, I, I]]),
    "prod of a 0-d inf": (lambda x: x.prod(), I, 2, 2),
    # logit: 1 / (x (1 - x)); NaN outside [0, 1], inf at 0 and 1; with eps, 0 outside [eps, 1 - eps]
    "logit": (lambda x: x.logit(), [0.5, 1.5, -0.2, 0, 1, N], 1, [4, N, N, I, I, N]),
    "logit with eps": (lambda x: x.logit(eps=0.1), [0.5, 1.5, -0.2, 0.05, 0.95, N], 1, [4, 0, 0, 0, 0, N]),
}


def _gradient(lib_, fn, x, upstream, create_graph=False):
    xt = lib_.tensor(np.array(x, np.float64), requires_grad=True)
    out = fn(xt)
    up = lib_.tensor(np.broadcast_to(np.float64(upstream), tuple(out.shape)).copy())
    (g,) = lib_.autograd.grad(out, [xt], up, create_graph=create_graph)
    return g.detach().numpy()


LIBS = [pytest.param(engine, False, id="backward"), pytest.param(engine, True, id="create_graph"),
        pytest.param(torch, False, id="torch", marks=pytest.mark.skipif(torch is None, reason="needs PyTorch"))]


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")  # inf and NaN on purpose
@pytest.mark.parametrize("lib_, create_graph", LIBS)
@pytest.mark.parametrize("name", CASES)
def test_gradient_at_the_edge(name, lib_, create_graph):
    fn, x, upstream, expected = CASES[name]
    np.testing.assert_allclose(_gradient(lib_, fn, x, upstream, create_graph), np.array(expected, np.float64),
                               rtol=1e-9, atol=1e-9 * 1e5 if name == "std normalisation" else 0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("lib_", [engine, pytest.param(torch, marks=pytest.mark.skipif(torch is None,
                                                                                      reason="needs PyTorch"))])
def test_prod_of_a_tensor_with_two_zeros_passes_back_exact_zeros(lib_):
    """Every product of the others holds a zero; PyTorch's backward of prod() (not of prod(dim), nor under
    create_graph=True, where it is NaN times 0) returns zeros, whatever the incoming gradient."""
    np.testing.assert_array_equal(_gradient(lib_, lambda x: x.prod(), [[0, 2], [1, 0]], N), [[0, 0], [0, 0]])
    np.testing.assert_array_equal(_gradient(lib_, lambda x: x.prod(1), [[0, 2], [1, 0]], [N, 1]), [[N, N], [0, 1]])
