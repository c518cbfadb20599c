"""Numerical alerts (engine.events.AlertEvent) and errors as a list; activating one names its node.

The message takes the width the iteration, kind and place leave; what does not fit ends in "…" and the
row's tooltip has all of it. In the row, the alert's source file is named by its base name (the folder it
lies in only takes room from the message); the tooltip has the full path.

Under the list, a detail area shows the current row's whole message, wrapped: the advice ("try a learning
rate 10 to 100 times smaller") is the end of a message, which a row of the default dock cut to a word.
The advice comes first there, the finding under it; the list keeps room for its first rows. The first
alert becomes the current row when it comes (the first is most often the cause of the rest);
`detail_text()` is what the area shows.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QTextOption
from PySide6.QtWidgets import QFrame, QPlainTextEdit, QTreeWidget, QTreeWidgetItem

from engine.debug.alert_text import KINDS
from engine.debug.source import short_message
from widgets.theme import ERROR_TEXT, pick

KEY = Qt.ItemDataRole.UserRole
MESSAGE = Qt.ItemDataRole.UserRole + 1  # the whole message, its file by base name: the detail area's text
KIND_TEXT = {kind: short for kind, (short, _) in KINDS.items()} | {"error": "error"}
SEVERE = ("nonfinite_forward", "nonfinite_backward", "nonfinite_input", "nonfinite_step", "nonfinite_grad", "inplace",
          "error")
TEXT_PAD = 14  # a cell's margins around its text, in pixels
PLACE_SHARE = 0.25  # the most of the width the place ("linear in encoder/0") takes
MESSAGE_SHARE = 0.4  # the least of the width the message keeps in a narrow panel
NARROWEST = 40  # kind and place give way down to this, so that the message keeps its share
DETAIL_LINES = 2  # the fewest lines the detail area shows while it has a message (it scrolls beyond)
LIST_ROWS = 2  # the list keeps room for this many rows (those it has, up to this) above the detail area
# where an alert's finding ends and its advice starts: "... iteration 4: try ..." or "iteration 4 (...): "
ADVICE = re.compile(r" iteration \d+(?: \([^)]*\))?[:;] ")


def detail(message: str) -> str:
    """The message as the detail area shows it: its advice, then a blank line and what was found."""
    found = ADVICE.search(message)
    if found is None or not message[found.end():].strip():
        return message
    return f"{message[found.end():]}\n\n{message[:found.end()].rstrip(': ;')}"


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
        # the detail area lies in the scroll area's bottom margin, as a code editor's line numbers do
        self.detail = QPlainTextEdit(self)
        self.detail.setReadOnly(True)
        self.detail.setFrameShape(QFrame.Shape.NoFrame)
        self.detail.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)  # long paths too
        self.detail.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.detail.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.detail.setStyleSheet("QPlainTextEdit { border-top: 1px solid palette(mid); }")
        self.detail.hide()
        self.currentItemChanged.connect(lambda *_: self._show_detail())

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
        item.setData(0, MESSAGE, detail(texts[3]))
        for col in range(4):
            item.setToolTip(col, message if col != 2 else f"{where}\n{message}")
        if kind in SEVERE:
            for col in range(4):
                item.setForeground(col, QColor(pick(ERROR_TEXT, self.palette())))
        self.addTopLevelItem(item)
        if self.currentItem() is None:
            self.setCurrentItem(item)  # its message in the detail area; activating stays a click
        elif self.topLevelItemCount() <= LIST_ROWS:
            self._place_detail()  # the detail area gives this row room
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
        self._show_detail()

    def messages(self) -> list[str]:
        """The message of every row, in order."""
        return [self.topLevelItem(i).text(3) for i in range(self.topLevelItemCount())]

    def detail_text(self) -> str:
        """The whole message shown under the list (the current row's; '' when there is none)."""
        return self.detail.toPlainText() if self.detail.isVisible() else ""

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)  # its updateGeometries places the detail area
        self._fit_columns()

    def _show_detail(self) -> None:
        item = self.currentItem()
        text = "" if item is None else item.data(0, MESSAGE)
        if text != self.detail.toPlainText():
            self.detail.setPlainText(text)
        self.detail.setVisible(bool(text))
        self._place_detail()

    def updateGeometries(self) -> None:
        super().updateGeometries()  # sets the margins for the header, and the bottom one to 0
        self._place_detail()

    def _place_detail(self) -> None:
        """The detail area as tall as its wrapped text, at least DETAIL_LINES, at most what the list's
        first LIST_ROWS rows leave."""
        header = self.header()
        top = 0 if header.isHidden() else header.sizeHint().height()  # as QTreeView sets it
        if not self.detail.isVisible():
            if self.viewportMargins().bottom():
                self.setViewportMargins(0, self.viewportMargins().top(), 0, 0)
            return
        frame = self.frameWidth()
        width = self.width() - 2 * frame
        metrics = self.detail.fontMetrics()
        extra = int(2 * self.detail.document().documentMargin()) + 4
        wrapped = metrics.boundingRect(QRect(0, 0, max(width - extra - self.detail.verticalScrollBar().sizeHint()
                                                       .width(), 40), 1 << 20),
                                       Qt.TextFlag.TextWordWrap, self.detail.toPlainText())
        rows = min(self.topLevelItemCount(), LIST_ROWS)
        room = self.height() - 2 * frame - top - rows * (self.sizeHintForRow(0) if rows else 0) - 2
        least = DETAIL_LINES * metrics.lineSpacing() + extra
        height = max(min(wrapped.height() + extra, room), least)
        if self.viewportMargins().bottom() != height:
            self.setViewportMargins(0, self.viewportMargins().top(), 0, height)
        self.detail.setGeometry(frame, self.height() - frame - height, width, height)

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
