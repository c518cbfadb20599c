"""The module calls of the shown iteration as a tree; a check box per call expands it in the graph."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem

PATH = Qt.ItemDataRole.UserRole
EMPTY_CHARS = 28  # an empty tree asks for room for a short model's names and classes ("SpiralNet  SpiralNet")


class ModuleTree(QTreeWidget):
    """Module calls (path, class); checked means shown expanded in the graph.

    Emits moduleSelected(path) on click, expandRequested(path, expanded) when a box is toggled, and
    widthWanted(width) when the modules shown need more width than the tree has to show their classes.
    """

    moduleSelected = Signal(str)
    expandRequested = Signal(str, bool)
    widthWanted = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Module", "Class"])
        self.header().setStretchLastSection(True)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self._shown: tuple = ()
        self._columns = 0  # the columns' widths with every name and class whole, measured when rows change
        self.itemChanged.connect(self._on_changed)
        self.itemClicked.connect(lambda item, _col: self.moduleSelected.emit(item.data(0, PATH)))

    def set_modules(self, paths: list[str], classes: list[str], parents: list[int],
                    collapsed: set[str]) -> None:
        """Show module calls (index 0, the top level, is not shown); `parents[i]` indexes `paths`."""
        shown = (tuple(paths), tuple(classes), tuple(int(p) for p in parents), frozenset(collapsed))
        if shown == self._shown:
            return
        self._shown = shown
        self.blockSignals(True)
        try:
            self.clear()
            items: dict[int, QTreeWidgetItem] = {}
            for i in range(1, len(paths)):
                parent = items.get(int(parents[i]))
                path = paths[i]
                name = name_under(path, paths[int(parents[i])]) if parent is not None else path
                item = QTreeWidgetItem([name, classes[i]])
                item.setData(0, PATH, path)
                item.setToolTip(0, path)
                item.setToolTip(1, classes[i])
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Unchecked if path in collapsed else Qt.CheckState.Checked)
                (parent.addChild if parent is not None else self.addTopLevelItem)(item)
                items[i] = item
            self.expandAll()
        finally:
            self.blockSignals(False)
        # measured once here: Qt asks for a dock's sizeHint at every relayout, and measuring reads every row
        self._columns = sum(max(self.sizeHintForColumn(c), self.header().sectionSizeHint(c))
                            for c in range(self.columnCount()))
        want = self.sizeHint().width()
        if want > self.width():
            self.widthWanted.emit(want)

    def sizeHint(self) -> QSize:
        """Wide enough to show every name and class whole (an empty tree: a short model's)."""
        hint = super().sizeHint()
        empty = EMPTY_CHARS * self.fontMetrics().averageCharWidth()
        columns = self._columns
        scroll = self.verticalScrollBar().sizeHint().width() if self.verticalScrollBar().isVisible() else 0
        width = max(empty, columns + 2 * self.frameWidth() + scroll + self.fontMetrics().averageCharWidth())
        return QSize(width, hint.height())

    def paths(self) -> list[str]:
        """Every module path shown, in tree order."""
        out = []

        def walk(item: QTreeWidgetItem) -> None:
            out.append(item.data(0, PATH))
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.topLevelItemCount()):
            walk(self.topLevelItem(i))
        return out

    def _on_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            self.expandRequested.emit(item.data(0, PATH), item.checkState(0) == Qt.CheckState.Checked)


def name_under(path: str, parent: str) -> str:
    """A call's name below its parent's: "Net.embed#1" under "Net#1" is "embed#1" (the "#n" that numbers a
    repeated call is the graph's, not part of the module's dotted path)."""
    base = parent.rsplit("#", 1)[0] if "#" in parent else parent
    return path[len(base) + 1:] if path.startswith(base + ".") and len(path) > len(base) + 1 else path
