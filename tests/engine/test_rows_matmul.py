"""N-D inputs times 2-D weights, which linear and matmul run as one product over the rows: torch's values and
gradients, empty dims included."""

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from tests.engine.oracle import needs_torch, torch

SHAPES = [((5, 3, 4), (4, 6)), ((2, 3, 5, 4), (4, 2)), ((0, 3, 4), (4, 5)), ((2, 0, 4), (4, 5)),
          ((2, 3, 0), (0, 5)), ((2, 3, 4), (4, 0)), ((3, 4), (4, 2)), ((4,), (4, 3))]


def pair(shape, rng):
    value = rng.standard_normal(shape)
    return engine.tensor(value, requires_grad=True), torch.tensor(value, requires_grad=True)


@needs_torch
@pytest.mark.parametrize(("sa", "sb"), SHAPES, ids=str)
def test_matmul_and_linear_of_an_nd_input_match_torch(sa, sb):
    rng = np.random.default_rng(0)
    (a, ta), (b, tb) = pair(sa, rng), pair(sb, rng)
    bias, tbias = pair(sb[1:], rng)
    for ours, theirs in ((a @ b, ta @ tb), (F.linear(a, b.T, bias), torch.nn.functional.linear(ta, tb.T, tbias))):
        weights = rng.standard_normal(tuple(theirs.shape))
        (ours * engine.tensor(weights)).sum().backward()
        (theirs * torch.tensor(weights)).sum().backward()
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
        for t, tt in ((a, ta), (b, tb)):
            assert t.grad.shape == tuple(tt.grad.shape)
            np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-12, atol=1e-12)
            t.grad = tt.grad = None
    np.testing.assert_allclose(bias.grad.numpy(), tbias.grad.numpy(), rtol=1e-12, atol=1e-12)
