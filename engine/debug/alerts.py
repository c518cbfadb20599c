"""Numerical alerts: where non-finite values started (not the flood after), exploding or vanishing
gradient norms, dead ReLUs.

A forward op is a NaN origin when its output is not finite but all of its inputs are; a backward node
is one when it turns a finite incoming gradient into non-finite input gradients while its forward op
was clean. Everything downstream of an origin has a non-finite input (or gradient) and stays quiet.

Infinities a program puts in on purpose are not an alert: masked_fill with -inf (attention masks)
makes them by design, and softmax turns them into zeros. Its output is not tainted either, so if a
NaN appears later from those infinities (softmax over a row masked entirely), the op where the NaN
appears is its origin: its inputs hold infinities but no NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.backend import array_module, host_floats, square_sum
from engine.debug.records import BackwardRecord, OpRecord
from engine.debug.summary import summarize
from engine.events import AlertEvent, next_seq


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """What to watch for; a threshold of None turns that alert off.

    grad_norm_max / grad_norm_min: per-parameter gradient L2 norm at each optimizer step (needs the
    model or optimizer given to the debugger). dead_relu: the fraction of a relu's units that are zero
    for every sample of the batch.
    """

    nonfinite: bool = True
    grad_norm_max: float | None = 1e3
    grad_norm_min: float | None = 1e-7
    dead_relu: float | None = 0.9


INTENDED_INFINITIES = frozenset({"masked_fill"})  # ops that write a given value, -inf included, on purpose


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

    def __init__(self, settings: AlertSettings, params=None) -> None:
        self.settings = settings
        self.params = params  # callable -> iterable of (name, parameter), or None
        self._bad: set[int] = set()  # ids of non-finite op outputs this iteration
        self._tainted: set[int] = set()  # forward seqs with a non-finite input or output
        self._raised: set[tuple[str, str]] = set()  # (kind, key) of ongoing conditions, alerted once

    def new_iteration(self, iteration: int) -> None:
        """Forget per-iteration state."""
        self._bad.clear()
        self._tainted.clear()

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
                nan = has_nan(out.array, rec.summary)
                if by_design(rec.event.op, nan):
                    return None
                bad.add(rec.event.output)
                self._tainted.add(rec.event.seq)
                if all(all_finite(t.array) for t in inputs):
                    why = "its inputs are finite"
                elif nan and not any(has_nan(t.array) for t in inputs):
                    why = "its inputs hold infinities but no NaN"  # e.g. softmax over a row masked to -inf
                else:
                    return None
                summaries = tuple(summarize(t.array) for t in inputs)
                return _alert("nonfinite_forward", f"non-finite values first appear in the output of "
                              f"{_where(rec)}, iteration {rec.iteration}; {why}", rec, math.nan, summaries)
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
                return _alert("dead_relu", f"{dead:.0%} of the units of {_where(rec)} are zero for the whole "
                              f"batch, iteration {rec.iteration}", rec, dead)
        return None

    def backward(self, rec: BackwardRecord, grad_in: tuple, grads: tuple) -> AlertEvent | None:
        """A NaN-origin alert for a backward node, or None."""
        if not self.settings.nonfinite:
            return None
        summaries = rec.grad_inputs or (None,) * len(grads)
        if all(g is None or all_finite(g, s) for g, s in zip(grads, summaries)):
            return None
        if rec.event.forward_seq in self._tainted or not all_finite(grad_in[0], rec.grad_output):
            return None
        incoming = rec.grad_output or summarize(grad_in[0])
        return _alert("nonfinite_backward", f"the backward of {_where(rec)} turns a finite gradient into "
                      f"non-finite input gradients, iteration {rec.iteration}", rec, math.nan, (incoming,))

    def step(self, rec) -> list[AlertEvent]:
        """Gradient-norm alerts at an optimizer step (or iteration mark), per parameter."""
        s = self.settings
        if self.params is None or (s.grad_norm_max is None and s.grad_norm_min is None):
            return []
        reported = getattr(rec.event, "grad_norms", None)
        if reported:  # the optimizer measured them as it stepped (named as the model names them)
            named_norms = list(reported.items())
        else:
            named = [(name, p.grad.array) for name, p in self.params() if p.grad is not None]
            # one dot product per parameter, one transfer for all: a float() each would sync a GPU each time
            norms = [math.sqrt(v) for v in host_floats([square_sum(g) for _, g in named])]
            named_norms = [(name, norm) for (name, _), norm in zip(named, norms)]
        alerts = []
        for name, norm in named_norms:
            for kind, limit, hit in (("exploding_grad", s.grad_norm_max,
                                      s.grad_norm_max is not None and norm > s.grad_norm_max),
                                     ("vanishing_grad", s.grad_norm_min,
                                      s.grad_norm_min is not None and norm < s.grad_norm_min)):
                if self._starts((kind, name), hit):
                    word = "above" if kind == "exploding_grad" else "below"
                    alerts.append(AlertEvent(
                        next_seq(), kind, f"gradient norm of '{name}' is {norm:.3g}, {word} {limit:g}, "
                        f"iteration {rec.iteration}", "", name, "", 0, rec.iteration, "", 0, "", norm))
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
