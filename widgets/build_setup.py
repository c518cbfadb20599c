"""The builder's Data and Training pages: plain-dict sections of the build document, edited with forms.

    data = DataForm(datasets, tasks); data.set_values({...}); data.values(); data.changed.connect(...)
    training = TrainingForm(losses, optimizers, schedulers)     # each an argument list (see arg_form)

Both take their choices as plain data (the builder's palette) and show problems the app reports:
`mark(problems)` with the panel's problem dicts ({"section", "arg", "message"}).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from widgets.arg_form import ArgForm

FIELD_ERROR = "border: 1px solid #e03131;"
INTS = (("n", "Samples", 10, 200_000, 100), ("seq_len", "Window length", 2, 1000, 8),
        ("batch_size", "Batch size", 1, 100_000, 8), ("seed", "Seed", 0, 2**31 - 1, 1))
FLOATS = (("noise", "Noise", 0.0, 5.0, 0.01, 3), ("test_fraction", "Held out", 0.05, 0.5, 0.05, 2))


class DataForm(QWidget):
    """The data section: dataset, size, noise, batching, a person's file; `changed()` after each edit."""

    changed = Signal()
    starterRequested = Signal(str)  # "use the starter model for this dataset"

    def __init__(self, datasets: list[dict], tasks: list[str], parent=None) -> None:
        super().__init__(parent)
        self.datasets = {d["name"]: d for d in datasets}
        self._values: dict = {}
        self._quiet = False
        form = QFormLayout(self)
        self.fields: dict[str, QWidget] = {}
        self.dataset = QComboBox()
        for d in datasets:
            self.dataset.addItem(d["label"], d["name"])
        # "Text (characters of the fables corpus)" must not set the panel's width: the list opens wider
        self.dataset.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.dataset.setMinimumContentsLength(12)
        self.dataset.currentTextChanged.connect(self.dataset.setToolTip)  # whole, where the box cuts it
        self.dataset.currentIndexChanged.connect(self._dataset_chosen)
        form.addRow("Dataset", self.dataset)
        self.fields["name"] = self.dataset
        for key, label, lo, hi, step in INTS:
            spin = QSpinBox()
            spin.setRange(lo, hi)
            spin.setSingleStep(step)
            spin.valueChanged.connect(lambda v, k=key: self._set(k, v))
            self.fields[key] = spin
            form.addRow(label, spin)
        for key, label, lo, hi, step, decimals in FLOATS:
            spin = QDoubleSpinBox()
            spin.setRange(lo, hi)
            spin.setSingleStep(step)
            spin.setDecimals(decimals)
            spin.valueChanged.connect(lambda v, k=key: self._set(k, v))
            self.fields[key] = spin
            form.addRow(label, spin)
        self.path = QLineEdit()
        self.path.setPlaceholderText("a .npz or .csv file")
        self.path.editingFinished.connect(lambda: self._set("path", self.path.text()))
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("File", row)
        self.fields["path"] = self.path
        self.label_column = QLineEdit()
        self.label_column.setPlaceholderText("last column; or a name or index")
        self.label_column.editingFinished.connect(self._label_column_typed)
        form.addRow("Label column", self.label_column)
        self.fields["label_column"] = self.label_column
        self.task = QComboBox()
        self.task.addItems(tasks)
        self.task.currentTextChanged.connect(lambda t: self._set("task", t))
        form.addRow("Task", self.task)
        self.fields["task"] = self.task
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        form.addRow(self.summary)
        self.starter_button = QPushButton("Use the starter model")
        self.starter_button.setToolTip("Replace the layers with the starter model for this dataset")
        self.starter_button.clicked.connect(lambda: self.starterRequested.emit(self._values.get("name", "")))
        form.addRow(self.starter_button)

    def values(self) -> dict:
        """The data section of the document."""
        return dict(self._values)

    def set_values(self, values: dict) -> None:
        """Show a data section (no `changed` signal)."""
        self._values = dict(values)
        self._quiet = True
        try:
            self.dataset.setCurrentIndex(max(0, self.dataset.findData(values.get("name", "spirals"))))
            for key in (*(k for k, *_ in INTS), *(k for k, *_ in FLOATS)):
                if key in values:
                    self.fields[key].setValue(values[key])
            self.path.setText(values.get("path", ""))
            column = values.get("label_column", -1)
            self.label_column.setText("" if column == -1 else str(column))
            self.task.setCurrentText(values.get("task", "auto"))
        finally:
            self._quiet = False
        self._enable()

    def set_file(self, path: str) -> None:
        """Use a person's .npz or .csv file (the dataset follows the file's extension)."""
        name = "csv" if path.lower().endswith(".csv") else "npz"
        self.set_values({**self._values, "name": name, "path": path})
        self.changed.emit()

    def mark(self, problems: list[dict]) -> None:
        """Outline the fields the data problems name, with the message as their tooltip."""
        for key, widget in self.fields.items():
            message = next((p["message"] for p in problems if p["section"] == "data" and p["arg"] == key), "")
            widget.setStyleSheet(FIELD_ERROR if message else "")
            widget.setToolTip(message)

    def _enable(self) -> None:
        name = self._values.get("name")
        kind = self.datasets.get(name, {}).get("kind", "")
        file = kind == "file"
        for key, on in (("n", not file), ("noise", kind in ("points", "curve", "images")),
                        ("seq_len", kind == "text"), ("path", file), ("label_column", name == "csv"),
                        ("task", file)):
            self.fields[key].setEnabled(on)
        self.starter_button.setEnabled(not file)

    def _set(self, key: str, value) -> None:
        if not self._quiet:
            self._values[key] = value
            self.changed.emit()

    def _dataset_chosen(self) -> None:
        if self._quiet:
            return
        source = self.datasets[self.dataset.currentData()]
        values = {**self._values, "name": source["name"]}
        if source["n"]:  # a built-in: its usual size and noise
            values.update(n=source["n"], noise=source["noise"])
        self.set_values(values)
        self.changed.emit()

    def _label_column_typed(self) -> None:
        text = self.label_column.text().strip()
        self._set("label_column", -1 if not text else int(text) if text.lstrip("-").isdigit() else text)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a data file", "", "Data (*.npz *.csv)")
        if path:
            self.set_file(path)


class TrainingForm(QScrollArea):
    """The training section: loss, optimizer and scheduler with their arguments, epochs and seed."""

    changed = Signal()

    def __init__(self, losses: list[dict], optimizers: list[dict], schedulers: list[dict], parent=None) -> None:
        super().__init__(parent)
        self.tables = {"loss": losses, "optimizer": optimizers, "scheduler": schedulers}
        self._values: dict = {}
        self._quiet = False
        page = QWidget()
        outer = QVBoxLayout(page)
        self.combos: dict[str, QComboBox] = {}
        self.forms: dict[str, ArgForm] = {}
        for kind, title in (("loss", "Loss"), ("optimizer", "Optimizer"), ("scheduler", "Scheduler")):
            box = QGroupBox(title)
            form = QFormLayout(box)
            combo = QComboBox()
            if kind == "scheduler":
                combo.addItem("(none)", "")
            for entry in self.tables[kind]:
                combo.addItem(entry["type"], entry["type"])
            combo.currentIndexChanged.connect(lambda i, k=kind: self._chosen(k))
            args = ArgForm()
            args.changed.connect(lambda values, k=kind: self._set(f"{k}_args", values))
            form.addRow(combo)
            form.addRow(args)
            self.combos[kind] = combo
            self.forms[kind] = args
            outer.addWidget(box)
        row = QFormLayout()
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100_000)
        self.epochs.valueChanged.connect(lambda v: self._set("epochs", v))
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.valueChanged.connect(lambda v: self._set("seed", v))
        row.addRow("Epochs", self.epochs)
        row.addRow("Seed", self.seed)
        outer.addLayout(row)
        outer.addStretch(1)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setWidget(page)

    def values(self) -> dict:
        """The training section of the document."""
        return {k: dict(v) if isinstance(v, dict) else v for k, v in self._values.items()}

    def set_values(self, values: dict) -> None:
        """Show a training section (no `changed` signal)."""
        self._values = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
        self._quiet = True
        try:
            for kind, combo in self.combos.items():
                combo.setCurrentIndex(max(0, combo.findData(self._values.get(kind, ""))))
                self._show_args(kind)
            self.epochs.setValue(self._values.get("epochs", 20))
            self.seed.setValue(self._values.get("seed", 0))
        finally:
            self._quiet = False

    def mark(self, problems: list[dict]) -> None:
        """Mark the arguments that training problems name ('optimizer.lr')."""
        for form in self.forms.values():
            form.clear_marks()
        for p in problems:
            if p["section"] == "training" and "." in p["arg"]:
                kind, arg = p["arg"].split(".", 1)
                self.forms[kind].mark(arg, p["message"])

    def _show_args(self, kind: str) -> None:
        name = self._values.get(kind, "")
        entry = next((e for e in self.tables[kind] if e["type"] == name), None)
        self.forms[kind].set_args(entry["args"] if entry else [], self._values.get(f"{kind}_args", {}))

    def _chosen(self, kind: str) -> None:
        if self._quiet:
            return
        self._values[kind] = self.combos[kind].currentData()
        # a new choice starts from its defaults; the learning rate carries over between optimizers
        lr = self._values.get("optimizer_args", {}).get("lr")
        self._values[f"{kind}_args"] = {"lr": lr} if kind == "optimizer" and lr is not None else {}
        self._show_args(kind)
        self.changed.emit()

    def _set(self, key: str, value) -> None:
        if not self._quiet:
            self._values[key] = value
            self.changed.emit()
