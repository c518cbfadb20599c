"""The prediction view's labelled images (the glyphs example), offscreen: every label readable at any size."""

import numpy as np
import pyqtgraph as pg
import pytest

from engine.data.datasets import GLYPH_NAMES
from tests.shots import shoot
from widgets.decision_boundary import PredictionView

# the Prediction dock's size when the builder opens in a 1440 x 900 window, then narrower and wider
SIZES = [(388, 147), (200, 300), (260, 180), (900, 400), (320, 600)]
PREDICTED = np.array([6, 5, 5, 3, 0, 9, 4, 1, 2, 7, 8, 6, 6, 6, 0, 9])  # "triangle" beside "triangle" too


@pytest.fixture
def view(qtbot):
    v = PredictionView()
    qtbot.addWidget(v)
    v.resize(*SIZES[0])
    v.show()
    qtbot.waitExposed(v)
    return v


def show_glyphs(view) -> None:
    images = np.random.default_rng(0).random((16, 16, 16)).astype(np.float32)
    labels = PREDICTED.copy()
    labels[[2, 7]] = 0
    view.show_images(images, PREDICTED, labels, GLYPH_NAMES, "Epoch 3, step 120")


def shown_labels(view) -> list[pg.TextItem]:
    return [i for i in view.plot.getPlotItem().items if isinstance(i, pg.TextItem) and i.isVisible()]


def laid_out_for(view, width: int, height: int) -> bool:
    view.grab()  # the plot lays itself out when drawn
    box = view.plot.getPlotItem().vb.sceneBoundingRect()
    return abs(box.width() - (width - 10)) < 12 and all(box.contains(i.sceneBoundingRect()) for i in shown_labels(view))


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_labels_neither_overlap_nor_leave_the_view(view, qtbot, size):
    show_glyphs(view)
    view.resize(*size)
    qtbot.waitUntil(lambda: laid_out_for(view, *size))
    shoot(view, f"prediction_labels_{size[0]}x{size[1]}.png")
    labels = shown_labels(view)
    assert len(labels) == 16
    box = view.plot.getPlotItem().vb.sceneBoundingRect()
    # every image drawn whole: the last column was cut off
    assert box.contains(view.image.sceneBoundingRect().adjusted(1, 1, -1, -1))
    rects = [label.sceneBoundingRect() for label in labels]
    for i, a in enumerate(rects):
        assert box.contains(a), (labels[i].toPlainText(), a, box)
        for j, b in enumerate(rects[:i]):  # "trianglesquaresquareplus": names ran into each other
            assert not a.adjusted(-1, 0, 1, 0).intersects(b), (labels[i].toPlainText(), labels[j].toPlainText())
    for label, p in zip(labels, PREDICTED):
        text, name = label.toPlainText(), GLYPH_NAMES[p]
        assert text == name or (text.endswith("\u2026") and name.startswith(text[:-1]) and label.toolTip() == name)


def test_a_wide_view_shows_every_name_whole(view, qtbot):
    show_glyphs(view)
    view.resize(900, 400)
    qtbot.waitUntil(lambda: laid_out_for(view, 900, 400))
    assert [label.toPlainText() for label in shown_labels(view)] == [GLYPH_NAMES[p] for p in PREDICTED]


def test_labels_cover_no_image(view, qtbot):
    show_glyphs(view)
    qtbot.waitUntil(lambda: laid_out_for(view, *SIZES[0]))
    image = view.plot.grab().toImage()
    for label in shown_labels(view):
        r = view.plot.mapFromScene(label.sceneBoundingRect()).boundingRect()
        # inside a label: white, or its green or red text; grey is the ink of an image under it
        grey = [(x, y) for x in range(r.left(), r.right()) for y in range(r.top(), r.bottom())
                if (c := image.pixelColor(x, y)).lightness() < 200 and c.hslSaturation() < 30]
        assert not grey, (label.toPlainText(), grey[:3])
