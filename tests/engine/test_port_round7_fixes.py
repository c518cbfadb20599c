"""What the seventh port round found: scatter's reduce argument, post-accumulate-grad hooks, numpy warnings from
gradient clipping, the CPU autocast dtype, torch's error types in clip_grad_value_ and pack_padded_sequence, and
torch's warning on float() of a tensor that requires grad."""

import warnings

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.nn.utils import rnn
from engine.ops import gather_scatter
from tests.engine.oracle import FWD_ATOL, FWD_RTOL, cuda_or_skip, needs_torch, torch

rng = np.random.default_rng(7)
X = rng.standard_normal((3, 4)).astype(np.float32)
INDEX = np.array([[0, 1, 2, 0], [1, 2, 0, 1]])
SRC = rng.standard_normal((2, 4)).astype(np.float32)


@pytest.fixture
def fresh_scatter_warning(monkeypatch):
    monkeypatch.setattr(gather_scatter, "_warned", [])  # torch warns once per process; each test sees it anew


# ---- scatter(..., reduce=) ---------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("reduce", ["add", "multiply"])
@pytest.mark.parametrize("form", ["src", "number", "value="])
def test_scatter_with_reduce_matches_torch(reduce, form, fresh_scatter_warning):
    def run(lib):
        x, index = lib.tensor(X), lib.tensor(INDEX)
        args = {"src": (lib.tensor(SRC),), "number": (1.5,), "value=": ()}[form]
        kwargs = {"value": 1.5} if form == "value=" else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = x.scatter(0, index, *args, reduce=reduce, **kwargs)
            x.scatter_(0, index, *args, reduce=reduce, **kwargs)
        return out.numpy(), x.numpy()

    mine, theirs = run(engine), run(torch)
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m, t, rtol=FWD_RTOL, atol=FWD_ATOL)


@needs_torch
def test_scatter_with_reduce_of_a_number_on_integers_truncates_it_as_torch():
    def run(lib):
        x = lib.ones(5, dtype=lib.int64)
        index = lib.tensor([0, 0, 2, 4])
        return (x.scatter(0, index, 2.5, reduce="add").tolist(), x.scatter(0, index, 3, reduce="multiply").tolist(),
                x.scatter(0, index, lib.tensor([2, 3, 4, 5]), reduce="multiply").tolist())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run(engine) == run(torch)


def test_scatter_with_reduce_and_a_tensor_src_warns_it_is_deprecated_as_torch(fresh_scatter_warning):
    x, index = engine.tensor(X), engine.tensor(INDEX)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x.scatter(0, index, 2.0, reduce="add")
        assert not caught  # a number: no warning, as in torch
        x.scatter_(0, index, engine.tensor(SRC), reduce="add")
        x.scatter(0, index, engine.tensor(SRC), reduce="multiply")
    assert len(caught) == 1 and caught[0].category is UserWarning  # once per process, as torch
    assert "reduce argument of scatter with Tensor src is deprecated" in str(caught[0].message)
    assert caught[0].filename == __file__  # it names the caller's line, not the engine's


@pytest.mark.parametrize("form", [(engine.tensor(SRC),), (2.0,)])
def test_scatter_with_reduce_has_no_derivative_as_torch(form, fresh_scatter_warning):
    x = engine.tensor(X, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = x.scatter(0, engine.tensor(INDEX), *form, reduce="add")
    with pytest.raises(RuntimeError, match="scatter with reduce: the derivative is not implemented"):
        out.sum().backward()


@pytest.mark.parametrize("call, error, message", [
    (lambda x, i: x.scatter(0, i, 1.0, reduce="sum"), RuntimeError, "reduce argument must be either add or multiply"),
    (lambda x, i: x.scatter_(0, i, 1.0, reduce="mean"), RuntimeError, "reduce argument must be either add or multiply"),
    (lambda x, i: x.scatter(0, i, engine.tensor(INDEX), reduce="add"), RuntimeError,
     "Expected self.dtype to be equal to src.dtype"),
    (lambda x, i: x.scatter(0, i, "a", reduce="add"), TypeError, "src must be a tensor or a number"),
    (lambda x, i: x.scatter(2, i, 1.0, reduce="add"), IndexError, "out of range"),
])
def test_scatter_with_reduce_refuses_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call(engine.tensor(X), engine.tensor(INDEX))


@pytest.mark.gpu
def test_scatter_with_reduce_on_cuda_matches_the_cpu(fresh_scatter_warning):
    cuda_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reduce in ("add", "multiply"):
            for src in (engine.tensor(SRC), 1.5):
                cpu = engine.tensor(X).scatter(0, engine.tensor(INDEX), src, reduce=reduce)
                gpu_src = src.cuda() if isinstance(src, engine.Tensor) else src
                gpu = engine.tensor(X).cuda().scatter(0, engine.tensor(INDEX).cuda(), gpu_src, reduce=reduce)
                np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=1e-6)


# ---- register_post_accumulate_grad_hook --------------------------------------------------------------------
@needs_torch
def test_post_accumulate_grad_hook_sees_the_accumulated_grad_after_tensor_hooks_as_torch():
    def run(lib):
        w = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        seen = []
        handle = w.register_post_accumulate_grad_hook(lambda p: seen.append(("post", p.grad.tolist())))
        w.register_hook(lambda g: seen.append("pre") or g * 10)
        (w * w).sum().backward()
        (w * 2).sum().backward()
        handle.remove()
        (w * 2).sum().backward()
        return seen, w.grad.tolist()

    assert run(engine) == run(torch)


@needs_torch
def test_post_accumulate_grad_hooks_step_an_optimizer_inside_backward_as_torch():
    def run(lib):
        lib.manual_seed(0)
        model = lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.Tanh(), lib.nn.Linear(3, 1))
        with lib.no_grad():
            for p, value in zip(model.parameters(), PARAMS):
                p.copy_(lib.tensor(value))
        optimizers = {p: lib.optim.SGD([p], lr=0.1, momentum=0.9) for p in model.parameters()}

        def step(p):
            optimizers[p].step()
            optimizers[p].zero_grad()

        for p in model.parameters():
            p.register_post_accumulate_grad_hook(step)
        x = lib.tensor(rng_x)
        for _ in range(3):
            model(x).pow(2).mean().backward()
        return [p.detach().numpy().copy() for p in model.parameters()], [p.grad for p in model.parameters()]

    rng_x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    (mine, mine_grads), (theirs, their_grads) = run(engine), run(torch)
    assert mine_grads == their_grads == [None] * 4
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m, t, rtol=1e-5, atol=1e-6)


PARAMS = [np.random.default_rng(2).standard_normal(s).astype(np.float32) for s in ((3, 4), (3,), (1, 3), (1,))]


@needs_torch
def test_post_accumulate_grad_hooks_run_only_for_leaves_whose_grad_backward_fills_as_torch():
    def run(lib):
        w, v = (lib.tensor([1.0, 2.0], requires_grad=True) for _ in range(2))
        calls = []
        for name, t in (("w", w), ("v", v)):
            t.register_post_accumulate_grad_hook(lambda p, name=name: calls.append(name))
        (w * v).sum().backward(inputs=[v])
        lib.autograd.grad((w * v).sum(), [w, v])
        w.sum().backward()  # the root is the leaf itself
        return calls

    assert run(engine) == run(torch) == ["v", "w"]


@pytest.mark.parametrize("make, message", [
    (lambda: engine.tensor([1.0]), "cannot register a hook on a tensor that doesn't require gradient"),
    (lambda: engine.tensor([1.0], requires_grad=True) * 2, "cannot be registered on non-leaf tensors"),
])
def test_post_accumulate_grad_hook_refuses_what_torch_refuses(make, message):
    with pytest.raises(RuntimeError, match=message):
        make().register_post_accumulate_grad_hook(lambda p: None)


def test_a_post_accumulate_grad_hook_that_returns_a_value_is_an_error_as_torch():
    w = engine.tensor([1.0], requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda p: p * 0)
    with pytest.raises(RuntimeError, match="post accumulate grad hooks should return None"):
        (w * 2).sum().backward()


# ---- numpy's warnings from gradient clipping -------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("bad", [float("inf"), 3e20])
def test_clip_grad_norm_of_an_infinite_or_overflowing_gradient_is_silent_as_torch(bad):
    def run(lib):
        p = lib.tensor([1.0, 2.0], requires_grad=True)
        p.grad = lib.tensor([bad, 1.0])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a script's own filter: the engine's import-time one is gone
            total = lib.nn.utils.clip_grad_norm_([p], 1.0)
        return float(total), p.grad.tolist()

    mine, theirs = run(engine), run(torch)
    np.testing.assert_equal(mine, theirs)


# ---- the autocast dtype of the CPU ---------------------------------------------------------------------------
@needs_torch
def test_get_autocast_dtype_answers_torch_s_defaults():
    assert str(engine.get_autocast_dtype("cpu")) == "engine.bfloat16" and str(torch.get_autocast_dtype("cpu")) \
        == "torch.bfloat16"
    assert engine.get_autocast_dtype("cuda") is engine.float16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with engine.autocast("cpu"):  # bfloat16, which the engine lacks: off, with its warning
            assert engine.get_autocast_dtype("cpu") is engine.bfloat16 and not engine.is_autocast_enabled("cpu")
            assert (engine.tensor(X) @ engine.tensor(X.T)).dtype is engine.float32
    assert engine.get_autocast_dtype("cpu") is engine.bfloat16
    with engine.autocast("cpu", dtype=engine.float16):
        assert engine.get_autocast_dtype("cpu") is engine.float16
    with pytest.raises(TypeError, match="device_type' must be str, not int"):
        engine.get_autocast_dtype(1)


# ---- torch's error types ----------------------------------------------------------------------------------
@pytest.mark.parametrize("parameters", [[], [nn.Parameter(engine.zeros(2))], nn.Parameter(engine.zeros(2))])
def test_clip_grad_value_without_any_gradient_raises_as_torch(parameters):
    with pytest.raises(RuntimeError, match="clip_grad_value_: no parameter has a gradient"):
        nn.utils.clip_grad_value_(parameters, 1.0)


@pytest.mark.parametrize("lengths, sort", [([3, 0], False), ([3, 0], True), ([2, -1], True)])
def test_pack_padded_sequence_of_a_zero_length_raises_runtime_error_as_torch(lengths, sort):
    with pytest.raises(RuntimeError, match="length of all samples has to be greater than 0"):
        rnn.pack_padded_sequence(engine.zeros(3, 2, 4), lengths, enforce_sorted=sort)


# ---- float() of a tensor that requires grad ------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: engine.tensor(1.5, requires_grad=True),
                                  lambda: engine.tensor([1.5], requires_grad=True),
                                  lambda: engine.tensor(0.75, requires_grad=True) * 2])
def test_float_of_a_tensor_that_requires_grad_warns_as_torch(make, monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules["engine.tensor"], "_warned_float", False)  # once a process: each case anew
    t = make()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert float(t) == 1.5
        assert float(t) == 1.5  # once
    assert [w.category for w in caught] == [UserWarning] and caught[0].filename == __file__
    assert "float() of a tensor that requires grad gives a plain number" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as in torch: item(), int(), format, float() under no_grad are silent
        assert (t.item(), int(t), float(t.detach())) == (1.5, 1, 1.5)
        with engine.no_grad():
            assert float(t) == 1.5
        assert t.ndim or f"{t:.1f}" == "1.5"
