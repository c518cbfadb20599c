"""Reductions over no elements, as PyTorch has them: softmax, log_softmax and logsumexp over a size-0 dim give an
empty tensor and -inf; median of nothing is NaN and backpropagates; max-like reductions with no identity raise
torch's errors naming the dim, not numpy's."""

import numpy as np
import pytest

import engine
import engine.nn.functional as EF
from tests.engine.oracle import needs_torch, one_line, torch

if torch is not None:
    import torch.nn.functional as TF

EMPTY = {  # name -> (fn(L, F, x), input shape), written once for L = engine or torch
    "softmax_last": (lambda L, F, x: F.softmax(x, dim=1), (4, 0)),
    "softmax_first": (lambda L, F, x: F.softmax(x, dim=0), (0, 3)),
    "log_softmax": (lambda L, F, x: F.log_softmax(x, dim=1), (4, 0)),
    "log_softmax_middle": (lambda L, F, x: F.log_softmax(x, dim=1), (2, 0, 3)),
    "logsumexp": (lambda L, F, x: x.logsumexp(1), (3, 0)),
    "logsumexp_kept": (lambda L, F, x: x.logsumexp(-1, keepdim=True), (2, 0)),
    "logsumexp_all": (lambda L, F, x: x.logsumexp((0, 1)), (2, 0)),
    "median": (lambda L, F, x: x.median(), (0,)),
    "nanmedian": (lambda L, F, x: x.nanmedian(), (2, 0)),
}
EXPECTED = {"logsumexp": [-np.inf] * 3, "logsumexp_kept": [[-np.inf], [-np.inf]], "logsumexp_all": -np.inf,
            "median": np.nan, "nanmedian": np.nan}


def _run(L, F, name):
    fn, shape = EMPTY[name]
    x = L.zeros(shape, requires_grad=True)
    out = fn(L, F, x)
    out.sum().backward()
    return out, x.grad


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_reduction_over_no_elements_gives_torchs_value_and_an_empty_gradient(name):
    out, grad = _run(engine, EF, name)
    shape = EMPTY[name][1]
    expected = EXPECTED.get(name, np.zeros(shape))
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    assert out.requires_grad
    assert tuple(grad.shape) == shape
    if torch is not None:
        ref, ref_grad = _run(torch, TF, name)
        assert tuple(out.shape) == tuple(ref.shape)
        np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
        assert tuple(ref_grad.shape) == shape


def test_softmax_of_rows_without_columns_keeps_dtype():
    x = engine.zeros(2, 0, dtype=engine.float16)
    out = EF.log_softmax(x, -1)
    assert out.dtype is engine.float16 and tuple(out.shape) == (2, 0)


NO_DIM = ["amax", "amin", "max", "min", "argmax", "argmin"]


@pytest.mark.parametrize("op", NO_DIM)
def test_max_like_reduction_of_an_empty_tensor_without_dim_asks_for_one(op):
    one_line(lambda: getattr(engine.zeros(1, 0), op)(), RuntimeError,
             rf"^{op}\(\): Expected reduction dim to be specified for input.numel\(\) == 0 \(input shape \(1, 0\)\)\. "
             r"Specify the reduction dim")
    if torch is not None:
        with pytest.raises((RuntimeError, IndexError), match="Expected reduction dim to be specified"):
            getattr(torch.zeros(1, 0), op)()


@pytest.mark.parametrize("op", [*NO_DIM, "median"])
def test_max_like_reduction_over_an_empty_dim_names_it(op):
    one_line(lambda: getattr(engine.zeros(1, 0), op)(1), IndexError,
             rf"^{op}\(\): Expected reduction dim 1 to have non-zero size \(input shape \(1, 0\)\)")
    if torch is not None:
        with pytest.raises(IndexError, match="Expected reduction dim 1 to have non-zero size"):
            getattr(torch.zeros(1, 0), op)(1)


@needs_torch
@pytest.mark.parametrize("op", NO_DIM)
def test_max_like_reduction_over_a_nonempty_dim_of_an_empty_tensor_is_empty(op):
    out = getattr(engine.zeros(1, 0), op)(0)
    ref = getattr(torch.zeros(1, 0), op)(0)
    out, ref = (out[0], ref[0]) if isinstance(out, tuple) else (out, ref)
    assert tuple(out.shape) == tuple(ref.shape) == (0,)
