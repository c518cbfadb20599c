"""The losses of a run: every backward() root of an iteration, one curve per source line, and the evaluation
losses a run computes without a gradient (a validation loss), one curve per source line too.

    curves = LossCurves()
    curves.feed(records)          # live: debugger records, in order (BackwardRecord, optimizer EventRecord, OpRecord)
    curves.add([Root(...), Step(3), EvalLoss(...), EvalOp(...), ...])   # a tape: what it found in its columns
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
of its line's values there: an evaluation loop over 20 batches inside one iteration is one point, their mean. A
line's value is what the line computes from its losses, not the loss op's own output: the ops of the same line and
iteration, without gradient and of one element, that take a loss (or what the line made of one) carry it on, so
`F.cross_entropy(out, y, reduction="sum") / len(y)` is the mean, `crit(a, b) * 0.5` half of it, and an op that
takes two of them joins them into one value (`F.mse_loss(p, t) / n + F.l1_loss(p, t)`). `.item()` ends that: what
Python computes after it is no op. A line that adds to its target (`val += crit(...)`, `val = val + crit(...)`) is
worth what it adds each time, not the sum so far: a tensor summed over 20 batches is their mean, as the same sum
of `.item()`s, and `val += crit(a) + crit(b)` adds one value a batch, the two losses' sum. A loss summed over its
rows (reduction="sum") counts as that many rows, and a line's mean is the sum of its values over the sum of their
rows: `test_loss += F.nll_loss(out, y, reduction="sum").item()` over the batches, divided by the dataset's size on
a later line (PyTorch's MNIST example), is the mean per sample, what the script prints, not a batch's sum. The
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
from engine.events import OpEvent, OptimizerEvent

# the engine's loss ops (engine.ops.loss, engine.ops.ctc): a one-element output of one is a loss value
LOSS_OPS = frozenset({"cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
                      "binary_cross_entropy", "binary_cross_entropy_with_logits", "ctc_loss"})
NODE, STEP = 0, 1  # what pass_starts reads: a backward node (its forward op's seq known), an optimizer step
# ops of an evaluation line that add losses up (a total over batches, two losses joined) rather than scale one
ADDS = frozenset({"add", "sub"})
MAX_CHAINS = 4096  # the latest evaluation losses' tensors an op of their line may still take (a line's ops are close)

# the target of an assignment that opens a line: `loss = ...`, `self.loss_g = ...`, `loss += ...`, `loss: T = ...`
_TARGET = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(?::[^=]*)?(?:\*\*|//|>>|<<|[-+*/%@&|^])?=(?!=)")
# a line that adds to what its target held: `val += crit(...)`, `total = total + crit(...)`
_ACCUMULATES = re.compile(r"([A-Za-z_][\w.]*)\s*(?:[-+]=|=\s*\1\s*[-+](?!=))")


class Root(NamedTuple):
    """A loss: the one-element output a backward pass started from, where its op ran, and its value."""

    iteration: int
    file: str
    line: int
    text: str  # the source line
    op: str
    value: float
    event: OpEvent | None = None  # the op that made it, where known: its curve's tells the chance level
    tensor: int = 0  # its tensor id (0: unknown), by which the ops of an evaluation loss's line take it
    # the rows a loss summed over (reduction="sum": its batch), 1 for a mean: a summed validation loss over many
    # batches, divided by the dataset's size on a later line, is the sum of its values over the sum of its rows
    rows: int = 1


class EvalLoss(Root):
    """An evaluation loss: the one-element output of a loss op that requires no gradient, where it ran, its value
    and its tensor id (a Root's fields; never a root)."""

    __slots__ = ()


class EvalOp(NamedTuple):
    """An op without gradient whose output has one element: when it takes an evaluation loss of its line (by
    tensor id, or what the line made of one), the line's value is its output's (`/ len(y)`, `* 0.5`, `+ ...`)."""

    iteration: int
    file: str
    line: int
    inputs: tuple[int, ...]
    tensor: int
    value: float
    op: str = ""  # "add" and "sub" keep the rows the losses they take summed over; other ops make a value of one


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

    __slots__ = ("at", "file", "firsts", "label", "line", "op", "sums", "values")

    def __init__(self, label: str, root: Root) -> None:
        self.label, self.file, self.line = label, root.file, root.line
        self.op = root.event  # the OpEvent of its first root that came with one
        self.values: dict[int, float] = {}
        self.sums: list[float] = []
        self.firsts: list[float] = []  # each stretch's first root, what a closure-evaluating step's stretch is worth
        self.at = (-1, -1)  # (iteration, stretch) of its latest root


class _EvalCurve:
    """One source line's evaluation values: iteration -> [sum, count] of its finished chains, and the chains of its
    latest iteration, which an op of the line may still carry on."""

    __slots__ = ("accumulates", "file", "label", "line", "open", "sums")

    def __init__(self, label: str, loss: EvalLoss) -> None:
        self.label, self.file, self.line = label, loss.file, loss.line
        self.accumulates = _ACCUMULATES.match(loss.text) is not None
        self.sums: dict[int, list] = {}
        self.open: dict[_Chain, None] = {}

    def worth(self, chain: _Chain) -> tuple[float, int]:
        """What a chain adds to its iteration's mean: its value, or on a line that adds to its target, the sum and
        count of what it added up."""
        return chain.added if self.accumulates else (chain.value, chain.rows)

    def close(self) -> None:
        """Fold the open chains into their iterations' sums: no op carries them on any more."""
        self._fold(self.sums)
        self.open.clear()

    def means(self) -> dict[int, float]:
        """iteration -> the mean of the line's values there."""
        sums = {it: list(got) for it, got in self.sums.items()}
        self._fold(sums)
        return {it: total / n for it, (total, n) in sums.items()}

    def _fold(self, sums: dict[int, list]) -> None:
        for chain in self.open:
            total, n = self.worth(chain)
            got = sums.setdefault(chain.iteration, [0.0, 0])
            got[0] += total
            got[1] += n


class _Chain:
    """What a line made of an evaluation loss so far: the latest value, the rows it sums over (Root.rows), and what
    it is worth on a line that adds to its target (the sum of the values added and of their rows, not the sum so
    far; `total`: it is that sum so far). into: the chain an op of the line joined it into."""

    __slots__ = ("added", "born", "curve", "into", "iteration", "rows", "total", "value")

    def __init__(self, curve: _EvalCurve, iteration: int, value: float, born: int, added: tuple[float, int],
                 rows: int) -> None:
        self.curve, self.iteration, self.value, self.born, self.added = curve, iteration, value, born, added
        self.rows = rows
        self.into: _Chain | None = None
        self.total = False  # whether it is the sum so far of a line that adds to its target


class LossCurves:
    """The loss curves of one run, fed in order (see the module docstring)."""

    def __init__(self) -> None:
        self._curves: dict[tuple[str, int], _Curve] = {}
        self._labels: set[str] = set()
        self._evals: dict[tuple[str, int], _EvalCurve] = {}
        self._eval_labels: set[str] = set()  # apart from the training labels: a validation `loss` is "loss" too
        self._chains: dict[int, _Chain] = {}  # tensor id -> the chain it holds a value of, in the latest iteration
        self._chains_at = -1  # that iteration
        self._born = 0  # how many evaluation losses came: a chain's age
        self._iteration = -1
        self._stretch = 0
        self._before: tuple[int, int, int] | None = None  # the last item fed, for pass_starts' guess
        self._marked = False  # whether the records fed mark where passes start (all but an old tape's do)
        self.seen = 0  # the seq of the last record fed: records at or before it again (a replay seeking back) are not

    def add(self, items: Iterable[Root | Step | EvalLoss | EvalOp]) -> bool:
        """Fold roots and steps, in order, and evaluation losses and the ops of their lines, in order, into the
        curves; True when a value changed."""
        changed = False
        for item in items:
            if item.__class__ is EvalLoss or item.__class__ is EvalOp:  # no part of a stretch: an evaluation
                changed = self._evaluated(item) or changed  # between two steps changes none
                continue
            if item.iteration != self._iteration:
                self._iteration, self._stretch = item.iteration, 0
            if item.__class__ is Step:
                if item.closure:
                    changed = self._first_of_stretch(item.iteration) or changed
                self._stretch += 1
                continue
            curve = _named(self._curves, self._labels, _Curve, item)
            if curve.op is None:
                curve.op = item.event
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

    def _evaluated(self, item: EvalLoss | EvalOp) -> bool:
        """An evaluation loss starts a chain; an op of its line and iteration that takes one carries it on, and
        joins the chains it takes into one (`(a + b) / 2` of two losses is one value)."""
        if item.iteration != self._chains_at:  # the losses of an iteration before are done with
            for curve in self._evals.values():
                curve.close()
            self._chains.clear()
            self._chains_at = item.iteration
        if item.__class__ is EvalLoss:
            curve = _named(self._evals, self._eval_labels, _EvalCurve, item)
            chain = _Chain(curve, item.iteration, item.value, self._born, (item.value, item.rows), item.rows)
            self._born += 1
        else:
            parts = {}
            for tensor in item.inputs:
                part = self._chains.get(tensor)
                while part is not None and part.into is not None:
                    part = part.into
                if part is not None and part.curve.line == item.line and part.curve.file == item.file:
                    parts[part] = None
            if not parts:
                return False
            curve = next(iter(parts)).curve
            oldest = min(parts, key=lambda p: p.born)
            # on a line adding to its target, an add taking one chain adds its value to a number or a tensor of
            # another line, and one taking the sum so far adds the others' to it; one taking only this batch's
            # losses joins them into one value before they are added; any other op makes a value of its own
            # (`/ len(y)` of a summed loss: a mean, of one row)
            adds = item.op in ADDS
            rows = max(p.rows for p in parts) if adds else 1  # two summed losses of one batch: its rows
            totals = [p for p in parts if p.total]
            if len(parts) > 1 and (totals or not curve.accumulates):
                total = min(totals, key=lambda p: p.born) if totals else oldest
                others = [p for p in parts if p is not total]
                added = (total.added[0] + sum(p.value for p in others), total.added[1] + sum(p.rows for p in others))
            elif len(parts) > 1:  # `val += a + b`: the batch's losses joined before they are added, one value
                added = (item.value, rows)
            else:
                added = (oldest.value, oldest.rows) if adds else (item.value, 1)
            chain = _Chain(curve, item.iteration, item.value, oldest.born, added, rows)
            # the line's total so far: an add that took it, or one taking a single value on a line adding to its
            # target (to a number, or to a tensor no loss made)
            chain.total = bool(totals) or (adds and len(parts) == 1 and curve.accumulates)
            for part in parts:
                part.into = chain
                del curve.open[part]
        curve.open[chain] = None
        if item.tensor:
            if len(self._chains) >= MAX_CHAINS:
                del self._chains[next(iter(self._chains))]
            self._chains[item.tensor] = chain
        return True

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
            (r.__class__ is OpRecord and not r.event.requires_grad and r.summary is not None
             and r.summary.numel == 1)
            or (r.__class__ is BackwardRecord and r.event.forward_seq > 0 and not r.event.grad_call)
            or (r.__class__ is EventRecord and r.event.__class__ is OptimizerEvent))]
        if not items:
            return False
        self.seen = items[-1].event.seq
        changed = False
        if any(r.__class__ is OpRecord for r in items):  # folded at once: the next op may take what one made
            chains = self._chains
            for rec in items:
                if rec.__class__ is OpRecord and (rec.event.op in LOSS_OPS or (
                        rec.iteration == self._chains_at and any(t in chains for t in rec.event.inputs))):
                    changed = self._evaluated(_evaluation(rec)) or changed
            items = [r for r in items if r.__class__ is not OpRecord]
            if not items:
                return changed
        found: list[Root | Step] = []
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
                                  src.text if src else "", fwd.event.op, value, fwd.event))
        return self.add(found) or changed

    def curves(self) -> dict[str, dict[int, float]]:
        """The training curves, label -> {iteration: loss}, in the order their first losses came."""
        return {c.label: dict(c.values) for c in self._curves.values()}

    def eval_curves(self) -> dict[str, dict[int, float]]:
        """The evaluation curves, label -> {iteration: mean of the line's values there}, in the order their first
        losses came."""
        return {c.label: c.means() for c in self._evals.values()}

    def ops(self) -> dict[str, OpEvent | None]:
        """The op of each training curve's roots (the OpEvent of its first root that came with one; the chance
        level reads its shapes), label -> op, in the curves' order."""
        return {c.label: c.op for c in self._curves.values()}

    @property
    def first_op(self) -> OpEvent | None:
        """The op of the first training curve's roots, or None."""
        return next(iter(self._curves.values())).op if self._curves else None

    def first(self) -> dict[int, float]:
        """The first training curve's losses (iteration -> loss); {} before any."""
        return dict(next(iter(self._curves.values())).values) if self._curves else {}

    def __len__(self) -> int:
        """How many training curves."""
        return len(self._curves)


def _evaluation(rec: OpRecord) -> EvalLoss | EvalOp:
    """The evaluation loss a loss op's record (without gradient, of one element) holds, else the op it is."""
    ev, src = rec.event, rec.source
    file, line = (src.file, src.line) if src else ("", 0)
    if ev.op in LOSS_OPS:
        return EvalLoss(rec.iteration, file, line, src.text if src else "", ev.op, rec.summary.scalar, ev, ev.output,
                        summed_rows(ev.op, ev.args, ev.input_shapes))
    return EvalOp(rec.iteration, file, line, ev.inputs, ev.output, rec.summary.scalar, ev.op)


def summed_rows(op: str, args: dict, input_shapes: tuple) -> int:
    """The rows (samples) a loss op with reduction="sum" adds up, 1 for any other reduction: the batch of its
    scores (ctc_loss's (T, N, C) log-probabilities: N; a class-scores loss's unbatched (C,) input: one)."""
    if args.get("reduction") != "sum" or not input_shapes or not input_shapes[0]:
        return 1
    shape = input_shapes[0]
    if op == "ctc_loss":
        return shape[1] if len(shape) == 3 else 1
    if op in ("cross_entropy", "nll_loss") and len(shape) < 2:
        return 1
    return max(int(shape[0]), 1)


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
        curve = curves[key] = make(label, loss)
    return curve


def loss_curves(items: Iterable[Root | Step | EvalLoss | EvalOp]) -> dict[str, dict[int, float]]:
    """label -> {iteration: loss}, the training curves of a run's roots and steps, in order (see the module
    docstring)."""
    curves = LossCurves()
    curves.add(items)
    return curves.curves()
