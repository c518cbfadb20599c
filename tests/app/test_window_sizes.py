"""The default layout at 1024x640, 1440x900 and 1920x1080: each panel reads, with the model builder open
and after it closes, and the graph fitted to the canvas it has."""

import pytest

from app.window import INSPECTOR_MOST
from tests.app.test_hidpi_layout import _left_width, assert_tabs_whole, tab_bar
from tests.shots import shoot

TIMEOUT = 15_000  # ms


@pytest.mark.parametrize("size", [(1024, 640), (1440, 900), (1920, 1080)])
def test_the_loss_groups_tabs_and_the_gradient_flows_choices_read_whole(qtbot, make_window, size):
    # at 1440x900 the loss group was 252 pixels wide: "gradient no… | per parame" over 2½ bars
    window = make_window(size)
    window.docks["gradients"].raise_()
    chart = window.gradient_flow

    def whole():
        assert_tabs_whole(tab_bar(window, "Gradient Flow"))
        for box in (chart.metric_box, chart.grouping_box):
            text = box.fontMetrics().horizontalAdvance(box.currentText())
            assert box.width() >= text + 24, (box.currentText(), box.width())
        assert window.docks["gradients"].width() >= chart.minimumSizeHint().width()

    qtbot.waitUntil(whole, timeout=TIMEOUT)
    assert window.docks["inspector"].width() <= INSPECTOR_MOST + 8  # 518 pixels of table at 1920x1080
    shoot(window, f"default_layout_{size[0]}.png")


def test_at_1024x640_the_builder_leaves_the_charts_tabs_whole_and_a_plot_to_read(qtbot, make_window):
    # the tabs read "Lo… T… Gradi…" and the prediction plot was about 50 pixels high
    window = make_window((1024, 640))
    window.builder.open()
    prediction = window.builder.prediction_dock
    qtbot.waitUntil(lambda: window.builder.builder_dock.width() >= 300, timeout=TIMEOUT)

    def readable():
        assert_tabs_whole(tab_bar(window, "Gradient Flow"))
        assert prediction.height() >= 200, prediction.height()

    qtbot.waitUntil(readable, timeout=TIMEOUT)
    shoot(window, "builder_1024.png")


@pytest.mark.parametrize("size", [(1024, 640), (1600, 900)])
def test_closing_the_builder_gives_its_width_back(qtbot, make_window, size):
    # closed, it left the Editor 400 pixels wide at 1024x640, the Modules dock 360 pixels at 1600x900
    window = make_window(size)
    before = _left_width(window)  # the module tree's
    window.builder.open()
    qtbot.waitUntil(lambda: window.builder.builder_dock.width() >= 300, timeout=TIMEOUT)
    builder = window.builder.builder_dock.width()
    window.builder.builder_dock.close()
    wanted = max(before, min(window.module_editor.wanted_width(), window.width() // 4))


    def given_back():  # to the tab Qt brings to the front: the module tree, or the editor with its columns whole
        shown = [d.width() for d in (window.docks["modules"], window.docks["editor"])
                 if d.isVisible() and window.rect().intersects(d.geometry())]
        assert shown and max(shown) <= wanted + 16 and max(shown) < builder, (shown, wanted)

    qtbot.waitUntil(given_back, timeout=TIMEOUT)
