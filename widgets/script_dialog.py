"""The "Debug Script" dialog: which script, its command-line arguments, whether to record the run to a
.tape (and at which capture tier), and whether to pause on entry.

    dialog = ScriptDialog(path, remembered={"/abs/train.py": "--epochs 3"}, cwd=os.getcwd(),
                          recordings={"/abs/train.py": ("/abs/runs/train.tape", "summary")})
    dialog.accepted.connect(lambda: run(dialog.script_path(), dialog.argv(), dialog.pause_on_entry(),
                                        dialog.record_path(), dialog.capture()))

Arguments are split as a POSIX shell would (shlex), so `--name "two words"` is two arguments. A script
that does not exist, arguments that do not parse (an unclosed quote) or a tape that cannot be written
are shown under their fields and keep Debug disabled. `remembered` maps absolute script paths to the
arguments last used with them, `recordings` to the tape and capture tier last recorded with them: the
fields follow the script chosen until the person types in them. The script runs in `cwd`, the app's own
working folder, as with `tapescope run` from a shell; a relative tape path starts there too.
"""

from __future__ import annotations

import os
import shlex

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from engine.debug.records import CAPTURES
from engine.tape.schema import SQLITE_MAGIC
from widgets.elided_label import ElidedLabel
from widgets.theme import ERROR_TEXT, tint

ERROR_COLOUR = "#e03131"
FIELD_ERROR = f"QLineEdit {{ border: 1px solid {ERROR_COLOUR}; }}"
CAPTURE_NOTES = {  # what each tier adds to a tape (engine.debug.Debugger), and what it costs
    "structure": "the graph, shapes and source lines: the smallest tape, the fastest run",
    "summary": "plus statistics of every tensor and gradient: a mid-sized tape",
    "values": "plus the values of small tensors: the largest tape, the slowest run",
}


def parse_arguments(text: str) -> tuple[tuple[str, ...], str]:
    """(the arguments, "") as a POSIX shell splits `text`, or ((), why it cannot be split)."""
    try:
        return tuple(shlex.split(text)), ""
    except ValueError as err:  # shlex says "No closing quotation" or "No escaped character"
        return (), f"{err}: close the quote, or escape it with \\"


def tape_problem(path: str) -> tuple[str, str]:
    """(why a run cannot be recorded to the tape at the absolute `path`, or "", a note on it, or "")."""
    folder, name = os.path.split(path)
    if not name.endswith(".tape") or name == ".tape":
        return "the name must end in .tape", ""
    if not os.path.isdir(folder):
        return f"{folder} {'is not a folder' if os.path.exists(folder) else 'does not exist'}", ""
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write in {folder}", ""
    if os.path.isdir(path):
        return f"{path} is a folder", ""
    if not os.path.exists(path):
        return "", ""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as err:
        return f"cannot read {path}: {err.strerror or err}", ""
    if head and head != SQLITE_MAGIC:  # the recorder refuses to overwrite anything but a tape
        return f"{name} exists and is not a tape: choose another name", ""
    return "", f"{name} exists: recording replaces it"


class ScriptDialog(QDialog):
    """Choose a script, its arguments and whether it pauses on entry; Enter debugs it, Esc cancels."""

    def __init__(self, path: str = "", remembered: dict[str, str] | None = None, cwd: str | None = None,
                 parent: QWidget | None = None, recordings: dict[str, tuple[str, str]] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Debug Script")
        self._remembered = dict(remembered or {})
        self._recordings = dict(recordings or {})
        self._typed = False  # the person edited the arguments: choosing another script keeps them
        self._record_typed = False  # the same for the tape and its capture tier
        self.cwd = cwd if cwd is not None else os.getcwd()

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("the .py file to debug")
        self.path_edit.setClearButtonEnabled(True)
        self.browse_button = QPushButton("&Browse\u2026")
        self.browse_button.setAutoDefault(False)  # Enter in a field debugs, never opens the file chooser
        self.browse_button.clicked.connect(self.browse)
        path_row = QHBoxLayout()
        path_row.setSpacing(6)
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)

        self.args_edit = QLineEdit()
        self.args_edit.setPlaceholderText("e.g. --epochs 3 --lr 0.1")
        self.args_edit.setClearButtonEnabled(True)
        self.args_edit.textEdited.connect(self._on_typed)
        self.args_edit.textChanged.connect(self._validate)
        self.problem_label = QLabel()  # what keeps Debug disabled, or how the arguments were split
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.argv_label = ElidedLabel()
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        self.argv_label.setFont(mono)
        args_box = QVBoxLayout()
        args_box.setSpacing(3)
        args_box.addWidget(self.args_edit)
        args_box.addWidget(self.argv_label)
        args_box.addWidget(self.problem_label)

        self.cwd_label = ElidedLabel(self.cwd, Qt.TextElideMode.ElideMiddle)
        self.cwd_label.setToolTip(f"{self.cwd}\nThe app's working folder, as with `tapescope run` from a shell: "
                                  "relative paths in the arguments start here.")
        cwd_note = _note("The app's working folder: relative paths in the arguments start here.")

        self.record_edit = QLineEdit()
        self.record_edit.setPlaceholderText("optional: a .tape file to record the run to")
        self.record_edit.setClearButtonEnabled(True)
        self.record_edit.textEdited.connect(self._on_record_typed)
        self.record_edit.textChanged.connect(self._validate)
        self.record_browse_button = QPushButton("B&rowse\u2026")
        self.record_browse_button.setAutoDefault(False)
        self.record_browse_button.clicked.connect(self.browse_tape)
        record_row = QHBoxLayout()
        record_row.setSpacing(6)
        record_row.addWidget(self.record_edit, 1)
        record_row.addWidget(self.record_browse_button)
        self.record_label = QLabel()  # why the tape cannot be written, or that one will be replaced
        self.record_label.setWordWrap(True)
        self.record_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # a note; a problem is red
        self.record_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.capture_box = QComboBox()
        self.capture_box.addItems(CAPTURES)
        self.capture_box.setCurrentText("summary")
        self.capture_box.setToolTip("What the tape keeps of each op; the live view shows the same")
        self.capture_box.activated.connect(lambda _index: self._on_record_typed(""))
        self.capture_note = _note("")
        self.capture_box.currentTextChanged.connect(lambda tier: self.capture_note.setText(CAPTURE_NOTES[tier]))
        self.capture_note.setText(CAPTURE_NOTES["summary"])
        capture_row = QHBoxLayout()
        capture_row.setSpacing(8)
        capture_row.addWidget(self.capture_box)
        capture_row.addWidget(self.capture_note, 1)
        record_box = QVBoxLayout()
        record_box.setSpacing(3)
        record_box.addLayout(record_row)
        record_box.addWidget(self.record_label)

        self.pause_box = QCheckBox("&Pause on entry")
        self.pause_box.setChecked(True)
        self.pause_box.setToolTip("Stop before the script's first line (F11 then steps op by op). Unchecked, "
                                  "the script runs until engine.debug.breakpoint() or the end.")
        pause_note = _note("Unchecked, it runs until engine.debug.breakpoint() or the end.")
        # the note lines up with the checkbox's text, not its box
        indicator = self.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth, None, self.pause_box)
        spacing = self.style().pixelMetric(QStyle.PixelMetric.PM_CheckBoxLabelSpacing, None, self.pause_box)
        pause_note.setIndent(indicator + spacing)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(8)
        script_label = QLabel("&Script:")
        script_label.setBuddy(self.path_edit)
        form.addRow(script_label, path_row)
        args_label = QLabel("&Arguments:")
        args_label.setBuddy(self.args_edit)
        form.addRow(args_label, args_box)
        cwd_title = QLabel("Runs in:")
        cwd_title.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)  # beside the folder
        form.addRow(cwd_title, _stacked(self.cwd_label, cwd_note))
        record_title = QLabel("Re&cord to:")
        record_title.setBuddy(self.record_edit)
        form.addRow(record_title, record_box)
        self.capture_title = QLabel("Captur&e:")
        self.capture_title.setBuddy(self.capture_box)
        form.addRow(self.capture_title, capture_row)
        form.addRow("", _stacked(self.pause_box, pause_note))

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.debug_button = self.buttons.addButton("&Debug", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        box = QVBoxLayout(self)
        box.setContentsMargins(16, 16, 16, 12)
        box.setSpacing(14)
        box.addLayout(form)
        box.addWidget(self.buttons)
        self.debug_button.setDefault(True)  # Enter debugs (set once the button is in the dialog)
        self.setMinimumWidth(560)

        self.path_edit.textChanged.connect(self._on_path)
        self.path_edit.setText(path)
        self._on_path(path)
        (self.args_edit if path else self.path_edit).setFocus()

    # ---- what was chosen ------------------------------------------------------------------------
    def script_path(self) -> str:
        """The script chosen, as an absolute path ("" when none is typed)."""
        text = self.path_edit.text().strip()
        return os.path.abspath(os.path.expanduser(text)) if text else ""

    def arguments_text(self) -> str:
        """The arguments as typed (what is remembered for the script)."""
        return self.args_edit.text().strip()

    def argv(self) -> tuple[str, ...]:
        """The script's arguments, sys.argv[1:], split as a shell would."""
        return parse_arguments(self.args_edit.text())[0]

    def pause_on_entry(self) -> bool:
        """Whether the script stops before its first line."""
        return self.pause_box.isChecked()

    def record_path(self) -> str:
        """The tape to record the run to, as an absolute path ("" when the run is not recorded)."""
        text = self.record_edit.text().strip()
        return os.path.normpath(os.path.join(self.cwd, os.path.expanduser(text))) if text else ""

    def capture(self) -> str:
        """The capture tier chosen for the recording (structure, summary or values); the live view then
        shows the same."""
        return self.capture_box.currentText()

    def problem(self) -> str:
        """Why the script cannot be debugged as chosen, or ""."""
        return self._problem(parse_arguments(self.args_edit.text())[1]) or self._record_problem()[0]

    def _record_problem(self) -> tuple[str, str]:
        path = self.record_path()
        if not path:
            return "", ""
        problem, note = tape_problem(path)
        return (f"Record to: {problem}" if problem else ""), note

    def _problem(self, arguments_error: str) -> str:
        path = self.script_path()
        if not path:
            return "Choose the script to debug."
        if os.path.isdir(path):
            return f"{path} is a folder: choose a .py file in it."
        if not os.path.isfile(path):
            return f"No such file: {path}"
        return f"Arguments: {arguments_error}" if arguments_error else ""

    # ---- behaviour ------------------------------------------------------------------------------
    def browse(self) -> None:
        """Choose the script with a file dialog, starting in the folder of the one typed."""
        current = self.script_path()
        start = current if os.path.isfile(current) else os.path.dirname(current) if current else self.cwd
        path, _ = QFileDialog.getOpenFileName(self, "Debug Script", start, "Python scripts (*.py);;All files (*)")
        if path:
            self.path_edit.setText(path)
            self.args_edit.setFocus()

    def browse_tape(self) -> None:
        """Choose the tape to record to with a file dialog (a name without an extension gets .tape)."""
        current = self.record_path()
        script = self.script_path()
        start = current or (os.path.splitext(script)[0] + ".tape" if script else self.cwd)
        path, _ = QFileDialog.getSaveFileName(self, "Record to", start, "Tapes (*.tape);;All files (*)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.record_edit.setText(path if os.path.splitext(path)[1] else path + ".tape")
            self._record_typed = True

    def accept(self) -> None:
        if self._validate():  # the file may have gone since it was typed
            super().accept()

    def _on_typed(self, _text: str) -> None:
        self._typed = True

    def _on_record_typed(self, _text: str) -> None:
        self._record_typed = True

    def _on_path(self, _text: str) -> None:
        if not self._typed:
            self.args_edit.setText(self._remembered.get(self.script_path(), ""))
        if not self._record_typed:
            tape, capture = self._recordings.get(self.script_path(), ("", "summary"))
            self.record_edit.setText(tape)
            self.capture_box.setCurrentText(capture)
        self._validate()

    def _validate(self) -> bool:
        argv, error = parse_arguments(self.args_edit.text())
        record_problem, record_note = self._record_problem()
        problem = self._problem(error)
        self.record_edit.setStyleSheet(FIELD_ERROR if record_problem else "")
        self.record_label.setVisible(bool(record_problem or record_note))
        self.record_label.setText(record_problem or record_note)
        tint(self.record_label, ERROR_TEXT if record_problem else None)
        recording = bool(self.record_edit.text().strip())
        for widget in (self.capture_title, self.capture_box, self.capture_note):
            widget.setEnabled(recording)
        self.args_edit.setStyleSheet(FIELD_ERROR if error else "")
        self.argv_label.setVisible(not error)
        self.argv_label.setText(f"sys.argv[1:] = {list(argv)!r}")
        self.problem_label.setVisible(bool(problem))
        self.problem_label.setText(problem)
        tint(self.problem_label, ERROR_TEXT)
        self.debug_button.setEnabled(not (problem or record_problem))
        if self.isVisible():  # an error shown, then fixed, must not leave a gap where it was
            self._fit_height()
        return not (problem or record_problem)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit_height()  # a wrapped line measured before the dialog had its width leaves a gap

    def _fit_height(self) -> None:
        self.layout().activate()
        height = self.layout().totalHeightForWidth(self.width())
        self.resize(self.width(), height if height > 0 else self.sizeHint().height())


def _note(text: str) -> QLabel:
    """A line of secondary text under a field."""
    label = QLabel(text)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows a light or dark palette
    return label


def _stacked(*widgets: QWidget) -> QVBoxLayout:
    """Widgets one under the other, as one field of a form (its label lines up with the first)."""
    box = QVBoxLayout()
    box.setSpacing(2)
    for widget in widgets:
        box.addWidget(widget)
    return box
