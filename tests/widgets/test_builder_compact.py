"""The builder panel in a narrow dock and a wide one, offscreen: the palette beside the layer list where the panel
has the room, popped up from "+ Add…" where it does not; nothing scrolls sideways; the arguments show whole."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractScrollArea

from app.builder import PanelServices
from tests.shots import shoot, shown
from widgets.builder_panel import BuilderPanel


def layer_texts(panel) -> list[str]:
    return [panel.tree.topLevelItem(i).text(0) for i in range(panel.tree.topLevelItemCount())]


@pytest.fixture
def narrow(qtbot):
    """The builder as wide as its dock opens in a 1024x640 window."""
    panel = shown(qtbot, BuilderPanel(PanelServices(), check_delay_ms=10), 300, 520)
    panel.check_now()
    return panel


def test_a_narrow_panel_fits_its_width_and_pops_the_palette_up_from_add(qtbot, narrow):
    # beside the list in a 385-pixel dock the palette read "Hardshrin", "LeakyReL" over a sideways scroll bar,
    # and the panel asked for 385 pixels (a third of the window beside the graph at 1024x640)
    panel = narrow
    assert panel.minimumSizeHint().width() <= 300
    assert not panel.palette_inline() and not panel.palette.isVisible()
    assert panel.tree.width() >= 0.8 * panel.width()  # the list has the panel's width
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.palette.isVisible() and panel.filter.hasFocus())
    popup = panel.palette.window()
    assert popup is not panel.window()
    names = panel.palette.fontMetrics().horizontalAdvance("TransformerEncoderLayer")
    assert panel.palette.viewport().width() >= names + 2 * panel.palette.indentation()  # its names whole
    shoot(popup, "builder_palette_popup.png")
    qtbot.keyClicks(panel.filter, "tanh")
    qtbot.keyClick(panel.filter, Qt.Key.Key_Return)
    assert panel.palette.hasFocus() and panel.palette.currentItem().text(0) == "Tanh"
    qtbot.keyClick(panel.palette, Qt.Key.Key_Return)  # added after the selected row; the popup goes
    assert layer_texts(panel)[:2] == ["Linear(2, 32)", "Tanh"]
    qtbot.waitUntil(lambda: not popup.isVisible())
    assert panel.tree.currentItem().text(0) == "Tanh"


def test_insert_in_the_layer_list_opens_the_palette_and_escape_closes_it(qtbot, narrow):
    panel = narrow
    panel.tree.setFocus()
    qtbot.keyClick(panel.tree, Qt.Key.Key_Insert)
    qtbot.waitUntil(lambda: panel.palette.isVisible() and panel.filter.hasFocus())
    qtbot.keyClick(panel.filter, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not panel.palette.isVisible())
    assert layer_texts(panel) == ["Linear(2, 32)", "ReLU", "Linear(32, 32)", "ReLU", "Linear(32, 2)"]


def test_a_wide_panel_shows_the_palette_beside_the_list_its_long_names_elided_in_the_middle(qtbot):
    panel = shown(qtbot, BuilderPanel(PanelServices(), check_delay_ms=10), 430, 700)
    qtbot.waitUntil(panel.palette_inline)
    assert panel.palette.isVisible() and panel.palette.window() is panel.window()
    right_edge = panel.palette.mapTo(panel, panel.palette.rect().topRight()).x()
    assert right_edge < panel.tree.mapTo(panel, panel.tree.rect().topLeft()).x()  # on the list's left
    assert panel.palette.horizontalScrollBar().maximum() == 0  # no sideways scrolling: long names elide
    assert panel.palette.textElideMode() == Qt.TextElideMode.ElideMiddle
    lazy = panel.palette.findItems("LazyConvTranspose2d", Qt.MatchFlag.MatchRecursive)[0]
    assert lazy.toolTip(0).startswith("LazyConvTranspose2d")  # whole in its tooltip
    chars = panel.tree.fontMetrics().horizontalAdvance("Conv2d(1, 8, 3, padding=1)  (N, 8, 28, 28)")
    assert panel.tree.viewport().width() >= chars  # the list keeps room for a convolution's row
    panel.resize(300, 700)  # narrowed: the palette goes into the popup
    qtbot.waitUntil(lambda: not panel.palette_inline() and not panel.palette.isVisible())
    panel.resize(430, 700)
    qtbot.waitUntil(lambda: panel.palette_inline() and panel.palette.isVisible())
    shoot(panel, "builder_palette_inline.png")


def test_each_tab_fits_a_narrow_panel_and_the_arguments_show_every_row(qtbot, narrow):
    panel = narrow
    for i in range(panel.tabs.count()):  # the Data tab asked 369 pixels: its dataset box and starter button
        assert panel.tabs.widget(i).minimumSizeHint().width() <= panel.tabs.width(), panel.tabs.tabText(i)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))  # Linear: in_features, out_features, bias
    scroll = next(a for a in panel.args_box.findChildren(QAbstractScrollArea) if a.widget() is panel.layer_args)
    # at 1024x640 the list kept three fifths of the height and the form showed two of its rows
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum() == 0)
    assert scroll.horizontalScrollBar().maximum() == 0
    shoot(panel, "builder_narrow.png")
