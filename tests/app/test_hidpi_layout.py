"""Small logical windows (a HiDPI laptop: 1920x1080 at a scale factor of 2 is 960x540) and the model builder
at 1280x720: the current op reads, panels share the row under the graph, and dock tabs read whole."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QTabBar

TIMEOUT = 15_000  # ms
MIN_DRAWN_PX = 8  # the smallest size a node's label is laid out at (0: not drawn)


def paused(window) -> bool:
    return window.status_panel.state.text().startswith("Paused")


def tab_bar(window, title: str) -> QTabBar:
    """The dock tab bar showing a tab called `title`."""
    for bar in window.findChildren(QTabBar):
        if bar.isVisible() and title in [bar.tabText(i) for i in range(bar.count())]:
            return bar
    raise AssertionError(f"no tab bar shows {title!r}")


def assert_tabs_whole(bar: QTabBar) -> None:
    metrics = bar.fontMetrics()
    for i in range(bar.count()):
        text = bar.tabText(i)
        assert bar.tabRect(i).width() >= metrics.horizontalAdvance(text) + 8, f"{text!r} is cut"


def test_the_current_op_reads_in_a_960x540_window(qtbot, make_window):
    # fitted into the graph's share of 960x540 the demo's nodes were 22 pixels wide: no label anywhere
    window = make_window((960, 540))
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    canvas = window.canvas
    for _ in range(4):
        with qtbot.waitSignal(window.pump.changed, timeout=TIMEOUT):
            window.command("step_into")
        qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    key = lambda: canvas.current_key  # noqa: E731

    def readable():
        assert key() is not None and canvas.settled
        assert canvas.label_px(key()) >= MIN_DRAWN_PX, (canvas.size(), canvas.label_px(key()))
    qtbot.waitUntil(readable, timeout=TIMEOUT)
    assert window.canvas.visible_labels()


def test_a_960x540_window_tabs_source_and_output_so_each_reads(qtbot, make_window):
    window = make_window((960, 540))
    d = window.docks
    chars = window.fontMetrics().averageCharWidth()
    # side by side they were 167 and 141 pixels wide: a few characters of code each
    qtbot.waitUntil(lambda: d["source"].width() >= 40 * chars)
    assert d["output"] in window.tabifiedDockWidgets(d["source"])
    assert_tabs_whole(tab_bar(window, "Output"))
    assert_tabs_whole(tab_bar(window, "Gradient Flow"))


def test_a_large_window_keeps_source_and_output_side_by_side(qtbot, make_window):
    window = make_window((1440, 900))
    d = window.docks
    qtbot.waitUntil(lambda: d["source"].width() > 200 and d["output"].width() > 200)
    assert d["output"] not in window.tabifiedDockWidgets(d["source"])


def test_the_builder_at_1280x720_leaves_the_bottom_rows_tabs_whole(qtbot, make_window):
    # the builder took 538 of 1280 pixels and the loss group's tabs read "Lo… | T… | Gradi…"
    window = make_window((1280, 720))
    window.builder.open()
    qtbot.waitUntil(lambda: window.builder.builder_dock.width() >= 300)
    bar = tab_bar(window, "Gradient Flow")

    def whole():
        assert_tabs_whole(bar)
        for name in ("source", "output"):
            assert window.docks[name].width() >= 12 * window.fontMetrics().averageCharWidth(), name

    qtbot.waitUntil(whole, timeout=TIMEOUT)


@pytest.mark.parametrize("size", [(960, 540), (1280, 720)])
def test_the_module_tree_shows_its_classes_whole(qtbot, make_window, size):
    # at 960x540 the left column was 136 pixels wide and the Class column read "Spira…"; widened for it,
    # it took the width from the row under the graph alike, and at 1280x720 the loss tab read "Lo…"
    window = make_window(size)
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    tree = window.module_tree
    for _ in range(6):
        window.command("step_over")
        qtbot.waitUntil(lambda: paused(window) or tree.topLevelItemCount() > 0, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: tree.topLevelItemCount() > 0, timeout=TIMEOUT)

    def classes_whole():
        metrics = tree.fontMetrics()
        item = tree.topLevelItem(0)
        rect = tree.visualItemRect(item)
        right = tree.header().sectionPosition(1) + metrics.horizontalAdvance(item.text(1))
        assert right <= tree.viewport().width() and rect.height() > 0, (item.text(1), right, tree.viewport().width())
        assert_tabs_whole(tab_bar(window, "Gradient Flow"))  # the wider left column did not squeeze the row

    qtbot.waitUntil(classes_whole, timeout=TIMEOUT)


def _left_width(window) -> int:
    return max(d.width() for d in window.findChildren(QDockWidget)
               if d.isVisible() and window.rect().intersects(d.geometry())
               and window.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea)


def test_the_module_tree_in_front_gives_back_the_builders_width(qtbot, make_window):
    window = make_window((1280, 720))
    narrow = _left_width(window)
    window.builder.open()
    qtbot.waitUntil(lambda: _left_width(window) >= 300, timeout=TIMEOUT)
    window.docks["modules"].raise_()
    qtbot.waitUntil(lambda: _left_width(window) <= narrow + 8, timeout=TIMEOUT)
    window.builder.builder_dock.raise_()
    qtbot.waitUntil(lambda: _left_width(window) >= 300, timeout=TIMEOUT)


def test_after_a_restart_with_the_builder_open_the_module_tree_in_front_is_narrow(qtbot, make_window):
    # the left column kept the builder's width with Modules in front
    window = make_window((1280, 720))
    narrow = _left_width(window)
    window.builder.open()
    qtbot.waitUntil(lambda: _left_width(window) >= 300, timeout=TIMEOUT)
    window.close()
    again = make_window((1280, 720))
    modules = again.docks["modules"]
    qtbot.waitUntil(lambda: again.builder.builder_dock.isVisible() and again.rect().intersects(modules.geometry()),
                    timeout=TIMEOUT)
    qtbot.waitUntil(lambda: _left_width(again) <= narrow + 8, timeout=TIMEOUT)


def test_rebalancing_a_960x540_windows_tabbed_row_keeps_its_tabs_whole(qtbot, make_window):
    # with source and output tabbed, the tab behind lies outside the window: counted as a place of the row,
    # it made the row seem wider than it is, and the loss group's tabs were cut ("Lo… | Traini…")
    window = make_window((960, 540))
    d = window.docks
    qtbot.waitUntil(lambda: d["output"] in window.tabifiedDockWidgets(d["source"]))
    window.balance_bottom_row()
    window.layout().activate()  # the new sizes, now
    assert_tabs_whole(tab_bar(window, "Gradient Flow"))  # the loss dock went from 233 pixels to 171
