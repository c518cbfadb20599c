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
import uuid

from PySide6.QtCore import Qt, Signal
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
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.debug.edits import EditParam, Freeze, Reinit, Restore, SetOptimizer, SetSetting, SwapModule
from engine.nn.settings import Setting
from widgets.theme import ERROR_FIELD, ERROR_TEXT, MUTED_TEXT, follow_palette, pick, tint

PATH = Qt.ItemDataRole.UserRole
TYPES = {"float": float, "int": int, "bool": bool, "str": str}
TIMES = "\u00d7"
_REFUSED = "QLineEdit {{ border: 1px solid #e03131; border-radius: 2px; background: {fill}; }}"
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
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        # every column as wide as its contents, the module names first: in a narrow dock a stretched name
        # column got what the others left, which was nothing ("S..." for SpiralNet); the rest scrolls
        header.setStretchLastSection(True)
        for col in range(5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemChanged.connect(self._tree_item_changed)
        split.addWidget(self.tree)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        inner = QWidget()
        self._details_box = QVBoxLayout(inner)
        self._details_box.setContentsMargins(6, 6, 6, 6)
        self.details = QWidget()
        self._details_box.addWidget(self.details)
        self._details_box.addStretch(1)
        scroll.setWidget(inner)
        split.addWidget(scroll)
        split.setSizes([180, 380])
        self.set_model([], None)

    # ---- inputs -----------------------------------------------------------------------------------
    def set_model(self, modules: list[dict], optimizer: dict | None = None) -> None:
        """Show a model (see the module docstring); keeps the selection and any editor not changed."""
        current = self.current_path()
        self._modules = {m["path"]: m for m in modules}
        self.tree.blockSignals(True)
        try:
            self.tree.clear()
            items: dict[str, QTreeWidgetItem] = {}
            for m in modules:
                path = m["path"]
                parent_path = self._parent_of(path)
                parent = items.get(parent_path)
                name = path[len(parent_path) + 1:] if parent is not None else path
                total, trainable = self._count(path)
                item = QTreeWidgetItem([name, m["cls"], f"{total:,}" if total else "",
                                        "train" if m["training"] else "eval", ""])
                item.setData(0, PATH, path)
                item.setToolTip(0, path)
                item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if total:
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setCheckState(4, _frozen_state(total, trainable))
                if not m["training"]:
                    item.setForeground(3, self.palette().placeholderText())
                (parent.addChild if parent is not None else self.tree.addTopLevelItem)(item)
                items[path] = item
            self.tree.expandAll()
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

    def wanted_width(self) -> int:
        """The width that shows the tree's columns whole (names, classes, parameter counts, mode, frozen)."""
        header = self.tree.header()
        columns = sum(max(header.sectionSizeHint(col), self.tree.sizeHintForColumn(col))
                      for col in range(header.count()))
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
        total = trainable = 0
        for m in self._subtree(path):
            for _name, shape, grad in m["params"]:
                n = math.prod(shape)
                total += n
                trainable += n if grad else 0
        return total, trainable

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
        breakable = path.replace(".", ".\u200b")
        title = QLabel()
        # the class's colour is in the HTML: written again when the palette turns light or dark
        follow_palette(title, lambda: title.setText(
            f"<b>{breakable}</b> &nbsp;<span style='color: {pick(MUTED_TEXT)}'>{m['cls']}</span>"))
        title.setWordWrap(True)
        title.setToolTip(path)
        box.addWidget(title)
        nothing = True
        total, trainable = self._count(path)
        if not m["params"] and total:
            # a container: freeze everything below it here too (the tree's Frozen column scrolls out of
            # sight in a narrow dock)
            nothing = False
            group = QGroupBox("Parameters")
            form = _form(group)
            check = QCheckBox(f"Freeze all {total:,} parameters inside")
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
