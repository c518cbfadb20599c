"""Finding, fitting and folding a deep model's graph: Find opens the collapsed modules that hide a match and scrolls
the Modules tree to it, Fit shows a very tall graph at a zoom whose labels read, Collapse Modules has a key, and a
module's box in the Modules tree reads as folded or open, not as switched off."""

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

import engine
from app.graph_model import MODULE
from app.help import shortcut_groups
from engine import nn
from tests.app.graphs import recorded_model
from tests.app.test_graph_presenter import presenter_of
from widgets.module_tree import PATH

BLOCKS = 40


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return x + self.fc2(self.fc1(x).relu())


class Deep(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[Block() for _ in range(BLOCKS)])
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.blocks(x))


def deep_presenter(qtbot, size=(900, 600)):
    presenter = presenter_of(qtbot)
    presenter.canvas.resize(*size)
    presenter.canvas.show()
    presenter.module_tree.resize(240, 300)
    presenter.module_tree.show()
    net = Deep()
    presenter.set_model(recorded_model(lambda: net(engine.randn(3, 4)).sum().backward()))
    qtbot.waitUntil(lambda: not presenter.busy, timeout=30_000)
    return presenter


def shown(canvas, key) -> bool:
    view = canvas.view
    return key in view.node_of and view.keys[view.node_of[key]] == key


def test_find_opens_only_the_collapsed_modules_that_hide_a_match_and_scrolls_the_tree_to_it(qtbot):
    # after Collapse Modules, "blocks.30.fc2" (or the inspector's own key of a node) found "no match"
    presenter = deep_presenter(qtbot)
    canvas, tree = presenter.canvas, presenter.module_tree
    presenter.collapse_all(True)
    qtbot.waitUntil(lambda: not presenter.busy, timeout=30_000)
    assert not shown(canvas, "Deep.blocks.30.fc2/linear:0")
    assert canvas.search_keys("blocks.30.fc2")[:1] == ["Deep.blocks.30.fc2/linear:0"]  # the op before its weight
    key = canvas.search("blocks.30.fc2")
    assert key == "Deep.blocks.30.fc2/linear:0" and canvas.search_place == (1, 3)  # the op, its weight and bias
    qtbot.waitUntil(lambda: not presenter.busy and canvas.selected_key == key, timeout=30_000)
    assert shown(canvas, key)
    view = canvas.view
    folded = {view.keys[i] for i in range(len(view)) if int(view.kind[i]) == MODULE}
    assert "Deep.blocks.29" in folded and "Deep.blocks.31" in folded and "Deep.head" in folded  # the rest stay shut
    rect = canvas.node_screen_rect(key)
    assert canvas.rect().contains(rect.center().toPoint()) and canvas.label_px(key) > 0  # in view, readable
    qtbot.waitUntil(lambda: tree.currentItem() is not None and tree.currentItem().data(0, PATH) ==
                    "Deep.blocks.30.fc2")
    assert tree.viewport().rect().intersects(tree.visualItemRect(tree.currentItem()))
    # F3 goes on to its weight, drawn now; the inspector's whole key of a node in another folded block opens that
    assert canvas.search("blocks.30.fc2") == "Deep.blocks.30.fc2/linear:0/in1"
    whole = "Deep.blocks.7.fc1/linear:0"
    assert canvas.search(whole) == whole
    qtbot.waitUntil(lambda: not presenter.busy and canvas.selected_key == whole, timeout=30_000)
    assert shown(canvas, whole) and shown(canvas, "Deep.blocks.30.fc2/linear:0")


def test_find_in_the_window_scrolls_the_modules_tree_to_a_node_it_finds_drawn(qtbot, window):
    presenter = window.graph
    net = Deep()
    presenter.set_model(recorded_model(lambda: net(engine.randn(3, 4)).sum().backward()))
    qtbot.waitUntil(lambda: not presenter.busy, timeout=30_000)
    tree = window.module_tree
    assert window.find("blocks.38.fc1").startswith("Deep.blocks.38.fc1/linear:0")  # its weight, named like it
    qtbot.waitUntil(lambda: tree.currentItem() is not None and tree.currentItem().data(0, PATH) == "Deep.blocks.38.fc1")
    assert tree.viewport().rect().intersects(tree.visualItemRect(tree.currentItem()))
    assert window.search_count.text() == "1 of 3"


def test_fit_shows_a_very_tall_graph_readably_and_again_whole(qtbot):
    # with every module open, Fit drew one vertical hairline: 1,000 nodes in a column, no label
    presenter = deep_presenter(qtbot)
    canvas = presenter.canvas
    key = "Deep.blocks.20.fc1/linear:0"
    canvas.select(key)
    canvas.box.setRange(canvas.fit_rect())  # somewhere else first
    presenter.fit()
    assert canvas.fitted() == "across"
    assert canvas.label_px(key) > 0 and canvas.rect().contains(canvas.node_screen_rect(key).center().toPoint())
    assert len(canvas.drawn_labels()) > 5
    presenter.fit()  # again: the whole, for its shape
    assert canvas.fitted() == "whole" and canvas.label_px(key) == 0
    presenter.fit()
    assert canvas.fitted() == "across"


def test_collapse_and_expand_modules_have_keys_the_help_lists(window):
    collapse, expand = window.actions["collapse_modules"], window.actions["expand_modules"]
    assert not collapse.shortcut().isEmpty() and not expand.shortcut().isEmpty()
    listed = [a for _, actions in shortcut_groups(window.menuBar(), window) for a in actions]
    assert collapse in listed and expand in listed


def indicator(tree, state: QStyle.StateFlag) -> np.ndarray:
    """The Modules tree's box for a row in `state`, drawn 32 pixels wide, as an array of its darkness."""
    image = QImage(32, 32, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    option = QStyleOptionViewItem()
    option.rect, option.state, option.palette = QRect(0, 0, 32, 32), state | QStyle.StateFlag.State_Enabled, \
        tree.palette()
    painter = QPainter(image)
    tree.style().drawPrimitive(QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck, option, painter, tree)
    painter.end()
    ptr = image.constBits()
    pixels = np.frombuffer(ptr, np.uint8).reshape(32, 32, 4)[..., :3].astype(int)
    return 255 - pixels.mean(axis=2)


def test_a_modules_box_reads_as_folded_or_open_not_as_ticked(qtbot, window):
    # collapsing the modules unticked every box, which read as switching the modules off
    tree = window.module_tree
    folded, opened = indicator(tree, QStyle.StateFlag.State_Off), indicator(tree, QStyle.StateFlag.State_On)
    centre = 16
    assert folded[centre - 5, centre] > 100 and folded[centre, centre - 5] > 100  # a plus: a click opens it
    assert opened[centre - 5, centre] < 60 and opened[centre, centre - 5] > 100  # a minus: a click folds it
    assert opened[22, 10] < 60 and opened[10, 22] < 60  # no tick's strokes
    presenter = window.graph
    net = Deep()
    presenter.set_model(recorded_model(lambda: net(engine.randn(3, 4)).sum().backward()))
    qtbot.waitUntil(lambda: not presenter.busy, timeout=30_000)
    presenter.collapse_all(True)
    row = tree.topLevelItem(0)
    assert row.checkState(0) == Qt.CheckState.Unchecked and "folded into one box" in row.toolTip(0)


def test_after_collapse_modules_the_tree_lists_every_module_and_picking_a_folded_one_opens_what_hides_it(qtbot):
    # after Collapse Modules the tree listed "Deep" alone: a module folded away in the graph could not be reached
    presenter = deep_presenter(qtbot)
    canvas, tree = presenter.canvas, presenter.module_tree
    every = tree.paths()
    presenter.collapse_all(True)
    qtbot.waitUntil(lambda: not presenter.busy, timeout=30_000)
    assert "Deep.blocks.30.fc2" not in canvas.view.keys and tree.paths() == every
    row = next(item for item in tree.findItems("fc2", Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive)
               if item.data(0, PATH) == "Deep.blocks.30.fc2")
    tree.setCurrentItem(row)  # picked, as a click or the arrow keys pick it
    qtbot.waitUntil(lambda: not presenter.busy and canvas.selected_key == "Deep.blocks.30.fc2", timeout=30_000)
    assert "Deep.blocks.30.fc2" in canvas.view.keys  # its own box folded still: the calls around it opened, as Find
    view = canvas.view
    folded = {view.keys[i] for i in range(len(view)) if int(view.kind[i]) == MODULE}
    assert {"Deep.blocks.29", "Deep.blocks.30.fc1", "Deep.head"} <= folded  # the rest stay shut
    rect = canvas.node_screen_rect("Deep.blocks.30.fc2")
    assert canvas.rect().contains(rect.center().toPoint())
    assert tree.paths() == every
    presenter.expand("Deep.blocks.7.fc1", True)  # its box opened in the tree: drawn open, inside its opened block
    qtbot.waitUntil(lambda: not presenter.busy and shown(canvas, "Deep.blocks.7.fc1/linear:0"), timeout=30_000)
