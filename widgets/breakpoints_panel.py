"""Breakpoints: a list to enable, disable, edit and delete them, and an inline editor for new ones.

Specs are engine.debug Breakpoint values (plain frozen dataclasses), checked with Breakpoint.validate()
in the editor, so a spec the debugger would refuse is refused here, with the reason shown.
Inputs: `set_breakpoints(infos)` with engine.debug BreakpointInfo values (Debugger.list_breakpoints());
`edit_new(spec=None)` opens the editor prefilled (e.g. Breakpoint.op(node key) or
Breakpoint.module(path) for the selected node: the window's F9 may add directly instead);
`set_names(modules, ops)`: the model's module paths and op keys, which the form's examples and completions
are drawn from (asked for with namesWanted as the form opens).
Outputs: `addRequested(Breakpoint)`, `replaceRequested(id, Breakpoint)` (an edit: remove id, add the
new spec), `removeRequested(id)`, `enableRequested(id, enabled)`, `activated(id)` (double-click),
`namesWanted()`.
"""

from __future__ import annotations

import math
import re
from itertools import pairwise

from PySide6.QtCore import QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.debug.breakpoints import CONDITIONS, NOT_PATHS, WHERE, Breakpoint, BreakpointInfo, describe, number
from engine.debug.node_names import engine_named, script_named
from engine.debug.records import PHASES
from widgets.elided_label import ElidedLabel
from widgets.theme import ERROR_TEXT, MUTED_TEXT, pick, tint

KIND_LABELS = {
    "op": "op (name or key)", "module": "module call", "iteration": "iteration", "phase": "phase start",
    "nonfinite": "NaN or Inf", "max_abs": "max |x| above", "norm": "L2 norm above",
    "predicate": "predicate (by name)",
}
ID = Qt.ItemDataRole.UserRole
MAX_ITERATION = 10**9  # far beyond any run a person steps through; above it, a typo is the likelier cause
VALUE_LABELS = {"iteration": "iteration", "max_abs": "threshold", "norm": "threshold"}
WILDCARDS = "* matches any text, ? one character"
GLOBS = "wildcards * and ?"


class BreakpointEditor(QWidget):
    """A form for one breakpoint spec; emits accepted(spec) only for a spec that validates."""

    accepted = Signal(object)
    cancelled = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 4, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.kind = QComboBox()
        for kind, label in KIND_LABELS.items():
            self.kind.addItem(label, kind)
        self.pattern = QLineEdit()
        self.names = QStringListModel(self)  # what the pattern may name in the model shown, to complete
        completer = QCompleter(self.names, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.pattern.setCompleter(completer)
        self.hint = ElidedLabel()  # what the pattern matches, in a line under it (its tooltip says more)
        tint(self.hint, MUTED_TEXT)
        self._modules: list[str] = []
        self._ops: list[str] = []
        self.models: dict[str, str] = {}  # the script's names of its models: engine path -> name
        self.phase = QComboBox()
        self.phase.addItems(list(PHASES))
        self.on = QComboBox()
        self.value = QLineEdit()
        self.skip = QSpinBox()
        self.skip.setRange(0, 1_000_000)
        self.skip.setToolTip("Hits to pass before stopping (gdb's ignore count)")
        self.error = QLabel()
        self.error.setWordWrap(True)
        tint(self.error, ERROR_TEXT)
        self.error.hide()
        buttons = QHBoxLayout()
        self.ok = QPushButton("Add")
        self.ok.setDefault(True)
        cancel = QPushButton("Cancel")
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.ok)
        self.rows = {}
        for name, w in (("stop at", self.kind), ("pattern", self.pattern), ("", self.hint), ("phase", self.phase),
                        ("on", self.on), ("value", self.value), ("skip", self.skip)):
            form.addRow(name, w)
            self.rows[name or "hint"] = w
        form.addRow(self.error)
        form.addRow(buttons)
        self._form = form
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.ok.clicked.connect(self.submit)
        self.pattern.returnPressed.connect(self.submit)
        self.value.returnPressed.connect(self.submit)
        cancel.clicked.connect(self.cancelled)
        self._kind_changed()

    def set_names(self, modules: list[str], ops: list[str]) -> None:
        """The model's module paths ("SpiralNet.fc1") and op keys ("SpiralNet.fc1/linear:0"), in the order they
        ran: the pattern's examples and completions come from them."""
        self._modules, self._ops = list(modules), list(ops)
        self._kind_changed()

    def set_model_names(self, models: dict[str, str]) -> None:
        """The script's names of its models (engine path -> name, "Sequential_2" -> "D"): the form shows patterns,
        examples and completions by them, as the graph does, and makes specs of the engine's paths."""
        self.models = dict(models)
        self._kind_changed()

    def load(self, spec: Breakpoint | None, button: str = "Add") -> None:
        """Fill the form from a spec (None: an empty op breakpoint)."""
        spec = spec or Breakpoint("op")
        self.kind.setCurrentIndex(self.kind.findData(spec.kind))
        self._kind_changed()
        self.pattern.setText("" if spec.kind == "phase" else spec.pattern if spec.kind in NOT_PATHS else
                             script_named(spec.pattern, self.models))
        if spec.kind == "phase" and spec.pattern in PHASES:
            self.phase.setCurrentText(spec.pattern)
        if spec.on:
            self.on.setCurrentText(spec.on)
        self.value.setText(number(spec.value) if spec.kind in ("iteration", "max_abs", "norm") else "")
        self.skip.setValue(spec.skip)
        self.ok.setText(button)
        self.error.hide()

    def spec(self) -> Breakpoint:
        """The spec the form describes; ValueError saying what is wrong."""
        kind = self.kind.currentData()
        pattern = self.phase.currentText() if kind == "phase" else self.pattern.text().strip()
        if kind not in NOT_PATHS:
            pattern = engine_named(pattern, self.models)  # typed as the graph names the models
        value = 0.0
        if kind == "iteration":
            text = self.value.text().strip()
            if not re.fullmatch(r"[0-9]+", text) or int(text) > MAX_ITERATION:
                raise ValueError(f"iteration must be a whole number from 0 to {MAX_ITERATION:,}, got {text!r}")
            value = float(text)
        elif kind in ("max_abs", "norm"):
            text = self.value.text().strip()
            if not text:
                raise ValueError("type a threshold, e.g. 50 or 1e3")
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"the threshold must be a number, got {text!r}") from None
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"the threshold must be a finite number >= 0, got {text}")
        on = self.on.currentText() if self.on.isEnabled() else ""
        return Breakpoint(kind, pattern if kind != "iteration" else "", on, value, self.skip.value()).validate()

    def submit(self) -> None:
        """Emit accepted(spec) when the form is valid; else show why and emit nothing."""
        try:
            spec = self.spec()
        except ValueError as err:
            self.error.setText(str(err))
            self.error.show()
            return
        self.error.hide()
        self.accepted.emit(spec)

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        group = "condition" if kind in CONDITIONS else kind
        sides = WHERE.get(group, ())
        self.on.clear()
        self.on.addItems(list(sides))
        placeholder, hint, tip, names = _pattern_help(kind, [script_named(m, self.models) for m in self._modules],
                                                      [script_named(o, self.models) for o in self._ops])
        shown = {"pattern": kind in ("op", "module", "predicate", *CONDITIONS), "hint": bool(hint),
                 "phase": kind == "phase", "on": bool(sides), "value": kind in ("iteration", "max_abs", "norm"),
                 "skip": kind not in ("iteration",)}
        for name, visible in shown.items():
            self._form.setRowVisible(self.rows[name], visible)
        self._form.labelForField(self.value).setText(VALUE_LABELS.get(kind, "value"))
        self.on.setEnabled(bool(sides))
        self.pattern.setPlaceholderText(placeholder)
        self.pattern.setToolTip(tip)
        self.hint.setText(hint)
        self.hint.setToolTip(tip)
        self.names.setStringList(names)
        self.value.setPlaceholderText("iteration number" if kind == "iteration" else "threshold, e.g. 1e3")
        self.error.hide()


def _pattern_help(kind: str, modules: list[str], ops: list[str]) -> tuple[str, str, str, list[str]]:
    """(placeholder, the line under the field, its longer tooltip, completions) of the pattern of a `kind`
    breakpoint, with examples from the model's modules and ops (generic ones before any ran): a module breakpoint
    matches a module's path with or without the model's class in front ("fc1" or "MLP.fc1"), an op one an op's
    name or its key."""
    names = list(dict.fromkeys(key.rpartition("/")[2].rpartition(":")[0] for key in ops))
    layers = [f"{m}/*" for m in modules if "." in m]  # every op of one module call, as an op pattern names them
    if kind == "module":
        inner = [m.partition(".")[2] for m in modules if "." in m]  # below the model: as the tree nests them
        if inner:
            examples = [inner[0], f"{modules[0].partition('.')[0]}.{inner[0]}", _glob_example(inner)]
            nested = next((m for m in inner if "." in m), "")
        else:
            examples, nested = ["fc1", "Net.fc1", "*.attn"], "encoder.attn"
        shown = f"{examples[0]}, {nested}" if nested else examples[0]
        tip = (f"A module's path below the model, as the Modules tree nests it ({shown}), or with the model's class "
               f"in front ({examples[1]}); {WILDCARDS} ({examples[2]}).")
        return ("e.g. " + ", ".join(dict.fromkeys(examples)), f"its path, as in the Modules tree; {GLOBS}", tip,
                [*inner, *modules])
    if kind == "op":
        if ops:
            key = next((k for k in ops if "." in k.partition("/")[0]), ops[0])  # one inside a layer, if any
            examples = [names[0], key, layers[0] if layers else f"*{names[0]}*"]
        else:
            examples = ["linear", "Net.fc1/linear:0", "Net.fc1/*"]
        tip = (f"An op's name ({examples[0]}: every one) or its node key ({examples[1]}: that op); {WILDCARDS} "
               f"({examples[2]}: every op of that module).")
        return ("e.g. " + ", ".join(dict.fromkeys(examples)), f"an op name or node key; {GLOBS}", tip,
                [*names, *layers, *ops])
    if kind == "predicate":
        return "a name given to Debugger.add_predicate", "", "", []
    if kind not in CONDITIONS:
        return "", "", "", []
    examples = [f"*{names[0]}*", layers[0]] if names and layers else ["*linear*", "Net.fc2/*"]
    return (f"optional: only these ops, e.g. {', '.join(examples)}", "", f"Ops by name or node key; {WILDCARDS}.",
            [*names, *layers])


class BreakpointsPanel(QWidget):
    """The breakpoint list with add, edit, delete and enable; see the module docstring for the API."""

    addRequested = Signal(object)
    replaceRequested = Signal(int, object)
    removeRequested = Signal(int)
    enableRequested = Signal(int, bool)
    activated = Signal(int)
    namesWanted = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.setSpacing(4)
        self.list = QTreeWidget()
        self.list.setHeaderLabels(["Breakpoint", "Hits"])
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setAlternatingRowColors(True)
        self.list.header().setStretchLastSection(False)
        self.list.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.list.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.list.itemChanged.connect(self._item_changed)
        self.list.itemDoubleClicked.connect(lambda item, _c: self.activated.emit(item.data(0, ID)))
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        box.addWidget(self.list, 1)
        bar = QHBoxLayout()
        self.add_button = QPushButton("Add\u2026")
        self.edit_button = QPushButton("Edit\u2026")
        self.delete_button = QPushButton("Delete")
        for b in (self.add_button, self.edit_button, self.delete_button):
            bar.addWidget(b)
        bar.addStretch(1)
        box.addLayout(bar)
        self.editor = BreakpointEditor()
        self.editor.hide()
        box.addWidget(self.editor)
        self.add_button.clicked.connect(lambda: self.edit_new())
        self.edit_button.clicked.connect(self._edit_current)
        self.delete_button.clicked.connect(self._delete_current)
        self.editor.accepted.connect(self._accepted)
        self.editor.cancelled.connect(self.editor.hide)
        self._editing: int | None = None  # the id being edited; None: a new one
        self._infos: dict[int, BreakpointInfo] = {}
        self._update_buttons()

    # ---- inputs -----------------------------------------------------------------------------------
    def set_breakpoints(self, infos) -> None:
        """Show these breakpoints (engine.debug BreakpointInfo: id, spec, enabled, hits)."""
        current = self.current_id()
        self._infos = {i.id: i for i in infos}
        self.list.blockSignals(True)
        try:
            self.list.clear()
            for info in self._infos.values():
                item = QTreeWidgetItem([describe(info.spec, self.editor.models), str(info.hits)])
                item.setData(0, ID, info.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Checked if info.enabled else Qt.CheckState.Unchecked)
                item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if info.enabled:
                    item.setToolTip(0, "Checked: enabled. Double-click to show where it stopped.")
                else:  # greyed and italic, as editors show a disabled breakpoint: it stops nothing now
                    font = item.font(0)
                    font.setItalic(True)
                    muted = QColor(pick(MUTED_TEXT, self.list.palette()))
                    for column in (0, 1):
                        item.setForeground(column, muted)
                        item.setFont(column, font)
                    item.setToolTip(0, "Disabled: it counts no hits and stops nothing. Check it to enable it.")
                self.list.addTopLevelItem(item)
                if info.id == current:
                    self.list.setCurrentItem(item)
        finally:
            self.list.blockSignals(False)
        self._update_buttons()

    def set_names(self, modules: list[str], ops: list[str]) -> None:
        """The model's module paths and op keys, for the form's examples and completions."""
        self.editor.set_names(modules, ops)

    def set_model_names(self, models: dict[str, str]) -> None:
        """Name the models in the list and the form as the script calls them (engine path -> name: "Sequential_2"
        -> "D", as the graph titles them); the breakpoints themselves keep the engine's paths, so they match as
        before."""
        if models != self.editor.models:
            self.editor.set_model_names(models)
            self.set_breakpoints(self._infos.values())

    def edit_new(self, spec: Breakpoint | None = None) -> None:
        """Open the editor for a new breakpoint, prefilled with `spec`."""
        self._editing = None
        self.namesWanted.emit()  # the model may have grown since the form was last open
        self.editor.load(spec, "Add")
        self.editor.show()
        (self.editor.pattern if self.editor.pattern.isVisible() else self.editor.kind).setFocus()

    def select(self, bid: int | None) -> None:
        """Select the breakpoint with id `bid` (the one that stopped the run) and scroll to it; None: select
        none."""
        if bid is None:
            self.list.setCurrentItem(None)
            self.list.clearSelection()
            return
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            if item.data(0, ID) == bid:
                self.list.setCurrentItem(item)
                self.list.scrollToItem(item)
                return

    # ---- what a person sees -------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, int, bool]]:
        """(description, hits, enabled) of each listed breakpoint."""
        out = []
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            out.append((item.text(0), int(item.text(1)), item.checkState(0) == Qt.CheckState.Checked))
        return out

    def current_id(self) -> int | None:
        """The id of the selected breakpoint."""
        item = self.list.currentItem()
        return item.data(0, ID) if item is not None else None

    # ---- intents ------------------------------------------------------------------------------------
    def _accepted(self, spec: Breakpoint) -> None:
        self.editor.hide()
        if self._editing is None:
            self.addRequested.emit(spec)
        elif spec != self._infos[self._editing].spec:
            self.replaceRequested.emit(self._editing, spec)

    def _edit_current(self) -> None:
        bid = self.current_id()
        if bid is None:
            return
        self._editing = bid
        self.namesWanted.emit()
        self.editor.load(self._infos[bid].spec, "Save")
        self.editor.show()

    def _delete_current(self) -> None:
        bid = self.current_id()
        if bid is not None:
            self.removeRequested.emit(bid)

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            # once Qt is done with the item: the answer rebuilds the list, which deletes it (a crash when
            # that happened inside the item's own change)
            bid, on = item.data(0, ID), item.checkState(0) == Qt.CheckState.Checked
            QTimer.singleShot(0, lambda: self.enableRequested.emit(bid, on))

    def _update_buttons(self) -> None:
        has = self.list.currentItem() is not None
        self.edit_button.setEnabled(has)
        self.delete_button.setEnabled(has)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Delete and self.list.hasFocus():
            self._delete_current()
            return
        super().keyPressEvent(event)


def _glob_example(names: list[str]) -> str:
    """A glob that names several of these module paths: "*.attn" for nested ones, else the longest prefix two
    share ("fc*"), else "*"."""
    nested = [n for n in names if "." in n]
    if nested:
        return f"*.{nested[0].rpartition('.')[2]}"
    ordered = sorted(names)
    shared = max((_shared_prefix(a, b) for a, b in pairwise(ordered)), key=len, default="")
    return f"{shared}*" if len(shared) >= 2 else "*"


def _shared_prefix(a: str, b: str) -> str:
    """The longest start `a` and `b` share."""
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return a[:n]
