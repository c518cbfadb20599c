"""Status widgets: the status bar's state and counters, and an inline message bar (no modal dialogs)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QWidget

from widgets.elided_label import ElidedLabel
from widgets.theme import MUTED_TEXT, is_dark, tint

NOTE_WIDTH = 360  # the most pixels a note takes from a long state, which ends in "…" where it must
STATE_COLOURS = {"running": "#2f9e44", "paused": "#f59f00", "finished": "#1c7ed6", "failed": "#e03131",
                 "stopped": "#868e96", "replay": "#7048e8",
                 "breakpoint": "#e03131", "alert": "#f08c00"}  # paused by those: the timeline's marker colours


class _Dot(QWidget):
    """A small filled circle in the state's colour."""

    def __init__(self) -> None:
        super().__init__()
        self.colour = QColor("#868e96")
        self.setFixedSize(12, 12)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self.colour)
        p.drawEllipse(1, 1, 10, 10)


class StatusPanel(QWidget):
    """State (running / paused at op X in module Y), iteration, phase and events per second.

    Where the bar is short, the state's text ends in "…" (its tooltip has all of it) before a note does.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.setSpacing(8)
        self.dot = _Dot()
        self.state = ElidedLabel("Ready")
        self.iteration = QLabel()
        self.phase = QLabel()
        self.rate = QLabel()
        self.note = ElidedLabel()
        self.note.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)  # as wide as _fit_note says
        tint(self.note, MUTED_TEXT)
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.timeout.connect(lambda: self.set_note(""))
        layout.addWidget(self.dot)
        layout.addWidget(self.state, 1)
        layout.addWidget(self.note)
        for label in (self.iteration, self.phase, self.rate):
            label.setMinimumWidth(90)
            layout.addWidget(_separator())
            layout.addWidget(label)

    def set_state(self, text: str, kind: str) -> None:
        """The one-line state, and its kind (running, paused, finished, failed, stopped, replay)."""
        self.state.setText(text)
        self._fit_note()
        self.dot.colour = QColor(STATE_COLOURS.get(kind, "#868e96"))
        self.dot.update()

    def set_note(self, text: str, seconds: float = 0) -> None:
        """A passing note beside the state (cleared after `seconds`; 0 keeps it until replaced)."""
        self.note.setText(text)
        self._fit_note()
        self._note_timer.stop()
        if seconds and text:
            self._note_timer.start(int(seconds * 1000))

    def _fit_note(self) -> None:
        """The note as wide as its text (and a little for the label's margin), up to NOTE_WIDTH, or up to
        what a short state leaves free."""
        text = self.note.text()
        want = self.note.fontMetrics().horizontalAdvance(text) + 4 if text else 0
        # the state's and the note's room together, less what the state's text needs
        needed = self.state.fontMetrics().horizontalAdvance(self.state.text())
        free = self.state.width() + self.note.width() - needed - 8
        width = min(want, max(NOTE_WIDTH, free))
        if width != self.note.width() or self.note.minimumWidth() != width:
            self.note.setFixedWidth(width)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_note()

    def set_counters(self, iteration: int, phase: str, events_per_second: float | None) -> None:
        """Iteration, phase and the event rate (None: not running)."""
        self.iteration.setText(f"iteration {iteration}")
        self.phase.setText(phase)
        rate = "\u2013" if events_per_second is None else _rate(events_per_second)
        self.rate.setText(f"{rate} events/s")


def _rate(x: float) -> str:
    return f"{x / 1e6:.1f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e4 else f"{x:.0f}"


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


class MessageBar(QFrame):
    """A dismissible message above the graph: information, a warning or an error."""

    closed = Signal()
    LEVELS = {"info": ("#e7f5ff", "#1c7ed6"), "warning": ("#fff9db", "#e67700"),
              "error": ("#fff5f5", "#e03131")}
    DARK_LEVELS = {"info": ("#12324d", "#4dabf7"), "warning": ("#3d3214", "#fcc419"),
                   "error": ("#3d1a1c", "#ff6b6b")}

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("\u2715")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        """Show `text` until dismissed or replaced."""
        levels = self.DARK_LEVELS if is_dark(self.palette()) else self.LEVELS
        fill, border = levels.get(level, levels["info"])
        ink = "#e9ecef" if levels is self.DARK_LEVELS else "#212529"
        self.setStyleSheet(f"#MessageBar {{ background: {fill}; border: 1px solid {border}; "
                           f"border-radius: 4px; }} #MessageBar QLabel, #MessageBar QToolButton "
                           f"{{ color: {ink}; }}")
        self.label.setText(text)
        self.level = level
        self.show()

    def text(self) -> str:
        """The message shown ('' when hidden)."""
        return self.label.text() if self.isVisible() else ""

    def dismiss(self) -> None:
        """Hide the message."""
        self.hide()
        self.closed.emit()
