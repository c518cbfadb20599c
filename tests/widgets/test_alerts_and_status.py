"""The alerts list and the status bar in narrow places: long text ends in "…", never behind an edge."""

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QLabel, QMainWindow

from tests.shots import shown
from widgets.alerts_panel import KEY, AlertsPanel
from widgets.status import StatusPanel
from widgets.timeline import RULER, Timeline

MESSAGE = ("non-finite values first appear in the output of 'log' (log:0) at /home/ada/project/examples/"
           "nan_demo.py:43 (return -(one_hot * engine.log(probs)).sum(1).mean()), iteration 5; its inputs are finite")
STATE = ("Replay paused on an alert: non-finite values first appear in the output of 'log' (log:0) at "
         "/home/ada/project/examples/nan_demo.py:43")


@pytest.mark.parametrize("width", [388, 260])
def test_the_alert_message_takes_the_width_left_and_ends_in_an_ellipsis(qtbot, width):
    # the Message column was cut off at the dock's edge, behind a horizontal scroll bar, at the default size
    panel = shown(qtbot, AlertsPanel(), width, 160)
    panel.add_row(5, "nonfinite_forward", "linear in encoder/layers/0", MESSAGE, "log:0", 220)
    rows = panel.list
    room = rows.viewport().width()

    def fitted():
        header = rows.header()
        assert header.sectionViewportPosition(3) + header.sectionSize(3) <= room  # the message ends inside
        assert header.sectionSize(3) >= 0.25 * room - 1  # at least this much of a narrow panel
        assert header.sectionSize(3) >= room - sum(header.sectionSize(c) for c in range(3)) - 1

    qtbot.waitUntil(fitted)
    assert not rows.horizontalScrollBar().isVisible()
    item = panel.topLevelItem(0)
    assert item.toolTip(3) == MESSAGE and MESSAGE in item.toolTip(2)
    # the iteration and kind are whole where there is room for them
    metrics = rows.fontMetrics()
    if width == 388:
        assert rows.columnWidth(1) >= metrics.horizontalAdvance(item.text(1))


def test_a_parameters_name_is_whole_in_the_default_dock(qtbot):
    # "Where" read "fc2.…" beside "exploding gradient" in a dock 350 pixels wide: the message took the room,
    # though the detail under the list shows it whole
    panel = shown(qtbot, AlertsPanel(), 350, 190)
    panel.add_row(2, "exploding_grad", "fc2.weight", "gradient norm of 'fc2.weight' is 1.68e+03, iteration 2",
                  "fc2.weight")
    panel.add_row(2, "large_update", "fc3", "the updates of layer 'fc3' are 16x its weights, iteration 2", "fc3")
    metrics = panel.list.fontMetrics()
    qtbot.waitUntil(lambda: panel.list.columnWidth(2) >= metrics.horizontalAdvance("fc2.weight"))
    assert panel.list.columnWidth(1) >= metrics.horizontalAdvance("learning rate too high")


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


LR10 = [  # the alerts of an MLP trained at lr=10, as the window lists them
    (2, "exploding_grad", "fc2.weight", "gradient norm of 'fc2.weight' is 1.68e+03, above 1000, in layer 'fc2', "
     "iteration 2: the updates will throw the weights far off. Try a smaller learning rate, gradient clipping "
     "(engine.nn.utils.clip_grad_norm_) or normalisation layers", "fc2.weight"),
    (2, "large_update", "fc3", "the updates of layer 'fc3' are 16x its weights for 3 steps, iteration 2 (healthy "
     "training is near 0.001x): the learning rate (10) is far too high; try one 10 to 100 times smaller", "fc3"),
    (3, "dead_relu", "relu in MLP", "96% of the units of 'relu' (MLP/relu:0) in module 'MLP' are zero for the whole "
     "batch, iteration 3: they pass no gradient back, so the layers before them stop learning", "MLP/relu:0"),
    (3, "large_update", "fc2", "the updates of layer 'fc2' are 38x its weights, iteration 3: the learning rate (10) "
     "is far too high", "fc2"),
]


def test_the_list_keeps_its_rows_in_view_above_the_detail(qtbot):
    # at the default window size two rows showed; the third hid behind the detail area
    panel = shown(qtbot, AlertsPanel(), 350, 190)
    for row in LR10:
        panel.add_row(*row)
    rows = panel.list
    detail = panel.detail.geometry()

    def in_view():
        bottom = rows.mapTo(panel, rows.viewport().geometry().bottomLeft()).y()
        assert bottom < detail.top()
        for i in range(len(LR10)):
            rect = rows.visualItemRect(panel.topLevelItem(i))  # (empty for a row out of view)
            assert not rect.isEmpty() and rect.bottom() <= rows.viewport().height(), i

    qtbot.waitUntil(in_view)
    lines = panel.detail.fontMetrics().lineSpacing()
    assert detail.height() >= 3 * lines  # what was found, and the start of what to try
    assert panel.detail_text().startswith("gradient norm of 'fc2.weight' is 1.68e+03, above 1000, in layer 'fc2', "
                                          "iteration 2\n")
    # the person's drag holds: the panel does not put the detail back at its first height
    panel.moveSplitter(60, 1)
    panel.splitterMoved.emit(60, 1)  # what a drag emits (moveSplitter does not)
    panel.resize(350, 220)
    qtbot.waitUntil(lambda: panel.sizes()[0] > 60)
    assert panel.sizes()[1] > 4 * lines


def test_no_alerts_says_what_is_watched_for(qtbot):
    # an empty list was a bare header
    panel = shown(qtbot, AlertsPanel(), 350, 190)
    assert panel.empty.isVisible() and not panel.list.isVisible() and not panel.detail.isVisible()
    assert panel.empty_text().startswith("No alerts.")
    assert "NaN and Inf" in panel.empty_text() and "exploding and vanishing gradients" in panel.empty_text()
    panel.add_row(*LR10[0])
    assert panel.list.isVisible() and not panel.empty.isVisible() and panel.empty_text() == ""
    panel.clear()
    assert panel.empty.isVisible() and panel.empty_text().startswith("No alerts.")


def test_an_alert_marker_clicked_on_the_timeline_makes_its_row_current(qtbot):
    # a click on a badge moved the timeline's cursor and left the Alerts panel on another alert's row
    panel = shown(qtbot, AlertsPanel(), 350, 190)
    for seq, row in zip((40, 40, 90, 130), LR10, strict=True):
        panel.add_row(*row[:4], row[4], seq)
    timeline = shown(qtbot, Timeline(), 600, 120)
    timeline.append_events(list(range(1, 201)), [i // 50 for i in range(200)], ["forward"] * 200)
    timeline.add_marker("alert", 90, "dead ReLU", "dead ReLU")
    timeline.markerClicked.connect(lambda kind, seq: kind == "alert" and panel.show_at(seq))
    with qtbot.waitSignal(timeline.markerClicked) as clicked:
        qtbot.mouseClick(timeline.view, Qt.MouseButton.LeftButton,
                         pos=QPointF(timeline.view.event_x(89), RULER + 30).toPoint())
    assert clicked.args == ["alert", 90]
    assert panel.list.currentItem().text(1) == "dead ReLU" and panel.list.currentItem().data(0, KEY)[1] == 90
    assert not panel.show_at(55)  # no alert there: the row stays


def test_an_alert_an_edit_explains_says_so_in_its_kind_not_learning_rate_too_high(qtbot):
    # after scaling a weight by 10 the message began "After an edit: ...", and the Kind column still blamed
    # the learning rate, which had not changed
    from engine.debug.edit_blame import EditBlame
    from engine.events import AlertEvent, EditEvent
    blame = EditBlame()
    blame.edited(EditEvent(1, "param", "Sequential.2.weight", (("param", "Sequential.2.weight"), ("action", "scale"),
                                                               ("value", 10.0), ("indices", ())), True, "", 50),
                 root="Sequential")
    text = "the learning rate (0.05) is far too high; try one 10 to 100 times smaller"
    plain = AlertEvent(7, "large_update", text, "", "2.weight", "", 0, 40, "", 0, "", 1.0)
    edited = blame.explain(AlertEvent(8, "large_update", text, "", "2.weight", "", 0, 52, "", 0, "", 1.0))
    panel = shown(qtbot, AlertsPanel(), 388, 200)
    panel.add_alerts([plain, edited])
    assert panel.topLevelItem(0).text(1) == "learning rate too high"
    kind = panel.topLevelItem(1).text(1)
    assert kind == "\u270e update too large"  # the edit's pencil, in the edits' violet
    assert panel.topLevelItem(1).foreground(1).color().name() == "#7048e8"
    assert panel.topLevelItem(1).toolTip(1).startswith("\u270e after an edit: update too large\nAfter an edit: "
                                                       "'2.weight' was scaled by 10")
    assert panel.list.columnWidth(1) >= panel.list.fontMetrics().horizontalAdvance(kind)  # whole, not "after e…"
    assert panel.show_alert(edited) and panel.list.currentItem() is panel.topLevelItem(1)
