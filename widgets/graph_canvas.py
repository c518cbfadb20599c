"""The computational graph view: a pannable, zoomable canvas drawing a laid-out graph in two tiers.

The overview tier draws every node with one item (rectangles batched per colour with drawRects) and
every edge with a few chunked QPainterPaths (pyqtgraph's arrayToQPath). The detail tier, once zoomed in
far enough to read, places labels (op, output shape, module titles, edge shapes) and port marks on the
visible nodes only, from a small pool of reused label items. Zoomed out further, that pool shows the titles of
the module boxes with room for one, beside them where no other title or node is (widgets.graph_overview).

The canvas takes plain data, never engine objects:

    canvas.set_graph(view, layout)   # view: app.graph_model.GraphView, or any object with its fields:
                                     #   keys, kind, edges; optionally label, sublabel, op, module,
                                     #   tooltip(i), node_of, backward, added, groups, group_cls,
                                     #   group_parent, edge_shape
                                     # layout: app.layout.Layout (pos, size, group_rect, edge_points, ...)
    canvas.set_node_values(values, nonfinite, "grad norm")   # colour by a metric; None: by op kind
                                     # nonfinite: per node 0, INF_ONLY (amber) or NAN (red), drawn over both
    canvas.set_current(key); canvas.search("relu"); canvas.fit(); canvas.export_png(path)
    canvas.set_stop("breakpoint", "Paused by a breakpoint at ...")   # the current node marked as that stop's
    canvas.follow(key)               # at a stop: zoom until the node's label reads, pan it into view

It emits intent (nodeClicked, nodeDoubleClicked, groupToggleRequested, revealRequested: a find's match inside a
collapsed module); the app acts on it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QLinearGradient, QPainter, QPalette, QPen
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem, QToolTip

from engine.nn.module import NUMBERED_ROOT
from widgets.graph_overview import GAP, ROW, TITLE_PX, ChipPlacer, box_places, overview_order
from widgets.module_tree import model_name, name_under
from widgets.theme import is_dark, luminance

OP, PARAM, INPUT, MODULE = 0, 1, 2, 3
_SOURCE_KEY = re.compile(r"/in\d+$")  # a parameter's or input's key: "Net.fc1/linear:0/in1"
BACKGROUND = "#f6f7f9"
LABEL_MIN_PX = 28.0  # a node this wide on screen gets its label (the demo fitted at 1280x720: 36 px)
POOL = 500  # labels placed at most (beyond that, nodes are too small to read anyway)
CHUNK = 4096  # edge segments per QPainterPath
METRIC_BINS = 32
READABLE_PX = 10  # a node label drawn smaller than this does not read at a glance: a stop zooms in
FOLLOW_MARGIN = 0.12  # of the view, each side: a current node nearer the edge than this is panned in,
FOLLOW_ROOM = 0.3  # until this far from the edge
OVERVIEW_PX = LABEL_MIN_PX  # fitted, nodes this wide show a small graph with its labels: stops keep it whole
FIT_NODE_PX = 140.0  # a graph fitted to the window shows a typical node at most this wide
FOLLOW_FRAMES = 8  # frames (16 ms each) of a stop's pan or zoom, so the eye can follow where it goes

# op families and their colours (fill, border); the op name decides the family
FAMILIES = {
    "linear": ("linear matmul mm bmm addmm einsum outer conv conv1d conv2d conv3d conv_transpose1d conv_transpose2d "
               "conv_transpose3d embedding unfold fold grid_sampler_2d grid_sampler_3d svd qr lu_factor "
               "solve_triangular"),
    "activation": ("relu gelu silu sigmoid tanh softmax log_softmax leaky_relu elu softplus mish hardtanh relu6 selu "
                   "celu rrelu hardswish hardsigmoid hardshrink softshrink softsign tanhshrink threshold"),
    "norm": "layer_norm batch_norm group_norm rms_norm norm dropout alpha_dropout feature_alpha_dropout",
    "reduce": ("sum mean max min amax amin argmax var std logsumexp prod cumsum cumprod cummax cummin "
               "logcumsumexp median nanmedian kthvalue mode"),
    "loss": ("cross_entropy mse_loss nll_loss l1_loss bce bce_with_logits binary_cross_entropy smooth_l1_loss "
             "huber_loss kl_div ctc_loss binary_cross_entropy_with_logits"),
    "shape": ("reshape view transpose permute getitem setitem cat stack split chunk squeeze unsqueeze "
              "expand flatten contiguous index_select gather scatter_add masked_fill t repeat pad flip movedim "
              "unflatten diagonal diag_embed"),
}
_FAMILY_OF = {op: fam for fam, ops in FAMILIES.items() for op in ops.split()}
# index: op families in FAMILIES order, then other ops, parameters, inputs, modules
PALETTE = [("#dbe7f5", "#3d6fa8"), ("#dcefd9", "#4a8c3f"), ("#d6eeec", "#2f8a83"), ("#e8dff2", "#7a55a8"),
           ("#f7d9d9", "#c0392b"), ("#eceef1", "#8a94a3"), ("#e4e7ec", "#5f6b7a"),
           ("#f6ecc9", "#b08a1e"), ("#d9f0de", "#3f8f55"), ("#e6e0f5", "#6a5acd")]
OTHER, PARAM_COLOUR, INPUT_COLOUR, MODULE_COLOUR = 6, 7, 8, 9
NONFINITE = ("#e03131", "#8b0000")  # NaN (or an engine alert): something is broken
# only +-Inf (an additive attention mask's -inf is one by design): amber, lighter than the red, so the two
# differ in lightness as well as hue (told apart with red-green colour blindness, and from viridis's yellow)
INFINITE = ("#fab005", "#9c5d00")
# an op that raised (a ShapeError): no values at all, so not the NaN red; dark enough for white labels
FAILED = ("#862e9c", "#4a1457")
# the levels of set_node_values's `nonfinite` (as app.graph_model.nonfinite_array): amber +-Inf without an alert;
# red NaN, +-Inf an alert named, both (or not known which); an error
INF_ONLY, NAN, INF, NAN_INF, ERROR = 1, 2, 3, 4, 5
RED_NAMES = {NAN: "NaN", INF: "\u00b1Inf (alert)", NAN_INF: "NaN/Inf"}  # the legend's red, by what its nodes hold
BREAKPOINT = ("#e03131", "#ffffff")  # fill, ring: the timeline's breakpoint red
BREAKPOINT_RADIUS = 5.0  # pixels
TITLE_H = 24.0  # a module box's title bar, in scene units
UNKNOWN = ("#e4e6ea", "#a0a6b0")
GROUP_FILLS = ["#edf1f7", "#fbfcfe"]  # alternate by depth, so nested boxes stand apart
GROUP_BORDER = "#a9b3c2"
EDGE = "#9aa3b1"
BACKWARD = "#e8590c"
CURRENT, SELECTED, CHANGED = "#f59f00", "#1c7ed6", "#2f9e44"
# a stop that is no step's (set_stop): the current node's halo and badge in the timeline's marker colour, so
# a stop at a breakpoint or an alert does not look like one more step
STOP_COLOURS = {"breakpoint": BREAKPOINT[0], "alert": "#f08c00"}


@dataclass(frozen=True)
class CanvasColours:
    """Everything the canvas paints that depends on a light or dark palette."""

    background: str = BACKGROUND
    palette: tuple = tuple(PALETTE)  # (fill, border) per op family, as PALETTE
    unknown: tuple = UNKNOWN
    group_fills: tuple = tuple(GROUP_FILLS)
    group_border: str = GROUP_BORDER
    title_tint: tuple = (40, 60, 90, 22)  # over a module box's title bar
    title_text: str = "#3b4452"
    edge: str = EDGE
    edge_text: str = "#5f6875"  # 5.3 on the background (#6b7482 read at 4.4)
    port: tuple = ("#ffffff", "#5f6b7a")  # fill, line
    selected: str = SELECTED
    changed: str = CHANGED
    legend: tuple = ("#c3cad5", (255, 255, 255, 230), "#222", "#444")  # border, fill, title, text
    dark: bool = False


LIGHT_COLOURS = CanvasColours()
# dark, tinted fills with bright borders: labels turn white on them (see _Nodes.set_colours); NaN red,
# Inf amber, the current op's amber halo and breakpoint red stay as in light mode, so they mean the same
DARK_COLOURS = CanvasColours(
    background="#1e1f22",
    palette=(("#1e3a5f", "#5b9bd5"), ("#1f3d24", "#69b35c"), ("#173d3a", "#45b0a6"), ("#342a4a", "#a38bd8"),
             ("#4a2124", "#e5686a"), ("#2c3038", "#8f99a8"), ("#30343b", "#9aa4b3"),
             ("#453a17", "#d4a72c"), ("#1d3d27", "#5bb673"), ("#352f4d", "#9488e6")),
    unknown=("#2c2f35", "#7a828e"),
    group_fills=("#26282d", "#2e3137"),
    group_border="#5f6672",
    title_tint=(255, 255, 255, 14),
    title_text="#d0d6de",
    edge="#7a8392",
    edge_text="#a3acb9",
    port=("#c3cad5", "#1e1f22"),
    selected="#4dabf7",
    changed="#51cf66",
    legend=("#4a505a", (43, 45, 49, 235), "#e9ecef", "#c9d1dc"),
    dark=True,
)


def canvas_colours(palette: QPalette) -> CanvasColours:
    """The canvas colours for `palette`: dark ones (on the palette's Base) when its window is dark."""
    if not is_dark(palette):
        return LIGHT_COLOURS
    return replace(DARK_COLOURS, background=palette.color(QPalette.ColorRole.Base).name())


def family_index(op: str, kind: int) -> int:
    """The palette index of a node: op family, or parameter / input / module."""
    if kind == PARAM:
        return PARAM_COLOUR
    if kind == INPUT:
        return INPUT_COLOUR
    if kind == MODULE:
        return MODULE_COLOUR
    fam = _FAMILY_OF.get(op)
    return list(FAMILIES).index(fam) if fam else OTHER


def metric_colours(values: np.ndarray) -> tuple[np.ndarray, list[QColor], float, float]:
    """(bin per node, -1 where unknown; bin colours; lo; hi): log scale when values span decades."""
    known = np.isfinite(values)
    bins = np.full(len(values), -1, np.int64)
    cmap = pg.colormap.get("viridis")
    colours = [QColor(*cmap.map(t, mode="byte")[:3]) for t in np.linspace(0.1, 1.0, METRIC_BINS)]
    if not known.any():
        return bins, colours, math.nan, math.nan
    v = values[known]
    lo, hi = float(v.min()), float(v.max())
    if lo > 0 and hi / lo > 100:
        t = (np.log10(v) - math.log10(lo)) / max(math.log10(hi) - math.log10(lo), 1e-12)
    else:
        t = (v - lo) / (hi - lo) if hi > lo else np.full(len(v), 0.5)
    bins[known] = np.clip((t * METRIC_BINS).astype(np.int64), 0, METRIC_BINS - 1)
    return bins, colours, lo, hi


LIGHT, MID, DARK = 0, 1, 2  # how dark a node's fill is (its label is drawn to stay readable on it)
TEXT_ON = (("#1f2430", "#5b6472"), ("#1f2430", "#3a414d"), ("#ffffff", "#e3e7ee"))  # (label, shape line)


class _Nodes(pg.GraphicsObject):
    """Every node in one item: rectangles batched by colour; rounded, with port marks, when zoomed in."""

    def __init__(self) -> None:
        super().__init__()
        self.rects = np.zeros((0, 4))
        self.colour = np.zeros(0, np.int64)
        self.brushes: list[QBrush] = []
        self.solid: list[QBrush] = []
        self.pens: list[QPen] = []
        self._qrects: list[QRectF] = []
        self._batches: list[list[QRectF]] = []
        self.ports = np.zeros((0, 2))
        self.detail = False
        self.typical_width = 0.0
        self.tone = np.zeros(0, np.int64)  # LIGHT, MID or DARK per node: its label's colours
        self.port = (QColor(LIGHT_COLOURS.port[0]), QColor(LIGHT_COLOURS.port[1]))  # fill, line
        self._bounds = QRectF()

    def set_data(self, rects: np.ndarray, ports: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.rects = rects
        self.ports = ports
        self._qrects = [QRectF(*r) for r in rects.tolist()]
        if len(rects):
            x0, y0 = rects[:, 0].min(), rects[:, 1].min()
            x1, y1 = (rects[:, 0] + rects[:, 2]).max(), (rects[:, 1] + rects[:, 3]).max()
            self._bounds = QRectF(x0, y0, x1 - x0, y1 - y0)
        else:
            self._bounds = QRectF()
        self.colour = np.zeros(len(rects), np.int64)
        self.typical_width = float(np.median(rects[:, 2])) if len(rects) else 0.0

    def set_colours(self, colour: np.ndarray, fills: list[QColor], borders: list[QColor]) -> None:
        self.colour = colour
        self.brushes = [QBrush(c) for c in fills]
        self.solid = [QBrush(c) for c in borders]  # pale fills vanish when a node is a pixel or two
        # labels on dark or saturated fills (the NaN red) are drawn in white: HSL lightness calls that
        # red light, and its grey shape line read at a contrast of 1.9; on mid fills (the Inf amber) the
        # grey shape line gets darker
        lum = np.array([luminance(c) for c in fills], float)
        self.tone = np.select([lum < 0.3, lum < 0.6], [DARK, MID], LIGHT)[colour]
        self.pens = [pg.mkPen(c, width=1, cosmetic=True) for c in borders]
        order = np.argsort(colour, kind="stable")
        cuts = np.searchsorted(colour[order], np.arange(len(fills) + 1))
        self._batches = [[self._qrects[i] for i in order[cuts[c]:cuts[c + 1]].tolist()]
                         for c in range(len(fills))]
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if not len(self.rects):
            return
        px = self.pixelLength(pg.Point(1, 0)) if self.scene() is not None else 1.0
        scale = 1.0 / px if px else 1.0
        wide = self.typical_width * scale
        if self.detail and wide >= LABEL_MIN_PX:
            self._paint_detail(painter, option.exposedRect, scale)
            return
        tiny = wide < 3.0  # below a few pixels a border only darkens the fill
        for c, batch in enumerate(self._batches):
            if batch:
                painter.setBrush(self.solid[c] if tiny else self.brushes[c])
                painter.setPen(Qt.PenStyle.NoPen if tiny else self.pens[c])
                painter.drawRects(batch)

    def _paint_detail(self, painter: QPainter, exposed: QRectF, scale: float) -> None:
        r = self.rects
        visible = _inside(r[:, :2], r[:, :2] + r[:, 2:], exposed)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        radius = 5.0
        for i in visible.tolist():
            c = self.colour[i]
            painter.setBrush(self.brushes[c])
            painter.setPen(self.pens[c])
            painter.drawRoundedRect(self._qrects[i], radius, radius)
        p = self.ports
        if len(p):
            near = _inside(p, p, exposed)
            painter.setBrush(self.port[0])
            painter.setPen(pg.mkPen(self.port[1], width=1, cosmetic=True))
            d = 3.0 / scale
            for x, y in p[near].tolist():
                painter.drawEllipse(QPointF(x, y), d, d)


class _Paths(pg.GraphicsObject):
    """Polylines as a few QPainterPaths (chunks, so a zoomed-in repaint skips most of them)."""

    def __init__(self, colour: str, width: float = 1.0, dashed: bool = False) -> None:
        super().__init__()
        self.pen = pg.mkPen(colour, width=width, cosmetic=True)
        if dashed:
            self.pen.setStyle(Qt.PenStyle.DashLine)
        self.paths: list = []
        self._rects: list[QRectF] = []
        self._bounds = QRectF()
        self.antialias = True

    def set_polylines(self, points: np.ndarray, connect: np.ndarray, seg_ptr: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.paths = []
        n_seg = len(seg_ptr) - 1
        for s0 in range(0, n_seg, CHUNK):
            a, b = int(seg_ptr[s0]), int(seg_ptr[min(s0 + CHUNK, n_seg)])
            if b > a:
                c = connect[a:b].astype(np.int32)
                c[-1] = 0
                path = pg.arrayToQPath(points[a:b, 0], points[a:b, 1], connect=c, finiteCheck=False)
                self.paths.append(path)
        # padded: a straight vertical (or horizontal) run of edges has a rectangle of zero width, which
        # intersects nothing, so a chain x -> mul -> sum drew its ports and no lines
        self._rects = [path.boundingRect().adjusted(-1, -1, 1, 1) for path in self.paths]
        self._bounds = QRectF()
        for rect in self._rects:
            self._bounds = self._bounds.united(rect)
        self.antialias = len(points) < 40000
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, self.antialias)
        painter.setPen(self.pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        exposed = option.exposedRect
        for path, rect in zip(self.paths, self._rects, strict=True):
            if rect.intersects(exposed):
                painter.drawPath(path)


class _Groups(pg.GraphicsObject):
    """Expanded module groups as boxes, shaded by depth, with a title bar."""

    def __init__(self, title_h: float) -> None:
        super().__init__()
        self.rects = np.zeros((0, 4))
        self.depth = np.zeros(0, np.int64)
        self.title_h = title_h
        self.colours = LIGHT_COLOURS
        self._batches: list = []
        self._titles: list = []
        self._bounds = QRectF()

    def set_data(self, rects: np.ndarray, depth: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.rects, self.depth = rects, depth
        # outer boxes first: one batch per depth, so an inner box is never painted over by its parent
        fills = [QColor(c) for c in self.colours.group_fills]
        self._batches = [(fills[d % len(fills)], [QRectF(*r) for r in rects[depth == d].tolist()])
                         for d in np.unique(depth).tolist()]
        self._titles = [QRectF(x, y, w, min(self.title_h, h)) for x, y, w, h in rects.tolist()]
        self._bounds = QRectF()
        if len(rects):
            x0, y0 = rects[:, :2].min(axis=0)
            x1, y1 = (rects[:, :2] + rects[:, 2:]).max(axis=0)
            self._bounds = QRectF(x0, y0, x1 - x0, y1 - y0)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def set_colours(self, colours: CanvasColours) -> None:
        self.colours = colours
        self.set_data(self.rects, self.depth)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setPen(pg.mkPen(self.colours.group_border, width=1, cosmetic=True))
        for fill, batch in self._batches:
            painter.setBrush(fill)
            painter.drawRects(batch)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(*self.colours.title_tint))
        if self._titles:
            painter.drawRects(self._titles)


class _Marks(pg.GraphicsObject):
    """Outlines for the current, selected, changed and found nodes; backward badges."""

    def __init__(self) -> None:
        super().__init__()
        self.rects = np.zeros((0, 4))
        self.current = -1
        self.selected = -1
        self.changed = np.zeros(0, np.int64)
        self.badges = np.zeros(0, np.int64)
        self.show_badges = False
        self.breakpoints = np.zeros(0, np.int64)  # op nodes a breakpoint names
        self.module_breakpoints = np.zeros(0, np.int64)  # collapsed module nodes a breakpoint names
        self.group_breakpoints = np.zeros((0, 2))  # top-left corners of module boxes a breakpoint names
        self.current_group: tuple | None = None  # (name, (x, y, w, h)) of the module box being entered or left
        self.stop = ""  # "breakpoint" or "alert": what stopped the run at the current node ('' a step, or running)
        self.colours = LIGHT_COLOURS
        self._bounds = QRectF()

    def set_rects(self, rects: np.ndarray, bounds: QRectF) -> None:
        self.prepareGeometryChange()
        self.rects = rects
        self._bounds = bounds.adjusted(-20, -20, 20, 20)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def _rect(self, i: int, grow: float) -> QRectF:
        x, y, w, h = self.rects[i]
        return QRectF(x - grow, y - grow, w + 2 * grow, h + 2 * grow)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if not len(self.rects):
            return
        px = self.pixelLength(pg.Point(1, 0)) or 1.0
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if len(self.changed):
            pen = pg.mkPen(self.colours.changed, width=2, cosmetic=True)
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRects([self._rect(i, 3 * px) for i in self.changed.tolist()])
        if self.show_badges and len(self.badges):
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(BACKWARD))
            r = max(4.0, 4.0 * px)
            for i in self.badges.tolist():
                x, y, w, _ = self.rects[i]
                painter.drawEllipse(QPointF(x + w, y), r, r)
            painter.setBrush(Qt.BrushStyle.NoBrush)
        if len(self.breakpoints) or len(self.module_breakpoints) or len(self.group_breakpoints):
            painter.setPen(pg.mkPen(BREAKPOINT[1], width=1, cosmetic=True))
            painter.setBrush(QColor(BREAKPOINT[0]))
            r = BREAKPOINT_RADIUS * px
            for i in self.breakpoints.tolist():  # an op's: a debugger's red dot on its left edge
                x, y, _, h = self.rects[i]
                painter.drawEllipse(QPointF(x, y + h / 2), r, r)
            # a module's: inside its own box, at the left of its title, so it cannot be read as the enclosing
            # box's (a nested box's corner lies a few pixels from its parent's border)
            for x, y in self.group_breakpoints.tolist():
                painter.drawEllipse(group_breakpoint_centre(x, y, px), r, r)
            for i in self.module_breakpoints.tolist():
                x, y, _, h = self.rects[i]
                painter.drawEllipse(QPointF(x + r + 7 * px, y + min(h / 2, r + 6 * px)), r, r)  # clear of the corner
            painter.setBrush(Qt.BrushStyle.NoBrush)
        current = STOP_COLOURS.get(self.stop, CURRENT)
        if self.current_group is not None:  # a stop at a module call's start or end: its box, dashed
            pen = pg.mkPen(current, width=3, cosmetic=True)
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            x, y, w, h = self.current_group[1]
            painter.drawRect(QRectF(x - 3 * px, y - 3 * px, w + 6 * px, h + 6 * px))
            if self.stop:
                self._paint_stop_badge(painter, QRectF(x, y, w, h), px)
        # a halo several pixels wide, so the node stands out even when the graph is a speck
        for i, colour in ((self.selected, self.colours.selected), (self.current, current)):
            if i >= 0:
                painter.setPen(pg.mkPen(colour, width=3, cosmetic=True))
                painter.drawRect(self._rect(i, 3 * px))
                if self.rects[i, 2] / px < 24:  # a speck on screen: add a ring around it
                    painter.drawEllipse(self._rect(i, 0).center(), 12 * px, 12 * px)
        if self.current >= 0 and self.stop:
            self._paint_stop_badge(painter, self._rect(self.current, 3 * px), px)

    def _paint_stop_badge(self, painter: QPainter, rect: QRectF, px: float) -> None:
        """The timeline's marker for the stop on the top-right corner of `rect`: a breakpoint's red dot, an
        alert's amber triangle (white-rimmed, so it reads over the node and the halo)."""
        r, centre = 6 * px, rect.topRight()
        painter.setPen(pg.mkPen("#ffffff", width=1.5, cosmetic=True))
        painter.setBrush(QColor(STOP_COLOURS[self.stop]))
        if self.stop == "breakpoint":
            painter.drawEllipse(centre, r, r)
        else:
            painter.drawPolygon([QPointF(centre.x(), centre.y() - 1.2 * r), QPointF(centre.x() + r, centre.y() + r),
                                 QPointF(centre.x() - r, centre.y() + r)])
        painter.setBrush(Qt.BrushStyle.NoBrush)


def group_breakpoint_centre(x: float, y: float, px: float) -> QPointF:
    """Where a module box's breakpoint dot goes (scene units; `px`: scene units per pixel): at the left of the
    box's own title bar, inside the box, and below the bar's top where the bar is too thin for it."""
    r = BREAKPOINT_RADIUS * px
    return QPointF(x + r + 3 * px, y + max(TITLE_H / 2, r + 2 * px))


class _Label(QGraphicsItem):
    """A pooled label: fixed pixel size at any zoom, text elided to the room it has."""

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(10)
        self.lines: tuple[str, ...] = ()
        self.rect = QRectF()
        self.align = Qt.AlignmentFlag.AlignCenter
        self.fonts: tuple[QFont, ...] = ()
        self.colours: tuple[QColor, ...] = ()
        self.background: QColor | None = None
        self.elide = Qt.TextElideMode.ElideRight
        self.short = ""

    def show_text(self, x: float, y: float, lines: tuple[str, ...], rect: QRectF, fonts, colours,
                  align, background: QColor | None = None,
                  elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight, short: str = "") -> None:
        """`short`: what the first line reads where it does not fit whole (a named op's name without its op)."""
        self.prepareGeometryChange()
        self.setPos(x, y)
        self.lines, self.rect, self.fonts, self.colours, self.align = lines, rect, fonts, colours, align
        self.background, self.elide, self.short = background, elide, short
        self.setVisible(True)
        self.update()

    def boundingRect(self) -> QRectF:
        return self.rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        if self.background is not None:  # a module title: edges pass under it, not through the text
            painter.fillRect(self.rect, self.background)
        for j, (font, r, text) in enumerate(self.drawn()):
            painter.setFont(font)
            painter.setPen(self.colours[j])
            painter.drawText(r, int(self.align | Qt.AlignmentFlag.AlignVCenter), text)

    def drawn(self) -> list[tuple[QFont, QRectF, str]]:
        """Each line as it is drawn: its font (made smaller to fit), its rectangle and its text, elided."""
        n = len(self.lines)
        h = self.rect.height() / max(n, 1)
        out = []
        for j, text in enumerate(self.lines):
            pad = min(4.0, self.rect.width() * 0.05)  # a small box's name keeps its room: "weight", not "wei…"
            r = QRectF(self.rect.left() + pad, self.rect.top() + j * h, self.rect.width() - 2 * pad, h)
            font = _fitted(self.fonts[j], text, r.width())
            metrics = QFontMetricsF(font)
            if j == 0 and self.short and metrics.horizontalAdvance(text) > r.width():
                # "loss", its op in the tooltip, not "loss \u00b7 cros\u2026" (a box at a scale factor of 1.5)
                text = self.short
                font = _fitted(self.fonts[j], text, r.width())
                metrics = QFontMetricsF(font)
            elide = self.elide if j == 0 else Qt.TextElideMode.ElideRight
            if elide == Qt.TextElideMode.ElideLeft or (j == 0 and NUMBERED_ROOT.match(text)):
                text = _last_names(text, metrics, r.width())  # a dotted path: its last names, not "…eight"
            out.append((font, r, metrics.elidedText(text, elide, r.width())))
        return out


def _last_names(path: str, metrics: QFontMetricsF, width: float) -> str:
    """`path` ("fc1.weight") without as many leading dotted names as it takes to fit `width` ("weight"); a second
    model's root name stays in front ("Actor_2…weight": a target network's parameter beside the online one's),
    its last name cut at the end by the painter where even that is too wide."""
    if metrics.horizontalAdvance(path) <= width:
        return path
    root = NUMBERED_ROOT.match(path)
    if root is not None and root.end() < len(path):
        rest = path[root.end():]
        while True:
            short = f"{root.group(1)}\u2026{rest}"
            if metrics.horizontalAdvance(short) <= width or "." not in rest:
                return short  # the root kept even where the last name must then be cut at its end
            rest = rest.split(".", 1)[1]
    while "." in path and metrics.horizontalAdvance(path) > width:
        path = path.split(".", 1)[1]
    return path


def _elide(kind: int, text: str) -> Qt.TextElideMode:
    """Where a node's name gives way: a parameter's dotted path ("encoder.out_proj.weight", one from another
    module) keeps its end, which says which it is; a short name ("weight") its start, "wei…" not "…ight"."""
    return Qt.TextElideMode.ElideLeft if kind == PARAM and "." in text else Qt.TextElideMode.ElideRight


def _label_px(height: float, two_lines: bool) -> int:
    """The pixel size of a node's label on a node `height` pixels tall: it grows with the node, up to 12 px."""
    return int(min(12, max(8, height * (0.32 if two_lines else 0.45))))


MIN_LABEL_PX = 7  # a label shrinks to fit its node down to this size, then is elided


def _fitted(font: QFont, text: str, width: float) -> QFont:
    """`font`, made smaller (not below MIN_LABEL_PX) when `text` would not fit `width` pixels."""
    need = QFontMetricsF(font).horizontalAdvance(text)
    px = font.pixelSize()
    if need <= width or px <= MIN_LABEL_PX or width <= 0:
        return font
    smaller = QFont(font)
    smaller.setPixelSize(max(MIN_LABEL_PX, int(px * width / need)))
    return smaller


class _Legend(pg.GraphicsObject):
    """The key to node colours (fixed on screen): a metric's colour bar, name and range with non-finite, Inf and
    no-data swatches; coloured by op family, only the swatches of the flags shown. Each names what its nodes
    hold: the red "NaN", "\u00b1Inf (alert)" or "NaN/Inf", a failed op "error"."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""
        self.lo = self.hi = math.nan
        self.log = False
        self.colours: list[QColor] = []
        self.flags: tuple[int, ...] = ()  # the levels the nodes show (INF_ONLY, NAN, INF, NAN_INF, ERROR)
        self.theme = LIGHT_COLOURS
        self.setZValue(20)

    def _swatches(self) -> list:
        red = [level for level in (NAN, INF, NAN_INF) if level in self.flags]
        swatches = []
        if red or self.name:  # a metric's key always shows the red, named for what its nodes hold (NaN by default)
            swatches.append((NONFINITE, RED_NAMES[red[0]] if len(red) == 1 else "NaN/Inf" if red else "NaN"))
        if INF_ONLY in self.flags or self.name:
            swatches.append((INFINITE, "\u00b1Inf only"))
        if ERROR in self.flags:
            swatches.append((FAILED, "error (op raised)"))
        if self.name:
            swatches.append((self.theme.unknown, "no data"))
        return swatches

    def boundingRect(self) -> QRectF:
        rows = len(self._swatches())
        if self.name:
            return QRectF(0, 0, 300, max(72, 20 + 17 * rows))
        return QRectF(0, 0, 130, 8 + 17 * rows)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        swatches = self._swatches()
        if not swatches:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        border, fill, _title, text_colour = self.theme.legend
        painter.setPen(pg.mkPen(border))
        painter.setBrush(QColor(*fill))
        painter.drawRoundedRect(self.boundingRect(), 6, 6)
        font = QFont()
        font.setPixelSize(11)
        painter.setFont(font)
        if self.name:
            self._paint_bar(painter)
        x, y = (180, 20) if self.name else (8, 6)
        for j, ((fill, border), text) in enumerate(swatches):
            painter.setBrush(QColor(fill))
            painter.setPen(pg.mkPen(border))
            painter.drawRect(QRectF(x, y + 17 * j, 12, 12))
            painter.setPen(QColor(text_colour))
            painter.drawText(QRectF(x + 16, y + 17 * j - 1, 100, 14), int(Qt.AlignmentFlag.AlignLeft), text)

    def _paint_bar(self, painter: QPainter) -> None:
        _border, _fill, title, text_colour = self.theme.legend
        painter.setPen(QColor(title))
        scale = " (log)" if self.log else ""
        painter.drawText(QRectF(8, 4, 234, 14), int(Qt.AlignmentFlag.AlignLeft), f"{self.name}{scale}")
        grad = QLinearGradient(8, 0, 168, 0)
        for j, c in enumerate(self.colours):
            grad.setColorAt(j / max(len(self.colours) - 1, 1), c)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(grad))
        painter.drawRect(QRectF(8, 21, 160, 12))
        painter.setPen(QColor(text_colour))
        painter.drawText(QRectF(8, 36, 80, 14), int(Qt.AlignmentFlag.AlignLeft), _number(self.lo))
        painter.drawText(QRectF(88, 36, 80, 14), int(Qt.AlignmentFlag.AlignRight), _number(self.hi))


def _blend(under: QColor, over: QColor, alpha: float) -> QColor:
    """`over` painted with opacity `alpha` on `under`."""
    return QColor(*(round(u + (o - u) * alpha) for u, o in
                    zip((under.red(), under.green(), under.blue()), (over.red(), over.green(), over.blue()),
                        strict=True)))


def _number(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.3g}"


def _keep_inside(c: float, span: float, lo: float, hi: float, near_lo: float, near_hi: float) -> float:
    """The view centre, near `c`, for a view `span` wide to show [lo, hi] and, where it fits, [near_lo, near_hi]:
    `c` itself while they are clear of the margins; moved, they get room to spare, so that stepping on
    pans the view now and then rather than at every step; a box too big for the view is centred."""
    def clamp(a: float, b: float, margin: float) -> float | None:
        m = span * margin
        first, last = b - span / 2 + m, a + span / 2 - m
        return min(max(c, first), last) if first <= last else None

    for a, b in ((near_lo, near_hi), (lo, hi)):
        if clamp(a, b, FOLLOW_MARGIN) == c:
            return c
        for margin in (FOLLOW_ROOM, FOLLOW_MARGIN):
            moved = clamp(a, b, margin)
            if moved is not None:
                return moved
    return (lo + hi) / 2


def _titled(name: str, cls: str) -> str:
    """A module's title: its name, and its class where that says more ("layers.0  \u00b7  TransformerEncoderLayer")."""
    return f"{name}  \u00b7  {cls}" if cls and cls != name else name


def _caption(view, i: int) -> str:
    """What node i's box reads (an input's or a parameter's short name, an op's name), else its label."""
    names = getattr(view, "caption", None) or getattr(view, "label", view.keys)
    return names[i]


def _inside(lo: np.ndarray, hi: np.ndarray, rect: QRectF) -> np.ndarray:
    """Indices of the boxes (corners lo, hi as (n, 2)) that intersect rect."""
    return np.flatnonzero((hi[:, 0] >= rect.left()) & (lo[:, 0] <= rect.right())
                          & (hi[:, 1] >= rect.top()) & (lo[:, 1] <= rect.bottom()))


class GraphCanvas(pg.GraphicsView):
    """The graph view widget (see the module docstring). Signals carry node keys or module paths."""

    nodeClicked = Signal(str)
    nodeDoubleClicked = Signal(str)
    groupToggleRequested = Signal(str)
    selectionChanged = Signal(str)
    revealRequested = Signal(str)  # a find's match hidden in a collapsed module: open what hides it, then show it

    def __init__(self, parent=None) -> None:
        self.colours = LIGHT_COLOURS
        super().__init__(parent, background=BACKGROUND)
        self.box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.02)
        self.setCentralItem(self.box)
        self.groups_item = _Groups(24.0)
        self.edges_item = _Paths(EDGE, 1.0)
        self.backward_item = _Paths(BACKWARD, 1.6, dashed=True)
        self.nodes_item = _Nodes()
        self.marks_item = _Marks()
        # z: boxes, edges, backward overlay, nodes, then (above the labels, at 10) the marks, so a
        # module's title never hides the current op
        for z, item in zip((0, 1, 2, 3, 20), (self.groups_item, self.edges_item, self.backward_item,
                                              self.nodes_item, self.marks_item), strict=True):
            item.setZValue(z)
            # paint() then gets the exposed area, not the whole item: culling keeps zoomed-in repaints fast
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
            self.box.addItem(item, ignoreBounds=True)
        self.backward_item.setVisible(False)
        self.legend = _Legend()
        self.legend.setParentItem(self.box)
        self.legend.setPos(10, 10)
        self.legend.setVisible(False)
        self._labels = [_Label(self.box.childGroup) for _ in range(POOL)]
        for label in self._labels:
            label.setVisible(False)
        self._fonts: dict = {}
        self._advances: dict[str, float] = {}  # overview titles' widths in pixels, measured once each
        self._group_titles: list[str] = []
        self._breakpoint_groups: set[int] = set()  # module boxes marked with a breakpoint's dot
        self._group_depth = np.zeros(1, np.int64)
        self._title_fills: list[QColor] = []
        self._last_values: tuple = (None, None, "", None)  # set_node_values's arguments, to recolour with
        self.view = None
        self.layout_data = None
        self._labels_scale: tuple | None = None  # (view, its sizes, _whole_labels_scale()): measured once a graph
        self._index: dict[str, int] = {}
        self._edge_anchor = np.zeros((0, 2))
        self._search = ("", "")  # (the text searched last, the key of the match it went to)
        self.search_place = (0, 0)  # (which, of how many) the last search selected; (0, 0): no match
        # (view, its nodes' names, their modules and keys, the keys hidden in collapsed modules), lower-cased
        self._searched: tuple = (None, [], [], [])
        self._notes: dict[int, str] = {}  # extra hover lines per node (what its NaN/Inf are)
        self._stop_text = ""  # why the run stopped at the current node, a hover line (set_stop)
        self.hovered = -1
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.timeout.connect(self._update_detail)
        # the view fit() set, whether readable was asked and whether it showed the graph across its width (not whole)
        self._fit_view: tuple[QRectF, bool, bool] | None = None
        self._glide: tuple = ()  # (from, to, frame) of a stop's pan or zoom under way
        self._glide_timer = QTimer(self)
        self._glide_timer.setInterval(16)
        self._glide_timer.timeout.connect(self._glide_step)
        self._closed = False
        self._apply_colours(canvas_colours(self.palette()))
        self.box.sigTransformChanged.connect(self._schedule_detail)
        self.box.sigRangeChanged.connect(self._schedule_detail)
        self.box.sigRangeChangedManually.connect(self._stop_glide)  # the person's own zoom or pan wins
        self.scene().sigMouseClicked.connect(self._on_click)
        self.scene().sigMouseMoved.connect(self._on_move)
        self.setMouseTracking(True)

    # ---- data -----------------------------------------------------------------------------
    def set_graph(self, view, layout) -> None:
        """Show `view` laid out by `layout`; with the layout already shown, only labels and data change.

        Colours go back to op families: call set_node_values after it. Passing the very same view and
        layout again costs nothing.
        """
        if view is self.view and layout is self.layout_data:
            backward = np.asarray(getattr(view, "backward", np.zeros(0, np.int64)))
            if len(backward) != len(self.marks_item.badges):  # more backward nodes ran since
                self.marks_item.badges = backward
                self._build_backward()
                self.marks_item.update()
            return
        same_layout = layout is self.layout_data
        self.view = view
        self._index = {k: i for i, k in enumerate(view.keys)}
        if not same_layout:
            self.layout_data = layout
            rects = np.concatenate((layout.pos - layout.size / 2, layout.size), axis=1)
            self.nodes_item.set_data(rects, getattr(layout, "ports", np.zeros((0, 2))))
            parent = np.asarray(getattr(view, "group_parent", np.array([-1])))
            depth = np.zeros(len(parent), np.int64)
            for g in range(1, len(parent)):
                depth[g] = depth[parent[g]] + 1
            self.groups_item.set_data(layout.group_rect[1:], depth[1:])
            self._group_depth = depth
            names = list(getattr(view, "groups", []))
            # a box is titled relative to the box around it: "layers.0" inside "encoder", not the full path
            # and a model's by the name the script calls it by ("D", its class beside it), not "Sequential_2"
            models = getattr(view, "root_names", {})
            self._group_titles = [name_under(name, names[parent[g]]) if g > 0 and parent[g] > 0 else
                                  model_name(name, models) for g, name in enumerate(names)]
            self.edges_item.set_polylines(layout.edge_points, layout.edge_connect, layout.seg_ptr)
            self._edge_anchor = self._edge_anchors(layout)
            self.marks_item.set_rects(rects, self.nodes_item.boundingRect())
        self.set_node_values(None)
        self.marks_item.changed = np.flatnonzero(np.asarray(getattr(view, "added", np.zeros(0, bool))))
        self.marks_item.badges = np.asarray(getattr(view, "backward", np.zeros(0, np.int64)))
        self._build_backward()
        if not same_layout:  # the same layout again (a new iteration): keep what is selected and current
            self.marks_item.current = self.marks_item.selected = -1
            self.marks_item.current_group = None
            self.set_breakpoints(np.zeros(0), np.zeros(0))  # the presenter marks the new view's
        self.marks_item.update()
        self._update_detail()

    def set_node_values(self, values: np.ndarray | None, nonfinite: np.ndarray | None = None,
                        name: str = "", notes: dict[int, str] | None = None) -> None:
        """Colour nodes by a metric (NaN: no data), or by op family when `values` is None; over either,
        `nonfinite` levels: NAN red, INF_ONLY amber (a bool array: True is NaN). `notes`: extra hover
        text per node index (what its non-finite values are)."""
        view = self.view
        if view is None:
            return
        self._last_values = (values, nonfinite, name, notes)
        n = len(view.keys)
        theme = self.colours
        if values is None:
            ops = getattr(view, "op", None) or [""] * n
            colour = np.array([family_index(ops[i], int(view.kind[i])) for i in range(n)], np.int64)
            fills = [QColor(f) for f, _ in theme.palette]
            borders = [QColor(b) for _, b in theme.palette]
            self.legend.name = ""
        else:
            bins, colours, lo, hi = metric_colours(np.asarray(values, float))
            colour = np.where(bins < 0, METRIC_BINS, bins)
            fills = [*colours, QColor(theme.unknown[0])]
            # a border sets a node off the background: lighter than viridis's dark end on a dark canvas
            borders = [*((c.lighter(160) if theme.dark else c.darker(140)) for c in colours),
                       QColor(theme.unknown[1])]
            self.legend.name, self.legend.lo, self.legend.hi = name or "metric", lo, hi
            self.legend.log = bool(lo > 0 and hi / lo > 100) if not math.isnan(lo) else False
            self.legend.colours = colours
        # NaN, Inf and errors override any other colour
        fills += [QColor(INFINITE[0]), QColor(NONFINITE[0]), QColor(FAILED[0])]
        borders += [QColor(INFINITE[1]), QColor(NONFINITE[1]), QColor(FAILED[1])]
        self.legend.flags = ()
        if nonfinite is not None and len(nonfinite):
            level = np.asarray(nonfinite)
            if level.dtype == bool:
                level = level * NAN
            base = len(fills) - 3
            colour = np.select([level == ERROR, level >= NAN, level == INF_ONLY], [base + 2, base + 1, base], colour)
            self.legend.flags = tuple(v for v in (NAN, INF, NAN_INF, INF_ONLY, ERROR) if (level == v).any())
        self._notes = dict(notes or {})
        self.legend.prepareGeometryChange()
        self.legend.setVisible(bool(self.legend.name or self.legend.flags))
        self.legend.update()
        self.nodes_item.set_colours(colour, fills, borders)
        self._update_detail()

    def set_current(self, key: str | None, follow: bool = False) -> None:
        """Highlight the node running now (a key of the structure: hidden ops light up their module)."""
        i = self._node_of(key)
        self.marks_item.current = i
        self.marks_item.current_group = None
        self.marks_item.update()
        if follow and i >= 0 and not self.box.viewRect().contains(QPointF(*self.layout_data.pos[i])):
            self.center_on(self.view.keys[i])

    def set_current_group(self, name: str | None, follow: bool = False) -> bool:
        """Highlight module box `name` (one of the view's groups) as where the run is, instead of a node
        (`follow`: pan to it when it is out of view); False when no such box is shown."""
        groups = list(getattr(self.view, "groups", ())) if self.view is not None else []
        if name is None or name not in groups or self.layout_data is None:
            self.marks_item.current_group = None
            self.marks_item.update()
            return False
        x, y, w, h = (float(v) for v in self.layout_data.group_rect[groups.index(name)])
        self.marks_item.current = -1
        self.marks_item.current_group = (name, (x, y, w, h))
        self.marks_item.update()
        if follow and not self.box.viewRect().contains(QPointF(x + w / 2, y + h / 2)):
            rect = self.box.viewRect()
            self.box.setRange(QRectF(x + w / 2 - rect.width() / 2, y + h / 2 - rect.height() / 2,
                                     rect.width(), rect.height()), padding=0)
            self._update_detail()
        return True

    def set_stop(self, kind: str = "", text: str = "") -> None:
        """Mark the current node (or module box) as where a breakpoint or an alert stopped the run (`kind`
        "breakpoint" or "alert", in the timeline's colours; `text`, why, joins its tooltip); '' a step's stop,
        or none: the usual amber halo."""
        if kind and kind not in STOP_COLOURS:
            raise ValueError(f"a stop is marked for 'breakpoint' or 'alert', not {kind!r}")
        self.marks_item.stop, self._stop_text = kind, text if kind else ""
        self.marks_item.update()

    @property
    def stop_kind(self) -> str:
        """What the current node is marked as the stop of: "breakpoint", "alert", or '' (a step, or none)."""
        return self.marks_item.stop

    @property
    def current_key(self) -> str | None:
        """The key of the node marked as where the run is (a collapsed module's, when the op is inside)."""
        i = self.marks_item.current
        return self.view.keys[i] if i >= 0 and self.view is not None else None

    @property
    def current_group(self) -> str | None:
        """The module box highlighted as where the run is, or None."""
        marked = self.marks_item.current_group
        return marked[0] if marked is not None else None

    def set_breakpoints(self, nodes: np.ndarray, groups: np.ndarray) -> None:
        """Mark nodes and module boxes (indices of the view's groups) that a breakpoint names."""
        marks = self.marks_item
        nodes = np.asarray(nodes, np.int64)
        module = self.view.kind[nodes] == MODULE if self.view is not None and len(nodes) else np.zeros(len(nodes), bool)
        marks.breakpoints, marks.module_breakpoints = nodes[~module], nodes[module]
        rects = getattr(self.layout_data, "group_rect", None)
        groups = np.asarray(groups, np.int64)
        marks.group_breakpoints = rects[groups, :2] if rects is not None and len(groups) else np.zeros((0, 2))
        self._breakpoint_groups = set(groups.tolist())  # their titles make room for the dot
        marks.update()
        self._update_detail()

    def set_backward_visible(self, visible: bool) -> None:
        """Show or hide the backward overlay (gradient flow paths and badges on nodes whose backward ran)."""
        self.backward_item.setVisible(visible)
        self.marks_item.show_badges = visible
        self.marks_item.update()

    @property
    def backward_visible(self) -> bool:
        """Whether the backward overlay is shown."""
        return self.backward_item.isVisible()

    def _build_backward(self) -> None:
        view, layout = self.view, self.layout_data
        flow = np.asarray(getattr(view, "backward_edges", np.zeros((0, 2))), np.int64).reshape(-1, 2)
        edges = np.asarray(view.edges, np.int64).reshape(-1, 2)
        if not len(flow) or not len(edges):
            self.backward_item.set_polylines(np.zeros((0, 2)), np.zeros(0, bool), np.zeros(1, np.int64))
            return
        index = {(a, b): e for e, (a, b) in enumerate(edges.tolist())}
        ptr, segs = layout.edge_seg_ptr, layout.edge_seg
        forward = [index[(a, b)] for b, a in flow.tolist() if (a, b) in index]
        seg = np.unique(np.concatenate([segs[ptr[e]:ptr[e + 1]] for e in forward] or [np.zeros(0, np.int64)]))
        lo, hi = layout.seg_ptr[seg], layout.seg_ptr[seg + 1]
        counts = hi - lo
        take = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        points = layout.edge_points[take] + (6.0, 0.0)  # beside the forward edge, not on it
        connect = np.ones(len(points), bool)
        ptr = np.concatenate(([0], np.cumsum(counts)))
        connect[ptr[1:] - 1] = False
        self.backward_item.set_polylines(points, connect, ptr)

    # ---- navigation -----------------------------------------------------------------------
    def fit(self, readable: bool = False, around: str | None = None) -> None:
        """Zoom to show the whole graph. `readable` (the view a graph gets by itself, and the person's Fit): one
        too tall for the canvas to show its labels whole (a deep network in a small window) across its whole
        width instead, around node `around` (else the current one), with its labels readable: the whole of a deep
        network was a hairline of specks (ResNet-150). Fitted, the graph is fitted again
        (alike) when the canvas changes size."""
        if self.layout_data is not None:
            self._stop_glide()
            across = self._across_rect(self._node_of(around) if around else -1) if readable else None
            self.box.setRange(across or self.fit_rect(), padding=0.02)
            self._fit_view = (self.box.targetRect(), readable, across is not None)
            self._update_detail()

    def fitted(self) -> str:
        """How the view is fitted, while it is: "whole", "across" (a graph too tall to read whole, across its width
        with labels that read: see fit), or "" (moved since, or never fitted)."""
        fitted = self._fit_view
        if fitted is None or self.layout_data is None or fitted[0] != self.box.targetRect():
            return ""
        return "across" if fitted[2] else "whole"

    def _across_rect(self, around: int = -1) -> QRectF | None:
        """The view of fit() for a graph whose whole would be specks without labels while its width leaves most
        of the canvas empty (a 1024x640 window showed a chain of 30-pixel boxes in a sixth of the canvas's
        width): its whole width, as large as labels read (no larger), centred on the current node, else its
        top; None where the whole graph reads, or its width gains little."""
        x0, y0, x1, y1 = self.layout_data.bounds
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        rects = self.nodes_item.rects
        typical, view_w, view_h = self.nodes_item.typical_width, self.box.width(), self.box.height()
        if not len(rects) or typical <= 0 or view_w <= 0 or view_h <= 0:
            return None
        whole = min(view_w / w, view_h / h) / 1.04  # (fit's padding)
        whole_labels = self._whole_labels_scale()
        if whole * typical >= LABEL_MIN_PX and whole >= whole_labels:
            return None
        # as large as labels read, and as each node's name reads whole ("batch_no\u2026" and "consta\u2026" in a
        # CNN fitted to the window)
        readable = max((READABLE_PX + 1.5) / 0.45 / float(np.median(rects[:, 3])), LABEL_MIN_PX * 1.05 / typical,
                       whole_labels)
        across = min(view_w / (w * 1.04), readable, FIT_NODE_PX / typical)
        if across < whole * 1.25:
            return None
        span_w, span_h = view_w / across, view_h / across
        i = around if around >= 0 else self.marks_item.current
        cy = float(self.layout_data.pos[i, 1]) if 0 <= i < len(rects) else y0 + span_h / 2
        cy = min(max(cy, y0 + span_h / 2), y1 - span_h / 2)
        return QRectF((x0 + x1) / 2 - span_w / 2, cy - span_h / 2, span_w, span_h)

    def _whole_labels_scale(self) -> float:
        """The least zoom (pixels per scene unit) at which every node's name fits its box at the smallest label
        size (dotted paths by their last name, as they are drawn); 0 for a graph too big to measure each."""
        view, sizes = self.view, self.layout_data.size
        cached = self._labels_scale
        if cached is not None and cached[0] is view and cached[1] is sizes:  # measured for this graph already
            return cached[2]
        names = getattr(view, "caption", None) or getattr(view, "label", view.keys)
        if len(names) > POOL:
            return 0.0
        metrics = QFontMetricsF(self._font(MIN_LABEL_PX, True))
        widths: dict[str, float] = {}
        need = 0.0
        for i, name in enumerate(names):
            name = name.rpartition(".")[2] if int(view.kind[i]) == PARAM else name
            width = widths.get(name)
            if width is None:
                width = widths[name] = metrics.horizontalAdvance(name)
            need = max(need, (width + 2) / (0.9 * float(sizes[i, 0])))  # the label's pad: 5% of the box each side
        self._labels_scale = (view, sizes, need)  # a resize of a fitted canvas asks again and again
        return need

    def fit_rect(self) -> QRectF:
        """The scene rectangle that shows the whole graph; no more zoomed in than a typical node FIT_NODE_PX wide
        (a graph of two nodes filled the window with two boxes 400 pixels wide)."""
        x0, y0, x1, y1 = self.layout_data.bounds
        w, h = max(x1 - x0, 1), max(y1 - y0, 1)
        typical, view_w, view_h = self.nodes_item.typical_width, self.box.width(), self.box.height()
        if typical > 0 and view_w > 0 and view_h > 0:
            most = FIT_NODE_PX / typical  # pixels per scene unit
            w, h = max(w, view_w / most), max(h, view_h / most)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        return QRectF(cx - w / 2, cy - h / 2, w, h)

    def center_on(self, key: str, readable: bool = True) -> None:
        """Pan to node `key`; with `readable`, zoom in until its label reads."""
        i = self._node_of(key)
        if i < 0:
            return
        self._stop_glide()
        x, y = self.layout_data.pos[i]
        rect = self.box.viewRect()
        w, h = rect.width(), rect.height()
        px_per_unit = self.box.width() / w if w else 1.0
        if readable and px_per_unit < self._readable_scale(i):
            f = self._readable_scale(i) / px_per_unit
            w, h = w / f, h / f
        self.box.setRange(QRectF(x - w / 2, y - h / 2, w, h), padding=0)
        self._update_detail()

    def follow(self, key: str | None, zoom: bool = True, fit: bool = False) -> None:
        """At a stop, bring node `key` into view: with `zoom`, zoom in (centred on it) when its label would be
        too small to read; then pan as little as keeps it, and its inputs and outputs where they fit, inside
        the view, so step after step the graph scrolls rather than jumps. `fit`: show the whole graph
        instead when it is small (its nodes more than specks, fitted, or its labels readable)."""
        i = self._node_of(key)
        if i < 0 or self.layout_data is None or self.box.width() <= 0:
            return
        rect = self._glide[1] if self._glide else self.box.viewRect()
        if fit:
            whole = self.fit_rect()
            whole = whole.adjusted(-whole.width() * 0.02, -whole.height() * 0.02,
                                   whole.width() * 0.02, whole.height() * 0.02)
            scale = min(self.box.width() / whole.width(), self.box.height() / whole.height())
            # whole only where its labels show: fitted into a small window (960x540 at a scale factor of 2),
            # the demo's nodes were 22 pixels wide and no op could be read
            if scale * self.nodes_item.typical_width >= OVERVIEW_PX or scale >= self._readable_scale(i) * 0.95:
                self._stop_glide()
                self.fit()
                return
            # a view no stop would leave (off the graph, or a node wider than the window) is the view box's
            # initial range of a unit or two: a big graph's first layout arrived only after the stop. Zoom in
            # from the whole graph then; following from there "panned" to a node blown up past the window
            now = self.box.width() / rect.width() if rect.width() else math.inf
            if not rect.intersects(whole) or now * self.nodes_item.typical_width > self.box.width():
                c = whole.center()
                w, h = self.box.width() / scale, self.box.height() / scale
                rect = QRectF(c.x() - w / 2, c.y() - h / 2, w, h)
        target = self._follow_rect(i, rect, zoom)
        if target != rect:
            self._glide_to(target)

    def _follow_rect(self, i: int, rect: QRectF, zoom: bool) -> QRectF:
        """The view that follow() moves to from `rect`, for node i."""
        layout = self.layout_data
        scale = self.box.width() / rect.width() if rect.width() else 1.0
        w, h = rect.width(), rect.height()
        x, y = (float(v) for v in layout.pos[i])
        cx, cy = rect.center().x(), rect.center().y()
        if zoom and _label_px(layout.size[i, 1] * scale, self._two_lines(i, scale)) < READABLE_PX:
            f = self._readable_scale(i) / scale
            w, h, cx, cy = w / f, h / f, x, y  # zoomed: centred on the node
        node = np.concatenate((layout.pos[i] - layout.size[i] / 2, layout.pos[i] + layout.size[i] / 2))
        hood = node.copy()
        edges = np.asarray(self.view.edges, np.int64).reshape(-1, 2)
        if len(edges):
            near = np.unique(np.concatenate((edges[edges[:, 0] == i, 1], edges[edges[:, 1] == i, 0])))
            # only neighbours within reach: a weight drawn far off would pull the view away from the op
            near = near[(np.abs(layout.pos[near, 0] - x) < w / 2) & (np.abs(layout.pos[near, 1] - y) < h / 2)]
            if len(near):
                lo = (layout.pos[near] - layout.size[near] / 2).min(axis=0)
                hi = (layout.pos[near] + layout.size[near] / 2).max(axis=0)
                hood = np.concatenate((np.minimum(node[:2], lo), np.maximum(node[2:], hi)))
        cx = _keep_inside(cx, w, node[0], node[2], hood[0], hood[2])
        cy = _keep_inside(cy, h, node[1], node[3], hood[1], hood[3])
        return QRectF(cx - w / 2, cy - h / 2, w, h)

    def _two_lines(self, i: int, scale: float) -> bool:
        subs = getattr(self.view, "sublabel", None)
        return bool(subs and subs[i] and self.layout_data.size[i, 1] * scale >= 28)

    def _readable_scale(self, i: int) -> float:
        """The zoom (pixels per scene unit) at which node i's label is drawn over a pixel above READABLE_PX."""
        subs = getattr(self.view, "sublabel", None)
        factor = 0.32 if subs and subs[i] else 0.45
        need = (READABLE_PX + 1.5) / factor / float(self.layout_data.size[i, 1])
        # labels show only where a typical node is LABEL_MIN_PX wide
        return max(need, LABEL_MIN_PX * 1.05 / max(self.nodes_item.typical_width, 1e-9))

    def _glide_to(self, target: QRectF) -> None:
        """Move the view to `target` over a few frames (at once when hidden: nobody watches)."""
        start = self.box.viewRect()
        if not self.isVisible():
            self._stop_glide()
            self.box.setRange(target, padding=0)
            self._update_detail()
            return
        self._glide = (start, target, 0)
        self._glide_timer.start()

    def _glide_step(self) -> None:
        if not self._glide or self._closed:
            self._glide_timer.stop()
            return
        start, target, frame = self._glide
        frame += 1
        t = frame / FOLLOW_FRAMES
        t = 1 - (1 - t) ** 3  # ease out: quick to start, settling gently
        # scale in log space, so a deep zoom-in does not rush through its first half
        zs = math.exp(math.log(start.width()) + (math.log(target.width()) - math.log(start.width())) * t)
        f = zs / target.width()
        cx = start.center().x() + (target.center().x() - start.center().x()) * t
        cy = start.center().y() + (target.center().y() - start.center().y()) * t
        w, h = target.width() * f, target.height() * f
        self.box.setRange(QRectF(cx - w / 2, cy - h / 2, w, h), padding=0)
        if frame >= FOLLOW_FRAMES:
            self._stop_glide()
            self.box.setRange(target, padding=0)
            self._update_detail()
        else:
            self._glide = (start, target, frame)

    def _stop_glide(self, *_) -> None:
        self._glide = ()
        self._glide_timer.stop()

    @property
    def settled(self) -> bool:
        """Whether the view is still (no stop's pan or zoom under way)."""
        return not self._glide

    def node_screen_rect(self, key: str) -> QRectF:
        """Node `key`'s box in viewport pixels (empty when it is not shown)."""
        i = self._node_of(key)
        if i < 0:
            return QRectF()
        x, y, w, h = self.nodes_item.rects[i]
        a = self.mapFromScene(self.box.mapViewToScene(QPointF(x, y)))
        b = self.mapFromScene(self.box.mapViewToScene(QPointF(x + w, y + h)))
        return QRectF(QPointF(a), QPointF(b)).normalized()

    def label_px(self, key: str) -> int:
        """The pixel size node `key`'s label is drawn at now (0: not drawn, as when zoomed out)."""
        i = self._node_of(key)
        rect = self.box.viewRect()
        pos = self.layout_data.pos[i:i + 1] if i >= 0 else None
        if pos is None or not self.nodes_item.detail or not len(_inside(pos, pos, rect)):
            return 0
        scale = self.box.width() / rect.width()
        return _label_px(self.layout_data.size[i, 1] * scale, self._two_lines(i, scale))

    def zoom_to_node(self, key: str) -> None:
        """Centre node `key` at a zoom where its label reads comfortably."""
        self.center_on(key, readable=True)

    def select(self, key: str | None) -> None:
        """Select node `key` (None clears) and emit selectionChanged."""
        i = self._node_of(key)
        self.marks_item.selected = i
        self.marks_item.update()
        self._schedule_detail()  # zoomed out, its name shows beside it
        self.selectionChanged.emit(self.view.keys[i] if i >= 0 else "")

    @property
    def selected_key(self) -> str | None:
        """The selected node's key."""
        i = self.marks_item.selected
        return self.view.keys[i] if i >= 0 else None

    def search(self, text: str, backward: bool = False) -> str | None:
        """Select and centre the next node (`backward`: the previous one, round again at either end) whose op,
        label, key or module contains `text` (Ctrl+F); `search_place` says which of how many it is. A match inside
        a collapsed module is not drawn: revealRequested(key) asks for what hides it to be opened."""
        keys = self.search_keys(text)
        if not keys:
            self.search_place = (0, 0)
            return None
        needle = text.lower()
        last_text, last = self._search
        if last_text == needle and last in keys:
            j = (keys.index(last) + (-1 if backward else 1)) % len(keys)
        else:
            j = len(keys) - 1 if backward else 0
        key = keys[j]
        self._search = (needle, key)
        self.search_place = (j + 1, len(keys))
        i = self.view.node_of[key]
        if self.view.keys[i] == key:
            self.select(key)
            self.center_on(key)
        else:
            self.revealRequested.emit(key)
        return key

    def search_keys(self, text: str) -> list[str]:
        """The keys `search` visits for `text`, in order: the nodes drawn (see search_hits), then the matches hidden
        inside collapsed modules (by key: "blocks.120.conv2", or a whole key the inspector names)."""
        keys = self.view.keys if self.view is not None else []
        found = [keys[i] for i in self.search_hits(text)] + self.hidden_hits(text)
        whole = [key for key in found if key.lower() == text.lower()]  # a key pasted whole (the inspector's) first
        return whole + [key for key in found if key not in whole] if whole else found

    def search_hits(self, text: str) -> list[int]:
        """The nodes drawn that `search` visits for `text`, in order: ops named like it (in execution order), then
        nodes whose module or key holds it."""
        named, placed = self.search_groups(text)
        return named + placed

    def hidden_hits(self, text: str) -> list[str]:
        """The keys inside collapsed modules that hold `text`, in the order the structure has them."""
        if self.view is None or not text:
            return []
        needle = text.lower()
        self._index_search()
        hits = [key for key, lower in self._searched[3] if needle in lower]
        return sorted(hits, key=lambda key: _SOURCE_KEY.search(key) is not None)  # ops first, as drawn ones go

    def search_groups(self, text: str) -> tuple[list[int], list[int]]:
        """(the nodes named like `text`, in execution order; the others whose module or key holds it)."""
        view = self.view
        if view is None or not text:
            return [], []
        needle = text.lower()
        self._index_search()
        _, named_as, placed_as, _ = self._searched
        # ops named like the text first (in execution order), then nodes whose module or key matches
        named = [i for i, text in enumerate(named_as) if needle in text]
        seen = set(named)
        return named, [i for i, text in enumerate(placed_as) if needle in text and i not in seen]

    def _index_search(self) -> None:
        """Lower-case the names and keys searched, once per view: 11k nodes took 25 ms a search."""
        view = self.view
        if self._searched[0] is not view:
            labels = getattr(view, "label", view.keys)
            ops = getattr(view, "op", labels)
            named = [f"{a}\n{b}" for a, b in zip(labels, ops, strict=True)]
            if getattr(view, "caption", None):  # an input as its box reads ("y"), besides "input"
                named = [f"{a}\n{c}" for a, c in zip(named, view.caption, strict=True)]
            modules = getattr(view, "module", [""] * len(view.keys))
            kinds, keys = view.kind, view.keys
            hidden = [(key, key.lower()) for key, i in getattr(view, "node_of", {}).items()
                      if keys[i] != key and int(kinds[i]) == MODULE]
            self._searched = (view, [text.lower() for text in named],
                              [f"{a}\n{b}".lower() for a, b in zip(modules, view.keys, strict=True)], hidden)

    @property
    def drawn_node_count(self) -> int:
        """How many nodes the overview tier draws."""
        return len(self.nodes_item.rects)

    def visible_labels(self) -> list[str]:
        """The texts shown now: the detail tier's (node labels, module titles, edge shapes), or zoomed out the
        overview's (module titles, the selected node's name)."""
        return [line for label in self._labels if label.isVisible() for line in label.lines]

    def drawn_labels(self) -> list[str]:
        """The texts drawn now (as visible_labels), as they read (cut short with "\u2026" where they don't fit)."""
        return [text for label in self._labels if label.isVisible() for _, _, text in label.drawn()]

    def drawn_label_rects(self) -> list[tuple[str, QRectF]]:
        """Each line the labels draw now (as drawn_labels) with the rectangle it takes, in viewport pixels."""
        out = []
        for label in self._labels:
            if label.isVisible():  # (a label keeps its pixel size: its rectangle is offset from where it is pinned)
                at = QPointF(self.mapFromScene(self.box.mapViewToScene(label.pos())))
                out += [(text, r.translated(at)) for _, r, text in label.drawn()]
        return out

    def legend_text(self) -> str:
        """The metric the legend explains ('' when nodes are coloured by op family)."""
        return self.legend.name if self.legend.isVisible() else ""

    def legend_keys(self) -> list[str]:
        """What the legend's swatches read ("NaN", "\u00b1Inf only", "error (op raised)"), top to bottom."""
        return [text for _, text in self.legend._swatches()] if self.legend.isVisible() else []

    def node_at(self, x: float, y: float) -> int:
        """Index of the node under scene-layout point (x, y), or -1."""
        if self.layout_data is None:
            return -1
        pos, size = self.layout_data.pos, self.layout_data.size
        inside = (np.abs(pos[:, 0] - x) <= size[:, 0] / 2) & (np.abs(pos[:, 1] - y) <= size[:, 1] / 2)
        hit = np.flatnonzero(inside)
        return int(hit[0]) if len(hit) else -1

    def group_at(self, x: float, y: float) -> int:
        """Index (in the view's groups) of the innermost module box under (x, y), or -1."""
        if self.layout_data is None or len(self.layout_data.group_rect) < 2:
            return -1
        r = self.layout_data.group_rect[1:]
        inside = _inside(r[:, :2], r[:, :2] + r[:, 2:], QRectF(x, y, 0, 0))
        if not len(inside):
            return -1
        return int(inside[np.argmin(r[inside, 2] * r[inside, 3])]) + 1

    def tooltip_for(self, i: int) -> str:
        """Hover text of node i."""
        view = self.view
        text = view.tooltip(i) if hasattr(view, "tooltip") else view.keys[i]
        notes = [self._notes.get(i, "")]
        if i == self.marks_item.current and self._stop_text:
            notes.append(self._stop_text)
        return "\n".join([text, *filter(None, notes)])

    def view_point(self, key: str) -> QPoint:
        """The viewport pixel position of node `key`'s centre."""
        i = self._node_of(key)
        scene = self.box.mapViewToScene(QPointF(*self.layout_data.pos[i]))
        return self.mapFromScene(scene)

    def _node_of(self, key: str | None) -> int:
        if key is None or self.view is None:
            return -1
        i = self._index.get(key)
        if i is None:
            node_of = getattr(self.view, "node_of", None)
            i = node_of.get(key) if node_of else None
        return -1 if i is None else i

    # ---- mouse ----------------------------------------------------------------------------
    def _on_click(self, event) -> None:
        # double clicks are handled in mouseDoubleClickEvent, once
        if event.button() != Qt.MouseButton.LeftButton or self.view is None or event.double():
            return
        p = self.box.mapSceneToView(event.scenePos())
        i = self.node_at(p.x(), p.y())
        if i >= 0:
            self.select(self.view.keys[i])
            self.nodeClicked.emit(self.view.keys[i])

    def mouseDoubleClickEvent(self, event) -> None:
        """Double-click: expand a collapsed module, collapse the module box clicked in, or activate an op."""
        super().mouseDoubleClickEvent(event)
        if event.button() != Qt.MouseButton.LeftButton or self.view is None:
            return
        p = self.box.mapSceneToView(self.mapToScene(event.position().toPoint()))
        i = self.node_at(p.x(), p.y())
        if i >= 0 and int(self.view.kind[i]) == MODULE:
            self.groupToggleRequested.emit(self.view.keys[i])
        elif i >= 0:
            self.nodeDoubleClicked.emit(self.view.keys[i])
        else:
            g = self.group_at(p.x(), p.y())
            if g > 0:
                self.groupToggleRequested.emit(self.view.groups[g])

    def _on_move(self, scene_pos) -> None:
        if self.view is None:
            return
        p = self.box.mapSceneToView(scene_pos)
        i = self.node_at(p.x(), p.y())
        if i == self.hovered:
            return
        self.hovered = i
        text = self.tooltip_for(i) if i >= 0 else ""
        self.setToolTip(text)
        if text:
            QToolTip.showText(self.mapToGlobal(self.mapFromScene(scene_pos)), text, self)
        else:
            QToolTip.hideText()

    # ---- detail tier ----------------------------------------------------------------------
    def _font(self, px: int, bold: bool = False) -> QFont:
        """A (cached) font of `px` pixels."""
        font = self._fonts.get((px, bold))
        if font is None:
            font = self._fonts[(px, bold)] = QFont()
            font.setPixelSize(px)
            if bold:
                font.setWeight(QFont.Weight.DemiBold)
        return font

    def _update_detail(self) -> None:
        """Place pooled labels on the visible nodes, module titles and edges when zoomed in enough."""
        if self._closed:
            return
        used = 0
        layout, view = self.layout_data, self.view
        detail = False
        if layout is not None and len(view.keys) and self.box.width() > 0:
            rect = self.box.viewRect()
            scale = self.box.width() / rect.width() if rect.width() else 0.0
            pos, size = layout.pos, layout.size
            vis = _inside(pos - size / 2, pos + size / 2, rect)
            wide = self.nodes_item.typical_width * scale
            detail = wide >= LABEL_MIN_PX and len(vis) <= POOL
            if detail:
                used = self._label_nodes(vis, scale, used)
                used = self._label_groups(rect, scale, used)
                used = self._label_edges(rect, scale, used)
            elif scale > 0:
                used = self._label_overview(rect, scale, vis)
        self.nodes_item.detail = detail
        for label in self._labels[used:]:
            if label.isVisible():
                label.setVisible(False)
        self.nodes_item.update()

    def _label_nodes(self, vis: np.ndarray, scale: float, used: int) -> int:
        layout, view = self.layout_data, self.view
        # what a box reads: an input's name, a parameter's name in its module box ("weight"; the tooltip has
        # "fc1.weight"), else the label
        labels = getattr(view, "caption", None) or getattr(view, "label", view.keys)
        subs = getattr(view, "sublabel", [""] * len(view.keys))
        ops = getattr(view, "label", labels)
        text_on = [tuple(map(QColor, pair)) for pair in TEXT_ON]
        tone = self.nodes_item.tone
        for i in vis.tolist():
            if used >= POOL:
                break
            w, h = layout.size[i] * scale
            two = bool(h >= 28 and subs[i])
            size = _label_px(h, two)
            one = short = labels[i]
            if not two and one != ops[i] and int(view.kind[i]) == OP:  # a named op on one line: "q \u00b7 split"
                one = f"{one} \u00b7 {ops[i]}"
            lines = (labels[i], subs[i]) if two else (one,)
            fonts = (self._font(size, True), self._font(size - 2)) if two else (self._font(size, True),)
            self._labels[used].show_text(*layout.pos[i], lines, QRectF(-w / 2, -h / 2, w, h), fonts,
                                         text_on[tone[i] if len(tone) > i else LIGHT],
                                         Qt.AlignmentFlag.AlignHCenter, elide=_elide(int(view.kind[i]), labels[i]),
                                         short=short if one != short else "")
            used += 1
        return used

    def _label_groups(self, rect: QRectF, scale: float, used: int) -> int:
        layout, view = self.layout_data, self.view
        r = layout.group_rect
        names = self._group_titles
        classes = getattr(view, "group_cls", [""] * len(names))
        colour = QColor(self.colours.title_text)
        bar = np.stack((r[:, 0] + r[:, 2], r[:, 1] + 24.0), axis=1)
        for g in _inside(r[:, :2], bar, rect).tolist():
            if used >= POOL:
                break
            if g == 0:
                continue
            x, y, w, _ = r[g]
            text = _titled(names[g], classes[g])
            # the title bar is 24 scene units tall: its font shrinks with it, so a fitted small graph's
            # titles are not cut through
            title_px = int(min(11, max(MIN_LABEL_PX, 24 * scale - 3)))
            dot = 2 * BREAKPOINT_RADIUS + 4 if g in self._breakpoint_groups else 0  # the title starts after it
            self._labels[used].show_text(x, y, (text,), QRectF(1 + dot, 1, w * scale - 2 - dot, 24 * scale - 1),
                                         (self._font(title_px, True),), (colour,), Qt.AlignmentFlag.AlignLeft,
                                         self._title_fills[self._group_depth[g] % len(self._title_fills)])
            used += 1
        return used

    def _label_overview(self, rect: QRectF, scale: float, vis: np.ndarray) -> int:
        """Where nodes are too small for their labels: the selected node's name beside it, then the titles of the
        module boxes as tall on screen as a title and of a model's parts however short (a box holding others titled on
        its left, the rest on their right, else above a model's box, else in its corner; a part with none of these
        free above it, by its name alone where its title is wider than it) and of the collapsed modules, outer ones
        first, each where it covers no other title and no node (widgets.graph_overview): a fitted ResNet was specks
        without one name."""
        layout, view = self.layout_data, self.view
        placer = ChipPlacer(self.box.width(), self.box.height(), POOL)
        if self.legend.isVisible():
            legend = self.legend.mapRectToParent(self.legend.boundingRect())
            placer.take(legend.x(), legend.y(), legend.width(), legend.height())
        origin = np.array([rect.left(), rect.top()])
        pos, size = layout.pos, layout.size
        corner = np.concatenate(((pos - size / 2 - origin) * scale, size * scale), axis=1)  # nodes on screen
        placer.block(corner[vis, :2], corner[vis, :2] + corner[vis, 2:])
        used = 0
        i = self.marks_item.selected
        if 0 <= i < len(view.keys):
            x, y, w, h = corner[i]
            text = _caption(view, i)
            # right of its halo's ring, over the specks beside it if need be: the person picked it
            xs, ys = max(x + w, x + w / 2 + 12.0) + GAP, y + h / 2 - ROW / 2
            used = self._chip(placer, used, text, xs, ys, origin, scale, self.colours.selected, 0, over_nodes=True)
        r = layout.group_rect
        groups = _inside(r[1:, :2], r[1:, :2] + r[1:, 2:], rect) + 1
        box = np.concatenate(((r[groups, :2] - origin) * scale, r[groups, 2:] * scale), axis=1)
        parent = np.asarray(getattr(view, "group_parent", np.full(len(r), -1)))
        # a model's parts: titled however short their boxes (a hundred layers fitted whole are 7 pixels each)
        part = (parent[groups] > 0) & (parent[np.maximum(parent[groups], 0)] <= 0)
        # deeper, a box as tall as its title: smaller ones titled where there was room made a patchwork (one block's
        # "conv2", the next one's "bn2")
        keep = (box[:, 3] >= ROW) | part
        groups, box, part = groups[keep], box[keep], part[keep]
        kind = np.asarray(view.kind)
        folded = vis[kind[vis] == MODULE]
        inside = np.asarray(getattr(view, "group", np.zeros(len(kind), np.int64)))[folded]
        box = np.concatenate((box, corner[folded]))
        depth = np.concatenate((self._group_depth[groups], self._group_depth[inside] + 1))
        classes = getattr(view, "group_cls", [""] * len(r))
        # a box holding others titled has its title on its left: the first box inside it, whose top is its top, then
        # has room for its own on the right (a ResNet's "blocks.0")
        outer = np.isin(groups, np.concatenate((parent[groups], inside)))
        for j in overview_order(depth, box[:, 1])[:POOL].tolist():
            if used >= POOL:
                break
            x, y, w, h = box[j]
            if j < len(groups):
                g = int(groups[j])
                name = self._group_titles[g]
                text = _titled(name, classes[g])
                xs, ys = box_places(x, y, w, h, self._chip_width(text), bool(outer[j]), parent[g] <= 0)
                was = used
                used = self._chip(placer, used, text, xs, ys, origin, scale, self.colours.title_text, int(depth[j]))
                if used == was and part[j]:
                    # a row of parts side by side (a graph as wide as the window) leaves no room beside them, and
                    # their tops are their nodes': above each, on its top, no wider than it (so that it reads as its
                    # title, not the box above's): its title where that fits, else its name ("heads.3")
                    text = text if self._chip_width(text) <= w else name
                    used = self._chip(placer, used, text, x, y - ROW, origin, scale, self.colours.title_text,
                                      int(depth[j]))
            else:
                node = int(folded[j - len(groups)])
                text = _titled(_caption(view, node), view.op[node] if hasattr(view, "op") else "")
                wide = self._chip_width(text)
                xs, ys = [x + w + GAP, x - GAP - wide, x], [y + h / 2 - ROW / 2] * 2 + [y - ROW]
                used = self._chip(placer, used, text, xs, ys, origin, scale, self.colours.title_text, int(depth[j]))
        return used

    def _chip_width(self, text: str) -> float:
        """The width of an overview title's chip in pixels (measured once per text); half the canvas at most."""
        wide = self._advances.get(text)
        if wide is None:
            wide = self._advances[text] = QFontMetricsF(self._font(TITLE_PX, True)).horizontalAdvance(text)
        return min(wide + 10, self.box.width() / 2)  # (the label's padding each side; a long one elided)

    def _chip(self, placer: ChipPlacer, used: int, text: str, xs, ys, origin: np.ndarray, scale: float,
              colour: str, depth: int, over_nodes: bool = False) -> int:
        """Show `text` in a chip at the first free one of the places (xs, ys) (pixels from the view's corner), if
        any; the labels used then."""
        w = self._chip_width(text)
        at = placer.place(xs, ys, w, ROW, over_nodes)
        if at is None:
            return used
        x, y = origin + np.array(at) / scale
        self._labels[used].show_text(x, y, (text,), QRectF(0, 0, w, ROW), (self._font(TITLE_PX, True),),
                                     (QColor(colour),), Qt.AlignmentFlag.AlignLeft,
                                     self._title_fills[depth % len(self._title_fills)])
        return used + 1

    def _label_edges(self, rect: QRectF, scale: float, used: int) -> int:
        """Shape labels mid-way along the last stretch of visible edges, once there is room for them."""
        shapes = getattr(self.view, "edge_shape", None)
        if shapes is None or scale < 1.1 or not len(self._edge_anchor):
            return used
        colour = QColor(self.colours.edge_text)
        anchor = self._edge_anchor
        for e in _inside(anchor, anchor, rect).tolist():
            if used >= POOL:
                break
            self._labels[used].show_text(*anchor[e], (shapes[e],), QRectF(4, -7, 90, 13),
                                         (self._font(9),), (colour,), Qt.AlignmentFlag.AlignLeft)
            used += 1
        return used

    @staticmethod
    def _edge_anchors(layout) -> np.ndarray:
        """Per view edge, the middle of its last stretch (where its shape label goes)."""
        ptr, segs = layout.edge_seg_ptr, layout.edge_seg
        if len(ptr) < 2 or not len(segs):
            return np.zeros((0, 2))
        has = ptr[1:] > ptr[:-1]
        last_seg = segs[np.maximum(ptr[1:] - 1, 0)]
        end = layout.seg_ptr[last_seg + 1] - 1
        anchor = (layout.edge_points[end] + layout.edge_points[end - 1]) / 2
        anchor[~has] = np.nan
        return anchor

    def _schedule_detail(self, *_) -> None:
        timer = getattr(self, "_detail_timer", None)  # the base class resizes before __init__ ends
        if timer is not None and not self._closed:
            timer.start(0)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        fitted = getattr(self, "_fit_view", None)  # (the base class resizes before __init__ ends)
        if fitted is not None and self.layout_data is not None and fitted[0] == self.box.targetRect():
            # fitted, and not moved since: fitted again to the new size. The view kept the graph's size from
            # before: opening the model builder left a fitted graph of specks with half the canvas empty
            QTimer.singleShot(0, self._refit)
        self._schedule_detail()

    def _refit(self) -> None:
        fitted = self._fit_view
        if not self._closed and self.layout_data is not None and fitted and fitted[0] == self.box.targetRect():
            self.fit(readable=fitted[1])

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and not getattr(self, "_closed", True):
            colours = canvas_colours(self.palette())
            if colours != self.colours:
                self._apply_colours(colours)

    def _apply_colours(self, colours: CanvasColours) -> None:
        """Paint with `colours` from now on (the palette turned light or dark)."""
        self.colours = colours
        self.setBackground(colours.background)
        tint = QColor(*colours.title_tint[:3])
        # title bars: the box fill under the bar's tint, opaque
        self._title_fills = [_blend(QColor(c), tint, colours.title_tint[3] / 255) for c in colours.group_fills]
        self.groups_item.set_colours(colours)
        self.edges_item.pen.setColor(QColor(colours.edge))
        self.edges_item.update()
        self.nodes_item.port = (QColor(colours.port[0]), QColor(colours.port[1]))
        self.marks_item.colours = colours
        self.marks_item.update()
        self.legend.theme = colours
        self.legend.update()
        if self.view is not None:
            self.set_node_values(*self._last_values)  # fills, borders and label tones

    def close(self) -> bool:
        """Close the canvas (pyqtgraph then deletes the view box: no label updates after this)."""
        self._closed = True
        self._detail_timer.stop()
        self._stop_glide()
        return super().close()

    def closeEvent(self, event) -> None:
        self._closed = True
        self._detail_timer.stop()
        self._stop_glide()
        super().closeEvent(event)

    # ---- export ---------------------------------------------------------------------------
    def render_image(self, scale: float = 1.0) -> QImage:
        """The current view as an image, `scale` times the widget's pixel size."""
        self._update_detail()
        size = self.viewport().size()
        image = QImage(QSize(max(1, int(size.width() * scale)), max(1, int(size.height() * scale))),
                       QImage.Format.Format_ARGB32)
        image.fill(QColor(self.colours.background))
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self.render(painter, QRectF(image.rect()), self.viewport().rect())
        painter.end()
        return image

    def export_png(self, path: str, scale: float = 2.0) -> None:
        """Save the current view as a PNG (at `scale` times screen resolution)."""
        if not self.render_image(scale).save(str(path), "PNG"):
            raise OSError(f"could not write PNG to {path}")

    def export_svg(self, path: str) -> None:
        """Save the current view as an SVG (vector: zoom into it freely)."""
        self._update_detail()
        size = self.viewport().size()
        gen = QSvgGenerator()
        gen.setFileName(str(path))
        gen.setSize(size)
        gen.setViewBox(QRectF(0, 0, size.width(), size.height()))
        gen.setTitle("Tapescope graph")
        painter = QPainter(gen)
        painter.fillRect(QRectF(0, 0, size.width(), size.height()), QColor(self.colours.background))
        self.render(painter, QRectF(0, 0, size.width(), size.height()), self.viewport().rect())
        painter.end()
