"""What a tape holds, as plain data (`tapescope info --json`) or as a few lines for a person."""

from __future__ import annotations

import json
import os
import re
import shlex

from engine.debug.alert_text import KEY_NAMES, kind_name
from engine.tape import schema
from engine.tape.cap import human_size
from engine.tape.codec import printable
from engine.tape.damage import lost_parts
from engine.tape.errors import TapeError
from engine.tape.output import DROPPED
from engine.tape.reader import Tape, counts_of

_META = ("tapescope_version", "created", "closed", "status", "capture", "python", "numpy", "cupy", "platform")


def tape_info(tape: Tape) -> dict:
    """format_version, meta, counts, iterations, edits and alerts (each a dict) of a tape; of a damaged
    tape, what could be read, and under "damage" one line per part that could not be (engine.tape.damage)."""
    damage = _Damage(tape)
    columns = damage.read(lambda: tape.columns("kind", "iteration", "t"), None)
    infos = [] if columns is None else tape.iterations_read(columns)
    counts = counts_of(infos)
    kinds = tape.kind_counts(columns) if columns is not None else dict.fromkeys(schema.KIND_NAMES.values(), 0)
    alerts = damage.read(tape.alerts, [])
    edits = damage.read(tape.edits, [])
    params = damage.read(tape.parameter_counts, {"snapshots": None, "parameters": None})
    out = {"path": tape.path, "format_version": tape.format_version, "size_bytes": _size(tape.path, tape._wal)}
    out.update({key: tape.meta.get(key, "") for key in _META})
    out["max_bytes"] = meta_bytes(tape.meta.get("max_bytes", ""))
    out["command_line"] = _json_list(tape.meta.get("command_line", "[]"))
    out["devices"] = _json_list(tape.meta.get("devices", "[]"))
    out.update({
        "iterations": counts["iterations"], "first_iteration": counts["first_iteration"],
        "last_iteration": counts["last_iteration"], "events": counts["events"], "ops": kinds["op"],
        "backward": kinds["backward"], "modules": kinds["module_enter"],
        "optimizer_steps": kinds["optimizer"], "kinds": kinds,
        "parameter_snapshots": params["snapshots"], "snapshotted_parameters": params["parameters"],
        "edits": len(edits),
        "edit_list": [{"kind": e.kind, "target": e.target, "applied": e.applied, "message": e.message,
                       "iteration": e.iteration} for e in edits],
        "alerts": [{"kind": a.kind, "op": a.op, "key": a.key, "module": a.module, "file": a.file,
                    "line": a.line, "iteration": a.iteration, "message": a.message} for a in alerts],
        "sources": sorted(damage.read(tape.sources, {})),
        "dropped": damage.read(lambda: _dropped(tape), {}),
        "dropped_behind": _counts(tape.meta.get("dropped_behind", "")),
        "output_bytes": damage.read(tape.output_bytes, 0),
        "output_kept": tape.keeps_output,
        "max_output_bytes": meta_bytes(tape.meta.get("max_output_bytes", "")),
        "recorded_events": meta_bytes(tape.meta.get("events", "")),  # the writer's count, None before it kept one
        "raised_op": damage.read(lambda: _raised(tape), None),
        "damage": damage.lines(),
        "missing_log": tape.missing_log or None,
    })
    return out


def _raised(tape: Tape) -> dict | None:
    """The op whose forward raised the recorded run's exception (Tape.raised_op), or None: its seq, iteration, op,
    stable key, module, input shapes and the error's line (the event's fields None where it cannot be read)."""
    raised = tape.raised_op()
    if raised is None:
        return None
    seq, message = raised
    row = next(tape.rows(seq, seq + 1), None)
    ev = row.event if row is not None and row.kind == "op" else None
    return {"seq": seq, "iteration": row.iteration if ev else None, "op": ev.op if ev else None,
            "key": ev.key if ev else None, "module": ev.module if ev else None,
            "input_shapes": [list(shape) for shape in ev.input_shapes] if ev else None, "message": message}


class _Damage:
    """Reads the parts of a tape that may be damaged, and says which were."""

    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self.failed = False

    def read(self, part, default):
        """part(), or `default` where the tape is damaged there."""
        try:
            return part()
        except TapeError:
            self.failed = True
            return default

    def lines(self) -> list[str]:
        """What could not be read (engine.tape.damage.lost_parts)."""
        return lost_parts(self.tape, self.failed, events_read=True)  # tape_info reads them first


def _size(path: str, unclosed: bool) -> int:
    """Bytes on disk: the file, and the write-ahead log of a tape still recording or left by a killed one
    (beside a closed tape, a -wal file is another's: see reader._connect)."""
    wal = path + "-wal"
    return os.path.getsize(path) + (os.path.getsize(wal) if unclosed and os.path.isfile(wal) else 0)


def meta_bytes(text: str) -> int | None:
    """A byte count (a size cap) from the tape's meta table; None for none (or a tape from before it was noted)."""
    # the tape's bytes are not trusted: a count of bytes has at most 19 digits (int() refuses 4,300)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None


def _json_list(text: str) -> list:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or lists nested past what the parser can follow
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _counts(text: str) -> dict[str, int] | None:
    """A JSON object of counts from the tape's meta table (what -> count); None where it is not one."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not all(type(n) is int and n >= 0 for n in value.values()):
        return None
    return value


def _dropped(tape: Tape) -> dict[str, int]:
    totals: dict[str, int] = {}
    for drop in tape.drops():
        totals[drop.what] = totals.get(drop.what, 0) + drop.count
    return totals


def describe(info: dict) -> str:
    """A few lines for a person, from tape_info(); every string from the tape is made printable."""
    p = printable
    lines = [
        f"{p(info['path'])}: tape format {info['format_version']}, written by tapescope "
        f"{p(info['tapescope_version'])} on {p(info['created'])} "
        f"({recording_status(info['status'], p(info.get('missing_log') or ''))}"
        # how the recording ended, not the file's state now: beside DAMAGED, "(complete)" read as a contradiction
        + ("; the file was damaged since)" if info.get("damage") else ")"),
        f"  command:    {p(shlex.join(info['command_line']))}",  # quoted: it can be pasted to run again
        f"  software:   Python {p(info['python'])}, numpy {p(info['numpy'])}, "
        f"CuPy {p(info['cupy']) or 'none'}",
        f"  devices:    {p(', '.join(info['devices']))}",
        f"  capture:    {p(info['capture'])}; {info['size_bytes']:,} bytes"
        + (f" ({human_size(info['size_bytes'])})" if info["size_bytes"] >= 1024 else "")
        + (f", size cap {human_size(info['max_bytes'])}" if info.get("max_bytes") else ""),
    ]
    for i, line in enumerate(info.get("damage", ())):  # first, where no one can miss it
        lines.insert(1 + i, f"  {'DAMAGED:' if i == 0 else '':<11} {p(line)}")
    if info.get("damage"):
        total = info.get("recorded_events")
        read = "all" if total is None or total == info["events"] else f"{info['events']:,} of {total:,}"
        lines.insert(1 + len(info["damage"]), f"  {'':<11} below: what could be read ({read} events)")
    if info["iterations"]:
        lines.append(f"  iterations: {info['iterations']:,} "
                     f"({info['first_iteration']}..{info['last_iteration']})")
    else:
        lines.append("  iterations: none")
    lines.append(f"  events:     {info['events']:,} ({_kinds(info['kinds'])})")
    raised = info.get("raised_op")
    if raised and raised["op"] is not None:  # where the run failed: the op, its inputs, the error
        shapes = ", ".join("x".join(map(str, shape)) or "scalar" for shape in raised["input_shapes"])
        lines.append(f"  raised:     {p(raised['op'])}" + (f" in {p(raised['module'])}" if raised["module"] else "")
                     + f" in iteration {raised['iteration']} (inputs {shapes}): {p(raised['message'])}")
    if info.get("parameter_snapshots") is None and info.get("damage"):
        lines.append("  parameters: cannot be read (damaged)")
    elif info.get("parameter_snapshots"):
        lines.append(f"  parameters: {counted(info['parameter_snapshots'], 'snapshot')} of "
                     f"{counted(info['snapshotted_parameters'], 'parameter')}")
    else:
        lines.append("  parameters: no snapshots" + (" (a structure tape holds none)" if info["capture"] == "structure"
                                                     else ""))
    lines.append(f"  sources:    {counted(len(info['sources']), 'file')}")
    lines.append(f"  output:     {_output(info)}")
    dropped = _drops(info)
    if dropped:
        lines.append(f"  dropped:    {dropped}")
    lines.append(f"  edits:      {info['edits']}")
    lines += _listed(info["edit_list"], lambda e: f"{p(e['kind'])} {p(e['target'])} "
                     f"({'applied' if e['applied'] else 'rejected'}) {p(e['message'], 80)}")
    unchecked = not info["alerts"] and info["capture"] == "structure"  # 0 would read as "no NaN anywhere"
    lines.append(f"  alerts:     {len(info['alerts'])}"
                 + (" (a structure tape checks no values: record at summary or values for NaN alerts)"
                    if unchecked else ""))
    # each kind in words, as `tapescope record` and the Alerts panel name it (--json keeps the kind's id); an alert
    # of an optimizer step names what its key is (a parameter, a layer, the optimizer)
    lines += _listed(info["alerts"], lambda a: f"{p(kind_name(a['kind']))}, "
                     + (f"'{p(a['op'])}'" if a["op"] else f"{KEY_NAMES.get(a['kind'], 'parameter')} '{p(a['key'])}'")
                     + (f" in {p(a['module'])}" if a["module"] else "")
                     + (f" at {p(a['file'])}:{a['line']}" if a["file"] else ""))
    return "\n".join(lines)


# each kind of event in words, in the order of schema.KIND_NAMES: ops, backward and optimizer steps always, the rest
# only where there are any
_KIND_WORDS = {"op": "ops", "backward": "backward", "module_enter": "module enters", "module_exit": "module exits",
               "optimizer": "optimizer steps", "edit": "edits", "alert": "alerts", "iteration": "iteration marks"}


def _kinds(kinds: dict[str, int]) -> str:
    """'ops 20, backward 20, module enters 20, module exits 20, optimizer steps 5': every kind of event counted, so
    that the parts add up to the events (a module call is two: its enter and its exit)."""
    return ", ".join(f"{words} {kinds.get(kind, 0):,}" for kind, words in _KIND_WORDS.items()
                     if kinds.get(kind, 0) or kind in ("op", "backward", "optimizer"))


def _drops(info: dict) -> str:
    """What the recorder dropped, and why: a writer that fell behind drops values and summaries, the size cap those
    and then events; a tape closed since the recorder told them apart says which (dropped_behind)."""
    cap = "the size cap was reached" if "size cap" in info["status"] else "the tape neared its size cap"
    slow = "the writer could not keep up"
    unsure = slow + (f", or {cap}" if info.get("max_bytes") or "size cap" in info["status"] else "")
    behind = info.get("dropped_behind")
    parts: dict[str, list[str]] = {}
    for what, n in info["dropped"].items():
        if what == DROPPED:
            continue
        if behind is None:  # an older tape, or one never closed: only events are surely the cap's
            split = ((n, cap if what == "events" else unsure),)
        else:
            late = min(behind.get(what, 0), n)
            split = ((late, slow), (n - late, cap))
        for count, why in split:
            if count:
                parts.setdefault(why, []).append(f"{count:,} {what}")
    return "; ".join(f"{', '.join(items)} ({why})" for why, items in parts.items())


def _output(info: dict) -> str:
    """What the tape keeps of the script's output, and what it cut."""
    if not info.get("output_kept", True):
        return "not kept (the tape was recorded before tapes kept the script's output)"
    text = f"{counted(info['output_bytes'], 'byte')} of the script's stdout and stderr"
    cut = info["dropped"].get(DROPPED)
    if cut:
        limit = info.get("max_output_bytes")
        text += f"; {counted(cut, 'byte')} more cut" + (f" (the tape keeps {human_size(limit)})" if limit else "")
    return text


def recording_status(status: str, missing_log: str = "") -> str:
    """A tape's status in words: "complete", what stopped the recording, or that it was never closed (and, where its
    -wal file `missing_log` did not come with it, that its latest events may be there: Tape.missing_log)."""
    if status == "recording":  # the writer's status until it closes the tape
        return "not closed: still recording, or the recorder was killed" + (
            f"; events after its last checkpoint may be in {missing_log}, which is missing: copy it next to the tape"
            if missing_log else "")
    # tapes written before sizes were made human say "size cap of 314572800 bytes reached"
    status = re.sub(r"size cap of (\d+) bytes", lambda m: f"size cap of {human_size(int(m.group(1)))}", status)
    return printable(status) or "unknown status"


def counted(n: int, noun: str) -> str:
    """'1 event', '2,048 events'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _listed(items: list[dict], text, shown: int = 20) -> list[str]:
    lines = [f"    iteration {item['iteration']}: {text(item)}" for item in items[:shown]]
    if len(items) > shown:
        lines.append(f"    ... and {len(items) - shown} more (see --json)")
    return lines
