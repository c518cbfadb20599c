"""The loss per iteration as a line (log scale once it spans decades; NaN or Inf as red crosses on top),
with a cursor in replays, and the loss of a guess at chance as a dashed line labelled "chance" when the
loss is a cross entropy over a known number of classes: a loss flat on it is a model that learns nothing."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont

from widgets.theme import MUTED_TEXT, follow_palette, pick


def spans_decades(finite: np.ndarray) -> bool:
    """Whether positive losses span more than two decades: then a log axis shows them."""
    return bool(len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100)


class IterationAxis(pg.AxisItem):
    """An axis of whole iterations: ticks only on iterations and no SI prefix (one point at iteration 0
    was drawn on an axis of "iteration (x0.001)" from -400 to 400)."""

    def __init__(self, orientation: str = "bottom") -> None:
        super().__init__(orientation)
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal, maxVal, size):
        whole = [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size) if spacing >= 1]
        return whole or [(1.0, 0.0)]


class ChanceLine(pg.InfiniteLine):
    """A dashed level labelled "chance = 0.693 (2 classes)" on a loss plot, hidden until `show_level`."""

    def __init__(self) -> None:
        colour = pick(MUTED_TEXT)
        super().__init__(angle=0, movable=False, pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                         label="", labelOpts={"position": 0.98, "color": colour, "anchors": [(1, 1), (1, 1)]})
        small = QFont()
        small.setPointSizeF(7.5)
        self.label.setFont(small)
        self.level: float | None = None
        self.setVisible(False)

    def show_level(self, level: float | None, classes: int = 0, log: bool = False) -> None:
        """Draw `level` (None hides it) on a linear or log10 axis; the label names the classes."""
        self.level = level
        self.setVisible(level is not None and level > 0)
        if not self.isVisible():
            return
        # short: the plot is ~150 px wide in the default window; the axis gives the value
        self.label.setFormat(f"chance ({classes} classes)" if classes else "chance")
        self.setValue(math.log10(level) if log else level)

    def text(self) -> str:
        """The label as drawn ('' while hidden)."""
        return self.label.toPlainText() if self.isVisible() else ""


class LossPlot(pg.PlotWidget):
    """set_curve(iterations, losses); set_cursor(iteration) marks where a replay is; set_no_loss_text(text)
    says why there is no loss (a tape that holds none); set_chance(level, classes) draws chance level."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=None, axisItems={"bottom": IterationAxis()})
        self.setLabel("bottom", "iteration")
        self.setLabel("left", "loss")
        self.getAxis("left").enableAutoSIPrefix(False)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMenuEnabled(False)
        self.setClipToView(True)
        self.setDownsampling(auto=True, mode="peak")
        self.curve = self.plot([], [], pen=pg.mkPen("#1c7ed6", width=1.6))
        self.last_point = self.plot([], [], pen=None, symbol="o", symbolSize=6, symbolBrush="#1c7ed6",
                                    symbolPen=None)
        # a NaN or Inf loss is a gap in the line: a red cross on the top edge says where it is
        self.nonfinite = self.plot([], [], pen=None, symbol="x", symbolSize=10, symbolBrush="#e03131",
                                   symbolPen=pg.mkPen("#e03131", width=1.5))
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#f59f00", width=1.5))
        self.cursor.setVisible(False)
        self.addItem(self.cursor, ignoreBounds=True)
        self.chance = ChanceLine()
        self.chance_classes = 0
        self.addItem(self.chance)  # in the range: a loss far under chance still shows where chance was
        self.no_loss_text = "no loss yet"
        self.empty = pg.TextItem(self.no_loss_text, color=pick(MUTED_TEXT), anchor=(0.5, 0.5))
        self.addItem(self.empty, ignoreBounds=True)
        self.empty.setPos(0.5, 0.5)
        follow_palette(self, lambda: self.empty.setColor(pick(MUTED_TEXT)), now=False)
        self.log = False
        self.points = 0

    def set_curve(self, iterations, losses) -> None:
        """Show the loss of each iteration (NaN shows as a gap)."""
        x = np.asarray(iterations, float)
        y = np.asarray(losses, float)
        self.points = len(x)
        ok = np.isfinite(y)
        finite = y[ok]
        top = float(finite.max()) if len(finite) else 1.0
        self.empty.setVisible(not len(finite))
        if len(x):  # under the crosses
            self.empty.setText("every loss is NaN/Inf")
            self.empty.setAnchor((0.5, -0.8))
            self.empty.setPos(float(x[0] + x[-1]) / 2, top)
        else:
            self.empty.setText(self.no_loss_text)
            self.empty.setAnchor((0.5, 0.5))
            self.empty.setPos(0.5, 0.5)
            # an empty plot keeps the range of the curve before (the run before): the text would be off view
            self.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            self.enableAutoRange()
        log = spans_decades(finite)
        if log != self.log:
            self.log = log
            self.setLogMode(y=log)
            self.chance.show_level(self.chance.level, self.chance_classes, log)
        self.curve.setData(x, y, connect="finite")
        self.nonfinite.setData(x[~ok], np.full(int((~ok).sum()), top))
        if len(x) and math.isfinite(y[-1]):
            self.last_point.setData(x[-1:], y[-1:])
        else:
            self.last_point.setData([], [])

    def set_no_loss_text(self, text: str = "no loss yet") -> None:
        """What the plot says while it has no loss: "no loss yet", or why there will be none."""
        # a text item does not wrap, and the dock is narrow; "--capture" stays whole
        self.no_loss_text = "\n".join(textwrap.fill(line, 28, break_on_hyphens=False) for line in text.splitlines())
        if not self.points:
            self.empty.setText(self.no_loss_text)

    def set_chance(self, level: float | None, classes: int = 0) -> None:
        """The loss of a guess at chance among `classes` classes (ln C for a cross entropy); None: none."""
        self.chance_classes = classes
        self.chance.show_level(level, classes, self.log)

    def set_cursor(self, iteration: int | None) -> None:
        """Mark iteration `iteration` (None hides the mark)."""
        self.cursor.setVisible(iteration is not None)
        if iteration is not None:
            self.cursor.setValue(iteration)
