"""The inspector never passes one moment off as another: while a run goes it follows the run, saying so, and at a
forward stop the iteration before's gradient beside this iteration's output is greyed and says whose it is."""

import pytest
from PySide6.QtCore import Qt

from tests.app.test_step_out import QUIET, press_and_stop, step_to
from tests.app.test_window import TIMEOUT, paused, press, script

LONG = QUIET.replace("range(6)", "range(100_000)")


@pytest.fixture
def window(make_window):
    w = make_window()
    w.set_stop_on_alerts("none")
    return w


def test_the_inspector_follows_a_running_run_and_says_it_is_live(qtbot, window, tmp_path):
    window.run_script(script(tmp_path, "long.py", LONG))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    step_to(qtbot, window, "forward", 1, "Sequential.0/linear:0")
    window.canvas.select("Sequential.0/linear:0")
    at_stop = window.inspector.stat_text("L2 norm")
    assert at_stop and "live" not in window.inspector.meta.text()
    press(qtbot, window, Qt.Key.Key_F5)
    # the run goes on: the inspector shows the node's latest output, and says it is live, not the stop's
    qtbot.waitUntil(lambda: window.session.iteration >= 5 and "live, iteration" in window.inspector.meta.text(),
                    timeout=TIMEOUT)
    assert window.session.status == "running"
    qtbot.waitUntil(lambda: window.inspector.stat_text("L2 norm") != at_stop, timeout=TIMEOUT)
    assert window.inspector.title.text().endswith("Sequential.0/linear:0")  # the same node, not the op running
    press_and_stop(qtbot, window, Qt.Key.Key_F6)
    qtbot.waitUntil(lambda: "live" not in window.inspector.meta.text(), timeout=TIMEOUT)


def test_a_forward_stop_greys_the_iteration_befores_gradient_and_says_so(qtbot, window, tmp_path):
    window.run_script(script(tmp_path, "quiet.py", QUIET))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    step_to(qtbot, window, "forward", 2, "Sequential.2/linear:0")
    window.canvas.select("Sequential.2/linear:0")
    inspector = window.inspector
    assert inspector.stale() == {"gradient"}
    assert "No gradient yet in iteration 2 (shown greyed: iteration 1's)" in inspector.meta.text()
    assert inspector.stats.horizontalHeaderItem(1).toolTip() == "no gradient yet in iteration 2 (shown: " \
                                                                "iteration 1's)"
    # greyed under its column's name: the note above says why
    assert inspector.histograms["gradient"].getPlotItem().titleLabel.text == "gradient (it. 1)"
    assert inspector.header_text("value") == "value"  # this iteration's, as the graph shows it
    # once its backward has run, output and gradient are one iteration's again: nothing greyed
    step_to(qtbot, window, "optimizer", 2)
    window.canvas.select("Sequential.2/linear:0")
    assert inspector.stale() == set() and "No gradient yet" not in inspector.meta.text()
    assert inspector.histograms["gradient"].getPlotItem().titleLabel.text == "gradient"
