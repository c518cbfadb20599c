"""The value inspector on awkward tensors, offscreen: what a person reads in it."""

import numpy as np
import pytest

from app.debug_panels import _subtitle
from app.session import NodeInfo
from engine.debug.summary import summarize
from widgets.heatmap import HeatmapView


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
