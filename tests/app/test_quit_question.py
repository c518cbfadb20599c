"""Quitting, closing the window or opening something else over a live run that no tape holds asks first, once."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent

import engine.tape
from app.unsaved import DropQuestion
from tests.app.test_keyboard_ways import RUN
from tests.app.test_script_dialog import focus
from tests.app.test_window import TIMEOUT, paused, press, script

CTRL = Qt.KeyboardModifier.ControlModifier
LONG = RUN.replace("range(6)", "range(100_000)")  # runs until stopped


@pytest.fixture
def window(qtbot, make_window):
    window = make_window()
    focus(qtbot, window)
    return window


class WindowManagerClose(QCloseEvent):
    """The close event the title bar's close button (or Alt+F4) sends: from the window system, not from code."""

    def spontaneous(self) -> bool:
        return True


def question(qtbot, window) -> DropQuestion:
    qtbot.waitUntil(lambda: any(q.isVisible() for q in window.findChildren(DropQuestion)), timeout=TIMEOUT)
    [shown] = [q for q in window.findChildren(DropQuestion) if q.isVisible()]
    return shown


def answer(qtbot, shown: DropQuestion, drop: bool) -> None:
    button = shown.drop_button if drop else shown.button(DropQuestion.StandardButton.Cancel)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not shown.isVisible(), timeout=TIMEOUT)


def running(qtbot, window, tmp_path):
    """A script training live, unrecorded, some iterations in."""
    window.run_script(script(tmp_path, "long.py", LONG), run=True)
    qtbot.waitUntil(lambda: window.session.iteration >= 3, timeout=TIMEOUT)
    return window.session


def test_ctrl_q_during_a_live_run_asks_and_keep_running_keeps_it(qtbot, window, tmp_path):
    # Ctrl+Q 2,200 iterations into a live run quit at once: the whole session was gone
    session = running(qtbot, window, tmp_path)
    press(qtbot, window, Qt.Key.Key_Q, CTRL)
    shown = question(qtbot, window)
    assert "long.py is running, at iteration" in shown.text() and "not recorded" in shown.text()
    assert "Record to Tape" in shown.informativeText()  # how to keep the next one
    assert shown.drop_button.text() == "Stop and Quit"
    assert shown.defaultButton().text() == "Keep Running" and shown.escapeButton() is shown.defaultButton()
    answer(qtbot, shown, drop=False)
    assert window.isVisible() and window.session is session and session.alive
    before = session.iteration
    qtbot.waitUntil(lambda: session.iteration > before, timeout=TIMEOUT)  # it went on running meanwhile
    focus(qtbot, window)
    press(qtbot, window, Qt.Key.Key_Q, CTRL)
    answer(qtbot, question(qtbot, window), drop=True)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT)  # quit, and not asked again on the way
    assert session.join(5)  # the run stopped, not left running


def test_the_windows_close_button_asks_as_quit_does(qtbot, window, tmp_path):
    window.open_demo(epochs=50, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    event = WindowManagerClose()
    window.closeEvent(event)
    assert not event.isAccepted()  # the window stays, and asks
    shown = question(qtbot, window)
    assert "is paused, at iteration 1" in shown.text() and shown.defaultButton().text() == "Cancel"
    window.closeEvent(WindowManagerClose())  # again while it asks: the same question, not a second
    assert [q for q in window.findChildren(DropQuestion) if q.isVisible()] == [shown]
    answer(qtbot, shown, drop=False)
    assert window.isVisible() and window.session.alive
    window.closeEvent(WindowManagerClose())
    answer(qtbot, question(qtbot, window), drop=True)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT)


def test_a_run_recorded_to_a_tape_quits_without_a_question_and_its_tape_is_kept(qtbot, window, tmp_path):
    tape = str(tmp_path / "long.tape")
    window.run_script(script(tmp_path, "long.py", LONG), run=True, record=tape)
    qtbot.waitUntil(lambda: window.session.iteration >= 3, timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_Q, CTRL)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT)
    assert not window.findChildren(DropQuestion)
    with engine.tape.open(tape) as recorded:  # closed, and holding the run up to the quit
        assert recorded.iteration_count() >= 3 and recorded.meta["status"] != "recording"


def test_nothing_run_yet_quits_without_a_question(qtbot, window):
    window.open_demo(epochs=1, n=64)  # as the app starts: the demo paused on entry
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_Q, CTRL)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT)
    assert not window.findChildren(DropQuestion)


def test_opening_another_session_over_an_unrecorded_run_asks_once(qtbot, window, tmp_path):
    session = running(qtbot, window, tmp_path)
    window.actions["open_demo"].trigger()  # File > Open the Demo
    shown = question(qtbot, window)
    assert shown.windowTitle() == "Open Another Session" and shown.drop_button.text() == "Stop and Open"
    answer(qtbot, shown, drop=False)
    assert window.session is session and session.alive
    window.actions["open_demo"].trigger()
    answer(qtbot, question(qtbot, window), drop=True)
    qtbot.waitUntil(lambda: window.session is not session and paused(window), timeout=TIMEOUT)
    assert window.session.target.kind == "demo" and session.join(5)
    assert not [q for q in window.findChildren(DropQuestion) if q.isVisible()]  # not asked a second time
