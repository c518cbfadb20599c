"""Cells of one column of a tree that wrap onto more lines where the column is narrower than their text, never cut.

    tree.setUniformRowHeights(False)
    WrappedCells.install(tree, column)     # its rows grow as the column narrows, and shrink as it widens
    cell_pad(tree)                         # what a cell adds to its text's width (a text that width + pad is whole)
    two_line_width(text, metrics)          # the narrowest width its text wraps onto two lines in

The Alerts panel's Kind column: in a dock 300 pixels wide "weight decay too high" read "weight decay too…"; two
lines read whole, and the message beside it keeps its share.
"""

from __future__ import annotations

from PySide6.QtCore import QRect
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTreeWidget

TALL = 1 << 16  # a cell's height while its wrapped text is measured: room for every line


class WrappedCells(QStyledItemDelegate):
    """Draws a column's texts wrapped at word boundaries to its width, and sizes their rows to their lines."""

    @classmethod
    def install(cls, tree: QTreeWidget, column: int) -> WrappedCells:
        """Wrap `column` of `tree` (whose rows may then differ in height); the rows follow the column's width."""
        cells = cls(tree)
        tree.setItemDelegateForColumn(column, cells)
        # a row's height is measured once; a column resized (by the panel or the person) measures its rows again
        tree.header().sectionResized.connect(lambda at, _old, _new: at == column and tree.scheduleDelayedItemsLayout())
        return cells

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:
        super().initStyleOption(option, index)
        option.features |= QStyleOptionViewItem.ViewItemFeature.WrapText

    def sizeHint(self, option: QStyleOptionViewItem, index):
        # a tree asks with no width: the column's own width decides where the text wraps
        option = QStyleOptionViewItem(option)
        option.rect = QRect(0, 0, self.parent().columnWidth(index.column()), TALL)
        return super().sizeHint(option, index)


def cell_pad(tree: QTreeWidget) -> int:
    """The pixels a cell of `tree` adds to its text's width: the style's text margin each side, and a pixel each side
    for the rounding of the text's width (a column of exactly the margins and the text cut its last letter)."""
    margin = tree.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, tree) + 1
    return 2 * margin + 2


def two_line_width(text: str, metrics: QFontMetrics) -> int:
    """The narrowest width in which `text` wraps at a space onto at most two lines (its own width without a space)."""
    words = text.split(" ")
    return min(max(metrics.horizontalAdvance(" ".join(words[:k])), metrics.horizontalAdvance(" ".join(words[k:])))
               for k in range(1, len(words))) if len(words) > 1 else metrics.horizontalAdvance(text)
