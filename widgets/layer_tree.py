"""The two trees of the builder: the palette (layers to drag out) and the layer sequence (with blocks).

Drops into the sequence are handled here rather than by Qt's InternalMove, so a move is one explicit
step, the same whether a person drags or a test sends the drop event; the tree asks its owner to
change the document through its `moved` and `dropped` signals.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QByteArray, QMimeData, QPoint, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

LAYER_MIME = "application/x-tapescope-layer"  # a palette entry: the layer type
MOVE_MIME = "application/x-tapescope-layer-path"  # a layer of the tree: its index path as JSON
ROLE = Qt.ItemDataRole.UserRole


class PaletteTree(QTreeWidget):
    """The layers to choose from, grouped; a layer drags out as its type name. `dragStarting()` just before a drag
    begins (a popped-up palette gets out of the way of the list the layer is dropped into)."""

    dragStarting = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setIndentation(12)

    def startDrag(self, actions) -> None:
        self.dragStarting.emit()
        super().startDrag(actions)

    def mimeData(self, items) -> QMimeData:
        mime = QMimeData()
        kinds = [i.data(0, ROLE) for i in items if i.data(0, ROLE)]
        if kinds:
            mime.setData(LAYER_MIME, QByteArray(kinds[0].encode()))
        return mime

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME]


class LayerTree(QTreeWidget):
    """The layer sequence; rows hold {"type", "args"} and blocks hold their layers as child rows.

    Drops are handled here, not by Qt's InternalMove, so a move is one explicit step (and the same
    whether a person drags or a test sends the drop): `moved(from_path, parent_path, row)` and
    `dropped(layer_type, parent_path, row)` ask the panel to change the document.
    """

    moved = Signal(list, list, int)
    dropped = Signal(str, list, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels(["Layer", "Output"])
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setIndentation(16)
        self.setAlternatingRowColors(True)

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME, MOVE_MIME]

    def mimeData(self, items) -> QMimeData:
        mime = QMimeData()
        if items:
            mime.setData(MOVE_MIME, QByteArray(json.dumps(path_of(items[0])).encode()))
        return mime

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME) or event.mimeData().hasFormat(MOVE_MIME):
            event.acceptProposedAction()
            super().dragEnterEvent(event)
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        parent, row = self.drop_target(event.position().toPoint())
        if mime.hasFormat(MOVE_MIME):
            source = json.loads(bytes(mime.data(MOVE_MIME)).decode())
            self.moved.emit(source, parent, row)
        elif mime.hasFormat(LAYER_MIME):
            self.dropped.emit(bytes(mime.data(LAYER_MIME)).decode(), parent, row)
        else:
            event.ignore()
            return
        # Copy, not Move: the move is done already; a Move would make Qt delete the dragged row
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()

    def drop_target(self, pos: QPoint) -> tuple[list[int], int]:
        """(parent path, row) where a drop at `pos` (viewport coordinates) inserts."""
        item = self.itemAt(pos)
        if item is None:
            return [], self.topLevelItemCount()
        rect = self.visualItemRect(item)
        holds = bool(item.flags() & Qt.ItemFlag.ItemIsDropEnabled)
        parent = item.parent()
        parent_path = path_of(parent) if parent is not None else []
        index = parent.indexOfChild(item) if parent is not None else self.indexOfTopLevelItem(item)
        quarter = rect.height() / 4
        if holds and rect.top() + quarter <= pos.y() <= rect.bottom() - quarter:
            return path_of(item), item.childCount()
        return parent_path, index + (pos.y() > rect.center().y())


def path_of(item: QTreeWidgetItem) -> list[int]:
    """The index path of a tree item: [2, 0] is child 0 of top-level row 2."""
    path = []
    while item is not None:
        parent = item.parent()
        tree = item.treeWidget()
        path.append(parent.indexOfChild(item) if parent is not None else tree.indexOfTopLevelItem(item))
        item = parent
    return path[::-1]
