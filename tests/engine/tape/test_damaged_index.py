"""An index damaged, its table intact: the table is read without the index (a scan SQLite sorts as the index would
have), so nothing is lost, and `info` says which index is damaged."""

from __future__ import annotations

import shutil
import sqlite3
import textwrap

import pytest

import engine.tape
from app.cli import main
from tests.engine.tape.helpers import recorded_script

PRINTS = textwrap.dedent("""
    import engine
    import engine.nn as nn

    model = nn.Linear(3, 2)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x = engine.randn(4, 3)
    for step in range(6):
        opt.zero_grad()
        loss = (model(x) ** 2).mean()
        loss.backward()
        opt.step()
        print("step", step, "loss", round(loss.item(), 4))
""")


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    """A recorded run that printed a line per step, with parameter snapshots."""
    return recorded_script(tmp_path_factory.mktemp("index"), PRINTS, "--capture", "values")


def index_zeroed(sound, folder, table: str) -> str:
    """A copy of the tape with the root page of `table`'s index (its only page, on a small tape) zeroed."""
    con = sqlite3.connect(f"file:{sound}?mode=ro&immutable=1", uri=True)
    try:
        name, root = con.execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                 (table,)).fetchone()
        size = con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()
    bad = folder / f"bad-{name}.tape"
    shutil.copyfile(sound, bad)
    with open(bad, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(bytes(size))
    return str(bad)


def test_the_output_is_read_whole_though_its_index_is_damaged(sound, tmp_path, capsys):
    bad = index_zeroed(sound, tmp_path, "output")
    with engine.tape.open(sound) as whole:
        output, output_bytes = whole.output(), whole.output_bytes()
        upto = whole.output(stop_seq=whole.iterations()[2].last_seq + 1)
    assert "step 5 loss" in "".join(row.text for row in output)
    with engine.tape.open(bad) as t:
        assert t.output() == output  # was: TapeError, and the Output panel showed none of it
        assert t.output(stop_seq=t.iterations()[2].last_seq + 1) == upto  # in order, as far as an event
    assert main(["info", bad]) == 2
    out, err = capsys.readouterr()
    assert f"output:     {output_bytes:,} bytes" in out
    assert "output chunks: their index output_by_seq is damaged" in out  # was: "damaged pages outside the tables"
    assert err.count("\n") == 1


@pytest.mark.parametrize("table", ["parameters", "sources"])
def test_a_table_read_through_its_key_index_is_read_without_it(sound, tmp_path, capsys, table):
    bad = index_zeroed(sound, tmp_path, table)
    with engine.tape.open(sound) as whole:
        names = whole.parameter_names()
        history = {name: whole.parameter_history(name) for name in names}
        last = {name: whole.parameter(name) for name in names}
        sources = {file: whole.source(file) for file in whole.sources()}
    with engine.tape.open(bad) as t:
        assert t.parameter_names() == names and t.parameter_counts()["snapshots"] == sum(map(len, history.values()))
        for name in names:
            assert [s.seq for s in t.parameter_history(name)] == [s.seq for s in history[name]]
            got = t.parameter(name)
            assert got.seq == last[name].seq and (got.value == last[name].value).all()
        assert {file: t.source(file) for file in t.sources()} == sources
    assert main(["info", bad]) == 2
    line = {"parameters": "parameter snapshots", "sources": "source files"}[table]
    assert f"  DAMAGED:    {line}: the index of their keys is damaged" in capsys.readouterr().out
