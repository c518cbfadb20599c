"""engine.autograd.Function (custom ops written in Tensor code) against torch.autograd.Function: values, gradients,
ctx features, double backward, @once_differentiable, gradcheck, errors, and what the debugger and a tape see."""

import inspect
import types

import numpy as np
import pytest

import engine
from engine.autograd.gradcheck import GradcheckError
from engine.debug import BackwardRecord, Debugger, OpRecord
from tests.engine.oracle import GRAD_ATOL, GRAD_RTOL, cuda_or_skip, needs_torch, one_line, torch

RNG = np.random.default_rng(0)


def functions(L) -> types.SimpleNamespace:
    """The same custom Functions written on L.autograd.Function, for L = engine or torch."""
    once = L.autograd.function.once_differentiable
    seen = []  # what backwards saw: grad_outputs being None, needs_input_grad

    class GradReverse(L.autograd.Function):
        @staticmethod
        def forward(ctx, x, alpha):
            ctx.alpha = alpha
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return -ctx.alpha * grad, None

    class RoundSTE(L.autograd.Function):  # straight-through estimator: round forward, identity backward
        @staticmethod
        def forward(ctx, x):
            return x.round()

        @staticmethod
        def backward(ctx, grad):
            return grad

    class Exp(L.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    class ExpOnce(Exp):
        backward = staticmethod(once(Exp.backward))

    class Cube(L.autograd.Function):  # saves its input: the double backward flows through it
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x * x * x * w

        @staticmethod
        def backward(ctx, grad):
            x, w = ctx.saved_tensors
            return 3 * x * x * w * grad, (x * x * x * grad).sum(0)

    class TwoOut(L.autograd.Function):
        @staticmethod
        def forward(ctx, x, materialize):
            ctx.set_materialize_grads(materialize)
            ctx.save_for_backward(x)
            return x * 2, x.sin()

        @staticmethod
        def backward(ctx, g_double, g_sin):
            seen.append((g_double is None, g_sin is None))
            (x,) = ctx.saved_tensors
            grad = L.zeros_like(x)
            if g_double is not None:
                grad = grad + 2 * g_double
            if g_sin is not None:
                grad = grad + x.cos() * g_sin
            return grad, None

    class MaxArg(L.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            i = x.argmax(dim=-1)
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(x, i)
            return x.amax(dim=-1), i

        @staticmethod
        def backward(ctx, g_value, g_index):
            seen.append(g_index.dtype)
            x, i = ctx.saved_tensors
            return L.zeros_like(x).scatter(-1, i.unsqueeze(-1), g_value.unsqueeze(-1))

    class MulInPlace(L.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            x.mul_(k)
            ctx.mark_dirty(x)
            ctx.k = k
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.k, None

    class Scale(L.autograd.Function):  # the newer style: forward without ctx, and setup_context
        @staticmethod
        def forward(x, w, k=2.0):
            return x * w * k

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, w, k = inputs
            ctx.save_for_backward(x, w)
            ctx.k = k

        @staticmethod
        def backward(ctx, grad):
            x, w = ctx.saved_tensors
            return grad * w * ctx.k, grad * x * ctx.k, None

    class Mix(L.autograd.Function):  # non-tensor arguments between tensors, and needs_input_grad
        @staticmethod
        def forward(ctx, x, power, y, label):
            ctx.power = power
            ctx.save_for_backward(x, y)
            seen.append(("forward", tuple(ctx.needs_input_grad), label))
            return x ** power * y

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            seen.append(("backward", tuple(ctx.needs_input_grad)))
            gx = grad * ctx.power * x ** (ctx.power - 1) * y if ctx.needs_input_grad[0] else None
            gy = grad * x ** ctx.power if ctx.needs_input_grad[2] else None
            return gx, None, gy, None

    return types.SimpleNamespace(**{k: v for k, v in locals().items() if isinstance(v, type)}, seen=seen)


ENGINE = functions(engine)
TORCH = functions(torch) if torch is not None else None


def _both(*shapes, dtype=np.float32):
    arrays = [RNG.standard_normal(s).astype(dtype) for s in shapes]
    return ([engine.tensor(a, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


def _close(ours, theirs, rtol=GRAD_RTOL, atol=GRAD_ATOL):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


def _check(run, *shapes, dtype=np.float32) -> tuple:
    """run(F, L, *leaves) -> a tensor: same value, same node name and same leaf gradients in engine and torch."""
    ours, theirs = _both(*shapes, dtype=dtype)
    out, ref = run(ENGINE, engine, *ours), run(TORCH, torch, *theirs)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-3, atol=1e-6)
    assert out.grad_fn.name() == ref.grad_fn.name()
    r = RNG.standard_normal(tuple(out.shape)).astype(dtype)
    (out * engine.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    for a, b in zip(ours, theirs):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            _close(a.grad, b.grad)
    return ours, theirs


# ---- the usual custom Functions ---------------------------------------------------------------------------------
@needs_torch
def test_gradient_reversal():
    (x,), _ = _check(lambda F, L, x: F.GradReverse.apply(x * 1.5, 0.3), (4, 3))
    y = ENGINE.GradReverse.apply(x, 1.0)
    assert type(y.grad_fn).__name__ == "GradReverseBackward" and y._base is None
    assert len(y.grad_fn.next_functions) == 1  # the non-tensor alpha has no edge, as in torch


@needs_torch
def test_straight_through_round():
    _check(lambda F, L, x: F.RoundSTE.apply(x * 3.0) * x, (5,))


@needs_torch
def test_custom_exp_saving_its_output():
    _check(lambda F, L, x: F.Exp.apply(x).tanh(), (2, 3))


@needs_torch
def test_setup_context_style_binds_defaults_like_torch():
    _check(lambda F, L, x, w: F.Scale.apply(x, w), (3,), (3,))
    _check(lambda F, L, x, w: F.Scale.apply(x, w=w, k=-0.5), (2, 3), (3,))


@needs_torch
def test_non_tensor_arguments_and_needs_input_grad():
    for F, L in ((ENGINE, engine), (TORCH, torch)):
        F.seen.clear()
        x = L.tensor([0.5, 1.5, 2.0], requires_grad=True)
        y = L.tensor([1.0, -2.0, 3.0])
        out = F.Mix.apply(x, 3, y, "tag")
        out.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), 3 * np.array([0.25, 2.25, 4.0]) * [1, -2, 3], rtol=1e-6)
    assert ENGINE.seen == TORCH.seen == [("forward", (True, False, False, False), "tag"),
                                         ("backward", (True, False, False, False))]


@needs_torch
@pytest.mark.parametrize("materialize", [True, False])
def test_unused_output_gets_zeros_or_none(materialize):
    for F in (ENGINE, TORCH):
        F.seen.clear()
    _check(lambda F, L, x: F.TwoOut.apply(x, materialize)[0], (4,))  # only the first output is used
    _check(lambda F, L, x: F.TwoOut.apply(x, materialize)[1], (4,))
    _check(lambda F, L, x: sum(F.TwoOut.apply(x, materialize)) * 1.0, (4,))
    assert ENGINE.seen == TORCH.seen == [(False, not materialize), (not materialize, False), (False, False)]


@needs_torch
def test_mark_non_differentiable_output():
    for F in (ENGINE, TORCH):
        F.seen.clear()
    _check(lambda F, L, x: F.MaxArg.apply(x)[0], (3, 5))
    (x,), (xt,) = _both((3, 5))
    value, index = ENGINE.MaxArg.apply(x)
    ref_index = TORCH.MaxArg.apply(xt)[1]
    assert not index.requires_grad and index.grad_fn is None and index.dtype.name == "int64"
    assert index.tolist() == ref_index.tolist() and value.requires_grad
    assert [d.name for d in ENGINE.seen] == [str(d).removeprefix("torch.") for d in TORCH.seen] == ["int64"]


@needs_torch
def test_mark_dirty_in_place_forward():
    ours, theirs = _check(lambda F, L, x: F.MulInPlace.apply(x * 1.0, 3.0) ** 2, (4,))
    h = ours[0] * 1.0
    out = ENGINE.MulInPlace.apply(h, 3.0)
    assert out is h and h.grad_fn.name() == "MulInPlaceBackward"
    one_line(lambda: ENGINE.MulInPlace.apply(ours[0], 2.0), RuntimeError, "leaf Variable that requires grad")
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        TORCH.MulInPlace.apply(theirs[0], 2.0)


@needs_torch
def test_saved_tensor_changed_in_place_raises():
    for F, L in ((ENGINE, engine), (TORCH, torch)):
        x = L.tensor([0.1, 0.2], requires_grad=True)
        h = x * 1.0
        y = F.Exp.apply(h)
        with L.no_grad():
            y.add_(1.0)  # Exp saved its output
        with pytest.raises(RuntimeError, match="modified by an inplace operation") as err:
            y.sum().backward()
        assert "is at version 1; expected version 0" in str(err.value)
        y = F.Cube.apply(h, L.ones(1))
        with L.no_grad():
            h.mul_(2.0)  # Cube saved its input
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
    one_line(lambda: y.sum().backward(), RuntimeError, "modified by an inplace operation")


@needs_torch
def test_second_backward_after_freeing_raises():
    for F, L in ((ENGINE, engine), (TORCH, torch)):
        y = F.Exp.apply(L.tensor([0.1, 0.2], requires_grad=True))
        y.sum().backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            y.sum().backward()


@needs_torch
def test_outputs_may_include_non_tensors_and_inputs_returned_unchanged():
    for L in (engine, torch):
        class Passthrough(L.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x, 5

            @staticmethod
            def backward(ctx, grad, none):
                assert none is None
                return grad * 2

        x = L.tensor([1.0, 2.0], requires_grad=True)
        out, five = Passthrough.apply(x)
        assert five == 5 and out is not x and out.grad_fn.name() == "PassthroughBackward"
        out.sum().backward()
        assert x.grad.tolist() == [2.0, 2.0]


# ---- double backward and @once_differentiable -------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("name", ["Cube", "Exp", "TwoOut"])
def test_double_backward_matches_torch(name):
    shapes = {"Cube": [(3, 2), (2,)], "Exp": [(3, 2)], "TwoOut": [(3, 2)]}[name]
    arrays = [RNG.standard_normal(s) for s in shapes]
    vs = [RNG.standard_normal(s) for s in shapes]
    results = []
    for F, L in ((ENGINE, engine), (TORCH, torch)):
        xs = [L.tensor(a, requires_grad=True) for a in arrays]
        out = getattr(F, name).apply(*xs, True) if name == "TwoOut" else getattr(F, name).apply(*xs)
        loss = (out[0] * out[1]).sum() if name == "TwoOut" else (out * out).sum()
        grads = L.autograd.grad(loss, xs, create_graph=True)
        assert all(g.requires_grad for g in grads)
        hv = L.autograd.grad(sum((g * L.tensor(v)).sum() for g, v in zip(grads, vs)), xs)
        results.append([t.detach().numpy() for t in (*grads, *hv)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@needs_torch
def test_once_differentiable_refuses_a_second_differentiation():
    for F, L in ((ENGINE, engine), (TORCH, torch)):
        x = L.tensor([0.3, -0.4], dtype=L.float64, requires_grad=True)
        (gx,) = L.autograd.grad(F.ExpOnce.apply(x).sum(), x, create_graph=True)
        np.testing.assert_allclose(gx.detach().numpy(), np.exp([0.3, -0.4]))
        assert not gx.requires_grad  # the weights of sum() need no gradient: nothing was recorded
        v = L.ones(2, dtype=L.float64, requires_grad=True)
        (gx,) = L.autograd.grad(F.ExpOnce.apply(x), x, v, create_graph=True)
        assert gx.requires_grad
        with pytest.raises(RuntimeError, match="trying to differentiate twice a function that was marked with "
                                               "@once_differentiable"):
            gx.sum().backward()
    one_line(lambda: gx.sum().backward(), RuntimeError, "differentiate twice")


# ---- errors, as torch raises them --------------------------------------------------------------------------------
def _bad_backward(L, returns):
    class Bad(L.autograd.Function):
        @staticmethod
        def forward(ctx, x, y, k):
            return x * y * k

        @staticmethod
        def backward(ctx, grad):
            return returns(L, grad)

    x, y = L.ones(3, requires_grad=True), L.ones(3, requires_grad=True)
    return lambda: Bad.apply(x, y, 2.0).sum().backward()


@needs_torch
@pytest.mark.parametrize("returns, error, message", [
    (lambda L, g: g, RuntimeError, r"function BadBackward returned an incorrect number of gradients \(expected 3, "
                                   r"got 1\)"),
    (lambda L, g: (g, g, None, g), RuntimeError, r"returned an incorrect number of gradients \(expected 3, got 4\)"),
    (lambda L, g: (g, g, g), RuntimeError, "returned a gradient different than None at position 3, but the "
                                           "corresponding forward input was not a Variable"),
    (lambda L, g: (g[:2], g, None), RuntimeError, r"Function BadBackward returned an invalid gradient at index 0 - "
                                                  r"got \[2\] but expected shape compatible with \[3\]"),
])
def test_backward_results_are_checked_as_torch_checks_them(returns, error, message):
    one_line(_bad_backward(engine, returns), error, message)
    with pytest.raises(error, match=message):
        _bad_backward(torch, returns)()


@needs_torch
def test_accepted_backward_results_as_in_torch():
    for L in (engine, torch):
        _bad_backward(L, lambda L, g: (g, g, None, None))()  # extra Nones
        _bad_backward(L, lambda L, g: (g.expand(2, 3), g, None))()  # a broadcast gradient sums back


def test_unimplemented_and_misused():
    class NoForward(engine.autograd.Function):
        pass

    class NoBackward(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    class SavesNumber(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x

    x = engine.ones(2, requires_grad=True)
    one_line(lambda: NoForward.apply(x), NotImplementedError, "You must implement the forward function")
    one_line(lambda: NoBackward.apply(x).sum().backward(), NotImplementedError, "implement either the backward or vjp")
    one_line(lambda: SavesNumber.apply(x), TypeError, "save_for_backward can only save variables, but argument 1 is "
                                                      "of type int")
    one_line(lambda: NoBackward()(x), RuntimeError, "Legacy autograd function with non-static forward")
    one_line(lambda: ENGINE.Scale.apply(x, x, 1.0, 2.0), TypeError, "too many positional arguments")
    with engine.no_grad():  # nothing recorded: no node, and forward still sees no grad needed
        assert ENGINE.Exp.apply(x).grad_fn is None


@needs_torch
def test_names_torch_ports_import():
    from engine.autograd.function import FunctionCtx, once_differentiable

    assert once_differentiable is engine.autograd.custom.once_differentiable
    assert isinstance(ENGINE.Exp.apply(engine.ones(1, requires_grad=True)).grad_fn, FunctionCtx)
    assert inspect.isfunction(engine.autograd.gradcheck) and inspect.isfunction(engine.autograd.gradgradcheck)
    assert issubclass(GradcheckError, RuntimeError)


# ---- what the debugger and a tape see -------------------------------------------------------------------------
def test_the_debugger_sees_one_op_named_after_the_class(tmp_path):
    x = engine.ones(3, requires_grad=True)
    path = tmp_path / "run.tape"
    with Debugger("summary", interactive=False) as dbg, engine.record(path, debugger=dbg):
        y = ENGINE.GradReverse.apply(x * 2.0, 0.5)  # the reversal
        a, b = ENGINE.TwoOut.apply(y, True)
        (a + b).sum().backward()
    ops = [r for r in dbg.history if isinstance(r, OpRecord)]
    assert [r.event.op for r in ops] == ["mul", "GradReverse", "TwoOut", "add", "sum"]
    assert ops[1].source.text == "y = ENGINE.GradReverse.apply(x * 2.0, 0.5)  # the reversal"
    assert ops[1].event.inputs == (ops[0].event.output,) and ops[2].event.inputs == (ops[1].event.output,)
    backward = [r.event.op for r in dbg.history if isinstance(r, BackwardRecord)]
    assert backward.count("GradReverse") == 1 and "view_as" not in backward and "sin" not in backward
    assert all(r.forward is not None for r in dbg.history if isinstance(r, BackwardRecord))
    with engine.tape.open(path) as tape:
        taped = [e.op for e in tape.events() if type(e).__name__ == "OpEvent"]
    assert taped == ["mul", "GradReverse", "TwoOut", "add", "sum"]
    np.testing.assert_allclose(x.grad.numpy(), -0.5 * 2 * (2 + np.cos(2.0)) * np.ones(3), rtol=1e-6)


# ---- GPU -----------------------------------------------------------------------------------------------------------
def test_custom_functions_on_cuda():
    cuda_or_skip()
    a = RNG.standard_normal((2, 3))
    x = engine.tensor(a, device="cuda", requires_grad=True)
    first, second = ENGINE.TwoOut.apply(ENGINE.GradReverse.apply(x, 2.0), False)
    (ENGINE.Exp.apply(first) * second).sum().backward()
    assert x.grad.is_cuda
    grad = -2.0 * (2 * np.exp(2 * a) * np.sin(a) + np.exp(2 * a) * np.cos(a))
    np.testing.assert_allclose(x.grad.cpu().numpy(), grad, rtol=1e-6)
    x = engine.tensor(a, device="cuda", requires_grad=True)
    (g,) = engine.autograd.grad(ENGINE.Cube.apply(x, engine.ones(3, device="cuda")).sum(), x, create_graph=True)
    (h,) = engine.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.cpu().numpy(), 6 * a, rtol=1e-6)
    assert engine.autograd.gradcheck(ENGINE.Exp.apply, x)
