"""Heatmaps of a 2-D slice of N-D arrays: two axes chosen as rows and columns, a slider for each other.

Inputs: `set_arrays({"value": a, "gradient": g, ...})` (numpy arrays of one shape, or `Difference(a, b)`
for a - b computed only where looked at); `set_axes(rows, cols)`; `set_index(axis, i)`.
Outputs: `sliceChanged(key)` with the index tuple shown (`slice(None)` on the two shown axes).
What a person sees: `shown(name)` is the image drawn (subsampled to at most MAX_SIDE per side, so a
10-million-element tensor costs the GUI thread only the pixels it draws), `key()` the slice. NaN, +Inf and
-Inf are drawn in colours of their own (NONFINITE), outside the colour map, whose range comes from the
finite values; the `nonfinite` label under the plots counts them in the whole slice, and hovering one reads
"nan"/"inf"/"-inf". A subsampled pixel stands for a block of cells: it shows the first kind in NONFINITE
order that its block holds, and hovering it names that cell, so striding never hides a lone NaN.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from widgets.elided_label import ElidedLabel
from widgets.theme import MUTED_TEXT, follow_palette, pick, tint

MAX_SIDE = 512
_DIVERGING = pg.colormap.get("CET-D1")  # blue - white - red: the sign of a value reads at a glance
_SEQUENTIAL = pg.colormap.get("viridis")
# Colours no map here uses (CET-D1 runs blue-white-red, viridis purple-teal-green-yellow), saturated
# enough to read on a light or a dark background: a NaN must never pass for a value.
# The order is the precedence in a block holding several kinds: NaN first, as it spreads to everything
# computed from it and is what a person hunts; then the infinities, in the legend's order.
NONFINITE = {"NaN": (255, 0, 255), "+Inf": (255, 140, 0), "-Inf": (0, 215, 255)}
_VALUES = {"NaN": np.nan, "+Inf": np.inf, "-Inf": -np.inf}
_BAND = 1 << 18  # elements scanned for NaN and Inf at a time: one band stays in cache, and a Difference
# is computed a band at a time rather than for a whole big slice at once
_LUT_SIZE = 256
_MARK_SIZE = 5  # screen pixels
_MARKED = 2000  # more non-finite pixels than this are many enough to see in the image itself


class Difference:
    """`a - b` for two arrays of one shape, evaluated only for the elements an index asks for."""

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        if a.shape != b.shape:
            raise ValueError(f"Difference: shapes {a.shape} and {b.shape} differ")
        self.a, self.b = a, b
        self.shape, self.ndim = a.shape, a.ndim
        self.dtype = np.result_type(a.dtype, b.dtype, np.float32)
        self.size = a.size

    def __getitem__(self, key):
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, as it should show
            return np.subtract(self.a[key], self.b[key], dtype=self.dtype)


class HeatmapView(QWidget):
    """One heatmap panel per array, all sliced the same way; see the module docstring for the API."""

    sliceChanged = Signal(tuple)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._arrays: dict[str, np.ndarray | Difference] = {}
        self._shape: tuple[int, ...] = ()
        self._rows, self._cols = 0, 1
        self._index: list[int] = []
        self._steps = (1, 1)
        self._shown: dict[str, np.ndarray] = {}
        self._panels: dict[str, tuple] = {}
        self._quiet = False
        self._drawn = True  # False: arrays or slices changed while hidden, drawn once shown (or asked)

        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(4)
        bar = QHBoxLayout()
        bar.setSpacing(6)
        self.row_axis, self.col_axis = QComboBox(), QComboBox()
        for label, combo in (("rows", self.row_axis), ("columns", self.col_axis)):
            bar.addWidget(QLabel(label))
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(self._axes_picked)
            bar.addWidget(combo)
        # the size and the sampling note ("64 x 32; every 2nd row and column drawn") and the hover readout
        # must not widen the inspector past its dock: that cut its statistics table off at the right
        self.info = ElidedLabel()
        tint(self.info, MUTED_TEXT)
        bar.addStretch(1)
        bar.addWidget(self.info)
        self._axis_bar = QWidget()
        self._axis_bar.setLayout(bar)
        bar.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self._axis_bar)
        self._sliders_box = QWidget()
        self._sliders = QGridLayout(self._sliders_box)
        self._sliders.setContentsMargins(0, 0, 0, 0)
        self._sliders.setHorizontalSpacing(8)
        self._sliders.setVerticalSpacing(2)
        box.addWidget(self._sliders_box)
        self.plots = _Plots()
        self.plots.setBackground(None)
        self.plots.setMinimumHeight(110)
        follow_palette(self.plots, self._recolour, now=False)
        box.addWidget(self.plots, 1)
        self.nonfinite = QLabel()
        self.nonfinite.setWordWrap(True)
        self.nonfinite.setTextFormat(Qt.TextFormat.RichText)
        self.nonfinite.hide()
        box.addWidget(self.nonfinite)
        self.hover = ElidedLabel(" ")
        box.addWidget(self.hover)
        self.empty = QLabel("No values loaded.", self.plots)
        tint(self.empty, MUTED_TEXT)
        self.plots.scene().sigMouseMoved.connect(self._hovered)
        self._rebuild_controls()  # no array yet: no axes to choose (set_arrays rebuilds on a new shape only)
        self.set_arrays({})

    # ---- inputs -----------------------------------------------------------------------------------
    def set_arrays(self, arrays: dict) -> None:
        """Show these arrays (all of one shape), keeping the chosen axes and positions when they fit."""
        shapes = {tuple(a.shape) for a in arrays.values()}
        if len(shapes) > 1:
            raise ValueError(f"HeatmapView: arrays of different shapes {sorted(shapes)}; "
                             f"a heatmap slices them together, so they must match")
        shape = shapes.pop() if shapes else ()
        self._arrays = dict(arrays)
        if shape != self._shape:
            self._shape = shape
            ndim = len(shape)
            self._rows, self._cols = (max(ndim - 2, 0), ndim - 1) if ndim >= 2 else (0, 0)
            self._index = [0] * ndim
            self.hover.setText(" ")  # it named an element, or the size, of the shape before
            self._rebuild_controls()
        self._refresh()

    def set_axes(self, rows: int, cols: int) -> None:
        """Show axis `rows` down and axis `cols` across (ValueError when they are not two axes)."""
        ndim = len(self._shape)
        if ndim < 2 or rows == cols or not (0 <= rows < ndim and 0 <= cols < ndim):
            raise ValueError(f"HeatmapView: cannot show axes ({rows}, {cols}) of a {ndim}-D array")
        self._rows, self._cols = rows, cols
        self._rebuild_controls()
        self._refresh()
        self.sliceChanged.emit(self.key())

    def set_index(self, axis: int, i: int) -> None:
        """Put the slider of `axis` (one not shown) at position `i`."""
        if axis in self._shown_axes() or not 0 <= axis < len(self._shape):
            raise ValueError(f"HeatmapView: axis {axis} is not a sliced axis of shape {self._shape}")
        if not 0 <= i < self._shape[axis]:
            raise ValueError(f"HeatmapView: index {i} is out of range for axis {axis} "
                             f"of size {self._shape[axis]}")
        self._index[axis] = i
        slider = self._slider_of(axis)
        if slider is not None:
            self._quiet = True
            slider.setValue(i)
            self._quiet = False
        self._refresh()
        self.sliceChanged.emit(self.key())

    # ---- what is shown ------------------------------------------------------------------------------
    def key(self) -> tuple:
        """The index of the shown slice: positions on sliced axes, slice(None) on the shown ones."""
        shown = self._shown_axes()
        return tuple(slice(None) if a in shown else i for a, i in enumerate(self._index))

    def shown(self, name: str) -> np.ndarray:
        """The image drawn for `name` (rows down, columns across; subsampled when large)."""
        self._draw()
        return self._shown[name]

    @property
    def steps(self) -> tuple[int, int]:
        """Every how many rows and columns one pixel row/column is drawn."""
        self._draw()
        return self._steps

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._draw()

    # ---- building -----------------------------------------------------------------------------------
    def _shown_axes(self) -> tuple[int, ...]:
        ndim = len(self._shape)
        return () if ndim == 0 else (ndim - 1,) if ndim == 1 else (self._rows, self._cols)

    def _rebuild_controls(self) -> None:
        ndim = len(self._shape)
        self._quiet = True
        for combo, chosen in ((self.row_axis, self._rows), (self.col_axis, self._cols)):
            combo.clear()
            combo.addItems([f"dim {a} ({n})" for a, n in enumerate(self._shape)])
            combo.setCurrentIndex(chosen if ndim else -1)
        self._quiet = False
        self._axis_bar.setVisible(ndim >= 2)
        while self._sliders.count():
            w = self._sliders.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        row = 0
        for axis in range(ndim):
            if axis in self._shown_axes():
                continue
            label, value = QLabel(f"dim {axis}"), QLabel()
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setObjectName(f"axis{axis}")
            slider.setRange(0, self._shape[axis] - 1)
            slider.setValue(self._index[axis])
            slider.setPageStep(max(1, self._shape[axis] // 10))
            value.setMinimumWidth(56)
            value.setText(f"{self._index[axis]} / {self._shape[axis] - 1}")
            slider.valueChanged.connect(lambda i, a=axis, v=value: self._slid(a, i, v))
            self._sliders.addWidget(label, row, 0)
            self._sliders.addWidget(slider, row, 1)
            self._sliders.addWidget(value, row, 2)
            row += 1
        self._sliders_box.setVisible(row > 0)

    def _slider_of(self, axis: int) -> QSlider | None:
        return self._sliders_box.findChild(QSlider, f"axis{axis}")

    def _recolour(self) -> None:
        """Panel titles in the palette's muted colour (it turned light or dark)."""
        for name, panel in self._panels.items():
            panel[0].setTitle(name, size="9pt", color=pick(MUTED_TEXT))

    def _rebuild_panels(self) -> None:
        if list(self._panels) == list(self._arrays):
            return
        self.plots.clear()
        self._panels = {}
        for col, name in enumerate(self._arrays):
            plot = self.plots.addPlot(row=0, col=2 * col, title=name)
            plot.setTitle(name, size="9pt", color=pick(MUTED_TEXT))
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.invertY(True)
            for axis in ("left", "bottom"):
                plot.getAxis(axis).enableAutoSIPrefix(False)
            plot.getAxis("left").setWidth(40)
            image = pg.ImageItem(axisOrder="row-major")
            plot.addItem(image)
            # Qt scales the image to the screen by dropping pixels: a lone NaN pixel of a 512-wide image
            # drawn 150 px wide vanished. A marker of a fixed size on screen keeps each one in sight.
            marks = pg.ScatterPlotItem(pxMode=True, symbol="s", size=_MARK_SIZE, pen=None)
            marks.setZValue(1)
            plot.addItem(marks)
            # not linked to the image: the image is coloured here (RGBA), so non-finite cells keep their colours
            bar = pg.ColorBarItem(colorMap=_DIVERGING, interactive=False, width=10, rounding=1e-12)
            self.plots.addItem(bar, row=0, col=2 * col + 1)
            self._panels[name] = (plot, image, bar, marks)

    def _axes_picked(self) -> None:
        if self._quiet:
            return
        rows, cols = self.row_axis.currentIndex(), self.col_axis.currentIndex()
        if rows == cols:  # picking an axis that is already the other one swaps them
            rows, cols = (cols, self._rows) if rows != self._rows else (self._cols, rows)
        self.set_axes(rows, cols)

    def _slid(self, axis: int, i: int, value_label: QLabel) -> None:
        value_label.setText(f"{i} / {self._shape[axis] - 1}")
        if not self._quiet:
            self._index[axis] = i
            self._refresh()
            self.sliceChanged.emit(self.key())

    # ---- drawing ------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Draw what changed now if the heatmap is on screen, else once it is: a hidden tab rebuilt its
        plots at every step of a live run (about 22 ms each on the GUI thread)."""
        self._drawn = False
        if self.isVisible():
            self._draw()

    def _draw(self) -> None:
        if not self._drawn:
            self._drawn = True
            self._rebuild_panels()
            self._redraw()

    def _update_steps(self) -> None:
        ndim = len(self._shape)
        if ndim == 0:
            self._steps = (1, 1)
        elif ndim == 1:
            self._steps = (1, max(1, math.ceil(self._shape[0] / MAX_SIDE ** 2)))
        else:
            self._steps = (max(1, math.ceil(self._shape[self._rows] / MAX_SIDE)),
                           max(1, math.ceil(self._shape[self._cols] / MAX_SIDE)))

    def _slice_key(self, rows: slice, cols: slice) -> tuple:
        """The key taking `rows` and `cols` of the shown slice (only `cols` of a 1-D array)."""
        ndim = len(self._shape)
        if ndim < 2:
            return (cols,)[:ndim]
        key = list(self._index)
        key[self._rows], key[self._cols] = rows, cols
        return tuple(key)

    def _oriented(self, part) -> np.ndarray:
        """A part of the slice as the image lays it out: 2-D, rows down."""
        part = np.asarray(part)
        if part.ndim < 2:
            return part.reshape(1, -1)
        return part.T if self._rows > self._cols else part  # numpy keeps axes in order

    def _as_image(self, a) -> np.ndarray:
        sr, sc = self._steps
        img = self._oriented(a[self._slice_key(slice(None, None, sr), slice(None, None, sc))])
        if img.dtype.kind != "f" or img.dtype.itemsize < 4:
            img = img.astype(np.float32)
        return img

    def _scan(self, a) -> tuple[dict[str, int], dict[str, np.ndarray]]:
        """The non-finite cells of the whole slice of `a`: how many of each kind, and for each kind
        present, which drawn pixels stand for a block holding one. A band whose sum is finite holds
        none, so an all-finite slice costs one summing pass."""
        counts, blocks = dict.fromkeys(NONFINITE, 0), {}
        if np.dtype(a.dtype).kind != "f":
            return counts, blocks
        rows, cols = self._full_size()
        sr, sc = self._steps
        band = sr * max(1, _BAND // (sr * cols))
        for r0 in range(0, rows, band):
            part = self._oriented(a[self._slice_key(slice(r0, r0 + band), slice(None))])
            with np.errstate(over="ignore", invalid="ignore"):  # inf - inf, or a sum past float max
                if np.isfinite(np.add.reduce(part, axis=None)):
                    continue
            for kind, mask in _nonfinite_masks(part):
                counts[kind] += int(np.count_nonzero(mask))
                where = blocks.setdefault(kind, np.zeros((-(-rows // sr), -(-cols // sc)), bool))
                hit = _block_any(mask, sr, sc)
                where[r0 // sr:r0 // sr + len(hit)] |= hit
        return counts, blocks

    def _redraw(self) -> None:
        self._shown = {}
        self.empty.setVisible(not self._arrays)
        if not self._arrays:
            self.info.setText("")
            self.hover.setText(" ")
            self.nonfinite.hide()
            return
        rows, cols = self._full_size()
        self._update_steps()
        notes = []
        for name, a in self._arrays.items():
            img = self._as_image(a)
            levels = _levels(img)  # from the sampled values: a block's NaN must not hide its finite cells
            counts, blocks = self._scan(a)
            if blocks:
                img = img.copy()  # a strided view of the caller's array
                for kind in reversed(NONFINITE):  # the first kind in NONFINITE is written last: it wins
                    if kind in blocks:
                        img[blocks[kind]] = _VALUES[kind]
            self._shown[name] = img
            plot, image, bar, marks = self._panels[name]
            masks = _nonfinite_masks(img)
            image.setImage(colorize(img, levels, masks), levels=(0, 255), autoLevels=False)
            image.setRect(QRectF(0, 0, cols, rows))
            _mark(marks, masks, rows / img.shape[0], cols / img.shape[1])
            # square cells read best, unless the slice is so long and thin that it would be a sliver
            plot.setAspectLocked(max(rows, cols) <= 8 * min(rows, cols))
            bar.setVisible(levels is not None)  # no finite value: no range to show
            if levels is not None:
                bar.setColorMap(levels[2])
                bar.setLevels(levels[:2])
            note = _nonfinite_note(counts, sum(counts.values()) == rows * cols)
            if note:
                notes.append(f"{name}: {note}" if len(self._arrays) > 1 else note)
        sr, sc = self._steps
        if notes and (sr > 1 or sc > 1):
            notes.append("every cell counted; a pixel shows any its cells hold")
        self.nonfinite.setText(" &nbsp;\u00b7&nbsp; ".join(notes))
        self.nonfinite.setVisible(bool(notes))
        note = f"{rows:,} \u00d7 {cols:,}"
        if sr > 1 or sc > 1:
            note += f"; every {ordinal(sr)} row and column drawn" if sr == sc else \
                f"; every {ordinal(sr)} row, {ordinal(sc)} column drawn"
        self.info.setText(note)
        if len(self._shape) < 2:
            self.info.setText("")
            self.hover.setText(note)

    def _full_size(self) -> tuple[int, int]:
        ndim = len(self._shape)
        if ndim == 0:
            return 1, 1
        if ndim == 1:
            return 1, self._shape[0]
        return self._shape[self._rows], self._shape[self._cols]

    def _hovered(self, pos) -> None:
        for name, (plot, *_items) in self._panels.items():
            if not plot.sceneBoundingRect().contains(pos):
                continue
            p = plot.vb.mapSceneToView(pos)
            rows, cols = self._full_size()
            if 0 <= p.y() < rows and 0 <= p.x() < cols:
                r, c = self._cell_under(name, p.y(), p.x())
                self.hover.setText(f"{name} {self._label_of(r, c)} = {self._value_at(name, r, c):.6g}")
            return

    def _cell_under(self, name: str, y: float, x: float) -> tuple[int, int]:
        """The cell at (y, x), or where the pixel there shows NaN or Inf, the cell of its block that
        holds it."""
        r, c = math.floor(y), math.floor(x)
        img, (sr, sc) = self._shown[name], self._steps
        rows, cols = self._full_size()
        i, j = min(int(y * img.shape[0] / rows), img.shape[0] - 1), min(int(x * img.shape[1] / cols), img.shape[1] - 1)
        v = img[i, j]
        if (sr, sc) == (1, 1) or np.isfinite(v):
            return r, c
        block = self._oriented(self._arrays[name][self._slice_key(slice(i * sr, (i + 1) * sr),
                                                                    slice(j * sc, (j + 1) * sc))])
        dr, dc = np.argwhere(np.isnan(block) if np.isnan(v) else block == v)[0]
        return i * sr + int(dr), j * sc + int(dc)

    def _element_key(self, r: int, c: int) -> tuple:
        ndim = len(self._shape)
        if ndim == 0:
            return ()
        if ndim == 1:
            return (c,)
        key = list(self._index)
        key[self._rows], key[self._cols] = r, c
        return tuple(key)

    def _value_at(self, name: str, r: int, c: int) -> float:
        return float(np.asarray(self._arrays[name][self._element_key(r, c)]))

    def _label_of(self, r: int, c: int) -> str:
        return "[" + ", ".join(map(str, self._element_key(r, c))) + "]"

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.empty.move(12, 12)
        self.empty.adjustSize()


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 22nd."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _levels(img: np.ndarray) -> tuple[float, float, pg.ColorMap] | None:
    """Colour levels of the finite values: symmetric around 0 for signed values (diverging map), else
    min..max (viridis); None when no value is finite."""
    finite = img[np.isfinite(img)]
    if not finite.size:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if lo < 0 < hi or (lo < 0 and hi <= 0):
        m = max(-lo, hi) or 1.0
        return -m, m, _DIVERGING
    return (lo, hi if hi > lo else lo + 1.0, _SEQUENTIAL)


def colorize(img: np.ndarray, levels: tuple[float, float, pg.ColorMap] | None, masks: list) -> np.ndarray:
    """(H, W, 4) uint8: finite values through the map over (lo, hi), NaN and +-Inf (`masks`, as
    _nonfinite_masks gives them) in NONFINITE colours."""
    if levels is None:
        rgba = np.zeros((*img.shape, 4), np.uint8)
    else:
        lo, hi, cmap = levels
        lut = cmap.getLookupTable(0.0, 1.0, _LUT_SIZE, alpha=True)
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite cells are overwritten below
            t = np.rint((img - lo) * ((_LUT_SIZE - 1) / (hi - lo)))
        rgba = lut[np.clip(np.nan_to_num(t), 0, _LUT_SIZE - 1).astype(np.intp)]
    for kind, mask in masks:
        rgba[mask] = (*NONFINITE[kind], 255)
    return rgba


def _nonfinite_masks(img: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(kind, where) of each kind of non-finite element present: none for an all-finite image (one pass)."""
    if np.isfinite(img).all():
        return []
    masks = [("NaN", np.isnan(img)), ("+Inf", img == np.inf), ("-Inf", img == -np.inf)]
    return [(kind, mask) for kind, mask in masks if mask.any()]


def _mark(marks: pg.ScatterPlotItem, masks: list, height: float, width: float) -> None:
    """A marker on each non-finite pixel (`height` x `width` cells), NaN drawn on top; none past _MARKED."""
    if sum(int(np.count_nonzero(mask)) for _kind, mask in masks) > _MARKED:
        masks = []
    xs, ys, brushes = [], [], []
    for kind, mask in reversed(masks):
        i, j = np.nonzero(mask)
        ys.append((i + 0.5) * height)
        xs.append((j + 0.5) * width)
        brushes += [pg.mkBrush(*NONFINITE[kind])] * len(i)
    marks.setData(x=np.concatenate(xs) if xs else [], y=np.concatenate(ys) if ys else [], brush=brushes)


def _block_any(mask: np.ndarray, sr: int, sc: int) -> np.ndarray:
    """(ceil(h / sr), ceil(w / sc)) bool: whether each sr x sc block of `mask` holds a True."""
    h, w = mask.shape
    n = h // sr
    rows = mask[:n * sr].reshape(n, sr, w).any(axis=1)  # any() over a middle axis runs at memory speed
    if n * sr < h:
        rows = np.concatenate([rows, mask[n * sr:].any(axis=0, keepdims=True)])
    out = np.zeros((len(rows), -(-w // sc)), bool)
    hits = np.flatnonzero(rows)  # few, where NaN is the news; any() over the last axis is 8x slower
    out[hits // w, hits % w // sc] = True
    return out


def _nonfinite_note(counts: dict[str, int], none_finite: bool) -> str:
    """Rich text: a swatch and a count for each kind of non-finite element present ("" when none)."""
    parts = []
    for kind, n in counts.items():
        if not n:
            continue
        colour = "#{:02x}{:02x}{:02x}".format(*NONFINITE[kind])
        parts.append(f'<span style="color:{colour}">\u25a0</span>&nbsp;{n:,}&nbsp;{kind}')
    if not parts:
        return ""
    text = " &nbsp;".join(parts)
    return f"no finite values: {text}" if none_finite else text


class _Plots(pg.GraphicsLayoutWidget):
    """The heatmap's plot area, asking for a modest size: pyqtgraph's default of 640x480 made the
    inspector taller than its dock (a scroll area lays it out at its preferred height)."""

    def sizeHint(self) -> QSize:
        return QSize(300, 150)
