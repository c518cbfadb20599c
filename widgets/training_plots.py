"""Training curves against iteration: loss, learning rate(s), and update/weight ratio per layer.

All from plain events, so live and replay draw the same: feed each OptimizerEvent with its iteration.
Inputs: `add_step(iteration, event)` / `add_steps([(iteration, event), ...])` (anything with `lrs`,
`update_norms`, `weight_norms`: engine.events.OptimizerEvent); `set_loss(iterations, losses)`;
`set_cursor(iteration)` (None hides it); `clear()`.
Outputs: `iterationClicked(iteration)` when a person clicks a plot.
What a person sees: `series(name)` -> (x, y) of the curve "loss", "lr" (group 0), "lr[1]", ..., or
"ratio:<layer>"; learning rate and ratio axes are logarithmic, the loss axis once it spans 100x.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QVBoxLayout, QWidget

from widgets.gradient_flow import GOOD_RATIO, per_layer, ratios
from widgets.loss_plot import IterationAxis, spans_decades

PALETTE = ("#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#e03131", "#5f3dc4",
           "#66a80f", "#c2255c", "#1098ad", "#868e96")
MAX_LEGEND = 8
LEGEND_COLUMN = 110  # pixels a legend entry needs
LEGEND_ROW = 14


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


class TrainingPlots(QWidget):
    """Three stacked plots sharing the iteration axis; see the module docstring for the API."""

    iterationClicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(None)
        box.addWidget(self.view)
        self.loss_plot = self._plot(0, "loss")
        self.lr_plot = self._plot(1, "lr")
        # the layers' legend sits in its own row, above its plot, so it never hides a curve
        self.legend = pg.LegendItem(labelTextSize="8pt", colCount=4, verSpacing=-8, horSpacing=12)
        self.view.addItem(self.legend, row=2, col=0)
        self._legend_shown: tuple = ()
        self.ratio_plot = self._plot(3, "update/weight")
        self.lr_plot.setXLink(self.loss_plot)
        self.ratio_plot.setXLink(self.loss_plot)
        self.ratio_plot.setLabel("bottom", "iteration")
        for plot in (self.loss_plot, self.lr_plot):  # they share the bottom plot's iteration axis
            plot.getAxis("bottom").setStyle(showValues=False)
            plot.getAxis("bottom").setHeight(6)
        self.lr_plot.setLogMode(y=True)
        self.ratio_plot.setLogMode(y=True)
        # the rule of thumb the dashed line stands for, said on it: unlabelled it was one more curve
        guide = pg.InfiniteLine(math.log10(GOOD_RATIO), angle=0, movable=False,
                                pen=pg.mkPen("#2f9e44", width=1, style=pg.QtCore.Qt.PenStyle.DashLine),
                                label=f"healthy \u2248 {GOOD_RATIO:g}",
                                labelOpts={"position": 0.02, "color": "#2f9e44", "anchors": [(0, 1), (0, 1)]})
        self.guide = guide
        self.ratio_plot.addItem(guide, ignoreBounds=True)
        self.cursors = []
        for plot in (self.loss_plot, self.lr_plot, self.ratio_plot):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#f59f00", width=1.5))
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self.cursors.append(line)
        self.view.scene().sigMouseClicked.connect(self._clicked)
        self._curves: dict[str, tuple[pg.PlotItem, pg.PlotDataItem]] = {}
        self._raw: dict[str, np.ndarray] = {}
        self.clear()

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
        plot.getAxis("left").setWidth(46)
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
        self._raw = {}
        for plot, curve in self._curves.values():
            plot.removeItem(curve)
        self._curves = {}
        self._legend_shown = ()
        self._draw_steps()
        self.set_loss([], [])

    def add_step(self, iteration: int, event) -> None:
        """One optimizer step: its learning rates and per-layer update/weight ratios."""
        self.add_steps([(iteration, event)])

    def add_steps(self, steps) -> None:
        """Several optimizer steps at once: (iteration, OptimizerEvent) pairs."""
        for iteration, event in steps:
            self._steps.append(int(iteration))
            self._lrs.append(tuple(float(x) for x in event.lrs))
            for layer, r in ratios(per_layer(event.update_norms), per_layer(event.weight_norms)).items():
                self._ratios.setdefault(layer, {})[int(iteration)] = r
        self._draw_steps()

    def set_loss(self, iterations, losses) -> None:
        """The loss of each iteration (NaN shows as a gap)."""
        x, y = np.asarray(iterations, float), np.asarray(losses, float)
        self._raw["loss"] = y
        finite = y[np.isfinite(y)]
        self.loss_plot.setLogMode(y=spans_decades(finite))
        self._curve(self.loss_plot, "loss", PALETTE[0]).setData(x, y, connect="finite")

    def set_cursor(self, iteration: int | None) -> None:
        """Mark an iteration on every plot (None: no mark)."""
        for line in self.cursors:
            line.setVisible(iteration is not None)
            if iteration is not None:
                line.setValue(iteration)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The data of a curve as given (not log-transformed): 'loss', 'lr', 'lr[1]', 'ratio:fc1'."""
        if name not in self._curves:
            raise KeyError(f"no curve {name!r}; curves: {', '.join(self._curves)}")
        x = self._curves[name][1].xData
        return np.asarray(x if x is not None else [], float), self._raw[name]

    # ---- drawing ------------------------------------------------------------------------------------
    def _curve(self, plot: pg.PlotItem, name: str, colour: str) -> pg.PlotDataItem:
        if name not in self._curves:
            self._curves[name] = (plot, plot.plot([], [], pen=pg.mkPen(colour, width=1.6)))
        return self._curves[name][1]

    def _relegend(self) -> None:
        """The layers' legend: as many as two rows across the plots' width hold, each named by the last two
        parts of its path ('0.linear1'). Twelve full names in four fixed columns overlapped one another
        in the small dock and squeezed the loss and lr plots to slivers."""
        columns = max(1, min(4, self.width() // LEGEND_COLUMN))
        layers = [(name.split(":", 1)[1], curve) for name, (_, curve) in self._curves.items()
                  if name.startswith("ratio:")][:min(2 * columns, MAX_LEGEND)]
        shown = (columns, tuple(layer for layer, _ in layers))
        if shown == self._legend_shown:
            return
        self._legend_shown = shown
        self.legend.clear()
        self.legend.setColumnCount(columns)
        for layer, curve in layers:
            self.legend.addItem(curve, ".".join(layer.split(".")[-2:]))
        rows = -(-len(layers) // columns)
        self.view.ci.layout.setRowMaximumHeight(2, rows * LEGEND_ROW)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relegend()

    def _draw_steps(self) -> None:
        x = np.asarray(self._steps, float)
        # a learning rate that never changed is a flat line: its row gives way to the other plots
        changing = len(set(self._lrs)) > 1
        self.view.ci.layout.setRowMaximumHeight(1, 1e6 if changing else 0)
        self.lr_plot.setVisible(changing)
        groups = max((len(lr) for lr in self._lrs), default=0)
        for g in range(groups):
            y = np.array([lr[g] if g < len(lr) else np.nan for lr in self._lrs], float)
            name = "lr" if g == 0 else f"lr[{g}]"
            self._raw[name] = y
            curve = self._curve(self.lr_plot, name, PALETTE[g % len(PALETTE)])
            curve.setData(x, _positive(y), connect="finite")
        for i, (layer, by_it) in enumerate(self._ratios.items()):
            name = f"ratio:{layer}"
            its = np.array(sorted(by_it), float)
            y = np.array([by_it[int(t)] for t in its], float)
            self._raw[name] = y
            self._curve(self.ratio_plot, name, PALETTE[i % len(PALETTE)]).setData(its, _positive(y), connect="finite")
        self._relegend()

    def _clicked(self, event) -> None:
        for plot in (self.loss_plot, self.lr_plot, self.ratio_plot):
            if plot.sceneBoundingRect().contains(event.scenePos()):
                x = plot.vb.mapSceneToView(event.scenePos()).x()
                if self._steps or len(self._raw.get("loss", ())):
                    self.iterationClicked.emit(round(x))
                return


def _positive(y: np.ndarray) -> np.ndarray:
    """Values a log axis can show; zeros and negatives become gaps."""
    return np.where(y > 0, y, np.nan)
