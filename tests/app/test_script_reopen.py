"""File > Open Recent and drag-and-drop of a script run it with the arguments last used in Debug Script…;
arguments remembered that no longer parse open that dialog on them instead of running."""

import json

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.app.test_script_dialog import focus, open_dialog
from tests.app.test_window import TIMEOUT, paused, press, script
from widgets.script_dialog import ScriptDialog

ARGV_TO_FILE = """
    import json, os, sys
    with open(os.path.join(os.path.dirname(__file__), "argv.json"), "w") as f:
        json.dump(sys.argv[1:], f)
"""


@pytest.fixture
def train(tmp_path):
    return script(tmp_path, "train.py", ARGV_TO_FILE)


def remember_in_the_first_format(window, arguments: dict[str, str]) -> None:
    """What Debug Script… wrote before it could record: {script: arguments} under scripts/arguments."""
    window.settings.setValue("scripts/arguments", json.dumps(arguments))


def open_recent(window, path: str) -> None:
    """Choose `path` in File > Open Recent."""
    window.recent_menu.aboutToShow.emit()
    [action] = [a for a in window.recent_menu.actions() if a.toolTip() == path]
    action.trigger()


def drop(window, path: str) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    window.dropEvent(QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))


def argv_written(qtbot, window, tmp_path) -> list[str]:
    """Continue the script paused on entry and return the sys.argv[1:] it wrote."""
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    focus(qtbot, window)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    return json.loads((tmp_path / "argv.json").read_text())


@pytest.mark.parametrize("how", [open_recent, drop], ids=["open_recent", "drop"])
def test_a_script_reopens_with_the_arguments_last_used(qtbot, make_window, tmp_path, train, how):
    window = make_window()
    remember_in_the_first_format(window, {train: '--epochs 3 --name "two words"'})
    window._add_recent(train)
    how(window, train)
    assert window.session.target.argv == ("--epochs", "3", "--name", "two words")
    assert argv_written(qtbot, window, tmp_path) == ["--epochs", "3", "--name", "two words"]
    assert ('Running train.py --epochs 3 --name "two words" (the arguments last used; '
            "File > Debug Script\u2026 changes them)") in window.output.text()


@pytest.mark.parametrize("how", [open_recent, drop], ids=["open_recent", "drop"])
def test_arguments_that_no_longer_parse_open_the_dialog_instead_of_running(qtbot, make_window, tmp_path, train, how):
    window = make_window()
    remember_in_the_first_format(window, {train: '--name "unclosed'})  # e.g. a settings file edited by hand
    window._add_recent(train)
    how(window, train)
    shown = [d for d in window.findChildren(ScriptDialog) if d.isVisible()]
    assert window.session is None and not (tmp_path / "argv.json").exists()
    lines = [line for line in window.output.text().splitlines() if "train.py was not run" in line]
    assert len(lines) == 1 and '(--name "unclosed) no longer parse' in lines[0]
    [dialog] = shown
    assert dialog.script_path() == train and dialog.args_edit.text() == '--name "unclosed'
    assert "No closing quotation" in dialog.problem_label.text() and not dialog.debug_button.isEnabled()

    dialog.args_edit.setText("--epochs 2")  # fixed there, it runs and is remembered
    dialog.debug_button.click()
    assert argv_written(qtbot, window, tmp_path) == ["--epochs", "2"]
    open_recent(window, train)
    assert window.session.target.argv == ("--epochs", "2")


def test_debug_script_choices_reach_open_recent(qtbot, make_window, tmp_path, train):
    window = make_window()
    dialog = open_dialog(qtbot, window)
    dialog.path_edit.setText(train)
    dialog.args_edit.setText("--lr 0.1")
    dialog.debug_button.click()
    argv_written(qtbot, window, tmp_path)
    (tmp_path / "argv.json").unlink()
    open_recent(window, train)
    assert argv_written(qtbot, window, tmp_path) == ["--lr", "0.1"]
