"""A script's life in the window: a failing iteration shown as far as it got, a syntax error found when the script
is loaded, and a pause in a loop that calls no engine op, which says where the code is and offers a way out."""

import os

from PySide6.QtCore import Qt

from app.session import LiveSession, Target
from tests.app.test_window import TIMEOUT, paused, press, script, status

SHAPE_ERROR = """
    import engine, engine.nn as nn, engine.nn.functional as F
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    for it in range(10):
        x = engine.randn(4, 8 if it != 3 else 9)
        y = engine.randint(0, 2, (4,))
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
"""


def test_a_failed_iteration_is_shown_as_far_as_it_got_not_over_the_one_before(qtbot, window, tmp_path):
    path = script(tmp_path, "shape_err.py", SHAPE_ERROR)
    assert window.run_script(path, run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "Sequential.0/linear:failed" in (window.canvas.view.keys if window.canvas.view else ()),
                    timeout=TIMEOUT)
    view = window.canvas.view
    ops = [view.label[i] for i in range(len(view)) if view.kind[i] == 0]
    assert ops == ["linear"]  # iteration 3 ran one op, the one that raised: not iteration 2's graph beside it
    assert [view.label[i] for i in range(len(view)) if view.kind[i] != 0].count("input") == 1
    assert view.sublabel[view.node_of["Sequential.0/linear:failed"]] == "raised"  # not "scalar"
    # the timeline and the status bar name the same iteration: the one that failed
    qtbot.waitUntil(lambda: window.timeline.where_text().startswith("iteration 3/3 \u00b7 forward"), timeout=TIMEOUT)
    assert window.status_panel.iteration.text().split()[:2] == ["iteration", "3"]
    assert window.timeline.view.markers("alert").size == 1  # the error, at the op that raised
    assert window.source_view.line == 9
    assert window.source_view.current_line_text().endswith("loss = F.cross_entropy(model(x), y)")


def test_a_syntax_error_is_reported_when_the_script_is_loaded_not_after_run(qtbot, window, tmp_path):
    path = script(tmp_path, "syntax_err.py", """
        import engine
        x = engine.randn(3
        print(x
    """)
    assert window.run_script(path)  # paused on entry, as a script opens: F5 never pressed
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert window.session.run is None  # compiled, never run
    assert status(window) == "Not run, it does not compile: SyntaxError: '(' was never closed (syntax_err.py:4)"
    message = window.message_bar.text()
    assert "syntax_err.py does not compile: SyntaxError: '(' was never closed (syntax_err.py:4)" in message
    assert "line 4)" not in message  # the place is said once
    assert "SyntaxError: '(' was never closed" in window.output.text()
    assert window.source_view.line == 4 and window.source_view.current_line_text().endswith("print(x")
    assert not window.actions["resume"].isEnabled() and not window.actions["step_into"].isEnabled()
    assert window.actions["restart"].isEnabled()
    assert "does not compile" in window.graph.hint.text()

    with open(path, "w") as f:  # fixed: Restart compiles it again and opens it paused on entry
        f.write("import engine\nx = engine.randn(3)\nprint(x)\n")
    restart = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    press(qtbot, window, Qt.Key.Key_F5, restart)
    qtbot.waitUntil(lambda: window.session.ended is None and paused(window), timeout=TIMEOUT)
    assert status(window).startswith("Paused on entry")


def test_a_syntax_error_of_a_script_never_starts_its_engine_thread(qtbot, sessions, tmp_path):
    path = script(tmp_path, "bad.py", "def f(:\n    pass\n")
    s = LiveSession(Target.script(path), record=str(tmp_path / "bad.tape"))
    sessions.append(s)
    s.start()
    qtbot.waitUntil(lambda: s.drain() is not None or s.ended is not None, timeout=TIMEOUT)
    assert s.run is None and s.recording is None and not os.path.exists(tmp_path / "bad.tape")
    assert s.status == "failed" and not s.ended.ran
    assert (s.ended.error.file, s.ended.error.line) == (path, 1)
    assert s.ended.error.message == "SyntaxError: invalid syntax"


LOOP = """
    import engine
    x = engine.randn(3, requires_grad=True)
    (x * 2).sum().backward()
    print("entering loop")
    i = 0
    while True:
        i += 1
"""


def test_a_pause_in_a_loop_without_ops_says_where_the_code_is(qtbot, window, tmp_path):
    path = script(tmp_path, "forever.py", LOOP)
    assert window.run_script(path, run=True)
    qtbot.waitUntil(lambda: "entering loop" in window.output.text(), timeout=TIMEOUT)
    window.command("pause")
    qtbot.waitUntil(lambda: status(window).startswith("Pause is waiting for an op"), timeout=TIMEOUT)
    assert "running plain Python at forever.py:" in status(window) and "Shift+F5 stops" in status(window)
    assert window.source_view.line in (7, 8)  # `while True:` or `i += 1`, as the loop goes round
    assert window.message_bar.text().startswith("Pause is waiting: forever.py is running plain Python")
    assert "Debug > Break in Python Code" in window.message_bar.text()
    assert window.session.run.join(0) is False  # still running: it was looked at, not stopped

    # Break in Python Code, turned on while the pause waits, restarts the run so that a pause lands in the loop
    first = window.session
    window.actions["break_in_python"].trigger()
    qtbot.waitUntil(lambda: window.session is not first and window.session.python_pause, timeout=TIMEOUT)
    assert not window.message_bar.text().startswith("Pause is waiting")
    qtbot.waitUntil(lambda: "entering loop" in window.output.text().rsplit("Restart", 1)[-1], timeout=TIMEOUT)
    window.command("pause")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert status(window) in ("Paused in plain Python code at forever.py:7", "Paused in plain Python code at "
                              "forever.py:8")
    assert window.source_view.line in (7, 8)
    window.stop()
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert window.session.status == "stopped"


def test_break_in_python_code_is_not_kept_from_one_start_of_the_app_to_the_next(make_window):
    # it slows every run; kept in the settings, a later session paused in plain Python code with nothing saying why
    first = make_window()
    first.actions["break_in_python"].trigger()
    assert first.break_in_python
    first.close()
    assert not make_window().break_in_python  # the same settings file


OPS_THEN_LOOP = """
    import os, engine
    x = engine.randn(3)
    while not os.path.exists(os.environ["TAPESCOPE_TEST_FLAG"]):  # ops, until the test has switched
        x = x * 1.0
    x = x + 1.0
    print("entering loop")
    i = 0
    while True:
        i += 1
"""


def test_break_in_python_turned_on_while_a_run_goes_on_takes_effect_without_a_restart(qtbot, window, tmp_path,
                                                                                      monkeypatch):
    flag = tmp_path / "switched"
    monkeypatch.setenv("TAPESCOPE_TEST_FLAG", str(flag))
    path = script(tmp_path, "ops_then_loop.py", OPS_THEN_LOOP)
    assert window.run_script(path, run=True)
    qtbot.waitUntil(lambda: window.session.run is not None and window.session.status == "running", timeout=TIMEOUT)
    first = window.session
    window.actions["break_in_python"].trigger()
    assert window.session is first and first.python_pause  # the same run goes on
    assert "Break in Python Code is on from this run's next op" in window.output.text()
    flag.write_text("")
    qtbot.waitUntil(lambda: "entering loop" in window.output.text(), timeout=TIMEOUT)
    window.command("pause")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert window.session is first and status(window) in (
        "Paused in plain Python code at ops_then_loop.py:9", "Paused in plain Python code at ops_then_loop.py:10")
    window.actions["break_in_python"].trigger()  # off again, for the window's next tests
    window.stop()
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
