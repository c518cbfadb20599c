"""scatter_reduce (sum, prod, mean, amax, amin) against finite differences and PyTorch; ties, zeros; errors."""

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, finite_difference_check, needs_torch, torch

REDUCES = ["sum", "prod", "mean", "amax", "amin"]
# several src entries land on one position, and some positions get none
INDEX = np.array([[0, 2, 1, 0], [1, 0, 2, 2], [0, 0, 0, 1]])


@pytest.mark.parametrize("include_self", [True, False], ids=["with-self", "without-self"])
@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("dim,x_shape,index", [
    (0, (3, 4), INDEX),
    (1, (3, 5), INDEX + 1),
    (-1, (3, 4, 2), np.array([[[1], [0]], [[0], [1]], [[1], [1]]])),
], ids=["dim0", "dim1", "dim-last-3d"])
def test_scatter_reduce(reduce, include_self, dim, x_shape, index):
    check_grads(lambda x, i, s: x.scatter_reduce(dim, i, s, reduce, include_self=include_self),
                [x_shape, index, index.shape])


@pytest.mark.parametrize("reduce", REDUCES)
def test_a_src_larger_than_index_gives_its_extra_entries_no_gradient(reduce):
    # torch 2.13's backward rejects a src larger than index, so only its forward is a reference here
    rng = np.random.default_rng(0)
    x, src = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    finite_difference_check(lambda x, i, s: x.scatter_reduce(0, i, s, reduce), [x, INDEX, src])
    if torch is not None:
        ours = engine.tensor(x).scatter_reduce(0, engine.tensor(INDEX), engine.tensor(src), reduce)
        theirs = torch.tensor(x).scatter_reduce(0, torch.tensor(INDEX), torch.tensor(src), reduce)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def _both(x, index, src, reduce, include_self, grad):
    """(output, x's gradient, src's gradient) from the engine and from torch."""
    results = []
    for lib in (engine, torch):
        xt, st = lib.tensor(x, requires_grad=True), lib.tensor(src, requires_grad=True)
        out = xt.scatter_reduce(0, lib.tensor(index), st, reduce, include_self=include_self)
        out.backward(lib.tensor(grad))
        results.append([t.detach().numpy() for t in (out, xt.grad, st.grad)])
    return results


@needs_torch
@pytest.mark.parametrize("reduce,include_self", [
    ("amax", True), ("amin", True), ("amin", False), ("prod", True), ("prod", False), ("mean", False),
])
def test_ties_and_zeros_match_torch(reduce, include_self):
    # amax/amin: ties among src and with x share the gradient evenly; prod: one zero or several at a position.
    # Without self, x ties with no result: there torch 2.13 would split the gradient with x (next test)
    x = [3.0, 0.0, 2.0, 5.0] if include_self else [7.0, 9.0, -2.0, 5.0]
    index = [0, 0, 1, 1, 1, 2, 2]
    src = [3.0, 3.0, 0.0, 4.0, 0.0, 0.0, 2.0]
    ours, theirs = _both(x, index, src, reduce, include_self, [1.0, 10.0, 100.0, 1000.0])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_amax_without_self_shares_the_gradient_only_among_the_values_it_took():
    # x[0] equals the max but include_self=False leaves it out: src[0] takes the whole gradient. (torch 2.13
    # still counts x[0] in the split, gives src[0] half and x[0] none: half the gradient would vanish.)
    x = engine.tensor([3.0, 1.0], requires_grad=True)
    src = engine.tensor([3.0, 2.0, 3.0, 3.0], requires_grad=True)
    out = x.scatter_reduce(0, engine.tensor([0, 0, 1, 1]), src, "amax", include_self=False)
    out.backward(engine.tensor([1.0, 1.0]))
    np.testing.assert_array_equal(out.detach().numpy(), [3, 3])
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0])
    np.testing.assert_array_equal(src.grad.numpy(), [1, 0, 0.5, 0.5])


@needs_torch
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", REDUCES)
def test_integer_tensors_match_torch(reduce, include_self):
    x = np.array([[5, -7], [9, -3], [0, 4]])
    index = np.array([[0, 2], [0, 2], [2, 2], [0, 0]])
    src = np.array([[1, -3], [2, 4], [-4, 0], [-3, 7]])  # mean rounds toward -inf, as torch's
    ours = engine.tensor(x).scatter_reduce(0, engine.tensor(index), engine.tensor(src), reduce,
                                           include_self=include_self)
    theirs = torch.tensor(x).scatter_reduce(0, torch.tensor(index), torch.tensor(src), reduce,
                                            include_self=include_self)
    assert ours.dtype is engine.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_in_place_function_form_and_0d():
    z = engine.zeros(3)
    assert z.scatter_reduce_(0, engine.tensor([0, 0, 2]), engine.tensor([1.0, 2.0, -3.0]), "amax",
                             include_self=False) is z
    np.testing.assert_array_equal(z.numpy(), [2, 0, -3])
    out = engine.scatter_reduce(engine.ones(3), 0, engine.tensor([1, 1]), engine.tensor([2.0, 6.0]), reduce="mean")
    np.testing.assert_array_equal(out.numpy(), [1, 3, 1])
    scalar = engine.tensor(2.0).scatter_reduce(0, engine.tensor(0), engine.tensor(3.0), "prod")
    assert scalar.shape == () and scalar.item() == 6.0
    empty = engine.ones(2, 3).scatter_reduce(1, engine.zeros(2, 0).long(), engine.ones(2, 0), "prod")
    np.testing.assert_array_equal(empty.numpy(), np.ones((2, 3)))


@pytest.mark.parametrize("call,error,message", [
    (lambda x, i, s: x.scatter_reduce(0, i, s, "max"), RuntimeError,
     "reduce argument must be either sum, prod, mean, amax or amin, got max"),
    (lambda x, i, s: x.scatter_reduce(2, i, s, "sum"), IndexError, r"Dimension out of range .* but got 2\)"),
    (lambda x, i, s: x.scatter_reduce(0, i[0], s, "sum"), engine.ShapeError,
     r"scatter_reduce: index \(4,\) must have as many dimensions as input \(3, 4\) and src \(3, 4\)"),
    (lambda x, i, s: x.scatter_reduce(0, i, s[:, :2], "sum"), engine.ShapeError,
     r"scatter_reduce: index \(3, 4\) must be no larger than .* nor than src \(3, 2\)"),
    (lambda x, i, s: x.scatter_reduce(0, i + 1, s, "sum"), IndexError,
     r"scatter_reduce: index 3 is out of bounds for dimension 0 with size 3 of input \(3, 4\)"),
    (lambda x, i, s: x.scatter_reduce(0, i, s.double(), "sum"), RuntimeError,
     "Expected self.dtype to be equal to src.dtype, got engine.float32 and engine.float64"),
    (lambda x, i, s: x.scatter_reduce(0, i.float(), s, "sum"), RuntimeError, "Expected dtype int32/int64 for index"),
    (lambda x, i, s: x.scatter_reduce(0, i, 1.0, "sum"), TypeError, "src must be a tensor, got float"),
], ids=["reduce-name", "dim", "index-dims", "src-smaller", "out-of-range", "dtype", "index-dtype", "src-type"])
def test_bad_calls_say_what_was_wrong(call, error, message):
    x, i, s = engine.zeros(3, 4), engine.tensor(INDEX), engine.ones(3, 4)
    with pytest.raises(error, match=message):
        call(x, i, s)
