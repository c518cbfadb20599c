"""A row that SQLite reads but whose values are of the wrong type (a flipped serial-type byte makes a number a blob)
costs that row, not the tape: info, export and a replay read the rest, and say what was damaged."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

import engine.tape
from app.cli import main
from app.replay import ReplaySession
from tests.engine.tape.helpers import record_run


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    path = tmp_path_factory.mktemp("rows") / "sound.tape"
    record_run(path, capture="summary", steps=4)
    return path


@pytest.fixture(params=["X'00'", "2.5", "'text'"], ids=["blob", "real", "text"])
def iteration_row_damaged(request, sound, tmp_path):
    """A copy of the tape whose iterations row 1 holds a blob, a real or text where its t_first belongs."""
    path = tmp_path / "bad-row.tape"
    shutil.copyfile(sound, path)
    con = sqlite3.connect(path)
    with con:
        con.execute(f"UPDATE iterations SET t_first = {request.param} WHERE iteration = 1")
    con.close()
    return str(path)


def test_a_damaged_iterations_row_is_told_from_its_events(sound, iteration_row_damaged, capsys, tmp_path):
    bad = iteration_row_damaged
    with engine.tape.open(sound) as whole:
        infos, counts = whole.iterations(), whole.counts()
        events = [row.event for row in whole.rows()]
    with engine.tape.open(bad) as t:
        assert t.iterations() == infos  # iteration 1 as its events tell it: the same range, counts and clock
        assert t.iteration(1) == infos[1] and t.counts() == counts
        assert [event.seq for event in t.events(iteration=1)] == list(range(infos[1].first_seq, infos[1].last_seq + 1))
        assert any("iteration 1 is damaged (its t_first is " in note for note in t.notes)

    assert main(["info", bad]) == 2  # a damaged tape, said in one line; no traceback
    out, err = capsys.readouterr()
    assert f"iterations: {len(infos)} (0..{len(infos) - 1})" in out
    assert err.count("\n") == 1 and "the row of iteration 1 is damaged" in err
    assert main(["info", bad, "--json"]) == 2
    info = json.loads(capsys.readouterr().out)
    assert info["iterations"] == len(infos) and info["events"] == counts["events"]

    for fmt in ("json", "dot", "perfetto"):  # each exports what it can read: all of it but that row
        out_file = tmp_path / f"out.{fmt}"
        assert main(["export", bad, "--format", fmt, "-o", str(out_file)]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    exported = json.loads((tmp_path / "out.json").read_text())
    assert len(exported["events"]) == len(events)
    assert [i["iteration"] for i in exported["iterations"]] == [i.iteration for i in infos]

    replay = ReplaySession(bad)  # the app opens it, and its banner says what was damaged
    try:
        assert replay.counts["events"] == counts["events"]
        assert "iteration 1 is damaged" in replay.damage_text()
    finally:
        replay.close()
