"""Numerical alerts (engine.events.AlertEvent) and errors as a list; activating one names its node.

The message takes the width the iteration, kind and place leave; what does not fit ends in "…" and the
row's tooltip has all of it. In the row, the alert's source file is named by its base name (the folder it
lies in only takes room from the message); the tooltip has the full path.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

from engine.debug.source import short_message
from widgets.theme import ERROR_TEXT, pick

KEY = Qt.ItemDataRole.UserRole
KIND_TEXT = {"nonfinite_forward": "NaN/Inf (forward)", "nonfinite_backward": "NaN/Inf (backward)",
             "exploding_grad": "exploding gradient", "vanishing_grad": "vanishing gradient",
             "dead_relu": "dead ReLU", "large_update": "learning rate too high",
             "accumulating_grad": "no zero_grad", "not_updated": "not trained", "frozen": "frozen",
             "probabilities": "softmax before loss", "error": "error"}
SEVERE = ("nonfinite_forward", "nonfinite_backward", "error")
TEXT_PAD = 14  # a cell's margins around its text, in pixels
PLACE_SHARE = 0.25  # the most of the width the place ("linear in encoder/0") takes
MESSAGE_SHARE = 0.4  # the least of the width the message keeps in a narrow panel
NARROWEST = 40  # kind and place give way down to this, so that the message keeps its share


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
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the message ends in "…"
        self.header().setStretchLastSection(True)
        self._widest = [self.header().sectionSizeHint(col) for col in range(3)]  # iteration, kind, place
        self.itemActivated.connect(self._activated)
        self.itemClicked.connect(self._activated)

    def add_alerts(self, alerts) -> None:
        """Append AlertEvents (or objects with kind, message, key, module, op, iteration, seq)."""
        for a in alerts:
            if self.topLevelItemCount() >= self.max_rows:
                return
            # an alert of a step (gradients, updates) has no op: it names a parameter or layer by its key
            where = f"{a.op} in {a.module}" if a.module else (a.op or a.key)
            self.add_row(a.iteration, a.kind, where, a.message, a.key,
                         getattr(a, "forward_seq", 0) or a.seq, getattr(a, "file", ""))

    def add_row(self, iteration: int, kind: str, where: str, message: str, key: str = "",
                seq: int = 0, file: str = "") -> None:
        """Append one row (also for errors that are not engine alerts); `file`, the path the message
        names, is shown by its base name."""
        texts = [str(iteration), KIND_TEXT.get(kind, kind), where, short_message(message, file)]
        item = QTreeWidgetItem(texts)
        item.setData(0, KEY, (key, seq))
        for col in range(4):
            item.setToolTip(col, message if col != 2 else f"{where}\n{message}")
        if kind in SEVERE:
            for col in range(4):
                item.setForeground(col, QColor(pick(ERROR_TEXT, self.palette())))
        self.addTopLevelItem(item)
        metrics = self.fontMetrics()
        widest = [max(w, metrics.horizontalAdvance(t) + TEXT_PAD) for w, t in zip(self._widest, texts[:3], strict=True)]
        if widest != self._widest:
            self._widest = widest
            self._fit_columns()

    def clear(self) -> None:
        """Remove every row."""
        super().clear()
        self._widest = [self.header().sectionSizeHint(col) for col in range(3)]
        self._fit_columns()

    def messages(self) -> list[str]:
        """The message of every row, in order."""
        return [self.topLevelItem(i).text(3) for i in range(self.topLevelItemCount())]

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Iteration, kind and place as wide as their widest text (the place up to PLACE_SHARE of the
        view); in a narrow panel place, then kind, give way down to NARROWEST so the message keeps
        MESSAGE_SHARE; the message (the last column, stretched) takes the rest."""
        room = self.viewport().width()
        iteration, kind, place = self._widest
        place = min(place, int(room * PLACE_SHARE))
        over = iteration + kind + place - int(room * (1 - MESSAGE_SHARE))
        for_place = min(max(over, 0), max(place - NARROWEST, 0))
        place -= for_place
        kind -= min(max(over - for_place, 0), max(kind - NARROWEST, 0))
        for col, width in enumerate((iteration, kind, place)):
            self.setColumnWidth(col, width)

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        key, seq = item.data(0, KEY)
        self.alertActivated.emit(key, seq)
