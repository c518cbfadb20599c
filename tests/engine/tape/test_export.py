"""Exports: JSON holds every event, DOT renders the graph, the Perfetto trace links forward and backward."""

import io
import json
import shutil
import subprocess

import pytest

import engine
import engine.tape
from engine.events import BackwardEvent, OpEvent
from engine.tape.export import dot_string, export
from engine.tape.schema import FORMAT_VERSION
from tests.engine.tape.helpers import record_run, train


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "run.tape"
    run = record_run(path, "summary", steps=3, nan_at=2)
    return path, run


def _export(path, fmt, **kw) -> str:
    out = io.StringIO()
    with engine.tape.open(path) as tape:
        export(tape, fmt, out, **kw)
    return out.getvalue()


def test_json_holds_every_event_with_its_summaries(recorded):
    path, run = recorded
    doc = json.loads(_export(path, "json"))  # strict JSON: no NaN tokens
    assert doc["format_version"] == FORMAT_VERSION and doc["meta"]["capture"] == "summary"
    assert [e["seq"] for e in doc["events"]] == [e.seq for e in run.events]
    op = next(e for e in doc["events"] if e["type"] == "op")
    live = next(e for e in run.events if type(e) is OpEvent)
    assert op["key"] == live.key and op["input_shapes"] == [list(s) for s in live.input_shapes]
    assert op["summaries"][str(live.output)]["numel"] == 4 * 5
    assert len(op["summaries"][str(live.output)]["counts"]) == 64
    alert = next(e for e in doc["events"] if e["type"] == "alert")
    assert alert["kind"] == "nonfinite_forward" and alert["value"] == "nan"
    assert [i["iteration"] for i in doc["iterations"]] == [0, 1, 2]


def test_dot_draws_the_last_iteration_with_module_clusters(recorded):
    path, _ = recorded
    dot = _export(path, "dot")
    assert dot.startswith("digraph tape {") and dot.rstrip().endswith("}")
    assert "iteration 2" in dot
    assert 'label="MLP.fc1"' in dot and 'label="MLP"' in dot
    assert dot.count("[label=\"linear\\nMLP.fc") == 1  # fc1's; fc2's is what `out = model(x)` names
    assert '[label="out\\nlinear\\nMLP.fc2/linear:0' in dot
    assert 'label="fc1.weight\\n5x6"' in dot and 'label="fc2.bias\\n3"' in dot  # parameters by name
    first = _export(path, "dot", iteration=0)
    assert "iteration 0" in first
    if shutil.which("dot"):
        out = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        with engine.tape.open(path) as tape:
            graph = tape.graph(2)
        assert len(graph.ops) == 7  # linear, relu, linear, sub, log, add, cross_entropy
        assert out.stdout.count('class="node"') == len(graph.ops) + len({t for t, _ in graph.leaves})
        assert out.stdout.count('class="edge"') == len(graph.edges) + len(graph.leaves)


def test_dot_draws_the_last_whole_training_step_by_default(tmp_path):
    path = tmp_path / "eval_after.tape"
    with engine.record(path, capture="structure"):
        model = train(2)
        model(engine.ones(1, 6)).argmax(1)  # an evaluation after the last step: an iteration of its own
    with engine.tape.open(path) as tape:
        last = tape.iterations()[-1]
    assert last.ops and not last.backward
    dot = _export(path, "dot")
    assert f"iteration {last.iteration - 1}" in dot and "cross_entropy" in dot
    assert "argmax" in _export(path, "dot", iteration=last.iteration)


def test_dot_strings_are_quoted_safely():
    assert dot_string('a"b') == '"a\\"b"'
    assert dot_string("a\\nb") == '"a\\\\nb"'  # a backslash in the text stays a backslash
    assert dot_string("a\nb") == '"a\\nb"'  # a newline in the text is a line break
    assert dot_string("\x1b[0m") == '"\\\\x1b[0m"'


def test_perfetto_trace_links_forward_and_backward_with_flows(recorded):
    path, run = recorded
    trace = json.loads(_export(path, "perfetto"))
    events = trace["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert all(isinstance(e["ts"], float) and e["dur"] > 0 for e in slices)
    ops = [e for e in slices if e["cat"] == "forward"]
    backward = [e for e in slices if e["cat"] == "backward"]
    assert len(ops) == sum(type(e) is OpEvent for e in run.events)
    assert len(backward) == sum(type(e) is BackwardEvent for e in run.events)
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    finishes = {e["id"]: e for e in events if e["ph"] == "f"}
    assert starts.keys() == finishes.keys() == {b["args"]["forward_seq"] for b in backward}
    for fid, f in finishes.items():
        assert f["bp"] == "e"
        op = next(o for o in ops if o["args"]["seq"] == fid)
        node = next(b for b in backward if b["args"]["forward_seq"] == fid)
        assert op["ts"] <= starts[fid]["ts"] <= op["ts"] + op["dur"]  # each arrow starts inside its op
        assert node["ts"] <= f["ts"] <= node["ts"] + node["dur"]  # and ends inside its backward node
    modules = [e for e in slices if e["cat"] == "module"]
    fc1 = next(m for m in modules if m["name"] == "MLP.fc1")
    inner = next(o for o in ops if o["args"]["module"] == "MLP.fc1" and o["ts"] >= fc1["ts"])
    assert inner["ts"] + inner["dur"] <= fc1["ts"] + fc1["dur"] + 1e-6  # ops nest inside their module call
    assert any(e["ph"] == "i" and e["cat"] == "alert" for e in events)
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"forward", "backward", "optimizer", "iterations"} <= names


def test_unknown_format_is_refused(recorded):
    with pytest.raises(ValueError, match="unknown export format 'pdf'"):
        _export(recorded[0], "pdf")
