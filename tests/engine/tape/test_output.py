"""The script's own output on a tape: kept in order under the event current when it was written, capped,
read back as data, and written by `tapescope record` while it still shows on the terminal."""

import json
import sqlite3
import sys
import textwrap
import threading

import pytest

import engine
import engine.nn as nn
import engine.tape
from app.cli import main
from engine.tape.info import describe, tape_info
from engine.tape.output import DROPPED, MAX_OUTPUT_BYTES, OutputRow, tee_output


def _record(path, **options) -> list[int]:
    """Record two module calls with output around them; the seqs of the events of each call."""
    seqs = []
    rec = engine.record(path, **options)
    with rec:
        rec.output("stdout", "starting\n")
        fc = nn.Linear(3, 2)
        for step in range(2):
            first = engine.events.next_seq()  # a seq nobody uses: the next event's is one more
            fc(engine.randn(4, 3))
            rec.flush()
            seqs.append(first)
            rec.output("stdout", f"step {step} done\n")
            rec.output("stderr", f"warning {step}\n")
            rec.output("stdout", "tail ")
            rec.output("stdout", "joined\n")
    return seqs


def _events(path) -> list[int]:
    with engine.tape.open(path) as tape:
        return [row.seq for row in tape.rows()]


def test_output_round_trips_in_order_under_the_event_it_followed(tmp_path):
    path = tmp_path / "run.tape"
    firsts = _record(path)
    seqs = _events(path)
    ends = [max(s for s in seqs if s < firsts[1]), seqs[-1]]  # the last event of each step
    with engine.tape.open(path) as tape:
        rows = tape.output()
        assert rows[0] == OutputRow(0, "stdout", "starting\n")  # before any event
        # one row per run of a stream at one event: "tail " and "joined\n" are one chunk
        assert rows[1:] == [OutputRow(end, stream, text) for end, step in zip(ends, range(2)) for stream, text in (
            ("stdout", f"step {step} done\n"), ("stderr", f"warning {step}\n"), ("stdout", "tail joined\n"))]
        # as far as an event: what was written at or before it
        assert tape.output(stop_seq=ends[0]) == rows[:1]
        assert tape.output(stop_seq=ends[0] + 1) == rows[:4]
        assert tape.output(start_seq=ends[0] + 1) == rows[4:]
        assert tape.output_bytes() == sum(len(r.text.encode()) for r in rows)
        assert tape.output_cut() is None
        assert tape.meta["max_output_bytes"] == str(MAX_OUTPUT_BYTES)


def test_a_cap_keeps_a_prefix_and_records_how_many_bytes_were_cut(tmp_path):
    path = tmp_path / "capped.tape"
    rec = engine.record(path, max_output_bytes=20)
    with rec:
        rec.output("stdout", "0123456789")
        nn.Linear(2, 2)(engine.randn(1, 2))
        rec.flush()
        rec.output("stdout", "\u00e9" * 10)  # 20 bytes: 10 fit, the cut falls between characters
        rec.output("stderr", "x" * (1 << 20))  # a huge chunk: all cut
        rec.output("stdout", "ab")  # fits the bytes counted, but after a cut nothing is kept
    last = _events(path)[-1]
    with engine.tape.open(path) as tape:
        rows = tape.output()
        assert [r.text for r in rows] == ["0123456789", "\u00e9" * 5]
        assert tape.output_bytes() == 20
        assert tape.output_cut() == (last, 10 + (1 << 20) + 2)
        info = tape_info(tape)
    assert info["output_bytes"] == 20 and info["dropped"] == {DROPPED: 10 + (1 << 20) + 2}
    assert "20 bytes of the script's stdout and stderr; 1,048,588 bytes more cut (the tape keeps 20 bytes)" in \
        describe(info)


def test_a_huge_chunk_is_cut_to_the_cap_and_split_into_rows(tmp_path):
    path = tmp_path / "huge.tape"
    rec = engine.record(path, max_output_bytes=200_000)
    with rec:
        rec.output("stdout", "y" * 500_000)
    with engine.tape.open(path) as tape:
        rows = tape.output()
        assert "".join(r.text for r in rows) == "y" * 200_000 and len(rows) > 1  # rows of at most 64k characters
        assert tape.output_cut() == (0, 300_000)


def test_threads_writing_at_once_lose_nothing_and_keep_each_threads_order(tmp_path):
    path = tmp_path / "threads.tape"
    rec = engine.record(path)
    start = threading.Barrier(8)

    def write(n):
        start.wait()
        for i in range(400):
            rec.output("stdout" if i % 2 else "stderr", f"thread {n} line {i}\n")

    with rec:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with engine.tape.open(path) as tape:
        text = "".join(r.text for r in tape.output())
    lines = text.splitlines()
    assert sorted(lines) == sorted(f"thread {n} line {i}" for n in range(8) for i in range(400))
    for n in range(8):
        assert [int(x.split()[-1]) for x in lines if x.startswith(f"thread {n} ")] == list(range(400))


def test_threads_writing_past_the_cap_keep_exactly_the_cap(tmp_path):
    path = tmp_path / "threads-capped.tape"
    rec = engine.record(path, max_output_bytes=1000)

    def write(n):
        for _ in range(100):
            rec.output("stdout", "0123456789")

    with rec:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with engine.tape.open(path) as tape:
        assert tape.output_bytes() == 1000
        assert tape.output_cut()[1] == 6000 - 1000


def test_a_tape_without_the_output_table_opens_without_output(tmp_path):
    path = tmp_path / "old.tape"
    _record(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE output")  # as tapes were written before output was kept
    conn.close()
    with engine.tape.open(path) as tape:
        assert not tape.keeps_output
        assert tape.output() == [] and tape.output_bytes() == 0 and tape.output_cut() is None
        assert len(list(tape.rows())) == 6
        info = tape_info(tape)
    assert info["output_bytes"] == 0 and not info["output_kept"]
    assert "output:     not kept (the tape was recorded before tapes kept the script's output)" in describe(info)


@pytest.mark.parametrize("damage", [
    "UPDATE output SET stream = 'stdin' WHERE id = 2",
    "UPDATE output SET text = x'00ff' WHERE id = 2",
    "UPDATE output SET seq = 'x' WHERE id = 2",
    "UPDATE output SET text = '" + "z" * 70_000 + "' WHERE id = 2",  # longer than the writer's rows
])
def test_a_damaged_row_costs_only_that_chunk(tmp_path, damage):
    path = tmp_path / "damaged.tape"
    _record(path)
    with engine.tape.open(path) as tape:
        whole = tape.output()
    with sqlite3.connect(path) as conn:
        conn.execute(damage)
    conn.close()
    with engine.tape.open(path) as tape:
        assert tape.output() == whole[:1] + whole[2:]
        assert tape.notes == ["output: row 2 is damaged; that chunk of the script's output is left out"]
        assert len(list(tape.rows())) == 6  # the events are read as before


def test_hostile_text_is_read_back_as_text(tmp_path):
    path = tmp_path / "hostile.tape"
    hostile = "'); DROP TABLE events; --\x1b[31m\u202e<b>bold</b>\x00\n"
    rec = engine.record(path)
    with rec:
        rec.output("stderr", hostile)
        rec.output("stdout", "\ud800 lone surrogate\n")  # not UTF-8: kept with a replacement mark
    with engine.tape.open(path) as tape:
        assert [r.text for r in tape.output()] == [hostile, "? lone surrogate\n"]
        assert len(list(tape.rows())) == 0


def test_bad_input_is_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="max_output_bytes must be a number of bytes >= 0, got -1"):
        engine.record(tmp_path / "a.tape", max_output_bytes=-1)
    with pytest.raises(ValueError, match="max_output_bytes"):
        engine.record(tmp_path / "b.tape", max_output_bytes=True)
    assert not (tmp_path / "a.tape").exists()
    rec = engine.record(tmp_path / "c.tape")
    with rec:
        with pytest.raises(ValueError, match="stream must be 'stdout' or 'stderr', got 'stdin'"):
            rec.output("stdin", "x")
        with pytest.raises(TypeError, match="text must be str, not bytes"):
            rec.output("stdout", b"x")
    rec.output("stdout", "after close")  # nothing to keep it any more: ignored
    with engine.tape.open(tmp_path / "c.tape") as tape:
        assert tape.output() == []
        with pytest.raises(ValueError, match="output: stop_seq must be an event sequence number"):
            tape.output(stop_seq="3")


def test_tee_output_keeps_prints_and_still_shows_them(tmp_path, capsys):
    path = tmp_path / "tee.tape"
    with engine.record(path) as rec, tee_output(rec):
        print("to stdout")
        print("to stderr", file=sys.stderr)
    assert capsys.readouterr() == ("to stdout\n", "to stderr\n")
    with engine.tape.open(path) as tape:
        assert [(r.stream, r.text) for r in tape.output()] == [("stdout", "to stdout\n"), ("stderr", "to stderr\n")]


SCRIPT = textwrap.dedent("""
    import sys
    import engine
    import engine.nn as nn

    print("epoch 0 starting")
    fc = nn.Linear(3, 2)
    loss = fc(engine.randn(4, 3)).pow(2).mean()
    print(f"loss {loss.item():.3f}")
    print("careful: a warning", file=sys.stderr)
    raise RuntimeError("the script broke")
""")


def test_record_tees_both_streams_and_info_and_export_show_them(tmp_path, capsys):
    script = tmp_path / "printing.py"
    script.write_text(SCRIPT)
    tape = tmp_path / "run.tape"
    assert main(["record", str(script), "-o", str(tape)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("epoch 0 starting\nloss ")  # still on the terminal
    assert err.startswith("careful: a warning\nTraceback (most recent call last):")
    with engine.tape.open(tape) as t:
        rows = t.output()
        seqs = [row.seq for row in t.rows()]
    streams = {s: "".join(r.text for r in rows if r.stream == s) for s in ("stdout", "stderr")}
    assert streams["stdout"] == out
    assert streams["stderr"].startswith("careful: a warning\nTraceback") and "RuntimeError: the script broke" in \
        streams["stderr"]
    assert rows[0].seq == 0 and rows[-1].seq == seqs[-1]  # before the first op; after the last
    assert main(["info", str(tape), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["output_bytes"] == len((streams["stdout"] + streams["stderr"]).encode())
    assert main(["info", str(tape)]) == 0
    assert f"output:     {info['output_bytes']:,} bytes of the script's stdout and stderr" in capsys.readouterr().out
    assert main(["export", str(tape), "--format", "json", "-o", str(tmp_path / "run.json")]) == 0
    exported = json.loads((tmp_path / "run.json").read_text())
    assert exported["output"] == [row._asdict() for row in rows]
