"""Breakpoints of every kind, hit counts, enable/disable; commands from another thread under load."""

import itertools
import threading

import numpy as np

import engine
from engine.debug import Breakpoint, Debugger
from tests.engine.debug import helpers
from tests.engine.debug.helpers import MLP, TIMEOUT, label, trainer


def stops_with(*specs, steps: int = 2, capture: str = "structure", train_fn=None, predicate=None):
    """Run a training loop with these breakpoints, resuming at every stop; the stops seen and the debugger."""
    model = MLP()
    opt, train = trainer(model, steps)
    dbg = Debugger(capture, model=model, optimizer=opt)
    ids = [dbg.add_breakpoint(s) for s in specs]
    if predicate is not None:
        ids.append(dbg.add_predicate(predicate))
    seen = []

    def on_stop(stop):
        seen.append(stop)
        dbg.resume()  # callbacks run on the engine thread and may send commands

    dbg.on_stop.append(on_stop)
    run = dbg.run_callable(train_fn or train)
    assert run.join(TIMEOUT) and run.exception is None, run.exception
    return seen, dbg, ids


def test_op_breakpoints_match_name_or_key_globs_and_count_hits():
    seen, dbg, (bid,) = stops_with(Breakpoint.op("lin*"))
    assert [label(s.record) for s in seen] == ["fwd:MLP.fc1/linear:0", "fwd:MLP.fc2/linear:0"] * 2
    assert all(s.reason == "breakpoint" and s.breakpoint == bid for s in seen)
    assert dbg.list_breakpoints()[0].hits == 4
    seen, _, _ = stops_with(Breakpoint.op("MLP.fc2/*", on="backward"))
    assert [label(s.record) for s in seen] == ["bwd:MLP.fc2/linear:0"] * 2


def test_skip_passes_the_first_hits():
    seen, dbg, _ = stops_with(Breakpoint.op("relu", skip=1), steps=3)
    assert [s.iteration for s in seen] == [1, 2] and dbg.list_breakpoints()[0].hits == 3


def test_module_breakpoints_on_enter_or_exit():
    seen, _, _ = stops_with(Breakpoint.module("fc2", on="exit"), Breakpoint.module("MLP.fc1"), steps=1)
    assert [label(s.record) for s in seen] == ["mod:MLP.fc1:in", "mod:MLP.fc2:out"]


def test_iteration_and_phase_breakpoints():
    seen, _, _ = stops_with(Breakpoint.iteration(1), steps=3)
    assert [(label(s.record), s.iteration) for s in seen] == [("fwd:MLP.fc1/linear:0", 1)]
    seen, _, _ = stops_with(Breakpoint.phase("backward"), Breakpoint.phase("optimizer"), steps=2)
    assert [label(s.record) for s in seen] == ["bwd:cross_entropy:0", "opt"] * 2


def test_stops_at_module_boundaries_and_optimizer_steps_name_the_users_line():
    seen, _, _ = stops_with(Breakpoint.module("MLP.fc2"), Breakpoint.phase("optimizer"), steps=1)
    assert [label(s.record) for s in seen] == ["mod:MLP.fc2:in", "opt"]
    fc2, opt = (s.source for s in seen)
    assert fc2.file == helpers.__file__ and fc2.text == "return self.fc2(h * 2.0)"
    assert opt.file == helpers.__file__ and opt.text == "opt.step()" and opt.function == "train"


def test_disabled_breakpoints_do_not_stop_and_can_come_back():
    model = MLP()
    opt, train = trainer(model, steps=1)
    dbg = Debugger("structure", model=model, optimizer=opt)
    bid = dbg.add_breakpoint(Breakpoint.op("relu"))
    dbg.enable_breakpoint(bid, False)
    assert dbg.run_callable(train).join(TIMEOUT) and dbg.state.stop is None
    dbg.enable_breakpoint(bid)
    run = dbg.run_callable(train)
    assert dbg.wait_for_stop(TIMEOUT).record.event.op == "relu"
    dbg.resume()
    assert run.join(TIMEOUT)
    info = dbg.list_breakpoints()[0]
    assert info.enabled and info.hits == 1


def test_value_conditions_on_outputs_and_gradients():
    def train_with_spike():
        x = engine.tensor(np.array([1.0, 2.0, 50.0], np.float32), requires_grad=True)
        y = (x * 3.0).log()
        (y * y).sum().backward()
        z = (x - 1.0).log()  # log(0): -inf; max |x| looks at the finite values only
        return z

    seen, _, _ = stops_with(Breakpoint.max_abs(100.0, on="output"), train_fn=train_with_spike)
    assert [label(s.record) for s in seen] == ["fwd:mul:0"]  # 150; later values stay below 100
    seen, _, _ = stops_with(Breakpoint.nonfinite(), train_fn=train_with_spike)
    assert [label(s.record) for s in seen] == ["fwd:log:1"]
    seen, _, _ = stops_with(Breakpoint.norm(5.0, on="grad"), train_fn=train_with_spike)
    assert [label(s.record) for s in seen] and all(s.record.phase == "backward" for s in seen)
    assert all(max(g.norm for g in s.record.grad_inputs if g is not None) > 5.0 for s in seen)


def test_value_conditions_limited_to_the_ops_a_glob_names():
    def train():
        x = engine.tensor(np.array([1.0, 2.0, 50.0], np.float32), requires_grad=True)
        big = x * 3.0  # 150: over the threshold, but not an op the breakpoint names
        y = big.exp().log()  # exp(150) overflows to inf in float32; log gives it back as inf
        (y * 1.0).sum().backward()

    seen, _, _ = stops_with(Breakpoint.max_abs(100.0, on="output", pattern="log"), train_fn=train)
    assert seen == []  # log's output holds +inf and 3, 6: its finite max |x| is 6
    seen, _, _ = stops_with(Breakpoint.nonfinite(on="output", pattern="log*"), train_fn=train)
    assert [label(s.record) for s in seen] == ["fwd:log:0"]  # exp's inf came first, but exp is not named
    seen, _, _ = stops_with(Breakpoint.max_abs(100.0, on="output", pattern="mul*"), train_fn=train)
    assert [label(s.record) for s in seen] == ["fwd:mul:0"]
    seen, _, _ = stops_with(Breakpoint.norm(0.0, on="grad", pattern="exp"), train_fn=train)
    assert {s.record.event.op for s in seen} == {"exp"} and all(s.record.phase == "backward" for s in seen)


def test_predicate_breakpoints_see_each_record():
    seen, _, _ = stops_with(predicate=lambda rec: rec.phase == "forward" and rec.event.output_shape == (5, 3))
    assert [label(s.record) for s in seen] == ["fwd:MLP.fc2/linear:0"] * 2


def test_thousands_of_commands_from_another_thread_are_neither_lost_nor_deadlocking():
    n = 2000
    x = engine.ones(4)
    done = threading.Event()

    def loop():
        y = x
        while not done.is_set():
            y = y * 1.0

    dbg = Debugger("structure")
    dbg.pause()
    run = dbg.run_callable(loop)
    first = dbg.wait_for_stop(TIMEOUT)
    stops = []
    dbg.on_stop.append(stops.append)

    def sender():
        for i in range(n):
            if i % 500 == 250:
                dbg.pause()  # asynchronous pauses mixed in must not eat a step
            dbg.step_into()

    senders = [threading.Thread(target=sender) for _ in range(2)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(TIMEOUT)
    last = first
    while len(stops) < 2 * n:  # each step command gives exactly one more stop
        nxt = dbg.wait_for_stop(TIMEOUT, after=last.index)
        assert nxt is not None, f"stuck after {len(stops)} of {2 * n} stops"
        last = nxt
    assert dbg.wait_for_stop(0.05, after=last.index) is None  # and no more than that
    seqs = [s.record.event.seq for s in stops]
    assert len(stops) == 2 * n and all(b > a for a, b in itertools.pairwise(seqs))
    assert [s.index for s in stops] == list(range(first.index + 1, first.index + 2 * n + 1))
    done.set()
    dbg.resume()
    assert run.join(TIMEOUT)
