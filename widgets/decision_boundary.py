"""What a model predicts, drawn from plain numpy arrays: a decision boundary with the data points for
2-D classification, the fitted curve over the data for regression, labelled samples for images.

    view = PredictionView()
    view.show_boundary(probs, extent, points, labels)      # probs: (H, W, C) over the extent
    view.show_curve(x, y, x_curve, y_curve)
    view.show_images(images, predicted, labels, names)
    view.show_preview(preview)                             # the dict app.builder.preview makes

Each dataset is one item (an ImageItem, a ScatterPlotItem, a curve), updated in place, so it can
follow training live. Labelled images are laid out again whenever the view is resized: as many columns
as draw them largest with a line for each label, names elided to their image's width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF, QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from widgets.theme import ERROR_TEXT, OK_TEXT, pick

# Colour-blind-friendly class colours (Okabe-Ito, then a few more), as RGB 0-255.
CLASS_COLORS = np.array([(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233),
                         (213, 94, 0), (240, 228, 66), (120, 120, 120), (148, 103, 189), (140, 86, 75)],
                        dtype=np.float32)
WASH = 0.55  # how far the background is mixed toward the plot's (white, or dark): the points stay readable on it
WHITE = np.array([255, 255, 255], dtype=np.float32)
LABEL_GAP = 6  # pixels between neighbouring images, so that their labels never run together


def class_colors(count: int) -> np.ndarray:
    """(count, 3) RGB colours, repeating after ten classes."""
    return CLASS_COLORS[np.arange(count) % len(CLASS_COLORS)]


def boundary_image(probs: np.ndarray, background: np.ndarray = WHITE) -> np.ndarray:
    """(H, W, 3) uint8: each cell the probability-weighted mix of class colours, washed toward `background`.

    Confident regions show their class colour; the boundary, where classes mix, fades toward grey."""
    rgb = probs @ class_colors(probs.shape[-1])
    return np.clip(background + (rgb - background) * (1 - WASH), 0, 255).astype(np.uint8)


def ink_image(grid: np.ndarray, background: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 of a (H, W) image in [0, 1] drawn in `ink` on `background` (NaN: background), so a
    glyph reads dark on white and light on a dark plot."""
    v = np.nan_to_num(grid, nan=0.0)[..., None]
    return np.clip(background + (ink - background) * v, 0, 255).astype(np.uint8)


def mosaic(images: np.ndarray, columns: int, gap: int = 2, row_gap: int | None = None) -> np.ndarray:
    """(K, H, W) images in a grid, `gap` pixels apart across and `row_gap` (default: gap) down (NaN: the
    background)."""
    k, h, w = images.shape
    row_gap = gap if row_gap is None else row_gap
    rows = -(-k // columns)
    out = np.full((rows * (h + row_gap) - row_gap, columns * (w + gap) - gap), np.nan, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + row_gap):r * (h + row_gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return out


def fit_grid(count: int, h: int, w: int, width: float, height: float, label: float,
             columns: int | None = None) -> tuple[int, float]:
    """(columns, pixels per image pixel) that draw `count` h x w images largest in width x height pixels,
    each with a `label`-pixel line above it and LABEL_GAP pixels beside it (`columns`: fixed)."""
    best = (columns or count, 0.0)
    for c in [columns] if columns else range(1, count + 1):
        rows = -(-count // c)
        scale = min((width - c * LABEL_GAP) / (c * w), (height - rows * label) / (rows * h))
        if scale > best[1]:
            best = (c, scale)
    return best


class PredictionView(QWidget):
    """A caption and one plot that shows a boundary, a curve or a grid of samples (see module docstring)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.caption = QLabel("No predictions yet: build a model and run it.")
        self.caption.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.isocurve = pg.IsocurveItem(level=0.5)
        self.isocurve.setParentItem(self.image)
        self.points = pg.ScatterPlotItem(size=7)
        self.data_points = pg.ScatterPlotItem(size=5, pen=None)
        self.fit_curve = pg.PlotDataItem(pen=pg.mkPen(CLASS_COLORS[0].tolist(), width=3))
        for it in (self.image, self.data_points, self.fit_curve, self.points):
            self.plot.addItem(it)
        self._labels: list[pg.TextItem] = []
        self._grid: tuple | None = None  # what show_images was given, laid out again on a resize
        self.label_font = QFont(self.font())
        self.label_font.setPointSizeF(max(7.0, self.label_font.pointSizeF() - 1))
        self.plot.getPlotItem().vb.sigResized.connect(self._layout_images)
        self.mode = ""
        self._shown: tuple | None = None  # the last show_ call, drawn again when the palette changes
        self._apply_palette()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot, 1)

    # ---- what it shows ------------------------------------------------------------------------
    def show_boundary(self, probs: np.ndarray, extent: Sequence[float], points: np.ndarray,
                      labels: np.ndarray, title: str = "") -> None:
        """Class probabilities (H, W, C) over extent (x0, x1, y0, y1), with the labelled points on top."""
        probs = np.asarray(probs, dtype=np.float32)
        x0, x1, y0, y1 = (float(v) for v in extent)
        self._mode("boundary")
        self._shown = (self.show_boundary, (probs, extent, points, labels, title))
        self.image.setImage(boundary_image(probs, self._rgb(QPalette.ColorRole.Base)), autoLevels=False,
                            levels=(0, 255))
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        # the 50% line of a two-class problem; with more classes the colours show the regions
        self.isocurve.setVisible(probs.shape[-1] == 2)
        if probs.shape[-1] == 2:
            self.isocurve.setData(probs[..., 1])
        labels = np.asarray(labels).astype(int)
        colors = class_colors(max(int(labels.max(initial=0)) + 1, probs.shape[-1]))
        brushes = [pg.mkBrush(*colors[c].tolist()) for c in labels]
        self.points.setData(np.asarray(points)[:, 0], np.asarray(points)[:, 1], brush=brushes)
        self.plot.setXRange(x0, x1, padding=0)
        self.plot.setYRange(y0, y1, padding=0)
        self.caption.setText(title or f"Decision boundary: {probs.shape[-1]} classes, {len(labels)} points")

    def show_curve(self, x: np.ndarray, y: np.ndarray, x_curve: np.ndarray, y_curve: np.ndarray,
                   title: str = "") -> None:
        """Regression: the data as points and the model's prediction as a curve."""
        self._mode("curve")
        self._shown = (self.show_curve, (x, y, x_curve, y_curve, title))
        self.data_points.setData(np.asarray(x, float), np.asarray(y, float))
        order = np.argsort(x_curve)
        self.fit_curve.setData(np.asarray(x_curve, float)[order], np.asarray(y_curve, float)[order])
        self.plot.enableAutoRange()
        self.caption.setText(title or f"Prediction over {len(x)} data points")

    def show_images(self, images: np.ndarray, predicted: np.ndarray, labels: np.ndarray | None = None,
                    names: Sequence[str] = (), title: str = "", columns: int | None = None) -> None:
        """A grid of (K, H, W) images in [0, 1], each titled with its predicted label (red when wrong);
        `columns`: fixed, or None for as many as draw the images largest in the view."""
        images = np.asarray(images, dtype=np.float32)
        self._mode("images")
        self._shown = (self.show_images, (images, predicted, labels, names, title, columns))
        k = len(images)
        texts, colours, right = [], [], 0
        right_colour, wrong_colour = pick(OK_TEXT, self.palette()), pick(ERROR_TEXT, self.palette())
        for i in range(k):
            p = int(predicted[i])
            ok = labels is None or p == int(labels[i])
            right += ok
            texts.append(names[p] if p < len(names) else str(p))
            colours.append(right_colour if ok else wrong_colour)
        while len(self._labels) < k:
            label = pg.TextItem(anchor=(0.5, 1.0))
            label.setFont(self.label_font)
            label.textItem.document().setDocumentMargin(0)
            self.plot.addItem(label)
            self._labels.append(label)
        for i, label in enumerate(self._labels):
            label.setVisible(i < k)
        self._grid = (np.clip(images, 0, 1), texts, colours, columns)
        self._layout_images()
        verdict = f", {right} of {k} right (red: wrong)" if labels is not None else ""
        self.caption.setText(title or f"Predicted labels of {k} samples{verdict}")

    def _layout_images(self) -> None:
        """Lay the images out for the view's size: columns, spacing in image pixels, elided labels."""
        if self.mode != "images" or self._grid is None:
            return
        images, texts, colours, columns = self._grid
        k, h, w = images.shape
        size = self.plot.getPlotItem().vb.size()
        metrics = QFontMetricsF(self.label_font)
        line = metrics.height() + 2
        columns, scale = fit_grid(k, h, w, size.width(), size.height(), line, columns)
        rows = -(-k // columns)
        if scale <= 0:  # too small for every label to have a line: fit the width and let them overlap
            scale = max((size.width() - columns * LABEL_GAP) / (columns * w), 0.1)
        # gaps are whole image pixels: round them up, then shrink to fit, until a label's line fits again
        gap, above = math.ceil(LABEL_GAP / scale), math.ceil(line / scale)
        while True:
            # half a gap beside the outer columns too: their labels may be wider than their images
            scale = min(size.width() / (columns * (w + gap)), size.height() / (rows * (h + above)))
            if above * scale >= line or above > 4 * h:
                break
            above += 1
        grid = mosaic(images, columns, gap=gap, row_gap=above)
        rgb = ink_image(grid, self._rgb(QPalette.ColorRole.Base), self._rgb(QPalette.ColorRole.Text))
        self.image.setImage(rgb, autoLevels=False, levels=(0, 255))
        self.image.setRect(QRectF(0, 0, grid.shape[1], grid.shape[0]))
        room = max((w + gap) * scale - 2, 0)
        for i, (text, colour) in enumerate(zip(texts, colours)):
            label = self._labels[i]
            shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, room)
            label.setText(shown, color=colour)
            label.setToolTip(text if shown != text else "")
            r, c = divmod(i, columns)
            label.setPos(c * (w + gap) + w / 2, r * (h + above))
        # both at once: with the aspect locked, a Y range set after the X range cut the last column off
        self.plot.getPlotItem().vb.setRange(xRange=(-gap / 2, grid.shape[1] + gap / 2),
                                            yRange=(-above, grid.shape[0]), padding=0)

    def show_preview(self, preview: Mapping | None, title: str = "") -> None:
        """Show a preview dict as made by app.builder.preview (None: nothing to show)."""
        if preview is None:
            self.clear("No preview for this data: the prediction view covers 2-D classes, curves and images.")
            return
        kind = preview["kind"]
        if kind == "boundary":
            self.show_boundary(preview["probs"], preview["extent"], preview["points"], preview["labels"], title)
        elif kind == "curve":
            self.show_curve(preview["x"], preview["y"], preview["x_curve"], preview["y_curve"], title)
        elif kind == "images":
            self.show_images(preview["images"], preview["predicted"], preview.get("labels"),
                             preview.get("names", ()), title)
        else:
            raise ValueError(f"unknown preview kind {kind!r}; expected boundary, curve or images")

    def clear(self, message: str = "No predictions yet: build a model and run it.") -> None:
        """Show nothing but `message`."""
        self._mode("")
        self._shown = None
        self.caption.setText(message)

    # ---- light or dark --------------------------------------------------------------------------
    def changeEvent(self, event) -> None:
        """Follow a palette change: the plot, its pens and what it shows, in the new colours."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "_shown"):
            self._apply_palette()
            if self._shown is not None:
                show, args = self._shown
                show(*args)

    def _rgb(self, role: QPalette.ColorRole) -> np.ndarray:
        colour = self.palette().color(role)
        return np.array([colour.red(), colour.green(), colour.blue()], dtype=np.float32)

    def _apply_palette(self) -> None:
        """The plot on the palette's Base colour; axes, the 50% line and the curve's data in its Text colour."""
        palette = self.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        self.plot.setBackground(base)
        item = self.plot.getPlotItem()
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen(palette.color(QPalette.ColorRole.Mid)))
            item.getAxis(axis).setTextPen(pg.mkPen(text))
        self.isocurve.setPen(pg.mkPen(text, width=1.5))
        self.points.setPen(pg.mkPen(base.red(), base.green(), base.blue(), 200, width=0.8))
        self.data_points.setBrush(pg.mkBrush(text.red(), text.green(), text.blue(), 110))

    # ---- switching between kinds ----------------------------------------------------------------
    def _mode(self, mode: str) -> None:
        self.mode = mode
        self.image.setVisible(mode in ("boundary", "images"))
        self.isocurve.setVisible(mode == "boundary")
        self.points.setVisible(mode == "boundary")
        self.data_points.setVisible(mode == "curve")
        self.fit_curve.setVisible(mode == "curve")
        for label in self._labels:
            label.setVisible(mode == "images" and label.isVisible())
        item = self.plot.getPlotItem()
        item.invertY(mode == "images")  # image rows run downward
        item.setAspectLocked(mode in ("boundary", "images"))
        for axis in ("left", "bottom"):
            item.showAxis(axis, mode != "images")
        item.showGrid(x=mode == "curve", y=mode == "curve", alpha=0.2)
        self.plot.setEnabled(bool(mode))
