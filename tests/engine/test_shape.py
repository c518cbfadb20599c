"""Shape ops against finite differences and PyTorch; views, dtype promotion and error messages."""

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, needs_torch, torch

SHAPE = (2, 3, 4)


@pytest.mark.parametrize("fn", [
    lambda x: x.reshape(4, -1), lambda x: x.reshape((6, 4)), lambda x: x.view(-1), lambda x: x.view(2, 12),
    lambda x: x.transpose(0, -1), lambda x: x.swapaxes(1, 2), lambda x: x.permute(2, 0, 1),
    lambda x: x.permute((1, -1, 0)), lambda x: x.movedim(0, -1), lambda x: x.movedim((0, 1), (2, 0)),
    lambda x: x.flatten(), lambda x: x.flatten(1), lambda x: x.flatten(0, -2),
    lambda x: x.unflatten(2, (2, -1)),
    lambda x: x[:, :1].squeeze(), lambda x: x[:, :1].squeeze(1), lambda x: x[:1, :1].squeeze((0, 1)),
    lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(2),
    lambda x: x[:, :1].expand(2, 3, 4), lambda x: x[0].expand(2, -1, -1),
    lambda x: x[:, :1].expand(5, -1, 2, -1),
    lambda x: x.repeat(1, 2, 1), lambda x: x.repeat(2, 1, 1, 3),
    lambda x: x.flip(0), lambda x: x.flip((0, -1)),
    lambda x: x.roll(1), lambda x: x.roll(2, 1), lambda x: x.roll((1, -2), (0, 2)),
    lambda x: x[0].T, lambda x: x.mT,
], ids=["reshape-1", "reshape-tuple", "view-1", "view", "transpose", "swapaxes", "permute", "permute-tuple",
        "movedim", "movedim-tuple", "flatten", "flatten1", "flatten0-2", "unflatten", "squeeze", "squeeze1",
        "squeeze-tuple", "unsqueeze0", "unsqueeze-1", "unsqueeze2", "expand", "expand-lead", "expand-new",
        "repeat", "repeat-lead", "flip", "flip2", "roll-flat", "roll", "roll2", "T", "mT"])
def test_unary_shape_ops(fn):
    check_grads(fn, [SHAPE])


def test_as_variants():
    check_grads(lambda x, y: x.reshape_as(y) * y, [(3, 4), (2, 6)])
    check_grads(lambda x, y: x.view_as(y) * y, [(3, 4), (4, 3)])
    check_grads(lambda x, y: x.expand_as(y) * y, [(3, 1), (2, 3, 4)])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack(dim):
    check_grads(lambda a, b, c: engine.cat([a, b * 2, c], dim), [(2, 3), (2, 3), (2, 3)],
                torch_fn=lambda a, b, c: torch.cat([a, b * 2, c], dim))
    check_grads(lambda a, b: engine.stack((a, b), dim), [(2, 3), (2, 3)],
                torch_fn=lambda a, b: torch.stack((a, b), dim))


def test_cat_of_different_sizes_along_dim():
    check_grads(lambda a, b: engine.cat([a, b], dim=-1), [(2, 1), (2, 4)],
                torch_fn=lambda a, b: torch.cat([a, b], dim=-1))


@pytest.mark.parametrize("pieces", [
    lambda x: x.split(2, 1), lambda x: x.split([1, 3], -1), lambda x: x.chunk(3, 1), lambda x: x.chunk(2),
    lambda x: x.split(3, dim=-1),
], ids=["split-size", "split-sections", "chunk", "chunk0", "split-uneven"])
def test_split_and_chunk_pieces_are_differentiable(pieces):
    # weight each piece differently so a piece's gradient going to the wrong place shows
    check_grads(lambda x: sum((p * (i + 1)).sum() for i, p in enumerate(pieces(x))), [(4, 4)])


@needs_torch
@pytest.mark.parametrize("args", [(2, 1), ([1, 4], -1), (3, 0)])
def test_split_shapes_match_torch(args):
    x = np.arange(20.0, dtype=np.float32).reshape(4, 5)
    ours, ref = engine.tensor(x).split(*args), torch.tensor(x).split(*args)
    assert [p.tolist() for p in ours] == [p.tolist() for p in ref]
    assert isinstance(ours, tuple)
    for chunks in (1, 2, 3, 4, 6):
        assert [p.shape for p in engine.tensor(x).chunk(chunks, 1)] == \
            [tuple(p.shape) for p in torch.tensor(x).chunk(chunks, 1)]


@pytest.mark.parametrize("pad,mode,value", [
    ((1, 2), "constant", 0.0), ((1, 0, 2, 1), "constant", -3.0), ((-1, 2, 1, -1), "constant", 1.5),
    ((2, 1), "reflect", 0.0), ((1, 2, 2, 0), "reflect", 0.0), ((2, 3), "replicate", 0.0),
    ((1, 0, 0, 2), "replicate", 0.0), ((2, 1), "circular", 0.0), ((1, 3, 2, 1), "circular", 0.0),
])
def test_pad_modes(pad, mode, value):
    # non-constant modes in torch want a batch dim in front of the padded ones: (1, 3, 4) / (1, 1, 3, 4)
    shape = (1, 3, 4) if len(pad) == 2 else (1, 1, 3, 4)
    fn = (lambda x: engine.pad(x, pad, mode=mode, value=value)) if mode == "constant" \
        else (lambda x: engine.pad(x, pad, mode=mode))
    ref = (lambda x: torch.nn.functional.pad(x, pad, mode=mode, value=value)) if mode == "constant" \
        else (lambda x: torch.nn.functional.pad(x, pad, mode=mode))
    check_grads(fn, [shape], torch_fn=ref)


def test_pad_errors():
    x = engine.ones(2, 3)
    with pytest.raises(engine.ShapeError, match=r"pad: reflect padding \(3, 0\) is too large for dim"):
        engine.pad(x, (3, 0), mode="reflect")
    with pytest.raises(engine.ShapeError, match=r"pad: padding \(1, 1, 1\)"):
        engine.pad(x, (1, 1, 1))
    with pytest.raises(ValueError, match="mode must be"):
        engine.pad(x, (1, 1), mode="wrap")


# ---- views -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda x: x.view(6), lambda x: x.reshape(3, 2), lambda x: x.transpose(0, 1), lambda x: x.permute(1, 0),
    lambda x: x.expand(4, 2, 3), lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(0).squeeze(0),
    lambda x: x.flatten(), lambda x: x.split(1)[1], lambda x: x.chunk(2, 1)[0], lambda x: x.T,
], ids=["view", "reshape", "transpose", "permute", "expand", "unsqueeze", "squeeze", "flatten", "split",
        "chunk", "T"])
def test_views_share_memory_and_version(make):
    x = engine.arange(6.0).reshape(2, 3)
    v = make(x)
    before = v.numpy().copy()
    x.add_(10)  # an in-place change to the base shows through the view, and bumps the view's version
    np.testing.assert_array_equal(v.numpy(), before + 10)
    assert v._version == x._version == 1


def test_in_place_change_through_a_view_is_caught_by_backward():
    w = engine.randn(6)
    x = engine.randn(2, 3, requires_grad=True)
    y = x * w.view(2, 3)  # mul saves the view for backward
    w.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_copying_ops_do_not_alias():
    x = engine.arange(6.0).reshape(2, 3)
    copies = [x.transpose(0, 1).reshape(6), x.flip(0), x.repeat(1, 1), engine.cat([x]), engine.stack([x]),
              engine.pad(x, (0, 1)), x.roll(1)]
    values = [c.numpy().copy() for c in copies]
    x.add_(1)
    for c, v in zip(copies, values):
        np.testing.assert_array_equal(c.numpy(), v)
        assert c._version == 0


def test_view_of_non_contiguous_tensor_asks_for_reshape():
    x = engine.arange(6.0).reshape(2, 3).transpose(0, 1)
    with pytest.raises(RuntimeError, match=r"view: a tensor of shape \(3, 2\) cannot be viewed.*reshape"):
        x.view(6)
    assert x.contiguous().view(6).tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    assert x.reshape(6).tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


# ---- dtypes and errors -----------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("dtypes", [("int64", "float64"), ("int32", "bool"), ("float32", "float64"),
                                    ("bool", "bool"), ("int32", "int64")])
def test_cat_and_stack_promote_like_torch(dtypes):
    arrays = [np.ones((2, 2), dtype=d) for d in dtypes]
    for ours_fn, ref_fn in ((engine.cat, torch.cat), (engine.stack, torch.stack)):
        ours = ours_fn([engine.tensor(a) for a in arrays])
        ref = ref_fn([torch.tensor(a) for a in arrays])
        assert ours.dtype.name == str(ref.dtype).removeprefix("torch.")


def test_cat_skips_legacy_empty_tensors():
    x = engine.ones(2, 3, requires_grad=True)
    out = engine.cat([engine.tensor([]), x, engine.tensor([])])
    assert out.shape == (2, 3)
    out.sum().backward()
    assert x.grad.tolist() == [[1.0] * 3] * 2


@pytest.mark.parametrize("call,message", [
    (lambda: engine.cat([engine.ones(2, 3), engine.ones(3, 3)], 1),
     r"cat: sizes of tensors must match except in dimension 1, but tensor 0 has shape \(2, 3\) and tensor 1 "
     r"has shape \(3, 3\)"),
    (lambda: engine.cat([engine.ones(2, 3), engine.ones(3)]), r"cat: .*\(2, 3\).*\(3,\)"),
    (lambda: engine.cat([engine.tensor(1.0)]), "cat: zero-dimensional tensor"),
    (lambda: engine.stack([engine.ones(2, 3), engine.ones(3, 2)]),
     r"stack: expected each tensor to be equal size, but got \(2, 3\) at entry 0 and \(3, 2\) at entry 1"),
    (lambda: engine.ones(2, 3).reshape(4, 2),
     r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into shape \(4, 2\)"),
    (lambda: engine.ones(2, 3).view(4, -1), r"view: cannot reshape a tensor of shape \(2, 3\).*\(4, -1\)"),
    (lambda: engine.ones(2, 3).reshape(-1, -1), "only one dimension can be inferred"),
    (lambda: engine.ones(2, 3).expand(3, 4),
     r"expand: the expanded size \(3\) must match the existing size \(2\) at non-singleton dimension 0"),
    (lambda: engine.ones(2, 3).repeat(2), r"repeat: .*\(2, 3\)"),
    (lambda: engine.ones(2, 3).permute(0, 0), r"permute: dims \(0, 0\)"),
    (lambda: engine.ones(5).split([2, 2]), r"split: sizes \(2, 2\) must .* sum to 5"),
    (lambda: engine.ones(2, 3).unflatten(1, (2, 2)), r"unflatten: sizes \(2, 2\) don't multiply up"),
])
def test_shape_errors_name_the_op_and_shapes(call, message):
    with pytest.raises(engine.ShapeError, match=message):
        call()


@pytest.mark.parametrize("call", [
    lambda x: x.transpose(0, 5), lambda x: x.unsqueeze(4), lambda x: x.squeeze(5), lambda x: x.flatten(0, 5),
    lambda x: engine.cat([x, x], 5), lambda x: x.split(1, 5), lambda x: x.flip(5),
])
def test_shape_ops_refuse_bad_dims(call):
    message = r"Dimension out of range \(expected to be in range of \[-\d, \d\], but got [45]\)"
    with pytest.raises(IndexError, match=message):
        call(engine.ones(2, 3))


def test_unsqueeze_and_stack_dims_count_the_new_dim():
    x = engine.ones(2, 3)
    assert x.unsqueeze(2).shape == (2, 3, 1) and x.unsqueeze(-3).shape == (1, 2, 3)
    assert engine.stack([x, x], -1).shape == (2, 3, 2)
    with pytest.raises(IndexError, match=r"\[-3, 2\], but got 3"):
        x.unsqueeze(3)


# ---- GPU: the same kernels through cupy ----------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_shape_ops_match_cpu():
    cp = engine.backend.cupy_module()
    try:
        if cp is None or cp.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("needs CuPy and a CUDA GPU")
    except Exception:
        pytest.skip("needs CuPy and a CUDA GPU")
    cases = [
        lambda x: x.reshape(4, -1), lambda x: x.transpose(0, 2), lambda x: x.permute(1, 2, 0),
        lambda x: x.movedim(0, -1), lambda x: x.flatten(1), lambda x: x.unflatten(2, (2, 2)),
        lambda x: x[:, :1].squeeze(1), lambda x: x.unsqueeze(1), lambda x: x[:, :1].expand(2, 3, 4),
        lambda x: x.repeat(2, 1, 2), lambda x: engine.cat([x, x * 2], -1),
        lambda x: engine.stack([x, x * 2], 1), lambda x: engine.cat(x.split([1, 3], 2)[::-1], 2),
        lambda x: engine.stack(x.chunk(2, 2)), lambda x: x.flip((0, 2)), lambda x: x.roll((1, 2), (0, 2)),
        lambda x: engine.pad(x, (1, -1, 2, 0), value=3.0), lambda x: engine.pad(x, (2, 1), mode="reflect"),
        lambda x: engine.pad(x, (1, 2, 0, 1), mode="replicate"),
        lambda x: engine.pad(x, (3, 1), mode="circular"),
    ]
    x = np.random.default_rng(0).standard_normal(SHAPE)
    for fn in cases:
        cpu, gpu = engine.tensor(x, requires_grad=True), engine.tensor(x, device="cuda", requires_grad=True)
        out_cpu, out_gpu = fn(cpu), fn(gpu)
        r = np.random.default_rng(1).standard_normal(out_cpu.shape)
        (out_cpu * engine.tensor(r)).sum().backward()
        (out_gpu * engine.tensor(r, device="cuda")).sum().backward()
        np.testing.assert_allclose(out_gpu.detach().cpu().numpy(), out_cpu.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(gpu.grad.cpu().numpy(), cpu.grad.numpy(), rtol=1e-12, atol=1e-12)
    base = engine.zeros(2, 3, device="cuda")
    view = base.view(6)
    base.add_(1)
    assert view._version == 1 and view.cpu().tolist() == [1.0] * 6
