"""A damaged tape (bytes overwritten in the middle, or the file cut short, as a disk or a copy does it) is read
as far as it can be, and `info`, `export` and the reader say which parts were lost."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

import engine.tape
from app.cli import main
from engine.tape.damage import cut_short, damage
from tests.engine.tape.helpers import record_run

PAGE = 4096


@pytest.fixture(scope="module")
def tape(tmp_path_factory):
    path = tmp_path_factory.mktemp("damaged") / "run.tape"
    record_run(path, capture="values", steps=60, batch_events=64)
    return path


def _pages(path, table: str, kind: str | None = None) -> list[int]:
    """The page numbers of a table (1-based), read from a copy with SQLite's dbstat."""
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        rows = con.execute("SELECT pageno, pagetype FROM dbstat WHERE name = ? ORDER BY pageno", (table,)).fetchall()
    finally:
        con.close()
    return [p for p, t in rows if kind is None or t == kind]


def _overwritten(tape, folder, table: str, kind: str | None = None) -> str:
    """A copy of the tape with one page of `table`, in the middle of its pages, overwritten with garbage."""
    pages = _pages(tape, table, kind)
    page = pages[len(pages) // 2]
    data = bytearray(tape.read_bytes())
    data[(page - 1) * PAGE:page * PAGE] = bytes(range(256)) * (PAGE // 256)
    bad = folder / f"bad-{table}.tape"
    bad.write_bytes(bytes(data))
    return str(bad)


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_a_sound_tape_has_no_damage(tape):
    with engine.tape.open(tape) as t:
        assert damage(t) == []
    assert cut_short(str(tape)) is None


def test_a_damaged_values_page_costs_those_values_not_the_rest_of_the_tape(tape, tmp_path, capsys):
    bad = _overwritten(tape, tmp_path, "tensor_values", "leaf")
    digest = _digest(bad)
    with engine.tape.open(tape) as whole:
        events = sum(1 for _ in whole.records())
    with engine.tape.open(bad) as t:
        assert sum(1 for _ in t.records()) == events  # every event, values missing where they are lost
        assert t.unreadable["tensor_values"] > 0
        lines = damage(t)
    assert len(lines) == 1 and lines[0].startswith("values: those of tensors ") and "unreadable" in lines[0]
    assert main(["info", bad]) == 2  # as --help says for a bad tape
    out, err = capsys.readouterr()
    assert "  DAMAGED:    values: those of tensors" in out and "(complete; the file was damaged since)" in out
    assert err.startswith(f"tapescope info: {bad} is damaged: values: ")
    assert main(["info", bad, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["damage"] == lines
    for fmt in ("json", "dot", "perfetto"):
        out_file = tmp_path / f"out.{fmt}"
        assert main(["export", bad, "--format", fmt, "-o", str(out_file)]) == 2
        assert out_file.stat().st_size > 0  # what could be read is exported
        assert f"{out_file} holds what could be read; left out: values: " in capsys.readouterr().err
    assert _digest(bad) == digest  # never written to


def test_a_damaged_chunk_of_events_ends_every_reading_of_events_at_the_same_place(tape, tmp_path):
    bad = _overwritten(tape, tmp_path, "events", "overflow")
    with engine.tape.open(bad) as t:
        cols = t.columns("kind", "iteration", "t")
        end = t.events_end
        assert end is not None and end > 0 and cols["seq"].max() == end
        assert [r.seq for r in t.rows()][-1] == end  # records stop where the columns do
        infos = t.iterations_read(cols)
        assert infos[-1].last_seq == end and infos[-1].iteration == int(cols["iteration"].max())
        assert max(t.loss_history(cols).first()) <= infos[-1].iteration
        lines = damage(t)
    with engine.tape.open(tape) as whole:
        last = whole.iterations()[-1].last_seq
    assert lines[0].startswith(f"events {end + 1:,}-{last:,} unreadable (")


def test_a_tape_cut_short_says_so_and_is_read_as_far_as_it_goes(tape, tmp_path, capsys):
    data = tape.read_bytes()
    cut = tmp_path / "cut.tape"
    cut.write_bytes(data[:len(data) // 2 // PAGE * PAGE])
    assert cut_short(str(cut)) == (cut.stat().st_size, len(data))
    with engine.tape.open(cut) as t:  # SQLite alone refuses it ("database disk image is malformed")
        lines = damage(t)
        assert t.iterations()  # from the iterations table, or where it is lost, from the events
        sum(1 for _ in t.records())
    assert lines[0].startswith("the file is cut short: ") and lines[0].endswith(f" of {len(data) / 1024:.1f} KiB")
    assert main(["info", str(cut)]) == 2
    assert "  DAMAGED:    the file is cut short: " in capsys.readouterr().out


def test_the_dot_export_names_inputs_as_the_app_does(tape, tmp_path):
    out = tmp_path / "run.dot"
    assert main(["export", str(tape), "--format", "dot", "-o", str(out)]) == 0
    inputs = [line for line in out.read_text().splitlines() if "shape=ellipse" in line]
    # helpers.train: model(x) feeds fc1's linear ("input"); F.cross_entropy(out, y) takes the target y
    assert [line.split('label="')[1].split("\\n")[0] for line in inputs] == ["input", "y"]
