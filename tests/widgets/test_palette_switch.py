"""A change of the system's colour scheme while the app runs reaches every panel (it once took a restart):
plots drop their cached light background, builder rows and muted notes take the dark palette's colours."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QWidget

import engine.nn as nn
from app.edit_history import describe_model
from app.window import apply_palette
from tests.shots import shown
from widgets.arg_form import ArgForm
from widgets.breakpoints_panel import BreakpointEditor
from widgets.histogram import HistogramView
from widgets.module_editor import ModuleEditor
from widgets.node_info import NodeInfoPanel
from widgets.script_dialog import ScriptDialog
from widgets.theme import ERROR_FIELD, ERROR_TEXT, MUTED_TEXT, OK_TEXT, contrast, tint


@pytest.fixture
def switching(qapp):
    """Light now; the test turns the palette dark; light again afterwards."""
    before = QApplication.palette()
    apply_palette(qapp, dark=False)
    yield lambda: apply_palette(qapp, dark=True)
    QApplication.setPalette(before)


def _middle(widget) -> QColor:
    image = widget.grab().toImage()
    return image.pixelColor(image.width() // 4, image.height() // 3)


def test_a_plot_turns_dark_with_the_palette(qtbot, switching):
    plot = shown(qtbot, HistogramView("value"), 240, 200)
    assert _middle(plot).lightnessF() > 0.8
    switching()
    qtbot.waitUntil(lambda: _middle(plot).lightnessF() < 0.3)  # it kept the light background it had cached


def test_a_muted_note_follows_the_palette(qtbot, switching):
    holder = shown(qtbot, QWidget(), 200, 60)
    note = QLabel("no loss yet", holder)
    tint(note, MUTED_TEXT)
    switching()

    def reads():
        palette = note.palette()
        assert note.palette().color(QPalette.ColorRole.WindowText) == QColor(MUTED_TEXT[1])
        assert contrast(palette.color(QPalette.ColorRole.WindowText), palette.color(QPalette.ColorRole.Window)) >= 4.5

    qtbot.waitUntil(reads)


def test_builder_rows_follow_the_palette(qtbot, panel, switching):
    tree = panel.tree
    switching()

    def reads():
        base = tree.palette().color(QPalette.ColorRole.Base)
        for i in range(tree.topLevelItemCount()):
            item = tree.topLevelItem(i)
            assert contrast(item.foreground(0).color(), base) >= 4.5, item.text(0)

    qtbot.waitUntil(reads)


def _text_colour(widget) -> QColor:
    return widget.palette().color(QPalette.ColorRole.WindowText)


def _reads_dark(widget, pair) -> None:
    """`widget`'s text is the dark member of `pair`, readable on its (dark) window colour."""
    assert _text_colour(widget) == QColor(pair[1]), (_text_colour(widget).name(), pair)
    assert contrast(_text_colour(widget), widget.palette().color(QPalette.ColorRole.Window)) >= 4.5


def test_state_coloured_lines_follow_the_palette_at_once(qtbot, inspector, panel, switching):
    # the inspector's status and meta lines and the builder's status took the dark colours only at their
    # next update: light-mode red and grey on a dark window until then
    inspector.clear()
    inspector.show_error("evicted from the value cache")
    panel.check_now()
    before = _text_colour(panel.status)
    switching()
    qtbot.waitUntil(lambda: _reads_dark(inspector.status, ERROR_TEXT))
    qtbot.waitUntil(lambda: _reads_dark(inspector.meta, MUTED_TEXT))
    ok = OK_TEXT if before == QColor(OK_TEXT[0]) else ERROR_TEXT
    qtbot.waitUntil(lambda: _reads_dark(panel.status, ok))


def test_a_retinted_line_keeps_one_colour_through_switches(qtbot, inspector, switching):
    inspector.show_loading()
    inspector.show_error("evicted")  # tinted twice: the later colour is the one that follows the palette
    switching()
    qtbot.waitUntil(lambda: _reads_dark(inspector.status, ERROR_TEXT))


def test_node_info_and_dialog_errors_follow_the_palette(qtbot, switching):
    node = shown(qtbot, NodeInfoPanel(), 300, 200)
    editor = shown(qtbot, BreakpointEditor(), 300, 200)
    editor.error.setText("bad value")
    form = shown(qtbot, ArgForm(), 300, 200)
    form.set_args([{"name": "p", "kind": "float", "default": 0.5, "allowed": "a float in [0, 1]"}], {})
    form.set_text("p", "nope")
    assert form.errors()
    dialog = shown(qtbot, ScriptDialog("", None, "/somewhere"), 500, 300)
    dialog.args_edit.setText('--name "unclosed')
    assert dialog.problem_label.text()
    switching()
    qtbot.waitUntil(lambda: QColor(MUTED_TEXT[1]).name() in node.toHtml())  # "Click a node…", in grey
    qtbot.waitUntil(lambda: _reads_dark(editor.error, ERROR_TEXT))
    qtbot.waitUntil(lambda: _reads_dark(dialog.problem_label, ERROR_TEXT))
    qtbot.waitUntil(lambda: form.editor("p").palette().color(QPalette.ColorRole.Base) == QColor(ERROR_FIELD[1]))


def test_the_module_editors_text_follows_the_palette(qtbot, switching):
    editor = shown(qtbot, ModuleEditor(), 420, 640)
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1))
    editor.set_model(*describe_model(model, None))
    editor.select("Sequential")
    editor.select("Sequential.1")
    switching()

    def reads():
        grey = [label for label in editor.details.findChildren(QLabel) if label.isVisible()
                and (QColor(MUTED_TEXT[1]).name() in label.text() or _text_colour(label) == QColor(MUTED_TEXT[1]))]
        assert grey, [label.text() for label in editor.details.findChildren(QLabel)]
        stale = [label.text() for label in editor.details.findChildren(QLabel)
                 if QColor(MUTED_TEXT[0]).name() in label.text()]
        assert not stale

    qtbot.waitUntil(reads)
