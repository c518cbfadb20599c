"""Numerical alerts: where non-finite values started (not the flood after), exploding or vanishing
gradient norms, dead ReLUs; and the classic reasons a model will not train: updates as large as the
weights (a learning rate far too high), gradients that pile up across steps (no zero_grad), parameters
with gradients that no optimizer updates (a layer replaced after the optimizer was made), frozen
parameters given to an optimizer, and probabilities passed to a loss that wants logits.

Each says what is wrong, where (the layer, as the model names it) and what to try, once per condition:
the gradient-norm alerts are one alert naming the worst parameter, not one per parameter.

A forward op is a NaN origin when its output is not finite but all of its inputs are; a backward node
is one when it turns a finite incoming gradient into non-finite input gradients while its forward op
was clean. Everything downstream of an origin has a non-finite input (or gradient) and stays quiet.

Non-finite values can also enter from outside the recorded graph: an op input no recorded op made
this iteration (the input data, a parameter, a tensor made before the debugger attached) is where
they start, and the op is named with that input (the parameter by the model's name for it). An
optimizer step that leaves a finite parameter non-finite is the origin itself, reported at the step;
a parameter gradient no recorded backward node made (a hook, an assignment to .grad) is reported
where it is first used: at the backward node it reaches, or at the step.

Infinities a program puts in on purpose are not an alert: masked_fill with -inf (attention masks)
makes them by design, and softmax turns them into zeros, as does an additive mask of -inf built
outside the recorded ops (a buffer, or a tensor made once before the loop). Their outputs are not
tainted either, so if a NaN appears later from those infinities (softmax over a row masked entirely),
the op where the NaN appears is its origin: its inputs hold infinities but no NaN.

Only an op whose output is not finite does any of this work: the healthy per-op path is unchanged.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from engine.backend import array_module, host_floats, square_sum
from engine.debug.records import BackwardRecord, OpRecord
from engine.debug.summary import summarize
from engine.events import AlertEvent, next_seq
from engine.optim.optimizer import live_optimizers, stepping_optimizer


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """What to watch for; a threshold of None turns that alert off.

    grad_norm_max / grad_norm_min: per-parameter gradient L2 norm at each optimizer step (needs the
    model or optimizer given to the debugger). dead_relu: the fraction of a relu's units that are zero
    for every sample of the batch. update_ratio_max: a layer's update norm over its weight norm, kept up
    for UPDATE_STEPS steps in a row (healthy training is near 1e-3; the examples peak below 0.2).
    training: the checks of the training loop itself (see the module docstring).
    """

    nonfinite: bool = True
    grad_norm_max: float | None = 1e3
    grad_norm_min: float | None = 1e-7
    dead_relu: float | None = 0.9
    update_ratio_max: float | None = 0.5
    training: bool = True


UPDATE_STEPS = 3  # a zero-initialised layer's first update is as large as its weights; by the third it is not
LOSSES_OF_LOGITS = frozenset({"cross_entropy", "nll_loss"})  # losses that must not get probabilities


INTENDED_INFINITIES = frozenset({"masked_fill"})  # ops that write a given value, -inf included, on purpose
PER_ITERATION = frozenset({"nonfinite_input", "nonfinite_grad"})  # conditions that clear in an iteration without them


def by_design(op: str, nan: bool) -> bool:
    """Whether non-finite values in the output of `op` are there on purpose (a mask's -inf, no NaN)."""
    return not nan and op in INTENDED_INFINITIES


def has_nan(array, summary=None) -> bool:
    """True when `array` holds a NaN."""
    if summary is not None:
        return summary.nan_count > 0
    if array.dtype.kind not in "fc":
        return False
    return bool(array_module(array).isnan(array).any())


def all_finite(array, summary=None) -> bool:
    """True when `array` holds no NaN or infinity (one reduction in the common case)."""
    if summary is not None:
        return summary.finite
    if array.dtype.kind != "f":
        return True
    xp = array_module(array)
    # a finite sum proves every element finite; a non-finite one may be an overflow, so check exactly
    return math.isfinite(float(xp.sum(array))) or bool(xp.isfinite(array).all())


def _alert(kind: str, message: str, rec, value: float = math.nan, inputs: tuple = ()) -> AlertEvent:
    fwd = rec if isinstance(rec, OpRecord) else rec.forward
    ev = fwd.event if fwd is not None else None
    src = fwd.source if fwd is not None else None
    return AlertEvent(
        next_seq(), kind, message, ev.op if ev else rec.event.op, ev.key if ev else rec.event.key,
        ev.module if ev else "", ev.seq if ev else 0, rec.iteration,
        src.file if src else "", src.line if src else 0, src.text if src else "", float(value), inputs,
    )


def _where(rec) -> str:
    fwd = rec if isinstance(rec, OpRecord) else rec.forward
    if fwd is None:
        return f"'{rec.event.key}'"
    ev, src = fwd.event, fwd.source
    module = f" in module '{ev.module}'" if ev.module else ""
    line = f" at {src.file}:{src.line} ({src.text})" if src else ""
    return f"'{ev.op}' ({ev.key}){module}{line}"


class Monitor:
    """Checks records as they are made and returns the alerts they raise."""

    def __init__(self, settings: AlertSettings, params=None, tensors=None) -> None:
        self.settings = settings
        self.params = params  # callable -> iterable of (name, parameter), or None
        self.tensors = tensors  # callable -> iterable of (name, parameter or buffer), for naming inputs
        self._bad: set[int] = set()  # ids of non-finite op outputs (and inputs from outside) this iteration
        self._tainted: set[int] = set()  # forward seqs with a non-finite input or output
        self._intended: dict[int, str] = {}  # ids of outputs holding infinities on purpose -> where from
        self._grad_bad = False  # a backward node gave non-finite gradients this iteration
        self._entered: set[int] = set()  # ids of parameters that entered an op non-finite this iteration
        # the input arrays of the ops reported as origins, this iteration and the one before: a tensor
        # sharing memory with one of them holds that op's result written back in place (p.data[0] = inf)
        self._origin_inputs: list = []
        self._older_origin_inputs: list = []
        self._hit: set[tuple[str, str]] = set()  # PER_ITERATION conditions seen this iteration
        self._nonfinite_params: set[int] = set()  # ids of parameters non-finite after the last step
        self._raised: set[tuple[str, str]] = set()  # (kind, key) of ongoing conditions, alerted once
        self._big_runs: dict[str, int] = {}  # layer -> steps in a row its update was large against its weights
        self._grads: dict[str, tuple] = {}  # parameter -> (weakref to its .grad, that tensor's version) at a step
        self._dead = ""  # the key of a relu found dead since the last step
        self._blown = False  # whether gradients exploded or updates outgrew the weights earlier in the run

    def new_iteration(self, iteration: int) -> None:
        """Forget per-iteration state."""
        self._bad.clear()
        self._tainted.clear()
        self._intended.clear()
        self._entered.clear()
        self._older_origin_inputs, self._origin_inputs = self._origin_inputs, []
        self._grad_bad = False
        gone = {k for k in self._raised if k[0] in PER_ITERATION and k not in self._hit}
        self._raised -= gone
        self._hit.clear()

    def op(self, rec: OpRecord, inputs: tuple, out) -> AlertEvent | None:
        """A NaN-origin or dead-ReLU alert for a forward op, or None."""
        s = self.settings
        if s.nonfinite:
            bad = self._bad
            if bad and any(t.id in bad for t in inputs):
                bad.add(rec.event.output)
                self._tainted.add(rec.event.seq)
                return None
            if not all_finite(out.array, rec.summary):
                return self._nonfinite(rec, inputs, out)
        if s.dead_relu is not None and rec.event.op == "relu" and out.array.ndim >= 2:
            data = out.array
            # units dead for the whole batch are that many zeros: too few zeros in all rule them out at
            # the cost of one count (a GPU summary has the count on the host already)
            if data.__class__ is not np.ndarray and rec.summary is not None:
                zeros = rec.summary.zero_count
            else:
                zeros = data.size - int(array_module(data).count_nonzero(data))
            dead = 0.0
            if zeros >= s.dead_relu * data.size:
                dead = float((data == 0).reshape(data.shape[0], -1).all(axis=0).mean())
            if self._starts(("dead_relu", rec.event.key), dead >= s.dead_relu):
                self._dead = rec.event.key
                return _alert("dead_relu", f"{dead:.0%} of the units of {_where(rec)} are zero for the whole "
                              f"batch, iteration {rec.iteration}: they pass no gradient back, so the layers "
                              "before them stop learning. Look for a large negative bias or weights blown up by "
                              "a high learning rate in the layer before; try a lower learning rate, LeakyReLU "
                              "or Kaiming init", rec, dead)
        if s.training and rec.event.op in LOSSES_OF_LOGITS and inputs:
            return self._probabilities_in(rec, inputs[0])
        return None

    def _nonfinite(self, rec: OpRecord, inputs: tuple, out) -> AlertEvent | None:
        """A forward op whose output is not finite and none of whose inputs a recorded op made so: the
        origin (finite inputs, or NaN from intended infinities), an entry from outside, or a mask."""
        event = rec.event
        nan = has_nan(out.array, rec.summary)
        if by_design(event.op, nan):
            self._intended[event.output] = f"the -inf that '{event.op}' ({event.key}) writes on purpose"
            return None
        intended, outside, masked = self._intended, [], ""
        for i, t in enumerate(inputs):
            if t.id in intended:
                masked = masked or intended[t.id]
            elif not all_finite(t.array):
                outside.append((i, t))
        names = self._names() if outside else {}
        entries = []
        for i, t in outside:
            name = names.get(id(t))
            if not nan and not t.requires_grad and _only_minus_inf(t.array):  # a parameter is no mask
                masked = masked or f"the -inf of its {_ordinal(i)} input, an additive mask"  # attention's
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
        if not masked:
            why = "its inputs are finite" + self._blown_up(inputs)
        else:  # e.g. softmax over a row masked to -inf
            why = f"its inputs hold infinities but no NaN ({masked})"
        summaries = tuple(summarize(t.array) for t in inputs)
        self._origin_inputs.extend(t.array for t in inputs)
        return _alert("nonfinite_forward", f"non-finite values first appear in the output of {_where(rec)}, "
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
        more = f" (and its {', '.join(_ordinal(j) for j, _, _ in fresh[1:])} input too)" if len(fresh) > 1 else ""
        summaries = tuple(summarize(x.array) for x in inputs)
        return _alert("nonfinite_input", f"non-finite values ({_holds(t.array)}) enter {_where(rec)}, iteration "
                      f"{rec.iteration}, through its {_ordinal(i)} input, {what}{more}: no recorded op made them. "
                      f"{check}", rec, math.nan, summaries)

    def _written_back(self, array) -> bool:
        """Whether `array` shares memory with an input of an op reported as an origin (finite then)."""
        xp = array_module(array)
        return any(a.__class__ is array.__class__ and xp.may_share_memory(a, array)
                   for a in (*self._origin_inputs, *self._older_origin_inputs))

    def _blown_up(self, inputs: tuple) -> str:
        """", but parameter 'fc2.weight' holds values up to 3e+37 ..." when a parameter input is so large
        that products of it overflow: the weights were blown up before (by a learning rate far too high)."""
        names = self._names()
        for t in inputs:
            name, data = names.get(id(t)), t.array
            if name is None or data.dtype.kind != "f" or not data.size:
                continue
            top = float(array_module(data).abs(data).max())
            if top > np.finfo(data.dtype).max ** 0.5:
                return (f", but parameter '{name}' holds values up to {top:.3g}, so products of it overflow: "
                        "steps with a learning rate far too high blow weights up like this (or check its init)")
        return ""

    def _names(self) -> dict[int, str]:
        """id of each parameter and buffer the debugger knows -> its name as the model names it."""
        named = self.tensors() if self.tensors is not None else self.params() if self.params is not None else ()
        return {id(t): name for name, t in named}

    def _probabilities_in(self, rec: OpRecord, x) -> AlertEvent | None:
        """An alert when a loss that wants logits (or log-probabilities) gets probabilities: a softmax
        before it, so the loss stalls with small gradients."""
        data = x.array
        if data.ndim < 2 or data.dtype.kind != "f" or data.shape[1] < 2 or not data.size:
            return None
        xp = array_module(data)
        probs = bool(data.min() >= 0) and float(xp.abs(data.sum(axis=1) - 1).max()) < 1e-3
        if not self._starts(("probabilities", rec.event.key), probs):
            return None
        op = rec.event.op
        fix = ("cross_entropy applies log_softmax itself, so a softmax before it squashes the scores: the loss "
               "stalls and the gradients shrink. Pass the raw logits (remove the softmax)" if op == "cross_entropy"
               else "nll_loss wants log-probabilities; use log_softmax instead of softmax, or cross_entropy on "
               "the raw logits")
        return _alert("probabilities", f"{_where(rec)} gets probabilities (every row is >= 0 and sums to 1), "
                      f"iteration {rec.iteration}: {fix}", rec, 1.0)

    def backward(self, rec: BackwardRecord, grad_in: tuple, grads: tuple) -> AlertEvent | None:
        """A NaN-origin alert for a backward node, or None."""
        if not self.settings.nonfinite:
            return None
        summaries = rec.grad_inputs or (None,) * len(grads)
        if all(g is None or all_finite(g, s) for g, s in zip(grads, summaries)):
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
            return _alert("nonfinite_grad", f"the gradient reaching the backward of {_where(rec)} is already "
                          f"non-finite ({_holds(grad_in[0])}), iteration {rec.iteration}, but no recorded backward "
                          "node made it: a hook on a tensor (register_hook) or the gradient passed to "
                          "backward(gradient=...) did. Check what those return", rec, math.nan,
                          (rec.grad_output or summarize(grad_in[0]),))
        incoming = rec.grad_output or summarize(grad_in[0])
        return _alert("nonfinite_backward", f"the backward of {_where(rec)} turns a finite gradient into "
                      f"non-finite input gradients, iteration {rec.iteration}", rec, math.nan, (incoming,))

    def step(self, rec) -> list[AlertEvent]:
        """Alerts at an optimizer step (or iteration mark): gradient norms, update sizes, the loop itself."""
        s = self.settings
        if self.params is None:
            return []
        alerts = []
        if s.nonfinite and rec.event.__class__.__name__ == "OptimizerEvent":
            alerts += self._stepped_nonfinite(rec)
        if s.grad_norm_max is not None or s.grad_norm_min is not None:
            alerts += self._grad_norms(rec)
        event = rec.event
        if s.update_ratio_max is not None and getattr(event, "update_norms", None):
            alerts += self._large_updates(rec)
        if s.training and event.__class__.__name__ == "OptimizerEvent":
            alerts += self._loop(rec)
        self._dead = ""
        return alerts

    def _stepped_nonfinite(self, rec) -> list[AlertEvent]:
        """Alerts when this step left parameters non-finite that were finite before it: the step is the
        origin, or (a gradient no recorded node made non-finite) a hook or a .grad assignment is."""
        event, opt = rec.event, stepping_optimizer()
        if opt is None:
            return []
        stepped = [(f"group{g}.{i}", g, p) for g, group in enumerate(opt.param_groups)
                   for i, p in enumerate(group["params"]) if p.grad is not None]
        known = self._nonfinite_params
        if event.weight_norms:  # measured by the optimizer as it stepped (at the summary tier): free here
            if not known and all(math.isfinite(v) for v in event.weight_norms.values()):
                return []
        else:  # one dot product per parameter (a sum costs 3x more), one transfer for all
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
        names = self._names()
        new = [(names.get(id(p)) or getattr(p, "_name", None) or default, g, p) for default, g, p in new]
        hooked = [item for item in new if not all_finite(item[2].grad.array)]
        overflowed = [item for item in new if all(item[2] is not h[2] for h in hooked)]
        alerts, it = [], rec.iteration
        # a gradient made non-finite by a recorded op or node: that origin was reported; the step is not one
        if hooked and not (self._grad_bad or self._bad):
            name, g, p = hooked[0]
            alerts.append(_step_alert(rec, "nonfinite_grad", name, (
                f"the gradient of parameter '{name}'{_and(n for n, *_ in hooked[1:])} is non-finite "
                f"({_holds(p.grad.array)}), iteration {it}, but no recorded op or backward node made it: a hook "
                "on the parameter (register_hook) or an assignment to its .grad did. The optimizer step "
                f"({_optimizer(opt, g)}) then made the parameter non-finite. Check the hooks and the code that "
                "sets .grad")))
        if overflowed:
            name, g, p = overflowed[0]
            norm = math.sqrt(host_floats([square_sum(p.grad.array)])[0])
            alerts.append(_step_alert(rec, "nonfinite_step", name, (
                f"the optimizer step ({_optimizer(opt, g)}) made parameter '{name}'"
                f"{_and(n for n, *_ in overflowed[1:])} non-finite ({_holds(p.array)}), iteration {it}, "
                f"though it and its gradient (norm {norm:.3g}) were finite: the update overflowed. The learning "
                "rate is far too high (or the gradient huge); try one 10 to 100 times smaller, or clip the "
                "gradients (engine.nn.utils.clip_grad_norm_)")))
        return alerts

    def _once(self, key: tuple[str, str]) -> bool:
        """True the first time a PER_ITERATION condition is seen; not again until an iteration passes without it."""
        self._hit.add(key)
        if key in self._raised:
            return False
        self._raised.add(key)
        return True

    def _grad_norms(self, rec) -> list[AlertEvent]:
        """An exploding or vanishing alert when some parameter passes the limit, naming the worst and the others."""
        s = self.settings
        reported = getattr(rec.event, "grad_norms", None)
        if reported:  # the optimizer measured them as it stepped (named as the model names them)
            named_norms = list(reported.items())
        else:
            named = [(name, p.grad.array) for name, p in self.params() if p.grad is not None]
            # one dot product per parameter, one transfer for all: a float() each would sync a GPU each time
            norms = [math.sqrt(v) for v in host_floats([square_sum(g) for _, g in named])]
            named_norms = [(name, norm) for (name, _), norm in zip(named, norms)]
        alerts = []
        for kind, limit in (("exploding_grad", s.grad_norm_max), ("vanishing_grad", s.grad_norm_min)):
            if limit is None:
                continue
            high = kind == "exploding_grad"
            new = [(name, norm) for name, norm in named_norms if (norm > limit if high else norm < limit)]
            # one alert while any parameter stays past the limit: vanishing spreads a layer at a time, and an
            # alert for each newcomer was a list of ten for one cause
            if not self._starts((kind, ""), bool(new)):
                continue
            name, norm = (max if high else min)(new, key=lambda item: item[1])
            cause = self._dead or ("blown" if self._blown else "")
            self._blown = self._blown or high
            alerts.append(AlertEvent(next_seq(), kind, _norms_message(kind, new, named_norms, limit, rec.iteration,
                                                                      cause),
                                     "", name, "", 0, rec.iteration, "", 0, "", norm))
        return alerts

    def _large_updates(self, rec) -> list[AlertEvent]:
        """An alert when layers' updates stay as large as their weights: the learning rate is far too high."""
        event, limit = rec.event, self.settings.update_ratio_max
        updates, weights = _per_layer(event.update_norms), _per_layer(event.weight_norms)
        big = []
        for layer, u in updates.items():
            w = weights.get(layer, 0.0)
            ratio = u / w if w else math.inf
            run = self._big_runs.get(layer, 0) + 1 if ratio > limit else 0
            self._big_runs[layer] = run
            if self._starts(("large_update", layer), run >= UPDATE_STEPS):
                big.append((layer, ratio))
        if not big:
            return []
        self._blown = True
        layer, ratio = max(big, key=lambda item: item[1])
        others = _others([name for name, _ in big if name != layer])
        lrs = ", ".join(f"{lr:g}" for lr in event.lrs)
        message = (f"the updates of layer '{layer}' are {ratio:.2g}x its weights{others} for {UPDATE_STEPS} steps, "
                   f"iteration {rec.iteration} (healthy training is near 0.001x): the learning rate ({lrs}) is "
                   "far too high; try one 10 to 100 times smaller")
        return [AlertEvent(next_seq(), "large_update", message, "", layer, "", 0, rec.iteration, "", 0, "", ratio)]

    def _loop(self, rec) -> list[AlertEvent]:
        """Gradients piling up across steps, gradients no optimizer uses, frozen parameters in an optimizer."""
        held: set[int] = set()
        for opt in live_optimizers():
            for group in opt.param_groups:
                held.update(id(p) for p in group["params"])
        piled, unused, frozen = [], [], []
        opt = stepping_optimizer()
        # only what this optimizer updates: another one's parameters may take a backward between its steps
        # (a GAN's generator loss runs through the discriminator) without that being a missing zero_grad
        mine = {id(p) for group in opt.param_groups for p in group["params"]} if opt is not None else held
        grads = dict(self._grads)
        for name, p in self.params():
            g = p.grad
            if g is None:
                if id(p) in held and not p.requires_grad:
                    frozen.append(name)
                continue
            if id(p) not in held:
                unused.append(name)  # its gradient piles up too, but that is not the cause
                continue
            if id(p) not in mine:
                continue
            before = self._grads.get(name)
            # the same gradient tensor, added into once (backward's +=) since its optimizer's last step: nothing
            # reset it (zero_grad() drops it, or fills it with zeros: a second change)
            if before is not None and before[0]() is g and g._vc[0] - before[1] == 1:
                piled.append(name)
            grads[name] = (weakref.ref(g), g._vc[0])
        self._grads = grads
        alerts = []
        it = rec.iteration
        if self._starts(("accumulating_grad", ""), bool(piled)):
            alerts.append(AlertEvent(
                next_seq(), "accumulating_grad", f"the gradients of {_names(piled)} keep adding up across optimizer "
                f"steps, iteration {it}: backward adds into .grad and nothing resets it. Call optimizer.zero_grad() "
                "before loss.backward() in every iteration", "", piled[0], "", 0, it, "", 0, "", len(piled)))
        if self._starts(("not_updated", ""), bool(unused)):
            alerts.append(AlertEvent(
                next_seq(), "not_updated", f"{_names(unused)} get gradients but no optimizer updates them, iteration "
                f"{it}: they never train. Was the layer replaced after the optimizer was made? Make the optimizer "
                "after the model is final (or add them with optimizer.add_param_group)", "", unused[0], "", 0, it,
                "", 0, "", len(unused)))
        if self._starts(("frozen", ""), bool(frozen)):
            alerts.append(AlertEvent(
                next_seq(), "frozen", f"{_names(frozen)} are given to the optimizer but have requires_grad=False, "
                f"iteration {it}: they get no gradient and never change. If they should train, call "
                "requires_grad_(True) on them", "", frozen[0], "", 0, it, "", 0, "", len(frozen)))
        return alerts

    def _starts(self, key: tuple[str, str], hit: bool) -> bool:
        """True when a condition starts; not again until it has cleared (no alert per iteration)."""
        if not hit:
            self._raised.discard(key)
            return False
        if key in self._raised:
            return False
        self._raised.add(key)
        return True


def _layer(name: str) -> str:
    """The layer a parameter belongs to: its path without the last part ('fc1.weight' -> 'fc1')."""
    return name.rpartition(".")[0] or name


def _per_layer(norms: dict) -> dict[str, float]:
    """L2 norms of whole layers from those of their parameters."""
    out: dict[str, float] = {}
    for name, v in norms.items():
        layer = _layer(name)
        out[layer] = out.get(layer, 0.0) + float(v) ** 2
    return {k: math.sqrt(v) for k, v in out.items()}


def _others(names: list[str], most: int = 3) -> str:
    """", and in 'a', 'b' and 2 more" (empty for none)."""
    if not names:
        return ""
    shown = ", ".join(f"'{n}'" for n in names[:most])
    return f" (and in {shown}" + (f" and {len(names) - most} more)" if len(names) > most else ")")


def _and(names) -> str:
    """" (and 'a', 'b')" after a first name (empty for none)."""
    names = list(names)
    return f" (and {_names(names)})" if names else ""


def _names(names: list[str], most: int = 4) -> str:
    """Parameters by name, the first few: "'0.weight', '0.bias' and 3 more"."""
    shown = ", ".join(f"'{n}'" for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _norms_message(kind: str, new: list, everything: list, limit: float, iteration: int, cause: str) -> str:
    """Exploding or vanishing gradients: the worst parameter, the others, and what to try; `cause`: the key
    of a relu found dead just before, or "blown" after gradients exploded or updates outgrew the weights."""
    high = kind == "exploding_grad"
    name, norm = (max if high else min)(new, key=lambda item: item[1])
    layers = list(dict.fromkeys(_layer(n) for n, _ in new))
    where = f"layer '{layers[0]}'" if len(layers) == 1 else f"{len(layers)} layers ({_names(layers)})"
    text = f"gradient norm of '{name}' is {norm:.3g}, {'above' if high else 'below'} {limit:g}, in {where}, " \
           f"iteration {iteration}"
    if high:
        return text + ": the updates will throw the weights far off. Try a smaller learning rate, gradient " \
                      "clipping (engine.nn.utils.clip_grad_norm_) or normalisation layers"
    if norm == 0 and cause == "blown":
        return text + ": no gradient reaches it; after the oversized updates before, its activations saturate. " \
                      "Fix the learning rate first"
    if norm == 0 and cause:
        return text + f": no gradient reaches it; the dead ReLU '{cause}' after it passes none"
    if norm == 0:
        return text + ": no gradient reaches it (a dead ReLU, a saturated activation or a detached path)"
    top_name, top = max(everything, key=lambda item: item[1])
    return text + f", against {top:.3g} at '{top_name}': the gradient fades on its way back through the " \
                  "layers. Saturating activations (sigmoid, tanh) with small weights do this; try ReLU/GELU, " \
                  "Kaiming or Xavier init (engine.nn.init), normalisation layers or residual connections"


def _ordinal(i: int) -> str:
    """The position of input `i` (from 0) in words: '1st', '2nd', '3rd', '4th'."""
    n = i + 1
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


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


def _step_alert(rec, kind: str, name: str, message: str) -> AlertEvent:
    """An alert about parameter `name` at an optimizer step, placed at the user's line that called step()."""
    src = rec.source
    return AlertEvent(next_seq(), kind, message, "", name, "", 0, rec.iteration, src.file if src else "",
                      src.line if src else 0, src.text if src else "", math.nan)


def _optimizer(opt, group: int) -> str:
    """"SGD, lr=0.1" (the parameter's group's learning rate)."""
    lr = opt.param_groups[group].get("lr")
    return f"{type(opt).__name__}, lr={lr:g}" if isinstance(lr, int | float) else type(opt).__name__
