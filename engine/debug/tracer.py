"""Tracer: turns hub events into records placed in iteration, phase and module depth.

Per capture tier it adds the source location (always), summaries of every op output and gradient
("summary"; a loss's at any tier where alerts read it), and host copies of small tensors ("values").
It runs on the engine thread, inside the op, so its per-event work is a few dictionary operations plus
the summaries asked for (whose statistics past what alerts need are computed when first read: see
engine.debug.summary). During a forward phase it keeps one user frame alive for the source walk
(source.capture's memo), and lets it go when the phase ends.
"""

from __future__ import annotations

from engine.autograd import grad_mode
from engine.autograd.function import RegionGrad
from engine.debug.cache import ValueCache
from engine.debug.losses import LOSS_OPS
from engine.debug.records import (
    BACKWARD,
    CAPTURES,
    FORWARD,
    OPTIMIZER,
    BackwardRecord,
    EventRecord,
    IterationEvent,
    OpRecord,
)
from engine.debug.regions import numel, summarize_region, whole
from engine.debug.source import capture as capture_source
from engine.debug.summary import SUMMARY_LIMIT, summarize
from engine.events import next_seq

_NO_SOURCE = (None, ())
# records are named tuples: tuple.__new__ makes one without the Python-level __new__ call
_tuple_new = tuple.__new__
_ROTATE = 50_000  # forward records kept for linking: this iteration and the previous (or this many)
_RECENT = 64  # gradient arrays summarised lately: an Add hands one array to both inputs


def host_copy(array):
    """A numpy copy of an array on any device."""
    return array.copy() if array.__class__.__module__ == "numpy" else array.get()


class Tracer:
    """Builds records; `iteration`, `phase` and `depth` say where the engine thread is."""

    def __init__(self, capture: str = "summary", cache: ValueCache | None = None, *,
                 summary_limit: int = SUMMARY_LIMIT, values_limit: int = 4096, source: bool = True) -> None:
        self.cache = cache
        self.summary_limit = summary_limit
        self._values_limit = values_limit
        self.source = source
        # losses summarised at any tier: the alerts read the loss (a rate that blows it up, a fit) at "structure",
        # watch()'s tier, too; the debugger turns it on with its alerts
        self.loss_summaries = False
        self.set_capture(capture)
        self.iteration = 0
        self.phase = FORWARD
        self.depth = 0
        self.last = None
        self.marks = False  # once mark_iteration() is used, optimizer steps no longer end iterations
        self.stepped = False  # an optimizer stepped: its steps end iterations, not backward passes
        # a loop without an optimizer updates by hand after backward(): its next forward starts an iteration
        self.updating = False
        self.new_iteration = []  # callbacks run when an iteration begins
        self._advance = False
        self._active = False  # something ran since the last boundary
        self._forward: dict[int, OpRecord] = {}
        self._forward_prev: dict[int, OpRecord] = {}
        self._recent: dict[int, tuple] = {}
        self._frames = [None]  # source.capture's memo: a user frame of the forward phase

    # ---- iterations and phases ----------------------------------------------------------------
    @property
    def iteration_ahead(self) -> int:
        """The iteration what changes now takes effect in: the next one once this one has ended (its step ran, or
        a loop updating by hand did its update) and no event of the next has come yet."""
        return self.iteration + (self._advance or (self.updating and self._active))

    def set_capture(self, capture: str) -> None:
        """What the records made from now on carry (a recording started mid-run at another tier)."""
        if capture not in CAPTURES:
            raise ValueError(f"capture must be one of {', '.join(CAPTURES)}, got {capture!r}")
        self.capture = capture
        self.values_limit = self._values_limit if capture == "values" else -1
        self.summaries = capture != "structure"  # the debugger also turns this on for value conditions

    def _enter(self, phase: str) -> None:
        if self.updating and phase is FORWARD:
            self.updating = False
            self._boundary()
        if self._advance:
            self._advance = False
            self.iteration += 1
            self._forward_prev, self._forward = self._forward, {}
            if self.cache is not None:
                self.cache.new_iteration(self.iteration)
            for fn in self.new_iteration:
                fn(self.iteration)
        if phase is not BACKWARD:
            self._recent.clear()
        if phase is not FORWARD:
            self._frames[0] = None  # ops capture no source outside forward: let the frame go
        self.phase = phase
        self._active = True

    def _boundary(self) -> None:
        if self._active:
            self._advance = True
            self._active = False

    # ---- events --------------------------------------------------------------------------------
    def op(self, event, inputs, out) -> OpRecord:
        """The record of a forward op (with `out` the output Tensor)."""
        if (self._advance or self.phase is not FORWARD) and not (self.updating and not grad_mode.state.enabled):
            self._enter(FORWARD)  # (a hand-written update's ops, under no_grad, end no update)
        # skip this frame, Debugger._on_tensors, Hub.emit_tensors and _emit_op: Function.apply is next
        source, stack = capture_source(4, self._frames) if self.source else _NO_SOURCE
        data = out.array
        rec = _tuple_new(OpRecord, (
            event, self.iteration, self.depth, source, stack,
            summarize(data, self.summary_limit, event.device) if self.summaries or (
                self.loss_summaries and event.op in LOSS_OPS) else None,
            host_copy(data) if data.size <= self.values_limit else None))
        cache = self.cache
        if cache is not None:
            cache.put(event.output, data, out._vc)
        fwd = self._forward
        fwd[event.seq] = rec
        if len(fwd) > _ROTATE:
            self._forward_prev, self._forward = fwd, {}
        self.last = rec
        return rec

    def backward(self, event, grad_in: tuple, grads: tuple) -> BackwardRecord:
        """The record of a backward node (incoming gradient array, input gradient arrays)."""
        if self._advance or self.phase is not BACKWARD:
            self._enter(BACKWARD)
        fseq = event.forward_seq
        fwd = self._forward.get(fseq) or self._forward_prev.get(fseq)
        go = gi = ()
        values = ()
        if self.summaries:
            go = self._summary(grad_in[0])
            gi = tuple([None if g is None else self._summary(g) for g in grads])
        if self.values_limit >= 0:
            values = tuple(None if g is None or numel(g) > self.values_limit else host_copy(whole(g))
                           for g in (grad_in[0], *grads))
        rec = _tuple_new(BackwardRecord, (event, self.iteration, fwd.depth if fwd is not None else 0, fwd,
                                          go or None, gi, values))
        cache = self.cache
        if cache is not None:
            cache.put_many(event.grad_output, grad_in[0], event.grad_inputs, grads)
        self.last = rec
        return rec

    def _summary(self, array):
        hit = self._recent.get(id(array))
        if hit is not None and hit[0] is array:
            return hit[1]
        if isinstance(array, RegionGrad):  # a slice's gradient: summarised whole from its region alone
            return summarize_region(array, self.summary_limit)
        s = summarize(array, self.summary_limit)
        recent = self._recent
        if len(recent) >= _RECENT:
            del recent[next(iter(recent))]
        recent[id(array)] = (array, s)  # holding the array keeps its id from being reused meanwhile
        return s

    def module(self, event) -> EventRecord:
        """The record of a module call's start or end; tracks the depth."""
        if self._advance or self.phase is not FORWARD:
            self._enter(FORWARD)
        if event.enter:
            rec = _tuple_new(EventRecord, (event, self.iteration, FORWARD, self.depth, None, ()))
            self.depth += 1
        else:
            depth = self.depth = self.depth - 1 if self.depth > 0 else 0
            rec = _tuple_new(EventRecord, (event, self.iteration, FORWARD, depth, None, ()))
        self.last = rec
        return rec

    def optimizer(self, event, ends: bool = True) -> EventRecord:
        """The record of an optimizer step; it ends the iteration (unless iterations are marked, or not `ends`: a
        step that does not close the loop's body, as the debugger tells them apart)."""
        self.stepped = True
        self.updating = False
        self._enter(OPTIMIZER)
        # once a step: where it was called from, for a replay that stops there (a live stop finds it itself)
        source, stack = capture_source(1) if self.source else _NO_SOURCE
        rec = EventRecord(event, self.iteration, OPTIMIZER, 0, source, stack)
        self.depth = 0
        if ends and not self.marks:
            self._boundary()
        self.last = rec
        return rec

    def mark(self) -> EventRecord:
        """An explicit iteration boundary: the next event starts a new iteration."""
        self.marks = True
        self.updating = False
        rec = EventRecord(IterationEvent(next_seq(), self.iteration), self.iteration, self.phase, self.depth)
        self._boundary()
        return rec

    def pass_over(self, optimizer_known) -> bool:
        """A backward() pass is over. In a loop that updates its parameters by hand (no optimizer known or
        stepped, no marks), what follows is the update, and the next op run in grad mode or module call starts
        the next iteration; returns True then. `optimizer_known()`: whether an optimizer trains."""
        if self.marks or self.stepped or self.phase is not BACKWARD or optimizer_known():
            return False
        self.phase = OPTIMIZER
        self.updating = True
        return True

    def input_ids(self) -> set[int]:
        """The tensor ids the forward ops of this iteration took."""
        return {i for rec in self._forward.values() for i in rec.event.inputs}

    def forward_record(self, seq: int) -> OpRecord | None:
        """The forward record with event sequence number `seq`, if still kept."""
        return self._forward.get(seq) or self._forward_prev.get(seq)
