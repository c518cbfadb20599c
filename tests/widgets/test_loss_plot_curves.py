"""The loss plots with a curve per loss: a GAN's errD and errG each in its own colour, named by a legend above
the plot that never covers a line, and a chance line per loss that has one, named by it and in its colour; one
loss looks as it always did."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtGui import QColor

from widgets.loss_plot import LossPlot
from widgets.theme import CURVES
from widgets.training_plots import TrainingPlots

ITS = np.arange(30)
GAN = {"errD": (ITS, 1.4 - 0.01 * ITS), "errG": (ITS, 0.7 + 0.02 * ITS)}


def shown(qtbot, widget, width: int = 420, height: int = 260):
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def pixels_of(widget, colour: str, tolerance: int = 40) -> int:
    """How many pixels of the widget are near `colour`."""
    image = widget.grab().toImage()
    want = QColor(colour)
    n = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            c = image.pixelColor(x, y)
            if abs(c.red() - want.red()) + abs(c.green() - want.green()) + abs(c.blue() - want.blue()) < tolerance:
                n += 1
    return n


def test_one_curve_has_no_legend_and_the_first_theme_colour(qtbot):
    plot = shown(qtbot, LossPlot())
    plot.set_curves({"loss": (ITS, 2.0 - 0.05 * ITS)})
    assert plot.labels() == [] and not plot.plotItem.titleLabel.isVisible()
    assert plot.colour("loss") == CURVES[0] == "#1c7ed6"
    assert plot.curve.getData()[0].tolist() == ITS.tolist()  # the old single-curve item holds it
    plot.set_curve([0, 1], [1.0, 0.5])  # the single-curve call still works
    assert plot.series("loss")[1].tolist() == [1.0, 0.5] and plot.labels() == []


def test_two_curves_get_their_own_colours_and_a_legend_above_the_lines(qtbot):
    plot = shown(qtbot, LossPlot())
    plot.set_curves(GAN)
    assert plot.labels() == ["errD", "errG"]
    colours = [plot.colour("errD"), plot.colour("errG")]
    assert colours == list(CURVES[:2]) and colours[0] != colours[1]
    title, view = plot.plotItem.titleLabel, plot.plotItem.vb
    qtbot.waitUntil(lambda: title.isVisible() and view.sceneBoundingRect().top()
                    >= title.sceneBoundingRect().bottom() - 1)  # in its own row: it never covers a line
    assert "errD" in title.item.toPlainText() and "errG" in title.item.toPlainText()
    assert pixels_of(plot, CURVES[1]) > 20  # errG is drawn, in its colour
    np.testing.assert_allclose(plot.series("errG")[1], GAN["errG"][1])
    with pytest.raises(KeyError, match="errD, errG"):
        plot.series("loss")
    plot.set_curves({"loss": (ITS, 1.0 / (1 + ITS))})  # a new run with one loss: the legend goes
    assert plot.labels() == [] and not title.isVisible()
    gone = plot.lines[1][0].getData()[0]
    assert gone is None or len(gone) == 0  # errG's line is drawn no more


def test_a_narrow_plot_wraps_its_legend_into_lines_that_fit(qtbot):
    plot = shown(qtbot, LossPlot(), 200, 260)
    names = ["loss_discriminator_real", "loss_discriminator_fake", "loss_generator"]
    plot.set_curves({name: (ITS, 1.0 + i + 0 * ITS) for i, name in enumerate(names)})
    qtbot.waitUntil(lambda: len(plot.legend.lines) >= 2)
    assert plot.labels() == names
    title = plot.plotItem.titleLabel
    assert title.item.boundingRect().width() <= plot.plotItem.vb.width() + 60


def test_several_curves_share_the_log_rule_the_crosses_the_cursor_and_chance(qtbot):
    plot = shown(qtbot, LossPlot())
    plot.set_curves({"errD": ([0, 1, 2], [1.0, 0.9, 0.8]), "errG": ([0, 1, 2], [0.7, 0.7, 0.7])})
    assert not plot.log
    plot.set_curves({"errD": ([0, 1, 2], [1.0, 0.9, math.nan]), "errG": ([0, 1, 2], [5.0, 0.01, 0.001])})
    assert plot.log  # errG spans decades: the axis of both turns logarithmic
    crosses = plot.nonfinite.getData()
    assert crosses[0].tolist() == [2] and crosses[1].tolist() == [pytest.approx(math.log10(5.0))]  # on the top edge
    plot.set_cursor(1)
    assert plot.cursor.isVisible() and plot.cursor.value() == 1
    plot.set_chance(math.log(2), 2)
    assert plot.chance.text() == "chance (2 classes)"
    plot.set_curves({"errD": ([0], [math.inf]), "errG": ([0], [math.nan])})
    assert plot.empty.isVisible() and plot.empty.toPlainText() == "every loss is NaN/Inf"
    plot.set_curves({})
    assert plot.empty.toPlainText() == "no loss yet" and plot.labels() == []


def test_training_plots_draw_a_curve_per_loss_with_a_legend_only_for_two(qtbot):
    plots = shown(qtbot, TrainingPlots(), 420, 380)
    plots.set_loss(ITS, 2.0 - 0.05 * ITS)
    assert plots.loss_labels() == [] and plots.colour("loss") == CURVES[0]
    plots.set_losses(GAN)
    assert plots.loss_labels() == ["errD", "errG"]
    assert plots.colour("loss:errG") == CURVES[1] and plots.colour("loss:errD") == plots.colour("loss") == CURVES[0]
    np.testing.assert_allclose(plots.series("loss:errG")[1], GAN["errG"][1])
    np.testing.assert_allclose(plots.series("loss")[1], GAN["errD"][1])  # "loss": the first curve
    title, view = plots.loss_plot.titleLabel, plots.loss_plot.vb
    qtbot.waitUntil(lambda: view.sceneBoundingRect().top() >= title.sceneBoundingRect().bottom() - 1)
    plots.set_losses({"errD": GAN["errD"], "errG": (ITS, np.geomspace(5, 0.001, 30))})
    assert plots.loss_plot.getAxis("left").logMode
    plots.clear()
    assert plots.loss_labels() == []
    with pytest.raises(KeyError):
        plots.series("loss:errG")


EPOCHS = np.arange(0, 30, 10)  # a validation loss once an epoch of 10 iterations


def test_an_evaluation_curve_is_dashed_through_its_points_and_named_beside_one_training_loss(qtbot):
    plot = shown(qtbot, LossPlot())
    plot.set_curves({"loss": (ITS, 2.0 - 0.05 * ITS)}, {"val_loss": (EPOCHS, [1.9, 1.6, 1.7])})
    assert plot.labels() == ["loss", "val_loss (eval)"]  # one training loss, yet a legend: which line is which
    assert plot.dashed("val_loss (eval)") and not plot.dashed("loss")
    assert plot.colour("loss") == CURVES[0] and plot.colour("val_loss (eval)") == CURVES[1]
    assert plot.series("val_loss (eval)")[0].tolist() == EPOCHS.tolist()
    assert "\u254d\u254d" in plot.plotItem.titleLabel.item.toPlainText()  # the legend's mark is dashed too
    assert pixels_of(plot, CURVES[1]) > 20  # drawn, with its three points
    assert plot.points == len(ITS)
    plot.set_curves({"loss": (ITS, 2.0 - 0.05 * ITS)})  # a run without evaluation: as before
    gone = plot.eval_lines[0].getData()[0]
    assert plot.labels() == [] and (gone is None or len(gone) == 0)  # its line is drawn no more
    plot.set_curves({}, {"val_loss": (EPOCHS, [1.9, math.nan, 1.7])})  # evaluation alone: named, NaN crossed
    assert plot.labels() == ["val_loss (eval)"] and plot.colour("val_loss (eval)") == CURVES[0]
    assert plot.nonfinite.getData()[0].tolist() == [10] and plot.points == 3


def test_training_plots_draw_an_evaluation_curve_dashed_after_the_training_losses(qtbot):
    plots = shown(qtbot, TrainingPlots(), 420, 380)
    plots.set_losses(GAN, {"val_loss": (EPOCHS, [1.2, 1.1, 1.3])})
    assert plots.loss_labels() == ["errD", "errG", "val_loss (eval)"]
    assert plots.colour("eval:val_loss") == CURVES[2]
    assert plots.series("eval:val_loss")[0].tolist() == EPOCHS.tolist()
    plots.set_losses({"loss": GAN["errD"]})
    assert plots.loss_labels() == []
    with pytest.raises(KeyError):
        plots.series("eval:val_loss")


@pytest.mark.parametrize("widget", [LossPlot, TrainingPlots])
def test_a_chance_line_per_loss_in_its_colour_equal_levels_once_and_one_loss_as_before(qtbot, widget):
    view = shown(qtbot, widget(), 420, 300)
    draw = view.set_curves if widget is LossPlot else view.set_losses
    tasks = {"loss_cls": (ITS, 2.3 - 0.03 * ITS), "loss_bin": (ITS, 0.7 - 0.005 * ITS), "recon": (ITS, 0 * ITS + 0.3)}
    draw(tasks)
    view.set_chances({"loss_cls": (math.log(10), 10), "loss_bin": (math.log(2), 2)})  # recon: a regression, none

    def drawn() -> dict[str, tuple[float, str]]:
        return {line.text(): (line.value(), line.pen.color().name()) for line in view.chances.lines
                if line.isVisible()}

    assert drawn() == {"chance: loss_cls (10 classes)": (pytest.approx(math.log(10)), CURVES[0]),
                       "chance: loss_bin (2 classes)": (pytest.approx(math.log(2)), CURVES[1])}
    # two 10-class heads and a regression: one line for both, named by both, in no one curve's colour
    draw({"head_a": tasks["loss_cls"], "head_b": tasks["loss_cls"], "recon": tasks["recon"]})
    view.set_chances({"head_a": (math.log(10), 10), "head_b": (math.log(10), 10)})
    grey = view.chance.pen.color().name()
    assert grey not in CURVES[:3]
    assert drawn() == {"chance: head_a, head_b (10 classes)": (pytest.approx(math.log(10)), grey)}
    draw({"head_a": tasks["loss_cls"], "head_b": tasks["loss_cls"]})  # the level of every loss: unnamed
    assert drawn() == {"chance (10 classes)": (pytest.approx(math.log(10)), grey)}
    draw({"loss": tasks["loss_bin"]}, {"val_loss": (EPOCHS, [0.69, 0.6, 0.5])})  # one loss: as it always was
    view.set_chances({"loss": (math.log(2), 2)})
    assert drawn() == {"chance (2 classes)": (pytest.approx(math.log(2)), grey)}
    view.set_chances({})
    assert drawn() == {}
