"""Small logical windows (a HiDPI laptop: 1920x1080 at a scale factor of 2 is 960x540) and the model builder
at 1280x720: the current op reads, panels share the row under the graph, and dock tabs read whole."""

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QTabBar

from app.window import MainWindow

TIMEOUT = 15_000  # ms
MIN_DRAWN_PX = 8  # the smallest size a node's label is laid out at (0: not drawn)


def window_at(qtbot, tmp_path, width: int, height: int) -> MainWindow:
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.resize(width, height)
    window.show()
    qtbot.waitExposed(window)
    return window


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


def test_the_current_op_reads_in_a_960x540_window(qtbot, tmp_path):
    # fitted into the graph's share of 960x540 the demo's nodes were 22 pixels wide: no label anywhere
    window = window_at(qtbot, tmp_path, 960, 540)
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


def test_a_960x540_window_tabs_source_and_output_so_each_reads(qtbot, tmp_path):
    window = window_at(qtbot, tmp_path, 960, 540)
    d = window.docks
    chars = window.fontMetrics().averageCharWidth()
    # side by side they were 167 and 141 pixels wide: a few characters of code each
    qtbot.waitUntil(lambda: d["source"].width() >= 40 * chars)
    assert d["output"] in window.tabifiedDockWidgets(d["source"])
    assert_tabs_whole(tab_bar(window, "Output"))
    assert_tabs_whole(tab_bar(window, "Gradient Flow"))


def test_a_large_window_keeps_source_and_output_side_by_side(qtbot, tmp_path):
    window = window_at(qtbot, tmp_path, 1440, 900)
    d = window.docks
    qtbot.waitUntil(lambda: d["source"].width() > 200 and d["output"].width() > 200)
    assert d["output"] not in window.tabifiedDockWidgets(d["source"])


def test_the_builder_at_1280x720_leaves_the_bottom_rows_tabs_whole(qtbot, tmp_path):
    # the builder took 538 of 1280 pixels and the loss group's tabs read "Lo… | T… | Gradi…"
    window = window_at(qtbot, tmp_path, 1280, 720)
    window.builder.open()
    qtbot.waitUntil(lambda: window.builder.builder_dock.width() >= 300)
    bar = tab_bar(window, "Gradient Flow")

    def whole():
        assert_tabs_whole(bar)
        for name in ("source", "output"):
            assert window.docks[name].width() >= 12 * window.fontMetrics().averageCharWidth(), name

    qtbot.waitUntil(whole, timeout=TIMEOUT)
