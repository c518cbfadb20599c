"""Debugger: stops the engine thread at ops, backward nodes and optimizer steps; steps; edits.

Model: user code runs on an engine thread (the one that attached the debugger, or one started by
run_callable/run_script), and only that thread is traced: ops, optimizer steps and mark_iteration() of
other threads (a data loader's, a second model's) neither enter its records nor move its iteration or
phase. Every event reaches the debugger on that thread, right after the op ran. Where a breakpoint, a step,
a pause or an alert says so, the thread stops there: it waits for a command from any other thread
(or from an on_stop callback), applying queued edits meanwhile; where nothing can send one (a script's own
thread: engine.debug.unattended) it opens pdb on a terminal, or says so on stderr, and goes on. Commands and
edits are plain dataclasses, queued in order; a control command is consumed at one stop (or boundary), so a
burst of N step commands gives exactly N steps.

    dbg = Debugger(capture="summary", model=model, optimizer=opt)
    dbg.add_breakpoint(Breakpoint.op("log"))
    run = dbg.run_callable(train)            # or attach() and run on this thread
    stop = dbg.wait_for_stop(timeout=5)      # Stop(reason, record, iteration, phase, ...)
    dbg.step_over(); dbg.resume(); dbg.pause(); dbg.fetch(stop.record.event.output)

Pause takes effect at the next op boundary. Code that never touches the engine (a pure-Python loop)
only pauses when run_callable(..., python_pause=True) traced its thread (a line-level check, slower);
EngineRun.interrupt() stops it either way (PyThreadState_SetAsyncExc).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

from engine.autograd.inplace import FreedGraphError, InplaceModifiedError, Site
from engine.debug import unattended
from engine.debug.alert_text import make_alert
from engine.debug.alerts import AlertSettings, Monitor
from engine.debug.breakpoints import Breakpoint, BreakpointInfo, BreakpointTable
from engine.debug.cache import DEFAULT_BYTES, ValueCache, ValueUnavailable
from engine.debug.edit_blame import EditBlame
from engine.debug.edits import EDITS, EditRejected, describe, prepare
from engine.debug.pacing import Pacing
from engine.debug.param_names import ParamNamer, StepLabels
from engine.debug.records import ACTIONS, OPTIMIZER, Command, DebuggerState, EventRecord, Stop
from engine.debug.runner import DebuggerKilled, EngineRun, run_path
from engine.debug.script_names import positional, script_names
from engine.debug.source import USER, frame_kind, frame_of
from engine.debug.source import capture as capture_source
from engine.debug.stepping import step_end, step_mode
from engine.debug.summary import SUMMARY_LIMIT
from engine.debug.tracer import Tracer, host_copy
from engine.events import (
    AlertEvent,
    EditEvent,
    ModuleEvent,
    OpEvent,
    OptimizerEvent,
    hub,
    next_seq,
    renamed,
)
from engine.nn.module import forget_root_names, outermost, root_name, running_modules
from engine.optim.optimizer import optimizer_clock, optimizer_of, stepping_optimizer, training_optimizer

_attached: list[Debugger] = []  # in attach order; breakpoint() and mark_iteration() reach them here
_registry = threading.Lock()
get_ident = threading.get_ident


_reported: dict[tuple, None] = {}  # alerts some attached debugger already gave the hub, oldest first
_REPORTED = 256


def _first_report(origin: int, alert: AlertEvent) -> bool:
    """False when another debugger already published this alert about the same engine event.

    Two debuggers watching one run (the recorder's and a script's own watch()) see the same op, and
    each makes its alert: the hub, and so a tape, gets one. Alerts of no engine event (origin 0, an
    iteration mark's) are always published."""
    if not origin:
        return True
    key = (origin, alert.kind, alert.key)
    if key in _reported:
        return False
    _reported[key] = None
    if len(_reported) > _REPORTED:
        del _reported[next(iter(_reported))]
    return True


def _steppable(rec) -> bool:
    return rec.__class__ is not EventRecord or rec.phase is OPTIMIZER


class Debugger:
    """The headless debugger core; see the module docstring. Thread-safe; callbacks run on the engine thread.

    capture: "structure" (ids, keys, shapes, dtypes, source lines), "summary" (plus a TensorSummary of
    every op output and gradient) or "values" (plus host copies of tensors of at most `values_limit`
    elements). alerts: AlertSettings, or None for the tier's default (on unless "structure").
    discover: where no model or optimizer is given, take the first root module called, and the newest
    optimizer of its parameters made by then (else the first optimizer that steps); their parameter names
    then name optimizer steps and gradient alerts, and edits reach them. on_stop(stop), on_alert(alert),
    on_record(record): callables or lists of them.
    """

    def __init__(self, capture: str = "summary", *, model=None, optimizer=None,
                 alerts: AlertSettings | None = None, stop_on_alert: bool = False,
                 cache_bytes: int = DEFAULT_BYTES, summary_limit: int = SUMMARY_LIMIT,
                 values_limit: int = 4096,
                 source: bool = True, history: int = 1024, interactive: bool = True,
                 discover: bool = False, on_stop=None, on_alert=None, on_record=None) -> None:
        self.model = model
        self.optimizer = optimizer
        self.discover = discover
        self._tentative = False  # the model discovered had no optimizer: a later root call's may have one
        self.cache = ValueCache(cache_bytes) if cache_bytes else None
        self.tracer = Tracer(capture, self.cache, summary_limit=summary_limit, values_limit=values_limit,
                             source=source)
        self.breakpoints = BreakpointTable()
        if alerts is None and capture != "structure":
            alerts = AlertSettings()
        self.monitor = Monitor(alerts, self._named_parameters, self._named_tensors) if alerts is not None else None
        if self.monitor is not None:
            self.tracer.new_iteration.append(self.monitor.new_iteration)
            self.tracer.loss_summaries = True
        self.stop_on_alert = stop_on_alert
        self.interactive = interactive
        self.on_stop: list[Callable] = _listify(on_stop)
        self.on_alert: list[Callable] = _listify(on_alert)
        self.on_record: list[Callable] = _listify(on_record)
        self.history: deque = deque(maxlen=history)  # the latest records
        self.stops: deque[Stop] = deque(maxlen=1000)  # the latest stops (a script's without a controller too)
        self.alerts: deque[AlertEvent] = deque(maxlen=1000)
        self.edits: deque[EditEvent] = deque(maxlen=1000)
        self._blame = EditBlame()  # alerts soon after an edit name it
        self._cv = threading.Condition()
        self._commands: deque = deque()
        self._pause = False
        self._mode = None  # (kind, depth, phase, iteration) of the step in progress
        self._alert_stop = None
        self._armed = False  # anything that may stop or needs the engine thread: the slow path
        self._attached = False
        self._status = "detached"
        self._stop: Stop | None = None
        self._last_stop: Stop | None = None
        self._stops = 0
        self._controlled = False  # another thread than the engine's waited for a stop or sent a command
        self._waiting = 0  # threads in wait_for_stop now
        self._unused: weakref.finalize | None = None  # warns of breakpoints on a debugger never attached
        self._ever_attached = False
        self._busy = False  # applying an edit: ops it runs are not traced
        self._undo: list[Callable] = []
        self._run: EngineRun | None = None
        self._engine_thread: int | None = None
        # id(optimizer) -> ((model, its parameters), {optimizer's name: model's name})
        self._model_names: dict[int, tuple] = {}
        # id(optimizer) -> (its parameters' ids, {"group0.1": "Wh"}): without a model, the script's own names
        self._script_names: dict[int, tuple] = {}
        self._step_labels = StepLabels()  # "SGD", "Adam#2": each optimizer that steps, in the order they first do
        self._namer: ParamNamer | None = None  # made when another optimizer than the debugger's steps
        self._replacing: dict[int, tuple] = {}  # id(optimizer) -> (it, main optimizer, whether it replaces that)
        self._pacing = Pacing()  # which optimizer steps end iterations when several train
        self.passes = 0  # backward() passes the traced thread ran while attached

    # ---- attaching --------------------------------------------------------------------------
    def attach(self) -> Debugger:
        """Start receiving engine events of the calling thread (idempotent); returns self."""
        with _registry:
            if self._attached:
                return self
            if self._run is None or self._run.done.is_set():  # else the run's thread stays the one traced
                self._engine_thread = get_ident()
            self._ever_attached = True
            if self._unused is not None:
                self._unused.detach()
            # ops and backward nodes arrive with their tensors, through _on_tensors only
            self._undo = [hub.subscribe(self._on_event, ops=False), hub.listen_tensors(self._on_tensors),
                          hub.listen_passes(self._on_pass_over)]
            # the gradient-flow views need optimizer norms, and so do the alerts on update sizes (a learning rate far
            # too high), at any tier: watch() checks at "structure"
            if self.tracer.capture != "structure" or self.monitor is not None:
                self._undo.append(hub.request_optimizer_norms())
            checks = self.monitor.custom_backwards if self.monitor is not None else None
            if checks is not None and self.tracer.capture != "structure":  # each custom Function's backward, once
                self._undo.append(checks.watch(self._traced))
            if not _attached:  # a session starts: its models are named in the order it calls them
                forget_root_names()
            self._clock = optimizer_clock()  # optimizers made from now on are this session's
            _attached.append(self)
            with self._cv:
                self._attached = True
                self._status = "running"
        return self

    def detach(self) -> None:
        """Stop receiving events; a stopped engine thread resumes and runs on untraced."""
        with _registry:
            for undo in self._undo:
                undo()
            self._undo = []
            if self in _attached:
                _attached.remove(self)
            with self._cv:
                self._attached = False
                self._status = "detached"
                self._cv.notify_all()

    def __enter__(self) -> Debugger:
        return self.attach()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:  # an in-place modification error, raised in the block, names the op's line too
            self.explain_failure(exc)
        self.detach()

    # ---- breakpoints ------------------------------------------------------------------------
    def add_breakpoint(self, spec: Breakpoint) -> int:
        """Add a breakpoint; returns its id."""
        if not isinstance(spec, Breakpoint):
            raise TypeError(f"add_breakpoint takes a Breakpoint (e.g. Breakpoint.op({spec!r:.40})), "
                            f"got {type(spec).__name__}")
        bid = self.breakpoints.add(spec)
        self._rearm()
        # a script forgot `with dbg:` (a debugger that never stops, interactive=False, only lists its breakpoints)
        if self.interactive and not self._ever_attached and self._unused is None and not self.on_stop:
            self._unused = weakref.finalize(self, unattended.never_attached, self.breakpoints, capture_source(1)[0])
        return bid

    def add_predicate(self, fn: Callable, name: str | None = None) -> int:
        """Stop where `fn(record)` is true (called on the engine thread at every op, node and step)."""
        if not callable(fn):
            raise TypeError(f"add_predicate takes a function of a record, got {type(fn).__name__}")
        name = name or getattr(fn, "__name__", "predicate")
        self.breakpoints.predicates[name] = fn
        return self.add_breakpoint(Breakpoint.predicate(name))

    def remove_breakpoint(self, bid: int) -> None:
        """Remove a breakpoint by id."""
        self.breakpoints.remove(bid)
        self._rearm()

    def enable_breakpoint(self, bid: int, enabled: bool = True) -> None:
        """Enable (or disable) a breakpoint by id."""
        self.breakpoints.enable(bid, enabled)
        self._rearm()

    def list_breakpoints(self) -> tuple[BreakpointInfo, ...]:
        """Every breakpoint with its id, spec, enabled flag and hit count."""
        return self.breakpoints.list()

    # ---- commands (any thread) --------------------------------------------------------------
    def send(self, item) -> Future | None:
        """Queue a Command or an edit; an edit returns a Future of its EditEvent (applied or rejected)."""
        future = None
        if isinstance(item, Command):
            if item.action not in ACTIONS:
                raise ValueError(f"unknown command {item.action!r}; expected one of {', '.join(ACTIONS)}")
            self._controlled = self._controlled or self._foreign()
            if item.action == "pause":  # asynchronous: a flag read at the next boundary, never queued
                with self._cv:
                    self._pause = True
                    self._armed = True
                self._poke_python()
                return None
            entry = item
        elif isinstance(item, EDITS):
            future = Future()
            entry = (item, future)
        else:
            raise TypeError(f"send() takes a Command or an edit ({', '.join(c.__name__ for c in EDITS)}), "
                            f"got {type(item).__name__}")
        with self._cv:
            self._commands.append(entry)
            self._armed = True
            self._cv.notify_all()
        return future

    def step_into(self) -> None:
        """Run to the next forward op, backward node or optimizer step."""
        self.send(Command("step_into"))

    def step_over(self) -> None:
        """Run to the next op in this module call or its caller, skipping nested module calls."""
        self.send(Command("step_over"))

    def step_out(self) -> None:
        """Run until the current module call has returned; at top level, to the end of the iteration (its optimizer
        step). At the optimizer step, where nothing is left to step out of, the engine stops again where it is."""
        self.send(Command("step_out"))

    def run_to_phase(self) -> None:
        """Run to the first event of the next phase (forward -> backward -> optimizer)."""
        self.send(Command("run_to_phase"))

    def run_to_next_iteration(self) -> None:
        """Run to the first event of the next iteration."""
        self.send(Command("run_to_next_iteration"))

    def resume(self) -> None:
        """Continue until a breakpoint, an alert stop or a pause."""
        self.send(Command("resume"))

    def pause(self) -> None:
        """Stop at the next op boundary (asynchronous; returns at once)."""
        self.send(Command("pause"))

    def edit(self, edit) -> Future:
        """Queue an edit for the engine thread's next safe point; a Future of its EditEvent."""
        return self.send(edit)

    def apply_edits(self) -> None:
        """Apply queued edits on the calling thread now (the engine thread between runs, or when idle)."""
        while True:
            with self._cv:
                if not self._commands or isinstance(self._commands[0], Command):
                    return
                entry = self._commands.popleft()
            self._apply(entry)

    # ---- inspection (any thread) ------------------------------------------------------------
    @property
    def state(self) -> DebuggerState:
        """Status (detached / running / paused), iteration, phase, the stop and the last record."""
        t = self.tracer
        with self._cv:
            return DebuggerState(self._status, t.iteration, t.phase, self._stop or self._last_stop, t.last)

    def wait_for_stop(self, timeout: float | None = None, after: int = 0) -> Stop | None:
        """Block until the engine thread is stopped at a stop numbered above `after`; None on timeout
        or when the engine run ended."""
        with self._cv:
            self._controlled = self._controlled or self._foreign()
            self._waiting += 1
            try:
                ok = self._cv.wait_for(lambda: (self._stop is not None and self._stop.index > after)
                                       or (self._run is not None and self._run.done.is_set()), timeout)
            finally:
                self._waiting -= 1
            return self._stop if ok and self._stop is not None and self._stop.index > after else None

    def fetch(self, tensor_id: int):
        """The full value of an op output or gradient by id, as a numpy array (copied from a GPU now)."""
        if self.cache is None:
            raise ValueUnavailable("the value cache is off (Debugger(cache_bytes=0))")
        return self.cache.fetch(tensor_id)

    def parameter(self, tensor_id: int, grad: bool = False):
        """The current value (`grad`: the current .grad, None when it has none) of the model's or the
        optimizer's parameter (or the model's buffer) with tensor id `tensor_id`, as a numpy array.

        Read while the engine thread is stopped: an optimizer step changes parameters in place."""
        groups = self.optimizer.param_groups if self.optimizer is not None else ()
        found = itertools.chain((p for _name, p in self._named_tensors()), (p for g in groups for p in g["params"]))
        for p in found:
            if p._id == tensor_id:  # not p.id: that would number a parameter no event ever named
                t = p.grad if grad else p
                return None if t is None else host_copy(t.array)
        raise ValueUnavailable(f"tensor {tensor_id} is no parameter or buffer of the model or optimizer the debugger "
                               f"knows (pass Debugger(model=...) to name it)")

    # ---- running code on an engine thread ------------------------------------------------------
    def run_callable(self, fn: Callable, *args, python_pause: bool = False, **kwargs) -> EngineRun:
        """Run fn(*args, **kwargs) on a new engine thread, attached meanwhile; returns its EngineRun handle.

        python_pause: also let pause() land in plain Python code (traces the thread; slower)."""
        if self._run is not None and not self._run.done.is_set():
            raise RuntimeError("this debugger is already running code on an engine thread")
        attached_here = not self._attached
        self.attach()
        run = self._run = EngineRun(self, fn, args, kwargs, python_pause, attached_here)
        self._engine_thread = None  # the new thread may emit before its id is known below
        run.start()
        # from now on only the engine thread is traced: ops another thread runs meanwhile (a GUI
        # checking shapes, a preview) are not part of the session and must never block there
        self._engine_thread = run.thread.ident
        return run

    def run_script(self, path: str, argv: tuple[str, ...] = (), python_pause: bool = False) -> EngineRun:
        """Run a script as `python path *argv` would, on a new engine thread."""
        if not os.path.isfile(path):  # here, naming it: runpy's own error in the engine thread names no file
            raise FileNotFoundError(f"run_script: no such script: {os.fspath(path)}"
                                    + (" (it is a folder)" if os.path.isdir(path) else ""))
        return self.run_callable(run_path, os.path.abspath(path), tuple(argv), python_pause=python_pause)

    # ---- the engine thread -------------------------------------------------------------------
    def _on_event(self, event) -> None:
        if self._busy:
            return
        cls = event.__class__
        engine_thread = self._engine_thread
        if engine_thread is not None and get_ident() != engine_thread:
            return  # see _foreign
        if cls is ModuleEvent:
            if self.discover and (self.model is None or self._tentative) and event.enter:
                self._discover()
            if self._namer is not None and event.params:
                self._namer.module_called(event.path, event.params)
            if event.enter and self.tracer.updating:  # a loop updating by hand starts its next forward: numbered afresh
                hub.reset_top_level()
            rec = self.tracer.module(event)
            alert = self.monitor.module(rec) if self.monitor is not None else None
            alerts = (alert,) if alert is not None else ()
        elif cls is OptimizerEvent:
            opt = stepping_optimizer()
            if opt is not None and opt is not self.optimizer and (
                    (self.discover and self.optimizer is None) or self._replaces(opt)):
                self.optimizer = opt
                self._tentative = False
            rec = self.tracer.optimizer(self._named_by_model(event, opt or self.optimizer), self._ends_iteration(opt))
            self._blame.stepped(event.lrs, id(opt) if opt is not None else 0)
            alerts = self.monitor.step(rec) if self.monitor is not None else ()
        else:
            return
        self._publish(rec)
        for a in alerts:
            self._alert(a, event.seq)
        if self._armed:
            self._service(rec)

    def _discover(self) -> None:
        """Take the model of a root module call (the module, or the one that holds it) and the optimizer that
        trains it, made before the first forward as a training loop does. A model no optimizer trains is kept
        until a root call of one that an optimizer does: a parametrization computed while a layer is built (a
        spectral norm's) was taken for the model, and its optimizer for the debugger's."""
        calls = running_modules()
        if len(calls) != 1:
            return
        model = outermost(calls[0][0])
        if self.optimizer is not None and not self._tentative:  # given
            self.model = model
            return
        opt = optimizer_of(model.parameters())
        if self.model is None or opt is not None:
            self.model, self.optimizer, self._tentative = model, opt, opt is None

    def _traced(self) -> bool:
        """True on the traced thread, outside an edit: what the debugger sees there is the person's run."""
        return not self._busy and not self._foreign()

    def _foreign(self) -> bool:
        """True on a thread other than the traced one: the thread that attached, or run_callable's."""
        return self._engine_thread is not None and threading.get_ident() != self._engine_thread

    def _on_tensors(self, event, inputs, output) -> None:
        if self._busy:
            return
        engine_thread = self._engine_thread
        if engine_thread is not None and get_ident() != engine_thread:
            return  # see _foreign
        monitor = self.monitor
        if event.__class__ is OpEvent:
            rec = self.tracer.op(event, inputs, output)
            alert = monitor.op(rec, inputs, output) if monitor is not None else None
        else:
            rec = self.tracer.backward(event, inputs, output)
            alert = monitor.backward(rec, inputs, output) if monitor is not None else None
        self.history.append(rec)  # _publish, inline: this runs for every op and backward node
        for fn in self.on_record:
            fn(rec)
        if alert is not None:
            self._alert(alert, event.seq)
        if self._armed:
            self._service(rec)

    def _on_pass_over(self) -> None:
        if self._busy or self._foreign():
            return
        self.passes += 1
        if self.tracer.pass_over(self._optimizer_trains):
            hub.reset_top_level()  # as a step does: the next iteration's top-level ops are numbered as this one's

    def _optimizer_trains(self) -> bool:
        """Whether an optimizer trains what the iteration runs (else a loop that updates by hand)."""
        return self.optimizer is not None or training_optimizer(self._clock, self.tracer.input_ids())

    def _publish(self, rec) -> None:
        self.history.append(rec)
        for fn in self.on_record:
            fn(rec)

    def _alert(self, alert: AlertEvent, origin: int = 0) -> None:
        """Keep, publish and react to `alert`; `origin`: the seq of the engine event that raised it."""
        alert = self._blame.explain(alert)
        self.alerts.append(alert)
        if self.stop_on_alert:
            with self._cv:
                self._alert_stop = alert
                self._armed = True
        if _first_report(origin, alert):
            hub.emit(alert)
        for fn in self.on_alert:
            fn(alert)  # may raise (watch(on_nonfinite="raise")): the error surfaces from the op itself

    def _mark(self) -> None:
        rec = self.tracer.mark()
        self._publish(rec)
        for a in self.monitor.step(rec) if self.monitor is not None else ():
            self._alert(a)

    def _service(self, rec) -> None:
        """The slow path at a boundary: stop if asked to, else take queued edits and one command."""
        while True:
            why = self._stop_reason(rec)
            if why is not None:
                self._wait(rec, *why)
                break
            with self._cv:
                entry = self._commands.popleft() if self._commands else None
            if entry is None:
                break
            if entry.__class__ is not Command:
                self._apply(entry)
                continue
            if entry.action == "kill":
                raise DebuggerKilled("killed by the debugger")
            goes, self._mode = self._mode_for(entry.action, rec)
            if not goes:
                self._wait(rec, "step")
            break
        self._rearm()

    def _stop_reason(self, rec) -> tuple | None:
        if self._alert_stop is not None:
            alert, self._alert_stop = self._alert_stop, None
            return "alert", 0, alert
        if self.breakpoints.enabled:
            bid = self.breakpoints.match(rec)
            if bid:
                return "breakpoint", bid, None
        hit = False
        if self._mode is not None:  # first, as a step out watches module boundaries
            hit, self._mode = step_end(self._mode, rec)
        if self._pause and _steppable(rec):
            return "pause", 0, None
        return ("step", 0, None) if hit else None

    def _mode_for(self, action: str, rec) -> tuple[bool, tuple | None]:
        t = self.tracer
        depth = rec.depth if rec is not None else t.depth
        phase = rec.phase if rec is not None else t.phase
        iteration = rec.iteration if rec is not None else t.iteration
        return step_mode(action, depth, phase, iteration)

    def _wait(self, rec, reason: str, bid: int = 0, alert=None, source=None) -> None:
        """Stop here: tell the callbacks, then apply edits until a control command resumes us."""
        t = self.tracer
        self._unpoke()
        if source is None:
            source = getattr(rec, "source", None)
            if source is None and rec.__class__ is EventRecord:
                # a module boundary or an optimizer step carries no source: the user's line running it now
                # (`self.fc2(h)`, `optimizer.step()`), found once per stop
                source = capture_source(1)[0]
        stop = Stop(0, reason, rec, rec.iteration if rec is not None else t.iteration,
                    rec.phase if rec is not None else t.phase, bid, alert, source)
        try:
            self._announce(stop)
            if not self._attended():
                unattended.stopped(stop, self._spec(bid))
                return
            while True:
                with self._cv:
                    while not self._commands and self._attached:
                        self._cv.wait(0.25)  # a timeout, so an asynchronous exception can land
                    if not self._attached:
                        return
                    entry = self._commands.popleft()
                if entry.__class__ is not Command:
                    self._apply(entry)
                elif entry.action == "kill":
                    raise DebuggerKilled("killed by the debugger")
                elif entry.action != "pause":
                    goes, self._mode = self._mode_for(entry.action, rec)
                    if not goes:  # stop here again
                        self._announce(replace(stop, reason="step", breakpoint=0, alert=None))
                        continue
                    return
        finally:
            with self._cv:
                self._stop = None
                self._status = "running" if self._attached else "detached"
                self._rearm_locked()
                self._cv.notify_all()

    def _attended(self) -> bool:
        """Whether anything can resume a stop: an on_stop callback, the caller of run_callable, a thread that
        waited for a stop or sent a command, or a command queued already (else see engine.debug.unattended)."""
        run = self._run
        return bool(self.on_stop or self._commands or self._controlled or self._waiting
                    or (run is not None and not run.done.is_set()))

    def _spec(self, bid: int) -> Breakpoint | None:
        return next((b.spec for b in self.breakpoints.list() if b.id == bid), None)

    def _announce(self, stop: Stop) -> None:
        """Make `stop` (numbered here) the current one and tell whoever waits for it."""
        with self._cv:
            self._stops += 1
            stop = replace(stop, index=self._stops)
            self._stop = self._last_stop = stop
            self.stops.append(stop)
            self._pause = False
            self._mode = None
            self._status = "paused"
            self._cv.notify_all()
        for fn in self.on_stop:
            fn(stop)

    def _apply(self, entry) -> None:
        edit, future = entry
        self._busy = True
        try:
            message, applied = prepare(edit, self.model, self.optimizer)(), True
        except EditRejected as err:
            message, applied = str(err), False
        except (TypeError, ValueError, RuntimeError, AttributeError, IndexError) as err:
            message, applied = f"{type(edit).__name__} failed: {err}", False
        finally:
            self._busy = False
        kind, target, args = describe(edit)
        event = EditEvent(next_seq(), kind, target, args, applied, message, self.tracer.iteration_ahead)
        self.edits.append(event)
        self._blame.edited(event, root_name(self.model) if self.model is not None and kind != "optimizer" else "")
        hub.emit(event)
        future.set_result(event)

    def _rearm(self) -> None:
        with self._cv:
            self._rearm_locked()

    def set_capture(self, capture: str) -> None:
        """Change the capture tier ("structure", "summary", "values") of the records made from the next op on."""
        with self._cv:
            self.tracer.set_capture(capture)
            self._rearm_locked()  # value breakpoints keep summaries on, whatever the tier

    def _rearm_locked(self) -> None:
        self._armed = bool(self._commands or self._pause or self._mode is not None or self.breakpoints.enabled
                           or self._alert_stop is not None)
        self.tracer.summaries = self.tracer.capture != "structure" or self.breakpoints.conditions > 0

    def explain_failure(self, err: BaseException) -> AlertEvent | None:
        """What the records say about `err`, the error that ended the user's code: an in-place modification
        error gets the line of the op that saved the tensor (its message then names it, and the write's line)
        and becomes an alert placed at the write; a backward through a freed graph gets the op and iteration that
        made it, and an alert there; other errors, and one explained before, give None."""
        if not isinstance(err, InplaceModifiedError | FreedGraphError) or getattr(err, "explained", False):
            return None
        err.explained = True
        rec = self.tracer.forward_record(err.forward_seq) if err.forward_seq else None
        if isinstance(err, FreedGraphError):
            return self._freed_graph(err, rec)
        if rec is not None and err.op_site is None:
            err.op_site = Site(rec.source, rec.event.module)
        write = err.write_site.frame if err.write_site is not None else None
        src = write or (rec.source if rec is not None else None)
        ev = rec.event if rec is not None else None
        alert = AlertEvent(next_seq(), "inplace", str(err).split(": ", 1)[1], err.op, ev.key if ev else err.node,
                           ev.module if ev else "", err.forward_seq, rec.iteration if rec else self.tracer.iteration,
                           src.file if src else "", src.line if src else 0, src.text if src else "", float(err.version))
        self._alert(alert)
        return alert

    def _freed_graph(self, err: FreedGraphError, rec) -> AlertEvent | None:
        """A backward through a freed graph: an alert at the op whose graph it was, with its iteration."""
        if rec is None:  # an op of an iteration before the last: the records are gone, the message stays general
            return None
        err.op_site, err.iteration = Site(rec.source, rec.event.module), rec.iteration
        alert = make_alert("graph_freed", str(err), rec)
        self._alert(alert)
        return alert

    def _run_ended(self, run: EngineRun) -> None:
        """The engine thread's code returned or raised: forget steps it never reached, wake waiters."""
        if run.exception is not None:
            self.explain_failure(run.exception)
        with self._cv:
            self._mode = None
            self._pause = False
            self._rearm_locked()
        if run.detach_after:
            self.detach()
        run.done.set()
        with self._cv:
            self._cv.notify_all()

    def _named_by_model(self, event: OptimizerEvent, opt) -> OptimizerEvent:
        """The event with its parameters named as the model names them ("fc1.weight"): an optimizer given
        plain parameters can only call them "group0.0", "group0.1", ...; another optimizer's parameters that the
        model does not own are qualified by optimizer (see _named_apart)."""
        model = self.model  # `opt`: the one stepping (a GAN has two), else the debugger's
        if opt is None or type(opt).__name__ != event.optimizer:
            return event
        label = self._step_labels.label(opt)
        if model is not None:
            names = self._model_names_of(model, opt)
            if names:
                event = renamed(event, names)
        elif opt is self.optimizer:
            names = self._script_names_of(opt)
            if names:
                event = renamed(event, names)
        if self.optimizer is not None and opt is not self.optimizer:
            event = self._named_apart(event, opt, label)
        return event

    def _model_names_of(self, model, opt) -> dict[str, str]:
        """The optimizer's names of the model's parameters -> the model's names, kept per optimizer while its
        parameters and the model stay the same (a GAN's two optimizers alternate)."""
        key = (id(model), tuple(id(p) for group in opt.param_groups for p in group["params"]))
        cached = self._model_names.get(id(opt))
        if cached is None or cached[0] != key:
            params = [(g, i, group, p) for g, group in enumerate(opt.param_groups)
                      for i, p in enumerate(group["params"])]
            by_id = {id(p): name for name, p in model.named_parameters()}
            names = {opt._param_name(g, i, group, p): by_id[id(p)] for g, i, group, p in params if id(p) in by_id}
            if len(self._model_names) >= 64:  # a script making a new optimizer all the time: stay bounded
                self._model_names.clear()
            cached = self._model_names[id(opt)] = (key, {k: v for k, v in names.items() if k != v})
        return cached[1]

    def _script_names_of(self, opt) -> dict[str, str]:
        """The optimizer's names of plain tensors it trains -> the names the script holds them by
        (engine.debug.script_names), read at its first step and kept while its parameters stay the same."""
        key = tuple(id(p) for group in opt.param_groups for p in group["params"])
        cached = self._script_names.get(id(opt))
        if cached is None or cached[0] != key:
            params = [(opt._param_name(g, i, group, p), p) for g, group in enumerate(opt.param_groups)
                      for i, p in enumerate(group["params"])]
            held = script_names([p for _, p in params], sys._getframe(1))
            if len(self._script_names) >= 64:
                self._script_names.clear()
            cached = self._script_names[id(opt)] = (key, {name: held[id(p)] for name, p in params
                                                          if id(p) in held and positional(name)})
        return cached[1]

    def _ends_iteration(self, opt) -> bool:
        """Whether this step of `opt` ends the iteration (engine.debug.pacing): each of the debugger's optimizer
        does while it trains alone; with several, an iteration holds a pass of the loop's body."""
        if opt is None or self.optimizer is None:
            return True
        return self._pacing.ends(opt, self.optimizer, self.tracer.input_ids)

    def _replaces(self, opt) -> bool:
        """Whether `opt` trains exactly the parameters of the debugger's optimizer: a script that makes its
        optimizer anew (each epoch, or to change a setting) goes on with the new one (answers kept per optimizer)."""
        main = self.optimizer
        if main is None:
            return False
        hit = self._replacing.get(id(opt))
        if hit is None or hit[0] is not opt or hit[1] is not main:
            if len(self._replacing) >= 64:
                self._replacing.clear()
            hit = self._replacing[id(opt)] = (opt, main, _parameter_ids(opt) == _parameter_ids(main))
        return hit[2]

    def _named_apart(self, event: OptimizerEvent, opt, label: str) -> OptimizerEvent:
        """A step of another optimizer than the debugger's (a GAN's second): its parameters named as a tape names
        them ("Adam#2:Discriminator.fc.weight", engine.debug.param_names), where the debugger's own optimizer
        alone could only call them "group0.0", the names its own parameters had before the model's replaced them.
        """
        if self._namer is None:  # the module calls so far are in the history; from now on, as they come
            self._namer = ParamNamer()
            for rec in self.history:
                ev = rec.event
                if ev.__class__ is ModuleEvent and ev.params:
                    self._namer.module_called(ev.path, ev.params)
        return self._namer.named(event, label, self._step_labels.tensors(opt, len(event.weight_norms)),
                                 self._script_names_of(opt))

    def _named_parameters(self):
        if self.model is not None:
            return self.model.named_parameters()
        if self.optimizer is not None:
            held = self._script_names.get(id(self.optimizer), (None, {}))[1]  # named at its first step
            return ((held.get(f"group{g}.{i}", f"group{g}.{i}"), p)
                    for g, group in enumerate(self.optimizer.param_groups) for i, p in enumerate(group["params"]))
        return ()

    def _named_tensors(self):
        """Parameters and buffers by name (to name where a non-finite value entered)."""
        named = list(self._named_parameters())
        if self.model is not None:
            named += self.model.named_buffers()
        return named

    # ---- explicit stops and Python-level pause -------------------------------------------------
    def _explicit(self, frame) -> None:
        if self._attached:
            self._wait(None, "explicit", source=frame_of(frame))
            self._rearm()

    def _poke_python(self) -> None:
        """Make a pause land in plain Python code too, when the engine run is traced for it."""
        run = self._run
        if run is None or not run.python_pause or run.done.is_set():
            return
        frames = []
        f = sys._current_frames().get(run.thread.ident)
        while f is not None:
            frames.append(f)
            f = f.f_back
        users = [f for f in frames if frame_kind(f.f_code) == USER]
        for f in users or frames:  # land in the person's code, not in a library it called
            f.f_trace = self._line_trace
            run.poked.append(f)

    def _unpoke(self) -> None:
        """Stop line-tracing the frames a pause poked (every line would call back into Python)."""
        run = self._run
        if run is not None and run.poked:
            poked, run.poked = run.poked, []
            for f in poked:
                f.f_trace = None

    def _line_trace(self, frame, event, arg):
        if not self._pause:  # the pause landed at an op boundary meanwhile
            self._unpoke()
            frame.f_trace = None
        elif event == "line":
            self._wait(None, "python", source=frame_of(frame))
            self._rearm()
        return None


def _listify(x) -> list:
    return [] if x is None else list(x) if isinstance(x, list | tuple) else [x]


def _parameter_ids(opt) -> frozenset[int]:
    return frozenset(id(p) for group in opt.param_groups for p in group["params"])
