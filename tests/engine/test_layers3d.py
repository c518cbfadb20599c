"""3-D convolutions, fold/unfold, pixel_unshuffle, 1-D/3-D padding and dropout, BatchNorm3d, SyncBatchNorm and
the Lazy layers a ported torch script reaches for: values and gradients against PyTorch in float64,
finite differences, second order, state_dict, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.engine.oracle import cuda_or_skip, finite_difference_check, needs_torch, same_repr, torch
from tests.engine.test_conv import assert_gpu_matches_cpu

TF = torch.nn.functional if torch is not None else None


def _pair(arrays):
    ours = [engine.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def _close(a, b, tol=1e-9):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    np.testing.assert_allclose(a, b.detach().numpy() if hasattr(b, "detach") else b, rtol=tol, atol=tol)


def match_torch(fn_ours, fn_torch, shapes, seed=0, second_order=False):
    """Values and gradients of every input of fn(*tensors), float64, against torch; with `second_order`,
    the gradients made with create_graph=True and one Hessian-vector product as well."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    ours, theirs = _pair(arrays)
    out_e, out_t = fn_ours(*ours), fn_torch(*theirs)
    assert tuple(out_e.shape) == tuple(out_t.shape)
    _close(out_e, out_t)
    r = rng.standard_normal(tuple(out_t.shape))
    g_e = engine.autograd.grad((out_e * engine.tensor(r)).sum(), ours, create_graph=second_order)
    g_t = torch.autograd.grad((out_t * torch.tensor(r)).sum(), theirs, create_graph=second_order)
    for a, b in zip(g_e, g_t):
        _close(a, b)
    if second_order:
        vs = [rng.standard_normal(s) for s in shapes]
        hv_e = engine.autograd.grad(sum((g * engine.tensor(v)).sum() for g, v in zip(g_e, vs)), ours,
                                    allow_unused=True)
        hv_t = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(g_t, vs)), theirs,
                                   allow_unused=True)
        for a, b, v in zip(hv_e, hv_t, vs):
            _close(0 * v if a is None else a, 0 * v if b is None else b)


# ---- conv3d / conv_transpose3d -------------------------------------------------------------------------
CONV3D = [
    ((1, 2, 4, 5, 4), (3, 2, 2, 3, 2), {}),
    ((2, 2, 5, 4, 5), (2, 2, 3, 2, 3), {"stride": 2, "padding": 1, "bias": True}),
    ((1, 2, 6, 5, 5), (2, 2, 2, 2, 2), {"stride": (2, 1, 3), "padding": (1, 0, 2), "dilation": (2, 1, 1)}),
    ((1, 4, 3, 4, 3), (4, 2, 2, 2, 2), {"groups": 2, "padding": 1, "bias": True}),
    ((1, 4, 4, 4, 4), (4, 1, 3, 3, 3), {"groups": 4, "stride": 3, "padding": 1}),  # depthwise
    ((1, 2, 4, 5, 4), (2, 2, 3, 2, 3), {"padding": "same", "dilation": (1, 2, 1), "bias": True}),
    ((2, 4, 4, 5), (3, 2, 3, 3, 3), {"padding": 1, "bias": True}),  # unbatched
]


@needs_torch
@pytest.mark.parametrize("x,w,opts", CONV3D)
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv3d_matches_torch(x, w, opts):
    opts = dict(opts)
    if opts.pop("bias", False):
        match_torch(lambda x, w, b: F.conv3d(x, w, b, **opts), lambda x, w, b: TF.conv3d(x, w, b, **opts),
                    [x, w, (w[0],)])
    else:
        match_torch(lambda x, w: F.conv3d(x, w, **opts), lambda x, w: TF.conv3d(x, w, **opts), [x, w])


CONV_T3D = [
    ((1, 2, 3, 4, 3), (2, 3, 2, 3, 2), {}),
    ((2, 2, 3, 3, 2), (2, 2, 3, 2, 3), {"stride": 2, "padding": 1, "output_padding": 1, "bias": True}),
    ((1, 2, 3, 2, 3), (2, 2, 2, 2, 2), {"stride": (2, 1, 3), "padding": (1, 0, 1), "dilation": (2, 1, 1),
                                        "output_padding": (1, 0, 2)}),
    ((1, 4, 2, 3, 2), (4, 1, 2, 2, 2), {"groups": 2, "stride": 2, "bias": True}),
    ((1, 2, 2, 3, 2), (2, 2, 3, 3, 3), {"dilation": 2, "stride": 3, "output_padding": 1}),
    ((2, 3, 2, 3), (2, 3, 2, 2, 2), {"padding": 1, "bias": True}),  # unbatched
]


@needs_torch
@pytest.mark.parametrize("x,w,opts", CONV_T3D)
def test_conv_transpose3d_matches_torch(x, w, opts):
    opts = dict(opts)
    groups = opts.get("groups", 1)
    if opts.pop("bias", False):
        match_torch(lambda x, w, b: F.conv_transpose3d(x, w, b, **opts),
                    lambda x, w, b: TF.conv_transpose3d(x, w, b, **opts), [x, w, (w[1] * groups,)])
    else:
        match_torch(lambda x, w: F.conv_transpose3d(x, w, **opts), lambda x, w: TF.conv_transpose3d(x, w, **opts),
                    [x, w])


def test_conv3d_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in [(1, 2, 3, 4, 3), (2, 1, 2, 2, 2), (2,)]]
    finite_difference_check(lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 1), padding=1, groups=2), arrays)
    arrays = [rng.standard_normal(s) for s in [(1, 2, 2, 3, 2), (2, 1, 2, 2, 2), (2,)]]
    finite_difference_check(lambda x, w, b: F.conv_transpose3d(x, w, b, stride=2, output_padding=(1, 0, 1),
                                                                groups=2), arrays)


@needs_torch
def test_conv3d_and_transpose_second_order_match_torch():
    def both(L):
        return lambda x, w, b: L.conv3d(x * x, w, b, stride=(2, 1, 1), padding=1, groups=2) ** 2
    match_torch(both(F), both(TF), [(1, 2, 4, 3, 4), (4, 1, 2, 2, 3), (4,)], second_order=True)

    def both_t(L):
        return lambda x, w, b: L.conv_transpose3d(x * x, w, b, stride=2, padding=1, output_padding=1) ** 2
    match_torch(both_t(F), both_t(TF), [(1, 2, 2, 3, 2), (2, 3, 3, 2, 3), (3,)], second_order=True)


@needs_torch
@pytest.mark.parametrize("cls,args,kwargs,shape", [
    ("Conv3d", (2, 4, 3), {"stride": 2, "padding": 1}, (2, 2, 5, 6, 5)),
    ("Conv3d", (2, 4, (1, 3, 3)), {"padding": (0, 1, 1), "padding_mode": "reflect", "bias": False}, (1, 2, 3, 4, 4)),
    ("Conv3d", (4, 2, 3), {"padding": "same", "groups": 2, "padding_mode": "circular"}, (1, 4, 3, 4, 5)),
    ("ConvTranspose3d", (2, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 2, 3, 2, 3)),
])
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv3d_layers_match_torch_with_copied_weights(cls, args, kwargs, shape):
    ours, theirs = getattr(nn, cls)(*args, **kwargs).double(), getattr(torch.nn, cls)(*args, **kwargs).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    shapes = [tuple(v.shape) for v in ours.state_dict().values()]
    assert shapes == [tuple(v.shape) for v in theirs.state_dict().values()]
    assert same_repr(ours, theirs)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal(shape)
    _close(ours(engine.tensor(x)), theirs(torch.tensor(x)))


def test_conv_transpose3d_output_size_picks_output_padding():
    layer = nn.ConvTranspose3d(2, 2, 3, stride=2, padding=1)
    assert layer(engine.randn(1, 2, 3, 3, 3), output_size=(6, 5, 6)).shape == (1, 2, 6, 5, 6)


@pytest.mark.parametrize("call,match", [
    (lambda: F.conv3d(engine.randn(1, 2, 4, 4), engine.randn(3, 2, 2, 2, 2)),
     r"conv3d: input has 1 channels but weight expects 2"),  # 4-D is an unbatched (C, D, H, W) input
    (lambda: F.conv3d(engine.randn(1, 3, 4, 4, 4), engine.randn(2, 2, 2, 2, 2)),
     r"conv3d: input has 3 channels but weight expects 2"),
    (lambda: F.conv3d(engine.randn(1, 2, 2, 2, 2), engine.randn(2, 2, 3, 3, 3)), r"conv3d: kernel size \(3, 3, 3\)"),
    (lambda: F.conv3d(engine.randn(1, 2, 4, 4, 4), engine.randn(2, 2, 2, 2, 2), stride=(1, 2)), "tuple of 3 ints"),
    (lambda: F.conv_transpose3d(engine.randn(1, 2, 2, 2, 2), engine.randn(2, 2, 2, 2, 2), stride=2,
                                output_padding=2), "output_padding must be smaller"),
    (lambda: F.conv3d(engine.randn(1, 2, 4, 4, 4), engine.randn(2, 2, 2, 2, 2), engine.randn(3)),
     r"bias of shape \(3,\)"),
])
def test_conv3d_bad_input_gets_one_line_error(call, match):
    with pytest.raises((engine.ShapeError, ValueError, TypeError), match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_conv3d_without_a_5d_input_names_the_shapes():
    with pytest.raises(engine.ShapeError, match=r"conv3d: expected a 4-D \(unbatched\) or 5-D \(batched\) input, "
                                                r"got input of shape \(2, 4, 4\)"):
        F.conv3d(engine.randn(2, 4, 4), engine.randn(3, 2, 2, 2, 2))


# ---- fold / unfold / pixel_unshuffle --------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("x,opts", [
    ((2, 3, 5, 6), {"kernel_size": 2}),
    ((1, 2, 6, 5), {"kernel_size": (2, 3), "dilation": (2, 1), "padding": (1, 2), "stride": (2, 1)}),
    ((3, 5, 5), {"kernel_size": 3, "padding": 1, "stride": 2}),  # unbatched
])
def test_unfold_and_fold_match_torch(x, opts):
    match_torch(lambda t: F.unfold(t * t, **opts), lambda t: TF.unfold(t * t, **opts), [x], second_order=True)
    cols = TF.unfold(torch.zeros(x, dtype=torch.float64), **opts).shape
    size = x[-2:]
    match_torch(lambda t: F.fold(t * t, size, **opts), lambda t: TF.fold(t * t, size, **opts), [tuple(cols)],
                second_order=True)
    layer, theirs = nn.Unfold(**opts), torch.nn.Unfold(**opts)
    assert repr(layer) == repr(theirs) and repr(nn.Fold(size, **opts)) == repr(torch.nn.Fold(size, **opts))


def test_fold_is_the_adjoint_of_unfold():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3 * 6, 3 * 6))
    opts = {"kernel_size": (3, 2), "padding": 1, "stride": (2, 1)}
    lhs = (F.unfold(engine.tensor(x), **opts).numpy() * y).sum()
    rhs = (x * F.fold(engine.tensor(y), (6, 5), **opts).numpy()).sum()
    assert np.isclose(lhs, rhs)
    finite_difference_check(lambda t: F.fold(t, (6, 5), **opts) ** 2, [y])


@pytest.mark.parametrize("call,match", [
    (lambda: F.unfold(engine.randn(2, 3, 4, 4, 4), 2), r"unfold: expected a 3-D \(C, H, W\) or 4-D"),
    (lambda: F.unfold(engine.randn(1, 2, 3, 3), 5), r"unfold: kernel_size \(5, 5\)"),
    (lambda: F.fold(engine.randn(1, 7, 9), (4, 4), 2), r"fold: input's dimension 1 \(7\) must be divisible"),
    (lambda: F.fold(engine.randn(1, 8, 8), (4, 4), 2), r"make 3 \* 3 = 9 blocks, but the input has 8"),
    (lambda: F.fold(engine.randn(8), (4, 4), 2), "fold: expected a 2-D"),
])
def test_fold_unfold_bad_input_gets_one_line_error(call, match):
    with pytest.raises((engine.ShapeError, ValueError, TypeError), match=match) as info:
        call()
    assert "\n" not in str(info.value)


@needs_torch
def test_pixel_unshuffle_matches_torch_and_inverts_pixel_shuffle():
    match_torch(lambda t: F.pixel_unshuffle(t, 2), lambda t: TF.pixel_unshuffle(t, 2), [(2, 3, 4, 6)])
    match_torch(lambda t: nn.PixelUnshuffle(3)(t), lambda t: torch.nn.PixelUnshuffle(3)(t), [(2, 2, 1, 3, 6)])
    x = engine.randn(2, 3, 4, 6)
    assert np.array_equal(F.pixel_shuffle(F.pixel_unshuffle(x, 2), 2).numpy(), x.numpy())
    assert repr(nn.PixelUnshuffle(2)) == "PixelUnshuffle(downscale_factor=2)"
    with pytest.raises(engine.ShapeError, match=r"pixel_unshuffle: the width 5 .* not divisible by downscale_factor=2"):
        F.pixel_unshuffle(engine.randn(1, 2, 4, 5), 2)


# ---- padding --------------------------------------------------------------------------------------------
PADS = [
    ("ZeroPad1d", ((1, 2),), (2, 3, 5)), ("ZeroPad3d", (1,), (1, 2, 3, 3, 4)),
    ("ConstantPad1d", (2, 3.5), (3, 4)), ("ConstantPad3d", ((1, 0, 2, 1, 0, 1), -1.0), (2, 2, 2, 3, 3)),
    ("ReflectionPad1d", (2,), (2, 3, 5)), ("ReflectionPad3d", ((1, 2, 1, 0, 2, 1),), (1, 2, 3, 4, 4)),
    ("ReplicationPad1d", ((3, 1),), (3, 4)), ("ReplicationPad3d", (2,), (1, 2, 3, 2, 3)),
    ("CircularPad1d", ((2, 1),), (2, 3, 4)), ("CircularPad2d", (1,), (2, 2, 3, 4)),
    ("CircularPad3d", ((1, 2, 0, 1, 1, 1),), (2, 3, 3, 4)),
]


@needs_torch
@pytest.mark.parametrize("cls,args,shape", PADS)
def test_padding_layers_match_torch(cls, args, shape):
    ours, theirs = getattr(nn, cls)(*args), getattr(torch.nn, cls)(*args)
    assert same_repr(ours, theirs)
    match_torch(ours, theirs, [shape])


def test_padding_layers_reject_bad_arguments_in_one_line():
    with pytest.raises(ValueError, match=r"ZeroPad3d: padding must be an int or 6 ints"):
        nn.ZeroPad3d((1, 2))
    with pytest.raises(ValueError, match=r"ReflectionPad1d: expected a 2D \(unbatched\) or 3D \(batched\) input"):
        nn.ReflectionPad1d(1)(engine.randn(1, 2, 3, 4))


# ---- dropout --------------------------------------------------------------------------------------------
def test_dropout1d_and_3d_drop_whole_channels_and_scale_the_rest():
    engine.manual_seed(0)
    for layer, shape in ((nn.Dropout1d(0.5), (8, 16, 5)), (nn.Dropout3d(0.5), (8, 16, 2, 3, 2)),
                         (nn.Dropout3d(0.5), (16, 2, 3, 2))):
        x = engine.ones(*shape, requires_grad=True)
        y = layer(x)
        flat = y.detach().numpy().reshape(*shape[:-(len(shape) - (2 if len(shape) in (3, 5) else 1))], -1)
        assert set(np.unique(flat)) <= {0.0, 2.0}
        assert all(len(set(row)) == 1 for row in flat.reshape(-1, flat.shape[-1]))  # one draw per channel
        assert 0 < (flat == 0).mean() < 1
        y.sum().backward()
        assert np.array_equal(x.grad.numpy(), y.detach().numpy())
        layer.eval()
        assert layer(x) is x


@needs_torch
def test_alpha_dropout_keeps_mean_and_variance_with_torchs_constants():
    engine.manual_seed(0)
    x = engine.randn(200, 500, dtype=engine.float64)
    y = F.alpha_dropout(x, 0.3, training=True)
    assert abs(float(y.mean())) < 0.02 and abs(float(y.std()) - 1.0) < 0.02
    # on zeros only the shifts remain: one value for kept and one for dropped elements, as torch's
    zeros_e = engine.zeros(100, 100, dtype=engine.float64, requires_grad=True)
    zeros_t = torch.zeros(100, 100, dtype=torch.float64, requires_grad=True)
    out_e, out_t = F.alpha_dropout(zeros_e, 0.3, training=True), TF.alpha_dropout(zeros_t, 0.3, training=True)
    np.testing.assert_allclose(np.unique(out_e.detach().numpy()), np.unique(out_t.detach().numpy()), rtol=1e-12)
    out_e.sum().backward()
    out_t.sum().backward()
    np.testing.assert_allclose(np.unique(zeros_e.grad.numpy()), np.unique(zeros_t.grad.numpy()), rtol=1e-12)
    assert F.alpha_dropout(x, 0.3) is x  # training defaults to False, as in torch
    assert not F.alpha_dropout(x, 1.0, training=True).numpy().any()


def test_feature_alpha_dropout_draws_per_channel_and_differentiates_twice():
    engine.manual_seed(1)
    x = engine.randn(4, 3, 5, dtype=engine.float64, requires_grad=True)
    y = nn.FeatureAlphaDropout(0.4)(x)
    (scale,) = engine.autograd.grad(y.sum(), x, retain_graph=True)
    scale = scale.numpy()
    assert np.all(scale == scale[..., :1])  # one draw per (sample, channel)
    assert len(np.unique(scale)) == 2 and scale.min() == 0
    (g,) = engine.autograd.grad((y * y).sum(), x, create_graph=True)
    assert g.requires_grad
    (h,) = engine.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 2 * scale ** 2)
    with pytest.raises(engine.ShapeError, match="feature_alpha_dropout: expected an input with at least 2 dims"):
        F.feature_alpha_dropout(engine.randn(5), 0.5, training=True)
    with pytest.raises(ValueError, match="alpha_dropout: p must be a probability"):
        F.alpha_dropout(x, 1.5, training=True)


def test_dropout1d_rejects_a_4d_input_in_one_line():
    with pytest.raises(engine.ShapeError, match=r"dropout1d: expected a 2-D \(C, L\) or 3-D \(N, C, L\) input"):
        F.dropout1d(engine.randn(2, 3, 4, 5))


# ---- BatchNorm3d / SyncBatchNorm ------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("cls,shape", [("BatchNorm3d", (3, 4, 2, 3, 2)), ("SyncBatchNorm", (3, 4, 2, 3, 2)),
                                       ("SyncBatchNorm", (5, 4)), ("SyncBatchNorm", (3, 4, 5))])
def test_batch_norm_3d_and_sync_match_torch(cls, shape):
    ours, theirs = getattr(nn, cls)(4).double(), getattr(torch.nn, cls)(4).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    match_torch(lambda x: ours(x) ** 2, lambda x: theirs(x) ** 2, [shape], second_order=True)
    _close(ours.running_mean, theirs.running_mean)
    _close(ours.running_var, theirs.running_var)
    ours.eval()
    theirs.eval()
    match_torch(ours, theirs, [shape], seed=1)
    with pytest.raises(ValueError, match="expected"):
        ours(engine.randn(4))


def test_convert_sync_batchnorm_replaces_every_batch_norm_and_keeps_its_state():
    model = nn.Sequential(nn.Conv3d(2, 4, 1), nn.BatchNorm3d(4), nn.Sequential(nn.BatchNorm1d(4, momentum=None)))
    model[1].running_mean.array[:] = 3.0
    weight = model[1].weight
    before = model.state_dict()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(converted[1]) is nn.SyncBatchNorm and type(converted[2][0]) is nn.SyncBatchNorm
    assert converted[2][0].momentum is None
    assert converted[1].weight is weight
    after = converted.state_dict()
    assert list(before) == list(after)
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)
    assert converted(engine.randn(3, 2, 2, 2, 2)).shape == (3, 4, 2, 2, 2)
    assert type(nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(3))) is nn.SyncBatchNorm


# ---- Lazy layers ----------------------------------------------------------------------------------------
def test_lazy_linear_infers_in_features_and_becomes_linear():
    engine.manual_seed(0)
    layer = nn.LazyLinear(3)
    params = list(layer.parameters())
    assert repr(layer.weight) == "<UninitializedParameter>" and isinstance(layer.weight, nn.UninitializedParameter)
    assert list(layer.state_dict()) == ["weight", "bias"] and layer.in_features == 0
    assert repr(layer) == "LazyLinear(in_features=0, out_features=3, bias=True)"
    opt = engine.optim.SGD(layer.parameters(), lr=0.1)  # built before the first call, as torch allows
    y = layer(engine.randn(5, 4))
    assert y.shape == (5, 3) and type(layer) is nn.Linear and layer.in_features == 4
    assert repr(layer) == "Linear(in_features=4, out_features=3, bias=True)"
    assert [p is q for p, q in zip(layer.parameters(), params)] == [True, True]
    assert type(layer.weight) is nn.Parameter and layer.weight.shape == (3, 4)
    bound = 1 / np.sqrt(4)
    w = layer.weight.detach().numpy()
    assert np.abs(w).max() <= bound and w.std() > 0
    before = w.copy()
    y.sum().backward()
    opt.step()
    assert not np.array_equal(before, layer.weight.detach().numpy())


@pytest.mark.parametrize("cls,args,shape,weight", [
    ("LazyConv1d", (4, 3), (2, 6, 7), (4, 6, 3)),
    ("LazyConv2d", (4, 3), (6, 7, 7), (4, 6, 3, 3)),  # unbatched
    ("LazyConv3d", (4, 2), (1, 6, 3, 3, 3), (4, 3, 2, 2, 2)),
    ("LazyConvTranspose2d", (4, 3), (2, 6, 5, 5), (6, 2, 3, 3)),
    ("LazyConvTranspose3d", (4, 2), (1, 6, 2, 2, 2), (6, 4, 2, 2, 2)),
])
def test_lazy_convs_infer_in_channels(cls, args, shape, weight):
    groups = {"LazyConv3d": 2, "LazyConvTranspose2d": 2}.get(cls, 1)
    layer = getattr(nn, cls)(*args, groups=groups)
    y = layer(engine.randn(*shape))
    assert type(layer).__name__ == cls[4:] and tuple(layer.weight.shape) == weight
    assert layer.in_channels == shape[-len(weight) + 1]
    assert list(layer.state_dict()) == ["weight", "bias"] and y.ndim == len(shape)


def test_lazy_conv_rejects_bad_input_in_one_line():
    with pytest.raises(ValueError, match=r"LazyConv2d: expected a 3D \(unbatched\) or 4D \(batched\) input, got "
                                         r"shape \(3, 5\)"):
        nn.LazyConv2d(4, 3)(engine.randn(3, 5))
    with pytest.raises(ValueError, match=r"LazyConv2d: the input's 3 channels must be divisible by groups \(2\)"):
        nn.LazyConv2d(4, 3, groups=2)(engine.randn(1, 3, 5, 5))


@needs_torch
def test_lazy_model_state_dict_loads_into_torch_after_first_call():
    model = nn.Sequential(nn.LazyConv3d(4, 2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 3, 3)).astype(np.float32)
    y = model(engine.tensor(x))
    theirs = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32, 2))
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    np.testing.assert_allclose(y.detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


# ---- GPU: the same code through CuPy ---------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_matches_cpu():
    cuda_or_skip()
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 4, 5, 6, 5)), rng.standard_normal((6, 2, 3, 2, 3)), rng.standard_normal(6)
    wt = rng.standard_normal((4, 3, 2, 3, 2))
    ops = [
        lambda x, w, b, wt: F.conv3d(x, w, b, stride=(2, 1, 2), padding=1, groups=2, dilation=(1, 2, 1)),
        lambda x, w, b, wt: F.conv_transpose3d(x, wt, b[:3], stride=2, padding=1, output_padding=1),
        lambda x, w, b, wt: F.fold(F.unfold(x[:, :, 0] ** 2, 3, padding=1, stride=2), (6, 5), 3, padding=1,
                                   stride=2),
        lambda x, w, b, wt: F.pixel_unshuffle(x[..., :4], 2),
        lambda x, w, b, wt: nn.CircularPad3d((1, 2, 0, 1, 2, 1))(x) ** 2,
        lambda x, w, b, wt: nn.ReflectionPad3d(1)(x) ** 2 + nn.ReplicationPad3d(1)(x),
    ]
    assert_gpu_matches_cpu(ops, (x, w, b, wt))
    xg = engine.tensor(x, device="cuda", requires_grad=True)
    engine.manual_seed(0)
    for fn in (lambda t: F.dropout3d(t, 0.5), lambda t: F.feature_alpha_dropout(t, 0.3, training=True),
               lambda t: F.alpha_dropout(t, 0.3, training=True)):
        y = fn(xg)
        assert y.device == xg.device
        (g,) = engine.autograd.grad(y.sum(), xg)
        assert 0 < float((g == 0).float().mean()) < 1
    lazy = nn.LazyConv3d(3, 2, device="cuda")
    assert lazy(engine.tensor(x, device="cuda").float()).shape == (2, 3, 4, 5, 4)
    assert lazy.weight.device == xg.device and type(lazy) is nn.Conv3d
    sync = nn.SyncBatchNorm(4, device="cuda")
    assert sync(xg.float()).device == xg.device


@needs_torch
@pytest.mark.parametrize("lazy", ["LazyLinear", "LazyConv2d"])
def test_a_lazy_layer_loads_a_checkpoint_before_its_first_call_as_torch(lazy):
    rng = np.random.default_rng(4)
    if lazy == "LazyLinear":
        args, trained, x = (3,), torch.nn.Linear(5, 3).double(), rng.standard_normal((2, 5))
    else:
        args, trained, x = (4, 3), torch.nn.Conv2d(2, 4, 3).double(), rng.standard_normal((1, 2, 6, 6))
    checkpoint = trained.state_dict()
    ours = getattr(engine.nn, lazy)(*args).double()
    ours.load_state_dict({k: engine.tensor(v.numpy()) for k, v in checkpoint.items()})
    theirs = getattr(torch.nn, lazy)(*args).double()
    theirs.load_state_dict(checkpoint)
    expected = trained(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(theirs(torch.tensor(x)).detach().numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(ours(engine.tensor(x)).detach().numpy(), expected, rtol=1e-12)  # the checkpoint's
