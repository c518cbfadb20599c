"""Shows a session's GraphModel on the canvas: layouts (on a worker thread when big), node colours, the
current node, the person's selection, the module tree, and a hint over an empty graph.

    presenter = GraphPresenter(canvas, module_tree, note=status_panel.set_note)
    presenter.set_model(session.model)     # a new session, or a replay that rebuilt its model
    presenter.refresh()                    # the model's structure changed: lay out what is new
    presenter.colours(); presenter.set_current()
    presenter.set_current(follow=True)     # at a stop: show the current node, readably
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QRectF, Qt, QTimer
from PySide6.QtWidgets import QLabel

from app.graph_model import MODULE, PARAM, GraphModel, breakpoint_marks
from app.layout import LayoutCache, LayoutJob, layout_view
from widgets.graph_canvas import GraphCanvas
from widgets.module_tree import ModuleTree
from widgets.theme import is_dark

SYNC_LAYOUT_NODES = 600  # larger views are laid out on a worker thread
COLOUR_BY = (("Op family", None), ("Activation |max|", "activation"), ("Gradient norm", "grad_norm"))
METRIC_INTERVAL = 0.2  # seconds between recolourings by a metric while values stream in

NO_MODULE_CALLS = ("No module was called in this iteration: its ops ran outside any nn.Module (as the code after "
                   "a training loop does).")


class GraphPresenter(QObject):
    """Keeps the canvas and the module tree in step with one GraphModel (see the module docstring)."""

    def __init__(self, canvas: GraphCanvas, module_tree: ModuleTree,
                 note: Callable[..., None] = lambda text, seconds=0: None) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.module_tree = module_tree
        self.note = note
        self.model: GraphModel | None = None
        self.colour_by: str | None = None
        self.selected: str | None = None
        self.breakpoints: tuple = ()  # the enabled breakpoint specs, whose places the canvas marks
        self.auto_fit = True  # fit as the graph grows, until the person pans or zooms
        # between stops (stepping), keep the current node in view and readable as layouts change; not
        # while the run goes on freely (F5), when chasing every op would only make the view swim
        self.following = False
        self.moved_by_hand = False  # since the last Fit: the person's zoom is kept, stops only pan
        self._toggled = False  # the person collapsed or expanded a module: its new layout is fitted
        self._reveal: str | None = None  # a node to select and show once the modules opened for it are laid out
        self._reveal_module: tuple[str, bool] | None = None  # a module call (and zoom) to show, likewise
        self._fit_across = False  # the person's last Fit showed a tall graph across its width (again: the whole)
        self.cache = LayoutCache()
        self._job: LayoutJob | None = None
        self._dirty = False
        self._signature = None
        self._nonfinite = -1  # the model's nonfinite_version last shown
        self._last_colour = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._poll)
        self.hint = QLabel(canvas)
        self.hint.setObjectName("hint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        fill, ink, edge = (("rgba(43, 45, 49, 235)", "#e9ecef", "#4a505a") if is_dark(canvas.palette()) else
                           ("rgba(255, 255, 255, 235)", "#212529", "#ced4da"))
        self.hint.setStyleSheet(f"#hint {{ background: {fill}; color: {ink}; border: 1px solid {edge}; "
                                "border-radius: 8px; padding: 12px 18px; }")
        self.hint.hide()
        canvas.installEventFilter(self)
        canvas.selectionChanged.connect(self._selection_changed)
        canvas.groupToggleRequested.connect(self.toggle)
        canvas.revealRequested.connect(self.reveal)
        canvas.box.sigRangeChangedManually.connect(self._moved_by_hand)
        module_tree.expandRequested.connect(self.expand)
        module_tree.expandCallsRequested.connect(self.expand_calls)
        module_tree.moduleSelected.connect(self.show_module)
        module_tree.moduleActivated.connect(lambda path: self.show_module(path, zoom=True))

    # ---- the model ---------------------------------------------------------------------------------
    def set_model(self, model: GraphModel | None, keep_view: bool = False) -> None:
        """Show `model` (None: nothing); `keep_view` keeps the zoom and the selection (a replay's seek)."""
        self.model = model
        self._signature = None
        self._nonfinite = -1
        if self._job is not None:
            self._job.cancel()
            self._job = None
            self._timer.stop()
            self.note("")
        if not keep_view:
            self.selected = None
            self.auto_fit = True
            self.moved_by_hand = self.following = False
        self.refresh()

    def refresh(self) -> None:
        """The structure changed: show the new view, laying it out if its shape is new."""
        if self._job is not None:
            # lay out again once the running job is done; a view built now would only be thrown away
            self._dirty = True
            return
        model = self.model
        view = model.view() if model is not None else GraphModel().view()
        self._update_modules(view)
        if not len(view):
            if self.canvas.view is None or len(self.canvas.view):
                self.canvas.set_graph(view, layout_view(view))
                self._signature = None
            return
        self.hint.hide()
        if view.signature == self._signature and self.canvas.layout_data is not None:
            self.canvas.set_graph(view, self.canvas.layout_data)  # same shape: reuse the layout
            self._after_set_graph(view)
            self._land_reveal(view)
            return
        if len(view) <= SYNC_LAYOUT_NODES:
            self._show(view, layout_view(view, cache=self.cache))
            return
        job = self._job = LayoutJob(view, cache=self.cache)
        threading.Thread(target=job.run, name="layout", daemon=True).start()
        self._timer.start()
        self.note(f"Laying out {len(view):,} nodes\u2026")

    @property
    def busy(self) -> bool:
        """Whether a layout is being computed on the worker thread."""
        return self._job is not None

    def _poll(self) -> None:
        job = self._job
        if job is None or not job.done.is_set():
            return
        self._job = None
        self._timer.stop()
        self.note("")
        if job.result is not None and self.model is not None:
            self._show(job.view, job.result)
        if self._dirty:
            self._dirty = False
            self.refresh()

    def _show(self, view, layout) -> None:
        self.canvas.set_graph(view, layout)
        self._signature = view.signature
        self._after_set_graph(view)
        toggled, self._toggled = self._toggled, False
        if self.following and not toggled and self.model is not None:
            # stepping grows the graph: a big one is not fitted into a speck at every step
            self.canvas.follow(self.model.current, zoom=not self.moved_by_hand, fit=self.auto_fit)
        elif self.auto_fit:
            self.canvas.fit(readable=True)  # by itself: labels that read, where the whole would be specks
        self._land_reveal(view)

    def _after_set_graph(self, view) -> None:
        """set_graph resets colours and marks: put back the flags, the current node and the selection."""
        self.colours(force=True)
        self.set_current()
        if self.selected is not None and self.selected in view.node_of:
            self.canvas.select(self.selected)
        self.canvas.set_breakpoints(*breakpoint_marks(view, self.breakpoints))

    def set_breakpoints(self, specs) -> None:
        """Mark the nodes and module calls that these breakpoint specs name."""
        specs = tuple(specs)
        if specs == self.breakpoints:  # a stop lists the breakpoints again for their hit counts
            return
        self.breakpoints = specs
        view = self.canvas.view
        if view is not None and self.canvas.layout_data is not None:
            self.canvas.set_breakpoints(*breakpoint_marks(view, self.breakpoints))

    # ---- what is drawn on the nodes -------------------------------------------------------------------
    def set_current(self, follow: bool = False) -> None:
        """Mark the node that ran last; `follow` (at a stop): bring it into view, zoomed in until its label
        reads unless the person zoomed or panned by hand since the last Fit (then only panned to)."""
        if self.model is None or self.canvas.view is None:
            return
        self.canvas.set_current(self.model.current)
        if follow:
            self.following = True
            self.canvas.follow(self.model.current, zoom=not self.moved_by_hand, fit=self.auto_fit)

    def run_freely(self) -> None:
        """The run goes on by itself (continue, run to...): stop following the current node."""
        self.following = False

    def set_colour_by(self, metric: str | None) -> None:
        """Colour nodes by op family (None), 'activation' or 'grad_norm'."""
        self.colour_by = metric
        self.colours(force=True)

    def colours(self, force: bool = False) -> None:
        """Recolour when NaN/Inf flags changed (or, colouring by a metric, a few times a second)."""
        model, view = self.model, self.canvas.view
        # the shown view, not the model's newest: a structure still being laid out is coloured once shown
        if model is None or view is None or not len(view):
            return
        now = time.monotonic()
        stale = self.colour_by is not None and now - self._last_colour >= METRIC_INTERVAL
        if not (force or model.nonfinite_version != self._nonfinite or stale):
            return
        self._nonfinite = model.nonfinite_version
        self._last_colour = now
        nonfinite = model.nonfinite_array(view)
        values = model.metric_array(view, self.colour_by) if self.colour_by else None
        name = {m: t for t, m in COLOUR_BY}.get(self.colour_by, "")
        if values is None and not nonfinite.any():
            self.canvas.set_node_values(None)
        else:
            self.canvas.set_node_values(values, nonfinite, name, model.nonfinite_notes(view))

    # ---- the hint over an empty graph -------------------------------------------------------------------
    def show_hint(self, text: str) -> None:
        """Show `text` over the canvas while the graph is empty ('' hides it)."""
        empty = self.canvas.view is None or not len(self.canvas.view)
        if not text or not empty:
            self.hint.hide()
            return
        if text != self.hint.text():
            self.hint.setText(text)
            self.hint.adjustSize()
        self._place_hint()
        self.hint.show()
        self.hint.raise_()

    def _place_hint(self) -> None:
        w = self.canvas.width()
        self.hint.move(max((w - self.hint.width()) // 2, 8), max(self.canvas.height() // 3, 8))

    def eventFilter(self, obj, event) -> bool:
        if obj is self.canvas and event.type() == QEvent.Type.Resize and self.hint.isVisible():
            self._place_hint()
        return False

    # ---- modules, navigation, selection ------------------------------------------------------------------
    def _update_modules(self, view) -> None:
        paths, classes, parents = list(view.groups), list(view.group_cls), [int(p) for p in view.group_parent]
        # when each call began: its first node
        began = [float("inf")] * len(paths)
        n_groups = len(paths)
        for i in range(len(view)):
            g, order = int(view.group[i]), float(view.order[i])
            if int(view.kind[i]) == MODULE:  # a collapsed module call: a node, not a group
                paths.append(view.keys[i])
                classes.append(view.op[i])
                parents.append(g)
                began.append(order)
            while g > 0 and order < began[g]:
                began[g] = order
                g = parents[g]
        # a call with nothing visible inside (a Dropout in eval) goes just before the next call made after it:
        # groups are numbered in the order they were called
        after = float("inf")
        for g in range(n_groups - 1, 0, -1):
            if began[g] == float("inf"):
                began[g] = after
            else:
                after = began[g]
        # and the calls inside collapsed ones: the tree is the way to a module folded away in the graph
        row = {path: i for i, path in enumerate(paths)}
        for path, cls, parent, at in view.hidden_calls:
            if path in row:  # a collapsed call's node, listed above
                continue
            row[path] = len(paths)
            paths.append(path)
            classes.append(cls)
            parents.append(row[parent])
            began.append(at)
        paths, classes, parents = _in_call_order(paths, classes, parents, began)
        self.module_tree.set_modules(paths, classes, parents, self.model.collapsed if self.model else set(),
                                     getattr(view, "root_names", {}))
        self.module_tree.set_empty_note(NO_MODULE_CALLS if len(view) and len(paths) <= 1 else "")

    def reveal(self, key: str) -> None:
        """Open the collapsed module calls that hide node `key` (a find's match inside them), only those, then
        select it and bring it into view, in the graph and in the Modules tree, once it is laid out."""
        if self.model is None:
            return
        view, opened = self.model.view(), False
        while True:
            i = view.node_of.get(key)
            if i is None:
                return
            if int(view.kind[i]) != MODULE or view.keys[i] == key:
                break
            self.model.expand(view.keys[i])  # the outermost hiding it; the next turn opens the one inside
            view, opened = self.model.view(), True
        self._reveal = key
        if opened:
            self._changed_here()
        else:
            self._land_reveal(self.canvas.view)

    def _land_reveal(self, view) -> None:
        if self._reveal_module is not None and view is not None and self.canvas.view is view:
            path, zoom = self._reveal_module
            if _draws(view, path):  # laid out with the calls around it open
                self._reveal_module = None
                self.show_module(path, zoom)
        key, self._reveal = self._reveal, None
        if key is None or view is None or key not in view.node_of or self.canvas.view is not view:
            return
        if self._dirty and view.keys[view.node_of[key]] != key:  # a layout from before the opening: the next one
            self._reveal = key
            return
        self.canvas.select(key)
        self.canvas.center_on(key)
        self.auto_fit = False  # the person looked for this node: the graph growing does not zoom away from it
        self.show_in_tree(key)

    def show_in_tree(self, key: str) -> None:
        """Scroll the Modules tree to the module node `key` runs in (or the collapsed module showing it) and mark
        its row, after the graph's pick has let go of the tree's (a deferred clear_pick)."""
        view = self.canvas.view
        i = view.node_of.get(key) if view is not None else None
        if i is None:
            return
        call = view.keys[i] if int(view.kind[i]) == MODULE else view.groups[int(view.group[i])]
        if call:
            QTimer.singleShot(0, self.module_tree, lambda: self.module_tree.reveal(call))

    def toggle(self, path: str) -> None:
        """Collapse module call `path` into one node, or expand it."""
        if self.model is not None:
            self.model.toggle(path)
            self._changed_here()

    def expand(self, path: str, expanded: bool) -> None:
        """Expand (or collapse) module call `path`; expanded inside a collapsed call, that one opens too."""
        if self.model is not None:
            (self.model.expand if expanded else self.model.collapse)(path)
            if expanded:
                self._open_around(path)
            self._changed_here()

    def _open_around(self, path: str) -> bool:
        """Expand the collapsed calls that hide module call `path` (False: none hides it)."""
        view = self.canvas.view
        made_by = {call: parent for call, _cls, parent, _at in view.hidden_calls} if view is not None else {}
        opened, outer = False, made_by.get(path)
        while outer is not None:  # out to the outermost collapsed call, the one the graph shows
            if outer in self.model.collapsed:
                self.model.expand(outer)
                opened = True
            outer = made_by.get(outer)
        return opened

    def expand_calls(self, paths: list, expanded: bool) -> None:
        """Expand (or collapse) every module call in `paths` (the calls of one module), laid out once."""
        if self.model is not None:
            for path in paths:
                (self.model.expand if expanded else self.model.collapse)(path)
                if expanded:
                    self._open_around(path)
            self._changed_here()

    def collapse_all(self, collapse: bool) -> None:
        """Collapse every top-level module call, or expand everything."""
        if self.model is None:
            return
        if collapse:
            self.model.collapse_below(1)
        else:
            for path in list(self.model.collapsed):
                self.model.expand(path)
        self._changed_here()

    def _changed_here(self) -> None:
        self.model.flush()  # the change is shown now; the pump need not report it again
        self.auto_fit = True
        self._toggled = True
        self.refresh()

    def fit(self) -> None:
        """Fit: the whole graph where its labels read whole; one too tall for that (a deep network, expanded) across
        its width with labels that read, around the selected node, to scroll through, as a hairline of specks says
        nothing. Fit again shows the whole. Keeps fitting as the graph grows (the next stop zooms in again)."""
        self.auto_fit = True
        self.moved_by_hand = False
        again = self._fit_across and self.canvas.fitted() == "across"  # this Fit's, not one the graph made itself
        self.canvas.fit(readable=not again, around=self.canvas.selected_key)
        self._fit_across = self.canvas.fitted() == "across"
        if self._fit_across:
            self.note("Fitted to the graph's width, its labels readable: scroll for the rest; Fit again (Ctrl+0) "
                      "shows the whole graph", 8)

    def _moved_by_hand(self, *_) -> None:
        self.auto_fit = False
        self.moved_by_hand = True

    def show_module(self, path: str, zoom: bool = False) -> None:
        """Bring module call `path` into view (its box, or its node when collapsed): panned to, at the zoom
        the person has (picking a module in the tree); `zoom`: zoomed to fit its box (a double-click). A call inside
        a collapsed one is shown once the calls around it are opened."""
        view, layout = self.canvas.view, self.canvas.layout_data
        if view is None or layout is None:
            return
        if self.model is not None and path not in view.groups and self._open_around(path):
            self._reveal_module = (path, zoom)  # inside a collapsed call: shown once it is laid out open, as Find does
            self._changed_here()
            return
        if path in view.groups:
            box = QRectF(*layout.group_rect[view.groups.index(path)])
            self.auto_fit = False
            self.moved_by_hand = True  # the person chose this view: stops keep its zoom
            if zoom:
                self.canvas.box.setRange(box, padding=0.1)
            else:  # centred (its top at the top, when taller than the view) at the same zoom: each call of a
                shown = self.canvas.box.viewRect()  # folded row clicked in turn moves into the middle
                shown.moveCenter(box.center())
                if box.height() > shown.height():
                    shown.moveTop(box.top() - 0.05 * shown.height())
                self.canvas.box.setRange(shown, padding=0)
        elif _draws(view, path):  # (a collapsed call's node: node_of has the keys of what it hides)
            self.canvas.select(path)
            self.canvas.center_on(path, readable=zoom)

    def param_node(self, name: str) -> str | None:
        """The shown node of parameter `name` ("fc2.weight"; a layer's name "fc2" stands for its weight) in
        its latest use, or None when the graph shows no such node."""
        view = self.canvas.view
        if view is None:
            return None
        for wanted in (name, f"{name}.weight"):
            for i in range(len(view.keys) - 1, -1, -1):
                if view.kind[i] == PARAM and view.label[i] == wanted:
                    return view.keys[i]
        return None

    def _selection_changed(self, key: str) -> None:
        self.selected = key or None


def _draws(view, path: str) -> bool:
    """Whether `view` draws module call `path`: as a box, or as a collapsed call's node."""
    return path in view.groups or path in view.node_of or path in view.keys


def _in_call_order(paths: list, classes: list, parents: list, began: list) -> tuple[list, list, list]:
    """Module calls (index 0: the top level) with each call's children in the order they began, as a
    person reads the script; a collapsed call stays where it was, not after its expanded siblings."""
    children: dict[int, list[int]] = {}
    for i in range(1, len(paths)):
        children.setdefault(parents[i], []).append(i)
    order, stack = [0], sorted(children.get(0, ()), key=lambda i: (began[i], i), reverse=True)
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(sorted(children.get(i, ()), key=lambda c: (began[c], c), reverse=True))
    new_index = {old: new for new, old in enumerate(order)}
    return ([paths[i] for i in order], [classes[i] for i in order],
            [new_index[parents[i]] if i else -1 for i in order])
