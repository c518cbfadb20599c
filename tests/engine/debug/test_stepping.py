"""Stopping and stepping: the engine thread waits at a stop; commands from the test thread move it."""

import sys
import threading
import time

import pytest

import engine
import engine.debug
from engine.debug import Breakpoint, Debugger
from tests.engine.debug.helpers import MLP, TIMEOUT, label, steppable, trainer


def start(dbg, fn, *, paused=True, **kwargs):
    """Run `fn` on an engine thread; with paused, wait for its first stop."""
    if paused:
        dbg.pause()
    run = dbg.run_callable(fn, **kwargs)
    return run, (dbg.wait_for_stop(TIMEOUT) if paused else None)


def stopped_at(dbg, fn, op_pattern: str):
    """Run `fn` until the first op matching `op_pattern`, with that breakpoint gone again: (run, stop)."""
    bid = dbg.add_breakpoint(Breakpoint.op(op_pattern))
    run, _ = start(dbg, fn, paused=False)
    stop = dbg.wait_for_stop(TIMEOUT)
    dbg.remove_breakpoint(bid)
    return run, stop


def walk(dbg, run, stop, command):
    """Send `command` at every stop until the run ends; the labels of the stops, the first included."""
    labels = [label(stop.record)]
    while True:
        command()
        stop = dbg.wait_for_stop(TIMEOUT, after=stop.index)
        if stop is None:
            break
        labels.append(label(stop.record))
    assert run.join(TIMEOUT), "the engine thread did not finish"
    assert run.exception is None, run.exception
    return labels


def stops(dbg, run, stop, command, n: int):
    """Send `command` n - 1 times, then let the run finish: the labels of the n stops, the first included."""
    labels = [label(stop.record)]
    for _ in range(n - 1):
        command()
        stop = dbg.wait_for_stop(TIMEOUT, after=stop.index)
        labels.append(label(stop.record))
    dbg.resume()
    assert run.join(TIMEOUT), "the engine thread did not finish"
    assert run.exception is None, run.exception
    return labels


def reference(steps: int = 1):
    """The steppable events of an untraced-by-stops run of the same training loop."""
    model = MLP()
    _opt, train = trainer(model, steps)
    with Debugger("structure", model=model) as dbg:
        train()
    return steppable([label(r) for r in dbg.history])


def test_step_into_visits_forward_then_backward_then_the_optimizer():
    model = MLP()
    opt, train = trainer(model, steps=2)
    dbg = Debugger("summary", model=model, optimizer=opt)
    run, first = start(dbg, train)
    visited = walk(dbg, run, first, dbg.step_into)
    assert visited == reference(2)
    keys = ["MLP.fc1/linear:0", "MLP/relu:0", "MLP/mul:0", "MLP.fc2/linear:0", "cross_entropy:0"]
    assert visited[:11] == ["fwd:" + k for k in keys] + ["bwd:" + k for k in reversed(keys)] + ["opt"]


def test_a_stop_reports_its_place_and_the_values_there():
    model = MLP()
    opt, train = trainer(model)
    dbg = Debugger("summary", model=model, optimizer=opt)
    dbg.add_breakpoint(Breakpoint.op("relu"))
    run, _ = start(dbg, train, paused=False)
    stop = dbg.wait_for_stop(TIMEOUT)
    state = dbg.state
    assert state.status == "paused" and state.phase == "forward" and state.iteration == 0
    assert stop.reason == "breakpoint" and stop.record.event.op == "relu"
    assert stop.source.function == "forward"
    value = dbg.fetch(stop.record.event.output)  # the engine thread is waiting: values are stable
    assert value.shape == (5, 6) and value.min() >= 0 and stop.record.summary.max == value.max()
    dbg.resume()
    assert run.join(TIMEOUT) and dbg.state.status == "detached"


def test_step_over_skips_the_inside_of_a_module_call():
    model = MLP()
    opt, train = trainer(model)
    dbg = Debugger("structure", model=model, optimizer=opt)
    dbg.add_breakpoint(Breakpoint.module("fc1"))
    run, _ = start(dbg, train, paused=False)
    stop = dbg.wait_for_stop(TIMEOUT)
    assert label(stop.record) == "mod:MLP.fc1:in"
    dbg.enable_breakpoint(1, False)
    visited = walk(dbg, run, stop, dbg.step_over)
    # fc1's linear runs unseen; so does fc2's (it is a nested call of MLP.forward, the current frame)
    assert visited[:5] == ["mod:MLP.fc1:in", "fwd:MLP/relu:0", "fwd:MLP/mul:0", "fwd:cross_entropy:0",
                           "bwd:cross_entropy:0"]


def test_step_over_at_top_level_skips_the_whole_model():
    model = MLP()
    x = engine.ones(2, 4)

    def step():
        z = x * 1.0
        return (model(z) - 1.0).sum()

    dbg = Debugger("structure", model=model)
    run, stop = start(dbg, step)
    assert walk(dbg, run, stop, dbg.step_over) == ["fwd:mul:0", "fwd:sub:0", "fwd:sum:0"]


def test_step_out_returns_to_the_caller():
    model = MLP()
    opt, train = trainer(model)
    dbg = Debugger("structure", model=model, optimizer=opt)
    run, stop = stopped_at(dbg, train, "MLP.fc1/linear:*")
    # out of fc1 into MLP.forward, out of that into the loop, then out of the iteration: to its optimizer step
    assert stops(dbg, run, stop, dbg.step_out, 4) == ["fwd:MLP.fc1/linear:0", "fwd:MLP/relu:0",
                                                       "fwd:cross_entropy:0", "opt"]


def test_step_out_of_a_layer_of_a_sequential_stops_at_the_next_layer():
    # Sequential.forward runs no op of its own between its layers: after the first layer's call
    # returns, the next thing that runs is the second layer's first op, and that is where step out ends
    model = engine.nn.Sequential(engine.nn.Linear(4, 6), engine.nn.Tanh(), engine.nn.Linear(6, 3))
    opt, train = trainer(model)
    dbg = Debugger("structure", model=model, optimizer=opt)
    run, stop = stopped_at(dbg, train, "Sequential.0/linear:*")
    assert stops(dbg, run, stop, dbg.step_out, 5) == [
        "fwd:Sequential.0/linear:0", "fwd:Sequential.1/tanh:0", "fwd:Sequential.2/linear:0",
        "fwd:cross_entropy:0", "opt"]


@pytest.mark.parametrize("where", ["fwd:cross_entropy:0", "bwd:cross_entropy:0", "bwd:MLP.fc1/linear:0"])
def test_step_out_at_top_level_finishes_the_iteration_at_its_optimizer_step(where):
    # a top-level forward op (the loss), the first backward node, a backward node of a layer: nothing but
    # the iteration encloses them, and stepping out of it ends where it ends, never in the next one
    model = MLP()
    opt, train = trainer(model, steps=3)
    dbg = Debugger("structure", model=model, optimizer=opt)
    run, stop = start(dbg, train)
    while label(stop.record) != where or stop.iteration != 1:
        dbg.step_into()
        stop = dbg.wait_for_stop(TIMEOUT, after=stop.index)
    dbg.step_out()
    out = dbg.wait_for_stop(TIMEOUT, after=stop.index)
    assert label(out.record) == "opt" and out.iteration == 1 and out.phase == "optimizer"
    dbg.resume()
    assert run.join(TIMEOUT) and run.exception is None


def test_step_out_at_the_optimizer_step_stays_there():
    # the optimizer step ends the iteration and nothing encloses it: a step out does not run on into the
    # next iteration's first op; it stops again at the same place, so a caller waiting for a stop gets one
    model = MLP()
    opt, train = trainer(model, steps=3)
    dbg = Debugger("structure", model=model, optimizer=opt)
    run, stop = stopped_at_optimizer_step(dbg, train)
    dbg.step_out()
    again = dbg.wait_for_stop(TIMEOUT, after=stop.index)
    assert again.index == stop.index + 1 and again.record is stop.record and again.reason == "step"
    assert dbg.state.status == "paused" and again.iteration == 0
    dbg.step_into()  # and the run goes on from there as before
    nxt = dbg.wait_for_stop(TIMEOUT, after=again.index)
    assert label(nxt.record) == "fwd:MLP.fc1/linear:0" and nxt.iteration == 1
    dbg.resume()
    assert run.join(TIMEOUT) and run.exception is None


def stopped_at_optimizer_step(dbg, train):
    """Step into iteration 0 up to its optimizer step: (run, the stop there)."""
    run, stop = start(dbg, train)
    while label(stop.record) != "opt":
        dbg.step_into()
        stop = dbg.wait_for_stop(TIMEOUT, after=stop.index)
    return run, stop


def test_run_to_phase_and_to_the_next_iteration():
    model = MLP()
    opt, train = trainer(model, steps=3)
    dbg = Debugger("structure", model=model, optimizer=opt)
    run, stop = start(dbg, train)
    phases = walk(dbg, run, stop, dbg.run_to_phase)
    assert phases == ["fwd:MLP.fc1/linear:0", "bwd:cross_entropy:0", "opt"] * 3

    dbg2 = Debugger("structure", model=model, optimizer=opt)
    run, stop = start(dbg2, train)
    seen = []
    dbg2.on_stop.append(lambda s: seen.append(s.iteration))
    assert walk(dbg2, run, stop, dbg2.run_to_next_iteration) == ["fwd:MLP.fc1/linear:0"] * 3
    assert seen == [1, 2]


def test_pause_stops_a_never_ending_loop_within_one_op():
    finish = threading.Event()
    requested = threading.Event()
    after_request = []

    def watch_ops(event):  # subscribed before the debugger: sees each op just before the debugger does
        if requested.is_set() and isinstance(event, engine.events.OpEvent):
            after_request.append(event.seq)

    def loop():
        x = engine.ones(3)
        while not finish.is_set():
            x = x * 1.0

    off = engine.hub.subscribe(watch_ops)
    try:
        dbg = Debugger("structure")
        run, _ = start(dbg, loop, paused=False)
        time.sleep(0.05)
        dbg.pause()
        requested.set()
        stop = dbg.wait_for_stop(TIMEOUT)
        assert stop is not None and stop.reason == "pause"
        assert len(after_request) <= 1 and (not after_request or stop.record.event.seq == after_request[0])
        time.sleep(0.05)
        assert dbg.state.status == "paused" and len(after_request) <= 1  # it stays stopped
        finish.set()
        dbg.resume()
        assert run.join(TIMEOUT)
    finally:
        off()
        finish.set()


def test_pause_in_pure_python_code_needs_python_pause_and_interrupt_always_works():
    finish = threading.Event()

    def spin():
        i = 0
        while not finish.is_set():
            i += 1
        return i

    dbg = Debugger("structure")
    run, _ = start(dbg, spin, paused=False, python_pause=True)
    time.sleep(0.05)
    dbg.pause()
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop.reason == "python" and stop.source.function == "spin" and stop.record is None
    finish.set()
    dbg.resume()
    assert run.join(TIMEOUT) and run.result > 0
    dbg.detach()

    finish.clear()
    dbg = Debugger("structure")
    run, _ = start(dbg, spin, paused=False)
    dbg.pause()
    assert dbg.wait_for_stop(0.2) is None  # no op boundary ever comes: the pause cannot land
    run.interrupt()
    assert run.join(TIMEOUT) and run.killed
    dbg.detach()


def test_python_pause_switched_on_while_the_code_runs_lands_in_plain_python_after_the_next_op():
    switched, finish, traced = threading.Event(), threading.Event(), []

    def work():
        x = engine.ones(3)
        while not switched.is_set():  # ops, until the switch was asked for
            x = x * 1.0
        x = x + 1.0  # the op at which the engine thread installs its trace function
        traced.append(sys.gettrace() is not None)
        i = 0
        while not finish.is_set():  # then plain Python only
            i += 1
        x = x + 1.0
        traced.append(sys.gettrace() is not None)
        return i

    dbg = Debugger("structure")
    run, _ = start(dbg, work, paused=False)
    time.sleep(0.02)
    assert run.switch_python_pause(True) and run.python_pause
    switched.set()
    deadline = time.monotonic() + TIMEOUT
    while not traced and time.monotonic() < deadline:
        time.sleep(0.01)
    assert traced == [True]
    dbg.pause()
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop is not None and stop.reason == "python" and stop.source.function == "work"
    assert run.switch_python_pause(False) and not run.python_pause  # off again: from the next op on
    finish.set()
    dbg.resume()
    assert run.join(TIMEOUT) and traced == [True, False]
    assert not run.switch_python_pause(True)  # the code has ended: nothing to switch
    assert not [s for s in engine.hub._subscribers if s.__qualname__.endswith("switch")]  # no subscriber left
    dbg.detach()


def test_interrupt_kills_a_stopped_engine_thread():
    model = MLP()
    opt, train = trainer(model, steps=100)
    dbg = Debugger("structure", model=model, optimizer=opt)
    run, _stop = start(dbg, train)
    run.interrupt()
    assert run.join(TIMEOUT) and run.killed and dbg.state.status == "detached"


def test_explicit_breakpoint_stops_only_when_a_debugger_is_attached():
    engine.debug.breakpoint()  # nothing attached: returns at once
    hits = []

    def work():
        x = engine.ones(2) * 3.0
        engine.debug.breakpoint()
        hits.append(float(x.sum()))

    dbg = Debugger("structure")
    run, _ = start(dbg, work, paused=False)
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop.reason == "explicit" and stop.source.text == "engine.debug.breakpoint()" and hits == []
    dbg.resume()
    assert run.join(TIMEOUT) and hits == [6.0]


def test_detach_releases_a_stopped_engine_thread():
    model = MLP()
    opt, train = trainer(model, steps=2)
    dbg = Debugger("structure", model=model, optimizer=opt)
    run, _stop = start(dbg, train)
    dbg.detach()
    assert run.join(TIMEOUT) and run.exception is None and not engine.hub.active


@pytest.mark.parametrize("bad", [Breakpoint("nope"), Breakpoint.module("x", on="middle"),
                                 Breakpoint.phase("later"), Breakpoint.op("")])
def test_invalid_breakpoints_are_refused(bad):
    with pytest.raises(ValueError):
        Debugger().add_breakpoint(bad)


def test_run_script_runs_a_file_as_main_with_its_arguments(tmp_path):
    script = tmp_path / "train_me.py"
    script.write_text(
        "import sys\n"
        "import engine, engine.debug\n"
        "x = engine.ones(3) * float(sys.argv[1])\n"
        "engine.debug.breakpoint()\n"
        "result = (x.sum().item(), __name__, sys.argv[1:], sys.path[0])\n"
    )
    dbg = Debugger("structure")
    run = dbg.run_script(str(script), ("2.5", "more"))
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop.reason == "explicit" and stop.source.file == str(script) and stop.source.line == 4
    dbg.resume()
    assert run.join(TIMEOUT) and run.exception is None
    assert run.result["result"] == (7.5, "__main__", ["2.5", "more"], str(tmp_path))


def test_a_pause_that_lands_at_an_op_leaves_no_line_tracing_behind():
    finish = threading.Event()

    def work():
        x = engine.ones(2)
        while not finish.is_set():
            x = x * 1.0

    dbg = Debugger("structure")
    run, _ = start(dbg, work, paused=False, python_pause=True)
    time.sleep(0.05)
    dbg.pause()
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop.reason in ("pause", "python")
    assert run.poked == []  # no frame keeps a line tracer once stopped
    finish.set()
    dbg.resume()
    assert run.join(TIMEOUT)
