"""A first-time user's first minutes with the window at common screen sizes: what they see must read."""

import pytest
from PySide6.QtWidgets import QTabBar

from app.window import MainWindow
from tests.app.test_big_graph_stepping import whole_graph_shown
from tests.app.test_window import TIMEOUT, paused
from tests.shots import shoot


def step_into(qtbot, window, times: int) -> None:
    for _ in range(times):
        seen = window.session.records
        window.command("step_into")
        qtbot.waitUntil(lambda seen=seen: paused(window) and window.session.records > seen, timeout=TIMEOUT)


@pytest.mark.parametrize("size", [(1280, 720), (1024, 640)])
def test_the_demo_graph_fitted_on_a_laptop_screen_shows_its_labels(qtbot, make_window, size):
    # at 1280x720 the whole demo graph fits with nodes 36 px wide: they were drawn as blank boxes, with no
    # op, parameter or module name on any of them
    window = make_window(size)
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    step_into(qtbot, window, 5)
    # an op the script assigns reads as its name and its op: `h = F.tanh(self.fc1(x))`, `logits = model(x)`
    qtbot.waitUntil(lambda: "h \u00b7 tanh" in window.canvas.visible_labels(), timeout=TIMEOUT)
    assert whole_graph_shown(window.canvas)
    labels = window.canvas.visible_labels()
    assert labels.count("linear") == 2 and "logits \u00b7 linear" in labels
    assert "weight" in labels and "fc2  \u00b7  Linear" in labels  # in fc1's box
    shoot(window, f"first_use_graph_{size[0]}.png")


def elided_tabs(window: MainWindow) -> list[str]:
    """The titles of dock tabs drawn narrower than their whole text needs."""
    bars = [bar for bar in window.findChildren(QTabBar) if bar.parent() is window and bar.isVisible()]
    return [bar.tabText(i) for bar in bars for i in range(bar.count())
            if bar.tabRect(i).width() < bar.tabSizeHint(i).width()]


@pytest.mark.parametrize("size", [(1280, 720), (1024, 640)])
def test_every_dock_tab_reads_whole_on_a_small_screen(qtbot, make_window, size):
    # at 1280x720 the tabs under the loss plot read "Lo… | Traini… | Gradient Fl…", at 1024x640 also "Modul…"
    window = make_window(size)
    qtbot.waitUntil(lambda: window.docks["loss"].width() > 0, timeout=TIMEOUT)
    assert elided_tabs(window) == []
    shoot(window, f"first_use_tabs_{size[0]}.png")


def test_a_window_made_very_small_logs_no_qt_warning(qtbot, make_window, qtlog):
    # shrinking the window to 640x420 printed "QMainWidget::resizeDocks: all sizes need to be larger than 0"
    window = make_window((1280, 720))
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    for width, height in ((800, 500), (640, 420)):
        window.resize(width, height)  # as far as the panels' minimum widths let it
        qtbot.waitUntil(lambda h=height: window.height() == h, timeout=TIMEOUT)
    assert not [r.message for r in qtlog.records if "resizeDocks" in r.message]


def test_the_inspectors_heatmap_tab_keeps_the_statistics_inside_the_dock(qtbot, make_window):
    # at 1280x720, once the Heatmap tab had shown a tensor, its size note widened the inspector past its
    # dock: a horizontal scroll bar appeared and the statistics table's gradient column was cut off
    window = make_window((1280, 720))
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    step_into(qtbot, window, 5)
    area = window.docks["inspector"].widget()
    heatmap = window.inspector.heatmap
    window.inspector.tabs.setCurrentWidget(heatmap)
    qtbot.waitUntil(lambda: "\u00d7" in heatmap.info.text(), timeout=TIMEOUT)  # its values drawn: "64 x 32"
    window.inspector.tabs.setCurrentIndex(2)  # Values
    qtbot.waitUntil(lambda: window.inspector.table.isVisible(), timeout=TIMEOUT)
    # the width the inspector takes at its next layout, and what it has now: both within the dock
    assert window.inspector.minimumSizeHint().width() <= area.viewport().width()
    qtbot.waitUntil(lambda: window.inspector.width() <= area.viewport().width(), timeout=TIMEOUT)
    assert area.horizontalScrollBar().maximum() == 0
    shoot(window, "first_use_inspector_values_tab.png")
