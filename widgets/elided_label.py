"""A one-line label that ends (or elides in the middle) with "…" where its text does not fit.

Inputs: `setText(text, short="", cut=None)`; the whole text is also its tooltip. `text()` returns the whole text;
where it does not fit, `short` (a part that reads by itself) is shown before anything is cut, and `cut` (start, end)
names the part that gives way first, in its middle ("q · split · Net.e…attn/split:0" keeps the node's name and op).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy


class ElidedLabel(QLabel):
    """A QLabel that never asks for more width than it gets: what does not fit becomes "…"."""

    def __init__(self, text: str = "", mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight, parent=None) -> None:
        super().__init__(parent)
        self._full = self._short = ""
        self._cut: tuple[int, int] | None = None
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setText(text)

    def setText(self, text: str, short: str = "", cut: tuple[int, int] | None = None) -> None:
        self._full, self._short, self._cut = text, short, cut
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
        text, mode = self._full, self._mode
        if metrics.horizontalAdvance(text) > width:
            if self._short:
                text = self._short
            elif self._cut:
                start, end = self._cut
                head, tail = text[:start], text[end:]
                room = width - metrics.horizontalAdvance(head + tail)
                middle = metrics.elidedText(text[start:end], Qt.TextElideMode.ElideMiddle, room) or "\u2026"
                text = head + middle + tail
                mode = Qt.TextElideMode.ElideRight  # the part that gives way is gone: the end goes, not the name
        super().setText(metrics.elidedText(text, mode, width))
