"""The tensor inspector, offscreen: statistics, heatmap slicing, the paged table, big tensors off-thread."""

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QSlider

import app.inspect_worker as inspect_worker
from app.inspect_worker import InspectWorker
from engine.debug import ValueUnavailable
from engine.debug.summary import summarize
from widgets.heatmap import MAX_SIDE, Difference, HeatmapView
from widgets.tensor_inspector import DIFF, GRAD, VALUE
from widgets.value_table import COL_PAGE, ROW_PAGE, ValueTable


@pytest.fixture
def worker(qtbot):
    w = InspectWorker()
    yield w
    w.cancel()
    w.wait(10_000)


def activations(shape=(8, 16, 24), seed=0) -> np.ndarray:
    """Values like a layer's output: mostly normal, some exact zeros (a ReLU), a NaN and an Inf."""
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    a[a < -1.2] = 0.0
    a.flat[7] = np.nan
    a.flat[11] = np.inf
    return a


def test_statistics_are_exactly_the_summary(inspector):
    a, g = activations(), activations(seed=1) * 1e-3
    s, sg = summarize(a), summarize(g)
    inspector.show_summaries("MLP.fc1/linear:0", s, sg)
    assert inspector.columns() == [VALUE, GRAD]
    for col, summary in ((VALUE, s), (GRAD, sg)):
        for stat, field in (("min", "min"), ("max", "max"), ("mean", "mean"), ("std", "std"),
                            ("L2 norm", "norm")):
            assert float(inspector.stat_text(stat, col)) == pytest.approx(getattr(summary, field), rel=1e-5)
        assert inspector.stat_text("NaN", col) == f"{summary.nan_count:,}"
        assert inspector.stat_text("Inf", col) == f"{summary.inf_count:,}"
        assert inspector.stat_text("zeros", col).startswith(f"{summary.zero_count:,} (")
    assert s.nan_count == 1 and s.inf_count == 1 and s.zero_count > 0
    assert "8\u00d716\u00d724" in inspector.meta.text() and "float32" in inspector.meta.text()
    assert "3,072 elements" in inspector.meta.text()
    edges, counts = inspector.histograms[VALUE].bars()
    assert np.array_equal(counts, s.counts) and np.allclose(edges, s.bin_edges)


def test_a_sampled_summary_says_so(inspector):
    s = summarize(np.arange(2000, dtype=np.float32), limit=1000)
    inspector.show_summaries("big", s)
    assert s.stride == 2 and inspector.stat_text("computed from") == "every 2nd element"
    assert float(inspector.stat_text("max")) == 1999.0  # exact even when sampled


def test_heatmap_of_a_matrix_is_the_matrix(qtbot):
    view = HeatmapView()
    qtbot.addWidget(view)
    a = activations((6, 9))
    view.set_arrays({"value": a})
    assert np.array_equal(view.shown("value"), a, equal_nan=True)
    assert view.key() == (slice(None), slice(None))


def test_nd_heatmap_picks_axes_and_slices_with_sliders(qtbot):
    view = HeatmapView()
    qtbot.addWidget(view)
    view.show()
    a = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    view.set_arrays({"value": a})
    assert np.array_equal(view.shown("value"), a[0])  # the last two axes, first position of the rest
    view.set_axes(0, 2)
    slider = view.findChild(QSlider, "axis1")
    with qtbot.waitSignal(view.sliceChanged) as sig:
        slider.setValue(3)  # what dragging the slider does
    assert sig.args == [(slice(None), 3, slice(None))]
    assert np.array_equal(view.shown("value"), a[:, 3, :])
    view.set_axes(2, 0)  # rows from axis 2: the image is transposed
    assert np.array_equal(view.shown("value"), a[:, 3, :].T)
    view.row_axis.setCurrentIndex(1)  # choosing in the combo box: rows axis 1, columns axis 0
    assert view.key() == (slice(None), slice(None), 0)
    assert np.array_equal(view.shown("value"), a[:, :, 0].T)


def test_big_heatmaps_draw_a_strided_subsample_and_differences_only_there(qtbot):
    view = HeatmapView()
    qtbot.addWidget(view)
    a = np.random.default_rng(0).standard_normal((3000, 2000)).astype(np.float32)
    b = a * 0.5
    view.set_arrays({"value": a, "delta": Difference(a, b)})
    img = view.shown("value")
    assert max(img.shape) <= MAX_SIDE and view.steps == (6, 4)
    assert np.array_equal(img, a[::6, ::4])
    assert np.allclose(view.shown("delta"), (a - b)[::6, ::4])
    assert "every 6th row, 4th column" in view.info.text()


def test_heatmap_refuses_arrays_of_different_shapes(qtbot):
    view = HeatmapView()
    qtbot.addWidget(view)
    with pytest.raises(ValueError, match="different shapes"):
        view.set_arrays({"value": np.zeros((2, 3)), "gradient": np.zeros((3, 2))})


def test_paged_table_fetches_more_rows_when_scrolled(qtbot):
    table = ValueTable()
    qtbot.addWidget(table)
    table.resize(400, 300)
    table.show()
    a = np.arange(1000 * 3, dtype=np.float64).reshape(1000, 3)
    table.set_array(a)
    model = table.model()
    assert model.rowCount() == ROW_PAGE and model.total_rows == 1000
    bar = table.verticalScrollBar()
    for rows in (2 * ROW_PAGE, 3 * ROW_PAGE):
        qtbot.waitUntil(lambda: bar.maximum() > bar.value())  # the view lays new rows out lazily
        bar.setValue(bar.maximum())  # scrolling to the bottom asks the model for more
        qtbot.waitUntil(lambda rows=rows: model.rowCount() == rows)
    assert model.rowCount() == 3 * ROW_PAGE
    assert model.data(model.index(2 * ROW_PAGE + 5, 1)) == f"{a[2 * ROW_PAGE + 5, 1]:.6g}"


def test_paged_table_fetches_more_columns_and_reads_only_pages_shown(qtbot):
    table = ValueTable()
    qtbot.addWidget(table)
    table.resize(400, 300)
    table.show()
    reads = []

    def block(r0, r1, c0, c1):
        reads.append((r0, c0))
        return np.add.outer(np.arange(r0, r1) * 1000.0, np.arange(c0, c1))

    table.set_source(block, (100_000, 500))
    model = table.model()
    assert model.columnCount() == COL_PAGE
    bar = table.horizontalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: model.columnCount() > COL_PAGE)
    assert model.data(model.index(3, 60)) == "3060"
    assert len(reads) <= 4  # a page or two, never the whole 50-million-cell table


def test_nd_table_rows_are_labelled_with_their_index(qtbot):
    table = ValueTable()
    qtbot.addWidget(table)
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    table.set_array(a)
    model = table.model()
    assert (model.rowCount(), model.columnCount()) == (6, 4)
    assert model.headerData(4, Qt.Orientation.Vertical) == "[1, 1]"
    assert model.data(model.index(4, 2)) == str(a[1, 1, 2])


def test_values_gradient_and_difference_side_by_side(inspector):
    v, g = activations((5, 7)), activations((5, 7), seed=2)
    prev = v + 0.25
    with np.errstate(invalid="ignore"):
        delta = v - prev
    inspector.show_summaries("x", summarize(v), summarize(g), summarize(delta))
    inspector.set_values(v, g, prev)
    assert inspector.columns() == [VALUE, GRAD, DIFF]
    assert float(inspector.stat_text("mean", DIFF)) == pytest.approx(-0.25, rel=1e-4)
    assert np.array_equal(inspector.heatmap.shown(GRAD), g, equal_nan=True)
    assert np.allclose(inspector.heatmap.shown(DIFF)[np.isfinite(v)], -0.25)
    inspector.table_choice.setCurrentText(GRAD)
    model = inspector.table.model()
    assert model.data(model.index(1, 2)) == f"{g[1, 2]:.6g}"


def test_copy_and_save(inspector, tmp_path):
    v = activations((3, 4))
    inspector.show_summaries("MLP.fc1/linear:0", summarize(v))
    inspector.set_values(v)
    text = inspector.copy_statistics()
    assert QGuiApplication.clipboard().text() == text and "L2 norm" in text
    assert "nan" in inspector.copy_values() and "inf" in QGuiApplication.clipboard().text()
    path = inspector.save_npy(str(tmp_path / "fc1"))
    assert path.endswith("fc1.npy")
    assert np.array_equal(np.load(path, allow_pickle=False), v, equal_nan=True)


def test_selecting_a_10m_element_tensor_keeps_the_gui_thread_responsive(qtbot, inspector, worker,
                                                                        monkeypatch):
    big = np.random.default_rng(0).standard_normal((2500, 4000)).astype(np.float32)
    gui = threading.get_ident()
    summarized_on = []

    def summarize_and_note(a, *args, **kwargs):
        summarized_on.append(threading.get_ident())
        return summarize(a, *args, **kwargs)

    monkeypatch.setattr(inspect_worker, "summarize", summarize_and_note)
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    fetching = threading.Event()
    release = threading.Event()

    def fetch():  # stands in for a slow copy from a GPU: it runs until the test lets it finish
        fetching.set()
        release.wait(10)
        return big

    def show(result):
        inspector.show_summaries(result.key, result.value_summary)
        inspector.set_values(result.value)

    worker.ready.connect(show)
    with qtbot.waitSignal(worker.ready, timeout=20_000):
        worker.request("MLP.fc1/linear:0", value=fetch)
        qtbot.waitUntil(fetching.is_set)
        seen = len(ticks)
        qtbot.waitUntil(lambda: len(ticks) >= seen + 5)  # the GUI thread keeps ticking meanwhile
        release.set()
    timer.stop()
    assert summarized_on and gui not in summarized_on
    assert "10,000,000 elements" in inspector.meta.text()
    assert float(inspector.stat_text("max")) == pytest.approx(float(big.max()), rel=1e-5)
    assert max(inspector.heatmap.shown(VALUE).shape) <= MAX_SIDE  # the GUI thread draws pixels, not elements
    assert inspector.table.model().rowCount() == ROW_PAGE


def test_worker_delivers_only_the_newest_request(qtbot, worker):
    gate = threading.Event()
    got = []
    worker.ready.connect(got.append)

    def slow():
        gate.wait(10)
        return np.ones(3)

    worker.request("old", value=slow)
    with qtbot.waitSignal(worker.ready, timeout=10_000):
        worker.request("new", value=lambda: np.full(4, 2.0), previous=lambda: np.ones(4))
        gate.set()
    worker.wait(10_000)
    qtbot.wait(20)  # let any stale result's queued signal arrive (it must be dropped)
    assert [r.key for r in got] == ["new"]
    assert got[0].diff_summary.mean == 1.0 and got[0].value_summary.numel == 4


def test_worker_reports_a_value_that_is_gone(qtbot, worker, inspector):
    def gone():
        raise ValueUnavailable("tensor 42: no value kept (evicted from the 256 MB value cache)")

    worker.failed.connect(lambda key, message: inspector.show_error(message))
    with qtbot.waitSignal(worker.failed, timeout=10_000) as sig:
        worker.request("x", value=gone)
    assert sig.args[0] == "x" and "evicted" in sig.args[1]
    assert "evicted" in inspector.status.text()


@pytest.mark.parametrize("shape", [(), (7,), (1, 1, 300_000)])
def test_scalars_vectors_and_thin_tensors_show_without_trouble(inspector, shape):
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    inspector.show_summaries("loss", summarize(a))
    inspector.set_values(a)
    img = inspector.heatmap.shown(VALUE)
    assert img.shape[0] == 1 and 1 <= img.shape[1] <= MAX_SIDE ** 2
    assert float(img[0, 0]) == float(a.reshape(-1)[0])
    model = inspector.table.model()
    assert model.total_rows * model.total_cols == a.size
    assert model.data(model.index(0, 0)) == f"{float(a.reshape(-1)[0]):.6g}"


def test_a_long_module_path_does_not_widen_the_inspector(inspector):
    key = "TinyGPT.blocks.layers.1.self_attn.out_proj/linear:0"
    s = summarize(activations())
    shapes = "16\u00d764\u00d764 \u2192 16\u00d764\u00d764 float32"
    inspector.show_summaries(f"linear \u00b7 {key}", s, s, subtitle=f"linear in {key.split('/')[0]}: {shapes}")
    assert inspector.minimumSizeHint().width() <= 340  # a dock beside the graph is about that narrow
    assert key in inspector.title.text() and inspector.title.toolTip().endswith(key)  # whole, for copying


def test_a_column_from_an_earlier_iteration_and_a_source_without_values_say_so(inspector):
    s = summarize(activations())
    inspector.show_summaries("MLP.fc1/linear:0", s, s, value_label="value (iteration 3)",
                             grad_label="gradient (iteration 3)")
    stats = inspector.stats
    assert [stats.horizontalHeaderItem(c).text() for c in range(2)] == ["value (it. 3)", "gradient (it. 3)"]
    assert [stats.horizontalHeaderItem(c).toolTip() for c in range(2)] == ["value (iteration 3)",
                                                                            "gradient (iteration 3)"]
    assert inspector.load_button.isEnabled()
    inspector.set_unavailable(values="This tape holds no values.", summaries="A structure tape holds none.")
    assert not inspector.load_button.isEnabled() and inspector.load_button.toolTip() == "This tape holds no values."
    inspector.show_summaries("relu:0", subtitle="relu: 8x16 \u2192 8x16 float32")
    assert inspector.meta.text() == "relu: 8x16 \u2192 8x16 float32\nA structure tape holds none."
    assert stats.horizontalHeaderItem(0).text() == "value"
    assert not stats.isVisible() and not inspector.tabs.isVisible()  # the reason alone, no empty table and plots
    inspector.set_unavailable()  # a source with values again
    inspector.show_summaries("MLP.fc1/linear:0", s)
    assert inspector.load_button.isEnabled() and "Fetch" in inspector.load_button.toolTip()
    assert stats.isVisible() and inspector.tabs.isVisible()


def test_an_empty_inspector_shows_one_empty_histogram_not_three(inspector):
    # at start-up three empty plots side by side ran past the dock's edge ("Δ prev. itera")
    def visible():
        return [name for name, view in inspector.histograms.items() if view.isVisible()]

    assert visible() == [VALUE]
    inspector.show_summaries("x", summarize(activations()), summarize(activations(seed=1)))
    assert visible() == [VALUE, GRAD]
    inspector.clear()
    assert visible() == [VALUE]


def test_a_heatmap_on_a_hidden_tab_is_drawn_when_its_tab_is_shown(inspector, qtbot):
    # a hidden Heatmap tab rebuilt its plots at every step of a live run (~22 ms each on the GUI thread)
    inspector.show()
    qtbot.waitExposed(inspector)
    assert inspector.tabs.currentWidget() is not inspector.heatmap
    a = activations((6, 10))
    inspector.show_summaries("linear", summarize(a))
    inspector.set_values(a)
    assert not inspector.heatmap.plots.ci.items  # nothing built while nobody can see it
    inspector.tabs.setCurrentWidget(inspector.heatmap)
    qtbot.waitUntil(lambda: bool(inspector.heatmap.plots.ci.items))
    assert np.array_equal(inspector.heatmap.shown(VALUE), a, equal_nan=True)
    assert inspector.heatmap.info.text() == "6 \u00d7 10"


def test_the_values_tab_says_why_it_is_empty(inspector):
    # a replay of a summary tape showed a blank Values tab; only the disabled button's tooltip said why
    inspector.show_summaries("MLP.fc1/linear:0", summarize(activations()))
    inspector.tabs.setCurrentIndex(2)
    assert inspector.values_note.isVisible() and not inspector.table.isVisible()
    assert "Load values" in inspector.values_note.text()
    inspector.set_unavailable(values="This tape holds no values (recorded at 'summary').")
    assert inspector.values_note.text() == "This tape holds no values (recorded at 'summary')."
    assert inspector.heatmap.empty.text() == inspector.values_note.text()
    inspector.set_unavailable()
    inspector.set_values(activations())
    assert inspector.table.isVisible() and not inspector.values_note.isVisible()


def test_statistics_in_narrow_columns_keep_their_digits(qtbot, inspector):
    # at 1024x640 the three columns are narrow: "-0.0069…" lost its digits; a shorter form reads whole
    inspector.resize(300, 700)
    a = activations() * 1e-3 - 0.00690843
    s = summarize(a)
    inspector.show_summaries("MLP.fc1/linear:0", s, s, s)
    qtbot.waitUntil(lambda: inspector.stats.columnWidth(0) < 100)
    stats, metrics = inspector.stats, inspector.stats.fontMetrics()
    for col in range(3):
        for row in range(stats.rowCount()):
            item = stats.item(row, col)
            assert metrics.horizontalAdvance(item.text()) <= stats.columnWidth(col) - 8, item.toolTip()
    mean = stats.item(2, 0)
    assert mean.text() in (f"{s.mean:.4g}", f"{s.mean:.3g}", f"{s.mean:.2g}")
    assert mean.toolTip().startswith(f"{s.mean:.6g}")
    inspector.resize(900, 700)  # room again: the whole text comes back
    qtbot.waitUntil(lambda: stats.item(2, 0).text() == f"{s.mean:.6g}")


def test_values_that_differ_past_six_digits_are_told_apart_in_the_table_and_the_histogram(inspector):
    # a softmax row's sums: 0.99999994 to 1.0000001, whose min, max and every histogram tick all read "1"
    sums = np.array([0.99999994, 1.0, 1.0000001, 0.99999994, 1.0], dtype=np.float32)
    inspector.show_summaries("softmax_sums", summarize(sums))
    assert inspector.stat_text("min") != inspector.stat_text("max")
    assert float(inspector.stat_text("min")) < 1.0 < float(inspector.stat_text("max"))
    from PySide6.QtGui import QFont, QFontMetrics

    from widgets.histogram import fitting_ticks

    labels = [text for _, text in fitting_ticks(0.99999994, 1.0000001, 1000, QFontMetrics(QFont()))]
    assert len(labels) > 1 and len(set(labels)) == len(labels)


def test_a_heading_wrapped_in_a_narrow_dock_pushes_the_statistics_down_not_under_the_plots(qtbot, inspector):
    # the heading's size policy ignores its width, so the layout counted one line of a heading wrapped over three
    # (a 1024x640 window): the table's last row lay under the plots' tab bar
    inspector.resize(330, 340)
    a = activations()
    inspector.show_summaries("Net.block1.0/conv2d:0", summarize(a), summarize(a * 1e-3),
                             subtitle="conv2d in Net.block1.0: 32\u00d71\u00d716\u00d716, 8\u00d71\u00d73\u00d73, 8 "
                                      "\u2192 32\u00d78\u00d716\u00d716 float32")
    qtbot.waitUntil(lambda: inspector.meta.height() > 2 * inspector.meta.fontMetrics().height(), timeout=5000)
    stats, tabs = inspector.stats, inspector.tabs
    qtbot.waitUntil(lambda: inspector.meta.geometry().bottom() < stats.geometry().top()
                    and stats.geometry().bottom() < tabs.geometry().top(), timeout=5000)


def test_the_description_line_wraps_a_long_module_path_inside_the_dock(qtbot, inspector):
    """"64x16 · float32 · cpu · 1,024 elements · linear in Spiral….input_projection_of_the_spiral_coordinates"
    ran past a narrow dock's edge, the path one word too long to wrap: it breaks at its dots and underscores,
    its text (and tooltip) stay whole."""
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QLabel

    path = "SpiralClassifierWithResidualBlocks.input_projection_of_the_spiral_coordinates"
    inspector.resize(260, 700)
    inspector.show_summaries(f"{path}/linear:0", summarize(activations((64, 16))), subtitle=f"linear in {path}")
    meta = inspector.meta
    qtbot.waitUntil(lambda: 0 < meta.width() <= inspector.width())
    drawn = QLabel.text(meta)  # as laid out, with its places to break
    lines = meta.fontMetrics().boundingRect(QRect(0, 0, meta.width(), 10_000), Qt.TextFlag.TextWordWrap, drawn)
    assert lines.width() <= meta.width(), (lines.width(), meta.width())
    # (its next line says what the statistics leave out: the tensor holds a NaN and an Inf)
    assert meta.text().splitlines()[0].endswith(f"linear in {path}") and meta.toolTip() == meta.text()


def test_copying_the_description_line_copies_the_text_without_its_break_marks(qtbot, inspector):
    # the places to break were zero-width spaces in the label's text: a selection copied with Ctrl+C took them along
    from PySide6.QtWidgets import QLabel

    path = "SpiralClassifierWithResidualBlocks.input_projection"
    inspector.show_summaries(f"{path}/linear:0", summarize(activations((64, 16))), subtitle=f"linear in {path}")
    meta = inspector.meta
    meta.setSelection(0, len(QLabel.text(meta)))
    QGuiApplication.clipboard().clear()
    meta.setFocus()
    qtbot.keyClick(meta, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    copied = QGuiApplication.clipboard().text()
    assert copied == meta.text() and "\u200b" not in copied and path in copied
