"""The alerts list and the status bar in narrow places: long text ends in "…", never behind an edge."""

import pytest
from PySide6.QtWidgets import QLabel, QMainWindow

from tests.shots import shown
from widgets.alerts_panel import AlertsPanel
from widgets.status import StatusPanel

MESSAGE = ("non-finite values first appear in the output of 'log' (log:0) at /home/ada/project/examples/"
           "nan_demo.py:43 (return -(one_hot * engine.log(probs)).sum(1).mean()), iteration 5; its inputs are finite")
STATE = ("Replay paused on an alert: non-finite values first appear in the output of 'log' (log:0) at "
         "/home/ada/project/examples/nan_demo.py:43")


@pytest.mark.parametrize("width", [388, 260])
def test_the_alert_message_takes_the_width_left_and_ends_in_an_ellipsis(qtbot, width):
    # the Message column was cut off at the dock's edge, behind a horizontal scroll bar, at the default size
    panel = shown(qtbot, AlertsPanel(), width, 160)
    panel.add_row(5, "nonfinite_forward", "linear in encoder/layers/0", MESSAGE, "log:0", 220)
    room = panel.viewport().width()

    def fitted():
        header = panel.header()
        assert header.sectionViewportPosition(3) + header.sectionSize(3) <= room  # the message ends inside
        assert header.sectionSize(3) >= 0.4 * room - 1  # at least this much of a narrow panel
        assert header.sectionSize(3) >= room - sum(header.sectionSize(c) for c in range(3)) - 1

    qtbot.waitUntil(fitted)
    assert not panel.horizontalScrollBar().isVisible()
    item = panel.topLevelItem(0)
    assert item.toolTip(3) == MESSAGE and MESSAGE in item.toolTip(2)
    # the iteration and kind are whole where there is room for them
    metrics = panel.fontMetrics()
    if width == 388:
        assert panel.columnWidth(1) >= metrics.horizontalAdvance(item.text(1))


def test_a_status_note_is_shown_whole_beside_a_long_state_in_a_small_window(qtbot):
    window = QMainWindow()
    panel = StatusPanel()
    window.statusBar().addPermanentWidget(panel, 1)
    qtbot.addWidget(window)
    window.resize(1000, 200)
    window.show()
    qtbot.waitExposed(window)
    panel.set_state(STATE, "paused")
    panel.set_counters(5, "forward", None)
    note = "No node matches 'something long enough'"
    panel.set_note(note)

    def laid_out():
        assert panel.note.width() >= panel.note.fontMetrics().horizontalAdvance(note)
        assert panel.note.geometry().right() < panel.iteration.geometry().left()  # no overlap
        assert panel.state.geometry().right() < panel.note.geometry().left()

    qtbot.waitUntil(laid_out)
    assert QLabel.text(panel.note) == note
    assert QLabel.text(panel.state).endswith("\u2026")  # the state gives way, with all of it in its tooltip
    assert panel.state.toolTip() == STATE == panel.state.text()
    panel.set_note("")
    qtbot.waitUntil(lambda: panel.note.width() == 0)


@pytest.mark.parametrize("kind, text", [("nonfinite_input", "NaN/Inf (entered)"),
                                        ("nonfinite_step", "NaN/Inf (optimizer step)"),
                                        ("nonfinite_grad", "NaN/Inf (hook/.grad)")])
def test_non_finite_values_from_outside_the_graph_are_named_and_red(qtbot, kind, text):
    # the kinds for NaN that entered through the data, an optimizer step or a hook showed as raw names, in grey
    panel = shown(qtbot, AlertsPanel(), 500, 160)
    panel.add_row(3, kind, "fc1.weight", "a message", "fc1.weight", 12)
    panel.add_row(3, "vanishing_grad", "fc1.weight", "a message", "fc1.weight", 13)
    severe, mild = panel.topLevelItem(0), panel.topLevelItem(1)
    assert severe.text(1) == text
    assert severe.foreground(1).color() != mild.foreground(1).color()
