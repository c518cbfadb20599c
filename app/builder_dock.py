"""The model builder in the main window: a Builder dock (widgets.builder_panel) and a Prediction dock
(widgets.decision_boundary), wired to the window's live sessions.

    dock = install_builder(window)   # once, at the end of MainWindow.__init__
    dock.open()                      # what View > Model Builder... (Ctrl+Shift+B) does
    dock.build()                     # what Build does: a fresh session, paused before the first op

A build runs as `window.run_function(train)`, so stepping, breakpoints, the inspector and recording all
work on it. Training runs on the session's engine thread; its progress (epoch metrics and prediction
previews, plain data) crosses to the GUI thread through one queued signal, and the prediction view
repaints at most five times a second, always ending on the latest preview.
"""

from __future__ import annotations

import contextlib
import json
import time

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QScrollArea

from app.builder import PanelServices, Progress, loop, make_training_callable
from widgets.builder_panel import BuilderPanel
from widgets.decision_boundary import PredictionView

PREVIEW_INTERVAL = 0.2  # seconds between repaints of the prediction view while training runs
PREVIEW_EVERY = 20  # optimizer steps between the previews the engine thread computes mid-epoch
PLOT_WIDTH = 320  # pixels: the prediction dock's width when the builder opens (the plot is square)
RIGHT_LEAST = 0.25  # of the window's width: the least the right column gives way to, for the graph's column
PLOT_SHARE = 0.45  # of the window's height, at most: the prediction dock's height when the builder opens
MIN_BUILDER = 300  # pixels: narrower than this, the builder scrolls rather than squeezing its lists further
BUILDER_SHARE = 0.24  # of the window's width: the builder's width until the person sets one (a third of a
# 1440-pixel window left the graph cramped); at 1920 that has the room for the palette beside the layer list
SEPARATOR = 6  # pixels: a dock separator, with some slack
SHORTCUT = "Ctrl+Shift+B"  # Ctrl+B already toggles the backward pass


class _Relay(QObject):
    """Lives on the GUI thread; emitting from the engine thread queues the call there."""

    progress = Signal(int, object)  # the build's number, a Progress


class BuilderDock(QObject):
    """The Builder and Prediction docks of a MainWindow and the glue between them and its sessions."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.panel = BuilderPanel(PanelServices())
        self.view = PredictionView()
        # scrolled rather than squeezed: the panel's minimum width must not widen the whole window
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.panel)
        self.builder_dock = _dock(window, "Builder", "builder", scroll)
        self.prediction_dock = _dock(window, "Prediction", "prediction", self.view)
        self.history: list[dict] = []  # the current build's epoch metrics, in order
        self.progress: Progress | None = None  # the latest progress report of the current build
        self._build = 0  # which build the engine thread's reports belong to; older ones are dropped
        self._pending: Progress | None = None
        self._shown_at = 0.0
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._show_pending)
        self._relay = _Relay(self)
        self._relay.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self.panel.buildRequested.connect(self._start)
        self._train = None  # the current build's training function
        self._session = None  # the window's session when last looked at
        self._front = False  # the builder shows in front of its column, widened for it (see _front_changed)
        self._sizing = False  # the builder's column is being sized here, not by the person
        self._window_size = window.size()  # to tell the person's resize of the builder from the window's
        self._settling = False  # the window was resized this turn of the event loop: its docks are being fitted
        pump = getattr(window, "pump", None)
        if pump is not None:
            pump.changed.connect(self._session_changed)
        self._place()
        self.open_action = self._add_actions()
        # the left column is as wide as the tab in front asks: the builder's width only while it is in front
        # (after a restart with it open, the module tree in front kept the builder's width)
        self.builder_dock.visibilityChanged.connect(self._visibility_changed)
        window.installEventFilter(self)
        self.builder_dock.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Show:  # the restored layout is placed
            QTimer.singleShot(0, self._front_changed)
        elif watched is self.window and event.type() == QEvent.Type.Resize:
            self._settling = True  # the columns follow the window's size (app.panel_shares) until the loop turns
            QTimer.singleShot(0, self._settled)
        elif watched is self.builder_dock and event.type() == QEvent.Type.Resize:
            self._resized()
        return False

    def _settled(self) -> None:
        self._settling = False
        self._window_size = self.window.size()

    def _visibility_changed(self, _shown: bool) -> None:
        """The builder's tab came to the front, went behind, or the dock was shown or closed: its size changes
        until _front_changed has looked (after the layout placed it) are the window's, not the person's."""
        self._front = False
        QTimer.singleShot(0, self._front_changed)

    def _resized(self) -> None:
        """Remember the width the person gives the builder (dragging the line beside it), for the next time it
        comes to the front, and the next start; a width the window set (a resize, a widening here) is not theirs."""
        w, dock = self.window, self.builder_dock
        if self._sizing or self._settling or not self._front or dock.isFloating() or not _in_front(w, dock):
            return
        if w.size() != self._window_size:
            self._window_size = w.size()
            return
        saved = getattr(w, "settings", None)
        if saved is not None:
            saved.setValue("builder/width", dock.width())

    def chosen_width(self) -> int | None:
        """The width the person gave the builder last (None until they resize it)."""
        saved = getattr(self.window, "settings", None)
        value = saved.value("builder/width") if saved is not None else None
        with contextlib.suppress(TypeError, ValueError):
            if int(value) > 0:
                return int(value)
        return None

    def wanted_width(self) -> int:
        """The builder's width: the one the person gave it last, else its share of the window, at least what
        its buttons need and at most what shows the palette beside the layer list."""
        chosen = self.chosen_width()
        if chosen is not None:
            return chosen
        frame = self.builder_dock.width() - self.panel.width() if self.panel.isVisible() else 2 * SEPARATOR
        least = max(self.panel.minimumSizeHint().width() + frame, MIN_BUILDER)
        return max(min(int(self.window.width() * BUILDER_SHARE), self.panel.inline_width() + frame), least)

    def _front_changed(self) -> None:
        """Widen the left column for the builder in front; give it back to the tab in front otherwise."""
        w, dock = self.window, self.builder_dock
        self._front = _in_front(w, dock)
        if dock.isFloating() or w.dockWidgetArea(dock) != Qt.DockWidgetArea.LeftDockWidgetArea:
            return
        if self._front:
            self._widen()
            return
        left = [d for d in w.findChildren(QDockWidget) if d not in (self.prediction_dock, dock) and d.isVisible()
                and not d.isFloating() and w.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea]
        # the builder closed: Qt brings the tab beside it to the front only after this runs, and the column kept
        # the builder's width (the Editor 538 pixels wide at 1600x900, 385 at 1024x640); any tab of the column
        # sizes it
        front = [d for d in left if _in_front(w, d)]
        column = max(d.width() for d in front) if front else dock.width()
        width = self._left_width()
        if left and width and column > width:
            w.resizeDocks((front or left)[:1], [width], Qt.Orientation.Horizontal)

    def _left_width(self) -> int:
        """The left column's width before the builder widened it (else what the module tree asks for)."""
        saved = getattr(self.window, "settings", None)
        value = saved.value("builder/left_width") if saved is not None else None
        with contextlib.suppress(TypeError, ValueError):
            if int(value) > 0:
                return int(value)
        fit = getattr(self.window, "modules_width", None)
        return fit() if fit is not None else 0

    # ---- placing the docks ------------------------------------------------------------------------
    def _place(self, restore: bool = True) -> None:
        """Builder tabbed with the module tree (the full height of the left column), Prediction tabbed with
        the alerts (below the inspector); hidden unless the saved window state says otherwise."""
        w = self.window
        # the window restored its saved state before these docks existed: put them where they were
        if restore and all([w.restoreDockWidget(d) for d in (self.builder_dock, self.prediction_dock)]):
            return
        docks = getattr(w, "docks", {})
        for dock, beside, area in ((self.builder_dock, docks.get("modules"), Qt.DockWidgetArea.LeftDockWidgetArea),
                                   (self.prediction_dock, docks.get("alerts"), Qt.DockWidgetArea.RightDockWidgetArea)):
            if beside is not None and w.dockWidgetArea(beside) == area:
                w.tabifyDockWidget(beside, dock)
            else:
                w.addDockWidget(area, dock)
            dock.hide()

    def reset(self) -> None:
        """Put both docks back where they start: placed as at first, hidden, at the width they start with."""
        saved = getattr(self.window, "settings", None)
        if saved is not None:
            saved.remove("builder/width")
        for dock in (self.builder_dock, self.prediction_dock):
            dock.setFloating(False)
            self.window.removeDockWidget(dock)
        self._place(restore=False)

    def _add_actions(self) -> QAction:
        w = self.window
        action = QAction("&Model Builder\u2026", w)
        action.setObjectName("model_builder")
        action.setShortcut(QKeySequence(SHORTCUT))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setStatusTip("Compose a model from layers, pick data and training, and debug its training")
        action.setToolTip(f"Model Builder ({SHORTCUT})")
        action.triggered.connect(self.open)
        w.addAction(action)
        actions = getattr(w, "actions", None)
        if isinstance(actions, dict):
            actions["model_builder"] = action
            reset = actions.get("reset_layout")
            if reset is not None:
                reset.triggered.connect(self.reset)
        bar = w.menuBar()
        view = _menu(bar, "View") or _menu(bar, "File") or bar.addMenu("&View")
        first = view.actions()[0] if view.actions() else None
        view.insertAction(first, action)
        view.insertSeparator(first)
        panels = _menu(view, "Panels")
        if panels is not None:
            panels.addAction(self.builder_dock.toggleViewAction())
            panels.addAction(self.prediction_dock.toggleViewAction())
        return action

    # ---- opening and building -------------------------------------------------------------------------
    def open(self) -> None:
        """Show the builder and the prediction view, and focus the builder."""
        for dock in (self.builder_dock, self.prediction_dock):
            dock.show()
            dock.raise_()
        QTimer.singleShot(0, self._widen)  # a dock that was hidden takes a size once the layout placed it
        self.panel.setFocus()

    def _widen(self) -> None:
        """Give the builder the width it asks for and the prediction view room for a square plot, where
        the window has it (the builder scrolls otherwise)."""
        docks, sizes = [], []
        builder = self.wanted_width()
        plot, gives_way = PLOT_WIDTH, False
        room = getattr(self.window, "bottom_row_min_width", None)
        if room is not None and self.window.dockWidgetArea(self.builder_dock) == Qt.DockWidgetArea.LeftDockWidgetArea:
            # the graph's column keeps what its bottom row needs to read: at 1280x720 the builder's 538
            # pixels left it 385, and the loss group's tabs read "Lo… | T… | Gradi…"
            right = max((d.width() for d in self.window.findChildren(QDockWidget) if d.isVisible()
                         and not d.isFloating()
                         and self.window.dockWidgetArea(d) == Qt.DockWidgetArea.RightDockWidgetArea), default=0)
            spare = self.window.width() - right - room() - 2 * SEPARATOR
            builder = max(min(builder, spare), self.panel.minimumSizeHint().width(), MIN_BUILDER)
            # the right column widens for a square plot only where the graph's column has the room, and gives
            # some back where that column lacks it: at 1024x640 it took 44 more pixels from a column already
            # too narrow for its row's tabs ("Lo… | T… | Gradi…")
            short = builder - spare
            gives_way = short > 0
            plot = max(int(self.window.width() * RIGHT_LEAST), right - short) if gives_way else \
                max(right, min(PLOT_WIDTH, right - short))
        saved = getattr(self.window, "settings", None)
        if saved is not None and self.builder_dock.width() < builder:  # what the column goes back to
            others = [d.width() for d in self.window.tabifiedDockWidgets(self.builder_dock) if not d.isFloating()]
            if others:
                saved.setValue("builder/left_width", max(others))
        chosen = self.chosen_width() is not None  # the person's width, also where the column is wider now
        for dock, want, narrows in ((self.builder_dock, builder, chosen), (self.prediction_dock, plot, gives_way)):
            wrong = dock.width() < want or (narrows and dock.width() > want)
            if wrong and dock.isVisible() and not dock.isFloating():
                docks.append(dock)
                sizes.append(want)
        view = self.prediction_dock
        tall = min(PLOT_WIDTH, int(self.window.height() * PLOT_SHARE))
        with self._sizing_here():
            if docks:
                self.window.resizeDocks(docks, sizes, Qt.Orientation.Horizontal)
            if view.isVisible() and not view.isFloating() and view.height() < tall:
                # the plot as tall as it is wide, where the window has it: tabbed under the inspector in a 1024x640
                # window it was 50 pixels high
                self.window.resizeDocks([view], [tall], Qt.Orientation.Vertical)
        balance = getattr(self.window, "balance_bottom_row", None)
        if balance is not None:  # the graph's column is narrower: its bottom row shares what is left
            QTimer.singleShot(0, balance)

    @contextlib.contextmanager
    def _sizing_here(self):
        """The builder's column is sized here: its resizes until the layout settles are not the person's."""
        self._sizing = True
        try:
            yield
            self.window.layout().activate()
        finally:
            self._sizing = False
            self._window_size = self.window.size()

    def build(self) -> bool:
        """Build what the panel holds and start debugging its training (paused before the first op);
        False, with the reason in the window's message bar, if the build does not check out."""
        report = self.panel.check_now()
        if report["ok"]:
            return self._start(self.panel.document_json())
        problems = report.get("problems") or [{"message": self.panel.status_text()}]
        self.window.show_message(f"Cannot build: {problems[0]['message']}", "error")
        return False

    def _start(self, spec_json: str) -> bool:
        self._build += 1
        number, emit = self._build, self._relay.progress.emit

        def report(progress: Progress) -> None:  # on the engine thread: only queue plain data
            with contextlib.suppress(RuntimeError):  # the window is gone: nobody to tell
                emit(number, progress)

        try:
            train = make_training_callable(spec_json, on_progress=report, preview_every=PREVIEW_EVERY)
        except ValueError as err:  # BuildError, SpecError: values the shape check does not cover
            self.window.show_message(str(err), "error")
            return False
        self._train = train
        self._reset_view()
        name = json.loads(spec_json).get("name") or "model"
        self.window.run_function(train, f"{name} (model builder)", loop.__file__)
        self._session = self.window.session
        self.prediction_dock.show()
        self.prediction_dock.raise_()
        return True

    def _reset_view(self) -> None:
        self.history, self.progress, self._pending = [], None, None
        self._timer.stop()
        self.view.clear("Paused before training: F5 trains, F11 steps into the first batch.")

    def _session_changed(self, *_change) -> None:
        """Restart runs the build's function again in a new session: start its view afresh."""
        session = self.window.session
        if session is self._session:
            return
        self._session = session
        target = getattr(session, "target", None)
        if self._train is not None and getattr(target, "function", None) is self._train:
            self._reset_view()

    # ---- progress from the engine thread, on the GUI thread ------------------------------------------
    def _on_progress(self, number: int, progress: Progress) -> None:
        if number != self._build:
            return  # a report of an earlier build that was still queued
        if progress.metrics is not None:
            self.history.append(progress.metrics)
        self.progress = progress
        self._pending = progress
        wait = PREVIEW_INTERVAL - (time.monotonic() - self._shown_at)
        if wait <= 0:
            self._show_pending()
        elif not self._timer.isActive():
            self._timer.start(int(wait * 1000) + 1)

    def _show_pending(self) -> None:
        progress, self._pending = self._pending, None
        if progress is None:
            return
        self._timer.stop()
        self._shown_at = time.monotonic()
        last = self.history[-1] if self.history else None
        self.view.show_preview(progress.preview, caption(progress, last) if progress.preview else "")

    @property
    def accuracy(self) -> float | None:
        """The latest epoch's test accuracy of the current build (None before the first epoch)."""
        return self.history[-1].get("test_accuracy") if self.history else None


def caption(progress: Progress, last: dict | None) -> str:
    """The prediction view's caption for `progress`; `last`: the newest epoch's metrics that came before.

    Metrics are measured at the end of an epoch, so a preview taken during epoch N shows epoch N-1's and
    says so: "Epoch 40, step 390 \u00b7 after epoch 39: \u2026", never epoch 39's accuracy under "Epoch 40".
    """
    if progress.iteration == 0:
        return "Before training: the untrained model's predictions"
    if progress.metrics is not None:
        return f"After epoch {progress.epoch}, step {progress.iteration} \u00b7 {_metrics_text(progress.metrics)}"
    text = f"Epoch {progress.epoch}, step {progress.iteration}"
    if last is not None:
        text += f" \u00b7 after epoch {last['epoch']}: {_metrics_text(last)}"
    return text


def _metrics_text(metrics: dict) -> str:
    acc = metrics.get("test_accuracy")
    return f"loss {metrics['train_loss']:.4f}" + (f" \u00b7 test accuracy {acc:.1%}" if acc is not None else "")


def install_builder(window: QMainWindow) -> BuilderDock:
    """Add the Builder and Prediction docks and the Model Builder action to `window`."""
    return BuilderDock(window)


def _dock(window: QMainWindow, title: str, name: str, widget) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    return dock


def _in_front(window: QMainWindow, dock: QDockWidget) -> bool:
    """Whether `dock` shows in `window` (a tab behind another is "visible", but moved out of the window)."""
    return dock.isVisible() and not dock.isFloating() and window.rect().intersects(dock.geometry())


def _menu(owner, title: str) -> QMenu | None:
    """The menu called `title` (ignoring the & of its mnemonic) in a menu bar or a menu."""
    for action in owner.actions():
        if action.menu() is not None and action.text().replace("&", "") == title:
            return action.menu()
    return None
