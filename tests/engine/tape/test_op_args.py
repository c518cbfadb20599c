"""An op's settings (a loss's reduction, a sum's dim and keepdim) are kept on the tape and replayed."""

import sqlite3

import numpy as np
import pytest

import engine
import engine.nn.functional as F
import engine.tape
from engine.events import OpEvent
from engine.tape.codec import args_text, op_args, parse_args


def test_op_args_keeps_the_settings_a_person_wrote_and_leaves_data_out():
    options = {"reduction": "sum", "ignore_index": -100, "label_smoothing": 0.0, "dims": (1,), "keepdim": True,
               "weight": np.ones(3), "index": (slice(0, 2), 1), "shape": (4, 5), "fn": len, "gathers": tuple(range(99)),
               "eps": None}
    assert op_args("cross_entropy", options) == (("reduction", "sum"), ("ignore_index", -100),
                                                 ("label_smoothing", 0.0))
    args = op_args("sum", options)
    assert args == (("dim", 1), ("keepdim", True))  # the engine's dims=(1,) is the dim=1 a person wrote
    assert args_text(args) == "dim=1, keepdim=True"
    assert op_args("sum", {}) == ()


@pytest.mark.parametrize("text", ['{"a": 1}', '[["a"]]', '[[1, 2]]', '[["a", {"b": 1}]]', '[["a", [[1]]]]', "nope"])
def test_stored_arguments_that_are_not_plain_pairs_are_refused(text):
    with pytest.raises(ValueError):
        parse_args(text)


def _record(path, capture="structure"):
    x = engine.tensor(np.random.default_rng(0).random((4, 3)).astype(np.float32), requires_grad=True)
    y = engine.tensor(np.array([0, 1, 2, 1]))
    live = []
    unsubscribe = engine.hub.subscribe(lambda ev: live.append(ev) if isinstance(ev, OpEvent) else None)
    try:
        with engine.record(path, capture):
            for reduction in ("mean", "sum"):
                F.cross_entropy(x, y, reduction=reduction, ignore_index=1).backward()
            x.sum(dim=1, keepdim=True)
            with engine.no_grad():
                F.cross_entropy(x, y, reduction="none")  # no graph, no backward node: still its arguments
    finally:
        unsubscribe()
    return live


@pytest.mark.parametrize("capture", ["structure", "summary"])
def test_a_losss_reduction_is_replayed_with_its_op(tmp_path, capture):
    path = tmp_path / "loss.tape"
    live = _record(path, capture)
    with engine.tape.open(path) as tape:
        replayed = [ev for ev in tape.events() if isinstance(ev, OpEvent)]
    assert replayed == live
    losses = [ev for ev in replayed if ev.op == "cross_entropy"]
    assert [ev.args["reduction"] for ev in losses] == ["mean", "sum", "none"]
    assert args_text(op_args("cross_entropy", losses[1].args)) == "ignore_index=1, reduction='sum', label_smoothing=0.0"
    total = next(ev for ev in replayed if ev.op == "sum")
    assert total.args == {"dim": 1, "keepdim": True}
    assert [op_args(ev.op, ev.args) for ev in replayed] == [op_args(ev.op, ev.args) for ev in live]


def test_arguments_are_stored_once_per_node_not_per_event(tmp_path):
    path = tmp_path / "loop.tape"
    w = engine.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    opt = engine.optim.SGD([w], lr=0.1)
    with engine.record(path, "structure"):
        for _ in range(50):  # a step ends each iteration: the next one's ops have the same keys
            opt.zero_grad()
            w.sum(dim=0, keepdim=True).pow(2).sum().backward()
            opt.step()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT args FROM node_args JOIN nodes ON node = id WHERE op = 'sum'").fetchall()
        sums = conn.execute("SELECT count(*) FROM nodes WHERE op = 'sum'").fetchone()[0]
    conn.close()
    assert len(rows) == sums <= 4  # a row per node (the first iteration's keys may differ), not per event
    assert {text for (text,) in rows} == {'[["dim",0],["keepdim",true]]', '[["dim",[0,1]],["keepdim",false]]'}


def test_malformed_arguments_lose_only_their_nodes_arguments_and_are_noted(tmp_path):
    path = tmp_path / "bad.tape"
    live = _record(path)
    with sqlite3.connect(path) as conn:
        node = conn.execute("SELECT node FROM node_args JOIN nodes ON node = id WHERE op = 'sum'").fetchone()[0]
        conn.execute("UPDATE node_args SET args = '[[\"keepdim\", {\"x\": 1}]]' WHERE node = ?", (node,))
    conn.close()
    with engine.tape.open(path) as tape:
        replayed = [ev for ev in tape.events() if isinstance(ev, OpEvent)]
        notes = tape.notes
    assert [ev.op for ev in replayed] == [ev.op for ev in live]  # the tape still reads
    assert next(ev for ev in replayed if ev.op == "sum").args == {}
    assert [ev.args["reduction"] for ev in replayed if ev.op == "cross_entropy"] == ["mean", "sum", "none"]
    assert len(notes) == 1 and f"node_args: the arguments of node {node} are damaged" in notes[0]


def test_a_tape_without_the_arguments_table_still_opens(tmp_path):
    path = tmp_path / "old.tape"
    live = _record(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE node_args")
    conn.close()
    with engine.tape.open(path) as tape:
        replayed = [ev for ev in tape.events() if isinstance(ev, OpEvent)]
    assert [ev.op for ev in replayed] == [ev.op for ev in live]
    assert all(not getattr(ev, "args", {}) for ev in replayed)
