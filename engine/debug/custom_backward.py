"""The custom_backward alert: a custom autograd Function's hand-written backward checked against its own forward.

A sign flipped, a factor missing, a transpose or the gradient of the wrong input trains silently wrong. So the first
time a Function class runs backward, the gradient its backward gave each input x is compared with central finite
differences of its forward along a random direction v: <grad_input, v> against
<grad_output, (f(x + h v) - f(x - h v)) / 2h>, with f run again in float64 where the inputs allow (else in their
dtype, with a step suited to it), under no_grad, with the hub silenced and every random generator put back after,
so that the run neither records nor feels it. A difference is trusted where both one-sided differences and a step
four times smaller give the same slope, and only a clear disagreement (off by more than AGREE, or of the opposite
sign), seen along two directions, is named: a correct Function must never be.

What cannot be judged is let go, never guessed at: a forward that is not deterministic or gives other values than it
did, one that changes its inputs in place (mark_dirty), inputs or outputs too large to copy; and surrogate gradients
by design: a forward that is flat in an input (a straight-through estimator) or passes it through unchanged (a
gradient reversal, scaling or clipping layer). A check that finds no verdict (x on a kink, a relu at 0; a slope lost
in rounding) is tried again at a later backward, a few times at most. A class costs its inputs' copies until its
check is done, and nothing after.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.autograd.custom import Function, watch_backwards
from engine.autograd.function import sum_to
from engine.autograd.grad_mode import no_grad
from engine.backend import array_module, to_host
from engine.debug.alert_text import make_alert, ordinal, where
from engine.debug.records import BackwardRecord
from engine.events import AlertEvent, hub
from engine.random import fork_rng
from engine.tensor import Tensor

KEEP_LIMIT = 1 << 20  # elements: a Function with a larger input or output is not checked (copies of it would cost)
TRIES = 3  # checks of one class that found no verdict before it is let go
MOST_INPUTS = 8  # inputs checked per Function (four forward runs each, eight where they disagree)
STEP = {8: 1e-4, 4: 1e-2, 2: 1e-1}  # relative finite-difference step by the itemsize of the dtype f runs in
AGREE = 0.25  # backward and finite-difference slopes further apart than this share of the larger disagree
KINK = 0.1  # one-sided slopes further apart than this share: x sits on a kink (a relu at 0), no verdict there
ROUNDING = 32.0  # ulps of rounding allowed each value a slope is summed from
CANCELLED = 1e3  # ulps of the outputs a backward may lose cancelling terms, before its slope is no longer judged


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the check of one Function class found: outcome "agrees", "wrong", "skipped" (it cannot be checked) or
    "inconclusive" (no verdict at this x); `why` says why; for "wrong", the input ("1st input 'x'") and the ratio
    <backward> / <finite differences> of their slopes."""

    outcome: str
    why: str = ""
    input: str = ""
    ratio: float = math.nan


@dataclass(frozen=True, slots=True)
class _Input:
    """A Tensor argument of a kept apply: its place among the copies."""

    index: int


@dataclass(slots=True)
class _Kept:
    """One apply of a class not checked yet: its node, the arguments (Tensors as _Input), copies of the Tensors'
    arrays (taken before forward) and of the floating outputs' (after, by position)."""

    ctx: weakref.ref | None
    args: tuple
    kwargs: dict
    values: list
    outputs: dict


class CustomBackwards:
    """Checks each custom Function class's backward once (engine.autograd.custom.watch_backwards calls it) and holds
    the alert of a wrong one until the debugger sees that node's backward record."""

    def __init__(self) -> None:
        self.verdicts: dict[type, Verdict] = {}  # Function class -> its last verdict
        self._tries: dict[type, int] = {}  # Function class -> inconclusive checks so far
        self._kept: dict[type, _Kept] = {}  # Function class -> its latest apply that records a node
        self._pending: dict[str, tuple] = {}  # op name -> (Function class, verdict) of a wrong backward, to name
        self._traced: Callable[[], bool] = lambda: True
        self._rng = np.random.default_rng(0)  # its own: the run's generators never move

    def watch(self, traced: Callable[[], bool]) -> Callable[[], None]:
        """Start checking the Functions that run where `traced()` is true; returns the undo."""
        self._traced = traced
        undo = watch_backwards(self)

        def stop() -> None:
            undo()
            self._kept.clear()  # the copies of classes still unchecked

        return stop

    # ---- called by engine.autograd.custom ---------------------------------------------------------------------
    def keep(self, cls: type, args: tuple, kwargs: dict) -> _Kept | None:
        """Copies of an apply's Tensor arguments, while `cls` is not checked yet."""
        if not self._open(cls) or not self._traced():
            return None
        values = []

        def take(a):
            if not isinstance(a, Tensor):
                return a
            values.append(a.array.copy())
            return _Input(len(values) - 1)

        if any(isinstance(a, Tensor) and a.array.size > KEEP_LIMIT for a in (*args, *kwargs.values())):
            self._settle(cls, Verdict("skipped", f"an input holds more than {KEEP_LIMIT} elements"))
            return None
        return _Kept(None, tuple(take(a) for a in args), {k: take(a) for k, a in kwargs.items()}, values, {})

    def applied(self, ctx, kept: _Kept, out, dirty: bool) -> None:
        """The apply's forward ran: keep it (with its outputs) as the class's latest."""
        cls = ctx._forward_cls
        if dirty:
            self._settle(cls, Verdict("skipped", "its forward changes an input in place (mark_dirty): running it "
                                                 "again would change it again"))
            return
        outs = out if isinstance(out, tuple) else (out,)
        floats = {i: o.array for i, o in enumerate(outs) if isinstance(o, Tensor) and o.array.dtype.kind == "f"}
        if any(a.size > KEEP_LIMIT for a in floats.values()):
            self._settle(cls, Verdict("skipped", f"an output holds more than {KEEP_LIMIT} elements"))
            return
        if "_diff" in ctx.__dict__:  # the node was recorded
            kept.ctx, kept.outputs = weakref.ref(ctx), {i: a.copy() for i, a in floats.items()}
            self._kept[cls] = kept

    def backward(self, ctx, grads: list, results: tuple) -> None:
        """A custom node's backward gave `results`: check it, if it is the kept apply of a class not checked yet."""
        cls = ctx._forward_cls
        kept = self._kept.get(cls)
        if kept is None or kept.ctx() is not ctx or not self._traced():
            return
        del self._kept[cls]
        verdict = _check(cls, ctx, kept, grads, results, self._rng)
        if verdict.outcome == "inconclusive":
            self._tries[cls] = self._tries.get(cls, 0) + 1
            self.verdicts[cls] = verdict
            return
        self._settle(cls, verdict)
        if verdict.outcome == "wrong":
            self._pending[ctx.op] = (cls, verdict)

    # ---- called by the monitor ------------------------------------------------------------------------------
    def alert(self, rec: BackwardRecord) -> AlertEvent | None:
        """The custom_backward alert of this backward node, if its check found its backward wrong."""
        if not self._pending:
            return None
        found = self._pending.pop(rec.event.op, None)
        return None if found is None else make_alert("custom_backward", _message(*found, rec), rec, found[1].ratio)

    def _open(self, cls: type) -> bool:
        """Whether `cls` still waits for a verdict."""
        return cls not in self.verdicts or (self.verdicts[cls].outcome == "inconclusive"
                                            and self._tries.get(cls, 0) < TRIES)

    def _settle(self, cls: type, verdict: Verdict) -> None:
        self.verdicts[cls] = verdict
        self._kept.pop(cls, None)


# ---- the check ------------------------------------------------------------------------------------------------
def _check(cls: type, ctx, kept: _Kept, grads: list, results: tuple, rng: np.random.Generator) -> Verdict:
    """The verdict on one node's backward `results`, from its forward run again around the kept inputs."""
    inputs = kept.args if _setup(cls) else (*kept.args, *kept.kwargs.values())
    given = [(i, a.index) for i, a in enumerate(inputs)
             if isinstance(a, _Input) and ctx._next[i] is not None and results[i] is not None]
    if not given:
        return Verdict("skipped", "its backward gives no input a gradient")
    # a gradient of zeros is judged as None is: a gradient cut on purpose (or a relu's, all off at this x)
    wrt = [(i, k) for i, k in given if array_module(results[i].array).any(results[i].array)][:MOST_INPUTS]
    if not wrt:
        return Verdict("inconclusive", "its backward gives zeros")
    go = {i: _host(grads[i].array) if grads[i] is not None else 0.0 for i in ctx._diff}
    if not all(np.isfinite(g).all() for g in go.values()):
        return Verdict("inconclusive", "the gradient it got holds NaN or Inf")
    with _aside():
        forward = _Forward.choose(cls, ctx, kept)
        if isinstance(forward, Verdict):
            return forward
        verdicts = [_check_input(forward, go, k, results[i].array, ctx._meta[i][0], rng, _input_name(cls, i, kept))
                    for i, k in wrt]
    for outcome in ("skipped", "wrong", "inconclusive"):  # a surrogate gradient by design first: it explains all
        found = next((v for v in verdicts if v.outcome == outcome), None)
        if found is not None:
            return found
    return Verdict("agrees")


def _check_input(forward: _Forward, go: dict, k: int, grad, shape: tuple, rng, name: str) -> Verdict:
    """The verdict on the gradient `grad` (an array) of input `name` (copy `k`, of `shape`): along one direction, and
    a second to confirm."""
    eps = float(np.finfo(grad.dtype).eps)
    grad = _host(grad, shape)
    if not np.isfinite(grad).all():  # the non-finite alerts name that
        return Verdict("inconclusive", "its gradient holds NaN or Inf")
    x = forward.values[k]
    rms = math.sqrt(float(np.mean(x * x))) if x.size else 0.0
    floor = 0.1 * rms if rms > 0 else 1.0  # a step relative to x, also where x is 0
    for attempt in range(2):
        v = rng.standard_normal(x.shape) * (np.abs(x) + floor)
        slope = _slopes(forward, go, k, v, grad, eps)
        if isinstance(slope, Verdict):
            return slope
        backward, central = slope
        if abs(backward - central) <= AGREE * max(abs(backward), abs(central)):
            return Verdict("agrees") if attempt == 0 else Verdict(
                "inconclusive", "two directions gave different verdicts")
        if attempt == 0:
            ratio, off = backward / central, abs(backward - central) / abs(central)
    return Verdict("wrong", f"off by {off:.0%}", name, ratio)


def _slopes(forward: _Forward, go: dict, k: int, v: np.ndarray, grad: np.ndarray, eps: float) -> tuple | Verdict:
    """(<grad, v>, <go, central difference of f along v>), or the verdict that ends the check there; `eps`: the
    rounding of the dtype `grad` was computed in."""
    h = forward.step
    moved = _moved(forward, go, k, v, h)
    if isinstance(moved, Verdict):
        return moved
    right, left, noise, v = moved
    backward = float(np.sum(grad * v))
    # the backward's rounding: of its result, and of what it cancelled on the way (a layer norm over 2 values far
    # apart is flat, and its float32 gradient is rounding alone), in ulps of the outputs' share of the loss
    share = math.sqrt(sum(float(np.sum((go[j] * forward.at_x[j]) ** 2)) for j in forward.at_x))
    noise += eps * (ROUNDING * float(np.linalg.norm(grad * v)) + CANCELLED * share)
    central = (right + left) / 2
    if max(abs(backward), abs(central)) <= 10 * noise:
        return Verdict("inconclusive", "the slope along the direction is lost in rounding")
    if abs(central) <= noise:
        return Verdict("skipped", "its forward is flat in an input its backward gives a gradient (a straight-through "
                                  "estimator, or another surrogate gradient by design)")
    if abs(right - left) > KINK * max(abs(right), abs(left)) + 2 * noise:
        return Verdict("inconclusive", "the inputs sit on a kink of the forward (a relu at 0)")
    # a difference to trust has converged: a quarter of the step gives the same slope (else f bends within the step,
    # as x / (|x| + eps) does near 0, and both one-sided differences can agree on a wrong slope)
    finer = _moved(forward, go, k, v, h / 4)
    if isinstance(finer, Verdict):
        return finer
    fine = (finer[0] + finer[1]) / 2
    if abs(fine - central) > KINK * max(abs(fine), abs(central)) + finer[2] + noise:
        return Verdict("inconclusive", "the forward bends within the finite-difference step here")
    return backward, central


def _moved(forward: _Forward, go: dict, k: int, v: np.ndarray, h: float) -> tuple | Verdict:
    """The one-sided slopes <go, f(x + hv) - f(x)> / h and <go, f(x) - f(x - hv)> / h, their rounding, and v as the
    dtype run holds the steps; or the verdict that ends the check there."""
    x, f0 = forward.values[k], forward.at_x
    (up, up_host), (down, down_host) = forward.moved(k, x + h * v), forward.moved(k, x - h * v)
    hi, lo = forward({k: up}), forward({k: down})
    if isinstance(hi, Verdict) or isinstance(lo, Verdict):
        return hi if isinstance(hi, Verdict) else lo
    if not all(np.isfinite(a).all() for a in (*hi.values(), *lo.values())):
        return Verdict("inconclusive", "a step along the direction left the forward's domain (NaN or Inf)")
    changed = [j for j in hi if not np.array_equal(hi[j], lo[j])]
    if len(changed) == 1 and all(np.array_equal(out[changed[0]], at)
                                 for out, at in ((f0, x), (hi, up_host), (lo, down_host))):
        return Verdict("skipped", "its forward passes an input through unchanged: a backward that changes the "
                                  "gradient there (a reversal, a scale, a clip) does so by design")
    right = sum(float(np.sum(go[j] * (hi[j] - f0[j]))) for j in hi) / h
    left = sum(float(np.sum(go[j] * (f0[j] - lo[j]))) for j in hi) / h
    # rounding errors of the outputs, of random sign, add up as a norm does
    rounding = math.sqrt(sum(float(np.sum((go[j] * (np.abs(hi[j]) + np.abs(lo[j])) * np.finfo(d).eps) ** 2))
                             for j, d in forward.dtypes.items()))
    return right, left, ROUNDING * rounding / h, (up_host - down_host) / (2 * h)


class _Forward:
    """The Function's forward at the kept inputs, some moved: its differentiable outputs as float64 host arrays."""

    def __init__(self, cls: type, ctx, kept: _Kept, wide: bool) -> None:
        self.cls, self.kept, self.diff, self.needs = cls, kept, ctx._diff, ctx.needs_input_grad
        self.arrays = [a.astype(np.float64) if wide and a.dtype.kind == "f" else a for a in kept.values]
        self.values = [_host(a) for a in self.arrays]  # what directions are drawn for, on the host
        self.itemsize = 8 if wide else min(a.dtype.itemsize for a in kept.values if a.dtype.kind == "f")
        self.step = STEP[self.itemsize]  # set again once the outputs' dtypes are known
        self.dtypes: dict[int, np.dtype] = {}  # of the outputs, in the last run
        self.at_x: dict[int, np.ndarray] = {}

    @classmethod
    def choose(cls, fn: type, ctx, kept: _Kept) -> _Forward | Verdict:
        """The forward in float64 if it runs so and gives the values it gave, else in the inputs' dtypes; or why
        neither can be checked."""
        double = all(a.dtype == np.float64 for a in kept.values if a.dtype.kind == "f")
        why = ""
        for wide in (True,) if double else (True, False):
            forward = cls(fn, ctx, kept, wide)
            first = forward({})
            if isinstance(first, Verdict):
                why = first.why
                continue
            again = forward({})
            if isinstance(again, Verdict) or not all(_same(first[j], again[j], 1e-12) for j in first):
                return Verdict("skipped", "its forward is not deterministic (two runs at the same inputs differ)")
            if all(_same(first[j], _host(kept.outputs[j]), _tolerance(kept.outputs[j].dtype)) for j in first):
                forward.at_x = first
                # a forward that computes in a narrower dtype inside (x.float()) rounds as that dtype does
                forward.step = STEP[min(forward.itemsize, *(d.itemsize for d in forward.dtypes.values()))]
                return forward
            why = ("its forward gives other values than it gave (it reads state that changed since, or its inputs "
                   "were changed in place)")
        return Verdict("skipped", why)

    def moved(self, k: int, values: np.ndarray) -> tuple:
        """Copy k at host `values`, as the run holds it (its dtype, its device), and that as a float64 host array."""
        like = self.arrays[k]
        a = array_module(like).asarray(values.astype(like.dtype))
        return a, _host(a)

    def __call__(self, moved: dict) -> dict[int, np.ndarray] | Verdict:
        """The outputs with copy k's array replaced by moved[k]."""
        arrays = [moved.get(k, a) for k, a in enumerate(self.arrays)]

        def arg(a):
            return Tensor._wrap(arrays[a.index].copy()) if isinstance(a, _Input) else a

        args = tuple(arg(a) for a in self.kept.args)
        kwargs = {k: arg(a) for k, a in self.kept.kwargs.items()}
        try:
            if _setup(self.cls):
                out = self.cls.forward(*args, **kwargs)
            else:
                ctx = object.__new__(self.cls._backward_cls)  # a throwaway: what forward saves on it goes nowhere
                ctx.needs_input_grad = self.needs
                out = self.cls.forward(ctx, *args, **kwargs)
        except Exception as err:  # the person's code, run where it never ran: any error ends the check, not the run
            return Verdict("skipped", f"its forward raised when run again ({type(err).__name__}: {err})")
        outs = out if isinstance(out, tuple) else (out,)
        if any(j >= len(outs) or not isinstance(outs[j], Tensor) or outs[j].array.dtype.kind != "f"
               or j not in self.kept.outputs or outs[j].array.shape != self.kept.outputs[j].shape for j in self.diff):
            return Verdict("skipped", "its forward gives other outputs when run again")
        self.dtypes = {j: outs[j].array.dtype for j in self.diff}
        return {j: _host(outs[j].array) for j in self.diff}


@contextlib.contextmanager
def _aside():
    """No events, no graph, and every random generator as it was: the check leaves the run as it found it."""
    states = np.random.get_state(), random.getstate()
    try:
        with hub.silenced(), no_grad(), fork_rng(), np.errstate(all="ignore"):
            yield
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])


def _setup(cls: type) -> bool:
    """Whether `cls` is written in the newer style: forward without ctx, and setup_context."""
    return cls.setup_context is not Function.setup_context


def _host(a, shape: tuple | None = None) -> np.ndarray:
    """A float64 host copy of array `a` (summed to `shape` first, as broadcasting is undone)."""
    out = np.asarray(to_host(a), dtype=np.float64)
    return sum_to(out, shape) if shape is not None else out


def _same(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    """Whether `a` and `b` agree to `rtol` of each value, or of their mean size."""
    if a.shape != b.shape:
        return False
    finite = np.abs(b[np.isfinite(b)])
    return np.allclose(a, b, rtol=rtol, atol=rtol * float(finite.mean()) if finite.size else 0.0, equal_nan=True)


def _tolerance(dtype) -> float:
    """How far a float64 run may stray from a forward that ran in `dtype` (its rounding, summed up)."""
    return 10 * math.sqrt(float(np.finfo(dtype).eps))


# ---- what the alert says ---------------------------------------------------------------------------------------
def _message(cls: type, verdict: Verdict, rec: BackwardRecord) -> str:
    r = verdict.ratio
    sign = ", the opposite sign" if r < 0 else ""
    backward = _backward_line(cls)
    return (f"The hand-written backward of custom Function {cls.__name__}{backward} disagrees with its own forward: "
            f"for its {verdict.input}, the backward gives {r:.2f}x the finite-difference slope of "
            f"the forward along a random direction ({verdict.why}{sign}): {_guess(r)} Training follows it without an "
            f"error. It ran as {where(rec)}; check it with engine.autograd.gradcheck("
            f"{cls.__name__}.apply, inputs) on float64 inputs that require grad (as torch.autograd.gradcheck)")


def _guess(r: float) -> str:
    """What a slope `r` times the true one suggests (a slope within AGREE of the true one is no disagreement)."""
    n = abs(r) if abs(r) > 1 else 1 / max(abs(r), 1e-12)
    factor = round(n) if round(n) <= 4 and abs(n - round(n)) < 0.02 * n else 0  # x * x, x ** 3, a mean of 4
    flipped = "a sign flipped" if r < 0 else ""
    if factor == 1:
        return f"{flipped}?"
    if factor:
        return f"{flipped and flipped + ', and '}a factor {factor} {'too many' if abs(r) > 1 else 'missing'}?"
    if abs(r) < 0.05:
        return "a gradient missing?"
    return "a transposed matrix, or the gradient of another input?"


def _backward_line(cls: type) -> str:
    """" (backward at file:line)", where the backward is defined (through @once_differentiable)."""
    fn = cls.backward if cls.backward is not Function.backward else cls.vjp
    fn = inspect.unwrap(fn)
    try:
        lines, start = inspect.getsourcelines(fn)
        file = inspect.getsourcefile(fn)
    except (OSError, TypeError):
        return ""
    line = start + next((n for n, text in enumerate(lines) if text.lstrip().startswith("def ")), 0)
    return f" (backward at {file}:{line})"


def _input_name(cls: type, i: int, kept: _Kept) -> str:
    """"1st input 'x'": input `i` of an apply, by the name of its parameter of forward, or of its keyword."""
    if i >= len(kept.args):
        return f"{ordinal(i)} input '{list(kept.kwargs)[i - len(kept.args)]}'"
    params = list(inspect.signature(cls.forward).parameters.values())[0 if _setup(cls) else 1:]
    named = i < len(params) and params[i].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                  inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return f"{ordinal(i)} input" + (f" '{params[i].name}'" if named else "")
