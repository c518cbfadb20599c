"""Runtime edits on a loss plot: a thin vertical line at the iteration each applied edit took effect, with a
short label at the top ("lr 10 → 0.1", "fc1 frozen") and the whole edit in its tooltip, so a loss curve that
bends says why. Labels go in rows under the plot's top edge (further down a plot too narrow for them there), each
in the first row where it meets no other label (beside its line: at its right, else its left) and none of the
plot's own (the chance levels' names, the NaN marker's), and where it can, no other edit's line: one that fits
nowhere is left out, its line and tooltip staying.

    marks = EditMarks(plot_item, obstacles=lambda: [chance_line.label, ...])
    marks.set_edits([(iteration, "lr 10 → 0.1", "SGD lr = 0.1 in 1 group(s)")]); marks.add_edit(...)
    marks.schedule()  # after the plot's own labels moved: they are placed again
    marks.placed()  # [(label, scene rect)] of the labels drawn
"""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QTimer
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

EDIT_COLOUR = "#7048e8"  # the timeline's edit marker's violet
LABEL_PT = 7.5  # as the chance levels' labels
ROWS = 3  # rows of labels under the top edge, or as many as fill the plot's top half where more fit
GAP = 3.0  # pixels between a label and its line, and between two labels


class EditMarks:
    """The edits of one PlotItem (see the module docstring)."""

    def __init__(self, plot: pg.PlotItem, obstacles: Callable[[], list] = list) -> None:
        self.plot = plot
        self.obstacles = obstacles  # the plot's own labels, visible or not: the edits' keep clear of them
        self.edits: list[tuple[int, str, str]] = []
        self.lines: list[pg.InfiniteLine] = []
        self.labels: list[pg.TextItem] = []
        self._font = QFont()
        self._font.setPointSizeF(LABEL_PT)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.relayout)
        # after the plot's own labels moved (they follow the range too): a zero-delay timer runs after them
        plot.vb.sigRangeChanged.connect(self.schedule)
        plot.vb.sigResized.connect(self.schedule)

    def set_edits(self, edits: list[tuple[int, str, str]]) -> None:
        """Replace the edits: (iteration it took effect, short label, tooltip) each."""
        self.edits = [(int(it), label, tip) for it, label, tip in edits]
        while len(self.lines) < len(self.edits):
            pen = pg.mkPen(QColor(EDIT_COLOUR), width=1)
            line = pg.InfiniteLine(angle=90, movable=False, pen=pen)
            line.setZValue(8)  # over the curves, under the chance levels' labels
            label = pg.TextItem("", color=EDIT_COLOUR, anchor=(0, 0))
            label.setFont(self._font)
            label.textItem.document().setDocumentMargin(1)  # a tight box: a short plot has room for more rows
            label.setZValue(11)
            self.plot.addItem(line, ignoreBounds=True)
            self.plot.addItem(label, ignoreBounds=True)
            self.lines.append(line)
            self.labels.append(label)
        backing = QApplication.palette().color(QPalette.ColorRole.Window)
        backing.setAlpha(215)
        for i, (line, label) in enumerate(zip(self.lines, self.labels)):
            shown = i < len(self.edits)
            line.setVisible(shown)
            label.setVisible(False)  # until relayout finds it a place
            if shown:
                it, text, tip = self.edits[i]
                line.setValue(it)
                line.setToolTip(tip)
                label.setText(text)
                label.fill = pg.mkBrush(backing)
                label.setToolTip(tip)
        self.relayout()

    def add_edit(self, iteration: int, label: str, tip: str) -> None:
        """One more edit."""
        self.set_edits([*self.edits, (iteration, label, tip)])

    def clear(self) -> None:
        """No edits."""
        self.set_edits([])

    def schedule(self, *_) -> None:
        """Place the labels again once the plot's own have moved (the range, the chance levels, the NaN marker)."""
        self._timer.start(0)

    def placed(self) -> list[tuple[str, QRectF]]:
        """(label, scene rectangle) of each label drawn, in the edits' order."""
        return [(label.toPlainText(), label.sceneBoundingRect()) for label in self.labels[:len(self.edits)]
                if label.isVisible()]

    def relayout(self) -> None:
        """Place each label in the first row, at the right of its line or else at its left, where it overlaps no
        label placed before it and none of the plot's own labels, and where it can, no other edit's line."""
        vb = self.plot.vb
        if vb is None or not self.edits:  # a plot torn down before its queued placing ran
            return
        view = vb.sceneBoundingRect()
        if view.width() <= 0:
            return
        taken = [item.sceneBoundingRect() for item in self.obstacles() if item.isVisible()]
        (x0, x1), _ = vb.viewRange()
        order = sorted(range(len(self.edits)), key=lambda i: self.edits[i][0])
        # a label across another edit's line reads as that edit's: the lines are in the way too
        xs = {i: vb.mapViewToScene(QPointF(self.edits[i][0], 0)).x() for i in order}
        for i in order:
            it = self.edits[i][0]
            lines = [QRectF(x - 0.5, view.top(), 1.0, view.height()) for j, x in xs.items() if x != xs[i]]
            label = self.labels[i]
            if not x0 <= it <= x1:
                label.setVisible(False)
                continue
            x = xs[i]
            size = label.textItem.boundingRect().size()  # the text's, unscaled: the label ignores the zoom
            w, h = size.width(), size.height()
            # its right, else its left, inside the plot: pushed in from the edge, up to its line
            right = min(x + GAP, view.right() - w)
            left = max(x - GAP - w, view.left())
            sides = [side for side, fits in ((right, right >= x), (left, left + w <= x)) if fits] or [left]
            # every row of the plot, the top ones first: a narrow plot (the Training tab's at 1200x800) whose top rows a
            # chance level's name and another edit's label fill goes on down the plot rather than leave one out
            rows = max(ROWS, int((view.height() - 2) // (h + 1)))
            spots = [QRectF(left, view.top() + 1 + row * (h + 1), w, h) for row in range(rows) for left in sides]
            # clear of the other lines where there is such a spot (lines a few pixels apart leave none)
            spot = next((rect for keep_off in (taken + lines, taken) for rect in spots
                         if not any(rect.adjusted(-GAP, 0, GAP, 0).intersects(other) for other in keep_off)), None)
            label.setVisible(spot is not None)
            if spot is not None:
                taken.append(spot)
                label.setPos(vb.mapSceneToView(spot.topLeft()))

