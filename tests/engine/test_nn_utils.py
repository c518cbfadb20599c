"""engine.nn.utils as torch.nn.utils: pad_sequence, parameters_to_vector and back."""

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.autograd.function import ShapeError
from engine.nn.utils.rnn import pad_sequence
from tests.engine.oracle import needs_torch, torch

LENGTHS = (3, 1, 4)


def _sequences(lib, rng_values, requires_grad=True):
    return [lib.tensor(v, requires_grad=requires_grad) for v in rng_values]


@needs_torch
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_matches_torch_forward_and_backward(batch_first, side):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((n, 2)).astype(np.float32) for n in LENGTHS]
    weights = rng.standard_normal((4, 3, 2) if not batch_first else (3, 4, 2)).astype(np.float32)
    out = {}
    for lib, pad in ((engine, pad_sequence), (torch, torch.nn.utils.rnn.pad_sequence)):
        seqs = _sequences(lib, values)
        padded = pad(seqs, batch_first=batch_first, padding_value=-2.0, padding_side=side)
        (padded * lib.tensor(weights)).sum().backward()
        out[lib.__name__] = (padded.detach().numpy(), [s.grad.numpy() for s in seqs])
    (ours, our_grads), (theirs, their_grads) = out["engine"], out["torch"]
    np.testing.assert_array_equal(ours, theirs)
    for a, b in zip(our_grads, their_grads, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pad_sequence_refuses_what_cannot_be_stacked():
    with pytest.raises(ShapeError, match=r"sequence 1 has shape \(2, 3\)"):
        pad_sequence([engine.ones(2, 2), engine.ones(2, 3)])
    with pytest.raises(ValueError, match="empty list"):
        pad_sequence([])
    with pytest.raises(TypeError, match="expected a sequence of Tensors, got list"):
        pad_sequence([engine.ones(2), [1.0, 2.0]])
    with pytest.raises(ValueError, match="padding_side must be 'left' or 'right'"):
        pad_sequence([engine.ones(2)], padding_side="middle")


@needs_torch
def test_parameters_to_vector_and_back_match_torch():
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.tensor(p.detach().numpy()))
    vec = nn.utils.parameters_to_vector(ours.parameters())
    np.testing.assert_array_equal(vec.detach().numpy(),
                                  torch.nn.utils.parameters_to_vector(theirs.parameters()).detach().numpy())
    new = np.arange(8, dtype=np.float32)
    nn.utils.vector_to_parameters(engine.tensor(new), ours.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs.parameters())
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    with pytest.raises(ShapeError, match="the vector has 3 elements, the parameters 8"):
        nn.utils.vector_to_parameters(engine.ones(3), ours.parameters())
