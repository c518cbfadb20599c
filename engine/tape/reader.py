"""Reading a .tape file: lazily, read-only, and treating every byte as untrusted data.

    with engine.tape.open("run.tape") as tape:
        tape.iteration_count(); tape.iteration(3)
        for event in tape.events(iteration=3): ...          # OpEvent, BackwardEvent, ModuleEvent, ...
        for rec in tape.records(iteration=3): ...           # OpRecord, BackwardRecord, EventRecord
        tape.graph(3); tape.summary(tensor_id); tape.value(tensor_id); tape.alerts(); tape.edits()
        tape.loss_curves()   # {"errD": {iteration: loss}, "errG": {...}}: one curve per source line of a loss
        tape.eval_loss_curves()   # {"val_loss": {iteration: mean loss}}: losses computed without a gradient
        tape.losses()        # iteration -> loss of the first training curve
        tape.loss_history()  # both kinds at once, as an engine.debug.losses.LossCurves
        tape.parameter_names(); tape.parameters(3); tape.parameter("fc1.weight", 3)  # ParameterSnapshot
        tape.optimizer_steps(); tape.grad_norms("fc1.weight")  # (iterations, norms): its gradient's, per step
        tape.output(stop_seq=cursor + 1); tape.output_cut()  # what the script printed, as far as an event

Opening reads the meta table and checks the schema, nothing else, so it takes the same time for any
size of tape. Any problem with the file (not SQLite, truncated, damaged, too new, missing tables, values
of the wrong type or absurd size) raises TapeError with one line that says what, except an op node's
damaged arguments and a damaged chunk of the script's output, which are left out, a damaged row of the
iterations table, told from its events instead, and a damaged index, without which its table is read; each
is noted in `tape.notes`. Nothing in a tape is ever executed: SQL is parameterised, text stays text, arrays
load without pickle.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import sqlite3
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.debug.losses import (
    LOSS_OPS,
    NODE,
    STEP,
    EvalLoss,
    EvalOp,
    LossCurves,
    Root,
    Step,
    evaluates_closure,
    pass_starts,
    summed_rows,
)
from engine.debug.records import BackwardRecord, EventRecord, IterationEvent, OpRecord
from engine.debug.source import SourceFrame
from engine.debug.summary import TensorSummary
from engine.events import AlertEvent, BackwardEvent, EditEvent, ModuleEvent, OpEvent, OptimizerEvent
from engine.tape import schema
from engine.tape.codec import (
    CHUNK_COLUMNS,
    MAX_COUNTS_BYTES,
    MAX_ERROR_CHARS,
    MAX_SAMPLES_BYTES,
    chunk_arrays,
    parse_args,
    parse_chunk,
    parse_floats,
    parse_ids,
    parse_json,
    parse_npy,
    parse_real,
    parse_shape,
    parse_shapes,
    parse_summary,
    printable,
    tuples,
)
from engine.tape.damage import LOST_TO_END, cut_short, merged, readable_rows
from engine.tape.errors import TapeError
from engine.tape.output import DROPPED, OutputRow, read_rows

# What a damaged or hostile tape can make the decoders raise; each becomes a TapeError.
_BAD = (sqlite3.Error, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
        RecursionError, struct.error, zlib.error, EOFError)
_CHUNK = 2048
MAX_NOTES = 100
# A summary's histogram and samples are small: a blob past that size is not read into memory (length()
# does not load it), but replaced by one byte that parse_summary refuses as a bad size.
_SUMMARY_COLUMNS = ", ".join(
    f"CASE WHEN length({c}) <= {MAX_COUNTS_BYTES if c == 'counts' else MAX_SAMPLES_BYTES} THEN {c} ELSE x'00' END"
    if c in ("counts", "samples") else c for c in schema.columns("summaries")[2:])


class IterationInfo(NamedTuple):
    """Where an iteration lies on the tape: its event sequence range, counts and clock range (ns)."""

    iteration: int
    first_seq: int
    last_seq: int
    events: int
    ops: int
    backward: int
    t_first: int
    t_last: int


class EventRow(NamedTuple):
    """One event as stored: where it happened (iteration, phase, depth, clock ns) and the event itself."""

    seq: int
    kind: str
    iteration: int
    phase: str
    depth: int
    t: int
    event: object


class ParameterSnapshot(NamedTuple):
    """A parameter's recorded value: as the optimizer step with sequence number `seq` (of iteration
    `iteration`) left it, or (after_step False) as iteration `iteration` began, before the event `seq`."""

    name: str  # dotted, as the model names it ("fc1.weight")
    tensor: int
    iteration: int
    seq: int
    after_step: bool
    summary: TensorSummary
    value: np.ndarray | None  # "values" tier, small parameters only


class Drop(NamedTuple):
    """What the recorder dropped between two event sequence numbers: to keep up, or for the size cap (the tape's
    meta `dropped_behind` counts the former)."""

    first_seq: int
    last_seq: int
    what: str
    count: int


@dataclass(frozen=True, slots=True)
class IterationGraph:
    """The forward ops and backward nodes of one iteration, and the tensors that link them.

    edges: (producer op seq, consumer op seq, tensor id); leaves: (tensor id, consumer op seq) for
    inputs no op of the iteration made (data, parameters, values from earlier iterations); names:
    tensor id -> dotted parameter name ("fc1.weight") of the parameters its module calls reported; stacks:
    op seq -> the user frames it ran under, innermost first (none for an op whose stack is damaged).
    """

    iteration: int
    ops: tuple[OpEvent, ...]
    backward: tuple[BackwardEvent, ...]
    edges: tuple[tuple[int, int, int], ...]
    leaves: tuple[tuple[int, int], ...]
    names: dict = field(default_factory=dict)
    stacks: dict = field(default_factory=dict)


def _guard(method):
    """Turn what a damaged tape makes a method raise into one TapeError."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except _BAD as err:
            raise self._damaged(err) from None

    return wrapper


def _guard_iter(method):
    """_guard for generator methods: errors raised while iterating become TapeError too."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        it = method(self, *args, **kwargs)
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except _BAD as err:
                raise self._damaged(err) from None
            yield item

    return wrapper


_TYPE_NAMES = {bytes: "a blob", type(None): "NULL", float: "a real number", str: "text"}  # SQLite's, in words
# 1 for a row of the iterations table with a value that is no whole number (damaged), else 0
_NOT_WHOLE = " OR ".join(f"typeof({c}) != 'integer'" for c in schema.columns("iterations"))
_COLUMN_INDEX = {name: i for i, (name, _) in enumerate(CHUNK_COLUMNS[:10])}  # Tape.columns
LOSS_COLUMNS = ("kind", "iteration", "tensor", "ref", "node", "stack")  # what Tape.loss_curves reads


def open_tape(path: str | os.PathLike) -> Tape:
    """Open a tape for reading (read-only); raises TapeError when it is not a readable tape."""
    return Tape(path)


class Tape:
    """A tape opened for reading; see the module docstring. Close it, or use it as a context manager."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._closed = False
        self._wal, self._log = _wal_state(self.path)  # before SQLite, which makes an empty -wal file
        self._conn = _connect(self.path)
        try:
            self.meta = self._check()
        except TapeError:
            self._conn.close()
            raise
        except _BAD as err:
            self._conn.close()
            raise self._damaged(err) from None
        self.format_version = int(self.meta["format_version"])
        tables = {name for (name,) in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('module_params', 'parameters', 'node_args', 'output', 'grad_calls', 'pass_starts')")}
        self._has_module_params = "module_params" in tables
        # ops' arguments (reduction='mean'): tapes from before they were kept lack them
        self._op_args = "node_args" in tables
        # whether the tape has the table of parameter snapshots (tapes from before they were kept lack it)
        self.keeps_parameters = "parameters" in tables
        # whether the tape has the table of the script's output (tapes from before it was kept lack it)
        self.keeps_output = "output" in tables
        # which backward nodes autograd.grad() ran (tapes from before they were told apart lack the table)
        self._has_grad_calls = "grad_calls" in tables
        self._grad_calls: tuple[list[int], list[int]] | None = None  # read on first use: see _stretches
        # where each backward pass starts (tapes from before the engine told them lack the table: a guess then)
        self.marks_pass_starts = "pass_starts" in tables
        self._pass_starts: list[int] | None = None  # read on first use: see _starts
        self.capture = self.meta.get("capture", "")
        # summaries' std divides by n - 1 since the writer noted it; before, by n (converted as read)
        self._std_over_n = self.meta.get("std_correction") != "1"
        self._cache: dict[tuple, object] = {}
        self._chunks: dict[tuple, list] = {}
        # one line per part of the tape left out as damaged (a node's malformed arguments), at most MAX_NOTES
        self.notes: list[str] = []
        # the stretches of events a damaged tape lost, (first seq, last seq) each, in order (last: LOST_TO_END where
        # nothing after it can be read); found as the events are read, so whole once all were (columns()). Every
        # reader of events goes on past them, so a replay's charts, timeline and graph show the same events
        self.events_lost: list[tuple[int, int]] = []
        self.events_error = ""  # why the first of them was lost
        # (first seq, last seq) of the chunks SQLite can still reach, once one could not be read (None: none failed)
        self._reachable: list[tuple[int, int]] | None = None
        self._bad_chunks: set[int] = set()  # first seqs of reachable chunks whose bytes cannot be read or decoded
        self._told: list[IterationInfo] | None = None  # the iterations from the events, where the table is damaged
        self.unreadable: dict[str, int] = {}  # table -> rows asked for that a damaged page kept from being read

    @property
    def missing_log(self) -> str:
        """The name of the -wal file a tape never closed (status "recording") holds its latest events in, where it
        does not lie beside the tape (the tape was copied alone): what came after SQLite's last checkpoint is
        missing; "" where the tape was closed or its -wal file is there."""
        if not self._wal or self._log or self.meta.get("status") != "recording":
            return ""
        return f"{os.path.basename(self.path)}-wal"

    def _damaged(self, err: BaseException) -> TapeError:
        if self._closed:  # not damaged: read after close() (or after its `with` block)
            return TapeError(f"{self.path}: the tape is closed; read it before close(), inside its `with` block")
        text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        folder = os.path.dirname(os.path.abspath(self.path))
        if self._wal and text == "unable to open database file" and not os.access(folder, os.W_OK):
            # SQLite reads a tape that was never closed only where it may make the -shm file beside it
            return TapeError(f"{self.path}: the recording was not closed, and such a tape can be read only in a "
                             f"folder it may write to: copy it and its -wal file to one")
        return TapeError(f"{self.path}: damaged tape ({text})")

    def _check(self) -> dict[str, str]:
        """Read the meta table and check the format version and the schema; returns the meta dict."""
        found = {name: (kind, sql or "") for name, kind, sql in
                 self._conn.execute("SELECT name, type, sql FROM sqlite_master LIMIT 10000")}
        if "meta" not in found:
            if self._wal and not self._log:
                raise TapeError(f"{self.path}: the recording was not closed and its log file "
                                f"{os.path.basename(self.path)}-wal, which holds what was recorded, is missing "
                                f"(copy it next to the tape)")
            raise TapeError(f"{self.path}: not a tape (no meta table)")
        meta = {}
        for key, value in self._conn.execute("SELECT key, value FROM meta LIMIT 1000"):
            if type(key) is not str or type(value) is not str or len(value) > 1 << 20:
                raise TapeError(f"{self.path}: damaged tape (bad meta entry)")
            meta[key] = value
        version = meta.get("format_version", "")
        if not (version.isascii() and version.isdigit()) or len(version) > 6:  # "٣" is a digit too
            raise TapeError(f"{self.path}: not a tape (no format version)")
        if int(version) > schema.FORMAT_VERSION:
            import engine

            writer = printable(meta.get("tapescope_version", "?"))
            raise TapeError(f"{self.path}: it was written by tapescope {writer} (tape format {version}); this is "
                            f"tapescope {engine.__version__}, which reads tape format "
                            f"{schema.FORMAT_VERSION}: upgrade tapescope to open it")
        for table in schema.TABLES:
            kind, sql = found.get(table, (None, ""))
            if kind is None and table in schema.OPTIONAL:
                continue
            if kind != "table" or sql.upper().startswith("CREATE VIRTUAL"):
                raise TapeError(f"{self.path}: damaged tape (table '{table}' is missing)")
            have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in schema.columns(table) if c not in have]
            if missing:
                raise TapeError(f"{self.path}: damaged tape (table '{table}' lacks {', '.join(missing)})")
        return meta

    # ---- iterations and counts ----------------------------------------------------------------
    @_guard
    def iteration_count(self) -> int:
        """How many iterations the tape holds."""
        if self._told is not None:
            return len(self._told)
        try:
            return _int(self._one("SELECT count(*) FROM iterations")[0])
        except sqlite3.Error:
            return len(self._tell_iterations())

    @_guard
    def iterations(self, start: int | None = None, stop: int | None = None) -> list[IterationInfo]:
        """The iterations numbered in [start, stop) (all by default), in order."""
        lo = -(1 << 62) if start is None else start
        hi = 1 << 62 if stop is None else stop
        if self._told is None:
            try:
                return self._table_iterations(lo, hi)
            except sqlite3.Error:
                self._tell_iterations()
        return sorted((i for i in self._told if lo <= i.iteration < hi), key=lambda i: i.iteration)

    def _table_iterations(self, lo: int, hi: int) -> list[IterationInfo]:
        """The iterations table's rows numbered in [lo, hi) (a damaged one as _iteration_row tells it); sqlite3.Error
        where the table cannot be read."""
        rows = self._conn.execute("SELECT * FROM iterations WHERE iteration >= ? AND iteration < ? "
                                  "ORDER BY iteration", (lo, hi)).fetchall()
        return [info for row in rows if (info := self._iteration_row(row)) is not None]

    def _iteration_row(self, row: tuple) -> IterationInfo | None:
        """A row of the iterations table as an IterationInfo; of a damaged row (a value that is no whole number: a
        flipped type byte), what its events tell of that iteration instead, or None where they cannot (noted)."""
        bad = [f"{name} is {_TYPE_NAMES.get(type(value), 'not a whole number')}"
               for name, value in zip(schema.columns("iterations"), row) if type(value) is not int]
        if not bad:
            return IterationInfo(*row)
        number = row[0]  # the key: SQLite's rowid, always a whole number
        told = self._told_iteration(number)
        self._note(f"iterations: the row of iteration {number} is damaged (its {', '.join(bad)}); "
                   + ("it is told from its events" if told else "it is left out: its events cannot tell it"))
        return told

    def _told_iteration(self, number: int) -> IterationInfo | None:
        """What the events of iteration `number` tell of it (read from the chunks that hold it), or None."""
        try:
            lo, hi = self._one("SELECT min(first_seq), max(last_seq) FROM events WHERE first_iteration <= ? AND "
                               "last_iteration >= ?", (number, number))
            if type(lo) is not int or type(hi) is not int:
                return None
            cols = self._columns(("kind", "iteration", "t"), lo, hi + 1)
        except (sqlite3.Error, TapeError):
            return None
        mine = cols["iteration"] == number
        told = _iterations_of({name: column[mine] for name, column in cols.items()})
        return told[0] if told else None

    @_guard
    def iteration(self, number: int) -> IterationInfo | None:
        """Where iteration `number` lies on the tape, or None when it was not recorded."""
        if self._told is None:
            try:
                row = self._one("SELECT * FROM iterations WHERE iteration = ?", (number,))
                return self._iteration_row(row) if row else None
            except sqlite3.Error:
                self._tell_iterations()
        return next((i for i in self._told if i.iteration == number), None)

    @_guard
    def counts(self) -> dict[str, int]:
        """Events, ops, backward nodes and iterations recorded, and the first and last iteration."""
        if self._told is None:
            try:
                n, events, ops, bwd, lo, hi, damaged = self._one(
                    "SELECT count(*), total(events), total(ops), total(backward), min(iteration), max(iteration), "
                    f"total({_NOT_WHOLE}) FROM iterations")
                if damaged:  # a sum over damaged rows would count a blob as 0: the rows, each read or told
                    return counts_of(self.iterations())
                return {"iterations": _int(n), "events": int(events), "ops": int(ops), "backward": int(bwd),
                        "first_iteration": lo if lo is None else _int(lo),
                        "last_iteration": hi if hi is None else _int(hi)}
            except sqlite3.Error:
                self._tell_iterations()
        return counts_of(self._told)

    @_guard
    def kind_counts(self, columns: dict[str, np.ndarray] | None = None) -> dict[str, int]:
        """How many events of each kind (op, backward, module_enter, ...); reads the whole events table, unless
        given `columns` already read (with "kind")."""
        totals = np.zeros(256, dtype=np.int64)
        if columns is not None:
            totals += np.bincount(columns["kind"], minlength=256)
        else:
            for _first, _last, (arrays, _flat) in self._chunks_read(None, None,
                                                                    lambda _f, b, n: chunk_arrays(b, n)):
                totals += np.bincount(arrays[1], minlength=256)
        for code in np.flatnonzero(totals):
            _kind(int(code))
        return {name: int(totals[code]) for code, name in schema.KIND_NAMES.items()}

    def columns(self, *names: str) -> dict[str, np.ndarray]:
        """Columns of every stored event, in seq order, as arrays: seq and any of kind (schema codes),
        iteration, phase (schema.PHASES index), depth, t, node, tensor (an op's output, a backward node's
        incoming gradient), ref (a backward node's forward seq), stack (an op's `stacks` row, 0: none). Read
        straight from the chunks, without making a row per event: what a view of a whole tape (a timeline of
        a million events) wants."""
        unknown = [n for n in names if n not in _COLUMN_INDEX]
        if unknown:
            raise ValueError(f"columns: no column {unknown[0]!r}; expected any of {', '.join(_COLUMN_INDEX)}")
        return self._columns(names)

    @_guard
    def _columns(self, names: tuple[str, ...], lo: int | None = None, hi: int | None = None) -> dict[str, np.ndarray]:
        """columns(*names) of the chunks that may hold seqs in [lo, hi) (all by default)."""
        wanted = [_COLUMN_INDEX[n] for n in ("seq", *names)]
        parts: list[list[np.ndarray]] = [[] for _ in wanted]
        for _first, _last, (arrays, _flat) in self._chunks_read(lo, hi, lambda _f, b, n: chunk_arrays(b, n)):
            for part, i in zip(parts, wanted):
                part.append(arrays[i])
        joined = [np.concatenate(p) if p else np.zeros(0, CHUNK_COLUMNS[i][1]) for p, i in zip(parts, wanted)]
        order = np.argsort(joined[0], kind="stable")  # chunks whose seq ranges overlap come apart
        out = {name: a[order] for name, a in zip(("seq", *names), joined)}
        phase = out.get("phase")
        if phase is not None and len(phase) and int(phase.max()) >= len(schema.PHASES):
            raise ValueError("an event has an unknown phase")
        return out

    @_guard
    def optimizer_steps(self, infos: list[IterationInfo] | None = None) -> list[tuple[int, OptimizerEvent]]:
        """Every optimizer step as (iteration, OptimizerEvent), in order, without reading other events (each
        placed in the iteration whose range of sequence numbers holds it). infos: the iterations a damaged tape
        could be read as far as (iterations_read): the steps in them, as far as the table can be read (noted)."""
        damaged = infos is not None
        infos = self.iterations() if infos is None else infos
        firsts = [info.first_seq for info in infos]
        steps = []
        rows = self._conn.execute("SELECT seq, optimizer, names, lrs, norms FROM optimizer_steps ORDER BY seq")
        try:
            for seq, *row in rows:
                seq = _int(seq)
                i = bisect.bisect_right(firsts, seq) - 1
                if i < 0 or seq > infos[i].last_seq:
                    if damaged:
                        continue
                    raise ValueError(f"optimizer step {seq} lies in no recorded iteration")
                steps.append((infos[i].iteration, self._optimizer_event(seq, row)))
        except sqlite3.Error as err:
            if not damaged:
                raise
            self._note(f"optimizer_steps: those after event {steps[-1][1].seq if steps else 0:,} cannot be read "
                       f"({err})")
        return steps

    def grad_norms(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Parameter `name`'s gradient norm at each optimizer step that updated it, as (iterations, norms): two
        arrays of one length, in step order. The norm is of the gradient the step used (before weight decay);
        the optimizer steps hold them per parameter, named as `parameter()` names it ("fc1.weight").

        ValueError for a name no step holds a gradient norm of, or a tape recorded before they were kept."""
        if not isinstance(name, str):
            raise ValueError(f"grad_norms: a name is text such as 'fc1.weight', got {type(name).__name__}")
        steps = [(it, ev.grad_norms[name]) for it, ev in self.optimizer_steps() if name in ev.grad_norms]
        if not steps:
            if self.format_version < 2:
                raise ValueError(f"grad_norms: {self.path} was recorded before tapes kept gradient norms "
                                 f"(format {self.format_version})")
            held = sorted({n for _, ev in self.optimizer_steps() for n in ev.grad_norms})
            shown = ", ".join(printable(n, 80) for n in held[:8]) + (", ..." if len(held) > 8 else "")
            raise ValueError(f"grad_norms: no optimizer step of the tape holds {printable(name, 80)!r}"
                             + (f" (they hold {shown})" if held else " (it holds no optimizer step)"))
        return np.array([it for it, _ in steps], np.int64), np.array([norm for _, norm in steps], np.float64)

    def _tell_iterations(self, columns: dict[str, np.ndarray] | None = None) -> list[IterationInfo]:
        """The iterations as the events tell them, where the iterations table cannot be read (noted); from
        `columns` when the caller has read them (kind, iteration, t), else read here."""
        if self._told is None:
            self._note("iterations: the table cannot be read; they are told from the events")
            self._told = _iterations_of(columns if columns is not None else self._columns(("kind", "iteration", "t")))
        return self._told

    @_guard
    def iterations_read(self, columns: dict[str, np.ndarray]) -> list[IterationInfo]:
        """The iterations of the events read (columns(): seq, kind, iteration, t at least): the iterations
        table's, where a damaged tape lost some events of an iteration made from those read (none read: left
        out); where the table itself cannot be read, made from the events (and noted)."""
        try:
            if self._told is not None:
                infos = self._told
            else:
                try:
                    infos = self._table_iterations(-(1 << 62), 1 << 62)
                except sqlite3.Error:  # told from the events already read: not read again
                    infos = self._tell_iterations(columns)
        except TapeError as err:
            self._note(f"iterations: the table cannot be read ({str(err).rpartition(': ')[2]}); they are told "
                       "from the events")
            return _iterations_of(columns)
        if not self.events_lost:
            return infos
        made = {info.iteration: info for info in _iterations_of(columns)}
        held = []
        for info in infos:
            if self.lost_between(info.first_seq, info.last_seq):  # as far as its events were read
                info = made.get(info.iteration)
            if info is not None:
                held.append(info)
        return held

    def lost_between(self, first: int, last: int) -> bool:
        """Whether a damaged tape lost events with seqs in [first, last] (of the stretches found so far)."""
        return any(a <= last and first <= b for a, b in self.events_lost)

    @_guard
    def losses(self, columns: dict[str, np.ndarray] | None = None) -> dict[int, float]:
        """iteration -> loss of the first training loss curve (see loss_curves); {} when the tape holds none.
        columns: what columns(*LOSS_COLUMNS) gave, when the caller has read them already."""
        return self.loss_history(columns).first()

    @_guard
    def loss_curves(self, columns: dict[str, np.ndarray] | None = None) -> dict[str, dict[int, float]]:
        """label -> {iteration: loss}, one curve per source line of the ops backward() started from, in the order
        their first losses came (engine.debug.losses: the roots of one line in a stretch between optimizer
        steps add up, and an iteration's stretches average). A loss is a one-element root's mean (NaN when not
        finite); iterations without one are left out. Needs summaries: a structure tape has none. columns: what
        columns(*LOSS_COLUMNS) gave (or more), when the caller has read them already."""
        return self.loss_history(columns).curves()

    @_guard
    def eval_loss_curves(self, columns: dict[str, np.ndarray] | None = None) -> dict[str, dict[int, float]]:
        """label -> {iteration: mean loss}, one curve per source line of the loss ops whose one-element output
        required no gradient (a validation loss under no_grad), each iteration's losses of a line averaged
        (engine.debug.losses). Needs summaries: a structure tape has none."""
        return self.loss_history(columns).eval_curves()

    @_guard
    def loss_history(self, columns: dict[str, np.ndarray] | None = None) -> LossCurves:
        """The training and evaluation loss curves of the whole tape (loss_curves, eval_loss_curves) in one
        LossCurves, from one read of its columns."""
        cols = columns if columns is not None and all(n in columns for n in LOSS_COLUMNS) \
            else self._columns(LOSS_COLUMNS)
        seq, kind, ref = cols["seq"], cols["kind"], cols["ref"]
        nodes = (kind == schema.BACKWARD) & (ref > 0)
        if self._stretches()[0]:  # autograd.grad()'s nodes start no loss
            nodes &= ~self.in_grad_call(seq)
        picked = np.flatnonzero(nodes | (kind == schema.OPTIMIZER))
        kinds = np.where(kind[picked] == schema.BACKWARD, NODE, STEP)
        refs = np.where(kinds == NODE, ref[picked], 0)
        marks = self.is_pass_start(seq[picked]) if self.marks_pass_starts else None
        starts = picked[pass_starts(kinds, cols["iteration"][picked], refs, marks=marks)]
        at = np.minimum(np.searchsorted(seq, ref[starts]), max(len(seq) - 1, 0))
        found = (seq[at] == ref[starts]) & (kind[at] == schema.OP) if len(seq) else np.zeros(0, bool)
        roots = dict(zip(starts[found].tolist(), at[found].tolist()))  # backward row -> its forward op's row
        places: dict[tuple[int, int], tuple[str, int, str, str]] = {}

        def place(op_row: int) -> tuple[str, int, str, str]:
            """(file, line, text, op) of the op in row `op_row`."""
            node, stack = int(cols["node"][op_row]), int(cols["stack"][op_row])
            hit = places.get((node, stack))
            if hit is None:
                src = self._stack(stack)[0] if stack else None
                hit = places[(node, stack)] = (src.file if src else "", src.line if src else 0,
                                               src.text if src else "", self._node(node)[1])
            return hit

        @functools.cache
        def rows(node: int) -> int:
            """The rows the loss op of `node` sums over (engine.debug.losses.summed_rows)."""
            _, op, _, signature = self._node(node)
            return summed_rows(op, self._node_args(node) if self._op_args else {}, signature[0] if signature else ())

        evals, carried = self._evaluations(cols, place)
        tensors = cols["tensor"][[*roots.values(), *evals, *carried]].tolist()
        scalars = {tid: s.scalar for tid, s in self._summaries(tensors).items()}
        closures = {_int(step_seq) for step_seq, name in self._readable("SELECT seq, optimizer FROM optimizer_steps")
                    if evaluates_closure(_text(name))}
        items: list[Root | Step | EvalLoss | EvalOp] = []
        firsts = set()  # the source lines of the roots so far: a curve's first root comes with its op
        for row in picked[(kinds == STEP) | np.isin(picked, starts[found])].tolist():
            iteration = int(cols["iteration"][row])
            if row not in roots:
                items.append(Step(iteration, int(seq[row]) in closures))
                continue
            op_row = roots[row]
            value = scalars.get(int(cols["tensor"][op_row]))
            if value is not None:
                where = place(op_row)
                event = None if where[:2] in firsts else self.event(int(seq[op_row]))
                firsts.add(where[:2])
                items.append(Root(iteration, *where, value, event))
        for row in sorted([*evals, *carried]):  # in order: an op carries on the losses before it
            tensor = int(cols["tensor"][row])
            value = scalars.get(tensor)
            if value is None:  # no summary of one element
                continue
            iteration, where = int(cols["iteration"][row]), place(row)
            items.append(EvalOp(iteration, *where[:2], carried[row], tensor, value, where[3]) if row in carried
                         else EvalLoss(iteration, *where, value, tensor=tensor, rows=rows(int(cols["node"][row]))))
        curves = LossCurves()
        curves.add(items)
        return curves

    def _evaluations(self, cols: dict[str, np.ndarray], place) -> tuple[list[int], dict[int, tuple[int, ...]]]:
        """The rows of the evaluation losses (engine.debug.losses.EvalLoss), and of the ops that may carry them on
        (EvalOp: without gradient, of one element, on the line of an evaluation loss of their iteration) with
        their input tensor ids. place: (file, line, text, op) of a row."""
        losses, others = self._scalar_nodes()
        ops = cols["kind"] == schema.OP
        evals = np.flatnonzero(ops & np.isin(cols["node"], losses)).tolist()
        if not evals:
            return [], {}
        its = cols["iteration"]
        lines = {(int(its[row]), *place(row)[:2]) for row in evals}
        rows = [row for row in np.flatnonzero(ops & np.isin(cols["node"], others) & np.isin(its, list(
            {it for it, _, _ in lines}))).tolist() if (int(its[row]), *place(row)[:2]) in lines]
        inputs = self._op_inputs(cols["seq"][rows])
        return evals, {row: inputs.get(int(cols["seq"][row]), ()) for row in rows}

    def _scalar_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """The ids of the op nodes whose output has one element and requires no gradient: of loss ops (LOSS_OPS:
        an evaluation loss), and of the others (the nodes table: ops are told apart by signature, requires_grad
        with it)."""
        losses, others = [], []
        for rid, op, shape in self._conn.execute(
                "SELECT id, op, output_shape FROM nodes WHERE kind = 'op' AND requires_grad = 0"):
            if math.prod(parse_shape(_text(shape))) == 1:
                (losses if _text(op) in LOSS_OPS else others).append(_int(rid))
        return np.asarray(losses, np.int64), np.asarray(others, np.int64)

    def _op_inputs(self, seqs: np.ndarray) -> dict[int, tuple[int, ...]]:
        """seq -> the input tensor ids of each op event of `seqs` (in order), read from the chunks holding them."""
        out: dict[int, tuple[int, ...]] = {}
        if not len(seqs):
            return out
        for first, last, (arrays, flat) in self._chunks_read(int(seqs[0]), int(seqs[-1]) + 1,
                                                             lambda _f, b, n: chunk_arrays(b, n)):
            lo, hi = np.searchsorted(seqs, first), np.searchsorted(seqs, last, "right")
            if lo == hi:
                continue
            lengths = arrays[-1].astype(np.int64)
            ends = np.cumsum(lengths)
            for i in np.flatnonzero(np.isin(arrays[0], seqs[lo:hi])).tolist():
                out[int(arrays[0][i])] = tuple(flat[ends[i] - lengths[i]:ends[i]].tolist())
        return out

    def in_grad_call(self, seqs) -> np.ndarray:
        """Whether each event of `seqs` (sequence numbers) is a backward node that autograd.grad() ran (its
        BackwardEvent.grad_call), as booleans; all False on a tape from before they were told apart."""
        seqs = np.asarray(seqs, np.int64)
        firsts, lasts = self._stretches()
        if not firsts:
            return np.zeros(seqs.shape, bool)
        at = np.searchsorted(np.asarray(firsts, np.int64), seqs, "right") - 1
        return (at >= 0) & (seqs <= np.asarray(lasts, np.int64)[np.maximum(at, 0)])

    def is_pass_start(self, seqs) -> np.ndarray:
        """Whether each event of `seqs` (sequence numbers) is the first backward node of a backward pass (its
        BackwardEvent.pass_start), as booleans; all False on a tape from before passes were marked
        (marks_pass_starts False: engine.debug.losses.pass_starts guesses them then)."""
        return np.isin(np.asarray(seqs, np.int64), np.asarray(self._starts(), np.int64))

    def _is_pass_start(self, seq: int) -> bool:
        starts = self._pass_starts if self._pass_starts is not None else self._starts()
        at = bisect.bisect_left(starts, seq)
        return at < len(starts) and starts[at] == seq

    @_guard
    def _starts(self) -> list[int]:
        """The pass_starts table's seqs in order (empty without it); a damaged row is left out and noted."""
        if self._pass_starts is None:
            rows = [s for (s,) in self._conn.execute("SELECT seq FROM pass_starts ORDER BY seq")] \
                if self.marks_pass_starts else []
            good = [s for s in rows if type(s) is int]
            if len(good) < len(rows):
                self._note(f"pass_starts: {len(rows) - len(good)} damaged rows left out; their passes start "
                           "no loss")
            self._pass_starts = good  # in order: the key's
        return self._pass_starts

    def _in_grad_call(self, seq: int) -> bool:
        firsts, lasts = self._grad_calls or self._stretches()
        if not firsts:
            return False
        at = bisect.bisect_right(firsts, seq) - 1
        return at >= 0 and seq <= lasts[at]

    @_guard
    def _stretches(self) -> tuple[list[int], list[int]]:
        """The grad_calls table: its first seqs in order, and the largest last seq of each row and those before
        it (so rows that overlap, in a damaged tape, still cover what they name). A damaged row is left out
        and noted."""
        if self._grad_calls is None:
            rows = list(self._conn.execute("SELECT first_seq, last_seq FROM grad_calls ORDER BY first_seq")) \
                if self._has_grad_calls else []
            good = [(a, b) for a, b in rows if type(a) is int and type(b) is int and a <= b]
            if len(good) < len(rows):
                self._note(f"grad_calls: {len(rows) - len(good)} damaged rows left out; the backward nodes "
                           "they name count as backward() calls")
            reach = np.maximum.accumulate(np.array([b for _, b in good], np.int64)) if good else []
            self._grad_calls = ([a for a, _ in good], [int(b) for b in reach])
        return self._grad_calls

    # ---- events and records ---------------------------------------------------------------------
    @_guard_iter
    def rows(self, start: int | None = None, stop: int | None = None, *,
             iteration: int | None = None) -> Iterator[EventRow]:
        """Stored events with sequence numbers in [start, stop), or of one iteration, in order."""
        for row, _stack in self._rows(start, stop, iteration):
            yield row

    @_guard_iter
    def placed_rows(self, start: int | None = None, stop: int | None = None, *,
                    iteration: int | None = None) -> Iterator[tuple[EventRow, SourceFrame | None, tuple]]:
        """rows() with where each event was called from: (row, the first frame outside the engine, the user frames
        innermost first); (row, None, ()) for an event without a stack (a module call, a backward node) or whose
        stack row is damaged (noted)."""
        for row, stack in self._rows(start, stop, iteration):
            yield (row, *self._placed(stack))

    def events(self, start: int | None = None, stop: int | None = None, *,
               iteration: int | None = None) -> Iterator[object]:
        """The recorded event dataclasses (OpEvent, BackwardEvent, ModuleEvent, OptimizerEvent, EditEvent,
        AlertEvent, IterationEvent) with sequence numbers in [start, stop), or of one iteration."""
        for row in self.rows(start, stop, iteration=iteration):
            yield row.event

    @_guard
    def event(self, seq: int) -> object | None:
        """The event with sequence number `seq`, or None."""
        for row, _stack in self._rows(seq, seq + 1, None):
            return row.event
        return None

    @_guard_iter
    def records(self, start: int | None = None, stop: int | None = None, *,
                iteration: int | None = None) -> Iterator[object]:
        """What the debugger's tracer made live (OpRecord, BackwardRecord, EventRecord), with source
        frames, summaries and values as recorded; alerts and edits come as their events."""
        forward: dict[int, OpRecord] = {}
        chunk: list[tuple] = []
        for item in self._rows(start, stop, iteration):
            chunk.append(item)
            if len(chunk) >= _CHUNK:
                yield from self._records(chunk, forward)
                chunk = []
        yield from self._records(chunk, forward)

    def _records(self, chunk: list[tuple], forward: dict) -> Iterator[object]:
        ids = []
        for row, _stack in chunk:
            ev = row.event
            if row.kind == "op":
                ids.append(ev.output)
            elif row.kind == "backward":
                ids.append(ev.grad_output)
                ids.extend(ev.grad_inputs)
        summaries = self._summaries(ids)
        values = self._values(ids) if self.capture == "values" else {}
        for row, stack_id in chunk:
            ev = row.event
            if row.kind == "op":
                source, stack = (None, ()) if stack_id is None else self._stack(stack_id)
                rec = OpRecord(ev, row.iteration, row.depth, source, stack, summaries.get(ev.output),
                               values.get(ev.output))
                if len(forward) > 100_000:
                    forward.clear()
                forward[ev.seq] = rec
            elif row.kind == "backward":
                fwd = forward.get(ev.forward_seq)
                if fwd is None and ev.forward_seq:
                    fwd = self._forward_record(ev.forward_seq)
                go = summaries.get(ev.grad_output)
                gi = tuple(summaries.get(t) for t in ev.grad_inputs) if go is not None else ()
                vals = ()
                if values:
                    vals = tuple(values.get(t) for t in (ev.grad_output, *ev.grad_inputs))
                    vals = vals if any(v is not None for v in vals) else ()
                rec = BackwardRecord(ev, row.iteration, row.depth, fwd, go, gi, vals)
            elif row.kind in ("edit", "alert"):
                rec = ev
            else:
                source, stack = (None, ()) if stack_id is None else self._stack(stack_id)
                rec = EventRecord(ev, row.iteration, row.phase, row.depth, source, stack)
            yield rec

    def _forward_record(self, seq: int) -> OpRecord | None:
        for item in self._rows(seq, seq + 1, None):
            if item[0].kind == "op":
                for rec in self._records([item], {}):
                    return rec
        return None

    def _chunks_read(self, lo: int | None, hi: int | None, decode) -> Iterator[tuple[int, int, object]]:
        """(first seq, last seq, decode(first seq, blob, count)) of the chunks of events that may hold seqs in
        [lo, hi), in order. A chunk that cannot be read or decoded, or that SQLite cannot reach (a damaged page
        on the way to it), is left out and the reading goes on past it: events_lost says what it held."""
        lo = -(1 << 62) if lo is None else lo
        hi = 1 << 62 if hi is None else hi
        after = -(1 << 62)
        if self._reachable is None:
            try:
                for first, last, count, blob in self._conn.execute(
                        "SELECT first_seq, last_seq, count, columns FROM events WHERE first_seq < ? AND last_seq >= ? "
                        "ORDER BY first_seq", (hi, lo)):
                    first, last = _int(first), _int(last)
                    decoded = self._checked(first, last, count, blob, decode)
                    yield first, last, decoded
                    after = first
                return
            except _BAD:
                if self._closed:
                    raise
                self._map_chunks()
        reachable = self._reachable
        for first, last in reachable[bisect.bisect_right(reachable, (after, 1 << 62)):]:
            if first >= hi:
                return
            if last < lo or first in self._bad_chunks:
                continue
            try:
                count, blob = self._one("SELECT count, columns FROM events WHERE first_seq = ?", (first,))
                decoded = self._checked(first, last, count, blob, decode)
            except _BAD as err:
                if self._closed:
                    raise
                self._bad_chunks.add(first)
                self._lose(first, last, err)
                continue
            yield first, last, decoded

    @staticmethod
    def _checked(first: int, last: int, count, blob, decode):
        """decode(first, blob, count) of a chunk whose bytes agree with its row: its seqs run from first to last, in
        order, and its kinds and phases are known. A page overwritten in the middle of a chunk's bytes, past the
        links SQLite checks, reads back without an error; it does not agree."""
        arrays, _flat = chunk_arrays(blob, count)
        seq, kind, phase = arrays[0], arrays[1], arrays[3]
        if seq[0] != first or seq[-1] != last or bool((seq[1:] <= seq[:-1]).any()) \
                or bool(((kind < 1) | (kind > len(schema.KIND_NAMES))).any()) or int(phase.max()) >= len(schema.PHASES):
            raise ValueError("an event chunk's bytes do not agree with its row (damaged)")
        return decode(first, blob, count)

    def _map_chunks(self) -> None:
        """Where the events cannot all be read: the chunks SQLite still reaches, found by their keys (read without
        their bytes, past the pages that cannot be read); what lies between them is lost."""
        reachable: list[tuple[int, int]] = []
        bad_range: list[int] = []  # the first seq of a chunk whose row holds no last seq: lost up to the next one

        def lost(_first: int, last: int, err: BaseException) -> None:
            self._lose(bad_range.pop() if bad_range else reachable[-1][1] + 1 if reachable else 0, last, err)

        for _rowid, first, last in readable_rows(self._conn, "events", "first_seq, last_seq", lost):
            if bad_range:
                lost(0, first - 1, ValueError(f"the chunk of event {bad_range[0]:,} has a damaged range"))
            if type(last) is int and last >= first:
                reachable.append((first, last))
            else:
                bad_range.append(first)
        if bad_range:
            lost(0, LOST_TO_END, ValueError(f"the chunk of event {bad_range[0]:,} has a damaged range"))
        self._reachable = reachable

    def _lose(self, first: int, last: int, err: BaseException) -> None:
        """Note that the events with seqs in [first, last] cannot be read (cut to the tape's own seqs where its
        iterations say them)."""
        lo, hi = self.seq_range() or (0, LOST_TO_END)
        first, last = max(first, lo), min(last, hi)
        if first > last:
            return
        why = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        if not self.events_lost:
            self.events_error = why
        self.events_lost = merged([*self.events_lost, (first, last)])
        span = f"{first:,} on" if last >= LOST_TO_END else f"{first:,}-{last:,}"
        self._note(f"events: {span} cannot be read ({why[:80]})")

    def seq_range(self) -> tuple[int, int] | None:
        """The seqs of the tape's first and last events, as its iterations table says, whether or not those events
        can be read; None where the table cannot say."""
        if "seq_range" not in self._cache:
            try:
                lo, hi = self._one("SELECT min(first_seq), max(last_seq) FROM iterations WHERE typeof(first_seq) = "
                                   "'integer' AND typeof(last_seq) = 'integer'")
                extent = (lo, hi) if type(lo) is int and type(hi) is int and lo <= hi else None
            except sqlite3.Error:
                extent = None
            self._cache["seq_range"] = extent
        return self._cache["seq_range"]

    @property
    def no_event_read(self) -> bool:
        """Whether, of a damaged tape, not one event could be read (of those read so far)."""
        return self._reachable is not None and all(first in self._bad_chunks for first, _ in self._reachable)

    def _rows(self, start, stop, iteration) -> Iterator[tuple[EventRow, int | None]]:
        """(event row, stack id) pairs with seq in [start, stop) (and of `iteration` if given), in order."""
        if iteration is not None:
            info = self.iteration(iteration)
            if info is None:
                return
            info = info[1:3]
            start, stop = _int(info[0]), _int(info[1]) + 1
        lo = -(1 << 62) if start is None else start
        hi = 1 << 62 if stop is None else stop
        pending: list[tuple] = []  # rows of chunks whose seq ranges overlap, merged before they are given out
        reach = None
        for first, last, rows in self._chunks_read(lo, hi, self._chunk_decoder()):
            if reach is not None and first > reach:
                yield from self._emit(pending, iteration)
                pending = []
            pending += [r for r in rows if lo <= r[0] < hi]
            reach = max(reach, last) if reach is not None else last
        yield from self._emit(pending, iteration)

    def _emit(self, rows: list[tuple], iteration) -> Iterator[tuple[EventRow, int | None]]:
        rows.sort(key=_seq_of)
        for row in rows:
            if iteration is None or row[2] == iteration:
                try:
                    yield self._decode(row)
                except sqlite3.Error as err:
                    if row[1] not in (schema.EDIT, schema.ALERT):
                        raise
                    table = "edits" if row[1] == schema.EDIT else "alerts"  # one lost: the events go on
                    self._lost(table, f"{table}: rows on damaged pages cannot be read ({err}); those are left out")

    def _chunk_decoder(self):
        """decode(first seq, blob, count) for _chunks_read: a chunk's rows (the latest few are kept: seeking often reads
        one chunk twice)."""
        def decode(first, blob, count) -> list[tuple]:
            key = (first, count)
            rows = self._chunks.get(key)
            if rows is None:
                rows = parse_chunk(blob, count)
                if len(self._chunks) >= 4:
                    self._chunks.pop(next(iter(self._chunks)))
                self._chunks[key] = rows
            return rows

        return decode

    def _decode(self, row: tuple) -> tuple[EventRow, int | None]:
        seq, kind, it, phase, depth, t, node, tensor, ref, stack, tensors = row
        stack = stack or None
        if type(seq) is not int or type(it) is not int or type(depth) is not int or type(t) is not int:
            raise ValueError(f"event {seq!r} has a field of the wrong type")
        if kind == schema.OP:
            key, op, module, signature = self._node(node)
            if signature is None:
                raise ValueError(f"op {seq} points to a node without a signature")
            ev = OpEvent(seq, op, key, module, tensors, tensor, *signature,
                         self._node_args(node) if self._op_args else {})
        elif kind == schema.BACKWARD:
            key, op, _module, _signature = self._node(node)
            ev = BackwardEvent(seq, op, key, ref, tensor, tensors, self._in_grad_call(seq),
                               self.marks_pass_starts and self._is_pass_start(seq))
        elif kind == schema.MODULE_ENTER or kind == schema.MODULE_EXIT:
            path, cls, _module, _signature = self._node(node)
            enter = kind == schema.MODULE_ENTER
            ev = ModuleEvent(seq, path, cls, enter, tensors, self._module_params(node) if enter else ())
        elif kind == schema.OPTIMIZER:
            ev = self._optimizer(seq)
        elif kind == schema.MARK:
            ev = IterationEvent(seq, ref)
        elif kind == schema.EDIT:
            ekind, target, args, applied, message, eit = self._one(
                "SELECT kind, target, args, applied, message, iteration FROM edits WHERE seq = ?", (seq,))
            ev = _edit(seq, ekind, target, args, applied, message, eit)
        elif kind == schema.ALERT:
            ev = self._alert(self._one("SELECT * FROM alerts WHERE seq = ?", (seq,)))
        else:
            raise ValueError(f"event {seq} has unknown kind {kind!r}")
        return EventRow(seq, schema.KIND_NAMES[kind], it, _phase(phase), depth, t, ev), stack

    def _optimizer(self, seq: int) -> OptimizerEvent:
        try:
            row = self._one("SELECT optimizer, names, lrs, norms FROM optimizer_steps WHERE seq = ?", (seq,))
        except sqlite3.Error as err:  # the step still ends its iteration; its norms are lost
            self._lost("optimizer_steps", f"optimizer_steps: rows on damaged pages cannot be read ({err}); those steps "
                       "are shown without their learning rates and norms")
            return OptimizerEvent(seq, "optimizer (unreadable)", (), {}, {}, {})
        if row is None:
            raise ValueError(f"optimizer step {seq} has no details")
        return self._optimizer_event(seq, row)

    @staticmethod
    def _optimizer_event(seq: int, row) -> OptimizerEvent:
        name, names, lrs, norms = row
        lists = parse_json(_text(names), list)  # update, weight (and from format 2) gradient norm names
        if len(lists) not in (2, 3):
            raise ValueError(f"optimizer step {seq}: {len(lists)} lists of parameter names, expected 2 or 3")
        lists = [[_text(n) for n in _list(names)] for names in lists]
        norms = parse_floats(norms)
        if len(norms) != sum(map(len, lists)):
            raise ValueError(f"optimizer step {seq}: {len(norms)} norms for "
                             f"{' + '.join(str(len(n)) for n in lists)} names")
        dicts, start = [], 0
        for names in lists:
            dicts.append(dict(zip(names, norms[start:start + len(names)])))
            start += len(names)
        return OptimizerEvent(seq, _text(name), parse_floats(lrs), *dicts)

    # ---- interned rows ----------------------------------------------------------------------------
    def _lookup(self, table: str, rid, decode):
        hit = self._cache.get((table, rid))
        if hit is None:
            row = self._one(f"SELECT * FROM {table} WHERE id = ?", (_int(rid),))
            if row is None:
                raise ValueError(f"{table} row {rid} is missing")
            hit = self._cache[(table, rid)] = decode(*row[1:])
            if len(self._cache) > 200_000:  # a hostile tape with millions of distinct rows stays bounded
                self._cache.clear()
        return hit

    def _module_params(self, node) -> tuple:
        """(tensor id, name) pairs of a module node's own parameters; () on a tape from before they were kept."""
        hit = self._cache.get(("module_params", node))
        if hit is None:
            row = None
            if self._has_module_params:
                row = self._one("SELECT params FROM module_params WHERE node = ?", (_int(node),))
            pairs = parse_json(_text(row[0]), list) if row is not None else []
            if not isinstance(pairs, list) or not all(
                    isinstance(p, list) and len(p) == 2 and type(p[0]) is int and type(p[1]) is str for p in pairs):
                raise ValueError(f"module node {node} has malformed parameter names")
            hit = self._cache[("module_params", node)] = tuple((tid, name) for tid, name in pairs)
        return hit

    def _node_args(self, node) -> dict:
        """An op node's arguments as a dict ({} where none were recorded); one dict per node, shared."""
        hit = self._cache.get(("node_args", node))
        if hit is None:
            row = self._one("SELECT args FROM node_args WHERE node = ?", (_int(node),))
            try:
                hit = {} if row is None else dict(parse_args(row[0]))
            except (ValueError, RecursionError) as err:  # one damaged row loses that node's arguments only
                hit = {}
                self._note(f"node_args: the arguments of node {node} are damaged ({str(err)[:80]}); "
                           f"its op is shown without them")
            self._cache[("node_args", node)] = hit
        return hit

    def _indexed(self, sql: str, params: tuple = (), plain: str | None = None) -> list[tuple]:
        """The rows of `sql`, a query of one table through its index; where the index cannot be read (a damaged
        page of it), those of `plain`, by default `sql` with the table NOT INDEXED: SQLite scans the table and sorts
        its rows as the index would have (noted). sqlite3.Error where the table cannot be read either."""
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            if self._closed:
                raise
            table = sql.partition(" FROM ")[2].split()[0]
            self._note(f"{table}: read without its index, which cannot be read ({str(err)[:80]})")
            plain = plain or (sql + " ").replace(f" FROM {table} ", f" FROM {table} NOT INDEXED ", 1)
            return self._conn.execute(plain, params).fetchall()

    def _readable(self, sql: str) -> list[tuple]:
        """The rows of a query over one table, as far as they can be read (the rest noted as lost)."""
        rows = []
        try:
            for row in self._conn.execute(sql):
                rows.append(row)
        except sqlite3.Error as err:
            if self._closed:
                raise
            self._note(f"{sql.rpartition(' FROM ')[2].split()[0]}: rows after the first {len(rows):,} cannot be "
                       f"read ({err})")
        return rows

    def _note(self, line: str) -> None:
        if len(self.notes) < MAX_NOTES and line not in self.notes:
            self.notes.append(printable(line))

    def _lost(self, table: str, line: str) -> None:
        """A row of `table` could not be read: count it, and say `line` once."""
        self.unreadable[table] = self.unreadable.get(table, 0) + 1
        self._note(line)

    def _node(self, rid) -> tuple[str, str, str, tuple | None]:
        """(stable key, op, module path, signature or None): the signature is the OpEvent's input shapes,
        output shape, dtype, device and requires_grad."""
        return self._lookup("nodes", rid, _decode_node)

    def _layout(self, rid) -> tuple:
        return self._lookup("layouts", rid, lambda shape, dtype, device: (
            parse_shape(_text(shape)), _text(dtype), _text(device)))

    def _frame(self, rid) -> SourceFrame:
        return self._lookup("frames", rid, lambda file, line, function, text: SourceFrame(
            _text(file), _int(line), _text(function), _text(text)))

    def _stack(self, rid) -> tuple:
        return self._lookup("stacks", rid, lambda source, frames: (
            None if source is None else self._frame(source),
            tuple(self._frame(f) for f in parse_ids(frames))))

    def _stack_of(self, seq: int) -> tuple[SourceFrame | None, tuple[SourceFrame, ...]]:
        for _row, stack in self._rows(seq, seq + 1, None):
            if stack is not None:
                return self._stack(stack)
        return None, ()

    # ---- summaries, values, alerts, edits, sources ----------------------------------------------
    @_guard
    def summaries(self, ids, skip_damaged: bool = False) -> dict[int, TensorSummary]:
        """The recorded summaries of many tensor ids at once (ids without one are left out; skip_damaged: those
        whose rows are damaged too, counted in `unreadable` and noted)."""
        return self._summaries(ids, skip_damaged)

    def _summaries(self, ids, skip_damaged: bool = True) -> dict[int, TensorSummary]:
        return self._by_tensor("summaries", f"tensor, {_SUMMARY_COLUMNS}", ids,
                               lambda layout, *cols: self._summary(layout, cols), skip_damaged)

    def _summary(self, layout, cols) -> TensorSummary:
        return parse_summary(self._layout(layout), tuple(cols), self._std_over_n)

    def _values(self, ids: list[int], skip_damaged: bool = True) -> dict[int, np.ndarray]:
        return self._by_tensor("tensor_values", "tensor, npy", ids, parse_npy, skip_damaged)

    def _by_tensor(self, table: str, columns: str, ids, decode, skip_damaged: bool) -> dict:
        """tensor id -> decode(*the rest of its row) of `table` for many ids at once; ids without a row are left
        out. skip_damaged: where a damaged page keeps rows from being read, the ids are read one by one, and
        those that cannot be read or decoded are left out too, counted in `unreadable` and noted (else: the
        error)."""
        out = {}
        ids = [i for i in ids if i]
        for k in range(0, len(ids), 500):
            part = ids[k:k + 500]
            try:
                rows = self._conn.execute(f"SELECT {columns} FROM {table} WHERE tensor IN "
                                          f"({','.join('?' * len(part))})", part).fetchall()
            except sqlite3.Error:
                if not skip_damaged or self._closed:
                    raise
                rows = []
                for tid in part:
                    try:
                        rows += self._conn.execute(f"SELECT {columns} FROM {table} WHERE tensor = ?", (tid,))
                    except sqlite3.Error as err:
                        self._lost(table, f"{table}: rows on damaged pages cannot be read ({err}); their tensors are "
                                   "shown without them")
            for tensor, *rest in rows:
                try:
                    out[tensor] = decode(*rest)
                except _BAD as err:  # a damaged row: that tensor is shown without it
                    if not skip_damaged:
                        raise
                    self._lost(table, f"{table}: damaged rows left out ({str(err)[:200] or type(err).__name__}); their "
                               "tensors are shown without them")
        return out

    @_guard
    def summary(self, tensor_id: int) -> TensorSummary | None:
        """The recorded TensorSummary of an op output or gradient, or None."""
        return self._summaries([tensor_id], False).get(tensor_id)

    @_guard
    def value(self, tensor_id: int) -> np.ndarray | None:
        """The recorded values of an op output or gradient ("values" tier, small tensors), or None."""
        return self._values([tensor_id], False).get(tensor_id)

    @_guard
    def stack(self, seq: int) -> tuple[SourceFrame | None, tuple[SourceFrame, ...]]:
        """(where the op with sequence number `seq` was called from, the user frames, innermost first)."""
        return self._stack_of(seq)

    @_guard
    def alerts(self) -> list[AlertEvent]:
        """Every alert, in order."""
        return [self._alert(row) for row in self._conn.execute("SELECT * FROM alerts ORDER BY seq")]

    def _alert(self, row) -> AlertEvent:
        if row is None:
            raise ValueError("an alert event has no alert row")
        seq, kind, message, op, key, module, fseq, it, file, line, code, value = row
        inputs = []
        for layout, *cols in self._indexed(
                f"SELECT {_SUMMARY_COLUMNS} FROM alert_inputs WHERE seq = ? ORDER BY slot LIMIT 64", (seq,)):
            inputs.append(self._summary(layout, cols))
        return AlertEvent(_int(seq), _text(kind), _text(message), _text(op), _text(key), _text(module),
                          _int(fseq), _int(it), _text(file), _int(line), _text(code), parse_real(value),
                          tuple(inputs))

    def raised_op(self) -> tuple[int, str] | None:
        """(seq, the error in one line) of the op whose forward raised the recorded code's exception (its event
        is an OpEvent with output 0, its stable key ending in ":failed"); None where no op raised it, or on a tape
        written before such ops were kept. A malformed entry is noted and read as none."""
        text = self.meta.get("raised_op")
        if text is None:
            return None
        try:
            seq, message = parse_json(text, list)
            return _int(seq), _text(message)[:MAX_ERROR_CHARS]
        except _BAD:
            self._note("meta: its raised_op entry is malformed; the op that raised is shown as an op")
            return None

    @_guard
    def edits(self) -> list[EditEvent]:
        """Every edit (applied or rejected), in order."""
        return [_edit(*row) for row in self._conn.execute("SELECT * FROM edits ORDER BY seq")]

    @_guard
    def sources(self) -> dict[str, str]:
        """Each source file seen, and what became of its snapshot ("copied", or why not)."""
        return {_text(f): _text(note) for f, note in self._conn.execute("SELECT file, note FROM sources")}

    @_guard
    def source(self, file: str) -> str | None:
        """The text of a source file as it was when recorded, or None when it was not copied."""
        row = next(iter(self._indexed("SELECT text FROM sources WHERE file = ?", (file,))), None)
        return None if row is None or row[0] is None else _text(row[0])

    @_guard
    def drops(self) -> list[Drop]:
        """What the recorder dropped to keep up (or to stay under its size cap)."""
        return [Drop(_int(a), _int(b), _text(what), _count(n)) for _id, a, b, what, n in
                self._conn.execute("SELECT * FROM drops ORDER BY id")]

    # ---- the script's output ------------------------------------------------------------------------------
    def output(self, start_seq: int | None = None, stop_seq: int | None = None) -> list[OutputRow]:
        """What the recorded script wrote to stdout and stderr, in order, as OutputRow(seq, stream, text) chunks
        filed under the events [start_seq, stop_seq) (all by default; seq 0: before the first event), so the
        output as far as event s is output(stop_seq=s + 1). [] on a tape recorded before output was kept. A
        damaged row is left out and noted in `notes`; the text is data, never interpreted."""
        for name, bound in (("start_seq", start_seq), ("stop_seq", stop_seq)):
            if bound is not None and type(bound) is not int:
                raise ValueError(f"output: {name} must be an event sequence number (an int) or None, got {bound!r}")
        if not self.keeps_output:
            return []
        return self._output(start_seq, stop_seq)

    @_guard
    def _output(self, lo: int | None, hi: int | None) -> list[OutputRow]:
        return read_rows(self._conn, lo, hi, self._note)

    @_guard
    def output_bytes(self) -> int:
        """How many bytes (UTF-8) of the script's output the tape keeps."""
        if not self.keeps_output:
            return 0
        return int(self._one("SELECT total(length(CAST(text AS BLOB))) FROM output")[0])

    def output_cut(self) -> tuple[int, int] | None:
        """(the event after which the output was cut, how many bytes were cut), or None when it was kept whole."""
        cut = [d for d in self.drops() if d.what == DROPPED]
        return (min(d.first_seq for d in cut), sum(d.count for d in cut)) if cut else None

    # ---- parameter snapshots ----------------------------------------------------------------------------
    @_guard
    def parameter_names(self) -> list[str]:
        """The names of the parameters the tape holds snapshots of, sorted ([] on a structure tape, or on one
        recorded before snapshots were kept)."""
        if not self.keeps_parameters:
            return []
        # one index probe per name (a skip-scan), not a pass over every snapshot
        rows = self._indexed(
            "WITH RECURSIVE n(name) AS (SELECT min(name) FROM parameters UNION ALL "
            "SELECT (SELECT min(name) FROM parameters WHERE name > n.name) FROM n WHERE n.name IS NOT NULL) "
            "SELECT name FROM n WHERE name IS NOT NULL LIMIT 1000000",
            plain="SELECT DISTINCT name FROM parameters NOT INDEXED ORDER BY name LIMIT 1000000")
        return [_text(name) for (name,) in rows]

    @_guard
    def parameter_counts(self) -> dict[str, int]:
        """How many parameter snapshots the tape holds ("snapshots"), of how many parameters ("parameters")."""
        if not self.keeps_parameters:
            return {"snapshots": 0, "parameters": 0}
        return {"snapshots": _int(self._indexed("SELECT count(*) FROM parameters")[0][0]),
                "parameters": len(self.parameter_names())}

    def parameter(self, name: str, iteration: int | None = None, *, seq: int | None = None,
                  value: bool = True) -> ParameterSnapshot | None:
        """The latest snapshot of parameter `name` at or before the end of `iteration` (or at or before
        the event `seq`; neither: the last one), or None when none was taken that early.

        ValueError for a name the tape holds no snapshots of, or an iteration it does not hold.
        value=False: leave the raw value unread (None)."""
        bound = self._parameter_bound(iteration, seq, "parameter")
        if not isinstance(name, str):
            raise ValueError(f"parameter: a name is text such as 'fc1.weight', got {type(name).__name__}")
        found = self._parameter(name, bound, value)
        if found is None and name not in self.parameter_names():
            raise ValueError(f"parameter: the tape holds no snapshots of {printable(name, 80)!r}"
                             f"{self._parameters_held()}")
        return found

    def parameters(self, iteration: int | None = None, *, seq: int | None = None,
                   value: bool = True) -> dict[str, ParameterSnapshot]:
        """name -> the latest snapshot of each parameter at or before the end of `iteration` (or at or
        before the event `seq`; neither: the last ones); {} on a tape without snapshots."""
        bound = self._parameter_bound(iteration, seq, "parameters")
        found = {}
        for name in self.parameter_names():
            snap = self._parameter(name, bound, value)
            if snap is not None:
                found[name] = snap
        return found

    def _parameters_held(self) -> str:
        """Why a parameter is not found: the names the tape holds, or why it holds none."""
        names = self.parameter_names()
        if names:
            shown = ", ".join(printable(n, 80) for n in names[:8])
            return f" (it holds {shown}{', ...' if len(names) > 8 else ''})"
        if not self.keeps_parameters:
            return " (it was recorded before tapes kept parameter values)"
        if self.capture == "structure":
            return " (a structure tape holds no parameter values)"
        return " (it holds none)"

    def _parameter_bound(self, iteration, seq, caller: str) -> int:
        """The last event sequence number a snapshot may have, from an iteration or a seq (checked)."""
        if iteration is not None and seq is not None:
            raise ValueError(f"{caller}: give an iteration or a seq, not both")
        if seq is not None:
            if type(seq) is not int or seq < 0:
                raise ValueError(f"{caller}: seq must be an event sequence number (an int >= 0), got {seq!r}")
            return seq
        if iteration is None:
            return 1 << 62
        if type(iteration) is not int:
            raise ValueError(f"{caller}: iteration must be an int, got {type(iteration).__name__}")
        first, last = self._iteration_range()
        if first is None or not first <= iteration <= last:
            held = f"iterations {first}..{last}" if first is not None else "no iterations"
            raise ValueError(f"{caller}: iteration {iteration} is not on this tape (it holds {held})")
        return self._last_seq(iteration)

    @_guard
    def _iteration_range(self) -> tuple[int | None, int | None]:
        if self._told is not None or not self.iteration_count():
            told = self._told or []
            return (None, None) if not told else (min(i.iteration for i in told), max(i.iteration for i in told))
        first, last = self._one("SELECT min(iteration), max(iteration) FROM iterations")  # two index probes
        return (None, None) if first is None else (_int(first), _int(last))

    @_guard
    def _last_seq(self, iteration: int) -> int:
        if self._told is not None:
            return max(i.last_seq for i in self._told if i.iteration <= iteration)
        row = self._one("SELECT max(last_seq) FROM iterations WHERE iteration <= ? AND typeof(last_seq) = 'integer'",
                        (iteration,))
        return _int(row[0])

    @_guard
    def _parameter(self, name: str, bound: int, value: bool) -> ParameterSnapshot | None:
        if not self.keeps_parameters:
            return None
        row = next(iter(self._indexed(f"SELECT seq, iteration, after_step, tensor, {_SUMMARY_COLUMNS}, "
                                      f"{'npy' if value else 'NULL'} FROM parameters WHERE name = ? AND seq <= ? "
                                      "ORDER BY seq DESC LIMIT 1", (name, bound))), None)
        return None if row is None else self._snapshot(name, row)

    @_guard
    def parameter_has_value(self, name: str, seq: int) -> bool:
        """Whether the latest snapshot of parameter `name` at or before event `seq` holds its raw value (a "values"
        tape's small parameters, and the end of a run saved from the window), without reading it."""
        if not self.keeps_parameters:
            return False
        row = next(iter(self._indexed("SELECT npy IS NOT NULL FROM parameters WHERE name = ? AND seq <= ? "
                                      "ORDER BY seq DESC LIMIT 1", (name, int(seq)))), None)
        return bool(row and row[0])

    @_guard
    def parameter_history(self, name: str) -> list[ParameterSnapshot]:
        """Every snapshot of parameter `name`, oldest first, without raw values (one query)."""
        if not self.keeps_parameters:
            return []
        rows = self._indexed(f"SELECT seq, iteration, after_step, tensor, {_SUMMARY_COLUMNS}, NULL "
                             "FROM parameters WHERE name = ? ORDER BY seq", (name,))
        return [self._snapshot(name, row) for row in rows]

    def _snapshot(self, name: str, row: tuple) -> ParameterSnapshot:
        """A `parameters` row (seq, iteration, after_step, tensor, summary columns, npy) as a snapshot."""
        seq, it, after, tensor, layout, *cols, npy = row
        where = f"parameter {printable(name, 80)!r} at event {seq!r}"
        try:
            summary = self._summary(layout, cols)
            if math.prod(summary.shape) != summary.numel:
                raise ValueError(f"its shape {summary.shape} does not hold its {summary.numel} elements")
            array = None if npy is None else parse_npy(npy)
            if array is not None and (array.shape != summary.shape or array.dtype.name != summary.dtype):
                raise ValueError(f"its value is {array.dtype.name} {array.shape}, its summary says "
                                 f"{summary.dtype} {summary.shape}")
            if after not in (0, 1):
                raise ValueError(f"after_step is {after!r}, not 0 or 1")
            return ParameterSnapshot(name, _int(tensor), _int(it), _int(seq), bool(after), summary, array)
        except _BAD as err:
            raise ValueError(f"{where}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None

    # ---- the graph of an iteration ------------------------------------------------------------------
    @_guard
    def graph(self, iteration: int, progress: Callable[[int], None] | None = None) -> IterationGraph:
        """The forward ops, backward nodes and tensor edges of one iteration; `progress(n)` is called with
        the number of events just read, every few thousand (it may raise to stop the reading)."""
        ops, backward, names, stack_ids = [], [], {}, {}
        read = 0
        for row, stack in self._rows(None, None, iteration):
            read += 1
            if read == _CHUNK and progress:
                progress(read)
                read = 0
            if row.kind == "op":
                ops.append(row.event)
                if stack is not None:
                    stack_ids[row.event.seq] = stack
            elif row.kind == "backward":
                backward.append(row.event)
            elif row.kind == "module_enter":
                names.update(row.event.params)
        if read and progress:
            progress(read)
        producer = {op.output: op.seq for op in ops}
        edges, leaves = [], []
        for op in ops:
            for tid in op.inputs:
                src = producer.get(tid)
                if src is not None and src < op.seq:
                    edges.append((src, op.seq, tid))
                else:
                    leaves.append((tid, op.seq))
        return IterationGraph(iteration, tuple(ops), tuple(backward), tuple(edges), tuple(leaves), names,
                              self._frames_of(stack_ids))

    def _frames_of(self, stack_ids: dict[int, int]) -> dict[int, tuple[SourceFrame, ...]]:
        """op seq -> the user frames of its stack row, innermost first; an op whose stack is damaged has none."""
        out = {}
        for seq, sid in stack_ids.items():
            source, frames = self._placed(sid)
            out[seq] = frames or ((source,) if source is not None else ())
        return out

    def _placed(self, stack: int | None) -> tuple[SourceFrame | None, tuple[SourceFrame, ...]]:
        """(the first frame outside the engine, the user frames innermost first) of a stack row; (None, ()) for
        none, or for a damaged one (noted)."""
        if stack is None:
            return None, ()
        try:
            return self._stack(stack)
        except _BAD as err:
            self._note(f"stacks: row {stack} is damaged ({str(err)[:80]}); its events are shown without their source")
            return None, ()

    # ---- plumbing ---------------------------------------------------------------------------------
    def _one(self, sql: str, params: tuple = ()):
        return self._conn.execute(sql, params).fetchone()

    def close(self) -> None:
        """Close the file."""
        self._closed = True
        self._conn.close()

    def __enter__(self) -> Tape:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Tape {self.path!r} format {self.format_version} capture {self.capture!r}>"


def counts_of(iterations: list[IterationInfo]) -> dict[str, int]:
    """Tape.counts() of these iterations (those a damaged tape could be read as far as)."""
    return {"iterations": len(iterations), "events": sum(i.events for i in iterations),
            "ops": sum(i.ops for i in iterations), "backward": sum(i.backward for i in iterations),
            "first_iteration": iterations[0].iteration if iterations else None,
            "last_iteration": iterations[-1].iteration if iterations else None}


def _iterations_of(cols: dict[str, np.ndarray]) -> list[IterationInfo]:
    """IterationInfo of each iteration the events of `cols` (seq, kind, iteration, t) fall in."""
    seq, it, kind, t = cols["seq"], cols["iteration"], cols["kind"], cols["t"]
    if not len(seq):
        return []
    idx = np.argsort(it, kind="stable")  # seq order within each iteration
    starts = np.r_[0, np.flatnonzero(np.diff(it[idx])) + 1]
    ends = np.r_[starts[1:], len(idx)]
    rows = zip(it[idx[starts]].tolist(), seq[idx[starts]].tolist(), seq[idx[ends - 1]].tolist(),
               (ends - starts).tolist(), np.add.reduceat(kind[idx] == schema.OP, starts).tolist(),
               np.add.reduceat(kind[idx] == schema.BACKWARD, starts).tolist(),
               np.minimum.reduceat(t[idx], starts).tolist(), np.maximum.reduceat(t[idx], starts).tolist())
    return sorted((IterationInfo(*map(int, row)) for row in rows), key=lambda info: info.first_seq)


def _connect(path: str) -> sqlite3.Connection:
    """A read-only connection to a file that at least starts like SQLite."""
    if not os.path.exists(path):
        raise TapeError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise TapeError(f"{path}: not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as err:
        raise TapeError(f"{path}: cannot read it ({err.strerror})") from None
    if not head.startswith(schema.SQLITE_MAGIC):
        raise TapeError(f"{path}: not a tape (not an SQLite file)")
    if len(head) < 100:
        raise TapeError(f"{path}: damaged tape (truncated)")
    # A closed tape is in rollback mode and its writer removed its log; a -wal or -journal file beside it
    # is another's (a killed recording's, left when the tape was copied over it), and SQLite would lay its
    # pages over the tape's: unseen, a damaged or mixed-up tape. Opened immutable, it reads the file alone.
    closed = head[18:20] == b"\x01\x01"
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + ("?mode=ro&immutable=1" if closed else "?mode=ro"),
                               uri=True)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")  # a hostile schema's functions and views do not run
        if cut_short(path):  # SQLite refuses a file shorter than its header says, unless told to read what is there
            conn.execute("PRAGMA writable_schema = ON")  # (the connection stays read-only: mode=ro, query_only)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1 << 30)
    except sqlite3.Error as err:
        raise TapeError(f"{path}: cannot open it ({err})") from None
    return conn


def _wal_state(path: str) -> tuple[bool, bool]:
    """(whether `path` is an SQLite file in WAL mode, a recording never closed; whether its -wal file lies
    beside it, not empty: an empty one is SQLite's own, made by an earlier reader)."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False, False
    log = f"{path}-wal"
    return head[18:20] == b"\x02\x02", os.path.isfile(log) and os.path.getsize(log) > 0


def _decode_node(kind, key, op, module, in_shapes, out_shape, dtype, device, grad) -> tuple:
    signature = None
    if in_shapes is not None:
        signature = (parse_shapes(_text(in_shapes)), parse_shape(_text(out_shape)), _text(dtype),
                     _text(device), bool(_int(grad)))
    return _text(key), _text(op), "" if module is None else _text(module), signature


def _seq_of(row: tuple) -> int:
    return row[0]


def _edit(seq, kind, target, args, applied, message, iteration) -> EditEvent:
    return EditEvent(_int(seq), _text(kind), _text(target), tuples(parse_json(_text(args), list)),
                     bool(_int(applied)), _text(message), _int(iteration))


def _int(x) -> int:
    if type(x) is not int:
        raise ValueError(f"expected an integer, found {type(x).__name__}")
    return x


def _count(x) -> int:
    if type(x) is not int or x < 0:
        raise ValueError(f"expected a count, found {x!r}"[:80])
    return x


def _text(x) -> str:
    if type(x) is not str:
        raise ValueError(f"expected text, found {type(x).__name__}")
    return x


def _list(x) -> list:
    if not isinstance(x, list):
        raise ValueError(f"expected a list, found {type(x).__name__}")
    return x


def _kind(code) -> str:
    name = schema.KIND_NAMES.get(code)
    if name is None:
        raise ValueError(f"unknown event kind {code!r}")
    return name


def _phase(code) -> str:
    if type(code) is not int or not 0 <= code < len(schema.PHASES):
        raise ValueError(f"unknown phase {code!r}")
    return schema.PHASES[code]
