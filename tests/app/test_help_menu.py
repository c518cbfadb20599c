"""File > Open Example and the Help menu: the examples, the shortcuts dialog and the About box."""

import os

import numpy
import pyqtgraph
import PySide6
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication

import app.help
import app.window
import engine
from app.help import AboutDialog, ShortcutsDialog
from app.script_memory import remember_script
from tests.app.test_script_dialog import focus
from tests.app.test_window import TIMEOUT, paused, press, status

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "examples")
NAN_DEMO = os.path.abspath(os.path.join(EXAMPLES, "nan_demo.py"))


def entries(menu) -> list:
    return [a for a in menu.actions() if not a.isSeparator()]


def menu_titled(window, title: str):
    [menu] = [a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == title]
    return menu


def shown(window, kind):
    [dialog] = [d for d in window.findChildren(kind) if d.isVisible()]
    return dialog


def native(keys: str) -> str:
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)


def test_open_example_lists_the_five_examples_with_the_nan_demo_first(make_window):
    window = make_window()
    assert window.examples_menu.menuAction() in menu_titled(window, "File").actions()
    examples = entries(window.examples_menu)
    names = [a.text().rsplit("(", 1)[1].rstrip(")") for a in examples]
    assert names[0] == "nan_demo.py"
    assert sorted(names) == ["char_lstm.py", "cnn_glyphs.py", "mlp_spirals.py", "nan_demo.py", "tiny_transformer.py"]
    assert "NaN" in examples[0].text()
    assert examples[0].statusTip() == examples[0].toolTip() == (
        "A training run that goes wrong on purpose: the loss becomes NaN after a few steps.")
    assert all(a.isEnabled() and a.toolTip() for a in examples)


def test_choosing_the_nan_demo_debugs_it_paused_on_entry_and_f5_stops_at_the_nan(qtbot, make_window):
    window = make_window()
    entries(window.examples_menu)[0].trigger()
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert status(window).startswith("Paused on entry")
    assert window.session.target.path == NAN_DEMO and window.session.target.argv == ()
    assert window.source_view.file == NAN_DEMO
    assert "first NaN" in window.output.text()
    focus(qtbot, window)
    # lr=5: the updates outgrow the weights of each layer first, alerts that stop the run too (Stop on Alerts)
    for kind in ("large_update", "large_update", "nonfinite_forward"):
        before = window.session.current_stop.index
        press(qtbot, window, Qt.Key.Key_F5)
        qtbot.waitUntil(lambda before=before: paused(window) and window.session.current_stop.index > before
                        and window.session.stop_alert is not None, timeout=TIMEOUT)
        assert window.session.stop_alert.kind == kind
    assert window.message_bar.text().startswith("Stopped where NaN/Inf first appeared")


def test_an_example_runs_with_the_arguments_remembered_for_it(qtbot, make_window):
    window = make_window()
    remember_script(window.settings, NAN_DEMO, "--steps 3")  # as Debug Script… keeps them
    entries(window.examples_menu)[0].trigger()
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert window.session.target.argv == ("--steps", "3")


def test_a_missing_examples_folder_is_one_disabled_entry(make_window, tmp_path, monkeypatch):
    monkeypatch.setattr(app.help, "EXAMPLES_DIR", tmp_path / "gone")
    window = make_window()
    [entry] = window.examples_menu.actions()
    assert not entry.isEnabled() and "No examples" in entry.text() and str(tmp_path / "gone") in entry.text()


def test_the_shortcuts_dialog_lists_the_debugger_keys_grouped_as_the_menus(qtbot, make_window):
    window = make_window()
    window.actions["shortcuts"].trigger()
    dialog = shown(window, ShortcutsDialog)
    rows = dialog.rows()
    for row in (("Debug", "Continue", "F5"), ("Debug", "Step Over", "F10"), ("Debug", "Step Into", "F11"),
                ("Debug", "Step Out", "Shift+F11"), ("Debug", "Toggle Breakpoint", "F9"),
                ("View", "Find Node", "Ctrl+F"), ("File", "Open Tape", "Ctrl+O"), ("Edit", "Undo Edit", "Ctrl+Z")):
        assert (row[0], row[1], native(row[2])) in rows
    groups = list(dict.fromkeys(group for group, _, _ in rows))
    assert groups == ["File", "Edit", "Debug", "View"]
    with_keys = [a for a in window.actions.values() if not a.shortcut().isEmpty()]
    assert len(rows) == len(with_keys)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_the_shortcuts_dialog_follows_the_actions(make_window):
    window = make_window()
    window.actions["open_demo"].setShortcut(QKeySequence("Ctrl+Alt+D"))
    window.actions["find"].setShortcut(QKeySequence())
    rows = window.show_shortcuts().rows()
    assert ("File", "Open the Demo", native("Ctrl+Alt+D")) in rows
    assert not [r for r in rows if r[1] == "Find Node"]


def test_about_shows_the_versions_and_copies_them(qtbot, make_window):
    window = make_window()
    window.actions["about"].trigger()
    dialog = shown(window, AboutDialog)
    text = dialog.versions.text()
    for version in (engine.__version__, numpy.__version__, PySide6.__version__, pyqtgraph.__version__):
        assert version in text
    assert "CuPy" in text and "GPU" in text
    QApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    copied = QApplication.clipboard().text().splitlines()
    assert copied[0] == f"Tapescope {engine.__version__}"
    assert f"numpy {numpy.__version__}" in copied and f"pyqtgraph {pyqtgraph.__version__}" in copied
    assert any(line.startswith(f"PySide6 {PySide6.__version__} (Qt ") for line in copied)
    assert any(line.startswith("CuPy ") for line in copied) and any(line.startswith("GPU ") for line in copied)


@pytest.mark.parametrize("missing", [False, True], ids=["present", "missing"])
def test_help_opens_the_local_documents_only_when_they_exist(make_window, tmp_path, monkeypatch, missing):
    if missing:
        monkeypatch.setitem(app.help.DOCUMENTS, "tape_format", tmp_path / "no-such.md")
    opened = []
    monkeypatch.setattr(app.window.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    window = make_window()
    texts = [a.text().replace("&", "") for a in entries(menu_titled(window, "Help"))]
    expected = ["Keyboard Shortcuts", "Documentation", "About Tapescope"]
    assert texts == (expected if missing else ["Keyboard Shortcuts", "Tape Format", *expected[1:]])
    window.actions["documentation"].trigger()
    assert opened == [str(app.help.DOCUMENTS["documentation"])] and os.path.isfile(opened[0])
