"""Go to Iteration or Event (Ctrl+G): where to move the timeline's cursor, by an iteration or an event number.

    dialog = GoToDialog(timeline.bounds(), kind="iteration", at=timeline.position(), parent=window)
    dialog.chosen.connect(lambda kind, number: ...)     # "iteration" or "event", and the number typed

Event numbers are those the status bar, the inspector and the timeline show (the session's first event is 1).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox, QWidget

from widgets.theme import MUTED_TEXT, tint

KINDS = ("iteration", "event")


class GoToDialog(QDialog):
    """Asks for an iteration or an event number within `bounds` (first and last iteration, first and last event
    number), starting from `at` (the cursor's iteration and event number; None: the first iteration, the last
    event); emits chosen(kind, number) on OK."""

    chosen = Signal(str, int)

    def __init__(self, bounds: tuple[int, int, int, int], kind: str = "iteration",
                 at: tuple[int, int] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if kind not in KINDS:
            raise ValueError(f"GoToDialog: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.setWindowTitle("Go to Iteration or Event")
        self._ranges = {"iteration": bounds[:2], "event": bounds[2:]}
        self._typed = dict(zip(KINDS, at)) if at is not None else {"iteration": bounds[0], "event": bounds[3]}
        self.kind = QComboBox()
        self.kind.addItems(["Iteration", "Event"])
        self.number = QSpinBox()
        self.number.setGroupSeparatorShown(True)
        self.number.setAccelerated(True)
        self.hint = QLabel()
        tint(self.hint, MUTED_TEXT)
        form = QFormLayout(self)
        form.addRow("&Go to:", self.kind)
        form.addRow("&Number:", self.number)
        form.addRow("", self.hint)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._kind = kind
        self.kind.setCurrentIndex(KINDS.index(kind))
        self._show_range()
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.number.setFocus()

    def choice(self) -> tuple[str, int]:
        """(kind, number) as the dialog has them."""
        return KINDS[self.kind.currentIndex()], self.number.value()

    def accept(self) -> None:
        self.number.interpretText()  # a number typed and not yet committed by the spin box
        self.chosen.emit(*self.choice())
        super().accept()

    def _kind_changed(self, index: int) -> None:
        self._typed[self._kind] = self.number.value()  # each kind keeps what was typed for it
        self._kind = KINDS[index]
        self._show_range()

    def _show_range(self) -> None:
        lo, hi = self._ranges[self._kind]
        self.number.setRange(lo, hi)
        self.number.setValue(min(max(self._typed[self._kind], lo), hi))
        self.number.selectAll()
        self.hint.setText(f"{lo:,} to {hi:,}" + (": the first event of that iteration" if self._kind == "iteration"
                                                 else ", as the status bar and the Inspector number them"))
