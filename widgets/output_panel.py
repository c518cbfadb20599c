"""The script's output: stdout as written, stderr in red, the app's own notes in grey; bounded.

The script's lines keep their columns (epoch, loss, accuracy) and scroll sideways where the panel is
narrow, as in an IDE's run console; the app's notes ("Replaying run.tape: …") wrap to the panel's width,
so a narrow panel shows them whole. A section (a replay's output under its "Replaying" note) can be cut back
to its note and written again, and its note stays however much output follows. Where the traceback shown is the
script's own frames of a longer one (a replay of `tapescope record`'s tape), the context menu copies the whole.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QTextBlockFormat, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QMenu, QTextEdit

from widgets.theme import ERROR_TEXT, pick

NOTE = ("#7a8594", "#9aa3ad")  # the light one reads at 4.3 on the dark palette's Base: the dark one at 6.6


TRIM_SHARE = 5  # a fifth more lines than kept are let in before the oldest go, all at once


class OutputPanel(QTextEdit):
    """Read-only text that follows its end while the person has not scrolled up from it, as a terminal does;
    keeps the last `max_lines` lines (and up to a fifth more: see _trim)."""

    def __init__(self, parent=None, max_lines: int = 5000) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setAcceptRichText(False)
        self.max_lines = max_lines
        # lines wrap at the panel's width, except the script's own (see _CONSOLE), which scroll sideways
        self.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(max(font.pointSizeF() - 0.5, 8.0))
        self.setFont(font)
        self.setPlaceholderText("The script's output appears here.")
        # the palette at setup decides (text already shown keeps its colour)
        self._formats = {"stdout": QTextCharFormat(), "stderr": _format(pick(ERROR_TEXT, self.palette())),
                         "note": _format(pick(NOTE, self.palette()), True)}
        self._console = QTextBlockFormat()
        self._console.setNonBreakableLines(True)
        self._note = QTextBlockFormat()
        self._section: QTextCursor | None = None  # at the start of a section's note (it moves with the text)
        # following is a state the person sets by scrolling, not a position: read off the scroll bar at each
        # append, it was lost whenever a resize moved the end (a horizontal bar showing, the Editor tab
        # widening the left column), and the panel stayed on epoch 56 while the run printed epoch 399
        self._following = True
        self.whole_traceback = ""  # the traceback the one shown was cut from (its engine frames), or ""
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._scrolled)
        bar.rangeChanged.connect(self._keep_end)

    def append_text(self, stream: str, text: str) -> None:
        """Add text the script wrote to "stdout" or "stderr" (or a "note" of the app's)."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not cursor.block().text():  # a line starts: a note's wraps, the script's keeps its columns
            cursor.setBlockFormat(self._note if stream == "note" else self._console)
        cursor.insertText(text, self._formats.get(stream, self._formats["stdout"]))  # new lines inherit it
        self._trim()
        self._keep_end()

    def append_chunks(self, chunks) -> None:
        """Add many (stream, text) pieces at once ("note" ones as notes); of a flood, only the lines kept
        (`max_lines`) are laid out."""
        budget, kept = self.max_lines, []
        for stream, text in reversed(chunks):
            if stream != "note":
                lines = text.count("\n")
                if lines >= budget:
                    end = len(text)
                    for _ in range(budget):
                        end = text.rfind("\n", 0, end)
                    kept.append((stream, text[end + 1:]))
                    break
                budget -= lines
            kept.append((stream, text))
        for stream, text in reversed(kept):
            if stream == "note":
                self.note(text)
            elif text:
                self.append_text(stream, text)

    @property
    def following(self) -> bool:
        """Whether the panel keeps its end in view (it does until the person scrolls up from the end)."""
        return self._following

    def follow_end(self) -> None:
        """Show the end and follow it again (a new run starts: its output is what the person wants to see)."""
        self._following = True
        self._keep_end()

    def _scrolled(self, value: int) -> None:
        # the range's own changes keep the end in view (_keep_end) before this hears of them: a value off the
        # end is the person's scrolling
        self._following = value >= self.verticalScrollBar().maximum() - 2

    def _keep_end(self, *_range) -> None:
        if self._following:
            bar = self.verticalScrollBar()
            bar.setValue(bar.maximum())

    def begin_section(self, note: str) -> None:
        """Add `note` and start a section under it: cut_section() takes the section back to the note, and
        trimming keeps the note as the section's first line."""
        self.note(note)
        block = self.document().lastBlock().previous()
        self._section = QTextCursor(block)

    def end_section(self) -> None:
        """What follows belongs to no section (its note may be trimmed like any line)."""
        self._section = None

    def cut_section(self) -> None:
        """Remove everything after the section's note (everything after earlier lines without a section)."""
        note = self._section_note()
        cursor = QTextCursor(self.document())
        cursor.setPosition(note.next().position() if note is not None else 0)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()

    def _section_note(self):
        """The block of the section's note, or None."""
        if self._section is None:
            return None
        block = self._section.block()
        return block if block.isValid() and block.next().isValid() else None

    def _trim(self) -> None:
        """Drop the oldest lines, many at a time: removing lines from the top lays out all the others again
        (per line, as QTextDocument's maximumBlockCount does it, a chatty script's output took three times
        as long to show as in a QPlainTextEdit)."""
        doc = self.document()
        count = doc.blockCount()
        if count <= self.max_lines + self.max_lines // TRIM_SHARE:
            return
        first = doc.findBlockByNumber(count - self.max_lines)
        kept = first.blockFormat()
        cursor = QTextCursor(doc)
        note = self._section_note()
        if note is not None and note.blockNumber() < first.blockNumber():
            # a section's note stays: the lines between it and `first` go, then those before it
            cursor.setPosition(note.next().position())
            cursor.setPosition(first.position(), QTextCursor.MoveMode.KeepAnchor)
            cursor.removeSelectedText()
            cursor.setBlockFormat(kept)
            cursor.setPosition(0)
            cursor.setPosition(note.position(), QTextCursor.MoveMode.KeepAnchor)
            cursor.removeSelectedText()
            return
        cursor.setPosition(first.position(), QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        cursor.setBlockFormat(kept)  # the first line kept wraps (or not) as it did

    def set_whole_traceback(self, text: str) -> None:
        """The whole traceback whose script frames are shown ('': none): the context menu copies it."""
        self.whole_traceback = text

    def context_menu(self) -> QMenu:
        """Qt's menu (Copy, Select All), and Copy Whole Traceback where the one shown was cut."""
        menu = self.createStandardContextMenu()
        if self.whole_traceback:
            menu.addSeparator()
            menu.addAction("Copy Whole Traceback (with the engine's frames)",
                           lambda: QGuiApplication.clipboard().setText(self.whole_traceback))
        return menu

    def contextMenuEvent(self, event) -> None:
        menu = self.context_menu()
        menu.exec(event.globalPos())
        menu.deleteLater()

    def note(self, text: str) -> None:
        """Add a line of the app's own (what started, how it ended), on a line of its own."""
        doc = self.document()
        last = doc.lastBlock().text() if doc.blockCount() else ""
        if last:
            self.append_text("stdout", "\n")  # end the script's line; the note starts a line of its own
        self.append_text("note", text + "\n")

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
