"""Numerical alerts (engine.events.AlertEvent) and errors as a list; activating one names its node."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

KEY = Qt.ItemDataRole.UserRole
KIND_TEXT = {"nonfinite_forward": "NaN/Inf (forward)", "nonfinite_backward": "NaN/Inf (backward)",
             "exploding_grad": "exploding gradient", "vanishing_grad": "vanishing gradient",
             "dead_relu": "dead ReLU", "error": "error"}
SEVERE = ("nonfinite_forward", "nonfinite_backward", "error")


class AlertsPanel(QTreeWidget):
    """Iteration, kind, where and message of each alert; emits alertActivated(node key, seq)."""

    alertActivated = Signal(str, int)

    def __init__(self, parent=None, max_rows: int = 2000) -> None:
        super().__init__(parent)
        self.max_rows = max_rows
        self.setHeaderLabels(["Iter", "Kind", "Where", "Message"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        for col, width in enumerate((44, 130, 160)):
            self.setColumnWidth(col, width)
        self.itemActivated.connect(self._activated)
        self.itemClicked.connect(self._activated)

    def add_alerts(self, alerts) -> None:
        """Append AlertEvents (or objects with kind, message, key, module, op, iteration, seq)."""
        for a in alerts:
            if self.topLevelItemCount() >= self.max_rows:
                return
            self.add_row(a.iteration, a.kind, f"{a.op} in {a.module}" if a.module else a.op, a.message, a.key,
                         getattr(a, "forward_seq", 0) or a.seq)

    def add_row(self, iteration: int, kind: str, where: str, message: str, key: str = "",
                seq: int = 0) -> None:
        """Append one row (also for errors that are not engine alerts)."""
        item = QTreeWidgetItem([str(iteration), KIND_TEXT.get(kind, kind), where, message])
        item.setData(0, KEY, (key, seq))
        item.setToolTip(3, message)
        if kind in SEVERE:
            for col in range(4):
                item.setForeground(col, QColor("#c92a2a"))
        self.addTopLevelItem(item)

    def messages(self) -> list[str]:
        """The message of every row, in order."""
        return [self.topLevelItem(i).text(3) for i in range(self.topLevelItemCount())]

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        key, seq = item.data(0, KEY)
        self.alertActivated.emit(key, seq)
