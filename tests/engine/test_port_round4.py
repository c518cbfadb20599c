"""What a fourth round of ported PyTorch programs tripped over: each case as torch behaves."""

from __future__ import annotations

import json

import numpy as np
import pytest

import engine
from tests.engine.oracle import needs_torch, torch


def test_a_one_element_tensor_formats_as_its_number():
    loss = engine.tensor(1.23456)
    assert f"{loss:.3f}" == "1.235" and f"{engine.tensor(7):>4}" == "   7"
    assert f"{engine.tensor([1.5])}" == str(engine.tensor([1.5]))
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{engine.tensor([1.5, 2.5]):.2f}"


@needs_torch
def test_formatting_matches_torch():
    for value, spec in ((2.5, ".1e"), (3, "05d"), (0.125, "%")):
        assert format(engine.tensor(value), spec) == format(torch.tensor(value), spec)


def test_writing_in_place_into_an_expanded_view_names_the_problem():
    for write in (lambda t: t.add_(1), lambda t: t.zero_(), lambda t: t.__setitem__(0, 2.0)):
        with pytest.raises(RuntimeError, match=r"shape \(2, 3\) whose elements share memory .*clone\(\) it first"):
            write(engine.ones(1, 3).expand(2, 3))
    grown = engine.ones(1, 3).expand(2, 3).clone()
    grown.add_(1)
    assert grown.tolist() == [[2.0] * 3] * 2


@needs_torch
@pytest.mark.parametrize("args", [(), (2, 3), (3,), ([1, 2],), ([[1.5, 2.5]],), ((2, 3),), ([True, False],)],
                         ids=repr)
def test_the_legacy_tensor_constructor_matches_torch(args):
    ours, theirs = engine.Tensor(*args), torch.Tensor(*args)
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype == engine.float32
    if theirs.numel() and args and not isinstance(args[0], int):  # Tensor(2, 3) is uninitialised in torch
        assert ours.tolist() == theirs.tolist()


def test_the_legacy_constructor_converts_arrays_to_float32_and_refuses_what_torch_refuses():
    obs = np.random.default_rng(0).standard_normal(4)  # an environment's float64 observation
    assert engine.Tensor(obs).dtype == engine.float32
    assert engine.Tensor(engine.Size([2, 5])).shape == (2, 5)
    for args, error, text in (((3.5,), TypeError, r"data must be a sequence \(got float\)"),
                              ((2, "a"), TypeError, r"expected sizes \(ints\) or one sequence"),
                              (("ab",), TypeError, "got str"), ((-1,), ValueError, "non-negative")):
        with pytest.raises(error, match=text) as err:
            engine.Tensor(*args)
        assert "\n" not in str(err.value)


def test_tensor_of_a_tensor_shares_its_values_and_version():
    t = engine.tensor([1, 2])
    alias = engine.Tensor(t)
    alias.add_(1)
    assert t.tolist() == [2, 3] and alias.dtype == engine.int64 and t._version == alias._version == 1
    w = engine.tensor([1.0, 2.0], requires_grad=True)
    (engine.Tensor(w * 1) * 3).sum().backward()  # an alias keeps the graph, as torch's does
    assert w.grad.tolist() == [3.0, 3.0]
    s = w * 1
    y = (s * s).sum()
    engine.Tensor(s.detach()).add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@needs_torch
def test_typed_constructors_isinstance_and_type_match_torch():
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "ByteTensor", "BoolTensor"):
        ours, theirs = getattr(engine, name)([0, 1, 2]), getattr(torch, name)([0, 1, 2])
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.") and ours.tolist() == theirs.tolist()
        assert ours.type() == theirs.type().replace("torch.", "engine.")
        assert isinstance(ours, getattr(engine, name)) and isinstance(theirs, getattr(torch, name))
    assert engine.LongTensor([1.7, -2.2]).tolist() == torch.LongTensor([1.7, -2.2]).tolist() == [1, -2]
    assert engine.FloatTensor(2, 2).shape == (2, 2) and not isinstance(engine.zeros(2), engine.LongTensor)
    x = engine.tensor([1.5, 2.5])
    assert x.type(engine.LongTensor).tolist() == [1, 2] and x.type("torch.DoubleTensor").dtype == engine.float64
    assert x.type(engine.float16).dtype == engine.float16 and engine.FloatTensor(x) is x
    with pytest.raises(TypeError, match="expected a tensor of dtype int64"):
        engine.LongTensor(x)
    with pytest.raises(ValueError, match="invalid type: 'Float'"):
        x.type("Float")


def test_a_list_of_numpy_arrays_becomes_one_tensor_of_their_dtype():
    rows = [np.ones(3, np.float32), np.zeros(3, np.float32)]  # a replay buffer's observations
    assert engine.tensor(rows).dtype == engine.float32 and engine.tensor(rows).shape == (2, 3)
    assert engine.tensor([np.arange(2), np.arange(2)]).dtype == engine.int64


def test_parameters_and_buffers_keep_the_dtype_of_their_data():
    double = engine.tensor([1.0, 2.0], dtype=engine.float64)
    assert engine.nn.Parameter(double).dtype == engine.float64
    assert engine.nn.Buffer(double).dtype == engine.float64


def test_compile_returns_the_model_itself_so_the_debugger_sees_every_op():
    model = engine.nn.Linear(2, 2)
    assert engine.compile(model) is model and engine.compile(model, mode="max-autotune", fullgraph=True) is model

    @engine.compile(dynamic=True)
    def double(x):
        return x * 2

    assert double(engine.tensor([1.0])).tolist() == [2.0]
    with pytest.raises(TypeError, match="expected a module or a function, got int"):
        engine.compile(3)


def test_loading_a_pytorch_checkpoint_says_what_it_is_and_how_to_convert_it(tmp_path):
    zipped, pickled = tmp_path / "model.pt", tmp_path / "old.pt"
    zipped.write_bytes(b"PK\x03\x04" + bytes(60))  # torch.save's zip
    pickled.write_bytes(b"\x80\x02}q\x00." + bytes(8))  # a bare pickle (older torch.save)
    for path in (zipped, pickled):
        with pytest.raises(engine.CheckpointError, match=r"is a PyTorch checkpoint .*safetensors\.torch") as err:
            engine.load(path)
        assert "\n" not in str(err.value)


@needs_torch
def test_only_inputs_is_accepted_as_torch_accepts_it():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    (g,) = engine.autograd.grad((x * x).sum(), x, create_graph=True, only_inputs=True)
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    (tg,) = torch.autograd.grad((t * t).sum(), t, create_graph=True, only_inputs=True)
    assert g.tolist() == tg.tolist()


def test_a_safetensors_file_whose_header_length_starts_like_a_pickle_still_loads(tmp_path):
    # a header of 640 bytes is b"\x80\x02..." on disk, the way a protocol-2 pickle starts
    header = json.dumps({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode().ljust(640)
    path = tmp_path / "padded.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + np.array([1.5, -2.0], np.float32).tobytes())
    assert path.read_bytes()[:2] == b"\x80\x02"
    assert engine.load(path)["x"].tolist() == [1.5, -2.0]


@needs_torch
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unique_along_a_dim_matches_torch(dim):
    # a GNN dedups its edge list with unique(edge_index, dim=1): the engine refused any dim
    rng = np.random.default_rng(dim + 5)
    for data in (np.array([[0, 1, 1, 0, 2], [1, 2, 2, 1, 0]]), rng.integers(0, 2, (6, 3, 2)).astype(np.float32)):
        ours = engine.unique(engine.tensor(data), dim=dim, return_inverse=True, return_counts=True)
        theirs = torch.unique(torch.tensor(data), dim=dim, return_inverse=True, return_counts=True)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert engine.unique(engine.zeros(0, 3), dim=0).shape == torch.unique(torch.zeros(0, 3), dim=0).shape
    with pytest.raises(RuntimeError, match="0-sized dimensions besides dim 0"):
        engine.unique(engine.zeros(2, 0), dim=0)


@needs_torch
def test_flip_takes_dims_every_way_torch_does_and_gradscaler_is_top_level():
    x, t = engine.arange(6).reshape(2, 3), torch.arange(6).reshape(2, 3)
    for ours, theirs in ((x.flip(0, 1), t.flip(0, 1)), (x.flip(-1), t.flip(-1)), (x.flip([0, 1]), t.flip([0, 1])),
                         (engine.flip(x, dims=(0,)), torch.flip(t, dims=(0,))),
                         (engine.flip(x, (1,)), torch.flip(t, (1,)))):
        assert ours.tolist() == theirs.tolist()
    with pytest.raises(TypeError, match="takes the dims to reverse once"):
        x.flip()
    assert engine.GradScaler is engine.amp.GradScaler


def test_bfloat16_can_be_named_but_holds_no_tensor():
    # `autocast(device_type="cpu", dtype=torch.bfloat16, enabled=False)` died on the attribute itself
    with engine.autocast(device_type="cpu", dtype=engine.bfloat16, enabled=False):
        assert (engine.ones(2) * 2).dtype == engine.float32
    with pytest.warns(UserWarning, match="target dtype is not supported. Disabling autocast"), \
            engine.autocast(device_type="cpu", dtype=engine.bfloat16):
        pass
    assert engine.finfo(engine.bfloat16).eps == 2.0 ** -7 and not engine.cuda.is_bf16_supported()
    for make in (lambda: engine.zeros(2, dtype=engine.bfloat16), lambda: engine.ones(2).to(engine.bfloat16),
                 lambda: engine.ones(2).bfloat16(), lambda: engine.tensor([1.0], dtype="bfloat16")):
        with pytest.raises(TypeError, match=r"engine\.bfloat16 is not supported: numpy.* has no bfloat16") as err:
            make()
        assert "\n" not in str(err.value)


@needs_torch
def test_gradient_checkpointing_gives_torchs_values_and_gradients():
    from engine.utils.checkpoint import checkpoint, checkpoint_sequential

    ours = engine.nn.Sequential(engine.nn.Linear(3, 4), engine.nn.Tanh(), engine.nn.Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    results = []
    for lib, layer in ((engine, ours), (torch, theirs)):
        x = lib.ones(5, 3, requires_grad=True)
        ckpt = lib.utils.checkpoint
        y = ckpt.checkpoint(layer, x * 2, use_reentrant=False) + ckpt.checkpoint_sequential(layer, 2, x,
                                                                                              use_reentrant=False)
        (y * y).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy(), layer[0].weight.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        checkpoint(engine.nn.Identity(), engine.ones(1))
    with pytest.raises(ValueError, match="segments must be a positive int"):
        checkpoint_sequential([engine.nn.Identity()], 0, engine.ones(1))


@needs_torch
def test_bincount_with_weights_keeps_torchs_dtype():
    idx = [0, 1, 1, 3]
    for dtype in ("float32", "float64", "int64"):
        ours = engine.bincount(engine.tensor(idx), weights=engine.tensor([1, 2, 3, 4], dtype=dtype))
        theirs = torch.bincount(torch.tensor(idx), weights=torch.tensor([1, 2, 3, 4], dtype=getattr(torch, dtype)))
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.") and ours.tolist() == theirs.tolist()
