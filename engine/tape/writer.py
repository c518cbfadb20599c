"""Recording a session to a .tape file: the engine thread queues records, a writer thread commits them.

On the engine thread a record costs a clock read and a deque append. The writer thread wakes every
`flush_interval` seconds (sooner when `batch_events` are waiting), turns what is queued into rows and
commits them in one transaction; WAL mode makes each commit durable against a killed process. The
queue is bounded: past a quarter full, raw values are dropped; past half, summaries too; when full, the
engine thread waits for the writer. It also waits when the oldest record not yet committed is more than
`max_lag` seconds old (a writer slower than the training loop), so a SIGKILL loses at most that much.
Every drop is written to the `drops` table. A size cap drops values, then summaries, then stops recording;
by default the cap is the smaller of 10 GiB and half the free space of the tape's disk (engine.tape.cap).

Above the structure tier, optimizer steps also queue snapshots of the parameters they updated: every
`parameter_every`-th iteration's step (every one at "values", every 10th at "summary", where a snapshot of
a 100k-element weight each step cost the MLP benchmark's step a third more), the last step when recording
ends, and one as the first forward finds them. On the CPU a snapshot is a copy of each parameter,
summarised by the writer thread, so the engine thread pays a copy and not the statistics.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import itertools
import json
import os
import platform
import sqlite3
import sys
import threading
import time
import tokenize
import weakref
from collections import deque

import numpy as np

try:
    import fcntl
except ImportError:  # not POSIX: no recorder lock
    fcntl = None

from engine.debug import Debugger
from engine.debug.raised import error_line, raised_op
from engine.debug.records import CAPTURES, BackwardRecord, EventRecord, IterationEvent, OpRecord
from engine.debug.source import MAX_CHAIN, frame_of, raised_through
from engine.debug.summary import summarize
from engine.events import AlertEvent, EditEvent, ModuleEvent, OpEvent, OptimizerEvent, hub
from engine.tape import cap, schema
from engine.tape.codec import (
    MAX_ERROR_CHARS,
    EventColumns,
    float_blob,
    ids_text,
    npy_bytes,
    op_args,
    summary_rows,
    to_json,
)
from engine.tape.errors import TapeError
from engine.tape.output import MAX_OUTPUT_BYTES, OutputCap, OutputRows, OutputText
from engine.tape.schema import ALERT, BACKWARD, EDIT, MARK, MODULE_ENTER, MODULE_EXIT, OP, OPTIMIZER
from engine.tape.snapshots import (
    PARAMETER_EVERY,
    ParamSnapshot,
    SnapshotPlan,
    held_bytes,
    named_once,
    param_value,
)

MAX_SOURCE_BYTES = 2 << 20  # a larger "source file" is noted, not copied
_PHASE = {name: code for code, name in enumerate(schema.PHASES)}
_INSERT = {name: schema.insert_statement(name) for name in schema.TABLES}
# an iteration split over two batches is merged into one row
_ON_CONFLICT = {"iterations": """ ON CONFLICT (iteration) DO UPDATE SET
    first_seq = min(first_seq, excluded.first_seq), last_seq = max(last_seq, excluded.last_seq),
    events = events + excluded.events, ops = ops + excluded.ops, backward = backward + excluded.backward,
    t_first = min(t_first, excluded.t_first), t_last = max(t_last, excluded.t_last)""",
                # a parameter named twice in one step (hand-made names) keeps its first snapshot
                "parameters": " ON CONFLICT (name, seq) DO NOTHING"}
ROWS_PER_STATEMENT = 256
MAX_MODULE_NODES = 1 << 16  # module rows the writer remembers, to reuse them
MAX_OP_NODES = 1 << 16  # op rows the writer remembers, to reuse them
# argument sets kept per op signature: past them its calls share one node marked "varies" (a scheduled
# dropout p, a random roll shift would otherwise add a node row per call)
MAX_ARG_SETS = 8
_open: weakref.WeakSet[Recorder] = weakref.WeakSet()


class Recorder:
    """Records engine events to a .tape file until closed; a context manager (see `engine.record`).

    capture: "structure", "summary" or "values" (what the debugger's tracer attaches to each op).
    debugger: record what an existing Debugger sees (its capture tier) instead of attaching a new one.
    max_bytes: the size cap in bytes; "default" (engine.tape.cap.DEFAULT): the smaller of 10 GiB and half the
    space free on the tape's disk at the start; None or 0: no cap. queue_events: events that may wait for the writer.
    max_lag: seconds of events that may wait uncommitted before the engine thread waits for the writer.
    parameter_every: snapshot the parameters after the optimizer step of every this many iterations (and
    after the last step); default 1 at "values", 10 at "summary"; none at "structure".
    max_output_bytes: of the script's output given to `output()`, the bytes kept (the rest is cut and counted).
    """

    def __init__(self, path: str | os.PathLike, capture: str = "summary", *, debugger: Debugger | None = None,
                 model=None, optimizer=None, max_bytes: int | str | None = cap.DEFAULT,
                 flush_interval: float = 0.05,
                 batch_events: int = 4096, queue_events: int = 65536, value_bytes: int = 64 << 20,
                 command_line: list[str] | None = None, max_lag: float = 0.5,
                 parameter_every: int | None = None, max_output_bytes: int = MAX_OUTPUT_BYTES) -> None:
        if debugger is not None:
            capture = debugger.tracer.capture
        if capture not in CAPTURES:
            raise ValueError(f"record: capture must be one of {', '.join(CAPTURES)}, got {capture!r}")
        self.path = os.fspath(path)
        self.capture = capture
        max_bytes = cap.checked_cap(max_bytes)  # a bad one is refused before the file is made
        if parameter_every is None:
            parameter_every = 1 if capture == "values" else PARAMETER_EVERY
        if isinstance(parameter_every, bool) or not isinstance(parameter_every, int) or parameter_every < 1:
            raise ValueError(f"record: parameter_every must be a whole number >= 1, got {parameter_every!r}")
        self.parameter_every = parameter_every
        self._output = OutputCap(max_output_bytes)
        self._output_seq = 0  # the writer's: the last event queued before the output it files
        self.flush_interval = flush_interval
        self.events = 0  # committed so far
        self.status = "recording"
        self.cap_reached = False  # the size cap stopped the recording (status then names the cap)
        self._size = 0  # the tape's bytes when the writer last looked (with a cap)
        self._queue: deque = deque()
        self._soft = max(1, min(batch_events, queue_events // 4))
        self._limit = max(4, queue_events)
        self._value_cap = value_bytes
        self._values = capture == "values"
        self._level = 0  # set by the writer: 1 drop values, 2 and summaries, 3 drop everything
        self._bytes_in = self._bytes_out = 0  # value bytes queued by the engine / written by the writer
        # what was dropped, parameter snapshots' apart from those of op outputs and gradients: for the size cap, and
        # because the writer fell behind (a full queue, or too many value bytes waiting); the sums go to `drops`
        self._capped = {"values": 0, "summaries": 0, "events": 0, "parameter values": 0, "parameter summaries": 0}
        self._behind = dict.fromkeys(self._capped, 0)
        self._dropped_written = dict(self._capped)
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None
        self._t0 = time.perf_counter_ns()
        self._max_lag = int(max_lag * 1e9)
        # the engine thread waits past this clock time (ns): the writer moves it to the time it took its
        # last committed batch from the queue, plus max_lag; nothing older than that time is uncommitted
        self._deadline = self._t0 + self._max_lag
        self._created = time.time()  # the wall-clock time of t = 0
        self._phase = 0
        # interned rows: key -> row id; rows made since the last commit wait in _new_rows
        self._ids = {table: itertools.count(1) for table in ("nodes", "layouts", "frames", "stacks")}
        self._ops: dict[tuple, int] = {}  # (stable key, op, module, signature, arguments) -> node
        self._arg_sets: dict[tuple, int] = {}  # (stable key, op, module, signature) -> argument sets seen
        self._varying: dict[tuple, int] = {}  # (stable key, op, module, signature) -> its "varies" node
        self._backward_nodes: dict[tuple, int] = {}
        # (path, class, own parameters) -> node: two models of one class, or a model rebuilt, call modules
        # of the same path and class with other parameters, and each must replay with its own
        self._modules: dict[tuple, int] = {}
        self._entered: dict[tuple, int] = {}  # (path, class) -> the node of its latest enter, for its exit
        self._layouts: dict[tuple, int] = {}
        self._stacks: dict[tuple, int] = {}
        self._frames: dict[int, tuple] = {}  # id(SourceFrame) -> (frame, row id): holding it pins the id
        self._sources: set[str] = set()
        self._raised: tuple = ()  # (files of the user frames an exception of the run went through, where it was raised)
        self._raised_op: tuple[int, str] | None = None  # (seq, the error in one line) of the op that raised it
        self._new_rows: list[tuple] = []
        self._param_names: dict[tuple, str] = {}
        self._snapshots = capture != "structure"  # parameter snapshots after each optimizer step
        self._conn, self._lock = _create(self.path)
        try:
            # the default is measured once the tape exists: its folder then surely does
            self.max_bytes: int | None = cap.default_cap_for(self.path) if max_bytes == cap.DEFAULT else max_bytes
            _write_meta(self._conn, capture, command_line if command_line is not None else sys.argv,
                        self._created, self.max_bytes, parameter_every if self._snapshots else 0,
                        self._output.max_bytes)
        except BaseException:
            self._conn.close()
            _release(self._lock)
            raise
        self._thread = threading.Thread(target=self._run, name=f"tape writer {self.path}", daemon=True)
        self._thread.start()
        self._own = debugger is None
        # without a model given, the first root module called is taken for it: its parameter names then
        # name the optimizer's steps ("fc1.weight", not "group0.0") and the gradient-norm alerts
        self.debugger = debugger or Debugger(capture, model=model, optimizer=optimizer, interactive=False,
                                             cache_bytes=0, discover=True)
        self._plan = SnapshotPlan(self.debugger, parameter_every)
        self.debugger.on_record.append(self._on_record)
        self._unsubscribe = hub.subscribe(self._on_hub, ops=False)  # edits and alerts: the rest come as records
        if self._own:
            self.debugger.attach()
        _open.add(self)

    # ---- the engine thread ------------------------------------------------------------------------
    def _on_record(self, rec, _now=time.perf_counter_ns) -> None:
        q = self._queue
        t = _now()
        if t > self._deadline or self._level or len(q) >= self._soft:
            rec = self._relieve(rec)
            if rec is None:
                return
            t = _now()
        if self._values:
            n = _value_bytes(rec)
            if n:
                if self._bytes_in - self._bytes_out + n > self._value_cap:
                    rec = self._strip(rec, 1, self._behind)
                else:
                    self._bytes_in += n
        if rec.__class__ is EventRecord and self._snapshots:
            self._on_boundary(t, rec)  # queues it, then the parameter snapshot it may call for
        else:
            q.append((t, rec))

    def output(self, stream: str, text: str, _now=time.perf_counter_ns) -> None:
        """Keep `text` that the recorded code wrote to "stdout" or "stderr", filed under the current event;
        from any thread, and it never waits. Past max_output_bytes the output is cut (the bytes counted)."""
        item = self._output.take(stream, text)
        if item is not None and self._level < 3 and not self._closing:  # level 3: recording stopped
            self._queue.append((_now(), item))

    def _on_hub(self, event) -> None:
        cls = event.__class__
        if cls is EditEvent or cls is AlertEvent:  # the rest arrives as debugger records
            self._on_record(event)

    def _relieve(self, rec):
        """Under pressure strip or drop `rec`, wake the writer, and wait while the queue is full or the
        writer is more than max_lag behind."""
        level = self._pressure()
        if level >= 3:  # only the cap stops recording
            self._capped["events"] += 1
            return None
        return self._strip(rec, level, self._capped if level <= self._level else self._behind) if level else rec

    def _pressure(self, _now=time.perf_counter_ns) -> int:
        """Wake the writer, wait while the queue is full or the writer is more than max_lag behind; then the
        drop level: 0 keep everything, 1 drop values, 2 and summaries, 3 drop everything."""
        q = self._queue
        behind = _now() > self._deadline
        if behind or len(q) >= self._soft:
            self._wake.set()
        if (behind or len(q) >= self._limit) and self._level < 3 and not self._closing:
            with self._drained:  # back-pressure: the events themselves are never dropped for speed
                self._drained.wait_for(lambda: (len(q) < self._limit // 2 and _now() <= self._deadline)
                                       or self._level >= 3 or self._closing, timeout=30)
        n = len(q)
        return max(self._level, 2 if n >= self._limit // 2 else 1 if n >= self._limit // 4 else 0)

    def _strip(self, rec, level: int, dropped: dict):
        """`rec` without its raw values (level 1), and without its summaries (level 2); counts the drops in
        `dropped` (the cap's or the writer's: see _capped)."""
        cls = rec.__class__
        if cls is OpRecord:
            if rec.value is not None:
                dropped["values"] += 1
            if level >= 2 and rec.summary is not None:
                dropped["summaries"] += 1
                return rec._replace(summary=None, value=None)
            return rec._replace(value=None) if rec.value is not None else rec
        if cls is BackwardRecord:
            dropped["values"] += sum(v is not None for v in rec.values)
            if level >= 2 and rec.grad_output is not None:
                dropped["summaries"] += 1 + sum(s is not None for s in rec.grad_inputs)
                return rec._replace(grad_output=None, grad_inputs=(), values=())
            return rec._replace(values=()) if rec.values else rec
        if cls is ParamSnapshot:
            values = sum(p.value is not None for p in rec.params)
            dropped["parameter values"] += values
            if level >= 2:
                dropped["parameter summaries"] += len(rec.params)
                return rec._replace(params=())
            return rec._replace(params=tuple(p._replace(value=None) for p in rec.params)) if values else rec
        return rec

    # ---- parameter snapshots (the engine thread) ----------------------------------------------------
    def _on_boundary(self, t: int, rec: EventRecord) -> None:
        """Queue `rec`, then the parameter snapshot it calls for (engine.tape.snapshots.SnapshotPlan): after an
        optimizer step, of the parameters it updated; at a module call before the first step, of the parameters
        as the forward is about to use them."""
        self._queue.append((t, rec))
        due = self._plan.due(rec)
        if due is not None:
            self._snapshot(*due)

    def _snapshot(self, seq: int, iteration: int, after_step: bool, named: list[tuple],
                  _now=time.perf_counter_ns) -> None:
        """Queue a ParamSnapshot of (name, Tensor) pairs, under the queue's dropping policy."""
        level = self._snapshot_level()
        if level >= 2:
            (self._capped if self._level >= 2 else self._behind)["parameter summaries"] += len(named)
            return
        tracer = self.debugger.tracer
        limit, small = tracer.summary_limit, tracer.values_limit  # -1 below the "values" tier
        params = []
        for name, p in named_once(named):
            data = p.array
            keep = data.size <= small  # the raw value too
            if keep and level:  # under pressure values go first
                (self._capped if self._level else self._behind)["parameter values"] += 1
                keep = False
            # on the CPU a copy now that the writer summarises; on a GPU, or where too many bytes wait for the
            # writer already, the summary now
            room = self._bytes_in - self._bytes_out + data.nbytes <= self._value_cap
            if keep and not room:
                self._behind["parameter values"] += 1
            params.append(param_value(name, p, limit, keep and room, copy=room))
            self._bytes_in += held_bytes(params[-1:])
        self._queue.append((_now(), ParamSnapshot(seq, iteration, after_step, tuple(params), held_bytes(params))))

    def _snapshot_level(self, _now=time.perf_counter_ns) -> int:
        """The drop level a parameter snapshot queued now gets (see _pressure, which it may wait in)."""
        if self._level or len(self._queue) >= self._soft or _now() > self._deadline:
            return self._pressure()
        return 0

    def keep_snapshot(self, snap: ParamSnapshot, _now=time.perf_counter_ns) -> None:
        """Queue a parameter snapshot taken before (a live run's, kept by engine.tape.snapshots.ParameterKeeper),
        under the queue's dropping policy."""
        level = self._snapshot_level()
        if level:
            snap = self._strip(snap, level, self._capped if level <= self._level else self._behind)
        self._bytes_in += snap.nbytes  # what the writer counts out once it wrote it
        self._queue.append((_now(), snap))

    # ---- the writer thread --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                closing = self._closing
                self._flush_queue()
                if closing:
                    return
        except BaseException as err:  # disk full, a read-only folder...: stop recording, report at close
            self._error = err
            self._level = 3
        finally:
            with self._drained:
                self._drained.notify_all()

    def _flush_queue(self) -> None:
        q = self._queue
        taken = time.perf_counter_ns()  # before len(q): whatever was queued by then is in this batch
        n = len(q)
        flushes = ()
        if n or self._dropped() != self._dropped_written:
            pop = q.popleft
            items = [pop() for _ in range(n)]
            flushes = [rec for _, rec in items if rec.__class__ is threading.Event]
            if self.max_bytes is None:
                self.write_batch(items)
            else:
                self._write_capped(items)
        for done in flushes:
            done.set()
        self._deadline = taken + self._max_lag
        with self._drained:
            self._drained.notify_all()
        if self.max_bytes is not None:
            self._check_cap()

    # a batch that could bring the tape near its cap (one that piled up while the writer was starved)
    # must not overshoot it: write it in slices and look at the size between them. Far from the cap,
    # the batch goes whole: slices of 256 events made 16 times the transactions and `events` rows
    _CAP_SLICE = 256

    def _write_capped(self, items: list[tuple]) -> None:
        size, events = self._size, max(self.events, 1)
        step = self._CAP_SLICE
        if not self._level and self.events and size + 2 * len(items) * size / events < 0.6 * self.max_bytes:
            step = max(len(items), 1)
        for start in range(0, max(len(items), 1), step):
            chunk = items[start:start + step]
            if self._level >= 3:
                for _, rec in chunk:
                    self._lost(rec)
                chunk = []
            elif self._level:
                chunk = [(t, rec if rec.__class__ is threading.Event else self._strip(rec, self._level, self._capped))
                         for t, rec in chunk]
            self.write_batch(chunk)
            self._check_cap()

    def _lost(self, rec) -> None:
        """Count what the writer drops whole, once recording stopped."""
        cls = rec.__class__
        if cls is ParamSnapshot:
            self._capped["parameter summaries"] += len(rec.params)
            self._bytes_out += rec.nbytes
        elif cls is not threading.Event and cls is not OutputText:  # output past the size cap: not kept
            self._capped["events"] += 1

    def _dropped(self) -> dict[str, int]:
        """Everything dropped so far, what -> count (the cap's and the writer's)."""
        return {what: n + self._behind[what] for what, n in self._capped.items()}

    def _check_cap(self) -> None:
        size = self._size = self._conn.execute("PRAGMA page_count").fetchone()[0] * self._page_size
        if size >= self.max_bytes and self._level < 3:
            self._level = 3
            self.cap_reached = True
            self.status = f"size cap of {cap.human_size(self.max_bytes)} reached"
        elif size >= 0.8 * self.max_bytes:
            self._level = max(self._level, 2)
        elif size >= 0.6 * self.max_bytes:
            self._level = max(self._level, 1)

    def write_batch(self, items: list[tuple]) -> None:
        """Commit (clock ns, record or event) pairs in one transaction (the writer thread's work)."""
        rows = _Rows()
        self._encode(items, rows)
        drops = []
        for what, count in self._dropped().items():
            delta = count - self._dropped_written[what]
            if delta:
                drops.append((None, rows.first_seq, rows.last_seq, what, delta))
                self._dropped_written[what] = count
        drops += rows.output.drops()
        conn = self._conn
        conn.execute("BEGIN")
        try:
            for table, table_rows in (*rows.tables.items(), ("iterations", rows.iterations), ("drops", drops)):
                if table_rows:
                    _insert_rows(conn, table, table_rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.events += rows.count
        self._bytes_out += rows.value_bytes

    def _encode(self, items: list[tuple], rows: _Rows) -> None:
        """Turn (clock ns, record) pairs into rows (the writer's hot path: lookups are held in locals)."""
        t0 = self._t0
        tables = rows.tables
        add = tables["events"].append
        sum_heads, sum_layouts, sums = [], [], []
        params = []  # (snapshot, ParamValue, summary) of parameter snapshots
        ops, op_node = self._ops, self._op_node
        stack_id = self._stack_id
        layouts, layout = self._layouts, self._layout
        modules, backward_nodes = self._modules, self._backward_nodes
        phase = self._phase
        grad_calls = tables["grad_calls"]
        pass_starts = tables["pass_starts"].append
        grad_from = grad_to = 0  # the open stretch of backward nodes run by autograd.grad() (0: none)
        for t, rec in items:
            t -= t0
            cls = rec.__class__
            if cls is OpRecord:
                ev = rec.event
                phase = 0
                options = ev.args
                key = (ev.key, ev.op, ev.module, ev.input_shapes, ev.output_shape, ev.dtype, ev.device,
                       ev.requires_grad, op_args(ev.op, options) if options else ())
                node = ops.get(key) or op_node(key)
                sid = 0 if rec.source is None else stack_id(rec.source, rec.stack)
                add((ev.seq, OP, rec.iteration, 0, rec.depth, t, node, ev.output, 0, sid, ev.inputs))
                s = rec.summary
                if s is not None:
                    sum_heads.append((ev.output, ev.seq))
                    sum_layouts.append(layouts.get((s.shape, s.dtype, s.device)) or layout(s))
                    sums.append(s)
                if rec.value is not None:
                    rows.value(ev.output, ev.seq, rec.value)
            elif cls is BackwardRecord:
                ev = rec.event
                phase = 1
                node = backward_nodes.get((ev.key, ev.op)) or self._backward_node(ev.key, ev.op)
                if ev.grad_call:
                    grad_from, grad_to = grad_from or ev.seq, ev.seq
                elif grad_from:
                    grad_calls.append((grad_from, grad_to))
                    grad_from = 0
                if ev.pass_start:
                    pass_starts((ev.seq,))
                add((ev.seq, BACKWARD, rec.iteration, 1, rec.depth, t, node, ev.grad_output, ev.forward_seq,
                     0, ev.grad_inputs))
                if rec.grad_output is not None:
                    for tid, s in zip((ev.grad_output, *ev.grad_inputs), (rec.grad_output, *rec.grad_inputs)):
                        if s is not None and tid:
                            sum_heads.append((tid, ev.seq))
                            sum_layouts.append(layouts.get((s.shape, s.dtype, s.device)) or layout(s))
                            sums.append(s)
                if rec.values:
                    for tid, v in zip((ev.grad_output, *ev.grad_inputs), rec.values):
                        if v is not None and tid:
                            rows.value(tid, ev.seq, v)
            elif cls is EventRecord:
                ev = rec.event
                phase = _PHASE.get(rec.phase, 0)
                ecls = ev.__class__
                if ecls is ModuleEvent:
                    if ev.enter:
                        node = modules.get((ev.path, ev.cls, ev.params)) or self._module(ev.path, ev.cls, ev.params)
                        self._entered[(ev.path, ev.cls)] = node
                    else:  # an exit names no parameters: it is the node of the call it ends
                        node = self._entered.get((ev.path, ev.cls)) or self._module(ev.path, ev.cls, ())
                    add((ev.seq, MODULE_ENTER if ev.enter else MODULE_EXIT, rec.iteration, phase, rec.depth,
                         t, node, 0, 0, 0, ev.tensors))
                elif ecls is OptimizerEvent:
                    self._optimizer_step(rec, t, phase, tables)
                elif ecls is IterationEvent:
                    add((ev.seq, MARK, rec.iteration, phase, rec.depth, t, 0, 0, ev.iteration, 0, ()))
            elif cls is EditEvent:
                add((rec.seq, EDIT, rec.iteration, phase, 0, t, 0, 0, 0, 0, ()))
                tables["edits"].append((rec.seq, rec.kind, rec.target, _args_json(rec.args), int(rec.applied),
                                        rec.message, rec.iteration))
            elif cls is AlertEvent:
                add((rec.seq, ALERT, rec.iteration, phase, 0, t, 0, 0, rec.forward_seq, 0, ()))
                tables["alerts"].append((rec.seq, rec.kind, rec.message, rec.op, rec.key, rec.module,
                                         rec.forward_seq, rec.iteration, rec.file, rec.line, rec.code,
                                         rec.value))
                for slot, s in enumerate(rec.inputs):
                    if s is not None:
                        rows.alert_inputs.append(((rec.seq, slot), layout(s), s))
            elif cls is ParamSnapshot:
                rows.value_bytes += rec.nbytes
                limit = self.debugger.tracer.summary_limit
                for p in rec.params:
                    params.append((rec, p, p.summary if p.summary is not None else summarize(p.copy, limit, "cpu")))
            elif cls is OutputText:  # filed under the last event queued before it
                events = tables["events"]
                rows.output.add(events[-1][0] if events else self._output_seq, rec)
        self._phase = phase
        if grad_from:
            grad_calls.append((grad_from, grad_to))
        if tables["events"]:
            self._output_seq = tables["events"][-1][0]
        if params:
            rows.parameters(params, [layout(s) for _, _, s in params])
        rows.finish(sum_heads, sum_layouts, sums, self._new_rows)

    def _optimizer_step(self, rec: EventRecord, t: int, phase: int, tables: dict) -> None:
        """The event row and the optimizer_steps row of an optimizer step."""
        ev = rec.event
        sid = 0 if rec.source is None else self._stack_id(rec.source, rec.stack)
        tables["events"].append((ev.seq, OPTIMIZER, rec.iteration, phase, rec.depth, t, 0, 0, 0, sid, ()))
        update, weight, grad = ev.update_norms, ev.weight_norms, ev.grad_norms
        key = (tuple(update), tuple(weight), tuple(grad))  # the same names step after step
        names = self._param_names.get(key) or self._param_names.setdefault(key, to_json(key))
        tables["optimizer_steps"].append((ev.seq, ev.optimizer, names, float_blob(ev.lrs), float_blob(
            (*update.values(), *weight.values(), *grad.values()))))

    # ---- interning: small tables that events point into; the hot path looks up the dicts inline --------
    def _add(self, table: str, *row) -> int:
        """Queue a new row of an interned table with the next id of that table; returns the id."""
        rid = next(self._ids[table])
        self._new_rows.append((table, (rid, *row)))
        return rid

    def _op_node(self, key: tuple) -> int:
        """The node of an op as it ran: stable key, op, module path, signature and arguments; past
        MAX_ARG_SETS argument sets for one signature, the signature's node marked "varies"."""
        stable, op, args = key[0], key[1], key[-1]
        if len(self._ops) >= MAX_OP_NODES:  # shapes or settings that change all the time: stay bounded
            self._ops.clear()  # (an op seen again gets a new, equal row)
            self._arg_sets.clear()
            self._varying.clear()
            self._backward_nodes.clear()
        if args:
            signature = key[:-1]
            seen = self._arg_sets.get(signature, 0)
            if seen >= MAX_ARG_SETS:  # not remembered in _ops: calls with new settings add nothing
                rid = self._varying.get(signature)
                if rid is None:
                    rid = self._varying[signature] = self._new_op_node(signature, '"varies"')
                self._backward_nodes[(stable, op)] = rid
                return rid
            self._arg_sets[signature] = seen + 1
        rid = self._ops[key] = self._new_op_node(key[:-1], to_json(args) if args else None)
        return rid

    def _new_op_node(self, signature: tuple, args: str | None) -> int:
        stable, op, module, in_shapes, out_shape, dtype, device, grad = signature
        rid = self._add("nodes", "op", stable, op, module, to_json(in_shapes), to_json(out_shape), dtype, device,
                        int(grad))
        if args:
            self._new_rows.append(("node_args", (rid, args)))
        self._backward_nodes[(stable, op)] = rid
        return rid

    def _backward_node(self, stable: str, op: str) -> int:
        """A backward node whose forward op was not recorded (it ran before the recording began)."""
        rid = self._backward_nodes[(stable, op)] = self._add("nodes", "op", stable, op, *(None,) * 6)
        return rid

    def _module(self, path: str, cls: str, params: tuple) -> int:
        """The node of a module call: its path, class and own parameters ((tensor id, name) pairs, on enter)."""
        if len(self._modules) >= MAX_MODULE_NODES:  # a script making new modules all the time: stay bounded
            self._modules.clear()  # (a module seen again gets a new, equal row)
            self._entered.clear()
        rid = self._modules[(path, cls, params)] = self._add("nodes", "module", path, cls, path, *(None,) * 5)
        if params:
            self._new_rows.append(("module_params", (rid, to_json([list(p) for p in params]))))
        return rid

    def _layout(self, s) -> int:
        key = (s.shape, s.dtype, s.device)
        rid = self._layouts.get(key)
        if rid is None:
            rid = self._layouts[key] = self._add("layouts", to_json(s.shape), s.dtype, s.device)
        return rid

    def _frame(self, f) -> int:
        hit = self._frames.get(id(f))
        if hit is not None:
            return hit[1]
        rid = self._add("frames", f.file, f.line, f.function, f.text)
        self._frames[id(f)] = (f, rid)
        if f.file not in self._sources:
            self._sources.add(f.file)
            self._new_rows.append(("sources", (f.file, *_snapshot(f.file))))
        return rid

    def _stack_id(self, source, stack: tuple) -> int:
        """The row id of a (source, stack) pair, added the first time it is seen."""
        key = (id(source), *map(id, stack))  # self._frames pins the frames: ids stay theirs
        rid = self._stacks.get(key)
        if rid is None:
            frame = self._frame
            rid = self._stacks[key] = self._add("stacks", frame(source), ids_text(tuple(frame(f) for f in stack)))
        return rid

    @property
    def pending(self) -> int:
        """Events queued for the writer and not yet committed (never more than queue_events)."""
        return len(self._queue)

    def keep_failure(self, err: BaseException, op: OpEvent | None = None) -> None:
        """Keep, for the tape, the source files of the user frames that `err` (the run's end) went through (the
        user's code, engine.debug.source.raised_through: not a tool's that ran it), the line that raised it (a script
        that fails before its first op otherwise leaves no line to show), and the op that raised it: as the event it
        never emitted, in the iteration the run was in, so that a replay shows the failed iteration as the live run
        did. op: that event, where the caller made it already (the app's live view, so that both give it one seq)."""
        self.debugger.explain_failure(err)  # an in-place modification error becomes an alert, on the tape
        frames = raised_through(err.__traceback__)
        where = frame_of(*frames[-1]) if frames else None
        if where is not None:
            self._raised = ({f.f_code.co_filename for f, _ in frames}, where)
        raised = raised_op(err)
        if raised is None or self._raised_op is not None or self._closed or self._level >= 3:
            return  # (a recording the size cap stopped records nothing more)
        event = op if op is not None else raised.event
        stack = tuple(frame_of(f, line) for f, line in reversed(frames[-MAX_CHAIN:]))
        self._on_record(OpRecord(event, self.debugger.state.iteration, raised.depth, where, stack))
        self._raised_op = (event.seq, error_line(err)[:MAX_ERROR_CHARS])

    # ---- closing --------------------------------------------------------------------------------------
    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything queued so far is committed; False if that took longer than `timeout`."""
        if not self._thread.is_alive():
            return not self._queue
        done = threading.Event()
        self._queue.append((0, done))  # the writer sets it once the batch holding it is committed
        self._wake.set()
        return done.wait(timeout)

    def close(self) -> None:
        """Stop recording, commit what is queued, checkpoint the WAL and close the file; idempotent."""
        if self._closed:
            return
        self._closed = True
        _open.discard(self)
        self._unsubscribe()
        for due in self._plan.at_end() if self._error is None and not self.cap_reached else ():
            self._snapshot(*due)  # after each optimizer's last step: what it left, for a replay's end
        if self._own:
            self.debugger.detach()
        if self._on_record in self.debugger.on_record:
            self.debugger.on_record.remove(self._on_record)
        self._closing = True
        self._wake.set()
        self._thread.join()
        conn = self._conn
        try:
            if self._error is None:
                status = "complete" if self.status == "recording" else self.status
            else:
                status = f"failed: {self._error}"
            self.status = status
            meta = [("status", status), ("closed", _iso()), ("events", str(self.events)),
                    ("dropped_behind", json.dumps({what: n for what, n in self._behind.items() if n}))]
            files, where = self._raised or ((), None)
            if where is not None:
                meta.append(("raised_at", json.dumps([where.file, where.line, where.function, where.text])))
            if self._raised_op is not None:
                meta.append(("raised_op", json.dumps(self._raised_op)))
            with conn:
                conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta)
                conn.executemany("INSERT OR IGNORE INTO sources (file, text, note) VALUES (?, ?, ?)",
                                 [(file, *_snapshot(file)) for file in sorted(files) if file not in self._sources])
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")  # one file, readable on read-only media
        except sqlite3.Error as err:
            if self._error is None:
                self._error = err
        finally:
            conn.close()
            _release(self._lock)
        if self._error is not None:
            raise TapeError(f"recording {self.path} failed: {self._error}") from self._error

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None and self.status == "recording":
            self.status = stopped_by(exc) or "recording"
            self.keep_failure(exc)
        self.close()

    @property
    def _page_size(self) -> int:
        size = self.__dict__.get("_page")
        if size is None:
            size = self.__dict__["_page"] = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return size


class _Rows:
    """The rows of one batch, by table (interned rows first, so what events point to exists)."""

    def __init__(self) -> None:
        self.tables: dict[str, list] = {name: [] for name in
                                        ("nodes", "layouts", "frames", "stacks", "sources",
                                         "events", "summaries", "alert_inputs", "tensor_values",
                                         "optimizer_steps", "edits", "alerts", "module_params",
                                         "node_args", "parameters", "output", "grad_calls", "pass_starts")}
        self.iterations: list[tuple] = []
        self.alert_inputs: list[tuple] = []
        self.output = OutputRows()
        self.value_bytes = 0
        self.first_seq = self.last_seq = self.count = 0

    def value(self, tensor: int, seq: int, array) -> None:
        self.value_bytes += array.nbytes
        self.tables["tensor_values"].append((tensor, seq, npy_bytes(array)))

    def parameters(self, params: list[tuple], layouts: list[int]) -> None:
        """Rows of parameter snapshots: (ParamSnapshot, ParamValue, summary) triples and their layout ids."""
        heads = [(p.name, snap.seq) for snap, p, _ in params]
        summaries = summary_rows(heads, layouts, [s for _, _, s in params])
        self.tables["parameters"] = [
            (name, seq, snap.iteration, int(snap.after_step), p.tensor, *row,
             None if p.value is None else npy_bytes(p.value))
            for (snap, p, _), (name, seq, *row) in zip(params, summaries)]

    def finish(self, heads: list, layouts: list, summaries: list, new_rows: list) -> None:
        self.tables["summaries"] = summary_rows(heads, layouts, summaries)
        if self.alert_inputs:
            h, lay, s = zip(*self.alert_inputs)
            self.tables["alert_inputs"] = summary_rows(list(h), list(lay), list(s))
        for table, row in new_rows:
            self.tables[table].append(row)
        new_rows.clear()
        self.tables["output"] = self.output.table_rows()
        events = self.tables["events"]
        if events:
            events.sort()  # by seq: arrival order already, but for events from other threads
            self.first_seq, self.last_seq, self.count = events[0][0], events[-1][0], len(events)
            columns = EventColumns(events)
            self.tables["events"] = columns.chunks()
            self.iterations = columns.iterations()


def stopped_by(err: BaseException) -> str | None:
    """The status of a tape whose recorded code ended with `err`; None when that is a clean exit."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted by Ctrl-C"
    if isinstance(err, SystemExit):
        return None if err.code is None or err.code == 0 else f"the script exited with {err.code!r}"[:200]
    text = " ".join(str(err).split())  # one line: a KeyError of a tensor is its whole printout, over lines
    text = text if len(text) <= 160 else text[:159] + "\u2026"
    return f"the recorded code raised {type(err).__name__}" + (f": {text}" if text else "")


def ended_by_itself(status: str) -> bool:
    """Whether a tape's status says the recorded code came to its own end (finished, raised, exited), so that its
    last iteration is whole as far as it got; not cut off by Ctrl-C, a signal, the size cap or a killed recorder."""
    return status == "complete" or status.startswith(("the recorded code raised ", "the script exited with "))


def _insert_rows(conn: sqlite3.Connection, table: str, rows: list[tuple]) -> None:
    """Insert `rows` into `table` with one statement per ROWS_PER_STATEMENT rows, not one per row.

    The sqlite3 module lets go of the GIL around every statement step, and while the engine thread
    computes, taking it back can wait a whole switch interval (5 ms): a step per row (executemany) made
    a batch of 700 summaries take two seconds, and the tape fell that far behind the training loop.
    """
    per = max(1, min(ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(rows[0])))
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        conn.execute(_multi_row_insert(table, len(chunk)), list(itertools.chain.from_iterable(chunk)))


@functools.cache
def _multi_row_insert(table: str, n: int) -> str:
    """The INSERT of `n` full rows into `table` (an upsert where _ON_CONFLICT says how)."""
    head, _, row = _INSERT[table].partition(" VALUES ")
    return f"{head} VALUES {', '.join([row] * n)}{_ON_CONFLICT.get(table, '')}"


def _value_bytes(rec) -> int:
    cls = rec.__class__
    if cls is OpRecord:
        return rec.value.nbytes if rec.value is not None else 0
    if cls is BackwardRecord and rec.values:
        return sum(v.nbytes for v in rec.values if v is not None)
    return 0


def _args_json(args: tuple) -> str:
    try:
        return to_json(args)
    except (TypeError, ValueError):  # an edit argument that is not plain data: keep its text
        return to_json([[name, repr(value)] for name, value in args])


def _snapshot(file: str) -> tuple[str | None, str]:
    """(text, note) of a user source file, read now so the source view works without the file."""
    if file.startswith("<"):
        return None, "not a file"
    try:
        size = os.path.getsize(file)
        if size > MAX_SOURCE_BYTES:
            return None, f"not copied: {size} bytes"
        with tokenize.open(file) as f:  # honours a coding cookie, like Python itself
            return f.read(), "copied"
    except (OSError, SyntaxError, UnicodeDecodeError) as err:
        return None, f"not copied: {err}"


def _create(path: str) -> tuple[sqlite3.Connection, int | None]:
    """A new, empty tape at `path` (replacing an older tape; never another kind of file, nor one that
    another recorder is writing), and the lock held on it while it is recorded (see _hold)."""
    if not path:
        raise TapeError("cannot record: the tape's path is empty")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        why = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise TapeError(f"cannot record to {path}: the folder {folder} {why}")
    try:
        if os.path.exists(path):
            if not os.path.isfile(path):
                raise TapeError(f"cannot record to {path}: it is not a file")
            with open(path, "rb") as f:
                head = f.read(len(schema.SQLITE_MAGIC))
            if head and head != schema.SQLITE_MAGIC:
                raise TapeError(f"cannot record to {path}: it exists and is not a tape (refusing to overwrite)")
            _release(_hold(path))  # TapeError while another recorder holds it
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        open(path, "xb").close()  # an OSError here names the cause, where SQLite says "unable to open"
        lock = _hold(path)
    except OSError as err:
        raise TapeError(f"cannot record to {path}: {err.strerror or err}") from None
    # the absolute path: SQLite takes "" and ":memory:" for databases that are never written to a file
    conn = sqlite3.connect(os.path.abspath(path), isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process; fsync only at checkpoints
        conn.execute("BEGIN")
        for statement in schema.create_statements():
            conn.execute(statement)
        conn.execute("COMMIT")
    except sqlite3.Error as err:
        conn.close()
        _release(lock)
        raise TapeError(f"cannot record to {path}: {err}") from None
    return conn, lock


def _hold(path: str) -> int | None:
    """An exclusive advisory lock (flock) on the tape file, held while it is recorded: a second recorder
    of the same path would delete the first's files under it, and the first would write on unseen. The
    system lets go of it when the process ends, however it ends. None where there are no such locks."""
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise TapeError(f"cannot record to {path}: another recorder is writing it") from None
    return fd


def _release(lock: int | None) -> None:
    if lock is not None:
        os.close(lock)  # closing the descriptor lets go of its lock


def _write_meta(conn: sqlite3.Connection, capture: str, argv: list[str], created: float,
                max_bytes: int | None, parameter_every: int, max_output_bytes: int) -> None:
    import engine
    from engine.backend import cupy_module

    cp = cupy_module()
    meta = {
        "format_version": str(schema.FORMAT_VERSION),
        "tapescope_version": engine.__version__,
        "created": _iso(created),
        "created_unix": f"{created:.6f}",
        "command_line": json.dumps(list(argv)),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cupy": cp.__version__ if cp is not None else "",
        "devices": json.dumps(_devices(cp)),
        "capture": capture,
        "max_bytes": "" if max_bytes is None else str(max_bytes),
        "parameter_every": str(parameter_every),  # 0: no parameter snapshots
        "max_output_bytes": str(max_output_bytes),
        "std_correction": "1",  # summaries' std divides by n - 1 (tapes without the key: by n)
        "platform": platform.platform(),
        "status": "recording",
    }
    with conn:
        conn.executemany(_INSERT["meta"], list(meta.items()))


def _devices(cp) -> list[str]:
    names = [f"cpu: {_cpu_name()}"]
    if cp is not None:
        try:
            for i in range(cp.cuda.runtime.getDeviceCount()):
                name = cp.cuda.runtime.getDeviceProperties(i)["name"]
                names.append(f"cuda:{i}: {name.decode() if isinstance(name, bytes) else name}")
        except Exception:  # no driver or no GPU: CuPy is installed but there is nothing to name
            pass
    return names


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _iso(unix: float | None = None) -> str:
    utc = datetime.UTC
    when = datetime.datetime.now(utc) if unix is None else datetime.datetime.fromtimestamp(unix, utc)
    return when.isoformat(timespec="seconds")


@atexit.register
def _close_all() -> None:
    """Close recorders still open at exit, so their tapes are complete and checkpointed."""
    for rec in list(_open):
        try:
            rec.close()
        except TapeError as err:
            print(f"tapescope: {err}", file=sys.stderr)
