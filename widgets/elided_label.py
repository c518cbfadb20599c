"""A one-line label that ends (or elides in the middle) with "…" where its text does not fit.

Inputs: `setText(text, short="")`; the whole text is also its tooltip. `text()` returns the whole text; where it
does not fit, `short` (a part that reads by itself) is shown before anything is cut.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy


class ElidedLabel(QLabel):
    """A QLabel that never asks for more width than it gets: what does not fit becomes "…"."""

    def __init__(self, text: str = "", mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight, parent=None) -> None:
        super().__init__(parent)
        self._full = self._short = ""
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setText(text)

    def setText(self, text: str, short: str = "") -> None:
        self._full, self._short = text, short
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.contentsRect().width(), 0)
        metrics = self.fontMetrics()
        text = self._short if self._short and metrics.horizontalAdvance(self._full) > width else self._full
        super().setText(metrics.elidedText(text, self._mode, width))
