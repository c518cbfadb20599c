"""Heatmaps of a 2-D slice of N-D arrays: two axes chosen as rows and columns, a slider for each other.

Inputs: `set_arrays({"value": a, "gradient": g, ...})` (numpy arrays of one shape, or `Difference(a, b)`
for a - b computed only where looked at); `set_axes(rows, cols)`; `set_index(axis, i)`.
Outputs: `sliceChanged(key)` with the index tuple shown (`slice(None)` on the two shown axes).
What a person sees: `shown(name)` is the image drawn (subsampled to at most MAX_SIDE per side, so a
10-million-element tensor costs the GUI thread only the pixels it draws), `key()` the slice. NaN, +Inf and
-Inf are drawn in colours of their own (NONFINITE), outside the colour map, whose range comes from the
finite values; the `nonfinite` label under the plots counts them, and hovering one reads "nan"/"inf"/"-inf".
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

MAX_SIDE = 512
_DIVERGING = pg.colormap.get("CET-D1")  # blue - white - red: the sign of a value reads at a glance
_SEQUENTIAL = pg.colormap.get("viridis")
# Colours no map here uses (CET-D1 runs blue-white-red, viridis purple-teal-green-yellow), saturated
# enough to read on a light or a dark background: a NaN must never pass for a value.
NONFINITE = {"NaN": (255, 0, 255), "+Inf": (255, 140, 0), "-Inf": (0, 215, 255)}
_LUT_SIZE = 256


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
        self.info = QLabel()
        self.info.setStyleSheet("color: #868e96")
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
        box.addWidget(self.plots, 1)
        self.nonfinite = QLabel()
        self.nonfinite.setWordWrap(True)
        self.nonfinite.setTextFormat(Qt.TextFormat.RichText)
        self.nonfinite.hide()
        box.addWidget(self.nonfinite)
        self.hover = QLabel(" ")
        self.hover.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(self.hover)
        self.empty = QLabel("No values loaded.", self.plots)
        self.empty.setStyleSheet("color: #868e96")
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

    def _rebuild_panels(self) -> None:
        if list(self._panels) == list(self._arrays):
            return
        self.plots.clear()
        self._panels = {}
        for col, name in enumerate(self._arrays):
            plot = self.plots.addPlot(row=0, col=2 * col, title=name)
            plot.setTitle(name, size="9pt", color="#868e96")
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.invertY(True)
            for axis in ("left", "bottom"):
                plot.getAxis(axis).enableAutoSIPrefix(False)
            plot.getAxis("left").setWidth(40)
            image = pg.ImageItem(axisOrder="row-major")
            plot.addItem(image)
            # not linked to the image: the image is coloured here (RGBA), so non-finite cells keep their colours
            bar = pg.ColorBarItem(colorMap=_DIVERGING, interactive=False, width=10, rounding=1e-12)
            self.plots.addItem(bar, row=0, col=2 * col + 1)
            self._panels[name] = (plot, image, bar)

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

    def _sample_key(self) -> tuple:
        """The key of the drawn image: strided slices on the shown axes, positions elsewhere."""
        ndim = len(self._shape)
        if ndim == 0:
            return ()
        if ndim == 1:
            step = max(1, math.ceil(self._shape[0] / MAX_SIDE ** 2))
            self._steps = (1, step)
            return (slice(None, None, step),)
        sr = max(1, math.ceil(self._shape[self._rows] / MAX_SIDE))
        sc = max(1, math.ceil(self._shape[self._cols] / MAX_SIDE))
        self._steps = (sr, sc)
        steps = {self._rows: sr, self._cols: sc}
        return tuple(slice(None, None, steps[a]) if a in steps else i for a, i in enumerate(self._index))

    def _as_image(self, a) -> np.ndarray:
        img = np.asarray(a[self._sample_key()])
        if img.ndim == 0:
            img = img.reshape(1, 1)
        elif img.ndim == 1:
            img = img.reshape(1, -1)
        elif self._rows > self._cols:  # numpy keeps axes in order: the row axis came second
            img = img.T
        if img.dtype.kind != "f" or img.dtype.itemsize < 4:
            img = img.astype(np.float32)
        return img

    def _redraw(self) -> None:
        self._shown = {}
        self.empty.setVisible(not self._arrays)
        if not self._arrays:
            self.info.setText("")
            self.hover.setText(" ")
            self.nonfinite.hide()
            return
        rows, cols = self._full_size()
        notes = []
        for name, a in self._arrays.items():
            img = self._as_image(a)
            self._shown[name] = img
            plot, image, bar = self._panels[name]
            levels = _levels(img)
            masks = _nonfinite_masks(img)
            image.setImage(colorize(img, levels, masks), levels=(0, 255), autoLevels=False)
            image.setRect(QRectF(0, 0, cols, rows))
            # square cells read best, unless the slice is so long and thin that it would be a sliver
            plot.setAspectLocked(max(rows, cols) <= 8 * min(rows, cols))
            bar.setVisible(levels is not None)  # no finite value: no range to show
            if levels is not None:
                bar.setColorMap(levels[2])
                bar.setLevels(levels[:2])
            note = _nonfinite_note(masks, levels is None)
            if note:
                notes.append(f"{name}: {note}" if len(self._arrays) > 1 else note)
        sr, sc = self._steps
        if notes and (sr > 1 or sc > 1):
            notes.append("counted in the drawn cells")
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
        for name, (plot, _image, _bar) in self._panels.items():
            if not plot.sceneBoundingRect().contains(pos):
                continue
            p = plot.vb.mapSceneToView(pos)
            rows, cols = self._full_size()
            r, c = math.floor(p.y()), math.floor(p.x())
            if 0 <= r < rows and 0 <= c < cols:
                self.hover.setText(f"{name} {self._label_of(r, c)} = {self._value_at(name, r, c):.6g}")
            return

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


def _nonfinite_note(masks: list, none_finite: bool) -> str:
    """Rich text: a swatch and a count for each kind of non-finite element present ("" when none)."""
    parts = []
    for kind, mask in masks:
        colour = "#{:02x}{:02x}{:02x}".format(*NONFINITE[kind])
        parts.append(f'<span style="color:{colour}">\u25a0</span>&nbsp;{int(np.count_nonzero(mask)):,}&nbsp;{kind}')
    if not parts:
        return ""
    text = " &nbsp;".join(parts)
    return f"no finite values: {text}" if none_finite else text


class _Plots(pg.GraphicsLayoutWidget):
    """The heatmap's plot area, asking for a modest size: pyqtgraph's default of 640x480 made the
    inspector taller than its dock (a scroll area lays it out at its preferred height)."""

    def sizeHint(self) -> QSize:
        return QSize(300, 150)
