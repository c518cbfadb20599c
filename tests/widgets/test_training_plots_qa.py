"""The training panels in the sizes of the default window (1280x720): an alert's advice is read without a
tooltip, the gradient norm of each layer is a curve over the iterations, and the loss plot marks chance."""

import math

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from engine.events import OptimizerEvent
from tests.shots import shoot, shown
from widgets.alerts_panel import AlertsPanel
from widgets.gradient_flow import per_layer
from widgets.loss_plot import LossPlot
from widgets.training_plots import TrainingPlots

LR_ALERT = ("the updates of layer '4' are 0.97x its weights (and in '0', '2') for 3 steps, iteration 2 (healthy "
            "training is near 0.001x): the learning rate (50) is far too high; try one 10 to 100 times smaller")
VANISHING = ("gradient norm of '0.weight' is 0, below 1e-07, in 2 layers ('0', '2'), iteration 3: no gradient "
             "reaches it; after the oversized updates before, its activations saturate. Fix the learning rate first")
DOCK = (345, 130)  # the alerts list in a 1280x720 window, under its tab
PLOTS_DOCK = (215, 150)  # the training plots' dock there


@pytest.mark.parametrize("size", [DOCK, (560, 260)], ids=["1280x720", "1920x1080"])
def test_the_current_alert_is_shown_whole_under_the_list_its_finding_first(qtbot, size):
    # the message column was ~80 px wide: "the updates of laye…", the advice only in a tooltip; then the detail
    # started with the advice ("the learning rate (50) is far too high") and put what was found second
    panel = shown(qtbot, AlertsPanel(), *size)
    panel.add_row(2, "large_update", "4", LR_ALERT, "4")
    panel.add_row(3, "vanishing_grad", "0.weight", VANISHING, "0.weight")
    # the first alert (most often the cause of the rest) is shown without a click, what was found first
    qtbot.waitUntil(lambda: panel.detail.isVisible())
    text = panel.detail_text()
    assert text.startswith("the updates of layer '4' are 0.97x its weights (and in '0', '2') for 3 steps, "
                           "iteration 2 (healthy training is near 0.001x)\n")
    assert text.rstrip().endswith("the learning rate (50) is far too high; try one 10 to 100 times smaller")
    detail = panel.detail.geometry()
    assert panel.rect().contains(detail) and detail.height() >= 2 * panel.detail.fontMetrics().lineSpacing()
    assert panel.detail.verticalScrollBar().value() == 0  # its first line in view
    # the list stays scannable: its header and both rows (kind, iteration, where) above the detail area
    rows = panel.list
    header = rows.header()
    assert header.isVisible() and header.height() > 0
    for i in range(2):
        row = rows.visualItemRect(panel.topLevelItem(i))  # (empty for a row out of view)
        assert not row.isEmpty() and row.bottom() <= rows.viewport().height(), (i, row, rows.viewport().height())
    assert rows.mapTo(panel, rows.viewport().geometry().bottomLeft()).y() < detail.top()
    rows.setCurrentItem(panel.topLevelItem(1))
    assert panel.detail_text().startswith("gradient norm of '0.weight' is 0, below 1e-07, in 2 layers ('0', '2'), "
                                          "iteration 3\n")
    shoot(panel, f"alerts_detail_{size[0]}.png")
    panel.clear()
    assert panel.detail_text() == "" and not panel.detail.isVisible()
    assert panel.empty_text().startswith("No alerts.")


def test_a_message_without_advice_is_shown_as_it_is(qtbot):
    panel = shown(qtbot, AlertsPanel(), *DOCK)
    message = "non-finite values first appear in the output of 'log' (log:0), iteration 5"
    panel.add_row(5, "nonfinite_forward", "log", message, "log:0")
    qtbot.waitUntil(lambda: panel.detail_text() == message)


def _steps(norms_of, steps: int, layers: list[str]):
    """(iteration, OptimizerEvent) with the gradient norm of each layer's weight and bias given by norms_of."""
    out = []
    for it in range(steps):
        grads = {}
        for i, layer in enumerate(layers):
            g = norms_of(it, i)
            grads[f"{layer}.weight"], grads[f"{layer}.bias"] = g * 0.8, g * 0.6  # layer norm: g
        weights = {name: 1.0 for name in grads}
        updates = {name: 1e-3 for name in grads}
        out.append((it, OptimizerEvent(it, "SGD", (0.1,), updates, weights, grads)))
    return out


def test_gradient_norms_of_a_small_model_are_a_curve_per_layer_on_a_log_axis(qtbot):
    plots = shown(qtbot, TrainingPlots(), 420, 380)
    # no zero_grad: each step's gradient adds to the last, the norm grows linearly
    steps = _steps(lambda it, i: (it + 1) * 10.0 ** -i, 30, ["0", "2", "4"])
    plots.add_steps(steps)
    assert plots.grad_layers() == ["0", "2", "4"]
    for i, layer in enumerate(["0", "2", "4"]):
        x, y = plots.series(f"grad:{layer}")
        assert x.tolist() == list(range(30))
        expected = [per_layer(ev.grad_norms)[layer] for _, ev in steps]
        np.testing.assert_allclose(y, expected, rtol=1e-12)
        np.testing.assert_allclose(y, (np.arange(30) + 1) * 10.0 ** -i, rtol=1e-12)
    assert plots.grad_plot.isVisible() and plots.grad_plot.getAxis("left").logMode
    assert plots.grad_plot.getAxis("left").labelText == "grad norm"
    # a layer has one colour in both plots, so the one legend names both
    for layer in ("0", "2", "4"):
        assert plots.colour(f"grad:{layer}") == plots.colour(f"ratio:{layer}")
    assert len({plots.colour(f"grad:{layer}") for layer in ("0", "2", "4")}) == 3
    assert plots.grad_plot.getAxis("bottom").labelText == "iteration"  # the bottom plot carries the axis
    shoot(plots, "training_grad_norms.png")


def test_a_deep_model_shows_the_layers_of_the_largest_and_smallest_gradient_norm(qtbot):
    plots = shown(qtbot, TrainingPlots(), 420, 380)
    layers = [str(i) for i in range(0, 18, 2)]
    # vanishing towards the input: layer 0 smallest, the last layer largest
    plots.add_steps(_steps(lambda it, i: 10.0 ** (i - 8), 12, layers))
    assert plots.grad_layers() == ["0", "16"]
    assert plots.layer_labels()[:2] == ["0", "16"]  # both named, whatever else the legend has room for
    # a NaN norm is the one to see
    plots.add_steps([(12, _steps(lambda it, i: math.nan if i == 4 else 1.0, 1, layers)[0][1])])
    assert "8" in plots.grad_layers()


def test_an_optimizer_event_without_gradient_norms_gives_no_empty_gradient_plot(qtbot):
    plots = shown(qtbot, TrainingPlots(), 420, 380)
    plots.add_steps([(it, OptimizerEvent(it, "SGD", (0.1,), {"w": 1e-3}, {"w": 1.0})) for it in range(5)])
    assert plots.grad_layers() == [] and not plots.grad_plot.isVisible()
    assert plots.ratio_plot.getAxis("bottom").labelText == "iteration"


def test_in_the_default_dock_the_loss_plot_stays_readable_and_the_rest_scrolls(qtbot):
    # four plots in a 150 px dock were each a flat line ~20 px high
    plots = shown(qtbot, TrainingPlots(), *PLOTS_DOCK)
    plots.add_steps(_steps(lambda it, i: 1.0 + it, 20, ["0", "2"]))
    plots.set_loss(range(20), np.linspace(0.7, 0.69, 20))
    qtbot.waitUntil(lambda: plots.loss_plot.vb.height() >= 60)
    assert plots.grad_plot.vb.height() >= 40 and plots.ratio_plot.vb.height() >= 40
    assert plots.scroll.verticalScrollBar().maximum() > 0
    shoot(plots, "training_small_dock.png")


@pytest.mark.parametrize("widget", [LossPlot, TrainingPlots])
def test_chance_level_is_a_labelled_line_on_a_linear_and_a_log_loss_axis(qtbot, widget):
    view = shown(qtbot, widget(), 420, 300)
    line = view.chance
    assert not line.isVisible() and line.text() == ""
    flat = np.full(40, math.log(2)) + np.linspace(0.01, 0, 40)  # a model that learns nothing
    (view.set_curve if widget is LossPlot else view.set_loss)(range(40), flat)
    view.set_chance(math.log(2), 2)
    assert line.isVisible() and line.text() == "chance (2 classes)"
    assert line.value() == pytest.approx(0.693, abs=1e-3)
    # a loss that spans decades turns the axis logarithmic: the line stays at ln 2, now as log10(ln 2)
    falling = np.geomspace(2.3, 0.001, 40)
    (view.set_curve if widget is LossPlot else view.set_loss)(range(40), falling)
    assert line.value() == pytest.approx(math.log10(math.log(2)))
    view.set_chance(math.log(10), 10)
    assert line.text() == "chance (10 classes)" and line.value() == pytest.approx(math.log10(math.log(10)))
    view.set_chance(None)
    assert not line.isVisible() and line.text() == ""


def test_a_second_optimizers_long_layer_names_fit_the_dock(qtbot):
    # a GAN tape's "Adam:Sequential_2.0" overran a 256 px dock: the second column was cut at its edge
    plots = shown(qtbot, TrainingPlots(), 256, 300)
    layers = ["0", "2", "Adam:Sequential_2.0", "Adam:Sequential_2.2"]
    plots.add_steps(_steps(lambda it, i: 1.0 + it * (i + 1), 6, layers))
    qtbot.wait(50)
    labels = plots.layer_labels()
    assert len(labels) == 4 and not any(label.startswith("Adam:") for label in labels)
    title = plots.ratio_plot.titleLabel.item
    assert title.mapRectToScene(title.boundingRect()).right() <= plots.width()


@pytest.mark.parametrize("start", ["at chance", "below chance"])
def test_the_chance_label_stays_inside_the_plot_where_the_loss_starts(qtbot, start):
    # a 256-way model starts at ln 256, the top of the plot: the label above the line was cut at the plot's edge
    view = shown(qtbot, LossPlot(), 300, 240)
    top = math.log(256) - (0 if start == "at chance" else 1.5)
    view.set_curve(range(40), np.linspace(top, 3.0, 40))
    view.set_chance(math.log(256), 256)
    qtbot.wait(50)
    vb = view.getPlotItem().vb
    box = vb.mapRectToScene(vb.boundingRect())
    label = view.chance.label.mapRectToScene(view.chance.label.boundingRect())
    assert box.top() - 1 <= label.top() and label.bottom() <= box.bottom() + 1


def _learning(n: int = 400) -> np.ndarray:
    """A two-class model's loss that starts at chance and ends well under it, noisily."""
    its = np.arange(n)
    return math.log(2) - 0.5 * (1 - np.exp(-its / 150)) + np.random.default_rng(0).normal(0, 0.05, n)


@pytest.mark.parametrize("widget", [LossPlot, TrainingPlots])
def test_the_chance_label_sits_clear_of_the_loss_where_it_ends(qtbot, widget):
    # drawn under the line, "chance (2 classes)" lay on the curve of a model that had learnt
    view = shown(qtbot, widget(), 300, 230)
    loss = _learning()
    (view.set_curve if widget is LossPlot else view.set_loss)(range(len(loss)), loss)
    view.set_chance(math.log(2), 2)
    qtbot.wait(50)
    plot = view.getPlotItem() if widget is LossPlot else view.loss_plot
    label = view.chance.label.mapRectToScene(view.chance.label.boundingRect())
    line_y = plot.vb.mapViewToScene(QPointF(0, math.log(2))).y()
    assert label.bottom() <= line_y + 1  # over the line: the loss ends under it
    box = plot.vb.mapRectToScene(plot.vb.boundingRect())
    assert box.top() - 1 <= label.top()  # and not cut at the plot's top
    tail = plot.vb.mapViewToScene(QPointF(len(loss) - 1, float(loss[-40:].max()))).y()
    assert label.bottom() < tail  # above the highest loss of its last stretch


def test_the_layers_are_named_over_their_plot_and_every_plot_name_reads_whole(qtbot):
    plots = shown(qtbot, TrainingPlots(), 300, 230)
    plots.add_steps(_steps(lambda it, i: 1.0 + it, 30, ["0", "2", "4"]))
    plots.set_loss(range(30), _learning(30))
    qtbot.wait(50)
    assert plots.layer_labels() == ["0", "2", "4"]
    # in the title row of the update/weight plot, not in a row of its own between two plots
    title = plots.ratio_plot.titleLabel
    assert title.isVisible() and "0" in title.item.toPlainText()
    box = plots.ratio_plot.vb.mapRectToScene(plots.ratio_plot.vb.boundingRect())
    legend = title.mapRectToScene(title.boundingRect())
    assert 0 <= box.top() - legend.bottom() <= 8
    for plot in (plots.loss_plot, plots.ratio_plot, plots.grad_plot):  # "update/weight" read "ght"
        name = plot.getAxis("left").label
        assert name.boundingRect().width() <= plot.getAxis("left").height(), name.toPlainText()


def test_the_first_iterations_loss_is_a_dot_until_there_is_a_line(qtbot):
    # at iteration 1 the Training tab's loss chart was empty while the Loss tab showed the point
    plots = shown(qtbot, TrainingPlots(), 300, 230)
    plots.set_losses({"loss": ([0], [2.3])})
    dots = plots._curves["dots:loss"][1]
    assert _dots(dots) == [(0, 2.3)]
    plots.set_losses({"loss": ([0, 1], [2.3, 2.1])})
    assert _dots(dots) == []  # a line from two points on


def _dots(item) -> list[tuple[float, float]]:
    """The points a dots-only item draws."""
    return [] if item.xData is None else sorted(zip(item.xData.tolist(), item.yData.tolist()))


def test_a_model_of_many_layers_draws_the_extreme_update_ratios_and_keeps_each_curve_whole(qtbot):
    # a 150-block ResNet drew 600 ratio lines, made again from every step at every step: most of the GUI thread
    plots = shown(qtbot, TrainingPlots(), 420, 380)
    layers = [f"blocks.{i}.conv" for i in range(40)]

    def steps(first, last, bad=None):
        out = []
        for it in range(first, last):
            weights = {f"{layer}.weight": 1.0 for layer in layers}
            updates = {f"{layer}.weight": (math.nan if i == bad else 1e-4 * (i + 1)) for i, layer in enumerate(layers)}
            out.append((it, OptimizerEvent(it, "SGD", (0.1,), updates, weights, {})))
        return out

    for first in range(0, 30, 3):  # as a live run delivers them, a few steps at a time
        plots.add_steps(steps(first, first + 3))
    drawn = sorted(int(name.split(".")[1]) for name in plots._curves if name.startswith("ratio:"))
    assert drawn == [0, 1, 2, 3, 4, 5, 34, 35, 36, 37, 38, 39]  # the six smallest and the six largest
    its, ratio = plots.series("ratio:blocks.39.conv")
    assert its.tolist() == list(range(30)) and np.allclose(ratio, 4e-3)
    plots.add_steps(steps(30, 31, bad=20))  # a NaN is the one to see
    assert "ratio:blocks.20.conv" in plots._curves and "ratio:blocks.34.conv" not in plots._curves
    assert plots.series("ratio:blocks.20.conv")[0].tolist() == list(range(31))  # drawn whole, not from its NaN on
    plots.add_steps(steps(10, 11))  # a step seen again (a rewind) replaces its value; the curve stays in order
    its, ratio = plots.series("ratio:blocks.39.conv")
    assert its.tolist() == list(range(31)) and np.allclose(ratio, 4e-3)


def test_a_model_of_more_layers_than_are_drawn_says_so_over_the_ratio_plot(qtbot):
    # a 150-block ResNet's twelve most extreme update/weight ratios were drawn as if they were the whole model
    plots = shown(qtbot, TrainingPlots(), 380, 520)
    layers = [f"layer{i // 50 + 1}.{i % 50}.conv{1 + i % 2}" for i in range(150)]
    weights = {f"{layer}.weight": 1.0 for layer in layers}
    updates = {f"{layer}.weight": 1e-4 * (i + 1) for i, layer in enumerate(layers)}
    plots.add_steps([(it, OptimizerEvent(it, "SGD", (0.1,), updates, weights, {})) for it in range(3)])
    drawn = [name for name in plots._curves if name.startswith("ratio:")]
    title = plots.ratio_plot.titleLabel
    assert len(drawn) == 12 and title.isVisible()
    assert "12 of 150 layers: the most extreme" in title.item.toPlainText()
    assert "6 largest and the 6 smallest" in title.toolTip()
    qtbot.waitUntil(lambda: title.boundingRect().height() > 0)  # laid out
    legend, box = title.mapRectToScene(title.boundingRect()), plots.ratio_plot.vb.sceneBoundingRect()
    assert plots.view.sceneRect().contains(legend) and 0 <= box.top() - legend.bottom() <= 8  # over its plot
    few = shown(qtbot, TrainingPlots(), 380, 520)
    few.add_steps(_steps(lambda it, i: 1.0, 3, ["0", "2", "4"]))
    assert "of 3 layers" not in few.ratio_plot.titleLabel.item.toPlainText()  # all of them drawn: nothing to say


def test_a_loss_between_two_nan_losses_is_a_dot_on_both_loss_charts(qtbot):
    # a finite loss at iteration 6 between NaN at 5 and 7 was drawn on neither chart: a line of one point is nothing
    from widgets.loss_plot import LossPlot

    x, y = [0, 1, 2, 3, 4, 5, 6, 7, 8], [2.3, 2.1, 1.9, 1.8, 1.7, float("nan"), 0.29, float("nan"), 1.5]
    plots = shown(qtbot, TrainingPlots(), 300, 230)
    plots.set_losses({"loss": (x, y)})
    dots = plots._curves["dots:loss"][1]
    assert _dots(dots) == [(6, 0.29), (8, 1.5)]  # the line draws the rest
    loss = shown(qtbot, LossPlot(), 300, 230)
    loss.set_curve(x, y)
    assert _dots(loss.lines[0][1]) == [(6, 0.29), (8, 1.5)]  # (8: the last, marked as ever)
    plots.set_losses({"loss": ([0, 1, 2], [2.3, 2.1, 2.0])})
    assert _dots(dots) == []  # all joined: no dots


def test_a_loss_left_alone_by_a_damaged_tapes_gap_is_a_dot(qtbot):
    # the gap comes after the losses (a tape's damage is found as it is read): the line across it goes, and the
    # loss before it, joined to nothing now, becomes a dot
    plots = shown(qtbot, TrainingPlots(), 300, 230)
    plots.set_losses({"loss": ([0, 3, 4], [1.0, 0.9, 0.8])})
    dots = plots._curves["dots:loss"][1]
    assert _dots(dots) == []
    plots.set_gaps([(1, 2, "lost")])
    assert _dots(dots) == [(0, 1.0)]
