"""Replaying a .tape through the same models as a live session, with a cursor that moves both ways.

    replay = ReplaySession("run.tape")     # plays to the end, a batch per drain(), like a live run
                                           # (a long tape: only its last iterations, as a seek there)
    replay.seek(seq); replay.rewind(); replay.command("step_into")

A reader thread (with its own SQLite connection) decodes records into a bounded deque, so a large tape
never stalls the GUI thread; `drain()` applies them with the live session's own `_apply`, which is
what makes replay(tape) equal the live state. Step commands stop where the debugger would have.
The script's recorded output is read once; each drain gives the Output panel what was written at or
before the cursor's event (cut back when the cursor moves back).
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections import deque
from dataclasses import replace
from typing import NamedTuple

import numpy as np

import engine.tape
from app.graph_model import GraphModel
from app.script_io import OutputChunk, own_file, own_frames
from app.session import _RECORDS, CONTROL, FINISHED, PAUSED, RUNNING, NodeInfo, Session, SessionChange, stops_at
from engine.debug import OpRecord, Stop
from engine.debug.alert_folds import fold_key
from engine.debug.source import SourceFrame
from engine.debug.stepping import step_end, step_mode
from engine.events import AlertEvent, OpEvent
from engine.tape import schema
from engine.tape.cap import human_size
from engine.tape.damage import LOST_TO_END, lost_parts
from engine.tape.info import counted, meta_bytes, recording_status
from engine.tape.reader import counts_of
from engine.tape.writer import ended_by_itself


class RecordedFailure(NamedTuple):
    """The op whose forward raised the recorded run's exception: its iteration, its event and the error's line."""

    iteration: int
    event: OpEvent
    message: str


class ReplaySession(Session):
    """A tape replayed through the same models, with a cursor (an event sequence number) that moves
    both ways. On open it plays to the end (a long tape seeks there); `seek`, `rewind` and the step
    commands move the cursor."""

    mode = "replay"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.tape = engine.tape.open(path)  # TapeError when it is not a readable tape
        self.path = self.tape.path
        # A damaged tape shows the events that can still be read, every panel the same ones: past a stretch that is
        # lost the reading goes on (tape.events_lost), and the timeline and the charts show the hole (gaps); what
        # does not need the events (alerts, optimizer steps, output) is shown whole, even where no event can be
        # read; the banner says what was lost (damage_text).
        self._lost: list[str] | None = None  # damage(): read once, when something could not be
        try:  # one pass over the events
            columns = self.tape.columns("kind", "iteration", "phase", "depth", "tensor", "ref", "node", "stack", "t")
            self.iterations = self.tape.iterations_read(columns)
            self.steppable = _steppable(columns)
        except BaseException:
            self.tape.close()
            raise
        self.no_events = self.tape.no_event_read
        self.gaps = self._read(lambda: _gaps(self.tape, columns), [])
        self.counts = counts_of(self.iterations)
        self.recorded_alerts = self._read(self.tape.alerts, [])
        self._first_alerts: dict[tuple, int] = {}  # fold key -> the seq of the first alert of it (the one that stops)
        for a in sorted(self.recorded_alerts, key=lambda a: a.seq):
            self._first_alerts.setdefault(fold_key(a), a.seq)
        self.recorded_edits = self._read(self.tape.edits, [])
        self.parameter_names = frozenset(self._read(self.tape.parameter_names, []))  # asked at every parameter shown
        # the plots show the whole run at once, not as far as the replay has come
        self.recorded_steps = self._read(lambda: self.tape.optimizer_steps(  # (of a damaged tape: as far as readable)
            None if not self.tape.events_lost and not self.tape.notes else self.tape.iterations()), [])
        self.recorded_losses = self._read(lambda: self.tape.loss_history(columns), None)
        whole = self.recorded_losses is not None  # else they fill as the replay reads what it can
        # the script's traceback as a live run shows it (its own frames); the whole of it, for Output's menu
        self._output_seqs, self._output, self.whole_traceback = _recorded_output(self.tape)
        self.raised_at = _raised_at(self.tape.meta.get("raised_at"))  # where a run that raised was stopped
        self.failure = self._read(self._failure, None)  # the op that raised it, marked where the replay reaches it
        self._output_shown = 0  # how many of them the Output panel shows
        capture = self.tape.capture
        # what the inspector and the plots cannot show from this tape, and why ("": they can)
        self.no_values = (f"This tape holds no values (recorded with --capture {capture}).\nRecord with "
                          f"--capture values to load them." if capture in ("structure", "summary") else "")
        self.no_summaries = ("A structure tape holds no values or summaries.\nRecord with --capture summary "
                             "for them." if capture == "structure" else "")
        self.first_seq = self.iterations[0].first_seq if self.iterations else 0
        self.last_seq = self.iterations[-1].last_seq if self.iterations else 0
        # the tape's first event is event 1, though a damaged tape lost it
        first = (self.tape.seq_range() or (self.first_seq, 0))[0] if self.tape.events_lost else self.first_seq
        self.origin = first - 1 if first else 0
        self._starts = [it.first_seq for it in self.iterations]
        self._by_number = {it.iteration: it for it in self.iterations}
        self.cursor = 0  # the seq of the last record applied (0: before the first)
        self._reader: _TapeReader | None = None
        self._next = None  # one record read ahead
        self._mode: tuple | None = None  # (kind, depth, phase, iteration) of a step in progress
        self._target: int | None = None  # seek: stop once the cursor reaches it
        self._stops = 0
        self._stop_at_alerts = False  # Continue and the steps stop at alerts (stop_on_alerts), as a live run does
        self.read_error = ""
        self.status = RUNNING  # playing to the end
        if whole and self.last_seq - self.first_seq > OPEN_AT_END:
            self._reset_before(self.last_seq)  # its last iterations only: playing it through took a minute
        else:
            self._reset(self.first_seq)

    def _failure(self) -> RecordedFailure | None:
        """The op whose forward raised the recorded run's exception, as the tape keeps it; None where no op raised
        it, on a tape written before such ops were kept, or where its event cannot be read."""
        raised = self.tape.raised_op()
        if raised is None:
            return None
        seq, message = raised
        row = next(self.tape.rows(seq, seq + 1), None)
        if row is None or row.kind != "op":
            return None
        return RecordedFailure(row.iteration, row.event, message)

    def _read(self, read, default):
        """read(), or `default` where the tape is damaged there (the banner says so: damage_text)."""
        try:
            return read()
        except engine.tape.TapeError as err:
            self.tape.notes.append(str(err))
            return default

    @property
    def damaged(self) -> bool:
        """Whether some of the tape could not be read (here or by the replay's reader)."""
        return bool(self.tape.notes or self.tape.events_lost or self.read_error
                    or (self._reader is not None and self._reader.lost) or self._lost)

    def damage_text(self) -> str:
        """What of a damaged tape was lost, for the banner; "" for a sound tape."""
        if not self.damaged:
            return ""
        if self._lost is None:
            try:
                self._lost = lost_parts(self.tape, events_read=True)  # read at open
            except engine.tape.TapeError as err:
                self._lost = [str(err)]
        read, total = self.counts["events"], self.tape.meta.get("events", "")
        of = f" of {int(total):,}" if total.isdigit() else ""
        if self.read_error:
            shown = f"the replay stopped at event {self.cursor - self.origin:,} ({self.read_error})"
        elif self.no_events:
            events = f"its {int(total):,} events" if total.isdigit() else "its events"
            shown = (f"none of {events} can be read ({self.tape.events_error}), so there is no graph, timeline or "
                     f"loss; shown is what survived: {self._survivors()}")
        elif self.gaps:
            holes = ", ".join(gap.text(self.origin) for gap in self.gaps)
            shown = (f"{read:,}{of} events shown; lost are {holes}: the hatched gaps on the timeline and the "
                     f"charts; {self.tape.events_error}")
        else:
            shown = f"all its {read:,} events were read"
        lost = [line for line in self._lost if not (self.tape.events_lost and line.startswith("events "))]
        lost_text = "; ".join(lost[:4]) + ("; ..." if len(lost) > 4 else "")
        lost_text = f"; lost{' too' if self.tape.events_lost else ''}: {lost_text}" if lost_text else ""
        return f"Damaged tape: {shown}{lost_text} (tapescope info lists it all)"

    @property
    def has_output(self) -> bool:
        """Whether the tape holds some of the script's output that could be read."""
        return any(chunk.stream != "note" for chunk in self._output)

    def _survivors(self) -> str:
        """What a tape whose events are lost still shows: '3 alerts (Alerts) and 60 optimizer steps (Training)'."""
        parts = [counted(len(self.recorded_alerts), "alert") + " (Alerts)" if self.recorded_alerts else "",
                 counted(len(self.recorded_steps), "optimizer step") + " (Training)" if self.recorded_steps else "",
                 "the script's output (Output)" if self.has_output else "",
                 "the source of the line that raised (Source)" if self.raised_at is not None else ""]
        parts = [p for p in parts if p]
        return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0] if parts else "nothing"

    def start(self) -> ReplaySession:
        """Play to the end of the tape (progressively, a batch per drain)."""
        return self

    @property
    def alive(self) -> bool:
        return True

    @property
    def can_step(self) -> bool:
        return self.status != RUNNING and self._peek() is not None

    def _reset(self, start: int) -> None:
        collapsed = set(self.model.collapsed)
        self.model = GraphModel()
        self.model.collapsed = collapsed
        self.summaries, self.grads, self.frames, self.alerts = {}, {}, {}, []
        self.outputs, self.backward_of, self.steps, self.by_seq = {}, {}, [], {}
        self.made_in, self.op_seq = {}, {}
        self.failed_key = ""
        self._order.clear()
        if self._reader is not None:
            self._reader.cancel()
        self._reader = _TapeReader(self.path, start)
        self._next = None
        self.last = None
        self.cursor = start - 1 if start else 0

    def _peek(self):
        """The next record; _WAIT while the reader thread has not read it yet; None at the end."""
        if self._next is None:
            reader = self._reader
            if reader is None:
                return None
            item = reader.pop()
            if item is _WAIT:
                return _WAIT
            if item is None:
                self._reader = None
                if reader.error is not None:
                    self.read_error = str(reader.error)
                self.tape.notes.extend(n for n in reader.lost if n not in self.tape.notes)  # (each reader finds them)
                return None
            self._next = item
        return self._next

    def _fill(self, change: SessionChange, max_items: int, budget: float) -> None:
        if self.status != RUNNING:
            return
        end = time.perf_counter() + budget
        n = 0
        while n < max_items:
            rec = self._peek()
            if rec is None:
                self._at_end(change)
                return
            if rec is _WAIT:  # the reader thread is behind: more next frame
                return
            if self._target is not None and rec.seq > self._target:
                self._pause_here(change, "seek")
                return
            self._next = None
            if self.gaps and rec.seq > self.cursor + 1 and self.tape.lost_between(self.cursor + 1, rec.seq - 1):
                self.model.skip_gap()  # past events a damaged tape lost: the graph starts again
            self._apply(rec, change)
            self.cursor = rec.seq
            if self.failure is not None and rec.seq == self.failure.event.seq and rec.__class__ is OpRecord:
                self._mark_failed(self.failure.message)  # as the live run marked it
            n += 1
            if self._stop_at_alerts and rec.__class__ is AlertEvent and stops_at(rec, self.stop_on_alerts, self.mutes) \
                    and self._first_alerts.get(fold_key(rec)) == rec.seq:  # a repeat stops nothing, as live
                self._pause_here(change, "alert", rec)  # at the record that raised it (self.last): a NaN's op
                return
            if self._mode is not None and rec.__class__ in _RECORDS:
                hit, self._mode = step_end(self._mode, rec)
                if hit:
                    self._pause_here(change, "step")
                    return
            if not n & 255 and time.perf_counter() > end:
                return

    def _drained(self, change: SessionChange) -> None:
        """The output written at or before the cursor's event: what is new since the last drain, or (the
        cursor moved back) all of it again."""
        # at the end of the tape all of it (a damaged tape may have lost the events it was written at)
        n = len(self._output_seqs) if self.status == FINISHED else bisect.bisect_right(self._output_seqs, self.cursor)
        shown = self._output_shown
        if n == shown:
            return
        if n < shown:
            change.output_reset = True
            shown = 0
        chunks = change.output
        for chunk in self._output[shown:n]:  # one chunk per run of a stream, as a live drain gives them
            if chunks and chunks[-1].stream == chunk.stream != "note":
                chunks[-1] = OutputChunk(chunk.stream, chunks[-1].text + chunk.text)
            else:
                chunks.append(chunk)
        self._output_shown = n

    def _pause_here(self, change: SessionChange, reason: str, alert: AlertEvent | None = None) -> None:
        self._stops += 1
        rec = self.last if self.last is not None and self.cursor else None
        it = rec.iteration if rec is not None else 0
        phase = rec.phase if rec is not None else "forward"
        source = getattr(rec, "source", None)
        self._mode = self._target = None
        self._stop_at_alerts = False
        self._on_stop(Stop(self._stops, reason, rec, it, phase, 0, alert, source), change)

    def _at_end(self, change: SessionChange) -> None:
        if ended_by_itself(self.tape.meta.get("status", "")):  # (as a live run that finished or failed shows it)
            self.model.end_run()
        self._mode = self._target = None
        self._stop_at_alerts = False
        self.status = FINISHED
        self.current_stop = None
        change.status = True

    def _recorded_parameter(self, info: NodeInfo) -> tuple[NodeInfo, str]:
        """A replayed parameter with the summary of its latest snapshot at the cursor, and the note that
        says which one; or the note that says why there is none."""
        tape, name = self.tape, info.label
        if not self.parameter_names:
            why = ("the tape was recorded before tapes kept them" if not tape.keeps_parameters else
                   "a structure tape holds none (record with --capture summary for them)"
                   if tape.capture == "structure" else "none were recorded")
            return info, f"value: values of parameters are not on this tape: {why}"
        if name not in self.parameter_names:  # the model did not name it so
            return info, f"value: the tape holds no snapshots of {name}"
        try:
            snap = tape.parameter(name, seq=self.cursor, value=False)
        except engine.tape.TapeError as err:
            return info, f"value: its snapshot cannot be read ({err})"
        if snap is None:
            return info, "value: not recorded yet at this point of the tape"
        when = (f"after the optimizer step of iteration {snap.iteration}" if snap.after_step else
                f"as iteration {snap.iteration} began, before its forward")
        every = tape.meta.get("parameter_every", "1")
        recorded = "recorded" if every in ("", "0", "1") else f"recorded every {every} iterations"
        return replace(info, summary=snap.summary, iteration=snap.iteration), f"value: {when} ({recorded})"

    def command(self, action: str) -> None:
        """Move the cursor: a step plays to the next matching record, resume to the end, pause stops; both
        stop at an alert on the way (those stop_on_alerts names), as a live run does (seeking and opening do not)."""
        if action == "pause":
            if self.status == RUNNING:
                change = SessionChange()
                self._pause_here(change, "pause")
                self._pending_status = True
            return
        if action not in CONTROL:
            raise ValueError(f"unknown command {action!r}; expected pause or one of {', '.join(CONTROL)}")
        if self._peek() is None:
            return
        goes, mode = _mode_for(action, self.last if self.cursor else None)
        if not goes:
            return  # a step out at an optimizer step: nothing is left to step out of (engine.debug.stepping)
        self._target = None
        self._mode = mode
        self._stop_at_alerts = True
        self.status = RUNNING
        self._pending_status = True

    def seek(self, seq: int) -> None:
        """Move the cursor to event `seq` (both ways): the graph shows the state right after it."""
        seq = min(int(seq), self.last_seq)
        if seq < self.first_seq:
            self.rewind()
            return
        if seq < self.cursor or seq - self.cursor > 50_000:
            self._reset_before(seq)
            self._pending_reset = True
        self._mode = None
        self._stop_at_alerts = False  # a seek goes where it was sent
        self._target = seq
        self.status = RUNNING
        self._pending_status = True

    def values_of(self, info) -> str:
        """Why node `info`'s full values cannot be loaded at the cursor ("": they can): a parameter's snapshot may
        hold its value on a tape that holds no others (the end of a run saved from the window)."""
        if not self.no_values or info is None or info.kind != "param":
            return self.no_values
        try:
            held = self.tape.parameter_has_value(info.label, self.cursor)
        except engine.tape.TapeError:
            held = False
        return "" if held else self.no_values

    @property
    def seeking_to(self) -> int | None:
        """The event a seek is on its way to, while it plays (None otherwise)."""
        return self._target if self.status == RUNNING else None

    def _reset_before(self, seq: int) -> None:
        """Start reading again at the iteration before the one holding `seq` (for the layout)."""
        i = max(bisect.bisect_right(self._starts, seq) - 2, 0)
        self._reset(self._starts[i] if self._starts else 0)

    def rewind(self) -> None:
        """Back to the start, paused before the first event."""
        self._reset(self.first_seq)
        self.iteration, self.phase = 0, "forward"
        self.status = PAUSED
        self.current_stop = None
        self._mode = self._target = None
        self._stop_at_alerts = False
        self._pending_reset = True
        self._pending_status = True

    def source_text(self, file: str) -> str | None:
        try:
            return self.tape.source(file) or super().source_text(file)
        except engine.tape.TapeError:  # the sources table is damaged: the file on disk, if it is there
            return super().source_text(file)

    def iteration_info(self, number: int):
        """Where iteration `number` lies on the tape (an engine.tape IterationInfo), or None."""
        return self._by_number.get(number)

    def status_text(self) -> str:
        if self.status == RUNNING:
            text = f"Replaying (iteration {self.iteration}, {self.phase})"
        elif self.status == FINISHED:
            how = self.tape.meta.get("status", "complete")  # how the recording ended: a script that raised says so
            text = "Replay at the end of the tape" + (
                "" if how == "complete" else f" ({recording_status(how, self.tape.missing_log)})")
        else:
            text = "Replay p" + super().status_text()[1:]
        return f"{text} (a damaged tape: the banner says what was lost)" if self.damaged else text

    def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self.tape.close()


OPEN_AT_END = 50_000  # a tape of more events than this opens at its end instead of playing through
_WAIT = object()
_STEPPABLE = (schema.OP, schema.BACKWARD, schema.OPTIMIZER)


class Gap(NamedTuple):
    """A stretch of events a damaged tape lost: its seqs, and the iterations some or all of whose events it held."""

    first_seq: int
    last_seq: int  # engine.tape.damage.LOST_TO_END: the tape's end, which it cannot tell
    first_iteration: int
    last_iteration: int

    def text(self, origin: int = 0) -> str:
        """'events 63-159 (iterations 4-5)', numbered as the timeline numbers events (from `origin`)."""
        first = self.first_seq - origin
        span = f"events {first:,} on" if self.last_seq >= LOST_TO_END else \
            f"events {first:,}-{self.last_seq - origin:,}" if self.last_seq > self.first_seq else f"event {first:,}"
        its = f"iteration {self.first_iteration}" if self.first_iteration == self.last_iteration else \
            f"iterations {self.first_iteration}-{self.last_iteration}"
        return f"{span} ({its})"


def _gaps(tape, cols: dict) -> list[Gap]:
    """The stretches of events `tape` lost (after reading `cols`, its columns: seq and iteration), each with the
    iterations it held: those the iterations table places in it, else those of the events read either side."""
    seqs, its = cols["seq"], cols["iteration"]
    try:
        table = tape.iterations() if tape.seq_range() is not None else []
    except engine.tape.TapeError:
        table = []
    gaps = []
    for first, last in tape.events_lost:
        held = [info.iteration for info in table if info.first_seq <= last and first <= info.last_seq]
        if not held:
            before, after = np.searchsorted(seqs, first) - 1, np.searchsorted(seqs, last, "right")
            held = [int(its[i]) for i in (before, after) if 0 <= i < len(seqs)]
        if held:  # (none read either side, and no table: nothing to place it by)
            gaps.append(Gap(first, last, min(held), max(held)))
    return gaps


def _recorded_output(tape) -> tuple[list[int], list[OutputChunk], str]:
    """(event seqs, chunks) of the script's output on `tape`, in order, with a note where it was cut; none
    where the output cannot be read (the rest of the tape still replays). A traceback the script's error printed is
    cut to the script's own frames, as a live run shows it (`tapescope record` printed Python's, with the engine's
    frames), and a note says what was left out; the third item is that whole traceback ('': none was cut)."""
    try:
        rows = tape.output()
    except engine.tape.TapeError as err:
        tape.notes.append(f"output: cannot be read ({err})")
        return [], [], ""
    try:
        cut = tape.output_cut()
    except engine.tape.TapeError:  # the drops table is damaged: the output is shown without the note of its cut
        cut = None
    seqs, chunks = [], []
    for row in rows:  # a traceback printed line by line is one chunk (one seq, one stream)
        if seqs and seqs[-1] == row.seq and chunks[-1].stream == row.stream:
            chunks[-1] = OutputChunk(row.stream, chunks[-1].text + row.text)
        else:
            seqs.append(row.seq)
            chunks.append(OutputChunk(row.stream, row.text))
    whole = _own_tracebacks(tape, seqs, chunks)
    if cut is not None:
        limit = meta_bytes(tape.meta.get("max_output_bytes", ""))
        kept = f"the first {human_size(limit)} of " if limit is not None else ""
        at = bisect.bisect_right(seqs, cut[0])
        seqs.insert(at, cut[0])
        chunks.insert(at, OutputChunk("note", f"\u2702 The tape keeps {kept}the script's output: "
                                              f"{human_size(cut[1])} more was not recorded."))
    return seqs, chunks, whole


def _own_tracebacks(tape, seqs: list[int], chunks: list[OutputChunk]) -> str:
    """Cut the tracebacks in `chunks` (stderr) to the script's frames, in place, each followed by a note of what was
    left out; the whole text of those cut ('' where none was). The script's files are those the tape keeps the source
    of (the files of the frames it recorded), less the engine's and the app's; a tape that keeps none is left as is."""
    try:
        files = {file for file in tape.sources() if own_file(file)}
    except engine.tape.TapeError:
        return ""
    if not files:
        return ""
    whole = []
    for i in range(len(chunks) - 1, -1, -1):
        chunk = chunks[i]
        if chunk.stream != "stderr" or "Traceback (most recent call last):" not in chunk.text:
            continue
        text, hidden = own_frames(chunk.text, files.__contains__)
        if hidden:
            whole.append(chunk.text)
            chunks[i] = OutputChunk("stderr", text)
            seqs.insert(i + 1, seqs[i])
            chunks.insert(i + 1, OutputChunk("note", f"\u2026 {counted(hidden, 'frame')} of the engine and Python "
                                                     "left out, as the live run shows its error (Output's context "
                                                     "menu copies the whole traceback the tape keeps)"))
    return "".join(reversed(whole))


def _steppable(cols: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(seqs, iterations, phase codes, module depths) of the records a step can stop at (the timeline's
    events), from the tape's columns."""
    keep = np.isin(cols["kind"], _STEPPABLE)
    return cols["seq"][keep], cols["iteration"][keep], cols["phase"][keep], cols["depth"][keep]


class _TapeReader:
    """Reads a tape's records from seq `start` on a worker thread (with its own connection) into a
    bounded deque, so that decoding a large tape never stalls the GUI thread."""

    def __init__(self, path: str, start: int, limit: int = 20000) -> None:
        self.path = path
        self.start = start
        self.limit = limit
        self.items: deque = deque()
        self.done = False
        self.error: BaseException | None = None
        self.lost: list[str] = []  # what the reader could not read (its tape's notes), when done
        self._cancel = threading.Event()
        self._room = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tape reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        items, cancel = self.items, self._cancel
        try:
            with engine.tape.open(self.path) as tape:
                for rec in tape.records(start=self.start):
                    if cancel.is_set():
                        return
                    items.append(rec)
                    while len(items) >= self.limit and not cancel.is_set():
                        self._room.wait(0.05)
                        self._room.clear()
                self.lost = list(tape.notes)
        except engine.tape.TapeError as err:  # a tape damaged past its index: what was read stays shown
            self.error = err
        finally:
            self.done = True

    def pop(self):
        """The next record, _WAIT when none is read yet, None when there are no more."""
        if self.items:
            item = self.items.popleft()
            if len(self.items) < self.limit // 2:
                self._room.set()
            return item
        if self.done:
            return self.items.popleft() if self.items else None  # appended just before done was set
        return _WAIT

    def cancel(self) -> None:
        """Stop reading (the thread ends at its next record)."""
        self._cancel.set()
        self._room.set()


def _mode_for(action: str, rec) -> tuple[bool, tuple | None]:
    """Whether `action` goes anywhere, and the step in progress as the debugger keeps it: (kind, depth, phase,
    iteration) at its start (engine.debug.stepping.step_mode)."""
    if rec is None:
        return step_mode(action, 0, "forward", -1)
    return step_mode(action, rec.depth, rec.phase, rec.iteration)


def _raised_at(text: str | None) -> SourceFrame | None:
    """The line that raised the recorded run's exception, from the tape's meta (JSON [file, line, function,
    text]); None when the run did not raise, or when the value is not that (a damaged tape: shown nowhere)."""
    try:
        file, line, function, code = json.loads(text) if text else (None,) * 4
    except (ValueError, TypeError):
        return None
    if not (isinstance(file, str) and type(line) is int and isinstance(function, str) and isinstance(code, str)):
        return None
    return SourceFrame(file, line, function, code)
