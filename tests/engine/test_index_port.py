"""The ported index and scatter functions (engine.ops.index_port) against PyTorch and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, cuda_or_skip, needs_torch, torch
from tests.engine.second_order import second_order_tests

INDEX_FUNCTIONS = ("take", "put", "index_copy", "index_put", "index_put_", "index_reduce", "masked_scatter",
                   "select_scatter", "slice_scatter", "diagonal_scatter")
INDEX_METHODS = ("take", "put", "put_", "index_copy", "index_copy_", "index_put", "index_put_", "index_reduce",
                 "index_reduce_", "masked_scatter", "masked_scatter_", "select_scatter", "slice_scatter",
                 "diagonal_scatter", "fill_diagonal_")


def test_every_name_exists_on_engine_and_tensor():
    assert [n for n in INDEX_FUNCTIONS if not callable(getattr(engine, n, None))] == []
    assert [n for n in INDEX_METHODS if not callable(getattr(engine.Tensor, n, None))] == []


def _i(L, values):
    return L.tensor(values)


MASK = [[True, False, True], [False, True, True]]
# (function of L = engine or torch and float tensors, input shapes): every float input gets a gradient
CASES = {
    "take": (lambda L, x: L.take(x, _i(L, [[0, -1], [5, 5]])), [(2, 3)]),
    "put": (lambda L, x, s: L.put(x, _i(L, [4, -6, 2]), s), [(2, 3), (3,)]),
    "put_accumulate": (lambda L, x, s: x.put(_i(L, [[1, 1], [0, 1]]), s, accumulate=True), [(2, 3), (2, 2)]),
    "index_copy": (lambda L, x, s: x.index_copy(1, _i(L, [2, 0]), s), [(2, 3), (2, 2)]),
    "index_copy_0d": (lambda L, x, s: L.index_copy(x, 0, _i(L, [2]), s), [(4,), (1,)]),
    "index_put": (lambda L, x, v: L.index_put(x, (_i(L, [0, 1]), _i(L, [[2], [0]])), v), [(2, 3), (2,)]),
    "index_put_rows": (lambda L, x, v: x.index_put((_i(L, [1]),), v), [(2, 3), (3,)]),
    "index_put_mask": (lambda L, x, v: L.index_put(x, (_i(L, MASK),), v), [(2, 3), (4,)]),
    "index_put_accumulate": (lambda L, x, v: L.index_put(x, (_i(L, [0, 0, -1]), _i(L, [1, 1, 2])), v, True),
                             [(2, 3), (3,)]),
    "index_put_accumulate_rows": (lambda L, x, v: x.index_put((_i(L, [[1], [1]]),), v, accumulate=True),
                                  [(2, 3, 2), (1, 3, 2)]),
    "masked_scatter": (lambda L, x, s: x.masked_scatter(_i(L, MASK), s), [(2, 3), (2, 3)]),
    "masked_scatter_broadcast": (lambda L, x, s: L.masked_scatter(x, _i(L, MASK), s), [(3,), (5,)]),
    "select_scatter": (lambda L, x, s: L.select_scatter(x, s, 1, -1), [(2, 3), (2,)]),
    "slice_scatter": (lambda L, x, s: L.slice_scatter(x, s, 1, 0, None, 2), [(2, 4), (2, 2)]),
    "slice_scatter_start": (lambda L, x, s: x.slice_scatter(s, start=1), [(3, 2), (2, 2)]),
    "diagonal_scatter": (lambda L, x, s: L.diagonal_scatter(x, s, 1), [(3, 4), (3,)]),
    "diagonal_scatter_neg": (lambda L, x, s: x.diagonal_scatter(s, -1, 2, 0), [(3, 2, 3), (2, 2)]),
}
for _reduce in ("prod", "mean", "amax", "amin"):
    for _self in (True, False):
        CASES[f"index_reduce_{_reduce}_{_self}"] = (
            lambda L, x, s, r=_reduce, inc=_self: x.index_reduce(1, _i(L, [0, 2, 0, 0]), s, r, include_self=inc),
            [(2, 3), (2, 4)])


@needs_torch
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch_and_finite_differences(name):
    fn, shapes = CASES[name]
    check_grads(lambda *xs: fn(engine, *xs), shapes, torch_fn=lambda *xs: fn(torch, *xs))


@needs_torch
def test_index_reduce_of_integers_and_duplicate_free_put_match_torch():
    x, s = np.arange(6).reshape(2, 3), np.arange(8).reshape(2, 4) * 3
    for reduce in ("prod", "mean", "amax", "amin"):
        for inc in (True, False):
            ours = engine.tensor(x).index_reduce(1, engine.tensor([0, 2, 0, 0]), engine.tensor(s), reduce,
                                                 include_self=inc)
            theirs = torch.tensor(x).index_reduce(1, torch.tensor([0, 2, 0, 0]), torch.tensor(s), reduce,
                                                  include_self=inc)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@needs_torch
@pytest.mark.parametrize(("name", "args"), [
    ("put_", (lambda L: (L.tensor([0, -1]), L.tensor([5.0, 6.0])))),
    ("index_copy_", (lambda L: (1, L.tensor([2, 0]), L.ones(2, 2)))),
    ("index_put_", (lambda L: ((L.tensor([0, 0]), L.tensor([1, 1])), L.tensor([1.0, 2.0]), True))),
    ("index_reduce_", (lambda L: (0, L.tensor([1, 1]), L.full((2, 3), 3.0), "prod"))),
    ("masked_scatter_", (lambda L: (L.tensor(MASK), L.arange(6.0)))),
    ("fill_diagonal_", (lambda L: (7.0,))),
    ("fill_diagonal_", (lambda L: (L.tensor(7.0),))),
])
def test_in_place_variants_change_the_tensor_and_record_the_change(name, args):
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    results = []
    for L in (engine, torch):
        x = L.tensor(a, requires_grad=True)
        y = x * 2
        assert getattr(y, name)(*args(L)) is y
        (y * y).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1])


@needs_torch
@pytest.mark.parametrize(("shape", "wrap"), [((5, 3), False), ((5, 3), True), ((7, 3), True), ((3, 5), True),
                                             ((2, 2, 2), False), ((3, 3), False)])
def test_fill_diagonal_matches_torch(shape, wrap):
    ours, theirs = engine.zeros(*shape), torch.zeros(*shape)
    ours.fill_diagonal_(1.5, wrap=wrap)
    theirs.fill_diagonal_(1.5, wrap=wrap)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


SECOND_ORDER = {
    "take": (lambda L, F, x: L.take(x * x, L.tensor([1, 1, -1])) ** 2, [(2, 2)]),
    "put_accumulate": (lambda L, F, x, s: L.put(x * x, L.tensor([0, 0]), s * x[0], accumulate=True) ** 2,
                       [(2, 2), (2,)]),
    "index_copy": (lambda L, F, x, s: L.index_copy(x * x, 0, L.tensor([1]), s * s) ** 2, [(3, 2), (1, 2)]),
    "index_put": (lambda L, F, x, v: L.index_put(x * x, (L.tensor([0, 1]),), v * v, True) ** 2, [(2, 2), (2,)]),
    "index_reduce": (lambda L, F, x, s: L.index_reduce(x, 0, L.tensor([1, 1]), s, "prod") ** 2, [(2, 2), (2, 2)]),
    "masked_scatter": (lambda L, F, x, s: L.masked_scatter(x * x, L.tensor([True, False, True]), s * s) ** 2,
                       [(3,), (3,)]),
    "select_scatter": (lambda L, F, x, s: L.select_scatter(x * x, s * s, 0, 1) ** 2, [(2, 3), (3,)]),
    "slice_scatter": (lambda L, F, x, s: L.slice_scatter(x * x, s * s, 1, 1) ** 2, [(2, 3), (2, 2)]),
    "diagonal_scatter": (lambda L, F, x, s: L.diagonal_scatter(x * x, s * s) ** 2, [(2, 3), (2,)]),
}


test_second_order_matches_torch, test_second_order_matches_finite_differences = second_order_tests(SECOND_ORDER)


X = np.zeros((2, 3), np.float32)


@needs_torch
@pytest.mark.parametrize(("call", "error"), [
    (lambda L, x: L.take(x, L.tensor([6])), IndexError),
    (lambda L, x: L.take(x, L.tensor([1.0])), RuntimeError),
    (lambda L, x: x.put(L.tensor([0, 1]), L.tensor([1.0, 2.0, 3.0])), IndexError),
    (lambda L, x: x.put(L.tensor([0, 9]), L.tensor([1.0, 2.0])), IndexError),
    (lambda L, x: x.put(L.tensor([0, 1]), L.tensor([1, 2])), RuntimeError),
    (lambda L, x: x.index_copy(1, L.tensor([2, 0]), L.ones(2, 3)), IndexError),
    (lambda L, x: x.index_copy(1, L.tensor([2, 3]), L.ones(2, 2)), IndexError),
    (lambda L, x: x.index_copy(1, L.tensor([-1, 0]), L.ones(2, 2)), IndexError),
    (lambda L, x: x.index_copy(1, L.tensor([[2, 0]]), L.ones(2, 2)), IndexError),
    (lambda L, x: x.index_copy(1, L.tensor([2, 0]), L.ones(2, 2, dtype=L.float64)), RuntimeError),
    (lambda L, x: x.index_copy(1, L.tensor([2, 0]).int(), L.ones(2, 2)), RuntimeError),
    (lambda L, x: x.index_copy(2, L.tensor([2, 0]), L.ones(2, 2)), IndexError),
    (lambda L, x: L.index_put(x, (L.tensor([0, 2]),), L.tensor(5.0)), IndexError),
    (lambda L, x: L.index_put(x, (L.tensor([0, 1]),), L.tensor(5.0, dtype=L.float64)), RuntimeError),
    (lambda L, x: L.index_put(x, (L.tensor([0, 1]), None), L.tensor(5.0)), TypeError),
    (lambda L, x: L.index_put(x, (L.tensor([0.0, 1.0]),), L.tensor(5.0)), IndexError),
    (lambda L, x: L.index_put(x, L.tensor([0, 1]), L.tensor(5.0)), TypeError),
    (lambda L, x: L.index_put(x, (L.tensor([0]),) * 3, L.tensor(5.0)), IndexError),
    (lambda L, x: L.index_put(x, (L.tensor([0, 1]),), L.ones(3, 3)), RuntimeError),
    (lambda L, x: L.index_put(x, (L.tensor([0, 1]), L.tensor([0, 1, 2])), L.tensor(5.0)), IndexError),
    (lambda L, x: x.index_reduce(1, L.tensor([0, 0]), L.ones(2, 2), "sum"), RuntimeError),
    (lambda L, x: x.index_reduce(1, L.tensor([0, 0, 0]), L.ones(2, 2), "prod"), RuntimeError),
    (lambda L, x: x.index_reduce(1, L.tensor([0, 0]), L.ones(2, 2, dtype=L.float64), "prod"), RuntimeError),
    (lambda L, x: x.index_reduce(1, L.tensor([[0, 0]]), L.ones(2, 2), "prod"), IndexError),
    (lambda L, x: x.masked_scatter(L.tensor(MASK), L.arange(2.0)), RuntimeError),
    (lambda L, x: x.masked_scatter(L.tensor(MASK), L.arange(5)), RuntimeError),
    (lambda L, x: x.masked_scatter(L.tensor(MASK).int(), L.arange(5.0)), RuntimeError),
    (lambda L, x: x.masked_scatter(L.tensor(MASK)[:, :2], L.arange(5.0)), RuntimeError),
    (lambda L, x: x[0].masked_scatter_(L.tensor(MASK), L.arange(5.0)), RuntimeError),
    (lambda L, x: L.select_scatter(x, L.ones(2), 0, 1), RuntimeError),
    (lambda L, x: L.select_scatter(x, L.ones(3), 0, 2), IndexError),
    (lambda L, x: L.slice_scatter(x, L.ones(2, 1), 1, 0, None, 2), RuntimeError),
    (lambda L, x: L.slice_scatter(x, L.ones(2, 2), 1, 1, step=0), RuntimeError),
    (lambda L, x: L.diagonal_scatter(x, L.ones(3), 1), RuntimeError),
    (lambda L, x: L.diagonal_scatter(x, L.ones(2), 0, 1, 1), RuntimeError),
    (lambda L, x: x.fill_diagonal_(L.tensor([1.0])), TypeError),
    (lambda L, x: x.fill_diagonal_(L.tensor(1.0, requires_grad=True)), TypeError),
    (lambda L, x: L.zeros(2, 2, 3).fill_diagonal_(1), RuntimeError),
    (lambda L, x: L.zeros(2).fill_diagonal_(1), RuntimeError),
    (lambda L, x: L.ones(3, 3, requires_grad=True).fill_diagonal_(2), RuntimeError),
])
def test_bad_input_raises_torchs_error(call, error):
    with pytest.raises(error):
        call(torch, torch.tensor(X))
    with pytest.raises(error):
        call(engine, engine.tensor(X))


def test_on_cuda_scatters_match_the_cpu():
    cuda_or_skip()
    a, s = np.random.default_rng(0).standard_normal((3, 4)), np.random.default_rng(1).standard_normal((3, 2))
    for fn in [lambda x, s: x.index_copy(1, engine.tensor([3, 1], device=x.device), s),
               lambda x, s: engine.index_put(x, (engine.tensor([0, 0], device=x.device),), s[:, 0].sum() * x[1], True),
               lambda x, s: engine.diagonal_scatter(x, s[:, 0], 1),
               lambda x, s: x.masked_scatter(x > 0, s.reshape(-1).repeat(2)),
               lambda x, s: engine.take(x, engine.tensor([0, -1], device=x.device)) * s[0],
               lambda x, s: x.index_reduce(1, engine.tensor([3, 3], device=x.device), s, "amax")]:
        outs, grads = [], []
        for device in ("cpu", "cuda"):
            x, y = (engine.tensor(v, device=device, requires_grad=True) for v in (a, s))
            out = fn(x, y)
            (out * out).sum().backward()
            outs.append(out.detach().cpu().numpy())
            grads.append((x.grad.cpu().numpy(), y.grad.cpu().numpy()))
        np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12)
        for g1, g0 in zip(grads[1], grads[0]):
            np.testing.assert_allclose(g1, g0, rtol=1e-12)
