"""A custom autograd Function whose hand-written backward disagrees with its own forward is named (custom_backward):
a sign flipped, a factor 2 missing, the gradient of the wrong input, a transposed matmul, each with its class, the
line of its backward and the line that applied it. Their correct versions, checked against torch's own autograd on
the same math, never are; nor are surrogate gradients by design (a gradient reversal, a straight-through estimator).
What cannot be checked is skipped, and the check leaves no trace in the run: no events, no records, the same losses."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import AlertSettings, Debugger, OpRecord
from engine.events import hub
from tests.engine.debug.helpers import trainer
from tests.engine.oracle import GRAD_ATOL, GRAD_RTOL, torch
from tests.engine.test_custom_function import ENGINE as ELSEWHERE  # custom Functions tested there

Function = engine.autograd.Function
once_differentiable = engine.autograd.function.once_differentiable
SOURCE = Path(__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    """The number of the line of this file that ends with `marker`."""
    return next(n for n, text in enumerate(SOURCE, 1) if text.endswith(marker))


def leaf(*shape, seed: int = 0, zeros: float = 0.0):
    """A float32 leaf that requires grad (with a share `zeros` of exact zeros)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(np.float32)
    a[rng.random(shape) < zeros] = 0.0
    return engine.tensor(a, requires_grad=True)


def weights(shape, seed: int = 1):
    """Fixed random weights of an output in the loss: the gradient a Function's backward gets is no constant."""
    return engine.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def checked(step, steps: int = 1, **settings):
    """(custom_backward alerts, verdicts by class) of `steps` calls of step() with a summary Debugger attached."""
    alerts = AlertSettings(**settings) if settings else None
    with Debugger("summary", alerts=alerts, interactive=False) as dbg:
        for _ in range(steps):
            step()
    return [a for a in dbg.alerts if a.kind == "custom_backward"], dbg.monitor.custom_backwards.verdicts


# ---- the Functions: correct, and wrong as people get them wrong --------------------------------------------------
class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class SquareSignFlipped(Square):
    @staticmethod
    def backward(ctx, grad):  # backward: sign flipped
        (x,) = ctx.saved_tensors
        return -2 * x * grad


class SquareHalved(Square):
    @staticmethod
    def backward(ctx, grad):  # backward: factor 2 missing
        (x,) = ctx.saved_tensors
        return x * grad


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad * a


class MulSwapped(Mul):
    @staticmethod
    def backward(ctx, grad):  # backward: each input gets the other's gradient
        a, b = ctx.saved_tensors
        return grad * a, grad * b


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad @ b.t(), a.t() @ grad


class MatMulTransposed(MatMul):
    @staticmethod
    def backward(ctx, grad):  # backward: b not transposed
        a, b = ctx.saved_tensors
        return grad @ b, a.t() @ grad


class ExpOnceFlipped(ELSEWHERE.Exp):  # its forward saves exp(x)
    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # backward: once differentiable, sign flipped
        (y,) = ctx.saved_tensors
        return -grad * y


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0).float()


class TanhFloat32(Function):
    """A forward that runs in float32 only (a kernel written for it)."""

    @staticmethod
    def forward(ctx, x):
        if x.dtype != engine.float32:
            raise TypeError(f"TanhFloat32 takes float32, got {x.dtype}")
        y = x.tanh()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class Power(Function):
    """A non-tensor argument between the tensors."""

    @staticmethod
    def forward(ctx, x, p, scale):
        ctx.p = p
        ctx.save_for_backward(x, scale)
        return x ** p * scale

    @staticmethod
    def backward(ctx, grad):
        x, scale = ctx.saved_tensors
        return grad * ctx.p * x ** (ctx.p - 1) * scale, None, grad * x ** ctx.p


class SinCos(Function):
    """Two differentiable outputs."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin(), x.cos()

    @staticmethod
    def backward(ctx, g_sin, g_cos):
        (x,) = ctx.saved_tensors
        return g_sin * x.cos() - g_cos * x.sin()


class MaskedRows(Function):
    """Inputs without a gradient: a float mask that requires none, and integer row indices."""

    @staticmethod
    def forward(ctx, x, mask, rows):
        ctx.save_for_backward(mask, rows)
        return x[rows] * mask

    @staticmethod
    def backward(ctx, grad):
        mask, rows = ctx.saved_tensors
        gx = engine.zeros(4, 3).index_add(0, rows, grad * mask)
        return gx, None, None


class Affine(Function):
    """The newer style (setup_context, a default), and a gradient returned broadcast, summed by the engine."""

    @staticmethod
    def forward(x, w, shift=0.5):
        return x * w + shift

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, _ = inputs
        ctx.save_for_backward(x, w)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        return grad * w, grad * x, None


# ---- wrong backwards are named ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("fn", "marker", "reads"), [
    (SquareSignFlipped, "# backward: sign flipped",
     "gives -1.00x the finite-difference slope of the forward along a random direction (off by 200%, the opposite "
     "sign): a sign flipped?"),
    (SquareHalved, "# backward: factor 2 missing",
     "gives 0.50x the finite-difference slope of the forward along a random direction (off by 50%): a factor 2 "
     "missing?"),
])
def test_a_sign_flipped_or_a_missing_factor_is_named_with_the_class_and_both_lines(fn, marker, reads):
    x = leaf(4, 5)

    def step():
        y = fn.apply(x)  # the apply
        (y * weights(y.shape)).sum().backward()

    (alert,), verdicts = checked(step, steps=3)  # once: the class is checked at its first backward
    assert alert.op == fn.__name__ and alert.code == "y = fn.apply(x)  # the apply"
    assert alert.file == __file__ and alert.line == line_of("# the apply") and alert.iteration == 0
    assert f"custom Function {fn.__name__} (backward at {__file__}:{line_of(marker)})" in alert.message
    assert f"for its 1st input 'x', the backward {reads}" in alert.message
    assert f"check it with engine.autograd.gradcheck({fn.__name__}.apply, inputs)" in alert.message
    assert alert.value == pytest.approx(-1.0 if fn is SquareSignFlipped else 0.5, rel=1e-6)
    assert verdicts[fn].outcome == "wrong"


@pytest.mark.parametrize(("fn", "marker"), [(MulSwapped, "# backward: each input gets the other's gradient"),
                                            (MatMulTransposed, "# backward: b not transposed")])
def test_the_gradient_of_the_wrong_input_or_a_transposed_matmul_is_named(fn, marker):
    a, b = leaf(4, 4, seed=2), leaf(4, 4, seed=3)

    def step():
        y = fn.apply(a, b)  # two inputs
        (y * weights(y.shape)).sum().backward()

    (alert,), _ = checked(step)
    assert alert.op == fn.__name__ and alert.line == line_of("# two inputs")
    assert f"(backward at {__file__}:{line_of(marker)})" in alert.message
    assert "for its 1st input 'a', the backward gives" in alert.message  # b's gradient is right in the matmul
    assert abs(alert.value - 1) > 0.25
    assert "a transposed matrix, or the gradient of another input?" in alert.message


def test_a_once_differentiable_backward_is_checked_too():
    """The check compares what backward gave once; it never differentiates the backward."""
    x = leaf(6)
    (alert,), _ = checked(lambda: ExpOnceFlipped.apply(x).sum().backward())
    assert f"(backward at {__file__}:{line_of('# backward: once differentiable, sign flipped')})" in alert.message
    assert alert.value == pytest.approx(-1.0, rel=1e-6)


# ---- correct Functions never are --------------------------------------------------------------------------------
def _sincos(L, x):
    s, c = SinCos.apply(x) if L is engine else (x.sin(), x.cos())
    return s * 2 + c * 3


CORRECT = {  # name: (Function, the same math in torch, inputs, the verdict its check comes to)
    "square": (Square, lambda x: x * x, lambda: [leaf(4, 5)], "agrees"),
    "mul": (Mul, lambda a, b: a * b, lambda: [leaf(3, 4, seed=2), leaf(3, 4, seed=3)], "agrees"),
    "matmul": (MatMul, lambda a, b: a @ b, lambda: [leaf(4, 4, seed=2), leaf(4, 4, seed=3)], "agrees"),
    "relu": (ReLU, lambda x: torch.relu(x), lambda: [leaf(6, 5)], "agrees"),
    # half of x at the relu's kink: no verdict there, and no alert after its few tries
    "relu at its kink": (ReLU, lambda x: torch.relu(x), lambda: [leaf(6, 5, zeros=0.5)], "inconclusive"),
    "float32 only": (TanhFloat32, lambda x: x.tanh(), lambda: [leaf(4, 5)], "agrees"),
    "non-tensor argument": (Power, lambda x, p, s: x ** p * s, lambda: [leaf(4, 5), 3, leaf(4, 5, seed=4)], "agrees"),
    "two outputs": (SinCos, None, lambda: [leaf(4, 5)], "agrees"),
    "inputs without a gradient": (
        MaskedRows, lambda x, mask, rows: x[rows] * mask,
        lambda: [leaf(4, 3), engine.tensor(np.random.default_rng(5).random((6, 3)) > 0.3).float(),
                 engine.tensor([0, 2, 2, 3, 1, 0])], "agrees"),
    "setup_context, broadcast gradient": (Affine, lambda x, w, shift=0.5: x * w + shift,
                                          lambda: [leaf(4, 5), leaf(5, seed=6)], "agrees"),
}


@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_functions_get_no_alert_and_match_torch_autograd(name):
    fn, math, make, verdict = CORRECT[name]
    args = make()

    def run(L, *args):
        out = _sincos(L, *args) if fn is SinCos else fn.apply(*args) if L is engine else math(*args)
        r = np.random.default_rng(7).standard_normal(tuple(out.shape)).astype(np.float32)
        (out * L.tensor(r)).sum().backward()

    alerts, verdicts = checked(lambda: run(engine, *args), steps=4)
    assert alerts == [] and verdicts[fn].outcome == verdict, verdicts[fn]
    if torch is None:
        return
    for a in args:
        if isinstance(a, engine.Tensor) and a.grad is not None:
            a.grad = None
    run(engine, *args)
    theirs = [torch.tensor(a.detach().numpy(), requires_grad=a.requires_grad) if isinstance(a, engine.Tensor) else a
              for a in args]
    run(torch, *theirs)
    for ours, ref in zip(args, theirs):
        if isinstance(ours, engine.Tensor) and ours.requires_grad:
            np.testing.assert_allclose(ours.grad.numpy(), ref.grad.numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_surrogate_gradients_by_design_are_left_alone():
    """A gradient reversal's backward gives -alpha x the slope of its forward, a straight-through estimator's a slope
    where its forward has none: both on purpose."""
    x = leaf(4, 5)
    reverse, round_ste = ELSEWHERE.GradReverse, ELSEWHERE.RoundSTE

    def step():
        y = round_ste.apply(reverse.apply(x, 0.5) * 3)
        (y * weights(y.shape)).sum().backward()

    alerts, verdicts = checked(step, steps=2)
    assert alerts == []
    assert verdicts[reverse].outcome == verdicts[round_ste].outcome == "skipped"
    assert "passes an input through unchanged" in verdicts[reverse].why
    assert "flat" in verdicts[round_ste].why and "straight-through" in verdicts[round_ste].why


# ---- what cannot be checked is skipped -------------------------------------------------------------------------
class Noisy(Function):
    @staticmethod
    def forward(ctx, x):
        return x + 0.1 * engine.randn_like(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad  # wrong, but a forward that differs at each run has no finite differences to compare with


class ScaleInPlace(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.mark_dirty(x)
        return x.mul_(3.0)

    @staticmethod
    def backward(ctx, grad):
        return -3.0 * grad


def test_a_forward_that_is_not_deterministic_or_changes_its_input_is_skipped():
    x = leaf(4, 5)

    def step():
        y = Noisy.apply(x) + ScaleInPlace.apply(x * 1.0)
        (y * weights(y.shape)).sum().backward()

    alerts, verdicts = checked(step, steps=3)
    assert alerts == []
    assert verdicts[Noisy].outcome == "skipped" and "not deterministic" in verdicts[Noisy].why
    assert verdicts[ScaleInPlace].outcome == "skipped" and "mark_dirty" in verdicts[ScaleInPlace].why


# ---- the check leaves no trace ---------------------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 16), nn.Linear(16, 3)

    def forward(self, x):
        h = ReLU.apply(self.fc1(x))
        s, c = SinCos.apply(Noisy.apply(h))  # a forward that draws random numbers: the check runs it again
        return self.fc2(F.dropout(s * c, 0.2))


def _train(debugger: Debugger | None, steps: int = 5) -> tuple[list[float], list]:
    """The losses of `steps` SGD steps (the debugger attached, if given) and every event the hub delivered."""
    engine.manual_seed(0)
    _, train = trainer(Net(), lr=0.1)
    events = []
    undo = hub.subscribe(events.append)
    try:
        with debugger if debugger is not None else contextlib.nullcontext():
            losses = train(steps)
    finally:
        undo()
    return losses, [(type(e).__name__, getattr(e, "op", ""), getattr(e, "key", "")) for e in events]


def test_the_check_leaves_no_events_or_records_and_the_same_losses():
    plain, _ = _train(None)
    on = Debugger("summary", interactive=False)
    off = Debugger("summary", alerts=AlertSettings(custom_backward=False), interactive=False)
    (checked_losses, checked_events), (unchecked_losses, unchecked_events) = _train(on), _train(off)
    assert checked_losses == unchecked_losses == plain  # bit for bit
    assert checked_events == unchecked_events
    ops = [r.event.op for r in on.history if isinstance(r, OpRecord)]
    assert ops == [r.event.op for r in off.history if isinstance(r, OpRecord)]
    assert ops.count("ReLU") == ops.count("SinCos") == ops.count("Noisy") == 5
    verdicts = on.monitor.custom_backwards.verdicts
    assert verdicts[ReLU].outcome == "agrees" and verdicts[Noisy].outcome == "skipped"
    assert [a.kind for a in on.alerts] == [a.kind for a in off.alerts]


def test_each_class_is_checked_once():
    """Its forward runs again at its first backward, never after: a class costs nothing once checked."""
    calls = []

    class Counted(Square):
        @staticmethod
        def forward(ctx, x):
            calls.append(1)
            return Square.forward(ctx, x)

    x = leaf(4, 5)
    counts = []

    def step():
        Counted.apply(x).sum().backward()
        counts.append(len(calls))

    alerts, verdicts = checked(step, steps=4)
    assert alerts == [] and verdicts[Counted].outcome == "agrees"
    assert counts[0] > 1 and np.diff(counts).tolist() == [1, 1, 1]
