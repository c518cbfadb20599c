"""einsum with an index repeated within one operand ("bii->b", "ii->i", "ii") against PyTorch and finite
differences, first and second order; and the products that share matmul's shape check naming themselves."""

import numpy as np
import pytest

import engine
from tests.engine.oracle import check_grads, cuda_or_skip, needs_torch, one_line, torch
from tests.engine.second_order import second_order_tests


@pytest.mark.parametrize("equation, shapes", [
    ("bii->b", [(2, 3, 3)]),                  # a batched trace
    ("ii->i", [(3, 3)]),                      # the diagonal
    ("ii", [(4, 4)]),                         # the trace (implicit output)
    ("iij->ij", [(2, 2, 3)]),
    ("bii,bj->bj", [(2, 3, 3), (2, 4)]),
    ("iji->j", [(3, 2, 3)]),                  # the repeated dims are not next to each other
    ("iii->i", [(3, 3, 3)]),                  # three times
    ("ij,jj->i", [(2, 3), (3, 3)]),           # repeated in the second operand
    ("bii,bjj->bij", [(2, 3, 3), (2, 4, 4)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("bii", [(2, 3, 3)]),                     # implicit output: b alone
    ("ii,i->i", [(3, 3), (1,)]),              # another operand's size 1 still broadcasts against i
], ids=lambda v: v if isinstance(v, str) else "")
def test_einsum_repeated_index_matches_torch(equation, shapes):
    torch_fn = None if torch is None else (lambda *xs: torch.einsum(equation, *xs))
    check_grads(lambda *xs: engine.einsum(equation, *xs), shapes, torch_fn=torch_fn)


def test_einsum_trace_and_diagonal_values():
    x = engine.arange(18.0).reshape(2, 3, 3)
    np.testing.assert_allclose(engine.einsum("bii->b", x).numpy(), [0 + 4 + 8, 9 + 13 + 17])
    np.testing.assert_allclose(engine.einsum("ii->i", x[1]).numpy(), [9, 13, 17])
    np.testing.assert_allclose(engine.einsum("ii", x[0]).item(), 12)


def test_einsum_repeated_index_sizes_must_agree():
    one_line(lambda: engine.einsum("ii", engine.ones(2, 3)), engine.ShapeError,
             r"einsum: subscript 'i' is repeated in operand 0 \('ii'\) but its sizes differ: 2 != 3 \(shape \(2, 3\)\)")
    # within one operand a size 1 does not broadcast (torch refuses it too), and torch raises a RuntimeError
    one_line(lambda: engine.einsum("bii->b", engine.ones(2, 1, 3)), RuntimeError,
             r"einsum: subscript 'i' is repeated in operand 0 \('bii'\) but its sizes differ: 1 != 3")
    one_line(lambda: engine.einsum("ij,kk->i", engine.ones(2, 3), engine.ones(3, 4)), engine.ShapeError,
             r"subscript 'k' is repeated in operand 1 \('kk'\)")
    one_line(lambda: engine.einsum("ii,i->i", engine.ones(3, 3), engine.ones(4)), engine.ShapeError,
             r"subscript 'i' has size 4 in operand 1 \(shape \(4,\)\) but size 3 in operand 0")
    one_line(lambda: engine.einsum("ii->ii", engine.ones(3, 3)), ValueError,
             r"einsum: output subscript 'i' appears more than once in 'ii'.*diag_embed")


@needs_torch
@pytest.mark.parametrize("equation, shape", [("ii", (3, 2)), ("bii->b", (2, 1, 3)), ("ii->ii", (3, 3))])
def test_einsum_refuses_what_torch_refuses(equation, shape):
    with pytest.raises(RuntimeError):
        torch.einsum(equation, torch.ones(shape))
    with pytest.raises((RuntimeError, ValueError), match=r"^einsum: .*subscript 'i' (is repeated|appears more)"):
        engine.einsum(equation, engine.ones(shape))


def test_einsum_diagonal_gradient_lands_on_the_diagonal_only():
    x = engine.randn(2, 3, 3, requires_grad=True)
    engine.einsum("bii->b", x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.broadcast_to(np.eye(3), (2, 3, 3)))


CASES = {
    "batched_trace_times_vector": (lambda L, F, a, b: L.einsum("bii,bj->bj", a, b) ** 2, [(2, 3, 3), (2, 4)]),
    "diagonal_tanh": (lambda L, F, a: L.tanh(L.einsum("iij->ij", a)) * L.einsum("ii", a[..., 0]), [(3, 3, 2)]),
    "trace_of_product": (lambda L, F, a, b: L.einsum("ij,jj->i", a, b).exp(), [(2, 3), (3, 3)]),
}
test_second_order_matches_torch, test_second_order_matches_finite_differences = second_order_tests(CASES)


def test_einsum_repeated_index_on_cuda_matches_cpu():
    cuda_or_skip()
    a = np.random.default_rng(0).standard_normal((2, 3, 3))
    b = np.random.default_rng(1).standard_normal((2, 4))
    grads = []
    for device in ("cpu", "cuda"):
        x = engine.tensor(a, device=device, requires_grad=True)
        y = engine.tensor(b, device=device, requires_grad=True)
        out = engine.einsum("bii,bj->bj", x, y)
        (out * out).sum().backward()
        grads.append((out.detach().cpu().numpy(), x.grad.cpu().numpy(), y.grad.cpu().numpy()))
    for cpu, gpu in zip(*grads):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-10, atol=1e-12)


# ---- the products that run as matmul name themselves in a shape error ----------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: engine.bmm(engine.ones(2, 3, 4), engine.ones(2, 3, 4)),
     r"^bmm: input and mat2 shapes cannot be multiplied \(2x3x4 and 2x3x4\): input's last dim has size 4 but "
     r"mat2's dim 1 has size 3$"),
    (lambda: engine.ones(2, 3, 4).bmm(engine.ones(2, 5, 4)), r"^bmm: .*\(2x3x4 and 2x5x4\)"),
    (lambda: engine.mm(engine.ones(3, 4), engine.ones(3, 4)),
     r"^mm: input and mat2 shapes cannot be multiplied \(3x4 and 3x4\): .* mat2's dim 0 has size 3$"),
    (lambda: engine.ones(3, 4).mm(engine.ones(5, 2)), r"^mm: input and mat2 .*\(3x4 and 5x2\)"),
    (lambda: engine.mv(engine.ones(3, 4), engine.ones(3)),
     r"^mv: input and vec shapes cannot be multiplied \(3x4 and 3\): input's last dim has size 4 but vec's dim 0"),
    (lambda: engine.ones(3, 4).mv(engine.ones(5)), r"^mv: input and vec .*\(3x4 and 5\)"),
    (lambda: engine.matmul(engine.ones(2, 3, 4), engine.ones(5, 2)),
     r"^matmul: input and other shapes cannot be multiplied \(2x3x4 and 5x2\): .* other's dim 0 has size 5$"),
    (lambda: engine.ones(3) @ engine.ones(4), r"^matmul: input and other .*\(3 and 4\)"),
    (lambda: engine.matmul(engine.ones(()), engine.ones(3)),
     r"^matmul: both arguments need at least 1 dimension, but they are 0-D and 1-D$"),
], ids=["bmm", "Tensor.bmm", "mm", "Tensor.mm", "mv", "Tensor.mv", "matmul", "@", "matmul-0d"])
def test_products_name_themselves_in_shape_errors(call, message):
    one_line(call, engine.ShapeError, message)


@needs_torch
@pytest.mark.parametrize("op, shapes", [("bmm", [(2, 3, 4), (2, 3, 4)]), ("mm", [(3, 4), (3, 4)]),
                                        ("mv", [(3, 4), (3,)]), ("matmul", [(2, 3, 4), (5, 2)])])
def test_products_refuse_the_shapes_torch_refuses_with_a_runtime_error(op, shapes):
    with pytest.raises(RuntimeError):
        getattr(torch, op)(*[torch.ones(s) for s in shapes])
    with pytest.raises(RuntimeError, match=f"^{op}: input and "):
        getattr(engine, op)(*[engine.ones(s) for s in shapes])


def test_matmul_batch_dims_that_do_not_broadcast_are_named():
    # numpy's "operands could not be broadcast together with remapped shapes [original->remapped]" before
    with pytest.raises(engine.ShapeError, match=r"matmul: the batch dims of input \(2, 3, 4\) and other "
                                                r"\(3, 4, 5\) do not broadcast: size 2 against 3 at batch dim -1"):
        engine.randn(2, 3, 4) @ engine.randn(3, 4, 5)
    assert (engine.randn(2, 1, 3, 4) @ engine.randn(5, 4, 6)).shape == (2, 5, 3, 6)


@pytest.mark.parametrize("sublists, shapes", [
    (([0, 1, 2], [0, 3, 2], [0, 1, 3]), [(2, 3, 4), (2, 5, 4)]),  # a batched product, explicit output
    (([0, 1, 2], [0, 3, 2]), [(2, 3, 4), (2, 5, 4)]),              # implicit: 1 and 3, as the ints sort
    (([Ellipsis, 1, 2], [Ellipsis, 3, 2], [Ellipsis, 1, 3]), [(2, 3, 4), (2, 5, 4)]),
    (([30, 2], [2, 5]), [(3, 4), (4, 2)]),                         # 30 is past 'Z': its order is the ints'
    (([1, 1], [1]), [(3, 3), (3,)]),                                # a repeated index: the diagonal
], ids=["explicit", "implicit", "ellipsis", "lowercase", "diagonal"])
def test_einsum_sublist_form_matches_torch(sublists, shapes):
    def call(einsum):
        def fn(*xs):
            args = [v for x, sub in zip(xs, sublists) for v in (x, sub)]
            return einsum(*args, *sublists[len(xs):])
        return fn

    check_grads(call(engine.einsum), shapes, torch_fn=None if torch is None else call(torch.einsum))


def test_einsum_sublist_errors_name_the_subscript():
    one_line(lambda: engine.einsum(engine.ones(2, 2), [0, 60]), ValueError,
             r"einsum: subscript 60 in sublist 0 is not an int in \[0, 52\) or Ellipsis")
    one_line(lambda: engine.einsum(engine.ones(2, 2), "ij"), TypeError,
             r"einsum: argument 0 must be a tensor and argument 1 its sublist of subscripts, got Tensor and str")
