"""The losses of a run: every backward() root of an iteration, one curve per source line, and the evaluation
losses a run computes without a gradient (a validation loss), one curve per source line too.

    curves = LossCurves()
    curves.feed(records)          # live: debugger records, in order (BackwardRecord, optimizer EventRecord, OpRecord)
    curves.add([Root(...), Step(3), EvalLoss(...), ...])   # a tape: the losses and steps it found in its columns
    curves.curves()               # training: {"errD": {0: 1.38, 1: 1.21, ...}, "errG": {...}}
    curves.eval_curves()          # evaluation: {"val_loss": {20: 0.91, 40: 0.85, ...}}

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

An evaluation loss is the one-element output of a loss op (LOSS_OPS) that requires no gradient: computed under
`with engine.no_grad():` or from inputs that need none, it is never backpropagated, so it is no root. Its curves
are grouped and labelled as the roots' (`val_loss += F.cross_entropy(...).item()` is "val_loss"), kept apart from
them (a training `loss` and a validation `loss` are two curves), and a curve's value in an iteration is the mean
of its line's losses there: an evaluation loop over 20 batches inside one iteration is one point, their mean. The
losses composed of several ops (margin_ranking_loss to gaussian_nll_loss) end in a plain mean or sum, which says
no loss: they are not found.

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

from engine.debug.records import BackwardRecord, EventRecord, OpRecord
from engine.events import OptimizerEvent

# the engine's loss ops (engine.ops.loss, engine.ops.ctc): a one-element output of one is a loss value
LOSS_OPS = frozenset({"cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
                      "binary_cross_entropy", "binary_cross_entropy_with_logits", "ctc_loss"})
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


class EvalLoss(Root):
    """An evaluation loss: the one-element output of a loss op that requires no gradient, where it ran, and its
    value (a Root's fields; never a root)."""

    __slots__ = ()


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


class _EvalCurve:
    """One source line's evaluation losses: iteration -> [sum, count] of its losses there."""

    __slots__ = ("file", "label", "line", "sums")

    def __init__(self, label: str, file: str, line: int) -> None:
        self.label, self.file, self.line = label, file, line
        self.sums: dict[int, list] = {}


class LossCurves:
    """The loss curves of one run, fed in order (see the module docstring)."""

    def __init__(self) -> None:
        self._curves: dict[tuple[str, int], _Curve] = {}
        self._labels: set[str] = set()
        self._evals: dict[tuple[str, int], _EvalCurve] = {}
        self._eval_labels: set[str] = set()  # apart from the training labels: a validation `loss` is "loss" too
        self._iteration = -1
        self._stretch = 0
        self._before: tuple[int, int, int] | None = None  # the last item fed, for pass_starts' guess
        self._marked = False  # whether the records fed mark where passes start (all but an old tape's do)
        self.seen = 0  # the seq of the last record fed: records at or before it again (a replay seeking back) are not
        self.first_op = None  # the OpEvent of the first root fed live (the chance level reads its shapes)

    def add(self, items: Iterable[Root | Step | EvalLoss]) -> bool:
        """Fold roots and steps, in order, and evaluation losses into the curves; True when a value changed."""
        changed = False
        for item in items:
            if item.__class__ is EvalLoss:  # no part of a stretch: an evaluation between two steps changes none
                curve = _named(self._evals, self._eval_labels, _EvalCurve, item)
                total = curve.sums.get(item.iteration)
                if total is None:
                    curve.sums[item.iteration] = [item.value, 1]
                else:
                    total[0] += item.value
                    total[1] += 1
                changed = True
                continue
            if item.iteration != self._iteration:
                self._iteration, self._stretch = item.iteration, 0
            if item.__class__ is Step:
                if item.closure:
                    changed = self._first_of_stretch(item.iteration) or changed
                self._stretch += 1
                continue
            curve = _named(self._curves, self._labels, _Curve, item)
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

    def feed(self, records) -> bool:
        """Fold the backward nodes, optimizer steps and evaluation losses among debugger records (in order) into
        the curves; True when a value changed. A loss's value is its op's summary: none at capture "structure"."""
        if not self._marked:  # a run's first backward node starts a pass: seen once, the marks are trusted
            records = records if isinstance(records, list | tuple) else list(records)  # read twice
            self._marked = any(r.__class__ is BackwardRecord and r.event.pass_start for r in records)
        items = [r for r in records if r.event.seq > self.seen and (
            (r.__class__ is BackwardRecord and r.event.forward_seq > 0 and not r.event.grad_call)
            or (r.__class__ is EventRecord and r.event.__class__ is OptimizerEvent)
            or (r.__class__ is OpRecord and r.event.op in LOSS_OPS and not r.event.requires_grad))]
        if not items:
            return False
        self.seen = items[-1].event.seq
        found: list[Root | Step | EvalLoss] = []
        if any(r.__class__ is OpRecord for r in items):
            for rec in items:
                value = rec.summary.scalar if rec.__class__ is OpRecord and rec.summary is not None else None
                if value is not None:  # a summary of one element
                    src = rec.source
                    found.append(EvalLoss(rec.iteration, src.file if src else "", src.line if src else 0,
                                          src.text if src else "", rec.event.op, value))
            items = [r for r in items if r.__class__ is not OpRecord]
            if not items:
                return self.add(found)
        kinds = [NODE if r.__class__ is BackwardRecord else STEP for r in items]
        its = [r.iteration for r in items]
        refs = [r.event.forward_seq if k == NODE else 0 for r, k in zip(items, kinds)]
        marks = [k == NODE and r.event.pass_start for r, k in zip(items, kinds)] if self._marked else None
        starts = pass_starts(kinds, its, refs, self._before, marks)
        self._before = (kinds[-1], its[-1], refs[-1])
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
        """The training curves, label -> {iteration: loss}, in the order their first losses came."""
        return {c.label: dict(c.values) for c in self._curves.values()}

    def eval_curves(self) -> dict[str, dict[int, float]]:
        """The evaluation curves, label -> {iteration: mean of the line's losses there}, in the order their first
        losses came."""
        return {c.label: {it: total / n for it, (total, n) in c.sums.items()} for c in self._evals.values()}

    def first(self) -> dict[int, float]:
        """The first training curve's losses (iteration -> loss); {} before any."""
        return dict(next(iter(self._curves.values())).values) if self._curves else {}

    def __len__(self) -> int:
        """How many training curves."""
        return len(self._curves)


def _named(curves: dict, labels: set[str], make, loss: Root | EvalLoss):
    """The curve of `loss`'s source line among `curves`, made with a label not yet in `labels` when new."""
    key = (loss.file, loss.line)
    curve = curves.get(key)
    if curve is None:
        label = label_of(loss.text, loss.op, loss.file, loss.line)
        if label in labels:  # a second line assigning `loss`: named by its place too
            label = f"{label} @ {os.path.basename(loss.file)}:{loss.line}"
        base, n = label, 2
        while label in labels:
            label, n = f"{base} ({n})", n + 1
        labels.add(label)
        curve = curves[key] = make(label, loss.file, loss.line)
    return curve


def loss_curves(items: Iterable[Root | Step | EvalLoss]) -> dict[str, dict[int, float]]:
    """label -> {iteration: loss}, the training curves of a run's roots and steps, in order (see the module
    docstring)."""
    curves = LossCurves()
    curves.add(items)
    return curves.curves()
