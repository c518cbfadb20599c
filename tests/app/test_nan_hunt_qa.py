"""Hunting the NaN of resources/examples/nan_demo.py in the window, as a person does: a value breakpoint
from the Breakpoints panel first, then on to the NaN alert."""

import os

from PySide6.QtCore import Qt

from tests.app.test_breakpoints_live import add_in_form, note, paused

TIMEOUT = 30_000  # ms
NAN_DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "examples", "nan_demo.py")


def shown(window, dock: str) -> bool:
    """Whether any of the dock is on screen (a tab behind another is not)."""
    return not window.docks[dock].visibleRegion().isEmpty()


def resume(qtbot, window) -> None:
    """F5 to the next stop, on past the alerts of lr=5's updates outgrowing the weights (Stop on Alerts)."""
    while True:
        window.command("resume")  # (the status says "Running" at once)
        qtbot.waitUntil(lambda: paused(window) or window.session.ended is not None, timeout=TIMEOUT)
        alert = window.session.stop_alert
        if alert is None or alert.kind != "large_update":
            return


def test_a_threshold_stop_names_the_value_and_the_nan_stop_brings_the_alerts_forward(qtbot, window):
    assert window.run_script(os.path.abspath(NAN_DEMO))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.docks["breakpoints"].raise_()
    assert shown(window, "breakpoints") and not shown(window, "alerts")  # tabs of one place
    add_in_form(qtbot, window, "max_abs", value="50")
    panel = window.breakpoints
    assert panel.rows() == [("max |x| > 50  (output)", 0, True)]
    resume(qtbot, window)
    # the note said only "Breakpoint: max |x| > 50 (output) · hit 1": which value, and of what, was left to find
    # the logits; the window shows the stop once it has drawn the records before it (under load, a moment later).
    # Which op passes 50 first, and in which step, depends on BLAS's summation order (lr=5 amplifies it): a
    # logits layer in step 5 or 6, in a full test run also step 4
    qtbot.waitUntil(lambda: window.session.current_stop is not None and note(window).startswith("Breakpoint:")
                    and window.session.model.current == window.session.current_stop.record.event.key,
                    timeout=TIMEOUT)
    stop = window.session.current_stop
    assert stop.record.event.op == "linear" and window.session.iteration == stop.record.iteration >= 3
    # the value itself depends on BLAS's summation order (lr=5 amplifies it),
    # so the note is checked against the output the stop holds
    tripped = window.session.debugger.fetch(window.session.current_stop.record.event.output)
    tripped = float(abs(tripped).max())
    assert tripped > 50
    assert note(window) == f"Breakpoint: max |x| > 50 (output) \u00b7 hit 1 \u00b7 max |x| {tripped:.4g} in the output"
    assert panel.current_id() is not None and panel.rows()[0][1] == 1
    item = panel.list.topLevelItem(0)
    item.setCheckState(0, Qt.CheckState.Unchecked)  # disable it, as a person unticks it
    qtbot.waitUntil(lambda: not window.session.debugger.list_breakpoints()[0].enabled)  # sent once Qt is done
    resume(qtbot, window)
    qtbot.waitUntil(lambda: window.session.model.current == "log:0" and window.session.stop_alert is not None
                    and shown(window, "alerts"), timeout=TIMEOUT)
    # the Alerts list stayed behind the Breakpoints tab, and the breakpoint stayed selected as if it had
    # stopped the run again
    assert shown(window, "alerts") and not shown(window, "breakpoints")
    assert panel.current_id() is None
    assert note(window) == ""
    # lr=5 also raises "learning rate too high" before the NaN: find the NaN's row by its kind
    panel_rows = [window.alerts_panel.topLevelItem(i) for i in range(window.alerts_panel.topLevelItemCount())]
    row = next(r for r in panel_rows if r.text(1) == "NaN/Inf (forward)")
    assert row.text(0) == str(window.session.stop_alert.iteration) and row.text(2) == "log"
    assert "at nan_demo.py:43 (return -(one_hot * engine.log(probs))" in row.text(3)
    # the status line and the banner named the file with its whole folder, and the status line's
    # explanation ran out of room before "its inputs are finite"
    folder = os.path.dirname(os.path.abspath(NAN_DEMO))
    for text in (window.status_panel.state.text(), window.message_bar.text()):
        assert "at nan_demo.py:43 (return" in text and folder not in text
    assert window.source_view.current_line_text().split() == \
        ["43", "return", "-(one_hot", "*", "engine.log(probs)).sum(1).mean()"]
