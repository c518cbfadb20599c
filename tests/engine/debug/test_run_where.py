"""EngineRun.where(): the line the engine thread runs now, read without stopping it (a pause that cannot land
in plain Python code says where the code is)."""

import threading
import time

from engine.debug import Debugger

TIMEOUT = 10


def test_where_names_the_line_of_a_python_loop_and_leaves_it_running():
    finish = threading.Event()

    def spin():
        i = 0
        while not finish.is_set():
            i += 1
        return i

    dbg = Debugger("structure")
    run = dbg.run_callable(spin)
    deadline = time.monotonic() + TIMEOUT
    at = run.where()
    while (at is None or at.function != "spin") and time.monotonic() < deadline:
        at = run.where()
    assert at.function == "spin" and at.file == __file__
    assert at.text in ("while not finish.is_set():", "i += 1")
    assert not run.done.is_set()  # it was read, not stopped
    finish.set()
    assert run.join(TIMEOUT) and run.result > 0
    assert run.where() is None  # nothing runs any more
