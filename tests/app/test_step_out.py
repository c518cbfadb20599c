"""Shift+F11 where no module call encloses the stop: it finishes the iteration, and at the optimizer step, which
ends it, it stays and says why (offscreen)."""

import pytest
from PySide6.QtCore import Qt

from tests.app.test_window import TIMEOUT, paused, press, press_and_stop, script, stops, training_loop

SHIFT = Qt.KeyboardModifier.ShiftModifier

QUIET = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    engine.manual_seed(0)
    x, y = engine.randn(32, 8), engine.randint(0, 3, (32,))
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
""" + training_loop(6)


@pytest.fixture
def window(qtbot, make_window, tmp_path):
    w = make_window()
    w.run_script(script(tmp_path, "quiet.py", QUIET))
    qtbot.waitUntil(lambda: paused(w), timeout=TIMEOUT)
    return w


def step_to(qtbot, window, phase: str, iteration: int, key: str = "") -> None:
    """F11 until paused in `phase` of `iteration` (at node `key`, where given)."""
    session = window.session
    while not (session.phase == phase and session.iteration == iteration and key in (session.model.current, "")):
        press_and_stop(qtbot, window, Qt.Key.Key_F11)


def test_step_out_at_the_optimizer_step_stays_there_and_says_why(qtbot, window):
    step_to(qtbot, window, "optimizer", 1)
    before, current = stops(window), window.session.model.current
    assert "Nothing to step out of" in window.actions["step_out"].toolTip()
    press(qtbot, window, Qt.Key.Key_F11, SHIFT)
    qtbot.waitUntil(lambda: "Nothing to step out of" in window.status_panel.note.text(), timeout=TIMEOUT)
    assert "iteration 1" in window.status_panel.note.text() and "F10" in window.status_panel.note.text()
    qtbot.wait(300)  # had it been sent, the engine would have run on by now
    assert paused(window) and stops(window) == before
    assert window.session.phase == "optimizer" and window.session.iteration == 1
    assert window.session.model.current == current
    press_and_stop(qtbot, window, Qt.Key.Key_F11)  # and F11 goes on into the next iteration as before
    assert window.session.phase == "forward" and window.session.iteration == 2


@pytest.mark.parametrize("phase, key", [("forward", "cross_entropy:0"), ("backward", "")])
def test_step_out_at_top_level_runs_to_this_iterations_optimizer_step(qtbot, window, phase, key):
    # the loss op, outside any module; the first backward node: only the iteration encloses them
    step_to(qtbot, window, phase, 1, key)
    assert "end of this iteration" in window.actions["step_out"].toolTip()
    press_and_stop(qtbot, window, Qt.Key.Key_F11, SHIFT)
    assert window.session.phase == "optimizer" and window.session.iteration == 1


def test_step_out_of_a_layer_says_it_runs_until_the_call_returns(qtbot, window):
    step_to(qtbot, window, "forward", 0, "Sequential.0/linear:0")
    assert "module call returns" in window.actions["step_out"].toolTip()
    press_and_stop(qtbot, window, Qt.Key.Key_F11, SHIFT)
    assert window.session.model.current == "Sequential.1/tanh:0" and window.session.iteration == 0
