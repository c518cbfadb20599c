"""Gradient flow: one horizontal bar per parameter (or per layer) on a log scale, at one optimizer step.

Inputs: `set_step(iteration, grad_norms=None, update_norms=None, weight_norms=None)`, dicts of
parameter name -> L2 norm (OptimizerEvent.grad_norms / .update_norms / .weight_norms);
`set_parameters({name: requires_grad})`, the model's parameters: those the step left out get a row
that says why ("frozen", "not updated") instead of missing silently;
`set_metric(name)` (one of METRICS), `set_by_layer(bool)`.
Outputs: `parameterActivated(name)` when a bar is clicked (a parameter or a layer path); `wantedWidthChanged(px)`
when the names to show change what `wanted_width()` is: the width that shows every name whole beside a readable
bar and its value (a dock holding the chart may grow to it).
What a person sees: `bars()` -> (labels, values), the norms drawn, top to bottom (NaN for a row without
a bar); `row_text(label)`, the text after a row's bar; `legend.text()`, what the colours mean.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontMetrics, QTextOption
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from widgets.theme import MUTED_TEXT, SECONDARY_TEXT, follow_palette, pick, tint

GRAD, UPDATE_RATIO, WEIGHT, UPDATE = "gradient norm", "update/weight", "weight norm", "update norm"
METRICS = (GRAD, UPDATE_RATIO, WEIGHT, UPDATE)
GOOD_RATIO = 1e-3  # a common rule of thumb: updates around a thousandth of the weights
ROW = 16  # pixels per bar
LABEL_SHARE = 0.5  # the share of the chart's width the names may take where they need it; bars and values get the rest
LABEL_PAD = 8  # pixels the names axis takes beside a name: the axis's own gap before the bar (5), and a margin
BARS_LEAST = 110  # pixels the bars keep beside the names, so that their lengths still compare
VALUE_PX = "0.000123"  # the widest value text as wanted_width measures it
_COLOUR, _LOW, _HIGH = "#1c7ed6", "#adb5bd", "#e03131"
FROZEN, NOT_UPDATED = "frozen (requires_grad=False)", "not updated: no optimizer step reached it"
AXIS_TEXT = {GRAD: "gradient L2 norm", UPDATE_RATIO: "update norm / weight norm", WEIGHT: "weight L2 norm",
             UPDATE: "update L2 norm"}


def layer_of(name: str) -> str:
    """The layer a parameter belongs to: its path without the last part ('fc1.weight' -> 'fc1')."""
    layer, _, _ = name.rpartition(".")
    return layer or "(top level)"


def per_layer(norms: dict[str, float]) -> dict[str, float]:
    """L2 norms of whole layers from the norms of their parameters (the root of the sum of squares)."""
    out: dict[str, float] = {}
    for name, v in norms.items():
        layer = layer_of(name)
        out[layer] = out.get(layer, 0.0) + float(v) ** 2
    return {k: math.sqrt(v) for k, v in out.items()}


def ratios(updates: dict[str, float], weights: dict[str, float]) -> dict[str, float]:
    """update norm / weight norm for every name in both (inf where a weight is zero)."""
    return {k: (u / weights[k] if weights[k] else math.inf) for k, u in updates.items() if k in weights}


def cut_name(name: str, metrics: QFontMetrics, width: int) -> str:
    """`name` in `width` pixels, cut in the middle: as many of its last dotted parts whole as fit, which tell rows
    apart ("res\u2026layers.0.0.weight"; cut evenly, every row read "resid\u2026eight"). A name with a layer index keeps
    from the index on, led by "\u2026", and gives way in the order that keeps it recognisable: the modules between
    the index and the parameter's own module to their initials ("\u20260.s.out_proj.weight"), then that module, cut at
    its right ("\u20260.sel\u2026.in_proj_bias") down to its initial, then the parameter's own name, cut in its middle.
    (Every module shortened to its initial left only the index readable at 1280x720: "b.l.0.s.in_\u2026ght".)"""
    if metrics.horizontalAdvance(name) <= width:
        return name
    parts = name.split(".")
    indexed = [k for k, part in enumerate(parts[:-1]) if part.isdigit()]
    cut = _tail_kept(parts, metrics, width, indexed[0] + 1 if indexed else len(parts))
    if cut or not indexed:
        return cut or metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, width)
    kept = parts[indexed[0]:]  # the index, the modules inside it, the parameter's own name

    def text() -> str:
        return "\u2026" + ".".join(kept)

    for k in range(1, len(kept) - 2):
        if not kept[k].isdigit():
            kept[k] = kept[k][0]
            if metrics.horizontalAdvance(text()) <= width:
                return text()
    if len(kept) > 2 and not kept[-2].isdigit():  # the parameter's own module
        module, kept[-2] = kept[-2], ""
        room = width - metrics.horizontalAdvance(text())
        short = metrics.elidedText(module, Qt.TextElideMode.ElideRight, room)
        kept[-2] = short if len(short) > 2 else module[0]  # "s\u2026" says no more than "s"
        if metrics.horizontalAdvance(text()) <= width:
            return text()
    kept[-1] = ""
    room = width - metrics.horizontalAdvance(text())
    if room >= 4 * metrics.horizontalAdvance("\u2026"):
        return text() + metrics.elidedText(parts[-1], Qt.TextElideMode.ElideMiddle, room)
    kept[-1] = parts[-1]
    return metrics.elidedText(text(), Qt.TextElideMode.ElideMiddle, width)


def _tail_kept(parts: list[str], metrics: QFontMetrics, width: int, most: int) -> str:
    """The dotted `parts` in `width` pixels as their longest tail whole after the parts before it cut at the right
    ("res\u2026layers.0.0.weight"), cutting into at most the first `most` parts; '' where none fits."""
    dots = metrics.horizontalAdvance("\u2026")
    for k in range(1, min(most, len(parts))):  # the longest tail first
        tail = "." + ".".join(parts[k:])
        room = width - metrics.horizontalAdvance(tail)
        if room >= dots:
            head = metrics.elidedText(".".join(parts[:k]), Qt.TextElideMode.ElideRight, room)
            return "\u2026" + tail[1:] if head == "\u2026" else head + tail  # "\u20260.linear1.weight"
    return ""


class _DecadeAxis(pg.AxisItem):
    """An axis over log10 values that labels them as the numbers themselves (1e-3, 0.1, 10)."""

    def tickStrings(self, values, scale, spacing):
        # decades only: the half-decade ticks in between read "0.00316228"
        return ["" if abs(v - round(v)) > 1e-6 else f"{10.0 ** v:.0e}".replace("e-0", "e-").replace("e+0", "e")
                if abs(v) >= 3 else f"{10.0 ** round(v):g}" for v in values]


class GradientFlowChart(QWidget):
    """Norms per parameter or layer as log-scaled bars; see the module docstring for the API."""

    parameterActivated = Signal(str)
    wantedWidthChanged = Signal(int)

    def __init__(self, parent=None, low: float = 1e-7, high: float = 1e3) -> None:
        super().__init__(parent)
        self.low, self.high = low, high  # outside these a gradient norm is vanishing / exploding
        self._norms: dict[str, dict[str, float]] = {GRAD: {}, UPDATE: {}, WEIGHT: {}}
        self._labels: list[str] = []
        self._values = np.zeros(0)
        self._params: dict[str, bool] = {}  # the model's parameters, in order -> requires_grad
        self._notes: dict[str, str] = {}  # rows without a bar -> why
        self._stale = False  # inputs changed while hidden: drawn when next shown
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.setSpacing(4)
        bar = QHBoxLayout()
        self.metric_box = QComboBox()
        self.grouping_box = QComboBox()
        self.grouping_box.addItems(["parameters", "layers"])  # a bar per: short, so both read whole at 250 px
        self.metric_box.addItems(list(METRICS))
        self.metric_box.currentIndexChanged.connect(self._redraw)
        self.grouping_box.currentIndexChanged.connect(self._redraw)
        self.where = QLabel()
        tint(self.where, MUTED_TEXT)
        # the controls may shrink with a narrow dock: their width once pushed the bars' values out of view
        self.where.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for w in (self.metric_box, self.grouping_box):
            # whole: cut to "gradient no…" and "per parame" they said nothing
            w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            w.setToolTip("what the bars show" if w is self.metric_box else "a bar per parameter or per layer")
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.where)
        box.addLayout(bar)
        self.legend = QLabel()  # what the colours and the dashed line mean
        self.legend.setWordWrap(True)
        tint(self.legend, MUTED_TEXT, "QLabel { font-size: 8pt }")
        box.addWidget(self.legend)
        self.plot = pg.PlotWidget(background=None, axisItems={"bottom": _DecadeAxis("bottom")})
        self.names_axis = self.plot.getAxis("left")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=False, alpha=0.25)
        self.plot.invertY(True)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self._bars = pg.BarGraphItem(x0=[], x1=[], y=[], height=0.7, pen=None, brush=_COLOUR)
        self.plot.addItem(self._bars)
        self._guide = pg.InfiniteLine(angle=90, movable=False,
                                      pen=pg.mkPen("#2f9e44", width=1, style=Qt.PenStyle.DashLine))
        self.plot.addItem(self._guide, ignoreBounds=True)
        self._texts: list[pg.TextItem] = []
        self.empty = pg.TextItem("", color=pick(MUTED_TEXT), anchor=(0.5, 0.5))
        wrapped = QTextOption(Qt.AlignmentFlag.AlignHCenter)  # a narrow dock cut it off on both sides
        wrapped.setWrapMode(QTextOption.WrapMode.WordWrap)
        self.empty.textItem.document().setDefaultTextOption(wrapped)
        self.plot.addItem(self.empty, ignoreBounds=True)
        follow_palette(self.plot, lambda: self.empty.setColor(pick(MUTED_TEXT)), now=False)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.scene().sigMouseMoved.connect(self._hovered)
        self._label_px = 0  # the widest name's pixels, measured when drawn
        self._wanted = 0  # wanted_width() as last told
        self._shown_labels: list[str] = []  # the names as the axis writes them
        self._span = None  # (lo, hi, bars, pixels of the widest value) of the bars drawn
        self.plot.getViewBox().sigResized.connect(self._fit)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.plot)
        # the bars take the height there is, and scroll inside it: asked for their whole height, they made the
        # chart as tall as the legend's wrapping asked for, so the dock scrolled the chart with its controls and
        # showed 2½ bars 50 pixels apart
        scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        box.addWidget(scroll, 1)
        self._redraw()

    # ---- inputs -----------------------------------------------------------------------------------
    def set_step(self, iteration: int | None, grad_norms: dict | None = None,
                 update_norms: dict | None = None, weight_norms: dict | None = None) -> None:
        """Show the norms of one optimizer step (parameter name -> L2 norm); None leaves a kind empty."""
        self._norms = {GRAD: dict(grad_norms or {}), UPDATE: dict(update_norms or {}),
                       WEIGHT: dict(weight_norms or {})}
        self.where.setText("" if iteration is None else f"iteration {iteration}")
        if not self._norms[GRAD] and self.metric_box.currentText() == GRAD and self._norms[UPDATE]:
            self.metric_box.setCurrentText(UPDATE_RATIO)  # an optimizer event alone carries no gradient norms
        self._redraw()
        if not self._params:  # (the model's names, when known, are the ones that count)
            self._tell_wanted()

    def set_parameters(self, trainable: dict[str, bool]) -> None:
        """The model's parameters (name -> requires_grad), so that those a step leaves out show why."""
        self._params = dict(trainable)
        self._redraw()
        self._tell_wanted()

    def wanted_width(self) -> int:
        """The chart's width that shows the widest name (of the model's parameters and of the step's) whole, beside
        bars that compare and the value after them; what the controls above need, where that is more."""
        names = [*self._params, *(name for norms in self._norms.values() for name in norms)]
        metrics = QFontMetrics(self.names_axis.font())
        label = max((metrics.horizontalAdvance(name) for name in dict.fromkeys(names)), default=0)
        value = QFontMetrics(self.plot.font()).horizontalAdvance(VALUE_PX) + 10
        margins = self.layout().contentsMargins()
        bars = label + LABEL_PAD + BARS_LEAST + value + margins.left() + margins.right() + 8  # (the view's frame)
        return max(bars, self.minimumSizeHint().width())

    def _tell_wanted(self) -> None:
        wanted = self.wanted_width()
        if wanted != self._wanted:
            self._wanted = wanted
            self.wantedWidthChanged.emit(wanted)

    def row_text(self, label: str) -> str:
        """The text written after a row's bar: its value, or why it has none."""
        self._draw_pending()
        if label not in self._labels:
            raise KeyError(f"no row {label!r}; rows: {', '.join(self._labels)}")
        return self._texts[self._labels.index(label)].textItem.toPlainText()

    def set_metric(self, name: str) -> None:
        """Show one of METRICS."""
        if name not in METRICS:
            raise ValueError(f"GradientFlowChart: metric must be one of {', '.join(METRICS)}, got {name!r}")
        self.metric_box.setCurrentText(name)

    def set_by_layer(self, by_layer: bool) -> None:
        """Group parameters into layers (norm of the layer) or show each parameter."""
        self.grouping_box.setCurrentIndex(int(by_layer))

    def bars(self) -> tuple[list[str], np.ndarray]:
        """The labels and values drawn, top to bottom."""
        self._draw_pending()
        return list(self._labels), self._values.copy()

    # ---- drawing ------------------------------------------------------------------------------------
    def _series(self) -> dict[str, float]:
        metric, by_layer = self.metric_box.currentText(), self.grouping_box.currentIndex() == 1
        n = self._norms
        if metric == UPDATE_RATIO:
            if by_layer:
                return ratios(per_layer(n[UPDATE]), per_layer(n[WEIGHT]))
            return ratios(n[UPDATE], n[WEIGHT])
        norms = n[{GRAD: GRAD, WEIGHT: WEIGHT, UPDATE: UPDATE}[metric]]
        return per_layer(norms) if by_layer else dict(norms)

    def _with_missing(self, series: dict[str, float]) -> dict[str, float]:
        """The series in the model's order, with a NaN row (and a note) for each parameter or layer of the
        model that the step left out: frozen, or held by no optimizer (a layer replaced after it was made)."""
        self._notes = {}
        if not self._params or not any(self._norms.values()):
            return series
        by_layer = self.grouping_box.currentIndex() == 1
        out: dict[str, float] = {}
        for name, trainable in self._params.items():
            label = layer_of(name) if by_layer else name
            if label in series:
                out[label] = series[label]
            elif label not in out:
                out[label] = math.nan
                self._notes[label] = NOT_UPDATED if trainable else FROZEN
            elif trainable and self._notes.get(label) == FROZEN:
                self._notes[label] = NOT_UPDATED
        out.update((k, v) for k, v in series.items() if k not in out)  # named apart from the model
        return out

    def paintEvent(self, event) -> None:
        # shown again (a dock tab brought to the front is moved into the window, not shown): draw what came
        # meanwhile, once this paint is done
        if self._stale:
            QTimer.singleShot(0, self._draw_pending)
        super().paintEvent(event)

    def _draw_pending(self) -> None:
        if self._stale:
            self._stale = False
            self._draw()

    def _redraw(self) -> None:
        """Draw now when on screen; when not (its tab behind the loss plot), once it is: a replay's scrub
        drew it unseen at every step, a third of the time each move of the timeline took."""
        metric = self.metric_box.currentText()
        self._name_axis()
        self.legend.setText(self._legend_text(metric))
        self.legend.setVisible(bool(self.legend.text()))
        self._stale = True
        if self.isVisible() and not self.visibleRegion().isEmpty():
            self._draw_pending()

    def _draw(self) -> None:
        series = self._with_missing(self._series())
        metric = self.metric_box.currentText()
        self._labels = list(series)
        self._values = np.array([float(v) for v in series.values()], dtype=float)
        for t in self._texts:
            self.plot.removeItem(t)
        self._texts = []
        n = len(self._labels)
        metrics = QFontMetrics(self.names_axis.font())
        self._label_px = max((metrics.horizontalAdvance(s) for s in self._labels), default=20)
        self._fit_labels()
        self.plot.setMinimumHeight(max(100, ROW * n + 48))  # and the axis with its name under the bars
        self.empty.setVisible(n == 0)
        self.plot.getAxis("bottom").setStyle(showValues=bool(n))  # an empty axis drew "1.584892.51189..."
        self.plot.showGrid(x=bool(n), y=False, alpha=0.25)
        if not n:
            self.empty.setText("No gradient norms recorded for this step." if metric == GRAD and any(
                self._norms.values()) else "Norms appear after the first optimizer step.")
            self._bars.setOpts(x0=[], x1=[], y=[], brushes=None, brush=_COLOUR)
            self._guide.setVisible(False)
            self._span = None
            self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            self.empty.setPos(0.5, 0.5)
            self._fit()
            return
        v = self._values
        ok = np.isfinite(v) & (v > 0)
        logs = np.where(ok, np.log10(np.where(ok, v, 1.0)), np.nan)
        lo = math.floor(np.nanmin(logs)) - 0.5 if ok.any() else -1.0
        hi = math.ceil(np.nanmax(logs)) + 0.3 if ok.any() else 1.0
        noted = np.array([label in self._notes for label in self._labels])
        ends = np.where(ok, logs, np.where((np.isnan(v) & ~noted) | (v == np.inf), hi, lo))
        colours = [self._colour(metric, x) for x in v]
        self._bars.setOpts(x0=np.full(n, lo), x1=ends, y=np.arange(n), height=0.7,
                           brushes=[pg.mkBrush(c) for c in colours])
        for i, x in enumerate(v):
            label = self._labels[i]
            words = self._notes.get(label) or (f"{x:.3g}" if x != 0 else "0: no gradient reached it"
                                               if metric == GRAD else "0")
            colour = pick(MUTED_TEXT if label in self._notes else SECONDARY_TEXT, self.palette())
            text = pg.TextItem(words, color=colour, anchor=(0, 0.5))
            text.setPos(ends[i], i)
            self.plot.addItem(text, ignoreBounds=True)
            self._texts.append(text)
        self._guide.setVisible(metric == UPDATE_RATIO)
        self._guide.setValue(math.log10(GOOD_RATIO))
        hi = max(hi, lo + 1)
        self._span = (lo, hi, n, max(QFontMetrics(self.plot.font()).horizontalAdvance(t.textItem.toPlainText())
                                     for t in self._texts) + 10)
        self._fit()

    def _fit_labels(self) -> None:
        """The names as wide as the widest, up to what the bars (BARS_LEAST) and their values leave of the chart, and
        at least LABEL_SHARE of it; cut in the middle beyond that (whole in the row's tooltip): a fixed 260 pixels
        took a whole 250-pixel dock, the bars and values squeezed out, and a share of 0.4 cut "blocks.layers.0.
        self_attn.in_proj_weight" to "blo….in_proj_weight" beside bars with room to spare; in the 281-pixel dock of a
        1280x720 window it left the names 13 characters: now half, the bars and their values the other half."""
        plot = self.plot.width()
        value = self._span[3] if self._span is not None else 0
        room = max(int(plot * LABEL_SHARE), plot - BARS_LEAST - value, 4 * LABEL_PAD)
        width = min(self._label_px + LABEL_PAD, room)
        metrics = QFontMetrics(self.names_axis.font())
        self._shown_labels = [cut_name(name, metrics, width - LABEL_PAD) for name in self._labels]
        self.names_axis.setTicks([list(enumerate(self._shown_labels)), []])
        if self.names_axis.width() != width:
            self.names_axis.setWidth(width)

    def _name_axis(self) -> None:
        """Name the value axis with its metric and scale, or the metric alone where the bars are too narrow for both
        (beside the names of a 281-pixel chart it read "gradient L2 norm (log scal"); the whole is its tooltip."""
        text = f"{AXIS_TEXT[self.metric_box.currentText()]} (log scale)"
        font = QFont(self.font())
        font.setPointSizeF(8)
        axis = self.plot.getAxis("bottom")
        fits = QFontMetrics(font).horizontalAdvance(text) <= axis.width() - 4
        shown = text if fits else text.split(" (")[0]
        axis.setToolTip(text)
        if shown != axis.labelText:
            self.plot.setLabel("bottom", shown, **{"font-size": "8pt"})
            axis.resizeEvent()  # centred again: pyqtgraph places the label as the axis resizes, not as its text changes

    def shown_label(self, label: str) -> str:
        """A row's name as the names axis writes it (cut in the middle where the chart is narrow)."""
        self._draw_pending()
        return self._shown_labels[self._labels.index(label)]

    def _fit(self) -> None:
        """The value range, with room in pixels on the right for the value written after the longest bar
        (a share of the range left the values of a narrow dock cut off)."""
        if self._span is None:
            self.empty.setTextWidth(max(self.plot.getViewBox().width() - 16, 40))
            return
        self._fit_labels()
        self._name_axis()
        lo, hi, n, label_px = self._span
        share = min(label_px / max(self.plot.getViewBox().width(), 1.0), 0.6)
        self.plot.setRange(xRange=(lo, lo + (hi - lo) / (1 - share)), yRange=(-0.6, n - 0.4), padding=0)

    def _legend_text(self, metric: str) -> str:
        """What the colours or the dashed line mean; short, as the dock is small."""
        if metric == GRAD:
            return f"grey: vanishing, below {self.low:g} \u00b7 red: exploding, above {self.high:g}, or NaN"
        if metric == UPDATE_RATIO:
            return f"dashed: healthy step \u2248 {GOOD_RATIO:g} of the weights; far above: lr too high"
        return ""

    def _colour(self, metric: str, x: float) -> str:
        if not math.isfinite(x):
            return _HIGH
        if metric == GRAD and x > self.high:
            return _HIGH
        if metric == GRAD and x < self.low:
            return _LOW
        return _COLOUR

    def _row_at(self, scene_pos) -> int | None:
        p = self.plot.getPlotItem().vb.mapSceneToView(scene_pos)
        i = round(p.y())
        return i if 0 <= i < len(self._labels) and abs(p.y() - i) <= 0.35 else None

    def _hovered(self, scene_pos) -> None:
        # a row's whole name and value, where a narrow chart cut the name
        i = self._row_at(scene_pos) if self._labels else None
        self.plot.setToolTip("" if i is None else f"{self._labels[i]}: {self._texts[i].textItem.toPlainText()}")

    def _clicked(self, event) -> None:
        i = self._row_at(event.scenePos()) if self._labels else None
        if i is not None:
            self.parameterActivated.emit(self._labels[i])
