"""The tensor inspector: a node's output and gradient side by side, by summary first and values on demand.

Inputs (all plain data, cheap on the GUI thread: nothing here reads every element of a big tensor):
- `show_summaries(title, value=None, grad=None, diff=None, subtitle="")`: engine.debug TensorSummary
  objects of the output, of the gradient flowing into it, and of (output - the same node's output one
  iteration earlier). Fills the header, the statistics table and the histograms at once. Where a tensor holds
  NaN or infinities, the statistics that leave them out say so ("min (finite)"); `intended` says why its
  infinities are there on purpose (a mask), and they are not marked as a fault.
- `set_unavailable(values="", summaries="")`: why the source of these tensors (a tape) holds no full
  values or no summaries; Load values is disabled with the reason as its tooltip.
- `set_values(value=None, grad=None, previous=None)`: full numpy arrays once fetched (off the GUI
  thread, e.g. with app.inspect_worker). Fills the heatmap (with sliders for N-D) and the paged table;
  `previous` adds a "delta" heatmap and table computed only where looked at. Values stay until the
  title changes or `set_values()` is called with none (do so when the node's output is newer).
- `show_loading(text)`, `show_note(text)`, `show_error(text)`, `clear()`.
Outputs: `fetchRequested()` when the person asks for full values; `saved(path)` after Save .npy.
Read back what a person sees with `stat_text(stat, column)`, `columns()` and `stale()`.
"""

from __future__ import annotations

import math
import re

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.debug.summary import TensorSummary
from widgets.elided_label import ElidedLabel
from widgets.heatmap import Difference, HeatmapView, ordinal
from widgets.histogram import HistogramView
from widgets.theme import ERROR_TEXT, MUTED_TEXT, pick, tint
from widgets.value_table import ValueTable

VALUE, GRAD, DIFF = "value", "gradient", "\u0394 prev. iteration"
COLUMNS = (VALUE, GRAD, DIFF)
COLOURS = {VALUE: "#1c7ed6", GRAD: "#e8590c", DIFF: "#7048e8"}
STATS = ("min", "max", "mean", "std", "L2 norm", "zeros", "NaN", "Inf", "computed from")
FINITE_ONLY = ("min", "max", "mean", "std", "L2 norm")  # the statistics a summary takes over its finite values only
ROW_NAMES = {"Inf": "\u00b1Inf"}  # a summary counts the infinities of both signs together
MINUS, PLUS = "\u2212Inf", "+Inf"
SAMPLED = ("mean", "std", "zeros", "computed from")  # the rows a summary above its limit estimates from a sample
APPROX = "\u2248 "
LOAD_TIP = "Fetch the full output and gradient (off the GUI thread)"
WHOLE, SHORT = Qt.ItemDataRole.UserRole, Qt.ItemDataRole.UserRole + 1  # a statistic's text, and shorter ones
NO_VALUES = "No values loaded: Load values (below) fetches this tensor's values and gradient."
COPY_LIMIT = 10_000  # elements: beyond this, values go to a .npy file, not the clipboard
TIMES = "\u00d7"
HISTOGRAM_LEAST = 150  # pixels of the Histogram tab's page, title, bars and axes, below which the inspector scrolls
HISTOGRAM_WIDE = 130  # pixels a histogram needs beside another to show its count axis and bars


class _FlexibleHeight(QWidget):
    """The inspector's scrolling part: a scroll area lays a widget that wraps text out at its preferred height
    (the plots' too), so the histograms scrolled where they could have shrunk; this one scrolls only below its
    minimum."""

    def hasHeightForWidth(self) -> bool:
        return False


class TensorInspector(QWidget):
    """A node's output and gradient: statistics, histograms, heatmap, values; see the module docstring."""

    fetchRequested = Signal()
    saved = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._summaries: dict[str, TensorSummary] = {}
        self._stale: dict[str, str] = {}  # columns greyed as older than the rest, and why (show_summaries)
        self._intended = ""  # why the value's infinities are there on purpose (a mask), or ""
        self._subtitle = ""
        self._signs: dict[str, tuple[int, int]] = {}  # column -> (-Inf, +Inf) counts, from the values loaded
        self._arrays: dict[str, object] = {}
        self._no_values = ""  # why full values cannot be loaded from this source ("": they can)
        self._no_summaries = ""  # why this source holds no summaries ("": it does)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.setSpacing(6)
        # the tensor scrolls in a short or narrow dock, its status and buttons stay under it: Copy and Save .npy
        # were cut off at 1440x900 once the Alerts dock below took room for its rows
        body, content = QWidget(), _FlexibleHeight()
        QVBoxLayout(body).addWidget(content)
        body.layout().setContentsMargins(0, 0, 0, 0)
        box = QVBoxLayout(content)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(6)
        self.body = QScrollArea()
        self.body.setWidget(body)
        self.body.setWidgetResizable(True)
        self.body.setFrameShape(QScrollArea.Shape.NoFrame)
        self.body.viewport().installEventFilter(self)  # its scroll bar coming narrows it: the heading wraps anew
        outer.addWidget(self.body, 1)

        # long module paths ("TinyGPT.blocks.layers.1.self_attn/linear:0") must not widen the dock
        self.title = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle)
        self.title.setStyleSheet("font-weight: 600; font-size: 11pt")
        self.meta = BreakingLabel()
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.meta.setWordWrap(True)
        self.meta.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        box.addWidget(self.title)
        box.addWidget(self.meta)

        self.stats = QTableWidget(len(STATS), len(COLUMNS))
        self.stats.setVerticalHeaderLabels([ROW_NAMES.get(stat, stat) for stat in STATS])
        self.stats.setHorizontalHeaderLabels(list(COLUMNS))
        self.stats.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.stats.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.stats.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # "Copy statistics" copies it whole
        self.stats.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # a header says "gradient (it. 0)" (the whole "(iteration 0)" in its tooltip) and elides what still
        # does not fit a narrow column
        self.stats.horizontalHeader().setTextElideMode(Qt.TextElideMode.ElideRight)
        self.stats.horizontalHeader().sectionResized.connect(lambda *_: self._fit_stats())
        self.stats.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.stats.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._fit_stats_height()
        box.addWidget(self.stats)

        self.tabs = QTabWidget()
        hist_page = QWidget()
        hist_box = QHBoxLayout(hist_page)
        hist_box.setContentsMargins(0, 0, 0, 0)
        self._hist_box = hist_box
        self.histograms = {name: HistogramView(name, COLOURS[name]) for name in COLUMNS}
        for view in self.histograms.values():
            hist_box.addWidget(view)
        self.heatmap = HeatmapView()
        values_page = QWidget()
        values_box = QVBoxLayout(values_page)
        values_box.setContentsMargins(0, 0, 0, 0)
        self.table_choice = QComboBox()
        self.table_choice.currentTextChanged.connect(self._show_table)
        self.table = ValueTable()
        # what the Values and Heatmap tabs show until values are loaded: why a tape has none, or how to load
        self.values_note = QLabel(NO_VALUES)
        self.values_note.setWordWrap(True)
        self.values_note.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        tint(self.values_note, MUTED_TEXT)
        values_box.addWidget(self.table_choice, 0, Qt.AlignmentFlag.AlignLeft)
        values_box.addWidget(self.table, 1)
        values_box.addWidget(self.values_note, 1)
        self.tabs.addTab(hist_page, "Histogram")
        # the heatmap's controls ask for 300 pixels: in a narrow dock (1024x640) they squeeze rather than widen the
        # whole inspector past its dock, the statistics' gradient column off its edge
        self.heatmap.setMinimumWidth(HISTOGRAM_WIDE)
        self.tabs.addTab(self.heatmap, "Heatmap")
        self.tabs.addTab(values_page, "Values")
        # the plots give way first in a short dock (the heatmap's sliders asked for 128 pixels), down to a histogram
        # that still reads (bars, a count axis, the value ticks); below that the dock scrolls: 72 pixels at
        # 1024x640 left a title over an empty strip
        self._arrange_histograms()
        box.addWidget(self.tabs, 1)
        box.addStretch(0)  # takes the room while the table and plots are hidden (a structure tape)

        bar = QHBoxLayout()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.load_button = QPushButton("Load values")
        self.load_button.setToolTip(LOAD_TIP)
        self.load_button.clicked.connect(self.fetchRequested)
        self.copy_button = QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.copy_button)
        self.copy_stats_action = menu.addAction("Copy statistics", self.copy_statistics)
        self.copy_values_action = menu.addAction("Copy values", self.copy_values)
        self.copy_button.setMenu(menu)
        self.save_button = QPushButton("Save .npy\u2026")
        self.save_button.clicked.connect(self._save_clicked)
        # a line of its own: beside the buttons a note ("Values of iteration 3 are no longer kept ...") wrapped
        # into a column a word wide
        outer.addWidget(self.status)
        bar.addStretch(1)
        for w in (self.load_button, self.copy_button, self.save_button):
            bar.addWidget(w)
        outer.addLayout(bar)
        self.clear()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange_histograms()
        self._fit_height()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._fit_stats_height()

    def _fit_stats_height(self) -> None:
        """The statistics table as tall as its rows at its font: sized for rows of 19 pixels, with an 11-point font
        (rows of 22) at a scale factor of 1.5 its last row lay under its edge, and the table has no scroll bar."""
        rows = self.stats.verticalHeader()
        row = rows.minimumSectionSize() + 1  # the least a row of its font takes, and a pixel between rows
        rows.setDefaultSectionSize(row)
        self.stats.setFixedHeight(row * len(STATS) + self.stats.horizontalHeader().sizeHint().height()
                                  + 2 * self.stats.frameWidth() + 2)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.body.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_height()
        return super().eventFilter(watched, event)

    def _fit_height(self) -> None:
        """Hold the heading's wrapped lines in the layout's minimum: its size policy ignores its width, so the layout
        counted one line, and a heading wrapped over three (1024x640) pushed the statistics' last row under the
        plots' tabs instead of scrolling the body."""
        width = self.body.viewport().width()
        if width > 0:
            self.meta.setMinimumHeight(max(0, self.meta.heightForWidth(width)))

    def _arrange_histograms(self) -> None:
        """The histograms side by side where each gets HISTOGRAM_WIDE pixels, else one above the other (a narrow
        dock: at 1024x640 two side by side were axes without bars, and pushed the gradient column off the edge)."""
        shown = sum(not view.isHidden() for view in self.histograms.values())
        stacked = self._hist_box.direction() == QBoxLayout.Direction.TopToBottom
        room = self.width() - 24 + (24 if stacked else 0)  # a margin either way: no flipping at the edge
        stack = shown > 1 and room < shown * HISTOGRAM_WIDE
        if stack != stacked:
            self._hist_box.setDirection(QBoxLayout.Direction.TopToBottom if stack else QBoxLayout.Direction.LeftToRight)
        rows = shown if stack else 1
        self.tabs.setMinimumHeight(self.tabs.tabBar().sizeHint().height() + HISTOGRAM_LEAST * rows)

    def histograms_stacked(self) -> bool:
        """Whether the histograms are shown one above the other (a narrow dock)."""
        return self._hist_box.direction() == QBoxLayout.Direction.TopToBottom

    def full_width(self) -> int:
        """The width that shows the statistics and histograms whole, with room for a scroll bar beside them
        (narrower, they scroll sideways; the buttons stay)."""
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        return self.body.widget().minimumSizeHint().width() + bar + 12

    # ---- inputs -----------------------------------------------------------------------------------
    def clear(self, text: str = "Select a node to inspect its output and gradient.") -> None:
        """Show nothing but `text`."""
        self._summaries = {}
        self._stale = {}
        self._arrays = {}
        self._intended, self._subtitle, self._signs = "", "", {}
        self.title.setText("")
        self.meta.setText(text)
        tint(self.meta, MUTED_TEXT)
        self._fill_stats()
        for name, view in self.histograms.items():
            view.show_summary(None)
            view.setVisible(name == VALUE)  # as for a tensor with no gradient yet: not three empty plots
        self._arrange_histograms()
        self._set_arrays({})
        self._say("")
        self._update_controls()

    def set_unavailable(self, values: str = "", summaries: str = "") -> None:
        """Say why the tensors shown next come without full values or without summaries ("": they have them).

        values: disables Load values, with this as its tooltip. summaries: said under the heading of a tensor
        that has none."""
        self._no_values, self._no_summaries = values, summaries
        self.load_button.setToolTip(values or LOAD_TIP)
        self.values_note.setText(values or NO_VALUES)
        self.heatmap.empty.setText(values or NO_VALUES)
        self.heatmap.empty.adjustSize()
        self._update_controls()

    def show_summaries(self, title: str, value: TensorSummary | None = None,
                       grad: TensorSummary | None = None, diff: TensorSummary | None = None,
                       subtitle: str = "", grad_label: str = "", value_label: str = "",
                       stale: dict[str, str] | None = None, intended: str = "") -> None:
        """Show a tensor by its summaries; values set earlier are dropped when the title changes.

        grad_label, value_label: a column's name where it needs saying more than "gradient" or "value"
        (an iteration before the current one). stale: column (of COLUMNS) -> why it is from an earlier moment than
        the others ("no gradient yet in iteration 4 (shown: iteration 3's)"); greyed and titled so, so that the two
        cannot be read as one (a forward's output beside the iteration before's gradient). intended: why the value's
        infinities are there on purpose (an attention mask's -inf): said, and not marked as a fault."""
        if title != self.title.text():
            self._set_arrays({})
        self._summaries = {name: s for name, s in zip(COLUMNS, (value, grad, diff)) if s is not None}
        self._stale = dict(stale or {})
        self._intended, self._subtitle = intended, subtitle
        self.title.setText(title, cut=_module_path(title))
        self._show_meta()
        self._fit_height()
        tint(self.meta, None)
        names = {VALUE: value_label or VALUE, GRAD: grad_label or GRAD}
        # a column is a third of the dock wide, a histogram half of it: "(iteration 0)" read
        # "gradient (itera…" at 1280x720, so both say "(it. 0)"
        short = {c: names.get(c, c).replace("iteration ", "it. ") for c in COLUMNS}
        self.stats.setHorizontalHeaderLabels([short[c] for c in COLUMNS])
        for i, c in enumerate(COLUMNS):
            header = self.stats.horizontalHeaderItem(i)
            header.setToolTip(self._stale.get(c) or names.get(c, c))
            muted = QColor(pick(MUTED_TEXT, self.palette()))
            header.setForeground(muted if c in self._stale else self.palette().text())
        self._fill_stats()
        for name, view in self.histograms.items():
            view.show_summary(self._summaries.get(name))
            self._say_left_out(name)
            view.set_muted(name in self._stale)
            view.setVisible(name in self._summaries or name == VALUE)
            # a stale column's plot is greyed under its column's name ("gradient (it. 3)"), which fits half the
            # dock; the note under the heading and both tooltips say the whole reason
            title = short.get(name, name)
            view.setTitle(title, size="9pt", color=pick(MUTED_TEXT))
            view.setToolTip(self._stale.get(name, ""))
        self._arrange_histograms()
        self._say("")
        self._update_controls()

    def set_values(self, value: np.ndarray | None = None, grad: np.ndarray | None = None,
                   previous: np.ndarray | None = None) -> None:
        """Full values (numpy arrays) of the output, its gradient and the previous iteration's output."""
        arrays: dict[str, object] = {}
        if value is not None:
            arrays[VALUE] = value
        if grad is not None and (value is None or grad.shape == value.shape):
            arrays[GRAD] = grad
        if value is not None and previous is not None and previous.shape == value.shape:
            arrays[DIFF] = Difference(value, previous)
        self._set_arrays(arrays)
        if self._summaries and any(not s.finite for s in self._summaries.values()):
            self._show_meta()  # the values tell the infinities' signs apart: -Inf and +Inf counted each
            self._fill_stats()
            for name in self.histograms:
                self._say_left_out(name)
        self._say("")
        self._update_controls()

    def _say_left_out(self, name: str) -> None:
        """The histogram's note of what its bars leave out, by sign where known, muted for a mask's -Inf."""
        s = self._summaries.get(name)
        if s is not None and not s.finite:
            intended = name == VALUE and bool(self._intended) and not s.nan_count
            self.histograms[name].set_nonfinite_text(_left_out(s, self._signs.get(name)).replace(" and ", " \u00b7 "),
                                                     intended)

    def _show_meta(self) -> None:
        """The heading under the title: shape and kind, the caller's subtitle, and what statistics leave out."""
        summary = self._summaries.get(VALUE) or self._summaries.get(GRAD)
        lines = [_meta(summary, self._subtitle, self._no_summaries)]
        partial = {name: s for name, s in self._summaries.items() if not s.finite and name != DIFF}
        if len(partial) == 1:
            (name, s), = partial.items()
            whose = "" if len(self._summaries) == 1 else f" of the {name}"
            lines.append(f"min, max, mean, std and L2 norm{whose}: of its {s.numel - s.nan_count - s.inf_count:,} "
                         f"finite values ({_left_out(s, self._signs.get(name))} left out)")
        elif partial:
            left = "; ".join(f"{name}: {_left_out(s, self._signs.get(name))}" for name, s in partial.items())
            lines.append(f"min, max, mean, std and L2 norm: of the finite values ({left} left out)")
        if self._intended and VALUE in self._summaries and not self._summaries[VALUE].finite:
            lines.append(self._intended)
        self.meta.setText("\n".join(lines))
        self._fit_height()

    def show_loading(self, text: str = "Fetching values\u2026") -> None:
        """Say that values are on their way."""
        self.show_note(text)

    def show_note(self, text: str, tip: str = "") -> None:
        """Say something about the values above the buttons, muted (why they cannot be loaded; `tip`: more)."""
        self._say(text, MUTED_TEXT, tip)

    def show_error(self, text: str) -> None:
        """Say why values could not be shown (for example: evicted from the value cache)."""
        self._say(text, ERROR_TEXT)

    def _say(self, text: str, colour=None, tip: str = "") -> None:
        tint(self.status, colour)
        self.status.setText(text)
        self.status.setToolTip(tip)
        self.status.setVisible(bool(text))

    # ---- what a person sees -------------------------------------------------------------------------
    def columns(self) -> list[str]:
        """The statistics columns shown."""
        return [name for i, name in enumerate(COLUMNS) if not self.stats.isColumnHidden(i)]

    def stale(self) -> set[str]:
        """The columns shown greyed, as older than the others."""
        return set(self._stale) & set(self.columns())

    def header_text(self, column: str) -> str:
        """A statistics column's heading as shown."""
        return self.stats.horizontalHeaderItem(COLUMNS.index(column)).text()

    def stat_text(self, stat: str, column: str = VALUE) -> str:
        """The text of one statistic ('min', 'NaN', ...) in one column ('value', 'gradient', ...)."""
        item = self.stats.item(STATS.index(stat), COLUMNS.index(column))
        return item.text() if item is not None else ""

    def arrays(self) -> dict[str, object]:
        """The full values shown in the heatmap and table, by column name."""
        return dict(self._arrays)

    # ---- copy and save ------------------------------------------------------------------------------
    def statistics_text(self) -> str:
        """The statistics table as tab-separated text."""
        cols = self.columns()
        rows = ["\t".join(["", *cols])]
        for stat in STATS:
            rows.append("\t".join([stat, *(self.stat_text(stat, c) for c in cols)]))
        return "\n".join(rows)

    def copy_statistics(self) -> str:
        """Put the statistics on the clipboard; returns the text."""
        text = f"{self.title.text()}\n{self.meta.text()}\n{self.statistics_text()}"
        QGuiApplication.clipboard().setText(text)
        return text

    def copy_values(self) -> str:
        """Put the output's values on the clipboard (small tensors only); returns the text."""
        a = self._arrays.get(VALUE)
        if a is None or a.size > COPY_LIMIT:
            return ""
        text = np.array2string(np.asarray(a), separator=", ", threshold=COPY_LIMIT + 1, max_line_width=120)
        QGuiApplication.clipboard().setText(text)
        return text

    def save_npy(self, path: str, which: str = VALUE) -> str:
        """Write the full values of `which` to a .npy file (no pickle); returns the path written."""
        a = self._arrays.get(which)
        if a is None:
            raise ValueError(f"TensorInspector: no {which} values loaded to save; load them first")
        if isinstance(a, Difference):
            a = a[...]
        if not path.endswith(".npy"):
            path += ".npy"
        np.save(path, np.asarray(a), allow_pickle=False)
        self.saved.emit(path)
        return path

    def _save_clicked(self) -> None:
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.title.text()) or "tensor"
        path, _ = QFileDialog.getSaveFileName(self, "Save values", f"{name}.npy", "NumPy array (*.npy)")
        if path:
            try:
                self.save_npy(path, self.table_choice.currentText() or VALUE)
            except OSError as err:
                self.show_error(f"Could not save {path}: {err}")

    # ---- filling ------------------------------------------------------------------------------------
    def _fill_stats(self) -> None:
        partial = [name for name, s in self._summaries.items() if not s.finite]
        for row, stat in enumerate(STATS):
            # "mean -0.12" beside 4,224 -Inf read as the whole tensor's mean
            label = f"{stat} (finite)" if partial and stat in FINITE_ONLY else ROW_NAMES.get(stat, stat)
            header = self.stats.verticalHeaderItem(row)
            header.setText(label)
            header.setToolTip(f"of the finite values only: the NaN and \u00b1Inf of {' and '.join(partial)} left out"
                              if partial and stat in FINITE_ONLY else "")
        for col, name in enumerate(COLUMNS):
            s = self._summaries.get(name)
            self.stats.setColumnHidden(col, s is None and (name != VALUE or bool(self._summaries)))
            texts = _stat_texts(s, self._signs.get(name)) if s is not None else [""] * len(STATS)
            shorts = _stat_shorts(s) if s is not None else [()] * len(STATS)
            for row, (text, short) in enumerate(zip(texts, shorts, strict=True)):
                item = QTableWidgetItem(text)
                item.setData(WHOLE, text)
                item.setData(SHORT, list(short))
                item.setToolTip(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if s is not None and not s.finite and STATS[row] in FINITE_ONLY:
                    item.setToolTip(f"{text}: of the {s.numel - s.nan_count - s.inf_count:,} finite values "
                                    f"({_left_out(s, self._signs.get(name))} left out)")
                intended = name == VALUE and self._intended and STATS[row] == "Inf"
                if intended:
                    item.setToolTip(f"{text}: {self._intended}")
                elif STATS[row] in ("NaN", "Inf") and text not in ("", "0"):
                    item.setForeground(QColor(pick(ERROR_TEXT, self.palette())))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if name in self._stale:  # an earlier moment's: grey, as the sampled estimates below
                    item.setForeground(QColor(pick(MUTED_TEXT, self.palette())))
                if s is not None and not s.exact and STATS[row] in SAMPLED:
                    # greyed and italic beside the exact figures: "zeros 100%" next to "max 1413" read as a
                    # contradiction, not as a sample that missed the non-zero units
                    item.setForeground(QColor(pick(MUTED_TEXT, self.palette())))
                    font = item.font()
                    font.setItalic(True)
                    item.setFont(font)
                    item.setToolTip(_sampled_note(s, STATS[row], text))
                self.stats.setItem(row, col, item)
        self._fit_stats()

    def _fit_stats(self) -> None:
        """A cell too narrow for its text shows a shorter form ("-0.00691", the zeros' share alone) rather
        than an elided number that has lost its digits; the whole text is in its tooltip."""
        metrics = self.stats.fontMetrics()
        for col in range(self.stats.columnCount()):
            room = self.stats.columnWidth(col) - 8  # the cell's margins
            for row in range(self.stats.rowCount()):
                item = self.stats.item(row, col)
                if item is None or not item.data(WHOLE):
                    continue
                text = item.data(WHOLE)
                for shorter in item.data(SHORT) or ():
                    if metrics.horizontalAdvance(text) <= room:
                        break
                    text = shorter
                item.setText(text)

    def _set_arrays(self, arrays: dict) -> None:
        self._arrays = arrays
        # one pass over the values, only for a column whose summary counted infinities
        self._signs = {name: _signs(a) for name, a in arrays.items()
                       if isinstance(a, np.ndarray) and getattr(self._summaries.get(name), "inf_count", 0)}
        self.heatmap.set_arrays(arrays)
        self.table_choice.blockSignals(True)
        self.table_choice.clear()
        self.table_choice.addItems(list(arrays))
        self.table_choice.blockSignals(False)
        self.table_choice.setVisible(len(arrays) > 1)
        self._show_table(self.table_choice.currentText())

    def _show_table(self, which: str) -> None:
        a = self._arrays.get(which)
        if a is None:
            self.table.clear()
        else:
            self.table.set_array(a)
        self.table.setVisible(a is not None)
        self.values_note.setVisible(a is None)

    def _update_controls(self) -> None:
        # a source without summaries (a structure tape): its reason alone, not an empty table and plots
        nothing = not self._summaries and not self._arrays and bool(self._no_summaries)
        self.stats.setVisible(not nothing)
        self.tabs.setVisible(not nothing)
        has_tensor = bool(self._summaries)
        self.load_button.setEnabled(has_tensor and not self._no_values)
        self.load_button.setVisible(not self._arrays)
        self.save_button.setEnabled(bool(self._arrays))
        self.copy_button.setEnabled(has_tensor)
        value = self._arrays.get(VALUE)
        self.copy_values_action.setEnabled(value is not None and value.size <= COPY_LIMIT)


class BreakingLabel(QLabel):
    """A word-wrapped label that may also break a line after a path's dots, slashes and underscores: "linear in
    SpiralClassifierWithResidualBlocks.input_projection_of_the_spiral_coordinates" ran past the dock's edge, one
    word too long to wrap. text() is the text as set; the whole of it is also the tooltip."""

    _BREAKS = str.maketrans({c: c + "\u200b" for c in "./_"})  # a zero-width space: a place to break, unseen

    def __init__(self, text: str = "", parent=None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self._text = ""
        self.setText(text)

    def setText(self, text: str) -> None:
        self._text = text
        super().setText(text.translate(self._BREAKS))
        self.setToolTip(text)

    def text(self) -> str:
        return self._text

    def selectedText(self) -> str:
        # without the break marks, and with its lines as written (Qt gives a paragraph separator for a newline)
        return super().selectedText().replace("\u200b", "").replace("\u2029", "\n")

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.StandardKey.Copy) and self.hasSelectedText():
            QGuiApplication.clipboard().setText(self.selectedText())  # the text as shown, without the break marks
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event) -> None:
        """Copy and Select All of the text as shown: Qt's own menu would copy the invisible break marks too."""
        menu = QMenu(self)
        copy = menu.addAction("&Copy", lambda: QGuiApplication.clipboard().setText(self.selectedText()))
        copy.setEnabled(self.hasSelectedText())
        menu.addAction("Select &All", lambda: self.setSelection(0, len(QLabel.text(self))))
        menu.exec(event.globalPos())


def _meta(s: TensorSummary | None, subtitle: str, no_summaries: str = "") -> str:
    if s is None:
        if no_summaries:
            return f"{subtitle}\n{no_summaries}" if subtitle else no_summaries
        return subtitle or "No summary recorded for this node."
    shape = TIMES.join(map(str, s.shape)) or "scalar"
    parts = [shape, s.dtype, s.device, f"{s.numel:,} element{'s' if s.numel != 1 else ''}"]
    if subtitle:
        parts.append(subtitle)
    return "  \u00b7  ".join(parts)


def _num(x: float, digits: int = 6) -> str:
    return f"{x:.{digits}g}" if math.isfinite(x) else str(x)


def _short_num(x: float, digits: int) -> str:
    """x in `digits` significant digits, its exponent written short: 1e-9, 2.5e12 (not 1e-09, 2.5e+12)."""
    return re.sub(r"e([+-])0*(\d)", lambda m: f"e{m[1].replace('+', '')}{m[2]}", f"{x:.{digits}g}")


def spread_digits(lo: float, hi: float) -> int:
    """Significant digits that tell lo from hi apart: 6, or as many more as values closer than that need (a
    softmax row's sums, 0.99999994 to 1.0000001, all read "1"), at most 17."""
    digits = 6
    if lo != hi and math.isfinite(lo) and math.isfinite(hi):
        near = abs(hi - lo) / 4  # each printed value nearer its own than a quarter of the way to the other
        while digits < 17 and not (abs(float(f"{lo:.{digits}g}") - lo) < near
                                    and abs(float(f"{hi:.{digits}g}") - hi) < near):
            digits += 1
    return digits


def _sampled_note(s: TensorSummary, stat: str, text: str) -> str:
    """A sampled statistic's tooltip: that it is an estimate, from how many elements, and which ones are exact."""
    sample = f"every {ordinal(s.stride)} element ({-(-s.numel // s.stride):,} of {s.numel:,})"
    exact = f"min, max, L2 norm, NaN and Inf are exact, over all {s.numel:,}"
    if stat == "computed from":
        return f"mean, std and zeros (marked \u2248) are estimated from {sample}; {exact}"
    return f"{stat} {text}: estimated from {sample}; {exact}"


def _stat_shorts(s: TensorSummary) -> list[tuple[str, ...]]:
    """Shorter texts per STATS row, longest first, for a narrow column (none where the whole one is short)."""
    about = "" if s.exact else APPROX
    share = (f"{about}{100 * s.zero_count / s.numel:.1f}%",) if s.numel else ()
    how = ("all",) if s.exact else (f"1 in {s.stride}",)
    # the exponent's own zero and plus go before any digit does: "-7.8e-09" had lost a digit "-7.81e-9" keeps
    d = spread_digits(s.min, s.max)
    numbers = [tuple(dict.fromkeys(_short_num(x, digits) for digits in (d if i < 3 else 6, 5, 4, 3, 2)))
               if math.isfinite(x) else () for i, x in enumerate((s.min, s.max, s.mean, s.std, s.norm))]
    numbers[2:4] = [tuple(about + t for t in short) for short in numbers[2:4]]
    return [*numbers, share, (), (f"{s.inf_count:,}",) if s.inf_count else (), how]


def _signs(a: np.ndarray) -> tuple[int, int] | None:
    """(-Inf, +Inf) counts of an array of floats; None for another kind."""
    if a.dtype.kind != "f":
        return None
    return int(np.count_nonzero(np.isneginf(a))), int(np.count_nonzero(np.isposinf(a)))


def _infinities(count: int, signs: tuple[int, int] | None) -> str:
    """"4,224 \u2212Inf", "4 \u2212Inf, 1 +Inf" where the values told the signs (`signs`), else "4,224 \u00b1Inf"."""
    if signs is None or sum(signs) != count:
        return f"{count:,} \u00b1Inf"
    return ", ".join(f"{n:,} {name}" for n, name in zip(signs, (MINUS, PLUS), strict=True) if n)


def _left_out(s: TensorSummary, signs: tuple[int, int] | None) -> str:
    """What a summary's statistics leave out: "4,224 \u2212Inf", "3 NaN and 1 \u00b1Inf"."""
    parts = ([f"{s.nan_count:,} NaN"] if s.nan_count else []) + ([_infinities(s.inf_count, signs)] if s.inf_count
                                                                   else [])
    return " and ".join(parts)


def _stat_texts(s: TensorSummary, signs: tuple[int, int] | None = None) -> list[str]:
    """One text per STATS row; a sampled summary's estimates (SAMPLED) start with "≈ "; the infinities by sign where
    the values loaded tell them (`signs`: their -Inf and +Inf counts)."""
    about = "" if s.exact else APPROX
    zeros = f"{about}{s.zero_count:,}" + (f" ({100 * s.zero_count / s.numel:.1f}%)" if s.numel else "")
    how = "every element" if s.exact else f"every {ordinal(s.stride)} element"
    d = spread_digits(s.min, s.max)  # min, max and mean, which lies between them, as far as they differ
    return [_num(s.min, d), _num(s.max, d), about + _num(s.mean, d), about + _num(s.std), _num(s.norm), zeros,
            f"{s.nan_count:,}", _infinities(s.inf_count, signs) if signs and s.inf_count else f"{s.inf_count:,}", how]


def _module_path(title: str) -> tuple[int, int] | None:
    """Where a title's key ("q  \u00b7  split  \u00b7  Net.encoder.attn/split:0") holds its module path: the part that
    gives way where the title does not fit, never the node's name and op."""
    key = title.rpartition("  \u00b7  ")[2]
    path = key.partition("/")[0] if "/" in key else ""
    start = len(title) - len(key)
    return (start, start + len(path)) if path else None
