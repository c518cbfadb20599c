"""The output panel's share of the bottom row, and the inspector's histograms at 1024x640 (offscreen)."""

import pytest

from tests.app.test_step_out import QUIET, step_to
from tests.app.test_window import TIMEOUT, paused, script

LOG = "epoch 12 | loss 0.4127 | acc 0.9102 | lr 0.0100"  # a training log's line: 47 characters


@pytest.mark.parametrize("size", [(1440, 900), (1920, 1080)])
def test_the_output_panel_shows_a_training_logs_lines_whole(qtbot, make_window, size):
    # at 1440x900 the output panel was 250 pixels wide, beside a wider source panel: every line of 30 characters
    # or more wrapped or was cut
    window = make_window(size)
    d, output = window.docks, window.output
    line = output.fontMetrics().horizontalAdvance(LOG)

    def wide():
        assert output.viewport().width() >= line, (output.viewport().width(), line)
        assert d["output"].width() >= d["source"].width()

    qtbot.waitUntil(wide, timeout=TIMEOUT)


def test_at_1024x640_the_output_shares_the_rows_width_with_the_source_as_a_tab(qtbot, make_window):
    window = make_window((1024, 640))
    d = window.docks
    qtbot.waitUntil(lambda: d["output"] in window.tabifiedDockWidgets(d["source"]), timeout=TIMEOUT)
    d["output"].raise_()
    line = window.output.fontMetrics().horizontalAdvance(LOG)
    qtbot.waitUntil(lambda: window.output.viewport().width() >= line, timeout=TIMEOUT)


@pytest.fixture
def small(qtbot, make_window, tmp_path):
    window = make_window((1024, 640))
    window.run_script(script(tmp_path, "quiet.py", QUIET))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    return window


def test_at_1024x640_the_inspectors_histograms_read_one_above_the_other(qtbot, small):
    # side by side in a 250-pixel dock, under the table, the two histograms were a title over an empty strip,
    # and the gradient column lay past the dock's edge
    step_to(qtbot, small, "forward", 1, "Sequential.2/linear:0")
    small.canvas.select("Sequential.2/linear:0")
    inspector = small.inspector
    assert set(inspector.columns()) == {"value", "gradient"}
    qtbot.waitUntil(lambda: inspector.body.horizontalScrollBar().maximum() == 0, timeout=TIMEOUT)
    assert inspector.histograms_stacked()
    for view in (inspector.histograms["value"], inspector.histograms["gradient"]):
        assert view.height() >= 120 and view.width() >= 180, (view.width(), view.height())

