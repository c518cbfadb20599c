"""Idioms met porting PyTorch training scripts to the engine (`import torch` -> `import engine`).

Each test failed before its fix; values and gradients are compared with PyTorch where it is installed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.data import ConcatDataset, DataLoader, Subset, TensorDataset, random_split
from tests.engine.oracle import check_grads, cuda_or_skip, needs_torch, torch, torch_check

rng = np.random.default_rng(11)
A = rng.standard_normal((3, 2)).astype(np.float32)
W = rng.standard_normal((3, 2)).astype(np.float32)


# ---- y[0] = f(y[1]) on a non-leaf: ops keep only what their backward reads, as PyTorch does -----------
WRITES = {
    "div_scalar": lambda lib, y: y[1] / 0.5,
    "mul_scalar": lambda lib, y: y[1] * 2,
    "div_tensor": lambda lib, y: y[1] / lib.tensor([2.0, 3.0]),
    "exp": lambda lib, y: y[1].exp(),
    "tanh": lambda lib, y: y[1].tanh(),
    "sigmoid": lambda lib, y: y[1].sigmoid(),
    "relu": lambda lib, y: y[1].relu(),
    "reciprocal": lambda lib, y: y[1].reciprocal(),
    "neg": lambda lib, y: -y[1],
    "matmul_constant": lambda lib, y: y[1] @ lib.ones(2, 2),
    "softmax": lambda lib, y: y[1].softmax(0),
}


@needs_torch
@pytest.mark.parametrize("write", list(WRITES))
def test_write_into_non_leaf_from_its_own_view(write):
    def run(lib):
        x = lib.tensor(A, requires_grad=True)
        y = x * 2
        y[0] = WRITES[write](lib, y)
        (y * lib.tensor(W)).sum().backward()
        return x.grad.numpy()

    np.testing.assert_allclose(run(engine), run(torch), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("write", [lambda y: y[1] ** 2, lambda y: y[1] * y[1], lambda y: y[1].log()])
def test_write_over_a_saved_view_is_still_caught(write):
    # these ops do read y[1] in backward: PyTorch raises too, and so must the engine
    x = engine.tensor(np.abs(A) + 1, requires_grad=True)
    y = x * 2
    y[0] = write(y)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@needs_torch
@pytest.mark.parametrize("name", ["neg", "sign", "log", "sin", "abs", "square", "atan", "exp", "tanh", "relu"])
def test_in_place_change_of_an_output_is_legal_where_torch_allows_it(name):
    # log, sin, neg, ... read only their input in backward: changing their output must not raise
    def run(lib):
        x = lib.tensor([0.5, 1.5, 2.0], requires_grad=True)
        z = getattr(x * 1, name)()
        z.add_(1)
        try:
            (z * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        except RuntimeError as err:
            assert "modified by an inplace operation" in str(err)
            return "raises"
        return x.grad.tolist()

    ours, ref = run(engine), run(torch)
    assert ours == "raises" if ref == "raises" else np.allclose(ours, ref, rtol=1e-6)


# ---- in-place changes of a view are recorded on its base (PyTorch's CopySlices) ----------------------
def _copy_into_view_of_plain(lib, x):
    buf = x.new_zeros(3, 2)
    buf[:, 0].copy_(x[:, 1] * 2)
    return buf


def _row_then_base(lib, x):
    buf = x.new_zeros(3, 2)
    row = buf[0]
    row.copy_(x[1])
    return buf * 1 + row.sum()


def _view_used_after(lib, x):
    y = x * 2
    v = y[0]
    v.add_(1)
    return v.unsqueeze(0).expand(3, 2) + y


def _view_before_write_through_another(lib, x):
    y = x * 2
    v = y[:2]  # made before the write below, which overlaps it
    y[1:].mul_(3)
    return y * v.sum()


def _view_before_base_write(lib, x):
    y = x * 2
    v = y[0]
    y.mul_(3)
    return y + v


def _view_of_constant_before_a_write(lib, x):
    buf = x.new_zeros(3, 2)
    v = buf[1:]  # buf has no history yet: the write below gives v one
    buf[1].copy_(x[0] * x[2])
    return buf * 0 + v.sum()


def _view_after_a_no_grad_write(lib, x):
    y = x * 2
    v = y[1]
    with lib.no_grad():
        y.add_(1)
    return y * v


VIEW_WRITES = {
    "sigmoid_on_columns": lambda lib, x: _then(x * 1, lambda y: y[:, :1].sigmoid_()),
    "mul_on_row": lambda lib, x: _then(x * 1, lambda y: y[1].mul_(3)),
    "zero_on_transposed_row": lambda lib, x: _then(x.clone(), lambda y: y.t()[0].zero_()),
    "clamp_on_narrow": lambda lib, x: _then(x * 2, lambda y: y.narrow(0, 1, 2).clamp_(min=0)),
    "setitem_on_a_view": lambda lib, x: _then(x * 2, lambda y: y[1:].__setitem__(0, y[0] * 3)),
    "copy_into_view_of_plain": _copy_into_view_of_plain,
    "row_then_base": _row_then_base,
    "view_used_after": _view_used_after,
    "view_before_write_through_another": _view_before_write_through_another,
    "view_before_base_write": _view_before_base_write,
    "view_of_constant_before_a_write": _view_of_constant_before_a_write,
    "view_after_a_no_grad_write": _view_after_a_no_grad_write,
}


def _then(y, change):
    change(y)
    return y


@needs_torch
@pytest.mark.parametrize("case", list(VIEW_WRITES))
def test_in_place_change_of_a_view_matches_torch(case):
    def run(lib):
        x = lib.tensor(A, requires_grad=True)
        out = VIEW_WRITES[case](lib, x)
        (out * lib.tensor(W)).sum().backward()
        return out.detach().numpy(), x.grad.numpy()

    for ours, ref in zip(run(engine), run(torch)):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["sigmoid_on_columns", "zero_on_transposed_row", "row_then_base",
                                  "view_before_write_through_another", "view_before_base_write"])
def test_in_place_change_of_a_view_finite_differences(case):
    check_grads(lambda x: VIEW_WRITES[case](engine, x), [(3, 2)],
                torch_fn=lambda x: VIEW_WRITES[case](torch, x))


@needs_torch
@pytest.mark.parametrize("start", ["backward", "retain_grad"])
def test_a_view_made_before_a_write_starts_backward_from_the_written_values(start):
    def run(lib):
        x = lib.tensor(A, requires_grad=True)
        y = x * 2
        s = y[0, 1]
        y.mul_(3)
        if start == "retain_grad":
            s.retain_grad()
            (s * 5).backward()
            return x.grad.numpy(), float(s.grad)
        s.backward()
        return x.grad.numpy(), None

    ours, ref = run(engine), run(torch)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-6)
    assert ours[1] == ref[1]


def test_a_hook_on_a_view_made_before_a_write_sees_the_written_values_gradient():
    # (PyTorch 2.11 crashes on this one, so the expected values are worked out by hand)
    x = engine.ones(3, 2, requires_grad=True)
    y = x * 2
    s = y[0, 1]
    y.mul_(3)
    seen = []
    s.register_hook(lambda g: seen.append(float(g)))
    (s * 5).backward()
    assert seen == [5.0]
    assert x.grad.tolist() == [[0.0, 30.0], [0.0, 0.0], [0.0, 0.0]]


def test_a_view_made_before_a_write_keeps_working_without_grad():
    y = engine.tensor(A, requires_grad=True) * 2
    v = y[0]
    y.mul_(3)
    with engine.no_grad():
        assert (v * 1).tolist() == pytest.approx((A[0] * 6).tolist())
    (v * 1).sum().backward()  # the history is taken at the first use that records


def test_a_view_made_before_a_write_of_a_column_major_base_follows_the_write():
    def fn(x):
        y = x.t() * 2  # numpy keeps the transposed layout: the base is not C-contiguous
        v = y[0]
        y.sin_()
        return v * 1

    check_grads(fn, [(3, 2)])


def test_in_place_change_of_a_view_of_a_leaf_is_refused_as_in_torch():
    w = engine.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in an "
                                           "in-place operation"):
        w[:2].mul_(2)
    with engine.no_grad():
        w[:2].mul_(2)
    assert w.tolist() == [2.0, 2.0, 1.0]


# ---- new ops: finite differences and PyTorch ---------------------------------------------------------
@pytest.mark.parametrize("name", ["expm1", "sinh", "cosh", "atan"])
def test_new_unary_ops(name):
    check_grads(lambda x: getattr(x, name)(), [(3, 4)])


@pytest.mark.parametrize("name", ["log2", "log10"])
def test_new_log_ops(name):
    check_grads(lambda x: getattr(engine, name)(x.abs() + 0.5), [(3, 4)],
                torch_fn=lambda x: getattr(torch, name)(x.abs() + 0.5))


@pytest.mark.parametrize("name", ["asin", "acos"])
def test_inverse_trig(name):
    check_grads(lambda x: getattr(x, name)(), [np.array([[-0.7, -0.2, 0.1, 0.6]])])


def test_clamp_min_max():
    check_grads(lambda x: x.clamp_min(0.1).clamp_max(0.8), [np.array([-1.0, 0.3, 0.5, 2.0])])
    x = engine.tensor([-1.0, 0.5, 2.0])
    x.clamp_min_(0).clamp_max_(1)
    assert x.tolist() == [0.0, 0.5, 1.0]


def test_dot_mv_tile_broadcast_to():
    check_grads(lambda a, b: engine.dot(a, b), [(4,), (4,)], torch_fn=lambda a, b: torch.dot(a, b))
    check_grads(lambda m, v: m.mv(v), [(3, 4), (4,)])
    check_grads(lambda x: x.tile((2, 1, 3)), [(2, 3)])
    check_grads(lambda x: engine.broadcast_to(x, (2, 3)), [(3,)], torch_fn=lambda x: torch.broadcast_to(x, (2, 3)))
    with pytest.raises(ValueError, match=r"dot: expected two 1-D tensors of the same size, got \(3,\) and \(4,\)"):
        engine.dot(engine.ones(3), engine.ones(4))


@pytest.mark.parametrize("dim, index", [(0, [0, 2]), (1, [1]), (-1, [-1, 0])])
def test_index_fill_matches_torch(dim, index):
    check_grads(lambda x: x.index_fill(dim, _long(x, index), 0.5), [(3, 2)])


def _long(x, values):
    """An index tensor of the library x belongs to (check_grads runs one function on both)."""
    return (engine if isinstance(x, engine.Tensor) else torch).tensor(values)


@needs_torch
def test_index_fill_in_place_on_a_non_leaf_and_with_a_tensor_value():
    def run(lib):
        x = lib.tensor(A, requires_grad=True)
        v = lib.tensor(3.0, requires_grad=True)
        y = x * 2
        y.index_fill_(1, lib.tensor([1]), v)
        (y * lib.tensor(W)).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), v.grad.numpy()

    for ours, ref in zip(run(engine), run(torch)):
        np.testing.assert_allclose(ours, ref, rtol=1e-6)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        engine.zeros(3, 2).index_fill(0, engine.tensor([5]), 1.0)
    zero_d = engine.tensor(1.0).index_fill(0, engine.tensor([0]), 2.0)
    assert zero_d.shape == () and zero_d.item() == 2.0


# ---- random in-place fills ---------------------------------------------------------------------------
def test_bernoulli_fills_zeros_and_ones_with_the_given_probability():
    engine.manual_seed(0)
    x = engine.empty(20000).bernoulli_(0.3)
    assert set(np.unique(x.numpy())) <= {0.0, 1.0}
    assert abs(x.mean().item() - 0.3) < 0.02
    p = engine.tensor([0.0, 1.0, 1.0, 0.0])
    assert engine.zeros(4).bernoulli_(p).tolist() == [0.0, 1.0, 1.0, 0.0]
    assert engine.bernoulli(p).tolist() == [0.0, 1.0, 1.0, 0.0]
    ints = engine.zeros(5, dtype=engine.long).bernoulli_(0.5)
    assert ints.dtype == engine.int64
    # word dropout, as a text model writes it
    keep = engine.empty_like(engine.ones(4, 6, dtype=engine.long), dtype=engine.float).bernoulli_(0.9).bool()
    assert keep.dtype == engine.bool_ and keep.shape == (4, 6)


def test_bernoulli_is_reproducible_after_manual_seed():
    engine.manual_seed(3)
    a = engine.empty(50).bernoulli_(0.5).tolist()
    engine.manual_seed(3)
    assert engine.empty(50).bernoulli_(0.5).tolist() == a


def test_other_samplers_have_their_distribution():
    engine.manual_seed(1)
    e = engine.empty(40000).exponential_(2.0)
    assert e.min().item() >= 0 and abs(e.mean().item() - 0.5) < 0.02
    g = engine.empty(40000).geometric_(0.25)
    assert g.min().item() >= 1 and abs(g.mean().item() - 4.0) < 0.1
    ln = engine.empty(40000, dtype=engine.float64).log_normal_(0.0, 0.5)
    assert abs(ln.log().mean().item()) < 0.02 and abs(ln.log().std().item() - 0.5) < 0.02
    c = engine.empty(40000).cauchy_(1.0, 2.0)
    assert abs(c.median().item() - 1.0) < 0.1
    r = engine.empty(3, 1000, dtype=engine.long).random_(3, 7)
    assert set(np.unique(r.numpy())) == {3, 4, 5, 6}
    assert set(np.unique(engine.empty(1000).random_(4).numpy())) == {0.0, 1.0, 2.0, 3.0}
    big = engine.empty(1000).random_()
    assert big.min().item() >= 0 and big.max().item() <= 2 ** 24 and big.dtype == engine.float32


@needs_torch
@pytest.mark.parametrize("call", [
    lambda lib: lib.zeros(3).bernoulli_(1.5),
    lambda lib: lib.zeros(3).bernoulli_(lib.tensor([0.5, -0.1, 0.0])),
    lambda lib: lib.zeros(3, dtype=lib.long).exponential_(),
    lambda lib: lib.zeros(3, requires_grad=True).bernoulli_(0.5),
    lambda lib: lib.zeros(3).random_(5, 2),
])
def test_sampler_errors_as_torch(call):
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(RuntimeError):
        call(engine)


def test_sampler_in_no_grad_initialises_a_parameter():
    w = nn.Parameter(engine.zeros(4, 4))
    with engine.no_grad():
        w.exponential_()
    assert w.requires_grad and (w.detach().numpy() > 0).all()


def test_multinomial():
    engine.manual_seed(0)
    probs = engine.tensor([[0.0, 0.2, 0.8], [0.5, 0.5, 0.0]])
    draws = engine.multinomial(probs, 500, replacement=True)
    assert draws.shape == (2, 500) and draws.dtype == engine.int64
    assert 0 not in draws[0].tolist() and 2 not in draws[1].tolist()
    assert abs((draws[0] == 2).float().mean().item() - 0.8) < 0.06
    once = probs.multinomial(2)
    assert sorted(once[0].tolist()) == [1, 2] and sorted(once[1].tolist()) == [0, 1]
    assert engine.multinomial(engine.tensor([1.0, 3.0]), num_samples=1).shape == (1,)
    with pytest.raises(RuntimeError, match="cannot sample 3 samples without replacement"):
        engine.multinomial(probs, 3)


def test_uniform_is_not_a_torch_name():
    # the brief asked after Tensor.uniform: PyTorch has only uniform_, and so does the engine
    if torch is not None:
        assert not hasattr(torch.Tensor, "uniform")
    assert not hasattr(engine.Tensor, "uniform") and hasattr(engine.Tensor, "uniform_")


# ---- comparisons and value-dependent shapes ----------------------------------------------------------
@needs_torch
def test_isclose_allclose_equal_as_torch():
    a, b = np.array([1.0, 2.0, np.nan], np.float32), np.array([1.0, 2.1, np.nan], np.float32)
    for lib in (engine, torch):
        x, y = lib.tensor(a), lib.tensor(b)
        assert lib.isclose(x, y).tolist() == [True, False, False]
        assert x.isclose(y, equal_nan=True).tolist() == [True, False, True]
        assert lib.allclose(x[:1], y[:1]) and not lib.allclose(x, y, atol=0.2)
        assert lib.allclose(x, y, atol=0.2, equal_nan=True)
        assert lib.equal(x[:2], x[:2].clone()) and not lib.equal(x[:2], y[:2]) and not lib.equal(x, x[:2])


@needs_torch
def test_nonzero_unique_bincount_as_torch():
    a = np.array([[0, 3, 3], [1, 0, 3]])
    for fn in (lambda lib, t: lib.nonzero(t).tolist(),
               lambda lib, t: [i.tolist() for i in t.nonzero(as_tuple=True)],
               lambda lib, t: [i.tolist() for i in lib.where(t > 1)],
               lambda lib, t: lib.argwhere(t).tolist(),
               lambda lib, t: lib.count_nonzero(t).item(),
               lambda lib, t: lib.count_nonzero(t, dim=1).tolist(),
               lambda lib, t: lib.unique(t).tolist(),
               lambda lib, t: [r.tolist() for r in t.unique(return_inverse=True, return_counts=True)],
               lambda lib, t: lib.bincount(t.flatten(), minlength=6).tolist(),
               lambda lib, t: t.flatten().bincount(weights=lib.ones(6, dtype=lib.float64) / 2).tolist()):
        assert fn(engine, engine.tensor(a)) == fn(torch, torch.tensor(a))
    assert engine.nonzero(engine.tensor(5)).shape == tuple(torch.nonzero(torch.tensor(5)).shape)


# ---- torch.* names scripts use around the training loop ----------------------------------------------
def test_size_compares_with_shapes():
    x = engine.zeros(4, 3)
    assert x.shape == engine.Size([4, 3]) and x.size() == engine.Size((4, 3))
    assert engine.Size([4, 3]).numel() == 12 and repr(engine.Size([2])) == "engine.Size([2])"


def test_backends_switches_are_accepted():
    engine.backends.cudnn.benchmark = True
    engine.backends.cudnn.deterministic = True
    assert engine.backends.mps.is_available() is False


def test_inference_mode_as_context_and_decorator():
    x = engine.ones(2, requires_grad=True)
    with engine.inference_mode():
        assert not (x * 2).requires_grad

    @engine.inference_mode()
    def f():
        return x * 2

    @engine.inference_mode
    def g():
        return x * 2

    assert not f().requires_grad and not g().requires_grad
    assert (x * 2).requires_grad
    with engine.inference_mode(False):
        assert (x * 2).requires_grad
    with engine.no_grad(), engine.inference_mode(False):
        assert not (x * 2).requires_grad


def test_no_grad_decorator_restores_the_mode_per_call():
    @engine.no_grad()
    def inner(depth):
        return inner(depth - 1) if depth else engine.is_grad_enabled()

    assert inner(3) is False and engine.is_grad_enabled()


# ---- torch.utils.data names: random_split, Subset, ConcatDataset -------------------------------------
def test_random_split_by_lengths_and_fractions():
    ds = TensorDataset(engine.arange(10), engine.arange(10) * 2)
    engine.manual_seed(0)
    train, val = random_split(ds, [7, 3])
    assert len(train) == 7 and len(val) == 3
    seen = sorted(int(train[i][0]) for i in range(7)) + sorted(int(val[i][0]) for i in range(3))
    assert sorted(seen) == list(range(10))
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=np.random.default_rng(1))
    assert [len(p) for p in parts] == [5, 3, 2]
    assert [len(p) for p in random_split(range(10), [0.34, 0.33, 0.33])] == [4, 3, 3]  # remainder round robin
    x, y = next(iter(DataLoader(train, batch_size=4)))
    assert x.shape == (4,) and (y == x * 2).all()
    with pytest.raises(ValueError, match=r"random_split: the lengths \[6, 3\] sum to 9, but the dataset has 10"):
        random_split(ds, [6, 3])


def test_subset_and_concat_dataset():
    a, b = TensorDataset(engine.arange(3)), TensorDataset(engine.arange(10, 12))
    both = ConcatDataset([a, b])
    assert len(both) == 5 and [int(both[i][0]) for i in range(5)] == [0, 1, 2, 10, 11]
    assert int(both[-1][0]) == 11
    with pytest.raises(IndexError, match="out of range"):
        both[5]
    sub = Subset(both, [4, 0])
    assert [int(sub[i][0]) for i in range(2)] == [11, 0]


def test_dataloader_accepts_pin_memory():
    loader = DataLoader(TensorDataset(engine.arange(4)), batch_size=2, pin_memory=True)
    assert [b[0].tolist() for b in loader] == [[0, 1], [2, 3]]


# ---- a DCGAN/classifier-style training step, next to PyTorch's on the same weights --------------------
def _weights_init(m):
    name = m.__class__.__name__
    if name.find("Linear") != -1:
        m.weight.data.normal_(0.0, 0.02)
        m.bias.data.fill_(0)
    elif name.find("BatchNorm") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def _classifier(lib):
    return lib.nn.Sequential(lib.nn.Linear(6, 8), lib.nn.BatchNorm1d(8), lib.nn.ReLU(), lib.nn.Linear(8, 3))


def test_weights_init_through_apply():
    engine.manual_seed(0)
    model = _classifier(engine)
    model.apply(_weights_init)
    assert abs(model[0].weight.std().item() - 0.02) < 0.01 and model[0].bias.abs().sum().item() == 0
    assert abs(model[1].weight.mean().item() - 1.0) < 0.02 and model[0].weight.grad_fn is None


@needs_torch
def test_training_steps_match_torch_on_the_same_weights():
    torch.manual_seed(0)
    theirs = _classifier(torch)
    ours = _classifier(engine)
    ours.load_state_dict({k: engine.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((16, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    losses = {}
    for lib, model in ((engine, ours), (torch, theirs)):
        decay = [p for n, p in model.named_parameters() if not n.endswith(".bias")]
        no_decay = [p for n, p in model.named_parameters() if n.endswith(".bias")]
        opt = lib.optim.SGD([{"params": decay, "weight_decay": 1e-2}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=0.5, momentum=0.9)
        sched = lib.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        out = []
        for step in range(5):
            if step == 3:
                opt.param_groups[0]["lr"] = 0.05
                model[0].weight.requires_grad_(False)
            model.train()
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y), label_smoothing=0.1)
            loss.backward()
            norm = lib.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            model.eval()
            with lib.no_grad():
                out.append((loss.item(), float(norm), model(lib.tensor(x)).sum().item(),
                            opt.param_groups[0]["lr"]))
        losses[lib.__name__] = out
    np.testing.assert_allclose(np.array(losses["engine"]), np.array(losses["torch"]), rtol=1e-4, atol=1e-5)


# ---- GPU: the same idioms on CuPy arrays --------------------------------------------------------------
@pytest.mark.parametrize("write", ["relu", "tanh", "sigmoid", "exp"])
def test_write_into_non_leaf_from_its_own_view_gpu(write):
    cuda_or_skip()
    grads = []
    for device in ("cpu", "cuda"):
        x = engine.tensor(A, requires_grad=True, device=device)
        y = x * 2
        y[0] = WRITES[write](engine, y)
        (y * engine.tensor(W, device=device)).sum().backward()
        grads.append(x.grad.cpu().numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["sigmoid_on_columns", "zero_on_transposed_row", "row_then_base",
                                  "view_before_write_through_another", "view_before_base_write"])
def test_in_place_change_of_a_view_gpu(case):
    cuda_or_skip()
    results = []
    for device in ("cpu", "cuda"):
        x = engine.tensor(A, requires_grad=True, device=device)
        out = VIEW_WRITES[case](engine, x)
        (out * engine.tensor(W, device=device)).sum().backward()
        results.append((out.detach().cpu().numpy(), x.grad.cpu().numpy()))
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_samplers_and_index_fill_gpu():
    cuda_or_skip()
    engine.manual_seed(0)
    x = engine.empty(20000, device="cuda").bernoulli_(0.3)
    assert x.is_cuda and abs(x.mean().item() - 0.3) < 0.02
    assert engine.zeros(4, device="cuda").bernoulli_(engine.tensor([0.0, 1, 1, 0], device="cuda")).tolist() == \
        [0.0, 1.0, 1.0, 0.0]
    e = engine.empty(20000, device="cuda").exponential_(2.0)
    assert e.is_cuda and abs(e.mean().item() - 0.5) < 0.02
    r = engine.empty(1000, dtype=engine.long, device="cuda").random_(3, 7)
    assert r.is_cuda and set(np.unique(r.cpu().numpy())) == {3, 4, 5, 6}
    assert engine.empty(100, device="cuda").geometric_(0.5).min().item() >= 1
    assert engine.multinomial(engine.tensor([0.0, 1.0], device="cuda"), 3, replacement=True).is_cuda
    w = engine.ones(3, 2, device="cuda", requires_grad=True)
    y = w * 1
    y.index_fill_(0, engine.tensor([1], device="cuda"), 0.0)
    y.sum().backward()
    assert w.grad.tolist() == [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]


def test_inverse_trig_domain_edge():
    # asin and acos are finite inside (-1, 1); their derivatives blow up only at the ends, as in torch
    x = engine.tensor([0.0], requires_grad=True)
    (x.asin() + x.acos()).sum().backward()
    assert math.isclose(x.grad.item(), 0.0, abs_tol=1e-7)


def test_index_fill_value_tensor_grad_fd():
    check_grads(lambda x, v: x.index_fill(0, _long(x, [0, 2]), v.sum()), [(3, 2), (1,)])


def test_torch_check_of_where_with_new_zeros():
    torch_check(lambda x: engine.where(x > 0, x, x.new_zeros(1)), [A],
                torch_fn=lambda x: torch.where(x > 0, x, x.new_zeros(1)))


# ---- layers and functions the ported scripts used ----------------------------------------------------
def test_dropout2d_zeroes_whole_channels():
    engine.manual_seed(0)
    x = engine.ones(8, 6, 3, 3, requires_grad=True)
    m = nn.Dropout2d(0.5)
    y = m(x)
    maps = y.detach().numpy().reshape(48, 9)
    assert set(np.unique(maps)) == {0.0, 2.0} and (maps.std(1) == 0).all()  # one value per feature map
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())
    assert engine.nn.functional.dropout2d(engine.ones(6, 3, 3), 0.3).shape == (6, 3, 3)
    m.eval()
    assert m(x) is x
    with pytest.raises(ValueError, match=r"dropout2d: expected a 3-D \(C, H, W\) or 4-D \(N, C, H, W\) input, got "
                                         r"shape \(4, 6\)"):
        nn.Dropout2d()(engine.ones(4, 6))


def test_logsigmoid():
    check_grads(lambda x: engine.nn.functional.logsigmoid(x * 30), [(3, 4)],
                torch_fn=lambda x: torch.nn.functional.logsigmoid(x * 30))
