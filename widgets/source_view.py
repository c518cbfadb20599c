"""A read-only source file with line numbers and one highlighted line (where the engine is)."""

from __future__ import annotations

import os

from PySide6.QtGui import QColor, QFontDatabase, QTextCursor, QTextFormat
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QTextEdit, QVBoxLayout, QWidget

from widgets.theme import follow_palette, is_dark

HIGHLIGHT = "#ffe8a3"
DARK_HIGHLIGHT = "#5c4a12"  # the same amber, dark enough for the dark palette's light text


class SourceView(QWidget):
    """Shows one file at a time, scrolled to its highlighted line."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.title = QLabel()
        self.title.setContentsMargins(4, 2, 4, 0)
        self.title.setWordWrap(True)  # a long message must not set the dock's minimum width
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout.addWidget(self.title)
        layout.addWidget(self.text, 1)
        self.file = ""
        self.line = 0
        self.clear()
        follow_palette(self.text, lambda: self._highlight(self.line), now=False)

    def show_source(self, file: str, text: str | None, line: int = 0) -> None:
        """Show `file` (its `text`; None when unreadable) with line `line` highlighted."""
        if text is None:
            self.show_message(f"{file}: source not available")
            return
        if file != self.file:
            lines = text.splitlines()
            width = len(str(len(lines)))
            self.text.setPlainText("\n".join(f"{i:>{width}}  {s}" for i, s in enumerate(lines, 1)))
            self.file = file
        name = f"<b>{os.path.basename(file)}</b>"
        self.title.setText(f"{name}:{line}" if line else name)
        self.title.setToolTip(file)
        self.line = line
        self._highlight(line)

    def clear(self) -> None:
        """Show no file: the source appears once the engine is somewhere."""
        self.show_message("No source yet: it shows where the engine is.")

    def show_message(self, text: str) -> None:
        """Show no file, only a short message."""
        self.file = ""
        self.line = 0
        self.title.setText(text)
        self.text.clear()

    def current_line_text(self) -> str:
        """The highlighted line as shown (with its number), '' when none."""
        if not self.line:
            return ""
        return self.text.document().findBlockByNumber(self.line - 1).text()

    def _highlight(self, line: int) -> None:
        if line <= 0:
            self.text.setExtraSelections([])
            return
        block = self.text.document().findBlockByNumber(line - 1)
        sel = QTextEdit.ExtraSelection()
        dark = is_dark(self.palette())
        sel.format.setBackground(QColor(DARK_HIGHLIGHT if dark else HIGHLIGHT))
        sel.format.setForeground(self.palette().text().color() if dark else QColor("#212529"))
        sel.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        sel.cursor = QTextCursor(block)
        self.text.setExtraSelections([sel])
        self.text.setTextCursor(QTextCursor(block))
        self.text.centerCursor()
