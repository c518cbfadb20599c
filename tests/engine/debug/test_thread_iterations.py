"""A debugger traces one thread: another thread's ops, steps and iteration marks (a data loader's, a second
model's) neither enter its records nor move its iteration or phase."""

import threading

import engine.nn.functional as F
from engine.debug import BackwardRecord, Breakpoint, Debugger, EventRecord, OpRecord, mark_iteration, watch
from tests.engine.debug.helpers import MLP, TIMEOUT, batch, trainer


def on_thread(fn, *args) -> None:
    """Run fn(*args) on another thread, to its end."""
    errors = []

    def main():
        try:
            fn(*args)
        except BaseException as err:  # shown by the test, not lost in the thread
            errors.append(err)

    t = threading.Thread(target=main)
    t.start()
    t.join(TIMEOUT)
    assert not t.is_alive() and errors == []


def loader(steps: int) -> None:
    """A data loader's work: normalise batches, ending each loader iteration as a loop would mark it."""
    for i in range(steps):
        x, _ = batch(seed=i)
        (x - x.mean()) / (x.std() + 1e-5)
        mark_iteration()


def test_a_second_models_steps_on_another_thread_leave_the_traced_iterations_alone():
    model, other = MLP(), MLP()
    opt, train = trainer(model)
    _, train_other = trainer(other)
    x, y = batch()
    with watch(model, optimizer=opt) as dbg:
        train(2)  # iterations 0 and 1
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)  # iteration 2 begins
        on_thread(train_other, 5)  # five whole steps of the other model, in the middle of it
        on_thread(loader, 3)
        loss.backward()
        opt.step()
        train(1)  # iteration 3
    records = list(dbg.history)
    steps = [r for r in records if isinstance(r, EventRecord) and r.phase == "optimizer"]
    assert [r.iteration for r in steps] == [0, 1, 2, 3]
    assert dbg.state.iteration == 3
    # the forward, backward and step of iteration 2 are one iteration, with no other thread's op in it
    third = [r for r in records if r.iteration == 2]
    assert {type(r) for r in third} == {OpRecord, BackwardRecord, EventRecord}
    ops = [r.event.op for r in third if isinstance(r, OpRecord)]
    assert len(ops) == len([r for r in records if r.iteration == 1 and isinstance(r, OpRecord)])
    assert "std" not in ops
    phases = [r.phase for r in third]
    assert phases == sorted(phases, key=["forward", "backward", "optimizer"].index)


def test_another_threads_ops_do_not_stop_at_a_phase_breakpoint_or_split_the_backward_phase():
    model = MLP()
    opt, _ = trainer(model)
    x, y = batch()
    in_backward = threading.Event()
    loaded = threading.Event()

    def hook(grad):  # the loader thread runs while this thread is in its backward phase
        if not in_backward.is_set():
            in_backward.set()
            threading.Thread(target=lambda: (loader(2), loaded.set())).start()
            assert loaded.wait(TIMEOUT)
        return grad

    def train():
        for _ in range(2):
            opt.zero_grad()
            out = model(x)
            out.register_hook(hook)  # runs after the loss's backward node: in the backward phase
            F.cross_entropy(out, y).backward()
            opt.step()

    dbg = Debugger("structure", model=model, optimizer=opt)
    dbg.add_breakpoint(Breakpoint.phase("backward"))
    hits = []
    dbg.on_stop.append(lambda stop: (hits.append((stop.iteration, stop.phase)), dbg.resume()))
    with dbg:
        train()
    assert loaded.is_set()
    assert hits == [(0, "backward"), (1, "backward")]
    assert dbg.state.iteration == 1


def test_mark_iteration_on_another_thread_does_not_end_the_engine_threads_iteration():
    model = MLP()
    opt, train = trainer(model)
    dbg = Debugger("structure", model=model, optimizer=opt)
    dbg.add_breakpoint(Breakpoint.op("cross_entropy"))
    run = dbg.run_callable(train, 2)
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop is not None and stop.iteration == 0
    loader(4)  # this (test) thread plays the loader: its marks are its own
    dbg.resume()
    stop = dbg.wait_for_stop(TIMEOUT, after=stop.index)
    assert stop is not None and stop.iteration == 1
    dbg.resume()
    assert run.join(TIMEOUT) and run.exception is None
    assert [r.iteration for r in dbg.history if isinstance(r, EventRecord) and r.phase == "optimizer"] == [0, 1]
