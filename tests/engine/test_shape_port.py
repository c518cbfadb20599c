"""The ported shape functions (engine.ops.shape_port) against PyTorch and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, cuda_or_skip, needs_torch, torch
from tests.engine.second_order import second_order_tests

SHAPE_FUNCTIONS = ("t", "meshgrid", "hstack", "vstack", "row_stack", "dstack", "column_stack", "atleast_1d",
                   "atleast_2d", "atleast_3d", "hsplit", "vsplit", "dsplit", "tensor_split", "split_with_sizes",
                   "unsafe_chunk", "unsafe_split", "concat", "concatenate", "ravel", "unravel_index",
                   "broadcast_tensors", "broadcast_shapes", "combinations", "diagflat", "fliplr", "flipud", "msort",
                   "unique_consecutive", "narrow_copy")
SHAPE_METHODS = ("t", "hsplit", "vsplit", "dsplit", "tensor_split", "split_with_sizes", "unsafe_chunk",
                 "unsafe_split", "ravel", "diagflat", "fliplr", "flipud", "msort", "unique_consecutive",
                 "narrow_copy", "sum_to_size", "unfold", "t_", "transpose_", "swapaxes_", "swapdims_", "squeeze_",
                 "unsqueeze_")


def test_every_name_exists_on_engine_and_tensor():
    assert [n for n in SHAPE_FUNCTIONS if not callable(getattr(engine, n, None))] == []
    assert [n for n in SHAPE_METHODS if not callable(getattr(engine.Tensor, n, None))] == []


# (function of L = engine or torch and float tensors, input shapes)
JOINS = {
    "hstack_1d": (lambda L, a, b: L.hstack([a, b]), [(3,), (4,)]),
    "hstack_2d": (lambda L, a, b: L.hstack((a, b)), [(2, 3), (2, 1)]),
    "vstack": (lambda L, a, b: L.vstack([a, b]), [(3,), (2, 3)]),
    "row_stack": (lambda L, a, b: L.row_stack([a, b]), [(3,), (3,)]),
    "dstack": (lambda L, a, b: L.dstack([a, b]), [(3,), (1, 3, 2)]),
    "column_stack": (lambda L, a, b: L.column_stack([a, b]), [(3,), (3, 2)]),
    "concat": (lambda L, a, b: L.concat([a, b], dim=1), [(2, 3), (2, 2)]),
    "concatenate": (lambda L, a, b: L.concatenate([a, b], axis=-1), [(2, 3), (2, 2)]),
    "meshgrid_ij": (lambda L, a, b: L.stack(L.meshgrid(a, b, indexing="ij")), [(3,), (4,)]),
    "meshgrid_xy": (lambda L, a, b: L.stack(L.meshgrid([a, b], indexing="xy")), [(3,), (4,)]),
    "meshgrid_3": (lambda L, a, b: L.stack(L.meshgrid(a, b, a, indexing="xy")), [(2,), (3,)]),
    "broadcast_tensors": (lambda L, a, b: L.stack(L.broadcast_tensors(a, b)), [(3, 1), (4,)]),
    "combinations": (lambda L, a, b: L.combinations(a, 2) * b.sum(), [(4,), (1,)]),
    "combinations_repl": (lambda L, a, b: L.combinations(a, 3, with_replacement=True) + b, [(3,), (1,)]),
    "diagflat": (lambda L, a, b: L.diagflat(a, -1) + b, [(2, 2), (1,)]),
    "fliplr": (lambda L, a, b: L.fliplr(a) * b, [(2, 3), (3,)]),
    "flipud": (lambda L, a, b: L.flipud(a) * b, [(2, 3), (3,)]),
    "msort": (lambda L, a, b: L.msort(a) * b, [(4, 3), (3,)]),
    "narrow_copy": (lambda L, a, b: L.narrow_copy(a, 1, 1, 2) * b, [(2, 3), (2, 1)]),
    "ravel": (lambda L, a, b: a.t().ravel() * b, [(2, 3), (6,)]),
    "t": (lambda L, a, b: L.t(a) * b, [(2, 3), (2,)]),
    "atleast_3d": (lambda L, a, b: L.atleast_3d(a) * L.atleast_3d(b), [(2, 3), (3,)]),
    "atleast_2d": (lambda L, a, b: L.atleast_2d(a, b)[0] * b, [(3,), (3,)]),
    "sum_to_size": (lambda L, a, b: a.sum_to_size(3, 1) * b, [(2, 3, 4), (3, 1)]),
    "unfold": (lambda L, a, b: a.unfold(1, 3, 2) * b, [(2, 8, 2), (3,)]),
    "unfold_last": (lambda L, a, b: a.unfold(-1, 2, 1) * b, [(3, 4), (2,)]),
}
SPLITS = {
    "tensor_split_sections": (lambda L, a: L.tensor_split(a, 4, dim=1), (2, 6)),
    "tensor_split_indices": (lambda L, a: L.tensor_split(a, [1, 10, 2, -1]), (5, 2)),
    "tensor_split_tensor": (lambda L, a: a.tensor_split(L.tensor([1, 3]), 0), (5,)),
    "hsplit": (lambda L, a: L.hsplit(a, 2), (2, 4)),
    "hsplit_1d": (lambda L, a: L.hsplit(a, [1, 3]), (5,)),
    "vsplit": (lambda L, a: a.vsplit(3), (3, 2)),
    "dsplit": (lambda L, a: L.dsplit(a, [1]), (2, 1, 3)),
    "split_with_sizes": (lambda L, a: a.split_with_sizes([1, 3], dim=-1), (2, 4)),
    "unsafe_split": (lambda L, a: L.unsafe_split(a, 2, 1), (2, 5)),
    "unsafe_chunk": (lambda L, a: L.unsafe_chunk(a, 3), (5, 2)),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(JOINS))
def test_joins_and_reshapes_match_torch_and_finite_differences(name):
    fn, shapes = JOINS[name]
    check_grads(lambda a, b: fn(engine, a, b), shapes, torch_fn=lambda a, b: fn(torch, a, b))


@needs_torch
@pytest.mark.parametrize("name", sorted(SPLITS))
def test_splits_give_torchs_pieces_and_gradients(name):
    fn, shape = SPLITS[name]
    a = np.random.default_rng(0).standard_normal(shape)
    ours, theirs = fn(engine, engine.tensor(a)), fn(torch, torch.tensor(a))
    assert isinstance(ours, tuple)
    assert [tuple(p.shape) for p in ours] == [tuple(p.shape) for p in theirs]
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    weights = np.arange(len(ours)) + 1.0
    check_grads(lambda x: engine.cat([p.reshape(-1) * w for p, w in zip(fn(engine, x), weights)]), [shape],
                torch_fn=lambda x: torch.cat([p.reshape(-1) * w for p, w in zip(fn(torch, x), weights)]))


def test_splits_are_views_of_their_input():
    x = engine.zeros(2, 6)
    piece = engine.tensor_split(x, 3, dim=1)[1]
    piece.fill_(1.0)
    assert x.numpy()[:, 2:4].tolist() == [[1.0, 1.0], [1.0, 1.0]] and x.numpy().sum() == 4


@needs_torch
def test_atleast_returns_a_tensor_for_one_and_a_tuple_for_several():
    for fn in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for args in [(engine.tensor(1.0),), (engine.ones(3), engine.ones(2, 2)), ([engine.ones(3)],)]:
            ours = getattr(engine, fn)(*args)
            theirs = getattr(torch, fn)(*[[torch.tensor(t.numpy()) for t in a] if isinstance(a, list)
                                          else torch.tensor(a.numpy()) for a in args])
            if isinstance(theirs, torch.Tensor):
                assert isinstance(ours, engine.Tensor) and ours.shape == theirs.shape
            else:
                assert isinstance(ours, tuple) and [o.shape for o in ours] == [t.shape for t in theirs]


@needs_torch
def test_combinations_edge_sizes_and_unravel_index_match_torch():
    x = np.arange(3.0)
    for r, repl in [(0, False), (1, False), (4, False), (4, True)]:
        ours, theirs = engine.combinations(engine.tensor(x), r, repl), torch.combinations(torch.tensor(x), r, repl)
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    idx = np.array([[7, -1], [-7, 4]])
    for shape in [(2, 3), 6, (2, 1, 3), ()]:
        ours, theirs = engine.unravel_index(engine.tensor(idx), shape), torch.unravel_index(torch.tensor(idx), shape)
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            assert o.dtype == engine.int64
            np.testing.assert_array_equal(o.numpy(), t.numpy())


@needs_torch
@pytest.mark.parametrize(("values", "dim"), [
    ([1.0, 1, 2, 2, 3, 1, 1, 2], None), ([[1, 2], [1, 2], [3, 4], [1, 2]], 0), ([[1, 2, 2], [1, 2, 2]], 1),
    ([[1, 1], [1, 1]], None), (3.0, None), ([], None), ([[1, 2], [1, 3]], -1)])
def test_unique_consecutive_matches_torch(values, dim):
    for inverse in (False, True):
        for counts in (False, True):
            # by keyword: torch 2.13 ignores return_counts when return_inverse comes positionally
            flags = {"return_inverse": inverse, "return_counts": counts, "dim": dim}
            ours = engine.tensor(values).unique_consecutive(**flags)
            theirs = torch.unique_consecutive(torch.tensor(values), **flags)
            ours, theirs = (ours, theirs) if isinstance(theirs, tuple) else ((ours,), (theirs,))
            assert len(ours) == len(theirs)
            for o, t in zip(ours, theirs):
                assert tuple(o.shape) == tuple(t.shape) and o.dtype.name == str(t.dtype).removeprefix("torch.")
                np.testing.assert_array_equal(o.numpy(), t.numpy())


@needs_torch
def test_sum_to_size_and_unfold_match_torch_values():
    a = np.arange(24.0).reshape(2, 3, 4)
    for size in [(3, 1), (1, 3, 4), (4,), (2, 3, 4), ()]:
        np.testing.assert_array_equal(engine.tensor(a).sum_to_size(size).numpy(),
                                      torch.tensor(a).sum_to_size(size).numpy())
    for args in [(0, 1, 1), (2, 4, 1), (2, 0, 3), (1, 2, 5)]:
        ours, theirs = engine.tensor(a).unfold(*args), torch.tensor(a).unfold(*args)
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert engine.tensor(2.0).unfold(0, 1, 1).numpy().tolist() == [2.0]


@needs_torch
def test_in_place_shape_changes_match_torch_and_keep_autograd_right():
    a = np.random.default_rng(0).standard_normal((2, 3))
    steps = [("t_", ()), ("unsqueeze_", (0,)), ("transpose_", (0, 2)), ("squeeze_", (1,)), ("swapdims_", (0, 1)),
             ("swapaxes_", (1, 0)), ("squeeze_", ())]
    xs = [L.tensor(a, requires_grad=True) for L in (engine, torch)]
    ys = [x * 1 for x in xs]
    for name, args in steps:
        versions = [y._version for y in ys]
        outs = [getattr(y, name)(*args) for y in ys]
        assert outs[0] is ys[0] and tuple(ys[0].shape) == tuple(ys[1].shape)
        assert ys[0]._version == versions[0] + 1
        np.testing.assert_array_equal(ys[0].detach().numpy(), ys[1].detach().numpy())
    r = np.random.default_rng(1).standard_normal(tuple(ys[1].shape))
    for L, y in zip((engine, torch), ys):
        (y * L.tensor(r) * y).sum().backward()
    np.testing.assert_allclose(xs[0].grad.numpy(), xs[1].grad.numpy(), rtol=1e-12)


def test_in_place_shape_change_of_a_view_writes_through_to_its_base():
    x = engine.ones(2, 3, requires_grad=True)
    base = x * 1
    row = base[0]
    row.unsqueeze_(0)
    assert tuple(row.shape) == (1, 3)
    row.mul_(engine.tensor([[2.0, 3.0, 4.0]]))
    assert base.detach().numpy()[0].tolist() == [2.0, 3.0, 4.0]
    base.sum().backward()
    assert x.grad.numpy().tolist() == [[2.0, 3.0, 4.0], [1.0, 1.0, 1.0]]


SECOND_ORDER = {
    "hstack": (lambda L, F, a, b: L.hstack([a * a, b]) ** 2, [(3,), (2,)]),
    "column_stack": (lambda L, F, a, b: L.column_stack([a, b * a]) ** 2, [(3,), (3,)]),
    "meshgrid": (lambda L, F, a, b: L.stack(L.meshgrid(a, b, indexing="xy")) ** 3, [(2,), (3,)]),
    "tensor_split": (lambda L, F, a, b: L.tensor_split(a * b, [1, 3])[1] ** 3, [(4,), (4,)]),
    "unfold": (lambda L, F, a, b: (a.unfold(0, 3, 1) * b) ** 2, [(5,), (3,)]),
    "sum_to_size": (lambda L, F, a, b: a.sum_to_size(1, 3) ** 2 * b, [(2, 3), (3,)]),
    "combinations": (lambda L, F, a, b: L.combinations(a * b) ** 2, [(3,), (3,)]),
    "diagflat": (lambda L, F, a, b: L.diagflat(a * b, 1) ** 2, [(3,), (3,)]),
}


test_second_order_matches_torch, test_second_order_matches_finite_differences = second_order_tests(SECOND_ORDER)


@needs_torch
@pytest.mark.parametrize(("call", "error"), [
    (lambda L, x: L.meshgrid(x.reshape(2, 3), x), RuntimeError),
    (lambda L, x: L.meshgrid(x, x.int()), RuntimeError),
    (lambda L, x: L.meshgrid(x, indexing="yx"), RuntimeError),
    (lambda L, x: L.meshgrid(), RuntimeError),
    (lambda L, x: L.hstack([]), RuntimeError),
    (lambda L, x: L.column_stack([x, L.tensor(1.0)]), RuntimeError),
    (lambda L, x: L.hsplit(x, 4), RuntimeError),
    (lambda L, x: L.vsplit(x, 2), RuntimeError),
    (lambda L, x: L.dsplit(x.reshape(2, 3), 3), RuntimeError),
    (lambda L, x: L.tensor_split(x, 0), RuntimeError),
    (lambda L, x: L.tensor_split(L.tensor(1.0), 2), RuntimeError),
    (lambda L, x: L.tensor_split(x, L.tensor([[1]])), RuntimeError),
    (lambda L, x: L.tensor_split(x, 2.0), TypeError),
    (lambda L, x: L.tensor_split(x, 2, dim=1), IndexError),
    (lambda L, x: L.split_with_sizes(x, [2, 3]), RuntimeError),
    (lambda L, x: L.unravel_index(L.tensor([1.0]), (2, 3)), TypeError),
    (lambda L, x: L.unravel_index(L.tensor([1]), (2, -3)), ValueError),
    (lambda L, x: L.broadcast_tensors(x, x[:4]), RuntimeError),
    (lambda L, x: L.combinations(x.reshape(2, 3)), RuntimeError),
    (lambda L, x: L.combinations(x, -1), RuntimeError),
    (lambda L, x: L.fliplr(x), RuntimeError),
    (lambda L, x: L.flipud(L.tensor(1.0)), RuntimeError),
    (lambda L, x: L.narrow_copy(x.reshape(2, 3), 1, 2, 2), RuntimeError),
    (lambda L, x: x.reshape(2, 3).sum_to_size(2), RuntimeError),
    (lambda L, x: x.reshape(2, 3).sum_to_size(1, 2, 3), RuntimeError),
    (lambda L, x: x.unfold(0, 7, 1), RuntimeError),
    (lambda L, x: x.unfold(0, 2, 0), RuntimeError),
    (lambda L, x: x.unfold(0, -1, 1), RuntimeError),
    (lambda L, x: x.unfold(1, 2, 1), IndexError),
    (lambda L, x: x.reshape(1, 2, 3).t_(), RuntimeError),
    (lambda L, x: x.reshape(2, 3).squeeze_(5), IndexError),
    (lambda L, x: L.ones(2, 3, requires_grad=True).t_(), RuntimeError),
])
def test_bad_input_raises_torchs_error(call, error):
    with pytest.raises(error):
        call(torch, torch.arange(6.0))
    with pytest.raises(error):
        call(engine, engine.arange(6.0))


def test_on_cuda_stacking_splitting_and_unfold_match_the_cpu():
    cp = cuda_or_skip()
    a = np.random.default_rng(0).standard_normal((4, 6))
    for fn in [lambda L, x: L.hstack([x, x]), lambda L, x: L.tensor_split(x, 4, 1)[1], lambda L, x: x.unfold(1, 3, 2),
               lambda L, x: L.stack(L.meshgrid(x[0], x[1], indexing="xy")), lambda L, x: L.combinations(x[0]),
               lambda L, x: x.sum_to_size(1, 6)]:
        outs, grads = [], []
        for device in ("cpu", "cuda"):
            x = engine.tensor(a, device=device, requires_grad=True)
            out = fn(engine, x)
            out.sum().backward()
            outs.append(out.detach().cpu().numpy())
            grads.append(x.grad.cpu().numpy())
        np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12)
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)
    values, inverse = engine.tensor(cp.asarray([1, 1, 2])).unique_consecutive(return_inverse=True)
    assert values.cpu().numpy().tolist() == [1, 2] and inverse.cpu().numpy().tolist() == [0, 0, 1]


def test_meshgrid_without_indexing_warns_at_the_callers_line_and_uses_ij():
    a, b = engine.arange(2), engine.arange(3)
    with pytest.warns(UserWarning, match="pass indexing='ij'") as caught:
        grids = engine.meshgrid(a, b)
    assert caught[0].filename == __file__ and grids[0].shape == (2, 3)
