"""A paged table of tensor values: rows and columns are read a page at a time as the view scrolls.

An N-D tensor shows as rows of its last axis (row header: the index of the leading axes), a 1-D one
as a column, a scalar as one cell. The source is a numpy array (or heatmap.Difference), or a callback
`block(r0, r1, c0, c1) -> 2-D array` with the table's (rows, cols) shape given, for values that live
elsewhere (a tape, a remote process).

Inputs: `ValueTable.set_array(array)` or `set_source(block, shape, index_shape)`; `clear()`.
Outputs: none beyond QTableView's; Ctrl+C copies the selected cells as tab-separated text.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

ROW_PAGE = 200
COL_PAGE = 50
_CACHED_BLOCKS = 64
_BAD = QColor(224, 49, 49, 60)

_ROOT = QModelIndex()
Block = Callable[[int, int, int, int], np.ndarray]


def array_blocks(array) -> tuple[Block, tuple[int, int], tuple[int, ...]]:
    """A block reader over an array: (block function, (rows, cols), shape of the leading axes)."""
    shape = tuple(array.shape)
    if len(shape) == 0:
        return (lambda r0, r1, c0, c1: np.asarray(array[()]).reshape(1, 1)), (1, 1), ()
    if len(shape) == 1:
        return (lambda r0, r1, c0, c1: np.asarray(array[r0:r1]).reshape(-1, 1)), (shape[0], 1), ()
    lead = shape[:-1]

    def block(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        # index arrays for the leading axes, so a non-contiguous array is never reshaped (copied) whole
        idx = np.unravel_index(np.arange(r0, r1), lead)
        return np.asarray(array[(*(i[:, None] for i in idx), np.arange(c0, c1)[None, :])])

    return block, (math.prod(lead), shape[-1]), lead


class PagedArrayModel(QAbstractTableModel):
    """A table over a block source that grows by ROW_PAGE rows (fetchMore) and COL_PAGE columns."""

    def __init__(self, block: Block, shape: tuple[int, int], index_shape: tuple[int, ...] = (),
                 parent=None) -> None:
        super().__init__(parent)
        self._block = block
        self.total_rows, self.total_cols = shape
        self._index_shape = index_shape
        self._rows = min(self.total_rows, ROW_PAGE)
        self._cols = min(self.total_cols, COL_PAGE)
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.blocks_read = 0

    @classmethod
    def over(cls, array, parent=None) -> PagedArrayModel:
        """A model over an array (or heatmap.Difference)."""
        block, shape, lead = array_blocks(array)
        return cls(block, shape, lead, parent)

    # ---- paging ---------------------------------------------------------------------------------
    def rowCount(self, parent=_ROOT) -> int:
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent=_ROOT) -> int:
        return 0 if parent.isValid() else self._cols

    def canFetchMore(self, parent=_ROOT) -> bool:
        return not parent.isValid() and self._rows < self.total_rows

    def fetchMore(self, parent=_ROOT) -> None:
        if parent.isValid():
            return
        more = min(ROW_PAGE, self.total_rows - self._rows)
        if more > 0:
            self.beginInsertRows(QModelIndex(), self._rows, self._rows + more - 1)
            self._rows += more
            self.endInsertRows()

    def can_fetch_more_columns(self) -> bool:
        """Whether columns beyond those shown exist."""
        return self._cols < self.total_cols

    def fetch_more_columns(self) -> None:
        """Show COL_PAGE more columns."""
        more = min(COL_PAGE, self.total_cols - self._cols)
        if more > 0:
            self.beginInsertColumns(QModelIndex(), self._cols, self._cols + more - 1)
            self._cols += more
            self.endInsertColumns()

    # ---- values ---------------------------------------------------------------------------------
    def value(self, row: int, col: int):
        """The value at (row, col), read through the page cache."""
        key = (row // ROW_PAGE, col // COL_PAGE)
        blk = self._cache.get(key)
        if blk is None:
            r0, c0 = key[0] * ROW_PAGE, key[1] * COL_PAGE
            r1, c1 = min(r0 + ROW_PAGE, self.total_rows), min(c0 + COL_PAGE, self.total_cols)
            blk = self._block(r0, r1, c0, c1)
            self.blocks_read += 1
            self._cache[key] = blk
            if len(self._cache) > _CACHED_BLOCKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return blk[row % ROW_PAGE, col % COL_PAGE]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            v = self.value(index.row(), index.column())
            return format_value(v, full=role == Qt.ItemDataRole.ToolTipRole)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            v = self.value(index.row(), index.column())
            if isinstance(v, np.floating | float) and not math.isfinite(v):
                return _BAD
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return str(section)
        if len(self._index_shape) > 1:
            return "[" + ", ".join(str(int(i)) for i in np.unravel_index(section, self._index_shape)) + "]"
        return str(section)


def format_value(v, full: bool = False) -> str:
    """A cell's text: integers as they are, floats with 6 (or, for tooltips, 17) significant digits."""
    if isinstance(v, np.bool_ | bool):
        return str(bool(v))
    if isinstance(v, np.integer | int):
        return str(int(v))
    return f"{float(v):.17g}" if full else f"{float(v):.6g}"


class ValueTable(QTableView):
    """The values of one array, a page at a time; see the module docstring for the API."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ContiguousSelection)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalHeader().setDefaultSectionSize(20)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.horizontalHeader().setDefaultSectionSize(84)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.horizontalScrollBar().valueChanged.connect(self._scrolled_across)
        self.clear()

    def set_array(self, array) -> None:
        """Show an array (numpy, or heatmap.Difference)."""
        self._use(PagedArrayModel.over(array, self))

    def set_source(self, block: Block, shape: tuple[int, int], index_shape: tuple[int, ...] = ()) -> None:
        """Show values read through `block(r0, r1, c0, c1)`; `shape`: (rows, cols) of the whole table."""
        self._use(PagedArrayModel(block, shape, index_shape, self))

    def clear(self) -> None:
        """Show nothing."""
        self._use(None)

    def _use(self, model: PagedArrayModel | None) -> None:
        old = self.model()
        self.setModel(model)
        if old is not None:
            old.deleteLater()

    def _scrolled_across(self, value: int) -> None:
        model = self.model()
        near_end = self.horizontalScrollBar().maximum() - self.horizontalHeader().defaultSectionSize()
        if model is not None and model.can_fetch_more_columns() and value >= near_end:
            model.fetch_more_columns()

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
            return
        super().keyPressEvent(event)

    def copy_selection(self) -> str:
        """Put the selected cells on the clipboard as tab-separated rows; returns the text."""
        model = self.model()
        indexes = self.selectedIndexes()
        if model is None or not indexes:
            return ""
        rows = sorted({i.row() for i in indexes})
        cols = sorted({i.column() for i in indexes})
        text = "\n".join("\t".join(format_value(model.value(r, c), full=True) for c in cols) for r in rows)
        QGuiApplication.clipboard().setText(text)
        return text
