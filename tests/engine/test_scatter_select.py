"""scatter, index_add, masked_select, unbind and narrow against finite differences and PyTorch; their errors."""

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, finite_difference_check, needs_torch, torch

# distinct rows within each column, so which write lands is never a question of order
SCATTER_INDEX = np.array([[0, 2, 1, 0], [1, 0, 2, 2]])


@pytest.mark.parametrize("fn,specs", [
    (lambda x, i, s: x.scatter(0, i, s), [(3, 4), SCATTER_INDEX, (2, 4)]),
    (lambda x, i, s: x.scatter(1, i, s), [(2, 3), np.array([[2, 0], [1, 2]]), (2, 2)]),
    (lambda x, i: x.scatter(0, i, 2.5), [(3, 4), SCATTER_INDEX]),
], ids=["dim0", "dim1", "number"])
def test_scatter(fn, specs):
    check_grads(fn, specs)


def test_scatter_from_a_larger_src_reads_its_leading_block():
    # torch 2.13's backward rejects a src larger than index, so its forward is the only reference here
    rng = np.random.default_rng(0)
    x, src = rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    finite_difference_check(lambda x, i, s: x.scatter(0, i, s), [x, SCATTER_INDEX, src])
    expected = x.copy()
    for (r, c), v in np.ndenumerate(SCATTER_INDEX):
        expected[v, c] = src[r, c]
    out = engine.tensor(x).scatter(0, engine.tensor(SCATTER_INDEX), engine.tensor(src))
    np.testing.assert_array_equal(out.numpy(), expected)


def test_scatter_in_place_and_value_keyword():
    z = engine.zeros(3, 4)
    z.scatter_(1, engine.tensor([[1], [2], [3]]), 1.0)
    np.testing.assert_array_equal(z.numpy(), np.eye(3, 4, 1))
    w = engine.zeros(2, 2).scatter(0, engine.tensor([[1, 0]]), value=7.0)
    np.testing.assert_array_equal(w.numpy(), [[0, 7], [7, 0]])
    n = engine.zeros(3, 4).scatter(0, engine.tensor([[2, 0, 1, 2]]), np.float32(2.5))  # a numpy number
    np.testing.assert_array_equal(n.numpy(), [[0, 2.5, 0, 0], [0, 0, 2.5, 0], [2.5, 0, 0, 2.5]])


@pytest.mark.parametrize("fn,specs", [
    (lambda x, i, s: x.index_add(0, i, s), [(4, 3), np.array([0, 2, 0]), (3, 3)]),
    (lambda x, i, s: x.index_add(1, i, s, alpha=-0.5), [(2, 5), np.array([4, 1]), (2, 2)]),
], ids=["repeats", "dim1-alpha"])
def test_index_add(fn, specs):
    check_grads(fn, specs)


def test_index_add_in_place():
    x = engine.zeros(3)
    x.index_add_(0, engine.tensor([2, 2, 0]), engine.ones(3))
    np.testing.assert_array_equal(x.numpy(), [1, 0, 2])


MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])


@pytest.mark.parametrize("fn,specs", [
    (lambda x, m: x.masked_select(m), [(3, 4), MASK]),
    (lambda x, m: x.masked_select(m), [(1, 4), MASK]),          # x broadcast: gradients add up
    (lambda x, m: engine.masked_select(x, m) if isinstance(x, engine.Tensor) else torch.masked_select(x, m),
     [(3, 4), MASK[0]]),                                          # mask broadcast
], ids=["same-shape", "x-broadcast", "mask-broadcast"])
def test_masked_select(fn, specs):
    check_grads(fn, specs)


@pytest.mark.parametrize("fn", [
    lambda x: x.unbind(1)[2] * 2 + x.unbind(1)[0],
    lambda x: x.unbind()[1],
    lambda x: x.narrow(1, 1, 2),
    lambda x: x.narrow(-1, -3, 3),
    lambda x: x.narrow(0, 0, 0),
], ids=["unbind-dim1", "unbind-dim0", "narrow", "narrow-negative", "narrow-empty"])
def test_unbind_and_narrow(fn):
    check_grads(fn, [(3, 4)])


def test_unbind_and_narrow_are_views():
    x = engine.zeros(3, 4)
    x.narrow(1, 1, 2).fill_(1.0)
    x.unbind(0)[2].fill_(2.0)
    np.testing.assert_array_equal(x.numpy(), [[0, 1, 1, 0], [0, 1, 1, 0], [2, 2, 2, 2]])
    assert len(x.unbind(1)) == 4


def test_errors_name_the_op_and_shapes():
    x = engine.zeros(3, 4)
    with pytest.raises(IndexError, match=r"scatter: index 5 is out of bounds for dimension 0 with size 3 of "
                                         r"input \(3, 4\)"):
        x.scatter(0, engine.tensor([[5]]), 1.0)
    with pytest.raises(engine.ShapeError, match=r"scatter: index \(1, 5\) must be no larger than input \(3, 4\)"):
        x.scatter(0, engine.tensor([[0, 0, 0, 0, 0]]), 1.0)
    with pytest.raises(engine.ShapeError, match=r"scatter: index \(2, 2\) must be no larger.*src \(1, 2\)"):
        x.scatter(0, engine.tensor([[0, 1], [1, 0]]), engine.ones(1, 2))
    with pytest.raises(IndexError, match=r"index_add: index 4 is out of bounds for dimension 1 with size 4"):
        x.index_add(1, engine.tensor([4]), engine.ones(3, 1))
    with pytest.raises(engine.ShapeError, match=r"index_add: source \(3, 2\) must have shape \(3, 1\).*\(3, 4\)"):
        x.index_add(1, engine.tensor([0]), engine.ones(3, 2))
    with pytest.raises(engine.ShapeError, match=r"masked_select: mask \(2, 4\) does not broadcast with input "
                                                r"\(3, 4\)"):
        x.masked_select(engine.ones(2, 4, dtype=engine.bool_))
    with pytest.raises(RuntimeError, match="masked_select: expected a bool mask"):
        x.masked_select(engine.ones(3, 4))
    with pytest.raises(engine.ShapeError, match=r"narrow: start \(3\) \+ length \(2\) exceeds dim 1 of size 4 "
                                                r"\(tensor of shape \(3, 4\)\)"):
        x.narrow(1, 3, 2)
    with pytest.raises(IndexError, match=r"narrow: start 9 is out of range for dim 0 of size 3"):
        x.narrow(0, 9, 1)
    with pytest.raises(engine.ShapeError, match="unbind: expects at least a 1-dimensional tensor"):
        engine.tensor(1.0).unbind()


@needs_torch
def test_unbind_matches_torch_piece_by_piece():
    a = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    ours, theirs = engine.tensor(a).unbind(-1), torch.tensor(a).unbind(-1)
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.numpy(), t.numpy())
