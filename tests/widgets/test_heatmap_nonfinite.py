"""The heatmap on tensors with NaN and Inf, offscreen: what a person hunting a NaN sees in it."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QTextDocument
from PySide6.QtWidgets import QApplication

from tests.shots import shoot, shown
from widgets.heatmap import NONFINITE, Difference, HeatmapView


@pytest.fixture
def view(qtbot):
    return shown(qtbot, HeatmapView(), 600, 420)


def plain(label) -> str:
    doc = QTextDocument()
    doc.setHtml(label.text())
    return " ".join(doc.toPlainText().split())


def cell_pos(view, name: str, r: int, c: int) -> QPoint:
    """Where the centre of element (r, c) of the panel `name` lies in the view, in pixels."""
    plot = next(item for item in view.plots.ci.items if getattr(item, "titleLabel", None)
                and item.titleLabel.text == name)
    scene = plot.vb.mapViewToScene(QPointF(c + 0.5, r + 0.5))
    return view.plots.mapTo(view, view.plots.mapFromScene(scene))


def hover(view, pos: QPoint) -> None:
    """Move the mouse, with no button down, to `pos` (in the view's pixels)."""
    viewport = view.plots.viewport()
    local = QPointF(viewport.mapFrom(view, pos))
    event = QMouseEvent(QEvent.Type.MouseMove, local, QPointF(viewport.mapToGlobal(local)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


def colour_at(view, name: str, r: int, c: int) -> QColor:
    view.grab()  # the plots lay themselves out when drawn: only then do cells sit where they are seen
    return view.grab().toImage().pixelColor(cell_pos(view, name, r, c))


def close(colour: QColor, rgb, tol: int = 6) -> bool:
    return all(abs(a - b) <= tol for a, b in zip((colour.red(), colour.green(), colour.blue()), rgb))


def awkward() -> np.ndarray:
    a = np.linspace(-2.0, 3.0, 48, dtype=np.float32).reshape(6, 8)
    a[1, 2] = a[5, 7] = np.nan
    a[2, 5] = np.inf
    a[4, 1] = -np.inf
    return a


def test_nan_and_infinities_have_colours_of_their_own(view, qtbot):
    a = awkward()
    view.set_arrays({"value": a})
    qtbot.waitUntil(lambda: view.nonfinite.isVisible())
    shoot(view, "heatmap_nonfinite.png")
    # +Inf was drawn as the largest finite value and -Inf as the smallest; NaN let the background through
    top, bottom = colour_at(view, "value", 5, 6), colour_at(view, "value", 0, 0)
    for (r, c), kind in (((1, 2), "NaN"), ((5, 7), "NaN"), ((2, 5), "+Inf"), ((4, 1), "-Inf")):
        seen = colour_at(view, "value", r, c)
        assert close(seen, NONFINITE[kind]), (kind, seen.name())
        assert not close(seen, (top.red(), top.green(), top.blue()), 40)
        assert not close(seen, (bottom.red(), bottom.green(), bottom.blue()), 40)
    assert len({tuple(rgb) for rgb in NONFINITE.values()}) == 3


def test_the_colour_range_comes_from_finite_values(view, qtbot):
    a = np.array([[0.0, 1.0], [2.0, np.inf]], np.float32)
    view.set_arrays({"value": a})
    qtbot.waitUntil(lambda: view.nonfinite.isVisible())
    # 0 and 2 are the two ends of the map: they differ, and neither is the colour of +Inf
    lo, hi = colour_at(view, "value", 0, 0), colour_at(view, "value", 1, 0)
    assert not close(lo, (hi.red(), hi.green(), hi.blue()), 40)
    assert close(colour_at(view, "value", 1, 1), NONFINITE["+Inf"])


def test_a_label_counts_each_kind_and_names_its_colour_only_when_there_are_any(view, qtbot):
    view.set_arrays({"value": np.arange(12, dtype=np.float32).reshape(3, 4)})
    assert not view.nonfinite.isVisible()
    view.set_arrays({"value": awkward(), "gradient": np.abs(awkward())})
    qtbot.waitUntil(lambda: view.nonfinite.isVisible())
    text = plain(view.nonfinite)
    assert text.startswith("value: \u25a0 2 NaN \u25a0 1 +Inf \u25a0 1 -Inf")
    assert "gradient: \u25a0 2 NaN \u25a0 2 +Inf" in text and "gradient: \u25a0 2 NaN \u25a0 2 +Inf \u25a0" not in text
    for rgb in NONFINITE.values():  # each swatch is drawn in the colour of its cells
        assert 'color:#{:02x}{:02x}{:02x}">\u25a0</span>'.format(*rgb) in view.nonfinite.text()
    shoot(view, "heatmap_nonfinite_two.png")
    view.set_arrays({"value": np.ones((3, 4), np.float32), "gradient": np.ones((3, 4), np.float32)})
    assert not view.nonfinite.isVisible()


def test_hovering_a_non_finite_element_reads_its_value(view, qtbot):
    view.set_arrays({"value": awkward()})
    qtbot.waitUntil(lambda: view.nonfinite.isVisible())
    view.grab()  # the plots lay themselves out when drawn
    for (r, c), word in (((1, 2), "nan"), ((2, 5), "inf"), ((4, 1), "-inf")):
        pos, says = cell_pos(view, "value", r, c), f"value [{r}, {c}] = {word}"
        # pyqtgraph drops moves that come too close together: keep moving, as a hand does
        qtbot.waitUntil(lambda pos=pos, says=says: hover(view, pos) or view.hover.text() == says)


def test_an_all_infinite_tensor_shows_no_colour_range(view, qtbot):
    view.set_arrays({"value": np.full((4, 4), np.inf, np.float32)})
    qtbot.waitUntil(lambda: view.nonfinite.isVisible())
    shoot(view, "heatmap_all_inf.png")
    assert plain(view.nonfinite) == "no finite values: \u25a0 16 +Inf"
    assert close(colour_at(view, "value", 2, 2), NONFINITE["+Inf"])
    # the colour bar showed a range of 0 to 1 that no element has: no bar, no such tick labels
    bars = [item for item in view.plots.ci.items if hasattr(item, "axis") and item.isVisible()]
    assert not bars
    mixed = np.array([[np.nan, np.inf], [-np.inf, np.nan]], np.float32)
    view.set_arrays({"value": mixed})
    assert plain(view.nonfinite) == "no finite values: \u25a0 2 NaN \u25a0 1 +Inf \u25a0 1 -Inf"
    view.set_arrays({"value": np.eye(4, dtype=np.float32)})  # finite again: the bar comes back
    assert [item for item in view.plots.ci.items if hasattr(item, "axis") and item.isVisible()]
    assert not view.nonfinite.isVisible()


def test_a_subsampled_heatmap_says_what_it_counted(view, qtbot):
    a = np.zeros((1030, 8), np.float32)
    a[0, 0] = np.nan
    view.set_arrays({"value": a})
    qtbot.waitUntil(lambda: view.nonfinite.isVisible())
    assert plain(view.nonfinite) == "\u25a0 1 NaN \u00b7 every cell counted; a pixel shows any its cells hold"


# A 2000 x 2000 slice is drawn every 4th row and column: pixel (250, 350) stands for cells 1000-1003 x
# 1400-1403, and the stride reads only cell (1000, 1400) of them.
LONE = (1001, 1403)
PIXEL = (250, 350)


def plot_of(view, name: str):
    return next(item for item in view.plots.ci.items if getattr(item, "titleLabel", None)
                and item.titleLabel.text == name)


@pytest.mark.parametrize("kind", list(NONFINITE))
def test_a_lone_non_finite_cell_that_the_stride_skips_is_drawn(view, qtbot, kind):
    a = np.zeros((2000, 2000), np.float32)
    a[LONE] = {"NaN": np.nan, "+Inf": np.inf, "-Inf": -np.inf}[kind]
    view.set_arrays({"value": a})
    qtbot.waitUntil(lambda: view.nonfinite.isVisible())
    assert view.steps == (4, 4)
    img = view.shown("value")
    assert np.array_equal(img[PIXEL], a[LONE], equal_nan=True)
    assert np.count_nonzero(~np.isfinite(img)) == 1  # that pixel only
    assert plain(view.nonfinite).startswith(f"\u25a0 1 {kind} \u00b7")
    # on screen too, where the plot is far narrower than the image: Qt drops pixels when it scales
    shoot(view, f"heatmap_lone_{kind}.png")
    assert close(colour_at(view, "value", *LONE), NONFINITE[kind])
    assert not close(colour_at(view, "value", 300, 300), NONFINITE[kind], 60)


def test_the_legend_counts_every_cell_and_a_pixel_shows_nan_before_inf(view, qtbot):
    a = np.zeros((2000, 2000), np.float32)
    a[1001, 1401] = a[1002, 1403] = np.nan  # both in pixel (250, 350), with an Inf of each sign
    a[1001, 1402], a[1003, 1402] = np.inf, -np.inf
    a[5, 6], a[6, 7] = -np.inf, np.inf  # pixel (1, 1): +Inf wins over -Inf
    a[9, 9] = -np.inf  # pixel (2, 2)
    view.set_arrays({"value": a, "delta": Difference(a, np.zeros_like(a))})
    qtbot.waitUntil(lambda: view.nonfinite.isVisible())
    for name in ("value", "delta"):
        img = view.shown(name)
        assert np.isnan(img[PIXEL]) and img[1, 1] == np.inf and img[2, 2] == -np.inf
        assert np.count_nonzero(~np.isfinite(img)) == 3
    assert plain(view.nonfinite).startswith("value: \u25a0 2 NaN \u25a0 2 +Inf \u25a0 3 -Inf \u00b7 "
                                            "delta: \u25a0 2 NaN \u25a0 2 +Inf \u25a0 3 -Inf \u00b7 ")
    assert a[1000, 1400] == 0 and a[0, 0] == 0


def test_hovering_a_nan_pixel_names_the_nan_cell(view, qtbot):
    a = np.zeros((2000, 2000), np.float32)
    a[LONE] = np.nan
    view.set_arrays({"value": a})
    qtbot.waitUntil(lambda: view.nonfinite.isVisible())
    plot_of(view, "value").vb.setRange(xRange=(1390, 1415), yRange=(990, 1015), padding=0)  # zoomed in
    shoot(view, "heatmap_lone_nan_zoomed.png")
    # the whole pixel is magenta: pointing at any of its cells names the NaN, the one behind the colour
    for cell in ((1000, 1400), (1003, 1400), LONE):
        assert close(colour_at(view, "value", *cell), NONFINITE["NaN"])
        pos = cell_pos(view, "value", *cell)
        qtbot.waitUntil(lambda pos=pos: hover(view, pos) or view.hover.text() == "value [1001, 1403] = nan")
    pos = cell_pos(view, "value", 1004, 1400)  # the next pixel down: finite, so its own cell
    qtbot.waitUntil(lambda: hover(view, pos) or view.hover.text() == "value [1004, 1400] = 0")
