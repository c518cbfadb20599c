"""The value inspector on awkward tensors, offscreen: what a person reads in it."""

import numpy as np
import pytest
from PySide6.QtGui import QImage, QPainter

from app.debug_panels import _subtitle
from app.session import NodeInfo
from engine.debug.summary import summarize
from tests.shots import shown
from widgets.heatmap import HeatmapView
from widgets.histogram import HistogramView
from widgets.tensor_inspector import GRAD, STATS, VALUE


def test_a_constant_too_large_for_a_unit_range_still_gets_its_histogram(inspector):
    # all 9 values at 1e30 (a diverged layer): lo - 0.5 == lo, and counting the bins raised ValueError
    a = np.full((3, 3), 1e30, np.float32)
    inspector.show_summaries("Net.fc/linear:0", summarize(a), summarize(-a))
    edges, counts = inspector.histograms["value"].bars()
    assert counts.sum() == 9 and edges[0] == pytest.approx(1e30)
    assert inspector.stat_text("min") == "1e+30" and inspector.stat_text("std") == "0"
    assert inspector.histograms["gradient"].bars()[1].sum() == 9


def test_a_one_element_tensor_says_one_element(inspector):
    inspector.show_summaries("loss", summarize(np.array([0.5], np.float32)))
    assert inspector.meta.text().endswith("1 element")
    inspector.show_summaries("loss", summarize(np.array(0.5, np.float32)))
    assert "scalar" in inspector.meta.text() and inspector.meta.text().endswith("1 element")


def test_an_empty_heatmap_offers_no_axes_to_choose(qtbot):
    view = HeatmapView()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    # two empty "rows" and "columns" drop-downs showed above "No values loaded."
    assert not view.row_axis.isVisible() and not view.col_axis.isVisible()
    assert view.empty.isVisible()


def test_the_size_of_a_vector_does_not_stay_under_the_next_matrix(qtbot):
    view = HeatmapView()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.set_arrays({"value": np.arange(5, dtype=np.float32)})
    assert view.hover.text() == "1 \u00d7 5"
    view.set_arrays({"value": np.zeros((6, 6), np.float32)})
    assert view.info.text() == "6 \u00d7 6" and view.hover.text().strip() == ""


def test_a_parameter_says_why_it_has_no_statistics(inspector):
    # selecting a layer's weight showed an empty table under "param in Sequential.0:  \u2192 8\u00d71\u00d73\u00d73"
    info = NodeInfo("Sequential.0/conv2d:0/in1", "0.weight", "param", "", "Sequential.0", "",
                    "8\u00d71\u00d73\u00d73", "float32", None, None, None)
    inspector.show_summaries("0.weight", subtitle=_subtitle(info, 3))
    text = inspector.meta.text()
    assert text.startswith("param in Sequential.0: 8\u00d71\u00d73\u00d73 float32\n")
    assert "select Sequential.0/conv2d:0, the op it feeds" in text
    assert not inspector.load_button.isEnabled()


def dead_units(rows: int = 512, units: int = 256) -> np.ndarray:
    """A ReLU's output whose live units lie off every 8th column: a strided sample sees zeros only."""
    a = np.zeros((rows, units), np.float32)
    a[:, 1::8] = np.random.default_rng(0).random((rows, units // 8)) * 1400
    return a


def test_sampled_statistics_read_as_estimates_beside_the_exact_ones(inspector):
    # "zeros 100.0%, mean 0, std 0" beside "max 1413, L2 norm 25150" read as a contradiction: only the
    # "computed from: every 8th element" row hinted that three of the figures were a sample's
    s = summarize(dead_units())
    assert s.stride == 8 and s.zero_count == s.numel and s.max > 1000  # the sample saw no live unit
    exact = summarize(np.zeros((4, 4), np.float32))
    inspector.show_summaries("relu", s, exact)
    for stat in ("mean", "std", "zeros"):
        assert inspector.stat_text(stat).startswith("\u2248 "), stat
        assert not inspector.stat_text(stat, GRAD).startswith("\u2248"), stat  # an exact summary beside it
    assert inspector.stat_text("mean") == "\u2248 0" and inspector.stat_text("zeros").endswith("(100.0%)")
    for stat in ("min", "max", "L2 norm", "NaN", "Inf"):
        assert not inspector.stat_text(stat).startswith("\u2248"), stat
    table = inspector.stats
    row = {stat: STATS.index(stat) for stat in STATS}
    estimate, exact_cell = table.item(row["mean"], 0), table.item(row["max"], 0)
    assert estimate.font().italic() and not exact_cell.font().italic()
    assert estimate.foreground().color() != exact_cell.foreground().color()  # greyed
    assert not table.item(row["mean"], 1).font().italic()
    tip = estimate.toolTip()
    assert "every 8th element (16,384 of 131,072)" in tip and "min, max, L2 norm, NaN and Inf are exact" in tip
    assert "mean, std and zeros" in table.item(row["computed from"], 0).toolTip()


def test_a_one_element_tensor_shows_its_value_not_a_histogram(inspector):
    # a loss got a histogram of one bar with counts 0.2, 0.4 ... 1.0 up its side
    inspector.show_summaries("cross_entropy", summarize(np.array(0.677042, np.float32)),
                             summarize(np.array(1.0, np.float32)))
    for column, text in ((VALUE, "0.677042"), (GRAD, "1")):
        view = inspector.histograms[column]
        assert view.bars()[1].size == 0
        assert view.note().split("\n")[0] == text
        assert not view.getPlotItem().getAxis("left").isVisible()
    inspector.show_summaries("x", summarize(np.arange(6, dtype=np.float32)))  # the next tensor gets its plot back
    view = inspector.histograms[VALUE]
    assert view.bars()[1].sum() == 6 and view.note() == "" and view.getPlotItem().getAxis("left").isVisible()


@pytest.mark.parametrize("values", [[0.0, 1, 2], [0.0, 0, 1, 2], list(range(300)) * 3, [5.0] * 3])
def test_histogram_counts_are_whole_numbers(qtbot, values):
    view = shown(qtbot, HistogramView("value"), 260, 200)
    view.show_summary(summarize(np.array(values, np.float32)))
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        labels = [label for _, _, label in view.getAxis("left").generateDrawSpecs(painter)[2]]
    finally:
        painter.end()
    assert labels and all(label.replace(",", "").isdigit() for label in labels), labels
    assert max(int(label.replace(",", "")) for label in labels) <= view.bars()[1].max()


def test_every_statistics_row_shows_at_a_larger_font(inspector):
    # with an 11-point font (at a scale factor of 1.5) rows took 22 pixels in a table sized for rows of 19: "computed
    # from" lay under the table's edge, and the table has no scroll bar
    summary = summarize(np.random.default_rng(0).standard_normal(100).astype(np.float32))
    inspector.show_summaries("Net.fc/linear:0", summary, summary)
    font = inspector.font()
    font.setPointSizeF(11)
    inspector.setFont(font)
    table = inspector.stats
    assert table.fontMetrics().height() > 14  # larger than the 9-point font it was built with
    for row, stat in enumerate(STATS):
        assert table.rowViewportPosition(row) + table.rowHeight(row) <= table.viewport().height(), stat
