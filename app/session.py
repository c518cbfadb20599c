"""The session controller (Qt-free): user code running live under the debugger, or a tape replayed.

    session = LiveSession(Target.demo())            # or Target.script("train.py", ("--lr", "0.1"))
    session.start()                                 # the engine thread starts, paused on entry
    session.command("step_into"); session.command("resume"); session.command("pause"); session.stop()
    change = session.drain()                        # on the GUI thread, once per frame (app.pump)

    replay = app.replay.ReplaySession("run.tape")   # the same interface; its cursor moves both ways

The data flow of DESIGN.md: the engine thread only appends plain data (debugger records, stops,
alerts, edits, the script's output) to a deque. `drain()` applies a bounded batch of it to Qt-free
models (the GraphModel, the loss history, per-node summaries) and reports what changed. A replay
(app.replay) feeds the records it reads from a tape through the same `_apply`, so it equals the live
state.
The GUI thread never touches engine objects: control commands and edits go through the debugger's
command queue and are carried out on the engine thread.
"""

from __future__ import annotations

import bisect
import heapq
import linecache
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import engine.debug
import engine.tape
from app import demo
from app.edit_history import describe_model, describe_optimizer
from app.graph_model import INPUT, KIND_NAMES, OP, PARAM, GraphChange, GraphModel
from app.script_io import (
    OutputChunk,
    ScriptError,
    capture_output,
    compile_error,
    release_output,
    run_path,
    script_error,
)
from engine.debug import BackwardRecord, Command, Debugger, DebuggerKilled, EventRecord, OpRecord, Stop
from engine.debug.alert_folds import Mutes, fold_key
from engine.debug.alert_text import kind_name
from engine.debug.losses import LossCurves
from engine.debug.records import OPTIMIZER
from engine.debug.source import SourceFrame, short_message
from engine.debug.summary import finish
from engine.events import AlertEvent, EditEvent, ModuleEvent, OpEvent, OptimizerEvent, next_seq
from engine.tape.output import MAX_OUTPUT_BYTES
from engine.tape.snapshots import KeptParameters, ParameterKeeper
from engine.tape.writer import stopped_by

CONTROL = ("step_into", "step_over", "step_out", "run_to_phase", "run_to_next_iteration", "resume")
STEPS = ("step_into", "step_over", "step_out", "run_to_phase", "run_to_next_iteration")
RUNNING, PAUSED, FINISHED, FAILED, STOPPED = "running", "paused", "finished", "failed", "stopped"
# which alerts stop a run (Continue, a step) where they are raised: every alert, only NaN/Inf, or none
EVERY_ALERT, NONFINITE_ONLY, NO_ALERT = "all", "nonfinite", "none"
ALERT_STOPS = (EVERY_ALERT, NONFINITE_ONLY, NO_ALERT)
NO_MUTES = Mutes()
ENDING_ALERTS = ("inplace", "graph_freed")  # the error that ended the run, explained: nothing is left to stop
_RECORDS = (OpRecord, BackwardRecord, EventRecord)


def stops_at(alert: AlertEvent, which: str, mutes: Mutes = NO_MUTES) -> bool:
    """Whether `alert` stops a run whose alert stops are `which` (one of ALERT_STOPS) and that `mutes` silence."""
    if alert.kind in ENDING_ALERTS or mutes.hides(alert.kind, alert.key):
        return False
    return which == EVERY_ALERT or (which == NONFINITE_ONLY and alert.kind.startswith("nonfinite"))


def alert_name(alert: AlertEvent) -> str:
    """An alert's kind as the Alerts panel names it ("exploding gradient")."""
    return kind_name(alert.kind)


def _summaries(rec) -> list:
    """The TensorSummaries a record carries (none for module and optimizer records)."""
    if rec.__class__ is OpRecord:
        return [rec.summary] if rec.summary is not None else []
    if rec.__class__ is BackwardRecord:
        return [s for s in (rec.grad_output, *rec.grad_inputs) if s is not None]
    return []


PAUSE_WAIT = 0.5  # seconds a pause may take to land before the status says where the code is instead
MIN_BACKLOG = 2048  # items that may always wait for the GUI: a burst of small ops must not stall the engine
HISTORY = 50_000  # op and backward records a session keeps by seq, for scrubbing back a live run
# the latest op, backward and module records a live run keeps for a tape saved from the window (LiveSession.save_kept):
# as many as it keeps for scrubbing back (the same records, so they cost little more); its optimizer steps, alerts,
# edits and output (a few per iteration) are kept whole, its output up to a tape's cap
KEPT = HISTORY
_HERE = os.path.abspath(__file__)


@dataclass(frozen=True)
class Target:
    """What a live session runs: a script file with its arguments, the built-in demo, or a function."""

    kind: str  # "demo" | "script" | "function"
    path: str = ""  # the file to show in the source view
    argv: tuple[str, ...] = ()
    options: tuple[tuple[str, object], ...] = ()  # keyword arguments of the demo's main()
    function: Callable[[], object] | None = None
    name: str = ""

    @classmethod
    def demo(cls, **options) -> Target:
        """The built-in demo (app.demo), with optional arguments for its main()."""
        return cls("demo", os.path.abspath(demo.__file__), (), tuple(sorted(options.items())))

    @classmethod
    def script(cls, path: str, argv: tuple[str, ...] = ()) -> Target:
        """A person's script, run as `python path *argv` would run it."""
        return cls("script", os.path.abspath(path), tuple(argv))

    @classmethod
    def of_function(cls, fn: Callable[[], object], title: str, path: str = "") -> Target:
        """A function to call with no arguments on the engine thread (e.g. a model builder's training)."""
        return cls("function", os.path.abspath(path) if path else "", function=fn, name=title)

    @property
    def title(self) -> str:
        """What the window title says."""
        if self.kind == "demo":
            return demo.TITLE
        return self.name or os.path.basename(self.path)


@dataclass(frozen=True)
class RunEnded:
    """The engine run ended: finished, failed (with the script's error) or stopped."""

    outcome: str
    error: ScriptError | None = None
    ran: bool = True  # False: the script did not compile, so none of it ran


@dataclass(frozen=True)
class NodeInfo:
    """What the app knows about one graph node: its op, shapes, place, and the latest summaries."""

    key: str
    label: str
    kind: str
    op: str
    module: str
    in_shapes: str
    out_shape: str
    dtype: str
    source: object  # engine.debug.SourceFrame or None
    summary: object  # engine.debug.TensorSummary of the output, or None
    grad: object  # of the gradient flowing into it, or None
    alert: str = ""
    iteration: int = -1  # when the output summarised was made (-1: unknown)
    grad_iteration: int = -1  # when the gradient summarised flowed (an earlier iteration during a forward)
    tensor: int = 0  # a parameter's or input's tensor id (0: an op, or unknown)
    grad_tensor: int = 0  # the tensor id of the gradient that reached that parameter or input (0: none)
    note: str = ""  # what is known of a parameter's or input's value and gradient, and when they were made
    name: str = ""  # an op's: the name the script assigned its output to ("q"), or ""


def another_op(module: str, source, before) -> bool:
    """Whether an op outside every module that ran at line `source` is another op than the one that ran under its key
    at line `before` (`mean:0` of a diagnostic after the last step, the training loss's in the iterations before);
    a module's op is its layer's from whichever line calls the model."""
    return not module and source is not None and before is not None and source != before


def _op_name(view, i: int) -> str:
    """The name the script assigned visible op node i's output to ("q"), or ""."""
    caption = view.caption[i] if view.caption is not None else view.label[i]
    return caption if view.kind[i] == OP and caption != view.label[i] else ""


@dataclass
class SessionChange:
    """What one drain() applied: the graph's change and everything else a widget may show."""

    graph: GraphChange | None = None
    reset: bool = False  # a new model object: redraw everything
    records: int = 0
    stop: Stop | None = None
    ended: RunEnded | None = None
    output: list[OutputChunk] = field(default_factory=list)
    output_reset: bool = False  # a replay moved back: the output shown since it opened goes, `output` replaces it
    alerts: list[AlertEvent] = field(default_factory=list)
    edits: list[EditEvent] = field(default_factory=list)
    losses: bool = False
    status: bool = False
    steps: list = field(default_factory=list)  # (iteration, OptimizerEvent) of optimizer steps applied
    applied: list = field(default_factory=list)  # the records applied, in order (for the timeline)
    described: tuple | None = None  # a new (modules, optimizer) description of the live model
    running_at: object | None = None  # the line a pause waits at (plain Python, no op to land at), when it moved

    def __bool__(self) -> bool:
        return bool(self.graph or self.reset or self.records or self.stop or self.ended or self.output
                    or self.output_reset or self.alerts or self.edits or self.losses or self.status or self.described)


class Session:
    """What live and replay sessions share: the queue, the models fed from it, and the status."""

    mode = ""

    def __init__(self) -> None:
        self.queue: deque = deque()
        self.model = GraphModel()
        self.status = RUNNING
        self.current_stop: Stop | None = None
        self.iteration = 0
        self.phase = "forward"
        self.last: object | None = None  # the last record applied
        # every backward() root and evaluation loss, one curve per source line (engine.debug.losses)
        self.loss_history = LossCurves()
        self.recorded_losses: LossCurves | None = None  # a replay's whole run, read at open
        self.summaries: dict[str, object] = {}  # node key -> TensorSummary of its latest output
        self.grads: dict[str, object] = {}  # node key -> TensorSummary of its latest incoming gradient
        self.made_in: dict[str, tuple[int, int]] = {}  # node key -> iterations of its output, its gradient
        self.frames: dict[str, object] = {}  # node key -> SourceFrame where it ran
        self.outputs: dict[str, int] = {}  # node key -> tensor id of its latest output (to fetch values)
        self.backward_of: dict[str, BackwardRecord] = {}  # node key -> its latest backward record
        self.op_seq: dict[str, int] = {}  # node key -> the seq of its latest op record (the event its output is from)
        self.steps: list[tuple[int, object]] = []  # (iteration, OptimizerEvent) of every step applied
        self.by_seq: dict[int, object] = {}  # seq -> OpRecord/BackwardRecord, the latest HISTORY of them
        self._order: deque[int] = deque()
        self.alerts: list[AlertEvent] = []
        self.edits: list[EditEvent] = []
        self.ended: RunEnded | None = None
        self.records = 0
        self.events_per_second = 0.0
        self._rate = (time.monotonic(), 0)
        self._pending_status = False
        self._pending_reset = False  # the model object was replaced (a replay's seek)
        self.pausing = False  # a pause was asked for and has not landed yet
        self.waiting_at = None  # SourceFrame: where a pause that does not land waits (the code runs no op)
        self._stop_on_alerts = EVERY_ALERT
        self.mutes = Mutes()  # the alerts a person muted: listed, never stopped at (set from the GUI thread)
        self.stop_alert: AlertEvent | None = None  # the alert that the current stop is for
        self.origin = 0  # the seq before the session's first event: the event numbers shown count from it
        self.failed_key = ""  # the node of the op that raised the script's exception

    @property
    def stop_on_alerts(self) -> str:
        """Which alerts stop Continue and the steps where they are raised: one of ALERT_STOPS."""
        return self._stop_on_alerts

    @stop_on_alerts.setter
    def stop_on_alerts(self, which: str) -> None:
        if which not in ALERT_STOPS:
            raise ValueError(f"stop_on_alerts must be one of {', '.join(ALERT_STOPS)}, got {which!r}")
        self._stop_on_alerts = which

    # ---- applying plain data ----------------------------------------------------------------
    def drain(self, max_items: int = 20000, budget: float = 0.008) -> SessionChange | None:
        """Apply up to `max_items` queued items (stopping early after `budget` seconds); what changed."""
        change = SessionChange(status=self._pending_status, reset=self._pending_reset)
        self._pending_status = self._pending_reset = False
        self._fill(change, max_items, budget)
        if self.recorded_losses is None and self.loss_history.feed(change.applied):
            change.losses = True
        self._drained(change)
        change.graph = self.model.flush()
        self._measure(change.records)
        return change if change else None

    def _drained(self, change: SessionChange) -> None:
        """After a batch: what a kind of session checks once per frame."""

    def _fill(self, change: SessionChange, max_items: int, budget: float) -> None:
        q = self.queue
        end = time.perf_counter() + budget
        apply = self._apply
        n = 0
        while q and n < max_items:
            chunk = [q.popleft() for _ in range(min(256, len(q), max_items - n))]
            # the views read a statistic of nearly every summary: finish what they defer in one go
            finish([s for item in chunk if item.__class__ in _RECORDS for s in _summaries(item)])
            for item in chunk:
                apply(item, change)
            n += len(chunk)
            if time.perf_counter() > end:
                break

    def _apply(self, item, change: SessionChange) -> None:
        cls = item.__class__
        if cls in _RECORDS:
            self._apply_record(item, change)
        elif cls is Stop:
            self._on_stop(item, change)
        elif cls is OutputChunk:
            out = change.output
            if out and out[-1].stream == item.stream:
                out[-1] = OutputChunk(item.stream, out[-1].text + item.text)
            else:
                out.append(item)
        elif cls is AlertEvent:
            self.model.apply(item)
            self.alerts.append(item)
            change.alerts.append(item)
        elif cls is EditEvent:
            self.edits.append(item)
            change.edits.append(item)
        elif cls is tuple and item and item[0] == "described":
            change.described = item[1:]

    def _apply_record(self, rec, change: SessionChange) -> None:
        model = self.model
        model.apply(rec)
        change.records += 1
        self.records += 1
        self.last = rec
        self.iteration = rec.iteration
        self.phase = rec.phase
        cls = rec.__class__
        change.applied.append(rec)
        if cls is OpRecord:
            key = model.current
            self._remember(rec)
            self.outputs[key] = rec.event.output
            self.op_seq[key] = rec.seq
            if rec.summary is not None:
                self.summaries[key] = rec.summary
                self.made_in[key] = (rec.iteration, self.made_in.get(key, (-1, -1))[1])
            stale = self.grads.get(key)
            # the gradient an earlier iteration gave this node shows until this one's arrives, labelled with its
            # iteration; not on an op that gets none (an evaluation under no_grad after training, numbered as a
            # training op was), nor on one of another shape, nor on another op under its key
            if stale is not None and (not rec.event.requires_grad or stale.shape != rec.event.output_shape or
                                      another_op(rec.event.module, rec.source, self.frames.get(key))):
                del self.grads[key]
                self.made_in[key] = (rec.iteration, -1)
            if rec.source is not None:
                self.frames[key] = rec.source
        elif cls is BackwardRecord:
            self._remember(rec)
            self.backward_of[model.current] = rec  # its gradients' ids and summaries, to show and fetch
            if rec.grad_output is not None:
                key = model.current
                self.grads[key] = rec.grad_output
                self.made_in[key] = (self.made_in.get(key, (-1, -1))[0], rec.iteration)
        elif rec.event.__class__ is OptimizerEvent:
            self.steps.append((rec.iteration, rec.event))
            change.steps.append((rec.iteration, rec.event))
        self._left_stop(change)

    def _mark_failed(self, message: str) -> str:
        """The op applied last raised the script's exception (`message`): marked so in the graph, and its
        inspector says it made no output; returns its key."""
        key = self.failed_key = self.model.current
        self.model.set_failed(key)
        self.model.alerts[key] = message
        return key

    def _remember(self, rec) -> None:
        """Keep the latest HISTORY op and backward records by seq: what scrubbing back a live run shows."""
        self.by_seq[rec.event.seq] = rec
        order = self._order
        order.append(rec.event.seq)
        if len(order) > HISTORY:
            self.by_seq.pop(order.popleft(), None)

    def record_at(self, seq: int):
        """The op or backward record at `seq` or the nearest one before it that is still kept, or None."""
        rec = self.by_seq.get(seq)
        if rec is None and self._order:
            i = bisect.bisect_right(self._order, seq) - 1
            rec = self.by_seq.get(self._order[i]) if i >= 0 else None
        return rec

    def _left_stop(self, change: SessionChange) -> None:
        """A record after a stop means the engine went on."""

    def _on_stop(self, stop: Stop, change: SessionChange) -> None:
        self.current_stop = stop
        # only a stop the alert made is "on" it: a replay scrubbed back, or a step after the alert, stops elsewhere
        self.stop_alert = stop.alert if stop.reason == "alert" else None
        self.status = PAUSED
        change.stop = stop
        change.status = True

    def _measure(self, records: int) -> None:
        t0, n = self._rate
        n += records
        now = time.monotonic()
        if now - t0 >= 0.5:
            self.events_per_second = n / (now - t0)
            self._rate = (now, 0)
        else:
            self._rate = (t0, n)

    # ---- what widgets ask -------------------------------------------------------------------
    @property
    def losses(self) -> dict[int, float]:
        """iteration -> loss of the first training loss curve."""
        return self._loss_curves().first()

    def loss_curve(self) -> tuple[list[int], list[float]]:
        """(iterations, losses) of the first training loss curve, in iteration order."""
        return next(iter(self.loss_curves().values()), ([], []))

    def loss_curves(self) -> dict[str, tuple[list[int], list[float]]]:
        """The training loss curves, label -> (iterations, losses) in iteration order: one curve per source line
        of a loss backward() started from (see engine.debug.losses), in the order their first losses came."""
        return _in_order(self._loss_curves().curves())

    def eval_loss_curves(self) -> dict[str, tuple[list[int], list[float]]]:
        """The evaluation loss curves, label -> (iterations, mean losses) in iteration order: one curve per source
        line of a loss computed without a gradient (a validation loss; see engine.debug.losses)."""
        return _in_order(self._loss_curves().eval_curves())

    def loss_ops(self) -> dict[str, object]:
        """The op (OpEvent) each training loss curve's roots are the output of, label -> op (None: not known)."""
        return self._loss_curves().ops()

    def _loss_curves(self) -> LossCurves:
        """A replay's whole run, read at open, else the curves fed so far."""
        return self.recorded_losses if self.recorded_losses is not None else self.loss_history

    def node_info(self, key: str) -> NodeInfo | None:
        """What is known about the visible node `key`, or None."""
        view = self.model.view()
        i = view.node_of.get(key)
        if i is None:
            return None
        shown = key if view.kind[i] == OP else view.keys[i]  # an op of a fan is shown as itself
        out_shape, dtype = view.out_shape[i], view.dtype[i]
        if shown == self.failed_key:  # the op raised: it made no output (not a scalar one)
            out_shape, dtype = "nothing (it raised)", ""
        info = NodeInfo(shown, view.label[i], KIND_NAMES[int(view.kind[i])], view.op[i], view.module[i],
                        view.in_shapes[i], out_shape, dtype, self.frames.get(shown),
                        self.summaries.get(shown), self.grads.get(shown), self.model.alerts.get(shown, ""),
                        *self.made_in.get(shown, (-1, -1)), name=_op_name(view, i))
        return self._source_info(info) if view.kind[i] in (PARAM, INPUT) else info

    def _source_info(self, info: NodeInfo) -> NodeInfo:
        """A parameter's or input's NodeInfo: its tensor id, the gradient that reached it in the latest
        backward (its slot among the grad_inputs of the op it feeds) and what is known of its value."""
        consumer, _, slot = info.key.rpartition("/in")  # "Net.fc1/linear:0/in1" feeds "Net.fc1/linear:0"
        arg = int(slot)
        tensor = self.model.tensor_of(info.key)
        back = self.backward_of.get(consumer)
        grad, grad_tensor, grad_iteration = None, 0, -1
        if back is not None and arg < len(back.event.grad_inputs):
            grad_tensor = back.event.grad_inputs[arg]
            grad = back.grad_inputs[arg] if arg < len(back.grad_inputs) else None
            grad_iteration = back.iteration
        if not tensor and back is None:
            return info
        if self.mode != "live" and info.kind == "param":
            info, value_note = self._recorded_parameter(info)  # ReplaySession's
        else:
            value_note = self._value_note("buffer" if info.op == "buffer" else info.kind, consumer)
        lines = [value_note]
        if grad is not None:
            lines.append(f"gradient: as it reached it in the backward of iteration {grad_iteration}, at event "
                         f"{back.seq - self.origin:,}")
        elif back is not None and not grad_tensor:
            lines.append(f"gradient: none reached it in the backward of iteration {back.iteration}")
        return replace(info, grad=grad, grad_iteration=grad_iteration, tensor=tensor, grad_tensor=grad_tensor,
                       note="\n".join(lines))

    def _value_note(self, kind: str, consumer: str) -> str:
        """What the inspector can show of a parameter's or input's value, and from when."""
        if self.mode != "live":
            return f"value: values of {'parameters' if kind == 'param' else kind + 's'} are not recorded on tapes"
        if kind == "buffer":  # BatchNorm's running statistics: a training forward moves them, no optimizer step
            return "value: now, as the module holds it (each forward in train mode updates it)"
        if kind == "input":
            it = self.made_in.get(consumer, (-1, -1))[0]
            when = f" of iteration {it}" if it >= 0 else ""
            return f"value: the input{when}, if the value cache holds it"
        last, now = (self.steps[-1][0] if self.steps else None), self.iteration
        if last is None:
            return f"value: now, as iteration {now} uses it (no optimizer step yet)"
        if last >= now:
            return f"value: now, after the optimizer step of iteration {last}"
        return f"value: now, as iteration {now} uses it (after the optimizer step of iteration {last})"

    def source_text(self, file: str) -> str | None:
        """The text of a source file (live: from disk; replay: as recorded)."""
        try:
            with open(file, encoding="utf-8") as f:
                return f.read()
        except (OSError, UnicodeDecodeError):
            return None

    @property
    def alive(self) -> bool:
        """Whether commands still do something (a live run that has not ended; a replay always)."""
        return self.ended is None

    @property
    def can_step(self) -> bool:
        """Whether step and continue commands apply now."""
        return self.alive and self.status == PAUSED

    def status_text(self) -> str:
        """One line: running / paused where / finished / failed."""
        if self.status == PAUSED:
            return "Paused " + self._where(self.current_stop)
        if self.status == RUNNING:
            at = self.waiting_at
            if at is not None:  # a pause that does not land: where the code is, as it goes on
                text = f" `{at.text}`" if at.text else ""
                return (f"Pause is waiting for an op: running plain Python at {os.path.basename(at.file)}:{at.line}"
                        f"{text}, which calls no engine op (Shift+F5 stops)")
            pausing = ": pausing at the next op\u2026" if self.pausing else ""
            return f"Running (iteration {self.iteration}, {self.phase}){pausing}"
        if self.status == FAILED and self.ended is not None and self.ended.error is not None:
            return f"{'Failed' if self.ended.ran else 'Not run, it does not compile'}: {failure_text(self.ended.error)}"
        return self.status.capitalize()

    def at_entry(self, stop: Stop | None) -> bool:
        """Whether `stop` is the stop on entry (before the script ran)."""
        src = stop.source if stop is not None and stop.record is None else None
        return src is not None and stop.reason == "explicit" and os.path.abspath(src.file) == _HERE

    def _where(self, stop: Stop | None) -> str:
        rec = stop.record if stop is not None else None
        if stop is None:
            return "before the first event"
        if self.at_entry(stop):
            return "on entry: press F11 to step into the first op, F5 to run"
        if stop.reason == "explicit" and rec is None:
            src = stop.source
            return f"at breakpoint() in {os.path.basename(src.file)}:{src.line}" if src else "at breakpoint()"
        alert = self.stop_alert
        if alert is not None:  # which alert, and what it says (where: its message names the op or the layer)
            return f"on an alert, {alert_name(alert)}: {_first_line(short_message(alert.message, alert.file))}"
        if stop.reason == "python" and stop.source is not None:  # Break in Python Code: a line that runs no op
            return f"in plain Python code at {os.path.basename(stop.source.file)}:{stop.source.line}"
        if rec is None:
            return f"({stop.reason})"
        where = describe_record(rec, self.model.call_of(self.model.current) if self.model.current else None)
        return f"by a breakpoint {where}" if stop.reason == "breakpoint" else where

    def command(self, action: str) -> None:
        """step_into, step_over, step_out, run_to_phase, run_to_next_iteration, resume or pause."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the session holds (threads, files)."""


def _in_order(curves: dict[str, dict[int, float]]) -> dict[str, tuple[list[int], list[float]]]:
    """label -> (iterations, values) in iteration order, of label -> {iteration: value}."""
    out = {}
    for label, by_it in curves.items():
        its = sorted(by_it)
        out[label] = (its, [by_it[i] for i in its])
    return out


def _line_of(file: str, line: int) -> str:
    """The text of line `line` of `file`, stripped ('' where it cannot be read)."""
    return linecache.getline(file, line).strip() if line > 0 else ""


def _first_line(text: str) -> str:
    """The first line of an alert's message: a status line is one line."""
    return text.split("\n", 1)[0]


# ---- live -----------------------------------------------------------------------------------------
class LiveSession(Session):
    """User code on an engine thread under an interactive Debugger (see the module docstring).

    pause_on_entry: stop before the code runs. record: a .tape path to record to from the start.
    stop_on_alerts: which alerts stop the run where they are raised (one of ALERT_STOPS; may change while it
    runs). max_queue: items that may wait for the GUI at most. max_lag: seconds of the GUI's own pace that
    may wait (at least MIN_BACKLOG items): beyond either the engine thread waits for the GUI (back-
    pressure), so what the window shows is never far behind the engine and a pause shows at once.
    """

    mode = "live"

    def __init__(self, target: Target, *, pause_on_entry: bool = True, capture: str = "summary",
                 record: str | None = None, stop_on_alerts: str = EVERY_ALERT, max_queue: int = 200_000,
                 max_lag: float = 0.25, python_pause: bool = False) -> None:
        super().__init__()
        self.target = target
        self.python_pause = python_pause  # a pause lands in plain Python code too (the run is traced: slower)
        self._pause_asked = 0.0  # when the pause under way was asked for (time.monotonic)
        self._looked = 0.0  # when the line a pause waits at was last read
        self.pause_on_entry = pause_on_entry
        self.capture = capture
        self.stop_on_alerts = stop_on_alerts
        self.max_queue = max_queue
        self.max_lag = max_lag
        self._backlog = min(max_queue, MIN_BACKLOG)  # items that may wait now; set from the GUI's pace
        self._described = (None, None)  # the model and optimizer the module editor was last told of
        self._description: tuple | None = None  # what it was last told of them (engine thread only)
        self.debugger = Debugger(capture, interactive=True, discover=True, on_record=[self._discover, self._push],
                                 on_stop=self._stopped, on_alert=self._on_alert)
        self.run = None
        self.recorder = None
        self.last_recording: str | None = None
        self.last_cap_reached = ""  # the last recording's status when its size cap stopped it early, else ""
        self._record_at_start = record
        self._outcome: RunEnded | None = None
        self._why = ""  # how the run ended when it did not finish, for its tape's status
        self._failure: BaseException | None = None  # the script's own exception, for its tape's source
        self._room = threading.Event()
        self._closed = False
        self._stepping = False  # a step command is under way
        self._steps: deque[str] = deque()  # step commands waiting for its stop
        self._alert_stop: AlertEvent | None = None  # the alert whose pause has not landed yet (engine thread)
        self._alerted: set[tuple] = set()  # fold keys of the alerts raised: a repeat stops nothing (engine thread)
        self.origin = next_seq()  # the engine numbers the events of the whole process: a Restart's count from 1
        # what a tape saved from the window holds (save_kept): (order, item) of the latest KEPT op, backward and
        # module records, and of every optimizer step, iteration mark, alert, edit and output chunk
        self._kept: deque[tuple[int, object]] = deque(maxlen=KEPT)
        self._kept_whole: list[tuple[int, object]] = []
        self._kept_count = 0  # items kept so far, the ones that fell out of _kept too
        self._kept_output = 0  # bytes of output kept
        # and snapshots of its parameters, taken on the engine thread as a recording takes them, in bounded memory
        self._keeper = ParameterKeeper(self.debugger, capture)
        self.debugger.on_record.append(self._keeper.on_record)

    # ---- the engine thread --------------------------------------------------------------------
    def _push(self, item) -> None:
        q = self.queue
        q.append(item)
        if len(q) > self._backlog:  # the GUI fell behind: wait for it rather than show the past
            while len(q) > self._backlog // 2 and not self._closed:
                self._room.wait(0.05)  # a timeout, so Stop's asynchronous exception can land
                self._room.clear()

    def _discover(self, rec) -> None:
        """Queue a description of the script's model and optimizer for the module editor once the
        debugger has found them (the first root module call, the first optimizer step)."""
        dbg = self.debugger
        found = (dbg.model, dbg.optimizer)
        if found[0] is not self._described[0] or found[1] is not self._described[1]:
            self._described = found
            self._describe()

    def _describe(self, changed_only: bool = False) -> None:
        """Queue (modules, optimizer) as the module editor shows them (`changed_only`: only when they differ
        from what it was last told); on the engine thread only."""
        dbg = self.debugger
        if dbg.model is not None:
            modules, optimizer = describe_model(dbg.model, dbg.optimizer)
        else:
            modules, optimizer = [], describe_optimizer(dbg.optimizer) if dbg.optimizer is not None else None
        if changed_only and (modules, optimizer) == self._description:
            return
        self._description = (modules, optimizer)
        self._push(("described", modules, optimizer))

    def _stopped(self, stop: Stop) -> None:
        # the script changes the model and optimizer too (an lr scheduler, model.eval()): what the module
        # editor shows at a stop must be what the next step runs with
        if any(found is not None for found in self._described):
            self._describe(changed_only=True)
        alert, self._alert_stop = self._alert_stop, None
        if alert is not None and stop.reason in ("pause", "python"):  # the pause an alert asked for
            stop = replace(stop, reason="alert", alert=alert)
        self._push(stop)

    def _on_alert(self, alert: AlertEvent) -> None:
        self._push(alert)
        first = fold_key(alert) not in self._alerted
        self._alerted.add(fold_key(alert))
        if first and stops_at(alert, self.stop_on_alerts, self.mutes) and self._alert_stop is None:
            self._alert_stop = alert  # the first of the alerts one record raised names the stop
            self.debugger.pause()  # lands at the record that raised the alert: a NaN's origin, the step

    def _output(self, stream: str, text: str) -> None:
        recorder = self.recorder  # (set and cleared on the GUI thread)
        if recorder is not None:
            recorder.output(stream, text)  # a replay of the tape shows it too
        self._push(OutputChunk(stream, text))

    def _main(self) -> None:
        ident = threading.get_ident()
        capture_output(ident, self._output)
        outcome = RunEnded(STOPPED)
        try:
            if self.pause_on_entry:
                engine.debug.breakpoint()
            target = self.target
            if target.kind == "demo":
                demo.main(**dict(target.options))
            elif target.kind == "function":
                target.function()
            else:
                run_path(target.path, target.argv)
            outcome = RunEnded(FINISHED)
        except DebuggerKilled:
            outcome = RunEnded(STOPPED)
            self._why = "stopped from the app"
        except SystemExit as exit_:
            code = exit_.code
            if code is None or code == 0:
                outcome = RunEnded(FINISHED)
            else:
                error = ScriptError(f"SystemExit: {code}", f"SystemExit: {code}\n", None)
                outcome = RunEnded(FAILED, error)
                self._why = stopped_by(exit_)
        except BaseException as err:  # the script's own failure: shown, never a crash of the app
            self.debugger.explain_failure(err)  # an in-place or freed-graph error: an alert, and lines in its text
            error = script_error(err, self.target.path)
            self._output("stderr", error.traceback)
            outcome = RunEnded(FAILED, error)
            self._why = stopped_by(err)
            self._failure = err
        finally:
            release_output(ident)
            self._outcome = outcome
            if any(found is not None for found in self._described):
                # what the script left the model as (model.eval() for a last accuracy pass): the module editor
                # showed "train" after the run, as the last stop had it
                self._describe(changed_only=True)

    # ---- the GUI thread -------------------------------------------------------------------------
    def start(self) -> LiveSession:
        """Start the engine thread (once); returns self."""
        if self.run is None and self._outcome is None:
            error = compile_error(self.target.path) if self.target.kind == "script" else None
            if error is not None:  # said at once, not after Run: nothing of it can run
                self._output("stderr", error.traceback)
                self._outcome = RunEnded(FAILED, error, ran=False)
                return self
            if self._record_at_start:
                self.start_recording(self._record_at_start)
            self.run = self.debugger.run_callable(self._main, python_pause=self.python_pause)
        return self

    def _apply(self, item, change: SessionChange) -> None:
        self._keep(item)
        super()._apply(item, change)

    def _keep(self, item) -> None:
        """Keep what a tape saved from the window would hold of `item` (see save_kept)."""
        cls = item.__class__
        n = self._kept_count
        if cls is OpRecord or cls is BackwardRecord or (cls is EventRecord and item.event.__class__ is ModuleEvent):
            self._kept.append((n, item))
        elif cls is EventRecord or cls is AlertEvent or cls is EditEvent:
            self._kept_whole.append((n, item))
        elif cls is OutputChunk and self._kept_output < MAX_OUTPUT_BYTES:
            self._kept_output += len(item.text)
            self._kept_whole.append((n, item))
        else:
            return
        self._kept_count = n + 1

    @property
    def kept(self) -> tuple[int, int, int]:
        """What a tape saved from the window would hold: (records kept, records run, the first iteration kept)."""
        whole = self._kept_count - len(self._kept_whole)  # records applied, those fallen out of _kept too
        first = self._kept[0][1].iteration if self._kept else self.iteration
        return len(self._kept), whole, first

    @property
    def kept_parameters(self) -> KeptParameters:
        """What a tape saved from the window would hold of the run's parameters (see save_kept)."""
        return self._keeper.held()

    def save_kept(self, path: str) -> int:
        """Write to a new tape at `path` what the window kept of this run, once it has ended: its latest KEPT op,
        backward and module records (every one, in a shorter run) and all its optimizer steps, alerts, edits and
        output, with how it ended; and the parameter snapshots kept as a recording takes them (fewer, further apart,
        in a long run), with the parameters' values as each optimizer's last step left them. Returns the events
        written; engine.tape.TapeError where the tape cannot be written."""
        if self.run is not None and not self.run.done.is_set():
            raise RuntimeError("save_kept: stop the run first (its engine thread would go on adding to it)")
        items = [item for _, item in heapq.merge(self._kept_whole, self._kept, key=lambda pair: pair[0])]
        snapshots = self._keeper.finish()  # (the engine thread is done: its parameters can be read)
        target = self.target
        command = ["tapescope", "run", target.path, *target.argv] if target.kind == "script" else ["tapescope"]
        # a queue that holds every item, and no lag to wait out: a stretch of records is never stripped of summaries.
        # Its debugger knows no model: the recorder takes no snapshots of its own, the kept ones go in instead
        recorder = engine.tape.record(path, debugger=Debugger(self.capture, interactive=False, cache_bytes=0),
                                      max_bytes=None, queue_events=4 * (len(items) + len(snapshots)) + 64,
                                      max_lag=3600.0, parameter_every=self._keeper.every, command_line=command)
        try:
            queue = list(recorder.debugger.on_record)  # the recorder's own way in, as from a live debugger
            for item in items:
                if item.__class__ is OutputChunk:
                    recorder.output(item.stream, item.text)
                else:
                    for take in queue:
                        take(item)
            for snap in snapshots:
                recorder.keep_snapshot(snap)
            if self._why:  # the tape says how the run ended, as a recording's does
                recorder.status = self._why
                if self._failure is not None:
                    error = self.ended.error if self.ended is not None else None
                    recorder.keep_failure(self._failure, error.op if error is not None else None)
        finally:
            recorder.close()
        return recorder.events

    def _drained(self, change: SessionChange) -> None:
        # what the GUI applies in max_lag seconds: past it, what the window shows would trail the engine
        pace = int(self.events_per_second * self.max_lag)
        self._backlog = min(self.max_queue, max(MIN_BACKLOG, pace))
        self._room.set()
        run = self.run
        if self.pausing and run is not None:
            self._look_where_waiting(change)
        done = run.done.is_set() if run is not None else self._outcome is not None  # (or it never started)
        if not self.queue and self.ended is None and done:
            self._finish(change)  # after the last record: the graph is complete when the end is shown

    def _look_where_waiting(self, change: SessionChange) -> None:
        """A pause that has not landed after PAUSE_WAIT: the code runs no op (a plain Python loop). Read the line
        the engine thread is at (without stopping it), again every PAUSE_WAIT while the pause waits."""
        now = time.monotonic()
        if now - self._pause_asked < PAUSE_WAIT or now - self._looked < PAUSE_WAIT / 2:
            return
        self._looked = now
        at = self.run.where()
        if at is not None and at != self.waiting_at:
            self.waiting_at = change.running_at = at
            change.status = True

    def _finish(self, change: SessionChange) -> None:
        ended = self._outcome or RunEnded(STOPPED)
        error = ended.error
        if error is not None and error.op is not None:
            self._add_failed_op(error, change)
        if ended.outcome in (FINISHED, FAILED):
            # the iteration it ended in is shown as far as it got (a failed one: up to the op that raised), not
            # drawn over the complete iteration before it
            self.model.end_run()
        self.ended = change.ended = ended
        self.status = ended.outcome
        self.current_stop = None
        self.pausing, self.waiting_at = False, None
        change.status = True
        if self.recorder is not None and self._why and self.recorder.status == "recording":
            self.recorder.status = self._why  # the tape says how the run ended, as `tapescope record`'s do
            if self._failure is not None:  # the op that raised, under the seq the live view gave it
                self.recorder.keep_failure(self._failure, error.op if error is not None else None)
        self.stop_recording()

    def _add_failed_op(self, error: ScriptError, change: SessionChange) -> None:
        """The op that raised never emitted its event: add it, marked, where it would have been, in the iteration
        and phase the engine was in (the timeline and the status then name the iteration that failed)."""
        source = SourceFrame(error.file, error.line, "", _line_of(error.file, error.line)) if error.file else None
        rec = OpRecord(error.op, self.debugger.state.iteration, error.depth, source, ())
        self.model.apply(rec)
        key = self._mark_failed(error.message)
        if source is not None:
            self.frames[key] = source
        self.iteration, self.phase, self.last = rec.iteration, rec.phase, rec
        change.applied.append(rec)

    def _left_stop(self, change: SessionChange) -> None:
        if self.status == PAUSED:  # a safety net: only a command lets the engine leave a stop
            self.status = RUNNING
            change.status = True

    def _on_stop(self, stop: Stop, change: SessionChange) -> None:
        super()._on_stop(stop, change)
        self._stepping = self.pausing = False
        self.waiting_at = None
        if self._steps:  # step commands pressed while a step was under way: one per stop
            self._send(self._steps.popleft())

    def command(self, action: str) -> None:
        """Send a control command (see Session.command); ignored when it cannot apply now.

        Step commands pressed while a step is under way wait here and go one per stop, so N presses
        make N steps; a continue is only sent from a stop (queued while running, it would skip the
        next breakpoint)."""
        if not self.alive or self.run is None:
            return
        if action == "pause":
            if self.status == RUNNING:
                self._steps.clear()
                self.pausing = True  # shown until the stop: code that never calls the engine never gets there
                self._pause_asked = time.monotonic()
                self._pending_status = True
                self.debugger.pause()
            return
        if action not in CONTROL:
            raise ValueError(f"unknown command {action!r}; expected pause or one of {', '.join(CONTROL)}")
        if self.status == PAUSED:
            self._send(action)
        elif self._stepping and action in STEPS:
            self._steps.append(action)

    def _send(self, action: str) -> None:
        self._stepping = action in STEPS
        self.debugger.send(Command(action))
        self.status = RUNNING
        self._pending_status = True

    @property
    def can_step(self) -> bool:
        return self.alive and self.run is not None and (self.status == PAUSED or self._stepping)

    def edit(self, edit):
        """Queue a runtime edit (engine.debug edits); a Future of its EditEvent, shown once applied."""
        future = self.debugger.edit(edit)
        future.add_done_callback(self._edited)
        return future

    def _edited(self, future) -> None:
        # runs where the edit was applied (the engine thread): the model is between ops, safe to describe
        event = future.result()
        self._push(event)
        if event.applied:
            self._describe()

    def stop(self) -> None:
        """Stop the run: killed at its stop, or by an asynchronous exception while it runs."""
        if self.run is not None and not self.run.done.is_set():
            self.run.interrupt()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the engine thread to end; True when it has."""
        return self.run is None or self.run.join(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the run, wait for it to unwind (at most `timeout` s) and close any recording."""
        self.stop()
        self._closed = True
        self._room.set()
        deadline = time.monotonic() + timeout
        while self.run is not None and not self.run.join(0.25):
            if time.monotonic() > deadline:
                self.debugger.detach()  # it ignored the asynchronous exception: at least stop tracing it
                break
            self.stop()  # again: one that lands in a finalizer (a __del__, a weakref callback) is printed and dropped
        self.stop_recording()

    # ---- recording --------------------------------------------------------------------------------
    @property
    def recording(self) -> str | None:
        """The tape being written, or None."""
        return self.recorder.path if self.recorder is not None else None

    @property
    def recording_cap(self) -> int | None:
        """The size cap in bytes of the tape being written (engine.tape.cap's default), or None."""
        return self.recorder.max_bytes if self.recorder is not None else None

    def start_recording(self, path: str, capture: str | None = None) -> None:
        """Record what the debugger sees from now on to a .tape file, capped as engine.tape.cap says; `capture`:
        the tier to record at (the live view shows the same from then on), else the session's."""
        if self.recorder is None:
            self._keeper.stop()  # the tape takes its own snapshots: what the window kept is never saved
            if capture is not None and capture != self.capture:
                self.debugger.set_capture(capture)
                self.capture = capture
            target = self.target
            command = ["tapescope", "run", target.path, *target.argv] if target.kind == "script" \
                else ["tapescope"]
            self.recorder = engine.tape.record(path, debugger=self.debugger, command_line=command)

    def stop_recording(self) -> str | None:
        """Finish the recording (if any); returns the tape's path."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        recorder.close()
        self.last_recording = recorder.path
        self.last_cap_reached = recorder.status if recorder.cap_reached else ""
        return recorder.path


def failure_text(error: ScriptError) -> str:
    """The script's error in one line, with the file and line of the script's code that raised it."""
    if not error.file:
        return error.message
    where = os.path.basename(error.file) + (f":{error.line}" if error.line else "")
    return f"{error.message} ({where})"


def raised_where(op: OpEvent) -> str:
    """Where the op that raised ran, for the Alerts panel: 'linear in Sequential.0'."""
    return f"{op.op} in {op.module}" if op.module else op.op


def describe_record(rec, call: str | None = None) -> str:
    """Where a record happened, for a person: 'at op linear in SpiralNet.fc1'; `call` names the module
    call of an op or backward node as the graph does ("GlyphNet.pool#1": its second call)."""
    ev = rec.event
    if isinstance(rec, OpRecord):
        return f"at op {ev.op} in {call or ev.module or 'the top level'}"
    if isinstance(rec, BackwardRecord):
        module = call or (rec.forward.event.module if rec.forward is not None else "")
        return f"at the backward of {ev.op} in {module or 'the top level'}"
    if rec.phase == OPTIMIZER:
        return "at the optimizer step"
    if hasattr(ev, "path"):
        return f"at the {'start' if ev.enter else 'end'} of module {ev.path}"
    return f"at the end of iteration {rec.iteration}"
