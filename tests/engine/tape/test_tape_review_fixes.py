"""What a review of the tape's op arguments and optimizer names found: settings that change call after call,
damaged argument rows, the engine's internal option names, and two root modules of one class."""

from __future__ import annotations

import io
import random
import sqlite3

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
import engine.tape
from engine.events import OpEvent
from engine.tape.export import export_dot
from engine.tape.writer import MAX_ARG_SETS


def _ops(tape, op: str) -> list[OpEvent]:
    return [ev for ev in tape.events() if isinstance(ev, OpEvent) and ev.op == op]


def test_a_scheduled_setting_adds_a_few_nodes_not_one_per_call(tmp_path):
    """A dropout p scheduled per iteration and a random roll shift: past MAX_ARG_SETS sets, one node "varies"."""
    path = tmp_path / "schedule.tape"
    fc = nn.Linear(8, 4)
    opt = engine.optim.SGD(fc.parameters(), lr=0.01)
    rng = random.Random(0)
    iterations = 40
    with engine.record(path, "structure"):
        for it in range(iterations):
            x = engine.roll(engine.randn(16, 8), shifts=rng.randint(1, 15), dims=1)
            x = F.dropout(x, p=0.5 * it / iterations, training=True)
            loss = fc(x).sum(dim=1, keepdim=True).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with sqlite3.connect(path) as conn:
        nodes = dict(conn.execute("SELECT op, count(*) FROM nodes WHERE kind = 'op' GROUP BY op").fetchall())
        arg_rows = conn.execute("SELECT count(*) FROM node_args").fetchone()[0]
    conn.close()
    assert nodes["dropout"] <= MAX_ARG_SETS + 1 and nodes["roll"] <= MAX_ARG_SETS + 1
    assert sum(nodes.values()) < 3 * MAX_ARG_SETS + 20  # not ~2 rows per iteration
    assert arg_rows < 3 * MAX_ARG_SETS + 10
    with engine.tape.open(path) as tape:
        drops = _ops(tape, "dropout")
        assert len(drops) == iterations - 1  # p=0 at the first iteration runs no dropout
        assert drops[0].args == {"p": 0.5 / iterations}  # the first sets are kept as they were
        assert drops[-1].args == {"...": "varies"}  # the rest share the node marked as varying
        out = io.StringIO()
        export_dot(tape, out, iteration=iterations - 1)
    assert "dropout(...)" in out.getvalue()
    assert "sum(dim=1, keepdim=True)" in out.getvalue()


def test_settings_read_back_by_torch_names_without_the_engines_own_options(tmp_path):
    path = tmp_path / "names.tape"
    rng = np.random.default_rng(0)
    a = engine.tensor(rng.random((3, 3)).astype(np.float32) + 3 * np.eye(3, dtype=np.float32))
    x = engine.tensor(rng.random((2, 3, 4, 4)).astype(np.float32))
    with engine.record(path, "structure"):
        a.sum(dim=1, keepdim=True)
        F.dropout2d(x, 0.3, True)
        engine.logdet(a)
        engine.cdist(a, a, p=1.0)
        F.avg_pool2d(x, 2)
    with engine.tape.open(path) as tape:
        args = {ev.op: ev.args for ev in tape.events() if isinstance(ev, OpEvent)}
    assert args["sum"] == {"dim": 1, "keepdim": True}  # a person wrote dim=1, not dims=(1,)
    assert args["dropout"] == {"p": 0.3}  # not channels=True
    assert args["slogdet"] == {}  # not signed=False, op='logdet'
    assert args["cdist"] == {"p": 1.0}  # not mm=
    assert args["avg_pool2d"]["kernel_size"] == (2, 2) and "kernel" not in args["avg_pool2d"]


@pytest.mark.parametrize("value", ['"x" ', "[1]", "1"], ids=["long string", "long list", "bad name"])
def test_a_hostile_argument_row_costs_that_node_its_arguments_only(tmp_path, value):
    path = tmp_path / "hostile.tape"
    x = engine.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with engine.record(path, "structure"):
        x.sum(dim=1, keepdim=True).mean(dim=0).backward()
    if value.startswith('"'):
        row = '[["dim", "' + "x" * (1 << 20) + '"]]'  # a megabyte label
    elif value == "[1]":
        row = '[["dim", [' + ",".join(["1"] * 17) + "]]]"
    else:
        row = '[["dim\\ndigraph", 1]]'
    with sqlite3.connect(path) as conn:
        node = conn.execute("SELECT id FROM nodes WHERE op = 'sum'").fetchone()[0]
        conn.execute("UPDATE node_args SET args = ? WHERE node = ?", (row, node))
    conn.close()
    with engine.tape.open(path) as tape:
        assert _ops(tape, "sum")[0].args == {}
        assert _ops(tape, "mean")[0].args == {"dim": 0, "keepdim": False}
        out = io.StringIO()
        export_dot(tape, out)
        notes = tape.notes
    assert len(out.getvalue()) < 10_000 and "digraph\n" not in out.getvalue()[10:]
    assert len(notes) == 1 and notes[0].startswith(f"node_args: the arguments of node {node} are damaged")


def test_two_root_modules_of_one_class_name_the_second_optimizers_parameters_by_path(tmp_path):
    """A GAN's G and D both Sequential: D, called second, is "Sequential_2", so 'Adam:Sequential.0.weight' could
    be either's no more and D's are named by their path."""
    path = tmp_path / "gan.tape"
    g = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    d = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    og, od = engine.optim.Adam(g.parameters(), lr=1e-3), engine.optim.Adam(d.parameters(), lr=1e-3)
    with engine.record(path, "summary"):
        for _ in range(3):
            z = engine.randn(16, 4)
            od.zero_grad()
            d(g(z).detach()).mean().backward()
            od.step()
            og.zero_grad()
            (-d(g(z)).mean()).backward()
            og.step()
    with engine.tape.open(path) as tape:
        names = [set(ev.weight_norms) for _, ev in tape.optimizer_steps()]
        end = tape.parameters()
    theirs = {f"Adam:Sequential_2.{n}" for n, _ in d.named_parameters()}
    assert names == [theirs, {"0.weight", "0.bias", "2.weight", "2.bias"}] * 3
    for n, p in d.named_parameters():
        assert end[f"Adam:Sequential_2.{n}"].tensor == p.id
    for name, p in g.named_parameters():
        assert end[name].tensor == p.id


def test_a_second_optimizer_names_the_right_tensors_when_some_lack_gradients_and_groups_grow(tmp_path):
    path = tmp_path / "partial.tape"
    main = engine.tensor(np.ones(3, np.float32), requires_grad=True)
    a = engine.tensor(np.full(3, 2.0, np.float32), requires_grad=True)
    b = engine.tensor(np.full(3, 3.0, np.float32), requires_grad=True)
    c = engine.tensor(np.full(3, 4.0, np.float32), requires_grad=True)
    first, second = engine.optim.SGD([main], lr=0.1), engine.optim.SGD([a, b], lr=0.1)
    with engine.record(path, "values"):
        for step, used in enumerate([(a, b), (b,), (a, b), (a, b, c)]):
            if step == 3:
                second.add_param_group({"params": [c]})
            for opt, ps in ((first, (main,)), (second, used)):
                opt.zero_grad()
                for p in (a, b, c):
                    p.grad = None
                sum((p * p).sum() for p in ps).backward()
                opt.step()
    with engine.tape.open(path) as tape:
        steps = [set(ev.weight_norms) for _, ev in tape.optimizer_steps()][1::2]
        end = tape.parameters()
    # named by the variables that hold them (engine.debug.script_names), each tensor by its own
    assert steps == [{"SGD#2:a", "SGD#2:b"}, {"SGD#2:b"}, {"SGD#2:a", "SGD#2:b"}, {"SGD#2:a", "SGD#2:b", "SGD#2:c"}]
    for name, p in (("SGD#2:a", a), ("SGD#2:b", b), ("SGD#2:c", c)):
        assert end[name].tensor == p.id
        np.testing.assert_array_equal(end[name].value, p.array)
