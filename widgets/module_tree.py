"""The modules of the shown iteration as a tree, one row per module however often it was called; a fold box per
row (drawn as a boxed minus where its calls are open in the graph, a boxed plus where they are folded into one box)
expands or folds its calls in the graph."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPen
from PySide6.QtWidgets import QApplication, QHeaderView, QProxyStyle, QStyle, QTreeWidget, QTreeWidgetItem

from engine.nn.module import NUMBERED_ROOT

PATH = Qt.ItemDataRole.UserRole  # the row's first call, as the graph names it ("cell", "cell#1" for a second)
CALLS = Qt.ItemDataRole.UserRole + 1  # every call the row stands for, in call order
# the most of a class name the tree asks room for: "TransformerEncoderLayer" whole beside its nested names at 1280x720
CLASS_CHARS = 28
CLASS_LEAST = 11  # the fewest characters of a class a narrow tree still shows, taken from the names if need be
EMPTY_CHARS = 28  # an empty tree asks for room for a short model's names and classes ("SpiralNet  SpiralNet")
EXPANDS = ("its fold box \u229f (minus): drawn open in the graph, its ops inside, a click folds it; \u229e (plus): "
           "folded into one box, a click opens it")
_INDEXED = re.compile(r"^(.*?)(\d+)$")  # "3", "blocks.10": a Sequential's or a ModuleList's child


@dataclass
class _Row:
    """One module path: its calls, its class, and its children's paths in the order they are listed."""

    cls: str
    parent: str | None
    calls: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


class _FoldBoxes(QProxyStyle):
    """Draws a row's check box as a fold box: a tick read as "this module is enabled", and collapsing the modules
    seemed to switch them all off. A boxed minus: open in the graph (a click folds it); a boxed plus: folded (a
    click opens it); a boxed dot: some of its calls folded."""

    def drawPrimitive(self, element, option, painter, widget=None) -> None:
        if element != QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck:
            super().drawPrimitive(element, option, painter, widget)
            return
        r = QRectF(option.rect).adjusted(1.5, 1.5, -1.5, -1.5)
        side = min(r.width(), r.height())
        r = QRectF(r.center().x() - side / 2, r.center().y() - side / 2, side, side)
        ink = option.palette.text().color()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(option.palette.mid().color(), 1))
        painter.setBrush(option.palette.base())
        painter.drawRoundedRect(r, 2, 2)
        pen = QPen(ink, max(1.2, side / 9))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        c, arm = r.center(), side * 0.28
        state = option.state
        if state & QStyle.StateFlag.State_NoChange:  # partly folded
            painter.setBrush(ink)
            painter.drawEllipse(c, side * 0.12, side * 0.12)
        else:
            painter.drawLine(QPointF(c.x() - arm, c.y()), QPointF(c.x() + arm, c.y()))
            if state & QStyle.StateFlag.State_Off:  # folded: the plus that opens it
                painter.drawLine(QPointF(c.x(), c.y() - arm), QPointF(c.x(), c.y() + arm))
        painter.restore()


class ModuleTree(QTreeWidget):
    """Modules (path, class); checked means their calls are shown expanded in the graph.

    A module called more than once (an unrolled cell, an ODE's vector field, weight-shared blocks) is one row,
    its class reading "ODEFunc \u00d7240"; its box collapses or expands every call, and clicking it again shows
    the next call. Emits moduleSelected(call) when a row is picked (a click, or the arrow keys), moduleActivated(
    call) on a double-click (to zoom onto it), expandRequested(call, expanded) when a box of a module called once
    is toggled, expandCallsRequested(calls, expanded) for one called more often, and widthWanted(width) when the
    modules shown need more width than the tree has to show their classes.
    """

    moduleSelected = Signal(str)
    moduleActivated = Signal(str)
    expandRequested = Signal(str, bool)
    expandCallsRequested = Signal(list, bool)
    widthWanted = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Module", "Class"])
        self.headerItem().setToolTip(0, f"A module per row; {EXPANDS}")
        self.headerItem().setToolTip(1, "The module's class; \u00d7N: called N times in the iteration shown")
        # the columns share the width the tree has, never more (see _fit_columns): at 1024x640 the class column
        # scrolled out of sight; a cut name or class is whole in its tooltip, cut in the middle so that
        # "residual_block_layers.0" and ".1" still read apart
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.header().setMinimumSectionSize(8)
        # a level two characters deep, not Qt's 20 pixels: the arrow fits, and a transformer's out_proj, five levels
        # in, held the names' column 175 pixels wide at 1280x720 while its classes read "Transfo\u2026erLayer"
        self.setIndentation(2 * self.fontMetrics().averageCharWidth())
        self._wanted = [0, 0]  # each column's width to show whole, measured when rows change
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self._shown: tuple = ()
        self._columns = 0  # the columns' widths with every name and class whole, measured when rows change
        self._rows_height = 0  # the rows' height together, measured when they change
        self._clicked: tuple[str, int] = ("", 0)  # the folded row clicked last (its first call) and the call shown
        self._keyed: QTreeWidgetItem | None = None  # the row made current (and picked) since the last click
        self._in_change = False  # inside itemChanged: Qt is still setting the item a rebuild would delete
        self._later: tuple | None = None  # set_modules' arguments, kept for after that
        self._empty_note = ""  # shown in place of rows when there are none (see set_empty_note)
        # over a copy of the application's style (a proxy of none crashed); kept: a widget does not own its style
        self._fold_style = _FoldBoxes(QApplication.style().name())
        self.setStyle(self._fold_style)
        self.itemChanged.connect(self._on_changed)
        self.itemClicked.connect(self._on_clicked)
        self.itemDoubleClicked.connect(self._on_double_clicked)
        self.currentItemChanged.connect(self._on_current_changed)

    def set_modules(self, paths: list[str], classes: list[str], parents: list[int],
                    collapsed: set[str], models: dict[str, str] | None = None) -> None:
        """Show module calls (index 0, the top level, is not shown), listed in call order; `parents[i]` indexes
        `paths`. The calls of one module path make one row, where its first call is listed. `models`: a model's
        path ("Sequential_2") -> the name the script calls it by ("D"), which its row reads."""
        models = dict(models or {})
        if self._in_change:  # a box was (un)checked and the graph changed at once: rebuild once Qt is done
            if self._later is None:
                QTimer.singleShot(0, self._rebuild_later)
            self._later = (paths, classes, parents, set(collapsed), models)
            return
        shown = (tuple(paths), tuple(classes), tuple(int(p) for p in parents), frozenset(collapsed),
                 tuple(sorted(models.items())))
        if shown == self._shown:
            return
        self._shown = shown
        rows, top = fold_calls(paths, classes, parents)
        picked = self.currentItem().data(0, PATH) if self.currentItem() is not None else None
        self.blockSignals(True)
        try:
            self.clear()
            self._keyed = None
            stack = [(path, None) for path in reversed(top)]
            while stack:
                path, parent = stack.pop()
                row = rows[path]
                item = _item(path, row, collapsed, models.get(path) if parent is None else None)
                (parent.addChild if parent is not None else self.addTopLevelItem)(item)
                if picked is not None and item.data(0, PATH) == picked:  # the row picked stays picked
                    self.setCurrentItem(item)
                stack.extend((child, item) for child in reversed(row.children))
            self.expandAll()
        finally:
            self.blockSignals(False)
        # measured once here: Qt asks for a dock's sizeHint at every relayout, and measuring reads every row
        # a class name takes at most CLASS_CHARS ("NonDynamicallyQuantizableLinear", an attention's projection,
        # widened the dock by half): cut with "…", whole in its tooltip
        most = CLASS_CHARS * self.fontMetrics().averageCharWidth()
        self._wanted = [max(self.sizeHintForColumn(c), self.header().sectionSizeHint(c))
                        for c in range(self.columnCount())]
        self._columns = sum(min(w, most if c == 1 else 1 << 30) for c, w in enumerate(self._wanted))
        self._rows_height = len(self.paths()) * max(self.sizeHintForRow(0), 1)
        self._fit_columns()
        want = self.sizeHint().width()
        if want > self.width():
            self.widthWanted.emit(want)

    def set_empty_note(self, text: str) -> None:
        """What the panel says while it lists no module ("" for nothing): an iteration whose ops ran outside any
        model (the code after a training loop) left a blank panel that read as if the model were lost."""
        if text != self._empty_note:
            self._empty_note = text
            self.viewport().update()

    def empty_note(self) -> str:
        """The note shown now: the empty-panel text, when no row is listed."""
        return self._empty_note if not self.topLevelItemCount() else ""

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        note = self.empty_note()
        if note:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            margin = self.fontMetrics().averageCharWidth()
            painter.drawText(self.viewport().rect().adjusted(margin, margin, -margin, -margin),
                             Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap, note)
            painter.end()

    def sizeHint(self) -> QSize:
        """Wide enough to show every name and class whole (an empty tree: a short model's)."""
        hint = super().sizeHint()
        empty = EMPTY_CHARS * self.fontMetrics().averageCharWidth()
        columns = self._columns
        # the scroll bar its rows will need, before it shows: measured as rows came it was left out, and the classes
        # lost its width
        bar = self.verticalScrollBar()
        scroll = bar.sizeHint().width() if bar.isVisible() or self._rows_height > self.viewport().height() else 0
        width = max(empty, columns + 2 * self.frameWidth() + scroll + self.fontMetrics().averageCharWidth())
        return QSize(width, hint.height())

    def viewportEvent(self, event) -> bool:
        handled = super().viewportEvent(event)
        if event.type() == QEvent.Type.Resize:  # the tree's or its vertical scroll bar's coming and going
            self._fit_columns()
        return handled

    def _fit_columns(self) -> None:
        """Share the viewport's width between the columns, never more: the names whole where they fit, the
        classes the rest; a narrow tree keeps a third of its width (CLASS_LEAST characters at least) for the classes
        ("Lay\u2026orm" said little) and cuts the names."""
        room = self.viewport().width()
        name, cls = self._wanted
        least = min(cls, max(CLASS_LEAST * self.fontMetrics().averageCharWidth(), room // 3))
        cls = max(least, room - name)
        self.header().resizeSection(0, max(room - cls, self.header().minimumSectionSize()))
        self.header().resizeSection(1, max(cls, self.header().minimumSectionSize()))

    def clear_pick(self) -> None:
        """Show no row as picked (something else was picked since), without emitting moduleSelected."""
        self.blockSignals(True)
        try:
            self.setCurrentItem(None)
            self.clearSelection()
        finally:
            self.blockSignals(False)
        self._keyed = None

    def reveal(self, call: str) -> bool:
        """Scroll to module call `call`'s row (its module's, for a repeated call) and mark it current, emitting
        nothing: the graph found a node inside it. False when no row lists that call."""
        path = module_path(call)
        items = [self.topLevelItem(i) for i in range(self.topLevelItemCount())]
        while items:
            item = items.pop()
            if call in (item.data(0, CALLS) or ()) or item.data(0, PATH) == path:
                self.blockSignals(True)
                try:
                    self.setCurrentItem(item)
                finally:
                    self.blockSignals(False)
                self.scrollToItem(item, QTreeWidget.ScrollHint.PositionAtCenter)
                return True
            items.extend(item.child(i) for i in range(item.childCount()))
        return False

    def paths(self) -> list[str]:
        """Every row's first call as the graph names it, in tree order."""
        out = []

        def walk(item: QTreeWidgetItem) -> None:
            out.append(item.data(0, PATH))
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.topLevelItemCount()):
            walk(self.topLevelItem(i))
        return out

    def _on_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column != 0 or not item.data(0, CALLS):
            return
        expanded = item.checkState(0) == Qt.CheckState.Checked
        calls = item.data(0, CALLS)
        self._in_change = True  # what the signal changes may ask for new rows: not while `item` is being set
        try:
            if len(calls) > 1:
                self.expandCallsRequested.emit(list(calls), expanded)
            else:
                self.expandRequested.emit(calls[0], expanded)
        finally:
            self._in_change = False

    def _rebuild_later(self) -> None:
        later, self._later = self._later, None
        if later is not None:
            self.set_modules(*later)

    def _on_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        # a folded row shows its first call; clicked again, the next one (and round again after the last)
        calls = item.data(0, CALLS)
        if not calls:  # a model whose own forward did not run: nothing of its own to show
            return
        if self._keyed is item:  # made current by this click's press: picked already
            self._keyed = None
            return
        last, shown = self._clicked
        n = (shown + 1) % len(calls) if last == calls[0] else 0
        self._clicked = (calls[0], n)
        self.moduleSelected.emit(calls[n])

    def _on_current_changed(self, item: QTreeWidgetItem | None, _previous) -> None:
        # a row made current is picked, by the arrow keys or by the press of a click (whose release then only
        # finds it picked: see _on_clicked)
        calls = item.data(0, CALLS) if item is not None else None
        if not calls:
            return
        self._keyed = item
        self._clicked = (calls[0], 0)
        self.moduleSelected.emit(calls[0])

    def _on_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        calls = item.data(0, CALLS)
        if calls:
            last, shown = self._clicked
            self.moduleActivated.emit(calls[shown if last == calls[0] else 0])


def _item(path: str, row: _Row, collapsed: set[str], model: str | None = None) -> QTreeWidgetItem:
    """The row of module `path`: its name under its parent (a model's, `model`: the script's name for it), its
    class (and how often it was called)."""
    calls = row.calls
    cls = f"{row.cls} \u00d7{len(calls)}" if len(calls) > 1 else row.cls
    item = QTreeWidgetItem([model or (name_under(path, row.parent) if row.parent is not None else path), cls])
    item.setData(0, PATH, calls[0] if calls else path)
    item.setData(0, CALLS, calls)
    named = f"{model} ({path}, as the engine names it)" if model else path
    if not calls:
        item.setToolTip(0, f"{named}: its own forward did not run; the script called its modules directly")
        item.setToolTip(1, row.cls)
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
        return item
    folded = sum(call in collapsed for call in calls)
    # the box reads as "enabled" unless it says what it does: it opens the module's box in the graph
    box = ("folded into one box in the graph" if folded == len(calls) else
           "drawn open in the graph, its ops inside" if not folded else f"{folded} of its calls folded")
    if len(calls) > 1:
        times = f"called {len(calls)} times in the iteration shown"  # not in the run: the graph shows one iteration
        item.setToolTip(0, f"{named}: {times} ({calls[0]} \u2026 {calls[-1]}); click again to show the next call. "
                           f"{EXPANDS}; now {box}")
        item.setToolTip(1, f"{row.cls}, {times}")
    else:
        item.setToolTip(0, f"{named if model else calls[0]}: {EXPANDS}; now {box}")
        item.setToolTip(1, cls)
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(0, Qt.CheckState.Checked if not folded else
                       Qt.CheckState.Unchecked if folded == len(calls) else Qt.CheckState.PartiallyChecked)
    return item


def fold_calls(paths: list[str], classes: list[str], parents: list[int]) -> tuple[dict[str, _Row], list[str]]:
    """The calls (index 0: the top level) folded into one row per module path, and the top-level paths.

    A row goes where its path's first call is; children are listed in call order, but indexed children
    ("0", "1", ... of a Sequential, "blocks.0", ... of a ModuleList) in their parent's order, which a module
    with nothing to show (a Dropout in eval) would otherwise break."""
    rows: dict[str, _Row] = {}
    top: list[str] = []
    path_of = [""] * len(paths)
    for i in range(1, len(paths)):
        path = path_of[i] = module_path(paths[i])
        row = rows.get(path)
        if row is None:
            p = int(parents[i])
            parent = path_of[p] if p > 0 else None
            row = rows[path] = _Row(classes[i], parent)
            (rows[parent].children if parent is not None else top).append(path)
        row.calls.append(paths[i])
    top = _under_their_models(top, rows)
    for row in rows.values():
        row.children = _in_definition_order(row.children, rows)
    return rows, _in_definition_order(top, rows)


def _under_their_models(top: list[str], rows: dict[str, _Row]) -> list[str]:
    """Top-level rows of a model's modules ("BiLSTMCRF.lstm": a script that scores with a method of its model,
    never calling the model itself) put under a row of the model, made for them where it has none."""
    out = []
    for path in top:
        model, dot, _ = path.partition(".")
        if not dot:
            out.append(path)
            continue
        row = rows.get(model)
        if row is None:  # the model's own forward never ran: a row without calls of its own
            numbered = NUMBERED_ROOT.fullmatch(model)
            row = rows[model] = _Row(model.rpartition("_")[0] if numbered else model, None)
            out.append(model)
        rows[path].parent = model
        row.children.append(path)
    return out


def _in_definition_order(children: list[str], rows: dict[str, _Row]) -> list[str]:
    """`children` (in call order) with each run of indexed siblings ("0", "1", ...) sorted by index, in place
    of the indexed siblings the call order had."""
    if len(children) < 2:
        return children
    indexed: dict[str, list[tuple[int, int, str]]] = {}
    for at, child in enumerate(children):
        parent = rows[child].parent
        match = _INDEXED.match(name_under(child, parent) if parent is not None else child)
        if match and (not match.group(1) or match.group(1).endswith(".")):
            indexed.setdefault(match.group(1), []).append((at, int(match.group(2)), child))
    out = list(children)
    for run in indexed.values():
        for (at, _, _), (_, _, child) in zip(run, sorted(run, key=lambda r: r[1]), strict=True):
            out[at] = child
    return out


def module_path(call: str) -> str:
    """A module call's path: "Net.cell#3" (the graph's fourth call of it) is "Net.cell"."""
    base, _, n = call.rpartition("#")
    return base if base and n.isdigit() else call


def model_name(call: str, models: dict[str, str]) -> str:
    """A model's call as the graph titles it: "D" for "Sequential_2" called `D` in the script, "D#1" for its second
    call ("Sequential_2#1"); the call itself where the script's name for it is not known."""
    path = module_path(call)
    return models[path] + call[len(path):] if path in models else call


def name_under(path: str, parent: str) -> str:
    """A call's name below its parent's: "Net.embed#1" under "Net#1" is "embed#1" (the "#n" that numbers a
    repeated call is the graph's, not part of the module's dotted path)."""
    base = parent.rsplit("#", 1)[0] if "#" in parent else parent
    return path[len(base) + 1:] if path.startswith(base + ".") and len(path) > len(base) + 1 else path
