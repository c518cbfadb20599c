"""Numerical alerts (engine.events.AlertEvent) and errors as a list; activating one names its node.

The panel is a splitter: the list of alerts above, the current alert's whole message under it. In a row the
iteration, kind and place ("fc2.weight") are whole where the panel's width allows and the message takes what
they leave, ending in "…"; every cell's tooltip has all of it. The alert's source file is named by its base
name (the folder it lies in only takes room from the message); the tooltip has the full path.

The detail area shows the current row's message, wrapped: what was found first ("gradient norm of
'fc2.weight' is 1.68e+03, above 1000, in layer 'fc2', iteration 2"), then what to try. The list keeps room
for its first rows (the splitter starts with the detail a few lines high; a person drags it). The first alert
becomes the current row when it comes (the first is most often the cause of the rest); `detail_text()` is
what the area shows. With no alerts the panel says what is watched for, not a bare header.

An alert raised again (the same kind about the same thing, engine.debug.alert_folds) is folded into its first row:
the row counts it beside its first iteration and the detail says when it came last. The list's context menu mutes a
kind everywhere, or a kind about one thing only (the row's parameter, layer or op), for the rest of the session
(Unmute undoes it): muted rows stay listed, greyed and in italics, and `mutesChanged` tells the session, which then
stops at none of them, and the window, which takes their marks off the timeline.

In a narrow panel the place gives way first (ending in "…"), then the kind wraps onto a second line: a kind is never
cut ("weight decay too…" in the 300-pixel dock of a 1200x800 window), and the message keeps its share.

The rows are read as a QTreeWidget's: `topLevelItem(i)`, `topLevelItemCount()`, `itemClicked`; `list` is
the tree itself.
"""

from __future__ import annotations

import html
import re

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFrame,
    QHeaderView,
    QLabel,
    QMenu,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
)

from engine.debug.alert_folds import Mutes, fold_key
from engine.debug.alert_text import KINDS
from engine.debug.edit_blame import after_edit
from engine.debug.source import short_message
from widgets.edit_marks import EDIT_COLOUR
from widgets.theme import ERROR_TEXT, MUTED_TEXT, pick, tint
from widgets.wrapped_cells import WrappedCells, cell_pad, two_line_width

KEY = Qt.ItemDataRole.UserRole
MESSAGE = Qt.ItemDataRole.UserRole + 1  # the whole message, its file by base name: the detail area's text
FOLD = Qt.ItemDataRole.UserRole + 2  # an alert row's (kind, key, where, first iteration, times raised, last iteration)
KIND_TEXT = {kind: short for kind, (short, _) in KINDS.items()} | {"error": "error"}
# after an edit the rate did not change: a kind named for the learning rate is named for what was seen
EDITED_KIND_TEXT = {"large_update": "update too large", "tiny_update": "update too small"}
EDIT_MARK = "\u270e"  # a pencil: the timeline's edits are violet diamonds, the pencil reads as "edited"
SEVERE = ("nonfinite_forward", "nonfinite_backward", "nonfinite_input", "nonfinite_step", "nonfinite_grad", "inplace",
          "error")
PLACE_SHARE = 0.3  # the most of the width the place ("linear in encoder/0") takes
MESSAGE_SHARE = 0.25  # the least of the width the message keeps in a narrow panel (the detail has all of it)
PLACE_CHARS = 5  # the place gives way down to this many characters ("fc2.w…"), so that the message keeps its share
DETAIL_LINES = 4  # how many lines high the detail area starts (it scrolls beyond; the splitter moves)
# where an alert's finding ends and its advice starts: "... iteration 4: try ..." or "iteration 4 (...): "
ADVICE = re.compile(r" iteration \d+(?: \([^)]*\))?[:;] ")
EMPTY = ("No alerts.\nWatched for: NaN and Inf where they first appear, exploding and vanishing gradients, dead "
         "ReLUs, learning rates too high or too low, and the mistakes that keep a model from training (no zero_grad, "
         "probabilities fed to a loss, model.eval() forgotten, ...). Each alert says where it started and what to "
         "try; a click selects its op.")
# what the panel says instead where EMPTY does not fit (at 1280x720 it was cut mid-sentence), longest first; the
# whole of EMPTY is the panel's tooltip
EMPTY_SHORTER = (
    "No alerts.\nWatched for: NaN and Inf where they first appear, exploding and vanishing gradients, dead ReLUs, "
    "bad learning rates and the mistakes that keep a model from training. A click on an alert selects its op.",
    "No alerts.\nWatched for: NaN and Inf, exploding and vanishing gradients, and the mistakes that keep a model "
    "from training.",
    "No alerts.\nWatched for: NaN and Inf, exploding and vanishing gradients, training mistakes.",
    "No alerts.",
)


def kind_text(kind: str, message: str) -> str:
    """The Kind column's text: the alert's short name, led by the edit's pencil (in the edits' violet) where its
    message blames an edit (EditBlame), which then names what was seen ("update too large"), not a learning rate
    that never changed. (In words, "after edit: ..." took the whole column of the default dock.)"""
    if after_edit(message):
        return f"{EDIT_MARK} {EDITED_KIND_TEXT.get(kind) or KIND_TEXT.get(kind, kind)}"
    return KIND_TEXT.get(kind, kind)


def split(message: str) -> tuple[str, str]:
    """(what was found, what to try) of an alert's message; the advice is '' where the message has none."""
    found = ADVICE.search(message)
    if found is None or not message[found.end():].strip():
        return message, ""
    return message[:found.end()].rstrip(": ;"), message[found.end():]


class _Rows(QTreeWidget):
    """The list of alerts; calls `resized()` as its width changes (its columns are fitted to it)."""

    def __init__(self, resized) -> None:
        super().__init__()
        self._resized = resized

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._resized()


class AlertsPanel(QSplitter):
    """Iteration, kind, where and message of each alert, and the current one's whole message under them;
    emits alertActivated(node key, seq)."""

    alertActivated = Signal(str, int)
    itemClicked = Signal(QTreeWidgetItem, int)  # a row clicked (the list's signal, passed on)
    mutesChanged = Signal(object)  # the Mutes now, after a mute or unmute from the context menu

    def __init__(self, parent=None, max_rows: int = 2000) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.max_rows = max_rows
        self.setChildrenCollapsible(False)
        self.list = _Rows(self._fit_columns)
        self.list.setHeaderLabels(["Iter", "Kind", "Where", "Message"])
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(False)  # a kind wider than its column takes two lines
        WrappedCells.install(self.list, 1)
        self._pad = cell_pad(self.list)  # a cell's margins around its text
        self.list.setAlternatingRowColors(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the message ends in "…"
        # the message takes what the others leave; a stretched last section would not go below 100 pixels
        self.list.header().setStretchLastSection(False)
        self.list.header().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.list.itemActivated.connect(self._activated)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu_at)
        self.mutes = Mutes()  # kept for the session: clear() (a restart, another script) keeps them
        self._folds: dict[tuple, QTreeWidgetItem] = {}  # fold key -> its row
        self._at_seq: dict[int, QTreeWidgetItem] = {}  # seq of each alert listed (repeats too) -> its row
        self.list.itemClicked.connect(self.itemClicked)
        self.itemClicked.connect(self._activated)
        self.list.currentItemChanged.connect(lambda *_: self._show_detail())
        self._widest = [self.list.header().sectionSizeHint(col) for col in range(3)]  # iteration, kind, place
        self._kind_least = 0  # the kind column's width for the widest kind listed on two lines
        self.empty = _FittingText((EMPTY, *EMPTY_SHORTER))
        self.empty.setToolTip(EMPTY)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.empty.setMargin(8)
        tint(self.empty, MUTED_TEXT)
        self._top = QStackedWidget()
        self._top.addWidget(self.empty)
        self._top.addWidget(self.list)
        self.detail = QTextBrowser()
        self.detail.setFrameShape(QFrame.Shape.NoFrame)
        self.detail.setOpenLinks(False)
        self.detail.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.detail.setStyleSheet("QTextBrowser { border-top: 1px solid palette(mid); }")  # the handle, seen
        self.addWidget(self._top)
        self.addWidget(self.detail)
        self.setStretchFactor(0, 1)  # a taller dock gives the list more rows, the detail keeps its lines
        self.setStretchFactor(1, 0)
        self._html = ""  # the detail's text
        self._sized = False  # whether the person dragged the handle (from then on their sizes hold)
        self.splitterMoved.connect(lambda *_: setattr(self, "_sized", True))
        self._show_detail()

    # ---- the rows, as a QTreeWidget's -------------------------------------------------------------------
    def topLevelItem(self, index: int) -> QTreeWidgetItem | None:
        """Row `index`."""
        return self.list.topLevelItem(index)

    def topLevelItemCount(self) -> int:
        """How many rows."""
        return self.list.topLevelItemCount()

    # ---- inputs ---------------------------------------------------------------------------------------
    def add_alerts(self, alerts) -> None:
        """Append AlertEvents (or objects with kind, message, key, module, op, iteration, seq); a repeat of a listed
        one is counted on its row."""
        for a in alerts:
            seq = getattr(a, "forward_seq", 0) or a.seq
            row = self._folds.get(fold_key(a))
            if row is not None:
                kind, key, where, first, times, _ = row.data(0, FOLD)
                row.setData(0, FOLD, (kind, key, where, first, times + 1, a.iteration))
                self._at_seq[seq] = row
                self._show_fold(row)
                if row is self.list.currentItem():
                    self._show_detail()
                continue
            if self.list.topLevelItemCount() >= self.max_rows:
                return
            # an alert of a step (gradients, updates) has no op: it names a parameter or layer by its key
            where = f"{a.op} in {a.module}" if a.module else (a.op or a.key)
            item = self.add_row(a.iteration, a.kind, where, a.message, a.key, seq, getattr(a, "file", ""))
            item.setData(0, FOLD, (a.kind, a.key, where, a.iteration, 1, a.iteration))
            self._folds[fold_key(a)] = self._at_seq[seq] = item
            self._show_fold(item)

    def add_row(self, iteration: int, kind: str, where: str, message: str, key: str = "",
                seq: int = 0, file: str = "") -> QTreeWidgetItem:
        """Append one row (also for errors that are not engine alerts) and return it; `file`, the path the
        message names, is shown by its base name."""
        edited = after_edit(message)
        texts = [str(iteration), kind_text(kind, message), where, short_message(message, file)]
        item = QTreeWidgetItem(texts)
        item.setData(0, KEY, (key, seq))
        item.setData(0, MESSAGE, texts[3])
        for col in range(4):
            item.setToolTip(col, message if col != 2 else f"{where}\n{message}")
        if edited:
            item.setToolTip(1, f"{EDIT_MARK} after an edit: {texts[1][2:]}\n{message}")
        if kind in SEVERE:
            for col in range(4):
                item.setForeground(col, QColor(pick(ERROR_TEXT, self.palette())))
        if edited:
            item.setForeground(1, QColor(EDIT_COLOUR))
        self.list.addTopLevelItem(item)
        self._top.setCurrentWidget(self.list)
        self._place_detail()  # the rows take their room from the detail
        if self.list.currentItem() is None:
            self.list.setCurrentItem(item)  # its message in the detail area; activating stays a click
        self._widen(texts[:3])
        return item

    def _widen(self, texts: list[str]) -> None:
        """Fit the iteration, kind and place columns to `texts` where they are wider than what they hold (and the
        least width of the kind, on two lines)."""
        metrics = self.list.fontMetrics()
        widest = [max(w, metrics.horizontalAdvance(t) + self._pad) for w, t in zip(self._widest, texts, strict=True)]
        least = max(self._kind_least, two_line_width(texts[1], metrics) + self._pad)
        if widest != self._widest or least != self._kind_least:
            self._widest, self._kind_least = widest, least
            self._fit_columns()

    def _show_fold(self, item: QTreeWidgetItem) -> None:
        """Show an alert row as its count and the mutes have it: its count beside its first iteration, greyed, in
        italics and "(muted)" while muted."""
        kind, key, where, first, times, last = item.data(0, FOLD)
        muted = self.mutes.hides(kind, key)
        message = item.toolTip(3)
        texts = [f"{first} \u00d7{times}" if times > 1 else str(first),
                 kind_text(kind, message) + (" (muted)" if muted else ""), where]
        for col, text in enumerate(texts):
            item.setText(col, text)
        item.setToolTip(0, f"first at iteration {first}" + (f"; raised {times} times, the last at iteration {last}"
                                                             if times > 1 else "") + f"\n{message}")
        colour = MUTED_TEXT if muted else ERROR_TEXT if kind in SEVERE else None
        font = self.list.font()
        font.setItalic(muted)  # muted at a glance, "(muted)" on the kind's second line where it wraps
        for col in range(4):
            item.setFont(col, font)
            if colour is not None:
                item.setForeground(col, QColor(pick(colour, self.palette())))
            else:
                item.setData(col, Qt.ItemDataRole.ForegroundRole, None)
        if after_edit(message) and not muted:
            item.setForeground(1, QColor(EDIT_COLOUR))
        self._widen(texts)

    def show_alert(self, alert) -> bool:
        """Make the row of `alert` (an AlertEvent listed before) the current one, in view, its message in the
        detail area: the alert a run stopped at. False when no row is its."""
        row = self._folds.get(fold_key(alert))
        if row is not None:
            self.list.setCurrentItem(row)
            self.list.scrollToItem(row)
            return True
        wanted = (alert.key, getattr(alert, "forward_seq", 0) or alert.seq)
        for i in range(self.list.topLevelItemCount() - 1, -1, -1):
            item = self.list.topLevelItem(i)
            if tuple(item.data(0, KEY)) == wanted and item.text(1) == kind_text(alert.kind, alert.message):
                self.list.setCurrentItem(item)
                self.list.scrollToItem(item)
                return True
        return False

    def show_at(self, seq: int) -> bool:
        """Make the first row of the alerts raised at event `seq` (where the timeline marks them) the current one;
        False when none is."""
        row = self._at_seq.get(seq)
        if row is not None:
            self.list.setCurrentItem(row)
            self.list.scrollToItem(row)
            return True
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            if tuple(item.data(0, KEY))[1] == seq:
                self.list.setCurrentItem(item)
                self.list.scrollToItem(item)
                return True
        return False

    def clear(self) -> None:
        """Remove every row (the mutes stay: they are the session's)."""
        self.list.clear()
        self._folds.clear()
        self._at_seq.clear()
        self._widest = [self.list.header().sectionSizeHint(col) for col in range(3)]
        self._kind_least = 0
        self._fit_columns()
        self._show_detail()

    # ---- what a person sees -----------------------------------------------------------------------------
    def messages(self) -> list[str]:
        """The message of every row, in order."""
        return [self.list.topLevelItem(i).text(3) for i in range(self.list.topLevelItemCount())]

    def detail_text(self) -> str:
        """The whole message shown under the list (the current row's; '' when there is none)."""
        return self.detail.toPlainText() if self.detail.isVisible() else ""

    def empty_text(self) -> str:
        """What the panel says while it lists no alert ('' while it lists some)."""
        return self.empty.shown if self._top.currentWidget() is self.empty else ""

    # ---- layout -----------------------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_detail()

    def _show_detail(self) -> None:
        item = self.list.currentItem()
        message = "" if item is None else item.data(0, MESSAGE)
        if self.list.topLevelItemCount() == 0:
            self._top.setCurrentWidget(self.empty)
        fact, advice = split(message)
        text = f"<p style='margin:0'><b>{html.escape(fact)}</b></p>" if message else ""
        if advice:
            text += f"<p style='margin-top:6px; margin-bottom:0'>{html.escape(advice)}</p>"
        fold = item.data(0, FOLD) if item is not None else None
        if fold is not None and (fold[4] > 1 or self.mutes.hides(*fold[:2])):
            said = [f"Raised {fold[4]} times, the last at iteration {fold[5]}."] if fold[4] > 1 else []
            if self.mutes.hides(*fold[:2]):
                which = "everywhere" if fold[0] in self.mutes.kinds else f"on {fold[2]}"
                said.append(f"Muted {which}: it stops no run and leaves no timeline mark (right-click to unmute).")
            text += f"<p style='margin-top:6px; margin-bottom:0; color:{pick(MUTED_TEXT, self.palette())}'>" \
                    f"{html.escape(' '.join(said))}</p>"
        changed = text != self._html
        if changed:
            self._html = text
            self.detail.setHtml(text)
        self.detail.setVisible(bool(message))
        self._place_detail()
        if changed:
            self.detail.verticalScrollBar().setValue(0)  # what was found, its first line, in view

    def _place_detail(self) -> None:
        """Until the person drags the splitter: the detail DETAIL_LINES high, at most half the panel; the
        list takes the rest."""
        if self._sized or not self.detail.isVisible() or self.height() < 40:
            return
        margins = 2 * int(self.detail.document().documentMargin())
        # DETAIL_LINES at least, and what the rows leave (a list of two alerts left the detail three lines and a
        # scroll bar under an empty list); at most half the panel, or what leaves the list three rows
        rows = self.list.topLevelItemCount()
        row = self.list.sizeHintForRow(0) if rows else self.list.fontMetrics().height() + 6
        listed = self.list.header().sizeHint().height() + max(rows, 3) * row + 6
        room = self.height() - self.handleWidth()
        height = max(DETAIL_LINES * self.detail.fontMetrics().lineSpacing() + margins, room - listed)
        height = min(height, max(room - (self.list.header().sizeHint().height() + 3 * row + 6), room // 2))
        self.setSizes([self.height() - self.handleWidth() - height, height])  # emits no splitterMoved

    def _fit_columns(self) -> None:
        """Iteration, kind and place as wide as their widest text (the place up to PLACE_SHARE of the view); in a
        narrow panel the place gives way first, down to PLACE_CHARS (its tooltip and the detail have it whole), then
        the kind, down to its widest text on two lines, so that the message keeps MESSAGE_SHARE; the message (the last
        column, stretched) takes the rest. (The kind gave way first, down to 40 pixels: "weight decay too…".)"""
        room = self.list.viewport().width()
        iteration, kind, place = self._widest
        place = min(place, int(room * PLACE_SHARE))
        over = max(iteration + kind + place - int(room * (1 - MESSAGE_SHARE)), 0)
        for_place = min(over, max(place - PLACE_CHARS * self.list.fontMetrics().averageCharWidth() - self._pad, 0))
        place -= for_place
        kind -= min(over - for_place, max(kind - self._kind_least, 0))
        for col, width in enumerate((iteration, kind, place)):
            self.list.setColumnWidth(col, width)

    # ---- muting ---------------------------------------------------------------------------------------
    def context_menu(self, item: QTreeWidgetItem | None) -> QMenu:
        """The menu of a row: mute (or unmute) its kind everywhere, or its kind about what the row names only
        (the vanishing gradient of '1.weight', not of '0.weight'); unmute all."""
        menu = QMenu(self.list)
        fold = item.data(0, FOLD) if item is not None else None
        if fold is not None:
            kind, key, where = fold[:3]
            name = f"\u201c{KIND_TEXT.get(kind, kind)}\u201d"
            everywhere = kind in self.mutes.kinds
            menu.addAction(f"{'Unmute' if everywhere else 'Mute'} {name} Everywhere",
                           lambda: self.set_mutes(_toggled(self.mutes, kinds={kind})))
            if key:
                muted = (kind, key) in self.mutes.pairs
                only = menu.addAction(f"Unmute {name} on {where}" if muted else f"Mute {name} on {where} Only",
                                      lambda: self.set_mutes(_toggled(self.mutes, pairs={(kind, key)})))
                only.setEnabled(not everywhere)  # muted everywhere: this one is muted with the rest
                if everywhere:
                    only.setToolTip(f"{name} is muted everywhere")
            menu.addSeparator()
        every = menu.addAction("Unmute All", lambda: self.set_mutes(Mutes()))
        every.setEnabled(bool(self.mutes))
        return menu

    def set_mutes(self, mutes: Mutes) -> None:
        """Mute what `mutes` names (the rows of it greyed, the rest as they were) and tell the session."""
        if mutes == self.mutes:
            return
        self.mutes = mutes
        for row in self._folds.values():
            self._show_fold(row)
        self._html = ""
        self._show_detail()
        self.mutesChanged.emit(mutes)

    def _context_menu_at(self, pos: QPoint) -> None:
        self.context_menu(self.list.itemAt(pos)).exec(self.list.viewport().mapToGlobal(pos))

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        key, seq = item.data(0, KEY)
        self.alertActivated.emit(key, seq)


def _toggled(mutes: Mutes, kinds: set = frozenset(), pairs: set = frozenset()) -> Mutes:
    """`mutes` with `kinds` and (kind, key) `pairs` muted where they were not, and unmuted where they were."""
    return Mutes(mutes.kinds ^ frozenset(kinds), mutes.keys, mutes.pairs ^ frozenset(pairs))


class _FittingText(QLabel):
    """A wrapped label showing the longest of its texts (a bold first line, then the rest) that fits its height."""

    def __init__(self, texts: tuple[str, ...]) -> None:
        super().__init__()
        self._texts = texts
        self.shown = ""
        self._show(texts[0])

    def _show(self, text: str) -> None:
        head, _, rest = text.partition("\n")
        self.shown = text
        self.setText(f"<b>{html.escape(head)}</b><br>{html.escape(rest)}" if rest else f"<b>{html.escape(head)}</b>")

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        for text in self._texts:
            self._show(text)
            if self.heightForWidth(self.width()) <= self.height():
                break

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), 0)  # the text gives way: it must not hold the dock high
