"""Editing a model while it trains, in the real window: mlp_spirals paused mid-forward, a parameter slice
scaled and a layer re-initialised from the Editor dock, undone and redone from the Edit menu."""

import os
import sys

import numpy as np
from PySide6.QtWidgets import QPushButton

from engine.debug import Breakpoint

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "resources", "examples")
TIMEOUT = 20_000  # ms


def spirals():
    sys.path.insert(0, EXAMPLES)
    try:
        import mlp_spirals
    finally:
        sys.path.remove(EXAMPLES)
    mlp_spirals.main(epochs=3, n=128, verbose=False)


def paused(window) -> bool:
    return window.session is not None and window.session.status == "paused"


def values(window) -> dict:
    return {n: p.array.copy() for n, p in window.session.debugger.model.named_parameters()}


def send(qtbot, window, act) -> None:
    """Do something that sends one edit, and wait until the engine has answered it."""
    done = len(window.session.debugger.edits)
    act()
    qtbot.waitUntil(lambda: len(window.session.debugger.edits) > done, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not window.panels._sent, timeout=TIMEOUT)  # the window has shown its answer


def test_value_edits_mid_forward_undo_redo_and_the_run_goes_on(qtbot, window):
    window.run_function(spirals, "spirals")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.session.debugger.add_breakpoint(Breakpoint.op("tanh"))
    window.command("resume")  # to the first Tanh: between the first Linear's forward and its backward
    qtbot.waitUntil(lambda: paused(window) and window.module_editor.current_path() is not None, timeout=TIMEOUT)
    window.docks["editor"].raise_()
    ed = window.module_editor
    ed.select("Sequential.0")
    before = values(window)

    ed.editor("values.elements").setText("0:3, :")
    ed.editor("values.value").setText("0.5")
    send(qtbot, window, ed.editor("values.apply").click)
    scaled = values(window)
    np.testing.assert_array_equal(scaled["0.weight"][:3], before["0.weight"][:3] * np.float32(0.5))
    np.testing.assert_array_equal(scaled["0.weight"][3:], before["0.weight"][3:])
    assert window.actions["undo"].text() == "Undo scale Sequential.0.weight[0:3, :] by 0.5"

    reinit = next(b for b in ed.details.findChildren(QPushButton) if b.text() == "Re-initialise parameters")
    send(qtbot, window, reinit.click)
    drawn = values(window)
    assert not np.array_equal(drawn["0.bias"], scaled["0.bias"])
    assert window.actions["undo"].isEnabled()  # a re-initialisation can be undone

    send(qtbot, window, window.actions["undo"].trigger)
    assert all(values(window)[k].tobytes() == scaled[k].tobytes() for k in scaled)
    send(qtbot, window, window.actions["undo"].trigger)
    assert all(values(window)[k].tobytes() == before[k].tobytes() for k in before)
    send(qtbot, window, window.actions["redo"].trigger)
    send(qtbot, window, window.actions["redo"].trigger)
    assert all(values(window)[k].tobytes() == drawn[k].tobytes() for k in drawn)  # the same draw, not a new one
    assert window.message_bar.text() == ""  # nothing was refused

    # the first Linear ran before these edits and its backward still runs: the training goes on to its end
    window.session.debugger.remove_breakpoint(1)
    window.command("resume")
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert window.session.ended.error is None, window.output.text()


def test_a_refused_value_changes_no_parameter(qtbot, window):
    window.run_function(spirals, "spirals")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.module_editor.current_path() is not None, timeout=TIMEOUT)
    ed = window.module_editor
    ed.select("Sequential.2")
    before = values(window)
    edits = len(window.session.debugger.edits)
    for elements, value in (("0, 64", "1"), ("0, 0", "nan")):
        ed.editor("values.elements").setText(elements)
        ed.editor("values.value").setText(value)
        ed.editor("values.apply").click()
    qtbot.wait(100)
    assert ed.error_text("values.value") == "the value must be a finite number, got nan"
    assert len(window.session.debugger.edits) == edits and not window.actions["undo"].isEnabled()
    assert all(values(window)[k].tobytes() == before[k].tobytes() for k in before)
