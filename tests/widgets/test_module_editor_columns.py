"""The module editor's tree and details in a narrow dock (the Editor at 1024x640) and a wide one, offscreen:
nothing scrolls sideways, and what a column cannot show whole is elided with the whole text in a tooltip."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea

import engine.nn as nn
import engine.optim as optim
from app.edit_history import describe_model
from tests.shots import shoot, shown
from widgets.module_editor import ModuleEditor

NAME, CLASS, PARAMS, MODE, FROZEN = range(5)  # the tree's columns


class SpiralClassifierWithResidualBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.input_projection = nn.Linear(2, 32)
        self.residual_block_layers = nn.ModuleList(
            [nn.Sequential(nn.Linear(32, 32), nn.LayerNorm(32), nn.Tanh(), nn.Dropout(0.1)) for _ in range(2)])
        self.classification_head = nn.Linear(32, 2)


def editor_at(qtbot, width: int) -> ModuleEditor:
    model = SpiralClassifierWithResidualBlocks()
    model.residual_block_layers[1].eval()
    editor = shown(qtbot, ModuleEditor(), width, 560)
    editor.set_model(*describe_model(model, optim.Adam(model.parameters(), lr=0.01)))
    return editor


def rows(tree):
    stack = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        yield item
        stack += [item.child(i) for i in range(item.childCount())]


def shown_columns(tree) -> list[int]:
    return [col for col in range(tree.columnCount()) if not tree.header().isSectionHidden(col)]


def test_in_a_narrow_dock_the_names_and_frozen_ticks_fit_each_class_after_its_name(qtbot):
    # at 1024x640 the Editor (240 pixels of tree) scrolled sideways: Params, Mode and the Frozen ticks out of
    # sight, "Seq..." and "Lin..." in a class column of 60 pixels
    editor = editor_at(qtbot, 240)
    tree, header = editor.tree, editor.tree.header()
    qtbot.waitUntil(lambda: shown_columns(tree) == [NAME, FROZEN])
    assert header.length() <= tree.viewport().width()
    assert tree.horizontalScrollBar().maximum() == 0
    indent = tree.indentation()
    for item in rows(tree):  # every name whole, with its depth's indentation and the branch arrow
        depth = 0
        parent = item.parent()
        while parent is not None:
            depth, parent = depth + 1, parent.parent()
        need = tree.fontMetrics().horizontalAdvance(item.text(NAME)) + (depth + 1) * indent
        if item.text(NAME) != "SpiralClassifierWithResidualBlocks":  # the root, named by its class, may elide
            assert header.sectionSize(NAME) >= need, item.text(NAME)
        assert item.data(NAME, Qt.ItemDataRole.ToolTipRole).startswith(item.data(NAME, Qt.ItemDataRole.UserRole))
    head = editor.row("SpiralClassifierWithResidualBlocks.residual_block_layers.1.3")
    assert head[:3] == ("Dropout", "", "eval")  # what the hidden columns hold, for the tooltips and tests
    shoot(editor, "module_editor_240.png")


def test_in_a_wide_dock_every_column_shows_whole_and_the_names_take_the_rest(qtbot):
    editor = editor_at(qtbot, 480)
    tree, header = editor.tree, editor.tree.header()
    qtbot.waitUntil(lambda: header.length() <= tree.viewport().width())
    assert shown_columns(tree) == [NAME, CLASS, PARAMS, MODE, FROZEN]
    for col in (NAME, PARAMS, MODE, FROZEN):
        assert header.sectionSize(col) >= tree.sizeHintForColumn(col), col
    assert header.sectionSize(NAME) + header.sectionSize(CLASS) >= tree.viewport().width() - sum(
        header.sectionSize(col) for col in (PARAMS, MODE, FROZEN)) - 1  # no empty stretch at the end
    shoot(editor, "module_editor_480.png")


@pytest.mark.parametrize("path", ["SpiralClassifierWithResidualBlocks",
                                  "SpiralClassifierWithResidualBlocks.residual_block_layers.0.1"])
def test_the_details_fit_a_narrow_dock(qtbot, path):
    # "Freeze all 2,402 parameters inside" and the unbroken class name made the details wider than the dock
    editor = editor_at(qtbot, 240)
    editor.select(path)
    scroll = editor.findChild(QScrollArea)
    qtbot.waitUntil(lambda: editor.details.width() <= scroll.viewport().width())
    assert editor.details.minimumSizeHint().width() <= scroll.viewport().width()


def test_each_row_counts_the_parameters_under_it_and_its_frozen_tick_says_how_many_train(qtbot):
    model = SpiralClassifierWithResidualBlocks()
    for p in model.residual_block_layers[0].parameters():
        p.requires_grad_(False)
    editor = shown(qtbot, ModuleEditor(), 700, 560)
    editor.set_model(*describe_model(model, optim.Adam(model.parameters(), lr=0.01)))
    by_path = {item.data(0, Qt.ItemDataRole.UserRole): item for item in rows(editor.tree)}
    expect = {path: sum(p.numel() for p in module.parameters()) for path, module in
              (("SpiralClassifierWithResidualBlocks", model),
               ("SpiralClassifierWithResidualBlocks.residual_block_layers", model.residual_block_layers),
               ("SpiralClassifierWithResidualBlocks.residual_block_layers.0", model.residual_block_layers[0]),
               ("SpiralClassifierWithResidualBlocks.residual_block_layers.1.0", model.residual_block_layers[1][0]))}
    for path, total in expect.items():
        assert by_path[path].text(PARAMS) == f"{total:,}", path
    frozen = sum(p.numel() for p in model.residual_block_layers[0].parameters())
    assert by_path["SpiralClassifierWithResidualBlocks"].checkState(FROZEN) == Qt.CheckState.PartiallyChecked
    assert by_path["SpiralClassifierWithResidualBlocks.residual_block_layers.0"].checkState(FROZEN) == \
        Qt.CheckState.Checked
    assert "SpiralClassifierWithResidualBlocks.residual_block_layers.0.2" in by_path  # a Tanh: no count
    assert by_path["SpiralClassifierWithResidualBlocks.residual_block_layers.0.2"].text(PARAMS) == ""
    root_tip = by_path["SpiralClassifierWithResidualBlocks"].toolTip(NAME)
    assert f"{sum(p.numel() for p in model.parameters()) - frozen:,} of them trainable" in root_tip
