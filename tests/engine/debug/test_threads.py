"""Only the engine thread of a run is traced: other threads' ops neither stop nor enter the history."""

import engine
from engine.debug import Debugger
from tests.engine.debug.helpers import MLP, TIMEOUT, trainer


def test_ops_on_another_thread_do_not_stop_or_get_recorded_while_the_engine_is_paused():
    model = MLP()
    opt, train = trainer(model)
    dbg = Debugger("summary", model=model, optimizer=opt)
    dbg.pause()
    run = dbg.run_callable(train)
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop is not None
    seen = len(dbg.history)
    # the test thread plays the GUI checking shapes: it must not block at the pending stop
    y = (engine.ones(3, requires_grad=True) * 2).sum()
    y.backward()
    assert len(dbg.history) == seen
    dbg.resume()
    assert run.join(TIMEOUT) and run.exception is None
    dbg.detach()
