"""The losses of a run: every backward() root of an iteration, one curve per source line.

    curves = LossCurves()
    curves.feed(records)          # live: debugger records, in order (BackwardRecord, optimizer EventRecord)
    curves.add([Root(...), Step(3), ...])   # a tape: the roots and steps it found in its columns
    curves.curves()               # {"errD": {0: 1.38, 1: 1.21, ...}, "errG": {...}}

A backward pass starts at its root, the output backward() was called on; every root of one element is a loss.
The engine marks each pass's first node (BackwardEvent.pass_start; on a tape, its pass_starts table); a tape from
before the mark has its passes guessed from the order of their nodes (pass_starts).
The nodes an autograd.grad() call runs are left out (BackwardEvent.grad_call; on a tape, its grad_calls table):
MAML's inner-loop losses and a gradient penalty's outputs are differentiated, not minimised. Roots are grouped
by the source line of the forward op that made them (`errD = criterion(...)`), one curve per line, labelled by
the line's assignment target ("errD") or else by the op and the line ("cross_entropy @ train.py:42"). Within an
iteration, a curve's value is the mean, over the stretches between the iteration's optimizer steps, of the sum
of its roots in each stretch:
- gradient accumulation, K backward() calls and one step: the sum of the K micro-losses (of loss / K, the
  full batch's loss), which is what the step's gradient differentiates;
- a WGAN's five critic (backward, step) pairs: the mean of the five critic losses;
- a GAN's discriminator and generator losses, on two lines: two curves; a plain loop: its one loss;
- a step that evaluates its closure again and again (L-BFGS's line search): the stretch's first root, the
  loss at the weights the step started from (what step(closure) returns), not the sum of the evaluations.

The live session and the tape reader both feed one LossCurves, so a replay draws what the live run drew.
Engine code: no Qt.
"""

from __future__ import annotations

import ast
import functools
import keyword
import os
import re
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from engine.debug.records import BackwardRecord, EventRecord
from engine.events import OptimizerEvent

NODE, STEP = 0, 1  # what pass_starts reads: a backward node (its forward op's seq known), an optimizer step

# the target of an assignment that opens a line: `loss = ...`, `self.loss_g = ...`, `loss += ...`, `loss: T = ...`
_TARGET = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(?::[^=]*)?(?:\*\*|//|>>|<<|[-+*/%@&|^])?=(?!=)")


class Root(NamedTuple):
    """A loss: the one-element output a backward pass started from, where its op ran, and its value."""

    iteration: int
    file: str
    line: int
    text: str  # the source line
    op: str
    value: float


class Step(NamedTuple):
    """An optimizer step: it ends a stretch of roots. closure: the roots of the stretch are the step's own
    evaluations of its closure (L-BFGS), not micro-batches."""

    iteration: int
    closure: bool = False


@functools.lru_cache(maxsize=64)
def evaluates_closure(optimizer: str) -> bool:
    """Whether the optimizer class of this name (an OptimizerEvent's `optimizer`) evaluates its closure several
    times a step (`needs_closure`, as L-BFGS and a person's own optimizer can declare)."""
    from engine.optim.optimizer import Optimizer

    stack, names = [Optimizer], set()
    while stack:
        cls = stack.pop()
        if getattr(cls, "needs_closure", False):
            names.add(cls.__name__)
        stack += cls.__subclasses__()
    return optimizer in names


def pass_starts(kinds: np.ndarray, iterations: np.ndarray, refs: np.ndarray,
                before: tuple[int, int, int] | None = None, marks: np.ndarray | None = None) -> np.ndarray:
    """Which items start a backward pass, from the (kind NODE or STEP, iteration, forward op seq) of a run's
    backward nodes and optimizer steps in order. `marks`: whether each item is a node the engine marked as its
    pass's first (BackwardEvent.pass_start), where the run has the marks: those nodes start passes.
    Without them (a tape from before the mark), a guess; `before`: the (kind, iteration, ref) of the item before
    the first (a live run is fed in batches). The scheduler runs a pass's nodes in reverse creation order, so a
    node starts a new pass when it is its iteration's first, the first after a step, or made later than the
    node before it; two passes whose nodes interleave in creation order (losses computed in one order,
    backpropagated in the other) are taken for one."""
    kinds = np.asarray(kinds, np.int64)
    if marks is not None:
        return (kinds == NODE) & np.asarray(marks, bool)
    iterations, refs = (np.asarray(a, np.int64) for a in (iterations, refs))
    prev = before if before is not None else (STEP, -1, 0)
    pk, pi, pr = (np.concatenate(([p], a[:-1])) for p, a in zip(prev, (kinds, iterations, refs)))
    return (kinds == NODE) & ((pk != NODE) | (pi != iterations) | (refs >= pr))


def label_of(text: str, op: str, file: str, line: int) -> str:
    """A curve's name: the assignment target of its source line ("errD"), else "op @ file:line"."""
    if ";" in text:
        name = _loss_among_statements(text)
        if name is not _ONE_STATEMENT:
            return name or (f"{op} @ {os.path.basename(file)}:{line}" if file else op)
    m = _TARGET.match(text)
    if m is not None and not keyword.iskeyword(m.group(1).split(".")[0]):
        return m.group(1)
    return f"{op} @ {os.path.basename(file)}:{line}" if file else op


_ONE_STATEMENT = object()


def _loss_among_statements(text: str):
    """The loss's name on a line of several statements ("model.flag = True; crit(model(x), y).backward()" named
    the loss "model.flag"): what `name.backward()` is called on there, else the target of the one assignment of
    a call's value; None when the loss has no name there; _ONE_STATEMENT when the line is not several whole
    statements (a string's ';', or part of a longer statement)."""
    try:
        body = ast.parse(text.strip()).body
    except SyntaxError:
        return _ONE_STATEMENT
    if len(body) < 2:
        return _ONE_STATEMENT
    for stmt in body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "backward":
            return _dotted(call.func.value)  # None for `crit(out, y).backward()`: a loss with no name
    named = [_dotted(stmt.targets[0]) if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else
             _dotted(stmt.target) for stmt in body
             if isinstance(stmt, ast.Assign | ast.AugAssign | ast.AnnAssign) and stmt.value is not None
             and any(isinstance(node, ast.Call | ast.BinOp) for node in ast.walk(stmt.value))]
    return named[0] if len(named) == 1 else None


def _dotted(node) -> str | None:
    """The dotted name ("a.b.c") of a name or of a chain of attributes of one, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


class _Curve:
    """One source line's losses: iteration -> value, and the sums of the stretches of its latest iteration."""

    __slots__ = ("at", "file", "firsts", "label", "line", "sums", "values")

    def __init__(self, label: str, file: str, line: int) -> None:
        self.label, self.file, self.line = label, file, line
        self.values: dict[int, float] = {}
        self.sums: list[float] = []
        self.firsts: list[float] = []  # each stretch's first root, what a closure-evaluating step's stretch is worth
        self.at = (-1, -1)  # (iteration, stretch) of its latest root


class LossCurves:
    """The loss curves of one run, fed in order (see the module docstring)."""

    def __init__(self) -> None:
        self._curves: dict[tuple[str, int], _Curve] = {}
        self._labels: set[str] = set()
        self._iteration = -1
        self._stretch = 0
        self._before: tuple[int, int, int] | None = None  # the last item fed, for pass_starts' guess
        self._marked = False  # whether the records fed mark where passes start (all but an old tape's do)
        self.seen = 0  # the seq of the last record fed: records at or before it again (a replay seeking back) are not
        self.first_op = None  # the OpEvent of the first root fed live (the chance level reads its shapes)

    def add(self, items: Iterable[Root | Step]) -> bool:
        """Fold roots and steps, in order, into the curves; True when a value changed."""
        changed = False
        for item in items:
            if item.iteration != self._iteration:
                self._iteration, self._stretch = item.iteration, 0
            if item.__class__ is Step:
                if item.closure:
                    changed = self._first_of_stretch(item.iteration) or changed
                self._stretch += 1
                continue
            curve = self._curve(item)
            at = (item.iteration, self._stretch)
            if curve.at[0] != item.iteration:
                curve.sums, curve.firsts = [item.value], [item.value]
            elif curve.at == at:
                curve.sums[-1] += item.value
            else:
                curve.sums.append(item.value)
                curve.firsts.append(item.value)
            curve.at = at
            curve.values[item.iteration] = sum(curve.sums) / len(curve.sums)
            changed = True
        return changed

    def _first_of_stretch(self, iteration: int) -> bool:
        """The stretch a closure-evaluating step ends is worth its first root in every curve that has roots in it."""
        changed = False
        for curve in self._curves.values():
            if curve.at == (iteration, self._stretch) and curve.sums[-1] != curve.firsts[-1]:
                curve.sums[-1] = curve.firsts[-1]
                curve.values[iteration] = sum(curve.sums) / len(curve.sums)
                changed = True
        return changed

    def _curve(self, root: Root) -> _Curve:
        key = (root.file, root.line)
        curve = self._curves.get(key)
        if curve is None:
            label = label_of(root.text, root.op, root.file, root.line)
            if label in self._labels:  # a second line assigning `loss`: named by its place too
                label = f"{label} @ {os.path.basename(root.file)}:{root.line}"
            base, n = label, 2
            while label in self._labels:
                label, n = f"{base} ({n})", n + 1
            self._labels.add(label)
            curve = self._curves[key] = _Curve(label, root.file, root.line)
        return curve

    def feed(self, records) -> bool:
        """Fold the backward nodes and optimizer steps among debugger records (in order) into the curves; True
        when a value changed. A root's value is its forward op's summary: none at capture "structure"."""
        if not self._marked:  # a run's first backward node starts a pass: seen once, the marks are trusted
            records = records if isinstance(records, list | tuple) else list(records)  # read twice
            self._marked = any(r.__class__ is BackwardRecord and r.event.pass_start for r in records)
        items = [r for r in records if r.event.seq > self.seen and (
            (r.__class__ is BackwardRecord and r.event.forward_seq > 0 and not r.event.grad_call)
            or (r.__class__ is EventRecord and r.event.__class__ is OptimizerEvent))]
        if not items:
            return False
        self.seen = items[-1].event.seq
        kinds = [NODE if r.__class__ is BackwardRecord else STEP for r in items]
        its = [r.iteration for r in items]
        refs = [r.event.forward_seq if k == NODE else 0 for r, k in zip(items, kinds)]
        marks = [k == NODE and r.event.pass_start for r, k in zip(items, kinds)] if self._marked else None
        starts = pass_starts(kinds, its, refs, self._before, marks)
        self._before = (kinds[-1], its[-1], refs[-1])
        found: list[Root | Step] = []
        for rec, kind, start in zip(items, kinds, starts.tolist()):
            if kind == STEP:
                found.append(Step(rec.iteration, evaluates_closure(rec.event.optimizer)))
                continue
            fwd = rec.forward
            value = fwd.summary.scalar if start and fwd is not None and fwd.summary is not None else None
            if value is not None:
                src = fwd.source
                found.append(Root(rec.iteration, src.file if src else "", src.line if src else 0,
                                  src.text if src else "", fwd.event.op, value))
                if self.first_op is None:
                    self.first_op = fwd.event
        return self.add(found)

    def curves(self) -> dict[str, dict[int, float]]:
        """label -> {iteration: loss}, the curves in the order their first losses came."""
        return {c.label: dict(c.values) for c in self._curves.values()}

    def first(self) -> dict[int, float]:
        """The first curve's losses (iteration -> loss); {} before any."""
        return dict(next(iter(self._curves.values())).values) if self._curves else {}

    def __len__(self) -> int:
        return len(self._curves)


def loss_curves(items: Iterable[Root | Step]) -> dict[str, dict[int, float]]:
    """label -> {iteration: loss} of a run's roots and steps, in order (see the module docstring)."""
    curves = LossCurves()
    curves.add(items)
    return curves.curves()
