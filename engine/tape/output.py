"""The recorded script's own output on a tape: what it wrote to stdout and stderr, up to a cap.

    with engine.record("run.tape") as rec, tee_output(rec):   # or rec.output("stdout", text) by hand
        train()                                                 # prints show, and are kept on the tape

On the calling thread (any thread) a chunk costs a UTF-8 length and a deque append: the writer thread
files it under the event sequence number current when it was written (the last event queued before it),
joins chunks of one event and stream into one row and commits them with the events. The first
`max_output_bytes` bytes are kept; the rest is cut, and the bytes cut are written to `drops` as
"output bytes", so a reader knows where the output stops and how much is missing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import NamedTuple

STREAMS = ("stdout", "stderr")
MAX_OUTPUT_BYTES = 8 << 20  # kept per tape by default: a chatty run's prints are a few MB at most
MAX_ROW_CHARS = 1 << 16  # a row holds at most this many characters; longer text is split over rows
MAX_READ_CHARS = 64 << 20  # a reader gives at most this much text (a hostile tape's table stays bounded)
DROPPED = "output bytes"  # drops.what of the output cut


class OutputText(NamedTuple):
    """Output as queued for the writer: its stream, the text kept, and how many bytes of it were cut."""

    stream: str
    text: str
    dropped: int


class OutputRow(NamedTuple):
    """A chunk of the recorded script's output: written after the event `seq` (0: before any), to `stream`."""

    seq: int
    stream: str
    text: str


class OutputCap:
    """Keeps the first `max_bytes` bytes (UTF-8) of output from any number of threads; then cuts."""

    def __init__(self, max_bytes: int = MAX_OUTPUT_BYTES) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"record: max_output_bytes must be a number of bytes >= 0, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.kept = 0
        self._lock = threading.Lock()

    def take(self, stream: str, text: str) -> OutputText | None:
        """What of `text` the tape keeps, with the bytes cut; None for empty text."""
        if stream not in STREAMS:
            raise ValueError(f"output: stream must be 'stdout' or 'stderr', got {stream!r}")
        if not isinstance(text, str):
            raise TypeError(f"output: text must be str, not {type(text).__name__}")
        if not text:
            return None
        try:
            data = text.encode()
        except UnicodeEncodeError:  # a lone surrogate: SQLite stores UTF-8 only
            data = text.encode("utf-8", "replace")
            text = data.decode()
        n = len(data)
        with self._lock:
            room = self.max_bytes - self.kept
            if n <= room:
                self.kept += n
                return OutputText(stream, text, 0)
            # the tape keeps a prefix of the output: once cut, later text is dropped whole
            self.kept = self.max_bytes
        part = data[:room].decode("utf-8", "ignore") if room > 0 else ""
        return OutputText(stream, part, n - len(part.encode()))


class OutputRows:
    """The output of one batch (the writer thread's): rows joined per event and stream, and the bytes cut."""

    def __init__(self) -> None:
        self._rows: list[list] = []  # [seq, stream, pieces, characters]
        self.drop: list[int] | None = None  # [first seq, last seq, bytes] of what was cut

    def add(self, seq: int, item: OutputText) -> None:
        if item.dropped:
            if self.drop is None:
                self.drop = [seq, seq, 0]
            self.drop[1] = seq
            self.drop[2] += item.dropped
        text = item.text
        if not text:
            return
        last = self._rows[-1] if self._rows else None
        if last is not None and last[0] == seq and last[1] == item.stream and last[3] + len(text) <= MAX_ROW_CHARS:
            last[2].append(text)  # joined once, at the end: a loop of small prints stays linear
            last[3] += len(text)
        else:
            self._rows.append([seq, item.stream, [text], len(text)])

    def table_rows(self) -> list[tuple]:
        """Rows of the `output` table (id given by SQLite)."""
        out = []
        for seq, stream, pieces, _ in self._rows:
            text = "".join(pieces)
            out += [(None, seq, stream, text[i:i + MAX_ROW_CHARS]) for i in range(0, len(text), MAX_ROW_CHARS)]
        return out

    def drops(self) -> list[tuple]:
        """The `drops` row of the bytes cut in this batch, if any."""
        return [] if self.drop is None else [(None, *self.drop[:2], DROPPED, self.drop[2])]


def read_rows(conn: sqlite3.Connection, lo: int | None, hi: int | None,
              note: Callable[[str], None]) -> list[OutputRow]:
    """The rows with seq in [lo, hi) (None: unbounded), in order; a damaged row is left out (and noted, where
    the read is unbounded: a bounded one skips rows whose seq is not a number), the rest read. Where the index
    output_by_seq cannot be read (a damaged page), the table is read without it (noted)."""
    bounded = lo is not None or hi is not None
    where = "WHERE seq >= ? AND seq < ? " if bounded else ""
    args = (-(1 << 62) if lo is None else lo, 1 << 62 if hi is None else hi) if bounded else ()
    sql = ("SELECT id, seq, stream, CASE WHEN typeof(text) = 'text' AND length(text) <= ? THEN text END "
           f"FROM output{{}} {where}ORDER BY seq, id")
    try:
        return _kept(conn.execute(sql.format(""), (MAX_ROW_CHARS, *args)), note)
    except sqlite3.Error as err:  # the index, as a rule: the table itself sorted by SQLite, as the index would
        note(f"output: read without its index output_by_seq, which cannot be read ({str(err)[:80]})")
        return _kept(conn.execute(sql.format(" NOT INDEXED"), (MAX_ROW_CHARS, *args)), note)


def _kept(rows, note: Callable[[str], None]) -> list[OutputRow]:
    """The OutputRows of `rows` (id, seq, stream, text or None), up to MAX_READ_CHARS; damaged ones noted."""
    out, chars = [], 0
    for rid, seq, stream, text in rows:
        if type(seq) is not int or stream not in STREAMS or type(text) is not str:
            note(f"output: row {rid!r} is damaged; that chunk of the script's output is left out"[:200])
            continue
        chars += len(text)
        if chars > MAX_READ_CHARS:
            note(f"output: more than {MAX_READ_CHARS >> 20} MiB of output; the rest is left out")
            break
        out.append(OutputRow(seq, stream, text))
    return out


class _Tee:
    """Stands in for sys.stdout or sys.stderr: what is written also goes to `keep(stream, text)`."""

    def __init__(self, name: str, original, keep: Callable[[str, str], None]) -> None:
        self._name = name
        self.original = original
        self._keep = keep

    def write(self, text):
        if isinstance(text, str):  # anything else: the stream's own error
            self._keep(self._name, text)
        return self.original.write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self.original, name)


@contextlib.contextmanager
def tee_output(recorder):
    """While in the block, what any thread writes to sys.stdout and sys.stderr is also kept on the tape of
    `recorder` (an engine.tape Recorder); it still shows where it did."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (None if stream is None else _Tee(name, stream, recorder.output)
                              for name, stream in zip(STREAMS, saved))
    try:
        yield recorder
    finally:
        sys.stdout, sys.stderr = saved
