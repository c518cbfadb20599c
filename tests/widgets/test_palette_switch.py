"""A change of the system's colour scheme while the app runs reaches every panel (it once took a restart):
plots drop their cached light background, builder rows and muted notes take the dark palette's colours."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.window import apply_palette
from tests.shots import shown
from widgets.histogram import HistogramView
from widgets.theme import MUTED_TEXT, contrast, tint


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
