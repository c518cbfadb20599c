"""Views, in-place changes and the version counter, as torch has them: writes through views of any layout and of
0-d tensors land in the base with their gradients, copy_ and fill_ give the old history a zero gradient, and the
changes torch's autograd refuses (an output of split or unbind, a view of a leaf, a saved output changed again)
are refused here too, with torch's words."""

import numpy as np
import pytest

import engine
from tests.engine.oracle import (
    check_grads,
    cuda_or_skip,
    finite_difference_check,
    needs_torch,
    one_line,
    torch,
)


def raised(call) -> str:
    """The message of the RuntimeError `call()` raises."""
    with pytest.raises(RuntimeError) as err:
        call()
    return str(err.value)


def same_error_as_torch(case, match: str) -> None:
    """case(lib) raises a RuntimeError matching `match` in the engine, and torch's words, where torch runs."""
    ours = raised(lambda: case(engine))
    assert match in ours and "\n" not in ours
    if torch is not None:
        assert match in raised(lambda: case(torch))


# ---- writes through a view of a column-major (or any permuted) result -----------------------------------------------
def test_zeroing_a_column_of_a_transposed_result_through_its_view():
    def fn(x):
        y = x.t() * 2  # numpy keeps the transposed layout: y is column-major
        y[:, 0].zero_()
        return y * 1

    check_grads(fn, [(2, 3)])


def test_an_in_place_op_through_a_view_of_a_permuted_3d_result():
    def fn(x):
        y = x.permute(2, 0, 1).sin()
        y[1:, :, 1].add_(y[0, :, 1] * 2)
        y[0].tanh_()
        return y * 1

    check_grads(fn, [(3, 2, 4)])


# ---- 0-d views -------------------------------------------------------------------------------------------------------
def test_select_and_unbind_to_0d_are_views_the_write_lands_in():
    x = engine.tensor([1., 2., 3.])
    x.select(0, 1).add_(5)
    x.unbind(0)[2].mul_(2)
    assert x.tolist() == [1., 7., 6.] and x._version == 2


def test_a_write_into_a_0d_select_reaches_the_gradient():
    def fn(x):
        y = x.clone()
        y.select(0, 1).mul_(5)
        y.select(0, 2).sin_()
        return y

    check_grads(fn, [(3,)])


def test_zeroing_a_0d_tensor_through_its_ellipsis_view_zeroes_its_gradient():
    def fn(x):
        y = x * 1
        y[...].zero_()
        return y

    check_grads(fn, [np.array(1.5)])


def test_a_0d_view_written_in_place_keeps_the_rest_of_its_gradient():
    def fn(x):
        y = x * x
        y[...].mul_(y * 1)
        return y * 3

    check_grads(fn, [np.array(-0.7)])


@pytest.mark.parametrize("write", ["y.detach().add_(1)", "y.add_(1)"])
def test_changing_a_saved_0d_output_in_place_is_an_error_at_backward(write):
    def case(lib):
        x = lib.tensor(2., requires_grad=True)
        y = x.exp()  # exp's backward uses its output
        exec(write, {"y": y})
        assert y._version == 1
        y.backward()

    same_error_as_torch(case, "modified by an inplace operation")


# ---- outputs of functions that return several views -----------------------------------------------------------------
SEVERAL = [("y.split(2)[1]", "Output 1 of Split"), ("y.chunk(2)[0]", "Output 0 of Split"),
           ("y.unbind(0)[1]", "Output 1 of Unbind"), ("y.split_with_sizes([1, 3])[1]", "Output 1 of SplitWithSizes"),
           ("y.split(2)[1][1:]", "of Split")]  # a view of a piece: torch names the last view op, the engine the split


@pytest.mark.parametrize("piece, output", SEVERAL)
@pytest.mark.parametrize("write", ["p.mul_(2)", "p.zero_()", "p[...] = 5", "p.unsqueeze_(0)"])
def test_changing_an_output_of_split_or_unbind_in_place_is_refused(piece, output, write):
    def case(lib):
        y = lib.tensor([1., 2., 3., 4.], requires_grad=True) * 1
        exec(write, {"p": eval(piece, {"y": y})})

    same_error_as_torch(case, "is a view and is being modified inplace. This view is the output of a function "
                              "that returns multiple views.")
    assert output in raised(lambda: case(engine))


def test_an_output_of_split_used_after_its_base_changed_in_place_is_refused():
    def case(lib):
        y = lib.tensor([1., 2., 3., 4.], requires_grad=True) * 1
        piece = y.split(2)[1]
        y.mul_(2)
        return piece * 1

    same_error_as_torch(case, "Output 1 of Split is a view and its base or another view of its base has been modified "
                              "inplace.")


@pytest.mark.parametrize("pieces", ["y.unsafe_split(2)", "y.unsafe_chunk(2)", "y.tensor_split(2)"])
def test_pieces_torch_lets_a_script_change_in_place_are_changed_with_their_gradients(pieces):
    def fn(x):
        y = x * 1
        eval(pieces, {"y": y})[1].sin_()
        return y

    # finite differences only: torch's autograd does not follow its unsafe_ pieces, and its gradient is then wrong
    finite_difference_check(fn, [np.linspace(-1, 2, 4)])


def test_pieces_of_a_tensor_without_gradients_are_written_into_it():
    y = engine.ones(4)
    y.split(2)[1].mul_(3)
    y.unbind(0)[0].add_(1)
    with engine.no_grad():
        x = engine.ones(4, requires_grad=True) * 1
        x.chunk(2)[0].mul_(2)
    assert y.tolist() == [2., 1., 3., 3.] and x.tolist() == [2., 2., 1., 1.]


# ---- copy_ and fill_: the new value does not depend on the old one ---------------------------------------------------
def test_copy_gives_the_old_history_a_zero_gradient_and_the_source_its_own():
    def fn(x, s):
        y = x * 1
        y.copy_(s)
        return y * y

    check_grads(fn, [(2, 3), (3,)])


def test_fill_with_a_0d_tensor_that_requires_grad_sends_it_the_summed_gradient():
    def fn(x, w):
        y = x * 1
        y.fill_(w)
        return y.sin()

    check_grads(fn, [(3,), np.array(0.4)])


def test_fill_with_a_tensor_of_more_than_0_dims_is_refused_as_in_torch():
    same_error_as_torch(lambda lib: lib.zeros(3).fill_(lib.tensor([1.])),
                        "fill_ only supports 0-dimension value tensor but got tensor with 1 dimensions")


# ---- an expand that repeats no element is a plain view ---------------------------------------------------------------
@pytest.mark.parametrize("shape, expanded", [((2, 2), (2, 2)), ((2, 2), (1, 2, 2)), ((2, 1), (2, 1))])
def test_an_expand_that_repeats_nothing_is_written_through(shape, expanded):
    def fn(x):
        y = x * 1
        y.expand(*expanded).mul_(3)
        y.expand(*expanded).sin_()
        return y

    check_grads(fn, [shape])


@needs_torch
def test_an_expand_of_no_elements_is_written_through_as_in_torch():
    got = []
    for lib in (engine, torch):
        y = lib.zeros(1, 0, requires_grad=True) * 1
        e = y.expand(3, 0)
        e.mul_(2)
        got.append((tuple(e.shape), e.requires_grad))
    assert got[0] == got[1]


def test_a_slice_of_an_expand_that_repeats_nothing_is_written_and_the_expand_follows():
    def fn(x):
        y = x * 1
        e = y.expand(2, 3, 3)  # repeats each element of y: not written into itself
        e[0:1, :, 1:2].sin_()  # repeats nothing: a plain view of y
        return e[:, :, 0:1] * e

    check_grads(fn, [(1, 3, 1)])


LEAF_VIEW = "a view of a leaf Variable that requires grad is being used in an in-place operation"
MULTI_OUT = "is a view and is being modified inplace. This view is the output of a function that returns multiple"


@pytest.mark.parametrize("shape, make, match", [
    ((4, 1, 0), "x.permute(1, 0, 2).broadcast_to([2, 4, 0])", LEAF_VIEW),
    ((4, 1, 1), "(x * 1).split([0, 1], 2)[0]", MULTI_OUT),
    ((4, 1, 1), "(x * 1).split([0, 1], 2)[0].reshape(4, 0).expand(3, 4, 0)", MULTI_OUT)])
def test_an_in_place_change_of_a_view_of_no_elements_is_refused_as_of_any_view(shape, make, match):
    def case(lib):
        eval(make, {"x": lib.ones(*shape, requires_grad=True)}).exp_()

    same_error_as_torch(case, match)


def test_an_expand_that_repeats_elements_is_still_refused():
    one_line(lambda: (engine.ones(1, 2, requires_grad=True) * 1).expand(3, 2).mul_(2), RuntimeError, "share memory")


# ---- in-place shape changes of a view of a leaf ----------------------------------------------------------------------
@pytest.mark.parametrize("change", ["v.transpose_(0, 1)", "v.t_()", "v.unsqueeze_(0)", "v.squeeze_()"])
def test_an_in_place_shape_change_of_a_view_of_a_leaf_is_refused_as_in_torch(change):
    def case(lib):
        x = lib.ones(2, 3, requires_grad=True)
        exec(change, {"v": x.t()})

    same_error_as_torch(case, "a view of a leaf Variable that requires grad is being used in an in-place operation")


def test_an_in_place_shape_change_of_a_view_of_a_result_is_recorded():
    def fn(x):
        v = (x * 1).t()
        v.transpose_(0, 1)
        return v.sin()

    check_grads(fn, [(2, 3)])


# ---- an in-place op whose backward uses its output, then another in-place change ------------------------------------
@pytest.mark.parametrize("op", ["sigmoid_", "exp_", "relu_", "tanh_"])
@pytest.mark.parametrize("then", ["y.mul_(3)", "y[0:2].add_(1)", "y.detach().zero_()"])
def test_changing_the_saved_output_of_an_in_place_op_again_is_an_error_at_backward(op, then):
    def case(lib):
        x = lib.tensor([0.5, -1., 2.], requires_grad=True)
        y = x * 1
        getattr(y, op)()
        exec(then, {"y": y})
        y.sum().backward()

    same_error_as_torch(case, "modified by an inplace operation")


@pytest.mark.parametrize("view", [False, True])
@pytest.mark.parametrize("op", ["sigmoid_", "exp_", "relu_", "tanh_"])
def test_an_in_place_op_whose_backward_uses_its_output_differentiates_as_out_of_place(op, view):
    def fn(x):
        y = x * 1
        getattr(y[1:] if view else y, op)()  # through a view, the node saves the view's memory
        return y * 2

    check_grads(fn, [np.array([0.5, -1.3, 2.])])


# ---- on the GPU: CuPy arrays have no read-only views and no scalars; the same code runs there --------------------
def test_writes_through_views_of_any_layout_on_cuda_as_on_the_cpu():
    cuda_or_skip()
    got = []
    for device in ("cpu", "cuda"):
        x = engine.arange(6., device=device).reshape(2, 3).requires_grad_()
        y = x.t() * 2  # column-major
        y[:, 0].zero_()
        y.select(1, 1).select(0, 2).mul_(5)  # a 0-d view
        y.expand(1, 3, 2).sin_()  # an expand that repeats nothing
        w = engine.tensor(2., requires_grad=True, device=device)
        z = x * 1
        z.fill_(w)
        (y * y).sum().backward()
        (z * engine.arange(6., device=device).reshape(2, 3)).sum().backward()
        got.append((y.tolist(), x.grad.tolist(), w.grad.tolist()))
    for ours, cpu in zip(got[1], got[0]):
        np.testing.assert_allclose(ours, cpu, rtol=1e-6)


@pytest.mark.parametrize("op, args", [("pow_", (2,)), ("erfinv_", ()), ("sin_", ()), ("mul_", (3.,))])
def test_an_in_place_op_whose_backward_reads_only_its_input_may_be_followed_by_another(op, args):
    def fn(x):
        y = x * 0.5
        getattr(y, op)(*args)
        y.mul_(1.5)
        y[0].add_(1)
        return y * y

    check_grads(fn, [np.array([0.3, -0.6, 0.45])])
