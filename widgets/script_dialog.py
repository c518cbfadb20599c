"""The "Debug Script" dialog: which script, its command-line arguments, and whether to pause on entry.

    dialog = ScriptDialog(path, remembered={"/abs/train.py": "--epochs 3"}, cwd=os.getcwd())
    dialog.accepted.connect(lambda: run(dialog.script_path(), dialog.argv(), dialog.pause_on_entry()))

Arguments are split as a POSIX shell would (shlex), so `--name "two words"` is two arguments. A script
that does not exist or arguments that do not parse (an unclosed quote) are shown under the fields and
keep Debug disabled. `remembered` maps absolute script paths to the arguments last used with them: the
arguments field follows the script chosen until the person types in it. The script runs in `cwd`, the
app's own working folder, as with `tapescope run` from a shell.
"""

from __future__ import annotations

import os
import shlex

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
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

from widgets.elided_label import ElidedLabel

ERROR_COLOUR = "#e03131"
FIELD_ERROR = f"QLineEdit {{ border: 1px solid {ERROR_COLOUR}; }}"


def parse_arguments(text: str) -> tuple[tuple[str, ...], str]:
    """(the arguments, "") as a POSIX shell splits `text`, or ((), why it cannot be split)."""
    try:
        return tuple(shlex.split(text)), ""
    except ValueError as err:  # shlex says "No closing quotation" or "No escaped character"
        return (), f"{err}: close the quote, or escape it with \\"


class ScriptDialog(QDialog):
    """Choose a script, its arguments and whether it pauses on entry; Enter debugs it, Esc cancels."""

    def __init__(self, path: str = "", remembered: dict[str, str] | None = None, cwd: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Debug Script")
        self._remembered = dict(remembered or {})
        self._typed = False  # the person edited the arguments: choosing another script keeps them
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

    def problem(self) -> str:
        """Why the script cannot be debugged as chosen, or ""."""
        return self._problem(parse_arguments(self.args_edit.text())[1])

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

    def accept(self) -> None:
        if self._validate():  # the file may have gone since it was typed
            super().accept()

    def _on_typed(self, _text: str) -> None:
        self._typed = True

    def _on_path(self, _text: str) -> None:
        if not self._typed:
            self.args_edit.setText(self._remembered.get(self.script_path(), ""))
        self._validate()

    def _validate(self) -> bool:
        argv, error = parse_arguments(self.args_edit.text())
        problem = self._problem(error)
        self.args_edit.setStyleSheet(FIELD_ERROR if error else "")
        self.argv_label.setVisible(not error)
        self.argv_label.setText(f"sys.argv[1:] = {list(argv)!r}")
        self.problem_label.setVisible(bool(problem))
        self.problem_label.setText(problem)
        self.problem_label.setStyleSheet(f"color: {ERROR_COLOUR};")
        self.debug_button.setEnabled(not problem)
        if self.isVisible():  # an error shown, then fixed, must not leave a gap where it was
            self.layout().activate()
            height = self.layout().totalHeightForWidth(self.width())
            self.resize(self.width(), height if height > 0 else self.sizeHint().height())
        return not problem


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
