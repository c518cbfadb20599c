"""What the exports say of a run that raised or went NaN: the DOT graph marks the op that raised and the non-finite
values as the app paints them, the JSON holds where each op ran and the sources' text, the Perfetto trace puts the
op that raised inside its module; `-o -` writes to stdout."""

from __future__ import annotations

import json
import re

import pytest

import engine.tape
from app.cli import main
from tests.app.test_cli_record import FAILS
from tests.engine.tape.helpers import record_run, recorded_script


@pytest.fixture(scope="module")
def failed(tmp_path_factory):
    """A tape of FAILS: a linear layer raises a ShapeError in the fourth iteration; and the script's path."""
    tape = recorded_script(tmp_path_factory.mktemp("failed"), FAILS, code=1, name="fails")
    return tape, tape.with_suffix(".py")


@pytest.fixture(scope="module")
def nan(tmp_path_factory):
    tape = tmp_path_factory.mktemp("nan") / "nan.tape"
    record_run(tape, capture="summary", steps=4, nan_at=2)  # log(-1) in iteration 2
    return tape


def dot_nodes(text: str) -> dict[int, str]:
    """op seq -> the attributes of its node, from a DOT export."""
    return {int(m[1]): m[2] for m in re.finditer(r"^\s*op(\d+) \[(.*)\];$", text, re.M)}


def label(attributes: str) -> list[str]:
    return re.match(r'label="((?:[^"\\]|\\.)*)"', attributes)[1].split("\\n")


def dot_of(tape, iteration: int, capsys) -> str:
    assert main(["export", str(tape), "--format", "dot", "--iteration", str(iteration), "-o", "-"]) == 0
    return capsys.readouterr().out


def test_the_dot_graph_marks_the_op_that_raised_as_an_error_without_an_output(failed, capsys):
    tape, _script = failed
    with engine.tape.open(tape) as t:
        seq, message = t.raised_op()
        iteration = next(t.rows(seq, seq + 1)).iteration
    nodes = dot_nodes(dot_of(tape, iteration, capsys))
    lines = label(nodes[seq])
    # was: "loss", "linear", ..., "scalar float32": named for the line's assignment, with an output it never made
    assert lines[0] == "linear" and "loss" not in lines and not any("scalar" in line for line in lines)
    assert " ".join(lines[2:]).startswith("raised ShapeError: linear: input has 5 features")
    assert 'fillcolor="#862e9c"' in nodes[seq] and f'tooltip="{message}"' in nodes[seq]


def test_the_dot_graph_marks_non_finite_outputs_and_the_alerts_origin(nan, capsys):
    with engine.tape.open(nan) as t:
        alert = next(a for a in t.alerts() if a.kind.startswith("nonfinite"))
        graph = t.graph(alert.iteration)
        summaries = t.summaries([op.output for op in graph.ops])
    nodes = dot_nodes(dot_of(nan, alert.iteration, capsys))
    nan_ops = {op.seq for op in graph.ops if summaries[op.output].nan_count}
    assert alert.forward_seq in nan_ops and len(nan_ops) < len(graph.ops)
    for op in graph.ops:
        attributes = nodes[op.seq]
        if op.seq in nan_ops:  # the app's NaN red
            assert 'fillcolor="#e03131"' in attributes and "NaN in its output" in label(attributes)
        else:
            assert "fillcolor" not in attributes and "NaN in its output" not in label(attributes)
        assert ("penwidth=3" in attributes) == (op.seq == alert.forward_seq)  # where NaN starts
    assert "alert: NaN/Inf (forward)" in label(nodes[alert.forward_seq])


def test_the_json_export_says_where_each_op_ran_and_holds_the_sources(failed, tmp_path, capsys):
    tape, script = failed
    out = tmp_path / "out.json"
    assert main(["export", str(tape), "--format", "json", "-o", str(out)]) == 0
    exported = json.loads(out.read_text())
    assert exported["sources"] == {str(script): {"text": script.read_text(), "note": "copied"}}
    ops = [e for e in exported["events"] if e["type"] == "op"]
    lines = script.read_text().splitlines()
    with engine.tape.open(tape) as t:
        for op in ops:
            source, stack = t.stack(op["seq"])
            assert (op["file"], op["line"], op["code"]) == (source.file, source.line, source.text)
            assert op["file"] == str(script) and op["code"] == lines[op["line"] - 1].strip()
            assert op["stack"] == [{"file": f.file, "line": f.line, "function": f.function, "code": f.text}
                                   for f in stack]
    steps = [e for e in exported["events"] if e["type"] == "optimizer"]
    assert steps and all(e["code"] == "opt.step()" for e in steps)


def test_the_perfetto_trace_puts_the_op_that_raised_inside_its_module(failed, tmp_path):
    tape, _script = failed
    out = tmp_path / "out.json"
    assert main(["export", str(tape), "--format", "perfetto", "-o", str(out)]) == 0
    events = json.loads(out.read_text())["traceEvents"]
    with engine.tape.open(tape) as t:
        seq, _message = t.raised_op()
        module = t.event(seq).module
    (op,) = [e for e in events if e.get("cat") == "forward" and e["args"]["seq"] == seq]
    call = [e for e in events if e.get("cat") == "module" and e["name"] == module][-1]  # the call it raised in
    # was: after the module's slice, lasting to the end of the recording
    assert call["ts"] < op["ts"] and op["ts"] + op["dur"] < call["ts"] + call["dur"]
    later = [e for e in events if e.get("ph") == "X" and e.get("cat") != "iteration" and e["ts"] > op["ts"]]
    assert all(e["ts"] >= op["ts"] + op["dur"] for e in later if e is not op)


def test_export_to_dash_writes_to_stdout(failed, tmp_path, capsys, monkeypatch):
    tape, _script = failed
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(tape), "--format", "json", "-o", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "tapescope-tape-json"
    assert not (tmp_path / "-").exists()  # was: a file named "-"
