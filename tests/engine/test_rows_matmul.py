"""N-D inputs times 2-D weights, which linear and matmul run as one product over the rows: torch's values and
gradients, empty dims included."""

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from tests.engine.oracle import cuda_or_skip, needs_torch, torch

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


@pytest.mark.parametrize(("sa", "sb"), SHAPES[:4], ids=str)
def test_rows_products_on_cuda_match_the_cpu(sa, sb):
    cuda_or_skip()
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    results = []
    for device in ("cpu", "cuda"):
        x, w = engine.tensor(a, device=device, requires_grad=True), engine.tensor(b, device=device, requires_grad=True)
        y = F.linear(x, w.T) + x @ w
        y.sum().backward()
        results.append([t.detach().cpu().numpy() for t in (y, x.grad, w.grad)])
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
