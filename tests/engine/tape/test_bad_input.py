"""Bad tapes: one TapeError with a clear line, never another exception, never a modified file."""

import hashlib
import html
import io
import random
import shutil
import sqlite3
import subprocess
import zlib

import pytest

import engine.tape
from engine.tape import TapeError, codec
from engine.tape.export import export
from engine.tape.info import describe, tape_info
from tests.engine.tape.helpers import copy_of, record_run


@pytest.fixture(scope="module")
def good_tape(tmp_path_factory):
    path = tmp_path_factory.mktemp("tapes") / "good.tape"
    record_run(path, "values", steps=2, nan_at=1)
    return path


def _edit(path, *statements):
    """Change a tape behind the reader's back (as a hostile or newer writer would)."""
    conn = sqlite3.connect(path)
    with conn:
        for sql, *params in statements:
            conn.execute(sql, *params)
    conn.close()


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_everything(path) -> None:
    """Everything a user can ask of a tape, including info and every export."""
    with engine.tape.open(path) as tape:
        tape.counts()
        tape.kind_counts()
        tape.columns("kind", "iteration", "phase")
        tape.optimizer_steps()
        tape.losses()
        infos = tape.iterations()
        ids = []
        for rec in tape.records():
            ev = getattr(rec, "event", rec)
            ids += [getattr(ev, "output", 0), getattr(ev, "grad_output", 0)]
        tape.summaries(ids)
        for tid in ids[:20]:
            tape.value(tid)
        for info in infos[:5]:
            tape.graph(info.iteration)
        tape.alerts()
        tape.edits()
        for file in tape.sources():
            tape.source(file)
        tape.drops()
        describe(tape_info(tape))
        for fmt in ("json", "dot", "perfetto"):
            export(tape, fmt, io.StringIO())


def test_a_good_tape_reads(good_tape):
    read_everything(good_tape)


def test_not_a_file_or_missing(tmp_path):
    with pytest.raises(TapeError, match="no such file"):
        engine.tape.open(tmp_path / "nothing.tape")
    with pytest.raises(TapeError, match="not a file"):
        engine.tape.open(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, I am a text file\n" * 20,
                                     b"\x89PNG\r\n\x1a\n" + bytes(200)])
def test_not_sqlite(tmp_path, content):
    path = tmp_path / "bad.tape"
    path.write_bytes(content)
    with pytest.raises(TapeError, match=r"not a tape \(not an SQLite file\)"):
        engine.tape.open(path)
    assert path.read_bytes() == content


@pytest.mark.parametrize("keep", [20, 99, 4096, 0.5])
def test_truncated(good_tape, tmp_path, keep):
    data = good_tape.read_bytes()
    path = tmp_path / "cut.tape"
    path.write_bytes(data[: int(keep * len(data)) if isinstance(keep, float) else keep])
    with pytest.raises(TapeError):
        read_everything(path)


def test_another_sqlite_database_is_not_a_tape(tmp_path):
    path = tmp_path / "other.db"
    _edit(path, ("CREATE TABLE people (name TEXT)",))
    with pytest.raises(TapeError, match="not a tape"):
        engine.tape.open(path)


def test_a_newer_format_names_both_versions(good_tape, tmp_path):
    path = copy_of(good_tape, tmp_path)
    _edit(path, ("UPDATE meta SET value = '7' WHERE key = 'format_version'",),
          ("UPDATE meta SET value = '9.1.0' WHERE key = 'tapescope_version'",))
    digest = _digest(path)
    with pytest.raises(TapeError, match=r"written by tapescope 9\.1\.0 \(tape format 7\); this is tapescope "
                                        + engine.__version__.replace(".", r"\.")):
        engine.tape.open(path)
    assert _digest(path) == digest


@pytest.mark.parametrize("version", ["", "x", "1e9999", "99999999999"])
def test_a_bad_format_version(good_tape, tmp_path, version):
    path = copy_of(good_tape, tmp_path)
    _edit(path, ("UPDATE meta SET value = ? WHERE key = 'format_version'", (version,)))
    with pytest.raises(TapeError):
        engine.tape.open(path)


def test_missing_tables_and_views_posing_as_tables(good_tape, tmp_path):
    path = copy_of(good_tape, tmp_path, "a.tape")
    _edit(path, ("DROP TABLE alerts",))
    with pytest.raises(TapeError, match="table 'alerts' is missing"):
        engine.tape.open(path)
    path = copy_of(good_tape, tmp_path, "b.tape")
    _edit(path, ("ALTER TABLE events RENAME TO old_events",),
          ("CREATE VIEW events AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) "
           "SELECT * FROM old_events, r",))
    with pytest.raises(TapeError, match="table 'events' is missing"):
        engine.tape.open(path)


def test_absurd_sizes(good_tape, tmp_path, monkeypatch):
    path = copy_of(good_tape, tmp_path, "shape.tape")
    many_dims = "[" + ",".join(["1"] * 100000) + "]"
    _edit(path, ("UPDATE nodes SET output_shape = ? WHERE kind = 'op'", (many_dims,)))
    with pytest.raises(TapeError, match="damaged tape"), engine.tape.open(path) as tape:
        list(tape.events())
    path = copy_of(good_tape, tmp_path, "meta.tape")
    _edit(path, ("UPDATE meta SET value = ? WHERE key = 'python'", ("x" * (2 << 20),)))
    with pytest.raises(TapeError, match="bad meta entry"):
        engine.tape.open(path)
    # a value that inflates far past its size: refused before it is read into memory
    monkeypatch.setattr(codec, "MAX_VALUE_BYTES", 1 << 20)
    path = copy_of(good_tape, tmp_path, "bomb.tape")
    _edit(path, ("UPDATE tensor_values SET npy = ?", (zlib.compress(bytes(50 << 20), 9),)))
    with engine.tape.open(path) as tape:
        tid = tape._conn.execute("SELECT tensor FROM tensor_values LIMIT 1").fetchone()[0]
        with pytest.raises(TapeError, match="inflates past"):
            tape.value(tid)


def test_pickled_values_are_never_loaded(good_tape, tmp_path):
    import numpy as np

    payload = io.BytesIO()
    np.save(payload, np.array([print], dtype=object), allow_pickle=True)
    path = copy_of(good_tape, tmp_path)
    _edit(path, ("UPDATE tensor_values SET npy = ?", (zlib.compress(payload.getvalue()),)))
    with engine.tape.open(path) as tape:
        tid = tape._conn.execute("SELECT tensor FROM tensor_values LIMIT 1").fetchone()[0]
        with pytest.raises(TapeError, match="pickle"):
            tape.value(tid)


HOSTILE = ("evil\"]; x -> y [label=\"\\N\x1b[31m\nline2\r"
           "__import__('os').system('touch PWNED'); DROP TABLE events; --")


def test_hostile_strings_stay_data(good_tape, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = copy_of(good_tape, tmp_path)
    _edit(path, ("UPDATE nodes SET key = ?, op = ?, module = ?", (HOSTILE, HOSTILE, HOSTILE)),
          ("UPDATE meta SET value = ? WHERE key = 'tapescope_version'", (HOSTILE,)))
    digest = _digest(path)
    read_everything(path)
    with engine.tape.open(path) as tape:
        op = next(e for e in tape.events() if type(e).__name__ == "OpEvent")
        assert op.key == op.op == op.module == HOSTILE
        text = describe(tape_info(tape))
        dot = io.StringIO()
        export(tape, "dot", dot)
    assert "\x1b" not in text and "\r" not in text and "\\x1b" in text
    assert not (tmp_path / "PWNED").exists()
    assert _digest(path) == digest
    if shutil.which("dot"):
        out = subprocess.run(["dot", "-Tsvg"], input=dot.getvalue(), capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        shown = html.unescape(out.stdout)
        assert 'evil"]; x -> y [label="\\N\\x1b[31m' in shown  # the label shows the text itself
        assert "<title>y</title>" not in out.stdout  # and no node "y" was injected


def test_fuzzed_tapes_fail_only_with_tape_error(good_tape, tmp_path):
    """Random truncations and byte flips of a real tape: a successful read or a TapeError, nothing else."""
    data = good_tape.read_bytes()
    rng = random.Random(6)
    outcomes = {"read": 0, "TapeError": 0}
    for i in range(120):
        damaged = bytearray(data)
        if rng.random() < 0.3:
            del damaged[rng.randrange(len(damaged)):]
        for _ in range(rng.choice((1, 2, 8, 32))):
            if damaged:
                pos = rng.randrange(len(damaged))
                damaged[pos] ^= 1 << rng.randrange(8)
        path = tmp_path / f"fuzz{i}.tape"
        path.write_bytes(bytes(damaged))
        try:
            read_everything(path)
            outcomes["read"] += 1
        except TapeError as err:
            assert "\n" not in str(err)
            outcomes["TapeError"] += 1
        assert path.read_bytes() == damaged  # never modified
    assert outcomes["TapeError"] > 0 and outcomes["read"] > 0
