"""Which parts of a tape cannot be read, in words: what `tapescope info` and `export` report and the app's
banner shows.

    cut = cut_short("run.tape")       # (bytes on disk, bytes the header says) or None
    with engine.tape.open("run.tape") as tape:
        lines = damage(tape)          # [] for a sound tape; else ["events 2,049-6,254 unreadable (...)", ...]

A sound tape costs one `PRAGMA quick_check` (SQLite walks every page once, about a second per GB here);
only a tape that fails it is read again table by table, row by row, to say which rows are lost. Nothing is
written: the tape is opened read-only.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
from collections.abc import Callable, Iterator

from engine.tape import schema
from engine.tape.cap import human_size
from engine.tape.errors import TapeError

# what a person calls each table's rows, and which column names a row ("" for the rowid's own count)
_WHAT = {"events": "events", "iterations": "iterations", "summaries": "summaries", "tensor_values": "values",
         "parameters": "parameter snapshots", "optimizer_steps": "optimizer steps", "output": "output chunks",
         "alerts": "alerts", "alert_inputs": "alert inputs", "edits": "edits", "nodes": "nodes",
         "stacks": "stacks", "frames": "source lines", "sources": "source files", "layouts": "layouts",
         "module_params": "module parameters", "node_args": "op arguments", "drops": "drops",
         "grad_calls": "grad calls", "pass_starts": "pass starts", "meta": "meta entries"}
_FAR = 1 << 62
LOST_TO_END = _FAR  # the last seq of a stretch of lost events that nothing readable follows


def cut_short(path: str) -> tuple[int, int] | None:
    """(bytes on disk, bytes the SQLite header says the file holds) when the file is shorter than its
    header says (copied or downloaded in part), else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(100)
        size = os.path.getsize(path)
    except OSError:
        return None
    if len(head) < 100 or not head.startswith(schema.SQLITE_MAGIC):
        return None
    page = struct.unpack(">H", head[16:18])[0]
    page = 65536 if page == 1 else page
    counter, pages, valid_for = struct.unpack(">I", head[24:28])[0], *struct.unpack(">I", head[28:32]), \
        struct.unpack(">I", head[92:96])[0]
    if counter != valid_for or not pages:  # the page count is stale (an old writer): SQLite uses the file's size
        return None
    return (size, pages * page) if size < pages * page else None


def cut_short_text(cut: tuple[int, int]) -> str:
    """'the file is cut short: 8.5 MiB of 16.9 MiB', or in bytes where the two read alike ('159,728 of 159,744
    bytes')."""
    have, want = human_size(cut[0]), human_size(cut[1])
    return f"the file is cut short: {f'{cut[0]:,} of {cut[1]:,} bytes' if have == want else f'{have} of {want}'}"


def lost_parts(tape, failed: bool = False, events_read: bool = False) -> list[str]:
    """What of an open tape could not be read, a line each, for info, export and a replay's banner: damage()'s
    lines; where SQLite finds no damaged page yet rows would not decode (or `failed`: the caller could not read a
    part), the reader's notes. [] for a sound tape. `events_read`: as for damage()."""
    found = damage(tape, events_read)
    if not found and (failed or tape.notes or tape.events_lost):
        found = [n for n in tape.notes if n] or ["some rows cannot be decoded"]
    return found


def require_events(tape) -> None:
    """TapeError when a damaged tape's events cannot be read at all: nothing to export."""
    if tape.no_event_read:
        raise TapeError(f"{tape.path}: damaged tape: no event can be read ({tape.events_error})")


def damage(tape, events_read: bool = False) -> list[str]:
    """One line per damaged part of an open tape (engine.tape.reader.Tape): the file cut short, and each
    table whose rows cannot all be read, with what is lost; [] for a sound tape. `events_read`: the caller has
    read every event (columns(), rows()), so what is lost of them is known (events_lost) and they are not read again."""
    lines = []
    cut = cut_short(tape.path)
    if cut:
        lines.append(cut_short_text(cut))
    conn = tape._conn
    try:
        sound = conn.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
    except sqlite3.Error:
        sound = False
    if not events_read and not tape.events_lost and not (sound and not cut):
        with contextlib.suppress(TapeError):
            tape.columns("kind")  # the reader's own reading of the events: what it skips, events_lost says
    if tape.events_lost:  # (a chunk SQLite reads, but whose bytes do not decode, too)
        lines.append(f"events {lost_events(tape)} unreadable ({tape.events_error})")
    if sound and not cut:
        return lines
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in schema.TABLES:
        if table in present and table not in ("meta", "events"):  # meta was read whole at open
            lost = _lost_rows(conn, table)
            if lost:
                lines.append(_describe(conn, table, *lost))
    lines += _damaged_indexes(conn, present)
    if not sound and len(lines) == (1 if cut else 0):
        lines.append("SQLite reports damaged pages outside the tables read (PRAGMA quick_check)")
    return lines


def _damaged_indexes(conn: sqlite3.Connection, tables: set[str]) -> list[str]:
    """A line for each index of the tape's tables that SQLite cannot read whole: the reader reads those tables
    without it (engine.tape.reader.Tape._indexed), so nothing is lost, but it is damage all the same."""
    lines = []
    for name, table in conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' LIMIT 100"):
        if table not in tables or type(name) is not str:
            continue
        try:  # counting through the index reads each of its pages
            conn.execute(f'SELECT count(*) FROM {table} INDEXED BY "{name.replace(chr(34), chr(34) * 2)}"').fetchone()
        except sqlite3.Error as err:
            index = "the index of their keys" if name.startswith("sqlite_autoindex_") else f"their index {name}"
            lines.append(f"{_WHAT.get(table, table)}: {index} is damaged ({err}); they are read without it")
    return lines


def _lost_rows(conn: sqlite3.Connection, table: str) -> tuple[int, list[tuple[int, int]]] | None:
    """(rows read, [(first, last) rowid gaps that could not be read]) of a table that cannot be read
    whole, else None. Reads every row (blobs too: their overflow pages are where a cut file ends)."""
    gaps: list[tuple[int, int]] = []
    read = sum(1 for _row in readable_rows(conn, table, "*", lambda first, last, _err: gaps.append((first, last))))
    return (read, gaps) if gaps else None


def readable_rows(conn: sqlite3.Connection, table: str, columns: str,
                  lost: Callable[[int, int, BaseException], None]) -> Iterator[tuple]:
    """The rows (rowid, *columns) of `table` that SQLite can read, in rowid order, going on past damaged pages;
    lost(first, last, error) for each stretch of rowids between them that could not be read (last: LOST_TO_END
    where nothing after it can be). It ends: every row given, and every place it goes on from, lies past the one
    before (a damaged page can give a rowid below the one asked past: that is damage too), and the rows are
    finitely many."""
    sql = f"SELECT rowid, {columns} FROM {table} WHERE rowid > ? ORDER BY rowid"
    after = -_FAR
    while True:
        try:
            for row in conn.execute(sql, (after,)):
                if row[0] <= after:
                    raise sqlite3.DatabaseError(f"{table}: rowid {row[0]} out of order after {after} (damaged)")
                yield row
                after = row[0]
            return
        except sqlite3.Error as failed:
            err = failed
        try:  # the cursor may have failed a row ahead of the one it gave: go on one by one
            while (row := conn.execute(sql + " LIMIT 1", (after,)).fetchone()) is not None and row[0] > after:
                yield row
                after = row[0]
            if row is None:
                return
        except sqlite3.Error:
            pass
        resume = next_readable(conn, table, after, columns)  # > after + 1: each round goes on past `after`
        lost(after + 1, LOST_TO_END if resume is None else resume - 1, err)
        if resume is None:
            return
        after = resume - 1


def next_readable(conn: sqlite3.Connection, table: str, after: int, columns: str = "*") -> int | None:
    """A rowid past `after` + 1 that SQLite can seek to and read (those of its `columns`), the first past the damaged
    pages; None if none. A seek into a damaged page fails, one past it succeeds: probe further and further, then
    halve back (at most 62 probes each way)."""
    def readable(bound: int) -> int | bool | None:
        """The first rowid past `bound`; None: none; False: it cannot be read (or is not past `bound`: damaged)."""
        try:
            row = conn.execute(f"SELECT rowid, {columns} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1",
                               (bound,)).fetchone()
        except sqlite3.Error:
            return False
        return None if row is None else row[0] if row[0] > bound else False

    after = max(after, -1)  # a tape's keys (seqs, ids) are not negative: probing from far below took 62 steps to 0
    step, good = 1, None
    while after + step < _FAR:
        found = readable(after + step)
        if found is not False:
            good = after + step
            break
        step *= 2
    if good is None:
        return None
    lo, hi = after + step // 2, good  # lo fails (or is `after`), hi reads
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if readable(mid) is False:
            lo = mid
        else:
            hi = mid
    found = readable(hi)
    return None if found is None or found is False else found


def _describe(conn: sqlite3.Connection, table: str, read: int, gaps: list[tuple[int, int]]) -> str:
    what = _WHAT.get(table, table)
    gaps = merged(gaps)  # a row that failed right after a gap widens it
    if not read:
        return f"{what}: none can be read" + (" (they are told from the events)" if table == "iterations" else "")
    spans = ", ".join(f"{max(a, 0):,} on" if b >= _FAR - 1 else f"{a:,}" if a == b else f"{a:,}-{b:,}"
                      for a, b in gaps)
    key = {"summaries": "tensors", "tensor_values": "tensors", "optimizer_steps": "events", "alerts": "events",
           "edits": "events", "pass_starts": "events", "grad_calls": "events",
           "iterations": "iterations"}.get(table, "rows")
    return f"{what}: those of {key} {spans} unreadable ({read:,} row{'' if read == 1 else 's'} read)"


def merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges (first, last) in order, those that overlap or touch made one."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def lost_events(tape) -> str:
    """'2,049-4,096, 8,193-9,000': the stretches of events a damaged tape lost (tape.events_lost), the last one
    that runs to the tape's end up to its last event (from its iterations, else from the recorder's count of events),
    or '8,193 on' where neither can be read."""
    spans = []
    for first, last in tape.events_lost:
        if last >= LOST_TO_END:
            last = _last_event(tape._conn)
        spans.append(f"{first:,} on" if last is None or last < first else f"{first:,}-{last:,}")
    return ", ".join(spans)


def _last_event(conn: sqlite3.Connection) -> int | None:
    try:
        last = conn.execute("SELECT max(last_seq) FROM iterations WHERE typeof(last_seq) = 'integer'").fetchone()[0]
    except sqlite3.Error:
        try:
            count = conn.execute("SELECT value FROM meta WHERE key = 'events'").fetchone()[0]
            last = int(conn.execute("SELECT min(first_seq) FROM events").fetchone()[0]) + int(count) - 1
        except (sqlite3.Error, TypeError, ValueError):
            last = None
    return last if type(last) is int else None
