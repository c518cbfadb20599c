"""What goes on a tape comes back: events, records, summaries, values, sources, alerts, edits, graphs."""

import os
import sqlite3

import numpy as np
import pytest

import engine
import engine.tape
from engine.debug import Debugger, SetOptimizer
from engine.events import AlertEvent, BackwardEvent, EditEvent, ModuleEvent, OpEvent, OptimizerEvent
from engine.tape import TapeError, schema
from engine.tape.info import describe, tape_info
from tests.engine.tape.helpers import MLP, as_format_1, record_run, same_record, same_summary, train


@pytest.mark.parametrize("capture", ["structure", "summary", "values"])
def test_replayed_events_equal_the_live_events(tmp_path, capture):
    path = tmp_path / "run.tape"
    run = record_run(path, capture, steps=3)
    with engine.tape.open(path) as tape:
        replayed = list(tape.events())
        assert tape.capture == capture
    # the same dataclasses, by value, in the same order; optimizer steps as the debugger recorded them,
    # its parameters named as the model names them
    steps = iter([r.event for r in run.records if type(r.event) is OptimizerEvent])
    assert replayed == [next(steps) if type(e) is OptimizerEvent else e for e in run.events]
    names = [name for name, _ in run.model.named_parameters()] if capture != "structure" else []  # no norms
    assert all(list(e.update_norms) == names for e in replayed if type(e) is OptimizerEvent)
    kinds = {type(e) for e in replayed}
    assert {OpEvent, BackwardEvent, ModuleEvent, OptimizerEvent} <= kinds


def test_optimizer_steps_carry_gradient_norms_and_format_1_tapes_still_read(tmp_path):
    path = tmp_path / "run.tape"
    run = record_run(path, "summary", steps=2)
    with engine.tape.open(path) as tape:
        steps = [e for e in tape.events() if type(e) is OptimizerEvent]
    names = [name for name, _ in run.model.named_parameters()]
    assert len(steps) == 2 and all(list(e.grad_norms) == names for e in steps)
    assert all(v > 0 for v in steps[0].grad_norms.values())
    # the same tape as format 1 wrote it: two lists of names, no gradient norms
    as_format_1(path)
    with engine.tape.open(path) as tape:
        old = [e for e in tape.events() if type(e) is OptimizerEvent]
    assert tape.format_version == 1
    assert [(e.update_norms, e.weight_norms, e.grad_norms) for e in old] == \
        [(e.update_norms, e.weight_norms, {}) for e in steps]


@pytest.mark.parametrize("capture", ["structure", "summary", "values"])
def test_replayed_records_equal_the_debuggers_records(tmp_path, capture):
    path = tmp_path / "run.tape"
    run = record_run(path, capture, steps=2)
    with engine.tape.open(path) as tape:
        replayed = list(tape.records())
    assert len(replayed) == len(run.records)
    for live, back in zip(run.records, replayed):
        assert same_record(live, back), (live, back)
    ops = [r for r in replayed if type(r.event) is OpEvent]
    assert all(r.source is not None and r.source.file == train.__code__.co_filename for r in ops)
    if capture == "structure":
        assert all(r.summary is None for r in ops)
    else:
        assert all(r.summary is not None for r in ops)
    if capture == "values":  # small tensors carry their values
        assert any(r.value is not None for r in ops)


def test_summaries_and_values_by_tensor_id(tmp_path):
    path = tmp_path / "run.tape"
    run = record_run(path, "values", steps=1)
    op = next(r for r in run.records if type(r.event) is OpEvent and r.value is not None)
    with engine.tape.open(path) as tape:
        assert same_summary(tape.summary(op.event.output), op.summary)
        np.testing.assert_array_equal(tape.value(op.event.output), op.value)
        assert tape.value(op.event.output).dtype == op.value.dtype
        assert tape.summary(10**12) is None and tape.value(10**12) is None


def test_iterations_and_seeking(tmp_path):
    path = tmp_path / "run.tape"
    run = record_run(path, "structure", steps=4)
    with engine.tape.open(path) as tape:
        assert tape.iteration_count() == 4
        infos = tape.iterations()
        assert [i.iteration for i in infos] == [0, 1, 2, 3]
        assert sum(i.events for i in infos) == len(run.events)
        third = tape.iteration(2)
        events = list(tape.events(iteration=2))
        assert events[0].seq == third.first_seq and events[-1].seq == third.last_seq
        assert list(tape.events(third.first_seq, third.last_seq + 1)) == events
        assert tape.event(third.first_seq) == events[0]
        assert tape.iteration(99) is None
        counts = tape.counts()
        assert counts["events"] == len(run.events)
        assert counts["ops"] == sum(type(e) is OpEvent for e in run.events)


def test_columns_of_every_event_agree_with_its_rows(tmp_path):
    path = tmp_path / "run.tape"
    record_run(path, "structure", steps=4, batch_events=7)  # many small chunks, cut mid-iteration
    with engine.tape.open(path) as tape:
        cols = tape.columns("kind", "iteration", "phase", "depth")
        rows = list(tape.rows())
        assert cols["seq"].tolist() == [r.seq for r in rows]
        assert [schema.KIND_NAMES[k] for k in cols["kind"].tolist()] == [r.kind for r in rows]
        assert cols["iteration"].tolist() == [r.iteration for r in rows]
        assert [schema.PHASES[p] for p in cols["phase"].tolist()] == [r.phase for r in rows]
        assert cols["depth"].tolist() == [r.depth for r in rows]
        with pytest.raises(ValueError, match="no column 'output'"):
            tape.columns("output")


def test_optimizer_steps_and_losses_of_the_whole_run_without_its_events(tmp_path):
    path = tmp_path / "run.tape"
    run = record_run(path, "summary", steps=4, batch_events=7)
    with engine.tape.open(path) as tape:
        rows = list(tape.rows())
        steps = tape.optimizer_steps()
        assert [(it, ev) for it, ev in steps] == [(r.iteration, r.event) for r in rows if r.kind == "optimizer"]
        assert len(steps) == 4
        # the loss: what each iteration's first backward node differentiates, as the debugger summarised it
        firsts = {}
        for rec in run.records:
            if type(rec).__name__ == "BackwardRecord":
                firsts.setdefault(rec.iteration, rec.forward.summary)
        assert tape.losses() == {it: s.mean for it, s in firsts.items()} and len(firsts) == 4
    structure = tmp_path / "structure.tape"
    record_run(structure, "structure", steps=2)
    with engine.tape.open(structure) as tape:
        assert tape.losses() == {} and len(tape.optimizer_steps()) == 2


def test_graph_of_an_iteration_links_ops_by_tensor(tmp_path):
    path = tmp_path / "run.tape"
    record_run(path, "structure", steps=2)
    with engine.tape.open(path) as tape:
        graph = tape.graph(1)
    names = [op.key for op in graph.ops]
    assert names == ["MLP.fc1/linear:0", "MLP/relu:0", "MLP.fc2/linear:0", "cross_entropy:0"]
    by_seq = {op.seq: op.key for op in graph.ops}
    chain = [(by_seq[a], by_seq[b]) for a, b, _ in graph.edges]
    assert chain == [("MLP.fc1/linear:0", "MLP/relu:0"), ("MLP/relu:0", "MLP.fc2/linear:0"),
                     ("MLP.fc2/linear:0", "cross_entropy:0")]
    assert {b.forward_seq for b in graph.backward} == set(by_seq)


def test_sources_are_snapshotted_for_offline_viewing(tmp_path):
    path = tmp_path / "run.tape"
    record_run(path, "structure", steps=1)
    helpers_file = train.__code__.co_filename
    with engine.tape.open(path) as tape:
        assert tape.sources()[helpers_file] == "copied"
        with open(helpers_file, encoding="utf-8") as f:
            assert tape.source(helpers_file) == f.read()
        op = next(r for r in tape.records() if type(r.event) is OpEvent)
        source, stack = tape.stack(op.event.seq)
        assert source == op.source and stack == op.stack
        assert tape.source("/no/such/file.py") is None


def test_alerts_are_recorded_with_their_input_summaries(tmp_path):
    path = tmp_path / "run.tape"
    run = record_run(path, "summary", steps=3, nan_at=1)
    live = [e for e in run.events if type(e) is AlertEvent]
    assert live and live[0].kind == "nonfinite_forward"
    with engine.tape.open(path) as tape:
        alerts = tape.alerts()
    assert len(alerts) == len(live)
    a, b = alerts[0], live[0]
    assert (a.kind, a.op, a.key, a.module, a.file, a.line, a.iteration) == \
        (b.kind, b.op, b.key, b.module, b.file, b.line, b.iteration) == \
        (b.kind, "log", "log:0", "", train.__code__.co_filename, b.line, 1)
    assert len(a.inputs) == len(b.inputs) and all(map(same_summary, a.inputs, b.inputs))


def test_edits_are_recorded(tmp_path):
    path = tmp_path / "run.tape"
    model = MLP()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    dbg = Debugger("structure", model=model, optimizer=opt, interactive=False, cache_bytes=0)
    with dbg, engine.record(path, debugger=dbg):
        future = dbg.edit(SetOptimizer("lr", 0.5))
        rejected = dbg.edit(SetOptimizer("no_such_setting", 1.0))
        dbg.apply_edits()
        model(engine.ones(2, 6)).sum().backward()
    assert future.result().applied and not rejected.result().applied
    with engine.tape.open(path) as tape:
        edits = tape.edits()
        replayed = [e for e in tape.events() if type(e) is EditEvent]
    assert edits == replayed == [future.result(), rejected.result()]


def test_a_recording_without_a_model_names_parameters_by_the_model_it_sees(tmp_path):
    path = tmp_path / "script.tape"
    with engine.record(path, capture="summary"):  # as `tapescope record script.py` does: no model given
        model = train(2)
    with engine.tape.open(path) as tape:
        steps = [e for e in tape.events() if type(e) is OptimizerEvent]
    names = [name for name, _ in model.named_parameters()]
    assert len(steps) == 2 and all(list(e.update_norms) == names == list(e.grad_norms) for e in steps)


def test_record_attaches_its_own_debugger_and_detaches_it(tmp_path):
    path = tmp_path / "run.tape"
    with engine.record(path, capture="summary") as rec:
        assert engine.hub.active
        train(2)
    assert not engine.hub.active
    assert rec.status == "complete" and rec.events > 0
    assert not os.path.exists(f"{path}-wal")  # checkpointed into one file on close
    with engine.tape.open(path) as tape:
        assert tape.meta["status"] == "complete"
        assert tape.iteration_count() == 2
        assert {"format_version", "tapescope_version", "created", "command_line", "python", "numpy", "cupy",
                "devices", "capture"} <= set(tape.meta)


def test_recording_to_a_file_that_is_not_a_tape_is_refused(tmp_path):
    precious = tmp_path / "train.py"
    precious.write_text("print('my work')\n")
    with pytest.raises(TapeError, match="not a tape"):
        engine.record(precious)
    assert precious.read_text() == "print('my work')\n"


def test_an_existing_tape_is_replaced(tmp_path):
    path = tmp_path / "run.tape"
    record_run(path, "structure", steps=3)
    record_run(path, "structure", steps=1)
    with engine.tape.open(path) as tape:
        assert tape.iteration_count() == 1


def test_bad_capture_tier_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="capture must be one of structure, summary, values"):
        engine.record(tmp_path / "x.tape", capture="everything")


def test_a_full_queue_drops_values_then_summaries_and_says_so(tmp_path):
    path = tmp_path / "run.tape"
    run = record_run(path, "values", steps=6, queue_events=4, flush_interval=0.2)
    with engine.tape.open(path) as tape:
        drops = {}
        for d in tape.drops():
            drops[d.what] = drops.get(d.what, 0) + d.count
        replayed = list(tape.records())
    assert len(replayed) == len(run.records)  # events are never dropped for speed
    assert [r.event for r in replayed] == [r.event for r in run.records]
    assert drops.get("values", 0) > 0
    live_values = sum(r.value is not None for r in run.records if type(r.event) is OpEvent) + \
        sum(v is not None for r in run.records if type(r.event) is BackwardEvent for v in r.values)
    kept_values = sum(r.value is not None for r in replayed if type(r.event) is OpEvent) + \
        sum(v is not None for r in replayed if type(r.event) is BackwardEvent for v in r.values)
    assert kept_values + drops["values"] == live_values
    with engine.tape.open(path) as tape:
        info = tape_info(tape)
    assert info["dropped_behind"] == info["dropped"]  # no size cap came near: the writer fell behind, and says so
    (dropped,) = [line for line in describe(info).splitlines() if "dropped:" in line]
    assert dropped.endswith("(the writer could not keep up)") and "size cap" not in dropped


def test_the_queue_stays_bounded_when_the_disk_is_slow(tmp_path, monkeypatch):
    import time

    from engine.tape.writer import Recorder

    slow = Recorder.write_batch

    def slow_write(self, items):
        time.sleep(0.02)
        slow(self, items)

    monkeypatch.setattr(Recorder, "write_batch", slow_write)
    seen = []
    with engine.record(tmp_path / "run.tape", capture="structure", queue_events=32, batch_events=8) as rec:
        unsubscribe = engine.hub.subscribe(lambda e: seen.append(rec.pending))
        train(8)
        unsubscribe()
    assert max(seen) <= 32
    with engine.tape.open(tmp_path / "run.tape") as tape:
        assert tape.counts()["events"] == rec.events


def test_size_cap_stops_recording_and_leaves_a_valid_tape(tmp_path):
    path = tmp_path / "run.tape"
    with engine.record(path, capture="values", max_bytes=300_000, flush_interval=0.01) as rec:
        train(150)
    assert rec.status.startswith("size cap")
    assert os.path.getsize(path) < 600_000
    with engine.tape.open(path) as tape:
        assert tape.meta["status"].startswith("size cap")
        assert any(d.what == "events" for d in tape.drops())
        assert sum(1 for _ in tape.events()) == tape.counts()["events"] > 0
        info = tape_info(tape)
    assert info["dropped"]["events"] > 0 and "events" not in info["dropped_behind"]  # the cap's, never for speed
    (dropped,) = [line for line in describe(info).splitlines() if "dropped:" in line]
    capped = {what: n - info["dropped_behind"].get(what, 0) for what, n in info["dropped"].items()}
    said = ", ".join(f"{n:,} {what}" for what, n in capped.items() if n)
    assert f"{said} (the size cap was reached)" in dropped and "or the size cap" not in dropped
    # a tape from before the recorder told them apart: its events are the cap's, the rest may be either's
    older = describe({**info, "dropped_behind": None})
    assert f"{info['dropped']['events']:,} events (the size cap was reached)" in older
    assert "(the writer could not keep up, or the size cap was reached)" in older
    uncapped = describe({**info, "status": "complete", "max_bytes": None, "dropped_behind": None,
                         "dropped": {"values": 3}})
    assert "  dropped:    3 values (the writer could not keep up)" in uncapped.splitlines()


def test_a_failing_disk_is_reported_at_close(tmp_path, monkeypatch):
    from engine.tape.writer import Recorder

    def broken(self, items):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Recorder, "write_batch", broken)
    rec = engine.record(tmp_path / "run.tape", capture="structure")
    train(1)
    with pytest.raises(TapeError, match="disk I/O error"):
        rec.close()
    assert not engine.hub.active


def test_a_second_recorder_of_a_path_being_recorded_is_refused(tmp_path):
    # it deleted the first recorder's files, and the first went on writing into a file nobody could see
    path = tmp_path / "run.tape"
    with engine.record(path, capture="structure") as first:
        train(1)
        with pytest.raises(TapeError, match="another recorder is writing it"):
            engine.record(path, capture="structure")
        train(1)
    with engine.tape.open(path) as tape:
        assert tape.counts()["events"] == first.events > 0 and tape.meta["status"] == "complete"
    with engine.record(path, capture="structure") as again:  # once closed, the path is free
        train(1)
    assert again.status == "complete"
