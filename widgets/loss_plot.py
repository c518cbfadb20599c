"""The loss per iteration as a line (log scale once it spans decades; NaN or Inf as red crosses on top),
with a cursor in replays, and the loss of a guess at chance as a dashed line labelled "chance" when the
loss is a cross entropy over a known number of classes: a loss flat on it is a model that learns nothing.
A run with several losses (a GAN's errD and errG) gets a line of each, in the theme's colours, named by a
small legend above the plot (never over the lines), and a chance line for each loss that has a chance level,
named by its curve and in its colour ("chance: loss_cls (10 classes)"); a level every loss has is one grey
"chance (10 classes)" line, as for one loss. Evaluation losses (a validation loss computed under no_grad,
usually once an epoch) are dashed lines through a dot at each point, in the colours after the training losses,
named "val_loss (eval)" in the legend, which a plot with one shows even beside a single training loss."""

from __future__ import annotations

import html
import math
import textwrap

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import QApplication

from widgets.edit_marks import EditMarks
from widgets.gap_marks import GapMarks, joins, lone_points
from widgets.theme import CURVES, MUTED_TEXT, SECONDARY_TEXT, follow_palette, pick

LEGEND_PT = 7.5  # the legend's font size, as the plots' tick labels
LEGEND_GAP = 14  # pixels between two legend entries
EVAL_SUFFIX = " (eval)"  # an evaluation curve's legend label: its loss's label and this


def spans_decades(finite: np.ndarray) -> bool:
    """Whether positive losses span more than two decades: then a log axis shows them."""
    return bool(len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100)


def loss_tail(ys: list[np.ndarray], log: bool) -> tuple[float | None, float]:
    """Where the losses `ys` end (the median of each curve's last tenth, the lowest: a learning model's) and
    their span, in the axis' units (log10 on a log axis), for ChanceLine.keep_clear_of."""
    tails, spans = [], []
    for y in ys:
        y = y[np.isfinite(y) & ((y > 0) if log else True)]
        if len(y):
            y = np.log10(y) if log else y
            tails.append(float(np.median(y[-max(1, len(y) // 10):])))
            spans.append(float(y.max() - y.min()))
    return (min(tails) if tails else None), max(spans, default=0.0)


def _dashed_pen(colour: str):
    """An evaluation curve's pen."""
    return pg.mkPen(colour, width=1.4, style=Qt.PenStyle.DashLine)


class IterationAxis(pg.AxisItem):
    """An axis of whole iterations: ticks only on iterations and no SI prefix (one point at iteration 0
    was drawn on an axis of "iteration (x0.001)" from -400 to 400)."""

    def __init__(self, orientation: str = "bottom") -> None:
        super().__init__(orientation)
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal, maxVal, size):
        whole = [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size) if spacing >= 1]
        return whole or [(1.0, 0.0)]


LABEL_ROOM = 0.15  # of the data's span, and at least LABEL_PX: kept in view on the label's side of the line
LABEL_PX = 16


class ChanceLine(pg.InfiniteLine):
    """A dashed level labelled "chance (2 classes)" on a loss plot, hidden until `show_level`. The label sits at the
    right end, or at the left one (`left`), on the side of the line the loss is not on where it ends
    (`keep_clear_of`), with room for it in view, on a backing of the plot's colour over the curves: drawn under the
    line by where the line was in the view, it lay on the curve of a model that had learnt."""

    def __init__(self, left: bool = False) -> None:
        colour = pick(MUTED_TEXT)
        end = 0 if left else 1
        super().__init__(angle=0, movable=False, pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                         label="", labelOpts={"position": 0.02 if left else 0.98, "color": colour,
                                              "anchors": [(end, 1), (end, 1)]})
        self.end = end
        small = QFont()
        small.setPointSizeF(7.5)
        self.label.setFont(small)
        self.setZValue(10)  # over the curves, its label on a backing of the plot's colour: readable where they cross
        self.level: float | None = None
        self.room = 0.0  # in the axis' units (log10 on a log axis), on the label's side of the line
        self._clear_of: tuple[float | None, float] = (None, 0.0)
        self.setVisible(False)

    def keep_clear_of(self, tail: float | None, span: float) -> None:
        """Put the label on the side of the line away from `tail`, where the loss ends (in the axis' units: log10
        on a log axis; None: no loss yet), with room for it: `span`, the loss's range on the axis."""
        self._clear_of = (tail, span)
        self._place_label()

    def _place_label(self) -> None:
        tail, span = self._clear_of
        above = tail is None or tail <= self.value()
        self.label.anchors = [(self.end, 1 if above else 0)] * 2
        self.room = (1.0 if above else -1.0) * LABEL_ROOM * max(span, 1e-12)
        self.label.updatePosition()
        self.informViewBoundsChanged()

    def dataBounds(self, axis: int, frac: float = 1.0, orthoRange=None):
        # the level, and room on the label's side of it: a plot's range ends at its data
        if axis == 0 or not self.isVisible():
            return None
        box = self.getViewBox()
        pixel = box.viewPixelSize()[1] if box is not None and box.height() > 0 else 0.0
        room = math.copysign(max(abs(self.room), LABEL_PX * pixel), self.room)
        return tuple(sorted((0.0, room)))

    def show_level(self, level: float | None, classes: int = 0, log: bool = False, curves: str = "",
                   colour: str = "") -> None:
        """Draw `level` (None hides it) on a linear or log10 axis; the label names the classes, and the curves it is
        the chance level of when not all ("errG"), drawn in `colour` ('': the muted text's)."""
        self.level = level
        self.setVisible(level is not None and level > 0)
        if not self.isVisible():
            return
        colour = colour or pick(MUTED_TEXT)
        backing = QApplication.palette().color(QPalette.ColorRole.Window)
        backing.setAlpha(210)
        self.label.fill = pg.mkBrush(backing)
        if self.pen.color().name() != colour:
            self.setPen(pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine))
            self.label.setColor(colour)
        # short: the plot is ~150 px wide in the default window; the axis gives the value
        name = "chance: " + curves.replace("{", "{{").replace("}", "}}") if curves else "chance"
        self.label.setFormat(f"{name} ({classes} classes)" if classes else name)
        self.setValue(math.log10(level) if log else level)
        self._place_label()

    def text(self) -> str:
        """The label as drawn ('' while hidden)."""
        return self.label.toPlainText() if self.isVisible() else ""


class ChanceLines:
    """The chance levels of a plot's loss curves, a ChanceLine each: a level every curve has is one muted line
    labelled "chance (C classes)" (one loss looks as it always did); a level of some curves only names them, in
    their curve's colour when it is one ("chance: loss_cls (10 classes)"); equal levels are drawn once."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.lines: list[ChanceLine] = []
        self.levels: dict[str, tuple[float, int]] = {}  # curve label ('': every curve) -> (level, classes)
        self._drawn: tuple | None = None
        self._line(0)

    def _line(self, i: int) -> ChanceLine:
        while len(self.lines) <= i:  # labels at the right end and the left in turn: two levels close together
            line = ChanceLine(left=len(self.lines) % 2 == 1)  # keep both readable, in a narrow plot too
            self.plot.addItem(line)  # in the range: a loss far under chance still shows where chance was
            self.lines.append(line)
        return self.lines[i]

    def keep_clear_of(self, tail: float | None, span: float) -> None:
        """Every line's label on the side away from where the losses end (ChanceLine.keep_clear_of)."""
        for line in self.lines:
            line.keep_clear_of(tail, span)

    def set_levels(self, levels: dict[str, tuple[float, int]]) -> None:
        """curve label ('': every curve) -> (level, classes) of each curve with a chance level; drawn at the next
        `show`."""
        self.levels = dict(levels)

    def show(self, colours: dict[str, str], log: bool) -> None:
        """Draw the levels for the training curves `colours` names (label -> colour, in order) on a linear or log10
        axis."""
        key = (tuple(self.levels.items()), tuple(colours.items()), log)
        if key == self._drawn:
            return
        self._drawn = key
        groups: dict[tuple[float, int], list[str]] = {}
        for label, (level, classes) in self.levels.items():
            groups.setdefault((round(level, 9), classes), []).append(label)
        drawn = [label for label in colours if label not in self.levels] + list(self.levels)
        for i, ((level, classes), labels) in enumerate(groups.items()):
            every = "" in labels or set(drawn) <= set(labels)
            colour = colours.get(labels[0], "") if len(labels) == 1 and not every else ""
            self._line(i).show_level(level, classes, log, "" if every else ", ".join(labels), colour)
        for line in self.lines[len(groups):]:
            line.show_level(None)


class ChanceLevels:
    """set_chance and set_chances of a plot (the loss plot, the training plots): its `chances`, drawn by its
    `_show_chances`."""

    chances: ChanceLines

    def set_chance(self, level: float | None, classes: int = 0) -> None:
        """The loss of a guess at chance among `classes` classes (ln C for a cross entropy), of every training
        curve; None: none."""
        self.set_chances({"": (level, classes)} if level is not None else {})

    def set_chances(self, levels: dict[str, tuple[float, int]]) -> None:
        """The chance level of each training curve that has one, label -> (level, classes) (see ChanceLines)."""
        self.chances.set_levels(levels)
        self._show_chances()


class CurveLegend:
    """The names of a plot's curves in its title row, each after a dash of its colour (a dashed one for a dashed
    curve), in as many lines as the plot's width needs: above the curves, so it never hides one. Hidden for
    fewer than two curves, unless one is dashed (an evaluation loss beside the training loss says which is which)
    or it has a note: a line under the names saying which curves are drawn ("12 of 150 layers: the most extreme")."""

    def __init__(self, plot: pg.PlotItem, widget) -> None:
        self.plot = plot
        self.widget = widget  # the QWidget that shows the plot: its palette gives the text colour
        self.entries: list[tuple] = []
        self.lines: list[list[str]] = []
        self.note = ""
        self.font = QFont()
        self.font.setPointSizeF(LEGEND_PT)
        self._shown: tuple | None = None  # (html, height) set last
        plot.titleLabel.opts["justify"] = "left"  # from the plot's left edge: the part of a wide plot in view
        plot.vb.sigResized.connect(lambda _vb: self.relayout())
        follow_palette(widget, lambda: self.relayout(force=True), now=False)

    def set_entries(self, entries: list[tuple], note: str = "", tip: str = "") -> None:
        """(label, colour '#rrggbb') or (label, colour, dashed) of each curve, in order; `note`: a line under them
        (shortened to the plot's width, whole in `tip`, the legend's tooltip, with what more it says)."""
        if entries != self.entries or note != self.note:
            self.entries, self.note = list(entries), note
            self.relayout()
        self.plot.titleLabel.setToolTip(f"{note}: {tip}" if note and tip else note)

    def labels(self) -> list[str]:
        """The labels the legend shows ([] while hidden)."""
        return [label for line in self.lines for label in line]

    def relayout(self, force: bool = False) -> None:
        """Lay the entries out for the plot's width now (it follows the plot's resizes by itself)."""
        plot = self.plot
        if len(self.entries) < 2 and not any(e[2:] and e[2] for e in self.entries) and not self.note:
            self.lines = []
            if self._shown is not None:
                self._shown = None
                plot.setTitle(None)
            return
        metrics = QFontMetrics(self.font)
        # what shows of the plot: a dock of plots scrolls, and its plots may be wider than its view
        in_view = self.widget.width() - int(plot.vb.sceneBoundingRect().left()) - 8
        width = max(min(int(plot.vb.width()) or in_view, in_view), 80)
        lines: list[list[tuple[str, str, str, str]]] = [[]]
        used = 0
        for label, colour, *dashed in self.entries:
            mark = "╍╍" if dashed and dashed[0] else "━━"
            # a name longer than the plot is shortened in its middle ("cross_entropy @ lo…6 (eval)"): whole, it
            # widened the plots past their dock, whose right edge then cut the chance label and the curves' ends
            room = width - metrics.horizontalAdvance(f"{mark} ") - LEGEND_GAP
            shown = metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, max(room, 20))
            need = metrics.horizontalAdvance(f"{mark} {shown}") + LEGEND_GAP
            if lines[-1] and used + need > width:
                lines.append([])
                used = 0
            lines[-1].append((label, colour, mark, shown))
            used += need
        self.lines = [[label for label, *_ in line] for line in lines if line]
        rows = ["&nbsp;&nbsp;&nbsp;".join(
            f"<span style='color:{colour}'>{mark}</span>&nbsp;{html.escape(shown)}" for _, colour, mark, shown in line)
            for line in lines if line]
        if self.note:
            italic = QFont(self.font)
            italic.setItalic(True)
            note = QFontMetrics(italic).elidedText(self.note, Qt.TextElideMode.ElideRight, width)
            rows.append(f"<i>{html.escape(note)}</i>")
        text = "<br>".join(rows)
        height = len(rows) * (metrics.height() + 1) + 4
        if (text, height) == self._shown and not force:
            return
        self._shown = (text, height)
        plot.titleLabel.setMaximumHeight(height)
        plot.layout.setRowFixedHeight(0, height)
        plot.titleLabel.setVisible(True)
        plot.titleLabel.setText(text, size=f"{LEGEND_PT}pt", color=pick(SECONDARY_TEXT))
        # a label asks for its text's width at least: the plot, and a dock of plots, would grow past the window
        plot.titleLabel.setMinimumWidth(0)


class LossPlot(ChanceLevels, pg.PlotWidget):
    """set_curves({label: (iterations, losses)}, {label: (iterations, evaluation losses)}) (set_curve(iterations,
    losses): one curve); set_cursor(iteration) marks where a replay is; set_edits([(iteration, label, tooltip)]) and
    add_edit(...) mark runtime edits (widgets.edit_marks); set_gaps([(first, last, tooltip)]) hatches the iterations a
    damaged tape lost (widgets.gap_marks); set_no_loss_text(text) says why there is
    no loss (a tape that holds none); set_chances({label: (level, classes)}) draws the chance level of each
    training curve that has one (set_chance(level, classes): of every curve). What a person sees:
    `labels()`, the legend's names ("val_loss (eval)" for an evaluation curve), `colour(label)` and
    `dashed(label)`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=None, axisItems={"bottom": IterationAxis()})
        self.setLabel("bottom", "iteration")
        self.setLabel("left", "loss")
        self.getAxis("left").enableAutoSIPrefix(False)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMenuEnabled(False)
        self.setClipToView(True)
        self.setDownsampling(auto=True, mode="peak")
        self.lines: list[tuple[pg.PlotDataItem, pg.PlotDataItem]] = []  # (line, last point) of each curve
        self.curve, self.last_point = self._line(0)
        self.eval_lines: list[pg.PlotDataItem] = []  # each evaluation curve's dashed line with its points
        # a NaN or Inf loss is a gap in the line: a red cross on the top edge says where it is
        self.nonfinite = self.plot([], [], pen=None, symbol="x", symbolSize=10, symbolBrush="#e03131",
                                   symbolPen=pg.mkPen("#e03131", width=1.5))
        self.nonfinite.setZValue(10)  # over every line
        # named at the first cross: on the top edge of a loss that blew up first, a cross read as a loss of 1e22
        self.nonfinite_label = pg.TextItem("", color="#e03131", anchor=(0, 1))
        self.nonfinite_label.setZValue(10)
        self.addItem(self.nonfinite_label, ignoreBounds=True)
        self.legend = CurveLegend(self.plotItem, self)
        self._raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # label -> (iterations, losses) as given
        self._dashed: set[str] = set()  # the labels of the evaluation curves, the last of _raw
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#f59f00", width=1.5))
        self.cursor.setVisible(False)
        self.addItem(self.cursor, ignoreBounds=True)
        self.chances = ChanceLines(self.plotItem)
        self.chance = self.chances.lines[0]  # the first level's line: the only one of a run with one loss
        self.edits = EditMarks(self.plotItem, lambda: [self.nonfinite_label, *(c.label for c in self.chances.lines)])
        self.gaps = GapMarks(self.plotItem)
        self.no_loss_text = "no loss yet"
        self.empty = pg.TextItem(self.no_loss_text, color=pick(MUTED_TEXT), anchor=(0.5, 0.5))
        self.addItem(self.empty, ignoreBounds=True)
        self.empty.setPos(0.5, 0.5)
        follow_palette(self, lambda: self.empty.setColor(pick(MUTED_TEXT)), now=False)
        self.log = False
        self.points = 0
        self._show_values(False, False)

    def _show_values(self, losses: bool, iterations: bool) -> None:
        """Tick values on the loss and iteration axes only where there is something to read them by: an empty
        plot read 0.2 to 0.8 behind "no loss yet"."""
        for name, on in (("left", losses), ("bottom", iterations)):
            if self.getAxis(name).style["showValues"] != on:
                self.getAxis(name).setStyle(showValues=on)

    def _line(self, i: int) -> tuple[pg.PlotDataItem, pg.PlotDataItem]:
        """The line and last-point marker of curve `i`, made when first wanted."""
        while len(self.lines) <= i:
            colour = CURVES[len(self.lines) % len(CURVES)]
            self.lines.append((self.plot([], [], pen=pg.mkPen(colour, width=1.6)),
                               self.plot([], [], pen=None, symbol="o", symbolSize=6, symbolBrush=colour,
                                         symbolPen=None)))
        return self.lines[i]

    def _eval_line(self, i: int, colour: str) -> pg.PlotDataItem:
        """The dashed line, with a dot at each point, of evaluation curve `i`, in `colour`."""
        while len(self.eval_lines) <= i:
            self.eval_lines.append(self.plot([], [], pen=_dashed_pen(colour), symbol="o", symbolSize=5,
                                             symbolBrush=colour, symbolPen=None))
        line = self.eval_lines[i]
        if line.opts["pen"].color().name() != colour:  # a training curve came after it: the colours moved on
            line.setPen(_dashed_pen(colour))
            line.setSymbolBrush(colour)
        return line

    def set_curve(self, iterations, losses) -> None:
        """Show the loss of each iteration (NaN shows as a gap): one curve."""
        self.set_curves({"loss": (iterations, losses)})

    def set_curves(self, curves: dict[str, tuple], evaluation: dict[str, tuple] | None = None) -> None:
        """Show each training curve, label -> (iterations, losses) (NaN shows as a gap), in the theme's colours
        in order, and each evaluation curve, label -> (iterations, losses), dashed through its points in the
        colours after theirs; two or more curves, or any evaluation curve, are named by a legend above the plot."""
        named = [(label, np.asarray(x, float), np.asarray(y, float)) for label, (x, y) in curves.items()]
        evals = [(label + EVAL_SUFFIX, np.asarray(x, float), np.asarray(y, float))
                 for label, (x, y) in (evaluation or {}).items()]
        everything = named + evals
        x = np.concatenate([c[1] for c in everything]) if everything else np.zeros(0)
        y = np.concatenate([c[2] for c in everything]) if everything else np.zeros(0)
        self.points = max((len(c[1]) for c in everything), default=0)
        ok = np.isfinite(y)
        finite = y[ok]
        top = float(finite.max()) if len(finite) else 1.0
        self.empty.setVisible(not len(finite))
        self._show_values(bool(len(finite)), bool(len(x)))
        if len(x):  # under the crosses
            self.empty.setText("every loss is NaN/Inf")
            self.empty.setAnchor((0.5, -0.8))
            self.empty.setPos(float(x.min() + x.max()) / 2, top)
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
        self.chances.keep_clear_of(*loss_tail([cy for _, _, cy in named], log))
        for i in range(max(len(named), len(self.lines))):
            line, last = self._line(i)
            cx, cy = (named[i][1], named[i][2]) if i < len(named) else (np.zeros(0), np.zeros(0))
            connect = joins(cx, cy, self.gaps.spans)
            line.setData(cx, cy, connect=connect)
            dots = lone_points(cy, connect)  # no line reaches them (a loss between NaNs): each a dot, as the last
            if len(cx) and math.isfinite(cy[-1]):
                dots[-1] = True
            last.setData(cx[dots], cy[dots])
        for i in range(max(len(evals), len(self.eval_lines))):
            colour = CURVES[(len(named) + i) % len(CURVES)]
            cx, cy = (evals[i][1], evals[i][2]) if i < len(evals) else (np.zeros(0), np.zeros(0))
            self._eval_line(i, colour).setData(cx, cy, connect=joins(cx, cy, self.gaps.spans))
        self.nonfinite.setData(x[~ok], np.full(int((~ok).sum()), top))
        bad = int((~ok).sum())
        self.nonfinite_label.setVisible(bool(bad and len(finite)))  # all of them NaN: `empty` says so
        if bad and len(finite):
            self.nonfinite_label.setText(f"NaN/Inf loss ({bad:,})" if bad > 1 else "NaN/Inf loss")
            first = float(x[~ok][0])
            # a cross in the right half is named to its left: at the last iteration its name ran out of the
            # plot and read "Na"
            self.nonfinite_label.setAnchor((1, 1) if first > (float(x[0]) + float(x[-1])) / 2 else (0, 1))
            self.nonfinite_label.setPos(first, math.log10(top) if log and top > 0 else top)
        self._raw = {label: (cx, cy) for label, cx, cy in everything}
        self._dashed = {label for label, _, _ in evals}
        self.legend.set_entries([(label, CURVES[i % len(CURVES)], label in self._dashed)
                                 for i, label in enumerate(self._raw)])
        self._show_chances()

    def _show_chances(self) -> None:
        self.chances.show({label: CURVES[i % len(CURVES)] for i, label in enumerate(self._raw)
                           if label not in self._dashed}, self.log)
        self.edits.schedule()  # the edits' labels keep clear of the levels' and the NaN marker's, where they are now

    def labels(self) -> list[str]:
        """The names the legend shows, in the curves' order, evaluation curves last ([] for one training curve
        alone)."""
        return self.legend.labels()

    def colour(self, label: str) -> str:
        """The colour ('#rrggbb') of the curve named `label` (an evaluation curve's: "val_loss (eval)")."""
        return self._item(label).opts["pen"].color().name()

    def dashed(self, label: str) -> bool:
        """Whether the curve named `label` is drawn dashed (an evaluation curve)."""
        return self._item(label).opts["pen"].style() == Qt.PenStyle.DashLine

    def _item(self, label: str) -> pg.PlotDataItem:
        if label not in self._raw:
            raise KeyError(f"no curve {label!r}; curves: {', '.join(self._raw)}")
        i = list(self._raw).index(label)
        trained = len(self._raw) - len(self._dashed)
        return self.lines[i][0] if i < trained else self.eval_lines[i - trained]

    def series(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """The data of the curve named `label` as given (not log-transformed)."""
        self.colour(label)  # a KeyError that names the curves there are
        return self._raw[label]

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

    def set_edits(self, edits: list[tuple[int, str, str]]) -> None:
        """The applied edits, (iteration it took effect, short label, tooltip) each: a line and a label each."""
        self.edits.set_edits(edits)

    def add_edit(self, iteration: int, label: str, tip: str) -> None:
        """One more applied edit."""
        self.edits.add_edit(iteration, label, tip)

    def set_gaps(self, gaps: list[tuple[int, int, str]]) -> None:
        """The stretches a damaged tape lost, (first iteration, last iteration, tooltip) each: hatched, and no curve
        drawn across one (widgets.gap_marks)."""
        self.gaps.set_gaps(gaps)
        for line in [line for line, _ in self.lines] + self.eval_lines:
            if line.xData is not None:
                line.setData(line.xData, line.yData, connect=joins(line.xData, line.yData, self.gaps.spans))
