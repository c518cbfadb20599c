"""A damaged tape (bytes overwritten in the middle, or the file cut short, as a disk or a copy does it) is read
as far as it can be, past the damage where SQLite still reaches the rows after it, and `info`, `export` and the
reader say which parts were lost."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

import engine.tape
from app.cli import main
from engine.tape.damage import cut_short, damage, require_events
from engine.tape.reader import Tape
from tests.engine.tape.helpers import copy_of, record_run, same_record

PAGE = 4096


def record_in_chunks(path) -> None:
    """60 steps recorded as 15 chunks of 60 events (4 steps each), the same in every run: each chunk a leaf cell and
    one overflow page, 5 to a leaf, 3 leaves under the root; the tests damage pages of that layout."""
    record_run(path, capture="values", steps=60, flush_every=4)
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        assert [n for (n,) in con.execute("SELECT count FROM events ORDER BY first_seq")] == [60] * 15
    finally:
        con.close()


@pytest.fixture(scope="module")
def tape(tmp_path_factory):
    path = tmp_path_factory.mktemp("damaged") / "run.tape"
    record_in_chunks(path)
    return path


def _pages(path, table: str, kind: str | None = None) -> list[int]:
    """The page numbers of a table (1-based) in the order of its keys, read with SQLite's dbstat (its path, as
    '/001/004+000000', says where in the b-tree a page lies), so the middle one holds rows in the middle."""
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        rows = con.execute("SELECT pageno, pagetype FROM dbstat WHERE name = ? ORDER BY path", (table,)).fetchall()
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


def _overwritten_page(tape, folder, page: int, name: str) -> str:
    """A copy of the tape with page `page` (1-based) overwritten with garbage."""
    data = bytearray(tape.read_bytes())
    data[(page - 1) * PAGE:page * PAGE] = bytes(range(256)) * (PAGE // 256)
    bad = folder / f"{name}.tape"
    bad.write_bytes(bytes(data))
    return str(bad)


def _lost_and_after(tape, bad) -> tuple[tuple[int, int], list, list]:
    """(the one stretch of events `bad` lost, the sound tape's records, the damaged one's)."""
    with engine.tape.open(tape) as whole:
        records = list(whole.records())
    with engine.tape.open(bad) as t:
        cols = t.columns("kind", "iteration", "t")
        (lost,) = t.events_lost
        read = list(t.records())
        assert [r.seq for r in read] == cols["seq"].tolist()  # records skip what the columns skip
    return lost, records, read


def test_a_damaged_chunk_of_events_is_left_out_and_the_events_after_it_are_read(tape, tmp_path):
    bad = _overwritten(tape, tmp_path, "events", "overflow")
    (first, last), records, read = _lost_and_after(tape, bad)
    seqs = [r.seq for r in records]
    assert 1 < first <= last < seqs[-1]
    # every event before and after the lost stretch is read, as recorded
    assert [r.seq for r in read] == [s for s in seqs if not first <= s <= last]
    kept = {r.seq: r for r in records}
    assert all(same_record(r, kept[r.seq]) or (r.__class__.__name__ == "BackwardRecord" and r.forward is None)
               for r in read)  # (a backward node whose forward op was lost has none)
    with engine.tape.open(bad) as t:
        cols = t.columns("kind", "iteration", "t")
        infos = t.iterations_read(cols)
        whole = {i.iteration for i in engine.tape.open(tape).iterations()}
        # the iterations the stretch held are as far as they were read; the ones after it are all there
        assert infos[-1].iteration == max(whole) and infos[-1].last_seq == seqs[-1]
        assert not any(first <= i.first_seq and i.last_seq <= last for i in infos)
        assert max(t.loss_history(cols).first()) == max(whole)  # the loss curve goes on past the hole
        lines = damage(t)
    assert lines[0].startswith(f"events {first:,}-{last:,} unreadable (")


def test_rows_past_a_damaged_leaf_page_of_events_are_read_by_their_keys(tape, tmp_path):
    leaves = _pages(tape, "events", "leaf")
    bad = _overwritten_page(tape, tmp_path, leaves[len(leaves) // 2], "bad-leaf")
    (first, last), records, read = _lost_and_after(tape, bad)
    seqs = [r.seq for r in records]
    assert [r.seq for r in read] == [s for s in seqs if not first <= s <= last] and read[-1].seq == seqs[-1]


def test_a_damaged_interior_page_of_events_loses_every_event_it_indexes_and_says_so(tape, tmp_path):
    # the limit: rows are found through the interior pages above them, so what a damaged one indexes is lost; here
    # the only one is the root (three leaves under it), so no event is read, and the whole range is named lost
    (interior,) = _pages(tape, "events", "internal")
    bad = _overwritten_page(tape, tmp_path, interior, "bad-interior")
    with engine.tape.open(bad) as t:
        assert len(t.columns("kind")["seq"]) == 0 and t.no_event_read
        assert t.events_lost == [t.seq_range()]
        first, last = t.seq_range()
        assert damage(t)[0].startswith(f"events {first:,}-{last:,} unreadable (")


@pytest.fixture(scope="module")
def deep_tape(tmp_path_factory):
    """A tape whose events b-tree is three levels deep: 150 steps, a chunk a step, rewritten with 512-byte pages
    (SQLite's smallest; a 4 KiB-page tape needs about 120k events for that depth), so the root indexes two
    interior pages, each over half of the leaves."""
    path = tmp_path_factory.mktemp("deep") / "deep.tape"
    record_run(path, capture="structure", steps=150, flush_every=1)
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("PRAGMA page_size=512")
        con.execute("VACUUM")
    finally:
        con.close()
    return path


@pytest.mark.parametrize("which", [0, -1])
def test_a_damaged_interior_page_below_the_root_loses_only_the_events_under_it(deep_tape, tmp_path, capsys, which):
    con = sqlite3.connect(f"file:{deep_tape}?mode=ro&immutable=1", uri=True)
    try:
        rows = con.execute("SELECT pageno, path FROM dbstat WHERE name = 'events' AND pagetype = 'internal' "
                           "ORDER BY path").fetchall()
        assert con.execute("PRAGMA page_size").fetchone() == (512,)
    finally:
        con.close()
    below = [page for page, where in rows if where != "/"]
    assert len(below) >= 2  # the layout the test needs
    data = bytearray(deep_tape.read_bytes())
    page = below[which]
    data[(page - 1) * 512:page * 512] = bytes(range(256)) * 2
    bad = tmp_path / "bad-inner.tape"
    bad.write_bytes(bytes(data))
    with engine.tape.open(deep_tape) as whole:
        records = list(whole.records())
    with engine.tape.open(bad) as t:
        read = list(t.records())
        (first, last), = t.events_lost  # known once the events were read
        lines = damage(t)
    seqs = [r.seq for r in records]
    # the first interior page indexes the first half of the events, the last the second half: one stretch is lost,
    # at that end, and every event on the other side of it is read as recorded
    assert (first == seqs[0] and last < seqs[-1]) if which == 0 else (first > seqs[0] and last == seqs[-1])
    assert [r.seq for r in read] == [s for s in seqs if not first <= s <= last] and len(read) > len(seqs) // 4
    kept = {r.seq: r for r in records}
    assert all(same_record(r, kept[r.seq]) or (r.__class__.__name__ == "BackwardRecord" and r.forward is None)
               for r in read)
    assert lines[0].startswith(f"events {first:,}-{last:,} unreadable (")
    assert main(["info", str(bad)]) == 2
    assert f"DAMAGED:    events {first:,}-{last:,} unreadable (" in capsys.readouterr().out


def test_a_chunk_whose_bytes_disagree_with_its_row_is_lost_not_read_as_other_events(tape, tmp_path):
    bad = copy_of(tape, tmp_path, "scrambled.tape")
    con = sqlite3.connect(bad)  # bytes that SQLite hands back without an error: a page overwritten past its links
    first, count, blob = con.execute("SELECT first_seq, count, columns FROM events LIMIT 1 OFFSET 2").fetchone()
    scrambled = blob[:8 * count][::-1] + blob[8 * count:]  # its seqs reversed: every size still adds up
    with con:
        con.execute("UPDATE events SET columns = ? WHERE first_seq = ?", (scrambled, first))
    con.close()
    (lost_first, _), records, read = _lost_and_after(tape, bad)
    assert lost_first == first and len(read) == len(records) - count


def test_a_tape_none_of_whose_events_can_be_read_says_so_and_keeps_the_rest(tmp_path, capsys):
    path = tmp_path / "nan.tape"
    record_run(path, steps=6, nan_at=2)
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events'").fetchone()
    con.close()
    bad = _overwritten_page(path, tmp_path, root, "bad-root")  # the first page of the events: none can be reached
    with engine.tape.open(bad) as t:
        assert len(t.columns("kind")["seq"]) == 0 and t.no_event_read
        (first, last), = t.events_lost
        assert (first, last) == t.seq_range()  # all of them, as the iterations table says
        assert [a.kind for a in t.alerts()] and len(t.optimizer_steps(t.iterations())) == 6
        with pytest.raises(engine.tape.TapeError, match="no event can be read"):
            require_events(t)
    assert main(["info", bad]) == 2
    out = capsys.readouterr().out
    assert f"DAMAGED:    events {first:,}-{last:,} unreadable (" in out and "alerts:     1" in out


def test_info_and_export_read_the_events_of_a_damaged_tape_once(tape, tmp_path, monkeypatch, capsys):
    # damage() read every event again to learn where they stop, after info or export had read them
    bad = _overwritten(tape, tmp_path, "tensor_values", "leaf")
    reads = []
    chunks = Tape._chunks_read
    def counted(self, lo, hi, decode):
        if lo is None or lo <= -(1 << 62):  # from the first event
            reads.append(lo)
        return chunks(self, lo, hi, decode)
    monkeypatch.setattr(Tape, "_chunks_read", counted)
    assert main(["info", bad]) == 2
    assert main(["export", bad, "--format", "json", "-o", str(tmp_path / "out.json")]) == 2
    assert capsys.readouterr().err.count("values: those of tensors") == 2
    assert len(reads) == 2


def test_a_dot_export_of_one_iteration_names_the_events_lost_after_it(tape, tmp_path, capsys):
    bad = _overwritten(tape, tmp_path, "events", "overflow")
    out = tmp_path / "run.dot"
    assert main(["export", bad, "--format", "dot", "--iteration", "0", "-o", str(out)]) == 2
    assert "iteration 0" in out.read_text()  # drawn whole: the damage lies past it
    assert "left out: events " in capsys.readouterr().err


def cut_inside_events(tape) -> int:
    """A length to cut the tape to that falls inside its events: up to the overflow page of its middle chunk.
    (Half its bytes need not: where the events were written early, the values after them fill the rest.)"""
    overflow = _pages(tape, "events", "overflow")
    return (overflow[len(overflow) // 2] - 1) * PAGE


def test_a_tape_cut_short_says_so_and_is_read_as_far_as_it_goes(tape, tmp_path, capsys):
    data = tape.read_bytes()
    cut = tmp_path / "cut.tape"
    cut.write_bytes(data[:cut_inside_events(tape)])
    assert cut_short(str(cut)) == (cut.stat().st_size, len(data))
    with engine.tape.open(tape) as whole:
        seqs = [r.seq for r in whole.records()]
    with engine.tape.open(cut) as t:  # SQLite alone refuses it ("database disk image is malformed")
        lines = damage(t)
        assert t.iterations()  # from the iterations table, or where it is lost, from the events
        read = [r.seq for r in t.records()]
        assert t.events_lost and 0 < len(read) < len(seqs) and set(read) < set(seqs)
    assert any(line.startswith("events ") for line in lines[1:])
    assert lines[0].startswith("the file is cut short: ") and lines[0].endswith(f" of {len(data) / 1024:.1f} KiB")
    assert main(["info", str(cut)]) == 2
    assert "  DAMAGED:    the file is cut short: " in capsys.readouterr().out


def test_the_dot_export_names_inputs_as_the_app_does(tape, tmp_path):
    out = tmp_path / "run.dot"
    assert main(["export", str(tape), "--format", "dot", "-o", str(out)]) == 0
    inputs = [line for line in out.read_text().splitlines() if "shape=ellipse" in line]
    # helpers.train: model(x) feeds fc1's linear ("input"); F.cross_entropy(out, y) takes the target y
    assert [line.split('label="')[1].split("\\n")[0] for line in inputs] == ["input", "y"]
