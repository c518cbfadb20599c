"""A demanding user's pass over the widgets: switching the palette while the app runs (offscreen)."""

import numpy as np
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from engine.debug import summarize
from tests.shots import shown
from tests.widgets.test_dark_palette import DARK
from widgets.histogram import HistogramView
from widgets.theme import contrast


def test_a_histograms_count_label_reads_after_a_switch_to_the_dark_palette(qtbot, qapp):
    # the "count" along the left axis kept pyqtgraph's default colour from the light palette: black on dark
    view = shown(qtbot, HistogramView("value", "#1c7ed6"), 300, 220)
    view.show_summary(summarize(np.random.default_rng(0).standard_normal(500).astype(np.float32)))
    before = QGuiApplication.palette()
    p = QPalette(before)
    for role, colour in DARK.items():
        p.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    QApplication.setPalette(p)

    def label_reads():
        image = view.grab().toImage()
        background = image.pixelColor(2, image.height() // 2)
        assert background.lightnessF() < 0.3  # the palette switch has reached the plot
        strip = [image.pixelColor(x, y) for x in range(16) for y in range(image.height())]
        assert max(contrast(c, background) for c in strip) >= 3

    try:
        qtbot.waitUntil(label_reads)
    finally:
        QApplication.setPalette(before)
