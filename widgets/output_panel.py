"""The script's output: stdout as written, stderr in red, the app's own notes in grey; bounded."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontDatabase, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit

from widgets.theme import ERROR_TEXT, pick

NOTE = ("#7a8594", "#9aa3ad")  # the light one reads at 4.3 on the dark palette's Base: the dark one at 6.6


class OutputPanel(QPlainTextEdit):
    """Read-only text that follows its end (unless scrolled up); keeps the last `max_lines` lines."""

    def __init__(self, parent=None, max_lines: int = 5000) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(max_lines)
        # a console's columns (epoch, loss, accuracy) stay aligned: long lines scroll, as in an IDE's run console
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(max(font.pointSizeF() - 0.5, 8.0))
        self.setFont(font)
        self.setPlaceholderText("The script's output appears here.")
        # the palette at setup decides (text already shown keeps its colour)
        self._formats = {"stdout": QTextCharFormat(), "stderr": _format(pick(ERROR_TEXT, self.palette())),
                         "note": _format(pick(NOTE, self.palette()), True)}

    def append_text(self, stream: str, text: str) -> None:
        """Add text the script wrote to "stdout" or "stderr" (or a "note" of the app's)."""
        bar = self.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 2
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text, self._formats.get(stream, self._formats["stdout"]))
        if follow:
            bar.setValue(bar.maximum())

    def note(self, text: str) -> None:
        """Add a line of the app's own (what started, how it ended), on a line of its own."""
        doc = self.document()
        last = doc.lastBlock().text() if doc.blockCount() else ""
        self.append_text("note", ("\n" if last else "") + text + "\n")

    def text(self) -> str:
        """Everything shown, as plain text."""
        return self.toPlainText()


def _format(colour: str, italic: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(colour))
    if italic:
        fmt.setFontItalic(True)
        fmt.setFontWeight(QFont.Weight.Normal)
    return fmt
