"""In the dark palette every panel stays readable: the graph canvas turns dark, texts keep their contrast."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRectF
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app.layout import layout_view
from tests.app.graphs import mlp_graph_model
from tests.shots import shown
from widgets.decision_boundary import PredictionView
from widgets.graph_canvas import BACKGROUND, DARK_COLOURS, LIGHT_COLOURS, TEXT_ON, GraphCanvas
from widgets.source_view import SourceView
from widgets.status import MessageBar
from widgets.theme import ERROR_TEXT, MUTED_TEXT, contrast, is_dark, luminance
from widgets.timeline import Timeline

DARK = {"Window": "#2b2d31", "WindowText": "#e9ecef", "Base": "#1e1f22", "Text": "#e9ecef",
        "Button": "#33363b", "ButtonText": "#e9ecef"}  # as app.window's dark palette


@pytest.fixture
def dark_app(qapp):
    """The application in a dark palette for one test (widgets never import app: the roles are copied)."""
    before = QGuiApplication.palette()
    p = QPalette(before)
    for role, colour in DARK.items():
        p.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    QApplication.setPalette(p)
    yield p
    QApplication.setPalette(before)


def _canvas(qtbot) -> GraphCanvas:
    canvas = shown(qtbot, GraphCanvas(), 400, 300)
    view = mlp_graph_model().view()
    canvas.set_graph(view, layout_view(view))
    canvas.fit()
    return canvas


def test_the_graph_canvas_is_dark_in_the_dark_palette(qtbot, dark_app):
    canvas = _canvas(qtbot)
    image = canvas.render_image(1.0)
    corner = image.pixelColor(2, 2)
    assert corner.lightnessF() < 0.2, corner.name()
    node = image.pixelColor(canvas.view_point(canvas.view.keys[0]))
    assert node != corner
    assert contrast(QColor(DARK_COLOURS.palette[0][1]), corner) >= 3  # its border marks it off


def test_the_graph_canvas_follows_a_palette_change(qtbot, qapp):
    canvas = _canvas(qtbot)
    assert canvas.render_image(1.0).pixelColor(2, 2) == QColor(BACKGROUND)  # light stays as it was
    before = QGuiApplication.palette()
    p = QPalette(before)
    p.setColor(QPalette.ColorRole.Window, QColor(DARK["Window"]))
    p.setColor(QPalette.ColorRole.Base, QColor(DARK["Base"]))
    QApplication.setPalette(p)
    try:
        qtbot.waitUntil(lambda: canvas.render_image(1.0).pixelColor(2, 2) == QColor(DARK["Base"]))
    finally:
        QApplication.setPalette(before)
    qtbot.waitUntil(lambda: canvas.render_image(1.0).pixelColor(2, 2) == QColor(BACKGROUND))


@pytest.mark.parametrize("colours", [LIGHT_COLOURS, DARK_COLOURS], ids=["light", "dark"])
def test_node_labels_read_on_their_fills(colours):
    for fill, border in colours.palette:
        lum = luminance(QColor(fill))
        label = TEXT_ON[2 if lum < 0.3 else 1 if lum < 0.6 else 0][0]
        assert contrast(QColor(label), QColor(fill)) >= 4.5, fill
        if colours.dark:  # a node's border sets it off the dark canvas
            assert contrast(QColor(border), QColor(colours.background)) >= 3, border
    assert contrast(QColor(colours.title_text), QColor(colours.group_fills[0])) >= 4.5
    assert contrast(QColor(colours.edge_text), QColor(colours.background)) >= 4.5
    assert contrast(QColor(colours.legend[3]), QColor(*colours.legend[1][:3])) >= 4.5


def test_theme_text_colours_read_on_the_dark_palette(dark_app):
    assert is_dark()
    for pair in (ERROR_TEXT, MUTED_TEXT):
        for role in ("Window", "Base"):
            assert contrast(QColor(pair[1]), QColor(DARK[role])) >= 4.5, (pair, role)


def test_the_source_line_highlight_reads_in_the_dark_palette(qtbot, dark_app):
    view = SourceView()
    qtbot.addWidget(view)
    view.show_source("x.py", "a = 1\nb = 2\n", 2)
    selection = view.text.extraSelections()[0]
    back, fore = selection.format.background().color(), selection.format.foreground().color()
    assert back.lightnessF() < 0.4  # no glaring light bar in a dark panel
    assert contrast(fore, back) >= 4.5


def test_the_timeline_cursor_shows_on_the_dark_strip(qtbot, dark_app):
    timeline = shown(qtbot, Timeline(), 700, 110)
    seqs = list(range(4, 124, 3))
    timeline.set_events(seqs, [i // 10 for i in range(len(seqs))], ["forward"] * len(seqs))
    timeline.set_cursor(seqs[30])
    view = timeline.view
    image = view.grab().toImage()
    below_band = image.pixelColor(QPoint(int(view.event_x(30)), view.height() - 3))
    assert contrast(below_band, QColor(DARK["Base"])) >= 3, below_band.name()


def test_the_message_bar_is_dark_in_the_dark_palette(qtbot, dark_app):
    bar = MessageBar()
    qtbot.addWidget(bar)
    bar.resize(400, 40)
    bar.show_message("hello", "warning")
    image = bar.grab().toImage()
    assert image.pixelColor(image.width() // 2, 3).lightnessF() < 0.35
    assert "#e9ecef" in bar.styleSheet()


def test_a_canvas_region_is_unchanged_in_light(qtbot):
    canvas = _canvas(qtbot)
    canvas.box.setRange(QRectF(-200, -100, 400, 300), padding=0)
    assert canvas.render_image(1.0).pixelColor(2, 2) == QColor(BACKGROUND)


def test_the_hint_over_an_empty_graph_is_dark_in_the_dark_palette(qtbot, dark_app):
    # it stayed a white card with dark text over the dark canvas
    from app.graph_presenter import GraphPresenter
    from widgets.module_tree import ModuleTree

    canvas = shown(qtbot, GraphCanvas(), 500, 300)
    presenter = GraphPresenter(canvas, ModuleTree(), lambda text: None)
    presenter.show_hint("Paused before the first op.")
    qtbot.waitUntil(presenter.hint.isVisible)
    image = presenter.hint.grab().toImage()
    fill = image.pixelColor(image.width() // 2, 4)
    assert is_dark_colour(fill), fill.name()
    assert "color: #e9ecef" in presenter.hint.styleSheet() and contrast(QColor("#e9ecef"), fill) >= 4.5


def is_dark_colour(colour: QColor) -> bool:
    return luminance(colour) < 0.2


def _glyph_view(qtbot) -> PredictionView:
    view = shown(qtbot, PredictionView(), 420, 300)
    images = np.zeros((4, 8, 8), np.float32)
    images[:, 2:6, 3:5] = 1.0  # a bar of full ink in each
    view.show_images(images, np.array([0, 1, 0, 1]), np.array([0, 1, 1, 1]), ["zero", "one"])
    return view


def _plot_pixels(view: PredictionView) -> list[QColor]:
    image = view.plot.grab().toImage()
    return [image.pixelColor(x, y) for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)]


def test_the_prediction_view_is_dark_in_the_dark_palette(qtbot, dark_app):
    # it stayed a white plot with black glyphs in a dark window
    view = _glyph_view(qtbot)
    pixels = _plot_pixels(view)
    assert sum(p.lightnessF() < 0.2 for p in pixels) > 0.5 * len(pixels)  # the plot is dark...
    assert any(p.lightnessF() > 0.8 for p in pixels)  # ...and the glyphs' ink is light on it
    label = view._labels[2]  # predicted 0, labelled 1: wrong, in the palette's red
    assert contrast(label.textItem.defaultTextColor(), QColor(DARK["Base"])) >= 4.5
    probs = np.full((16, 16, 2), 0.5, np.float32)
    view.show_boundary(probs, (-1, 1, -1, 1), np.zeros((2, 2)), np.array([0, 1]))
    assert all(p.lightnessF() < 0.5 for p in _plot_pixels(view)[:8])  # the washed regions stay dark


def test_the_prediction_view_follows_a_palette_change(qtbot, qapp):
    view = _glyph_view(qtbot)
    light = _plot_pixels(view)
    assert sum(p.lightnessF() > 0.9 for p in light) > 0.5 * len(light)  # white paper, as before
    before = QGuiApplication.palette()
    p = QPalette(before)
    for role, colour in DARK.items():
        p.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    QApplication.setPalette(p)
    try:
        qtbot.waitUntil(lambda: sum(c.lightnessF() < 0.2 for c in _plot_pixels(view)) > 0.5 * len(light))
    finally:
        QApplication.setPalette(before)
