"""Breakpoints in a live run, set the way a person sets them: the panel's form, its checkboxes, Restart."""

from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QCheckBox

import engine
import engine.nn as nn
from tests.app.graphs import Twice, sgd_steps

TIMEOUT = 15_000  # ms


def train(steps: int = 4):
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    sgd_steps(model, engine.randn(16, 4), steps)


def other():
    engine.randn(3).relu().sum()


def paused(window) -> bool:
    return window.session is not None and window.session.status == "paused"


def status(window) -> str:
    return window.status_panel.state.text()


def note(window) -> str:
    return window.status_panel.note.text()


def add_in_form(qtbot, window, kind: str, pattern: str = "", value: str = "") -> None:
    """Press Add…, pick the kind, type into the form and press its Add button."""
    panel = window.breakpoints
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    editor = panel.editor
    editor.kind.setCurrentIndex(editor.kind.findData(kind))
    if pattern:
        qtbot.keyClicks(editor.pattern, pattern)
    if value:
        qtbot.keyClicks(editor.value, value)
    qtbot.mouseClick(editor.ok, Qt.MouseButton.LeftButton)


def resume(qtbot, window) -> None:
    window.command("resume")
    qtbot.waitUntil(lambda: paused(window) or window.session.ended is not None, timeout=TIMEOUT)


def test_a_stop_at_a_breakpoint_says_so_counts_its_hits_and_selects_it(qtbot, window):
    window.run_function(train, "train")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    add_in_form(qtbot, window, "op", "relu")
    add_in_form(qtbot, window, "iteration", value="3")
    panel = window.breakpoints
    assert panel.rows() == [("op relu  (forward)", 0, True), ("iteration 3", 0, True)]
    resume(qtbot, window)
    assert panel.rows()[0][1] == 1
    assert panel.list.currentItem().text(0) == "op relu  (forward)"
    assert status(window) == "Paused by a breakpoint at op relu in Sequential.1"
    assert note(window) == "Breakpoint: op relu (forward) \u00b7 hit 1"
    resume(qtbot, window)
    assert panel.rows()[0][1] == 2 and window.session.iteration == 1
    window.command("step_into")  # a step is no breakpoint: the note naming one goes
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert status(window).startswith("Paused at ") and note(window) == ""
    panel.list.topLevelItem(0).setCheckState(0, Qt.CheckState.Unchecked)  # the person unticks it
    qtbot.waitUntil(lambda: not window.session.debugger.list_breakpoints()[0].enabled)
    resume(qtbot, window)
    assert window.session.iteration == 3 and status(window).startswith("Paused by a breakpoint")
    assert panel.rows() == [("op relu  (forward)", 2, False), ("iteration 3", 1, True)]
    assert panel.list.currentItem().text(0) == "iteration 3"


def test_breakpoints_survive_restart_but_not_another_target(qtbot, window):
    window.run_function(train, "train")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    add_in_form(qtbot, window, "op", "relu")
    add_in_form(qtbot, window, "op", "pow")
    window.breakpoints.list.topLevelItem(0).setCheckState(0, Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: not window.session.debugger.list_breakpoints()[0].enabled)
    resume(qtbot, window)
    editor = window.module_editor
    qtbot.waitUntil(lambda: editor.current_path() is not None, timeout=TIMEOUT)
    editor.select("Sequential.0")
    editor.details.findChildren(QCheckBox)[0].click()  # freeze its weight
    qtbot.waitUntil(lambda: note(window).startswith("Edit applied"), timeout=TIMEOUT)
    window.restart()
    qtbot.waitUntil(lambda: paused(window) and window.session.records == 0, timeout=TIMEOUT)
    assert note(window) == ""  # that edit was about the run before
    assert window.breakpoints.rows() == [("op relu  (forward)", 0, False), ("op pow  (forward)", 0, True)]
    resume(qtbot, window)  # the restarted run stops there too
    assert status(window) == "Paused by a breakpoint at op pow in the top level"
    assert window.breakpoints.rows()[1][1] == 1
    window.run_function(other, "other")  # another program: op names of the last one mean nothing here
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert window.breakpoints.rows() == []


def twice(steps: int = 2):
    net = Twice()
    for _ in range(steps):
        net(engine.randn(2, 3)).sum().backward()
        engine.debug.mark_iteration()


def red_at(window, key: str) -> bool:
    """Whether the canvas draws a breakpoint's red dot on node `key`'s left edge, as a person sees it."""
    canvas = window.canvas
    i = canvas._node_of(key)
    x, y, _, h = canvas.marks_item.rects[i]
    centre = canvas.mapFromScene(canvas.box.mapViewToScene(QPointF(x, y + h / 2)))
    colour = canvas.grab().toImage().pixelColor(centre)
    return colour.red() > 200 and colour.green() < 90 and colour.blue() < 90


def test_f9_on_a_node_of_a_second_call_stops_in_every_call_and_the_graph_marks_them(qtbot, window):
    # F9 on "Twice.act/tanh:0#1" (the graph's name for the second call) made a breakpoint the engine,
    # which names both calls "Twice.act/tanh:0", never matched; and no node showed it had a breakpoint
    window.resize(1200, 800)
    window.run_function(twice, "twice")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    for _ in range(3):
        window.command("step_into")
        qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert window.session.model.current == "Twice.act/tanh:0#1"
    window.canvas.select("Twice.act/tanh:0#1")
    qtbot.keyClick(window, Qt.Key.Key_F9)
    assert window.breakpoints.rows() == [("op Twice.act/tanh:0  (forward)", 0, True)]
    assert note(window) == "Breakpoint set: Twice.act/tanh:0 (every call)"
    window.canvas.fit()
    qtbot.waitUntil(lambda: red_at(window, "Twice.act/tanh:0") and red_at(window, "Twice.act/tanh:0#1"))
    assert not red_at(window, "Twice.fc/linear:0")
    resume(qtbot, window)  # the next iteration's first call, then its second
    assert status(window) == "Paused by a breakpoint at op tanh in Twice.act" and window.session.iteration == 1
    resume(qtbot, window)
    assert status(window) == "Paused by a breakpoint at op tanh in Twice.act#1"
    window.breakpoints.list.topLevelItem(0).setCheckState(0, Qt.CheckState.Unchecked)  # off: no dots
    qtbot.waitUntil(lambda: not red_at(window, "Twice.act/tanh:0"))


def test_f9_with_nothing_selected_breaks_at_the_op_the_run_is_paused_at(qtbot, window):
    window.run_function(train, "train")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("step_into")  # the first op: linear in Sequential.0
    qtbot.waitUntil(lambda: paused(window) and window.session.model.current is not None, timeout=TIMEOUT)
    window.canvas.select(None)
    qtbot.keyClick(window, Qt.Key.Key_F9)
    assert window.breakpoints.rows() == [("op Sequential.0/linear:0  (forward)", 0, True)]
    resume(qtbot, window)  # the next iteration's first op
    assert status(window) == "Paused by a breakpoint at op linear in Sequential.0" and window.session.iteration == 1


def test_a_breakpoint_naming_nothing_seen_so_far_says_so(qtbot, window):
    # an op pattern with a typo ("rleu") was taken without a word, and the run never stopped there
    window.run_function(train, "train")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    add_in_form(qtbot, window, "op", "rleu")
    assert note(window) == ""  # before the first op, any name may still come
    add_in_form(qtbot, window, "iteration", value="1")
    resume(qtbot, window)
    assert window.session.iteration == 1 and len(window.canvas.view) > 0
    add_in_form(qtbot, window, "op", "reluu")
    assert note(window) == "No op so far matches 'reluu': it stops once one runs"
    add_in_form(qtbot, window, "op", "relu")
    assert note(window) == "No op so far matches 'reluu': it stops once one runs"  # kept: relu ran
    add_in_form(qtbot, window, "module", "Sequential.9")
    assert note(window) == "No module call so far matches 'Sequential.9': it stops once one runs"
    add_in_form(qtbot, window, "module", "Sequential.1")
    assert window.breakpoints.rows()[-1][0] == "module Sequential.1  (enter)"
    assert note(window).startswith("No module call so far matches 'Sequential.9'")
