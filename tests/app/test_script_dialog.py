"""File > Debug Script… (Ctrl+Shift+O): a script, its command-line arguments, pause on entry or run."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog

from tests.app.test_window import TIMEOUT, make_window, paused, press, script, status
from tests.shots import shoot
from widgets.script_dialog import ScriptDialog

ARGV_SCRIPT = """
    import sys
    print("argv:", sys.argv[1:], flush=True)
"""


@pytest.fixture
def train(tmp_path):
    return script(tmp_path, "train.py", ARGV_SCRIPT)


def dialog_of(qtbot, path="", remembered=None, cwd="/somewhere") -> ScriptDialog:
    dialog = ScriptDialog(path, remembered, cwd)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def focus(qtbot, window) -> None:
    """Make the window active, so that its shortcuts work: offscreen, no window manager hands focus back to
    it when a dialog closes."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=TIMEOUT)


def open_dialog(qtbot, window) -> ScriptDialog:
    """Press Ctrl+Shift+O and return the dialog it shows."""
    focus(qtbot, window)
    press(qtbot, window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    shown = lambda: [d for d in window.findChildren(ScriptDialog) if d.isVisible()]  # noqa: E731
    qtbot.waitUntil(lambda: len(shown()) == 1, timeout=TIMEOUT)
    return shown()[0]


def type_arguments(qtbot, dialog: ScriptDialog, text: str) -> None:
    dialog.args_edit.selectAll()
    qtbot.keyClick(dialog.args_edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(dialog.args_edit, text)


def test_arguments_are_split_as_a_shell_would_and_enter_debugs(qtbot, train):
    dialog = dialog_of(qtbot, train)
    type_arguments(qtbot, dialog, '--epochs 3 --name "two words"')
    assert dialog.argv_label.text() == "sys.argv[1:] = ['--epochs', '3', '--name', 'two words']"
    assert not dialog.problem_label.isVisible() and dialog.debug_button.isEnabled()
    assert dialog.pause_on_entry()  # the default: stop before the first line
    shoot(dialog, "script_dialog.png")
    with qtbot.waitSignal(dialog.accepted, timeout=TIMEOUT):
        qtbot.keyClick(dialog.args_edit, Qt.Key.Key_Return)
    assert dialog.argv() == ("--epochs", "3", "--name", "two words")
    assert dialog.script_path() == train


def test_an_unclosed_quote_is_shown_inline_and_keeps_debug_disabled(qtbot, train):
    dialog = dialog_of(qtbot, train)
    type_arguments(qtbot, dialog, '--name "unclosed')
    assert dialog.problem_label.isVisible()
    assert "No closing quotation" in dialog.problem_label.text()
    assert not dialog.debug_button.isEnabled()
    shoot(dialog, "script_dialog_bad_quote.png")
    qtbot.keyClick(dialog.args_edit, Qt.Key.Key_Return)  # Enter does nothing while it cannot run
    assert dialog.isVisible() and dialog.result() == 0
    qtbot.keyClicks(dialog.args_edit, '"')
    assert not dialog.problem_label.isVisible() and dialog.debug_button.isEnabled()
    assert dialog.argv() == ("--name", "unclosed")


def test_escape_cancels(qtbot, train):
    dialog = dialog_of(qtbot, train)
    with qtbot.waitSignal(dialog.rejected, timeout=TIMEOUT):
        qtbot.keyClick(dialog.args_edit, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_a_missing_script_or_a_folder_cannot_be_debugged(qtbot, tmp_path):
    dialog = dialog_of(qtbot)
    assert dialog.problem_label.text() == "Choose the script to debug." and not dialog.debug_button.isEnabled()
    qtbot.keyClicks(dialog.path_edit, str(tmp_path / "nowhere.py"))
    assert dialog.problem_label.text().startswith("No such file:") and not dialog.debug_button.isEnabled()
    dialog.path_edit.setText(str(tmp_path))
    assert "is a folder" in dialog.problem_label.text() and not dialog.debug_button.isEnabled()


def test_the_arguments_follow_the_script_chosen_until_typed(qtbot, tmp_path, train, monkeypatch):
    other = script(tmp_path, "eval.py", ARGV_SCRIPT)
    dialog = dialog_of(qtbot, train, {train: "--epochs 3", other: "--split test"}, cwd=str(tmp_path))
    assert dialog.args_edit.text() == "--epochs 3"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (other, "Python scripts (*.py)"))
    qtbot.mouseClick(dialog.browse_button, Qt.MouseButton.LeftButton)
    assert dialog.path_edit.text() == other and dialog.args_edit.text() == "--split test"
    type_arguments(qtbot, dialog, "--verbose")
    dialog.path_edit.setText(train)
    assert dialog.args_edit.text() == "--verbose"  # what the person typed is never replaced


def test_the_dialog_names_the_folder_the_script_runs_in(qtbot, train):
    dialog = dialog_of(qtbot, train, cwd="/data/runs")
    assert dialog.cwd_label.text() == "/data/runs"


def test_debug_script_passes_the_arguments_and_remembers_them(qtbot, tmp_path, train):
    window = make_window(qtbot, tmp_path)
    dialog = open_dialog(qtbot, window)
    qtbot.keyClicks(dialog.path_edit, train)
    type_arguments(qtbot, dialog, "--epochs 3 --lr 0.1")
    qtbot.keyClick(dialog.args_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)  # paused on entry, as asked by default
    assert status(window).startswith("Paused on entry")
    assert window.session.target.argv == ("--epochs", "3", "--lr", "0.1")
    focus(qtbot, window)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: "argv: ['--epochs', '3', '--lr', '0.1']" in window.output.text(), timeout=TIMEOUT)

    # next time: the same script and its arguments are offered; unchecking pause runs it straight through
    second = open_dialog(qtbot, window)
    assert second.script_path() == train and second.args_edit.text() == "--epochs 3 --lr 0.1"
    type_arguments(qtbot, second, "--epochs 5")
    second.pause_box.setChecked(False)
    qtbot.keyClick(second.args_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "argv: ['--epochs', '5']" in window.output.text(), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert open_dialog(qtbot, window).args_edit.text() == "--epochs 5"


def test_remembered_arguments_survive_a_damaged_settings_file(qtbot, tmp_path, train):
    window = make_window(qtbot, tmp_path)
    window.settings.setValue("scripts/arguments", "{not json")
    window._add_recent(train)
    dialog = open_dialog(qtbot, window)
    assert dialog.script_path() == train and dialog.args_edit.text() == ""

