"""The debugger's controls as a person uses them: which alerts stop a run, F9 on what was picked last, the
event count after a Restart, Step Back in a live run and a replay (offscreen)."""

from PySide6.QtCore import QPoint, QRectF, QSettings, Qt

from app.cli import main
from app.window import MainWindow
from tests.app.test_window import (
    TIMEOUT,
    paused,
    press,
    press_and_stop,
    script,
    status,
    training_loop,
)

BACK = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier

# a learning rate far too high: a dead ReLU and updates as large as the weights at iteration 2, gradients gone by 4;
# never a NaN
HOT = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    engine.manual_seed(0)
    x, y = engine.rand(128, 64) * 4, engine.randint(0, 10, (128,))
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = engine.optim.SGD(model.parameters(), lr=10.0, momentum=0.9)
""" + training_loop(12)


def settled(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.session.status != "running", timeout=TIMEOUT)


def steps(qtbot, window, n: int) -> None:
    """Press F11 n times, each once the step before has stopped."""
    for _ in range(n):
        press_and_stop(qtbot, window, Qt.Key.Key_F11)


# ---- 1. Continue stops at the alerts it says it stops at ---------------------------------------------------------
def test_continue_stops_at_every_alert_and_the_status_says_which(qtbot, window, tmp_path):
    # the tooltip promised "an alert", but only NaN/Inf stopped a run: an lr=10 run raised six alerts and ran to its end
    assert "alert" in window.actions["resume"].statusTip()
    assert window.actions["stop_on_all"].isChecked()  # the default
    window.run_script(script(tmp_path, "hot.py", HOT))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: paused(window) and window.session.stop_alert is not None, timeout=TIMEOUT)
    assert status(window).startswith("Paused on an alert, dead ReLU: ") and "Sequential.1" in status(window)
    assert window.message_bar.text().startswith("Stopped at an alert, dead ReLU: ")
    assert window.session.model.current == "Sequential.1/relu:0"  # at the op that raised it
    press(qtbot, window, Qt.Key.Key_F5)  # on to the next one: the updates, at the optimizer step
    qtbot.waitUntil(lambda: paused(window) and "learning rate too high" in status(window), timeout=TIMEOUT)
    assert status(window).startswith("Paused on an alert, learning rate too high: the updates of layer")
    press(qtbot, window, Qt.Key.Key_F10)  # a step on from the alert: the message about it goes
    qtbot.waitUntil(lambda: paused(window) and window.session.stop_alert is None, timeout=TIMEOUT)
    assert not window.message_bar.isVisible()
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: paused(window) and "vanishing gradient" in status(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert len(window.session.alerts) == 3


def test_the_alerts_panel_shows_the_alert_a_run_stopped_at_and_the_banner_goes_with_the_run(qtbot, window, tmp_path):
    # the list and its detail stayed on the first alert while the banner told of the third; the NaN banner outlived
    # the run
    window.run_script(script(tmp_path, "hot.py", HOT))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    panel = window.alerts_panel
    for kind in ("dead ReLU", "learning rate too high", "vanishing gradient"):
        press(qtbot, window, Qt.Key.Key_F5)
        qtbot.waitUntil(lambda kind=kind: paused(window) and kind in status(window), timeout=TIMEOUT)
        current = panel.list.currentItem()
        assert current is not None and current.text(1) == kind
        assert panel.detail_text().startswith(window.session.stop_alert.message.split(":")[0][:30])
    assert panel.list.currentItem() is panel.topLevelItem(panel.topLevelItemCount() - 1)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.wait(50)
    assert not window.message_bar.isVisible()


def test_which_alerts_stop_a_run_is_a_choice_kept_in_the_settings(qtbot, make_window, tmp_path):
    window = make_window()
    window.actions["stop_on_nonfinite"].trigger()  # Debug > Stop on Alerts > NaN or Inf Only
    assert not window.actions["stop_on_all"].isChecked()
    window.run_script(script(tmp_path, "hot.py", HOT))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)  # the alerts are listed, no stop
    assert len(window.session.alerts) == 3 and len(window.alerts_panel.messages()) == 3
    window.close()
    again = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert again.actions["stop_on_nonfinite"].isChecked() and again.stop_on_alerts == "nonfinite"


def test_a_replays_continue_stops_at_the_alerts_a_live_run_stops_at(qtbot, window, tmp_path):
    tape = str(tmp_path / "hot.tape")
    assert main(["record", script(tmp_path, "hot.py", HOT), "-o", tape]) == 0
    window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    window.restart()
    qtbot.waitUntil(lambda: window.session.status == "paused", timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5)
    settled(qtbot, window)
    assert status(window).startswith("Replay paused on an alert, dead ReLU: ")
    window.set_stop_on_alerts("none")
    press(qtbot, window, Qt.Key.Key_F5)
    settled(qtbot, window)
    assert window.session.status == "finished"


# ---- 2. F9 acts on what was picked last; picking a module does not zoom -------------------------------------------
def _tree_row(window, name: str):
    tree = window.module_tree
    root = tree.topLevelItem(0)
    return next(root.child(i) for i in range(root.childCount()) if root.child(i).text(0) == name)


def test_f9_breaks_at_the_module_picked_in_the_tree_after_a_node(qtbot, window):
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    steps(qtbot, window, 6)  # through the forward: out has run
    qtbot.waitUntil(lambda: window.canvas.view is not None and "SpiralNet/tanh:1" in window.canvas.view.node_of,
                    timeout=TIMEOUT)
    canvas = window.canvas
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.view_point("SpiralNet/tanh:1"))
    assert window.graph.selected == "SpiralNet/tanh:1"
    press(qtbot, window, Qt.Key.Key_F9)
    assert [row[0] for row in window.breakpoints.rows()] == ["op SpiralNet/tanh:1  (forward)"]
    view = canvas.box.viewRect()
    tree = window.module_tree
    row = _tree_row(window, "out")
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(row).center() + QPoint(15, 0))
    shown = canvas.box.viewRect()
    assert shown.size() == view.size()  # picked and brought into view, not zoomed onto
    groups, layout = canvas.view.groups, canvas.layout_data
    assert shown.contains(QRectF(*layout.group_rect[groups.index("SpiralNet.out")]))
    press(qtbot, window, Qt.Key.Key_F9)  # removed the tanh breakpoint instead
    assert [row[0] for row in window.breakpoints.rows()] == ["op SpiralNet/tanh:1  (forward)",
                                                             "module SpiralNet.out  (enter)"]
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.view_point("SpiralNet/tanh:1"))
    qtbot.waitUntil(lambda: tree.currentItem() is None)  # the graph's node is the pick now, not the tree's row
    press(qtbot, window, Qt.Key.Key_F9)
    assert [row[0] for row in window.breakpoints.rows()] == ["module SpiralNet.out  (enter)"]
    qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton,
                      pos=tree.visualItemRect(_tree_row(window, "out")).center() + QPoint(15, 0))
    assert canvas.box.viewRect().width() < 0.8 * view.width()  # a double-click zooms onto it


# ---- 3. a Restart counts its events from 1 -------------------------------------------------------------------------
def test_a_restart_counts_its_events_from_the_start_again(qtbot, window):
    # the engine numbers the events of the whole process: the fourth op after a Restart was "event 67224"
    def first_op() -> int:
        steps(qtbot, window, 1)
        qtbot.waitUntil(lambda: window.timeline.view.count == 1, timeout=TIMEOUT)
        return int(window.timeline.where_text().rpartition("event ")[2].partition("/")[0].replace(",", ""))

    window.open_demo(epochs=10, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    first = first_op()
    assert first < 20  # after the model's call and fc1's (and what other threads ran meanwhile)
    window.session.command("resume")
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    timeline = window.timeline
    qtbot.waitUntil(lambda: timeline.view.count > 100, timeout=TIMEOUT)
    run = timeline.event_number(int(timeline.view.seqs()[-1]))  # how many events the first run numbered
    window.restart()
    qtbot.waitUntil(lambda: paused(window) and window.session.records == 0, timeout=TIMEOUT)
    assert first_op() < min(20, run)


# ---- 4. Step Back, and a position that follows the cursor and the head ---------------------------------------------
def position(window, i: int) -> str:
    """What the timeline says with its cursor on its `i`th event: the event numbers the rest of the window uses."""
    timeline = window.timeline
    seqs, count = timeline.view.seqs(), timeline.view.count
    _seq, it, phase = timeline.view.describe(i)
    last_it = timeline.view.describe(count - 1)[1]
    return (f"iteration {it}/{last_it} \u00b7 {phase} \u00b7 event {timeline.event_number(seqs[i]):,}/"
            f"{timeline.event_number(seqs[-1]):,}")


def test_step_back_goes_through_a_paused_live_runs_history(qtbot, window):
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    back, over = window.actions["step_back"], window.actions["step_back_over"]
    assert not back.isEnabled()  # nothing ran yet
    assert back.shortcut().toString() == "Ctrl+Shift+F11" and over.shortcut().toString() == "Ctrl+Shift+F10"
    assert back in window.toolbar.actions() and over in window.toolbar.actions()
    steps(qtbot, window, 4)  # linear, tanh, linear (in fc2), tanh
    qtbot.waitUntil(back.isEnabled, timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F11, BACK)
    assert window.timeline.where_text() == position(window, 2)
    assert window.inspector.title.text().endswith("SpiralNet.fc2/linear:0")  # as recorded there
    assert "self.fc2(h)" in window.source_view.current_line_text()
    assert status(window) == "Paused at op tanh in SpiralNet"  # the run itself stays where it is
    press(qtbot, window, Qt.Key.Key_F10, BACK)  # over the inside of fc1: to the tanh before it
    assert window.timeline.where_text() == position(window, 1)
    assert window.inspector.title.text().endswith("SpiralNet/tanh:0")
    steps(qtbot, window, 1)  # stepping on goes on from the run's head, followed again
    qtbot.waitUntil(lambda: window.timeline.view.count == 5 and window.timeline.where_text() == position(window, 4),
                    timeout=TIMEOUT)
    assert window.timeline.following()


def test_the_position_follows_the_run_while_the_cursor_stays_back(qtbot, window):
    # scrubbed back, the position said "iteration 0 · step 6/6" while the run went on to iteration 979
    window.open_demo(epochs=3, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    steps(qtbot, window, 3)
    press(qtbot, window, Qt.Key.Key_F11, BACK)
    assert window.timeline.where_text() == position(window, 1)
    window.session.command("resume")  # (the toolbar's F5 takes the cursor back to the head)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    last = window.session.iteration
    qtbot.waitUntil(lambda: window.timeline.where_text().startswith(f"iteration 0/{last} \u00b7"), timeout=TIMEOUT)
    count = window.timeline.view.count
    assert last >= 4 and count > 50
    assert window.timeline.where_text() == position(window, 1)
    assert position(window, 1).startswith(f"iteration 0/{last} \u00b7 forward")
    assert window.timeline.cursor_seq() == window.timeline.view.seqs()[1]  # the cursor stayed where it was put


def test_a_tape_opened_at_its_end_steps_back_at_once(qtbot, window, tmp_path):
    # the stepping buttons stayed grey until the timeline was first scrubbed
    tape = str(tmp_path / "hot.tape")
    assert main(["record", script(tmp_path, "hot.py", HOT), "-o", tape]) == 0
    window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert window.actions["step_back"].isEnabled() and window.actions["step_back_over"].isEnabled()
    assert not window.actions["step_into"].isEnabled()  # nothing after the end
    end = window.session.cursor
    press(qtbot, window, Qt.Key.Key_F11, BACK)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert window.session.cursor < end and window.actions["step_into"].isEnabled()
    press(qtbot, window, Qt.Key.Key_F11)  # and forward again, to the last event
    qtbot.waitUntil(lambda: window.session.status != "running" and window.session.cursor >= end, timeout=TIMEOUT)
    window.restart()  # at the start: steps forward at once, nothing to go back to
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert window.actions["step_into"].isEnabled() and not window.actions["step_back"].isEnabled()
    assert window.timeline.where_text().startswith("start \u00b7 before event ")


def test_a_stop_selects_what_it_is_about_not_the_node_selected_before(qtbot, window, tmp_path):
    # at a module breakpoint the graph and the inspector stayed on the op selected at the stop before; at an
    # optimizer step's alert about a layer's updates, on an op of another layer
    from engine.debug.breakpoints import Breakpoint

    window.run_script(script(tmp_path, "hot.py", HOT))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    debugger = window.session.debugger
    ids = [debugger.add_breakpoint(Breakpoint.op("Sequential.0/linear:0")),
           debugger.add_breakpoint(Breakpoint.module("Sequential.2"))]
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: paused(window) and window.session.model.current == "Sequential.0/linear:0",
                    timeout=TIMEOUT)
    window.canvas.select("Sequential.0/linear:0")
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: paused(window) and "Sequential.2" in status(window), timeout=TIMEOUT)
    assert window.canvas.selected_key is None  # the box of Sequential.2 is marked; no op of it ran yet
    assert "Sequential.0/linear" not in window.inspector.title.text()
    for bid in ids:
        debugger.remove_breakpoint(bid)
    window.canvas.select("Sequential.0/linear:0")
    press(qtbot, window, Qt.Key.Key_F5)  # the dead ReLU, then the updates of a layer at the optimizer step
    qtbot.waitUntil(lambda: paused(window) and "dead ReLU" in status(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: paused(window) and "learning rate too high" in status(window), timeout=TIMEOUT)
    alert = window.session.stop_alert
    selected = window.canvas.selected_key
    view = window.canvas.view
    assert selected is not None and view.label[view.node_of[selected]] in (alert.key, f"{alert.key}.weight")
    assert window.inspector.title.text().endswith(selected)
