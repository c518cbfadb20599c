"""Editors for a constructor's arguments, built from plain argument descriptions (the builder's palette).

Each argument is {"name", "kind", "default", "required", "optional", "low", "high", "choices", "words",
"allowed", "doc"}; kinds are int, float, bool, str, size (an int or ints), ints and floats. The form
parses what is typed, marks a field red with the reason when it does not parse, and emits the values.
Range checks stay with the app (one set of rules): it reports them back through `mark`. A field whose
text does not parse stays red until it does (`unparsed()`), and `rejected(name)` says so at once.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

from widgets.theme import ERROR_FIELD, ERROR_TEXT, MUTED_TEXT, follow_palette, pick, tint

NONE = "(none)"
INT_LIMIT = 2**31 - 1  # larger integers fit no layer, and overflow Qt's conversion of the values dict


def parse(arg: dict, text: str):
    """(value, error) for what was typed into a text field of argument `arg`."""
    text = text.strip()
    if not text:
        if arg.get("optional"):
            return None, ""
        return None, f"{arg['name']} is required ({arg['allowed']})"
    if text in arg.get("words", ()) or arg["kind"] == "str":
        return text, ""
    kind = arg["kind"]
    items = [t.strip() for t in text.strip("()[]").split(",") if t.strip()]
    try:
        if kind == "int":
            return _bounded(arg, int(text))
        if kind == "float":
            return float(text), ""
        if kind == "size" and len(items) == 1 and "," not in text:
            return _bounded(arg, int(items[0]))
        if kind in ("size", "ints"):
            return _bounded(arg, [int(t) for t in items])
        if kind == "floats":
            return [float(t) for t in items], ""
    except ValueError:
        pass
    return None, f"{arg['name']} must be {arg['allowed']}"


def _bounded(arg: dict, value):
    """(value, "") for integers within INT_LIMIT, else (None, why)."""
    values = value if isinstance(value, list) else [value]
    if any(abs(v) > INT_LIMIT for v in values):
        return None, f"{arg['name']} is too large: at most {INT_LIMIT:,}"
    return value, ""


def show(arg: dict, value) -> str:
    """The text a field shows for a value."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


class ArgForm(QWidget):
    """One row per argument; `changed(values)` after each accepted edit (values differing from defaults)."""

    changed = Signal(dict)
    rejected = Signal(str)  # the name of an argument whose typed text does not parse

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._layout.setHorizontalSpacing(10)
        self._args: list[dict] = []
        self._values: dict = {}
        self._editors: dict[str, QWidget] = {}
        self._labels: dict[str, QLabel] = {}
        self._errors: dict[str, str] = {}
        self._unparsed: dict[str, str] = {}  # argument -> why its typed text is not a value
        self.empty = QLabel("no arguments")
        tint(self.empty, MUTED_TEXT)
        # a refused field's colours come from the palette: painted again when it turns light or dark
        follow_palette(self, lambda: [self._paint_mark(name) for name in list(self._editors)], now=False)

    # ---- content --------------------------------------------------------------------------------
    def set_args(self, args: list[dict], values: dict) -> None:
        """Show editors for `args` holding `values` (missing ones: their defaults)."""
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self.empty = QLabel("no arguments")
        tint(self.empty, MUTED_TEXT)
        self._args = list(args)
        self._values = dict(values)
        self._editors = {}
        self._labels = {}
        self._errors = {}
        self._unparsed = {}
        for arg in args:
            editor = self._editor(arg, values.get(arg["name"], arg["default"]))
            label = QLabel(arg["name"] + ("*" if arg.get("required") else ""))
            tip = arg["allowed"] + (f"\n{arg['doc']}" if arg.get("doc") else "")
            label.setToolTip(tip)
            editor.setToolTip(tip)
            self._editors[arg["name"]] = editor
            self._labels[arg["name"]] = label
            self._layout.addRow(label, editor)
        if not args:
            self._layout.addRow(self.empty)

    def _editor(self, arg: dict, value) -> QWidget:
        name = arg["name"]
        if arg["kind"] == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            box.toggled.connect(lambda on, n=name: self._accept(n, on))
            return box
        if arg.get("choices"):
            combo = QComboBox()
            choices = ([None] if arg.get("optional") else []) + list(arg["choices"])
            for c in choices:
                combo.addItem(NONE if c is None else str(c), c)
            combo.setCurrentIndex(max(0, choices.index(value) if value in choices else 0))
            combo.currentIndexChanged.connect(lambda i, n=name, c=combo: self._accept(n, c.itemData(i)))
            return combo
        if arg["kind"] == "int" and not arg.get("optional") and arg.get("low") is not None:
            spin = QSpinBox()
            spin.setRange(int(arg["low"]), int(arg["high"]) if arg.get("high") is not None else 1_000_000)
            spin.setValue(int(value) if isinstance(value, int) else int(arg["low"]))
            spin.valueChanged.connect(lambda v, n=name: self._accept(n, v))
            return spin
        edit = QLineEdit(show(arg, value))
        edit.setPlaceholderText("none" if arg.get("optional") else arg["allowed"])
        edit.editingFinished.connect(lambda n=name, e=edit, a=arg: self._typed(a, e.text()))
        return edit

    # ---- edits ----------------------------------------------------------------------------------
    def _typed(self, arg: dict, text: str) -> None:
        value, error = parse(arg, text)
        if error:
            self._unparsed[arg["name"]] = error
            self.mark(arg["name"], error)
            self.rejected.emit(arg["name"])
            return
        self._accept(arg["name"], value)

    def _accept(self, name: str, value) -> None:
        self._unparsed.pop(name, None)
        self.mark(name, "")
        arg = next(a for a in self._args if a["name"] == name)
        if value == arg["default"] and not arg.get("required"):
            self._values.pop(name, None)
        else:
            self._values[name] = value
        self.changed.emit(dict(self._values))

    def set_text(self, name: str, text: str) -> None:
        """Type `text` into a text field and finish editing (what a person does; used by tests)."""
        editor = self._editors[name]
        editor.setText(text)
        editor.editingFinished.emit()

    # ---- what it shows --------------------------------------------------------------------------
    def values(self) -> dict:
        """The accepted values that differ from the defaults (and every required one)."""
        return dict(self._values)

    def editor(self, name: str) -> QWidget:
        """The editor widget of argument `name`."""
        return self._editors[name]

    def mark(self, name: str, message: str) -> None:
        """Show `message` at argument `name` (red, in its tooltip); '' clears it."""
        editor = self._editors.get(name)
        if editor is None or (not message and name not in self._errors):
            return
        if message:
            self._errors[name] = message
        else:
            del self._errors[name]
        self._paint_mark(name)

    def _paint_mark(self, name: str) -> None:
        """Colour `name`'s field and label red while it has an error, in the palette's colours otherwise."""
        editor, message = self._editors.get(name), self._errors.get(name, "")
        if editor is None or name not in self._labels:
            return
        arg = next(a for a in self._args if a["name"] == name)
        tip = message or arg["allowed"]
        # palette colours, not a style sheet: spin boxes keep their arrows
        field, text = QColor(pick(ERROR_FIELD)), QColor(pick(ERROR_TEXT))
        for widget, role, color in ((editor, QPalette.ColorRole.Base, field),
                                    (self._labels[name], QPalette.ColorRole.WindowText, text)):
            palette = widget.palette()
            palette.setColor(role, color if message else self.palette().color(role))
            widget.setPalette(palette)
            widget.setToolTip(tip)

    def clear_marks(self) -> None:
        """Remove every red mark but those of fields whose text does not parse."""
        for name in list(self._errors):
            self.mark(name, self._unparsed.get(name, ""))

    def unparsed(self) -> dict[str, str]:
        """Argument name -> why the text typed there is not a value (the value before it stays in use)."""
        return dict(self._unparsed)

    def errors(self) -> dict[str, str]:
        """Argument name -> the message shown there."""
        return dict(self._errors)
