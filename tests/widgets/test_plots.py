"""Gradient flow, training curves and histograms, offscreen, fed from real engine events."""

import itertools
import math

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QScrollArea

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger, EventRecord, summarize
from engine.events import OptimizerEvent
from tests.shots import shown
from widgets.gradient_flow import GRAD, LABEL_SHARE, UPDATE_RATIO, WEIGHT, GradientFlowChart
from widgets.histogram import HistogramView
from widgets.training_plots import TrainingPlots

GRADS = {"fc1.weight": 0.8, "fc1.bias": 0.05, "fc2.weight": 0.12, "fc2.bias": 3e-8, "head.weight": 2.4e3}
UPDATES = {"fc1.weight": 1e-3, "fc1.bias": 2e-4, "fc2.weight": 5e-4, "fc2.bias": 1e-6, "head.weight": 0.5}
WEIGHTS = {"fc1.weight": 5.0, "fc1.bias": 0.3, "fc2.weight": 4.0, "fc2.bias": 0.2, "head.weight": 3.0}


@pytest.fixture
def chart(qtbot):
    c = GradientFlowChart()
    qtbot.addWidget(c)
    c.resize(520, 330)
    c.show()
    c.set_step(7, GRADS, UPDATES, WEIGHTS)
    return c


def test_gradient_flow_bars_equal_the_norms_given(chart):
    labels, values = chart.bars()
    assert labels == list(GRADS) and np.array_equal(values, list(GRADS.values()))
    bars = chart._bars.opts  # what is drawn: log10 lengths from a common base, one row per parameter
    assert np.allclose(10.0 ** np.asarray(bars["x1"]), list(GRADS.values()))
    assert list(bars["y"]) == list(range(len(GRADS)))
    assert "iteration 7" in chart.where.text()


def test_gradient_flow_per_layer_and_update_ratio(chart):
    chart.set_by_layer(True)
    labels, values = chart.bars()
    assert labels == ["fc1", "fc2", "head"]
    assert values[0] == pytest.approx(math.hypot(0.8, 0.05))
    chart.set_metric(UPDATE_RATIO)
    labels, values = chart.bars()
    assert values[1] == pytest.approx(math.hypot(5e-4, 1e-6) / math.hypot(4.0, 0.2))
    chart.set_by_layer(False)
    chart.set_metric(WEIGHT)
    assert np.array_equal(chart.bars()[1], list(WEIGHTS.values()))


def test_gradient_flow_marks_vanishing_and_exploding_norms(chart):
    brushes = [b.color().name() for b in chart._bars.opts["brushes"]]
    assert brushes[3] == "#adb5bd"  # 3e-8: vanishing, grey
    assert brushes[4] == "#e03131"  # 2.4e3: exploding, red
    assert brushes[0] == "#1c7ed6"


def test_an_optimizer_event_alone_shows_update_ratios(qtbot):
    chart = GradientFlowChart()
    qtbot.addWidget(chart)
    chart.set_step(0, None, UPDATES, WEIGHTS)
    assert chart.metric_box.currentText() == UPDATE_RATIO
    assert chart.bars()[1][0] == pytest.approx(1e-3 / 5.0)
    chart.set_metric(GRAD)
    assert chart.bars() == ([], pytest.approx(np.zeros(0)))
    assert "No gradient norms" in chart.empty.textItem.toPlainText()


def test_an_empty_gradient_flow_reads_whole_in_a_narrow_dock(qtbot):
    # its hint was cut off on both sides, over an axis of run-together numbers ("1.584892.511893.98")
    chart = shown(qtbot, GradientFlowChart(), 250, 230)
    chart.set_step(None)
    view = chart.plot.getViewBox()
    qtbot.waitUntil(lambda: chart.empty.textItem.boundingRect().width() <= view.width())
    assert chart.empty.isVisible() and chart.empty.textItem.toPlainText().startswith("Norms appear after")
    assert not chart.plot.getAxis("bottom").style["showValues"]
    chart.set_step(0, dict.fromkeys(["fc1.weight", "fc1.bias"], 0.5))
    assert chart.plot.getAxis("bottom").style["showValues"] and not chart.empty.isVisible()


def test_gradient_flow_values_stay_in_view_in_a_narrow_dock(qtbot):
    chart = GradientFlowChart()
    qtbot.addWidget(chart)
    chart.resize(250, 230)  # the dock it shares with the loss and training plots
    chart.show()
    names = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "out.weight", "out.bias"]
    chart.set_step(5, dict(zip(names, [0.0312, 0.0686, 0.0588, 0.0227, 0.0901, 0.0219])), UPDATES, WEIGHTS)
    chart.set_metric(GRAD)
    assert chart.minimumSizeHint().width() <= 250  # its controls shrink rather than push the plot aside
    qtbot.waitUntil(lambda: chart.plot.width() > 100)
    texts = [item for item in chart.plot.items() if isinstance(item, pg.TextItem) and item.isVisible()
             and item.textItem.toPlainText()[:1].isdigit()]
    assert len(texts) == len(names)
    assert all(t.sceneBoundingRect().right() <= chart.plot.width() for t in texts)



def test_gradient_flow_names_take_a_measured_share_and_the_bars_the_rest(qtbot):
    """Long names took a fixed 260 pixels of a 250-pixel dock (at 1920x1080 too), the bars squeezed to nothing and
    the values cut: the names take at most LABEL_SHARE, cut in the middle, whole in the row's tooltip."""
    chart = shown(qtbot, GradientFlowChart(), 250, 300)
    names = [f"residual_block_layers.{i}.{j}.{p}" for i in range(2) for j in (0, 1) for p in ("weight", "bias")]
    chart.set_step(5, {name: 0.01 * (k + 1) for k, name in enumerate(names)})
    qtbot.waitUntil(lambda: chart.plot.width() > 200)
    axis, view = chart.names_axis, chart.plot.getViewBox()
    qtbot.waitUntil(lambda: axis.width() <= LABEL_SHARE * chart.plot.width() + 1)
    assert view.width() >= 0.5 * chart.plot.width()  # the bars get the rest
    shown_name = chart.shown_label(names[0])
    assert "\u2026" in shown_name and shown_name.endswith(".0.0.weight")  # cut in the middle: which parameter
    texts = [t for t in chart.plot.items() if isinstance(t, pg.TextItem) and t.textItem.toPlainText()[:1].isdigit()]
    assert len(texts) == len(names)
    assert all(t.sceneBoundingRect().right() <= chart.plot.width() for t in texts)
    chart.plot.scene().sigMouseMoved.emit(view.mapViewToScene(pg.Point(view.viewRange()[0][0], 0)))
    assert chart.plot.toolTip() == f"{names[0]}: {chart.row_text(names[0])}"
    chart.resize(900, 300)  # room: the names whole
    qtbot.waitUntil(lambda: chart.shown_label(names[0]) == names[0])

def test_histogram_draws_the_summary_bins(qtbot):
    view = HistogramView("value")
    qtbot.addWidget(view)
    a = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    a[3] = np.nan
    s = summarize(a)
    view.show_summary(s)
    edges, counts = view.bars()
    assert np.array_equal(counts, s.counts) and np.allclose(edges, s.bin_edges)
    assert "1 NaN" in view._bad.textItem.toPlainText()
    view.show_summary(None)
    assert view.bars()[1].size == 0


@pytest.mark.parametrize("width", [120, 150, 260, 600])
@pytest.mark.parametrize("scale, shift", [(3000.0, -3000.0), (1.0, 0.0), (0.002, 0.0), (1e-7, 5.0)])
def test_histogram_value_labels_never_run_together(qtbot, width, scale, shift):
    view = shown(qtbot, HistogramView("gradient"), width, 200)
    s = summarize((np.random.default_rng(1).standard_normal(4000) * scale + shift).astype(np.float64))
    view.show_summary(s)
    axis = view.getAxis("bottom")
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        texts = axis.generateDrawSpecs(painter)[2]  # (rectangle, flags, label) of each label as drawn
    finally:
        painter.end()
    assert texts, "at least one labelled value"
    assert all(s.lo <= float(label.replace("\u2212", "-")) <= s.hi for _, _, label in texts)
    rects = sorted((r.left(), r.right()) for r, _, _ in texts)
    space = QFontMetrics(axis.style["tickFont"] or view.font()).horizontalAdvance(" ")
    # a space's width at least between neighbours ("0.20.40.60.8" read as one number)
    assert all(a[1] + space <= b[0] for a, b in itertools.pairwise(rects)), [label for _, _, label in texts]


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def test_training_curves_from_live_events_equal_those_from_the_tape(qtbot, tmp_path):
    model = _MLP()
    # named parameters: the optimizer's events then name them (else "group0.0", ...)
    opt = engine.optim.SGD([{"params": list(model.fc1.named_parameters(prefix="fc1"))},
                            {"params": list(model.fc2.named_parameters(prefix="fc2")), "lr": 0.01}], lr=0.1)
    sched = engine.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    records = []
    dbg = Debugger("summary", model=model, interactive=False, cache_bytes=0, on_record=records.append)
    path = str(tmp_path / "run.tape")
    x, y = engine.randn(6, 4), engine.tensor([0, 1, 2, 0, 1, 2])
    with dbg, engine.record(path, debugger=dbg):
        for _ in range(4):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()

    def steps(recs):
        return [(r.iteration, r.event) for r in recs if isinstance(r, EventRecord)
                and isinstance(r.event, OptimizerEvent)]

    live, replay = TrainingPlots(), TrainingPlots()
    qtbot.addWidget(live)
    qtbot.addWidget(replay)
    live.add_steps(steps(records))
    with engine.tape.open(path) as tape:
        replay.add_steps(steps(tape.records()))
    assert np.allclose(live.series("lr")[1], [0.1, 0.1, 0.05, 0.05])
    assert np.allclose(live.series("lr[1]")[1], [0.01, 0.01, 0.005, 0.005])
    first = steps(records)[0][1]
    ratio = math.hypot(*(first.update_norms[k] for k in ("fc1.weight", "fc1.bias"))) / \
        math.hypot(*(first.weight_norms[k] for k in ("fc1.weight", "fc1.bias")))
    assert live.series("ratio:fc1")[1][0] == pytest.approx(ratio)
    for name in ("lr", "lr[1]", "ratio:fc1", "ratio:fc2"):
        assert np.array_equal(live.series(name)[0], replay.series(name)[0])
        assert np.allclose(live.series(name)[1], replay.series(name)[1])


def test_a_constant_learning_rate_gives_its_row_to_the_other_plots(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(260, 240)  # the small dock it shares with the loss and gradient-flow views
    plots.show()
    constant = [(i, OptimizerEvent(i, "SGD", (0.1,), {"fc.weight": 0.01}, {"fc.weight": 1.0})) for i in range(3)]
    plots.add_steps(constant)
    qtbot.waitUntil(lambda: plots.ratio_plot.height() > 0)
    assert not plots.lr_plot.isVisible()
    assert plots.series("lr")[1].tolist() == [0.1] * 3  # still there to read
    plots.add_step(3, OptimizerEvent(3, "SGD", (0.05,), {"fc.weight": 0.01}, {"fc.weight": 1.0}))  # scheduled
    assert plots.lr_plot.isVisible()


def test_loss_axis_turns_logarithmic_when_it_spans_decades(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.set_loss([0, 1, 2], [2.3, 1.1, 0.9])
    assert not plots.loss_plot.getAxis("left").logMode
    plots.set_loss([0, 1, 2, 3], [2.3, 0.2, float("nan"), 0.001])
    assert plots.loss_plot.getAxis("left").logMode
    assert np.isnan(plots.series("loss")[1][2])
    plots.set_cursor(2)
    shown = [line for line, plot in zip(plots.cursors, (plots.loss_plot, plots.lr_plot, plots.ratio_plot))
             if plot.isVisible()]
    assert len(shown) >= 2 and all(line.isVisible() and line.value() == 2 for line in shown)
    plots.clear()
    with pytest.raises(KeyError):
        plots.series("lr")


def test_a_nan_or_inf_loss_is_a_red_cross_not_a_blank_plot(qtbot):
    from widgets.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_curve([0, 1, 2], [2.3, 1.1, float("nan")])
    crosses = plot.nonfinite.getData()
    assert crosses[0].tolist() == [2] and crosses[1].tolist() == [2.3]  # on the top edge of the line
    assert not plot.empty.isVisible()
    # named: on the top edge of a loss that blew up first, unlabelled crosses read as losses of 1e22
    assert plot.nonfinite_label.isVisible() and plot.nonfinite_label.toPlainText() == "NaN/Inf loss"
    assert (plot.nonfinite_label.pos().x(), plot.nonfinite_label.pos().y()) == (2, 2.3)
    plot.set_curve(range(5), [1.0, 1e6, 1e22, float("nan"), float("nan")])  # a log axis: placed in its units
    assert plot.nonfinite_label.toPlainText() == "NaN/Inf loss (2)" and plot.nonfinite_label.pos().y() == 22
    plot.set_curve([0, 1, 2], [float("inf"), float("nan"), float("-inf")])  # log(0) from the first step
    assert plot.nonfinite.getData()[0].tolist() == [0, 1, 2]
    assert plot.empty.isVisible() and plot.empty.toPlainText() == "every loss is NaN/Inf"
    assert not plot.nonfinite_label.isVisible()  # the plot's own text says it


def test_the_name_of_a_nan_loss_at_the_last_iteration_stays_inside_the_plot(qtbot):
    # bp16.png: the name of the last iteration's cross ran off the right edge and read "Na"
    from widgets.loss_plot import LossPlot

    plot = shown(qtbot, LossPlot(), 320, 220)

    def inside() -> bool:
        box, label = plot.plotItem.vb.sceneBoundingRect(), plot.nonfinite_label.sceneBoundingRect()
        return box.left() <= label.left() and label.right() <= box.right() + 1

    def ranged() -> bool:  # the view shows every iteration (it takes its range after the data)
        (x0, x1), _ = plot.plotItem.vb.viewRange()
        return x0 <= 0 and x1 >= 21

    plot.set_curve(range(22), [*np.linspace(2.0, 0.1, 20), 1.2e7, float("nan")])
    qtbot.waitUntil(ranged)
    assert inside()
    plot.set_curve(range(22), [float("nan"), *np.linspace(2.0, 0.1, 21)])  # the first iteration's: to its right
    qtbot.waitUntil(ranged)
    assert inside()


def test_a_plot_that_will_get_no_loss_says_why_in_lines_that_fit(qtbot):
    from widgets.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_no_loss_text("no loss: a structure tape holds no values or summaries.\n"
                          "Record with --capture summary for them.")
    lines = plot.empty.toPlainText().split("\n")
    assert " ".join(lines).startswith("no loss: a structure tape holds no values or summaries.")
    assert all(len(line) <= 28 for line in lines) and any("--capture" in line for line in lines)
    plot.set_curve([0, 1], [1.0, 0.5])
    assert not plot.empty.isVisible()
    plot.set_curve([], [])  # a new session's empty plot keeps saying why
    assert plot.empty.isVisible() and plot.empty.toPlainText().startswith("no loss: a structure")


def test_an_emptied_loss_plot_shows_its_text_not_the_axes_of_the_run_before(qtbot):
    from widgets.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(300, 200)
    plot.show()
    plot.set_curve([0, 1, 2], [0.14, 0.11, 0.107])  # a run before, far from (0.5, 0.5)
    qtbot.waitUntil(lambda: plot.viewRange()[1][0] > 0.1)
    plot.set_curve([], [])  # a new session
    (x0, x1), (y0, y1) = plot.viewRange()
    assert x0 <= 0.5 <= x1 and y0 <= 0.5 <= y1  # where "no loss yet" is drawn
    assert plot.empty.isVisible() and plot.empty.toPlainText() == "no loss yet"


def test_the_loss_axis_counts_whole_iterations(qtbot):
    from widgets.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(300, 200)
    plot.show()
    plot.set_curve([0], [2.3])  # one point: its view spans less than an iteration
    axis = plot.getAxis("bottom")
    qtbot.waitUntil(lambda: abs(sum(plot.viewRange()[0])) < 1e-9)  # centred on the point
    ticks = [v for _, values in axis.tickValues(*plot.viewRange()[0], 240) for v in values]
    assert ticks == [0.0] and axis.autoSIPrefixScale == 1.0  # no "iteration (x0.001)" from -400 to 400
    plot.set_curve(list(range(500)), [1.0] * 500)
    ticks = [v for _, values in axis.tickValues(0, 499, 240) for v in values]
    assert ticks and all(v == int(v) for v in ticks)


def test_the_layers_legend_fits_the_docks_width_in_two_rows_of_short_names(qtbot):
    # twelve full names in four fixed columns overlapped in the small dock and squeezed the plots
    names = ["tokens.weight"] + [f"blocks.layers.{i}.{m}.weight" for i in range(3) for m in ("self_attn", "linear1")]
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.show()
    for width, columns in ((260, 2), (520, 4)):
        plots.resize(width, 240)
        qtbot.waitUntil(lambda w=width: plots.width() == w)
        plots.add_step(0, OptimizerEvent(0, "AdamW", (1e-3,), dict.fromkeys(names, 1e-3), dict.fromkeys(names, 1.0)))
        labels = plots.layer_labels()
        assert len(plots.layer_legend.lines) <= 2 and len(labels) == min(2 * columns, 7)
        assert labels[:3] == ["tokens", "0.self_attn", "0.linear1"]


def test_in_the_loss_docks_size_the_controls_read_whole_and_every_bar_shows(qtbot):
    # in a 250x207 dock the combos read "gradient no…" and "per parame", and the chart, made as tall as its
    # wrapped legend asked, scrolled with its controls and showed 2½ bars 50 pixels apart
    area = QScrollArea()  # as the window docks it: a dock narrower than the chart scrolls it
    area.setWidgetResizable(True)
    chart = GradientFlowChart()
    area.setWidget(chart)
    shown(qtbot, area, 250, 207)
    names = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    chart.set_step(5, dict(zip(names, [0.04, 0.06, 0.08, 0.02, 0.3, 0.1])))
    qtbot.wait(50)
    for box in (chart.metric_box, chart.grouping_box):
        assert box.width() >= box.sizeHint().width(), box.currentText()
    assert chart.height() <= area.viewport().height()  # the chart fits: nothing scrolls it away
    bars = chart.plot.mapFromScene(chart._bars.mapRectToScene(chart._bars.boundingRect())).boundingRect()
    viewport = chart.plot.parentWidget()  # the bars' own scroll area, under the controls
    shown_rows = QRect(chart.plot.mapTo(viewport, bars.topLeft()), bars.size())
    assert viewport.rect().contains(shown_rows)  # all six bars in view


def test_an_empty_loss_plot_shows_no_tick_values_behind_its_note(qtbot):
    # "no loss yet" sat over a loss axis reading 0.2 to 0.8 and iterations 0 to 1
    from widgets.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)

    def values(axis: str) -> bool:
        return plot.getAxis(axis).style["showValues"]

    assert plot.empty.isVisible() and not values("left") and not values("bottom")
    plot.set_curve([0], [2.3])
    assert values("left") and values("bottom")
    plot.set_curve([0, 1], [float("nan"), float("nan")])  # the iterations of the crosses read; no loss to read
    assert not values("left") and values("bottom")
    plot.set_curve([], [])
    assert not values("left") and not values("bottom")
