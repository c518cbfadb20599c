"""Parameter snapshots: when a run's parameters are snapshot (SnapshotPlan), what one holds (ParamSnapshot), and
the snapshots a live run that no tape records keeps in memory for a tape saved from it later (ParameterKeeper).

    plan = SnapshotPlan(debugger, every=10)
    due = plan.due(rec)          # at an optimizer step or a module call (the engine thread): what to snapshot now
    ends = plan.at_end()         # when the run's recording ends: each optimizer's last step not snapshot yet

The recorder (engine.tape.writer) queues what is due to its writer thread; a ParameterKeeper keeps copies of it,
within a byte budget, and hands them to a Recorder when the run is saved (Recorder.keep_snapshot).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.debug.param_names import updated_parameters
from engine.debug.records import EventRecord
from engine.debug.summary import TensorSummary, summarize
from engine.debug.tracer import host_copy
from engine.events import ModuleEvent, OptimizerEvent
from engine.optim.optimizer import stepping_optimizer

PARAMETER_EVERY = 10  # iterations between parameter snapshots at "summary"
KEPT_BYTES = 64 << 20  # the copies a ParameterKeeper holds at most, and the raw values it saves of a run's end


class ParamValue(NamedTuple):
    """One parameter in a snapshot: its summary made now, or the copy the writer summarises; its raw value."""

    name: str
    tensor: int
    summary: TensorSummary | None  # None: summarise `copy` (on the writer thread)
    copy: np.ndarray | None
    value: np.ndarray | None  # kept on the tape ("values" tier, small parameters; a saved run's end)


class ParamSnapshot(NamedTuple):
    """Parameters as an optimizer step left them (after_step), or as the first recorded forward found them."""

    seq: int  # the optimizer step's event, or the module call before which they were taken
    iteration: int
    after_step: bool
    params: tuple[ParamValue, ...]
    nbytes: int  # of the arrays it holds, counted against the recorder's value_bytes while queued


class Due(NamedTuple):
    """A snapshot to take now: at event `seq` of `iteration`, of (name, Tensor) pairs."""

    seq: int
    iteration: int
    after_step: bool
    named: list[tuple]


def param_value(name: str, p, summary_limit: int, keep_value: bool, copy: bool = True) -> ParamValue:
    """Parameter `p` as a snapshot holds it: on the CPU a copy (an optimizer changes it in place) for the writer to
    summarise, where `copy` allows; else (a GPU's) its summary now. `keep_value`: its raw value too."""
    data = p.array
    cpu = data.__class__ is np.ndarray
    if cpu and copy:
        kept = data.copy()
        return ParamValue(name, p.id, None, kept, kept if keep_value else None)
    return ParamValue(name, p.id, summarize(data, summary_limit, "cpu" if cpu else None), None,
                      host_copy(data) if keep_value else None)


def held_bytes(params) -> int:
    """The bytes of the arrays ParamValues hold (a raw value kept on the CPU is the copy itself)."""
    return sum(held.nbytes for p in params if (held := p.copy if p.copy is not None else p.value) is not None)


class SnapshotPlan:
    """When a run's parameters are snapshot, and which: after the optimizer step of every `every`-th iteration (the
    parameters it updated), after each optimizer's last step when the run's recording ends, and once as the first
    forward finds them (before any step). Fed the boundary records of the engine thread, in order."""

    def __init__(self, debugger, every: int) -> None:
        self.debugger = debugger  # its model and optimizer name the parameters (discovered as the run goes)
        self.every = every
        self._initial = True  # one before the first forward, until a step or a snapshot is taken
        # id(optimizer) -> (its latest step, the optimizer): each optimizer's (two models trained side by side)
        # are snapshot when recording ends, where that step's were not
        self._last: dict[int, tuple[EventRecord, object]] = {}
        self._unsnapped: set[int] = set()

    def due(self, rec: EventRecord) -> Due | None:
        """The snapshot due at the optimizer step or module call `rec` (on the engine thread), or None."""
        ev = rec.event
        cls = ev.__class__
        if cls is OptimizerEvent:
            self._initial = False
            opt = stepping_optimizer() or self.debugger.optimizer
            self._last[id(opt)] = (rec, opt)
            if rec.iteration % self.every:
                self._unsnapped.add(id(opt))  # snapshot when recording ends, if it stays its last step
                return None
            self._unsnapped.discard(id(opt))
            # the step's names are final: the debugger named another optimizer's parameters apart
            # ("Adam#2:Discriminator.fc.weight", engine.debug.param_names)
            if opt is not None and type(opt).__name__ == ev.optimizer:
                return Due(ev.seq, rec.iteration, True, _step_parameters(ev, opt))
            return None
        if cls is ModuleEvent and self._initial and ev.enter:
            named = self.trained_parameters()
            if named:
                self._initial = False
                return Due(ev.seq, rec.iteration, False, named)
        return None

    def at_end(self, every_optimizer: bool = False) -> list[Due]:
        """The snapshots due as recording ends, after each optimizer's last step not snapshot yet (`every_optimizer`:
        snapshot or not): what it left, by the names that step gave; while the engine thread is stopped, or on it."""
        last_steps = [pair for key, pair in self._last.items() if every_optimizer or key in self._unsnapped]
        ends = []
        for last, opt in sorted(last_steps, key=lambda pair: pair[0].seq):
            named = self.trained_parameters(opt)
            names = list(last.event.weight_norms)
            if len(names) == len(named):  # every parameter stepped (the usual case): that step's names
                named = [(name, p) for name, (_, p) in zip(names, named)]
            if named:
                ends.append(Due(last.seq, last.iteration, True, named))
        return ends

    @property
    def stepped(self) -> bool:
        """Whether an optimizer step has been seen."""
        return bool(self._last)

    def trained_parameters(self, opt=None) -> list[tuple]:
        """(name, Tensor) of what `opt` (by default the debugger's optimizer) trains, else the model's parameters
        that need gradients, named as the model names them; [] while the debugger knows neither."""
        model, opt = self.debugger.model, opt or self.debugger.optimizer
        by_id = {id(p): name for name, p in model.named_parameters()} if model is not None else {}
        if opt is not None:
            return [(by_id.get(id(p)) or opt._param_name(g, i, group, p), p)
                    for g, group in enumerate(opt.param_groups) for i, p in enumerate(group["params"])]
        if model is not None:
            return [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        return []


def _step_parameters(ev: OptimizerEvent, opt) -> list[tuple]:
    """(name, Tensor) of the parameters a step of `opt` updated, by the names its event gives them (the model's,
    or qualified by optimizer for another optimizer's), in the order it updated them; without norms in the
    event, the optimizer's own names."""
    updated = updated_parameters(opt)
    names = list(ev.weight_norms)
    if len(names) != len(updated):
        names = [opt._param_name(g, i, group, p) for g, i, group, p in updated]
    return list(zip(names, (p for *_, p in updated)))


class KeptParameters(NamedTuple):
    """What a ParameterKeeper would save of a run's parameters now."""

    keeping: bool  # False: it keeps none (a structure capture, or a tape records the run)
    snapshots: int  # kept so far, before the run's end
    every: int  # iterations between the steps whose snapshots are kept
    end: bool  # an optimizer stepped: the parameters as its last step left them are saved, with their values
    all_values: bool  # those values all fit in max_bytes (else the later parameters' statistics only)
    earlier: bool  # False: the parameters are too big to keep snapshots before the end


class ParameterKeeper:
    """The parameter snapshots of a live run that no tape records, kept for a tape saved from it later: taken as a
    recording takes them (SnapshotPlan), as copies of at most `max_bytes` in all. Past that, the snapshots of every
    other step go and the rest are taken twice as far apart, so that they still span the whole run.

    on_record is a Debugger's on_record callable (the engine thread); the rest runs once the run has stopped."""

    def __init__(self, debugger, capture: str, max_bytes: int = KEPT_BYTES) -> None:
        self.plan = SnapshotPlan(debugger, 1 if capture == "values" else PARAMETER_EVERY)
        self.active = capture != "structure"  # a structure recording holds none either
        self.max_bytes = max_bytes
        self.snapshots: list[ParamSnapshot] = []
        self.nbytes = 0  # of the copies held
        self.param_bytes = 0  # of the parameters at the latest snapshot: what saving their values would take
        self._ends: list[ParamSnapshot] | None = None  # the run's end, once taken

    @property
    def every(self) -> int:
        """Iterations between the optimizer steps whose parameters are kept (doubled as the budget fills)."""
        return self.plan.every

    def held(self) -> KeptParameters:
        """What would be saved of the parameters now (read from any thread)."""
        return KeptParameters(self.active, len(self.snapshots), self.plan.every, self.plan.stepped,
                              self.param_bytes <= self.max_bytes, self.param_bytes <= self.max_bytes // 4)

    def stop(self) -> None:
        """Keep no more (a tape records the run from now on) and let go of what is kept."""
        self.active = False
        self.snapshots, self.nbytes = [], 0

    def on_record(self, rec) -> None:
        """Keep the parameters where the plan says a snapshot is due (on the engine thread)."""
        if rec.__class__ is EventRecord and self.active:
            due = self.plan.due(rec)
            if due is not None:
                self._keep(due)

    def _keep(self, due: Due) -> None:
        tracer = self.plan.debugger.tracer
        small = tracer.values_limit  # -1 below the "values" tier
        size = sum(p.array.nbytes for _, p in named_once(due.named))
        self.param_bytes = size
        if size > self.max_bytes // 4:  # too big to keep a few: only the end's, when the run is saved
            return
        params = tuple(param_value(name, p, tracer.summary_limit, p.array.size <= small)
                       for name, p in named_once(due.named))
        n = held_bytes(params)
        self.snapshots.append(ParamSnapshot(due.seq, due.iteration, due.after_step, params, n))
        self.nbytes += n
        while self.nbytes > self.max_bytes and any(s.after_step and s.iteration for s in self.snapshots):
            self._thin()
        if self.nbytes > self.max_bytes:  # what thinning keeps (many optimizers' first steps) is full: not this one
            self.nbytes -= self.snapshots.pop().nbytes

    def _thin(self) -> None:
        """Take steps' snapshots twice as far apart, dropping those in between (the first forward's stays)."""
        every = self.plan.every = self.plan.every * 2
        kept = [s for s in self.snapshots if not s.after_step or s.iteration % every == 0]
        self.snapshots, self.nbytes = kept, sum(s.nbytes for s in kept)

    def finish(self) -> list[ParamSnapshot]:
        """The snapshots kept, and the parameters as the run left them (after each optimizer's last step) with their
        raw values, up to `max_bytes` of them; only once the run has stopped (it reads the engine's parameters)."""
        if self._ends is None:
            limit = self.plan.debugger.tracer.summary_limit
            self._ends = []
            for due in self.plan.at_end(every_optimizer=True) if self.active else ():
                params, room = [], self.max_bytes
                for name, p in named_once(due.named):
                    fits = p.array.nbytes <= room
                    room -= p.array.nbytes if fits else 0
                    params.append(param_value(name, p, limit, fits))
                self._ends.append(ParamSnapshot(due.seq, due.iteration, True, tuple(params), held_bytes(params)))
        ends = {snap.seq for snap in self._ends}  # a step kept already: its snapshot with values replaces it
        return [snap for snap in self.snapshots if snap.seq not in ends] + self._ends


def named_once(named: list[tuple]) -> list[tuple]:
    """(name, Tensor) pairs without a name given twice (by hand-made param_names): its first."""
    seen = set()
    return [(name, p) for name, p in named if not (name in seen or seen.add(name))]
