"""A query that every key is masked from (an all-padding sequence in a batch) attends to nothing: zeros and a zero
gradient, as torch's scaled_dot_product_attention and its Transformer layers give, where a plain softmax gave NaN."""

import numpy as np

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.oracle import needs_torch, torch


def both(make):
    return make(engine), make(torch)


@needs_torch
def test_sdpa_rows_masked_whole_are_zeros_with_torchs_gradient():
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((2, 2, 5, 4))
    keep = np.ones((3, 5), bool)
    keep[1] = False  # the second query sees no key
    float_mask = np.where(keep, 0.0, -np.inf)
    for mask in (keep, float_mask):
        outs, grads = [], []
        for lib in (engine, torch):
            tq = lib.tensor(q, requires_grad=True)
            out = lib.nn.functional.scaled_dot_product_attention(tq, lib.tensor(k), lib.tensor(v),
                                                                 attn_mask=lib.tensor(mask))
            (out * lib.tensor(np.arange(out.numel()).reshape(out.shape) % 3)).sum().backward()
            outs.append(out.detach().numpy())
            grads.append(tq.grad.numpy())
        np.testing.assert_allclose(*outs, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(*grads, rtol=1e-8, atol=1e-12)
        assert not np.isnan(outs[0]).any() and (outs[0][:, :, 1] == 0).all()


@needs_torch
def test_an_all_padding_sequence_in_an_encoder_batch_gives_torchs_numbers():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    pad = np.array([[False, False, True], [True, True, True]])
    ours, theirs = nn.TransformerEncoderLayer(4, 1, 8, 0.0, batch_first=True), \
        torch.nn.TransformerEncoderLayer(4, 1, 8, 0.0, batch_first=True)
    theirs.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in ours.state_dict().items()})
    theirs.train()  # the math path, as the engine's
    a = ours(engine.tensor(x), src_key_padding_mask=engine.tensor(pad))
    b = theirs(torch.tensor(x), src_key_padding_mask=torch.tensor(pad))
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    # with the weights asked for, torch's softmax gives NaN there, and so does the engine's
    mha = nn.MultiheadAttention(4, 1, batch_first=True)
    _, weights = mha(engine.tensor(x), engine.tensor(x), engine.tensor(x), key_padding_mask=engine.tensor(pad))
    assert np.isnan(weights[1].detach().numpy()).all()


def test_double_backward_through_masked_attention():
    q = engine.randn(1, 2, 4, dtype=engine.float64, requires_grad=True)
    keep = engine.tensor([[True, False, True], [False, False, False]])
    out = F.scaled_dot_product_attention(q, engine.randn(1, 3, 4, dtype=engine.float64),
                                         engine.randn(1, 3, 4, dtype=engine.float64), attn_mask=keep)
    (g,) = engine.autograd.grad((out ** 2).sum(), q, create_graph=True)
    g.sum().backward()
    assert np.isfinite(q.grad.numpy()).all() and (q.grad.numpy()[0, 1] == 0).all()
