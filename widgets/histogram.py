"""The histogram of a TensorSummary: its 64 bins as bars, with the NaN/Inf count written over the plot.

Inputs: `show_summary(summary)` (engine.debug TensorSummary, or None to clear).
Outputs: none (a view only). `bars()` returns (bin edges, counts) as drawn.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize
from PySide6.QtGui import QFont, QFontMetrics

from engine.debug.summary import TensorSummary
from widgets.theme import ERROR_TEXT, MUTED_TEXT, follow_palette, pick


class HistogramView(pg.PlotWidget):
    """Bars of a summary's histogram (the summary's own bins: over at most HIST_LIMIT finite values)."""

    _edges = np.zeros(0)  # the bin edges drawn (pyqtgraph resizes the widget before __init__ sets them)
    _count_text = ""  # the count axis's whole name

    def __init__(self, title: str = "", colour: str = "#1c7ed6", parent=None) -> None:
        super().__init__(parent, background=None)
        self.colour = colour
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.showGrid(x=False, y=True, alpha=0.2)
        self.setMinimumSize(96, 64)  # three side by side in the inspector dock; a short dock shrinks them first
        if title:
            self.setTitle(title, size="9pt", color=pick(MUTED_TEXT))
        for name in ("left", "bottom"):
            axis = self.getAxis(name)
            axis.enableAutoSIPrefix(False)
            axis.setStyle(tickTextOffset=3)
        self.getAxis("left").setWidth(46)
        self.getAxis("left").geometryChanged.connect(lambda: self._count_text and self._count_label(self._count_text))
        self._bars = pg.BarGraphItem(x0=[], x1=[], height=[], brush=colour, pen=pg.mkPen(colour, width=0.5))
        self.addItem(self._bars)
        self._note = pg.TextItem("", color=pick(MUTED_TEXT), anchor=(0.5, 0.5))
        self._bad = pg.TextItem("", color=pick(ERROR_TEXT), anchor=(1, 0))
        self.addItem(self._note, ignoreBounds=True)
        self.addItem(self._bad, ignoreBounds=True)
        self._edges = np.zeros(0)
        self._counts = np.zeros(0, dtype=np.int64)
        self.show_summary(None)
        follow_palette(self, self._recolour, now=False)

    def set_muted(self, muted: bool) -> None:
        """Draw the bars grey: what they show is older than the tensors beside them."""
        colour = pick(MUTED_TEXT) if muted else self.colour
        self._bars.setOpts(brush=colour, pen=pg.mkPen(colour, width=0.5))

    def set_nonfinite_text(self, text: str, intended: bool = False) -> None:
        """Say what the bars leave out in words of the caller's ("4,224 \u2212Inf" once the values told the signs);
        `intended`: infinities put there on purpose (a mask), muted rather than red."""
        if self._bad.toPlainText():
            self._bad.setText(text)
            self._bad.setColor(pick(MUTED_TEXT if intended else ERROR_TEXT))

    def bad_text(self) -> str:
        """What the plot says it leaves out ("3 NaN \u00b7 1 \u00b1Inf"), '' for nothing."""
        return self._bad.toPlainText()

    def _recolour(self) -> None:
        """The title and notes in the palette's muted and error colours (it turned light or dark)."""
        self._note.setColor(pick(MUTED_TEXT))
        self._bad.setColor(pick(ERROR_TEXT))
        title = self.plotItem.titleLabel.text
        if title:
            self.setTitle(title, size="9pt", color=pick(MUTED_TEXT))
        if self._count_text:  # pyqtgraph takes its default colour once: black on the dark palette after a switch
            self._count_label(self._count_text, again=True)

    def _count_label(self, text: str, again: bool = False) -> None:
        """Name the count axis `text`, or as much of it as its height shows: "count (sampled)" read "ount (sampl"
        in a short inspector; then "count", then nothing (the whole name is the axis's tooltip)."""
        self._count_text = text
        font = QFont(self.font())
        font.setPointSizeF(8)
        room = self.getAxis("left").height() - 4
        fits = [t for t in (text, text.split(" (")[0]) if QFontMetrics(font).horizontalAdvance(t) <= room]
        shown = fits[0] if fits else ""
        axis = self.getAxis("left")
        axis.setToolTip(text)
        if again or shown != axis.labelText or axis.label.isVisible() != bool(shown):
            self.setLabel("left", shown, color=pick(MUTED_TEXT), **{"font-size": "8pt"})
            axis.showLabel(bool(shown))

    def count_label(self) -> str:
        """The count axis's name as shown ('' when its height shows none of it)."""
        axis = self.getAxis("left")
        return axis.labelText if axis.label.isVisible() else ""

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.plotItem is not None:  # (pyqtgraph resizes once before the plot exists)
            self._place_ticks()

    def _place_ticks(self) -> None:
        """Value ticks whose labels fit side by side: pyqtgraph's own ran labels such as -5000 and 0
        together when three plots share the inspector's width."""
        axis = self.getAxis("bottom")
        edges = self._edges
        if not len(edges):  # no data: no scales
            self.getAxis("left").setTicks([[]])
            axis.setTicks([[]])
            return
        # counts are whole: pyqtgraph's own ticks read 0.2, 0.4 ... up to a count of 1
        rows = max(int(self.getAxis("left").height() / (2.5 * self.fontMetrics().height())), 1)
        self.getAxis("left").setTicks([count_ticks(int(self._counts.max()) if len(self._counts) else 0, rows)])
        room = max(self.width() - int(self.getAxis("left").width()) - 16, 40)
        axis.setTicks([fitting_ticks(float(edges[0]), float(edges[-1]), room, self.fontMetrics())])

    def sizeHint(self) -> QSize:
        # modest: a scroll area holding the inspector lays it out at its preferred height (its word-
        # wrapped labels ask for height-for-width), and a plot's default of 640x480 made it scroll
        return QSize(200, 140)

    def show_summary(self, summary: TensorSummary | None) -> None:
        """Draw the summary's histogram (None: an empty plot saying so; one element: its value, written)."""
        counts = summary.counts if summary is not None else np.zeros(0, dtype=np.int64)
        one = summary is not None and summary.numel == 1  # a loss: one bar of height 1 says nothing
        for name in ("left", "bottom"):
            self.getPlotItem().showAxis(name, not one)
        if summary is None or one or not counts.sum():
            self._edges, self._counts = np.zeros(0), np.zeros(0, dtype=np.int64)
            self._bars.setOpts(x0=[], x1=[], height=[])
            self.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            if one:
                self._note.setHtml(f"<p align='center'><span style='font-size:15pt; color:{self.colour}'>"
                                   f"{_value_text(summary)}</span><br>one element</p>")
                doc = self._note.textItem.document()
                self._note.setTextWidth(doc.idealWidth())  # so that the lines centre on each other
            else:
                self._note.setTextWidth(-1)
                self._note.setText("no finite values" if summary is not None and summary.numel else "no data")
            self._note.setPos(0.5, 0.5)
            self._bad.setText("" if one else _bad_text(summary))
            self._bad.setColor(pick(ERROR_TEXT))
            self._bad.setPos(1, 1)
            self._place_ticks()
            return
        edges = summary.bin_edges
        self._edges, self._counts = edges, np.asarray(counts)
        self._bars.setOpts(x0=edges[:-1], x1=edges[1:], height=self._counts)
        top = float(self._counts.max())
        self.setRange(xRange=(edges[0], edges[-1]), yRange=(0, top * 1.08), padding=0.02)
        self._place_ticks()
        self._note.setText("")
        self._bad.setText(_bad_text(summary))
        self._bad.setColor(pick(ERROR_TEXT))
        self._bad.setPos(edges[-1], top * 1.08)
        sampled = int(self._counts.sum()) < summary.numel - summary.nan_count - summary.inf_count
        self._count_label("count (sampled)" if sampled else "count")

    def bars(self) -> tuple[np.ndarray, np.ndarray]:
        """The bin edges and counts drawn now."""
        return self._edges, self._counts

    def note(self) -> str:
        """What is written over the plot instead of bars ("no data", a one-element tensor's value); '' with bars."""
        return self._note.textItem.toPlainText()


def fitting_ticks(lo: float, hi: float, room: float, metrics) -> list[tuple[float, str]]:
    """(value, label) ticks at round steps between lo and hi whose labels fit in `room` pixels side by side
    (at least one tick: the round number nearest the middle)."""
    span = hi - lo
    if not span > 0 or not math.isfinite(span):
        return [(lo, f"{lo:g}")]
    base = 10.0 ** math.floor(math.log10(span / 8))
    for step in (m * base for m in (1, 2, 5, 10, 20, 50, 100)):
        values = np.arange(math.ceil(lo / step), math.floor(hi / step) + 1) * step
        # as many digits as the step needs next to the values' size: ticks 1e-8 apart near 1 all read "1"
        digits = min(17, max(6, math.floor(math.log10(max(abs(lo), abs(hi)))) - math.floor(math.log10(step)) + 1))
        labels = [f"{v:.{digits}g}" if v else "0" for v in values]
        if len(values) and sum(metrics.horizontalAdvance(t) + 12 for t in labels) <= room:
            return list(zip(values.tolist(), labels))
    middle = float(np.round((lo + hi) / 2, -math.floor(math.log10(span))))
    return [(middle, f"{middle:.6g}")]


def count_ticks(top: int, most: int = 5) -> list[tuple[float, str]]:
    """(value, label) ticks at whole, round steps (1, 2, 5, 10, 20, ...) from 0 up to `top`, at most `most` of
    them above 0."""
    step = 1
    while top // step > most:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return [(float(v), f"{v:,}") for v in range(0, top + 1, step)]


def _value_text(summary: TensorSummary) -> str:
    """A one-element tensor's value, as the statistics table writes numbers."""
    value = summary.samples[0] if summary.samples else summary.scalar  # the samples keep a NaN or an infinity
    return f"{value:.6g}"


def _bad_text(summary: TensorSummary | None) -> str:
    if summary is None or summary.finite:
        return ""
    parts = [f"{n} {name}" for n, name in ((summary.nan_count, "NaN"), (summary.inf_count, "\u00b1Inf")) if n]
    return " \u00b7 ".join(parts)
