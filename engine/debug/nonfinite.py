"""Where non-finite values start, not the flood after.

A forward op is a NaN origin when its output is not finite but all of its inputs are; a backward node
is one when it turns a finite incoming gradient into non-finite input gradients while its forward op
was clean. Everything downstream of an origin has a non-finite input (or gradient) and stays quiet.

Non-finite values can also enter from outside the recorded graph: an op input no recorded op made
this iteration (the input data, a parameter, a tensor made before the debugger attached) is where
they start, and the op is named with that input (the parameter by the model's name for it). An
optimizer step that leaves a finite parameter non-finite is the origin itself, reported at the step;
a parameter gradient no recorded backward node made (a hook, an assignment to .grad) is reported
where it is first used: at the backward node it reaches, or at the step.

Infinities a program puts in on purpose are not an alert: masked_fill with -inf (attention masks, and the same
mask written with setitem, where, index_fill or index_put)
makes them by design, and softmax turns them into zeros, as does an additive mask of -inf built
outside the recorded ops (a buffer, or a tensor made once before the loop). Their outputs are not
tainted either, so if a NaN appears later from those infinities (softmax over a row masked entirely),
the op where the NaN appears is its origin: its inputs hold infinities but no NaN.

Only an op whose output is not finite does any of this work: the healthy per-op path is unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from engine.backend import array_module, host_floats, square_sum
from engine.debug.alert_text import (
    DIVISORS,
    DOMAINS,
    EXP_LIMITS,
    OVERFLOWS,
    STEP_TOO_HIGH,
    and_names,
    finite_inputs_text,
    make_alert,
    optimizer_text,
    ordinal,
    step_alert,
    where,
)
from engine.debug.records import BackwardRecord, OpRecord
from engine.debug.regions import held
from engine.debug.summary import summarize
from engine.events import AlertEvent
from engine.optim.optimizer import stepping_optimizer

INTENDED_INFINITIES = frozenset({"masked_fill"})  # ops that write a given value, -inf included, on purpose
# ops that also write masks: top-k sampling's `logits[logits < v] = -inf`, `where(keep, x, -inf)`, a nearest-
# neighbour search's `d.fill_diagonal_(inf)` (a NaN written, or a +inf written into a parameter, is an origin)
MASK_WRITES = frozenset({"setitem", "where", "index_fill", "index_put"})


def by_design(op: str, nan: bool, array=None, into_parameter=lambda: False) -> bool:
    """Whether non-finite values in `array`, the output of `op`, are there on purpose (a mask's infinities, no
    NaN): a mask write's are, except a +inf written into a parameter (`p.data[0] = inf` is an origin). Without
    the array (the graph colours nodes from summaries, which count infinities of both signs) a mask write's
    infinities count as the mask's; an origin among them still gets its alert, which marks it."""
    if nan:
        return False
    if op in INTENDED_INFINITIES:
        return True
    # (into_parameter, a callable, walks the model's tensors: asked last, for a +inf written only)
    return op in MASK_WRITES and (array is None or _only_minus_inf(array) or not into_parameter())


def has_nan(array, summary=None) -> bool:
    """True when `array` holds a NaN."""
    if summary is not None:
        return summary.nan_count > 0
    if array.dtype.kind not in "fc":
        return False
    return bool(array_module(array).isnan(array).any())


_add_reduce = np.add.reduce


def all_finite(array, summary=None) -> bool:
    """True when `array` holds no NaN or infinity (one reduction in the common case)."""
    if summary is not None:
        return summary.finite
    if array.dtype.kind != "f":
        return True
    # a finite sum proves every element finite; a non-finite one may be an overflow, so check exactly (the
    # ufunc itself, not np.sum: numpy's Python wrapper would own the overflow warning engine/__init__ silences
    # for engine code)
    total = _add_reduce(array, axis=None) if array.__class__ is np.ndarray else array.sum()
    return math.isfinite(float(total)) or bool(array_module(array).isfinite(array).all())


class NonFiniteTracker:
    """The non-finite checks of a Monitor: origins in forward and backward, entries from outside, steps.

    `names()`: id of each parameter and buffer the debugger knows -> its name. Each condition is alerted
    once, and again only after an iteration without it."""

    def __init__(self, names, tensors=None) -> None:
        self.names = names
        self.tensors = tensors  # (name, tensor) of the parameters and buffers: is a write into one of them?
        self._bad: set[int] = set()  # ids of non-finite op outputs (and inputs from outside) this iteration
        self._tainted: set[int] = set()  # forward seqs with a non-finite input or output
        self._intended: dict[int, str] = {}  # ids of outputs holding infinities on purpose -> where from
        self._grad_bad = False  # a backward node gave non-finite gradients this iteration
        self._entered: set[int] = set()  # ids of parameters that entered an op non-finite this iteration
        # the input arrays of the ops reported as origins, this iteration and the one before: a tensor
        # sharing memory with one of them holds that op's result written back in place (p.data[0] = inf)
        self._origin_inputs: list = []
        self._older_origin_inputs: list = []
        self._hit: set[tuple[str, str]] = set()  # conditions seen this iteration
        self._raised: set[tuple[str, str]] = set()  # (kind, key) of ongoing conditions, alerted once
        self._nonfinite_params: set[int] = set()  # ids of parameters non-finite after the last step

    def new_iteration(self) -> None:
        """Forget per-iteration state; a condition not seen in the iteration that ended may alert again."""
        self._bad.clear()
        self._tainted.clear()
        self._intended.clear()
        self._entered.clear()
        self._older_origin_inputs, self._origin_inputs = self._origin_inputs, []
        self._grad_bad = False
        self._raised &= self._hit
        self._hit.clear()

    def op(self, rec: OpRecord, inputs: tuple, out) -> tuple[bool, AlertEvent | None]:
        """(whether the op's output is non-finite or downstream of non-finite values, its alert or None)."""
        bad = self._bad
        if bad and any(t.id in bad for t in inputs):
            bad.add(rec.event.output)
            self._tainted.add(rec.event.seq)
            return True, None
        if all_finite(out.array, rec.summary):
            return False, None
        return True, self._nonfinite(rec, inputs, out)

    def _into_parameter(self, inputs: tuple) -> bool:
        """Whether a mask write's destination holds a parameter's or buffer's values (p.data[0] = inf)."""
        if not inputs or self.tensors is None or inputs[0].grad_fn is not None:  # an activation is no parameter
            return False
        dest = inputs[0].array
        return any(t.array is dest for _, t in self.tensors())

    def _nonfinite(self, rec: OpRecord, inputs: tuple, out) -> AlertEvent | None:
        """A forward op whose output is not finite and none of whose inputs a recorded op made so: the
        origin (finite inputs, or NaN from intended infinities), an entry from outside, or a mask."""
        event = rec.event
        nan = has_nan(out.array, rec.summary)
        if by_design(event.op, nan, out.array, lambda: self._into_parameter(inputs)):
            self._intended[event.output] = f"the -inf that '{event.op}' ({event.key}) writes on purpose"
            return None
        intended, outside, masked = self._intended, [], ""
        for i, t in enumerate(inputs):
            if t.id in intended:
                masked = masked or intended[t.id]
            elif not all_finite(t.array):
                outside.append((i, t))
        names = self.names() if outside else {}
        entries = []
        for i, t in outside:
            name = names.get(id(t))
            if not nan and not t.requires_grad and _only_minus_inf(t.array):  # a parameter is no mask
                masked = masked or f"the -inf of its {ordinal(i)} input, an additive mask"  # attention's
            elif name is None and self._grad_bad:
                self._bad.add(t.id)  # a gradient a hook computes with: backward made it non-finite already
            else:
                entries.append((i, t, name))
        if not entries and not masked and self._grad_bad and outside:
            self._bad.add(event.output)
            self._tainted.add(event.seq)
            return None
        if not entries and masked and not nan:
            intended[event.output] = masked  # infinities passed on, as softmax(scores + mask) wants them
            return None
        self._bad.add(event.output)
        self._tainted.add(event.seq)
        if entries:
            return self._entry(rec, inputs, entries)
        if not self._once(("nonfinite_forward", event.key)):  # the same origin each iteration: one alert
            self._origin_inputs.extend(t.array for t in inputs)
            return None
        summaries = tuple(summarize(t.array) for t in inputs)
        if not masked:
            why = "its inputs are finite" + self._why(event.op, inputs, summaries, out.array, nan)
        else:  # e.g. softmax over a row masked to -inf
            why = f"its inputs hold infinities but no NaN ({masked})"
        self._origin_inputs.extend(t.array for t in inputs)
        return make_alert("nonfinite_forward", f"non-finite values first appear in the output of {where(rec)}, "
                      f"iteration {rec.iteration}; {why}", rec, math.nan, summaries)

    def _entry(self, rec: OpRecord, inputs: tuple, entries: list) -> AlertEvent | None:
        """One alert for non-finite values entering `rec`'s op through inputs no recorded op made."""
        known = self._nonfinite_params
        for _, t, _ in entries:
            self._bad.add(t.id)  # its other uses are downstream of this entry
            if t.requires_grad and t.is_leaf:
                self._entered.add(id(t))
        # a parameter a reported optimizer step made non-finite, or one a reported origin op was written
        # back into: that step or op was the origin
        fresh = [(i, t, name) for i, t, name in entries if id(t) not in known and not self._written_back(t.array)]
        if not fresh:
            return None
        i, t, name = fresh[0]
        what, check = _described(t, name)
        key = ("nonfinite_input", name or f"{rec.event.key}#{i}")
        if not self._once(key):
            return None
        more = f" (and its {', '.join(ordinal(j) for j, _, _ in fresh[1:])} input too)" if len(fresh) > 1 else ""
        summaries = tuple(summarize(x.array) for x in inputs)
        return make_alert("nonfinite_input", f"non-finite values ({_holds(t.array)}) enter {where(rec)}, iteration "
                      f"{rec.iteration}, through its {ordinal(i)} input, {what}{more}: no recorded op made them. "
                      f"{check}", rec, math.nan, summaries)

    def _written_back(self, array) -> bool:
        """Whether `array` shares memory with an input of an op reported as an origin (finite then)."""
        xp = array_module(array)
        return any(a.__class__ is array.__class__ and xp.may_share_memory(a, array)
                   for a in (*self._origin_inputs, *self._older_origin_inputs))

    def _why(self, op: str, inputs: tuple, summaries: tuple, out, nan: bool) -> str:
        """Why finite inputs gave `op` a non-finite output (`out`): ", but their squares overflow: its inputs reach
        6.96e+18, and float32 tops out at 3.4e+38 ...", or ", but log of 0 is -inf ...", from the inputs' summaries
        (and the parameter holding the largest values, by name: a learning rate far too high blew it up)."""
        tops = [(max(abs(s.min), abs(s.max)), t) for t, s in zip(inputs, summaries)
                if t.array.dtype.kind == "f" and s.numel and math.isfinite(s.max)]
        if out.dtype.kind != "f":
            return ""
        top, _ = max(tops, key=lambda pair: pair[0], default=(0.0, None))
        huge = np.finfo(out.dtype).max ** 0.5  # products of values above this overflow
        names = self.names()
        # the parameter's own largest value goes with its name, not the largest input's (an activation's)
        parameter = next(((names[id(t)], value) for value, t in tops if value > huge and id(t) in names), None)
        if op in DOMAINS and op not in OVERFLOWS and op not in EXP_LIMITS:
            overflowed = False  # log, sqrt: no overflow, the edge of the domain
        elif op in DOMAINS:  # div, pow: 1/0 and 0 ** -1 are inf, 1e38 / 1e-5 and 1e20 ** 2 overflow
            at = DIVISORS.get(op)
            by_zero = at is not None and at < len(inputs) and bool((inputs[at].array == 0).any())
            overflowed = not nan and top > huge and not by_zero
        else:
            overflowed = op in OVERFLOWS or op in EXP_LIMITS or top > huge or parameter is not None
        return finite_inputs_text(op, overflowed, top, out.dtype, parameter)

    def backward(self, rec: BackwardRecord, grad_in: tuple, grads: tuple) -> AlertEvent | None:
        """A NaN-origin alert for a backward node, or None."""
        summaries = rec.grad_inputs or (None,) * len(grads)
        for g, s in zip(grads, summaries):  # a loop, not all() of a generator: this runs at every backward node
            if g is not None and not (s.finite if s is not None else all_finite(held(g))):
                break
        else:
            return None
        earlier, self._grad_bad = self._grad_bad, True
        if rec.event.forward_seq in self._tainted:
            return None
        if rec.forward is None and self._bad:
            return None  # its forward ran before the debugger attached, maybe on the non-finite values seen since
        if not all_finite(grad_in[0], rec.grad_output):
            # no recorded node made it (none gave a non-finite gradient, no op a non-finite value): a hook
            # on a tensor, or the gradient given to backward(), put it in
            if earlier or self._bad or not self._once(("nonfinite_grad", rec.event.key)):
                return None
            return make_alert("nonfinite_grad", f"the gradient reaching the backward of {where(rec)} is already "
                          f"non-finite ({_holds(grad_in[0])}), iteration {rec.iteration}, but no recorded backward "
                          "node made it: a hook on a tensor (register_hook) or the gradient passed to "
                          "backward(gradient=...) did. Check what those return", rec, math.nan,
                          (rec.grad_output or summarize(grad_in[0]),))
        incoming = rec.grad_output or summarize(grad_in[0])
        return make_alert("nonfinite_backward", f"the backward of {where(rec)} turns a finite gradient into "
                      f"non-finite input gradients, iteration {rec.iteration}", rec, math.nan, (incoming,))

    def stepped(self, rec) -> list[AlertEvent]:
        """Alerts when this step left parameters non-finite that were finite before it: the step is the
        origin, or (a gradient no recorded node made non-finite) a hook or a .grad assignment is."""
        event, opt = rec.event, stepping_optimizer()
        if opt is None:
            return []
        known = self._nonfinite_params
        # measured by the optimizer as it stepped (at the summary tier): free here, and the common answer, before
        # any list of the parameters is made
        if event.weight_norms and not known and all(math.isfinite(v) for v in event.weight_norms.values()):
            return []
        stepped = [(f"group{g}.{i}", g, p) for g, group in enumerate(opt.param_groups)
                   for i, p in enumerate(group["params"]) if p.grad is not None]
        if not event.weight_norms:  # one dot product per parameter (a sum costs 3x more), one transfer for all
            squares = host_floats([square_sum(p.array) for *_, p in stepped])
            if not known and all(math.isfinite(v) for v in squares):
                return []
        # rare from here: a norm overflowed, or a parameter is (or was) not finite; check exactly
        new = []
        for item in stepped:
            p = item[2]
            if all_finite(p.array):
                known.discard(id(p))
            elif id(p) not in known:
                known.add(id(p))
                if id(p) not in self._entered:  # else it entered this iteration's forward non-finite already
                    new.append(item)
        if not new:
            return []
        names = self.names()
        new = [(names.get(id(p)) or getattr(p, "_name", None) or default, g, p) for default, g, p in new]
        hooked = [item for item in new if not all_finite(item[2].grad.array)]
        overflowed = [item for item in new if all(item[2] is not h[2] for h in hooked)]
        alerts, it = [], rec.iteration
        # a gradient made non-finite by a recorded op or node: that origin was reported; the step is not one
        if hooked and not (self._grad_bad or self._bad):
            name, g, p = hooked[0]
            alerts.append(step_alert(rec, "nonfinite_grad", name, (
                f"the gradient of parameter '{name}'{and_names(n for n, *_ in hooked[1:])} is non-finite "
                f"({_holds(p.grad.array)}), iteration {it}, but no recorded op or backward node made it: a hook "
                "on the parameter (register_hook) or an assignment to its .grad did. The optimizer step "
                f"({optimizer_text(opt, g)}) then made the parameter non-finite. Check the hooks and the code that "
                "sets .grad")))
        if overflowed:
            name, g, p = overflowed[0]
            norm = math.sqrt(host_floats([square_sum(p.grad.array)])[0])
            alerts.append(step_alert(rec, "nonfinite_step", name, (
                f"the optimizer step ({optimizer_text(opt, g)}) made parameter '{name}'"
                f"{and_names(n for n, *_ in overflowed[1:])} non-finite ({_holds(p.array)}), iteration {it}, "
                f"though it and its gradient (norm {norm:.3g}) were finite: the update overflowed. {STEP_TOO_HIGH}, "
                "or clip the gradients (engine.nn.utils.clip_grad_norm_)")))
        return alerts

    def _once(self, key: tuple[str, str]) -> bool:
        """True the first time a condition is seen; not again until an iteration passes without it."""
        self._hit.add(key)
        if key in self._raised:
            return False
        self._raised.add(key)
        return True


def _only_minus_inf(array) -> bool:
    """True when the non-finite values of `array` are all -inf (a mask), none NaN or +inf."""
    xp = array_module(array)
    return not bool(xp.isnan(array).any()) and not bool((array == xp.inf).any())


def _holds(array) -> str:
    """What is not finite in `array` and where it first is: "NaN and +inf, first at [1, 2]"."""
    xp = array_module(array)
    kinds = [k for k, hit in (("NaN", xp.isnan(array).any()), ("+inf", (array == xp.inf).any()),
                              ("-inf", (array == -xp.inf).any())) if bool(hit)]
    where = xp.argwhere(~xp.isfinite(array))
    first = f", first at {[int(v) for v in where[0]]}" if array.ndim and len(where) else ""
    return " and ".join(kinds) + first


def _described(t, name: str | None) -> tuple[str, str]:
    """(what the input is, what to check) for a non-finite op input no recorded op made."""
    if name is not None and t.requires_grad:
        return (f"parameter '{name}'", "No optimizer step made it non-finite (that would have been reported "
                "there): check its initialisation, the checkpoint it was loaded from, or an in-place edit of it "
                "(under no_grad, or through .data)")
    if name is not None:
        return (f"buffer '{name}'", "Check what last wrote it (running statistics of a batch that held NaN, a "
                "checkpoint, an in-place edit)")
    if t.grad_fn is not None:
        return ("a tensor computed outside the recorded ops (before the debugger attached, in an earlier "
                "iteration, or on another thread)", "Check where it was computed")
    if t.requires_grad:
        return ("a leaf tensor that requires grad but is no parameter of the model the debugger knows",
                "Check where it was made and what changed it since")
    return ("the input data", "Check the data and its preprocessing (missing values read as NaN, a division by a "
            "zero standard deviation, log of 0); engine.isfinite(x).all(dim=1) finds the bad rows")
