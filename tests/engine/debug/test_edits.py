"""Runtime edits: applied on the engine thread at a safe point, visible in the next forward;
invalid ones are refused with a message and change nothing."""

import dataclasses
import threading

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import (
    Breakpoint,
    Debugger,
    EditParam,
    Freeze,
    Reinit,
    SetOptimizer,
    SetSetting,
    SwapModule,
)
from engine.events import EditEvent
from tests.engine.debug.helpers import TIMEOUT, batch


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.0)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))


def session(steps: int = 3):
    """A model training on an engine thread, stopped at the optimizer step of its first iteration."""
    engine.manual_seed(0)
    model = Net()
    opt = engine.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = batch()
    outputs = []

    def train():
        for _ in range(steps):
            opt.zero_grad()
            out = model(x)
            outputs.append(out.detach().numpy().copy())
            F.cross_entropy(out, y).backward()
            opt.step()

    events = []
    off = engine.hub.subscribe(lambda e: events.append(e) if isinstance(e, EditEvent) else None)
    dbg = Debugger("structure", model=model, optimizer=opt)
    dbg.add_breakpoint(Breakpoint.phase("optimizer"))
    run = dbg.run_callable(train)
    assert dbg.wait_for_stop(TIMEOUT).record.phase == "optimizer"
    return dbg, model, opt, run, outputs, events, off


def snapshot(model, opt):
    params = {n: p.array.copy() for n, p in model.named_parameters()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    return params, flags, groups, [type(m).__name__ for m in model.modules()]


def finish(dbg, run, off):
    dbg.remove_breakpoint(1)
    dbg.resume()
    assert run.join(TIMEOUT) and run.exception is None, run.exception
    off()


def apply(dbg, edit):
    result = dbg.edit(edit).result(TIMEOUT)  # the stopped engine thread applies it
    assert isinstance(result, EditEvent)
    return result


def test_valid_edits_take_effect_in_the_next_forward():
    dbg, model, opt, run, outputs, events, off = session()
    w2 = model.fc2.weight.array.copy()
    results = [
        apply(dbg, EditParam("fc2.weight", "scale", 0.0)),
        apply(dbg, EditParam("fc2.bias", "fill", (1.0, 2.0, 3.0), indices=((0,), (1,), (2,)))),
        apply(dbg, SetOptimizer("lr", 0.0)),
        apply(dbg, Freeze("fc1")),
    ]
    assert all(r.applied for r in results), [r.message for r in results]
    assert [e.kind for e in events] == ["param", "param", "optimizer", "freeze"]
    assert not model.fc1.weight.requires_grad and opt.param_groups[0]["lr"] == 0.0
    assert np.all(w2 != 0)  # nothing changed before the edit ran
    finish(dbg, run, off)
    # fc2 is all zeros with bias (1, 2, 3), and lr 0 keeps it there: every later output is that bias
    np.testing.assert_array_equal(outputs[1], np.tile([1.0, 2.0, 3.0], (5, 1)))
    np.testing.assert_array_equal(outputs[2], outputs[1])


def test_settings_swaps_and_reinit():
    dbg, model, _opt, run, outputs, _events, off = session(steps=2)
    old_w = model.fc1.weight
    before = old_w.array.copy()
    assert apply(dbg, SetSetting("drop", "p", 1.0)).applied  # Dropout(1): fc2 sees zeros
    assert apply(dbg, SwapModule("Net.act", "Tanh")).applied  # event-style path works too
    assert apply(dbg, Reinit("fc1")).applied
    assert model.drop.p == 1.0 and type(model.act).__name__ == "Tanh"
    assert model.fc1.weight is old_w and not np.array_equal(old_w.array, before)  # re-initialised in place
    bias = model.fc2.bias.array.copy()  # stopped after the update: the bias the next forward uses
    finish(dbg, run, off)
    np.testing.assert_array_equal(outputs[1], np.tile(bias, (5, 1)))


def test_a_swap_keeps_trained_parameters_and_the_optimizer_valid():
    dbg, model, opt, run, _outputs, _events, off = session(steps=2)
    old = model.fc2
    assert apply(dbg, SwapModule("fc2", "Linear", (("in_features", 6), ("out_features", 3)))).applied
    assert model.fc2 is not old and model.fc2.weight is old.weight
    assert any(p is model.fc2.weight for p in opt.param_groups[0]["params"])
    finish(dbg, run, off)


@pytest.mark.parametrize("edit", [
    EditParam("fc2.weight", "scale", 0.0, indices=((0, 9),)),  # out of range
    EditParam("fc2.weight", "fill", (1.0, 2.0), indices=((0, 0),)),  # one value too many
    EditParam("fc2.weight", "shred", 1.0),
    EditParam("fc9.weight", "scale", 2.0),
    EditParam("fc2.weight", "scale", "big"),
    SetOptimizer("lr", -1.0),
    SetOptimizer("lr", float("nan")),
    SetOptimizer("betas", 0.5),
    SetOptimizer("nesterov", 1.0),
    SetOptimizer("lr", 0.1, group=3),
    SetSetting("drop", "p", 1.5),
    SetSetting("fc1", "out_features", 8),
    SetSetting("nowhere", "p", 0.1),
    SwapModule("fc2", "Linear", (("in_features", 6), ("out_features", 4))),  # shapes differ
    SwapModule("fc2", "NoSuchLayer"),
    SwapModule("act", "Linear", (("in_features", 6),)),  # missing argument
    SwapModule("", "Tanh"),
    Freeze("nowhere"),
    Freeze("act"),  # no parameters
    Reinit("act"),
])
def test_invalid_edits_are_refused_and_change_nothing(edit):
    dbg, model, opt, run, _outputs, events, off = session(steps=1)
    before = snapshot(model, opt)
    result = apply(dbg, edit)
    assert not result.applied and result.message
    after = snapshot(model, opt)
    for name, value in before[0].items():
        assert after[0][name].tobytes() == value.tobytes(), name  # bit-identical
    assert after[1:] == before[1:]
    assert events[-1] == result
    finish(dbg, run, off)


def test_edits_are_plain_data():
    for edit in (EditParam("a.w", "fill", (1.0,), ((0, 1),)), SetOptimizer("lr", 0.1), Freeze("x"),
                 SwapModule("m", "Tanh", (("k", 1),)), Reinit("m"), SetSetting("m", "p", 0.2)):
        values = dataclasses.astuple(edit)
        assert all(isinstance(v, str | int | float | bool | tuple) for v in values)
        assert type(edit)(*values) == edit


def test_edits_sent_while_running_apply_between_ops_or_on_request():
    engine.manual_seed(0)
    model = Net()
    x, _ = batch()
    dbg = Debugger("structure", model=model)
    done = threading.Event()
    seen = []

    def loop():
        while not done.is_set():
            seen.append(float(model(x).sum()))

    run = dbg.run_callable(loop)
    assert dbg.edit(EditParam("fc2.weight", "scale", 0.0)).result(TIMEOUT).applied
    assert dbg.edit(EditParam("fc2.bias", "fill", 0.0)).result(TIMEOUT).applied
    done.set()
    assert run.join(TIMEOUT) and run.exception is None
    assert seen[-1] == 0.0
    pending = dbg.edit(EditParam("fc2.bias", "fill", 1.0))  # no engine thread runs: it waits...
    assert not pending.done()
    dbg.apply_edits()  # ...until someone applies it
    assert pending.result(0).applied and (model.fc2.bias.array == 1.0).all()
