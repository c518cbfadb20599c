"""A demanding user's pass over the window: resizing it small and large, scrubbing a tape (offscreen)."""

import pytest
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtWidgets import QPushButton

from app.cli import main
from app.replay import _WAIT, ReplaySession
from tests.app.test_hidpi_layout import assert_tabs_whole, tab_bar
from tests.app.test_replay_window import NAN_SCRIPT
from tests.app.test_window import TIMEOUT, script
from widgets.gradient_flow import GradientFlowChart


def tabbed(window) -> bool:
    d = window.docks
    return d["output"] in window.tabifiedDockWidgets(d["source"])


def test_a_window_made_small_tabs_source_and_output_and_splits_them_again_when_large(qtbot, make_window):
    # from 1440x900 to 1024x640 the graph gave way alone: source, output and loss stayed side by side, 150
    # pixels each (ten characters of code, "Lo... | T..." for the plots), where a window started at 1024x640
    # tabs source and output so each reads
    window = make_window((1440, 900))
    d = window.docks
    chars = window.fontMetrics().averageCharWidth()
    qtbot.waitUntil(lambda: d["output"].width() > 300 and d["source"].width() > 200)  # settled
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


def test_source_and_output_tabbed_by_hand_stay_tabbed_in_a_large_window(qtbot, make_window):
    window = make_window((1440, 900))
    d = window.docks
    qtbot.waitUntil(lambda: d["source"].width() > 200)
    window.tabifyDockWidget(d["source"], d["output"])  # what dragging one onto the other does
    d["source"].raise_()
    window.resize(1920, 1080)
    qtbot.waitUntil(lambda: d["source"].width() > 500)
    assert tabbed(window)


def test_scrubbing_a_tape_leaves_the_gradient_flow_behind_its_tab_alone_until_it_is_shown(qtbot, make_window, tmp_path,
                                                                                        monkeypatch):
    # the chart behind the Loss tab was drawn at every move of the timeline, unseen: a third of each move
    draws = []
    draw = GradientFlowChart._draw
    monkeypatch.setattr(GradientFlowChart, "_draw", lambda self: (draws.append(1), draw(self)))
    tape = tmp_path / "run.tape"
    assert main(["record", script(tmp_path, "nan_run.py", NAN_SCRIPT), "-o", str(tape)]) == 0
    window = make_window()
    assert window.open_tape(str(tape))
    qtbot.waitUntil(lambda: window.session.status in ("paused", "finished"), timeout=TIMEOUT)
    window.docks["loss"].raise_()
    view = window.timeline.view
    view.setFocus()
    draws.clear()
    # Home, then the start of each iteration, past its optimizer step. Each move is a seek that lands in the key's own
    # frame or in a later one, as the tape reader thread is ahead or behind; until it lands the timeline's cursor is
    # where the replay passed (none, after Home), so each key waits for its seek: pressed at once, the first PageDown
    # went from "no event" to iteration 0 or, under load, from the first event to iteration 1
    for key, n in ((Qt.Key.Key_Home, 0), (Qt.Key.Key_PageDown, 1), (Qt.Key.Key_PageDown, 2)):
        qtbot.keyClick(view, key)
        qtbot.waitUntil(lambda n=n: window.session.status == "paused" and view.describe(view.cursor_index())[1] == n
                        and window.status_panel.iteration.text() == f"iteration {n}", timeout=TIMEOUT)
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


def test_the_builder_open_in_a_window_made_small_leaves_the_graphs_column_its_row(qtbot, make_window):
    # from 1440x900 to 1024x640 with the builder open, the side columns kept their widths: the graph's column
    # had 255 pixels and its source panel two characters of each line; the builder has room to give, down to
    # the width its buttons read at
    window = make_window((1440, 900))
    dock = window.builder
    dock.open()
    qtbot.waitUntil(lambda: dock.builder_dock.width() >= dock.panel.minimumSizeHint().width(), timeout=TIMEOUT)
    window.resize(1024, 640)
    graph_column = window.docks["timeline"]
    qtbot.waitUntil(lambda: graph_column.width() >= 320, timeout=TIMEOUT)  # 255 before, 344 now
    build = next(b for b in dock.panel.findChildren(QPushButton) if b.text() == "Build")
    scroll = dock.builder_dock.widget()
    assert scroll.viewport().rect().contains(build.mapTo(scroll.viewport(), build.rect().bottomRight()))


def test_the_editor_in_front_shows_its_columns_whole(qtbot, make_window):
    # in the module tree's width the editor read "Param" over "1,05" (1,056 parameters), its Mode and Frozen
    # columns out of view and its value inputs a few letters wide
    window = make_window((1440, 900))
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


BOTTOM = ("source", "output", "loss", "plots", "gradients", "timeline")


def split_by_hand(window) -> None:
    """Source and output side by side again, as the person drags them: each dock is taken out and docked again
    (Qt's API splits a dock that was ever tabbed only into another tab, so the whole row is docked anew)."""
    d = window.docks
    horizontal, bottom = Qt.Orientation.Horizontal, Qt.DockWidgetArea.BottomDockWidgetArea
    for name in BOTTOM:
        window.removeDockWidget(d[name])
    window.addDockWidget(bottom, d["source"])
    window.splitDockWidget(d["source"], d["output"], horizontal)
    window.splitDockWidget(d["output"], d["loss"], horizontal)
    window.addDockWidget(bottom, d["timeline"], Qt.Orientation.Vertical)
    window.tabifyDockWidget(d["loss"], d["plots"])
    window.tabifyDockWidget(d["plots"], d["gradients"])
    for name in BOTTOM:
        d[name].show()
    d["loss"].raise_()
    window.layout().activate()


def test_a_row_the_window_tabbed_splits_again_in_a_large_window_after_a_restart(qtbot, make_window):
    # the window's own tabbing was forgotten at a restart: the row counted as tabbed by the person and stayed
    # tabbed on a 1920x1080 screen, source and output one panel each half the width
    window = make_window((1440, 900))
    qtbot.waitUntil(lambda: window.docks["source"].width() > 200)
    window.resize(1024, 640)
    qtbot.waitUntil(lambda: tabbed(window))
    window.close()
    again = make_window((1024, 640))
    d = again.docks
    qtbot.waitUntil(lambda: tabbed(again))  # the layout it was closed with
    again.resize(1920, 1080)
    qtbot.waitUntil(lambda: not tabbed(again))
    shown = lambda name: d[name].isVisible() and again.rect().intersects(d[name].geometry())  # noqa: E731
    qtbot.waitUntil(lambda: shown("source") and shown("output") and shown("loss"))


def test_a_panel_moved_in_a_tabbed_row_stays_where_it_was_put_when_the_window_grows(qtbot, make_window):
    # splitting the row rebuilt the whole bottom area: Gradient Flow, moved beside the timeline, went back into
    # the Loss tab group
    window = make_window((1024, 640))
    d = window.docks
    qtbot.waitUntil(lambda: tabbed(window))
    window.removeDockWidget(d["gradients"])  # what dragging its tab out and dropping it beside the timeline does
    window.splitDockWidget(d["timeline"], d["gradients"], Qt.Orientation.Horizontal)
    d["gradients"].show()

    def beside_the_timeline():
        assert abs(d["gradients"].geometry().top() - d["timeline"].geometry().top()) < 5
        assert d["gradients"].geometry().left() > d["timeline"].geometry().right()
        assert d["gradients"] not in window.tabifiedDockWidgets(d["loss"])

    qtbot.waitUntil(beside_the_timeline)
    window.resize(1920, 1080)
    qtbot.waitUntil(lambda: d["timeline"].width() > 600)
    beside_the_timeline()
    assert tabbed(window)  # the person's arrangement: the window leaves it be


def test_source_and_output_split_by_hand_in_a_small_window_stay_split(qtbot, make_window):
    # a row the person split in a 1024x640 window was tabbed again whenever the bottom row was rebalanced:
    # the module tree asking for width, the Editor tab, the model builder
    window = make_window((1024, 640))
    d = window.docks
    qtbot.waitUntil(lambda: tabbed(window))
    split_by_hand(window)
    qtbot.waitUntil(lambda: not tabbed(window) and window.rect().intersects(d["output"].geometry()))
    window.balance_bottom_row()
    window.resize(1030, 645)
    qtbot.waitUntil(lambda: window.width() == 1030)
    assert not tabbed(window)
    assert window.rect().intersects(d["source"].geometry()) and window.rect().intersects(d["output"].geometry())


def test_a_window_made_small_again_tabs_its_row_again(qtbot, make_window):
    # once per shrink: the window that split its row when it grew tabs it again when it shrinks
    window = make_window((1440, 900))
    qtbot.waitUntil(lambda: window.docks["source"].width() > 200)
    for _ in range(2):
        window.resize(1024, 640)
        qtbot.waitUntil(lambda: tabbed(window))
        window.resize(1920, 1080)
        qtbot.waitUntil(lambda: not tabbed(window))


def test_a_left_column_narrowed_by_hand_keeps_its_width_when_the_editor_tab_comes_back(qtbot, make_window):
    # each time the Editor tab came to the front the column was widened again, undoing the person's width
    window = make_window((1440, 900))
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: window.status_panel.state.text().startswith("Paused"), timeout=TIMEOUT)
    window.command("run_to_phase")
    qtbot.waitUntil(lambda: window.module_editor.tree.topLevelItemCount() > 0, timeout=TIMEOUT)
    editor, modules = window.docks["editor"], window.docks["modules"]
    narrow = editor.width()
    editor.raise_()
    qtbot.waitUntil(lambda: editor.width() > narrow + 20, timeout=TIMEOUT)  # widened for its columns
    window.resizeDocks([editor], [narrow], Qt.Orientation.Horizontal)  # the person drags the splitter back
    qtbot.waitUntil(lambda: editor.width() <= narrow + 2)
    modules.raise_()
    qtbot.waitUntil(lambda: window.rect().intersects(modules.geometry()))
    done = []  # connected after the window's own slot: its zero-length timer runs after the window's fit
    editor.visibilityChanged.connect(lambda shown: shown and QTimer.singleShot(0, lambda: done.append(1)))
    editor.raise_()
    qtbot.waitUntil(lambda: bool(done) and window.rect().intersects(editor.geometry()))
    window.layout().activate()
    assert editor.width() <= narrow + 2


def test_a_layout_saved_in_a_large_window_tabs_its_row_when_restored_in_a_small_one(qtbot, make_window):
    # closed at 1920x1080, opened again at 1024x640 (a smaller screen): source, output and loss side by side in
    # slivers ("The" of the output, "Lo... | T... | Gra..." for the plots) until the window was resized
    window = make_window((1920, 1080))
    qtbot.waitUntil(lambda: window.docks["source"].width() > 300)
    assert not tabbed(window)
    window.close()
    again = make_window((1024, 640))
    qtbot.waitUntil(lambda: tabbed(again))
    qtbot.waitUntil(lambda: assert_tabs_whole(tab_bar(again, "Gradient Flow")))


def test_keys_pressed_while_a_seek_plays_move_on_from_where_it_goes(qtbot, make_window, tmp_path, monkeypatch):
    # while a seek played, the timeline's cursor showed the event passing by (none, right after Home): a PageDown
    # pressed before the tape's reader caught up went from there, and Home, PageDown, PageDown landed in iteration 1
    tape = tmp_path / "run.tape"
    assert main(["record", script(tmp_path, "nan_run.py", NAN_SCRIPT), "-o", str(tape)]) == 0
    window = make_window()
    assert window.open_tape(str(tape))
    qtbot.waitUntil(lambda: window.session.status in ("paused", "finished"), timeout=TIMEOUT)
    held = [True]
    peek = ReplaySession._peek
    monkeypatch.setattr(ReplaySession, "_peek", lambda self: _WAIT if held[0] else peek(self))
    view = window.timeline.view
    view.setFocus()
    for key, n in ((Qt.Key.Key_Home, 0), (Qt.Key.Key_PageDown, 1), (Qt.Key.Key_PageDown, 2)):
        qtbot.keyClick(view, key)
        qtbot.waitUntil(lambda n=n: view.cursor_index() >= 0 and view.describe(view.cursor_index())[1] == n,
                        timeout=TIMEOUT)
    assert window.session.status == "running"  # the seek still waits for the tape's reader
    held[0] = False
    qtbot.waitUntil(lambda: window.session.status == "paused"
                    and window.status_panel.iteration.text() == "iteration 2", timeout=TIMEOUT)
