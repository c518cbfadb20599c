"""File > Debug Script… (Ctrl+Shift+O): a script, its command-line arguments, a tape to record to, pause on
entry or run."""

import json
import os

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog

from engine.events import OpEvent
from tests.app.test_window import TIMEOUT, paused, press, script, status
from tests.shots import shoot
from widgets.script_dialog import ScriptDialog

ARGV_SCRIPT = """
    import sys
    print("argv:", sys.argv[1:], flush=True)
"""


@pytest.fixture
def train(tmp_path):
    return script(tmp_path, "train.py", ARGV_SCRIPT)


def dialog_of(qtbot, path="", remembered=None, cwd="/somewhere", **options) -> ScriptDialog:
    dialog = ScriptDialog(path, remembered, cwd, **options)
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


def test_debug_script_passes_the_arguments_and_remembers_them(qtbot, make_window, train):
    window = make_window()
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


def test_remembered_arguments_survive_a_damaged_settings_file(qtbot, make_window, train):
    window = make_window()
    window.settings.setValue("scripts/arguments", "{not json")
    window._add_recent(train)
    dialog = open_dialog(qtbot, window)
    assert dialog.script_path() == train and dialog.args_edit.text() == ""



# ---- recording to a tape ----------------------------------------------------------------------------
ENGINE_SCRIPT = """
    import sys
    import engine
    x = engine.randn(4, 3, requires_grad=True)
    (x * 2).sum().backward()
    print("argv:", sys.argv[1:], flush=True)
"""


def record_problem(dialog: ScriptDialog, text: str) -> str:
    dialog.record_edit.setText(text)
    assert dialog.record_label.isVisible() == bool(dialog.record_label.text())
    return dialog.record_label.text() if not dialog.debug_button.isEnabled() else ""


def test_the_tape_to_record_to_is_checked_as_it_is_typed(qtbot, tmp_path, train, monkeypatch):
    dialog = dialog_of(qtbot, train, cwd=str(tmp_path))
    assert dialog.record_path() == "" and dialog.capture() == "summary"
    assert not dialog.capture_box.isEnabled()  # nothing to record: no tier to choose
    assert not dialog.record_label.isVisible() and dialog.debug_button.isEnabled()

    assert record_problem(dialog, str(tmp_path / "run.txt")) == "Record to: the name must end in .tape"
    assert dialog.problem() == "Record to: the name must end in .tape"
    missing = tmp_path / "nowhere"
    assert record_problem(dialog, str(missing / "run.tape")) == f"Record to: {missing} does not exist"
    (tmp_path / "notes.tape").write_text("my notes")
    assert record_problem(dialog, "notes.tape") == ("Record to: notes.tape exists and is not a tape: "
                                                    "choose another name")
    shoot(dialog, "script_dialog_bad_tape.png")
    qtbot.keyClick(dialog.args_edit, Qt.Key.Key_Return)  # Enter does nothing while it cannot record
    assert dialog.isVisible() and dialog.result() == 0

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if not os.access(locked, os.W_OK):
        assert record_problem(dialog, str(locked / "run.tape")) == f"Record to: cannot write in {locked}"
    # root writes anywhere: a folder it cannot write in is one the system says so of
    monkeypatch.setattr("os.access", lambda path, mode: str(path) != str(locked))
    assert record_problem(dialog, str(locked / "run.tape")) == f"Record to: cannot write in {locked}"
    monkeypatch.undo()

    assert record_problem(dialog, "run.tape") == ""  # relative: in the folder the script runs in
    assert dialog.record_path() == str(tmp_path / "run.tape") and dialog.capture_box.isEnabled()
    assert dialog.record_edit.styleSheet() == ""
    dialog.capture_box.setCurrentText("values")
    shoot(dialog, "script_dialog_record.png")
    with qtbot.waitSignal(dialog.accepted, timeout=TIMEOUT):
        qtbot.keyClick(dialog.args_edit, Qt.Key.Key_Return)
    assert dialog.capture() == "values"


def test_an_existing_tape_is_noted_and_browse_adds_the_extension(qtbot, tmp_path, train, monkeypatch):
    import engine.tape

    old = tmp_path / "old.tape"
    with engine.tape.record(old):
        pass
    dialog = dialog_of(qtbot, train, cwd=str(tmp_path))
    dialog.record_edit.setText(str(old))
    assert dialog.record_label.text() == "old.tape exists: recording replaces it"
    assert dialog.record_label.isVisible() and dialog.debug_button.isEnabled()
    asked = {}

    def save_name(parent, title, start, *args, **kwargs):
        asked["start"] = start
        return str(tmp_path / "chosen"), "Tapes (*.tape)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_name)
    qtbot.mouseClick(dialog.record_browse_button, Qt.MouseButton.LeftButton)
    assert asked["start"] == str(old)
    assert dialog.record_path() == str(tmp_path / "chosen.tape") and not dialog.record_label.isVisible()


def test_the_tape_follows_the_script_chosen_until_typed(qtbot, tmp_path, train):
    other = script(tmp_path, "eval.py", ARGV_SCRIPT)
    dialog = dialog_of(qtbot, train, recordings={train: (str(tmp_path / "train.tape"), "structure")},
                       cwd=str(tmp_path))
    assert dialog.record_path() == str(tmp_path / "train.tape") and dialog.capture() == "structure"
    dialog.path_edit.setText(other)
    assert dialog.record_path() == "" and dialog.capture() == "summary"
    dialog.path_edit.setText(train)
    qtbot.keyClicks(dialog.record_edit, "x")  # typed: choosing another script keeps it
    dialog.path_edit.setText(other)
    assert dialog.record_path() == str(tmp_path / "train.tapex")


@pytest.mark.parametrize("tier", ["structure", "values"])
def test_debug_script_records_the_run_at_the_tier_chosen(qtbot, make_window, tmp_path, tier):
    import engine.tape

    path = script(tmp_path, "train.py", ENGINE_SCRIPT)
    tape = tmp_path / "runs" / "train.tape"
    tape.parent.mkdir()
    window = make_window()
    dialog = open_dialog(qtbot, window)
    dialog.path_edit.setText(path)
    dialog.args_edit.setText("--epochs 1")
    dialog.record_edit.setText(str(tape))
    dialog.capture_box.setCurrentText(tier)
    dialog.pause_box.setChecked(False)
    qtbot.keyClick(dialog.args_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.session is not None and window.session.ended is not None, timeout=TIMEOUT)
    assert window.session.capture == tier  # the live view shows what the tape keeps
    assert f"\u25cf Recording to {tape} (capture: {tier}; stops at" in window.output.text()
    assert f"Recording saved: {tape}" in window.output.text()
    assert not window.actions["record"].isChecked()
    with engine.tape.open(tape) as recorded:
        assert recorded.capture == tier
        ops = [event.op for event in recorded.events() if isinstance(event, OpEvent)]
        assert ops[:2] == ["mul", "sum"]  # from the script's first op on
        assert recorded.meta["command_line"] == json.dumps(["tapescope", "run", path, "--epochs", "1"])

    # next time the dialog offers the same tape and tier for this script
    again = open_dialog(qtbot, window)
    assert again.record_path() == str(tape) and again.capture() == tier
    assert again.record_label.text() == "train.tape exists: recording replaces it"


def test_settings_of_the_first_format_still_load_and_stay_readable(qtbot, make_window, tmp_path, train):
    window = make_window()
    window.settings.setValue("scripts/arguments", json.dumps({train: "--epochs 3"}))  # before recording
    window.settings.setValue("scripts/recording", "{not json")  # damaged: left out
    window._add_recent(train)
    dialog = open_dialog(qtbot, window)
    assert dialog.args_edit.text() == "--epochs 3" and dialog.record_path() == "" and dialog.capture() == "summary"
    dialog.record_edit.setText(str(tmp_path / "train.tape"))
    dialog.pause_box.setChecked(False)
    qtbot.keyClick(dialog.args_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.session is not None and window.session.ended is not None, timeout=TIMEOUT)
    # the arguments stay where, and as, the first format kept them: an older version still reads them
    assert json.loads(window.settings.value("scripts/arguments")) == {train: "--epochs 3"}
    assert json.loads(window.settings.value("scripts/recording")) == {train: [str(tmp_path / "train.tape"),
                                                                              "summary"]}
