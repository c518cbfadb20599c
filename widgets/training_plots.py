"""Training curves against iteration: loss, learning rate(s), update/weight ratio and gradient norm per layer.

All from plain events, so live and replay draw the same: feed each OptimizerEvent with its iteration.
Inputs: `add_step(iteration, event)` / `add_steps([(iteration, event), ...])` (anything with `lrs`,
`update_norms`, `weight_norms` and optionally `grad_norms`: engine.events.OptimizerEvent);
`set_losses({label: (iterations, losses)}, {label: (iterations, evaluation losses)})`, a curve per loss (a GAN's
errD and errG, named by a legend above the plot; an evaluation loss dashed through its points, as in
widgets.loss_plot), or `set_loss(iterations, losses)`, one; `set_chances({label: (level, classes)})`, the loss of a
guess at chance of each loss that has one (a dashed line labelled "chance", or "chance: <label>" where the losses'
levels differ, as in widgets.loss_plot), or `set_chance(level, classes)`, of every loss; `set_cursor(iteration)`
(None hides it); `set_edits([(iteration, label, tooltip)])` / `add_edit(...)`, runtime edits marked on the loss
plot (widgets.edit_marks); `set_gaps([(first, last, tooltip)])`, the iterations a damaged tape lost, hatched on every
plot (widgets.gap_marks); `clear()`.
Outputs: `iterationClicked(iteration)` when a person clicks a plot.
What a person sees: `series(name)` -> (x, y) and `colour(name)` of the curve "loss" (the first loss), "loss:<label>"
(any loss), "eval:<label>" (an evaluation loss), "lr" (group 0), "lr[1]", ..., "ratio:<layer>" or "grad:<layer>";
`loss_labels()`, the loss legend's names (none for one loss alone); `grad_layers()`, the layers whose gradient
norm is drawn; `chance.text()` (the first chance line; `chances.lines`, all); learning rate, ratio and gradient
axes are logarithmic, the loss axis once it spans 100x. A layer has one colour in both per-layer plots.

The gradient norm plot draws every layer of a small model, and of a larger one the layers with the largest
and the smallest norm at the latest step: a norm growing step after step (no zero_grad), one blowing up or
one fading towards the input shows without an alert, and the plot stays readable in a small dock. The
update/weight plot draws at most RATIO_LAYERS layers, the most extreme, and says so under the layers' names.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from widgets.edit_marks import EditMarks
from widgets.gap_marks import GapMarks, joins, lone_points
from widgets.gradient_flow import GOOD_RATIO, per_layer, ratios
from widgets.loss_plot import (
    EVAL_SUFFIX,
    ChanceLevels,
    ChanceLines,
    CurveLegend,
    IterationAxis,
    loss_tail,
    spans_decades,
)
from widgets.theme import CURVES, follow_palette

PALETTE = ("#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#e03131", "#5f3dc4",
           "#66a80f", "#c2255c", "#1098ad", "#868e96")
MAX_LEGEND = 8
LEGEND_COLUMN = 110  # pixels a legend entry needs
LEGEND_SAMPLE = 45  # of them, what the line sample and the spacing take beside the text
LEGEND_ROW = 14
ALL_GRADS = 3  # a model with this many layers or fewer has all their gradient norms drawn; a larger, two
# a model with more layers has this many update/weight ratios drawn, the largest and the smallest: 600 lines of a
# 150-block ResNet were unreadable, and redrawing each at every step took most of the GUI thread's time
RATIO_LAYERS = 12
LOSS_ROW, LR_ROW, RATIO_ROW, GRAD_ROW = range(4)
LOSS_HEIGHT, PLOT_HEIGHT = 100, 72  # the least height of the loss plot and each other one: a shorter dock scrolls
AXIS_HEIGHT = 36
AXIS_NAME_ROOM = 14  # pixels past a plot's rotated axis name: "update/weight" was cut to "ght" on a short plot


class LogAxis(pg.AxisItem):
    """A log axis labelled at decades (and at 2 and 5 when less than two decades show), never at 2..9
    all at once, which overlap on a short plot."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        lo, hi = math.floor(minVal), math.ceil(maxVal)
        decades = [float(v) for v in range(lo, hi + 1) if minVal <= v <= maxVal]
        step = max(1, math.ceil(len(decades) * 28 / max(size, 1)))  # ~28 px per label
        steps = {k: [v + math.log10(k) for v in range(lo, hi) if minVal <= v + math.log10(k) <= maxVal]
                 for k in range(2, 10)}
        halves = steps[2] + steps[5]
        rest = [x for k in (3, 4, 6, 7, 8, 9) for x in steps[k]]
        if len(decades) >= 2:
            return [(float(step), decades[::step]), (None, []), (None, halves + rest)]
        return [(1.0, decades), (None, halves), (None, rest)]


class TrainingPlots(ChanceLevels, QWidget):
    """Four stacked plots sharing the iteration axis; see the module docstring for the API."""

    iterationClicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(None)
        follow_palette(self.view, lambda: None, now=False)  # its cached background follows the palette
        # in the default window the dock is ~150 px high: four plots squeezed in it were flat lines
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(pg.QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.view)
        box.addWidget(self.scroll)
        self.loss_plot = self._plot(LOSS_ROW, "loss")
        self.lr_plot = self._plot(LR_ROW, "lr")
        self.ratio_plot = self._plot(RATIO_ROW, "update/weight")
        self.grad_plot = self._plot(GRAD_ROW, "grad norm")
        # the layers are named in the title row of the first per-layer plot, as the losses are over theirs: in a
        # row of its own between two plots the legend floated, belonging to neither
        self.layer_legend = CurveLegend(self.ratio_plot, self)
        self._legend_shown: tuple = ()
        for plot in (self.lr_plot, self.ratio_plot, self.grad_plot):
            plot.setXLink(self.loss_plot)
            plot.setLogMode(y=True)
        self._plots = (self.loss_plot, self.lr_plot, self.ratio_plot, self.grad_plot)
        for row, stretch in ((LOSS_ROW, 3), (LR_ROW, 2), (RATIO_ROW, 2), (GRAD_ROW, 2)):
            self.view.ci.layout.setRowStretchFactor(row, stretch)  # the loss first, in a short dock
        self._bottom: pg.PlotItem | None = None
        self._axis_under(self.ratio_plot)
        self.chances = ChanceLines(self.loss_plot)
        self.chance = self.chances.lines[0]  # the first level's line: the only one of a run with one loss
        self.edits = EditMarks(self.loss_plot, lambda: [c.label for c in self.chances.lines])
        self.gaps = [GapMarks(plot) for plot in self._plots]
        self._loss_log = False
        self.loss_legend = CurveLegend(self.loss_plot, self)
        self._losses: list[str] = []  # the labels of the loss curves, in order
        # the rule of thumb the dashed line stands for, said on it: unlabelled it was one more curve
        guide = pg.InfiniteLine(math.log10(GOOD_RATIO), angle=0, movable=False,
                                pen=pg.mkPen("#2f9e44", width=1, style=pg.QtCore.Qt.PenStyle.DashLine),
                                label=f"healthy \u2248 {GOOD_RATIO:g}",
                                labelOpts={"position": 0.02, "color": "#2f9e44", "anchors": [(0, 1), (0, 1)]})
        self.guide = guide
        self.ratio_plot.addItem(guide, ignoreBounds=True)
        self.cursors = []
        for plot in self._plots:
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#f59f00", width=1.5))
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self.cursors.append(line)
        self.view.scene().sigMouseClicked.connect(self._clicked)
        self._curves: dict[str, tuple[pg.PlotItem, pg.PlotDataItem]] = {}
        self._raw: dict[str, np.ndarray] = {}
        self.clear()

    def _axis_under(self, bottom: pg.PlotItem) -> None:
        """Iteration values and the axis' name under `bottom` alone: the plots above share its axis."""
        if bottom is self._bottom:
            return
        self._bottom = bottom
        for plot in self._plots:
            axis = plot.getAxis("bottom")
            axis.setStyle(showValues=plot is bottom)
            axis.setHeight(None if plot is bottom else 6)
            if plot is bottom:
                plot.setLabel("bottom", "iteration")
            axis.showLabel(plot is bottom)

    def _plot(self, row: int, label: str) -> pg.PlotItem:
        plot = self.view.addPlot(row=row, col=0, axisItems={"left": LogAxis("left"), "bottom": IterationAxis()})
        # short names and small tick labels: the plots share a small dock, where "learning rate" ran into
        # the loss plot's label and three loss values overlapped
        plot.setLabel("left", label, **{"font-size": "8pt"})
        small = QFont()
        small.setPointSizeF(7.5)
        plot.getAxis("left").setStyle(tickFont=small)
        plot.getAxis("bottom").setStyle(tickFont=small)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.getAxis("left").setWidth(54)  # "0.0005" and the axis name beside it
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.getAxis("left").setStyle(maxTextLevel=1)
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        return plot

    # ---- inputs -----------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every step and the loss."""
        self._steps: list[int] = []
        self._lrs: list[tuple[float, ...]] = []
        self._ratios: dict[str, dict[int, float]] = {}
        self._grads: dict[str, dict[int, float]] = {}
        # layer -> (iteration, value) of its latest step: which layers to draw, without reading every step again
        self._latest_ratio: dict[str, tuple[int, float]] = {}
        self._latest_grad: dict[str, tuple[int, float]] = {}
        self._ordered: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # curve name -> its arrays as last drawn
        self._rewritten: set[str] = set()  # curves with a value replaced since they were drawn
        self._layers: dict[str, int] = {}  # layer -> its colour's index, in the order layers came
        self._raw = {}
        for plot, curve in self._curves.values():
            plot.removeItem(curve)
        self._curves = {}
        self._legend_shown = ()
        self._losses = []
        self._draw_steps()
        self.set_loss([], [])
        self.set_chance(None)
        self.edits.clear()
        self.set_gaps([])

    def add_step(self, iteration: int, event) -> None:
        """One optimizer step: its learning rates and per-layer update/weight ratios."""
        self.add_steps([(iteration, event)])

    def add_steps(self, steps) -> None:
        """Several optimizer steps at once: (iteration, OptimizerEvent) pairs."""
        for iteration, event in steps:
            it = int(iteration)
            self._steps.append(it)
            self._lrs.append(tuple(float(x) for x in event.lrs))
            for prefix, values, series, latest in (
                    ("ratio:", ratios(per_layer(event.update_norms), per_layer(event.weight_norms)), self._ratios,
                     self._latest_ratio),
                    ("grad:", per_layer(getattr(event, "grad_norms", None) or {}), self._grads, self._latest_grad)):
                for layer, v in values.items():
                    by_it = series.setdefault(layer, {})
                    if it in by_it:  # a value replaced: its drawn arrays are made again
                        self._rewritten.add(prefix + layer)
                    by_it[it] = v
                    self._layers.setdefault(layer, len(self._layers))
                    if it >= latest.get(layer, (it,))[0]:
                        latest[layer] = (it, v)
        self._draw_steps()

    def set_loss(self, iterations, losses) -> None:
        """The loss of each iteration (NaN shows as a gap): one curve."""
        self.set_losses({"loss": (iterations, losses)})

    def set_losses(self, curves: dict[str, tuple], evaluation: dict[str, tuple] | None = None) -> None:
        """A curve per loss, label -> (iterations, losses) (NaN shows as a gap), in the theme's colours in order,
        and per evaluation loss, label -> (iterations, losses), dashed through its points in the colours after
        theirs; two or more, or any evaluation loss, are named by a legend above the loss plot."""
        evaluation = evaluation or {}
        data = [(np.asarray(x, float), np.asarray(y, float)) for x, y in curves.values()] or [(np.zeros(0),) * 2]
        evals = [(np.asarray(x, float), np.asarray(y, float)) for x, y in evaluation.values()]
        ys = np.concatenate([y for _, y in data + evals])
        log = spans_decades(ys[np.isfinite(ys)])
        if log != self._loss_log:
            self._loss_log = log
            self.loss_plot.setLogMode(y=log)
        self._losses = list(curves)
        names = [self._loss_name(i) for i in range(len(data))] + [f"eval:{label}" for label in evaluation]
        names += [f"dots:{name}" for name in names]
        for name in [n for n in self._curves
                     if (n == "loss" or n.startswith(("loss:", "eval:", "dots:"))) and n not in names]:
            plot, curve = self._curves.pop(name)  # a curve of the run before
            plot.removeItem(curve)
            self._raw.pop(name, None)
        for i, (x, y) in enumerate(data):
            name = self._loss_name(i)
            self._raw[name] = y
            self._curve(self.loss_plot, f"dots:{name}", CURVES[i % len(CURVES)], dots=True)
            self._set_data(self._curve(self.loss_plot, name, CURVES[i % len(CURVES)]), x, y, name)
        for i, (label, (x, y)) in enumerate(zip(evaluation, evals)):
            name, colour = f"eval:{label}", CURVES[(len(curves) + i) % len(CURVES)]
            self._raw[name] = y
            self._set_data(self._eval_curve(name, colour), x, y)
        self.chances.keep_clear_of(*loss_tail([y for _, y in data], log))
        self.loss_legend.set_entries([(label, CURVES[i % len(CURVES)]) for i, label in enumerate(self._losses)] + [
            (label + EVAL_SUFFIX, CURVES[(len(curves) + i) % len(CURVES)], True) for i, label in enumerate(evaluation)])
        self._show_chances()

    def set_edits(self, edits: list[tuple[int, str, str]]) -> None:
        """The applied edits on the loss plot, (iteration it took effect, short label, tooltip) each."""
        self.edits.set_edits(edits)

    def add_edit(self, iteration: int, label: str, tip: str) -> None:
        """One more applied edit on the loss plot."""
        self.edits.add_edit(iteration, label, tip)

    def set_gaps(self, gaps: list[tuple[int, int, str]]) -> None:
        """The stretches a damaged tape lost, (first iteration, last iteration, tooltip) each, hatched on every plot,
        no curve drawn across one (widgets.gap_marks)."""
        for marks in self.gaps:
            marks.set_gaps(gaps)
        for name, (_plot, curve) in self._curves.items():
            if curve.xData is not None and not name.startswith("dots:"):
                self._set_data(curve, curve.xData, curve.yData, name)

    def _set_data(self, curve: pg.PlotDataItem, x, y, name: str = "") -> None:
        """Draw curve `name` through (x, y), and a dot on each point no line reaches where it has dots ("dots:"+name:
        a line through one point draws nothing, the first iteration's loss, a loss between two NaN losses)."""
        connect = joins(x, y, self.gaps[0].spans)
        curve.setData(x, y, connect=connect)
        dots = self._curves.get(f"dots:{name}")
        if dots is not None:
            lone = lone_points(y, connect)
            dots[1].setData(np.asarray(x, float)[lone], np.asarray(y, float)[lone])

    def _show_chances(self) -> None:
        self.chances.show({label: CURVES[i % len(CURVES)] for i, label in enumerate(self._losses)}, self._loss_log)
        self.edits.schedule()  # the edits' labels keep clear of the levels', where they are now

    def _loss_name(self, i: int) -> str:
        """The series name of loss curve `i`: "loss" for the first, "loss:<label>" for the others."""
        return "loss" if i == 0 else f"loss:{self._losses[i]}"

    def loss_labels(self) -> list[str]:
        """The names the loss legend shows, in the curves' order ([] for fewer than two losses)."""
        return self.loss_legend.labels()

    def colour(self, name: str) -> str:
        """The colour of a curve ('#rrggbb'), by the names of `series`."""
        self.series(name)  # a KeyError that names the curves there are
        return self._curves[self._named(name)][1].opts["pen"].color().name()

    def _named(self, name: str) -> str:
        """`name` as the curves are kept: "loss:<the first loss's label>" is "loss"."""
        return "loss" if self._losses and name == f"loss:{self._losses[0]}" else name

    def grad_layers(self) -> list[str]:
        """The layers whose gradient norm is drawn, in the order of their colours."""
        return [name.split(":", 1)[1] for name in self._curves if name.startswith("grad:")]

    def set_cursor(self, iteration: int | None) -> None:
        """Mark an iteration on every plot (None: no mark)."""
        for line in self.cursors:
            line.setVisible(iteration is not None)
            if iteration is not None:
                line.setValue(iteration)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The data of a curve as given (not log-transformed): 'loss', 'loss:errG', 'lr', 'lr[1]', 'ratio:fc1',
        'grad:fc1'."""
        name = self._named(name)
        if name not in self._curves:
            raise KeyError(f"no curve {name!r}; curves: {', '.join(self._curves)}")
        x = self._curves[name][1].xData
        return np.asarray(x if x is not None else [], float), self._raw[name]

    # ---- drawing ------------------------------------------------------------------------------------
    def _curve(self, plot: pg.PlotItem, name: str, colour: str, dots: bool = False) -> pg.PlotDataItem:
        """The line named `name` on `plot`, made when first wanted (`dots`: dots alone, no line)."""
        if name not in self._curves:
            item = plot.plot([], [], pen=None, symbol="o", symbolSize=6, symbolBrush=colour, symbolPen=None) if dots \
                else plot.plot([], [], pen=pg.mkPen(colour, width=1.6))
            self._curves[name] = (plot, item)
        return self._curves[name][1]

    def _eval_curve(self, name: str, colour: str) -> pg.PlotDataItem:
        """The dashed line, with a dot at each point, of the evaluation loss `name` ("eval:<label>"), in `colour`."""
        curve = self._curves.get(name, (None, None))[1]
        if curve is None or curve.opts["pen"].color().name() != colour:  # new, or a training loss came after it
            pen = pg.mkPen(colour, width=1.4, style=Qt.PenStyle.DashLine)
            if curve is None:
                curve = self.loss_plot.plot([], [], pen=pen, symbol="o", symbolSize=4, symbolPen=None)
                self._curves[name] = (self.loss_plot, curve)
            curve.setPen(pen)
            curve.setSymbolBrush(colour)
        return curve

    def _relegend(self) -> None:
        """The layers' legend over the update/weight plot: as many as two lines across the plots' width hold, each
        layer named by the last two parts of its path ('0.linear1'). Twelve full names in four fixed columns
        overlapped one another in the small dock and squeezed the loss and lr plots to slivers."""
        columns = max(1, min(4, self.width() // LEGEND_COLUMN))
        # the layers of the gradient plot first: it draws few, and each must be named
        grads = self.grad_layers()
        ratio_curves = {name.split(":", 1)[1]: curve for name, (_, curve) in self._curves.items()
                        if name.startswith("ratio:")}
        curves = {**{layer: self._curves[f"grad:{layer}"][1] for layer in grads}, **ratio_curves}
        order = grads + [layer for layer in ratio_curves if layer not in grads]
        layers = [(layer, curves[layer]) for layer in order][:min(2 * columns, MAX_LEGEND)]
        text_px = max(40, (self.width() - 24) // columns - LEGEND_SAMPLE)  # 24: the scroll bar and margins
        # a model of more layers than are drawn says so: twelve lines of a 150-block ResNet read as the whole model
        total = len(self._latest_ratio)
        note = f"{len(ratio_curves)} of {total} layers: the most extreme" if len(ratio_curves) < total else ""
        shown = (columns, text_px, tuple(layer for layer, _ in layers), note)
        if shown == self._legend_shown:
            return
        self._legend_shown = shown
        metrics = QFontMetrics(self.layer_legend.font)
        largest = (len(ratio_curves) + 1) // 2
        self.layer_legend.set_entries([(_legend_label(layer, metrics, text_px), curve.opts["pen"].color().name())
                                       for layer, curve in layers], note,
                                      f"the {largest} largest and the {len(ratio_curves) - largest} smallest "
                                      "update/weight ratios at the latest step (a NaN or Inf counts as the largest); "
                                      "Gradient Flow shows every layer")

    def layer_labels(self) -> list[str]:
        """The layers' names the legend over the per-layer plots shows, line by line ([] for one layer)."""
        return self.layer_legend.labels()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relegend()

    def _draw_steps(self) -> None:
        x = np.asarray(self._steps, float)
        # a learning rate that never changed is a flat line: its row gives way to the other plots
        changing = len(set(self._lrs)) > 1
        self.view.ci.layout.setRowMaximumHeight(LR_ROW, 1e6 if changing else 0)
        self.lr_plot.setVisible(changing)
        grads = bool(self._grads)  # an optimizer event alone carries no gradient norms: no empty plot
        self.view.ci.layout.setRowMaximumHeight(GRAD_ROW, 1e6 if grads else 0)
        self.grad_plot.setVisible(grads)
        self._axis_under(self.grad_plot if grads else self.ratio_plot)
        layout = self.view.ci.layout
        heights = {LOSS_ROW: LOSS_HEIGHT, LR_ROW: self._least_height(self.lr_plot) * changing,
                   RATIO_ROW: self._least_height(self.ratio_plot) + LEGEND_ROW * (
                       3 if len(self._latest_ratio) > RATIO_LAYERS else 2),  # the names' two lines and its note
                   GRAD_ROW: self._least_height(self.grad_plot) * grads}
        heights[GRAD_ROW if grads else RATIO_ROW] += AXIS_HEIGHT  # the iteration axis under the bottom plot
        for row, height in heights.items():
            layout.setRowMinimumHeight(row, height)
        self.view.setMinimumHeight(sum(heights.values()) + 8)
        groups = max((len(lr) for lr in self._lrs), default=0)
        for g in range(groups):
            y = np.array([lr[g] if g < len(lr) else np.nan for lr in self._lrs], float)
            name = "lr" if g == 0 else f"lr[{g}]"
            self._raw[name] = y
            self._set_data(self._curve(self.lr_plot, name, PALETTE[g % len(PALETTE)]), x, _positive(y))
        for prefix, plot, series, latest, limits in (
                ("ratio:", self.ratio_plot, self._ratios, self._latest_ratio, (RATIO_LAYERS, RATIO_LAYERS)),
                ("grad:", self.grad_plot, self._grads, self._latest_grad, (ALL_GRADS, 2))):
            shown = set(_extremes(latest, *limits))
            for name in [n for n in self._curves if n.startswith(prefix) and n[len(prefix):] not in shown]:
                plot.removeItem(self._curves.pop(name)[1])
            for layer in sorted(shown, key=self._layers.get):
                self._draw_layer(plot, prefix + layer, layer, series[layer])
        self._relegend()

    def _in_order(self, name: str, by_it: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
        """A layer's (iterations, values) in the order of the iterations: the arrays of its last draw with the
        steps added since appended, when they come after it (as a run's steps do), else made again; a long run
        made every drawn layer's arrays from all of its steps at every step."""
        its, y = self._ordered.get(name, (np.zeros(0), np.zeros(0)))
        added = len(by_it) - len(its)
        if added > 0 or name in self._rewritten:
            keys = list(by_it)[len(its):] if added > 0 and name not in self._rewritten else None
            if keys is not None and (not len(its) or min(keys) > its[-1]) and keys == sorted(keys):
                its = np.concatenate([its, np.asarray(keys, float)])
                y = np.concatenate([y, np.fromiter((by_it[k] for k in keys), float, len(keys))])
            else:
                its = np.array(sorted(by_it), float)
                y = np.array([by_it[int(t)] for t in its], float)
            self._ordered[name] = its, y
            self._rewritten.discard(name)
        return its, y

    @staticmethod
    def _least_height(plot: pg.PlotItem) -> int:
        """PLOT_HEIGHT, or more where the plot's rotated name is longer."""
        axis = plot.getAxis("left")
        name = axis.label.boundingRect().width()  # (rotated: its width runs up the plot)
        return max(PLOT_HEIGHT, int(name) + AXIS_NAME_ROOM)

    def _draw_layer(self, plot: pg.PlotItem, name: str, layer: str, by_it: dict[int, float]) -> None:
        its, y = self._in_order(name, by_it)
        self._raw[name] = y
        colour = PALETTE[self._layers[layer] % len(PALETTE)]
        self._set_data(self._curve(plot, name, colour), its, _positive(y))

    def _clicked(self, event) -> None:
        for plot in self._plots:
            if plot.isVisible() and plot.sceneBoundingRect().contains(event.scenePos()):
                x = plot.vb.mapSceneToView(event.scenePos()).x()
                if self._steps or len(self._raw.get("loss", ())):
                    self.iterationClicked.emit(round(x))
                return


def _extremes(latest: dict[str, tuple[int, float]], everyone: int, n: int) -> list[str]:
    """The layers to draw, by their latest (iteration, value): all of them when there are `everyone` or fewer, else
    `n`, the largest and the smallest (a NaN or Inf value is the one to see: it stands for the largest)."""
    if len(latest) <= everyone:
        return list(latest)
    values = {layer: v for layer, (_, v) in latest.items()}
    ranked = [layer for layer, v in values.items() if not np.isfinite(v)]
    finite = sorted((v, layer) for layer, v in values.items() if np.isfinite(v))
    top = (ranked + [layer for _, layer in reversed(finite)])[:(n + 1) // 2]
    bottom = [layer for _, layer in finite if layer not in top][:n - len(top)]
    return top + bottom


def _positive(y: np.ndarray) -> np.ndarray:
    """Values a log axis can show; zeros and negatives become gaps."""
    return np.where(y > 0, y, np.nan)


def _legend_label(layer: str, metrics: QFontMetrics, width: int) -> str:
    """A layer's legend entry: the last two parts of its path without the optimizer ('0.linear1', not
    'Adam:Sequential_2.0'), shortened at the left to its column ('Adam:Sequential_2.0' overran the dock)."""
    text = ".".join(layer.rpartition(":")[2].split(".")[-2:])
    return metrics.elidedText(text, Qt.TextElideMode.ElideLeft, width)
