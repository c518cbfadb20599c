"""Backward through slices of one tensor: each slice's gradient is added into one buffer for its input.

What a user sees: the same gradients as before (as full arrays, to every node, hook, `.grad` and the
debugger) and as PyTorch, while backward of T slices makes one input-sized array instead of T.
"""

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.debug import BackwardRecord, Debugger
from engine.ops.index import Index
from engine.ops.shape import Split
from tests.engine.oracle import GRAD_ATOL, GRAD_RTOL, cuda_or_skip, needs_torch, torch

SHAPE = (5, 4, 3)


def _sum_of(parts):
    """sum(p * w_i) over the parts, with a different fixed weight for each part (so every slot counts)."""
    total = None
    for i, p in enumerate(parts):
        term = (p * (i + 1.5)).sum()
        total = term if total is None else total + term
    return total


# (name, f(x) -> scalar); engine and torch share this API. x has SHAPE.
PATTERNS = [
    ("int", lambda x: _sum_of([x[1], x[-1]])),
    ("slices", lambda x: _sum_of([x[1:3], x[:, 1:], x[..., ::2], x[-3:-1, ::3]])),
    ("ellipsis and None", lambda x: _sum_of([x[..., 0], x[None, 2], x[1, None, ::2], x[:, None, ..., 1]])),
    ("element", lambda x: _sum_of([x[0, 1, 2], x[-1, -1, -1], x[0, 1]])),
    ("rows in a loop", lambda x: _sum_of([x[t] for t in range(x.shape[0])])),
    ("rows in a loop, dim 1", lambda x: _sum_of([x[:, t] for t in range(x.shape[1])])),
    ("overlapping", lambda x: _sum_of([x[0:3], x[1:4], x[2:], x[:]])),
    ("a slice used twice", lambda x: (lambda y: (y * y).sum() + (y * 3).sum())(x[2])),
    ("slices of a slice", lambda x: _sum_of([x[1:][0], x[1:][1:3][0, ::2], x[::2][1]])),
    ("slices of a view", lambda x: _sum_of([x.transpose(0, 1)[t] for t in range(4)] + [x.reshape(20, 3)[7]])),
    ("whole tensor first", lambda x: (x * x).sum() + _sum_of([x[0], x[3]])),
    ("whole tensor last", lambda x: _sum_of([x[0], x[3]]) + (x * x).sum()),
    ("whole tensor between", lambda x: _sum_of([x[0], x.exp(), x[4]])),
    ("narrow", lambda x: _sum_of([x.narrow(0, 1, 3), x.narrow(-1, 0, 2), x.narrow(1, -2, 2)])),
    ("split", lambda x: _sum_of([*x.split(2), *x.split([1, 3], 1)])),
    ("chunk", lambda x: _sum_of([*x.chunk(2, -1), *x.chunk(3)])),
    ("unbind", lambda x: _sum_of([*x.unbind(), *x.unbind(1), *x.unbind(-1)])),
    ("advanced, repeated", lambda x: _sum_of([x[[0, 0, 3]], x[:, [1, 1]], x[x > 0]])),
    ("mixed", lambda x: _sum_of([x[1].unbind(0)[2], x.split(2)[1][0], x[2:][[0, 0]], x.narrow(2, 1, 1)[4]])),
]
IDS = [name for name, _ in PATTERNS]
FNS = [fn for _, fn in PATTERNS]


@pytest.fixture
def dense(monkeypatch):
    """The engine as it was: every slice's backward returns a full array of its input's size."""
    def patch(cls):
        region = cls.backward
        monkeypatch.setattr(cls, "backward", lambda ctx, grad: region(ctx, grad).dense())

    patch(Index)
    patch(Split)


def _data(dtype=np.float64, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _grad(fn, data, device="cpu"):
    x = engine.tensor(data, requires_grad=True, device=device)
    fn(x).backward()
    return x.grad


@pytest.mark.parametrize("fn", FNS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_equal_those_of_full_size_slice_gradients(fn, dtype, request):
    data = _data(dtype)
    g = _grad(fn, data)
    assert g.dtype == engine.tensor(data).dtype and tuple(g.shape) == SHAPE
    request.getfixturevalue("dense")
    np.testing.assert_array_equal(g.numpy(), _grad(fn, data).numpy())


@needs_torch
@pytest.mark.parametrize("fn", FNS, ids=IDS)
def test_gradients_match_torch(fn):
    data = _data(np.float32)
    xt = torch.tensor(data, requires_grad=True)
    fn(xt).backward()
    np.testing.assert_allclose(_grad(fn, data).numpy(), xt.grad.numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_negative_steps_are_refused_as_in_torch():
    x = engine.tensor(_data(), requires_grad=True)
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1]
    # a reversed read is flip, whose gradient flows back through the slices of it
    _sum_of([x.flip(0)[t] for t in range(5)]).backward()
    expected = np.broadcast_to((np.arange(5) + 1.5)[::-1, None, None], SHAPE)
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_backward_of_many_slices_makes_one_input_sized_array(monkeypatch):
    # the cost a user sees as time: T slices of a (T, ...) input used to make T input-sized arrays
    T = 64
    x = engine.tensor(_data(shape=(T, 2, 3)), requires_grad=True)
    loss = _sum_of([x[t] for t in range(T)] + list(x.unbind(1)) + list(x.split(1, 2)))
    made = []
    zeros = np.zeros

    def counting(shape, *args, **kwargs):
        made.append(tuple(shape) if isinstance(shape, tuple | list) else (shape,))
        return zeros(shape, *args, **kwargs)

    monkeypatch.setattr(np, "zeros", counting)
    loss.backward()
    assert made.count((T, 2, 3)) == 1
    expected = np.zeros((T, 2, 3))
    expected += (np.arange(T) + 1.5)[:, None, None] + (T + np.arange(2) + 1.5)[None, :, None] \
        + (T + 2 + np.arange(3) + 1.5)[None, None, :]
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_retain_graph_twice_accumulates_twice():
    data = _data()
    x = engine.tensor(data, requires_grad=True)
    loss = _sum_of([x[t] for t in range(5)] + [x[1:3], x * 2])
    loss.backward(retain_graph=True)
    once = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * once)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_hooks_see_full_gradients_and_can_change_them():
    data = _data()
    x = engine.tensor(data, requires_grad=True)
    y = x * 2
    seen = {}
    y.register_hook(lambda g: seen.setdefault("y", g.numpy().copy()))
    x.register_hook(lambda g: seen.setdefault("x", g.numpy().copy()))
    rows = [y[t] for t in range(5)]
    rows[1].register_hook(lambda g: g * 10)  # a hook on one slice changes only its own gradient
    y.retain_grad()
    _sum_of(rows).backward()
    expected_y = np.broadcast_to((np.arange(5) + 1.5)[:, None, None], SHAPE).copy()
    expected_y[1] *= 10
    assert seen["y"].shape == SHAPE
    np.testing.assert_array_equal(seen["y"], expected_y)
    np.testing.assert_array_equal(y.grad.numpy(), expected_y)
    np.testing.assert_array_equal(seen["x"], 2 * expected_y)
    np.testing.assert_array_equal(x.grad.numpy(), 2 * expected_y)


def test_a_leaf_grad_is_its_own_array_and_adds_up():
    x = engine.tensor(_data(), requires_grad=True)
    _sum_of([x[0], x[1]]).backward()
    first = x.grad
    kept = first.numpy().copy()
    _sum_of([x[1], x[2]]).backward()
    np.testing.assert_array_equal(x.grad.numpy()[:3], kept[:3] + np.array([0, 1.5, 2.5])[:, None, None])
    x.grad = None
    y = x[0]
    _sum_of([y, x[0]]).backward()  # the incoming gradient is not stored into: y's stays untouched
    np.testing.assert_array_equal(x.grad.numpy()[0], np.full((4, 3), 4.0))
    np.testing.assert_array_equal(x.grad.numpy()[1:], 0)


def test_autograd_grad_through_slices():
    data = _data()
    x = engine.tensor(data, requires_grad=True)
    (g,) = engine.autograd.grad(_sum_of([x[t] for t in range(5)] + [x.exp()]), x)
    expected = np.broadcast_to((np.arange(5) + 1.5)[:, None, None], SHAPE) + 6.5 * np.exp(data)
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-12)
    assert x.grad is None


def test_a_slice_of_a_broadcast_input_is_summed_back():
    b = engine.tensor(_data(shape=(1, 3)), requires_grad=True)
    x = b * engine.ones(4, 3)
    _sum_of([x[t] for t in range(4)]).backward()
    np.testing.assert_array_equal(b.grad.numpy(), np.full((1, 3), 1.5 + 2.5 + 3.5 + 4.5))


class _RNN(nn.Module):
    """An LSTM unrolled by hand (nn.LSTM is one op per layer): a slice of x and gate chunks per step."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(3, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        h = c = engine.zeros(x.shape[1], 4)
        outputs = []
        for t in range(x.shape[0]):
            h, c = self.cell(x[t], (h, c))
            outputs.append(h)
        return self.head(engine.stack(outputs)).sum()


def _debugged_run():
    engine.manual_seed(0)
    model = _RNN()
    x = engine.tensor(_data(np.float32, (6, 2, 3)), requires_grad=True)
    with Debugger("values", model=model, interactive=False, history=100_000) as dbg:
        model(x).backward()
    records = [r for r in dbg.history if isinstance(r, BackwardRecord)]
    return records, [p.grad.numpy() for p in model.parameters()]


def test_the_debugger_records_the_same_gradients_as_with_full_size_slice_gradients(request):
    records, grads = _debugged_run()
    ops = {r.event.op for r in records}
    assert {"getitem", "split"} <= ops  # the RNN's time steps and gate chunks
    request.getfixturevalue("dense")
    before, grads_before = _debugged_run()
    assert [(r.event.op, r.event.key, len(r.event.grad_inputs)) for r in records] == \
        [(r.event.op, r.event.key, len(r.event.grad_inputs)) for r in before]
    for r, b in zip(records, before):
        assert [i == 0 for i in r.event.grad_inputs] == [i == 0 for i in b.event.grad_inputs]
        assert [v is None for v in r.values] == [v is None for v in b.values]
        for v, w in zip(r.values, b.values):
            if v is not None:
                assert v.shape == w.shape and v.dtype == w.dtype
                np.testing.assert_array_equal(v, w)
        for s, t in zip((r.grad_output, *r.grad_inputs), (b.grad_output, *b.grad_inputs)):
            assert (s is None) == (t is None)
            if s is not None:
                # a region's summary sums in another order than the whole array's: equal to rounding
                assert (s.numel, s.min, s.max, s.nan_count) == (t.numel, t.min, t.max, t.nan_count)
                assert (s.mean, s.std) == pytest.approx((t.mean, t.std), rel=1e-12, abs=1e-300)
    for g, h in zip(grads, grads_before):
        np.testing.assert_array_equal(g, h)


@pytest.mark.gpu
@pytest.mark.parametrize("fn", FNS, ids=IDS)
def test_gpu_gradients_match_cpu(fn):
    cuda_or_skip()
    data = _data()
    np.testing.assert_allclose(_grad(fn, data, "cuda").cpu().numpy(), _grad(fn, data).numpy(), rtol=1e-12,
                               atol=1e-12)
