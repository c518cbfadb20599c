"""Exporting a tape: JSON (everything, plain), Graphviz DOT (one iteration's graph), Perfetto trace.

Each exporter streams to a text file and calls `progress(n)` with the number of events it has just
handled, so a command line can show a progress bar without the engine knowing about terminals.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import textwrap
from collections.abc import Callable
from dataclasses import fields
from typing import NamedTuple, TextIO

from engine.debug.alert_text import kind_name
from engine.debug.node_names import input_name, op_names
from engine.debug.source import SourceFrame
from engine.debug.summary import TensorSummary
from engine.tape.codec import args_text, op_args
from engine.tape.errors import TapeError
from engine.tape.reader import EventRow, ParameterSnapshot, Tape

Progress = Callable[[int], None] | None
FORMATS = ("json", "dot", "perfetto")
_STEP = 2048


def progress_total(tape: Tape, fmt: str, iteration: int | None = None) -> int:
    """How many units an export of `tape` as `fmt` reports through `progress`: every event, and for JSON
    every parameter snapshot too; for DOT the events of the iteration drawn (read) and its ops (written)."""
    if fmt == "dot":
        if iteration is None:
            iteration = _default_iteration(tape)
        info = None if iteration is None else tape.iteration(iteration)
        return 0 if info is None else info.events + info.ops
    total = tape.counts()["events"]
    if fmt == "json":
        with contextlib.suppress(TapeError):  # damaged there: the export leaves them out (and says so)
            total += tape.parameter_counts()["snapshots"]
    return total


@contextlib.contextmanager
def whole_file(path: str):
    """A text file to export into, written whole or not at all: the export goes to a new file beside it,
    renamed over it at the end, so a failed or abandoned export (an exception leaving the block) leaves what
    was there before. A path that is not a regular file (a pipe, a terminal) is written directly."""
    whole = not os.path.exists(path) or os.path.isfile(path)
    target = os.path.realpath(path) if whole else path  # through a link, to the file it names
    part = f"{target}.{os.getpid()}.part" if whole else target
    try:
        with open(part, "w", encoding="utf-8") as out:
            yield out
    except BaseException:
        if whole and os.path.exists(part):
            os.remove(part)
        raise
    if whole:
        os.replace(part, target)


def export(tape: Tape, fmt: str, out: TextIO, *, iteration: int | None = None,
           progress: Progress = None) -> None:
    """Write `tape` to `out` as "json", "dot" (one iteration; the last by default) or "perfetto"."""
    if fmt == "json":
        export_json(tape, out, progress)
    elif fmt == "dot":
        export_dot(tape, out, iteration, progress)
    elif fmt == "perfetto":
        export_perfetto(tape, out, progress)
    else:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _chunks(tape: Tape, progress: Progress, rows=None):
    """Event rows (or the items of `rows`) in lists of a few thousand, reporting progress after each."""
    chunk: list = []
    for row in tape.rows() if rows is None else rows:
        chunk.append(row)
        if len(chunk) == _STEP:
            yield chunk
            if progress:
                progress(len(chunk))
            chunk = []
    if chunk:
        yield chunk
        if progress:
            progress(len(chunk))


# ---- JSON ---------------------------------------------------------------------------------------
def plain(value):
    """Event fields as JSON-ready data: tuples become lists, summaries dicts, non-finite floats strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, TensorSummary):
        return summary_dict(value)
    return value


def summary_dict(s: TensorSummary) -> dict:
    """A TensorSummary as a dict of plain data."""
    out = {f.name: plain(getattr(s, f.name)) for f in fields(s) if f.name != "counts"}
    out["counts"] = s.counts.tolist()
    return out


def frame_dict(frame: SourceFrame) -> dict:
    """A source frame as a dict: file, line, function and the line's code."""
    return {"file": frame.file, "line": frame.line, "function": frame.function, "code": frame.text}


def event_dict(row: EventRow, summaries: dict, source: SourceFrame | None = None,
               stack: tuple[SourceFrame, ...] = ()) -> dict:
    """One stored event as a dict: where it happened (its place in the run, and the file, line and code it was
    called from, with the user frames it ran under, innermost first), its fields, and the summaries of its tensors."""
    ev = row.event
    out = {"type": row.kind, "seq": row.seq, "iteration": row.iteration, "phase": row.phase,
           "depth": row.depth, "t_ns": row.t}
    if source is not None:
        out.update(file=source.file, line=source.line, code=source.text)
    if stack:
        out["stack"] = [frame_dict(frame) for frame in stack]
    out.update({f.name: plain(getattr(ev, f.name)) for f in fields(ev) if f.name != "seq"})
    ids = ((ev.output,) if row.kind == "op" else (ev.grad_output, *ev.grad_inputs) if row.kind == "backward"
           else ())
    found = {str(i): summary_dict(summaries[i]) for i in ids if i in summaries}
    if found:
        out["summaries"] = found
    return out


def export_json(tape: Tape, out: TextIO, progress: Progress = None) -> None:
    """Everything on the tape except raw values, as one JSON object: the source files as recorded (file ->
    {"text", "note"}), the events streamed one per line (each op and optimizer step with the file, line and code it
    was called from), then the script's output ({"seq", "stream", "text"} chunks, in order) and the parameter
    snapshots: name -> [snapshot, ...] in the order they were taken."""
    dump = json.dumps
    head = {"format": "tapescope-tape-json", "format_version": tape.format_version, "meta": tape.meta,
            "iterations": [info._asdict() for info in tape.iterations()],
            "sources": _sources(tape), "drops": [d._asdict() for d in tape.drops()]}
    out.write(dump(head, allow_nan=False)[:-1] + ',\n"events": [\n')
    first = True
    for chunk in _chunks(tape, progress, tape.placed_rows()):
        ids = []
        for row, _source, _stack in chunk:
            if row.kind == "op":
                ids.append(row.event.output)
            elif row.kind == "backward":
                ids.extend((row.event.grad_output, *row.event.grad_inputs))
        summaries = tape.summaries(ids, skip_damaged=True) if ids else {}
        for row, source, stack in chunk:
            out.write(("" if first else ",\n") + dump(event_dict(row, summaries, source, stack), allow_nan=False))
            first = False
    out.write('\n],\n"output": [\n')
    out.write(",\n".join(dump(row._asdict()) for row in tape.output()))
    out.write('\n],\n"parameters": {')
    _json_parameters(tape, out, progress)
    out.write("}}\n")


def _sources(tape: Tape) -> dict[str, dict]:
    """file -> {"text": its text as recorded (None where it was not copied), "note": "copied" or why not}; a file
    whose text cannot be read is given without it (noted)."""
    out = {}
    for file, note in tape.sources().items():
        try:
            text = tape.source(file)
        except TapeError as err:
            text = None
            tape.notes.append(f"the source of {file} left out: {err}")
        out[file] = {"text": text, "note": note}
    return out


def snapshot_dict(snap: ParameterSnapshot) -> dict:
    """A parameter snapshot as a dict of plain data (its raw value left out, as the events' are)."""
    return {"seq": snap.seq, "iteration": snap.iteration, "after_step": snap.after_step, "tensor": snap.tensor,
            "summary": summary_dict(snap.summary)}


def _json_parameters(tape: Tape, out: TextIO, progress: Progress) -> None:
    """Each parameter's snapshots, oldest first, one name (one query) at a time."""
    dump = json.dumps
    try:
        names = tape.parameter_names()
    except TapeError as err:  # a damaged tape: what can be read is exported, the rest noted
        names = []
        tape.notes.append(f"parameter snapshots left out: {err}")
    for n, name in enumerate(names):
        try:
            snaps = tape.parameter_history(name)
        except TapeError as err:
            snaps = []
            tape.notes.append(f"snapshots of {name} left out: {err}")
        out.write(("" if n == 0 else ",") + f"\n{dump(name)}: [\n")
        out.write(",\n".join(dump(snapshot_dict(s), allow_nan=False) for s in snaps))
        out.write("\n]")
        if progress:
            progress(len(snaps))


# ---- Graphviz DOT -----------------------------------------------------------------------------------
def dot_string(text: str) -> str:
    """`text` as a double-quoted DOT string that renders literally (no escapes, no injected syntax)."""
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c.isprintable() or c == " ":
            out.append(c)
        else:
            out.append(f"\\\\x{ord(c):02x}")  # shown as the escape's text, never interpreted
    return '"' + "".join(out) + '"'


def _label(*lines: str) -> str:
    """A DOT label of several lines, each quoted safely."""
    return dot_string("\n".join(lines))


def _shape(shape: tuple) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def export_dot(tape: Tape, out: TextIO, iteration: int | None = None, progress: Progress = None) -> None:
    """The forward graph of one iteration (by default the last whole training step, see
    _default_iteration), modules as nested clusters. Progress: the iteration's events as they are read,
    then its ops as they are written."""
    if iteration is None:
        iteration = _default_iteration(tape)
    graph = tape.graph(iteration, progress) if iteration is not None else None
    title = f"{tape.path}, iteration {iteration}" if graph else f"{tape.path}: no ops recorded"
    out.write("digraph tape {\n")
    out.write(f"  graph [label={dot_string(title)}, labelloc=t, fontname=Helvetica, rankdir=TB];\n")
    out.write('  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname=Helvetica, '
              'fontsize=10];\n')
    out.write("  edge [fontname=Helvetica, fontsize=9];\n")
    if graph:
        _dot_body(tape, graph, out, progress)
    out.write("}\n")


def _dot_body(tape: Tape, graph, out: TextIO, progress: Progress) -> None:
    tree: dict[str, list] = {}  # module path -> ops directly in it
    for op in graph.ops:
        tree.setdefault(op.module, []).append(op)
    paths = sorted({p for m in tree if m for p in _prefixes(m)})
    cluster_ids = {p: i for i, p in enumerate(paths)}

    written = 0
    marks = _marks(tape, graph)
    named = _op_names(graph, {seq for seq, mark in marks.items() if mark.kind == "failed"})

    def emit(path: str, indent: str) -> None:
        nonlocal written
        for op in tree.get(path, ()):
            mark = marks.get(op.seq)
            made = () if mark is not None and mark.kind == "failed" else (f"{_shape(op.output_shape)} {op.dtype}",)
            lines = (*((named[op.seq],) if op.seq in named else ()), _call(op), op.key, *made,
                     *(mark.lines if mark is not None else ()))
            out.write(f"{indent}op{op.seq} [label={_label(*lines)}{_painted(mark)}];\n")
            written += 1
            if written == _STEP and progress:
                progress(written)
                written = 0
        for child in paths:
            if _parent(child) == path:
                out.write(f"{indent}subgraph cluster_{cluster_ids[child]} {{\n")
                out.write(f'{indent}  label={dot_string(child)}; style="rounded,dashed"; color="#7a8aa6";\n')
                emit(child, indent + "  ")
                out.write(f"{indent}}}\n")

    emit("", "  ")
    if progress and written:
        progress(written)
    shapes, first_shape = {}, {}
    for op in graph.ops:
        for tid, shape in zip(op.inputs, op.input_shapes):
            shapes[(tid, op.seq)] = shape
            first_shape.setdefault(tid, shape)
    inputs = _input_names(tape, graph)
    for tid in dict.fromkeys(t for t, _ in graph.leaves):
        shape = first_shape.get(tid, ())
        name = graph.names.get(tid)
        if name is not None:  # a parameter, drawn as the app draws them
            out.write(f'  t{tid} [shape=box, style="rounded,filled", fillcolor="#fff3bf", '
                      f"label={_label(name, _shape(shape))}];\n")
        else:
            out.write(f"  t{tid} [shape=ellipse, style=solid, label={_label(inputs[tid], _shape(shape))}];\n")
    for tid, dst in graph.leaves:
        out.write(f"  t{tid} -> op{dst};\n")
    for src, dst, tid in graph.edges:
        out.write(f"  op{src} -> op{dst} [label={dot_string(_shape(shapes.get((tid, dst), ())))}];\n")


class _Mark(NamedTuple):
    """How the DOT export marks an op, as the app's graph paints it: kind "failed" (the op raised), "nan" (NaN in its
    output, or an alert says non-finite values start there) or "inf" (only +-Inf, no alert); the lines it adds to
    the label; whether an alert names it (a bold border); a tooltip (the error or the alert's message)."""

    kind: str
    lines: tuple[str, ...]
    alert: bool
    tooltip: str


# fill, border and label colour of each kind: as widgets.graph_canvas paints them (FAILED, NONFINITE, INFINITE)
_COLOURS = {"failed": ("#862e9c", "#4a1457", "#ffffff"), "nan": ("#e03131", "#8b0000", "#ffffff"),
            "inf": ("#fab005", "#9c5d00", "#000000")}
# the error on the label of the op that raised: at most this many lines of this many characters (the tooltip: all)
_ERROR_LINES, _ERROR_WIDTH = 3, 60


def _marks(tape: Tape, graph) -> dict[int, _Mark]:
    """op seq -> how to mark it: the op that raised the run's exception, the ops whose outputs hold NaN or +-Inf (their
    summaries say), and those an alert of the iteration names as where non-finite values start."""
    raised = tape.raised_op()
    summaries = tape.summaries([op.output for op in graph.ops if op.output], skip_damaged=True)
    try:
        alerts = {a.forward_seq: a for a in reversed(tape.alerts()) if a.iteration == graph.iteration}
    except TapeError as err:  # a damaged alerts table: the ops are marked by their summaries alone
        alerts = {}
        tape.notes.append(f"alerts left out of the graph: {err}")
    marks = {}
    for op in graph.ops:
        kind, lines, tips = None, [], []
        if raised is not None and op.seq == raised[0]:
            error = raised[1]
            kind = "failed"
            lines += textwrap.wrap(f"raised {error}", _ERROR_WIDTH, max_lines=_ERROR_LINES, placeholder=" \u2026")
            tips.append(error)
        summary = summaries.get(op.output)
        if summary is not None and summary.nan_count:
            kind = kind or "nan"
            lines.append("NaN in its output")
        elif summary is not None and summary.inf_count:
            kind = kind or "inf"
            lines.append("\u00b1Inf in its output, no NaN")
        alert = alerts.get(op.seq)
        if alert is not None:
            kind = "failed" if kind == "failed" else "nan"  # an alert's op is red, as NaN
            lines.append(f"alert: {kind_name(alert.kind)}")
            tips.append(alert.message)
        if kind is not None:
            marks[op.seq] = _Mark(kind, tuple(lines), alert is not None, "\n".join(tips))
    return marks


def _painted(mark: _Mark | None) -> str:
    """The DOT attributes that paint a marked op ("" for one without a mark)."""
    if mark is None:
        return ""
    fill, border, text = _COLOURS[mark.kind]
    return (f', fillcolor="{fill}", color="{border}", fontcolor="{text}"' + (", penwidth=3" if mark.alert else "")
            + (f", tooltip={dot_string(mark.tooltip)}" if mark.tooltip else ""))


def _op_names(graph, unnamed: set[int] = frozenset()) -> dict[int, str]:
    """op seq -> the name the script assigned the op's output to ("q", "scores"), as the app's graph names
    it (engine.debug.node_names.op_names); a module call is told by its path here, every call of it alike. The ops
    of `unnamed` (the op that raised: it made no output to name) get none."""
    position = {op.seq: p for p, op in enumerate(graph.ops)}
    inputs: list[list[int]] = [[] for _ in graph.ops]
    for src, dst, _tid in graph.edges:
        inputs[position[dst]].append(position[src])
    stacks = [graph.stacks.get(op.seq, ()) for op in graph.ops]
    calls = [tuple(_prefixes(op.module)) if op.module else () for op in graph.ops]
    names = op_names([op.op for op in graph.ops], stacks, inputs, calls)
    return {op.seq: name for op, name in zip(graph.ops, names, strict=True) if name and op.seq not in unnamed}


def _input_names(tape: Tape, graph) -> dict[int, str]:
    """tensor id -> what the app's graph calls each input that is no parameter: the name the script gave it on
    its first consumer's source line ("x", "y"), else the argument's name ("target"), numbered where two read
    alike ("input 1", "input 2"), as engine.debug.node_names names them for the app."""
    ops = {op.seq: op for op in graph.ops}
    uses: dict[tuple, int] = {}
    names: dict[int, str] = {}
    for tid, seq in graph.leaves:
        op = ops[seq]
        if tid in names or tid in graph.names:
            continue
        try:
            source = tape.stack(seq)[0]
        except TapeError:  # a damaged stack: the argument's name
            source = None
        line = source.text if source is not None else ""
        arg = op.inputs.index(tid)
        use = (op.op, arg, line)
        nth = uses[use] = uses.get(use, -1) + 1
        names[tid] = input_name(op.op, arg, line, nth)
    count: dict[str, int] = {}
    for name in names.values():
        count[name] = count.get(name, 0) + 1
    seen: dict[str, int] = {}
    for tid, name in names.items():
        if count[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            names[tid] = f"{name} {seen[name]}"
    return names


def _call(op) -> str:
    """The op as a person would call it: "cross_entropy(reduction='mean', ...)", or its name alone."""
    args = op_args(op.op, op.args)
    return f"{op.op}({args_text(args)})" if args else op.op


def _prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


_TRAINING_LOOKBACK = 1024  # iterations searched back for a whole training step before settling for ops


def _default_iteration(tape: Tape) -> int | None:
    """The last whole training step (forward and backward), else the last iteration with ops.

    The last iteration is often a fragment: what ran after the final optimizer step (an accuracy
    check), or a step cut short where the script stopped."""
    counts = tape.counts()
    if counts["last_iteration"] is None:
        return None
    with_ops = None
    hi = counts["last_iteration"] + 1
    searched = 0
    while True:
        infos = tape.iterations(hi - 64, hi)
        if not infos:
            return with_ops
        for info in reversed(infos):
            if info.ops and info.backward:
                return info.iteration
            if info.ops and with_ops is None:
                with_ops = info.iteration
        searched += len(infos)
        if with_ops is not None and searched >= _TRAINING_LOOKBACK:
            return with_ops
        hi = infos[0].iteration


# ---- Perfetto (Chrome trace event format) ------------------------------------------------------------
_FORWARD, _BACKWARD, _OPTIMIZER, _ITERATIONS = 1, 2, 3, 4
_MIN_DUR_NS = 1  # a slice must have some width for a flow arrow to bind to it


def export_perfetto(tape: Tape, out: TextIO, progress: Progress = None) -> None:
    """A Chrome trace JSON for ui.perfetto.dev: forward ops inside their module calls, backward nodes on
    their own track linked to their forward op by flow arrows, optimizer steps and iterations."""
    dump = json.dumps
    out.write('{"displayTimeUnit": "ms", "traceEvents": [\n')
    meta = [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": f"tapescope {tape.path}"}}]
    for tid, name in ((_FORWARD, "forward"), (_BACKWARD, "backward"), (_OPTIMIZER, "optimizer"),
                      (_ITERATIONS, "iterations")):
        meta.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": name}})
        meta.append({"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": tid,
                     "args": {"sort_index": tid}})
    out.write(",\n".join(dump(m) for m in meta))
    for info in tape.iterations():
        out.write(",\n" + dump(_slice(f"iteration {info.iteration}", "iteration", _ITERATIONS, info.t_first,
                                      info.t_last - info.t_first, {"events": info.events, "ops": info.ops})))
    prev_t = None
    modules: list[tuple[str, int, int]] = []  # open module calls: (path, seq, t)
    # module path -> (the t of the last event inside its latest call, the t of its exit): where the op that raised
    # ran (its event comes after the run ended, with the time it was kept at)
    ended: dict[str, tuple[int, int]] = {}
    raised = tape.raised_op()
    forward: dict[int, tuple[float, float]] = {}  # forward op seq -> (ts, dur) in µs
    for chunk in _chunks(tape, progress):
        lines = []
        for row in chunk:
            ev, t = row.event, row.t
            start = row.t if prev_t is None else prev_t
            kind = row.kind
            if raised is not None and ev.seq == raised[0] and kind == "op":
                start, t = _raised_span(ended.get(ev.module), start)
            else:
                prev_t = t
            if kind == "op":
                sl = _slice(ev.op, "forward", _FORWARD, start, t - start,
                            {"key": ev.key, "module": ev.module, "seq": ev.seq, "iteration": row.iteration,
                             "shape": list(ev.output_shape), "dtype": ev.dtype,
                             **({"args": args_text(args)} if (args := op_args(ev.op, ev.args))
                                else {})})
                if len(forward) > 200_000:
                    forward.clear()
                forward[ev.seq] = (sl["ts"], sl["dur"])
                lines.append(sl)
            elif kind == "backward":
                sl = _slice(f"{ev.op} backward", "backward", _BACKWARD, start, t - start,
                            {"key": ev.key, "seq": ev.seq, "forward_seq": ev.forward_seq,
                             "iteration": row.iteration})
                lines.append(sl)
                fwd = forward.get(ev.forward_seq)
                if fwd is not None:
                    flow = {"name": "gradient", "cat": "autograd", "id": ev.forward_seq, "pid": 1}
                    lines.append({**flow, "ph": "s", "tid": _FORWARD, "ts": fwd[0] + fwd[1] / 2})
                    lines.append({**flow, "ph": "f", "bp": "e", "tid": _BACKWARD,
                                  "ts": sl["ts"] + sl["dur"] / 2})
            elif kind == "module_enter":
                modules.append((ev.path, ev.seq, t))
            elif kind == "module_exit":
                for i in range(len(modules) - 1, -1, -1):
                    if modules[i][0] == ev.path:
                        path, seq, t_enter = modules.pop(i)
                        ended[path] = (start, t)
                        lines.append(_slice(path, "module", _FORWARD, t_enter, t - t_enter,
                                            {"class": ev.cls, "seq": seq, "iteration": row.iteration}))
                        break
            elif kind == "optimizer":
                lines.append(_slice(ev.optimizer, "optimizer", _OPTIMIZER, start, t - start,
                                    {"lrs": plain(ev.lrs), "iteration": row.iteration}))
            elif kind in ("alert", "edit"):
                name = f"{kind}: {ev.kind}"
                lines.append({"name": name, "cat": kind, "ph": "i", "s": "g", "pid": 1, "tid": _FORWARD,
                              "ts": _us(t), "args": {"message": ev.message, "iteration": row.iteration}})
        if lines:
            out.write(",\n" + ",\n".join(dump(x, allow_nan=False) for x in lines))
    out.write("\n]}\n")


def _raised_span(call: tuple[int, int] | None, before: int) -> tuple[int, int]:
    """(start, end) in ns of the op that raised: inside the latest call of its module (`call`: the t of the last
    event inside it and of its exit), a ns in from either end so that it nests; without a module, a moment after
    the event `before` it (its event's own t is when the failure was kept, after the run)."""
    if call is None or call[1] - call[0] <= 2 * _MIN_DUR_NS:
        return before, before + _MIN_DUR_NS
    return call[0] + _MIN_DUR_NS, call[1] - _MIN_DUR_NS


def _slice(name: str, cat: str, tid: int, t_ns: int, dur_ns: int, args: dict) -> dict:
    """A complete ("X") event; times from the recording clock in ns, written in µs."""
    return {"name": name, "cat": cat, "ph": "X", "pid": 1, "tid": tid, "ts": _us(t_ns),
            "dur": _us(max(dur_ns, _MIN_DUR_NS)), "args": args}


def _us(ns: int) -> float:
    """ns in µs, a quarter ns over: Perfetto reads a time back as int(µs * 1000), which gives 26901973 for
    26901.974, so a slice could end a ns after the next one began and the two no longer nest. From
    26901.97425 truncating and rounding both give back the ns, and each slice ends where the next begins."""
    return (ns + 0.25) / 1000
