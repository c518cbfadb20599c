"""A demanding user's pass over the window: resizing it small and large, scrubbing a tape (offscreen)."""

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QPushButton

from app.cli import main
from tests.app.test_hidpi_layout import assert_tabs_whole, tab_bar, window_at
from tests.app.test_replay_window import NAN_SCRIPT
from tests.app.test_window import TIMEOUT, make_window, script
from widgets.gradient_flow import GradientFlowChart


def tabbed(window) -> bool:
    d = window.docks
    return d["output"] in window.tabifiedDockWidgets(d["source"])


def test_a_window_made_small_tabs_source_and_output_and_splits_them_again_when_large(qtbot, tmp_path):
    # from 1440x900 to 1024x640 the graph gave way alone: source, output and loss stayed side by side, 150
    # pixels each (ten characters of code, "Lo... | T..." for the plots), where a window started at 1024x640
    # tabs source and output so each reads
    window = window_at(qtbot, tmp_path, 1440, 900)
    d = window.docks
    chars = window.fontMetrics().averageCharWidth()
    qtbot.waitUntil(lambda: d["output"].width() > 200 and d["source"].width() > d["loss"].width())  # settled
    start = {name: d[name].width() for name in ("source", "output", "loss")}
    assert not tabbed(window)
    window.resize(1024, 640)
    qtbot.waitUntil(lambda: tabbed(window))
    qtbot.waitUntil(lambda: d["source"].width() >= 25 * chars)
    qtbot.waitUntil(lambda: assert_tabs_whole(tab_bar(window, "Output")))
    qtbot.waitUntil(lambda: assert_tabs_whole(tab_bar(window, "Gradient Flow")))
    window.resize(1920, 1080)  # room again: side by side, each wider than at the start
    qtbot.waitUntil(lambda: not tabbed(window))
    qtbot.waitUntil(lambda: all(d[name].width() > start[name] for name in start))
    assert d["output"].isVisible() and window.rect().intersects(d["output"].geometry())
    assert d["loss"].isVisible() and window.rect().intersects(d["loss"].geometry())  # the loss tab in front
    window.resize(1440, 900)  # and back: the row it started with
    qtbot.waitUntil(lambda: all(d[name].width() == pytest.approx(start[name], abs=3) for name in start))


def test_source_and_output_tabbed_by_hand_stay_tabbed_in_a_large_window(qtbot, tmp_path):
    window = window_at(qtbot, tmp_path, 1440, 900)
    d = window.docks
    qtbot.waitUntil(lambda: d["source"].width() > 200)
    window.tabifyDockWidget(d["source"], d["output"])  # what dragging one onto the other does
    d["source"].raise_()
    window.resize(1920, 1080)
    qtbot.waitUntil(lambda: d["source"].width() > 500)
    assert tabbed(window)


def test_scrubbing_a_tape_leaves_the_gradient_flow_behind_its_tab_alone_until_it_is_shown(qtbot, tmp_path,
                                                                                        monkeypatch):
    # the chart behind the Loss tab was drawn at every move of the timeline, unseen: a third of each move
    draws = []
    draw = GradientFlowChart._draw
    monkeypatch.setattr(GradientFlowChart, "_draw", lambda self: (draws.append(1), draw(self)))
    tape = tmp_path / "run.tape"
    assert main(["record", script(tmp_path, "nan_run.py", NAN_SCRIPT), "-o", str(tape)]) == 0
    window = make_window(qtbot, tmp_path)
    assert window.open_tape(str(tape))
    qtbot.waitUntil(lambda: window.session.status in ("paused", "finished"), timeout=TIMEOUT)
    window.docks["loss"].raise_()
    view = window.timeline.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Home)
    draws.clear()
    for n in range(3):  # from before the first event to the start of each iteration, past its optimizer step
        qtbot.keyClick(view, Qt.Key.Key_PageDown)
        qtbot.waitUntil(lambda n=n: window.status_panel.iteration.text() == f"iteration {n}", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.gradient_flow.where.text() == "iteration 1", timeout=TIMEOUT)
    assert not draws
    window.docks["gradients"].raise_()
    flow = window.gradient_flow
    qtbot.waitUntil(lambda: len(draws) == 1, timeout=TIMEOUT)
    labels, values = flow.bars()
    assert labels == ["weight", "bias"] and (values > 0).all()
    # on screen, it follows the cursor at once
    x = view.event_x(view.cursor_index() - 8)  # into the backward pass of iteration 1
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPointF(x, view.height() / 2).toPoint())
    qtbot.waitUntil(lambda: flow.where.text() == "iteration 0", timeout=TIMEOUT)


def test_the_builder_open_in_a_window_made_small_leaves_the_graphs_column_its_row(qtbot, tmp_path):
    # from 1440x900 to 1024x640 with the builder open, the side columns kept their widths: the graph's column
    # had 255 pixels and its source panel two characters of each line; the builder has room to give, down to
    # the width its buttons read at
    window = window_at(qtbot, tmp_path, 1440, 900)
    dock = window.builder
    dock.open()
    qtbot.waitUntil(lambda: dock.builder_dock.width() >= dock.panel.minimumSizeHint().width(), timeout=TIMEOUT)
    window.resize(1024, 640)
    graph_column = window.docks["timeline"]
    qtbot.waitUntil(lambda: graph_column.width() >= 320, timeout=TIMEOUT)  # 255 before, 344 now
    build = next(b for b in dock.panel.findChildren(QPushButton) if b.text() == "Build")
    scroll = dock.builder_dock.widget()
    assert scroll.viewport().rect().contains(build.mapTo(scroll.viewport(), build.rect().bottomRight()))


def test_the_editor_in_front_shows_its_columns_whole(qtbot, tmp_path):
    # in the module tree's width the editor read "Param" over "1,05" (1,056 parameters), its Mode and Frozen
    # columns out of view and its value inputs a few letters wide
    window = window_at(qtbot, tmp_path, 1440, 900)
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: window.status_panel.state.text().startswith("Paused"), timeout=TIMEOUT)
    window.command("run_to_phase")  # through the first forward pass: the modules have run
    editor = window.module_editor
    qtbot.waitUntil(lambda: editor.tree.topLevelItemCount() > 0, timeout=TIMEOUT)
    window.docks["editor"].raise_()
    tree = editor.tree
    header = tree.header()

    def columns_whole():
        for col in range(header.count()):  # each column whole, and in view without scrolling sideways
            name = header.model().headerData(col, Qt.Orientation.Horizontal)
            assert header.sectionSize(col) >= tree.sizeHintForColumn(col), name
            assert header.sectionPosition(col) + tree.sizeHintForColumn(col) <= tree.viewport().width(), name

    qtbot.waitUntil(columns_whole, timeout=TIMEOUT)
    assert window.docks["editor"].width() <= 0.25 * window.width()  # the graph keeps its room
