"""The breakpoints form and the alerts list as a person hunting a NaN meets them: bad input gets one
clear line, numbers read back as typed, a long path does not crowd out the alert's message."""

from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt

from engine.debug.breakpoints import Breakpoint, BreakpointInfo
from tests.shots import shown
from widgets.alerts_panel import AlertsPanel
from widgets.breakpoints_panel import BreakpointsPanel

PATH = "/home/ada/project/examples/nan_demo.py"
MESSAGE = (f"non-finite values first appear in the output of 'log' (log:0) at {PATH}:43 "
           "(return -(one_hot * engine.log(probs)).sum(1).mean()), iteration 5; its inputs are finite")


@pytest.fixture
def panel(qtbot):
    return shown(qtbot, BreakpointsPanel(), 360, 420)


def fill(qtbot, panel, kind: str, value: str) -> None:
    """Press Add…, pick the kind, type the value and press the form's Add."""
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    editor = panel.editor
    editor.kind.setCurrentIndex(editor.kind.findData(kind))
    editor.value.clear()
    qtbot.keyClicks(editor.value, value)
    qtbot.mouseClick(editor.ok, Qt.MouseButton.LeftButton)


@pytest.mark.parametrize("typed", ["99999999999999999999999", "\u00b2", "-1", "1.5"])
def test_an_absurd_or_odd_iteration_is_refused_in_one_clear_line(qtbot, panel, typed):
    # a superscript two passed str.isdigit and failed in float() with "could not convert string to float";
    # 10**23 was taken and listed as "iteration 1e+23"
    added = []
    panel.addRequested.connect(added.append)
    fill(qtbot, panel, "iteration", typed)
    assert added == []
    error = panel.editor.error
    assert error.isVisible()
    assert error.text() == f"iteration must be a whole number from 0 to 1,000,000,000, got {typed!r}"


def test_an_empty_threshold_asks_for_one(qtbot, panel):
    added = []
    panel.addRequested.connect(added.append)
    fill(qtbot, panel, "max_abs", "")
    assert added == [] and panel.editor.error.text() == "type a threshold, e.g. 50 or 1e3"


def test_the_value_row_is_named_for_what_it_holds(qtbot, panel):
    # it read "value" for an iteration number and for a threshold alike
    editor = panel.editor
    label = editor._form.labelForField(editor.value)
    for kind, name in (("max_abs", "threshold"), ("norm", "threshold"), ("iteration", "iteration")):
        editor.kind.setCurrentIndex(editor.kind.findData(kind))
        assert label.text() == name


@pytest.mark.parametrize("spec, text", [
    (Breakpoint.iteration(1234567), "iteration 1234567"),
    (Breakpoint.max_abs(123456789, "output"), "max |x| > 123456789  (output)"),
    (Breakpoint.norm(0.1), "L2 norm > 0.1  (any)"),
    (Breakpoint.max_abs(50, "output"), "max |x| > 50  (output)"),
])
def test_numbers_are_listed_and_edited_as_typed(qtbot, panel, spec, text):
    # "%g" listed 1234567 as "iteration 1.23457e+06", and Edit… then Save turned 123456789 into 123457000
    # (or refused the iteration it had filled in itself)
    panel.set_breakpoints([BreakpointInfo(1, spec.validate(), True, 0)])
    assert panel.rows()[0][0] == text
    replaced = []
    panel.replaceRequested.connect(lambda bid, s: replaced.append(s))
    panel.select(1)
    qtbot.mouseClick(panel.edit_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.editor.ok, Qt.MouseButton.LeftButton)
    assert not panel.editor.error.isVisible(), panel.editor.error.text()
    assert replaced == []  # saved unchanged: nothing to replace


def test_a_threshold_can_be_limited_to_the_ops_a_glob_names(qtbot, panel):
    # "max |x| > 50 on the logits" stopped first at log, whose output reaches -52.7: a threshold watched
    # every op, and the form had no place to say which
    added = []
    panel.addRequested.connect(added.append)
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    editor = panel.editor
    editor.kind.setCurrentIndex(editor.kind.findData("max_abs"))
    assert editor.pattern.isVisible() and editor.pattern.placeholderText().startswith("optional")
    qtbot.keyClicks(editor.pattern, "*linear*")
    qtbot.keyClicks(editor.value, "50")
    qtbot.mouseClick(editor.ok, Qt.MouseButton.LeftButton)
    assert added == [Breakpoint("max_abs", "*linear*", "output", 50.0)]
    panel.set_breakpoints([BreakpointInfo(1, added[0], True, 0)])
    assert panel.rows()[0][0] == "max |x| > 50 in *linear*  (output)"
    fill(qtbot, panel, "iteration", "3")  # an iteration has no pattern, whatever the field held
    assert added[-1] == Breakpoint.iteration(3).validate()


def test_a_skip_count_says_which_hit_stops_and_a_disabled_breakpoint_reads_as_off(qtbot, panel):
    skipping = Breakpoint("max_abs", "", "output", 50.0, 2).validate()
    panel.set_breakpoints([BreakpointInfo(1, skipping, True, 0), BreakpointInfo(2, Breakpoint.op("log").validate(),
                                                                                 False, 4)])
    assert panel.rows()[0][0] == "max |x| > 50  (output), stops at hit 3 (skips 2)"
    on, off = panel.list.topLevelItem(0), panel.list.topLevelItem(1)
    assert not on.font(0).italic() and off.font(0).italic() and off.font(1).italic()
    assert off.foreground(0).color() != on.foreground(0).color()  # greyed: a breakpoint that stops nothing now
    assert "Disabled" in off.toolTip(0)


def test_select_none_takes_the_selection_back(qtbot, panel):
    panel.set_breakpoints([BreakpointInfo(1, Breakpoint.op("log").validate(), True, 2)])
    panel.select(1)
    assert panel.current_id() == 1 and panel.edit_button.isEnabled()
    panel.select(None)
    assert panel.current_id() is None and not panel.list.selectedItems()
    assert not panel.edit_button.isEnabled()


def test_an_alert_row_names_its_file_by_base_name_and_its_tooltip_in_full(qtbot):
    # the folder ate the room of the message; the row now says "at nan_demo.py:43"
    alerts = AlertsPanel()
    qtbot.addWidget(alerts)
    alerts.resize(900, 160)
    alerts.show()
    alert = SimpleNamespace(iteration=5, kind="nonfinite_forward", op="log", module="", message=MESSAGE,
                            key="log:0", seq=220, forward_seq=0, file=PATH, line=43)
    alerts.add_alerts([alert])
    item = alerts.topLevelItem(0)
    assert item.text(3) == MESSAGE.replace(PATH, "nan_demo.py")
    assert "/home/ada" not in item.text(3) and "at nan_demo.py:43 (return" in item.text(3)
    assert item.toolTip(3) == MESSAGE
    alerts.add_row(5, "error", "linear", "ShapeError: linear: input has 4 features")  # no file: as given
    assert alerts.messages()[-1] == "ShapeError: linear: input has 4 features"


def test_a_long_note_is_whole_beside_a_short_state(qtbot):
    # the breakpoint's note was cut at 360 pixels ("... max |x| 52.66 i…") with half the bar empty
    from widgets.status import NOTE_WIDTH, StatusPanel

    panel = shown(qtbot, StatusPanel(), 1400, 24)
    panel.set_state("Paused by a breakpoint at op log in the top level", "paused")
    note = "Breakpoint: max |x| > 50 (output) \u00b7 hit 1 \u00b7 max |x| 52.66 in the output, iteration 4"
    panel.set_note(note)
    whole = panel.note.fontMetrics().horizontalAdvance(note)
    assert whole > NOTE_WIDTH

    def laid_out():
        assert panel.note.width() >= whole
        assert panel.state.geometry().right() < panel.note.geometry().left()
        assert panel.note.geometry().right() < panel.iteration.geometry().left()

    qtbot.waitUntil(laid_out)
    panel.set_state("Paused on an alert: " + "non-finite values first appear " * 8, "paused")  # a long state
    qtbot.waitUntil(lambda: panel.note.width() == NOTE_WIDTH)
