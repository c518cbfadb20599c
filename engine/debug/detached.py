"""Where an iteration's graph was cut: an op that takes, without gradient, the very array an earlier op made with one
(`h = h.detach()`, `h.data`), whose ancestors hold the parameters that then get no gradient.

`x.detach()` runs no op and makes no event: it is seen where its result is taken. With that evidence the
no-gradient alert comes at the first step (not after five, the wait for a branch some batches skip) and points at
the line of the detach, found between the line that made the tensor and the line that took it. A value that went
through numpy (`from_numpy(np.tanh(h.detach().numpy()))`) is a new array: the cut is then looked for after the last op
computed from the parameters, before the first op that takes a tensor from outside the graph.

    cuts = Detaches()
    cuts.op(rec, inputs, out)            # every forward op, in order
    found = cuts.cutting({id of a parameter})  # at the step: (maker, taker, SourceFrame of the detach) or None
    detached_alert(names, found, iteration)     # the no-gradient alert that names it
    no_gradient_alert(names, cuts.after_cut(ids), steps, rec)  # without that evidence: at the likeliest line
    cuts.new_iteration()
"""

from __future__ import annotations

import ast
import linecache
import weakref

from engine.debug.alert_text import names_text
from engine.debug.records import OpRecord
from engine.debug.source import SourceFrame
from engine.events import AlertEvent, next_seq

LIMIT = 4096  # op outputs an iteration remembers (a larger graph is followed as far as that)
NEAR = 30  # lines between the op that made a tensor and the one that took it detached, read for the detach
CUTS = (".detach(", ".data", "detach_(", ".numpy(")  # how a line cuts a tensor from the graph
FRESH = 64  # ops an iteration remembers that take a tensor without gradient from outside the graph


class Detaches:
    """The detached hand-overs of one iteration and the ops before them (see the module docstring)."""

    def __init__(self) -> None:
        self._arrays: dict[int, tuple] = {}  # id of an output array with gradient -> (weak reference to it, record)
        self._made: dict[int, OpRecord] = {}  # engine id of an output with gradient -> its op's record
        self._found: list[tuple[OpRecord, OpRecord]] = []  # (the op that made a tensor, the op that took it detached)
        # (an op after the first with gradient, the engine id of an input of it without gradient no op made)
        self._fresh: list[tuple[OpRecord, int]] = []
        self._weak = True  # whether the arrays take weak references (numpy's do; else nothing is followed)

    def new_iteration(self) -> None:
        """Forget the iteration's ops."""
        self._arrays.clear()
        self._made.clear()
        self._found.clear()
        self._fresh.clear()

    def op(self, rec: OpRecord, inputs: tuple, out) -> None:
        """Note an op: an input without gradient that holds an earlier output's array was detached from it."""
        arrays = self._arrays
        if arrays and len(self._found) < 8:
            for t in inputs:
                if t is not None and not t.requires_grad:
                    hit = arrays.get(id(t.array))
                    if hit is not None and hit[0]() is t.array:
                        self._found.append((hit[1], rec))
                    elif len(self._fresh) < FRESH:
                        self._fresh.append((rec, t._id))
        ev = rec.event
        if not ev.requires_grad or len(self._made) >= LIMIT or not self._weak:
            return
        self._made[ev.output] = rec
        try:
            arrays[id(out.array)] = (weakref.ref(out.array), rec)
        except TypeError:  # an array type without weak references: no way to tell it is the same one
            self._weak = False

    def cutting(self, params: set[int]) -> tuple[OpRecord, OpRecord, SourceFrame | None] | None:
        """(the op that made a tensor, the op that took it detached, where it was detached when a line between
        them says so) of the first hand-over whose maker was computed from one of `params` (engine ids), or None."""
        for made, took in self._found:
            if self._from(made, params):
                return made, took, _detach_line(made, took)
        return None

    def after_cut(self, params: set[int]) -> tuple[OpRecord, OpRecord, SourceFrame | None] | None:
        """(the last op computed from `params` (engine ids), the first op after it that takes a tensor without
        gradient that no earlier op took or made, the line between them that cuts the graph when one says so), or
        None: where a value left the graph through something that is no op (numpy) and came back as a new tensor."""
        reached, maker = set(params), None
        for rec in self._made.values():  # in the order they ran
            ev = rec.event
            if any(i in reached for i in ev.inputs):
                reached.add(ev.output)
                maker = rec
        if maker is None:
            return None
        last = maker.event.seq
        # what the ops up to it took (the batch the forward started from) is no value that came back
        taken = {i for rec in self._made.values() if rec.event.seq <= last for i in rec.event.inputs}
        for rec, tensor in self._fresh:
            if rec.event.seq > last and tensor not in taken:
                return maker, rec, _detach_line(maker, rec)
        return None

    def _from(self, rec: OpRecord, params: set[int]) -> bool:
        """Whether `rec`'s output was computed from one of `params`, by the ops this iteration remembers."""
        todo, seen = [rec], set()
        while todo and len(seen) < LIMIT:
            ev = todo.pop().event
            for i in ev.inputs:
                if i in params:
                    return True
                before = self._made.get(i)
                if before is not None and i not in seen:
                    seen.add(i)
                    todo.append(before)
        return False


def _detach_line(made: OpRecord, took: OpRecord) -> SourceFrame | None:
    """The line from `made`'s to `took`'s (in one file, at most NEAR apart) that detaches: the last one that calls
    .detach() or reads .data; None when none does."""
    a, b = made.source, took.source
    if a is None or b is None or a.file != b.file or not 0 <= b.line - a.line <= NEAR:
        return None
    for line in range(b.line, a.line - 1, -1):
        text = _code(linecache.getline(b.file, line).strip())
        if any(cut in text for cut in CUTS):
            return SourceFrame(b.file, line, b.function, text)
    return None


def _code(text: str) -> str:
    """A line without its comment ("h = h.detach()  # stats" -> "h = h.detach()"); a '#' in a string stays."""
    at = text.find("#")
    while at != -1:
        try:
            ast.parse(text[:at].rstrip())
            return text[:at].rstrip()
        except SyntaxError:  # the '#' is in a string, or the line opens a block
            at = text.find("#", at + 1)
    return text


def detached_alert(cut: list, detached: tuple, iteration: int) -> AlertEvent:
    """The no-gradient alert of parameters `cut` (names) whose output was taken detached (`detached`, from
    Detaches.cutting), at the line that detached it (else at the op that took it)."""
    made, took, line = detached
    maker, taker = (f"'{r.event.op}' ({r.event.key}{f', line {r.source.line}' if r.source else ''})"
                    for r in (made, took))
    cause = (f"`{line.text}` at {line.file}:{line.line} cuts the output of {maker} from the graph before {taker} takes "
             "it" if line is not None else
             f"the output of {maker} reaches {taker} detached from the graph (a .detach() or .data between them)")
    at = line or took.source
    fix = ("Compute it with engine ops there: a value that goes through numpy comes back without its graph"
           if line is not None and ".numpy(" in line.text else
           "Remove the .detach() (or .data) there; detach only what no gradient should reach (a target, a logged "
           "value)")
    return AlertEvent(
        next_seq(), "no_gradient", f"{names_text(cut)} are trained by the optimizer but got no gradient, iteration "
        f"{iteration}: {cause}, so no gradient flows back to them. {fix}", "", cut[0], "", 0, iteration,
        at.file if at else "", at.line if at else 0, at.text if at else "", len(cut))


def no_gradient_alert(cut: list, after: tuple | None, steps: int, rec) -> AlertEvent:
    """The no-gradient alert of parameters `cut` (names) that got none in `steps` steps, without a detached tensor to
    show for it: `after` (from Detaches.after_cut) names the line that cut the graph where one does, else the alert
    is placed at the first op after the cut, else (no op computed from them: a layer forward never calls) at the
    step (`rec`, its record)."""
    if after is not None and after[2] is not None:
        return detached_alert(cut, after, rec.iteration)
    at = after[1].source if after is not None else rec.source
    return AlertEvent(
        next_seq(), "no_gradient", f"{names_text(cut)} are trained by the optimizer but got no gradient in {steps} "
        f"steps while other parameters did, iteration {rec.iteration}: the loss does not depend on them. A .detach() "
        "(or .data, .item(), .numpy()) between them and the loss cuts the graph there, or the layer is not used in "
        "forward", "", cut[0], "", 0, rec.iteration, at.file if at else "", at.line if at else 0, at.text if at else "",
        len(cut))
