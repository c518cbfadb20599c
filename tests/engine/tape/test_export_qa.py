"""Export QA: the JSON export carries the tape's parameter snapshots, as a person analysing a run expects."""

import io
import json
import sqlite3

import engine.tape
from app.cli import main
from engine.tape.export import export
from tests.engine.tape.helpers import record_run


def _json(path) -> dict:
    out = io.StringIO()
    with engine.tape.open(path) as tape:
        export(tape, "json", out)
    return json.loads(out.getvalue())  # strict JSON: no NaN tokens


def test_json_holds_every_parameter_snapshot_oldest_first(tmp_path):
    path = tmp_path / "run.tape"
    record_run(path, "values", steps=3)  # every step snapshots at 'values': the first forward's value + 3
    doc = _json(path)
    with sqlite3.connect(path) as db:
        stored = db.execute("SELECT name, seq, iteration, after_step FROM parameters ORDER BY name, seq").fetchall()
    exported = [(name, s["seq"], s["iteration"], int(s["after_step"]))
                for name, snaps in sorted(doc["parameters"].items()) for s in snaps]
    assert exported == stored and len(stored) == 4 * 4  # 4 parameters, each before the first step and after 3
    with engine.tape.open(path) as tape:
        last = tape.parameter("fc1.weight", value=False)
    snap = doc["parameters"]["fc1.weight"][-1]
    assert snap["after_step"] is True and snap["summary"]["shape"] == [5, 6]
    assert snap["summary"]["mean"] == last.summary.mean and len(snap["summary"]["counts"]) == 64
    assert "value" not in snap and "npy" not in snap  # raw values stay on the tape, as the events' do


def test_json_of_a_structure_tape_has_no_parameter_snapshots(tmp_path):
    path = tmp_path / "run.tape"
    record_run(path, "structure", steps=2)
    assert _json(path)["parameters"] == {}


def test_export_command_writes_the_snapshots_too(tmp_path):
    path, out = tmp_path / "run.tape", tmp_path / "run.json"
    record_run(path, "summary", steps=2)
    assert main(["export", str(path), "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert sorted(doc["parameters"]) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    assert doc["parameters"]["fc2.bias"][0]["after_step"] is False  # the value the first forward used
