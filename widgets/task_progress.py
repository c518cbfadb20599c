"""A long task's progress in the status bar: what runs, how far it got, and a Cancel button."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

BAR_WIDTH = 140


class TaskProgress(QWidget):
    """Hidden until start(); emits cancelRequested when its Cancel button is pressed."""

    cancelRequested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 2, 0)
        layout.setSpacing(6)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(BAR_WIDTH)
        self.bar.setTextVisible(True)
        line = self.fontMetrics().height() + 4  # no taller than the status bar's line of text
        self.bar.setMaximumHeight(line)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setMaximumHeight(line)
        self.cancel_button.setToolTip("Stop the task; nothing is written")
        self.cancel_button.clicked.connect(self._cancel)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.hide()

    def start(self, text: str, total: int = 0) -> None:
        """Show `text` with a bar of `total` steps (0: busy, no known end)."""
        self.label.setText(text)
        self.label.setToolTip(text)
        self.set_total(total)
        self.cancel_button.setEnabled(True)
        self.show()

    def set_total(self, total: int) -> None:
        """How many steps the task has (0: unknown; the bar shows that it is busy)."""
        self.bar.setRange(0, max(total, 0))
        self.bar.setValue(0)

    def set_done(self, done: int) -> None:
        """How many steps are done."""
        if self.bar.maximum() > 0:
            self.bar.setValue(min(done, self.bar.maximum()))

    def percent(self) -> int:
        """How far the bar shows the task (0..100; 0 while its end is unknown)."""
        top = self.bar.maximum()
        return round(100 * self.bar.value() / top) if top > 0 else 0

    def finish(self) -> None:
        """Hide the bar: the task ended."""
        self.hide()

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)  # pressed once: the task stops at its next step
        self.cancelRequested.emit()
