"""What `tapescope info` says adds up and says what is missing: the counts of the kinds of events sum to the events, a
tape copied without its -wal file says its latest events may be in that file, a file a few bytes short says by how
many."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

import engine
import engine.tape
from app.cli import main
from engine.tape.damage import cut_short_text
from tests.engine.tape.helpers import record_run


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    path = tmp_path_factory.mktemp("info") / "sound.tape"
    record_run(path, capture="summary", steps=5, nan_at=3)  # modules, optimizer steps and alerts
    return path


def test_the_kinds_of_events_add_up_to_the_events(sound, capsys):
    with engine.tape.open(sound) as t:
        kinds = t.kind_counts()
        total = t.counts()["events"]
    assert kinds["module_exit"] > 0 and kinds["alert"] > 0 and sum(kinds.values()) == total
    assert main(["info", str(sound)]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  events:")]
    # was "events 85 (ops 20, backward 20, module calls 20, optimizer steps 5)": the module exits and alerts unsaid
    head, _, parts = line.partition(" (")
    numbers = [int(part.rsplit(" ", 1)[1].replace(",", "")) for part in parts.rstrip(")").split(", ")]
    assert int(head.split()[-1].replace(",", "")) == total == sum(numbers)
    assert f"module enters {kinds['module_enter']}, module exits {kinds['module_exit']}" in line
    assert f"alerts {kinds['alert']}" in line
    assert main(["info", str(sound), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kinds"] == kinds


def test_a_tape_copied_without_its_log_says_where_its_latest_events_are(tmp_path, capsys):
    path = tmp_path / "live.tape"
    recorder = engine.tape.record(path, capture="structure")
    try:
        x = engine.randn(3)
        for _ in range(5):
            x = x + 1
        assert recorder.flush()
        con = sqlite3.connect(path)  # SQLite's own checkpoint, as a long recording makes them: the tape holds those
        con.execute("PRAGMA wal_checkpoint(PASSIVE)")
        con.close()
        for _ in range(5):
            x = x + 1
        assert recorder.flush()
        copy = tmp_path / "copy.tape"
        shutil.copyfile(path, copy)  # a colleague gets the .tape alone
        assert main(["info", str(copy)]) == 0
        first = capsys.readouterr().out.splitlines()[0]
        assert first.endswith("(not closed: still recording, or the recorder was killed; events after its last "
                              "checkpoint may be in copy.tape-wal, which is missing: copy it next to the tape)")
        assert main(["info", str(copy), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["missing_log"] == "copy.tape-wal"
        assert main(["info", str(path)]) == 0  # with its -wal file beside it: all of it, nothing missing
        first = capsys.readouterr().out.splitlines()[0]
        assert first.endswith("(not closed: still recording, or the recorder was killed)")
    finally:
        recorder.close()
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["missing_log"] is None  # closed: one file


def test_a_file_a_few_bytes_short_says_how_many(sound, tmp_path, capsys):
    data = sound.read_bytes()
    cut = tmp_path / "cut16.tape"
    cut.write_bytes(data[:-16])
    exact = f"the file is cut short: {len(data) - 16:,} of {len(data):,} bytes"
    assert cut_short_text((len(data) - 16, len(data))) == exact
    assert cut_short_text((5 << 20, 10 << 20)) == "the file is cut short: 5.0 MiB of 10.0 MiB"
    assert main(["info", str(cut)]) == 2
    out = capsys.readouterr().out
    # was "156.0 KiB of 156.0 KiB", and "SQLite reports damaged pages outside the tables read" though it reported none
    assert f"  DAMAGED:    {exact}\n" in out
    assert "quick_check" not in out
