"""What a model predicts, drawn from plain numpy arrays: a decision boundary with the data points for
2-D classification, the fitted curve over the data for regression, labelled samples for images.

    view = PredictionView()
    view.show_boundary(probs, extent, points, labels)      # probs: (H, W, C) over the extent
    view.show_curve(x, y, x_curve, y_curve)
    view.show_images(images, predicted, labels, names)
    view.show_preview(preview)                             # the dict app.builder.preview makes

Each dataset is one item (an ImageItem, a ScatterPlotItem, a curve), updated in place, so it can
follow training live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

# Colour-blind-friendly class colours (Okabe-Ito, then a few more), as RGB 0-255.
CLASS_COLORS = np.array([(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233),
                         (213, 94, 0), (240, 228, 66), (120, 120, 120), (148, 103, 189), (140, 86, 75)],
                        dtype=np.float32)
WASH = 0.55  # how far the background is lightened toward white: the points stay readable on it
RIGHT, WRONG = "#2b8a3e", "#c92a2a"


def class_colors(count: int) -> np.ndarray:
    """(count, 3) RGB colours, repeating after ten classes."""
    return CLASS_COLORS[np.arange(count) % len(CLASS_COLORS)]


def boundary_image(probs: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: each cell the probability-weighted mix of class colours, washed toward white.

    Confident regions show their class colour; the boundary, where classes mix, fades toward grey."""
    rgb = probs @ class_colors(probs.shape[-1])
    return np.clip(255 - (255 - rgb) * (1 - WASH), 0, 255).astype(np.uint8)


def mosaic(images: np.ndarray, columns: int, gap: int = 2) -> np.ndarray:
    """(K, H, W) images in a grid with `gap` pixels between them (NaN: the background)."""
    k, h, w = images.shape
    rows = -(-k // columns)
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return out


class PredictionView(QWidget):
    """A caption and one plot that shows a boundary, a curve or a grid of samples (see module docstring)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.caption = QLabel("No predictions yet: build a model and run it.")
        self.caption.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        item = self.plot.getPlotItem()
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen("#adb5bd"))
            item.getAxis(axis).setTextPen(pg.mkPen("#495057"))
        self.image = pg.ImageItem(axisOrder="row-major")
        self.isocurve = pg.IsocurveItem(level=0.5, pen=pg.mkPen("#343a40", width=1.5))
        self.isocurve.setParentItem(self.image)
        self.points = pg.ScatterPlotItem(size=7, pen=pg.mkPen(255, 255, 255, 200, width=0.8))
        self.data_points = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(73, 80, 87, 110))
        self.fit_curve = pg.PlotDataItem(pen=pg.mkPen(CLASS_COLORS[0].tolist(), width=3))
        for it in (self.image, self.data_points, self.fit_curve, self.points):
            self.plot.addItem(it)
        self._labels: list[pg.TextItem] = []
        self.mode = ""
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
        self.image.setImage(boundary_image(probs), autoLevels=False, levels=(0, 255))
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
        self.data_points.setData(np.asarray(x, float), np.asarray(y, float))
        order = np.argsort(x_curve)
        self.fit_curve.setData(np.asarray(x_curve, float)[order], np.asarray(y_curve, float)[order])
        self.plot.enableAutoRange()
        self.caption.setText(title or f"Prediction over {len(x)} data points")

    def show_images(self, images: np.ndarray, predicted: np.ndarray, labels: np.ndarray | None = None,
                    names: Sequence[str] = (), title: str = "", columns: int = 4) -> None:
        """A grid of (K, H, W) images in [0, 1], each titled with its predicted label (red when wrong)."""
        images = np.asarray(images, dtype=np.float32)
        self._mode("images")
        k, h, w = images.shape
        grid = mosaic(1 - np.clip(images, 0, 1), columns, gap=max(2, h // 3))  # dark ink on white
        rgb = np.where(np.isnan(grid), 1.0, grid)[..., None].repeat(3, -1) * 255
        self.image.setImage(rgb.astype(np.uint8), autoLevels=False, levels=(0, 255))
        step_y, step_x = h + max(2, h // 3), w + max(2, h // 3)
        self.image.setRect(QRectF(0, 0, grid.shape[1], grid.shape[0]))
        while len(self._labels) < k:
            label = pg.TextItem(anchor=(0.5, 1.0))
            self.plot.addItem(label)
            self._labels.append(label)
        right = 0
        for i, label in enumerate(self._labels):
            label.setVisible(i < k)
            if i >= k:
                continue
            p = int(predicted[i])
            ok = labels is None or p == int(labels[i])
            right += ok
            name = names[p] if p < len(names) else str(p)
            label.setText(name, color=RIGHT if ok else WRONG)
            r, c = divmod(i, columns)
            label.setPos(c * step_x + w / 2, r * step_y - 0.5)
        self.plot.setXRange(-1, grid.shape[1] + 1, padding=0)
        self.plot.setYRange(-step_y / 2, grid.shape[0] + 1, padding=0)
        verdict = f", {right} of {k} right (red: wrong)" if labels is not None else ""
        self.caption.setText(title or f"Predicted labels of {k} samples{verdict}")

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
        self.caption.setText(message)

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
