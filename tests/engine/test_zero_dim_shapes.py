"""0-d tensors through shape ops, as PyTorch treats them: dim 0 (or -1) names their one position, so movedim and
mT leave them as they are, index_select takes one index, prelu keeps their shape, and unflatten has no dim to split."""

import warnings

import numpy as np
import pytest

import engine
import engine.nn.functional as EF
from tests.engine.oracle import one_line, torch

if torch is not None:
    import torch.nn.functional as TF

SAME = {  # name -> fn(L, F, x) of a 0-d x, written once for L = engine or torch
    "movedim": lambda L, F, x: x.movedim(0, 0),
    "movedim_negative": lambda L, F, x: x.movedim(-1, 0),
    "movedim_tuples": lambda L, F, x: L.movedim(x, (0,), (-1,)),
    "moveaxis": lambda L, F, x: x.moveaxis(0, -1),
    "index_select_one": lambda L, F, x: x.index_select(0, L.tensor([0])),
    "index_select_0d_index": lambda L, F, x: x.index_select(-1, L.tensor(0)),
    "prelu_one_slope": lambda L, F, x: F.prelu(x, L.tensor([0.25], dtype=x.dtype)),
    "prelu_0d_slope": lambda L, F, x: F.prelu(x, L.tensor(0.25, dtype=x.dtype)),
}


def _run(L, F, name, value):
    x = L.tensor(value, dtype=L.float64, requires_grad=True)
    out = SAME[name](L, F, x)
    (out * 3).backward()
    return out, x.grad


@pytest.mark.parametrize("name", sorted(SAME))
@pytest.mark.parametrize("value", [-2.0, 1.5])
def test_shape_op_of_a_0d_tensor_keeps_it_0d_with_its_gradient(name, value):
    out, grad = _run(engine, EF, name, value)
    assert tuple(out.shape) == ()
    slope = 0.25 if name.startswith("prelu") and value < 0 else 1.0
    assert out.item() == value * slope and grad.item() == 3 * slope
    if torch is not None:
        ref, ref_grad = _run(torch, TF, name, value)
        assert tuple(ref.shape) == () and ref.item() == out.item() and ref_grad.item() == grad.item()


def test_prelu_of_more_dims_keeps_one_slopes_broadcast():
    x = engine.tensor([[-1.0, 2.0], [3.0, -4.0]])
    np.testing.assert_allclose(EF.prelu(x, engine.tensor([0.5])).numpy(), [[-0.5, 2.0], [3.0, -2.0]])


def test_mT_of_a_0d_tensor_is_itself_with_torchs_deprecation_warning():
    for L in (engine, torch) if torch is not None else (engine,):
        x = L.tensor(2.0)
        with pytest.warns(UserWarning, match="mT is deprecated on 0-D tensors"):
            assert x.mT.item() == 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one_line(lambda: engine.ones(3).mT, RuntimeError, "only supported on matrices or batches of matrices. Got 1-D")


def test_0d_refusals_say_what_is_wrong_in_one_line():
    x = engine.tensor(1.0)
    one_line(lambda: x.index_select(0, engine.tensor([0, 0])), RuntimeError,
             r"^index_select\(\): Index to scalar can have only 1 value, got 2 value\(s\)$")
    one_line(lambda: x.unflatten(0, (1,)), RuntimeError,
             r"^unflatten: dimension specified as 0 but the tensor has no dimensions \(a 0-d tensor\)")
    one_line(lambda: x.movedim(1, 0), IndexError, r"Dimension out of range \(expected to be in range of \[-1, 0\]")
    if torch is not None:
        for call in (lambda L: L.tensor(1.0).index_select(0, L.tensor([0, 0])),
                     lambda L: L.tensor(1.0).unflatten(0, (1,))):
            with pytest.raises(RuntimeError):
                call(torch)
