"""The module editor: the model's module tree, and editors for what may change while training runs.

Inputs: `set_model(modules, optimizer=None)`, plain data (app.edit_history.describe_model makes it):
  modules: one dict per module in tree order with path ("MLP.fc1"; a parent's path is a prefix),
  cls, training (bool), params [(name, shape, requires_grad)] (its own), settings (the dicts of
  Module.editable_settings()), swaps (class names it may be swapped for), kwargs [(name, value)] (its
  constructor arguments, to swap back) and reinit (bool);
  optimizer: {"cls": "SGD", "groups": [{"lr": 0.1, "momentum": 0.9, ...}]}.
  `select(path)` shows one module's editors.
Outputs: `editRequested(edit, inverse, text)`: an engine.debug edit (SetSetting, Freeze, SwapModule,
  Reinit, EditParam, SetOptimizer), the edits that undo it (a tuple, or None when it cannot be undone)
  and a line for the undo menu: push both to app.edit_history.EditHistory and send the edit. A value out
  of range or of the wrong type is refused in its editor, with the reason under it, and nothing is
  emitted. Value edits (Reinit, EditParam) carry a snapshot name; their inverse is Restore(snapshot).
  `moduleSelected(path)`.
  `edit_refused(edit, reason)`: an edit it asked for was not made (the run had ended, the engine refused
  it): its field shows the module's value again, with the reason under it.
"""

from __future__ import annotations

import itertools
import math
import re
import uuid

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.debug.edits import EditParam, Freeze, Reinit, Restore, SetOptimizer, SetSetting, SwapModule
from engine.nn.settings import Setting
from widgets.theme import ERROR_FIELD, ERROR_TEXT, MUTED_TEXT, follow_palette, pick, tint

PATH = Qt.ItemDataRole.UserRole
DETAIL = Qt.ItemDataRole.UserRole + 1  # what a narrow tree writes after the name: "Linear", "Dropout · eval"
TYPES = {"float": float, "int": int, "bool": bool, "str": str}
TIMES = "\u00d7"
_REFUSED = "QLineEdit {{ border: 1px solid #e03131; border-radius: 2px; background: {fill}; }}"
NAME, CLASS, PARAMS, MODE, FROZEN = range(5)  # the tree's columns
CLASS_LEAST = 8  # characters: narrower than this beside the names whole, the class goes after the name instead
MAX_ELEMENTS = 65_536  # a selection's coordinates travel in the edit (and the tape): all, or at most this many


def _setting(d: dict) -> Setting:
    """The Setting a describe() dict came from, so the engine's own check refuses what it would refuse."""
    choices = tuple(d["choices"]) if d.get("choices") is not None else None
    return Setting(d["name"], TYPES.get(d["type"], str), d.get("low"), d.get("high"), choices,
                   d.get("reinit", False), d.get("doc", ""), d.get("low_open", False),
                   d.get("high_open", False), d.get("optional", False))


def _parse(text: str, kind: type, optional: bool):
    """The typed value of an editor's text; ValueError with the reason."""
    text = text.strip()
    if not text and optional:
        return None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    return text


def _field_text(value) -> str:
    """A value as its field shows it: 6 significant digits, as a scheduler's lr is 0.0003999999999999993, which a
    narrow field cut to "9999993" (the exact value is in the tooltip; committing the text as shown edits
    nothing)."""
    return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


def _shape(shape) -> str:
    return TIMES.join(map(str, shape)) or "scalar"


def _elements(text: str, shape: tuple) -> tuple[tuple[int, ...], ...]:
    """The coordinates a numpy-style selection ("0:4, :", "3, 5", "-1") picks in `shape`; () for all of
    them ('' or 'all'). ValueError with the reason."""
    text = text.strip().strip("[]").strip()
    if text in ("", "all", ":", "..."):
        return ()
    parts = [t.strip() for t in text.split(",")]
    if parts and parts[-1] == "":
        parts.pop()
    if len(parts) > len(shape):
        raise ValueError(f"{len(parts)} indices for a {len(shape)}-d parameter of shape {_shape(shape)}")
    axes = []
    for axis, (part, n) in enumerate(itertools.zip_longest(parts, shape, fillvalue=":")):
        if ":" in part:
            try:
                bounds = [int(b) if b.strip() else None for b in part.split(":")]
                if len(bounds) > 3 or bounds[2:] == [0]:
                    raise ValueError
            except ValueError:
                raise ValueError(f"{part!r} is not a slice like 0:4 or ::2") from None
            axes.append(range(*slice(*bounds).indices(n)))
        else:
            try:
                i = int(part)
            except ValueError:
                raise ValueError(f"{part!r} is not an index (a whole number, or a slice like 0:4)") from None
            if not -n <= i < n:
                raise ValueError(f"index {i} is out of range for axis {axis} of size {n} "
                                 f"(shape {_shape(shape)})")
            axes.append((i % n,))
    count = math.prod(len(a) for a in axes)
    if count == 0:
        raise ValueError(f"{text!r} selects no elements of shape {_shape(shape)}")
    if count == math.prod(shape):
        return ()
    if count > MAX_ELEMENTS:
        raise ValueError(f"{text!r} selects {count:,} elements; select at most {MAX_ELEMENTS:,}, or all")
    return tuple(itertools.product(*axes))


class _ValueEditor(QWidget):
    """One value: an editor that fits its type, and a line under it for the reason a value is refused."""

    def __init__(self, value, kind: type, choices=None, allowed: str = "", optional: bool = False) -> None:
        super().__init__()
        self.kind, self.optional, self.current = kind, optional, value
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(1)
        if choices is not None:
            self.input = QComboBox()
            self.input.addItems([str(c) for c in choices])
            self._choices = list(choices)
            self.input.setCurrentIndex(self._choices.index(value) if value in self._choices else -1)
        elif kind is bool:
            self.input = QCheckBox()
            self.input.setChecked(bool(value))
        else:
            self.input = QLineEdit(_field_text(value))
            self.input.setCursorPosition(0)  # a field narrower than its text shows how the value starts
            self.input.setPlaceholderText(allowed)
        self._shown_text = self.input.text() if isinstance(self.input, QLineEdit) else None
        exact = f"value: {value!r}" if isinstance(value, float) else ""
        self.input.setToolTip("\n".join(t for t in (allowed, exact) if t))
        self.error = QLabel()
        self.error.setWordWrap(True)
        tint(self.error, ERROR_TEXT, "font-size: 8pt")
        self.error.hide()
        self._refused = False
        follow_palette(self, self._paint_refused, now=False)  # the refused field's fill: light or dark red
        box.addWidget(self.input)
        box.addWidget(self.error)

    def text_value(self):
        """The value entered (typed); ValueError when it is not even of the right type."""
        if isinstance(self.input, QComboBox):
            return self._choices[self.input.currentIndex()]
        if isinstance(self.input, QCheckBox):
            return self.input.isChecked()
        return _parse(self.input.text(), self.kind, self.optional)

    def untouched(self) -> bool:
        """Whether the field still holds the text it showed for the current value."""
        return self._shown_text is not None and self.input.text() == self._shown_text

    def refuse(self, reason: str) -> None:
        """Show why the value entered is not accepted."""
        self.error.setText(reason)
        self.error.show()
        self._refused = True
        self._paint_refused()

    def accept(self, value) -> None:
        """The value entered was taken: it is the current value now."""
        self.current = value
        self.error.hide()
        self._refused = False
        self._paint_refused()
        if self._shown_text is not None:
            self._shown_text = self.input.text()

    def put_back(self, value, reason: str) -> None:
        """Show `value` (what the module still holds) again, and under it why the value entered was not
        applied: a refused edit left the typed p=0.5 in the field, as if the dropout had it."""
        self.current = value
        if isinstance(self.input, QComboBox):
            self.input.setCurrentIndex(self._choices.index(value) if value in self._choices else -1)
        elif isinstance(self.input, QCheckBox):
            self.input.setChecked(bool(value))
        else:
            self.input.setText(_field_text(value))
            self.input.setCursorPosition(0)
            self._shown_text = self.input.text()
        self._refused = False  # the field holds a good value: only the line under it says what happened
        self._paint_refused()
        self.error.setText(reason)
        self.error.show()

    def _paint_refused(self) -> None:
        self.input.setStyleSheet(_REFUSED.format(fill=pick(ERROR_FIELD)) if self._refused else "")

    def on_commit(self, fn) -> None:
        """Call fn() when the person commits a value (Enter, leaving the field, picking, ticking)."""
        if isinstance(self.input, QComboBox):
            self.input.activated.connect(lambda _i: fn())
        elif isinstance(self.input, QCheckBox):
            self.input.clicked.connect(lambda _c: fn())
        else:
            self.input.editingFinished.connect(fn)


class ModuleEditor(QWidget):
    """The module tree and the selected module's editors; see the module docstring for the API."""

    editRequested = Signal(object, object, str)
    moduleSelected = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._modules: dict[str, dict] = {}
        self._optimizer: dict | None = None
        self._editors: dict[str, _ValueEditor] = {}
        self._shown: tuple | None = None
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        split = QSplitter(Qt.Orientation.Vertical)
        box.addWidget(split)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Module", "Class", "Params", "Mode", "Frozen"])
        for col, tip in ((NAME, "The module's attribute name (its path in the tooltip)"),
                         (CLASS, "The module's class"),
                         (PARAMS, "Parameters in the module and everything inside it"),
                         (MODE, "train or eval: what module.train() / module.eval() set last"),
                         (FROZEN, "Ticked: its parameters are frozen (requires_grad off); the optimizer leaves them "
                                  "as they are")):
            self.tree.headerItem().setToolTip(col, tip)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setIndentation(14)
        # the columns share the width the tree has, never more (see _fit_columns): at 1024x640 the Editor's
        # five columns scrolled sideways, Params, Mode and the Frozen ticks out of sight
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header.setMinimumSectionSize(8)
        self._names = _NameDelegate(self.tree)
        self._wanted = [0] * self.tree.columnCount()  # each column's width to show whole, as last measured
        self._retired: list[QTreeWidgetItem] = []  # rows taken out of the tree, deleted when the event loop turns
        self.tree.setItemDelegateForColumn(NAME, self._names)
        self.tree.viewport().installEventFilter(self)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemChanged.connect(self._tree_item_changed)
        split.addWidget(self.tree)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # the details wrap to the dock's width (names break after a dot, forms put a field under its name)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        self._details_box = QVBoxLayout(inner)
        self._details_box.setContentsMargins(6, 6, 6, 6)
        self.details = QWidget()
        self._details_box.addWidget(self.details)
        self._details_box.addStretch(1)
        scroll.setWidget(inner)
        split.addWidget(scroll)
        split.setSizes([220, 340])
        self.set_model([], None)

    # ---- inputs -----------------------------------------------------------------------------------
    def set_model(self, modules: list[dict], optimizer: dict | None = None) -> None:
        """Show a model (see the module docstring); keeps the selection and any editor not changed."""
        current = self.current_path()
        self._modules = {m["path"]: m for m in modules}
        self._counts = self._count_all()
        self.tree.blockSignals(True)
        try:
            # the old rows are deleted once the event loop turns, not here: a session that applies an edit at once
            # (a test's) calls this from inside the Frozen tick's itemChanged, and Qt still reads that row after
            # (a crash in the whole suite, in test_freeze_from_the_tree_and_undo_restores_a_mixed_state)
            self._retired += [self.tree.takeTopLevelItem(0) for _ in range(self.tree.topLevelItemCount())]
            QTimer.singleShot(0, self._retired.clear)
            items: dict[str, QTreeWidgetItem] = {}
            for m in modules:
                path = m["path"]
                parent_path = self._parent_of(path)
                parent = items.get(parent_path)
                name = path[len(parent_path) + 1:] if parent is not None else path
                total, trainable = self._count(path)
                mode = "train" if m["training"] else "eval"
                item = QTreeWidgetItem([name, m["cls"], f"{total:,}" if total else "", mode, ""])
                item.setData(0, PATH, path)
                # whole in the tooltips, where a narrow dock elides the columns
                cls = m["cls"] if m["cls"] != name else ""  # the model's root is named by its class
                item.setData(NAME, DETAIL, cls if m["training"] else " \u00b7 ".join(filter(None, (cls, "eval"))))
                counted = f"{total:,} parameters, {trainable:,} of them trainable" if total else "no parameters"
                item.setToolTip(NAME, f"{path}\n{m['cls']} \u00b7 {mode} mode \u00b7 {counted}")
                item.setToolTip(CLASS, m["cls"])
                item.setToolTip(PARAMS, counted)
                item.setToolTip(MODE, f"{mode} mode")
                item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if total:
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setCheckState(4, _frozen_state(total, trainable))
                if not m["training"]:
                    item.setForeground(3, self.palette().placeholderText())
                (parent.addChild if parent is not None else self.tree.addTopLevelItem)(item)
                items[path] = item
            self.tree.expandAll()
            self._fit_columns()
            target = items.get(current) or (next(iter(items.values())) if items else None)
            if target is not None:
                self.tree.setCurrentItem(target)
        finally:
            self.tree.blockSignals(False)
        self._optimizer = optimizer
        self._show_details(self.current_path())

    def select(self, path: str) -> None:
        """Select the module at `path` and show its editors."""
        items = self.tree.findItems("*", Qt.MatchFlag.MatchWildcard | Qt.MatchFlag.MatchRecursive)
        for item in items:
            if item.data(0, PATH) == path:
                self.tree.setCurrentItem(item)
                return
        raise KeyError(f"ModuleEditor: no module {path!r}")

    def eventFilter(self, watched, event) -> bool:
        if watched is self.tree.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return False

    def _fit_columns(self) -> None:
        """Share the tree's width among its columns, never more: the parameter counts, modes and Frozen ticks
        whole, the names whole, the classes with what is left (the names get what a wide dock has over). Where the
        classes would get less than a few characters (a 240-pixel dock at 1024x640), the tree shows the names and
        the Frozen ticks only, each name followed by its class (and "eval" in eval mode), muted; the counts and
        modes are in the rows' tooltips and the selected module's details."""
        header, tree = self.tree.header(), self.tree
        room = tree.viewport().width()
        for col in range(header.count()):
            header.setSectionHidden(col, False)
        wanted = self._wanted = [max(header.sectionSizeHint(col), tree.sizeHintForColumn(col))
                                 for col in range(header.count())]
        rest = room - sum(wanted[PARAMS:])
        narrow = rest - wanted[NAME] < min(wanted[CLASS], CLASS_LEAST * tree.fontMetrics().averageCharWidth())
        self._names.narrow = narrow
        if narrow:
            for col in (CLASS, PARAMS, MODE):
                header.setSectionHidden(col, True)
            widths = {NAME: room - wanted[FROZEN], FROZEN: wanted[FROZEN]}
        else:
            cls = min(wanted[CLASS], rest - wanted[NAME])
            widths = {NAME: rest - cls, CLASS: cls, **{col: wanted[col] for col in range(PARAMS, len(wanted))}}
        for col, width in widths.items():
            header.resizeSection(col, max(width, header.minimumSectionSize()))
        tree.viewport().update()

    def narrow(self) -> bool:
        """Whether the tree shows names and Frozen ticks only, each class after its name (a narrow dock)."""
        return self._names.narrow

    def wanted_width(self) -> int:
        """The width that shows the tree's columns whole (names, classes, parameter counts, mode, frozen)."""
        columns = sum(self._wanted)  # as measured with every column shown (a hidden header section measures 0)
        scroll = self.tree.verticalScrollBar().sizeHint().width()
        return columns + 2 * self.tree.frameWidth() + scroll + self.tree.fontMetrics().averageCharWidth()

    def edit_refused(self, edit, reason: str) -> bool:
        """`edit` (one this editor asked for) was not made: its field shows the module's value again, with
        `reason` under it, and a frozen tick what the parameters are. False where no field shows the reason
        (a value change, a swap: nothing to put back), for the caller to show it."""
        if isinstance(edit, Freeze):
            self._shown = None
            self.set_model(list(self._modules.values()), self._optimizer)
            return False
        editor, value = None, None
        if isinstance(edit, SetSetting) and edit.module == self.current_path():
            values = {d["name"]: d["value"] for d in self._modules[edit.module]["settings"]}
            editor, value = self._editors.get(edit.name), values.get(edit.name)
        elif isinstance(edit, SetOptimizer) and self._optimizer is not None:
            groups = self._optimizer["groups"]
            key = f"optimizer.{edit.group}.{edit.name}" if edit.group else f"optimizer.{edit.name}"
            editor = self._editors.get(key)
            value = groups[edit.group].get(edit.name) if edit.group < len(groups) else None
        if not isinstance(editor, _ValueEditor) or value is None:
            return False
        editor.put_back(value, reason)
        return True

    # ---- what a person sees -------------------------------------------------------------------------
    def current_path(self) -> str | None:
        """The selected module's path."""
        item = self.tree.currentItem()
        return item.data(0, PATH) if item is not None else None

    def editor(self, name: str) -> QWidget:
        """The input widget of a setting of the selected module, or of an optimizer value ('optimizer.lr',
        'optimizer.1.lr' for group 1)."""
        return self._editors[name].input

    def error_text(self, name: str) -> str:
        """The reason shown under an editor ('' when its value was accepted)."""
        e = self._editors[name]
        return "" if e.error.isHidden() else e.error.text()

    def row(self, path: str) -> tuple[str, str, str, Qt.CheckState]:
        """(class, parameter count, mode, frozen state) of a module as its tree row shows it."""
        for item in self.tree.findItems("*", Qt.MatchFlag.MatchWildcard | Qt.MatchFlag.MatchRecursive):
            if item.data(0, PATH) == path:
                return item.text(1), item.text(2), item.text(3), item.checkState(4)
        raise KeyError(path)

    # ---- the tree -----------------------------------------------------------------------------------
    def _parent_of(self, path: str) -> str:
        parent = path.rpartition(".")[0]
        while parent and parent not in self._modules:
            parent = parent.rpartition(".")[0]
        return parent

    def _subtree(self, path: str) -> list[dict]:
        return [m for p, m in self._modules.items() if p == path or p.startswith(path + ".")]

    def _count(self, path: str) -> tuple[int, int]:
        """(parameters, trainable parameters) under `path`."""
        return self._counts.get(path, (0, 0))

    def _count_all(self) -> dict[str, tuple[int, int]]:
        """(parameters, trainable parameters) under each module: its own added to it and to each module above it,
        once (a module's subtree, searched for each of a 150-block ResNet's 750 modules, took most of a second)."""
        counts = dict.fromkeys(self._modules, (0, 0))
        for path, m in self._modules.items():
            own = sum(math.prod(shape) for _name, shape, _grad in m["params"])
            trained = sum(math.prod(shape) for _name, shape, grad in m["params"] if grad)
            if not own:
                continue
            at = path
            while True:
                total, trainable = counts[at]
                counts[at] = total + own, trainable + trained
                if not at:
                    break
                at = self._parent_of(at)
                if at not in counts:
                    break
        return counts

    def _current_changed(self, item, _previous) -> None:
        path = item.data(0, PATH) if item is not None else None
        self._show_details(path)
        if path is not None:
            self.moduleSelected.emit(path)

    def _tree_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column != 4:
            return
        path = item.data(0, PATH)
        frozen = item.checkState(4) != Qt.CheckState.Unchecked
        self._freeze(path, frozen)

    def _freeze(self, target: str, frozen: bool) -> None:
        """Freeze or unfreeze a module (all its parameters) or one parameter; the inverse restores each."""
        before = [(f"{m['path']}.{name}", grad) for m in self._subtree(target)
                  for name, _shape, grad in m["params"]]
        if target not in self._modules:  # one parameter
            before = [(target, self._param_grad(target))]
        if all(grad == before[0][1] for _p, grad in before):
            inverse = (Freeze(target, not before[0][1]),)
        else:  # a mixed state: put each parameter back
            inverse = tuple(Freeze(p, not grad) for p, grad in before)
        verb = "freeze" if frozen else "unfreeze"
        self.editRequested.emit(Freeze(target, frozen), inverse, f"{verb} {target}")

    def _param_grad(self, param_path: str) -> bool:
        owner, _, name = param_path.rpartition(".")
        return next(g for n, _s, g in self._modules[owner]["params"] if n == name)

    # ---- the details ----------------------------------------------------------------------------------
    def _show_details(self, path: str | None) -> None:
        shown = (path, repr(self._modules.get(path)), repr(self._optimizer))
        if shown == self._shown:
            return  # unchanged: keep what the person is typing
        self._shown = shown
        self._editors = {}
        old = self.details
        self.details = QWidget()
        self._details_box.replaceWidget(old, self.details)
        old.hide()  # deleteLater waits for the event loop; until then it must not show
        old.deleteLater()
        box = QVBoxLayout(self.details)
        box.setContentsMargins(0, 0, 0, 0)
        m = self._modules.get(path)
        if m is not None:
            self._module_details(box, m)
        if self._optimizer is not None:
            box.addWidget(self._optimizer_details(self._optimizer))

    def _module_details(self, box: QVBoxLayout, m: dict) -> None:
        path = m["path"]
        # a long path ("TinyGPT.blocks.layers.0.dropout") may break after a dot: unbroken, it made the
        # details wider than a narrow dock and cut off every editor's refusal on the right. Not selectable:
        # a copied path would carry the invisible break marks into whatever it is pasted into
        breakable = _breakable(path)
        title = QLabel()
        # the class's colour is in the HTML: written again when the palette turns light or dark
        follow_palette(title, lambda: title.setText(
            f"<b>{breakable}</b> &nbsp;<span style='color: {pick(MUTED_TEXT)}'>{_breakable(m['cls'])} \u00b7 "
            f"{'train' if m['training'] else 'eval'} mode</span>"))
        title.setWordWrap(True)
        title.setToolTip(path)
        box.addWidget(title)
        nothing = True
        total, trainable = self._count(path)
        if not m["params"] and total:
            # a container: freeze everything below it here too, a click away from its details. The count in the
            # title: "Freeze all 2,402 parameters inside" set the details' least width past a 240-pixel dock's
            nothing = False
            group = QGroupBox(f"Parameters: {total:,} inside")
            form = _form(group)
            check = QCheckBox("Freeze all")
            check.setToolTip(f"Ticked: all {total:,} parameters inside {path} are frozen (requires_grad off)")
            check.setCheckState(_frozen_state(total, trainable))
            check.clicked.connect(lambda on: self._freeze(path, on))
            form.addRow(check)
            box.addWidget(group)
        if m["params"]:
            nothing = False
            group = QGroupBox("Parameters")
            form = _form(group)
            for name, shape, grad in m["params"]:
                # "Freeze", an action's name beside a box ticked while it holds: "frozen" beside an empty box read
                # as a weight already frozen
                check = QCheckBox("Freeze")
                check.setChecked(not grad)
                check.setToolTip(f"Ticked: {name} is frozen (requires_grad off), the optimizer leaves it as it is. "
                                 "Unticked: it trains.")
                check.clicked.connect(lambda on, t=f"{path}.{name}": self._freeze(t, on))
                form.addRow(f"{name}  {_shape(shape)}", check)
            box.addWidget(group)
        if m["settings"]:
            nothing = False
            group = QGroupBox("Settings")
            form = _form(group)
            for d in m["settings"]:
                kind = TYPES.get(d["type"], str)
                editor = _ValueEditor(d["value"], kind, d.get("choices"), d.get("allowed", ""),
                                      bool(d.get("optional")))
                editor.on_commit(lambda e=editor, d=d: self._commit_setting(path, m["cls"], d, e))
                self._editors[d["name"]] = editor
                label = QLabel(d["name"])
                label.setToolTip(d.get("doc", ""))
                form.addRow(label, editor)
            box.addWidget(group)
        if m["swaps"]:
            nothing = False
            group = QGroupBox("Swap for")
            row = QHBoxLayout(group)
            combo = QComboBox()
            combo.addItems(m["swaps"])
            button = QPushButton("Swap")
            button.clicked.connect(lambda: self._swap(m, combo.currentText()))
            row.addWidget(combo, 1)
            row.addWidget(button)
            self._editors["swap"] = _Holder(combo)
            box.addWidget(group)
        if m["params"]:
            box.addWidget(self._values_group(m))
        if m["reinit"] and self._count(path)[0]:
            nothing = False
            button = QPushButton("Re-initialise parameters")
            button.setToolTip("reset_parameters(): draws new initial values (Undo puts the old ones back)")
            button.clicked.connect(lambda: self._reinit(path))
            box.addWidget(button, 0, Qt.AlignmentFlag.AlignLeft)
        if nothing:
            note = QLabel(f"Nothing in {m['cls']} changes at runtime: its shapes are fixed when it is built.")
            note.setWordWrap(True)
            tint(note, MUTED_TEXT)
            box.addWidget(note)

    def _values_group(self, m: dict) -> QGroupBox:
        """Scale or fill the elements of one of the module's parameters (all, an index or a slice)."""
        group = QGroupBox("Change values")
        form = _form(group)
        param = QComboBox()
        for name, shape, _grad in m["params"]:
            param.addItem(f"{name}  {_shape(shape)}", (name, tuple(shape)))
        action = QComboBox()
        action.addItem("scale by", "scale")
        action.addItem("fill with", "fill")
        elements = _ValueEditor("", str, allowed="all, or e.g. 0:4, : or 3, 5")
        elements.input.setToolTip("which elements: empty for all, or a numpy-style index or slice per axis")
        value = _ValueEditor("", float, allowed="a finite number")
        for combo in (param, action):  # a long parameter name must not widen the details past a narrow dock
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        apply = QPushButton("Apply")
        form.addRow("parameter", param)
        form.addRow("elements", elements)
        form.addRow(action, value)
        form.addRow(apply)
        self._editors.update({"values.param": _Holder(param), "values.action": _Holder(action),
                              "values.elements": elements, "values.value": value, "values.apply": _Holder(apply)})
        commit = lambda: self._commit_values(m["path"], param.currentData(), action.currentData(),  # noqa: E731
                                             elements, value)
        apply.clicked.connect(commit)
        value.input.returnPressed.connect(commit)
        return group

    def _commit_values(self, path: str, param: tuple, action: str, elements: _ValueEditor,
                       value: _ValueEditor) -> None:
        name, shape = param
        try:
            indices = _elements(elements.input.text(), shape)
        except ValueError as err:
            elements.refuse(str(err))
            return
        elements.accept("")
        try:
            number = _parse(value.input.text(), float, False)
            if not math.isfinite(number):
                raise ValueError(f"the value must be a finite number, got {value.input.text().strip()}")
        except ValueError as err:
            value.refuse(str(err) if "finite" in str(err) else f"{err}; enter a finite number")
            return
        value.accept(number)
        target = f"{path}.{name}"
        snapshot = uuid.uuid4().hex[:12]
        where = "" if not indices else f"[{elements.input.text().strip().strip('[]')}]"
        text = f"{action} {target}{where} {'by' if action == 'scale' else 'with'} {number:g}"
        self.editRequested.emit(EditParam(target, action, number, indices, snapshot),
                                (Restore(target, snapshot),), text)

    def _reinit(self, path: str) -> None:
        snapshot = uuid.uuid4().hex[:12]
        self.editRequested.emit(Reinit(path, snapshot), (Restore(path, snapshot),), f"re-initialise {path}")

    def _optimizer_details(self, opt: dict) -> QGroupBox:
        group_box = QGroupBox(f"Optimizer: {opt['cls']}")
        form = _form(group_box)
        many = len(opt["groups"]) > 1
        for g, group in enumerate(opt["groups"]):
            if many:
                note = QLabel(f"group {g}")
                tint(note, MUTED_TEXT)
                form.addRow(note)
            for name, value in group.items():
                kind = bool if isinstance(value, bool) else float
                editor = _ValueEditor(value, kind, allowed="a number >= 0" if kind is float else "")
                key = f"optimizer.{g}.{name}" if g else f"optimizer.{name}"
                editor.on_commit(lambda e=editor, n=name, g=g: self._commit_optimizer(n, g, e))
                self._editors[key] = editor
                form.addRow(name, editor)
        return group_box

    # ---- commits ------------------------------------------------------------------------------------
    def _commit_setting(self, path: str, cls: str, d: dict, editor: _ValueEditor) -> None:
        if editor.untouched():
            editor.accept(editor.current)
            return
        try:
            value = _setting(d).validate(cls, editor.text_value())
        except ValueError as err:
            editor.refuse(str(err) if str(err).startswith(cls) else
                          f"{cls}: {err}; allowed: {d.get('allowed', d['type'])}")
            return
        old = editor.current
        editor.accept(value)
        if value != old:
            self.editRequested.emit(SetSetting(path, d["name"], value), (SetSetting(path, d["name"], old),),
                                    f"{path}.{d['name']} = {value!r}")

    def _commit_optimizer(self, name: str, group: int, editor: _ValueEditor) -> None:
        if editor.untouched():
            editor.accept(editor.current)
            return
        try:
            value = editor.text_value()
            if not isinstance(value, bool) and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value:g}")
        except ValueError as err:
            editor.refuse(str(err))
            return
        old = editor.current
        editor.accept(value)
        if value != old:
            where = f" (group {group})" if group else ""
            self.editRequested.emit(SetOptimizer(name, value, group), (SetOptimizer(name, old, group),),
                                    f"{name} = {value!r}{where}")

    def _swap(self, m: dict, cls: str) -> None:
        path = m["path"]
        inverse = (SwapModule(path, m["cls"], tuple(m["kwargs"])),)
        self.editRequested.emit(SwapModule(path, cls), inverse, f"swap {path} for {cls}")


def _breakable(name: str) -> str:
    """`name` with places a label may break it: after a dot, and between the words of a CamelCase class name
    ("SpiralClassifierWithResidualBlocks", a model's root, ran past a narrow dock's edge)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "\u200b", name.replace(".", ".\u200b"))


def _form(group: QGroupBox) -> QFormLayout:
    """A form whose field goes under its name where the dock is too narrow for both on one line."""
    form = QFormLayout(group)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    return form


class _Holder:
    """An editor entry for a plain input widget (no value line): the swap choice."""

    def __init__(self, widget: QWidget) -> None:
        self.input = widget
        self.error = QLabel()


def _frozen_state(total: int, trainable: int) -> Qt.CheckState:
    """The "frozen" tick of `total` parameters of which `trainable` still train: all, none or some frozen."""
    if trainable == 0:
        return Qt.CheckState.Checked
    return Qt.CheckState.Unchecked if trainable == total else Qt.CheckState.PartiallyChecked


class _NameDelegate(QStyledItemDelegate):
    """The name column: in a narrow tree (`narrow`), the name and after it, muted, the class ("Linear", "Dropout ·
    eval"); the class gives way first, then the name, each ending in "…"."""

    def __init__(self, parent) -> None:
        super().__init__(parent)
        self.narrow = False

    def paint(self, painter, option, index) -> None:
        detail = index.data(DETAIL)
        if not self.narrow or not detail:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        name, opt.text = opt.text, ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is None:
            super().paint(painter, option, index)
            return
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)  # row, selection, focus
        margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, widget) + 1
        rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget).adjusted(margin, 0, -margin, 0)
        metrics = opt.fontMetrics
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        active = bool(opt.state & QStyle.StateFlag.State_Active)
        group = QPalette.ColorGroup.Active if active else QPalette.ColorGroup.Inactive
        text = opt.palette.color(group, QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        shown = metrics.elidedText(name, Qt.TextElideMode.ElideRight, rect.width())
        painter.save()
        painter.setFont(opt.font)
        painter.setPen(text)
        painter.drawText(rect, align, shown)
        gap = metrics.horizontalAdvance("  ")
        left = rect.adjusted(metrics.horizontalAdvance(shown) + gap, 0, 0, 0)
        if left.width() >= metrics.horizontalAdvance("M\u2026"):
            painter.setPen(text if selected else QColor(pick(MUTED_TEXT, opt.palette)))
            painter.drawText(left, align, metrics.elidedText(detail, Qt.TextElideMode.ElideRight, left.width()))
        painter.restore()
