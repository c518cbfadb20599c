"""The loss per iteration as a line (log scale once it spans decades; NaN or Inf as red crosses on top),
with a cursor in replays."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pyqtgraph as pg

from widgets.theme import MUTED_TEXT, pick


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


class LossPlot(pg.PlotWidget):
    """set_curve(iterations, losses); set_cursor(iteration) marks where a replay is; set_no_loss_text(text)
    says why there is no loss (a tape that holds none)."""

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
        self.no_loss_text = "no loss yet"
        self.empty = pg.TextItem(self.no_loss_text, color=pick(MUTED_TEXT), anchor=(0.5, 0.5))
        self.addItem(self.empty, ignoreBounds=True)
        self.empty.setPos(0.5, 0.5)
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

    def set_cursor(self, iteration: int | None) -> None:
        """Mark iteration `iteration` (None hides the mark)."""
        self.cursor.setVisible(iteration is not None)
        if iteration is not None:
            self.cursor.setValue(iteration)
