"""What a damaged tape lost, on a plot of iterations: a hatched band over the iterations whose events could not be
read, named "lost" at its top with the whole stretch in its tooltip, and no line drawn across it where no point lies
in it (a line across the band would make up the values lost there).

    gaps = GapMarks(plot_item)
    gaps.set_gaps([(first_iteration, last_iteration, tooltip)])
    curve.setData(x, y, connect=joins(x, y, gaps.spans))
    dots.setData(x[lone], y[lone])  # lone = lone_points(y, connect): the points no line reaches
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QApplication

from widgets.theme import MUTED_TEXT, pick


def joins(x: np.ndarray, y: np.ndarray, spans: list[tuple[float, float]]):
    """The `connect` of a curve through the points (x, y): "finite" (a NaN breaks the line), and no line between
    two points with an iteration of a gap between them that has no point (the line would make up its value)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    across = np.zeros(max(len(x) - 1, 0), bool)
    for a, b in spans:
        across |= (x[:-1] < b) & (x[1:] > a) & (x[1:] - x[:-1] > 1)
    if not across.any():
        return "finite"
    ok = np.isfinite(y)
    return np.append(ok[:-1] & ok[1:] & ~across, False)


def lone_points(y: np.ndarray, connect) -> np.ndarray:
    """Which finite points of a curve drawn with `connect` (joins') no line reaches: a loss between two NaN losses,
    or beside a gap, drawn with a line alone is not drawn at all, so it gets a dot."""
    ok = np.isfinite(np.asarray(y, float))
    joined = ok[:-1] & ok[1:] if isinstance(connect, str) else np.asarray(connect, bool)[:-1]
    reached = np.zeros(len(ok), bool)
    reached[:-1] |= joined
    reached[1:] |= joined
    return ok & ~reached


class _Band(pg.LinearRegionItem):
    """A gap's band: its iterations count in the plot's x range (a run's lost last iterations are in view, not past
    its edge), its y range not at all."""

    def dataBounds(self, axis: int, frac: float = 1.0, orthoRange=None):
        return self.getRegion() if axis == 0 and self.isVisible() else None


class GapMarks:
    """The gaps of one PlotItem (see the module docstring)."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.spans: list[tuple[float, float]] = []  # (first, last) iteration of each gap, as drawn around
        self.bands: list[pg.LinearRegionItem] = []

    def set_gaps(self, gaps: list[tuple[int, int, str]]) -> None:
        """Replace the gaps: (first iteration, last iteration, tooltip) each, the iterations some or all of whose
        events were lost."""
        for band in self.bands:
            self.plot.removeItem(band)
        self.spans = [(float(a), float(b)) for a, b, _ in gaps]
        self.bands = []
        colour = QColor(pick(MUTED_TEXT))  # nothing is known there, good or bad
        fill = QBrush(colour, Qt.BrushStyle.BDiagPattern)
        edge = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine)
        backing = QApplication.palette().color(QPalette.ColorRole.Window)
        for a, b, tip in gaps:
            band = _Band((a - 0.5, b + 0.5), movable=False, brush=fill, pen=edge)
            band.setZValue(-5)  # under the curves
            band.setToolTip(tip)
            pg.InfLineLabel(band.lines[0], "lost", position=0.04, anchors=[(0, 1), (0, 1)], color=colour,
                            fill=pg.mkBrush(backing))  # readable over the hatching
            self.plot.addItem(band)
            self.bands.append(band)

    def clear(self) -> None:
        """No gaps."""
        self.set_gaps([])
