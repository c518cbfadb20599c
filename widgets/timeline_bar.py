"""A slider over a replay's recorded events (a placeholder for the full timeline)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QWidget


class TimelineBar(QWidget):
    """Drag to move a replay to an event; emits seekRequested(seq) when the person moves it."""

    seekRequested = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 8, 2)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setTracking(False)  # seek when released (and on clicks), not on every pixel
        self.label = QLabel()
        self.label.setMinimumWidth(220)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.slider.valueChanged.connect(self._moved)
        self._quiet = False
        self.set_live()

    def set_live(self, text: str = "Scrubbing works on tapes: record (Ctrl+R), then open the tape.") -> None:
        """No tape: the slider is off and says why."""
        self.slider.setEnabled(False)
        self.label.setText(text)
        self.label.setStyleSheet("color: #868e96")

    def set_range(self, first: int, last: int) -> None:
        """A tape's events run from seq `first` to `last`."""
        self._quiet = True
        self.slider.setRange(first - 1, last)
        self.slider.setPageStep(max((last - first) // 20, 1))
        self._quiet = False
        self.slider.setEnabled(True)
        self.label.setStyleSheet("")

    def set_position(self, seq: int, text: str) -> None:
        """Show the replay's position without asking to seek."""
        self._quiet = True
        self.slider.setValue(seq)
        self._quiet = False
        self.label.setText(text)

    def _moved(self, value: int) -> None:
        if not self._quiet:
            self.seekRequested.emit(value)
