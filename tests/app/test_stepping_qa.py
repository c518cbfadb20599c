"""Stepping through a model op by op in the window, as a person does: what each stop shows."""

import pytest
from PySide6.QtCore import Qt

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Breakpoint
from tests.app.test_window import TIMEOUT, paused, press, script, status

RAISES = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(16, 4), engine.randint(0, 2, (16,))
    for step in range(3):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 1:
            raise ValueError("the data ran out")
"""


def test_a_script_that_raises_mid_run_says_where_in_one_line(qtbot, window, tmp_path):
    path = script(tmp_path, "raises.py", RAISES)
    window.run_script(path)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    for n in range(1, 4):  # F11 three times: the graph grows op by op
        press(qtbot, window, Qt.Key.Key_F11)
        qtbot.waitUntil(lambda n=n: paused(window) and window.session.records >= n, timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    # the error, in one line, names the script's file and the line that raised (not only the message)
    message = window.message_bar.text()
    assert "ValueError: the data ran out" in message and "raises.py:15" in message
    assert "\n" not in message
    assert status(window).startswith("Failed: ValueError") and "raises.py:15" in status(window)
    assert window.source_view.current_line_text().strip().startswith("15")
    assert all(not window.actions[name].isEnabled() for name in ("step_into", "step_over", "resume", "pause"))


def test_after_the_run_ends_the_inspector_shows_the_node_the_graph_marks(qtbot, window, tmp_path):
    # stopped at the third op, then F5 to the end: the graph marks the last node that ran; the inspector
    # went on showing the op of the last stop, so the two panels disagreed about where the run was
    path = script(tmp_path, "raises.py", RAISES)
    window.run_script(path)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    for n in range(1, 4):
        window.command("step_into")
        qtbot.waitUntil(lambda n=n: paused(window) and window.session.records >= n, timeout=TIMEOUT)
    at_stop = window.inspector.title.text()
    assert "Sequential.2/linear" in at_stop
    window.command("resume")
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    last = window.session.model.current
    assert last != "Sequential.2/linear:0"
    qtbot.waitUntil(lambda: last in window.inspector.title.text(), timeout=TIMEOUT)
    # the recorded history stays browsable: the timeline steps back through it
    timeline = window.timeline.view
    timeline.setFocus()
    before = window.timeline.cursor_seq()
    qtbot.keyClick(timeline, Qt.Key.Key_Left)
    assert window.timeline.cursor_seq() < before
    assert window.graph.selected is not None


def two_blocks(steps: int = 3):
    """Two blocks (each a Linear then a ReLU) trained for a few SGD steps."""
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Sequential(nn.Linear(8, 2), nn.ReLU()))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(16, 4), engine.randint(0, 2, (16,))
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_a_stop_at_a_module_calls_start_marks_that_module_not_the_op_before(qtbot, window):
    window.run_function(two_blocks, "two blocks")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.breakpoints.addRequested.emit(Breakpoint.module("Sequential.1", on="enter"))
    for iteration in (0, 1):  # the first iteration builds the graph; the next reuses its layout
        window.command("resume")
        qtbot.waitUntil(lambda it=iteration: paused(window) and window.session.iteration == it, timeout=TIMEOUT)
        assert "at the start of module Sequential.1" in status(window)
        # the box of the module being entered is marked where the run is, not the ReLU of the block before
        assert window.canvas.current_group == "Sequential.1"
    window.command("step_into")  # its first op: the mark goes back to a node
    qtbot.waitUntil(lambda: paused(window) and "at op linear" in status(window), timeout=TIMEOUT)
    assert window.canvas.current_group is None


def test_a_gradient_from_the_iteration_before_is_named_readably_at_1280x720(qtbot, window):
    # stepping into the second forward, the inspector's gradient column is that of iteration 0: its
    # name was clipped at both ends ("adient (iteration") in the table and in the histogram's title
    window.resize(1280, 720)
    window.run_function(two_blocks, "two blocks")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    window.command("step_into")  # the second op of iteration 1: a gradient of iteration 0 is known for it
    qtbot.waitUntil(lambda: paused(window) and "gradient (it. 0)" in headers(window), timeout=TIMEOUT)
    inspector = window.inspector
    column = headers(window).index("gradient (it. 0)")
    # greyed beside iteration 1's output; its tooltip says so whole
    assert inspector.stats.horizontalHeaderItem(column).toolTip() == "no gradient yet in iteration 1 (shown: " \
                                                                      "iteration 0's)"
    header = inspector.stats.horizontalHeader()  # the table's column reads whole too, not "gradient (itera…"
    assert header.fontMetrics().horizontalAdvance("gradient (it. 0)") < header.sectionSize(column)
    plot = inspector.histograms["gradient"]
    qtbot.waitUntil(plot.isVisible, timeout=TIMEOUT)
    title = plot.getPlotItem().titleLabel
    assert "it. 0" in title.text
    assert title.item.boundingRect().width() <= plot.width()


def headers(window) -> list[str]:
    stats = window.inspector.stats
    return [stats.horizontalHeaderItem(i).text() for i in range(stats.columnCount())]


def test_scrubbing_a_live_run_back_keeps_the_values_recorded_there(qtbot, window):
    # moving the timeline's cursor back in a live run showed the values recorded at that event, then a
    # late fetch of the node's latest values replaced them (and the "as recorded" note)
    window.run_function(two_blocks, "two blocks")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 2, timeout=TIMEOUT)
    session = window.session
    first = next(r for r in session.by_seq.values()
                 if r.iteration == 0 and getattr(r, "summary", None) is not None and r.event.op == "linear")
    window.timeline.cursorMoved.emit(first.seq)  # what dragging the timeline's cursor does
    note = f"as recorded at event {window.timeline.event_number(first.seq):,}, iteration 0"  # from the run's start
    qtbot.waitUntil(lambda: note in window.inspector.meta.text(), timeout=TIMEOUT)
    window.panels.worker.wait(5000)  # any value fetch the selection started has landed by now
    qtbot.wait(50)  # its queued result, delivered to the GUI thread
    assert note in window.inspector.meta.text()
    assert float(window.inspector.stat_text("mean")) == pytest.approx(first.summary.mean, rel=1e-3)
