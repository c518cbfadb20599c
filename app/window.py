"""The main window: the graph canvas with dockable panels, the debug toolbar, menus and status bar.

    window = MainWindow()
    window.open_demo()                       # or run_script(path, argv), open_tape(path)
    window.command("step_into")              # what F11 does; F5 "resume", F10 "step_over", ...

It composes plain-data widgets around one session (app.session): the event pump drains the session
once per frame and `_on_change` tells the widgets. The window never touches engine objects; it asks
the session, which sends commands through the debugger's queue.
"""

from __future__ import annotations

import contextlib
import html
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QByteArray, QPoint, QRect, QSettings, QStandardPaths, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QActionGroup, QColor, QDesktopServices, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QScrollArea,
    QStyle,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.actions import (
    ALERT_STOP_OF,
    DEBUG,
    DEBUG_TIPS,
    EDIT,
    FILE,
    GO_KEYS,
    GO_TO_PANEL,
    HELP,
    STOP_ON_ALERTS,
    VIEW,
    build_actions,
)
from app.debug_panels import DebugPanels
from app.graph_presenter import COLOUR_BY, GraphPresenter
from app.help import DOCUMENTS, AboutDialog, Example, ShortcutsDialog, fill_examples_menu
from app.panel_focus import PanelFocus
from app.panel_shares import PanelShares
from app.pump import EventPump
from app.replay import ReplaySession
from app.script_memory import remember_script, remembered_arguments, remembered_recordings
from app.session import FINISHED, PAUSED, RUNNING, LiveSession, Target, alert_name, failure_text, raised_where
from app.tape_export import TapeExporter
from app.unsaved import DropQuestion, save_as_tape, what_is_lost
from engine.debug import EventRecord
from engine.debug.records import CAPTURES, source_of
from engine.debug.source import SourceFrame, short_message
from engine.debug.stepping import nothing_to_step_out
from engine.tape.cap import human_size
from engine.tape.info import recording_status
from widgets.alerts_panel import AlertsPanel
from widgets.breakpoints_panel import BreakpointsPanel
from widgets.gradient_flow import GradientFlowChart
from widgets.graph_canvas import GraphCanvas
from widgets.loss_plot import LossPlot
from widgets.module_editor import ModuleEditor
from widgets.module_tree import ModuleTree
from widgets.node_info import NodeInfoPanel
from widgets.output_panel import OutputPanel
from widgets.script_dialog import CAPTURE_NOTES, ScriptDialog, parse_arguments
from widgets.source_view import SourceView
from widgets.status import MessageBar, StatusPanel
from widgets.tensor_inspector import TensorInspector
from widgets.timeline import Timeline
from widgets.timeline_goto import KINDS, GoToDialog
from widgets.training_plots import TrainingPlots

STATE_VERSION = 2  # 2: the debugging panels of issue 8
MAX_RECENT = 8
EXPLAINED_FAILURES = ("inplace", "graph_freed")  # alerts that are the error which ended a run, explained
VISUAL_INTERVAL = 0.12  # seconds between graph and plot repaints while the engine runs freely
# while it runs freely, a grown graph is rebuilt (view, layout, items) after a wait of this many times the
# last rebuild's cost: a 900-node LSTM's first iterations, rebuilt at every frame as they grew, took 4 s each
STRUCTURE_WAIT = 4.0
INSPECT_INTERVAL = 0.3  # seconds between the inspector's refreshes while the engine runs: readable, and cheap
INSPECTOR_MOST = 460  # pixels: the right column's width in a large window
MODULES_SHARE = 0.25  # the most of the window's width the left column takes to show the module tree whole
GRADIENTS_SHARE = 0.4  # the most of the row under the graph the loss group takes for Gradient Flow's names
# the columns a panel of the row under the graph reads at: a line of code with its number ("12  " and 40 characters;
# at 1280x720 the source panel showed 15), a training log's line ("epoch 12 | loss 0.4127 | acc 0.9102 | lr 0.0100")
SOURCE_COLUMNS, OUTPUT_COLUMNS = 44, 48
SPAN_ROWS = 12  # the module tree's rows the left column keeps where the bottom row runs under it (see span_left)
FIRST_SHARE = 0.85  # of each side of a screen larger than 1920x1200, what a first start takes
_NAN_STOP = "Stopped where NaN/Inf first appeared: "
_ALERT_STOP = "Stopped at an alert, "
_PAUSE_WAITS = "Pause is waiting: "
ENTRY_HINT = ("<b>Paused before the first op.</b><br>"
              "F11 step into \u00b7 F10 step over \u00b7 F5 continue \u00b7 Shift+F5 stop")


@dataclass(frozen=True)
class Launch:
    """What the app opens first: the demo, a script (`run`: don't pause on entry) or a tape."""

    kind: str = "demo"  # demo | script | tape
    path: str = ""
    argv: tuple[str, ...] = ()
    run: bool = False
    record: str | None = None
    replay: ReplaySession | None = field(default=None, compare=False, repr=False)  # the tape, opened already


FREE_RUNS = ("resume", "run_to_phase", "run_to_next_iteration")  # commands that run on by themselves
BOTTOM_DOCKS = ("source", "output", "loss", "plots", "gradients", "timeline")  # the bottom area as it starts


class MainWindow(QMainWindow):
    """Tapescope's top-level window (see the module docstring)."""

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings("Tapescope", "Tapescope")
        self.session: LiveSession | ReplaySession | None = None
        self.recordings_dir = str(self.settings.value("recordings/dir", "") or _default_recordings_dir())
        self._restart_pending = False
        self._question: DropQuestion | None = None  # the question asked before a session no tape holds is lost
        self._dropping = False  # the person let such a session go: what follows closes it without asking
        self._select_at_stop: str | None = None  # an alert's node, selected once a replay's seek settles
        self._sources: dict[str, str | None] = {}
        self._sized = self._restored = False
        # the row under the graph: source and output tabbed by the window (not by the person) with nothing in the
        # bottom area moved since, so splitting them again lays out what the window made; the window may tab
        # them (once per shrink: a person who split them in a small window keeps them split); the person
        # moved a dock of the bottom area, which the window then leaves as they have it
        self._compact_row = False
        self._may_tab = True
        self._spanned = False  # the bottom area runs under the left column too (a narrow window: see span_left)
        self._output_fronted = False  # the output tab was brought to the front in this turn of the run
        self._bottom_by_person = False
        self._arranging = 0  # > 0 while the window moves docks itself
        self._editor_fitted = 0  # the module editor's wanted width that fit_editor last widened the column to
        self.setWindowTitle("Tapescope")
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.status_panel = StatusPanel()
        self._build_central()
        self._build_docks()
        self.graph = GraphPresenter(self.canvas, self.module_tree, self.status_panel.set_note)
        self.module_tree.widthWanted.connect(self.fit_modules)
        # the editor tab brought to the front of the left column: its tree's columns whole, its inputs wider
        self.docks["editor"].visibilityChanged.connect(lambda shown: shown and QTimer.singleShot(0, self.fit_editor))
        self.canvas.selectionChanged.connect(self._on_selection)
        self._build_actions()
        self.panels = DebugPanels(self)
        self.statusBar().addPermanentWidget(self.status_panel, 1)
        self.statusBar().setSizeGripEnabled(True)
        self.exporter = TapeExporter(self)  # File > Export…: its progress and Cancel sit in the status bar
        self.exporter.busyChanged.connect(lambda _busy: self._update_actions())
        self.pump = EventPump(self)
        self.pump.changed.connect(self._on_change)
        self._dirty: set[str] = set()
        self._last_visual = 0.0
        self._last_inspect = 0.0  # when the inspector was last refreshed while the engine runs
        self._structure_due = 0.0  # while running, no graph rebuild before this time (time.monotonic)
        self._visual_timer = QTimer(self)
        self._visual_timer.setSingleShot(True)
        self._visual_timer.setInterval(int(VISUAL_INTERVAL * 1000))
        self._visual_timer.timeout.connect(self._flush_visuals)
        # a first start takes the screen (1440x900 on a 1280x720 laptop put the inspector and the bottom row off its
        # edges; 1440 wide on a 1600-wide screen left a strip unused), most of a large one, centred
        screen = QGuiApplication.primaryScreen()
        room = screen.availableGeometry().size() if screen is not None else None
        self.resize(*(first_size(room.width(), room.height()) if room else (1440, 900)))
        self._first_size = self.size()  # once shown, the frame is fitted too, unless a caller chose a size
        self._place: QRect | None = None  # where the window was when it last closed (see _restore_settings)
        self._default_state = self.saveState(STATE_VERSION)
        self._restore_settings()
        self._update_actions()
        from app.builder_dock import install_builder  # the model builder docks (app.builder_dock)

        self.builder = install_builder(self)
        self.panel_shares = PanelShares(self, self.findChildren(QDockWidget), centre=self.bottom_row_min_width)
        for dock in self.findChildren(QDockWidget):
            dock.visibilityChanged.connect(self._left_column_changed)
            dock.dockLocationChanged.connect(lambda _area, d=dock: self._dock_moved(d))
            dock.topLevelChanged.connect(lambda _floating, d=dock: self._dock_moved(d))

    # ---- building ---------------------------------------------------------------------------
    def _build_central(self) -> None:
        central = QWidget()
        box = QVBoxLayout(central)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        self.message_bar = MessageBar()
        self.canvas = GraphCanvas()
        self.canvas.setObjectName("graph")
        wrap = QWidget()
        bar_box = QVBoxLayout(wrap)
        bar_box.setContentsMargins(6, 6, 6, 0)
        bar_box.addWidget(self.message_bar)
        box.addWidget(wrap)
        box.addWidget(self.canvas, 1)
        self.message_bar.closed.connect(lambda: wrap.setVisible(False))
        self._message_wrap = wrap
        wrap.hide()
        self.setCentralWidget(central)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right, bottom = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                               Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        self.module_tree = ModuleTree()
        self.node_info = NodeInfoPanel()
        self.alerts_panel = AlertsPanel()
        self.alerts_panel.alertActivated.connect(self._alert_activated)
        self.alerts_panel.mutesChanged.connect(lambda mutes: setattr(self.session, "mutes", mutes)
                                               if self.session is not None else None)
        self.alerts_panel.mutesChanged.connect(lambda _mutes: self.panels.mark_alerts())  # off the timeline
        self.source_view = SourceView()
        self.output = OutputPanel()
        self.loss_plot = LossPlot()
        self.inspector = TensorInspector()
        self.timeline = Timeline()
        self.breakpoints = BreakpointsPanel()
        self.module_editor = ModuleEditor()
        self.training_plots = TrainingPlots()
        self.gradient_flow = GradientFlowChart()
        self.gradient_flow.wantedWidthChanged.connect(self.fit_gradient_flow)
        self.docks = {
            "modules": self._dock("Modules", "modules", self.module_tree, left),
            "editor": self._dock("Editor", "editor", self.module_editor, left),
            "inspector": self._dock("Inspector", "inspector", _scrolling(self.inspector), right),
            "node": self._dock("Node", "node", self.node_info, right),
            "alerts": self._dock("Alerts", "alerts", self.alerts_panel, right),
            "breakpoints": self._dock("Breakpoints", "breakpoints", self.breakpoints, right),
            "source": self._dock("Source", "source", self.source_view, bottom),
            "output": self._dock("Output", "output", self.output, bottom),
            "loss": self._dock("Loss", "loss", self.loss_plot, bottom),
            "plots": self._dock("Training", "plots", self.training_plots, bottom),
            "gradients": self._dock("Gradient Flow", "gradients", _scrolling(self.gradient_flow), bottom),
            "timeline": self._dock("Timeline", "timeline", self.timeline, bottom),
        }
        d = self.docks
        # the left column may sit above the bottom row (see span_left), its least height then adding to the window's:
        # the editor's form (142 pixels) gives way as the module tree does (a window set to 700x400 stayed 512 high)
        least = self.module_tree.header().sizeHint().height() + 2 * (self.module_tree.fontMetrics().height() + 4)
        self.module_tree.setMinimumHeight(least)  # a header and two rows: the tree scrolls
        self.module_editor.setMinimumHeight(least)
        self.splitDockWidget(d["inspector"], d["alerts"], Qt.Orientation.Vertical)
        # related panels share a place as tabs, so the window stays uncluttered
        self.tabifyDockWidget(d["modules"], d["editor"])
        self.tabifyDockWidget(d["inspector"], d["node"])
        self.tabifyDockWidget(d["alerts"], d["breakpoints"])
        self._lay_out_bottom()

    def _lay_out_bottom(self) -> None:
        """The bottom area as it starts: source | output | loss group (loss, training, gradient flow), over the
        timeline (the docks are in the bottom area already, or in none)."""
        d = self.docks
        horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, d["source"])
        self.splitDockWidget(d["source"], d["output"], horizontal)
        self.splitDockWidget(d["output"], d["loss"], horizontal)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, d["timeline"], vertical)  # under all three
        self.tabifyDockWidget(d["loss"], d["plots"])
        self.tabifyDockWidget(d["plots"], d["gradients"])

    def _initial_dock_sizes(self) -> None:
        """Sizes that suit the default layout (docks only take sizes once the window is shown)."""
        d = self.docks
        w, h = self.width(), self.height()
        horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        # the module tree shows its Class column; the inspector its statistics table and both histograms
        # (at most what its table and histograms use: at 1920x1080 the graph's column gave it 518 pixels; at least
        # what its tabs need beside the scroll bar of a short window)
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        least = self.inspector.full_width() + bar + 6
        self.resizeDocks([d["modules"], d["inspector"]],
                         [self.modules_width(), min(max(int(w * 0.25), least), INSPECTOR_MOST)], horizontal)
        # the row's width now that the side columns have theirs (the timeline spans it): asked for more than
        # that, Qt shrinks every dock of the row alike, the loss dock's tabs to "Lo… | Traini…"
        self.layout().activate()
        gaps = 2 * self.style().pixelMetric(QStyle.PixelMetric.PM_DockWidgetSeparatorExtent, None, self)
        row = d["timeline"].width() - gaps
        if 0 < row < self._comfortable_row() and not self._spanned and self._left_may_shorten():
            self.span_left(True)
            row = d["timeline"].width() - gaps
        if 0 < row < self._tab_row() and d["output"] not in self.tabifiedDockWidgets(d["source"]):
            # a small window (960x540 at a scale factor of 2): source and output share one place as tabs, so
            # each reads, rather than three slivers side by side
            self._tab_source_and_output(True)
            row = d["timeline"].width() - gaps // 2
        self._share_bottom_row(row if row > 0 else int(w * 0.6))
        if self._spanned:  # Qt sizes a row it has just moved under the left column as it was: once more, now
            self.layout().activate()
            self._share_bottom_row(row)
        self.resizeDocks([d["source"], d["timeline"]], [int(h * 0.27), 96], vertical)
        # the inspector's statistics and histograms fit without scrolling; the alerts get the rest: from 900 pixels
        # high, room for six rows and the current one's message (a fifth showed three)
        alerts = 0.25 if h >= 880 else 0.2
        self.resizeDocks([d["inspector"], d["alerts"]], [int(h * (0.86 - alerts)), int(h * alerts)], vertical)
        for first in ("modules", "inspector", "alerts", "loss", "source"):  # the tab in front of each group
            d[first].raise_()

    def modules_width(self) -> int:
        """The left column's width with the module tree in front: its tabs and (within a quarter of the
        window) its names and classes whole; at 960x540 the Class column read "Spira…"."""
        dock = self.docks["modules"]
        frame = dock.width() - self.module_tree.width() if dock.isVisible() else 8
        tree = min(self.module_tree.sizeHint().width() + max(frame, 0), int(self.width() * MODULES_SHARE))
        return max(int(self.width() * 0.13), _tabs_width(self, dock), tree)  # "Modules | Editor", not "Modul…"

    def fit_modules(self, *_wanted) -> None:
        """Widen the left column to `modules_width` when the module tree is in front and narrower."""
        dock = self.docks["modules"]
        want = min(self.modules_width(), self._left_column_room())
        if (self._sized and dock.isVisible() and not dock.isFloating() and not dock.visibleRegion().isEmpty()
                and dock.width() < want):
            self.resizeDocks([dock], [want], Qt.Orientation.Horizontal)
            # Qt took the width from every dock of the row alike: the loss tab read "Lo…" at 1280x720, and
            # "Lo… | Train… | Gradient F…" in a 1024x640 window's tabbed row once a script's modules arrived
            QTimer.singleShot(0, self.balance_bottom_row)

    def _left_column_room(self) -> int:
        """The most the left column may take: the graph's column keeps what its bottom row needs to read (the
        loss group's tabs whole) beside the docks on the right as they are."""
        right = max((d.width() for d in self.findChildren(QDockWidget) if d.isVisible() and not d.isFloating()
                     and self.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea
                     and self.rect().intersects(d.geometry())), default=0)
        gaps = 4 * self.style().pixelMetric(QStyle.PixelMetric.PM_DockWidgetSeparatorExtent, None, self)
        return self.width() - right - self.bottom_row_min_width() - gaps

    def fit_editor(self) -> None:
        """Widen the left column to show the module editor's columns whole while it is in front: at the module
        tree's width it read "Param" and "1,05" for 1,056 parameters, its value inputs a few letters wide. Only
        when the editor wants more than it was last fitted to: bringing its tab to the front again undid a
        width the person had chosen."""
        dock = self.docks["editor"]
        if not self._sized or dock.isFloating() or dock.visibleRegion().isEmpty():
            return
        wanted = self.module_editor.wanted_width()
        if wanted <= self._editor_fitted:
            return  # fitted to this already: a column the person made narrower since stays as they have it
        self._editor_fitted = wanted
        frame = dock.width() - self.module_editor.width()
        want = min(wanted + frame, int(self.width() * MODULES_SHARE), self._left_column_room())
        if dock.width() < want:
            self.resizeDocks([dock], [want], Qt.Orientation.Horizontal)
            QTimer.singleShot(0, self.balance_bottom_row)

    def _share_bottom_row(self, width: int) -> None:
        """Share `width` among the source, output and loss docks under the graph."""
        docks = self._bottom_row()
        tabbed = docks[1] in self.tabifiedDockWidgets(docks[0])  # a small window's compact row
        loss = self._loss_width(width, tabbed)
        rest = width - loss
        if tabbed:
            self.resizeDocks([docks[0], docks[2]], [rest, loss], Qt.Orientation.Horizontal)
            return
        # the output's lines are a training log's ("epoch 3 | loss 0.4127 | acc 0.91"): it gets the larger part (at
        # 1440x900 its 250 pixels, beside a wider source view, wrapped or cut every line past 30 characters); shares,
        # not sizes, so that a window grown and shrunk again gets the row it started with. The source keeps a line of
        # code where the row has room for it beside the output's few words
        source = max(int(rest * 0.30 / 0.70), min(self._source_width(), rest - self._narrow_panel_width()))
        self.resizeDocks(docks, [source, rest - source, loss], Qt.Orientation.Horizontal)

    def _bottom_row(self) -> list[QDockWidget]:
        """The docks side by side under the graph: source, output and the loss group's tab in front. A tab behind is
        moved out of the window: the loss dock, measured behind Training, left a row of two, which the window then
        tabbed (at 1280x720, a click on Training put the output behind the source)."""
        d = self.docks
        group = [d["loss"], *self.tabifiedDockWidgets(d["loss"])]
        front = next((x for x in group if x in (d["plots"], d["gradients"]) and not x.isHidden()
                      and self.rect().intersects(x.geometry())), d["loss"])
        return [d["source"], d["output"], front]

    def _loss_width(self, width: int, tabbed: bool) -> int:
        """The loss group's part of a bottom row `width` wide (`tabbed`: source and output share one place)."""
        group = self.docks["loss"]
        # the loss dock's tabs read whole ("Lo… | Traini… | Gradient Fl…" at 1280x720), and its panels (the
        # gradient flow's two choices: "gradient no… | per parame" at 1440x900): the others give way, down to a
        # width that still shows a few words each
        others = 1 if tabbed else 2
        # Gradient Flow's names whole beside its bars, as far as the others keep a fair part (GRADIENTS_SHARE) and,
        # side by side, the output as many columns as the source: at 1280x720 a transformer's names left the output
        # 31 characters of a log line beside the source's 44
        wanted = min(self.gradient_flow.wanted_width() + 24, int(width * GRADIENTS_SHARE))
        loss = max(int(width * 0.30), wanted)
        if not tabbed:
            loss = min(loss, width - self._source_width() - self._output_width(SOURCE_COLUMNS))
        loss = min(max(loss, _tabs_width(self, group)), width - others * self._narrow_panel_width())
        return max(loss, int(width * 0.26))

    def fit_gradient_flow(self, _wanted: int = 0) -> None:
        """Widen the loss group under the graph towards what Gradient Flow wants (the model's parameter names whole,
        once a script's model is known; see _loss_width), the source and output panels giving way: as the window laid
        the row out, never narrower, and not where the person arranged the bottom area."""
        docks = self._bottom_row()
        dock = docks[2]
        if (not self._sized or self._bottom_by_person or not all(d.isVisible() and not d.isFloating() for d in docks)
                or self.dockWidgetArea(dock) != Qt.DockWidgetArea.BottomDockWidgetArea):
            return
        row = sum(d.width() for d in docks if self.rect().intersects(d.geometry()))
        if dock.width() < self._loss_width(row, docks[1] in self.tabifiedDockWidgets(docks[0])):
            with self.panel_shares.rearranging(Qt.DockWidgetArea.BottomDockWidgetArea):
                self._share_bottom_row(row)
                self.layout().activate()

    def _narrow_panel_width(self) -> int:
        """The width at which the source or output panel still shows a few words (from the font, so it holds
        at any scale factor or font size)."""
        return 20 * self.fontMetrics().averageCharWidth()

    def _source_width(self) -> int:
        """The source dock's width for SOURCE_COLUMNS of code beside its scroll bar."""
        return _text_width(self.source_view.text, SOURCE_COLUMNS) + self.docks["source"].width() \
            - self.source_view.text.width() if self.docks["source"].isVisible() else 0

    def _output_width(self, columns: int) -> int:
        """The output dock's width for `columns` characters of a log line beside its scroll bar."""
        return _text_width(self.output, columns) + self.docks["output"].width() - self.output.width() \
            if self.docks["output"].isVisible() else 0

    def bottom_row_min_width(self) -> int:
        """The width the graph's column needs for the row under it to read: the loss group's tabs whole,
        the source and output panels a few words wide."""
        gaps = 2 * self.style().pixelMetric(QStyle.PixelMetric.PM_DockWidgetSeparatorExtent, None, self)
        return _tabs_width(self, self.docks["loss"]) + 2 * self._narrow_panel_width() + gaps

    def _comfortable_row(self) -> int:
        """The bottom row's width below which it runs under the left column too, then source and output share
        one place as tabs: the loss group's tabs, a line of code and a training log's line whole."""
        gaps = 2 * self.style().pixelMetric(QStyle.PixelMetric.PM_DockWidgetSeparatorExtent, None, self)
        needs = max(_tabs_width(self, self.docks["loss"]), self.gradient_flow.minimumSizeHint().width() + 24)
        return needs + self._source_width() + _text_width(self.output, OUTPUT_COLUMNS) + gaps

    def _tab_row(self) -> int:
        """The bottom row's width below which source and output share one place as tabs: the loss group's tabs
        and a line of code whole, and the output a few words wide."""
        return self._comfortable_row() - self.output.fontMetrics().horizontalAdvance("x" * (OUTPUT_COLUMNS - 24))

    def _left_column_width(self) -> int:
        """The left column's width (its docks in the window; 0 when it has none)."""
        return max((d.width() for d in self.findChildren(QDockWidget) if d.isVisible() and not d.isFloating()
                    and self.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea
                    and self.rect().intersects(d.geometry())), default=0)

    def _left_may_shorten(self, slack_rows: int = 0) -> bool:
        """Whether the left column may sit above the bottom area: it holds only panels that read in part of its
        height (the module tree and its editor; the model builder's form wants it whole, and shortened it scrolled
        sideways), and keeps SPAN_ROWS of the module tree there (less `slack_rows`). In a short window the row
        stays beside it: spanned, the column's least height adds to the row's (a window set to 700x400 stayed
        440 high)."""
        mine = (self.docks["modules"], self.docks["editor"])
        left = [d for d in self.findChildren(QDockWidget) if d.isVisible() and not d.isFloating()
                and self.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea]
        if not all(d in mine for d in left):
            return False
        bottom = QRect()
        for name in BOTTOM_DOCKS:
            dock = self.docks[name]
            if dock.isVisible() and not dock.isFloating() and self.rect().intersects(dock.geometry()):
                bottom = bottom.united(dock.geometry())
        tree = self.module_tree
        column = max((d.height() for d in left if self.rect().intersects(d.geometry())), default=0)
        room = column - tree.header().sizeHint().height() - (0 if self._spanned else bottom.height())
        return room >= (SPAN_ROWS - slack_rows) * (tree.fontMetrics().height() + 4)

    def _left_column_changed(self, _shown: bool) -> None:
        """A panel that wants the left column's whole height gets it as it shows, before it is sized (the builder
        took a width that scrolled in the shortened column); once it goes, the row may run under the column again."""
        if self._spanned and not self._left_may_shorten(slack_rows=2):
            self.span_left(False)
        QTimer.singleShot(0, self.fit_bottom_row)

    def span_left(self, spanned: bool) -> None:
        """Run the bottom area (the row under the graph and the timeline) under the left column too, or not: in
        a narrow window the row's panels read (at 1280x720 with a transformer's module tree, the source showed 15
        characters a line, the timeline's legend bare colour squares) where the module tree gives up height it
        rarely fills."""
        area = Qt.DockWidgetArea.BottomDockWidgetArea if spanned else Qt.DockWidgetArea.LeftDockWidgetArea
        self.setCorner(Qt.Corner.BottomLeftCorner, area)
        self._spanned = spanned
        self.layout().activate()

    @property
    def spanned(self) -> bool:
        """Whether the bottom area runs under the left column (see span_left)."""
        return self._spanned

    def _tab_source_and_output(self, tabbed: bool) -> None:
        """Put the output panel behind the source panel as a tab (a narrow row), or beside it again."""
        source, output = self.docks["source"], self.docks["output"]
        with self._arranging_docks():
            if tabbed:
                self.tabifyDockWidget(source, output)
                source.raise_()
            else:
                self._rebuild_bottom_area()
        self._compact_row = tabbed
        self._may_tab = not tabbed
        self.layout().activate()

    def _rebuild_bottom_area(self) -> None:
        """The bottom area laid out again as it starts, keeping which panels show, which tab is in front and the
        heights: Qt splits a dock that was ever tabbed only into another tab. Only for a bottom area the window
        made (see _compact_row): the person's own arrangement would be lost."""
        d = self.docks
        shown = {name: d[name].isVisible() for name in BOTTOM_DOCKS}
        front = [name for name in ("loss", "plots", "gradients") if self.rect().intersects(d[name].geometry())]
        heights = [d["source"].height(), d["timeline"].height()]
        for name in BOTTOM_DOCKS:
            self.removeDockWidget(d[name])
        self._lay_out_bottom()
        for name in BOTTOM_DOCKS:
            d[name].setVisible(shown[name])
        for name in front:
            d[name].raise_()
        self.resizeDocks([d["source"], d["timeline"]], heights, Qt.Orientation.Vertical)

    @contextlib.contextmanager
    def _arranging_docks(self):
        """The window moves docks itself: those moves are not the person's."""
        self._arranging += 1
        try:
            yield
        finally:
            self._arranging -= 1
            QTimer.singleShot(0, self._hide_stale_tab_bars)

    def _dock_moved(self, dock: QDockWidget) -> None:
        """A dock was docked elsewhere, floated or docked again: in the bottom area, by the person, the window
        leaves that area's arrangement to them (splitting a tabbed row rebuilds the area, and re-tabbing a row
        they split undoes their choice)."""
        if self._arranging:
            return
        bottom = {self.docks[name] for name in BOTTOM_DOCKS}
        if dock in bottom or self.dockWidgetArea(dock) == Qt.DockWidgetArea.BottomDockWidgetArea:
            self._compact_row = False
            self._bottom_by_person = True

    def fit_bottom_row(self) -> None:
        """Run the bottom area under the left column once the row under the graph is too narrow for a line of
        code and a log's line, then tab source and output together once it is too narrow for three panels side
        by side; undo each when the row has room again (a window resized from 1440x900 to 1024x640 kept three
        slivers: 10 characters of code, 'Lo… | T…' for the plots)."""
        source, output, loss = self._bottom_row()
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        if self._spanned and not self._left_may_shorten(slack_rows=2):
            self.span_left(False)
        if not self._sized or not all(x.isVisible() and not x.isFloating() and self.dockWidgetArea(x) == bottom
                                      for x in (source, output, loss)):
            return
        tabbed = output in self.tabifiedDockWidgets(source)
        if self._bottom_by_person or (tabbed and not self._compact_row):
            return  # the person arranged the bottom area (or tabbed these two): theirs to change
        def row_width() -> int:
            return sum(x.width() for x in (source, output, loss) if self.rect().intersects(x.geometry()))

        row, slack = row_width(), 10 * self.fontMetrics().averageCharWidth()  # no flicker at the edges
        left = self._left_column_width()
        if left and self._left_may_shorten() and (row < self._comfortable_row()) != self._spanned and (
                not self._spanned or (not tabbed and row - left >= self._comfortable_row() + slack)):
            with self.panel_shares.rearranging(bottom):
                self.span_left(not self._spanned)
                self._share_bottom_row(row_width())
                self.layout().activate()
            row = row_width()
        comfortable = self._tab_row()
        if not tabbed and row >= comfortable:
            self._may_tab = True  # the next time the row gets narrow, the window tabs it again
        if not tabbed and row < comfortable and self._may_tab:
            compact = True
        elif tabbed and row >= comfortable + slack:
            compact = False
        else:
            return
        with self.panel_shares.rearranging(bottom):
            self._tab_source_and_output(compact)
            self._share_bottom_row(row)
            self.layout().activate()  # the docks' new sizes, now: they are the row's shares from here on

    def balance_bottom_row(self) -> None:
        """Share the bottom row's width again (after a side dock took some, e.g. the model builder)."""
        self.fit_bottom_row()
        docks = self._bottom_row()
        if all(dock.isVisible() and not dock.isFloating() for dock in docks):
            # tabbed docks share one place, and the tab behind is moved out of the window: count what shows
            self._share_bottom_row(sum(dock.width() for dock in docks if self.rect().intersects(dock.geometry())))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            if self._place is not None and self.geometry() != self._place:
                self.setGeometry(self._place)  # the docks' least sizes, known once laid out, had widened it
            if not self._restored:
                if self.size() == self._first_size:
                    self.fit_frame_to_screen(centre=True)
                self._initial_dock_sizes()
            else:  # a layout saved in a larger window (another screen): the graph's column and its row read
                self.layout().activate()
                self.panel_shares.keep_centre()
                self.fit_bottom_row()
            self.panel_shares.remember()
        QTimer.singleShot(0, self._hide_stale_tab_bars)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.panel_shares.window_resized(event.oldSize())
        self.fit_bottom_row()
        QTimer.singleShot(0, self._hide_stale_tab_bars)

    def _hide_stale_tab_bars(self) -> None:
        """Hide the window's tab bars that sit under no dock of their own group. Qt leaves a group's first tab
        bar shown where the group was laid out before the window took its size: an "Alerts | Breakpoints" bar
        floated over the Output panel once the panel repainted. A live bar lies along the bottom of its docks."""
        docks = {dock.windowTitle(): dock for dock in self.docks.values()}
        for bar in self.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly):
            if bar.isHidden() or not bar.count():
                continue
            at = bar.geometry()
            members = [docks.get(bar.tabText(i)) for i in range(bar.count())]
            if not any(m is not None and not m.isHidden() and abs(m.geometry().bottom() + 1 - at.top()) <= 3
                       and abs(m.geometry().left() - at.left()) <= 3 for m in members):
                bar.hide()

    def fit_frame_to_screen(self, centre: bool = False) -> None:
        """Keep the whole window on its screen, title bar and borders included: a first start sized the inside
        to the screen, so the frame ran past its edges (`centre`: in the middle of the screen's free area)."""
        screen = self.screen()
        if screen is None or self.windowState() & (Qt.WindowState.WindowMaximized | Qt.WindowState.WindowFullScreen):
            return
        room, frame = screen.availableGeometry(), self.frameGeometry()
        extra_w, extra_h = frame.width() - self.width(), frame.height() - self.height()
        width, height = min(self.width(), room.width() - extra_w), min(self.height(), room.height() - extra_h)
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        # move() places the frame's top-left corner
        x, y = frame.left(), frame.top()
        if centre:
            x = room.left() + (room.width() - width - extra_w) // 2
            y = room.top() + (room.height() - height - extra_h) // 2
        x = max(room.left(), min(x, room.left() + room.width() - width - extra_w))
        y = max(room.top(), min(y, room.top() + room.height() - height - extra_h))
        if (x, y) != (frame.left(), frame.top()):
            self.move(x, y)

    def _build_actions(self) -> None:
        self.actions = build_actions(self, DEBUG + STOP_ON_ALERTS + FILE + EDIT + VIEW + GO_TO_PANEL + HELP)
        a = self.actions
        for name in ("resume", "pause", "step_into", "step_over", "step_out", "run_to_phase",
                     "run_to_next_iteration"):
            a[name].triggered.connect(lambda _=False, n=name: self.command(n))
        a["step_back"].triggered.connect(lambda: self.step_back())
        a["step_back_over"].triggered.connect(lambda: self.step_back(over=True))
        self.timeline.cursorMoved.connect(lambda _seq: self._update_actions())
        self.timeline.followChanged.connect(lambda _on: self._update_actions())
        a["restart"].triggered.connect(self.restart)
        a["stop"].triggered.connect(self.stop)
        a["record"].toggled.connect(self._record_toggled)
        # not kept from one start of the app to the next: it slows every run, and a run paused in plain Python code
        # weeks later, with nothing on screen saying why, surprised a tester
        a["break_in_python"].toggled.connect(self._break_in_python_toggled)
        a["open_tape"].triggered.connect(self._ask_tape)
        a["run_script"].triggered.connect(self._ask_script)
        a["open_demo"].triggered.connect(lambda: self.after_asking("open", self.open_demo))
        a["export"].triggered.connect(lambda: self.exporter.ask())
        a["quit"].triggered.connect(self.quit)
        a["fit"].triggered.connect(lambda: self.graph.fit())
        a["find"].triggered.connect(lambda: (self.search_box.setFocus(), self.search_box.selectAll()))
        a["find_next"].triggered.connect(lambda: self.find(self.search_box.text()))
        a["find_previous"].triggered.connect(lambda: self.find(self.search_box.text(), backward=True))
        a["backward"].toggled.connect(self.canvas.set_backward_visible)
        a["collapse_modules"].triggered.connect(lambda: self.graph.collapse_all(True))
        a["expand_modules"].triggered.connect(lambda: self.graph.collapse_all(False))
        a["reset_layout"].triggered.connect(self.reset_panels)
        self._build_keyboard_ways(a)
        a["shortcuts"].triggered.connect(self.show_shortcuts)
        a["about"].triggered.connect(self.show_about)
        for name, path in DOCUMENTS.items():
            a[name].triggered.connect(lambda _=False, p=path: self._open_document(p))
        self.addActions([action for name, action in a.items() if name not in GO_KEYS])

        menu = self.menuBar().addMenu("&File")
        for name in ("open_tape", "run_script", "open_demo"):
            menu.addAction(a[name])
        self.examples_menu = menu.addMenu("Open E&xample")
        fill_examples_menu(self.examples_menu, lambda e: self.after_asking("open", lambda: self.open_example(e)))
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        menu.addMenu(self.recent_menu)
        menu.addSeparator()
        menu.addAction(a["export"])
        menu.addSeparator()
        menu.addAction(a["quit"])

        edit = self.menuBar().addMenu("&Edit")
        edit.addAction(a["undo"])
        edit.addAction(a["redo"])
        debug = self.menuBar().addMenu("&Debug")
        for group in (("resume", "pause", "stop", "restart"),
                      ("step_into", "step_over", "step_out", "step_back", "step_back_over"),
                      ("run_to_phase", "run_to_next_iteration"), ("go_to_first", "go_to_last", "go_to"),
                      ("toggle_breakpoint", "stop_on_alerts", "break_in_python"),
                      ("record",)):
            for name in group:
                if name == "stop_on_alerts":
                    self._build_alert_stops(debug.addMenu("Stop on &Alerts"))
                else:
                    debug.addAction(a[name])
                if name == "record":
                    self._build_record_menu(debug.addMenu("Record Captur&e"))
            debug.addSeparator()

        view = self.menuBar().addMenu("&View")
        for name in ("fit", "find", "find_next", "find_previous", "backward"):
            view.addAction(a[name])
        colour = view.addMenu("C&olour Nodes By")
        group = QActionGroup(self)
        for text, metric in COLOUR_BY:
            act = QAction(text, self, checkable=True, checked=metric is None)
            act.triggered.connect(lambda _=False, m=metric: self.graph.set_colour_by(m))
            group.addAction(act)
            colour.addAction(act)
        view.addAction(a["collapse_modules"])
        view.addAction(a["expand_modules"])
        view.addSeparator()
        panels = view.addMenu("&Panels")
        for dock in self.docks.values():
            panels.addAction(dock.toggleViewAction())
        go_to_panel = view.addMenu("&Go to Panel")
        for spec in GO_TO_PANEL:
            go_to_panel.addAction(a[spec.name])
        view.addAction(a["next_panel"])
        view.addAction(a["previous_panel"])
        view.addAction(a["reset_layout"])

        self.help_menu = self.menuBar().addMenu("&Help")
        self.help_menu.addAction(a["shortcuts"])
        documents = [name for name, path in DOCUMENTS.items() if path.is_file()]  # none in a bare wheel
        if documents:
            self.help_menu.addSeparator()
        for name in documents:
            self.help_menu.addAction(a[name])
        self.help_menu.addSeparator()
        self.help_menu.addAction(a["about"])

        bar = self.addToolBar("Debug")
        bar.setObjectName("debug_toolbar")
        bar.setMovable(False)
        for name in ("resume", "pause", "stop", "restart", None, "step_over", "step_into", "step_out", None,
                     "step_back_over", "step_back", None, "run_to_phase", "run_to_next_iteration", None, "record",
                     "fit"):
            bar.addSeparator() if name is None else bar.addAction(a[name])
        button = bar.widgetForAction(a["record"])
        button.setMenu(self.record_menu)  # the icon records; the arrow beside it chooses what
        button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        bar.addSeparator()
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Find node (Ctrl+F)")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setMaximumWidth(240)
        self.search_box.returnPressed.connect(lambda: self.find(self.search_box.text()))
        bar.addWidget(self.search_box)
        # how many nodes match, and which one is selected: "1 of 2" (Enter and F3 go to the next)
        self.search_count = QLabel()
        self.search_count.setContentsMargins(6, 0, 6, 0)
        self.search_box.textChanged.connect(self._count_matches)
        bar.addWidget(self.search_count)
        self.toolbar = bar

    def _build_keyboard_ways(self, a: dict[str, QAction]) -> None:
        """Home, End and Ctrl+G move the timeline's cursor; Ctrl+Tab, Ctrl+Shift+Tab and Alt+digit move the focus
        between the panels (Tab stays each panel's own: the graph's goes round its nodes)."""
        a["go_to_first"].triggered.connect(self.timeline.go_to_start)
        a["go_to_last"].triggered.connect(self.timeline.go_to_end)
        a["go_to"].triggered.connect(self.ask_go_to)
        # Home and End are the graph's and the timeline's: elsewhere they stay a text's or a list's own
        for name in GO_KEYS:
            a[name].setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.canvas.addAction(a[name])
            self.timeline.addAction(a[name])
        self.panel_focus = PanelFocus(self)
        a["next_panel"].triggered.connect(lambda: self.panel_focus.cycle())
        a["previous_panel"].triggered.connect(lambda: self.panel_focus.cycle(backward=True))
        for spec in GO_TO_PANEL:
            name = spec.name.removeprefix("panel_")
            a[spec.name].triggered.connect(lambda _=False, n=name: self.panel_focus.go_to(n))

    def ask_go_to(self) -> GoToDialog | None:
        """Go to Iteration or Event (Ctrl+G): the timeline's cursor to an iteration's first event or to an event."""
        bounds = self.timeline.bounds()
        if bounds is None or not self.actions["go_to"].isEnabled():
            return None
        kind = self.settings.value("timeline/go_to", "iteration")
        dialog = GoToDialog(bounds, kind if kind in KINDS else "iteration", self.timeline.position(), self)
        dialog.chosen.connect(self.go_to)
        return self._open_dialog(dialog)

    def go_to(self, kind: str, number: int) -> bool:
        """Move the timeline's cursor to iteration `number` ("iteration") or to event `number` ("event")."""
        self.settings.setValue("timeline/go_to", kind)
        moved = self.timeline.go_to_iteration(number) if kind == "iteration" else self.timeline.go_to_event(number)
        if not moved:
            self.status_panel.set_note(f"No {kind} {number:,} on the timeline", 4)
        return moved

    def _build_record_menu(self, menu: QMenu) -> None:
        """Debug > Record Capture, also the Record button's drop-down: what a recording keeps (its capture
        tier), one choice kept in the settings; the button records at that tier."""
        self.record_captures = {}
        for tier in CAPTURES:
            action = QAction(f"{tier.capitalize()}: {CAPTURE_NOTES[tier]}", self)
            action.setToolTip(f"Record at the {tier} tier; the live view shows the same while it records")
            self.record_captures[tier] = action
        self.record_capture = self._build_choice(menu, "recordings/capture", "summary", self.record_captures,
                                                 self.set_record_capture)
        self.record_menu = menu

    def set_record_capture(self, tier: str) -> None:
        """What the next recording keeps: "structure", "summary" or "values" (kept in the settings)."""
        self.record_capture = self._choose("recordings/capture", tier, self.record_captures, "a recording's capture")

    def _build_alert_stops(self, menu: QMenu) -> None:
        """Debug > Stop on Alerts: which alerts stop a run, one choice kept in the settings (every alert at first)."""
        self.alert_stops = {which: self.actions[name] for name, which in ALERT_STOP_OF.items()}
        for action in self.alert_stops.values():
            action.setToolTip(action.statusTip())
        self.stop_on_alerts = self._build_choice(menu, "debug/stop_on_alerts", "all", self.alert_stops,
                                                 self.set_stop_on_alerts)
        self.alert_stops_menu = menu

    def set_stop_on_alerts(self, which: str) -> None:
        """Which alerts stop Continue and the steps: "all", "nonfinite" or "none" (kept in the settings)."""
        self.stop_on_alerts = self._choose("debug/stop_on_alerts", which, self.alert_stops, "alert stops")
        if self.session is not None:
            self.session.stop_on_alerts = which

    def _build_choice(self, menu: QMenu, key: str, default: str, actions: dict[str, QAction],
                      choose: Callable[[str], None]) -> str:
        """`actions` (by value) as one exclusive choice in `menu`, the one kept at `key` checked (else `default`);
        picking one calls `choose` with its value. Returns the value checked."""
        menu.setToolTipsVisible(True)
        group = QActionGroup(self)
        saved = self.settings.value(key, default)
        current = saved if isinstance(saved, str) and saved in actions else default  # a hand-edited file: any type
        for value, action in actions.items():
            action.setCheckable(True)
            action.setChecked(value == current)
            action.triggered.connect(lambda _=False, v=value: choose(v))
            group.addAction(action)
            menu.addAction(action)
        return current

    def _choose(self, key: str, value: str, actions: dict[str, QAction], what: str) -> str:
        """Check `value`'s action of a _build_choice menu and keep it at `key`; `what` names the choice in the error
        an unknown value raises. Returns `value`."""
        if not isinstance(value, str) or value not in actions:
            raise ValueError(f"{what} must be one of {', '.join(actions)}, got {value!r}")
        actions[value].setChecked(True)
        self.settings.setValue(key, value)
        return value

    # ---- opening things -----------------------------------------------------------------------
    def launch(self, what: Launch) -> bool:
        """Open what the command line asked for."""
        if what.kind == "tape":
            return self.open_tape(what.path, what.replay)
        if what.kind == "script":
            return self.run_script(what.path, what.argv, run=what.run, record=what.record)
        return self.open_demo(record=what.record)

    def open_demo(self, record: str | None = None, **options) -> bool:
        """Start the built-in demo, paused before its first op."""
        self._start(LiveSession(Target.demo(**options), record=record, python_pause=self.break_in_python))
        self.output.note("The demo trains a small MLP on two spirals. F11 steps op by op; F5 trains live.")
        return True

    def run_script(self, path: str, argv: tuple[str, ...] = (), run: bool = False,
                   record: str | None = None, capture: str = "summary") -> bool:
        """Debug a script: paused on entry, or (`run`) running until engine.debug.breakpoint(); `record`:
        a tape to record it to from its first event, at the `capture` tier (which the live view shows too)."""
        if not os.path.isfile(path):
            self.show_message(f"No such script: {path}", "error")
            self.output.note(f"No such script: {path}")
            return False
        self._start(LiveSession(Target.script(path, tuple(argv)), pause_on_entry=not run, capture=capture,
                                record=record, python_pause=self.break_in_python))
        self._add_recent(os.path.abspath(path))
        if self.session.recording:
            cap = self.session.recording_cap
            self.output.note(f"\u25cf Recording to {record} (capture: {capture}; "
                             + (f"stops at {human_size(cap)})" if cap is not None else "no size cap)"))
        return True

    def reopen_script(self, path: str) -> bool:
        """Debug a script (File > Open Recent, a drop) with the arguments last used with it in Debug Script…;
        arguments remembered that no longer parse open that dialog on them instead."""
        path = os.path.abspath(path)
        name = os.path.basename(path)
        arguments = remembered_arguments(self.settings).get(path, "")
        argv, error = parse_arguments(arguments)
        if error and os.path.isfile(path):
            self.output.note(f"{name} was not run: the arguments last used with it ({arguments}) no longer "
                             "parse; fix them in Debug Script\u2026")
            self._ask_script(path)
            return False
        if not self.run_script(path, argv):
            return False
        if argv:
            self.output.note(f"Running {name} {arguments} (the arguments last used; File > Debug Script\u2026 "
                             "changes them)")
        return True

    def open_example(self, example: Example) -> bool:
        """Debug one of the example scripts (File > Open Example), as Open Recent would."""
        if not self.reopen_script(str(example.path)):
            return False
        self.output.note(example.hint or f"{example.path.name}: {example.summary}")
        return True

    def show_shortcuts(self) -> ShortcutsDialog:
        """Help > Keyboard Shortcuts: every action with a shortcut, as the menus hold them now."""
        return self._open_dialog(ShortcutsDialog(self.menuBar(), self))

    def show_about(self) -> AboutDialog:
        """Help > About Tapescope: the versions, with a Copy button for a bug report."""
        return self._open_dialog(AboutDialog(self))

    def _open_document(self, path) -> None:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.show_message(f"No application here opens {path}; open it in a text editor.", "error")

    def _open_dialog(self, dialog):
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # window-modal, without a nested event loop
        return dialog

    def run_function(self, fn, title: str, source: str = "") -> bool:
        """Debug `fn()` (no arguments) on the engine thread, paused on entry; `source`: a file to show."""
        self._start(LiveSession(Target.of_function(fn, title, source), python_pause=self.break_in_python))
        return True

    def open_tape(self, path: str, session: ReplaySession | None = None) -> bool:
        """Replay a .tape file in this window (`session`: that tape, opened already)."""
        from engine.tape.errors import TapeError

        try:
            session = session or ReplaySession(path)
        except (TapeError, OSError) as err:
            text = str(err)  # a TapeError names the file already ("PATH: damaged tape (...)"); an OSError may not
            self.show_message(f"Cannot open {text if text.startswith(f'{path}: ') else f'{path}: {text}'}", "error")
            return False
        self._start(session)
        self._add_recent(os.path.abspath(path))
        counts = session.counts
        # the tape's recorded output follows the note, as far as the replay's cursor
        if not session.no_events:
            note = (f"Replaying {path}: {counts['events']:,} events, {counts['iterations']:,} iterations (capture: "
                    f"{session.tape.capture or 'unknown'}). Drag the timeline to move through it, or step both ways "
                    f"(F11, Ctrl+Shift+F11); Restart goes back to the start.")
        else:  # a tape cut short may have lost its output's pages too: promise only what there is
            note = f"Replaying {path}: none of its events can be read (a damaged tape)" + (
                "; below is the output it recorded." if session.has_output else ", nor can the output it recorded.")
        self.output.begin_section(note)
        self.alerts_panel.add_alerts(session.recorded_alerts)
        raised, failure = session.raised_at, session.failure
        explained = any(a.kind in EXPLAINED_FAILURES for a in session.recorded_alerts)
        if failure is not None:  # the op that raised the error that ended the recorded run, as a live run lists it
            self.alerts_panel.add_row(failure.iteration, "error", raised_where(failure.event), failure.message,
                                      failure.event.key)
        elif raised is not None and not explained:  # the line that raised it
            where = f"{os.path.basename(raised.file)}:{raised.line}"
            status = recording_status(session.tape.meta.get("status", ""))
            self.alerts_panel.add_row(max(0, counts["iterations"] - 1), "error", where,
                                      f"{status} at {raised.file}:{raised.line} ({raised.text})", file=raised.file)
        return True

    def _start(self, session) -> None:
        self._close_session()
        self.output.end_section()  # a replay's output before this session stays as it is
        self.output.follow_end()  # the new session's output, not where the last one was scrolled to
        self.output.set_whole_traceback(getattr(session, "whole_traceback", ""))  # a replay's, cut to the script's
        self.session = session
        session.stop_on_alerts = self.stop_on_alerts
        session.mutes = self.alerts_panel.mutes  # muted for the app's session: a restart or another script too
        self._restart_pending = False
        self._select_at_stop = None
        self._sources = {}
        self.message_bar.dismiss()
        self.alerts_panel.clear()
        self.node_info.show_nothing()
        # a replay's whole run; nothing yet for a live one
        self.loss_plot.set_curves(session.loss_curves(), session.eval_loss_curves())
        self.loss_plot.set_cursor(None)
        self.graph.set_model(session.model)
        self.panels.start(session)
        if isinstance(session, LiveSession):
            self.setWindowTitle(f"{session.target.title} \u2014 Tapescope")
            self.output.note(f"\u25b6 {session.target.title}" + (f" {' '.join(session.target.argv)}"
                                                                  if session.target.argv else ""))
            self._show_target_source(session)
        else:
            self.setWindowTitle(f"{os.path.basename(session.path)} (replay) \u2014 Tapescope")
            self.source_view.clear()  # not the file of the session before
        session.start()  # a run recorded from its start (Debug Script…, run --record) begins recording here
        self.actions["record"].blockSignals(True)
        self.actions["record"].setChecked(bool(getattr(session, "recording", None)))
        self.actions["record"].blockSignals(False)
        self.pump.set_session(session)
        self._update_status()
        self._update_actions()

    def _close_session(self) -> None:
        session, self.session = self.session, None
        self.pump.set_session(None)
        self.graph.set_model(None)
        self.panels.close_session()
        if session is not None:
            path = getattr(session, "recording", None)
            session.close()
            if path:
                self._recorded(path, session.last_cap_reached)

    # ---- commands ---------------------------------------------------------------------------------
    def command(self, action: str) -> None:
        """A debugger command: step_into, step_over, step_out, run_to_phase, run_to_next_iteration,
        resume or pause (in a replay they move the cursor)."""
        if self.session is None:
            return
        if action == "step_out" and self.session.status == PAUSED and self._step_out_to() is None:
            it = self.session.iteration
            self.status_panel.set_note(f"Nothing to step out of: the optimizer step ends iteration {it}. "
                                       f"F10 steps on into iteration {it + 1}, F5 continues.", 8)
            return
        if action in FREE_RUNS:
            self.graph.run_freely()  # a step keeps following the current node; a free run does not
        if isinstance(self.session, LiveSession) and action != "pause":
            self.timeline.set_follow(True)  # back from the history stepped back into: the run goes on from its head
        self.session.command(action)
        self.pump.pump()  # show "running" at once, and whatever is already queued

    def _step_out_to(self) -> str | None:
        """Where Step Out goes from the record paused at, in words; None where nothing is left to step out of."""
        stop = self.session.current_stop
        rec = stop.record if stop is not None and stop.record is not None else self.session.last
        depth, phase = (rec.depth, rec.phase) if rec is not None else (0, self.session.phase)
        if nothing_to_step_out(depth, phase):
            return None
        if depth:
            return "until the current module call returns"
        return "to the end of this iteration (its optimizer step): nothing else encloses top-level code"

    def step_back(self, over: bool = False) -> None:
        """Step Back (`over`: Step Back Over): the timeline's cursor to the event before it. A replay goes back
        there; a live run stays where it is paused, and the panels show what it recorded there."""
        if self.session is not None and self.session.status != RUNNING:
            self.timeline.step_back(over)

    def stop(self) -> None:
        """Stop the live run (in a replay: stop playing)."""
        if isinstance(self.session, LiveSession):
            self.session.stop()
            self.status_panel.set_state("Stopping\u2026", "stopped")
        elif self.session is not None:
            self.session.command("pause")

    def restart(self) -> None:
        """Run the same script again from the start (a replay goes back to its start)."""
        session = self.session
        if isinstance(session, ReplaySession):
            session.rewind()
            self.pump.pump()
            return
        if session is None:
            return
        if session.ended is not None:
            self._restart_now()
        else:
            self._restart_pending = True  # once the run has unwound (see _on_change)
            session.stop()

    def _restart_now(self) -> None:
        old = self.session
        self._restart_pending = False
        self.output.note("\u21bb Restart")
        self._start(LiveSession(old.target, pause_on_entry=old.pause_on_entry, capture=old.capture,
                                python_pause=self.break_in_python))

    @property
    def break_in_python(self) -> bool:
        """Whether live runs start traced so that Pause lands in plain Python code too (Debug menu)."""
        return self.actions["break_in_python"].isChecked()

    def _break_in_python_toggled(self, on: bool) -> None:
        session = self.session
        if not isinstance(session, LiveSession) or session.ended is not None or session.python_pause == on:
            return
        if on and session.waiting_at is not None:  # asked for because a pause cannot land: no need to ask twice
            self.output.note("Break in Python Code is on: the run restarts, and Pause stops on any line.")
            self.restart()
            return
        run = session.run
        if run is not None and run.switch_python_pause(on):
            session.python_pause = on
            self.output.note(f"Break in Python Code is {'on' if on else 'off'} from this run's next op"
                             + (": Pause then stops on any line." if on else "."))
        else:
            self.output.note(f"Break in Python Code is {'on' if on else 'off'} from the next run.")

    def _record_toggled(self, on: bool) -> None:
        session = self.session
        if not isinstance(session, LiveSession) or session.ended is not None:
            return
        if on:
            os.makedirs(self.recordings_dir, exist_ok=True)
            name = os.path.splitext(os.path.basename(session.target.path))[0] or "session"
            path = os.path.join(self.recordings_dir, f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.tape")
            session.start_recording(path, self.record_capture)
            cap = session.recording_cap
            self.output.note(f"\u25cf Recording to {path} ("
                             + (f"stops at {human_size(cap)})" if cap is not None else "no size cap)")
                             + f". Capture: {session.capture}, {CAPTURE_NOTES[session.capture]} (the arrow beside "
                             f"Record chooses)")
            self._update_actions()
        else:
            path = session.stop_recording()
            if path:
                self._recorded(path, session.last_cap_reached)
        self._update_status()

    def _recorded(self, path: str, cap_reached: str = "") -> None:
        self._add_recent(path)
        self.output.note(f"Recording saved: {path} (File > Open Recent replays it; File > Export Tape\u2026 "
                         f"writes it as a Perfetto trace, DOT or JSON)")
        if cap_reached:  # the writer stopped early: say so where it is seen
            self.show_message(f"Recording stopped early: {cap_reached}. The tape holds the run up to there.",
                              "warning")
        self.actions["record"].blockSignals(True)
        self.actions["record"].setChecked(False)
        self.actions["record"].blockSignals(False)
        self._update_actions()

    def reset_panels(self) -> None:
        """Put every panel back where it started."""
        with self._arranging_docks():
            self.restoreState(self._default_state, STATE_VERSION)
        self._compact_row, self._may_tab, self._bottom_by_person = False, True, False
        self._editor_fitted = 0
        self.span_left(False)
        for dock in self.docks.values():
            dock.show()
        self._initial_dock_sizes()

    def find(self, text: str, backward: bool = False) -> str | None:
        """Select and centre the next node matching `text` (`backward`: the previous); the count says which."""
        key = self.canvas.search(text, backward)
        if key is not None and self.canvas.selected_key == key:  # drawn: its module's row too (a hidden one opens)
            self.graph.show_in_tree(key)
        if key is None and text:
            self.status_panel.set_note(f"No node matches '{text}'", 3)
        which, of = self.canvas.search_place
        self.search_count.setText(f"{which} of {of}" if key is not None else "no match" if text else "")
        self._explain_matches(text)
        return key

    def _count_matches(self, text: str) -> None:
        count = len(self.canvas.search_keys(text))
        self.search_count.setText("" if not text else f"{count} match{'es' if count != 1 else ''}" if count
                                  else "no match")
        self._explain_matches(text)

    def _explain_matches(self, text: str) -> None:
        """The count's tooltip: which hits are named like the text and which only sit in a module or key holding it
        ("linear" with two Linear layers: 2 ops, then their 5 weights, biases and inputs), visited in that order."""
        named, placed = (len(hits) for hits in self.canvas.search_groups(text))
        hidden = len(self.canvas.hidden_hits(text))
        count = named + placed
        self.search_count.setToolTip("" if not count + hidden else
                                     f"{named} node{'s' if named != 1 else ''} named like '{text}', visited first"
                                     + (f"; then {count - named} whose module or key holds it (weights, inputs of "
                                        "those ops)" if count > named else "")
                                     + (f"; then {hidden} inside collapsed modules, opened as they are visited"
                                        if hidden else ""))

    def show_message(self, text: str, level: str = "info") -> None:
        """Show a message above the graph (no modal dialog)."""
        self._message_wrap.show()
        self.message_bar.show_message(text, level)

    # ---- the pump's changes -------------------------------------------------------------------------
    def _on_change(self, change) -> None:
        session = self.session
        if session is None:
            return
        if change.output_reset:  # a replay moved back: its output as far as its cursor follows
            self.output.cut_section()
        self.output.append_chunks([(chunk.stream, chunk.text) for chunk in change.output])
        if change.alerts and isinstance(session, LiveSession):
            self.alerts_panel.add_alerts(change.alerts)
        graph = change.graph
        if change.reset:
            self.graph.set_model(session.model, keep_view=True)
            if isinstance(session, ReplaySession):  # the step shown may lie after the cursor now; the
                self.gradient_flow.set_step(None)  # replay re-applies the steps before it
        elif graph is not None and graph.structure:
            self._dirty.add("structure")
        elif graph is not None and graph.values:
            self._dirty.add("colours")
        if change.records or change.reset:
            self._dirty.add("current")
        if change.losses or change.reset:
            self._dirty.add("losses")
        if isinstance(session, ReplaySession) or change.applied:
            self._dirty.add("timeline")  # a live run's records reach the timeline at the visuals' pace
        if change.ended is not None:
            self._ended(change.ended)
        if change.running_at is not None:
            self._waiting_at(session, change.running_at)
        self.panels.on_change(change)
        settled = change.status or change.stop is not None or change.ended is not None
        self._front_of_compact_row(bool(change.output), settled)
        # while the engine runs freely, repaint the graph and plots ~8 times a second, not every frame:
        # painting holds the GIL, which the engine thread needs
        if settled or session.status != RUNNING or time.monotonic() - self._last_visual >= VISUAL_INTERVAL:
            self._flush_visuals()
        elif not self._visual_timer.isActive():
            self._visual_timer.start(int(VISUAL_INTERVAL * 1000))
        if settled:
            self._stopped_or_resumed()
        self._update_status()

    def _front_of_compact_row(self, printed: bool, settled: bool) -> None:
        """Where the window tabbed source and output (a narrow row), the tab in front follows the run, once per
        turn so that a tab the person picks stays: the output when a run going freely prints (it stays as the run
        ends), the source when it stops somewhere (at 1600x900 at a scale factor of 1.5 the output was a tab
        nobody looked behind)."""
        source, output = self.docks["source"], self.docks["output"]
        if not self._compact_row or output not in self.tabifiedDockWidgets(source):
            return
        status = self.session.status
        if printed and status == RUNNING and not self._output_fronted:
            self._output_fronted = True
            output.raise_()
        elif settled and status != RUNNING:
            if status != FINISHED:
                source.raise_()
            self._output_fronted = False

    def _flush_visuals(self) -> None:
        session = self.session
        self._visual_timer.stop()
        self._last_visual = time.monotonic()
        dirty, self._dirty = self._dirty, set()
        if session is None:
            return
        if "structure" in dirty:
            now = time.monotonic()
            if session.status == RUNNING and now < self._structure_due:
                self._dirty.add("structure")  # later: the engine thread needs the GIL more
                self._visual_timer.start(max(1, int((self._structure_due - now) * 1000)))
            else:
                start = time.perf_counter()
                self.graph.refresh()
                self._structure_due = now + STRUCTURE_WAIT * (time.perf_counter() - start)
        if "colours" in dirty:
            self.graph.colours()
        if "current" in dirty:
            self.graph.set_current()
            if session.status == RUNNING and time.monotonic() - self._last_inspect >= INSPECT_INTERVAL:
                self._last_inspect = time.monotonic()
                self.panels.refresh_running()  # the inspector as the run goes, not the last stop's as if current
        if "losses" in dirty:
            self.loss_plot.set_curves(session.loss_curves(), session.eval_loss_curves())
        if "timeline" in dirty:
            if isinstance(session, ReplaySession):
                self._update_timeline(session)
            else:
                self.panels.show_records()

    def _stopped_or_resumed(self) -> None:
        session = self.session
        self._update_actions()
        stop = _stop_kind(session)
        # an alert of an optimizer step is about no op: the node that ran last is marked as where the run is, not
        # as the alert's
        alert = session.stop_alert if stop == "alert" else None
        marked = "" if alert is not None and not alert.op else stop
        self.canvas.set_stop(marked, session.status_text() if marked else "")
        if getattr(session, "waiting_at", None) is None and self.message_bar.text().startswith(_PAUSE_WAITS):
            self.message_bar.dismiss()  # the pause landed, or the run ended
        if self._select_at_stop is not None and session.status != RUNNING:
            key, self._select_at_stop = self._select_at_stop, None
            self.canvas.select(key)
            self.canvas.center_on(key)
        if session.status == FINISHED and isinstance(session, ReplaySession):
            # at the end of a tape (also after seeking there): the selected node as it is now, and the last op
            # in view, readably (a deep model's whole graph fitted was a strip of specks)
            self.graph.set_current(follow=True)
            self._show_node(self.graph.selected or session.model.current)
            self._show_stop_source(None)
            if session.damaged:
                self.show_message(session.damage_text(), "error")
            return
        if session.status != PAUSED:
            if self.message_bar.isVisible() and self.message_bar.text().startswith((_NAN_STOP, _ALERT_STOP)):
                self.message_bar.dismiss()  # ran on, or ended: the stop it was about is gone
            return
        stop = session.current_stop
        alert = session.stop_alert
        if stop is not None and stop.record is not None:
            self.graph.set_current(follow=True)
            ev = stop.record.event
            if stop.record.__class__ is EventRecord and getattr(ev, "enter", False):
                # at the start of a module call no op of it ran yet: mark its box, not the op before it, and
                # let go of a node selected at an earlier stop (the inspector showed fc2's linear at 'out')
                self.canvas.set_current_group(session.model.latest_call(ev.path), follow=True)
                self.canvas.select(None)
        if alert is not None and not alert.op:
            # an optimizer step's alert names a parameter (or a layer, for its weight): select its node, not
            # the op selected before, and show it or nothing: not the op that ran last (an optimizer has no node)
            key = self.graph.param_node(alert.key)
            self.canvas.set_current(None)  # (the backward's last node: no part of the alert)
            self.canvas.select(key)
            if key is not None:
                self.canvas.center_on(key, readable=False)
            self._show_node(key)
        else:
            self._show_node(self.graph.selected or session.model.current)
        if alert is not None and alert.file:  # the line to change (a zero_grad(), an init call), not the stop's
            self._show_frame(SourceFrame(alert.file, alert.line, "", alert.code))
        else:
            self._show_stop_source(stop)
        if alert is not None:
            text = short_message(alert.message, alert.file)
            self.show_message(f"{_NAN_STOP}{text}" if alert.kind.startswith("nonfinite") else
                              f"{_ALERT_STOP}{alert_name(alert)}: {text.rstrip('.')}. F5 runs on; Debug > Stop on "
                              f"Alerts chooses which alerts stop a run.", "warning")
            self.alerts_panel.show_alert(alert)  # its row current, in view, its text below: not the first alert's
        elif self.message_bar.isVisible() and self.message_bar.text().startswith((_NAN_STOP, _ALERT_STOP)):
            self.message_bar.dismiss()  # stepped on from the place it was about

    def _ended(self, ended) -> None:
        session = self.session
        error = ended.error
        if error is not None and not ended.ran:
            self.output.note(f"\u2716 {session.target.title} does not compile, so none of it ran: "
                             f"{failure_text(error)}. Fix it and press Restart (Ctrl+Shift+F5).")
            self.show_message(f"{session.target.title} does not compile: {failure_text(error)}. Fix it and press "
                              f"Restart (Ctrl+Shift+F5).", "error")
        elif error is not None:
            self.output.note(f"\u2716 The script failed: {failure_text(error)}. The app is fine: "
                             f"fix the script and press Restart (Ctrl+Shift+F5).")
            self.show_message(f"The script failed: {failure_text(error)}", "error")
        if error is not None:
            if error.op is not None:
                self.alerts_panel.add_row(session.iteration, "error", raised_where(error.op), error.message,
                                          session.model.current)
                self.graph.refresh()
                self._show_node(session.model.current)
            if error.file:
                self._show_frame(SourceFrame(error.file, error.line, "", ""))
        if error is None or error.op is None:
            # the inspector shows what the graph marks as run last, not the node of the last stop
            self._show_node(self.graph.selected or session.model.current)
        if ended.outcome == "stopped":
            self.output.note("\u25a0 Stopped.")
        elif error is None:
            self.output.note("\u2714 Finished.")
        if self.actions["record"].isChecked():
            path = getattr(session, "last_recording", None)
            if path:
                self._recorded(path, session.last_cap_reached)
            else:
                self._uncheck_record()
        if self._restart_pending:
            QTimer.singleShot(0, self._restart_now)

    def _waiting_at(self, session: LiveSession, at) -> None:
        """A pause that cannot land (the code runs no op): show the line it runs, and what to do."""
        self._show_frame(at)
        if not self.message_bar.text().startswith(_PAUSE_WAITS):
            self.show_message(f"{_PAUSE_WAITS}{session.target.title} is running plain Python that calls no engine "
                              f"op (the Source panel marks the line), and a pause lands only at an op. Stop "
                              f"(Shift+F5) ends the run; Debug > Break in Python Code restarts it so that Pause "
                              f"stops on any line.", "warning")

    def _uncheck_record(self) -> None:
        self.actions["record"].blockSignals(True)
        self.actions["record"].setChecked(False)
        self.actions["record"].blockSignals(False)

    # ---- inspector, source, alerts ------------------------------------------------------------------
    def _on_selection(self, key: str) -> None:
        self._show_node(key or (self.session.model.current if self.session else None))
        info = self.session.node_info(key) if self.session is not None and key else None
        if info is not None and info.source is not None:
            self._show_frame(info.source)

    def _show_node(self, key: str | None) -> None:
        info = self.session.node_info(key) if self.session is not None and key else None
        if info is None:
            self.node_info.show_nothing()
        else:
            self.node_info.show_node(info)
        self.panels.show_node(info)

    def _alert_activated(self, key: str, seq: int) -> None:
        self.panels.alert_activated(key, seq)
        session = self.session
        if key and isinstance(session, ReplaySession) and session.status == RUNNING and self.graph.selected != key:
            self._select_at_stop = key  # a seek back rebuilds the graph: the node is not there to select yet

    def _show_stop_source(self, stop) -> None:
        if stop is None:
            session = self.session
            if isinstance(session, ReplaySession):  # at the end of its tape, or back at its start (Restart)
                frame = session.frames.get(session.model.current) if session.cursor else None
                if session.status == FINISHED and session.raised_at is not None:
                    frame = session.raised_at  # a run that raised ends where it raised
                if frame is None:
                    self.source_view.clear()
                else:
                    self._show_frame(frame)
            return
        rec = stop.record
        frame = stop.source
        if frame is None and rec is not None:
            frame = source_of(rec)
        if isinstance(self.session, LiveSession) and self.session.at_entry(stop):
            self._show_target_source(self.session)  # paused on entry: show the script itself
            return
        if frame is None:  # a module boundary or a step: where the last op ran
            frame = self.session.frames.get(self.session.model.current)
        if frame is not None:
            self._show_frame(frame)
        elif isinstance(self.session, ReplaySession):  # before any op of the tape: no line of it ran yet
            self.source_view.clear()

    def _show_frame(self, frame) -> None:
        if frame.file not in self._sources:
            self._sources[frame.file] = self.session.source_text(frame.file)
        self.source_view.show_source(frame.file, self._sources[frame.file], frame.line)

    def _show_target_source(self, session: LiveSession) -> None:
        path = session.target.path
        if not path:
            self.source_view.show_message(f"{session.target.title}: no source file")
            return
        if path not in self._sources:
            self._sources[path] = session.source_text(path)
        self.source_view.show_source(path, self._sources[path], 0)

    def _update_timeline(self, session: ReplaySession) -> None:
        # back at the start (Restart), paused before the first event: the cursor there, not nowhere. While a seek plays,
        # where it goes: a key pressed meanwhile (PageDown twice) moves on from there, not from the event passing by
        target = session.seeking_to
        self.timeline.set_cursor(target if target is not None else
                                 session.cursor if session.cursor or session.status != RUNNING else None)
        at = session.iteration if session.cursor else None
        self.loss_plot.set_cursor(at)
        self.training_plots.set_cursor(at)

    # ---- status and actions --------------------------------------------------------------------------
    def _update_status(self) -> None:
        session = self.session
        if session is None:
            self.status_panel.set_state("Ready", "stopped")
            return
        kind = session.status
        if isinstance(session, ReplaySession) and kind == RUNNING:
            kind = "replay"
        kind = _stop_kind(session) or kind  # a breakpoint's red, an alert's amber: as the timeline and graph mark them
        text = session.status_text()
        if getattr(session, "recording", None):
            text += "  \u25cf recording"
        self.status_panel.set_state(text, kind)
        rate = session.events_per_second if session.status == RUNNING else None
        self.status_panel.set_counters(session.iteration, session.phase, rate)
        self.graph.show_hint(self._hint_text(session))

    def _hint_text(self, session) -> str:
        if isinstance(session, ReplaySession) and session.no_events:
            return ("<b>No event of this tape can be read: it is damaged.</b><br>What survived is shown: the "
                    "banner lists it.")
        if session.status == PAUSED:
            if isinstance(session, ReplaySession):
                return "<b>At the start of the tape.</b><br>F11 step into \u00b7 F5 play"
            return ENTRY_HINT
        if session.status == RUNNING:
            return "Reading the tape\u2026" if isinstance(session, ReplaySession) else \
                "Running: the graph appears with the first op\u2026"
        ended = session.ended
        if ended is not None and not ended.ran and ended.error is not None:
            error = ended.error
            return (f"<b>{html.escape(session.target.title)} does not compile.</b><br>"
                    f"{html.escape(error.message)}" + (f" (line {error.line})" if error.line else "")
                    + "<br>Fix it and press Restart (Ctrl+Shift+F5).")
        return ""

    def _update_actions(self) -> None:
        session = self.session
        a = self.actions
        live = isinstance(session, LiveSession)
        alive = session is not None and session.alive
        paused = session is not None and session.status == PAUSED
        can_step = session is not None and session.can_step
        a["resume"].setEnabled(alive and (paused or (not live and session.status != RUNNING and can_step)))
        a["pause"].setEnabled(alive and session.status == RUNNING)
        for name in ("step_into", "step_over", "step_out", "run_to_phase", "run_to_next_iteration"):
            a[name].setEnabled(bool(can_step))
        # history to go back to: a replay's, or what a paused (or ended) live run recorded
        back = session is not None and session.status != RUNNING and self.timeline.can_step_back()
        a["step_back"].setEnabled(back)
        a["step_back_over"].setEnabled(back)
        # a replay's Stop stops its playing: at a stop or at the end of the tape there is nothing to stop
        a["stop"].setEnabled(alive and (session.ended is None if live else session.status == RUNNING))
        a["restart"].setEnabled(session is not None)
        a["record"].setEnabled(live and alive)
        a["toggle_breakpoint"].setEnabled(live and alive)  # a replay, or a run that ended, never stops again
        a["export"].setEnabled(self.exporter.can_export())  # a replay's tape, or a live session's recording
        # the name stays what the menu and Help > Keyboard Shortcuts call it; where it runs to now is its tip
        phase = session.phase if session is not None else "forward"
        to = {"forward": "the backward pass", "backward": "the optimizer step"}.get(phase, "the next forward pass")
        a["run_to_phase"].setStatusTip(f"Run to the next phase: now to {to}")
        a["run_to_phase"].setToolTip(f"Run to Next Phase ({a['run_to_phase'].shortcut().toString()})\nNow: to {to}")
        # the timeline's cursor moves where there is history to move through and nothing runs it along
        held = session is not None and session.status != RUNNING and self.timeline.view.count > 0
        for name in ("go_to_first", "go_to_last", "go_to"):
            a[name].setEnabled(held)
        out = self._step_out_to() if paused else None
        tip = (f"Run {out}" if out else "Nothing to step out of: the optimizer step ends the iteration") if paused \
            else DEBUG_TIPS["step_out"]
        a["step_out"].setStatusTip(tip)
        a["step_out"].setToolTip(f"Step Out (Shift+F11)\n{tip}")

    # ---- recent files, drag and drop, dialogs -------------------------------------------------------------
    def recent_files(self) -> list[str]:
        """Recently opened tapes and scripts, newest first."""
        value = self.settings.value("recent", [])
        paths = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        return [p for p in paths if isinstance(p, str) and p]

    def _add_recent(self, path: str) -> None:
        recent = [path, *(p for p in self.recent_files() if p != path)][:MAX_RECENT]
        self.settings.setValue("recent", recent)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            act = self.recent_menu.addAction(os.path.basename(path))
            act.setToolTip(path)
            act.setStatusTip(path)
            act.triggered.connect(lambda _=False, p=path: self.after_asking("open", lambda: self.open_path(p)))
        if not self.recent_menu.actions():
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def open_path(self, path: str) -> bool:
        """Open a .tape as a replay, or debug a .py script."""
        return self.reopen_script(path) if path.endswith(".py") else self.open_tape(path)

    def _ask_tape(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open Tape", self.recordings_dir,
                                              "Tapes (*.tape);;All files (*)")
        if path:
            self.after_asking("open", lambda: self.open_tape(path))

    def _ask_script(self, path: str = "") -> ScriptDialog:
        """Open the Debug Script dialog (script, arguments, recording, pause on entry) on `path`, else on the
        script last debugged."""
        session = self.session
        live = isinstance(session, LiveSession) and session.target.kind == "script"
        if not path:
            path = session.target.path if live else next((p for p in self.recent_files() if p.endswith(".py")), "")
        dialog = ScriptDialog(path, remembered_arguments(self.settings), os.getcwd(), self,
                              recordings=remembered_recordings(self.settings))
        dialog.accepted.connect(lambda: self._debug_chosen(dialog))
        return self._open_dialog(dialog)

    def _debug_chosen(self, dialog: ScriptDialog) -> None:
        path, record = dialog.script_path(), dialog.record_path()
        capture = dialog.capture() if record else "summary"
        remember_script(self.settings, path, dialog.arguments_text(), record, capture)
        self.after_asking("open", lambda: self.run_script(path, dialog.argv(), run=not dialog.pause_on_entry(),
                                                          record=record or None, capture=capture))

    def dragEnterEvent(self, event) -> None:
        if any(u.toLocalFile().endswith((".tape", ".py")) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            path = url.toLocalFile()
            if path.endswith((".tape", ".py")):
                self.after_asking("open", lambda p=path: self.open_path(p))
                event.acceptProposedAction()
                return

    # ---- settings and closing -------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        # a settings file edited by hand or written by another program may hold anything: what is not
        # a saved geometry or state is left out, and the window starts with its defaults
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, (QByteArray, bytes)):
            self.restoreGeometry(geometry)
            # Qt makes room for a title bar above a window that touched the screen's top, whether or not the
            # window manager draws one: each start put it 25 pixels lower and 27 shorter. Where it was lies on a
            # screen still: there, as it was
            self._place = saved_place(bytes(geometry))
            if self._place is not None:
                self.setGeometry(self._place)
        if isinstance(state, (QByteArray, bytes)):
            with self._arranging_docks():
                self._restored = self.restoreState(state, STATE_VERSION)
        if self._restored:  # who arranged the bottom row: a row the window tabbed, it splits again with room
            self._compact_row = _flag(self.settings.value("window/compact_row"))
            self._may_tab = _flag(self.settings.value("window/may_tab", True))
            self._bottom_by_person = _flag(self.settings.value("window/bottom_by_person"))

    def quit(self) -> None:
        """File > Quit (Ctrl+Q): close the window, once the person said a session no tape holds may go."""
        self.after_asking("quit", self.close)

    def after_asking(self, verb: str, go_on) -> None:
        """Call `go_on()` where closing the session loses nothing a tape does not hold; else ask first ("quit" or
        "open": what the person asked for) and call it only if they let the session go. Asked once at a time."""
        lost = what_is_lost(self.session)
        if lost is None:
            go_on()
            return
        if self._question is not None:  # asked already: the same question, not a second
            self._question.raise_()
            return
        question = self._question = DropQuestion(lost, verb, self)
        question.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(_result: int) -> None:
            self._question = None
            if question.saving() and not save_as_tape(self):
                return  # not saved (cancelled, or it failed and says why): the session stays
            if question.saving() or question.dropped():
                self._dropping = True  # the close that follows is not asked about again
                try:
                    go_on()
                finally:
                    self._dropping = False

        question.finished.connect(answered)
        question.open()

    def closeEvent(self, event) -> None:
        # the window's close button (or Alt+F4) asks as Quit does; a close from code (Quit once asked) does not
        if event.spontaneous() and not self._dropping and what_is_lost(self.session) is not None:
            event.ignore()
            self.quit()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))
        self.settings.setValue("window/compact_row", self._compact_row)
        self.settings.setValue("window/may_tab", self._may_tab)
        self.settings.setValue("window/bottom_by_person", self._bottom_by_person)
        self.settings.sync()
        self._close_session()
        self.panels.shutdown()
        self.exporter.shutdown()
        super().closeEvent(event)


def _stop_kind(session) -> str:
    """What stopped a paused run, as the graph and the status bar mark it: "breakpoint", "alert", or '' (a step,
    a pause, the stop on entry; or not paused)."""
    stop = session.current_stop if session is not None and session.status == PAUSED else None
    if stop is None:
        return ""
    if session.stop_alert is not None:
        return "alert"
    return "breakpoint" if stop.reason in ("breakpoint", "explicit") and not session.at_entry(stop) else ""


def _scrolling(widget: QWidget) -> QScrollArea:
    """`widget` in a scroll area, so a dock holding it may be narrower than the widget's minimum."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setMinimumWidth(120)
    return area


def first_size(width: int, height: int) -> tuple[int, int]:
    """A first start's size on a screen with `width` x `height` pixels free: all of a screen up to 1920x1200, a
    debugger's panels want the room; FIRST_SHARE of each side of a larger one."""
    return (width if width <= 1920 else int(width * FIRST_SHARE),
            height if height <= 1200 else int(height * FIRST_SHARE))


def saved_place(blob: bytes) -> QRect | None:
    """The window's own rectangle (its inside, as geometry() had it) in a QWidget.saveGeometry() of format 3, where
    the window was neither maximized nor full screen and the rectangle lies on a screen now; else None."""
    if len(blob) < 66 or struct.unpack(">IH", blob[:6]) != (0x1D9D0CB, 3):
        return None
    maximized, full_screen = blob[44], blob[45]
    left, top, right, bottom = struct.unpack(">4i", blob[50:66])
    rect = QRect(QPoint(left, top), QPoint(right, bottom))
    if maximized or full_screen or not rect.isValid():
        return None
    screen = QGuiApplication.screenAt(rect.center())
    return rect if screen is not None and screen.availableGeometry().contains(rect) else None


def _flag(value) -> bool:
    """A yes/no read back from QSettings (an INI file gives "true"/"false"); anything else reads as no."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _text_width(view: QAbstractScrollArea, columns: int) -> int:
    """The width a text view needs to show `columns` characters of its font beside its vertical scroll bar."""
    bar = view.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, view)
    return view.fontMetrics().horizontalAdvance("x" * columns) + bar + 2 * view.frameWidth() + 10  # text margins


def _tabs_width(window: QMainWindow, dock: QDockWidget) -> int:
    """The width the tabs of `dock`'s group need to show every title whole (0 when it is not tabbed)."""
    group = [dock, *window.tabifiedDockWidgets(dock)]
    if len(group) < 2:
        return 0
    bar = QTabBar()  # measured, never shown: the window's dock tabs are tab bars in the same style
    for member in group:
        bar.addTab(member.windowTitle())
    return bar.sizeHint().width() + 2  # and the dock's frame


def _default_recordings_dir() -> str:
    """Tapescope/recordings in the user's data folder: the app's own data location would name it twice
    (organisation and application are both Tapescope), and the settings keep that organisation."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return os.path.join(base or os.path.expanduser("~"), "Tapescope", "recordings")


# ---- the application --------------------------------------------------------------------------------
def apply_palette(app: QApplication, dark: bool | None = None) -> None:
    """Fusion with a light or dark palette (None: follow the system's colour scheme)."""
    app.setStyle("Fusion")
    if dark is None:
        dark = app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    app.setPalette(_dark_palette() if dark else app.style().standardPalette())


def _dark_palette() -> QPalette:
    p = QPalette()
    roles = QPalette.ColorRole
    for role, colour in ((roles.Window, "#2b2d31"), (roles.WindowText, "#e9ecef"), (roles.Base, "#1e1f22"),
                         (roles.AlternateBase, "#26282c"), (roles.ToolTipBase, "#1e1f22"),
                         (roles.ToolTipText, "#e9ecef"), (roles.Text, "#e9ecef"), (roles.Button, "#33363b"),
                         (roles.ButtonText, "#e9ecef"), (roles.BrightText, "#ff6b6b"),
                         (roles.Link, "#74c0fc"),
                         (roles.Highlight, "#1c7ed6"), (roles.HighlightedText, "#ffffff"),
                         (roles.PlaceholderText, "#868e96"), (roles.Mid, "#3b3e44"), (roles.Dark, "#18191c")):
        p.setColor(role, QColor(colour))
    p.setColor(QPalette.ColorGroup.Disabled, roles.Text, QColor("#6c737d"))
    p.setColor(QPalette.ColorGroup.Disabled, roles.ButtonText, QColor("#6c737d"))
    return p


def run_app(launch: Launch | None = None) -> int:
    """Open the main window on `launch` (default: the demo) and run the Qt event loop until it closes."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Tapescope")
    app.setOrganizationName("Tapescope")
    apply_palette(app)
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_palette(app))
    window = MainWindow()
    window.show()
    window.launch(launch or Launch())
    return app.exec()
