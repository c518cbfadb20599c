"""torch's top-level layer functions (torch.conv2d, torch.batch_norm, torch.kl_div ...) under engine.*, with torch's
signatures, and the functional names ported scripts still missed, compared with PyTorch."""

import subprocess
import sys

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.oracle import FWD_ATOL, FWD_RTOL, check_grads, cuda_or_skip, needs_torch, torch, torch_check


def _names(text: str) -> list[str]:
    return text.split()


TOP_LEVEL = _names("conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d convolution layer_norm "
             "group_norm batch_norm instance_norm dropout alpha_dropout feature_alpha_dropout feature_dropout "
             "embedding embedding_bag max_pool1d max_pool2d max_pool3d avg_pool1d adaptive_avg_pool1d "
             "adaptive_max_pool1d kl_div cosine_embedding_loss hinge_embedding_loss margin_ranking_loss "
             "triplet_margin_loss poisson_nll_loss binary_cross_entropy_with_logits pixel_unshuffle channel_shuffle "
             "native_channel_shuffle bilinear prelu ctc_loss constant_pad_nd pairwise_distance cosine_similarity "
             "relu_ conv_tbc")
FUNCTIONAL = _names("relu_ elu_ leaky_relu_ hardtanh_ bilinear max_pool1d_with_indices max_pool2d_with_indices "
              "max_pool3d_with_indices adaptive_max_pool1d_with_indices adaptive_max_pool2d_with_indices "
              "adaptive_max_pool3d_with_indices upsample upsample_nearest upsample_bilinear conv_tbc channel_shuffle "
              "native_channel_shuffle fractional_max_pool2d fractional_max_pool3d fractional_max_pool2d_with_indices "
              "fractional_max_pool3d_with_indices")
LAYERS = _names("LazyBatchNorm1d LazyBatchNorm2d LazyBatchNorm3d LazyInstanceNorm1d LazyInstanceNorm2d "
                "LazyInstanceNorm3d ChannelShuffle NLLLoss2d RNNCellBase FractionalMaxPool2d FractionalMaxPool3d "
                "AdaptiveLogSoftmaxWithLoss "
                "Buffer UninitializedBuffer")
# torch's top-level function is its functional (torch.conv2d is F.conv2d): so are the engine's
SAME_AS_FUNCTIONAL = _names("conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d avg_pool1d "
                      "adaptive_avg_pool1d pixel_unshuffle pixel_shuffle channel_shuffle native_channel_shuffle "
                      "bilinear prelu pairwise_distance cosine_similarity relu_ conv_tbc")


def test_every_listed_name_exists():
    assert [n for n in TOP_LEVEL if not callable(getattr(engine, n, None))] == []
    assert [n for n in FUNCTIONAL if not callable(getattr(F, n, None))] == []
    assert [n for n in LAYERS if not hasattr(nn, n)] == []
    assert set(FUNCTIONAL) <= set(F.__all__)


def test_top_level_functions_that_torch_shares_with_its_functional_are_the_same_function():
    assert [n for n in SAME_AS_FUNCTIONAL if getattr(engine, n) is not getattr(F, n)] == []


def test_import_engine_still_does_not_load_engine_nn():
    code = "import sys, engine; engine.batch_norm; engine.channel_shuffle; print('engine.nn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _pair(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return engine.tensor(a), torch.tensor(a)


def _same(ours, theirs, rtol=FWD_RTOL, atol=FWD_ATOL):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


# ---- torch's own signatures -------------------------------------------------------------------------------------
@needs_torch
def test_norms_with_torch_argument_order():
    (x, xt), (w, wt), (b, bt) = _pair((4, 3, 5)), _pair((3,), 1), _pair((3,), 2)
    rm, rv = engine.zeros(3), engine.ones(3)
    rmt, rvt = torch.zeros(3), torch.ones(3)
    _same(engine.batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5, False),
          torch.batch_norm(xt, wt, bt, rmt, rvt, True, 0.1, 1e-5, False))
    _same(rm, rmt)
    _same(engine.instance_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
          torch.instance_norm(xt, wt, bt, None, None, True, 0.1, 1e-5, False))
    _same(engine.layer_norm(x, (5,)), torch.layer_norm(xt, (5,)))
    _same(engine.group_norm(x, 3, w, b), torch.group_norm(xt, 3, wt, bt))


@needs_torch
def test_losses_take_an_int_reduction():
    (a, at), (p, pt), (n, nt) = _pair((4, 6)), _pair((4, 6), 1), _pair((4, 6), 2)
    y = np.array([1.0, -1.0, 1.0, -1.0], np.float32)
    for r in (0, 1, 2):
        _same(engine.kl_div(a, p.softmax(1), r), torch.kl_div(at, pt.softmax(1), r))
        _same(engine.kl_div(a, p, r, log_target=True), torch.kl_div(at, pt, r, log_target=True))
        _same(engine.cosine_embedding_loss(a, p, engine.tensor(y), 0.1, r),
              torch.cosine_embedding_loss(at, pt, torch.tensor(y), 0.1, r))
        _same(engine.hinge_embedding_loss(a, engine.tensor(np.sign(p.numpy())), 0.5, r),
              torch.hinge_embedding_loss(at, torch.sign(pt), 0.5, r))
        _same(engine.margin_ranking_loss(a[:, 0], p[:, 0], engine.tensor(y), 0.2, r),
              torch.margin_ranking_loss(at[:, 0], pt[:, 0], torch.tensor(y), 0.2, r))
        _same(engine.triplet_margin_loss(a, p, n, 1.0, 2, 1e-6, False, r),
              torch.triplet_margin_loss(at, pt, nt, 1.0, 2, 1e-6, False, r))
        _same(engine.poisson_nll_loss(a, p.abs(), True, False, 1e-8, r),
              torch.poisson_nll_loss(at, pt.abs(), True, False, 1e-8, r))
        _same(engine.binary_cross_entropy_with_logits(a, p.sigmoid(), None, None, r),
              torch.binary_cross_entropy_with_logits(at, pt.sigmoid(), None, None, r))


@needs_torch
def test_ctc_loss_with_an_int_reduction():
    log_probs, lpt = _pair((6, 2, 4))
    targets = np.array([[1, 2], [3, 1]])
    ours = engine.ctc_loss(log_probs.log_softmax(2), engine.tensor(targets), [6, 5], [2, 2], 0, 2)
    theirs = torch.ctc_loss(lpt.log_softmax(2), torch.tensor(targets), [6, 5], [2, 2], 0, 2)
    _same(ours, theirs)


def test_an_int_reduction_is_checked():
    x = engine.randn(3)
    with pytest.raises(TypeError, match="reduction"):
        engine.kl_div(x, x, "mean")
    with pytest.raises(ValueError, match="reduction must be 0"):
        engine.margin_ranking_loss(x, x, x.sign(), 0.0, 3)


@needs_torch
def test_embedding_takes_the_weight_first():
    (w, wt) = _pair((6, 3))
    idx = np.array([[0, 2], [5, 2]])
    _same(engine.embedding(w, engine.tensor(idx)), torch.embedding(wt, torch.tensor(idx)))
    check_grads(lambda w: engine.embedding(w, engine.tensor(idx)), [(6, 3)],
                torch_fn=lambda w: torch.embedding(w, torch.tensor(idx)))
    # padding_idx: that row gets no gradient
    torch_check(lambda w: engine.embedding(w, engine.tensor(idx), 2), [w.numpy()],
                torch_fn=lambda w: torch.embedding(w, torch.tensor(idx), 2))


@needs_torch
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_embedding_bag_returns_torch_four_tensors(mode):
    w, wt = _pair((10, 3))
    idx, offsets = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 0, 4])
    ours = engine.embedding_bag(w, engine.tensor(idx), engine.tensor(offsets), False, mode)
    theirs = torch.embedding_bag(wt, torch.tensor(idx), torch.tensor(offsets), False, mode)
    _same(ours[0], theirs[0])
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@needs_torch
def test_pools_with_torch_signatures():
    x, xt = _pair((2, 3, 8, 8, 8))
    _same(engine.max_pool1d(x[0, 0, 0], 2), torch.max_pool1d(xt[0, 0, 0], 2))
    _same(engine.max_pool2d(x[0], 3, (), 1), torch.max_pool2d(xt[0], 3, [], 1))
    _same(engine.max_pool3d(x, 2, 1), torch.max_pool3d(xt, 2, 1))
    values, indices = engine.adaptive_max_pool1d(x[0, 0], 3)
    ref_values, ref_indices = torch.adaptive_max_pool1d(xt[0, 0], 3)
    _same(values, ref_values)
    np.testing.assert_array_equal(indices.numpy(), ref_indices.numpy())


@needs_torch
def test_convolution_and_conv_tbc():
    x, xt = _pair((2, 4, 7, 6))
    w, wt = _pair((6, 2, 3, 3), 1)
    b, bt = _pair((6,), 2)
    _same(engine.convolution(x, w, b, (2, 1), (1, 0), (1, 1), False, (0, 0), 2),
          torch.convolution(xt, wt, bt, (2, 1), (1, 0), (1, 1), False, (0, 0), 2))
    wt2 = torch.tensor(np.random.default_rng(3).standard_normal((4, 3, 2, 2)).astype(np.float32))
    _same(engine.convolution(x, engine.tensor(wt2.numpy()), None, 2, 1, 1, True, 1, 1),
          torch.convolution(xt, wt2, None, [2, 2], [1, 1], [1, 1], True, [1, 1], 1))
    check_grads(lambda x, w, b: engine.conv_tbc(x, w, b, 1), [(7, 2, 4), (3, 4, 5), (5,)],
                torch_fn=lambda x, w, b: torch.conv_tbc(x, w, b, 1))
    with pytest.raises(ValueError, match="conv_tbc"):
        engine.conv_tbc(engine.randn(7, 2, 4), engine.randn(3, 5, 5), engine.randn(5))


@needs_torch
def test_constant_pad_nd():
    check_grads(lambda x: engine.constant_pad_nd(x, [1, 2, 0, -1], 0.5), [(3, 4)],
                torch_fn=lambda x: torch.constant_pad_nd(x, [1, 2, 0, -1], 0.5))


def test_dropouts_with_torch_signatures():
    x = engine.ones(200, 8, 5)
    for fn in (engine.dropout, engine.alpha_dropout, engine.feature_alpha_dropout, engine.feature_dropout):
        assert fn(x, 0.5, False) is x
    dropped = engine.dropout(x, 0.5, True).numpy()
    assert set(np.unique(dropped)) <= {0.0, 2.0} and 0.4 < (dropped == 0).mean() < 0.6
    channels = engine.feature_dropout(x, 0.5, True).numpy()
    assert set(np.unique(channels)) <= {0.0, 2.0}
    assert (channels.min(axis=2) == channels.max(axis=2)).all()  # whole channels, as torch.feature_dropout
    assert 0.4 < (channels[:, :, 0] == 0).mean() < 0.6
    with pytest.raises(ValueError, match="at least 2 dims"):
        engine.feature_dropout(engine.ones(5), 0.5, True)


def test_torch_level_names_on_cuda():
    cuda_or_skip()
    x = engine.randn(2, 4, 3, 3, device="cuda")
    out = engine.channel_shuffle(x, 2)
    np.testing.assert_allclose(out.cpu().numpy(), engine.channel_shuffle(x.cpu(), 2).numpy())
    w = engine.randn(6, 3, device="cuda")
    out = engine.embedding_bag(w, engine.tensor([0, 2, 5, 1], device="cuda"),
                               engine.tensor([0, 2], device="cuda"), False, 2)
    assert out[0].device.type == "cuda"
