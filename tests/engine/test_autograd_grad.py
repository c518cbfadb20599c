"""engine.autograd.grad against PyTorch and finite differences: values, hooks, untouched .grad, errors."""

import numpy as np
import pytest

import engine
from engine.autograd import grad
from engine.debug import BackwardRecord, Debugger
from tests.engine.oracle import FD_ATOL, FD_EPS, FD_RTOL, GRAD_ATOL, GRAD_RTOL, needs_torch, torch

RNG = np.random.default_rng(0)
X, W, B = RNG.standard_normal((4, 3)), RNG.standard_normal((3, 2)), RNG.standard_normal(2)


def _net(lib, x, w, b):
    """A small graph with a shared intermediate: returns (hidden, loss)."""
    h = (x @ w + b).tanh()
    return h, (h * h).sum() + (h * x[:, :2]).mean()


def _leaves(lib, dtype, requires_grad=True):
    return [lib.tensor(a.astype(dtype), requires_grad=requires_grad) for a in (X, W, B)]


def _numeric(fn, arrays, i):
    """Central differences of the scalar fn(*arrays) with respect to arrays[i] (float64)."""
    arrays = [a.copy() for a in arrays]
    out = np.zeros_like(arrays[i])
    flat = arrays[i].reshape(-1)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + FD_EPS
        hi = fn(*arrays)
        flat[j] = old - FD_EPS
        lo = fn(*arrays)
        flat[j] = old
        out.reshape(-1)[j] = (hi - lo) / (2 * FD_EPS)
    return out


def test_gradients_of_the_leaves_match_finite_differences_and_leave_grad_alone():
    x, w, b = _leaves(engine, np.float64)
    _, loss = _net(engine, x, w, b)
    grads = grad(loss, [x, w, b])

    def value(*arrays):
        return float(_net(engine, *[engine.tensor(a) for a in arrays])[1].item())

    for i, g in enumerate(grads):
        np.testing.assert_allclose(g.numpy(), _numeric(value, [X, W, B], i), rtol=FD_RTOL, atol=FD_ATOL)
    assert all(t.grad is None for t in (x, w, b))
    assert all(not g.requires_grad and g.grad_fn is None for g in grads)


@needs_torch
def test_leaves_intermediates_and_several_outputs_match_torch():
    ours, theirs = _leaves(engine, np.float32), _leaves(torch, np.float32)
    (h, loss), (th, tloss) = _net(engine, *ours), _net(torch, *theirs)
    r = RNG.standard_normal((4, 2)).astype(np.float32)
    cases = [  # (outputs, inputs, grad_outputs) picked from (leaves, hidden, loss) of each library
        (lambda L, h, s: s, lambda L, h, s: L, lambda lib: None),
        (lambda L, h, s: s, lambda L, h, s: h, lambda lib: None),                   # an intermediate
        (lambda L, h, s: [h, s], lambda L, h, s: [L[1], h, L[0]], lambda lib: [lib.tensor(r), None]),
        (lambda L, h, s: [s, s], lambda L, h, s: (L[2], L[2]), lambda lib: None),   # repeats add up
        (lambda L, h, s: h, lambda L, h, s: L[0], lambda lib: lib.tensor(r)),       # single tensors
    ]
    for outputs, inputs, grad_outputs in cases:
        got = grad(outputs(ours, h, loss), inputs(ours, h, loss), grad_outputs(engine), retain_graph=True)
        want = torch.autograd.grad(outputs(theirs, th, tloss), inputs(theirs, th, tloss), grad_outputs(torch),
                                   retain_graph=True)
        assert len(got) == len(want)
        for g, t in zip(got, want):
            np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL)
    assert all(t.grad is None for t in ours)


def test_grad_after_backward_leaves_accumulated_grads_unchanged():
    x, w, b = _leaves(engine, np.float64)
    _, loss = _net(engine, x, w, b)
    loss.backward(retain_graph=True)
    before = [(t.grad, t.grad.numpy().copy()) for t in (x, w, b)]
    g = grad(loss, w)[0]
    for t, (obj, values) in zip((x, w, b), before):
        assert t.grad is obj
        np.testing.assert_array_equal(t.grad.numpy(), values)
    np.testing.assert_allclose(g.numpy(), w.grad.numpy())
    g.array[...] = 0  # the result is its own array, not one that .grad holds
    assert np.any(w.grad.numpy())


def test_the_gradient_of_an_output_with_respect_to_itself_is_a_copy_of_grad_outputs():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    seed = engine.tensor([5.0, 7.0])
    (gy,) = grad(y, y, seed, retain_graph=True)
    (gx,) = grad(x, x, seed)
    for g in (gy, gx):
        np.testing.assert_array_equal(g.numpy(), [5, 7])
        assert g.array is not seed.array
    (gsum,) = grad([x, y], x, [seed, seed])  # a leaf output that the graph also reaches: both add up
    np.testing.assert_array_equal(gsum.numpy(), [20, 28])
    assert x.grad is None


@needs_torch
def test_hooks_run_as_in_torch():
    def run(lib):
        calls = []
        x, w = (lib.tensor(a, requires_grad=True) for a in ([1.0, -2.0, 3.0], [0.5, 4.0, -1.0]))
        x.register_hook(lambda g: calls.append("x") or g * 2)
        z = x * w
        z.retain_grad()
        z.register_hook(lambda g: calls.append("z") or g * 3)
        side = w.exp()
        side.register_hook(lambda g: calls.append("side"))  # on no path to the inputs: never called
        y = (z * z).sum() + side.sum()
        gx = lib.autograd.grad(y, x, retain_graph=True)[0]
        gz = lib.autograd.grad(y, z)[0]
        return calls, gx.numpy(), gz.numpy(), z.grad.numpy(), x.grad, w.grad

    ours, theirs = run(engine), run(torch)
    assert ours[0] == theirs[0] == ["z", "x", "z"]
    for a, b in zip(ours[1:4], theirs[1:4]):  # values through the hooks; retain_grad keeps z's, as torch
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert ours[4:] == (None, None) and theirs[4:] == (None, None)


def test_a_debugger_sees_the_backward_nodes_that_lead_to_the_inputs():
    engine.hub.reset_top_level()  # op keys count from 0, whatever tests before left in the top-level scope
    x, w = engine.randn(3, requires_grad=True), engine.randn(3, requires_grad=True)
    with Debugger("structure") as dbg:
        y = (x * 2).sum() + w.exp().sum()
        (gx,) = grad(y, x)
    ran = sorted(r.event.key for r in dbg.history if isinstance(r, BackwardRecord))
    # the add and x's branch run; w's branch (exp and its sum) does not lead to x, so it does not run
    assert ran == ["add:0", "mul:0", "sum:0"]
    np.testing.assert_allclose(gx.numpy(), [2, 2, 2])
    assert x.grad is None and w.grad is None


def test_unused_inputs():
    x, u = engine.randn(3, requires_grad=True), engine.randn(2, requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match=r"Tensor at index 1 \(shape \(2,\)\) appears to not have been used in "
                                           r"the graph. Set allow_unused=True"):
        grad(y, [x, u], retain_graph=True)
    assert grad(y, [x, u], retain_graph=True, allow_unused=True)[1] is None
    zeros = grad(y, [x, u], retain_graph=True, materialize_grads=True)[1]
    np.testing.assert_array_equal(zeros.numpy(), [0, 0])
    with pytest.raises(ValueError, match="Expected allow_unused to be True or not passed when materialize_grads"):
        grad(y, u, allow_unused=False, materialize_grads=True)


@pytest.mark.parametrize("call,error,message", [
    (lambda x, y: grad(y, engine.ones(3)), RuntimeError,
     r"One of the differentiated Tensors does not require grad: inputs\[0\]"),
    (lambda x, y: grad(engine.ones(3).sum(), x), RuntimeError,
     "element 0 of tensors does not require grad and does not have a grad_fn"),
    (lambda x, y: grad(x * 2, x), RuntimeError,
     r"grad can be implicitly created only for scalar outputs; outputs\[0\] has shape \(3,\)"),
    (lambda x, y: grad(x * 2, x, engine.ones(2)), RuntimeError,
     r"Mismatch in shape: grad_outputs\[0\] has shape \(2,\) but outputs\[0\] has shape \(3,\)"),
    (lambda x, y: grad([y, y], x, [None]), RuntimeError, "got 2 tensors and 1 gradients"),
    (lambda x, y: grad(y, x, [1.0]), TypeError, "gradients can be either Tensors or None, but got float"),
    (lambda x, y: grad(y, []), RuntimeError, "`inputs` argument to `grad..` cannot be empty"),
    (lambda x, y: grad(y, [x, 3.0]), TypeError, r"inputs\[1\] must be a Tensor, got float"),
], ids=["input-no-grad", "output-no-grad", "non-scalar", "shape", "count", "grad-type", "no-inputs", "input-type"])
def test_bad_calls_say_what_was_wrong(call, error, message):
    x = engine.randn(3, requires_grad=True)
    with pytest.raises(error, match=message):
        call(x, (x * x).sum())


def test_a_second_call_needs_retain_graph():
    x = engine.randn(3, requires_grad=True)
    y = (x * x).sum()
    grad(y, x)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        grad(y, x)
