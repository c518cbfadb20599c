"""What a review of the new ops against torch found: embedding_bag's max over long bags, rms_norm in float16,
unfold/fold of an empty batch, float16 random draws, embedding_bag's offsets and empty rows, tensordot's repeated
dims, and grid_sample's backward reusing what its forward computed."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine.ops import activation_more, dropout_more, fold, grid_sample, linalg_more
from tests.engine.oracle import cuda_or_skip, needs_torch, torch

if torch is not None:
    import torch.nn.functional as TF

RNG = np.random.default_rng(5)


# ---- embedding_bag ------------------------------------------------------------------------------------------
def test_embedding_bag_max_of_one_long_bag_among_many_short_ones_stays_small():
    # 1,999 bags of one row and one of 2,000: padding every bag to the longest took 2 GB here
    bags, longest, dim = 2000, 2000, 64
    idx = RNG.integers(0, 10, bags - 1 + longest)
    w = RNG.standard_normal((10, dim)).astype(np.float32)
    tracemalloc.start()
    try:
        out = F.embedding_bag(engine.tensor(idx), engine.tensor(w), engine.tensor(np.arange(bags)), mode="max")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100e6, f"embedding_bag(mode='max') took {peak / 1e6:.0f} MB for {idx.size} rows of {dim}"
    expected = np.concatenate([w[idx[:bags - 1]], w[idx[bags - 1:]].max(0, keepdims=True)])
    np.testing.assert_array_equal(out.numpy(), expected)


@needs_torch
@pytest.mark.parametrize("padding_idx", [None, 0])
def test_embedding_bag_max_gradient_goes_to_the_first_maximum_as_torchs(padding_idx):
    # ties within a bag (rows 1 and 2 are equal, row 3 repeats row 1), an empty bag and padding
    w0 = np.array([[5.0, 9.0], [3.0, 4.0], [3.0, 4.0], [1.0, 8.0]])
    idx, off = [0, 1, 2, 1, 3, 2, 0, 3], [0, 1, 1, 5]
    w, tw = engine.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    y = F.embedding_bag(engine.tensor(idx), w, engine.tensor(off), mode="max", padding_idx=padding_idx)
    ty = TF.embedding_bag(torch.tensor(idx), tw, torch.tensor(off), mode="max", padding_idx=padding_idx)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    r = RNG.standard_normal(tuple(y.shape))
    (y * engine.tensor(r)).sum().backward()
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_of_rows_with_no_columns_gives_empty_bags(mode):
    # torch refuses this with "step must be nonzero"; the engine gives one empty bag (zeros) per row
    out = F.embedding_bag(engine.tensor(np.zeros((4, 0), np.int64)), engine.randn(5, 3), mode=mode)
    assert tuple(out.shape) == (4, 3)
    assert not out.numpy().any()


@pytest.mark.parametrize(("offsets", "last", "message"), [
    ([2, 3], False, r"offsets\[0\] has to be 0.*got 2"),
    ([0, 4, 2], False, r"got offsets\[2\] = 2, below the offset before it"),
    ([0, 2, 9], False, r"got offsets\[2\] = 9, past the input's length \(6\)"),
    ([0, 3, 5], True, r"last offset must be the input's length \(6\), got 5"),
    ([], True, r"last offset must be the input's length \(6\), got no offsets"),
])
def test_embedding_bag_bad_offsets_name_the_offset(offsets, last, message):
    with pytest.raises(ValueError, match=message):
        F.embedding_bag(engine.tensor([1, 2, 3, 4, 0, 1]), engine.randn(5, 2),
                        engine.tensor(np.array(offsets, np.int64)), include_last_offset=last)


@needs_torch
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, float("inf")])
def test_embedding_max_norm_renormalises_each_named_row_once_as_torch(norm_type):
    w0 = RNG.standard_normal((6, 3)) * 3
    idx = [[4, 1, 4], [1, 0, 4]]  # rows named more than once are scaled once
    w, tw = engine.tensor(w0.copy()), torch.tensor(w0.copy())
    y = F.embedding(engine.tensor(idx), w, max_norm=1.5, norm_type=norm_type)
    ty = TF.embedding(torch.tensor(idx), tw, max_norm=1.5, norm_type=norm_type)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.numpy(), tw.numpy(), rtol=1e-12)
    with pytest.raises(IndexError, match="index -1 is out of range"):
        F.embedding(engine.tensor([2, -1]), w, max_norm=1.0)
    np.testing.assert_allclose(w.numpy(), tw.numpy(), rtol=1e-12)  # a refused call writes nothing


def test_embedding_bag_on_gpu_matches_cpu_and_checks_offsets_on_the_device():
    cuda_or_skip()
    w0 = RNG.standard_normal((10, 3))
    idx, off = RNG.integers(0, 10, 9), np.array([0, 2, 2, 6])
    for mode in ("sum", "mean", "max"):
        c = F.embedding_bag(engine.tensor(idx), engine.tensor(w0), engine.tensor(off), mode=mode, padding_idx=3)
        g = F.embedding_bag(engine.tensor(idx, device="cuda"), engine.tensor(w0, device="cuda"),
                            engine.tensor(off, device="cuda"), mode=mode, padding_idx=3)
        np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=1e-12)
    # the device-side checks raise at the next op that looks (the bag's own lookup) or at the copy, not later
    with pytest.raises(ValueError, match=r"offsets\[2\] = 3, below the offset before it"):
        F.embedding_bag(engine.tensor(idx, device="cuda"), engine.tensor(w0, device="cuda"),
                        engine.tensor([0, 5, 3], device="cuda")).cpu()
    with pytest.raises(IndexError, match="index 12 is out of range"):
        F.embedding_bag(engine.tensor([1, 12], device="cuda"), engine.tensor(w0, device="cuda"),
                        engine.tensor([0], device="cuda")).cpu()


# ---- rms_norm and float16 draws ---------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("with_weight", [False, True])
def test_rms_norm_float16_of_large_values_does_not_overflow(with_weight):
    x0 = np.array([[300.0, 200.0, 100.0, 50.0], [1e-3, 2e-3, 0.0, 0.0]], np.float16)
    w0 = np.array([1.5, 2.0, 3.0, 4.0], np.float16)
    x, tx = engine.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    w, tw = (engine.tensor(w0), torch.tensor(w0)) if with_weight else (None, None)
    y, ty = F.rms_norm(x, (4,), w), TF.rms_norm(tx, (4,), tw)
    assert y.dtype == engine.float16
    np.testing.assert_allclose(y.detach().numpy().astype(np.float32), ty.detach().numpy().astype(np.float32),
                               rtol=2e-3)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy().astype(np.float32), tx.grad.numpy().astype(np.float32),
                               rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize("draw", [
    lambda x: dropout_more.alpha_dropout(x, 0.3, True),
    lambda x: dropout_more.feature_alpha_dropout(x.reshape(4, 25, 1), 0.3, True),
    lambda x: activation_more.rrelu(-x, training=True),
    lambda x: activation_more.gumbel_softmax(x, hard=False),
], ids=["alpha_dropout", "feature_alpha_dropout", "rrelu", "gumbel_softmax"])
def test_random_ops_draw_for_float16(draw):
    x = engine.tensor(np.ones(100, np.float16), requires_grad=True)
    y = draw(x)
    assert y.dtype == engine.float16
    assert np.isfinite(y.detach().numpy()).all()
    y.sum().backward()
    assert x.grad.dtype == engine.float16


def test_alpha_dropout_keeps_mean_and_variance():
    engine.manual_seed(3)
    x = RNG.standard_normal(200_000).astype(np.float32)
    y = dropout_more.alpha_dropout(engine.tensor(x), 0.2, True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02


# ---- unfold / fold of an empty batch ----------------------------------------------------------------------------
def test_unfold_and_fold_of_an_empty_batch_give_empty_results_of_torchs_shapes():
    x = engine.tensor(np.zeros((0, 3, 5, 5), np.float32), requires_grad=True)
    cols = fold.unfold(x, 2)
    assert tuple(cols.shape) == (0, 12, 16)  # torch: F.unfold(torch.zeros(0, 3, 5, 5), 2).shape
    cols.sum().backward()
    assert tuple(x.grad.shape) == (0, 3, 5, 5)
    c = engine.tensor(np.zeros((0, 12, 16), np.float32), requires_grad=True)
    image = fold.fold(c, (5, 5), 2)
    assert tuple(image.shape) == (0, 3, 5, 5)
    image.sum().backward()
    assert tuple(c.grad.shape) == (0, 12, 16)


# ---- tensordot -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("dims", "shown"), [(([1, 1], [1, 0]), "[1, 1]"), (([0, 1], [2, -1]), "[2, 2]")])
def test_tensordot_with_a_repeated_dim_says_so(dims, shown):
    a, b = engine.randn(3, 3, 3), engine.randn(3, 3, 3)
    twice = shown[1]
    with pytest.raises(RuntimeError, match=rf"tensordot: dim {twice} appears more than once in dims \{shown}"):
        linalg_more.tensordot(a, b, dims=dims)


# ---- grid_sample: backward reuses forward's taps ------------------------------------------------------------------
@pytest.mark.parametrize("create_graph", [False, True])
def test_grid_sample_backward_reuses_the_taps_forward_built(monkeypatch, create_graph):
    built = []

    class Counted(grid_sample._Taps):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(grid_sample, "_Taps", Counted)
    x = engine.tensor(RNG.standard_normal((1, 2, 4, 5)), requires_grad=True)
    grid = engine.tensor(RNG.uniform(-1.2, 1.2, (1, 3, 3, 2)), requires_grad=True)
    y = grid_sample.grid_sample(x, grid, mode="bicubic", align_corners=False)
    gx, gg = engine.autograd.grad((y * y).sum(), (x, grid), create_graph=create_graph)
    if create_graph:
        (gx.sum() + gg.sum()).backward()
    assert len(built) == 1
